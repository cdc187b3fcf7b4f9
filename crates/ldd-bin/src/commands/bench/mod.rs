//! `ldd bench`: ldd next to bare baselines on the same data, interleaved in one run, so
//! that only ratios taken side by side are reported (shared machines are noisy).

mod baseline;
mod rss;
mod scale_out;
mod sources;
mod table;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use clap::Args;
use ldd_core::{
    export, Delivery, ExportControl, ExportOptions, Format, GeneratorConfig, GeneratorSource,
    JobCountPartitioner, Manifest,
};
use ldd_sink_kafka::readback::{follow, read_back, LocalFeed, ReadBackConfig};
use ldd_sink_kafka::{
    Compression, EmbeddedCluster, KafkaClient, KafkaSink, KafkaSinkConfig, TopicAdmin,
};

pub(crate) use rss::report_if_asked as report_peak_rss_if_asked;
use table::{Measure, Row};

/// Flags of this subcommand.
#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    /// Kafka bootstrap servers (use `--embedded` for an in-process cluster smoke run).
    #[arg(long, env = "LDD_KAFKA_BROKERS", required_unless_present = "embedded")]
    pub(crate) brokers: Option<String>,
    /// Run against the embedded mock cluster (a smoke test of the harness, not a benchmark).
    #[arg(long)]
    pub(crate) embedded: bool,
    /// Dataset sizes in records (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "1000000,5000000")]
    pub(crate) sizes: Vec<u64>,
    /// Formats (comma-separated): json is one record per message, jsonl/protobuf batched.
    #[arg(long, value_delimiter = ',', default_value = "json,jsonl")]
    pub(crate) formats: Vec<String>,
    /// Partitions of the benchmark topics.
    #[arg(long, default_value_t = 8)]
    pub(crate) partitions: u32,
    /// Rounds of each baseline/ldd pair (interleaved); the best of each is reported.
    #[arg(long, default_value_t = 1)]
    pub(crate) rounds: u32,
    /// Export workers (default: the number of CPUs).
    #[arg(long)]
    pub(crate) workers: Option<usize>,
    /// Also measure the peak RSS of `ldd export` and of `ldd consume` to every output
    /// (discard, jsonl, csv, parquet) as child processes, per format, and how it grows
    /// from the smallest size to the largest.
    #[arg(long)]
    pub(crate) rss: bool,
    /// Classpath of Kafka's tools, to add `ProducerPerformance` as a reference line.
    #[arg(long, env = "LDD_KAFKA_CLASSPATH")]
    pub(crate) kafka_classpath: Option<String>,
    /// Also measure the MongoDB source path on this server (loads, then drops, a dataset).
    #[arg(long, env = "LDD_TEST_MONGO_URL")]
    pub(crate) mongo_url: Option<String>,
    /// Also measure the InfluxDB source path on this server (loads, then drops, a dataset).
    #[arg(long, env = "LDD_TEST_INFLUX_URL")]
    pub(crate) influx_url: Option<String>,
    /// Also measure the InfluxDB 2.x source path on this server (with --influx2-token and
    /// --influx2-org; loads, then drops, a bucket).
    #[arg(long, env = "LDD_TEST_INFLUX2_URL")]
    pub(crate) influx2_url: Option<String>,
    /// Token for --influx2-url. Prefer the environment variable: flags show in process lists.
    #[arg(long, env = "LDD_TEST_INFLUX2_TOKEN", hide_env_values = true)]
    pub(crate) influx2_token: Option<String>,
    /// Organisation for --influx2-url.
    #[arg(long, env = "LDD_TEST_INFLUX2_ORG")]
    pub(crate) influx2_org: Option<String>,
    /// Largest size for the source paths (loading is slow on some servers).
    #[arg(long, default_value_t = 1_000_000)]
    pub(crate) source_max_size: u64,
    /// Also measure scale-out: one export run by 1, 2 and 4 `ldd worker` processes, each
    /// limited to this many records per second, and one worker against a local export.
    #[arg(long)]
    pub(crate) scale_out_rate: Option<u32>,
    /// Records of the scale-out export.
    #[arg(long, default_value_t = 500_000)]
    pub(crate) scale_out_records: u64,
    /// Write the results as JSON here.
    #[arg(long)]
    pub(crate) json_out: Option<PathBuf>,
}

