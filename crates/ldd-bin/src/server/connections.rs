//! Database connections: the registration request, its public view, and the one function
//! that turns it into a live [`Connection`].
//!
//! Every handler reaches a database only through `Arc<dyn Connection>` from the
//! [`Registry`](super::registry::Registry); which backend answers is decided in
//! [`build_connection`] alone (or by the factory a test injects).

use std::sync::Arc;

use futures::future::BoxFuture;
use ldd_sources::{Connection, QueryLanguage, RowShape, SourceConfig, SourceKind};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ApiError, ApiResult};
use super::validate::check_identifier;

/// Whether a registered connection is connected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ConnectionStatus {
    /// Not connected yet (after a restart, connections are re-created lazily).
    Pending,
    /// Connected.
    Active,
    /// The last attempt failed with this (secret-free) message.
    Unavailable(String),
}

/// A registered connection: its name and the [`SourceConfig`] it connects with, secrets
/// included. Stored in the state file (flat, as `{"id":..,"db_type":..,"url":..}`);
/// never returned by an endpoint and never logged (`Debug` redacts).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ConnectionSpec {
    /// The connection's name.
    pub(crate) id: String,
    /// How to reach the database.
    #[serde(flatten)]
    pub(crate) source: SourceConfig,
}

impl ConnectionSpec {
    /// Checks the request without I/O; the message says what to fix.
    pub(crate) fn validate(&self) -> ApiResult<()> {
        check_identifier("connection_id", &self.id)?;
        self.source
            .validate()
            .map_err(|e| ApiError::BadRequest(e.to_string()))
    }

    /// The public view (no secrets).
    pub(crate) fn info(&self, created_at: &str, status: &ConnectionStatus) -> ConnectionInfo {
        let (status, last_error) = match status {
            ConnectionStatus::Active => ("active", None),
            ConnectionStatus::Pending => ("pending", None),
            ConnectionStatus::Unavailable(e) => ("unavailable", Some(e.clone())),
        };
        let shown = self.source.redacted();
        ConnectionInfo {
            id: self.id.clone(),
            db_type: shown.kind,
            url: shown.url,
            org: shown.org,
            database: shown.database,
            username: shown.username,
            has_token: self.source.token.is_some(),
            has_password: self.source.has_password(),
            language: shown.language,
            row_shape: shown.row_shape,
            status: status.to_owned(),
            last_error,
            created_at: created_at.to_owned(),
        }
    }
}

/// A registered connection as the API shows it: never a secret.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct ConnectionInfo {
    /// The connection's name.
    pub(crate) id: String,
    /// Kind of database.
    pub(crate) db_type: SourceKind,
    /// Server URL with any password replaced by `****`.
    pub(crate) url: String,
    /// InfluxDB organisation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) org: Option<String>,
    /// MongoDB default database.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) database: Option<String>,
    /// InfluxDB 1.x user name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) username: Option<String>,
    /// Whether a token is stored (its value is never shown).
    pub(crate) has_token: bool,
    /// Whether a password is stored (its value is never shown).
    pub(crate) has_password: bool,
    /// InfluxDB query language.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) language: Option<QueryLanguage>,
    /// InfluxDB record shape.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) row_shape: Option<RowShape>,
    /// `active` (connected), `pending` (not connected yet) or `unavailable` (the last
    /// attempt failed; the next request retries).
    pub(crate) status: String,
    /// Why the last connection attempt failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) last_error: Option<String>,
    /// When it was registered (RFC 3339).
    pub(crate) created_at: String,
}

/// Builds a live connection from a registration. Injected so tests can use fakes.
pub(crate) type ConnectionFactory =
    Arc<dyn Fn(ConnectionSpec) -> BoxFuture<'static, ApiResult<Arc<dyn Connection>>> + Send + Sync>;

/// The production factory: [`build_connection`].
pub(crate) fn default_factory() -> ConnectionFactory {
    Arc::new(|spec| Box::pin(async move { build_connection(&spec).await }))
}

/// Connects to the database a registration names through [`ldd_sources::connect`] (which
/// checks that it answers).
pub(crate) async fn build_connection(spec: &ConnectionSpec) -> ApiResult<Arc<dyn Connection>> {
    spec.validate()?;
    let what = format!(
        "connecting to the {} server at {}",
        spec.source.kind.dataset_type(),
        spec.source.redacted().url
    );
    ldd_sources::connect(&spec.source)
        .await
        .map_err(|e| scrubbed(spec, &what, e))
}

/// A source error as an API error, with the spec's secrets scrubbed from its text.
pub(crate) fn scrubbed(spec: &ConnectionSpec, context: &str, err: ldd_sources::Error) -> ApiError {
    ApiError::from_source(context, spec.source.scrub_error(err))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(url: &str) -> ConnectionSpec {
        ConnectionSpec {
            id: "c1".into(),
            source: SourceConfig {
                token: Some("tok-s3cret".into()),
                ..SourceConfig::new(SourceKind::Influx, url)
            },
        }
    }

    #[test]
    fn debug_and_info_never_show_secrets() {
        let mut s = spec("http://h:8086");
        s.source.password = Some("pw-s3cret".into());
        let text = format!("{s:?} {:?}", s.info("now", &ConnectionStatus::Active));
        assert!(!text.contains("s3cret"), "{text}");
    }

    #[test]
    fn the_state_file_keeps_its_flat_shape() {
        let json = serde_json::to_value(spec("http://h:8086")).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"id": "c1", "db_type": "influx", "url": "http://h:8086",
                "token": "tok-s3cret"})
        );
        let back: ConnectionSpec = serde_json::from_value(json).unwrap();
        assert_eq!(back, spec("http://h:8086"));
    }

    #[test]
    fn validation_says_what_to_fix() {
        let err = spec("mongodb://h").validate().unwrap_err().to_string();
        assert!(err.contains("http://"), "{err}");
        let mut s = spec("http://h");
        s.id = "../etc".into();
        assert!(s.validate().is_err());
    }
}
