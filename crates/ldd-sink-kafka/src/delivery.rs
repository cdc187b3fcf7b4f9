//! Delivery reports: per-chunk tracking of acknowledged offsets, and the in-flight byte
//! budget that gives the engine backpressure.

use std::sync::atomic::{AtomicI32, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rdkafka::message::{DeliveryResult, Message};
use rdkafka::producer::ProducerContext;
use rdkafka::ClientContext;
use tokio::sync::{Notify, Semaphore};

/// Budget unit: one permit is one KiB of payload in flight.
pub(crate) const PERMIT_BYTES: usize = 1024;

/// Tracks the deliveries of one chunk attempt. The delivery callback runs once per message
/// on the producer's thread, so the common path is lock-free.
#[derive(Debug)]
pub(crate) struct ChunkTracker {
    pending: AtomicU64,
    acked: AtomicU64,
    failed: AtomicU64,
    first_offset: AtomicI64,
    last_offset: AtomicI64,
    partition: AtomicI32,
    first_error: Mutex<Option<String>>,
    done: Notify,
}

impl Default for ChunkTracker {
    fn default() -> Self {
        ChunkTracker {
            pending: AtomicU64::new(0),
            acked: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            first_offset: AtomicI64::new(i64::MAX),
            last_offset: AtomicI64::new(i64::MIN),
            partition: AtomicI32::new(-1),
            first_error: Mutex::new(None),
            done: Notify::new(),
        }
    }
}

/// The summary of a finished chunk attempt.
#[derive(Debug, Clone)]
pub(crate) struct TrackerSummary {
    pub(crate) acked: u64,
    pub(crate) first_offset: Option<i64>,
    pub(crate) last_offset: Option<i64>,
    pub(crate) partition: Option<i32>,
    pub(crate) first_error: Option<String>,
    pub(crate) failed: u64,
}

impl ChunkTracker {
    pub(crate) fn sent(&self) {
        self.pending.fetch_add(1, Ordering::AcqRel);
    }

    /// A message that was counted as sent but refused by the client before queueing.
    pub(crate) fn unsent(&self) {
        self.finish_one();
    }

    fn record(&self, result: &DeliveryResult<'_>) {
        match result {
            Ok(msg) => {
                let offset = msg.offset();
                self.first_offset.fetch_min(offset, Ordering::Relaxed);
                self.last_offset.fetch_max(offset, Ordering::Relaxed);
                self.partition.store(msg.partition(), Ordering::Relaxed);
                self.acked.fetch_add(1, Ordering::Relaxed);
            }
            Err((err, _)) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                let mut first = self.first_error.lock().unwrap_or_else(|p| p.into_inner());
                if first.is_none() {
                    *first = Some(err.to_string());
                }
            }
        }
        // AcqRel on `pending` publishes the updates above to whoever sees it reach zero.
        self.finish_one();
    }

    fn finish_one(&self) {
        if self.pending.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.done.notify_waiters();
        }
    }

    /// Waits until every sent message has a delivery report.
    pub(crate) async fn wait(&self) {
        loop {
            let notified = self.done.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.pending.load(Ordering::Acquire) == 0 {
                return;
            }
            notified.await;
        }
    }

    pub(crate) fn summary(&self) -> TrackerSummary {
        let acked = self.acked.load(Ordering::Acquire);
        let partition = self.partition.load(Ordering::Acquire);
        TrackerSummary {
            acked,
            first_offset: (acked > 0).then(|| self.first_offset.load(Ordering::Acquire)),
            last_offset: (acked > 0).then(|| self.last_offset.load(Ordering::Acquire)),
            partition: (partition >= 0).then_some(partition),
            first_error: self
                .first_error
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
            failed: self.failed.load(Ordering::Acquire),
        }
    }
}

/// Carried with each message to its delivery report.
#[derive(Debug)]
pub(crate) struct DeliveryToken {
    pub(crate) tracker: Arc<ChunkTracker>,
    pub(crate) permits: u32,
}

/// The producer context: routes each delivery report to its chunk and returns budget.
pub(crate) struct DeliveryContext {
    pub(crate) budget: Arc<Semaphore>,
}

impl ClientContext for DeliveryContext {}

impl ProducerContext for DeliveryContext {
    type DeliveryOpaque = Box<DeliveryToken>;

    fn delivery(&self, result: &DeliveryResult<'_>, token: Self::DeliveryOpaque) {
        self.budget.add_permits(token.permits as usize);
        token.tracker.record(result);
    }
}

/// Permits a payload of `len` bytes costs, capped by the whole budget so that any single
/// message can always be admitted.
pub(crate) fn permits_for(len: usize, budget_permits: usize) -> u32 {
    let wanted = len.div_ceil(PERMIT_BYTES).max(1);
    wanted.min(budget_permits).min(u32::MAX as usize) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permits_round_up_and_are_capped() {
        assert_eq!(permits_for(0, 100), 1);
        assert_eq!(permits_for(1, 100), 1);
        assert_eq!(permits_for(1025, 100), 2);
        assert_eq!(permits_for(10 << 20, 100), 100);
    }

    #[tokio::test]
    async fn wait_returns_once_everything_is_reported() {
        let tracker = Arc::new(ChunkTracker::default());
        tracker.wait().await; // nothing sent
        tracker.sent();
        tracker.sent();
        tracker.unsent();
        let t = tracker.clone();
        let waiter = tokio::spawn(async move { t.wait().await });
        tracker.unsent();
        waiter.await.unwrap();
        assert_eq!(tracker.summary().acked, 0);
    }
}
