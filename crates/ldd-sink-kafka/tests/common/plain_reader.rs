//! A deliberately independent reader of an export, for tests that must not trust ldd's own
//! read-back: it uses no ldd type, only `rdkafka`, `serde_json` and std.
//!
//! It reads every partition range `[first_offset, last_offset]` named by a manifest JSON with a
//! `read_committed` consumer, applies NO header filtering (messages of aborted attempts of a
//! non-transactional export are therefore counted), decodes the payloads by the manifest's
//! `format` and counts the records and the distinct keys the caller derives from them.
//!
//! # When a partition is done
//!
//! A `read_committed` consumer never hands out control records (transaction markers) or
//! messages of aborted transactions, so a message at exactly `last_offset` may never arrive.
//! A partition is done as soon as either
//!
//! - a message with offset `>= last_offset` arrives (one at `last_offset` is counted, later
//!   ones are ignored: everything up to `last_offset` came before it, in offset order), or
//! - the consumer's `position()` for the partition is `> last_offset`. librdkafka moves the
//!   position past the control records it swallows while polling (`poll` may then return
//!   nothing), and past every message it hands out, so a position beyond `last_offset` means
//!   nothing at or below `last_offset` is left to read.
//!
//! The position is checked after every poll that returns nothing and at least every 100 ms.
//! If the overall `timeout` passes first the reader panics, naming every unfinished
//! partition with its position and watermarks (a partition whose high watermark is `<=
//! last_offset` lost data, e.g. to an unclean broker crash).

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::Value;

/// What the plain reader found in the manifest's ranges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlainReadReport {
    /// Records decoded, duplicates included.
    pub total: u64,
    /// Distinct `key_of(record)` values among them.
    pub distinct: u64,
    /// `total - distinct`: records whose key was already seen.
    pub duplicated: u64,
}

/// The payload formats the reader can decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PayloadFormat {
    /// One JSON object per message.
    Json,
    /// Newline-separated JSON objects per message.
    Jsonl,
}

/// One partition range of the manifest and the reading progress in it.
#[derive(Debug)]
struct Range {
    /// First offset of the range (inclusive).
    first: i64,
    /// Last offset of the range (inclusive).
    last: i64,
    /// Offset of the last message handed out in the range, if any.
    last_seen: Option<i64>,
    /// Whether nothing at or below `last` is left to read.
    done: bool,
}

/// Reads the file at `path` as manifest JSON and then does what [`read_manifest_ranges`] does.
///
/// Panics when the file cannot be read or is not JSON, and in every case in which
/// [`read_manifest_ranges`] panics.
pub fn read_manifest_file(
    brokers: &str,
    path: &Path,
    key_of: &dyn Fn(&Value) -> String,
    timeout: Duration,
) -> PlainReadReport {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| {
        panic!(
            "plain reader: cannot read the manifest {}: {e}",
            path.display()
        )
    });
    let manifest: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("plain reader: {} is not JSON: {e}", path.display()));
    read_manifest_ranges(brokers, &manifest, key_of, timeout)
}

