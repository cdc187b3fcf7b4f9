//! Delivery reports: per-chunk tracking of acknowledged offsets, and the in-flight byte
//! budget that gives the engine backpressure.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rdkafka::message::{DeliveryResult, Message};
use rdkafka::producer::ProducerContext;
use rdkafka::ClientContext;
use tokio::sync::{Notify, Semaphore};

/// Budget unit: one permit is one KiB of payload in flight.
pub(crate) const PERMIT_BYTES: usize = 1024;

/// What the delivery callback learns about one chunk attempt.
#[derive(Debug, Default)]
struct TrackerState {
    acked: u64,
    first_offset: Option<i64>,
    last_offset: Option<i64>,
    partition: Option<i32>,
    first_error: Option<String>,
    failed: u64,
}

/// Tracks the deliveries of one chunk attempt.
#[derive(Debug, Default)]
pub(crate) struct ChunkTracker {
    pending: AtomicU64,
    state: Mutex<TrackerState>,
    done: Notify,
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
        {
            let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
            match result {
                Ok(msg) => {
                    st.acked += 1;
                    let offset = msg.offset();
                    st.first_offset = Some(st.first_offset.map_or(offset, |f| f.min(offset)));
                    st.last_offset = Some(st.last_offset.map_or(offset, |l| l.max(offset)));
                    st.partition = Some(msg.partition());
                }
                Err((err, _)) => {
                    st.failed += 1;
                    if st.first_error.is_none() {
                        st.first_error = Some(err.to_string());
                    }
                }
            }
        }
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
        let st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        TrackerSummary {
            acked: st.acked,
            first_offset: st.first_offset,
            last_offset: st.last_offset,
            partition: st.partition,
            first_error: st.first_error.clone(),
            failed: st.failed,
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
