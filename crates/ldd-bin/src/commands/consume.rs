//! `ldd consume`: read an export back, verify it, and optionally write its records.
//!
//! The manifest comes from a file (`--manifest`), from an ldd server
//! (`--server URL --export-id ID`), from the manifest topic (`--export-id ID`), or, like the
//! original client, from triggering an export (`--trigger-url URL`: call an original
//! `/data/export/?...` URL, take the answer's `exportId`, fetch its manifest, read back).
//! With `--follow` it reads an export while it runs, each chunk as soon as it commits.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::Args;
use eventsource_stream::Eventsource;
use futures::StreamExt;
use ldd_core::FeedEntry;
use ldd_core::Manifest;
use ldd_sink_kafka::manifest_topic;
use ldd_sink_kafka::readback::{
    open_output, OutputKind, ParquetCompression, ParquetOptions, ReadBackConfig, ReadBackReport,
    RecordOutput,
};
use ldd_sink_kafka::KafkaClient;
use serde::Deserialize;

use super::shared::{print_problems, run_read_back, spawn_follow};
use crate::report::{per_sec, thousands};

/// Flags of this subcommand.
#[derive(Debug, Args)]
pub(crate) struct ConsumeArgs {
    /// Manifest file written by `ldd export`.
    #[arg(long, conflicts_with_all = ["export_id", "trigger_url"])]
    pub(crate) manifest: Option<PathBuf>,
    /// Export id: fetched from `--server` when given, else from the manifest topic.
    #[arg(long, conflicts_with = "trigger_url")]
    pub(crate) export_id: Option<String>,
    /// An ldd server (`http://host:3001`) to fetch the manifest from
    /// (`GET /v1/exports/{id}/manifest`).
    #[arg(long, env = "LDD_SERVER")]
    pub(crate) server: Option<String>,
    /// Like the original client: call this export URL (an original
    /// `/data/export/?...` or `/data/query-by-time/?...` URL of an ldd server), then read
    /// back and verify the export it answers with.
    #[arg(long)]
    pub(crate) trigger_url: Option<String>,
    /// Bearer token for the server. Prefer the environment variable: flags show in process
    /// lists.
    #[arg(long, env = "LDD_TOKEN", hide_env_values = true)]
    pub(crate) token: Option<String>,
    /// With --server: wait for a running export to finish instead of failing.
    #[arg(long)]
    pub(crate) wait: bool,
    /// Read the export while it runs: each chunk as soon as it commits, announced in the
    /// manifest topic (with --export-id) or on the server's event stream (with --server and
    /// --export-id). May start before the export (it waits for it); ends once the final
    /// manifest arrived and every chunk is verified.
    #[arg(long, conflicts_with_all = ["manifest", "trigger_url", "wait"], requires = "export_id")]
    pub(crate) follow: bool,
    /// Manifest topic to look the export id up in.
    #[arg(long, default_value = ldd_sink_kafka::manifest_topic::DEFAULT_MANIFEST_TOPIC)]
    pub(crate) manifest_topic: String,
    /// Kafka bootstrap servers (with --trigger-url, defaults to the answer's
    /// kafkaBrokersStr).
    #[arg(long, env = "LDD_KAFKA_BROKERS")]
    pub(crate) brokers: Option<String>,
    #[command(flatten)]
    pub(crate) kafka: crate::flags::KafkaClientArgs,
    /// Readers (consumers) at once, each with a share of the partitions (default: one per CPU, at least 2, at most 16).
    #[arg(long)]
    pub(crate) parallelism: Option<usize>,
    /// What to write: discard (verify only), jsonl, csv, or parquet (typed columns, one
    /// file per export).
    #[arg(long, default_value = "discard")]
    pub(crate) output_format: OutputKind,
    /// Output file (`-` for stdout). With `--output-format parquet` also a directory, which
    /// gets `<export id>.parquet`.
    #[arg(long, default_value = "-")]
    pub(crate) output: String,
    /// Parquet column compression: zstd, snappy or none.
    #[arg(long, default_value = "zstd", value_parser = parse_parquet_compression)]
    pub(crate) parquet_compression: ParquetCompression,
    /// Rows per Parquet row group; the column types come from the first group.
    #[arg(long, default_value_t = ldd_sink_kafka::readback::DEFAULT_ROW_GROUP_ROWS, value_parser = clap::value_parser!(usize))]
    pub(crate) parquet_row_group_rows: usize,
    /// Memory read-back may use, in MiB: each consumer's prefetch is sized from it, so
    /// memory stays flat at any export size.
    #[arg(long, default_value_t = ldd_sink_kafka::readback::DEFAULT_MEMORY_BUDGET_MB, value_parser = clap::value_parser!(u64).range(16..=65_536))]
    pub(crate) memory_budget_mb: u64,
    /// Decode every record even when discarding (slower, stricter).
    #[arg(long)]
    pub(crate) decode: bool,
    /// Seconds without a message before a partition is reported as stalled.
    #[arg(long, default_value_t = 30)]
    pub(crate) idle_timeout_secs: u64,
    /// Extra librdkafka properties of the read-back consumers only, `key=value`
    /// (repeatable); security settings go in --kafka-property, which every client gets.
    #[arg(long = "kafka-option", value_parser = crate::flags::parse_key_value)]
    pub(crate) kafka_options: Vec<(String, String)>,
    /// Print the report as JSON.
    #[arg(long)]
    pub(crate) json: bool,
    /// No progress bar.
    #[arg(long)]
    pub(crate) quiet: bool,
}