/// Reads every partition range `[first_offset, last_offset]` of the manifest JSON (`topic`,
/// `format` one of `"json"`, `"jsonl"`, `"protobuf"`, and `partitions: [{partition,
/// first_offset, last_offset, ...}]`) from `brokers` and counts the records and the distinct
/// `key_of(record)` strings.
///
/// One `BaseConsumer` with `isolation.level=read_committed`, no offset commits and manual
/// assignment (no consumer group membership) reads all the ranges; message headers are not
/// looked at. See the module documentation for when a partition counts as read.
///
/// Panics when the manifest lacks a field or names an unknown format, for `"protobuf"`
/// (not supported), when a payload does not decode, when a start offset is gone from the
/// topic (offset out of range), and when `timeout` passes before every range is read (the
/// message names the unfinished partitions, their positions and watermarks).
pub fn read_manifest_ranges(
    brokers: &str,
    manifest: &Value,
    key_of: &dyn Fn(&Value) -> String,
    timeout: Duration,
) -> PlainReadReport {
    let started = Instant::now();
    let deadline = started + timeout;
    let topic = manifest
        .get("topic")
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("plain reader: the manifest has no string `topic`"));
    let format = match manifest.get("format").and_then(Value::as_str) {
        Some("json") => PayloadFormat::Json,
        Some("jsonl") => PayloadFormat::Jsonl,
        Some("protobuf") => panic!("protobuf not supported by the plain reader"),
        other => {
            panic!("plain reader: unknown manifest `format` {other:?} (json, jsonl, protobuf)")
        }
    };
    let mut ranges = parse_ranges(manifest);

    let mut report = PlainReadReport {
        total: 0,
        distinct: 0,
        duplicated: 0,
    };
    let mut keys: HashSet<String> = HashSet::new();
    if ranges.values().all(|r| r.done) {
        return report;
    }

    let consumer = consumer(brokers);
    let mut assignment = TopicPartitionList::new();
    for (&partition, range) in ranges.iter().filter(|(_, r)| !r.done) {
        assignment
            .add_partition_offset(topic, partition, Offset::Offset(range.first))
            .unwrap_or_else(|e| panic!("plain reader: building the assignment: {e}"));
    }
    consumer
        .assign(&assignment)
        .unwrap_or_else(|e| panic!("plain reader: assigning {topic} partitions: {e}"));

    let mut last_error: Option<String> = None;
    let mut last_position_check = Instant::now();
    while ranges.values().any(|r| !r.done) {
        if Instant::now() >= deadline {
            timed_out(&consumer, topic, &ranges, timeout, last_error.as_deref());
        }
        let polled = consumer.poll(Duration::from_millis(100));
        let mut check_positions = last_position_check.elapsed() >= Duration::from_millis(100);
        match polled {
            None => check_positions = true,
            Some(Ok(message)) => {
                let partition = message.partition();
                let offset = message.offset();
                if let Some(range) = ranges.get_mut(&partition).filter(|r| !r.done) {
                    if offset >= range.first && offset <= range.last {
                        range.last_seen = Some(offset);
                        let payload = message.payload().unwrap_or_else(|| {
                            panic!("plain reader: {topic}/{partition}@{offset} has no payload")
                        });
                        for record in decode(format, payload, topic, partition, offset) {
                            report.total += 1;
                            keys.insert(key_of(&record));
                        }
                    }
                    if offset >= range.last {
                        range.done = true;
                        pause(&consumer, topic, partition);
                    }
                }
            }
            Some(Err(err)) => {
                let code = err.rdkafka_error_code();
                if matches!(
                    code,
                    Some(RDKafkaErrorCode::AutoOffsetReset | RDKafkaErrorCode::OffsetOutOfRange)
                ) || matches!(err, KafkaError::MessageConsumptionFatal(_))
                {
                    let hint = if matches!(err, KafkaError::MessageConsumptionFatal(_)) {
                        "fatal consumer error"
                    } else {
                        "a start offset of the manifest is not in the topic: truncated, or past its end?"
                    };
                    panic!("plain reader: reading {topic} failed: {err} ({hint})");
                }
                // Transient (e.g. a broker restarting): keep polling until the deadline.
                last_error = Some(err.to_string());
                check_positions = true;
            }
        }
        if check_positions {
            last_position_check = Instant::now();
            check_done_by_position(&consumer, topic, &mut ranges);
        }
    }

    report.distinct = keys.len() as u64;
    report.duplicated = report.total - report.distinct;
    report
}

