//! Options and controls of one export run.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::progress::{ExportEvent, ExportObserver};
use crate::error::{Error, Result};
use crate::format::{Format, DEFAULT_BATCH_BYTES};

/// How a failed chunk is retried.
///
/// The wait before each retry doubles from `initial_backoff` up to `max_backoff`, and is then
/// drawn at random between half of it and all of it, so that chunks failing together (a
/// broker restart) do not all retry at the same moment.
///
/// ```
/// use std::time::Duration;
/// use ldd_core::RetryPolicy;
///
/// let policy = RetryPolicy::default();
/// let last = policy.backoff(RetryPolicy::MAX_ATTEMPTS - 2);
/// assert!(last <= policy.max_backoff && last >= policy.max_backoff / 2);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per chunk, including the first (1..=[`RetryPolicy::MAX_ATTEMPTS`]).
    pub max_attempts: u32,
    /// Wait before the second attempt; doubles for each later one.
    pub initial_backoff: Duration,
    /// The longest wait between two attempts.
    pub max_backoff: Duration,
}

impl RetryPolicy {
    /// The most attempts per chunk an export may ask for.
    pub const MAX_ATTEMPTS: u32 = 20;

    /// The wait before retry `retry` (0: before the second attempt).
    pub fn backoff(&self, retry: u32) -> Duration {
        let doubled = 2u32.checked_pow(retry).map_or(self.max_backoff, |factor| {
            self.initial_backoff.saturating_mul(factor)
        });
        let ceiling = doubled.min(self.max_backoff);
        let half = ceiling / 2;
        let spread = u64::try_from((ceiling - half).as_nanos()).unwrap_or(u64::MAX);
        half + Duration::from_nanos(fastrand::u64(0..=spread))
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(30),
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
        if !(1..=RetryPolicy::MAX_ATTEMPTS).contains(&self.retry.max_attempts) {
            return Err(Error::InvalidInput(format!(
                "attempts per chunk must be within 1..={}",
                RetryPolicy::MAX_ATTEMPTS
            )));
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
    /// Hands `event` to the observer, if any (for components that run an export outside
    /// the engine, such as a distributed coordinator).
    pub fn emit(&self, event: ExportEvent) {
        if let Some(observer) = &self.observer {
            observer.on_event(&event);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_its_cap_with_jitter_below_it() {
        let policy = RetryPolicy::default();
        for retry in 0..RetryPolicy::MAX_ATTEMPTS {
            let ceiling = policy
                .initial_backoff
                .saturating_mul(2u32.saturating_pow(retry))
                .min(policy.max_backoff);
            for _ in 0..50 {
                let wait = policy.backoff(retry);
                assert!(
                    wait >= ceiling / 2 && wait <= ceiling,
                    "retry {retry}: {wait:?} outside {:?}..={ceiling:?}",
                    ceiling / 2
                );
            }
        }
        // The most attempts an export may ask for wait at most (attempts - 1) x 30 s in all.
        let total: Duration = (0..RetryPolicy::MAX_ATTEMPTS - 1)
            .map(|r| policy.backoff(r))
            .sum();
        assert!(total <= policy.max_backoff * (RetryPolicy::MAX_ATTEMPTS - 1));
        // Huge retry numbers do not overflow.
        assert!(policy.backoff(u32::MAX) <= policy.max_backoff);
    }

    #[test]
    fn jitter_spreads_the_waits() {
        let policy = RetryPolicy::default();
        let waits: std::collections::HashSet<Duration> =
            (0..20).map(|_| policy.backoff(5)).collect();
        assert!(waits.len() > 1, "20 waits were all {waits:?}");
    }

    #[test]
    fn attempts_are_bounded() {
        let with = |max_attempts| ExportOptions {
            retry: RetryPolicy {
                max_attempts,
                ..Default::default()
            },
            ..Default::default()
        };
        assert!(with(0).validate().is_err());
        assert!(with(RetryPolicy::MAX_ATTEMPTS).validate().is_ok());
        assert!(with(RetryPolicy::MAX_ATTEMPTS + 1).validate().is_err());
    }
}
