//! Command-line interface definition.

use std::path::PathBuf;

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
    Demo(DemoArgs),
    /// Export a dataset into a Kafka topic and write its manifest.
    Export(ExportArgs),
    /// Read an export back from Kafka using its manifest, verify it, and optionally write
    /// the records out.
    Consume(ConsumeArgs),
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
    /// Chunks exported at once.
    #[arg(long, default_value_t = 4)]
    pub(crate) workers: usize,
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

/// Where the records come from.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum SourceKind {
    /// The synthetic IoT generator.
    Generator,
}

#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    /// Kafka bootstrap servers.
    #[arg(long, env = "LDD_KAFKA_BROKERS")]
    pub(crate) brokers: String,
    /// Destination topic.
    #[arg(long)]
    pub(crate) topic: String,
    /// Create the topic with this many partitions if it does not exist.
    #[arg(long)]
    pub(crate) partitions: Option<u32>,
    /// Source of the records.
    #[arg(long, value_enum, default_value = "generator")]
    pub(crate) source: SourceKind,
    /// Records to generate (generator source).
    #[arg(long, default_value_t = 1_000_000)]
    pub(crate) records: u64,
    /// Points sharing each timestamp (generator source).
    #[arg(long, default_value_t = 1)]
    pub(crate) points_per_timestamp: u32,
    #[command(flatten)]
    pub(crate) engine: EngineArgs,
    /// Export id (a new UUID by default).
    #[arg(long)]
    pub(crate) export_id: Option<String>,
    /// Write the manifest here (`-` for stdout).
    #[arg(long, default_value = "-")]
    pub(crate) manifest_out: String,
    /// Also publish the manifest to this topic (empty to skip).
    #[arg(long, default_value = ldd_sink_kafka::manifest_topic::DEFAULT_MANIFEST_TOPIC)]
    pub(crate) manifest_topic: String,
    /// Extra librdkafka producer properties, `key=value` (repeatable).
    #[arg(long = "kafka-option", value_parser = parse_key_value)]
    pub(crate) kafka_options: Vec<(String, String)>,
    /// No progress bar.
    #[arg(long)]
    pub(crate) quiet: bool,
}

/// What to do with the records read back.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum OutputFormat {
    /// Verify only.
    Discard,
    /// One JSON object per line.
    Jsonl,
    /// CSV with a header row.
    Csv,
}

#[derive(Debug, Args)]
pub(crate) struct ConsumeArgs {
    /// Manifest file written by `ldd export`.
    #[arg(long, conflicts_with = "export_id")]
    pub(crate) manifest: Option<PathBuf>,
    /// Export id to look up in the manifest topic.
    #[arg(long)]
    pub(crate) export_id: Option<String>,
    /// Manifest topic to look the export id up in.
    #[arg(long, default_value = ldd_sink_kafka::manifest_topic::DEFAULT_MANIFEST_TOPIC)]
    pub(crate) manifest_topic: String,
    /// Kafka bootstrap servers.
    #[arg(long, env = "LDD_KAFKA_BROKERS")]
    pub(crate) brokers: String,
    /// Partitions read at once.
    #[arg(long, default_value_t = 8)]
    pub(crate) parallelism: usize,
    /// What to write.
    #[arg(long, value_enum, default_value = "discard")]
    pub(crate) output_format: OutputFormat,
    /// Output file (`-` for stdout).
    #[arg(long, default_value = "-")]
    pub(crate) output: String,
    /// Decode every record even when discarding (slower, stricter).
    #[arg(long)]
    pub(crate) decode: bool,
    /// Seconds without a message before a partition is reported as stalled.
    #[arg(long, default_value_t = 30)]
    pub(crate) idle_timeout_secs: u64,
    /// Print the report as JSON.
    #[arg(long)]
    pub(crate) json: bool,
    /// No progress bar.
    #[arg(long)]
    pub(crate) quiet: bool,
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| format!("expected key=value, got `{s}`"))
}
