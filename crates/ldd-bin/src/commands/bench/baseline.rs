//! The bare baselines: what rdkafka alone does with the same bytes
//! (`ldd_sink_kafka::baseline`), and Kafka's own producer tool.

use anyhow::Context as _;
use ldd_core::{Format, GeneratorConfig, Manifest};
use ldd_sink_kafka::{baseline, KafkaClient, KafkaSinkConfig};

use super::table::Measure;

/// ldd's bare-rdkafka producer baseline, as a measure.
pub(super) fn produce(
    config: &KafkaSinkConfig,
    generator: &GeneratorConfig,
    format: Format,
    partitions: u32,
) -> anyhow::Result<Measure> {
    let run = baseline::produce(config, generator, format, partitions)?;
    Ok(measure(run))
}

/// ldd's bare-rdkafka consumer baseline, as a measure.
pub(super) fn consume(
    client: &KafkaClient,
    manifest: &Manifest,
    consumers: usize,
) -> anyhow::Result<Measure> {
    Ok(measure(baseline::consume(client, manifest, consumers)?))
}

fn measure(run: baseline::BareRun) -> Measure {
    Measure {
        records: run.records,
        bytes: run.bytes,
        seconds: run.seconds,
        peak_rss_mb: None,
    }
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
