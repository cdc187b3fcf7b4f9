//! Chunk attempts that fail halfway, on the real broker: a test sink wraps [`KafkaSink`] and
//! makes chosen first attempts fail with a retryable error after half of their records are
//! in the topic (at `flush` for chunks 1, 4 and 7, in the middle of `send` for chunk 2, and
//! at `flush` for whichever chunk starts last). The engine retries them; the manifest names
//! attempt 2 for exactly those chunks.
//!
//! - Exactly once (the default): the failed attempts' transactions are aborted, so the
//!   independent plain `read_committed` reader (no header filtering) sees every record of
//!   the manifest's ranges exactly once.
//! - At least once (the opt-out): the failed attempts' messages stay visible, and where they
//!   lie inside a partition's range the plain reader counts them twice; only a header-aware
//!   reader (`read_back`, which skips attempts the manifest does not name) reads exactly the
//!   dataset. This documents what the opt-out gives up.
//!
//! Opt-in (`--include-ignored`; scripts/test.sh runs them); without `LDD_TEST_KAFKA_BROKERS`
//! they fail loudly.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use common::plain_reader::{read_manifest_ranges, PlainReadReport};
use common::{random_topic, Broker};
use ldd_core::{
    export, ChunkContext, ChunkDelivery, ChunkManifest, ChunkWriter, Delivery, ExportControl,
    ExportOptions, Format, GeneratorConfig, GeneratorSource, JobCountPartitioner, Manifest,
    OutMessage, Sink,
};
use ldd_sink_kafka::readback::{read_back, ReadBackConfig};
use ldd_sink_kafka::{KafkaSink, KafkaSinkConfig};

const RECORDS: u64 = 80_000;
const PARTITIONS: u32 = 4;
const CHUNKS: u32 = 16;
const RECORDS_PER_CHUNK: u64 = RECORDS / CHUNKS as u64;

/// Where an attempt fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// Half of the records are sent (the rest dropped), acknowledged, then `flush` fails.
    AtFlush,
    /// The `send` that reaches half of the records forwards them, waits for their
    /// acknowledgements and fails; the engine aborts the attempt.
    AtSend,
}

/// The injected faults by (chunk id, attempt), besides [`FaultySink`]'s fault on the last
/// chunk to start.
fn faults() -> BTreeMap<(u32, u32), Fault> {
    BTreeMap::from([
        ((1, 1), Fault::AtFlush),
        ((2, 1), Fault::AtSend),
        ((4, 1), Fault::AtFlush),
        ((7, 1), Fault::AtFlush),
    ])
}

/// A failed attempt and where its messages landed.
#[derive(Debug, Clone)]
struct FailedAttempt {
    chunk_id: u32,
    attempt: u32,
    fault: Fault,
    /// Records of the messages that reached the topic.
    records: u64,
    delivery: ChunkDelivery,
}

/// [`KafkaSink`] with injected failures. Every `Sink` method is forwarded, the provided ones
/// too (`delivery`, `writer_slots`, `prepare`, `chunk_visible`): the defaults would turn a
/// transactional sink into one that is neither fenced nor probed.
///
/// Besides `faults`, the first attempt of the last chunk to start fails at `flush` too. With
/// one worker, every other chunk of its partition was fed before it, and at least two of
/// them commit on their first attempt (the static faults hit one chunk per partition), so
/// its failed messages certainly lie inside the partition's range of the manifest. That
/// makes the at-least-once test's duplicates certain whatever order the chunks run in.
struct FaultySink {
    inner: KafkaSink,
    faults: BTreeMap<(u32, u32), Fault>,
    /// First attempts opened so far.
    first_attempts: Mutex<u32>,
    /// The faults injected, by (chunk id, attempt).
    injected: Arc<Mutex<BTreeMap<(u32, u32), Fault>>>,
    failed: Arc<Mutex<Vec<FailedAttempt>>>,
}

#[async_trait]
impl Sink for FaultySink {
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
        let writer = self.inner.open_chunk(slot, chunk).await?;
        let key = (chunk.chunk_id, chunk.attempt);
        let mut fault = self.faults.get(&key).copied();
        if chunk.attempt == 1 {
            let mut opened = self.first_attempts.lock().unwrap();
            *opened += 1;
            if *opened == CHUNKS {
                fault = fault.or(Some(Fault::AtFlush));
            }
        }
        if let Some(fault) = fault {
            self.injected.lock().unwrap().insert(key, fault);
        }
        Ok(match fault {
            None => writer,
            Some(fault) => Box::new(FaultyWriter {
                inner: writer,
                fault,
                context: chunk.clone(),
                forwarded: 0,
                failed: self.failed.clone(),
            }),
        })
    }
}

struct FaultyWriter {
    inner: Box<dyn ChunkWriter>,
    fault: Fault,
    context: ChunkContext,
    /// Records handed to the inner writer.
    forwarded: u64,
    failed: Arc<Mutex<Vec<FailedAttempt>>>,
}

impl FaultyWriter {
    fn half(&self) -> u64 {
        RECORDS_PER_CHUNK / 2
    }

