//! `ldd consume`: read an export back, verify it, and optionally write its records.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use ldd_core::Manifest;
use ldd_sink_kafka::manifest_topic;
use ldd_sink_kafka::readback::{CsvOutput, JsonlOutput, ReadBackConfig, RecordOutput};

use super::shared::{print_problems, run_read_back};
use crate::cli::{ConsumeArgs, OutputFormat};
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
