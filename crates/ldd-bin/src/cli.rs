//! Command-line interface definition.

use clap::{Args, Parser, Subcommand, ValueEnum};

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
}

/// Payload format.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum FormatArg {
    /// One JSON object per message (the original system's shape).
    Json,
    /// Many JSON objects per message, one per line.
    Jsonl,
    /// A protobuf RecordBatch per message (`proto/ldd/v1/records.proto`).
    Protobuf,
}

impl From<FormatArg> for ldd_core::Format {
    fn from(f: FormatArg) -> Self {
        match f {
            FormatArg::Json => ldd_core::Format::Json,
            FormatArg::Jsonl => ldd_core::Format::Jsonl,
            FormatArg::Protobuf => ldd_core::Format::Protobuf,
        }
    }
}

/// Compression of produced batches.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum CompressionArg {
    /// LZ4.
    Lz4,
    /// Zstandard.
    Zstd,
    /// None.
    None,
}

impl From<CompressionArg> for ldd_sink_kafka::Compression {
    fn from(c: CompressionArg) -> Self {
        match c {
            CompressionArg::Lz4 => ldd_sink_kafka::Compression::Lz4,
            CompressionArg::Zstd => ldd_sink_kafka::Compression::Zstd,
            CompressionArg::None => ldd_sink_kafka::Compression::None,
        }
    }
}

/// Options shared by everything that exports.
#[derive(Debug, Clone, Args)]
pub(crate) struct EngineArgs {
    /// Payload format.
    #[arg(long, value_enum, default_value = "jsonl")]
    pub(crate) format: FormatArg,
    /// Compression.
    #[arg(long, value_enum, default_value = "lz4")]
    pub(crate) compression: CompressionArg,
    /// Configured job count (chunks, before rounding to a multiple of the partitions).
    #[arg(long, default_value_t = 48)]
    pub(crate) jobs: usize,
    /// Keep all jobs (the original drops one before rounding).
    #[arg(long)]
    pub(crate) no_drop_last: bool,
    /// Chunks read and encoded at once (default: the number of CPUs).
    #[arg(long)]
    pub(crate) workers: Option<usize>,
    /// Target payload size of batched formats, in KiB.
    #[arg(long, default_value_t = 128)]
    pub(crate) batch_kib: usize,
    /// Each chunk is one Kafka transaction (exactly once for read_committed readers).
    #[arg(long)]
    pub(crate) transactional: bool,
    /// Attempts per chunk.
    #[arg(long, default_value_t = 3)]
    pub(crate) attempts: u32,
}

pub(crate) fn parse_key_value(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| format!("expected key=value, got `{s}`"))
}
