//! # ldd-core
//!
//! The core of **ldd** (Large Dataset Delivery): the types, traits and engine that move a
//! very large dataset out of a database into a partitioned log in parallel chunks, and the
//! manifest that says exactly where every record landed.
//!
//! It has no database or Kafka code: backends implement [`DataSource`] (in `ldd-sources`)
//! and [`Sink`] (in `ldd-sink-kafka`), and the engine ([`export`]) joins any source to any
//! sink.
//!
//! - [`Record`]/[`Value`]: typed records.
//! - [`DatasetSpec`]: what to export.
//! - [`Partitioner`] ([`JobCountPartitioner`]): how many chunks, and which partition each goes to.
//! - [`Format`]/[`Encoder`]/[`decode`]: `json`, `jsonl` and `protobuf` payloads.
//! - [`Manifest`]: per-partition and per-chunk offsets, counts and checksums, with Spark
//!   bounded offsets.
//! - [`GeneratorSource`]: deterministic synthetic IoT data for tests, benchmarks and demos.
//! - [`CheckpointStore`] ([`JournalFile`]) and [`export_resumable`]: an export that records
//!   its plan and every committed chunk, and resumes from there after a crash.
//! - [`TaskSource`]/[`SourceResolver`]: a chunk's source as a distributed worker receives
//!   it (no secrets) and resolves it with its own connections; [`RateLimit`] caps the
//!   records a process reads per second.
//! - [`testing`]: an in-memory sink with fault injection and the source conformance suite.
//!
//! ## Example
//! ```
//! use std::sync::Arc;
//! use ldd_core::testing::MemorySink;
//! use ldd_core::{export, ExportControl, ExportOptions, Format, GeneratorConfig,
//!     GeneratorSource, JobCountPartitioner};
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let source = Arc::new(GeneratorSource::new(GeneratorConfig { records: 10_000, ..Default::default() }));
//! let sink = Arc::new(MemorySink::new(4));
//! let options = ExportOptions { format: Format::Jsonl, ..Default::default() };
//! let manifest = export(source, sink, &JobCountPartitioner::default(), options,
//!     ExportControl::default()).await.unwrap();
//! assert_eq!(manifest.total_records, 10_000);
//! assert_eq!(manifest.chunks.len(), 48);
//! println!("{}", manifest.spark_offsets().starting_offsets);
//! # });
//! ```
//!
//! ## Debugging
//! The engine logs through `tracing` (chunk retries at `warn`); subscribe with any
//! `tracing` subscriber, e.g. `RUST_LOG=ldd_core=debug` in the `ldd` binary.

pub mod checkpoint;
pub mod chunk;
pub mod dataset;
pub mod delivery;
pub mod engine;
pub mod error;
pub mod feed;
pub mod format;
pub mod generator;
pub mod manifest;
pub mod partition;
pub mod sink;
pub mod source;
pub mod task;
pub mod testing;
pub mod text;
pub mod throttle;
pub mod timed_sink;
pub mod value;

pub use checkpoint::{Checkpoint, CheckpointStore, ExportRecord, JournalFile, RunRecord};
pub use chunk::{Chunk, ChunkRange, ExportPlan, PlanStrategy, ValueBound};
pub use dataset::{DatasetSpec, DatasetSpecBuilder, FieldEquals, TagRule, TimeBound, TimeRange};
pub use engine::{
    execute_plan, export, export_resumable, plan_export, ExportControl, ExportEvent,
    ExportObserver, ExportOptions, ExportParts, Progress, Resume, RetryPolicy,
};
pub use error::{BoxError, ChunkFailure, Error, FailureCause, Result};
pub use feed::{CommittedChunk, FeedEntry};
pub use format::{decode, EncodedMessage, Encoder, Format};
pub use generator::{GeneratorConfig, GeneratorSource};
pub use manifest::{ChunkManifest, Manifest, PartitionManifest, SparkOffsets};
pub use partition::{JobCountPartitioner, Partitioner};
pub use sink::{ChunkContext, ChunkDelivery, ChunkWriter, Delivery, OutMessage, Sink};
pub use source::{DataSource, PlannedRange, RecordStream, Split, SplitKind};
pub use task::{GeneratorResolver, SourceResolver, TaskSource};
pub use throttle::{RateLimit, ThrottledSource};
pub use value::{Record, Value};

/// Re-exported so users can cancel exports without depending on `tokio-util`.
pub use tokio_util::sync::CancellationToken;
