//! `ldd export`: one export into a Kafka topic; writes (and publishes) the manifest.

use std::process::ExitCode;
use std::str::FromStr;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Args;
use ldd_core::{DataSource, GeneratorConfig, GeneratorSource, TaskSource};
use ldd_sink_kafka::distributed::GroupExport;
use ldd_sink_kafka::manifest_topic::FeedPublisher;
use ldd_sink_kafka::{KafkaSink, KafkaSinkConfig};

use super::shared::{export_options, run_export, with_engine_flags, ExportMode};
use crate::flags::{parse_key_value, EngineArgs, KafkaClientArgs};
use crate::report::{per_sec, thousands};
use crate::source_args::{ConnectionArgs, DatasetArgs};
use ldd_sources::SourceKind;

/// Where the records come from: the generator or a kind of database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RecordSource {
    /// The synthetic IoT generator.
    Generator,
    /// A MongoDB collection or InfluxDB measurement.
    Database(SourceKind),
}

impl FromStr for RecordSource {
    type Err = ldd_sources::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "generator" => Ok(RecordSource::Generator),
            kind => kind.parse().map(RecordSource::Database),
        }
    }
}

/// Flags of this subcommand.
#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    /// Kafka bootstrap servers.
    #[arg(long, env = "LDD_KAFKA_BROKERS")]
    pub(crate) brokers: String,
    #[command(flatten)]
    pub(crate) kafka: KafkaClientArgs,
    /// Destination topic.
    #[arg(long)]
    pub(crate) topic: String,
    /// Create the topic with this many partitions if it does not exist.
    #[arg(long)]
    pub(crate) partitions: Option<u32>,
    /// Source of the records: generator, mongo or influx (default: the one `--db-type`
    /// names, else the generator).
    #[arg(long)]
    pub(crate) source: Option<RecordSource>,
    /// Connection to the database (mongo and influx sources).
    #[command(flatten)]
    pub(crate) connection: ConnectionArgs,
    /// The dataset (mongo and influx sources).
    #[command(flatten)]
    pub(crate) dataset: DatasetArgs,
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
    /// Announce each committed chunk, then the manifest, to this topic, so that
    /// `ldd consume --follow --export-id ID` can read the export while it runs (empty to skip).
    #[arg(long, default_value = ldd_sink_kafka::manifest_topic::DEFAULT_MANIFEST_TOPIC)]
    pub(crate) manifest_topic: String,
    /// Record the plan and every committed chunk in this file (JSON lines). When the file
    /// already holds an unfinished export, the same command resumes it: only chunks not yet
    /// committed run again.
    #[arg(long)]
    pub(crate) journal: Option<std::path::PathBuf>,
    /// Extra librdkafka properties of the producer only, `key=value` (repeatable);
    /// security settings go in --kafka-property, which every client gets.
    #[arg(long = "kafka-option", value_parser = parse_key_value)]
    pub(crate) kafka_options: Vec<(String, String)>,
    /// Run the chunks on the workers of this group (`ldd worker --group G`, on any number
    /// of machines) instead of in this process; the manifest and report are the same.
    /// Restarted with the same --export-id, the command waits for that export again.
    #[arg(long)]
    pub(crate) group: Option<String>,
    /// With --group and a database source: the name the workers know the connection by (an
    /// `id` in their --connections file). The connection flags here are for planning only
    /// and never reach the workers.
    #[arg(long)]
    pub(crate) connection_name: Option<String>,
    /// No progress bar.
    #[arg(long)]
    pub(crate) quiet: bool,
}

/// The source the flags ask for. Database flags never fall through to the generator: an
/// export of synthetic records where a real dataset was meant would look like success.
fn record_source(args: &ExportArgs) -> anyhow::Result<RecordSource> {
    let from_db_type = args.connection.db_type.map(RecordSource::Database);
    match (args.source, from_db_type) {
        (Some(RecordSource::Generator), Some(_)) => {
            anyhow::bail!("--db-type names a database but --source is generator; drop one")
        }
        (Some(source), Some(from_db_type)) if source != from_db_type => {
            anyhow::bail!("--db-type contradicts --source; give only one of them")
        }
        (Some(source), _) => Ok(source),
        (None, Some(from_db_type)) => Ok(from_db_type),
        (None, None) if args.connection.url.is_some() || args.dataset.table.is_some() => {
            anyhow::bail!(
                "--url/--table name a database dataset: say which kind with --source mongo|influx"
            )
        }
        (None, None) => Ok(RecordSource::Generator),
    }
}

