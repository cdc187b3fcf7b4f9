//! The one description of a database connection: which kind of server, where, and with
//! which credentials. The CLI flags, the server's registrations and state file, the bench
//! and the tests all build a [`SourceConfig`] and hand it to [`connect`](crate::connect).
//!
//! ```
//! use ldd_sources::{SourceConfig, SourceKind};
//!
//! let mut config = SourceConfig::new(SourceKind::Influx, "http://127.0.0.1:8086");
//! config.token = Some("s3cret".into());
//! config.validate().unwrap();
//! assert!(!format!("{config:?}").contains("s3cret"));
//! assert_eq!(config.scrub("token s3cret refused"), "token <redacted> refused");
//! ```

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use ldd_core::text::check_text;

use crate::error::{Error, Result};
use crate::redact::{redact_url, url_password};

/// What a secret is shown as in `Debug`, [`SourceConfig::redacted`] and scrubbed messages.
pub const REDACTED: &str = "<redacted>";

/// Which kind of database a connection talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// MongoDB, or a MongoDB-wire server such as FerretDB.
    Mongo,
    /// InfluxDB (1.x, 2.x, 3.x).
    Influx,
}

impl SourceKind {
    /// The name on the wire and in flags: `mongo` or `influx`.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Mongo => "mongo",
            SourceKind::Influx => "influx",
        }
    }

    /// The name the original API uses in `dataset_type`.
    pub fn dataset_type(self) -> &'static str {
        match self {
            SourceKind::Mongo => "MongoDB",
            SourceKind::Influx => "InfluxDB",
        }
    }
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SourceKind {
    type Err = Error;

    /// Accepts `mongo`/`mongodb` and `influx`/`influxdb`, in any case (the original API's
    /// clients send either).
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "mongo" | "mongodb" => Ok(SourceKind::Mongo),
            "influx" | "influxdb" => Ok(SourceKind::Influx),
            _ => Err(Error::InvalidInput(format!(
                "db_type `{}` is not supported; use `mongo` or `influx`",
                s.escape_debug()
            ))),
        }
    }
}

/// Which query language an InfluxDB connection speaks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum QueryLanguage {
    /// Detect at connect time: InfluxQL when the v1 `/query` API answers (InfluxDB 1.x,
    /// 2.x through its v1 compatibility API, 3.x), otherwise Flux when `/api/v2/query`
    /// answers (2.x, or 1.8 with `flux-enabled = true`). Connecting fails when neither does.
    #[default]
    Auto,
    /// InfluxQL over `/query` with `chunked=true`.
    Influxql,
    /// Flux over `/api/v2/query`; connecting fails when the server has no Flux.
    Flux,
}

impl FromStr for QueryLanguage {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "auto" => Ok(QueryLanguage::Auto),
            "influxql" => Ok(QueryLanguage::Influxql),
            "flux" => Ok(QueryLanguage::Flux),
            _ => Err(Error::InvalidInput(format!(
                "language `{}` is not known; use auto, influxql or flux",
                s.escape_debug()
            ))),
        }
    }
}

/// How InfluxDB points become records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum RowShape {
    /// One record per point: `_time`, `_measurement`, its tags (sorted by key), then its
    /// fields (sorted by key), each with its type (float, integer, boolean, string).
    #[default]
    Wide,
    /// One record per field value, the row shape of the original system's Flux queries:
    /// `_time`, `_measurement`, tags, `_field`, `_value`.
    Narrow,
}

impl FromStr for RowShape {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "wide" => Ok(RowShape::Wide),
            "narrow" => Ok(RowShape::Narrow),
            _ => Err(Error::InvalidInput(format!(
                "row_shape `{}` is not known; use wide or narrow",
                s.escape_debug()
            ))),
        }
    }
}

/// A core input error as this crate's.
fn invalid(err: ldd_core::Error) -> Error {
    match err {
        ldd_core::Error::InvalidInput(message) => Error::InvalidInput(message),
        other => Error::InvalidInput(other.to_string()),
    }
}

/// Longest URL accepted, in characters.
pub const MAX_URL_CHARS: usize = 2048;

