//! Bare-rdkafka baselines for benchmarks (feature `fixtures`): what librdkafka alone does
//! with the same bytes ldd moves, so a benchmark can report ldd as a ratio against it.
//! One producer thread with ldd's producer settings; consumers split the partitions the
//! way ldd's read-back does.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ldd_core::{Encoder, Format, GeneratorConfig, Manifest};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use crate::client::KafkaClient;
use crate::config::KafkaSinkConfig;
use crate::error::{Error, Result};

/// What one baseline run did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BareRun {
    /// Records moved.
    pub records: u64,
    /// Payload bytes moved.
    pub bytes: u64,
    /// Wall time, in seconds.
    pub seconds: f64,
}

fn baseline_error(message: impl std::fmt::Display) -> Error {
    Error::Task(format!("baseline: {message}"))
}

#[derive(Default)]
struct Counting {
    ok: AtomicU64,
    failed: AtomicU64,
}

impl ClientContext for Counting {}
impl ProducerContext for Counting {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => self.ok.fetch_add(1, Ordering::Relaxed),
            Err(_) => self.failed.fetch_add(1, Ordering::Relaxed),
        };
    }
}

/// One thread generating and encoding the same records ldd would, sending them with a bare
/// `BaseProducer` (same producer settings), round-robin over partitions, then flushing.
pub fn produce(
    config: &KafkaSinkConfig,
    generator: &GeneratorConfig,
    format: Format,
    partitions: u32,
) -> Result<BareRun> {
    let producer: BaseProducer<Counting> = config
        .producer_config(None)
        .create_with_context(Counting::default())
        .map_err(|e| Error::kafka("creating the baseline producer", e))?;
    let started = Instant::now();
    let mut encoder = Encoder::new(format, ldd_core::format::DEFAULT_BATCH_BYTES);
    let (mut bytes, mut messages) = (0u64, 0u64);
    let mut send = |payload: Vec<u8>| -> Result<()> {
        bytes += payload.len() as u64;
        let partition = (messages % u64::from(partitions)) as i32;
        messages += 1;
        let mut record = BaseRecord::to(&config.topic)
            .partition(partition)
            .payload(&payload)
            .key("");
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    producer.poll(Duration::from_millis(5));
                }
                Err((e, _)) => return Err(Error::kafka("baseline send", e)),
            }
        }
        producer.poll(Duration::ZERO);
        Ok(())
    };
    for i in 0..generator.records {
        if let Some(m) = encoder.push(&generator.record(i)).map_err(baseline_error)? {
            send(m.payload)?;
        }
    }
    if let Some(m) = encoder.finish() {
        send(m.payload)?;
    }
    producer
        .flush(Duration::from_secs(300))
        .map_err(|e| Error::kafka("flushing the baseline producer", e))?;
    let ctx = producer.context();
    let failed = ctx.failed.load(Ordering::Relaxed);
    if failed > 0 || ctx.ok.load(Ordering::Relaxed) != messages {
        return Err(baseline_error(format!(
            "baseline producer lost {failed} of {messages} messages"
        )));
    }
    Ok(BareRun {
        records: generator.records,
        bytes,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// `consumers` bare consumers (threads), each assigned an equal share of the partitions
/// at the manifest's first offsets the way ldd's read-back splits them, reading until each
/// reaches its last offset; takes the record count from the manifest (it does not decode).
pub fn consume(client: &KafkaClient, manifest: &Manifest, consumers: usize) -> Result<BareRun> {
    // Timed from client creation, like ldd's read-back.
    let started = Instant::now();
    let threads = consumers.clamp(1, manifest.partitions.len().max(1));
    let mut shares: Vec<Vec<(i32, i64, i64)>> = vec![Vec::new(); threads];
    for (i, p) in manifest.partitions.iter().enumerate() {
        shares[i % threads].push((p.partition as i32, p.first_offset, p.last_offset));
    }
    let bytes = std::thread::scope(|scope| {
        let readers: Vec<_> = shares
            .iter()
            .filter(|share| !share.is_empty())
            .map(|share| scope.spawn(|| consume_share(client, &manifest.topic, share)))
            .collect();
        readers.into_iter().try_fold(0u64, |total, reader| {
            let bytes = reader
                .join()
                .map_err(|_| baseline_error("a baseline consumer thread panicked"))??;
            Ok::<_, Error>(total + bytes)
        })
    })?;
    Ok(BareRun {
        records: manifest.total_records,
        bytes,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// One bare consumer over `(partition, first offset, last offset)`s; answers the bytes read.
fn consume_share(client: &KafkaClient, topic: &str, share: &[(i32, i64, i64)]) -> Result<u64> {
    let consumer: BaseConsumer = client
        .plain_config()
        .set("group.id", "ldd-bench-baseline")
        .set("enable.auto.commit", "false")
        .set("fetch.max.bytes", "52428800")
        .set("max.partition.fetch.bytes", "16777216")
        .create()
        .map_err(|e| Error::kafka("creating a baseline consumer", e))?;
    let mut tpl = TopicPartitionList::new();
    let mut remaining = std::collections::HashMap::new();
    for &(partition, first, last) in share {
        tpl.add_partition_offset(topic, partition, Offset::Offset(first))
            .map_err(|e| Error::kafka("assigning the baseline consumer", e))?;
        remaining.insert(partition, last);
    }
    consumer
        .assign(&tpl)
        .map_err(|e| Error::kafka("assigning the baseline consumer", e))?;
    let mut bytes = 0u64;
    let mut idle = Instant::now();
    while !remaining.is_empty() {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(msg)) => {
                idle = Instant::now();
                bytes += msg.payload_len() as u64;
                if remaining
                    .get(&msg.partition())
                    .is_some_and(|last| msg.offset() >= *last)
                {
                    remaining.remove(&msg.partition());
                }
            }
            Some(Err(e)) => return Err(Error::kafka("baseline consume", e)),
            None if idle.elapsed() > Duration::from_secs(30) => {
                return Err(baseline_error(format!(
                    "baseline consumer stalled with {} partitions left",
                    remaining.len()
                )))
            }
            None => {}
        }
    }
    Ok(bytes)
}
