//! A [`Sink`] wrapper that times every chunk attempt from open to commit and tells a
//! [`ChunkTimer`]: how a service puts chunk durations and failures into its metrics
//! without the sink knowing about them.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use ldd_core::testing::MemorySink;
//! use ldd_core::timed_sink::{ChunkTimer, TimedSink};
//!
//! struct Log;
//! impl ChunkTimer for Log {
//!     fn attempt_committed(&self, took: Duration) { println!("chunk took {took:?}"); }
//!     fn attempt_failed(&self) { println!("a chunk attempt failed"); }
//! }
//! let sink = TimedSink::new(Arc::new(MemorySink::new(4)), Arc::new(Log));
//! # let _ = sink;
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::manifest::ChunkManifest;
use crate::sink::{ChunkContext, ChunkDelivery, ChunkWriter, Delivery, OutMessage, Sink};

/// Told how each chunk attempt of a [`TimedSink`] ended.
pub trait ChunkTimer: Send + Sync {
    /// An attempt committed, `took` after its chunk was opened.
    fn attempt_committed(&self, took: Duration);
    /// An attempt failed to commit or was aborted.
    fn attempt_failed(&self);
}

/// Passes everything to the inner sink and reports chunk durations and failures.
pub struct TimedSink {
    inner: Arc<dyn Sink>,
    timer: Arc<dyn ChunkTimer>,
}

impl TimedSink {
    /// Wraps `inner`, reporting to `timer`.
    pub fn new(inner: Arc<dyn Sink>, timer: Arc<dyn ChunkTimer>) -> Self {
        TimedSink { inner, timer }
    }
}

#[async_trait]
impl Sink for TimedSink {
    fn destination(&self) -> String {
        self.inner.destination()
    }

    async fn partition_count(&self) -> crate::Result<u32> {
        self.inner.partition_count().await
    }

    fn delivery(&self) -> Delivery {
        self.inner.delivery()
    }

    fn writer_slots(&self, workers: usize) -> usize {
        self.inner.writer_slots(workers)
    }

    async fn prepare(&self, export_id: &str, slots: usize) -> crate::Result<()> {
        self.inner.prepare(export_id, slots).await
    }

    async fn chunk_visible(&self, export_id: &str, chunk: &ChunkManifest) -> crate::Result<bool> {
        self.inner.chunk_visible(export_id, chunk).await
    }

    async fn open_chunk(
        &self,
        slot: usize,
        chunk: &ChunkContext,
    ) -> crate::Result<Box<dyn ChunkWriter>> {
        let started = Instant::now();
        let inner = self.inner.open_chunk(slot, chunk).await?;
        Ok(Box::new(TimedWriter {
            inner,
            started,
            timer: self.timer.clone(),
        }))
    }
}

struct TimedWriter {
    inner: Box<dyn ChunkWriter>,
    started: Instant,
    timer: Arc<dyn ChunkTimer>,
}

#[async_trait]
impl ChunkWriter for TimedWriter {
    async fn send(&mut self, messages: Vec<OutMessage>) -> crate::Result<()> {
        self.inner.send(messages).await
    }

    async fn flush(&mut self) -> crate::Result<ChunkDelivery> {
        // A failed flush is counted by the abort that follows it.
        self.inner.flush().await
    }

    async fn commit(self: Box<Self>) -> crate::Result<()> {
        let (started, timer) = (self.started, self.timer.clone());
        timed(started, &timer, self.inner.commit().await)
    }

    async fn commit_with(self: Box<Self>, entry: &crate::ChunkManifest) -> crate::Result<()> {
        let (started, timer) = (self.started, self.timer.clone());
        timed(started, &timer, self.inner.commit_with(entry).await)
    }

    async fn abort(self: Box<Self>) -> crate::Result<()> {
        self.timer.attempt_failed();
        self.inner.abort().await
    }
}

/// Reports a commit's outcome to the timer and passes it on.
fn timed(
    started: Instant,
    timer: &Arc<dyn ChunkTimer>,
    result: crate::Result<()>,
) -> crate::Result<()> {
    match &result {
        Ok(_) => timer.attempt_committed(started.elapsed()),
        Err(_) => timer.attempt_failed(),
    }
    result
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::testing::MemorySink;
    use crate::{
        export, ExportControl, ExportOptions, GeneratorConfig, GeneratorSource, JobCountPartitioner,
    };

    #[derive(Default)]
    struct Count {
        committed: AtomicUsize,
        failed: AtomicUsize,
    }

    impl ChunkTimer for Count {
        fn attempt_committed(&self, _took: Duration) {
            self.committed.fetch_add(1, Ordering::Relaxed);
        }
        fn attempt_failed(&self) {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[tokio::test]
    async fn every_committed_attempt_is_timed() {
        let count = Arc::new(Count::default());
        let sink = TimedSink::new(Arc::new(MemorySink::new(4)), count.clone());
        let source = GeneratorSource::new(GeneratorConfig {
            records: 5_000,
            ..Default::default()
        });
        let manifest = export(
            Arc::new(source),
            Arc::new(sink),
            &JobCountPartitioner::default(),
            ExportOptions::default(),
            ExportControl::default(),
        )
        .await
        .unwrap();
        assert_eq!(manifest.total_records, 5_000);
        assert_eq!(
            count.committed.load(Ordering::Relaxed),
            manifest.chunks.len()
        );
        assert_eq!(count.failed.load(Ordering::Relaxed), 0);
    }
}
