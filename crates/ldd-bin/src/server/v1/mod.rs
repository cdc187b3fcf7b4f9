//! The v1 JSON API: connections, their datasets, and background exports with progress,
//! cancel, server-sent events and manifests. Errors are JSON `{code, message}`.

pub(crate) mod connections;
pub(crate) mod datasets;
pub(crate) mod exports;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::routing::{get, post};
use axum::Router;
use serde::de::DeserializeOwned;

use super::error::ApiError;
use super::state::AppState;

/// The v1 routes.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/connections",
            get(connections::list).post(connections::create),
        )
        .route(
            "/v1/connections/{id}",
            get(connections::get).delete(connections::delete),
        )
        .route("/v1/connections/{id}/datasets", get(datasets::list))
        .route(
            "/v1/connections/{id}/datasets/{database}/{table}",
            get(datasets::detail),
        )
        .route(
            "/v1/connections/{id}/datasets/{database}/{table}/time-range",
            get(datasets::time_range),
        )
        .route("/v1/exports", get(exports::list).post(exports::create))
        .route(
            "/v1/exports/{id}",
            get(exports::get).delete(exports::cancel),
        )
        .route("/v1/exports/{id}/resume", post(exports::resume))
        .route("/v1/exports/{id}/events", get(exports::events))
        .route("/v1/exports/{id}/manifest", get(exports::manifest))
}

/// A JSON body; anything that does not parse is a 400 that names the problem.
#[derive(Debug)]
pub(crate) struct ApiJson<T>(pub(crate) T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let body = Bytes::from_request(request, state).await.map_err(|e| {
            ApiError::BadRequest(format!("the body cannot be read: {}", e.body_text()))
        })?;
        serde_json::from_slice(&body)
            .map(ApiJson)
            .map_err(|e| ApiError::BadRequest(format!("the JSON body is not valid: {e}")))
    }
}

/// A query string; one that does not parse is a 400 that names the problem.
#[derive(Debug)]
pub(crate) struct ApiQuery<T>(pub(crate) T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(t)| ApiQuery(t))
            .map_err(|e| {
                ApiError::BadRequest(format!("the query string is not valid: {}", e.body_text()))
            })
    }
}

/// Path parameters; a segment axum cannot decode (e.g. percent-encoded bytes that are not
/// UTF-8) is a JSON 400 like every other v1 error, not axum's plain-text answer.
#[derive(Debug)]
pub(crate) struct ApiPath<T>(pub(crate) T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(t)| ApiPath(t))
            .map_err(|e| ApiError::BadRequest(format!("the path is not valid: {}", e.body_text())))
    }
}
