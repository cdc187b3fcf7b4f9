//! A per-process rate limit on records read, for simulating a source that is the
//! bottleneck: the scale-out benchmark gives every worker process the same limit, so that
//! adding processes, not cores, is what adds throughput.

use std::num::NonZeroU32;
use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use crate::chunk::ChunkRange;
use crate::error::{Error, Result};
use crate::source::{DataSource, RecordStream, Split};

/// At most `records_per_sec` records per second, shared by every source it wraps (clones
/// share one budget). Bursts are limited to a tenth of a second's worth.
#[derive(Clone)]
pub struct RateLimit {
    limiter: Arc<DefaultDirectRateLimiter>,
    records_per_sec: u32,
    burst: NonZeroU32,
}

impl std::fmt::Debug for RateLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimit")
            .field("records_per_sec", &self.records_per_sec)
            .finish()
    }
}

impl RateLimit {
    /// A limit of `records_per_sec` records per second (at least 1).
    pub fn per_second(records_per_sec: u32) -> Result<Self> {
        let rate = NonZeroU32::new(records_per_sec).ok_or_else(|| {
            Error::InvalidInput("a rate limit must be at least 1 record per second".into())
        })?;
        let burst = NonZeroU32::new((records_per_sec / 10).max(1)).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::per_second(rate).allow_burst(burst);
        Ok(RateLimit {
            limiter: Arc::new(RateLimiter::direct(quota)),
            records_per_sec,
            burst,
        })
    }

    /// The limit in records per second.
    pub fn records_per_sec(&self) -> u32 {
        self.records_per_sec
    }

    /// Waits until `records` more records may pass.
    pub async fn admit(&self, records: usize) {
        let mut left = records;
        // One request may not exceed the burst, so a large batch is admitted in pieces.
        while left > 0 {
            let piece = left.min(self.burst.get() as usize);
            let Some(n) = NonZeroU32::new(piece as u32) else {
                return;
            };
            if self.limiter.until_n_ready(n).await.is_err() {
                // Unreachable: a piece never exceeds the burst.
                return;
            }
            left -= piece;
        }
    }
}

/// A source whose reads pass through a [`RateLimit`]; counting and splitting are not
/// limited.
pub struct ThrottledSource {
    inner: Arc<dyn DataSource>,
    limit: RateLimit,
}

impl ThrottledSource {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn DataSource>, limit: RateLimit) -> Self {
        ThrottledSource { inner, limit }
    }
}

#[async_trait]
impl DataSource for ThrottledSource {
    fn describe(&self) -> String {
        self.inner.describe()
    }

    async fn count(&self) -> Result<u64> {
        self.inner.count().await
    }

    async fn split(&self, chunks: usize, total: u64) -> Result<Split> {
        self.inner.split(chunks, total).await
    }

    async fn read(&self, range: &ChunkRange) -> Result<RecordStream> {
        let stream = self.inner.read(range).await?;
        let limit = self.limit.clone();
        Ok(stream
            .then(move |batch| {
                let limit = limit.clone();
                async move {
                    if let Ok(records) = &batch {
                        limit.admit(records.len()).await;
                    }
                    batch
                }
            })
            .boxed())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::time::Instant;

    use futures::TryStreamExt;

    use super::*;
    use crate::{GeneratorConfig, GeneratorSource};

    #[tokio::test]
    async fn reads_are_held_to_the_limit() {
        let source = Arc::new(GeneratorSource::new(GeneratorConfig {
            records: 3_000,
            batch_size: 100,
            ..Default::default()
        }));
        let throttled = ThrottledSource::new(source, RateLimit::per_second(10_000).unwrap());
        let started = Instant::now();
        let batches: Vec<_> = throttled
            .read(&ChunkRange::All)
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        assert_eq!(batches.iter().map(Vec::len).sum::<usize>(), 3_000);
        // 3,000 records at 10,000/s, less the 1,000-record burst: at least 0.2 s.
        assert!(
            started.elapsed().as_millis() >= 190,
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn a_zero_limit_is_refused() {
        assert!(RateLimit::per_second(0).is_err());
    }
}
