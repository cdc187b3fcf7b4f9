//! `ldd demo`: everything embedded, end to end, with a verification report: the generator
//! exports into an embedded Kafka cluster while a follower reads every chunk back as soon as
//! it commits.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Args;
use ldd_core::{GeneratorConfig, GeneratorSource};
use ldd_sink_kafka::readback::{LocalFeed, ReadBackConfig};
use ldd_sink_kafka::{EmbeddedCluster, KafkaSink, KafkaSinkConfig};
use std::path::PathBuf;
use std::time::Instant;

use super::shared::{
    delivery, export_options, print_problems, run_export, spawn_follow, with_engine_flags,
    ExportMode, DEFAULT_JOBS,
};
use crate::flags::EngineArgs;
use crate::report::{megabytes, per_sec, thousands};

/// Flags of this subcommand.
#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Records to generate.
    #[arg(long, default_value_t = 1_000_000)]
    pub(crate) records: u64,
    /// Partitions of the demo topic. The embedded cluster keeps only ~5 MB per partition,
    /// so the default spreads the data wide enough to keep all of it.
    #[arg(long, default_value_t = 32)]
    pub(crate) partitions: u32,
    #[command(flatten)]
    pub(crate) engine: EngineArgs,
    /// Also write the manifest to this file.
    #[arg(long)]
    pub(crate) manifest_out: Option<PathBuf>,
    /// No progress bars.
    #[arg(long)]
    pub(crate) quiet: bool,
}

const TOPIC: &str = "ldd-demo";

/// Records per chunk the demo aims at by default: a chunk is then ~1.3 MB of lz4-compressed
/// JSON lines, far below what the embedded cluster keeps per partition.
const DEMO_CHUNK_RECORDS: u64 = 50_000;

/// The demo's job count: one chunk per [`DEMO_CHUNK_RECORDS`], at least the usual default.
fn demo_jobs(records: u64) -> usize {
    usize::try_from(records.div_ceil(DEMO_CHUNK_RECORDS))
        .unwrap_or(usize::MAX)
        .max(DEFAULT_JOBS)
}

pub(crate) async fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    if args.partitions == 0 {
        anyhow::bail!("--partitions must be at least 1");
    }
    let cluster = EmbeddedCluster::start(1).context("starting the embedded Kafka cluster")?;
    cluster.create_topic(TOPIC, args.partitions as i32, 1)?;
    let brokers = cluster.bootstrap_servers();
    let engine = EngineArgs {
        jobs: Some(args.engine.jobs.unwrap_or_else(|| demo_jobs(args.records))),
        ..args.engine.clone()
    };
    let sink = KafkaSink::connect(with_engine_flags(
        &engine,
        KafkaSinkConfig {
            client: brokers.clone().into(),
            topic: TOPIC.into(),
            ..Default::default()
        },
    ))
    .await?;
    let source = Arc::new(GeneratorSource::new(GeneratorConfig {
        records: args.records,
        ..Default::default()
    }));
    println!(
        "ldd demo: {} generated IoT records -> embedded Kafka topic `{TOPIC}` ({} partitions, {}, {}, {})",
        thousands(args.records),
        args.partitions,
        ldd_core::Format::from(engine.format),
        ldd_sink_kafka::Compression::from(engine.compression),
        delivery(&engine),
    );
    // The embedded cluster drops a partition's oldest data beyond ~5 MB, so the demo reads
    // each chunk back as soon as it commits (as `ldd consume --follow` does), with chunks
    // small enough that a partition is written again only long after its last chunk was read.
    let export_id = uuid::Uuid::new_v4().to_string();
    let (feed, feed_rx) = LocalFeed::new();
    let announce = feed.announcer(TOPIC, engine.format.into());
    let started = Instant::now();
    let follower = spawn_follow(
        export_id.clone(),
        feed_rx,
        ReadBackConfig::new(brokers),
        None,
        true,
    );
    let options = export_options(&engine, Some(export_id.clone()));
    let exported = run_export(
        source,
        Arc::new(sink),
        &engine,
        options,
        args.quiet,
        ExportMode::Local { journal: None },
        Some(announce),
    )
    .await;
    let export_ended = started.elapsed();
    feed.finish(&export_id, exported.as_ref().map_err(|e| format!("{e:#}")));
    let manifest = exported?;
    if let Some(path) = &args.manifest_out {
        std::fs::write(path, serde_json::to_vec_pretty(&manifest)?)
            .with_context(|| format!("writing the manifest to {}", path.display()))?;
    }
    let t = &manifest.timings;
    println!(
        "plan:      {} chunks over {} partitions ({}) in {} ms",
        manifest.chunks.len(),
        manifest.partitions.len(),
        manifest.strategy.name,
        t.planning_ms
    );
    println!(
        "export:    {} records in {} messages, {} in {:.2} s = {} records/s",
        thousands(manifest.total_records),
        thousands(manifest.total_messages),
        megabytes(manifest.total_bytes),
        t.export_ms as f64 / 1000.0,
        per_sec(manifest.total_records, t.export_ms)
    );
    let partition_sum: u64 = manifest.partitions.iter().map(|p| p.records).sum();
    println!(
        "manifest:  export {} | per-partition records add up to {}",
        manifest.export_id,
        thousands(partition_sum)
    );
    for line in manifest.offsets_data().chunks(8) {
        println!("           {}", line.join("  "));
    }

    let followed = follower.await.context("the read-back thread failed")??;
    let end_to_end = started.elapsed();
    let report = &followed.report;
    println!(
        "read-back: {} records in {} messages, {} chunks verified, {} of them while the export ran",
        thousands(report.records),
        thousands(report.messages),
        report.chunks_verified,
        followed.chunks_read_early,
    );
    println!(
        "end to end: {:.2} s from start to every record read back and verified = {} records/s (the export alone: {:.2} s)",
        end_to_end.as_secs_f64(),
        per_sec(report.records, end_to_end.as_millis() as u64),
        export_ended.as_secs_f64(),
    );
    let counts_agree = manifest.total_records == args.records && partition_sum == args.records;
    if report.is_verified() && counts_agree {
        println!("verified: OK");
        Ok(ExitCode::SUCCESS)
    } else {
        println!(
            "verified: FAILED ({} of {} records read back, {} problems)",
            thousands(report.records),
            thousands(args.records),
            report.problems.len()
        );
        print_problems(report, 10);
        Ok(ExitCode::from(crate::EXIT_UNVERIFIED))
    }
}
