//! Progress counters and the events an export reports while it runs.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::manifest::ChunkManifest;

/// A snapshot of an export's progress.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// Records sent so far (a failed attempt's records are taken back).
    pub records_done: u64,
    /// Records the plan expects.
    pub records_total: u64,
    /// Payload bytes sent so far.
    pub bytes_done: u64,
    /// Messages sent so far.
    pub messages_done: u64,
    /// Chunks committed.
    pub chunks_done: u64,
    /// Chunks in the plan.
    pub chunks_total: u64,
    /// Milliseconds since the export started running.
    pub elapsed_ms: u64,
    /// Average records per second so far.
    pub records_per_sec: f64,
    /// Estimated milliseconds left, once a rate is known.
    pub eta_ms: Option<u64>,
}

/// Something that happened during an export.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ExportEvent {
    /// Planning finished.
    Planned {
        /// The export's id (generated unless the options gave one).
        export_id: String,
        /// Chunks this run exports (all of the plan's, unless resuming).
        chunks: usize,
        /// Records this run exports.
        records: u64,
        /// Chunks in the whole plan.
        total_chunks: usize,
        /// Records counted in the whole dataset.
        total_records: u64,
        /// Partitions of the destination.
        partitions: u32,
        /// Strategy name.
        strategy: String,
    },
    /// A chunk was committed; durable state can record it for resume.
    ChunkCommitted(ChunkManifest),
    /// A chunk attempt failed and will be retried.
    ChunkRetrying {
        /// The chunk.
        chunk_id: u32,
        /// The attempt that failed.
        attempt: u32,
        /// Why.
        error: String,
    },
    /// A periodic progress snapshot.
    Progress(Progress),
}

/// Receives export events. Called from the engine's tasks: keep it quick.
pub trait ExportObserver: Send + Sync {
    /// One event.
    fn on_event(&self, event: &ExportEvent);
}

impl<F: Fn(&ExportEvent) + Send + Sync> ExportObserver for F {
    fn on_event(&self, event: &ExportEvent) {
        self(event)
    }
}

/// Shared counters the workers update and the reporter reads.
#[derive(Debug)]
pub(crate) struct Counters {
    pub(crate) records: AtomicU64,
    pub(crate) bytes: AtomicU64,
    pub(crate) messages: AtomicU64,
    pub(crate) chunks: AtomicU64,
    records_total: u64,
    chunks_total: u64,
    started: Instant,
}

impl Counters {
    pub(crate) fn new(records_total: u64, chunks_total: u64) -> Arc<Self> {
        Arc::new(Counters {
            records: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            messages: AtomicU64::new(0),
            chunks: AtomicU64::new(0),
            records_total,
            chunks_total,
            started: Instant::now(),
        })
    }

    pub(crate) fn add(&self, records: u64, bytes: u64, messages: u64) {
        self.records.fetch_add(records, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        self.messages.fetch_add(messages, Ordering::Relaxed);
    }

    pub(crate) fn take_back(&self, records: u64, bytes: u64, messages: u64) {
        self.records.fetch_sub(records, Ordering::Relaxed);
        self.bytes.fetch_sub(bytes, Ordering::Relaxed);
        self.messages.fetch_sub(messages, Ordering::Relaxed);
    }

    pub(crate) fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    pub(crate) fn snapshot(&self) -> Progress {
        let records_done = self.records.load(Ordering::Relaxed);
        let elapsed = self.started.elapsed();
        let secs = elapsed.as_secs_f64();
        let rate = if secs > 0.0 {
            records_done as f64 / secs
        } else {
            0.0
        };
        let left = self.records_total.saturating_sub(records_done);
        let eta_ms = (rate > 0.0).then(|| (left as f64 / rate * 1000.0) as u64);
        Progress {
            records_done,
            records_total: self.records_total,
            bytes_done: self.bytes.load(Ordering::Relaxed),
            messages_done: self.messages.load(Ordering::Relaxed),
            chunks_done: self.chunks.load(Ordering::Relaxed),
            chunks_total: self.chunks_total,
            elapsed_ms: elapsed.as_millis() as u64,
            records_per_sec: rate,
            eta_ms,
        }
    }
}
