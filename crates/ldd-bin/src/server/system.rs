//! `/healthz` and `/metrics` (`/openapi.json` is served by [`super::openapi`]).

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::error::ApiResult;
use super::state::AppState;

/// Answer of `/healthz`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Health {
    /// `ok`.
    pub(crate) status: &'static str,
    /// The ldd version.
    pub(crate) version: &'static str,
}

/// Liveness: answers without a token and without touching databases.
#[utoipa::path(
    get,
    path = "/healthz",
    operation_id = "healthz",
    tag = "system",
    responses((status = 200, description = "The server runs", body = Health))
)]
pub(crate) async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
    })
}

/// Prometheus metrics: exports by state, records/bytes/messages produced, chunk
/// durations, retries, failures, HTTP answers.
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    tag = "system",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain", body = String)),
    security(("bearer" = []))
)]
pub(crate) async fn metrics(State(state): State<AppState>) -> ApiResult<impl IntoResponse> {
    let by_state = state.store().count_by_state().await?;
    let text = state.metrics().render(&by_state);
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    ))
}
