//! The OpenAPI document, generated from the handlers' annotations and the types'
//! `ToSchema` derives (served at `/openapi.json`).

use axum::response::IntoResponse;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, ObjectBuilder, Ref, RefOr, ResponseBuilder, Type};
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
        serve,
    ),
    components(schemas(crate::server::exports::model::ExportEventData)),
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

/// Declares the `bearer` security scheme the operations name, and gives every operation
/// that names it the 401 the authentication middleware answers ([`super::auth`]): one
/// place, so that no protected operation can lack it.
struct BearerAuth;

/// The name of the security scheme.
pub(crate) const BEARER: &str = "bearer";

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "Required when the server has a token (LDD_TOKEN); /healthz is always open.",
                    ))
                    .build(),
            ),
        );
        for item in openapi.paths.paths.values_mut() {
            for operation in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                if requires_bearer(operation) {
                    add_unauthorized(operation);
                }
                if has_path_parameters(operation) {
                    add_bad_path(operation);
                }
            }
        }
    }
}

fn has_path_parameters(operation: &Operation) -> bool {
    operation.parameters.as_ref().is_some_and(|parameters| {
        parameters
            .iter()
            .any(|p| matches!(p, RefOr::T(p) if p.parameter_in == ParameterIn::Path))
    })
}

/// `ApiPath`'s answer to a path segment that cannot be decoded (the v1 API is the only one
/// with path parameters, so the body is its JSON error), unless the operation documents
/// its own 400.
fn add_bad_path(operation: &mut Operation) {
    let response =
        error_response("A path segment cannot be decoded, or a parameter is wrong").build();
    operation
        .responses
        .responses
        .entry("400".to_owned())
        .or_insert_with(|| response.into());
}

/// A response whose body is the JSON `ErrorBody`.
fn error_response(description: &str) -> ResponseBuilder {
    ResponseBuilder::new().description(description).content(
        "application/json",
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("ErrorBody")))
            .build(),
    )
}

fn requires_bearer(operation: &Operation) -> bool {
    operation.security.as_ref().is_some_and(|requirements| {
        requirements.iter().any(|r| {
            serde_json::to_value(r)
                .ok()
                .and_then(|v| v.as_object().map(|o| o.contains_key(BEARER)))
                .unwrap_or(false)
        })
    })
}

/// The middleware's answer: JSON `ErrorBody` with `WWW-Authenticate: Bearer`, on every
/// path (the original endpoints too: it answers before any handler runs).
fn add_unauthorized(operation: &mut Operation) {
    let response =
        error_response("The server has a token and the request carries none, or another")
            .header(
                "WWW-Authenticate",
                HeaderBuilder::new()
                    .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
                    .description(Some("`Bearer`"))
                    .build(),
            )
            .build();
    operation
        .responses
        .responses
        .insert("401".to_owned(), response.into());
}

/// The document as JSON.
pub(crate) fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    doc
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::Value;

    use super::*;

    fn operations(doc: &Value) -> Vec<(String, String, Value)> {
        let mut out = Vec::new();
        for (path, item) in doc["paths"].as_object().into_iter().flatten() {
            for (method, op) in item.as_object().into_iter().flatten() {
                out.push((method.clone(), path.clone(), op.clone()));
            }
        }
        out
    }

    #[test]
    fn bearer_scheme_and_401_on_every_protected_operation() {
        let doc = serde_json::to_value(document()).unwrap();
        assert_eq!(
            doc["components"]["securitySchemes"][BEARER]["scheme"],
            "bearer"
        );
        let mut ids = BTreeSet::new();
        for (method, path, op) in operations(&doc) {
            let id = op["operationId"].as_str().unwrap().to_owned();
            assert!(ids.insert(id.clone()), "operationId {id} is used twice");
            let responses = &op["responses"];
            if path == "/healthz" {
                assert!(op.get("security").is_none(), "/healthz must stay open");
                assert!(responses.get("401").is_none());
                continue;
            }
            assert_eq!(
                op["security"][0][BEARER],
                serde_json::json!([]),
                "{method} {path} does not name the bearer scheme"
            );
            assert_eq!(
                responses["401"]["content"]["application/json"]["schema"]["$ref"],
                "#/components/schemas/ErrorBody",
                "{method} {path} lacks its 401"
            );
        }
    }

    #[test]
    fn same_named_types_do_not_replace_each_other() {
        let doc = serde_json::to_value(document()).unwrap();
        let schema_of = |path: &str| {
            doc["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
                ["$ref"]
                .clone()
        };
        assert_eq!(
            schema_of("/db-connections/list"),
            "#/components/schemas/LegacyConnectionList"
        );
        assert_eq!(
            schema_of("/v1/connections"),
            "#/components/schemas/ConnectionList"
        );
        assert_eq!(
            doc["components"]["schemas"]["LegacyConnectionList"]["properties"]["connections"]
                ["items"]["$ref"],
            "#/components/schemas/ListedConnection"
        );
    }
}

/// This API's OpenAPI document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    operation_id = "openapi",
    tag = "system",
    responses((status = 200, description = "OpenAPI document", body = Object)),
    security(("bearer" = []))
)]
pub(crate) async fn serve() -> impl IntoResponse {
    axum::Json(document())
}