pub(crate) async fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    let formats = args
        .formats
        .iter()
        .map(|f| f.parse::<Format>())
        .collect::<Result<Vec<_>, _>>()?;
    if args.sizes.is_empty() || args.rounds == 0 || args.partitions == 0 {
        anyhow::bail!("give at least one size, one round and one partition");
    }
    let embedded = if args.embedded {
        Some(EmbeddedCluster::start(1)?)
    } else {
        None
    };
    let brokers = match (&embedded, &args.brokers) {
        (Some(cluster), _) => cluster.bootstrap_servers(),
        (None, Some(b)) => b.clone(),
        (None, None) => anyhow::bail!("give --brokers or --embedded"),
    };
    let bench = Bench {
        client: KafkaClient::new(brokers),
        embedded,
        partitions: args.partitions,
        workers: args
            .workers
            .unwrap_or_else(crate::commands::shared::default_workers),
    };
    let mut rows = Vec::new();
    let mut rss_log = rss::RssLog::default();
    for &size in &args.sizes {
        for &format in &formats {
            let produce = bench.produce_pair(size, format, args.rounds).await?;
            rows.push(produce.0);
            rows.push(bench.read_back_pair(&produce.1, args.rounds).await?);
            rows.push(bench.delivery_pair(size, format, args.rounds).await?);
            rows.push(bench.follow_pair(size, format, args.rounds).await?);
        }
        // Kafka's tool needs a real broker; the embedded cluster is only for smoke runs.
        if let (Some(cp), None) = (&args.kafka_classpath, &bench.embedded) {
            rows.push(bench.kafka_perf_reference(cp, size).await?);
        }
        if size <= args.source_max_size && bench.embedded.is_none() {
            use ldd_sources::{SourceConfig, SourceKind};
            if let Some(url) = &args.influx_url {
                let influx1 = SourceConfig::new(SourceKind::Influx, url);
                rows.extend(bench.source_pair(influx1, size, args.rounds).await?);
            }
            if let Some(url) = &args.influx2_url {
                let influx2 = SourceConfig {
                    token: Some(args.influx2_token.clone().ok_or_else(|| {
                        anyhow::anyhow!(
                            "--influx2-url needs --influx2-token (or LDD_TEST_INFLUX2_TOKEN)"
                        )
                    })?),
                    org: args.influx2_org.clone(),
                    ..SourceConfig::new(SourceKind::Influx, url)
                };
                rows.extend(bench.source_pair(influx2, size, args.rounds).await?);
            }
            if let Some(url) = &args.mongo_url {
                let mongo = SourceConfig::new(SourceKind::Mongo, url);
                rows.extend(bench.source_pair(mongo, size, args.rounds).await?);
            }
        }
        if args.rss && bench.embedded.is_none() {
            for &format in &formats {
                rows.extend(
                    rss::measure(
                        &bench.client.brokers,
                        size,
                        bench.partitions,
                        format,
                        &mut rss_log,
                    )
                    .await?,
                );
            }
        }
    }
    if let (Some(rate), None) = (args.scale_out_rate, &bench.embedded) {
        rows.extend(bench.scale_out_rows(args.scale_out_records, rate).await?);
    }
    rows.extend(rss_log.growth_rows());
    table::print(&rows);
    if let Some(path) = &args.json_out {
        std::fs::write(path, serde_json::to_vec_pretty(&rows)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}

struct Bench {
    /// The cluster every client of the benchmark talks to (ldd's and the baseline's).
    client: KafkaClient,
    embedded: Option<EmbeddedCluster>,
    partitions: u32,
    workers: usize,
}

impl Bench {
    async fn topic(&self, label: &str) -> anyhow::Result<String> {
        let topic = format!("ldd-bench-{label}-{}", uuid::Uuid::new_v4().simple());
        match &self.embedded {
            Some(cluster) => cluster.create_topic(&topic, self.partitions as i32, 1)?,
            None => {
                TopicAdmin::new(self.client.clone())
                    .create_topic(&topic, self.partitions, 1)
                    .await?
            }
        }
        Ok(topic)
    }

    async fn cleanup(&self, topic: &str) {
        if self.embedded.is_none() {
            if let Err(e) = TopicAdmin::new(self.client.clone())
                .delete_topic(topic)
                .await
            {
                tracing::warn!(%topic, error = %e, "could not delete a benchmark topic");
            }
        }
    }

    fn sink_config(&self, topic: &str) -> KafkaSinkConfig {
        KafkaSinkConfig {
            client: self.client.clone(),
            topic: topic.into(),
            compression: Compression::Lz4,
            ..Default::default()
        }
    }

    /// Bare producer then ldd, `rounds` times; returns the row and the last ldd manifest.
    async fn produce_pair(
        &self,
        size: u64,
        format: Format,
        rounds: u32,
    ) -> anyhow::Result<(Row, Manifest)> {
        let generator = GeneratorConfig {
            records: size,
            ..Default::default()
        };
        let mut base = Measure::default();
        let mut ours = Measure::default();
        let mut manifest = None;
        for _ in 0..rounds {
            let topic = self.topic("base").await?;
            let config = self.sink_config(&topic);
            let (gen, parts) = (generator.clone(), self.partitions);
            let m = tokio::task::spawn_blocking(move || {
                baseline::produce(&config, &gen, format, parts)
            })
            .await??;
            base.keep_best(m);
            self.cleanup(&topic).await;

            let (measure, result) = self
                .ldd_export(&generator, format, Delivery::ExactlyOnce)
                .await?;
            ours.keep_best(measure);
            if let Some(old) = manifest.replace(result) {
                self.cleanup(&old.topic).await;
            }
        }
        let manifest = manifest.context("no round ran")?;
        Ok((Row::new("produce", format, size, base, ours), manifest))
    }

    /// One ldd export of the generated dataset into a new topic, timed.
    async fn ldd_export(
        &self,
        generator: &GeneratorConfig,
        format: Format,
        delivery: Delivery,
    ) -> anyhow::Result<(Measure, Manifest)> {
        let topic = self.topic("ldd").await?;
        self.ldd_export_into(
            &topic,
            generator,
            format,
            delivery,
            ExportControl::default(),
            None,
        )
        .await
    }

    /// One ldd export of the generated dataset into `topic`, timed.
    async fn ldd_export_into(
        &self,
        topic: &str,
        generator: &GeneratorConfig,
        format: Format,
        delivery: Delivery,
        control: ExportControl,
        export_id: Option<String>,
    ) -> anyhow::Result<(Measure, Manifest)> {
        let sink = KafkaSink::connect(KafkaSinkConfig {
            delivery,
            ..self.sink_config(topic)
        })
        .await?;
        let started = Instant::now();
        let manifest = export(
            Arc::new(GeneratorSource::new(generator.clone())),
            Arc::new(sink),
            &JobCountPartitioner::default(),
            ExportOptions {
                export_id,
                format,
                workers: self.workers,
                ..Default::default()
            },
            control,
        )
        .await?;
        let measure = Measure::of_export(&manifest, started);
        Ok((measure, manifest))
    }

    /// ldd exactly once (each chunk a transaction, the default) against ldd at least once
    /// (no transactions) on the same data, interleaved: what the guarantee costs.
    async fn delivery_pair(&self, size: u64, format: Format, rounds: u32) -> anyhow::Result<Row> {
        let generator = GeneratorConfig {
            records: size,
            ..Default::default()
        };
        let mut base = Measure::default();
        let mut ours = Measure::default();
        for _ in 0..rounds {
            for delivery in [Delivery::AtLeastOnce, Delivery::ExactlyOnce] {
                let (measure, manifest) = self.ldd_export(&generator, format, delivery).await?;
                self.cleanup(&manifest.topic).await;
                match delivery {
                    Delivery::AtLeastOnce => base.keep_best(measure),
                    Delivery::ExactlyOnce => ours.keep_best(measure),
                }
            }
        }
        Ok(Row::new(
            "exactly-once vs at-least-once",
            format,
            size,
            base,
            ours,
        ))
    }

    /// The export alone against the export with a follower reading each chunk as it commits
    /// (as `ldd consume --follow` does), timed until every record is read back and
    /// verified: what the time to "all data at the consumer" is, next to the export's.
    async fn follow_pair(&self, size: u64, format: Format, rounds: u32) -> anyhow::Result<Row> {
        let generator = GeneratorConfig {
            records: size,
            ..Default::default()
        };
        let mut base = Measure::default();
        let mut ours = Measure::default();
        for _ in 0..rounds {
            let (measure, manifest) = self
                .ldd_export(&generator, format, Delivery::ExactlyOnce)
                .await?;
            self.cleanup(&manifest.topic).await;
            base.keep_best(measure);

            let topic = self.topic("follow").await?;
            let export_id = uuid::Uuid::new_v4().to_string();
            let (feed, rx) = LocalFeed::new();
            let control = ExportControl {
                observer: Some(feed.announcer(topic.clone(), format)),
                ..Default::default()
            };
            let started = Instant::now();
            let (id, config) = (export_id.clone(), ReadBackConfig::new(self.client.clone()));
            let follower = tokio::task::spawn_blocking(move || follow(&id, rx, &config, None));
            let exported = self
                .ldd_export_into(
                    &topic,
                    &generator,
                    format,
                    Delivery::ExactlyOnce,
                    control,
                    Some(export_id.clone()),
                )
                .await;
            feed.finish(&export_id, exported.as_ref().map(|(_, manifest)| manifest));
            let followed = follower.await??;
            let seconds = started.elapsed().as_secs_f64();
            let (_, manifest) = exported?;
            self.cleanup(&manifest.topic).await;
            if !followed.report.is_verified() {
                anyhow::bail!(
                    "the followed export did not verify: {:?}",
                    followed.report.problems.first()
                );
            }
            ours.keep_best(Measure {
                records: followed.report.records,
                bytes: followed.report.bytes,
                seconds,
                ..Default::default()
            });
        }
        Ok(Row::new(
            "export+follow vs export",
            format,
            size,
            base,
            ours,
        ))
    }

    /// Bare consumers then ldd read-back (with verification) over the same manifest, as many
    /// of each, so that the ratio compares like with like.
    async fn read_back_pair(&self, manifest: &Manifest, rounds: u32) -> anyhow::Result<Row> {
        let mut base = Measure::default();
        let mut ours = Measure::default();
        let config = ReadBackConfig::new(self.client.clone());
        let consumers = config.parallelism;
        for _ in 0..rounds {
            let (m, client) = (manifest.clone(), self.client.clone());
            base.keep_best(
                tokio::task::spawn_blocking(move || baseline::consume(&client, &m, consumers))
                    .await??,
            );
            let (m, config) = (manifest.clone(), config.clone());
            let started = Instant::now();
            let report =
                tokio::task::spawn_blocking(move || read_back(&m, &config, None)).await??;
            if !report.is_verified() {
                anyhow::bail!(
                    "read-back of the benchmark export did not verify: {:?}",
                    report.problems.first()
                );
            }
            ours.keep_best(Measure {
                records: report.records,
                bytes: report.bytes,
                seconds: started.elapsed().as_secs_f64(),
                ..Default::default()
            });
        }
        self.cleanup(&manifest.topic).await;
        let mut row = Row::new(
            "read-back",
            manifest.format,
            manifest.total_records,
            base,
            ours,
        );
        row.note = Some(format!("{consumers} consumers each"));
        Ok(row)
    }

    /// Kafka's own `ProducerPerformance` with ~200-byte records, for reference.
    async fn kafka_perf_reference(&self, classpath: &str, size: u64) -> anyhow::Result<Row> {
        let topic = self.topic("perf").await?;
        let measure =
            baseline::kafka_producer_perf(classpath, &self.client.brokers, &topic, size).await?;
        self.cleanup(&topic).await;
        Ok(Row::reference("kafka-producer-perf (200 B)", size, measure))
    }
}
