//! `ldd consume`: read an export back, verify it, and optionally write its records.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use ldd_core::Manifest;
use ldd_sink_kafka::manifest_topic;
use ldd_sink_kafka::readback::{CsvOutput, JsonlOutput, ReadBackConfig, RecordOutput};

use super::shared::{print_problems, run_read_back};
use crate::report::{per_sec, thousands};

async fn load_manifest(args: &ConsumeArgs) -> anyhow::Result<Manifest> {
    if let Some(path) = &args.manifest {
        let text = std::fs::read(path)
            .with_context(|| format!("reading the manifest {}", path.display()))?;
        return serde_json::from_slice(&text)
            .with_context(|| format!("{} is not an ldd manifest", path.display()));
    }
    let Some(id) = &args.export_id else {
        anyhow::bail!("give --manifest FILE or --export-id ID (looked up in --manifest-topic)");
    };
    Ok(manifest_topic::fetch_manifest(&args.brokers, &args.manifest_topic, id).await?)
}

fn output(args: &ConsumeArgs) -> anyhow::Result<Option<Arc<dyn RecordOutput>>> {
    let writer: Box<dyn Write + Send> = match args.output.as_str() {
        "-" => Box::new(BufWriter::new(std::io::stdout())),
        path => Box::new(BufWriter::new(
            File::create(path).with_context(|| format!("creating {path}"))?,
        )),
    };
    Ok(match args.output_format {
        OutputFormat::Discard => None,
        OutputFormat::Jsonl => Some(Arc::new(JsonlOutput::new(writer))),
        OutputFormat::Csv => Some(Arc::new(CsvOutput::new(writer))),
    })
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

/// Flags of this subcommand.
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

pub(crate) async fn run(args: ConsumeArgs) -> anyhow::Result<ExitCode> {
    let manifest = load_manifest(&args).await?;
    let config = ReadBackConfig {
        parallelism: args.parallelism,
        idle_timeout: Duration::from_secs(args.idle_timeout_secs),
        decode: args.decode,
        read_committed: true,
        ..ReadBackConfig::new(args.brokers.clone())
    };
    let out = output(&args)?;
    let (_, report) = run_read_back(manifest, config, out, args.quiet).await?;
    if args.json {
        eprintln!("{}", serde_json::to_string_pretty(&report)?);
    }
    eprintln!(
        "read {} of {} records ({} messages) in {:.2} s = {} records/s; {} of {} chunks verified",
        thousands(report.records),
        thousands(report.expected_records),
        thousands(report.messages),
        report.elapsed_ms as f64 / 1000.0,
        per_sec(report.records, report.elapsed_ms),
        report.chunks_verified,
        report.chunks_total
    );
    if report.is_verified() {
        eprintln!("verified: OK");
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("verified: FAILED ({} problems)", report.problems.len());
        print_problems(&report, 20);
        Ok(ExitCode::from(crate::EXIT_UNVERIFIED))
    }
}
