//! The server's error type: every failure maps to a status code and a clear message that
//! says what to fix, never to internals or secrets (the detail goes to the log).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// The JSON body of every v1 error answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct ErrorBody {
    /// A stable, machine-readable code (`bad_request`, `not_found`, ...).
    pub(crate) code: &'static str,
    /// What went wrong and how to fix it.
    pub(crate) message: String,
}

/// What went wrong while answering a request.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    /// The request is wrong; the message says what to fix.
    #[error("{0}")]
    BadRequest(String),
    /// No or a wrong bearer token.
    #[error("missing or wrong bearer token; send `Authorization: Bearer <token>`")]
    Unauthorized,
    /// The named connection, dataset or export does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The request contradicts the current state (e.g. cancelling a finished export).
    #[error("{0}")]
    Conflict(String),
    /// A database or Kafka failed; the message names the cause (already free of secrets).
    #[error("{0}")]
    Upstream(String),
    /// The server is shutting down.
    #[error("{0}")]
    Unavailable(String),
    /// A bug or local failure (state file); the detail is logged, not sent.
    #[error("internal error: {0}")]
    Internal(String),
}

/// `Result` with [`ApiError`].
pub(crate) type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// The HTTP status.
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Upstream(_) => StatusCode::BAD_GATEWAY,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable code of the JSON body.
    pub(crate) fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Unauthorized => "unauthorized",
            ApiError::NotFound(_) => "not_found",
            ApiError::Conflict(_) => "conflict",
            ApiError::Upstream(_) => "upstream_failed",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }

    /// The message a client may see: internal details are replaced by a pointer to the log.
    pub(crate) fn public_message(&self) -> String {
        match self {
            ApiError::Internal(_) => {
                "internal server error; the server log has the details".to_owned()
            }
            other => other.to_string(),
        }
    }

    fn log(&self) {
        match self {
            ApiError::Internal(detail) => tracing::error!("internal error: {detail}"),
            ApiError::Upstream(detail) => tracing::warn!("upstream failure: {detail}"),
            _ => tracing::debug!("request rejected: {self}"),
        }
    }

    /// The answer in the original API's style: plain text.
    pub(crate) fn into_plain_response(self) -> Response {
        self.log();
        let mut response = (self.status(), self.public_message()).into_response();
        if matches!(self, ApiError::Unauthorized) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }

    /// Maps a source (database) error: bad input stays 4xx, the rest is an upstream failure.
    pub(crate) fn from_source(context: &str, err: ldd_sources::Error) -> Self {
        match err {
            ldd_sources::Error::InvalidInput(msg) | ldd_sources::Error::Unsupported(msg) => {
                ApiError::BadRequest(msg)
            }
            ldd_sources::Error::NotFound(msg) => ApiError::NotFound(msg),
            other => ApiError::Upstream(format!("{context}: {other}")),
        }
    }

    /// Maps a Kafka error: configuration mistakes are 400, broker failures 502.
    pub(crate) fn from_kafka(context: &str, err: ldd_sink_kafka::Error) -> Self {
        match err {
            ldd_sink_kafka::Error::Config(msg) => ApiError::BadRequest(msg),
            e @ ldd_sink_kafka::Error::UnknownTopic(_) => ApiError::BadRequest(e.to_string()),
            other => ApiError::Upstream(format!("{context}: {other}")),
        }
    }

    /// Maps an engine error.
    pub(crate) fn from_core(context: &str, err: ldd_core::Error) -> Self {
        match err {
            ldd_core::Error::InvalidInput(msg) => ApiError::BadRequest(msg),
            ldd_core::Error::Cancelled => ApiError::Conflict(format!("{context}: cancelled")),
            other => ApiError::Upstream(format!("{context}: {}", other.chain())),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.log();
        let body = ErrorBody {
            code: self.code(),
            message: self.public_message(),
        };
        let mut response = (self.status(), axum::Json(body)).into_response();
        if matches!(self, ApiError::Unauthorized) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// An [`ApiError`] answered in the original API's plain-text style.
#[derive(Debug)]
pub(crate) struct PlainError(pub(crate) ApiError);

impl From<ApiError> for PlainError {
    fn from(err: ApiError) -> Self {
        PlainError(err)
    }
}

impl IntoResponse for PlainError {
    fn into_response(self) -> Response {
        self.0.into_plain_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_details_are_not_sent() {
        let err = ApiError::Internal("sqlite: disk I/O error at /secret/path".into());
        assert_eq!(err.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!err.public_message().contains("/secret/path"));
    }

    #[test]
    fn source_errors_keep_their_class() {
        let err = ApiError::from_source("x", ldd_sources::Error::NotFound("no such db".into()));
        assert_eq!(err.status(), StatusCode::NOT_FOUND);
        let err = ApiError::from_source(
            "listing",
            ldd_sources::Error::Server {
                context: "query".into(),
                status: 500,
                message: "boom".into(),
            },
        );
        assert_eq!(err.status(), StatusCode::BAD_GATEWAY);
        assert!(err.to_string().starts_with("listing: query"));
    }
}
