//! Background exports: accept, run (bounded concurrency), follow, cancel, and stop them all
//! at shutdown. Live exports publish their status on a `watch` channel (progress, SSE);
//! the state file keeps every export's record.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ldd_core::CheckpointStore;
use tokio::sync::{Notify, Semaphore};

pub(crate) use super::handle::{now, ExportHandle};
use super::job::ExportJob;
use super::model::{ExportState, ExportStatus, Origin, ProgressView};
use super::runner;
use crate::server::config::ExportDefaults;
use crate::server::error::{ApiError, ApiResult};
use crate::server::metrics::Metrics;
use crate::server::registry::Registry;
use crate::server::store::Store;

/// A runtime of its own for export tasks: a CPU-heavy export (encoding, a generated
/// source) then never stalls the HTTP API, its timers or its I/O.
struct ExportRuntime(Option<tokio::runtime::Runtime>);

impl ExportRuntime {
    fn new(threads: usize) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("ldd-export")
            .enable_all()
            .build()?;
        Ok(ExportRuntime(Some(runtime)))
    }

    fn spawn(&self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        match &self.0 {
            Some(runtime) => {
                runtime.spawn(task);
            }
            None => {
                tokio::spawn(task);
            }
        }
    }
}

impl Drop for ExportRuntime {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which async contexts forbid; let it wind down alone.
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// Runs and tracks exports.
pub(crate) struct ExportManager {
    pub(crate) store: Store,
    pub(crate) registry: Arc<Registry>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) slots: Arc<Semaphore>,
    group: Option<String>,
    live: Mutex<HashMap<String, Arc<ExportHandle>>>,
    idle: Notify,
    closing: AtomicBool,
    runtime: ExportRuntime,
}

impl ExportManager {
    /// A manager running at most `max_concurrent` exports at once, on a runtime with a
    /// thread per default worker of each (so progress reporting always finds a thread).
    pub(crate) fn new(
        store: Store,
        registry: Arc<Registry>,
        metrics: Arc<Metrics>,
        max_concurrent: usize,
        workers: usize,
        group: Option<String>,
    ) -> std::io::Result<Self> {
        let threads = max_concurrent
            .max(1)
            .saturating_mul(workers.max(1))
            .saturating_add(1)
            .clamp(2, 64);
        Ok(ExportManager {
            store,
            registry,
            metrics,
            slots: Arc::new(Semaphore::new(max_concurrent.max(1))),
            group,
            live: Mutex::new(HashMap::new()),
            idle: Notify::new(),
            closing: AtomicBool::new(false),
            runtime: ExportRuntime::new(threads)?,
        })
    }

    fn live_map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<ExportHandle>>> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The live handle of a running export.
    pub(crate) fn live(&self, id: &str) -> Option<Arc<ExportHandle>> {
        self.live_map().get(id).cloned()
    }

    /// New and resumed exports are refused once shutdown has begun.
    fn refuse_when_closing(&self) -> ApiResult<()> {
        if self.closing.load(Ordering::Relaxed) {
            return Err(ApiError::Unavailable(
                "the server is shutting down; retry on the next start".into(),
            ));
        }
        Ok(())
    }

    /// Accepts an export and starts it in the background.
    pub(crate) async fn submit(self: &Arc<Self>, job: ExportJob) -> ApiResult<Arc<ExportHandle>> {
        self.refuse_when_closing()?;
        // Fail fast on an unknown connection, before anything is recorded.
        self.registry.info(&job.request.connection)?;
        let taken_message = format!(
            "export id `{}` is taken; choose another or leave export_id out",
            job.id
        );
        let taken = move || ApiError::Conflict(taken_message.clone());
        if self.store.export_exists(&job.id).await? {
            return Err(taken());
        }
        let status = ExportStatus {
            id: job.id.clone(),
            origin: job.origin,
            state: ExportState::Queued,
            connection: job.request.connection.clone(),
            dataset: job.spec.display_name(),
            topic: job.sink.topic.clone(),
            request: job.request.clone(),
            progress: ProgressView::default(),
            plan: None,
            error: None,
            error_cause: None,
            warnings: Vec::new(),
            created_at: now(),
            started_at: None,
            finished_at: None,
            manifest: None,
        };
        self.launch(job, status, taken).await
    }

