//! Read-back: read exactly the offsets a manifest names, in parallel, and verify them.
//!
//! A few consumers, each assigned an equal share of the partitions (`assign`, no consumer
//! group, no commits), `read_committed` by default. Each message is attributed by its
//! headers: other exports' messages and attempts the manifest does not name are skipped;
//! every chunk must then have exactly its messages, records and checksum.
//!
//! [`read_back`] reads a finished export from its manifest; [`follow`] reads an export while
//! it runs, each chunk as soon as its commit is announced (see `ldd_core::feed`).

mod destination;
mod follow;
mod local_feed;
mod output;
#[cfg(feature = "parquet")]
mod parquet;
mod reader;
mod verify;

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ldd_core::{Manifest, PartitionManifest};
use serde::{Deserialize, Serialize};

pub use destination::{open_output, OpenedOutput, OutputKind};
pub use follow::{follow, FollowOutcome};
pub use local_feed::LocalFeed;
pub use output::{CsvOutput, JsonlOutput, RecordOutput};
#[cfg(feature = "parquet")]
pub use parquet::{ParquetCompression, ParquetOptions, ParquetOutput, DEFAULT_ROW_GROUP_ROWS};
pub use verify::Problem;

use crate::client::KafkaClient;
use crate::error::{Error, Result};
use reader::{GroupReader, Target};

/// How to read a manifest back.
#[derive(Debug, Clone)]
pub struct ReadBackConfig {
    /// The cluster and its client settings (security included).
    pub client: KafkaClient,
    /// Consumers (threads) reading at once, each with its share of the partitions.
    pub parallelism: usize,
    /// Give up on a partition after this long without a message.
    pub idle_timeout: Duration,
    /// Decode every record even without an output (slower; catches undecodable payloads).
    pub decode: bool,
    /// Read only committed transactions (needed for transactional exports).
    pub read_committed: bool,
    /// Memory read-back may use, in MiB: librdkafka's prefetch of every consumer is sized
    /// from it (see [`ReadBackConfig::prefetch`]). Peak memory then stays flat however large
    /// the export is.
    pub memory_budget_mb: u64,
    /// Extra librdkafka properties of the read-back consumers only (they win over the
    /// budget's sizes). Connection settings belong in [`KafkaClient::properties`].
    pub librdkafka: BTreeMap<String, String>,
}

/// Read-back's memory budget unless set, in MiB.
pub const DEFAULT_MEMORY_BUDGET_MB: u64 = 128;

/// How much one consumer fetches and queues ahead of the reader (librdkafka's limits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prefetch {
    /// `fetch.max.bytes`: one fetch response, all partitions.
    pub fetch_max_bytes: u64,
    /// `max.partition.fetch.bytes`: one partition's share of a fetch response.
    pub partition_fetch_bytes: u64,
    /// `queued.max.messages.kbytes`: messages fetched and not yet read.
    pub queued_kbytes: u64,
}

impl ReadBackConfig {
    /// Defaults for the cluster `client` names (a broker string is a client without
    /// properties).
    pub fn new(client: impl Into<KafkaClient>) -> Self {
        ReadBackConfig {
            client: client.into(),
            parallelism: default_parallelism(),
            idle_timeout: Duration::from_secs(30),
            decode: false,
            read_committed: true,
            memory_budget_mb: DEFAULT_MEMORY_BUDGET_MB,
            librdkafka: BTreeMap::new(),
        }
    }