/// The fields of an original export answer that consume checks.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TriggerAnswer {
    #[serde(default)]
    export_id: Option<String>,
    total_messages: u64,
    #[serde(default)]
    offsets_data: Vec<String>,
    #[serde(default)]
    kafka_brokers_str: Option<String>,
}

/// A small HTTP client for the server.
#[derive(Clone)]
struct Http {
    client: reqwest::Client,
    token: Option<String>,
}

impl Http {
    fn new(token: Option<String>) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .context("creating the HTTP client")?;
        Ok(Http { client, token })
    }

    /// GETs `url` and answers the response, its body not yet read.
    async fn open(&self, url: &str) -> anyhow::Result<reqwest::Response> {
        let mut request = self.client.get(url);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        request
            .send()
            .await
            .with_context(|| format!("calling {}", without_query(url)))
    }

    /// GETs `url`; answers the status and body text.
    async fn get(&self, url: &str) -> anyhow::Result<(reqwest::StatusCode, String)> {
        let response = self.open(url).await?;
        let status = response.status();
        let text = response
            .text()
            .await
            .with_context(|| format!("reading the answer of {}", without_query(url)))?;
        Ok((status, text))
    }
}

/// The URL without its query string (for messages).
fn without_query(url: &str) -> &str {
    url.split('?').next().unwrap_or(url)
}

/// The `message` of a JSON error answer, else the text itself.
fn server_message(text: &str) -> String {
    serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
        .unwrap_or_else(|| text.trim().to_owned())
}

fn http_failure(what: &str, status: reqwest::StatusCode, text: &str) -> anyhow::Error {
    let hint = if status == reqwest::StatusCode::UNAUTHORIZED {
        "; give the server's token with --token or LDD_TOKEN"
    } else {
        ""
    };
    anyhow::anyhow!("{what}: HTTP {status}: {}{hint}", server_message(text))
}

/// `scheme://host[:port]` of a URL.
fn origin_of(url: &str) -> Option<String> {
    let parsed = reqwest::Url::parse(url).ok()?;
    let host = parsed.host_str()?;
    Some(match parsed.port() {
        Some(port) => format!("{}://{host}:{port}", parsed.scheme()),
        None => format!("{}://{host}", parsed.scheme()),
    })
}