    /// Runs an interrupted, failed or cancelled export again from where it stopped: only
    /// the chunks it did not commit, under attempt numbers no earlier run used.
    pub(crate) async fn resume(
        self: &Arc<Self>,
        id: &str,
        defaults: &ExportDefaults,
    ) -> ApiResult<Arc<ExportHandle>> {
        self.refuse_when_closing()?;
        let running = || {
            ApiError::Conflict(format!(
                "export `{id}` is running; wait for it or cancel it"
            ))
        };
        if self.live(id).is_some() {
            return Err(running());
        }
        let mut status = self
            .store
            .get_export(id)
            .await?
            .ok_or_else(|| unknown_export(id))?;
        if !matches!(
            status.state,
            ExportState::Interrupted | ExportState::Failed | ExportState::Cancelled
        ) {
            return Err(ApiError::Conflict(format!(
                "export `{id}` is {}; only interrupted, failed or cancelled exports resume",
                status.state.as_str()
            )));
        }
        let point = self
            .store
            .checkpoints()
            .export(id)
            .load()
            .await
            .map_err(|e| ApiError::from_core("reading the checkpoint", e))?
            .ok_or_else(|| {
            ApiError::Conflict(format!(
                "export `{id}` stopped before it had a plan: nothing to resume; start it again with POST /v1/exports"
            ))
        })?;
        let job = ExportJob::build(status.request.clone(), defaults, status.origin)?;
        self.registry.info(&job.request.connection)?;
        tracing::info!(
            "export {id}: resuming, {} of {} chunks already committed, {} in doubt",
            point.committed.len(),
            point.export.plan.chunks.len(),
            point.in_doubt.len()
        );
        status.state = ExportState::Queued;
        status.error = None;
        status.error_cause = None;
        status.warnings = Vec::new();
        status.started_at = None;
        status.finished_at = None;
        status.manifest = None;
        self.launch(job, status, running).await
    }

    /// Records a queued export and starts it on the export runtime.
    async fn launch(
        self: &Arc<Self>,
        job: ExportJob,
        status: ExportStatus,
        taken: impl Fn() -> ApiError,
    ) -> ApiResult<Arc<ExportHandle>> {
        let handle = Arc::new(ExportHandle::new(job.id.clone(), status.clone()));
        {
            let mut live = self.live_map();
            if live.contains_key(&job.id) {
                return Err(taken());
            }
            live.insert(job.id.clone(), handle.clone());
        }
        if let Err(err) = self.store.save_export(&status).await {
            self.live_map().remove(&job.id);
            return Err(err.into());
        }
        self.metrics.export_started(match job.origin {
            Origin::V1 => "v1",
            Origin::Legacy => "legacy",
        });
        tracing::info!(
            "export {} accepted: {} from connection `{}` to topic `{}`",
            job.id,
            status.dataset,
            status.connection,
            status.topic
        );
        let (manager, h) = (self.clone(), handle.clone());
        self.runtime.spawn(async move {
            runner::run(&manager.run_context(), &h, job).await;
            manager.live_map().remove(&h.id);
            manager.idle.notify_waiters();
        });
        Ok(handle)
    }

    /// One export: live status when it runs here, else the stored record.
    pub(crate) async fn get(&self, id: &str) -> ApiResult<ExportStatus> {
        if let Some(handle) = self.live(id) {
            return Ok(handle.current());
        }
        self.store
            .get_export(id)
            .await?
            .ok_or_else(|| unknown_export(id))
    }

    /// Exports, newest first (live ones with their current progress), without manifests.
    pub(crate) async fn list(
        &self,
        state: Option<ExportState>,
        limit: usize,
    ) -> ApiResult<Vec<ExportStatus>> {
        let stored = self.store.list_exports(state, limit).await?;
        Ok(stored
            .into_iter()
            .map(|s| match self.live(&s.id) {
                Some(h) => h.current().summary(),
                None => s,
            })
            .filter(|s| state.is_none_or(|st| s.state == st))
            .collect())
    }

    /// Asks a running export to stop; it ends as `cancelled`.
    pub(crate) async fn cancel(&self, id: &str) -> ApiResult<ExportStatus> {
        if let Some(handle) = self.live(id) {
            let status = handle.current();
            if !status.state.is_terminal() {
                tracing::info!("export {id}: cancel requested");
                handle.cancel_token().cancel();
                return Ok(status);
            }
        }
        match self.store.get_export(id).await? {
            Some(s) => Err(ApiError::Conflict(format!(
                "export `{id}` already ended as {}; nothing to cancel",
                s.state.as_str()
            ))),
            None => Err(unknown_export(id)),
        }
    }

    /// Stops accepting exports and cancels every running one; they end as `interrupted`.
    pub(crate) fn begin_shutdown(&self) {
        self.closing.store(true, Ordering::Relaxed);
        for handle in self.live_map().values() {
            handle.mark_interrupted();
            handle.cancel_token().cancel();
        }
    }

    /// Waits until no export runs, at most `timeout`; false when some still run.
    pub(crate) async fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            // Register before checking, so a notification in between is not lost.
            notified.as_mut().enable();
            if self.live_map().is_empty() {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.live_map().is_empty();
            }
        }
    }
}

impl ExportManager {
    /// What the runner of one export needs from the manager.
    fn run_context(&self) -> Arc<runner::RunContext> {
        Arc::new(runner::RunContext {
            store: self.store.clone(),
            registry: self.registry.clone(),
            metrics: self.metrics.clone(),
            slots: self.slots.clone(),
            group: self.group.clone(),
        })
    }
}

/// The 404 of an unknown export id.
pub(crate) fn unknown_export(id: &str) -> ApiError {
    ApiError::NotFound(format!(
        "no export `{}`; list them with GET /v1/exports",
        crate::server::validate::truncate(id, 128).escape_debug()
    ))
}
