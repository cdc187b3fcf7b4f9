//! Command-line interface definition.

use clap::{Parser, Subcommand};

/// ldd (Large Dataset Delivery): deliver very large datasets from InfluxDB and MongoDB into
/// Kafka in parallel chunks, with a manifest that proves nothing was lost or duplicated.
#[derive(Debug, Parser)]
#[command(name = "ldd", version, about, long_about = None)]
pub(crate) struct Cli {
    /// Log filter (e.g. `info`, `ldd_core=debug`); also read from RUST_LOG.
    #[arg(long, global = true, env = "LDD_LOG", default_value = "warn")]
    pub(crate) log: String,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run everything in-process: an embedded Kafka cluster, a generated dataset, export,
    /// read-back and verification; print a report.
    Demo(crate::commands::demo::DemoArgs),
    /// Export a dataset into a Kafka topic and write its manifest.
    Export(Box<crate::commands::export::ExportArgs>),
    /// Read an export back from Kafka using its manifest, verify it, and optionally write
    /// the records out.
    Consume(crate::commands::consume::ConsumeArgs),
    /// List a database's datasets, or show one dataset's detail.
    Datasets(crate::commands::datasets::DatasetsArgs),
    /// Write generated IoT records into MongoDB or InfluxDB.
    Load(crate::commands::load::LoadArgs),
    /// Benchmark ldd against bare baselines on a real broker, side by side.
    Bench(crate::commands::bench::BenchArgs),
    /// Serve the HTTP API (the original endpoints and the v1 API).
    Serve(crate::server::ServeArgs),
    /// Run the chunks of distributed exports (`ldd export --group`) as a member of a
    /// worker group, until SIGTERM or Ctrl-C.
    Worker(crate::commands::worker::WorkerArgs),
}