/// Everything needed to (re)connect to a database, secrets included.
///
/// It serializes with its secrets, because the server's state file must reconnect after a
/// restart: store it where secrets belong, and show [`SourceConfig::redacted`] instead.
/// `Debug` never prints a secret.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceConfig {
    /// Kind of database.
    #[serde(rename = "db_type")]
    pub kind: SourceKind,
    /// Server URL (`mongodb://[user:password@]host/...`, `http://host:8086`).
    pub url: String,
    /// InfluxDB 2.x/3.x API token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// InfluxDB organisation (Flux and v2 writes on 2.x).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
    /// MongoDB: the database used when a dataset names none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    /// InfluxDB 1.x user name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// InfluxDB 1.x password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// InfluxDB query language (default `auto`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<QueryLanguage>,
    /// InfluxDB record shape (default `wide`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row_shape: Option<RowShape>,
}

impl SourceConfig {
    /// A configuration for `url` without credentials or options.
    pub fn new(kind: SourceKind, url: impl Into<String>) -> Self {
        SourceConfig {
            kind,
            url: url.into(),
            token: None,
            org: None,
            database: None,
            username: None,
            password: None,
            language: None,
            row_shape: None,
        }
    }

    /// Checks the configuration without I/O; the message says what to fix (and never
    /// holds a secret).
    pub fn validate(&self) -> Result<()> {
        check_text("url", &self.url, MAX_URL_CHARS).map_err(invalid)?;
        let lower = self.url.to_ascii_lowercase();
        let shown = redact_url(&self.url);
        match self.kind {
            SourceKind::Mongo => {
                if !(lower.starts_with("mongodb://") || lower.starts_with("mongodb+srv://")) {
                    return Err(Error::InvalidInput(format!(
                        "a mongo url starts with mongodb:// or mongodb+srv://, got `{}`",
                        shown.escape_debug()
                    )));
                }
                let influx_only = [
                    ("token", self.token.is_some()),
                    ("username", self.username.is_some()),
                    ("password", self.password.is_some()),
                    ("language", self.language.is_some()),
                    ("row_shape", self.row_shape.is_some()),
                    ("org", self.org.is_some()),
                ];
                if let Some((name, _)) = influx_only.iter().find(|(_, given)| *given) {
                    return Err(Error::InvalidInput(format!(
                        "`{name}` is for influx connections; put MongoDB credentials in the url \
                         (mongodb://user:password@host/)"
                    )));
                }
            }
            SourceKind::Influx => {
                if !(lower.starts_with("http://") || lower.starts_with("https://")) {
                    return Err(Error::InvalidInput(format!(
                        "an influx url starts with http:// or https://, got `{}`",
                        shown.escape_debug()
                    )));
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
                check_text(name, v, max).map_err(invalid)?;
            }
        }
        Ok(())
    }

    /// Every secret of the configuration: token, password, and the URL's password.
    pub fn secrets(&self) -> Vec<&str> {
        let mut secrets: Vec<&str> = [&self.token, &self.password]
            .into_iter()
            .flatten()
            .map(String::as_str)
            .filter(|s| !s.is_empty())
            .collect();
        secrets.extend(url_password(&self.url).filter(|s| !s.is_empty()));
        secrets
    }

    /// `text` with every secret of this configuration replaced by [`REDACTED`]; for
    /// messages that may quote what a server or driver answered.
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for secret in self.secrets() {
            out = out.replace(secret, REDACTED);
        }
        out
    }

    /// `err` with every secret of this configuration replaced in its text. Variants that carry a
    /// driver's error keep it unless its text holds a secret; then only the scrubbed text
    /// is kept (as [`Error::Server`] with status 0, or 503 when it was retryable).
    pub fn scrub_error(&self, err: Error) -> Error {
        let scrub = |m: String| self.scrub(&m);
        match err {
            Error::InvalidInput(m) => Error::InvalidInput(scrub(m)),
            Error::NotFound(m) => Error::NotFound(scrub(m)),
            Error::Unsupported(m) => Error::Unsupported(scrub(m)),
            Error::Decode(m) => Error::Decode(scrub(m)),
            Error::Server {
                context,
                status,
                message,
            } => Error::Server {
                context: scrub(context),
                status,
                message: scrub(message),
            },
            // Without the backends' features every variant is matched above.
            #[allow(unreachable_patterns)]
            other => {
                let text = other.to_string();
                let clean = self.scrub(&text);
                if clean == text {
                    other
                } else {
                    // Status 0 is "not HTTP"; 503 keeps a retryable error retryable.
                    let status = if other.is_retryable() { 503 } else { 0 };
                    Error::Server {
                        context: clean,
                        status,
                        message: String::new(),
                    }
                }
            }
        }
    }

