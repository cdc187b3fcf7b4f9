//! A [`Sink`] wrapper that times every chunk attempt from open to commit for `/metrics`.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use ldd_core::{
    ChunkContext, ChunkDelivery, ChunkManifest, ChunkWriter, Delivery, OutMessage, Sink,
};

use crate::server::metrics::Metrics;

/// Passes everything to the inner sink and records chunk durations and failures.
pub(crate) struct MeteredSink {
    inner: Arc<dyn Sink>,
    metrics: Arc<Metrics>,
}

impl MeteredSink {
    /// Wraps `inner`.
    pub(crate) fn new(inner: Arc<dyn Sink>, metrics: Arc<Metrics>) -> Self {
        MeteredSink { inner, metrics }
    }
}

#[async_trait]
impl Sink for MeteredSink {
    fn destination(&self) -> String {
        self.inner.destination()
    }

    async fn partition_count(&self) -> ldd_core::Result<u32> {
        self.inner.partition_count().await
    }

    fn delivery(&self) -> Delivery {
        self.inner.delivery()
    }

    fn writer_slots(&self, workers: usize) -> usize {
        self.inner.writer_slots(workers)
    }

    async fn prepare(&self, export_id: &str, slots: usize) -> ldd_core::Result<()> {
        self.inner.prepare(export_id, slots).await
    }

    async fn chunk_visible(
        &self,
        export_id: &str,
        chunk: &ChunkManifest,
    ) -> ldd_core::Result<bool> {
        self.inner.chunk_visible(export_id, chunk).await
    }

    async fn open_chunk(
        &self,
        slot: usize,
        chunk: &ChunkContext,
    ) -> ldd_core::Result<Box<dyn ChunkWriter>> {
        let started = Instant::now();
        let inner = self.inner.open_chunk(slot, chunk).await?;
        Ok(Box::new(MeteredWriter {
            inner,
            started,
            metrics: self.metrics.clone(),
        }))
    }
}

struct MeteredWriter {
    inner: Box<dyn ChunkWriter>,
    started: Instant,
    metrics: Arc<Metrics>,
}

#[async_trait]
impl ChunkWriter for MeteredWriter {
    async fn send(&mut self, messages: Vec<OutMessage>) -> ldd_core::Result<()> {
        self.inner.send(messages).await
    }

    async fn flush(&mut self) -> ldd_core::Result<ChunkDelivery> {
        // A failed flush is counted by the abort that follows it.
        self.inner.flush().await
    }

    async fn commit(self: Box<Self>) -> ldd_core::Result<()> {
        let MeteredWriter {
            inner,
            started,
            metrics,
        } = *self;
        let result = inner.commit().await;
        match &result {
            Ok(_) => metrics.chunk_duration(started.elapsed().as_secs_f64()),
            Err(_) => metrics.chunk_failure(),
        }
        result
    }

    async fn abort(self: Box<Self>) -> ldd_core::Result<()> {
        self.metrics.chunk_failure();
        self.inner.abort().await
    }
}
