//! One consumer reading a group of a manifest's partitions at once and verifying them.
//!
//! A consumer per partition paid its set-up (client, connection, metadata, first fetch) once
//! per partition, one after the other on each thread: at 1M records that set-up was most of
//! the read time. One consumer per thread, assigned all of its partitions, pays it once and
//! fetches the partitions together.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ldd_core::format::{count_records, decode};
use ldd_core::{ChunkManifest, Format, Manifest, PartitionManifest};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{Offset, TopicPartitionList};

use super::verify::{checks_for, parse_headers, ChunkCheck, Problem};
use super::{Hooks, PartitionReport, ReadBackConfig};
use crate::client::{consumer_failure, ClientErrors};
use crate::error::{Error, Result};

/// What one partition yielded.
pub(super) struct PartitionOutcome {
    pub(super) report: PartitionReport,
    pub(super) bytes: u64,
    pub(super) chunks_verified: u64,
    pub(super) problems: Vec<Problem>,
}

/// What to read: an export's chunks in a topic (a whole manifest, or the chunks a follower
/// knows of so far).
pub(super) struct Target<'a> {
    pub(super) export_id: &'a str,
    pub(super) topic: &'a str,
    pub(super) format: Format,
    pub(super) chunks: &'a [ChunkManifest],
    /// Records expected in all, for progress.
    pub(super) total_records: u64,
}

impl<'a> Target<'a> {
    /// The whole of `manifest`.
    pub(super) fn of_manifest(manifest: &'a Manifest) -> Self {
        Target {
            export_id: &manifest.export_id,
            topic: &manifest.topic,
            format: manifest.format,
            chunks: &manifest.chunks,
            total_records: manifest.total_records,
        }
    }
}

/// Reads `partitions` of `target` with one consumer.
pub(super) struct GroupReader<'a> {
    pub(super) target: &'a Target<'a>,
    pub(super) partitions: Vec<&'a PartitionManifest>,
    pub(super) config: &'a ReadBackConfig,
    pub(super) hooks: &'a Hooks<'a>,
    pub(super) done_records: &'a AtomicU64,
    /// Whether the export has ended, so that a partition ending before a chunk's last
    /// offset is a loss. While it runs, another chunk's open transaction in the same
    /// partition holds the readable end (the last stable offset) back, and reading waits.
    pub(super) export_ended: bool,
}

/// Where the reading of one partition stands.
struct PartitionState<'a> {
    manifest: &'a PartitionManifest,
    checks: HashMap<u32, ChunkCheck<'a>>,
    reached: Option<i64>,
    finished: bool,
    outcome: PartitionOutcome,
}

impl<'a> PartitionState<'a> {
    fn new(target: &'a Target<'a>, partition: &'a PartitionManifest) -> Self {
        PartitionState {
            manifest: partition,
            checks: checks_for(
                target
                    .chunks
                    .iter()
                    .filter(|c| c.partition == partition.partition),
            ),
            reached: None,
            finished: false,
            outcome: PartitionOutcome {
                report: PartitionReport {
                    partition: partition.partition,
                    ..Default::default()
                },
                bytes: 0,
                chunks_verified: 0,
                problems: Vec::new(),
            },
        }
    }

    fn stall(&mut self, reason: String) {
        self.outcome.problems.push(Problem::Stalled {
            partition: self.manifest.partition,
            reached: self.reached,
            last_offset: self.manifest.last_offset,
            reason,
        });
        self.finished = true;
    }

    fn into_outcome(mut self) -> PartitionOutcome {
        for check in self.checks.into_values() {
            if check.finish(&mut self.outcome.problems) {
                self.outcome.chunks_verified += 1;
            }
        }
        self.outcome
    }
}

/// A read-back consumer of `export_id` (assign only: no group membership, no commits).
pub(super) fn readback_consumer(
    config: &ReadBackConfig,
    export_id: &str,
) -> Result<BaseConsumer<ClientErrors>> {
    config
        .consumer_config(export_id)
        .create_with_context(ClientErrors::default())
        .map_err(|e| Error::kafka("creating a read-back consumer", e))
}

/// Drops a consumer on a thread of its own.
///
/// Closing a consumer can wait ~100 ms for its broker threads (a third of a 1M-record
/// read); nothing the caller needs depends on it. Should that thread not start, the
/// closure (and the consumer) is dropped here.
pub(super) fn close_in_background(consumer: BaseConsumer<ClientErrors>) {
    let _ = std::thread::Builder::new()
        .name("ldd-readback-close".into())
        .spawn(move || drop(consumer));
}

