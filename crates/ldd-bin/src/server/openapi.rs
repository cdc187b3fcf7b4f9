//! The OpenAPI document, generated from the handlers' annotations and the types'
//! `ToSchema` derives (served at `/openapi.json`).

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{legacy, system, v1};

/// The document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "ldd",
        description = "Large Dataset Delivery: export datasets from MongoDB and InfluxDB into Kafka in parallel chunks with an exact manifest. The `original` endpoints keep the original server's parameters and answers; the v1 API adds background exports with progress, cancel and events."
    ),
    paths(
        legacy::connections::register,
        legacy::connections::list,
        legacy::connections::remove,
        legacy::datasets::list,
        legacy::datasets::detail,
        legacy::datasets::time_range,
        legacy::export::export,
        legacy::export::query_by_time,
        v1::connections::create,
        v1::connections::list,
        v1::connections::get,
        v1::connections::delete,
        v1::datasets::list,
        v1::datasets::detail,
        v1::datasets::time_range,
        v1::exports::create,
        v1::exports::list,
        v1::exports::get,
        v1::exports::cancel,
        v1::exports::resume,
        v1::exports::events,
        v1::exports::manifest,
        system::healthz,
        system::metrics,
        system::openapi,
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "original", description = "The original server's endpoints (plain-text errors)"),
        (name = "connections", description = "Registered database connections"),
        (name = "datasets", description = "A connection's catalogue"),
        (name = "exports", description = "Background exports"),
        (name = "system", description = "Health, metrics, this document"),
    )
)]
pub(crate) struct ApiDoc;

/// Declares the `bearer` security scheme the operations name.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "Required when the server has a token (LDD_TOKEN); /healthz is always open.",
                    ))
                    .build(),
            ),
        );
    }
}

/// The document as JSON.
pub(crate) fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    doc
}
