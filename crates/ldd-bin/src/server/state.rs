//! The state every handler shares.

use std::sync::Arc;

use anyhow::Context as _;

use super::config::ServerConfig;
use super::connections::{default_factory, ConnectionFactory};
use super::exports::manager::now;
use super::exports::ExportManager;
use super::metrics::Metrics;
use super::registry::Registry;
use super::store::Store;

/// Configuration, state file, connections, exports and metrics; cheap to clone.
#[derive(Clone)]
pub(crate) struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    config: ServerConfig,
    store: Store,
    registry: Arc<Registry>,
    exports: Arc<ExportManager>,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("config", &self.inner.config)
            .field("store", &self.inner.store)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// Opens the state file and loads the connections; connections reach the real
    /// databases through [`build_connection`](super::connections::build_connection).
    pub(crate) async fn open(config: ServerConfig) -> anyhow::Result<Self> {
        Self::with_connection_factory(config, default_factory()).await
    }

    /// Like [`AppState::open`], with connections built by `factory` (tests inject fakes).
    pub(crate) async fn with_connection_factory(
        config: ServerConfig,
        factory: ConnectionFactory,
    ) -> anyhow::Result<Self> {
        let dir = config.state_dir.clone();
        let store = tokio::task::spawn_blocking(move || Store::open(&dir))
            .await
            .context("opening the state file")??;
        let interrupted = store.interrupt_unfinished(&now()).await?;
        if !interrupted.is_empty() {
            tracing::warn!(
                "{} export(s) were still running when the server last stopped and are now marked interrupted: {}",
                interrupted.len(),
                interrupted.join(", ")
            );
        }
        let registry = Arc::new(Registry::new(factory));
        for (spec, created_at) in store.load_connections().await? {
            registry.insert(spec, created_at, None);
        }
        let metrics = Arc::new(Metrics::new());
        let exports = Arc::new(
            ExportManager::new(
                store.clone(),
                registry.clone(),
                metrics.clone(),
                config.exports.max_concurrent,
                config.exports.workers,
                config.exports.group.clone(),
            )
            .context("starting the export runtime")?,
        );
        Ok(AppState {
            inner: Arc::new(Inner {
                config,
                store,
                registry,
                exports,
                metrics,
            }),
        })
    }

    /// Connects the stored connections in the background; one whose server is down stays
    /// listed and is retried on first use.
    pub(crate) fn warm_up(&self) {
        tokio::spawn(self.inner.registry.clone().warm_up());
    }

    /// The configuration.
    pub(crate) fn config(&self) -> &ServerConfig {
        &self.inner.config
    }

    /// The state file.
    pub(crate) fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The registered connections.
    pub(crate) fn registry(&self) -> &Arc<Registry> {
        &self.inner.registry
    }

    /// The exports.
    pub(crate) fn exports(&self) -> &Arc<ExportManager> {
        &self.inner.exports
    }

    /// The metrics.
    pub(crate) fn metrics(&self) -> &Arc<Metrics> {
        &self.inner.metrics
    }
}
