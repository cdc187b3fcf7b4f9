//! How to reach a MongoDB (or MongoDB-wire) server.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::redact::redact_url;

/// MongoDB connection settings.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MongoConfig {
    /// Connection string, `mongodb://[user:password@]host:port/[db][?options]`.
    pub url: String,
    /// Default database for datasets that name none.
    pub database: Option<String>,
    /// Documents per cursor batch when reading.
    pub batch_size: u32,
    /// Connect timeout in milliseconds.
    pub connect_timeout_ms: u64,
    /// Server selection timeout in milliseconds.
    pub server_selection_timeout_ms: u64,
    /// Largest connection pool.
    pub max_pool_size: u32,
}

impl Default for MongoConfig {
    fn default() -> Self {
        MongoConfig {
            url: "mongodb://127.0.0.1:27017/".into(),
            database: None,
            batch_size: 4096,
            connect_timeout_ms: 10_000,
            server_selection_timeout_ms: 10_000,
            max_pool_size: 32,
        }
    }
}

impl MongoConfig {
    pub(crate) fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }

    pub(crate) fn server_selection_timeout(&self) -> Duration {
        Duration::from_millis(self.server_selection_timeout_ms)
    }
}

impl fmt::Debug for MongoConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MongoConfig")
            .field("url", &redact_url(&self.url))
            .field("database", &self.database)
            .field("batch_size", &self.batch_size)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show() {
        let cfg = MongoConfig {
            url: "mongodb://app:s3cret@db:27017/x".into(),
            ..Default::default()
        };
        let shown = format!("{cfg:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("app:****@db:27017"), "{shown}");
        assert_eq!(redact_url("mongodb://h:1/"), "mongodb://h:1/");
    }
}
