//! Connections by name, for distributed workers: a task names its connection, and each
//! worker resolves the name with its own settings, so that no URL, password or token ever
//! travels in a task.
//!
//! The format is the server's: a JSON array of objects with an `id` and the fields of
//! [`SourceConfig`], exactly the body of `POST /v1/connections`:
//!
//! ```
//! use ldd_sources::ConnectionCatalog;
//!
//! let catalog = ConnectionCatalog::from_json(r#"[
//!   {"id": "prod-mongo", "db_type": "mongo", "url": "mongodb://10.0.0.5:27017"},
//!   {"id": "metrics", "db_type": "influx", "url": "http://10.0.0.6:8086", "database": "telegraf"}
//! ]"#).unwrap();
//! assert_eq!(catalog.names(), ["metrics", "prod-mongo"]);
//! ```

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use ldd_core::task::{resolve_generator, SourceResolver, TaskSource};
use ldd_core::DataSource;
use serde::Deserialize;
use tokio::sync::Mutex;

use crate::config::SourceConfig;
use crate::connection::{connect, Connection};
use crate::error::{Error, Result};

/// The environment variable that holds a catalog's JSON when no file is given.
pub const CONNECTIONS_ENV: &str = "LDD_CONNECTIONS";

/// One named connection, as the server's connections are registered.
#[derive(Debug, Clone, Deserialize)]
struct NamedConnection {
    id: String,
    #[serde(flatten)]
    source: SourceConfig,
}

/// Named database connections; connects to each on first use and keeps the connection.
/// Implements [`SourceResolver`]: the generator needs no connection.
#[derive(Default)]
pub struct ConnectionCatalog {
    configs: BTreeMap<String, SourceConfig>,
    open: Mutex<BTreeMap<String, Arc<dyn Connection>>>,
}

impl std::fmt::Debug for ConnectionCatalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionCatalog")
            .field("names", &self.names())
            .finish()
    }
}

impl ConnectionCatalog {
    /// A catalog from its JSON text (validated: each entry as the server would check it;
    /// names must be unique). Error messages never hold a secret.
    pub fn from_json(text: &str) -> Result<Self> {
        let entries: Vec<NamedConnection> = serde_json::from_str(text).map_err(|e| {
            Error::InvalidInput(format!(
                "connections must be a JSON array of {{\"id\": ..., \"db_type\": ..., \"url\": ...}} \
                 objects: {e}"
            ))
        })?;
        let mut configs = BTreeMap::new();
        for entry in entries {
            ldd_core::text::check_text("connection id", &entry.id, 128)
                .map_err(|e| Error::InvalidInput(e.to_string()))?;
            entry
                .source
                .validate()
                .map_err(|e| Error::InvalidInput(format!("connection `{}`: {e}", entry.id)))?;
            if configs.insert(entry.id.clone(), entry.source).is_some() {
                return Err(Error::InvalidInput(format!(
                    "connection `{}` is defined twice",
                    entry.id
                )));
            }
        }
        Ok(ConnectionCatalog {
            configs,
            open: Mutex::new(BTreeMap::new()),
        })
    }

    /// A catalog from a file of JSON.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::InvalidInput(format!("reading connections from {}: {e}", path.display()))
        })?;
        Self::from_json(&text).map_err(|e| Error::InvalidInput(format!("{}: {e}", path.display())))
    }

    /// The catalog of [`CONNECTIONS_ENV`], empty when it is not set.
    pub fn from_env() -> Result<Self> {
        match std::env::var(CONNECTIONS_ENV) {
            Ok(text) => Self::from_json(&text)
                .map_err(|e| Error::InvalidInput(format!("{CONNECTIONS_ENV}: {e}"))),
            Err(_) => Ok(Self::default()),
        }
    }

    /// The configured names, sorted.
    pub fn names(&self) -> Vec<&str> {
        self.configs.keys().map(String::as_str).collect()
    }

    /// The connection named `name`, connecting on first use.
    pub async fn connection(&self, name: &str) -> Result<Arc<dyn Connection>> {
        let mut open = self.open.lock().await;
        if let Some(connection) = open.get(name) {
            return Ok(connection.clone());
        }
        let config = self.configs.get(name).ok_or_else(|| {
            Error::InvalidInput(format!(
                "no connection named `{name}` is configured here (configured: {}); add it to \
                 this worker's --connections file or {CONNECTIONS_ENV}",
                if self.configs.is_empty() {
                    "none".to_owned()
                } else {
                    self.names().join(", ")
                }
            ))
        })?;
        let connection = connect(config).await.map_err(|e| config.scrub_error(e))?;
        open.insert(name.to_owned(), connection.clone());
        Ok(connection)
    }
}

#[async_trait]
impl SourceResolver for ConnectionCatalog {
    async fn resolve(&self, task: &TaskSource) -> ldd_core::Result<Arc<dyn DataSource>> {
        if let Some(generator) = resolve_generator(task) {
            return generator;
        }
        let TaskSource::Dataset {
            connection,
            dataset,
        } = task
        else {
            return Err(ldd_core::Error::InvalidInput(format!(
                "unknown task source {}",
                task.describe()
            )));
        };
        let opened = self.connection(connection).await?;
        Ok(opened.open(dataset).await?)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn bad_catalogs_say_what_to_fix_without_secrets() {
        let twice = r#"[{"id":"a","db_type":"mongo","url":"mongodb://h"},
                        {"id":"a","db_type":"mongo","url":"mongodb://h"}]"#;
        let err = ConnectionCatalog::from_json(twice).unwrap_err();
        assert!(err.to_string().contains("defined twice"), "{err}");
        let bad_url = r#"[{"id":"a","db_type":"mongo","url":"http://u:hunter2@h"}]"#;
        let err = ConnectionCatalog::from_json(bad_url).unwrap_err();
        assert!(err.to_string().contains("connection `a`"), "{err}");
        assert!(!err.to_string().contains("hunter2"), "{err}");
        assert!(ConnectionCatalog::from_json("{}").is_err());
    }

    #[tokio::test]
    async fn an_unknown_name_lists_the_known_ones() {
        let catalog =
            ConnectionCatalog::from_json(r#"[{"id":"m","db_type":"mongo","url":"mongodb://h"}]"#)
                .unwrap();
        let err = catalog.connection("other").await.err().unwrap();
        assert!(err.to_string().contains("configured: m"), "{err}");
        let generator = TaskSource::Generator {
            config: ldd_core::GeneratorConfig::default(),
        };
        assert!(catalog.resolve(&generator).await.is_ok());
    }
}