impl GroupReader<'_> {
    /// Reads the group with a consumer of its own.
    pub(super) fn run(self) -> Result<Vec<PartitionOutcome>> {
        let consumer = readback_consumer(self.config, self.target.export_id)?;
        let outcome = self.read_with(&consumer);
        close_in_background(consumer);
        outcome
    }

    /// Reads the group with `consumer`, which is assigned exactly the group's partitions
    /// (replacing any earlier assignment) and left paused on the finished ones.
    pub(super) fn read_with(
        self,
        consumer: &BaseConsumer<ClientErrors>,
    ) -> Result<Vec<PartitionOutcome>> {
        let topic = self.target.topic;
        let mut states = BTreeMap::new();
        let mut assignment = TopicPartitionList::new();
        for p in &self.partitions {
            let mut state = PartitionState::new(self.target, p);
            let (low, high) = consumer
                .fetch_watermarks(topic, p.partition as i32, Duration::from_secs(15))
                .map_err(|e| {
                    consumer_failure(
                        consumer,
                        format!("reading watermarks of {topic}/{}", p.partition),
                        e,
                    )
                })?;
            if low > p.first_offset {
                state.outcome.problems.push(Problem::Truncated {
                    partition: p.partition,
                    low_watermark: low,
                    first_offset: p.first_offset,
                });
            }
            if self.export_ended && high <= p.last_offset {
                state.outcome.problems.push(Problem::ShortPartition {
                    partition: p.partition,
                    high_watermark: high,
                    last_offset: p.last_offset,
                });
            }
            if state.outcome.problems.is_empty() {
                assignment
                    .add_partition_offset(topic, p.partition as i32, Offset::Offset(p.first_offset))
                    .map_err(|e| Error::kafka("building the assignment", e))?;
            } else {
                // Reading would only confirm the loss; every chunk here stays unverified.
                state.finished = true;
            }
            states.insert(p.partition as i32, state);
        }
        if assignment.count() > 0 {
            consumer
                .assign(&assignment)
                .map_err(|e| Error::kafka("assigning the partitions", e))?;
        } else if let Err(e) = consumer.unassign() {
            // Nothing is polled below, so an earlier assignment left in place does no harm.
            tracing::debug!(error = %e, "clearing an earlier assignment");
        }

        let mut last_message = Instant::now();
        while states.values().any(|s| !s.finished) {
            let msg = match consumer.poll(Duration::from_millis(200)) {
                None => {
                    if last_message.elapsed() > self.config.idle_timeout {
                        let reason =
                            format!("no message for {} s", self.config.idle_timeout.as_secs());
                        for state in states.values_mut().filter(|s| !s.finished) {
                            state.stall(reason.clone());
                        }
                    }
                    continue;
                }
                Some(Err(KafkaError::PartitionEOF(partition))) => {
                    // In read_committed mode an open transaction can hold the end back;
                    // an unfinished partition keeps polling until the idle timeout.
                    if let Some(state) = states.get_mut(&partition) {
                        if state
                            .reached
                            .is_some_and(|r| r >= state.manifest.last_offset)
                        {
                            state.finished = true;
                        }
                    }
                    continue;
                }
                Some(Err(err)) => {
                    for state in states.values_mut().filter(|s| !s.finished) {
                        state.stall(err.to_string());
                    }
                    break;
                }
                Some(Ok(msg)) => msg,
            };
            last_message = Instant::now();
            let Some(state) = states.get_mut(&msg.partition()) else {
                continue;
            };
            if state.finished {
                // Prefetched beyond the manifest's range before the partition was paused.
                continue;
            }
            self.accept(state, &msg);
            if state.finished {
                let mut done = TopicPartitionList::new();
                done.add_partition(topic, msg.partition());
                // Only saves fetching what will be skipped; reading stays correct without it.
                if let Err(e) = consumer.pause(&done) {
                    tracing::debug!(error = %e, "pausing a finished partition");
                }
            }
        }
        Ok(states
            .into_values()
            .map(PartitionState::into_outcome)
            .collect())
    }

    /// Attributes one message to its chunk and verifies it.
    fn accept(&self, state: &mut PartitionState<'_>, msg: &BorrowedMessage<'_>) {
        let (partition, last_offset) = (state.manifest.partition, state.manifest.last_offset);
        let offset = msg.offset();
        state.reached = Some(offset);
        state.finished = offset >= last_offset;
        let outcome = &mut state.outcome;
        let headers = parse_headers(msg);
        let ours = headers.export_id == Some(self.target.export_id);
        let check = match (
            ours,
            headers.chunk_id.and_then(|c| state.checks.get_mut(&c)),
        ) {
            (true, Some(check)) if headers.attempt == Some(check.manifest.attempt) => check,
            _ => {
                outcome.report.skipped += 1;
                return;
            }
        };
        let payload = msg.payload().unwrap_or_default();
        let records = match self.count_and_emit(payload) {
            Ok(n) => n,
            Err(reason) => {
                outcome.problems.push(Problem::Corrupt {
                    partition,
                    offset,
                    reason,
                });
                0
            }
        };
        if headers.records.is_some_and(|h| u64::from(h) != records) {
            outcome.problems.push(Problem::Corrupt {
                partition,
                offset,
                reason: format!(
                    "header says {:?} records, payload holds {records}",
                    headers.records
                ),
            });
        }
        let Some(sequence) = headers.sequence else {
            outcome.problems.push(Problem::Corrupt {
                partition,
                offset,
                reason: "message has no sequence header".into(),
            });
            return;
        };
        match check.accept(sequence, offset, payload, records) {
            Some(problem) => outcome.problems.push(problem),
            None => {
                outcome.report.messages += 1;
                outcome.report.records += records;
                outcome.bytes += payload.len() as u64;
                let done = self.done_records.fetch_add(records, Ordering::Relaxed) + records;
                if let Some(progress) = self.hooks.progress {
                    progress(done, self.target.total_records);
                }
            }
        }
    }

    /// Counts a payload's records, decoding and emitting them when asked.
    fn count_and_emit(&self, payload: &[u8]) -> std::result::Result<u64, String> {
        let format = self.target.format;
        let count = || {
            count_records(format, payload)
                .map(u64::from)
                .map_err(|e| e.to_string())
        };
        if self.hooks.output.is_none() && !self.config.decode {
            return count();
        }
        if let Some(output) = self.hooks.output.filter(|_| !self.config.decode) {
            if output
                .write_encoded(format, payload)
                .map_err(|e| e.to_string())?
            {
                return count();
            }
        }
        let records = decode(format, payload).map_err(|e| e.to_string())?;
        if let Some(output) = self.hooks.output {
            output.write(&records).map_err(|e| e.to_string())?;
        }
        Ok(records.len() as u64)
    }
}