/// The partition ranges of the manifest by partition number. A range whose first offset is
/// past its last one holds nothing and starts done.
fn parse_ranges(manifest: &Value) -> BTreeMap<i32, Range> {
    let partitions = manifest
        .get("partitions")
        .and_then(Value::as_array)
        .unwrap_or_else(|| panic!("plain reader: the manifest has no array `partitions`"));
    let mut ranges = BTreeMap::new();
    for p in partitions {
        let field = |name: &str| {
            p.get(name).and_then(Value::as_i64).unwrap_or_else(|| {
                panic!("plain reader: manifest partition entry without integer `{name}`: {p}")
            })
        };
        let partition = i32::try_from(field("partition"))
            .unwrap_or_else(|_| panic!("plain reader: partition number out of range: {p}"));
        let (first, last) = (field("first_offset"), field("last_offset"));
        let range = Range {
            first,
            last,
            last_seen: None,
            done: first > last,
        };
        if ranges.insert(partition, range).is_some() {
            panic!("plain reader: partition {partition} is listed twice in the manifest");
        }
    }
    ranges
}

/// A `read_committed` consumer that never commits and never jumps silently when an offset is
/// gone (`auto.offset.reset=error`).
fn consumer(brokers: &str) -> BaseConsumer {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let group = format!("ldd-plain-reader-{}-{nanos}", std::process::id());
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", &group)
        .set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false")
        .set("auto.offset.reset", "error")
        .create()
        .unwrap_or_else(|e| panic!("plain reader: creating the consumer for {brokers}: {e}"))
}

/// Marks done every unfinished range whose consumer position is past its last offset.
fn check_done_by_position(consumer: &BaseConsumer, topic: &str, ranges: &mut BTreeMap<i32, Range>) {
    let Ok(positions) = consumer.position() else {
        return; // Retried on the next check; the deadline bounds the wait.
    };
    for (&partition, range) in ranges.iter_mut().filter(|(_, r)| !r.done) {
        let position = positions
            .find_partition(topic, partition)
            .map(|e| e.offset());
        if let Some(Offset::Offset(next)) = position {
            if next > range.last {
                range.done = true;
                pause(consumer, topic, partition);
            }
        }
    }
}

/// Stops fetching a finished partition (best effort: its later messages are ignored anyway).
fn pause(consumer: &BaseConsumer, topic: &str, partition: i32) {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(topic, partition);
    let _ = consumer.pause(&tpl);
}

/// The records of one payload.
fn decode(
    format: PayloadFormat,
    payload: &[u8],
    topic: &str,
    partition: i32,
    offset: i64,
) -> Vec<Value> {
    let parse = |bytes: &[u8]| -> Value {
        let value: Value = serde_json::from_slice(bytes).unwrap_or_else(|e| {
            panic!(
                "plain reader: {topic}/{partition}@{offset}: not JSON ({e}): {}",
                String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
            )
        });
        assert!(
            value.is_object(),
            "plain reader: {topic}/{partition}@{offset}: a record is not a JSON object: {value}"
        );
        value
    };
    match format {
        PayloadFormat::Json => vec![parse(payload)],
        PayloadFormat::Jsonl => payload
            .split(|&b| b == b'\n')
            .filter(|line| !line.iter().all(u8::is_ascii_whitespace))
            .map(parse)
            .collect(),
    }
}

/// Panics with the state of every unfinished partition.
fn timed_out(
    consumer: &BaseConsumer,
    topic: &str,
    ranges: &BTreeMap<i32, Range>,
    timeout: Duration,
    last_error: Option<&str>,
) -> ! {
    let positions = consumer.position().ok();
    let pending: Vec<String> = ranges
        .iter()
        .filter(|(_, r)| !r.done)
        .map(|(&partition, r)| {
            let position = positions
                .as_ref()
                .and_then(|tpl| tpl.find_partition(topic, partition))
                .map_or_else(|| "?".to_string(), |e| format!("{:?}", e.offset()));
            let watermarks = consumer
                .fetch_watermarks(topic, partition, Duration::from_secs(5))
                .map_or_else(|e| format!("unknown ({e})"), |(low, high)| format!("[{low}, {high})"));
            format!(
                "partition {partition}: range [{}, {}], last message read {:?}, position {position}, watermarks {watermarks}",
                r.first, r.last, r.last_seen
            )
        })
        .collect();
    panic!(
        "plain reader: {topic} not read within {timeout:?}; unfinished:\n  {}\nlast consumer error: {}",
        pending.join("\n  "),
        last_error.unwrap_or("none")
    );
}
