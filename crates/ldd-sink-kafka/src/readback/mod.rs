//! Read-back: read exactly the offsets a manifest names, in parallel, and verify them.
//!
//! One consumer per partition (`assign`, no consumer group, no commits), `read_committed`
//! by default. Each message is attributed by its headers: other exports' messages and
//! attempts the manifest does not name are skipped; every chunk must then have exactly its
//! messages, records and checksum.

mod output;
mod verify;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ldd_core::format::{count_records, decode};
use ldd_core::{ChunkManifest, Format, Manifest, PartitionManifest};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};

pub use output::{CsvOutput, JsonlOutput, RecordOutput};
pub use verify::Problem;

use crate::error::{Error, Result};
use verify::{checks_for, parse_headers};

/// How to read a manifest back.
#[derive(Debug, Clone)]
pub struct ReadBackConfig {
    /// Bootstrap servers.
    pub brokers: String,
    /// Partitions read at once.
    pub parallelism: usize,
    /// Give up on a partition after this long without a message.
    pub idle_timeout: Duration,
    /// Decode every record even without an output (slower; catches undecodable payloads).
    pub decode: bool,
    /// Read only committed transactions (needed for transactional exports).
    pub read_committed: bool,
    /// Extra librdkafka consumer properties.
    pub librdkafka: BTreeMap<String, String>,
}

impl ReadBackConfig {
    /// Defaults for the cluster at `brokers`.
    pub fn new(brokers: impl Into<String>) -> Self {
        ReadBackConfig {
            brokers: brokers.into(),
            parallelism: default_parallelism(),
            idle_timeout: Duration::from_secs(30),
            decode: false,
            read_committed: true,
            librdkafka: BTreeMap::new(),
        }
    }
}

/// One partition reader per CPU (at least two, at most 16): with prefetch that never
/// pauses, a reader keeps its core busy, and every extra reader only adds prefetch buffers
/// (memory) and competes for the same cores.
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
pub fn read_back(
    manifest: &Manifest,
    config: &ReadBackConfig,
    hooks: Option<&Hooks<'_>>,
) -> Result<ReadBackReport> {
    manifest
        .check_consistency()
        .map_err(|e| Error::Decode(e.to_string()))?;
    let hooks = hooks.copied().unwrap_or_default();
    let started = Instant::now();
    let next = AtomicUsize::new(0);
    let done_records = AtomicU64::new(0);
    let results = Mutex::new(Vec::new());
    let threads = config
        .parallelism
        .clamp(1, manifest.partitions.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(partition) = manifest.partitions.get(i) else {
                    break;
                };
                let reader = PartitionReader {
                    manifest,
                    partition,
                    config,
                    hooks: &hooks,
                    done_records: &done_records,
                };
                let outcome = reader.run();
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
    for outcome in results.into_inner().unwrap_or_else(|p| p.into_inner()) {
        let outcome = outcome?;
        report.records += outcome.report.records;
        report.messages += outcome.report.messages;
        report.bytes += outcome.bytes;
        report.chunks_verified += outcome.chunks_verified;
        report.partitions.push(outcome.report);
        report.problems.extend(outcome.problems);
    }
    report.partitions.sort_by_key(|p| p.partition);
    report.elapsed_ms = started.elapsed().as_millis() as u64;
    Ok(report)
}

struct PartitionOutcome {
    report: PartitionReport,
    bytes: u64,
    chunks_verified: u64,
    problems: Vec<Problem>,
}

struct PartitionReader<'a> {
    manifest: &'a Manifest,
    partition: &'a PartitionManifest,
    config: &'a ReadBackConfig,
    hooks: &'a Hooks<'a>,
    done_records: &'a AtomicU64,
}