pub(crate) async fn run(args: ExportArgs) -> anyhow::Result<ExitCode> {
    let generator = GeneratorConfig {
        records: args.records,
        points_per_timestamp: args.points_per_timestamp,
        ..Default::default()
    };
    let (source, task_source): (Arc<dyn DataSource>, _) = match record_source(&args)? {
        RecordSource::Generator => (
            Arc::new(GeneratorSource::new(generator.clone())),
            TaskSource::Generator { config: generator },
        ),
        RecordSource::Database(kind) => {
            let connection = args.connection.connect(Some(kind)).await?;
            let spec = args.dataset.spec()?;
            let source = connection
                .open(&spec)
                .await
                .with_context(|| format!("opening dataset {}", spec.display_name()))?;
            let task_source = match (&args.group, &args.connection_name) {
                (Some(_), None) => anyhow::bail!(
                    "--group with a database source needs --connection-name: the name the \
                     workers know this connection by in their --connections file"
                ),
                (_, name) => TaskSource::Dataset {
                    connection: name.clone().unwrap_or_default(),
                    dataset: spec,
                },
            };
            (source, task_source)
        }
    };
    if args.group.is_some() && args.journal.is_some() {
        anyhow::bail!(
            "--journal and --group do not go together: a group's results topic is its journal \
             (rerun with the same --export-id to resume)"
        );
    }
    // One client for the sink and the manifest topic: both need the same security settings.
    let client = args.kafka.client(args.brokers.clone());
    let sink = Arc::new(
        KafkaSink::connect(with_engine_flags(
            &args.engine,
            KafkaSinkConfig {
                client: client.clone(),
                topic: args.topic.clone(),
                create_partitions: args.partitions,
                librdkafka: args.kafka_options.iter().cloned().collect(),
                ..Default::default()
            },
        ))
        .await?,
    );
    let options = export_options(&args.engine, args.export_id.clone());
    // Followers (`ldd consume --follow`) read each chunk as soon as it is announced here.
    let feed = match args.manifest_topic.as_str() {
        "" => None,
        topic => Some(Arc::new(
            FeedPublisher::connect(&client, topic)
                .await
                .with_context(|| format!("connecting to the manifest topic `{topic}`"))?,
        )),
    };
    let announce = feed
        .as_ref()
        .map(|f| f.observer(args.topic.clone(), args.engine.format.into()));
    let mode = match &args.group {
        Some(group) => ExportMode::Group {
            group: Box::new(GroupExport::new(client.clone(), group, task_source)),
            sink: sink.config(),
        },
        None => ExportMode::Local {
            journal: args.journal.as_deref(),
        },
    };
    let result = run_export(
        source,
        sink.clone(),
        &args.engine,
        options,
        args.quiet,
        mode,
        announce,
    )
    .await;
    let manifest = match (result, &feed) {
        (Ok(manifest), _) => manifest,
        (Err(e), Some(feed)) => {
            if let Err(announce_err) = feed
                .fail(args.export_id.as_deref(), &format!("{e:#}"))
                .await
            {
                tracing::warn!(error = %announce_err, "the failure could not be announced to the manifest topic");
            }
            return Err(e);
        }
        (Err(e), None) => return Err(e),
    };
    let text = serde_json::to_string_pretty(&manifest)?;
    if args.manifest_out == "-" {
        println!("{text}");
    } else {
        std::fs::write(&args.manifest_out, &text)
            .with_context(|| format!("writing the manifest to {}", args.manifest_out))?;
    }
    if let Some(feed) = &feed {
        feed.finish(&manifest)
            .await
            .context("publishing the manifest")?;
    }
    eprintln!(
        "exported {} records in {} chunks to `{}` in {:.2} s ({} records/s); export id {}",
        thousands(manifest.total_records),
        manifest.chunks.len(),
        manifest.topic,
        manifest.timings.export_ms as f64 / 1000.0,
        per_sec(manifest.total_records, manifest.timings.export_ms),
        manifest.export_id
    );
    Ok(ExitCode::SUCCESS)
}