    /// Checks the settings without I/O; the message says what to fix.
    pub fn validate(&self) -> Result<()> {
        self.client.validate()?;
        crate::client::check_passthrough("read-back consumer", &self.librdkafka)
    }
    /// The librdkafka configuration of a read-back consumer of `export_id` (assign only:
    /// no group membership, no commits), built on [`KafkaClient`]'s properties, its
    /// prefetch sized from the memory budget.
    pub fn consumer_config(&self, export_id: &str) -> rdkafka::ClientConfig {
        let prefetch = self.prefetch();
        let isolation = if self.read_committed {
            "read_committed"
        } else {
            "read_uncommitted"
        };
        self.client.build(
            [
                ("group.id", format!("ldd-readback-{export_id}")),
                ("enable.auto.commit", "false".to_owned()),
                ("enable.auto.offset.store", "false".to_owned()),
                ("enable.partition.eof", "true".to_owned()),
                // Never jump elsewhere silently when an offset is gone: that is truncation.
                ("auto.offset.reset", "error".to_owned()),
                ("isolation.level", isolation.to_owned()),
                // Sized from the memory budget, so that memory stays flat however many
                // partitions and messages there are (see `ReadBackConfig::prefetch`).
                ("fetch.max.bytes", prefetch.fetch_max_bytes.to_string()),
                (
                    "max.partition.fetch.bytes",
                    prefetch.partition_fetch_bytes.to_string(),
                ),
                (
                    "queued.max.messages.kbytes",
                    prefetch.queued_kbytes.to_string(),
                ),
                // librdkafka refuses a fetch size below `message.max.bytes` (1 MB by
                // default), which for a consumer only bounds the requests it sends; the
                // broker still returns a batch larger than the fetch size when it is the
                // first one.
                ("message.max.bytes", prefetch.fetch_max_bytes.to_string()),
                // With a small queue the threshold is hit all the time, and librdkafka then
                // postpones the next fetch by this much (1 s by default): that pause, not
                // the network, was most of the read time (5M records: 3.6 s -> 1.1 s).
                ("fetch.queue.backoff.ms", "1".to_owned()),
            ],
            Some(&self.librdkafka),
        )
    }

    /// Each consumer's prefetch limits from the memory budget, split evenly between the
    /// consumers.
    ///
    /// What the sizes hold is not all that memory holds: a fetch response stays allocated
    /// while any of its messages waits in the queue, small messages cost librdkafka a few
    /// hundred bytes each beyond their payload, and the allocator keeps freed pages for a
    /// while. Measured on one-record-per-message exports, a consumer uses about 32 times
    /// its fetch size, so a consumer with a budget share `b` fetches `b/64` (half the share
    /// for the slack), `b/256` per partition, and queues `b/16`. At the default 128 MiB and
    /// two consumers: 1 MiB per fetch, 256 KiB per partition, 4 MiB queued. (With 8 MiB
    /// fetches, peak memory was 200–260 MB and grew with the export.)
    pub fn prefetch(&self) -> Prefetch {
        const KIB: u64 = 1024;
        const MIB: u64 = 1024 * KIB;
        let share = self.memory_budget_mb.max(1) * MIB / self.parallelism.max(1) as u64;
        let fetch_max_bytes = (share / 64).clamp(64 * KIB, 16 * MIB);
        Prefetch {
            fetch_max_bytes,
            partition_fetch_bytes: (share / 256).clamp(16 * KIB, fetch_max_bytes),
            queued_kbytes: (share / 16 / KIB).clamp(256, 64 * 1024),
        }
    }
}

/// One reader per CPU (at least two, at most 16): with prefetch that never pauses, a reader
/// keeps its core busy, and every extra reader only adds prefetch buffers (memory) and
/// competes for the same cores.
pub fn default_parallelism() -> usize {
    std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(2, 16)
}

/// Optional callbacks of a read-back.
#[derive(Default, Clone, Copy)]
pub struct Hooks<'a> {
    /// Receives every decoded record.
    pub output: Option<&'a dyn RecordOutput>,
    /// Called with (records verified so far, records expected) as reading goes on.
    pub progress: Option<&'a (dyn Fn(u64, u64) + Sync)>,
}

/// Per-partition figures of a read-back.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionReport {
    /// Partition.
    pub partition: u32,
    /// Messages of the manifest read.
    pub messages: u64,
    /// Records of the manifest read.
    pub records: u64,
    /// Messages skipped: other exports, or attempts the manifest does not name.
    pub skipped: u64,
}

/// What a read-back found.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReadBackReport {
    /// The export id.
    pub export_id: String,
    /// Records the manifest names.
    pub expected_records: u64,
    /// Records read and accounted to a chunk.
    pub records: u64,
    /// Messages read and accounted to a chunk.
    pub messages: u64,
    /// Payload bytes read.
    pub bytes: u64,
    /// Chunks that verified completely.
    pub chunks_verified: u64,
    /// Chunks in the manifest.
    pub chunks_total: u64,
    /// Per partition.
    pub partitions: Vec<PartitionReport>,
    /// Everything that was wrong.
    pub problems: Vec<Problem>,
    /// Wall time in milliseconds.
    pub elapsed_ms: u64,
}