impl PartitionReader<'_> {
    fn consumer(&self) -> Result<BaseConsumer> {
        let mut cfg = ClientConfig::new();
        cfg.set("bootstrap.servers", &self.config.brokers)
            .set(
                "group.id",
                format!("ldd-readback-{}", self.manifest.export_id),
            )
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "true")
            // Never jump elsewhere silently when an offset is gone: that is truncation.
            .set("auto.offset.reset", "error")
            .set(
                "isolation.level",
                if self.config.read_committed {
                    "read_committed"
                } else {
                    "read_uncommitted"
                },
            )
            // One consumer per partition: keep each one's prefetch modest so that memory
            // stays bounded with many partitions read at once.
            .set("fetch.max.bytes", "8388608")
            .set("max.partition.fetch.bytes", "4194304")
            .set("queued.max.messages.kbytes", "4096")
            // With a small queue the threshold is hit all the time, and librdkafka then
            // postpones the partition's next fetch by this much (1 s by default): that
            // pause, not the network, was most of the read time (5M records: 3.6 s -> 1.1 s).
            .set("fetch.queue.backoff.ms", "1");
        for (k, v) in &self.config.librdkafka {
            cfg.set(k, v);
        }
        cfg.create()
            .map_err(|e| Error::kafka("creating a read-back consumer", e))
    }

    fn run(&self) -> Result<PartitionOutcome> {
        let p = self.partition;
        let topic = &self.manifest.topic;
        let mut outcome = PartitionOutcome {
            report: PartitionReport {
                partition: p.partition,
                ..Default::default()
            },
            bytes: 0,
            chunks_verified: 0,
            problems: Vec::new(),
        };
        let consumer = self.consumer()?;
        let (low, high) = consumer
            .fetch_watermarks(topic, p.partition as i32, Duration::from_secs(15))
            .map_err(|e| {
                Error::kafka(format!("reading watermarks of {topic}/{}", p.partition), e)
            })?;
        if low > p.first_offset {
            outcome.problems.push(Problem::Truncated {
                partition: p.partition,
                low_watermark: low,
                first_offset: p.first_offset,
            });
        }
        if high <= p.last_offset {
            outcome.problems.push(Problem::ShortPartition {
                partition: p.partition,
                high_watermark: high,
                last_offset: p.last_offset,
            });
        }
        if !outcome.problems.is_empty() {
            // Reading would only confirm the loss; every chunk here is unverified.
            return Ok(outcome);
        }
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, p.partition as i32, Offset::Offset(p.first_offset))
            .map_err(|e| Error::kafka("building the assignment", e))?;
        consumer
            .assign(&tpl)
            .map_err(|e| Error::kafka("assigning the partition", e))?;

        let chunks: Vec<&ChunkManifest> = self
            .manifest
            .chunks
            .iter()
            .filter(|c| c.partition == p.partition)
            .collect();
        let mut checks = checks_for(chunks.iter().copied());
        let mut reached = None;
        let mut last_message = Instant::now();
        loop {
            let polled = consumer.poll(Duration::from_millis(200));
            let msg = match polled {
                None => {
                    if last_message.elapsed() > self.config.idle_timeout {
                        outcome.problems.push(Problem::Stalled {
                            partition: p.partition,
                            reached,
                            last_offset: p.last_offset,
                            reason: format!(
                                "no message for {} s",
                                self.config.idle_timeout.as_secs()
                            ),
                        });
                        break;
                    }
                    continue;
                }
                Some(Err(KafkaError::PartitionEOF(_))) => {
                    if reached.is_some_and(|r| r >= p.last_offset) {
                        break;
                    }
                    // In read_committed mode an open transaction can hold the end back;
                    // keep polling until the idle timeout.
                    continue;
                }
                Some(Err(err)) => {
                    outcome.problems.push(Problem::Stalled {
                        partition: p.partition,
                        reached,
                        last_offset: p.last_offset,
                        reason: err.to_string(),
                    });
                    break;
                }
                Some(Ok(msg)) => msg,
            };
            last_message = Instant::now();
            let offset = msg.offset();
            reached = Some(offset);
            let headers = parse_headers(&msg);
            let ours = headers.export_id == Some(self.manifest.export_id.as_str());
            let check = match (ours, headers.chunk_id.and_then(|c| checks.get_mut(&c))) {
                (true, Some(check)) if headers.attempt == Some(check.manifest.attempt) => check,
                _ => {
                    outcome.report.skipped += 1;
                    if offset >= p.last_offset {
                        break;
                    }
                    continue;
                }
            };
            let payload = msg.payload().unwrap_or_default();
            let records = match self.count_and_emit(payload) {
                Ok(n) => n,
                Err(reason) => {
                    outcome.problems.push(Problem::Corrupt {
                        partition: p.partition,
                        offset,
                        reason,
                    });
                    0
                }
            };
            if headers.records.is_some_and(|h| u64::from(h) != records) {
                outcome.problems.push(Problem::Corrupt {
                    partition: p.partition,
                    offset,
                    reason: format!(
                        "header says {:?} records, payload holds {records}",
                        headers.records
                    ),
                });
            }
            let Some(sequence) = headers.sequence else {
                outcome.problems.push(Problem::Corrupt {
                    partition: p.partition,
                    offset,
                    reason: "message has no sequence header".into(),
                });
                continue;
            };
            match check.accept(sequence, offset, payload, records) {
                Some(problem) => outcome.problems.push(problem),
                None => {
                    outcome.report.messages += 1;
                    outcome.report.records += records;
                    outcome.bytes += payload.len() as u64;
                    let done = self.done_records.fetch_add(records, Ordering::Relaxed) + records;
                    if let Some(progress) = self.hooks.progress {
                        progress(done, self.manifest.total_records);
                    }
                }
            }
            if offset >= p.last_offset {
                break;
            }
        }
        for check in checks.into_values() {
            if check.finish(&mut outcome.problems) {
                outcome.chunks_verified += 1;
            }
        }
        Ok(outcome)
    }

    /// Counts a payload's records, decoding and emitting them when asked.
    fn count_and_emit(&self, payload: &[u8]) -> std::result::Result<u64, String> {
        let format: Format = self.manifest.format;
        if self.hooks.output.is_none() && !self.config.decode {
            return count_records(format, payload)
                .map(u64::from)
                .map_err(|e| e.to_string());
        }
        if let Some(output) = self.hooks.output.filter(|_| !self.config.decode) {
            if output
                .write_encoded(format, payload)
                .map_err(|e| e.to_string())?
            {
                return count_records(format, payload)
                    .map(u64::from)
                    .map_err(|e| e.to_string());
            }
        }
        let records = decode(format, payload).map_err(|e| e.to_string())?;
        if let Some(output) = self.hooks.output {
            output.write(&records).map_err(|e| e.to_string())?;
        }
        Ok(records.len() as u64)
    }
}
