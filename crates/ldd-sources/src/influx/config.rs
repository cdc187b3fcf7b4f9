//! Configuration of an InfluxDB connection.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use crate::config::{QueryLanguage, RowShape};
use crate::error::{Error, Result};

/// Default rows per chunk of a `chunked=true` InfluxQL response (and records per batch of a
/// Flux read). Each chunk is one JSON document parsed whole: at 10,000 rows an export of
/// 1M points peaked at 240 MB and spent 0.6 s in page faults; at 1,000 it peaks at 48 MB and
/// runs faster, with the server's work unchanged.
pub const DEFAULT_CHUNK_SIZE: usize = 1_000;
/// Default request timeout, in seconds.
pub const DEFAULT_REQUEST_TIMEOUT_SECS: u64 = 120;
/// Default lines per write request of [`load_generated`](crate::Connection::load_generated).
pub const DEFAULT_WRITE_BATCH_LINES: usize = 20_000;

/// How to reach and read an InfluxDB server.
///
/// Credentials: `token` for InfluxDB 2.x/3.x (`Authorization: Token ...`), or
/// `username`/`password` for 1.x (HTTP basic auth; sent to Flux as the `username:password`
/// token 1.8 expects). `Debug` never prints either secret; [`InfluxConfig::redacted`] gives a
/// copy without them (serialization includes them, so store it where secrets belong).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InfluxConfig {
    /// Base URL of the server, e.g. `http://127.0.0.1:8086` (no credentials in it).
    pub url: String,
    /// API token (InfluxDB 2.x/3.x).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// User name (InfluxDB 1.x with authentication enabled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Password of `username`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// Organisation, sent with Flux queries and v2 writes (InfluxDB 2.x).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
    /// Query language: `auto` (default), `influxql` or `flux`.
    #[serde(default)]
    pub language: QueryLanguage,
    /// Rows per chunk of a `chunked=true` InfluxQL response, and records per batch of a
    /// Flux read (default 1000). Bounds the memory of one read.
    #[serde(default = "default_chunk_size")]
    pub chunk_size: usize,
    /// Seconds to wait for the server to answer a request, and, while streaming a
    /// response, for its next piece (default 120).
    #[serde(default = "default_request_timeout_secs")]
    pub request_timeout_secs: u64,
    /// `wide` (default: one record per point) or `narrow` (one record per field value).
    #[serde(default)]
    pub row_shape: RowShape,
    /// Lines of line protocol per write request when loading generated data (default 20000).
    #[serde(default = "default_write_batch_lines")]
    pub write_batch_lines: usize,
}

fn default_chunk_size() -> usize {
    DEFAULT_CHUNK_SIZE
}

fn default_request_timeout_secs() -> u64 {
    DEFAULT_REQUEST_TIMEOUT_SECS
}

fn default_write_batch_lines() -> usize {
    DEFAULT_WRITE_BATCH_LINES
}

impl InfluxConfig {
    /// A configuration for `url` with every other setting at its default.
    pub fn new(url: impl Into<String>) -> Self {
        InfluxConfig {
            url: url.into(),
            token: None,
            username: None,
            password: None,
            org: None,
            language: QueryLanguage::Auto,
            chunk_size: DEFAULT_CHUNK_SIZE,
            request_timeout_secs: DEFAULT_REQUEST_TIMEOUT_SECS,
            row_shape: RowShape::Wide,
            write_batch_lines: DEFAULT_WRITE_BATCH_LINES,
        }
    }

    /// The request timeout as a duration.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }

    /// A copy without the token and password (for logs, listings and API answers).
    pub fn redacted(&self) -> Self {
        InfluxConfig {
            token: self.token.as_ref().map(|_| "<redacted>".into()),
            password: self.password.as_ref().map(|_| "<redacted>".into()),
            ..self.clone()
        }
    }

