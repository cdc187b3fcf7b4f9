//! Options and controls of one export run.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::progress::{ExportEvent, ExportObserver};
use crate::error::{Error, Result};
use crate::format::{Format, DEFAULT_BATCH_BYTES};

/// How a failed chunk is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per chunk, including the first.
    pub max_attempts: u32,
    /// Wait before the second attempt; doubles for each later one.
    pub initial_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(200),
        }
    }
}

/// What the engine needs to know to run an export.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// The export id; a new UUID when absent.
    pub export_id: Option<String>,
    /// Payload format.
    pub format: Format,
    /// Target payload size of batched formats.
    pub batch_bytes: usize,
    /// Chunks worked on at once.
    pub workers: usize,
    /// Retry policy per chunk.
    pub retry: RetryPolicy,
    /// How often progress snapshots are reported.
    pub progress_interval: Duration,
    /// Number of each chunk's first attempt (1 for a new export). A resumed export starts
    /// above every attempt an earlier run may have left messages of, so that read-back, which
    /// takes only the attempt the manifest names, never counts those leftovers.
    pub first_attempt: u32,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions {
            export_id: None,
            format: Format::Json,
            batch_bytes: DEFAULT_BATCH_BYTES,
            workers: 4,
            retry: RetryPolicy::default(),
            progress_interval: Duration::from_millis(500),
            first_attempt: 1,
        }
    }
}

impl ExportOptions {
    /// Checks the options without I/O.
    pub fn validate(&self) -> Result<()> {
        if self.workers == 0 {
            return Err(Error::InvalidInput("workers must be at least 1".into()));
        }
        if self.first_attempt == 0
            || self
                .first_attempt
                .checked_add(self.retry.max_attempts)
                .is_none()
        {
            return Err(Error::InvalidInput(format!(
                "first_attempt {} is outside 1..{}",
                self.first_attempt,
                u32::MAX - self.retry.max_attempts
            )));
        }
        if self.retry.max_attempts == 0 {
            return Err(Error::InvalidInput(
                "retry max_attempts must be at least 1".into(),
            ));
        }
        if self.format.is_batched() && !(1024..=16 * 1024 * 1024).contains(&self.batch_bytes) {
            return Err(Error::InvalidInput(format!(
                "batch size {} bytes is outside 1 KiB..16 MiB",
                self.batch_bytes
            )));
        }
        if let Some(id) = &self.export_id {
            if id.is_empty() || id.len() > 128 || !id.chars().all(|c| c.is_ascii_graphic()) {
                return Err(Error::InvalidInput(
                    "export id must be 1-128 printable ASCII characters".into(),
                ));
            }
        }
        Ok(())
    }
}

/// Cancellation and observation of a running export.
#[derive(Clone, Default)]
pub struct ExportControl {
    /// Cancels the export; running chunks are aborted.
    pub cancel: CancellationToken,
    /// Receives events.
    pub observer: Option<Arc<dyn ExportObserver>>,
}

impl std::fmt::Debug for ExportControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExportControl")
            .field("cancelled", &self.cancel.is_cancelled())
            .field("observer", &self.observer.is_some())
            .finish()
    }
}

impl ExportControl {
    pub(crate) fn emit(&self, event: ExportEvent) {
        if let Some(observer) = &self.observer {
            observer.on_event(&event);
        }
    }
}