    /// Waits for the acknowledgements of what was forwarded and records where it landed.
    async fn record_failure(&mut self) -> ldd_core::Result<()> {
        let delivery = self.inner.flush().await?;
        assert!(
            delivery.messages > 0,
            "chunk {}: the injected failure must come after messages are in the topic",
            self.context.chunk_id
        );
        self.failed.lock().unwrap().push(FailedAttempt {
            chunk_id: self.context.chunk_id,
            attempt: self.context.attempt,
            fault: self.fault,
            records: self.forwarded,
            delivery,
        });
        Ok(())
    }

    fn injected(&self, at: &str) -> ldd_core::Error {
        ldd_core::Error::sink_msg(
            format!(
                "injected failure at {at} of chunk {} attempt {} after {} records",
                self.context.chunk_id, self.context.attempt, self.forwarded
            ),
            true,
        )
    }
}

#[async_trait]
impl ChunkWriter for FaultyWriter {
    async fn send(&mut self, messages: Vec<OutMessage>) -> ldd_core::Result<()> {
        if self.forwarded >= self.half() {
            // Past half: dropped (AtFlush); AtSend has failed already.
            return match self.fault {
                Fault::AtFlush => Ok(()),
                Fault::AtSend => Err(self.injected("send")),
            };
        }
        let mut prefix = Vec::new();
        for message in messages {
            if self.forwarded >= self.half() {
                break;
            }
            self.forwarded += u64::from(message.records);
            prefix.push(message);
        }
        self.inner.send(prefix).await?;
        if self.fault == Fault::AtSend && self.forwarded >= self.half() {
            self.record_failure().await?;
            return Err(self.injected("send"));
        }
        Ok(())
    }

    async fn flush(&mut self) -> ldd_core::Result<ChunkDelivery> {
        match self.fault {
            Fault::AtFlush => {
                self.record_failure().await?;
                Err(self.injected("flush"))
            }
            Fault::AtSend => panic!(
                "chunk {}: flush after the injected send failure",
                self.context.chunk_id
            ),
        }
    }

    async fn commit(self: Box<Self>) -> ldd_core::Result<()> {
        panic!(
            "chunk {} attempt {}: a failed attempt was committed",
            self.context.chunk_id, self.context.attempt
        )
    }

    async fn abort(self: Box<Self>) -> ldd_core::Result<()> {
        self.inner.abort().await
    }
}

/// Exports the generated dataset through a [`FaultySink`] and checks what every reader
/// agrees on: the retried chunks, and that `read_back` verifies. Returns the manifest, the
/// failed attempts and the plain reader's report.
async fn export_with_faults(
    broker: &Broker,
    topic: &str,
    delivery: Delivery,
) -> (Manifest, Vec<FailedAttempt>, PlainReadReport) {
    broker.prepare(topic, PARTITIONS);
    let inner = KafkaSink::connect(KafkaSinkConfig {
        client: broker.brokers.clone().into(),
        topic: topic.into(),
        create_partitions: Some(PARTITIONS),
        delivery,
        transactional_id_prefix: Some(format!("{topic}-tx")),
        linger_ms: 5,
        ..Default::default()
    })
    .await
    .expect("sink connects");
    assert_eq!(inner.config().delivery, delivery);
    let failed = Arc::new(Mutex::new(Vec::new()));
    let injected = Arc::new(Mutex::new(BTreeMap::new()));
    let sink = FaultySink {
        inner,
        faults: faults(),
        first_attempts: Mutex::new(0),
        injected: injected.clone(),
        failed: failed.clone(),
    };
    let source = Arc::new(GeneratorSource::new(GeneratorConfig {
        records: RECORDS,
        ..Default::default()
    }));
    let manifest = export(
        source,
        Arc::new(sink),
        &JobCountPartitioner {
            jobs: CHUNKS as usize,
            drop_last: false,
        },
        ExportOptions {
            export_id: Some(format!("inject-{}", uuid::Uuid::new_v4().simple())),
            format: Format::Jsonl,
            batch_bytes: 8 * 1024,
            // One worker: chunks are fed one after the other, so every failed attempt's
            // messages are contiguous in their partition.
            workers: 1,
            ..Default::default()
        },
        ExportControl::default(),
    )
    .await
    .expect("the export succeeds despite the injected failures");

    assert_eq!(manifest.delivery, delivery);
    assert_eq!(manifest.transactional, delivery == Delivery::ExactlyOnce);
    assert_eq!(manifest.total_records, RECORDS);
    assert_eq!(manifest.chunks.len(), CHUNKS as usize);
    let injected = injected.lock().unwrap().clone();
    for (key, fault) in faults() {
        assert_eq!(injected.get(&key), Some(&fault), "{key:?} was not injected");
    }
    assert!(
        (faults().len()..=faults().len() + 1).contains(&injected.len()),
        "{injected:?}"
    );
    for chunk in &manifest.chunks {
        assert_eq!(chunk.records, RECORDS_PER_CHUNK, "{chunk:?}");
        let expected = if injected.contains_key(&(chunk.chunk_id, 1)) {
            2
        } else {
            1
        };
        assert_eq!(chunk.attempt, expected, "chunk {}", chunk.chunk_id);
    }
    let failed = failed.lock().unwrap().clone();
    let mut seen: Vec<(u32, u32, Fault)> = failed
        .iter()
        .map(|f| (f.chunk_id, f.attempt, f.fault))
        .collect();
    seen.sort_by_key(|&(c, a, _)| (c, a));
    let wanted: Vec<(u32, u32, Fault)> = injected.iter().map(|(&(c, a), &f)| (c, a, f)).collect();
    assert_eq!(seen, wanted, "every injected failure happened once");
    for f in &failed {
        assert!(
            f.records >= RECORDS_PER_CHUNK / 2 && f.records < RECORDS_PER_CHUNK,
            "{f:?}"
        );
    }

    // ldd's own read-back takes the attempts the manifest names, in both modes.
    let config = ReadBackConfig {
        idle_timeout: Duration::from_secs(20),
        ..ReadBackConfig::new(broker.brokers.clone())
    };
    let checked = manifest.clone();
    let report = tokio::task::spawn_blocking(move || read_back(&checked, &config, None))
        .await
        .unwrap()
        .unwrap();
    assert!(report.is_verified(), "{delivery}: {:?}", report.problems);
    assert_eq!(report.records, RECORDS);

    let (brokers, json) = (
        broker.brokers.clone(),
        serde_json::to_value(&manifest).unwrap(),
    );
    let plain = tokio::task::spawn_blocking(move || {
        read_manifest_ranges(&brokers, &json, &seq_key, Duration::from_secs(120))
    })
    .await
    .unwrap();
    (manifest, failed, plain)
}

