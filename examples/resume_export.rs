//! Embed a resumable, exactly-once export: the first run stops halfway (as if the process
//! died), the second run of the same code resumes it from its journal, and read-back proves
//! the dataset arrived exactly once.
//!
//! Run with: `cargo run -p ldd-examples --example resume_export`
//!
//! It uses librdkafka's embedded mock cluster; point `brokers` at a real cluster to try it
//! there. Replace the `JournalFile` with your own `CheckpointStore` (a database table, say)
//! to keep the checkpoint elsewhere.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use ldd_core::{
    export_resumable, CheckpointStore, ExportControl, ExportEvent, ExportObserver, ExportOptions,
    ExportParts, Format, GeneratorConfig, GeneratorSource, JobCountPartitioner, JournalFile,
};
use ldd_sink_kafka::readback::{read_back, ReadBackConfig};
use ldd_sink_kafka::{EmbeddedCluster, KafkaSink, KafkaSinkConfig};

const TOPIC: &str = "resume-example";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cluster = EmbeddedCluster::start(1)?;
    cluster.create_topic(TOPIC, 4, 1)?;
    let brokers = cluster.bootstrap_servers();
    let journal_path =
        std::env::temp_dir().join(format!("ldd-resume-{}.journal", std::process::id()));
    let journal = Arc::new(JournalFile::new(&journal_path));

    // First run: cancelled after 10 committed chunks, standing in for a crash.
    let control = ExportControl::default();
    let stop_after = StopAfter {
        chunks: 10,
        seen: AtomicUsize::new(0),
        control: control.clone(),
    };
    let control = ExportControl {
        observer: Some(Arc::new(stop_after)),
        ..control
    };
    let first = export_resumable(
        parts(&brokers, control).await?,
        &partitioner(),
        journal.clone(),
    )
    .await;
    let checkpoint = journal.load().await?.ok_or("the journal is empty")?;
    println!(
        "first run: {} ({} of {} chunks committed)",
        first.err().map_or("finished".into(), |e| e.to_string()),
        checkpoint.committed.len(),
        checkpoint.export.plan.chunks.len()
    );

    // Second run, same code and journal: only the missing chunks run.
    let manifest = export_resumable(
        parts(&brokers, ExportControl::default()).await?,
        &partitioner(),
        journal,
    )
    .await?;
    println!(
        "resumed:   {} records in {} chunks, written under {}",
        manifest.total_records,
        manifest.chunks.len(),
        manifest.delivery
    );

    let report = read_back(&manifest, &ReadBackConfig::new(brokers), None)?;
    println!(
        "read-back: {} records, {}",
        report.records,
        if report.is_verified() {
            "verified"
        } else {
            "NOT verified"
        }
    );
    std::fs::remove_file(&journal_path)?;
    Ok(())
}

/// The same export every run: same source, topic, format (a resume checks this).
async fn parts(
    brokers: &str,
    control: ExportControl,
) -> Result<ExportParts, ldd_sink_kafka::Error> {
    let sink = KafkaSink::connect(KafkaSinkConfig {
        client: brokers.into(),
        topic: TOPIC.into(),
        ..Default::default()
    })
    .await?;
    Ok(ExportParts {
        source: Arc::new(GeneratorSource::new(GeneratorConfig {
            records: 200_000,
            ..Default::default()
        })),
        sink: Arc::new(sink),
        options: ExportOptions {
            format: Format::Jsonl,
            workers: 2,
            ..Default::default()
        },
        control,
    })
}

fn partitioner() -> JobCountPartitioner {
    JobCountPartitioner {
        jobs: 32,
        drop_last: false,
    }
}

/// Cancels the export once `chunks` chunks have committed.
struct StopAfter {
    chunks: usize,
    seen: AtomicUsize,
    control: ExportControl,
}

impl ExportObserver for StopAfter {
    fn on_event(&self, event: &ExportEvent) {
        if let ExportEvent::ChunkCommitted(_) = event {
            if self.seen.fetch_add(1, Ordering::SeqCst) + 1 >= self.chunks {
                self.control.cancel.cancel();
            }
        }
    }
}