    /// Checks the configuration without I/O; the message says what to fix.
    pub fn validate(&self) -> Result<()> {
        self.parsed_url()?;
        if self.token.is_some() && (self.username.is_some() || self.password.is_some()) {
            return Err(Error::InvalidInput(
                "give either an InfluxDB token (2.x/3.x) or a username and password (1.x), not both"
                    .into(),
            ));
        }
        if self.username.is_some() != self.password.is_some() {
            return Err(Error::InvalidInput(
                "InfluxDB username and password go together; give both or neither".into(),
            ));
        }
        if matches!(&self.token, Some(t) if t.is_empty()) {
            return Err(Error::InvalidInput(
                "the InfluxDB token is empty; remove it or give the token".into(),
            ));
        }
        if !(1..=1_000_000).contains(&self.chunk_size) {
            return Err(Error::InvalidInput(format!(
                "InfluxDB chunk_size {} is outside 1..=1000000",
                self.chunk_size
            )));
        }
        if self.request_timeout_secs == 0 {
            return Err(Error::InvalidInput(
                "InfluxDB request_timeout_secs must be at least 1".into(),
            ));
        }
        if !(1..=1_000_000).contains(&self.write_batch_lines) {
            return Err(Error::InvalidInput(format!(
                "InfluxDB write_batch_lines {} is outside 1..=1000000",
                self.write_batch_lines
            )));
        }
        Ok(())
    }

    /// The URL, parsed and checked.
    pub(crate) fn parsed_url(&self) -> Result<reqwest::Url> {
        let url = reqwest::Url::parse(&self.url).map_err(|e| {
            Error::InvalidInput(format!(
                "InfluxDB url `{}` is not a URL ({e}); give e.g. http://127.0.0.1:8086",
                self.url
            ))
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Error::InvalidInput(format!(
                "InfluxDB url must start with http:// or https://, got `{}://`",
                url.scheme()
            )));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Error::InvalidInput(
                "put InfluxDB credentials in username/password or token, not in the url".into(),
            ));
        }
        if url.host_str().is_none() {
            return Err(Error::InvalidInput(format!(
                "InfluxDB url `{}` has no host",
                self.url
            )));
        }
        Ok(url)
    }
}

impl fmt::Debug for InfluxConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secret = |s: &Option<String>| s.as_ref().map(|_| "<redacted>");
        f.debug_struct("InfluxConfig")
            .field("url", &self.url)
            .field("token", &secret(&self.token))
            .field("username", &self.username)
            .field("password", &secret(&self.password))
            .field("org", &self.org)
            .field("language", &self.language)
            .field("chunk_size", &self.chunk_size)
            .field("request_timeout_secs", &self.request_timeout_secs)
            .field("row_shape", &self.row_shape)
            .field("write_batch_lines", &self.write_batch_lines)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_unknown_fields() {
        let cfg: InfluxConfig = serde_json::from_str(r#"{"url":"http://h:8086"}"#).unwrap();
        assert_eq!(cfg, InfluxConfig::new("http://h:8086"));
        assert_eq!(cfg.chunk_size, 1_000);
        assert_eq!(cfg.language, QueryLanguage::Auto);
        assert_eq!(cfg.row_shape, RowShape::Wide);
        let err = serde_json::from_str::<InfluxConfig>(r#"{"url":"http://h","tokn":"x"}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("tokn"), "{err}");
        let cfg: InfluxConfig =
            serde_json::from_str(r#"{"url":"http://h","language":"flux","row_shape":"narrow"}"#)
                .unwrap();
        assert_eq!(cfg.language, QueryLanguage::Flux);
        assert_eq!(cfg.row_shape, RowShape::Narrow);
    }

    #[test]
    fn debug_never_prints_secrets() {
        let mut cfg = InfluxConfig::new("http://h:8086");
        cfg.token = Some("s3cr3t-token".into());
        let text = format!("{cfg:?}");
        assert!(!text.contains("s3cr3t"), "{text}");
        cfg.token = None;
        cfg.username = Some("admin".into());
        cfg.password = Some("hunter2".into());
        let text = format!("{cfg:?} {:?}", cfg.redacted());
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("admin"));
    }

    #[test]
    fn validation_says_what_to_fix() {
        let bad = |cfg: InfluxConfig| cfg.validate().unwrap_err().to_string();
        assert!(bad(InfluxConfig::new("localhost:8086")).contains("http://"));
        assert!(bad(InfluxConfig::new("not a url")).contains("not a URL"));
        assert!(bad(InfluxConfig::new("http://u:p@h:8086")).contains("credentials"));
        let mut cfg = InfluxConfig::new("http://h:8086");
        cfg.token = Some("t".into());
        cfg.username = Some("u".into());
        cfg.password = Some("p".into());
        assert!(bad(cfg).contains("not both"));
        let mut cfg = InfluxConfig::new("http://h:8086");
        cfg.username = Some("u".into());
        assert!(bad(cfg).contains("go together"));
        let mut cfg = InfluxConfig::new("http://h:8086");
        cfg.chunk_size = 0;
        assert!(bad(cfg).contains("chunk_size"));
        InfluxConfig::new("https://h:8086/").validate().unwrap();
    }
}