impl ReadBackReport {
    /// Whether every chunk arrived whole, once, and uncorrupted.
    pub fn is_verified(&self) -> bool {
        self.problems.is_empty()
            && self.records == self.expected_records
            && self.chunks_verified == self.chunks_total
    }

    /// Records per second read.
    pub fn records_per_sec(&self) -> f64 {
        self.records as f64 / (self.elapsed_ms.max(1) as f64 / 1000.0)
    }
}

/// Reads the manifest's offsets back and verifies every chunk. Blocking: call it from a
/// thread or `spawn_blocking`.
///
/// `parallelism` threads each read an equal share of the partitions with one consumer.
pub fn read_back(
    manifest: &Manifest,
    config: &ReadBackConfig,
    hooks: Option<&Hooks<'_>>,
) -> Result<ReadBackReport> {
    config.validate()?;
    manifest
        .check_consistency()
        .map_err(|e| Error::Decode(e.to_string()))?;
    let hooks = hooks.copied().unwrap_or_default();
    let started = Instant::now();
    let done_records = AtomicU64::new(0);
    let threads = config
        .parallelism
        .clamp(1, manifest.partitions.len().max(1));
    let mut groups: Vec<Vec<&PartitionManifest>> = vec![Vec::new(); threads];
    for (i, partition) in manifest.partitions.iter().enumerate() {
        groups[i % threads].push(partition);
    }
    let results = Mutex::new(Vec::new());
    let target = Target::of_manifest(manifest);
    std::thread::scope(|scope| {
        for partitions in groups.into_iter().filter(|g| !g.is_empty()) {
            let (results, hooks, done_records, target) = (&results, &hooks, &done_records, &target);
            scope.spawn(move || {
                let outcome = GroupReader {
                    target,
                    partitions,
                    config,
                    hooks,
                    done_records,
                    export_ended: true,
                }
                .run();
                results
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(outcome);
            });
        }
    });
    if let Some(output) = hooks.output {
        output.flush()?;
    }
    let mut report = ReadBackReport {
        export_id: manifest.export_id.clone(),
        expected_records: manifest.total_records,
        chunks_total: manifest.chunks.len() as u64,
        ..Default::default()
    };
    // Chunks without messages have nothing to read and verify trivially.
    report.chunks_verified = manifest.chunks.iter().filter(|c| c.messages == 0).count() as u64;
    for outcomes in results.into_inner().unwrap_or_else(|p| p.into_inner()) {
        for outcome in outcomes? {
            report.records += outcome.report.records;
            report.messages += outcome.report.messages;
            report.bytes += outcome.bytes;
            report.chunks_verified += outcome.chunks_verified;
            report.partitions.push(outcome.report);
            report.problems.extend(outcome.problems);
        }
    }
    report.partitions.sort_by_key(|p| p.partition);
    report.elapsed_ms = started.elapsed().as_millis() as u64;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefetch_splits_the_budget_between_the_consumers() {
        let mut config = ReadBackConfig::new("b");
        config.parallelism = 2;
        assert_eq!(
            config.prefetch(),
            Prefetch {
                fetch_max_bytes: 1 << 20,
                partition_fetch_bytes: 256 << 10,
                queued_kbytes: 4096,
            }
        );
        // Twice the consumers, each gets half.
        config.parallelism = 4;
        assert_eq!(config.prefetch().fetch_max_bytes, 512 << 10);
        // A tiny budget still fetches something; a huge one stays within librdkafka's limits.
        config.memory_budget_mb = 1;
        config.parallelism = 16;
        let small = config.prefetch();
        assert_eq!(
            (small.fetch_max_bytes, small.queued_kbytes),
            (64 << 10, 256)
        );
        assert!(small.partition_fetch_bytes <= small.fetch_max_bytes);
        config.memory_budget_mb = 1 << 20;
        config.parallelism = 1;
        assert_eq!(config.prefetch().fetch_max_bytes, 16 << 20);
    }
}
