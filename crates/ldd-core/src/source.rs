//! The `DataSource` trait: count, split and read a dataset.

use async_trait::async_trait;
use futures::stream::BoxStream;

use crate::chunk::{ChunkRange, PlanStrategy};
use crate::error::Result;
use crate::value::Record;

/// Records of one chunk, in batches; the stream must hold only a bounded number of them
/// in memory at once.
pub type RecordStream = BoxStream<'static, Result<Vec<Record>>>;

/// A planned slice of the dataset and the records it is expected to hold.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedRange {
    /// What to read.
    pub range: ChunkRange,
    /// Records expected in it.
    pub expected_records: u64,
}

/// What a source could do when asked to split its dataset.
#[derive(Debug, Clone, PartialEq)]
pub enum SplitKind {
    /// Contiguous, disjoint ranges in order, covering the dataset.
    Ranges(Vec<PlannedRange>),
    /// The source cannot read ranges independently; the engine reads
    /// [`ChunkRange::All`] once, in order, and cuts it into contiguous blocks.
    ScanOnly,
}

/// The result of [`DataSource::split`].
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    /// The ranges, or why there are none.
    pub kind: SplitKind,
    /// Which strategy ran, why, and what it cost (the engine fills in the duration).
    pub strategy: PlanStrategy,
}

/// A dataset that can be counted, split into ranges and read.
///
/// Implementors are backends (MongoDB, InfluxDB, the generator); the engine only uses this
/// trait, so any source works with any sink.
///
/// ```
/// use futures::TryStreamExt;
/// use ldd_core::{ChunkRange, DataSource, GeneratorConfig, GeneratorSource};
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let source = GeneratorSource::new(GeneratorConfig { records: 10, ..Default::default() });
/// assert_eq!(source.count().await.unwrap(), 10);
/// let batches: Vec<_> = source.read(&ChunkRange::All).await.unwrap().try_collect().await.unwrap();
/// assert_eq!(batches.iter().map(Vec::len).sum::<usize>(), 10);
/// # });
/// ```
#[async_trait]
pub trait DataSource: Send + Sync {
    /// A short description for logs and manifests (never containing secrets).
    fn describe(&self) -> String;

    /// Number of records in the dataset (with its filters and time range applied).
    async fn count(&self) -> Result<u64>;

    /// Splits the dataset into `chunks` ranges of about equal record counts, given that it
    /// holds `total` records. Must not read the whole dataset. A source that cannot split
    /// answers [`SplitKind::ScanOnly`] and says why in the strategy.
    async fn split(&self, chunks: usize, total: u64) -> Result<Split>;

    /// Streams the records of one range, in a stable order.
    async fn read(&self, range: &ChunkRange) -> Result<RecordStream>;
}
