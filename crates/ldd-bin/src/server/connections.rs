//! Database connections: the registration request, its public view, and the one function
//! that turns it into a live [`Connection`].
//!
//! Every handler reaches a database only through `Arc<dyn Connection>` from the
//! [`Registry`](super::registry::Registry); which backend answers is decided in
//! [`build_connection`] alone (or by the factory a test injects).

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use futures::future::BoxFuture;
pub(crate) use ldd_sources::redact::redact_url;
use ldd_sources::redact::url_password;
use ldd_sources::Connection;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ApiError, ApiResult};
use super::registry::ConnectionStatus;
use super::validate::{check_identifier, check_text};

/// Kind of database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum DbType {
    /// MongoDB, or a MongoDB-wire server such as FerretDB.
    Mongo,
    /// InfluxDB (1.x, 2.x, 3.x).
    Influx,
}

impl DbType {
    /// The name used on the wire.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            DbType::Mongo => "mongo",
            DbType::Influx => "influx",
        }
    }

    /// What the original API calls it in `dataset_type`.
    pub(crate) fn dataset_type(self) -> &'static str {
        match self {
            DbType::Mongo => "MongoDB",
            DbType::Influx => "InfluxDB",
        }
    }
}

impl FromStr for DbType {
    type Err = ApiError;
    fn from_str(s: &str) -> ApiResult<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "mongo" | "mongodb" => Ok(DbType::Mongo),
            "influx" | "influxdb" => Ok(DbType::Influx),
            _ => Err(ApiError::BadRequest(format!(
                "db_type `{}` is not supported; use `mongo` or `influx`",
                s.escape_debug()
            ))),
        }
    }
}

/// Everything needed to (re)connect to a database, secrets included. Stored in the state
/// file; never returned by an endpoint and never logged (`Debug` redacts).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ConnectionSpec {
    /// The connection's name.
    pub(crate) id: String,
    /// Kind of database.
    pub(crate) db_type: DbType,
    /// Server URL (`mongodb://...`, `http://...`).
    pub(crate) url: String,
    /// InfluxDB 2.x/3.x API token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) token: Option<String>,
    /// InfluxDB organisation (Flux, 2.x).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) org: Option<String>,
    /// MongoDB: the database used when a request names none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) database: Option<String>,
    /// InfluxDB 1.x user name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) username: Option<String>,
    /// InfluxDB 1.x password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) password: Option<String>,
    /// InfluxDB query language: `auto`, `influxql` or `flux`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) language: Option<String>,
    /// InfluxDB record shape: `wide` (one record per point) or `narrow` (one per field
    /// value, the original's shape).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) row_shape: Option<String>,
}

impl fmt::Debug for ConnectionSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secret = |s: &Option<String>| s.as_ref().map(|_| "<redacted>");
        f.debug_struct("ConnectionSpec")
            .field("id", &self.id)
            .field("db_type", &self.db_type)
            .field("url", &redact_url(&self.url))
            .field("token", &secret(&self.token))
            .field("org", &self.org)
            .field("database", &self.database)
            .field("username", &self.username)
            .field("password", &secret(&self.password))
            .field("language", &self.language)
            .field("row_shape", &self.row_shape)
            .finish()
    }
}

impl ConnectionSpec {
    /// Checks the request without I/O; the message says what to fix.
    pub(crate) fn validate(&self) -> ApiResult<()> {
        check_identifier("connection_id", &self.id)?;
        check_text("url", &self.url, 2048)?;
        let lower = self.url.to_ascii_lowercase();
        match self.db_type {
            DbType::Mongo => {
                if !(lower.starts_with("mongodb://") || lower.starts_with("mongodb+srv://")) {
                    return Err(ApiError::BadRequest(format!(
                        "a mongo url starts with mongodb:// or mongodb+srv://, got `{}`",
                        redact_url(&self.url).escape_debug()
                    )));
                }
                for (name, value) in [
                    ("token", &self.token),
                    ("username", &self.username),
                    ("password", &self.password),
                    ("language", &self.language),
                    ("row_shape", &self.row_shape),
                    ("org", &self.org),
                ] {
                    if value.is_some() {
                        return Err(ApiError::BadRequest(format!(
                            "`{name}` is for influx connections; put MongoDB credentials in the url \
                             (mongodb://user:password@host/)"
                        )));
                    }
                }
            }
            DbType::Influx => {
                if !(lower.starts_with("http://") || lower.starts_with("https://")) {
                    return Err(ApiError::BadRequest(format!(
                        "an influx url starts with http:// or https://, got `{}`",
                        redact_url(&self.url).escape_debug()
                    )));
                }
                if let Some(shape) = &self.row_shape {
                    if !matches!(shape.as_str(), "wide" | "narrow") {
                        return Err(ApiError::BadRequest(format!(
                            "row_shape `{}` is not known; use wide or narrow",
                            shape.escape_debug()
                        )));
                    }
                }
                if let Some(language) = &self.language {
                    if !matches!(language.as_str(), "auto" | "influxql" | "flux") {
                        return Err(ApiError::BadRequest(format!(
                            "language `{}` is not known; use auto, influxql or flux",
                            language.escape_debug()
                        )));
                    }
                }
            }
        }
        for (name, value, max) in [
            ("token", &self.token, 4096),
            ("org", &self.org, 256),
            ("database", &self.database, 256),
            ("username", &self.username, 256),
            ("password", &self.password, 1024),
        ] {
            if let Some(v) = value {
                check_text(name, v, max)?;
            }
        }
        Ok(())
    }

