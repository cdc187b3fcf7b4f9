//! `ldd load`: write generated IoT records into MongoDB or InfluxDB (for tests, benchmarks
//! and trying ldd out).

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use ldd_core::GeneratorConfig;

use crate::progress::records_bar;
use crate::report::{per_sec, thousands};
use crate::source_args::ConnectionArgs;

/// Flags of this subcommand.
#[derive(Debug, Args)]
pub(crate) struct LoadArgs {
    #[command(flatten)]
    pub(crate) connection: ConnectionArgs,
    /// Database (created if missing).
    #[arg(long)]
    pub(crate) database: String,
    /// Collection or measurement.
    #[arg(long)]
    pub(crate) table: String,
    /// Records to write.
    #[arg(long, default_value_t = 1_000_000)]
    pub(crate) records: u64,
    /// Points sharing each timestamp.
    #[arg(long, default_value_t = 1)]
    pub(crate) points_per_timestamp: u32,
    /// Distinct device tags.
    #[arg(long, default_value_t = 100)]
    pub(crate) devices: u32,
    /// No progress bar.
    #[arg(long)]
    pub(crate) quiet: bool,
}

pub(crate) async fn run(args: LoadArgs) -> anyhow::Result<ExitCode> {
    let connection = args.connection.connect_fixtures().await?;
    let config = GeneratorConfig {
        records: args.records,
        points_per_timestamp: args.points_per_timestamp,
        devices: args.devices,
        measurement: args.table.clone(),
        ..Default::default()
    };
    config.validate()?;
    let bar = records_bar(args.records, "load", args.quiet);
    let progress_bar = bar.clone();
    let started = std::time::Instant::now();
    let written = connection
        .load_generated(&args.database, &args.table, &config, &move |n| {
            progress_bar.set_position(n)
        })
        .await
        .with_context(|| format!("loading into {}:{}", args.database, args.table))?;
    bar.finish_and_clear();
    let ms = started.elapsed().as_millis() as u64;
    eprintln!(
        "loaded {} records into {}:{} in {:.2} s ({} records/s)",
        thousands(written),
        args.database,
        args.table,
        ms as f64 / 1000.0,
        per_sec(written, ms)
    );
    Ok(ExitCode::SUCCESS)
}