/// The generator's unique field.
fn seq_key(record: &serde_json::Value) -> String {
    let seq = record["seq"]
        .as_u64()
        .unwrap_or_else(|| panic!("a record without an integer `seq`: {record}"));
    assert!(seq < RECORDS, "seq {seq} outside the dataset");
    seq.to_string()
}

/// Records of failed attempts that lie inside their partition's range of the manifest
/// (certainly read by a reader of the ranges) and that straddle its start (partly read).
fn failed_inside_ranges(manifest: &Manifest, failed: &[FailedAttempt]) -> (u64, u64) {
    let (mut inside, mut straddling) = (0, 0);
    for f in failed {
        let range = manifest
            .partitions
            .iter()
            .find(|p| p.partition == f.delivery.partition)
            .expect("the failed attempt's partition is in the manifest");
        let (first, last) = (
            f.delivery.first_offset.unwrap(),
            f.delivery.last_offset.unwrap(),
        );
        if first >= range.first_offset && last <= range.last_offset {
            inside += f.records;
        } else if last >= range.first_offset && first <= range.last_offset {
            straddling += f.records;
        }
    }
    (inside, straddling)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real Kafka broker (LDD_TEST_KAFKA_BROKERS); scripts/test.sh runs it"]
async fn exactly_once_hides_attempts_that_failed_halfway() {
    let broker = Broker::real();
    let topic = random_topic("inject-eo");
    let (manifest, failed, plain) =
        export_with_faults(&broker, &topic, Delivery::ExactlyOnce).await;
    // Aborted messages lie inside the ranges the plain reader reads (at least those of the
    // last chunk), and it must skip them all.
    let (inside, _) = failed_inside_ranges(&manifest, &failed);
    assert!(inside > 0, "{failed:?} {:?}", manifest.partitions);
    assert_eq!(
        plain,
        PlainReadReport {
            total: RECORDS,
            distinct: RECORDS,
            duplicated: 0,
        },
        "a read_committed reader of the ranges sees no aborted attempt"
    );
    broker.cleanup(&topic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real Kafka broker (LDD_TEST_KAFKA_BROKERS); scripts/test.sh runs it"]
async fn at_least_once_leaves_attempts_that_failed_halfway_visible() {
    let broker = Broker::real();
    let topic = random_topic("inject-alo");
    let (manifest, failed, plain) =
        export_with_faults(&broker, &topic, Delivery::AtLeastOnce).await;
    // Every record is there; the failed attempts' records inside the ranges come twice.
    assert_eq!(plain.distinct, RECORDS, "{plain:?}");
    assert_eq!(plain.total, RECORDS + plain.duplicated, "{plain:?}");
    let (inside, straddling) = failed_inside_ranges(&manifest, &failed);
    eprintln!(
        "at-least-once: plain reader {plain:?}; failed-attempt records inside the ranges {inside}, straddling {straddling}"
    );
    assert!(
        inside > 0,
        "the last chunk's failed attempt must lie inside its partition's range: {failed:?} {:?}",
        manifest.partitions
    );
    assert!(
        plain.duplicated >= inside && plain.duplicated <= inside + straddling,
        "duplicates {} should be the {inside} (+ up to {straddling}) records of failed attempts inside the ranges: {failed:?}",
        plain.duplicated
    );
    assert!(plain.duplicated > 0, "{plain:?}");
    broker.cleanup(&topic).await;
}
