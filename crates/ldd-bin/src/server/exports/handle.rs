//! One export running in this process: its status channel, cancel token and the chunks it
//! committed, shared by the manager, the runner and the HTTP handlers.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use ldd_core::{CancellationToken, CommittedChunk};
use tokio::sync::{broadcast, watch};

use super::model::ExportStatus;

/// Chunk events a slow follower may fall behind by; beyond, it misses some and takes them
/// from the final manifest.
const CHUNK_EVENTS_BUFFERED: usize = 1024;

/// One export running in this process.
pub(crate) struct ExportHandle {
    /// Export id.
    pub(crate) id: String,
    cancel: CancellationToken,
    interrupted: AtomicBool,
    status: watch::Sender<ExportStatus>,
    /// Chunks this run committed, for followers that connect late.
    committed: Mutex<Vec<CommittedChunk>>,
    /// Each chunk as it commits, for followers already connected.
    chunks: broadcast::Sender<CommittedChunk>,
}

impl std::fmt::Debug for ExportHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExportHandle")
            .field("id", &self.id)
            .field("state", &self.current().state)
            .finish()
    }
}

impl ExportHandle {
    /// The handle of an export starting with `status`.
    pub(crate) fn new(id: String, status: ExportStatus) -> Self {
        ExportHandle {
            id,
            cancel: CancellationToken::new(),
            interrupted: AtomicBool::new(false),
            committed: Mutex::new(Vec::new()),
            chunks: broadcast::channel(CHUNK_EVENTS_BUFFERED).0,
            status: watch::channel(status).0,
        }
    }

    /// Marks the export as stopped by a shutdown (it resumes when the server is back).
    pub(crate) fn mark_interrupted(&self) {
        self.interrupted.store(true, Ordering::Relaxed);
    }

    /// Records a committed chunk and tells the followers.
    pub(crate) fn chunk_committed(&self, chunk: CommittedChunk) {
        self.committed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(chunk.clone());
        // No follower listening is fine.
        let _ = self.chunks.send(chunk);
    }

    /// The chunks committed so far and every one after: subscribe first, then take the
    /// list, so that no chunk falls between the two (one may come twice).
    pub(crate) fn follow_chunks(
        &self,
    ) -> (Vec<CommittedChunk>, broadcast::Receiver<CommittedChunk>) {
        let live = self.chunks.subscribe();
        let so_far = self
            .committed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        (so_far, live)
    }

    /// Follows the status as it changes.
    pub(crate) fn subscribe(&self) -> watch::Receiver<ExportStatus> {
        self.status.subscribe()
    }

    /// The status now.
    pub(crate) fn current(&self) -> ExportStatus {
        self.status.borrow().clone()
    }

    /// Changes the status (and wakes followers).
    pub(crate) fn update(&self, f: impl FnOnce(&mut ExportStatus)) {
        self.status.send_modify(f);
    }

    /// The token the engine watches.
    pub(crate) fn cancel_token(&self) -> CancellationToken {
        self.cancel.clone()
    }

    /// Whether the export was stopped by shutdown rather than by a user.
    pub(crate) fn was_interrupted(&self) -> bool {
        self.interrupted.load(Ordering::Relaxed)
    }

    /// Waits until the export reaches a final state and returns it.
    pub(crate) async fn finished(&self) -> ExportStatus {
        let mut rx = self.subscribe();
        loop {
            let status = rx.borrow_and_update().clone();
            if status.state.is_terminal() {
                return status;
            }
            if rx.changed().await.is_err() {
                return self.current();
            }
        }
    }
}

/// Now, RFC 3339 with milliseconds.
pub(crate) fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