    /// A copy for display: secrets replaced by [`REDACTED`], the URL's password masked.
    pub fn redacted(&self) -> Self {
        let hide = |s: &Option<String>| s.as_ref().map(|_| REDACTED.to_owned());
        SourceConfig {
            url: redact_url(&self.url),
            token: hide(&self.token),
            password: hide(&self.password),
            ..self.clone()
        }
    }

    /// Whether a password is stored, as an option or in the URL.
    pub fn has_password(&self) -> bool {
        self.password.is_some() || url_password(&self.url).is_some()
    }

    /// The MongoDB client settings this configuration names (driver options at their
    /// defaults).
    #[cfg(feature = "mongo")]
    pub fn mongo_config(&self) -> crate::mongo::MongoConfig {
        crate::mongo::MongoConfig {
            url: self.url.clone(),
            database: self.database.clone(),
            ..Default::default()
        }
    }

    /// The InfluxDB client settings this configuration names (read options at their
    /// defaults).
    #[cfg(feature = "influx")]
    pub fn influx_config(&self) -> crate::influx::InfluxConfig {
        let mut config = crate::influx::InfluxConfig::new(self.url.clone());
        config.token = self.token.clone();
        config.org = self.org.clone();
        config.username = self.username.clone();
        config.password = self.password.clone();
        config.language = self.language.unwrap_or_default();
        config.row_shape = self.row_shape.unwrap_or_default();
        config
    }
}

impl fmt::Debug for SourceConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = self.redacted();
        f.debug_struct("SourceConfig")
            .field("kind", &shown.kind)
            .field("url", &shown.url)
            .field("token", &shown.token)
            .field("org", &shown.org)
            .field("database", &shown.database)
            .field("username", &shown.username)
            .field("password", &shown.password)
            .field("language", &shown.language)
            .field("row_shape", &shown.row_shape)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn influx() -> SourceConfig {
        let mut c = SourceConfig::new(SourceKind::Influx, "http://h:8086");
        c.token = Some("tok-s3cret".into());
        c
    }

    #[test]
    fn debug_redacted_and_scrub_never_show_secrets() {
        let mut c = influx();
        c.token = None;
        c.username = Some("admin".into());
        c.password = Some("pw-s3cret".into());
        let text = format!("{c:?} {}", serde_json::to_string(&c.redacted()).unwrap());
        assert!(!text.contains("s3cret"), "{text}");
        assert!(text.contains("admin"));
        assert_eq!(c.scrub("pw pw-s3cret leaked"), "pw <redacted> leaked");
        let m = SourceConfig::new(SourceKind::Mongo, "mongodb://u:p4ss@h/");
        assert_eq!(m.redacted().url, "mongodb://u:****@h/");
        assert_eq!(m.scrub("auth p4ss"), "auth <redacted>");
        assert!(m.has_password());
    }

    #[test]
    fn serde_keeps_the_state_file_shape() {
        let mut c = influx();
        c.language = Some(QueryLanguage::Flux);
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"db_type": "influx", "url": "http://h:8086",
                "token": "tok-s3cret", "language": "flux"})
        );
        assert_eq!(serde_json::from_value::<SourceConfig>(json).unwrap(), c);
    }

    #[test]
    fn validation_says_what_to_fix() {
        let bad = |c: SourceConfig| c.validate().unwrap_err().to_string();
        let mut c = influx();
        c.url = "mongodb://h".into();
        assert!(bad(c).contains("http://"));
        let mut c = SourceConfig::new(SourceKind::Mongo, "mongodb://h/");
        c.language = Some(QueryLanguage::Flux);
        assert!(bad(c).contains("`language` is for influx"));
        let mut c = influx();
        c.org = Some("o\nx".into());
        assert!(bad(c).contains("control characters"));
        influx().validate().unwrap();
        assert!("postgres".parse::<SourceKind>().is_err());
        assert_eq!("MongoDB".parse::<SourceKind>().unwrap(), SourceKind::Mongo);
        assert!("fluxx".parse::<QueryLanguage>().is_err());
        assert_eq!("narrow".parse::<RowShape>().unwrap(), RowShape::Narrow);
    }
}
