//! `ldd export`: one export into a Kafka topic; writes (and publishes) the manifest.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use ldd_core::{DataSource, GeneratorConfig, GeneratorSource};
use ldd_sink_kafka::{manifest_topic, KafkaSink, KafkaSinkConfig};

use super::shared::{export_options, run_export};
use crate::cli::{ExportArgs, SourceKind};
use crate::report::{per_sec, thousands};

pub(crate) async fn run(args: ExportArgs) -> anyhow::Result<ExitCode> {
    let source: Arc<dyn DataSource> = match args.source {
        SourceKind::Generator => Arc::new(GeneratorSource::new(GeneratorConfig {
            records: args.records,
            points_per_timestamp: args.points_per_timestamp,
            ..Default::default()
        })),
    };
    let sink = KafkaSink::connect(KafkaSinkConfig {
        brokers: args.brokers.clone(),
        topic: args.topic.clone(),
        create_partitions: args.partitions,
        compression: args.engine.compression.into(),
        transactional: args.engine.transactional,
        librdkafka: args.kafka_options.iter().cloned().collect(),
        ..Default::default()
    })
    .await?;
    let options = export_options(&args.engine, args.export_id.clone());
    let manifest = run_export(source, Arc::new(sink), &args.engine, options, args.quiet).await?;
    let text = serde_json::to_string_pretty(&manifest)?;
    if args.manifest_out == "-" {
        println!("{text}");
    } else {
        std::fs::write(&args.manifest_out, &text)
            .with_context(|| format!("writing the manifest to {}", args.manifest_out))?;
    }
    if !args.manifest_topic.is_empty() {
        manifest_topic::publish_manifest(&args.brokers, &args.manifest_topic, &manifest)
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
