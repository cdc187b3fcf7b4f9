//! `ldd demo`: everything embedded, end to end, with a verification report.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Args;
use ldd_core::{GeneratorConfig, GeneratorSource};
use ldd_sink_kafka::readback::ReadBackConfig;
use ldd_sink_kafka::{EmbeddedCluster, KafkaSink, KafkaSinkConfig};
use std::path::PathBuf;

use super::shared::{
    delivery, export_options, print_problems, run_export, run_read_back, with_engine_flags,
};
use crate::cli::EngineArgs;
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

pub(crate) async fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    if args.partitions == 0 {
        anyhow::bail!("--partitions must be at least 1");
    }
    let cluster = EmbeddedCluster::start(1).context("starting the embedded Kafka cluster")?;
    cluster.create_topic(TOPIC, args.partitions as i32, 1)?;
    let brokers = cluster.bootstrap_servers();
    let sink = KafkaSink::connect(with_engine_flags(
        &args.engine,
        KafkaSinkConfig {
            brokers: brokers.clone(),
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
        ldd_core::Format::from(args.engine.format),
        ldd_sink_kafka::Compression::from(args.engine.compression),
        delivery(&args.engine),
    );
    let options = export_options(&args.engine, None);
    let manifest = run_export(
        source,
        Arc::new(sink),
        &args.engine,
        options,
        args.quiet,
        None,
    )
    .await?;
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

    let config = ReadBackConfig::new(brokers);
    let (manifest, report) = run_read_back(manifest, config, None, args.quiet).await?;
    println!(
        "read-back: {} records in {} messages in {:.2} s = {} records/s ({} chunks verified)",
        thousands(report.records),
        thousands(report.messages),
        report.elapsed_ms as f64 / 1000.0,
        per_sec(report.records, report.elapsed_ms),
        report.chunks_verified
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
        print_problems(&report, 10);
        Ok(ExitCode::from(crate::EXIT_UNVERIFIED))
    }
}
