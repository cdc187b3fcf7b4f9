//! The bare baselines: what rdkafka alone does with the same bytes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use ldd_core::{Encoder, Format, GeneratorConfig, Manifest};
use ldd_sink_kafka::{KafkaClient, KafkaSinkConfig};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use super::table::Measure;

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
pub(super) fn produce(
    config: &KafkaSinkConfig,
    generator: &GeneratorConfig,
    format: Format,
    partitions: u32,
) -> anyhow::Result<Measure> {
    let producer: BaseProducer<Counting> = config
        .producer_config(None)
        .create_with_context(Counting::default())
        .context("creating the baseline producer")?;
    let started = Instant::now();
    let mut encoder = Encoder::new(format, ldd_core::format::DEFAULT_BATCH_BYTES);
    let (mut bytes, mut messages) = (0u64, 0u64);
    let mut send = |payload: Vec<u8>| -> anyhow::Result<()> {
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
                Err((e, _)) => return Err(e).context("baseline send"),
            }
        }
        producer.poll(Duration::ZERO);
        Ok(())
    };
    for i in 0..generator.records {
        if let Some(m) = encoder.push(&generator.record(i))? {
            send(m.payload)?;
        }
    }
    if let Some(m) = encoder.finish() {
        send(m.payload)?;
    }
    producer
        .flush(Duration::from_secs(300))
        .context("flushing the baseline producer")?;
    let ctx = producer.context();
    let failed = ctx.failed.load(Ordering::Relaxed);
    if failed > 0 || ctx.ok.load(Ordering::Relaxed) != messages {
        anyhow::bail!("baseline producer lost {failed} of {messages} messages");
    }
    Ok(Measure {
        records: generator.records,
        bytes,
        seconds: started.elapsed().as_secs_f64(),
        peak_rss_mb: None,
    })
}

/// `consumers` bare consumers (threads), each assigned an equal share of the partitions
/// at the manifest's first offsets the way ldd's read-back splits them, reading until each
/// reaches its last offset; takes the record count from the manifest (it does not decode).
pub(super) fn consume(
    client: &KafkaClient,
    manifest: &Manifest,
    consumers: usize,
) -> anyhow::Result<Measure> {
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
                .map_err(|_| anyhow::anyhow!("a baseline consumer thread panicked"))??;
            anyhow::Ok(total + bytes)
        })
    })?;
    Ok(Measure {
        records: manifest.total_records,
        bytes,
        seconds: started.elapsed().as_secs_f64(),
        peak_rss_mb: None,
    })
}

/// One bare consumer over `(partition, first offset, last offset)`s; answers the bytes read.
fn consume_share(
    client: &KafkaClient,
    topic: &str,
    share: &[(i32, i64, i64)],
) -> anyhow::Result<u64> {
    let consumer: BaseConsumer = client
        .plain_config()
        .set("group.id", "ldd-bench-baseline")
        .set("enable.auto.commit", "false")
        .set("fetch.max.bytes", "52428800")
        .set("max.partition.fetch.bytes", "16777216")
        .create()
        .context("creating a baseline consumer")?;
    let mut tpl = TopicPartitionList::new();
    let mut remaining = std::collections::HashMap::new();
    for &(partition, first, last) in share {
        tpl.add_partition_offset(topic, partition, Offset::Offset(first))?;
        remaining.insert(partition, last);
    }
    consumer.assign(&tpl)?;
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
            Some(Err(e)) => return Err(e).context("baseline consume"),
            None if idle.elapsed() > Duration::from_secs(30) => {
                anyhow::bail!(
                    "baseline consumer stalled with {} partitions left",
                    remaining.len()
                )
            }
            None => {}
        }
    }
    Ok(bytes)
}

/// Runs Kafka's `ProducerPerformance` tool and parses its summary line.
pub(super) async fn kafka_producer_perf(
    classpath: &str,
    brokers: &str,
    topic: &str,
    records: u64,
) -> anyhow::Result<Measure> {
    let run = tokio::process::Command::new("java")
        .args([
            "-Xmx512m",
            "-cp",
            classpath,
            "org.apache.kafka.tools.ProducerPerformance",
        ])
        .args(["--topic", topic, "--num-records", &records.to_string()])
        .args([
            "--record-size",
            "200",
            "--throughput",
            "-1",
            "--producer-props",
        ])
        .arg(format!("bootstrap.servers={brokers}"))
        .args([
            "acks=all",
            "compression.type=lz4",
            "linger.ms=20",
            "batch.size=1048576",
        ])
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(std::time::Duration::from_secs(900), run)
        .await
        .context("Kafka's ProducerPerformance did not finish within 15 minutes")?
        .context("running Kafka's ProducerPerformance (is java installed?)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    // "N records sent, X records/sec (Y MB/sec), ..." — the last such line is the summary.
    let line = text
        .lines()
        .rev()
        .find(|l| l.contains("records sent"))
        .with_context(|| {
            format!(
                "no summary from ProducerPerformance: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })?;
    let rate: f64 = line
        .split(',')
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("cannot parse `{line}`"))?;
    Ok(Measure {
        records,
        bytes: records * 200,
        seconds: records as f64 / rate.max(1e-9),
        peak_rss_mb: None,
    })
}
