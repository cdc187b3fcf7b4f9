//! Pieces shared by the subcommands: engine options, running an export with a progress
//! bar and Ctrl-C, and reading back with a progress bar.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use ldd_core::feed::{fan_out, FeedEntry};
use ldd_core::{
    export, export_resumable, CheckpointStore, DataSource, Delivery, ExportControl, ExportObserver,
    ExportOptions, ExportParts, JobCountPartitioner, JournalFile, Manifest, RetryPolicy, Sink,
};
use ldd_sink_kafka::distributed::{run_distributed, GroupExport};
use ldd_sink_kafka::readback::{
    follow, read_back, FollowOutcome, Hooks, ReadBackConfig, ReadBackReport, RecordOutput,
};
use ldd_sink_kafka::KafkaSinkConfig;

use crate::flags::EngineArgs;
use crate::progress::{export_observer, records_bar};

/// Engine options from the flags.
pub(crate) fn export_options(engine: &EngineArgs, export_id: Option<String>) -> ExportOptions {
    ExportOptions {
        export_id,
        format: engine.format.into(),
        batch_bytes: engine.batch_kib.saturating_mul(1024),
        workers: engine.workers.unwrap_or_else(default_workers),
        retry: RetryPolicy {
            max_attempts: engine.attempts,
            ..Default::default()
        },
        ..Default::default()
    }
}

/// The delivery guarantee from the flags (`--transactional` is the default's old name).
pub(crate) fn delivery(engine: &EngineArgs) -> Delivery {
    if engine.transactional {
        Delivery::ExactlyOnce
    } else {
        engine.delivery.into()
    }
}

/// The sink settings that come from the engine flags, on top of `config`.
pub(crate) fn with_engine_flags(engine: &EngineArgs, config: KafkaSinkConfig) -> KafkaSinkConfig {
    KafkaSinkConfig {
        compression: engine.compression.into(),
        delivery: delivery(engine),
        transaction_timeout: std::time::Duration::from_secs(engine.transaction_timeout_secs),
        ..config
    }
}

/// One worker per CPU: encoding is CPU-bound, and more workers than cores only contend.
pub(crate) fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(2, usize::from)
}

/// Chunks of an export unless `--jobs` says otherwise (the original system's default).
pub(crate) const DEFAULT_JOBS: usize = 48;

/// The original system's chunk rule from the flags.
pub(crate) fn partitioner(engine: &EngineArgs) -> JobCountPartitioner {
    JobCountPartitioner {
        jobs: engine.jobs.unwrap_or(DEFAULT_JOBS),
        drop_last: !engine.no_drop_last,
    }
}

/// Where an export's chunks run.
pub(crate) enum ExportMode<'a> {
    /// In this process; with a journal, the export records its plan and every committed
    /// chunk there ([`JournalFile`]), or resumes the export the journal describes.
    Local { journal: Option<&'a Path> },
    /// On the workers of a group; the sink's settings tell them where to write.
    Group {
        group: Box<GroupExport>,
        sink: &'a KafkaSinkConfig,
    },
}

/// Runs an export with a progress bar; Ctrl-C cancels it cleanly. `announce` also receives
/// the export's events (a chunk feed).
pub(crate) async fn run_export(
    source: Arc<dyn DataSource>,
    sink: Arc<dyn Sink>,
    engine: &EngineArgs,
    options: ExportOptions,
    quiet: bool,
    mode: ExportMode<'_>,
    announce: Option<Arc<dyn ExportObserver>>,
) -> anyhow::Result<Manifest> {
    let bar = records_bar(0, "export", quiet);
    let progress = match announce {
        Some(announce) => fan_out(vec![export_observer(bar.clone()), announce]),
        None => export_observer(bar.clone()),
    };
    let control = ExportControl::default();
    let cancel = control.cancel.clone();
    let interrupted = match mode {
        ExportMode::Local { .. } => "interrupted: cancelling the export (committed chunks stay committed)",
        ExportMode::Group { .. } => "interrupted: the workers go on; run the same command with --export-id to wait for the export again",
    };
    let ctrl_c = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("{interrupted}");
            cancel.cancel();
        }
    });
    let partitioner = partitioner(engine);
    let parts = ExportParts {
        source,
        sink,
        options,
        control: ExportControl {
            observer: Some(progress),
            ..control
        },
    };
    let result = match mode {
        ExportMode::Group { group, sink } => {
            run_distributed(parts, sink, &partitioner, &group).await
        }
        ExportMode::Local { journal: None } => {
            export(
                parts.source,
                parts.sink,
                &partitioner,
                parts.options,
                parts.control,
            )
            .await
        }
        ExportMode::Local {
            journal: Some(path),
        } => {
            let journal = Arc::new(JournalFile::new(path));
            if let Some(state) = journal.load().await? {
                let in_doubt = match state.in_doubt.len() {
                    0 => String::new(),
                    n => format!(", {n} to check against the topic"),
                };
                eprintln!(
                    "resuming export {} from {}: {} of {} chunks already committed{in_doubt}",
                    state.export.export_id,
                    path.display(),
                    state.committed.len(),
                    state.export.plan.chunks.len()
                );
            }
            export_resumable(parts, &partitioner, journal).await
        }
    };
    ctrl_c.abort();
    bar.finish_and_clear();
    result.context("export failed")
}

/// Reads a manifest back on a blocking thread with a progress bar.
pub(crate) async fn run_read_back(
    manifest: Manifest,
    config: ReadBackConfig,
    output: Option<Arc<dyn RecordOutput>>,
    quiet: bool,
) -> anyhow::Result<(Manifest, ReadBackReport)> {
    let bar = records_bar(manifest.total_records, "read-back", quiet);
    let progress_bar = bar.clone();
    let joined = tokio::task::spawn_blocking(move || {
        let progress = move |done: u64, _total: u64| progress_bar.set_position(done);
        let hooks = Hooks {
            output: output.as_deref(),
            progress: Some(&progress),
        };
        let report = read_back(&manifest, &config, Some(&hooks));
        (manifest, report)
    })
    .await
    .context("read-back thread failed")?;
    bar.finish_and_clear();
    let (manifest, report) = joined;
    Ok((manifest, report.context("read-back failed")?))
}

/// Follows export `export_id` through `feed` on a blocking thread with a progress bar (the
/// total is unknown until the export ends).
pub(crate) fn spawn_follow<F>(
    export_id: String,
    feed: F,
    config: ReadBackConfig,
    output: Option<Arc<dyn RecordOutput>>,
    quiet: bool,
) -> tokio::task::JoinHandle<anyhow::Result<FollowOutcome>>
where
    F: IntoIterator<Item = ldd_sink_kafka::Result<FeedEntry>> + Send + 'static,
{
    let bar = records_bar(0, "follow", quiet);
    tokio::task::spawn_blocking(move || {
        let progress_bar = bar.clone();
        let progress = move |done: u64, _total: u64| progress_bar.set_position(done);
        let hooks = Hooks {
            output: output.as_deref(),
            progress: Some(&progress),
        };
        let outcome = follow(&export_id, feed, &config, Some(&hooks));
        bar.finish_and_clear();
        outcome.with_context(|| format!("following export {export_id} failed"))
    })
}

/// Prints what read-back found wrong, at most `limit` lines.
pub(crate) fn print_problems(report: &ReadBackReport, limit: usize) {
    for problem in report.problems.iter().take(limit) {
        eprintln!("  - {problem}");
    }
    if report.problems.len() > limit {
        eprintln!("  ... and {} more", report.problems.len() - limit);
    }
}