/// Fetches a manifest from an ldd server, waiting for the export when asked.
async fn manifest_from_server(
    http: &Http,
    server: &str,
    id: &str,
    wait: bool,
) -> anyhow::Result<Manifest> {
    let server = server.trim_end_matches('/');
    let url = format!("{server}/v1/exports/{id}/manifest");
    loop {
        let (status, text) = http.get(&url).await?;
        if status.is_success() {
            return serde_json::from_str(&text)
                .with_context(|| format!("the server's manifest of export {id} is not valid"));
        }
        if status == reqwest::StatusCode::CONFLICT && wait {
            let (_, state) = http.get(&format!("{server}/v1/exports/{id}")).await?;
            let state = serde_json::from_str::<serde_json::Value>(&state)
                .ok()
                .and_then(|v| v.get("state").and_then(|s| s.as_str()).map(str::to_owned))
                .unwrap_or_default();
            if ["queued", "planning", "running"].contains(&state.as_str()) {
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        }
        return Err(http_failure(
            &format!("fetching the manifest of export {id}"),
            status,
            &text,
        ));
    }
}

/// Where the manifest comes from, and what the trigger answered (to cross-check).
async fn load_manifest(
    args: &ConsumeArgs,
    http: &Http,
) -> anyhow::Result<(Manifest, Option<TriggerAnswer>)> {
    if let Some(path) = &args.manifest {
        let text = std::fs::read(path)
            .with_context(|| format!("reading the manifest {}", path.display()))?;
        let manifest = serde_json::from_slice(&text)
            .with_context(|| format!("{} is not an ldd manifest", path.display()))?;
        return Ok((manifest, None));
    }
    if let Some(url) = &args.trigger_url {
        if !args.quiet {
            eprintln!("triggering the export: {}", without_query(url));
        }
        let (status, text) = http.get(url).await?;
        if !status.is_success() {
            return Err(http_failure("the export failed", status, &text));
        }
        let answer: TriggerAnswer = serde_json::from_str(&text)
            .context("the export answer is not an original export answer (no totalMessages)")?;
        let Some(id) = answer.export_id.clone() else {
            bail!("the export answer has no exportId, so its manifest cannot be found; trigger an ldd server");
        };
        let server = args.server.clone().or_else(|| origin_of(url));
        let from_server = match &server {
            Some(server) => manifest_from_server(http, server, &id, true).await,
            None => Err(anyhow::anyhow!("no server to ask")),
        };
        let manifest = match from_server {
            Ok(m) => m,
            Err(server_err) => {
                let client = client(args, Some(&answer))?;
                manifest_topic::fetch_manifest(&client, &args.manifest_topic, &id)
                    .await
                    .with_context(|| format!("the server did not give the manifest ({server_err:#}), nor did the manifest topic"))?
            }
        };
        return Ok((manifest, Some(answer)));
    }
    let Some(id) = &args.export_id else {
        bail!("give --manifest FILE, --export-id ID (with --server URL, or looked up in --manifest-topic), or --trigger-url URL");
    };
    if let Some(server) = &args.server {
        return Ok((
            manifest_from_server(http, server, id, args.wait).await?,
            None,
        ));
    }
    let client = client(args, None)?;
    Ok((
        manifest_topic::fetch_manifest(&client, &args.manifest_topic, id).await?,
        None,
    ))
}

/// The cluster to read from: the brokers with the client properties.
fn client(args: &ConsumeArgs, answer: Option<&TriggerAnswer>) -> anyhow::Result<KafkaClient> {
    let brokers = args
        .brokers
        .clone()
        .or_else(|| answer.and_then(|a| a.kafka_brokers_str.clone()))
        .filter(|b| !b.trim().is_empty())
        .ok_or_else(|| {
            anyhow::anyhow!("give the Kafka brokers with --brokers or LDD_KAFKA_BROKERS")
        })?;
    Ok(args.kafka.client(brokers))
}

fn parse_parquet_compression(text: &str) -> Result<ParquetCompression, String> {
    text.parse()
        .map_err(|e: ldd_sink_kafka::Error| e.to_string())
}

/// Where the records of `export_id` go.
fn output(args: &ConsumeArgs, export_id: &str) -> anyhow::Result<Option<Arc<dyn RecordOutput>>> {
    let parquet = ParquetOptions {
        compression: args.parquet_compression,
        row_group_rows: args.parquet_row_group_rows,
    };
    let opened = open_output(args.output_format, &args.output, export_id, parquet)
        .with_context(|| format!("opening the output {}", args.output))?;
    Ok(opened.map(|opened| {
        if let (Some(path), false) = (&opened.path, args.quiet) {
            eprintln!("writing {:?} to {}", args.output_format, path.display());
        }
        opened.output
    }))
}

/// Differences between what the trigger answered and the manifest.
fn cross_check(answer: &TriggerAnswer, manifest: &Manifest) -> Vec<String> {
    let mut problems = Vec::new();
    if answer.total_messages != manifest.total_messages {
        problems.push(format!(
            "the export answer says totalMessages {} but the manifest holds {}",
            answer.total_messages, manifest.total_messages
        ));
    }
    if !answer.offsets_data.is_empty() && answer.offsets_data != manifest.offsets_data() {
        problems.push(format!(
            "the export answer's offsetsData {:?} differ from the manifest's {:?}",
            answer.offsets_data,
            manifest.offsets_data()
        ));
    }
    problems
}

/// The read-back settings from the flags.
fn read_back_config(
    args: &ConsumeArgs,
    answer: Option<&TriggerAnswer>,
) -> anyhow::Result<ReadBackConfig> {
    Ok(ReadBackConfig {
        parallelism: args
            .parallelism
            .unwrap_or_else(ldd_sink_kafka::readback::default_parallelism),
        idle_timeout: Duration::from_secs(args.idle_timeout_secs),
        decode: args.decode,
        read_committed: true,
        memory_budget_mb: args.memory_budget_mb,
        librdkafka: args.kafka_options.iter().cloned().collect(),
        ..ReadBackConfig::new(client(args, answer)?)
    })
}

pub(crate) async fn run(args: ConsumeArgs) -> anyhow::Result<ExitCode> {
    let http = Http::new(args.token.clone())?;
    if args.follow {
        return follow_export(&args, http).await;
    }
    let (manifest, answer) = load_manifest(&args, &http).await?;
    let config = read_back_config(&args, answer.as_ref())?;
    let mismatches = answer
        .as_ref()
        .map(|a| cross_check(a, &manifest))
        .unwrap_or_default();
    let out = output(&args, &manifest.export_id)?;
    let (_, report) = run_read_back(manifest, config, out, args.quiet).await?;
    finish(&args, &report, &mismatches)
}

/// `--follow`: reads the export's chunks as they are announced.
async fn follow_export(args: &ConsumeArgs, http: Http) -> anyhow::Result<ExitCode> {
    let Some(id) = args.export_id.clone() else {
        bail!("--follow needs --export-id ID");
    };
    let config = read_back_config(args, None)?;
    let out = output(args, &id)?;
    if !args.quiet {
        eprintln!("following export {id}: each chunk is read as soon as it commits");
    }
    let followed = match &args.server {
        Some(server) => {
            let feed = server_feed(http, server.trim_end_matches('/').to_owned(), id.clone());
            spawn_follow(id, feed, config, out, args.quiet).await
        }
        None => {
            let feed = manifest_topic::tail_feed(&config.client, &args.manifest_topic, &id)
                .await
                .with_context(|| {
                    format!("following the manifest topic `{}`", args.manifest_topic)
                })?;
            spawn_follow(id, feed, config, out, args.quiet).await
        }
    };
    let followed = followed.context("the read-back thread failed")??;
    if !args.quiet {
        eprintln!(
            "{} of {} chunks were read while the export ran",
            followed.chunks_read_early,
            followed.manifest.chunks.len()
        );
    }
    finish(args, &followed.report, &[])
}

/// The data of the server's `done` event that the follower needs.
#[derive(Debug, Deserialize)]
struct DoneEvent {
    state: String,
    #[serde(default)]
    error: Option<String>,
}

/// An export's feed from the server's event stream (`GET /v1/exports/{id}/events`): its
/// `chunk` events, then the manifest (fetched) or the failure. A dropped stream (the server
/// restarted) is opened again; chunks come twice then, which the follower expects.
fn server_feed(
    http: Http,
    server: String,
    id: String,
) -> std::sync::mpsc::Receiver<ldd_sink_kafka::Result<FeedEntry>> {
    let (tx, rx) = std::sync::mpsc::channel();
    tokio::spawn(async move {
        let mut failures = 0;
        loop {
            match server_events(&http, &server, &id, &tx).await {
                Ok(true) => return,
                Ok(false) => failures = 0,
                Err(e) if failures >= SERVER_RETRIES => {
                    let _ = tx.send(Err(ldd_sink_kafka::Error::Decode(format!("{e:#}"))));
                    return;
                }
                Err(e) => {
                    failures += 1;
                    tracing::warn!("following export {id} on {server}: {e:#}; trying again");
                }
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    rx
}

/// Connection attempts in a row that may fail before following gives up.
const SERVER_RETRIES: u32 = 30;

type FeedSender = std::sync::mpsc::Sender<ldd_sink_kafka::Result<FeedEntry>>;

/// Reads one connection of the event stream into `tx`. Answers whether the feed ended (the
/// export ended, the server refused, or nobody reads the feed any more); `false` when the
/// stream ended early or the export was interrupted by a server shutdown (it resumes there).
async fn server_events(
    http: &Http,
    server: &str,
    id: &str,
    tx: &FeedSender,
) -> anyhow::Result<bool> {
    let url = format!("{server}/v1/exports/{id}/events");
    let response = http.open(&url).await?;
    let status = response.status();
    if !status.is_success() {
        let text = response.text().await.unwrap_or_default();
        let refused = http_failure(&format!("following export {id}"), status, &text);
        let _ = tx.send(Err(ldd_sink_kafka::Error::Decode(format!("{refused:#}"))));
        return Ok(true);
    }
    let mut events = response.bytes_stream().eventsource();
    while let Some(event) = events.next().await {
        let event = event.map_err(|e| anyhow::anyhow!("reading the event stream of {url}: {e}"))?;
        let entry = match event.event.as_str() {
            "chunk" => FeedEntry::Chunk(
                serde_json::from_str(&event.data).context("a `chunk` event is not valid")?,
            ),
            "done" => {
                let done: DoneEvent =
                    serde_json::from_str(&event.data).context("the `done` event is not valid")?;
                match done.state.as_str() {
                    "succeeded" => FeedEntry::Finished(Box::new(
                        manifest_from_server(http, server, id, false).await?,
                    )),
                    "interrupted" => {
                        tracing::warn!("export {id} was interrupted by a server shutdown; waiting for it to be resumed");
                        return Ok(false);
                    }
                    state => FeedEntry::Failed {
                        export_id: id.to_owned(),
                        error: done
                            .error
                            .unwrap_or_else(|| format!("the export ended {state}")),
                    },
                }
            }
            _ => continue,
        };
        let last = entry.is_last();
        if tx.send(Ok(entry)).is_err() || last {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Prints the report and answers the exit code.
fn finish(
    args: &ConsumeArgs,
    report: &ReadBackReport,
    mismatches: &[String],
) -> anyhow::Result<ExitCode> {
    if args.json {
        eprintln!("{}", serde_json::to_string_pretty(report)?);
    }
    eprintln!(
        "export {}: read {} of {} records ({} messages) in {:.2} s = {} records/s; {} of {} chunks verified",
        report.export_id,
        thousands(report.records),
        thousands(report.expected_records),
        thousands(report.messages),
        report.elapsed_ms as f64 / 1000.0,
        per_sec(report.records, report.elapsed_ms),
        report.chunks_verified,
        report.chunks_total
    );
    if report.is_verified() && mismatches.is_empty() {
        eprintln!("verified: OK");
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "verified: FAILED ({} problems)",
            report.problems.len() + mismatches.len()
        );
        for m in mismatches {
            eprintln!("  - {m}");
        }
        print_problems(report, 20);
        Ok(ExitCode::from(crate::EXIT_UNVERIFIED))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_and_messages() {
        assert_eq!(
            origin_of("http://h:3001/data/export/?x=1").as_deref(),
            Some("http://h:3001")
        );
        assert_eq!(origin_of("https://h/data").as_deref(), Some("https://h"));
        assert_eq!(server_message(r#"{"code":"x","message":"boom"}"#), "boom");
        assert_eq!(server_message("plain\n"), "plain");
        assert_eq!(without_query("http://h/p?token=1"), "http://h/p");
    }
}
