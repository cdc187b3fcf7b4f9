//! The registered connections, by id, each connected lazily and at most once at a time.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};

use ldd_sources::Connection;

use super::connections::{ConnectionFactory, ConnectionInfo, ConnectionSpec, ConnectionStatus};
use super::error::{ApiError, ApiResult};

struct Entry {
    spec: ConnectionSpec,
    created_at: String,
    /// Held across the connect call so only one attempt runs at a time (an async mutex).
    live: tokio::sync::Mutex<Option<Arc<dyn Connection>>>,
    status: Mutex<ConnectionStatus>,
}

impl Entry {
    fn status(&self) -> ConnectionStatus {
        self.status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn set_status(&self, status: ConnectionStatus) {
        *self.status.lock().unwrap_or_else(|p| p.into_inner()) = status;
    }
}

/// The registered connections, by id.
pub(crate) struct Registry {
    entries: RwLock<BTreeMap<String, Arc<Entry>>>,
    factory: ConnectionFactory,
}

impl Registry {
    /// An empty registry that connects with `factory`.
    pub(crate) fn new(factory: ConnectionFactory) -> Self {
        Registry {
            entries: RwLock::new(BTreeMap::new()),
            factory,
        }
    }

    fn entry(&self, id: &str) -> Option<Arc<Entry>> {
        self.entries
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
    }

    /// Connects to a spec's database without registering it.
    pub(crate) async fn connect(&self, spec: &ConnectionSpec) -> ApiResult<Arc<dyn Connection>> {
        (self.factory)(spec.clone()).await
    }

    /// Registers (or replaces) a connection, live or to be connected lazily.
    pub(crate) fn insert(
        &self,
        spec: ConnectionSpec,
        created_at: String,
        live: Option<Arc<dyn Connection>>,
    ) {
        let status = if live.is_some() {
            ConnectionStatus::Active
        } else {
            ConnectionStatus::Pending
        };
        let entry = Arc::new(Entry {
            spec: spec.clone(),
            created_at,
            live: tokio::sync::Mutex::new(live),
            status: Mutex::new(status),
        });
        self.entries
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(spec.id, entry);
    }

    /// Whether the id is registered.
    pub(crate) fn contains(&self, id: &str) -> bool {
        self.entry(id).is_some()
    }

    /// Removes a connection; false when it was not registered.
    pub(crate) fn remove(&self, id: &str) -> bool {
        self.entries
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id)
            .is_some()
    }

    /// The public view of every connection, by id.
    pub(crate) fn list(&self) -> Vec<ConnectionInfo> {
        let entries: Vec<Arc<Entry>> = self
            .entries
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        entries
            .iter()
            .map(|e| e.spec.info(&e.created_at, &e.status()))
            .collect()
    }

    /// The public view of one connection.
    pub(crate) fn info(&self, id: &str) -> ApiResult<ConnectionInfo> {
        let entry = self.entry(id).ok_or_else(|| unknown_connection(id))?;
        Ok(entry.spec.info(&entry.created_at, &entry.status()))
    }

    /// The registration of one connection (with secrets; for building requests only).
    pub(crate) fn spec(&self, id: &str) -> ApiResult<ConnectionSpec> {
        self.entry(id)
            .map(|e| e.spec.clone())
            .ok_or_else(|| unknown_connection(id))
    }

    /// The live connection, connecting first when needed.
    pub(crate) async fn connection(&self, id: &str) -> ApiResult<Arc<dyn Connection>> {
        let entry = self.entry(id).ok_or_else(|| unknown_connection(id))?;
        let mut live = entry.live.lock().await;
        if let Some(connection) = live.as_ref() {
            return Ok(connection.clone());
        }
        match (self.factory)(entry.spec.clone()).await {
            Ok(connection) => {
                *live = Some(connection.clone());
                entry.set_status(ConnectionStatus::Active);
                Ok(connection)
            }
            Err(err) => {
                entry.set_status(ConnectionStatus::Unavailable(err.public_message()));
                Err(err)
            }
        }
    }

    /// Tries to connect every registered connection that is not connected yet (at start);
    /// failures are recorded in the status and retried on the next request.
    pub(crate) async fn warm_up(self: Arc<Self>) {
        let ids: Vec<String> = self
            .entries
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .cloned()
            .collect();
        for id in ids {
            if let Err(err) = self.connection(&id).await {
                tracing::warn!("connection `{id}` is not available yet: {err}");
            }
        }
    }
}

/// The 404 of an unknown connection id.
pub(crate) fn unknown_connection(id: &str) -> ApiError {
    ApiError::NotFound(format!(
        "no connection `{}` is registered; list them with GET /v1/connections and register \
         one with POST /v1/connections (or POST /db-connections/register)",
        id.escape_debug()
    ))
}