    /// Every secret of the spec, to scrub from messages.
    fn secrets(&self) -> Vec<String> {
        let mut secrets: Vec<String> = [&self.token, &self.password]
            .into_iter()
            .flatten()
            .filter(|s| !s.is_empty())
            .cloned()
            .collect();
        if let Some(password) = url_password(&self.url) {
            secrets.push(password.to_owned());
        }
        secrets
    }

    /// `text` with every secret of this spec replaced by `<redacted>`.
    pub(crate) fn scrub(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for secret in self.secrets() {
            out = out.replace(&secret, "<redacted>");
        }
        out
    }

    /// The public view (no secrets).
    pub(crate) fn info(&self, created_at: &str, status: &ConnectionStatus) -> ConnectionInfo {
        let (status, last_error) = match status {
            ConnectionStatus::Active => ("active", None),
            ConnectionStatus::Pending => ("pending", None),
            ConnectionStatus::Unavailable(e) => ("unavailable", Some(e.clone())),
        };
        ConnectionInfo {
            id: self.id.clone(),
            db_type: self.db_type,
            url: redact_url(&self.url),
            org: self.org.clone(),
            database: self.database.clone(),
            username: self.username.clone(),
            has_token: self.token.is_some(),
            has_password: self.password.is_some() || url_password(&self.url).is_some(),
            language: self.language.clone(),
            row_shape: self.row_shape.clone(),
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
    pub(crate) db_type: DbType,
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
    pub(crate) language: Option<String>,
    /// InfluxDB record shape.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) row_shape: Option<String>,
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

/// Connects to the database a registration names (the one place that knows the backends)
/// and checks that it answers.
pub(crate) async fn build_connection(spec: &ConnectionSpec) -> ApiResult<Arc<dyn Connection>> {
    spec.validate()?;
    let what = format!(
        "connecting to the {} server at {}",
        spec.db_type.dataset_type(),
        redact_url(&spec.url)
    );
    let result: ldd_sources::Result<Arc<dyn Connection>> = match spec.db_type {
        DbType::Mongo => connect_mongo(spec).await,
        DbType::Influx => connect_influx(spec).await,
    };
    let connection = result.map_err(|e| scrubbed(spec, &what, e))?;
    connection
        .ping()
        .await
        .map_err(|e| scrubbed(spec, &what, e))?;
    Ok(connection)
}

/// A source error as an API error, with the spec's secrets scrubbed from its text.
pub(crate) fn scrubbed(spec: &ConnectionSpec, context: &str, err: ldd_sources::Error) -> ApiError {
    match ApiError::from_source(context, err) {
        ApiError::BadRequest(m) => ApiError::BadRequest(spec.scrub(&m)),
        ApiError::NotFound(m) => ApiError::NotFound(spec.scrub(&m)),
        ApiError::Upstream(m) => ApiError::Upstream(spec.scrub(&m)),
        other => other,
    }
}

async fn connect_mongo(spec: &ConnectionSpec) -> ldd_sources::Result<Arc<dyn Connection>> {
    use ldd_sources::mongo::{MongoConfig, MongoConnection};
    let config = MongoConfig {
        url: spec.url.clone(),
        database: spec.database.clone(),
        ..Default::default()
    };
    Ok(Arc::new(MongoConnection::connect(config).await?))
}

async fn connect_influx(spec: &ConnectionSpec) -> ldd_sources::Result<Arc<dyn Connection>> {
    use ldd_sources::influx::{InfluxConfig, InfluxConnection, QueryLanguage, RowShape};
    let mut config = InfluxConfig::new(spec.url.clone());
    config.token = spec.token.clone();
    config.org = spec.org.clone();
    config.username = spec.username.clone();
    config.password = spec.password.clone();
    config.language = match spec.language.as_deref() {
        Some("influxql") => QueryLanguage::Influxql,
        Some("flux") => QueryLanguage::Flux,
        _ => QueryLanguage::Auto,
    };
    config.row_shape = match spec.row_shape.as_deref() {
        Some("narrow") => RowShape::Narrow,
        _ => RowShape::Wide,
    };
    Ok(Arc::new(InfluxConnection::connect(config).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(url: &str) -> ConnectionSpec {
        ConnectionSpec {
            id: "c1".into(),
            db_type: DbType::Influx,
            url: url.into(),
            token: Some("tok-s3cret".into()),
            org: None,
            database: None,
            username: None,
            password: None,
            language: None,
            row_shape: None,
        }
    }

    #[test]
    fn debug_and_info_never_show_secrets() {
        let mut s = spec("http://h:8086");
        s.password = Some("pw-s3cret".into());
        let text = format!("{s:?} {:?}", s.info("now", &ConnectionStatus::Active));
        assert!(!text.contains("s3cret"), "{text}");
        assert_eq!(
            s.scrub("token tok-s3cret leaked"),
            "token <redacted> leaked"
        );
    }

    #[test]
    fn validation_says_what_to_fix() {
        let err = spec("mongodb://h").validate().unwrap_err().to_string();
        assert!(err.contains("http://"), "{err}");
        let mut s = spec("http://h");
        s.id = "../etc".into();
        assert!(s.validate().is_err());
        assert!("postgres".parse::<DbType>().is_err());
        assert_eq!("MongoDB".parse::<DbType>().unwrap(), DbType::Mongo);
    }
}
