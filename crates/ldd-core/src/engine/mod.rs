//! The chunked export engine: plan, run chunks on a bounded worker pool, build the manifest.
//!
//! Memory stays bounded: each worker holds one source batch and one payload being built,
//! and the sink pushes back when its queue is full.

mod attempt;
mod feeder;
mod options;
mod progress;
mod read_ahead;
mod resumable;
mod slots;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use tokio::task::JoinSet;

pub use options::{ExportControl, ExportOptions, RetryPolicy};
pub use progress::{ExportEvent, ExportObserver, Progress};
pub use resumable::export_resumable;

use attempt::{run_chunk, run_scan_block, ChunkOutcome, Pools, ScanCursor};
use feeder::Feeder;
use progress::Counters;
use slots::SlotPool;

use crate::chunk::{Chunk, ChunkRange, ExportPlan};
use crate::error::{ChunkFailure, Error, FailureCause, Result};
use crate::manifest::{ChunkManifest, Manifest, ManifestHeader, Timings};
use crate::partition::Partitioner;
use crate::sink::{ChunkContext, ChunkWriter, Sink};
use crate::source::{DataSource, SplitKind};

/// Counts and splits the dataset of `parts.source` into a plan for the partitions of
/// `parts.sink`, for export `parts.options.export_id` (a new UUID when absent; the plan
/// carries it).
///
/// Chunk ids follow the dataset's order; chunk `i` goes to the partitioner's partition.
pub async fn plan_export(parts: &ExportParts, partitioner: &dyn Partitioner) -> Result<ExportPlan> {
    let export_id = parts
        .options
        .export_id
        .clone()
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    split_into_plan(
        parts.source.as_ref(),
        parts.sink.as_ref(),
        partitioner,
        &export_id,
    )
    .await
}

async fn split_into_plan(
    source: &dyn DataSource,
    sink: &dyn Sink,
    partitioner: &dyn Partitioner,
    export_id: &str,
) -> Result<ExportPlan> {
    let started = Instant::now();
    let partitions = sink.partition_count().await?;
    let total = source.count().await?;
    let chunk_count = partitioner.chunk_count(total, partitions)?;
    let (split, splittable) = if chunk_count == 0 {
        (Vec::new(), true)
    } else {
        let split = source.split(chunk_count, total).await?;
        let mut strategy = split.strategy;
        strategy.duration_ms = started.elapsed().as_millis() as u64;
        let (ranges, splittable) = match split.kind {
            SplitKind::Ranges(ranges) => (
                ranges
                    .into_iter()
                    .map(|r| (r.range, r.expected_records))
                    .collect(),
                true,
            ),
            SplitKind::ScanOnly => (
                partitioner
                    .block_sizes(total, chunk_count)
                    .into_iter()
                    .map(|n| (ChunkRange::All, n))
                    .collect(),
                false,
            ),
        };
        return Ok(build_plan(
            export_id,
            total,
            partitions,
            strategy,
            splittable,
            ranges,
            partitioner,
        ));
    };
    Ok(build_plan(
        export_id,
        total,
        partitions,
        crate::chunk::PlanStrategy {
            name: "empty".into(),
            reason: Some("the dataset has no records".into()),
            queries: 0,
            duration_ms: started.elapsed().as_millis() as u64,
        },
        splittable,
        split,
        partitioner,
    ))
}

fn build_plan(
    export_id: &str,
    total: u64,
    partitions: u32,
    strategy: crate::chunk::PlanStrategy,
    splittable: bool,
    ranges: Vec<(ChunkRange, u64)>,
    partitioner: &dyn Partitioner,
) -> ExportPlan {
    let chunks = ranges
        .into_iter()
        .enumerate()
        .map(|(i, (range, expected_records))| Chunk {
            id: i as u32,
            partition: partitioner.partition_of(i, partitions),
            range,
            expected_records,
        })
        .collect();
    ExportPlan {
        export_id: export_id.to_owned(),
        total_records: total,
        partitions,
        strategy,
        splittable,
        chunks,
    }
}

/// What an export runs on: the source, the sink, the options and the controls.
#[derive(Clone)]
pub struct ExportParts {
    /// Where the records come from.
    pub source: Arc<dyn DataSource>,
    /// Where the messages go.
    pub sink: Arc<dyn Sink>,
    /// How to run.
    pub options: ExportOptions,
    /// Cancellation and events.
    pub control: ExportControl,
}

impl std::fmt::Debug for ExportParts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExportParts")
            .field("source", &self.source.describe())
            .field("sink", &self.sink.destination())
            .field("options", &self.options)
            .finish()
    }
}

/// What an earlier run of the same export left, for [`execute_plan`]. The default is a
/// new export.
#[derive(Clone, Default)]
pub struct Resume {
    /// Chunks already committed; they are not run again.
    pub committed: Vec<ChunkManifest>,
    /// Where each chunk is recorded as it commits; `None` records nothing.
    pub checkpoint: Option<Arc<dyn crate::checkpoint::CheckpointStore>>,
    /// Writer slots an earlier run may have used: at least these are fenced before any
    /// chunk runs.
    pub fence_slots: usize,
    /// When the export first started; now when absent.
    pub started_at: Option<chrono::DateTime<Utc>>,
}

impl std::fmt::Debug for Resume {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resume")
            .field("committed", &self.committed.len())
            .field("checkpoint", &self.checkpoint.is_some())
            .field("fence_slots", &self.fence_slots)
            .finish()
    }
}

/// Plans and runs a whole export; returns its manifest. Nothing is recorded for a resume:
/// see [`export_resumable`] for that.
///
/// ```
/// use std::sync::Arc;
/// use ldd_core::testing::MemorySink;
/// use ldd_core::{export, ExportControl, ExportOptions, GeneratorConfig, GeneratorSource,
///     JobCountPartitioner};
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let source = Arc::new(GeneratorSource::new(GeneratorConfig { records: 1_000, ..Default::default() }));
/// let sink = Arc::new(MemorySink::new(4));
/// let manifest = export(source, sink.clone(), &JobCountPartitioner::default(),
///     ExportOptions::default(), ExportControl::default()).await.unwrap();
/// assert_eq!(manifest.total_records, 1_000);
/// assert_eq!(manifest.partitions.iter().map(|p| p.records).sum::<u64>(), 1_000);
/// # });
/// ```
pub async fn export(
    source: Arc<dyn DataSource>,
    sink: Arc<dyn Sink>,
    partitioner: &dyn Partitioner,
    options: ExportOptions,
    control: ExportControl,
) -> Result<Manifest> {
    options.validate()?;
    let started_at = Utc::now();
    let parts = ExportParts {
        source,
        sink,
        options,
        control,
    };
    let plan = plan_export(&parts, partitioner).await?;
    parts.control.emit(ExportEvent::Planned {
        export_id: plan.export_id.clone(),
        chunks: plan.chunks.len(),
        records: plan.total_records,
        total_chunks: plan.chunks.len(),
        total_records: plan.total_records,
        partitions: plan.partitions,
        strategy: plan.strategy.name.clone(),
    });
    let parts = ExportParts {
        options: ExportOptions {
            export_id: Some(plan.export_id.clone()),
            ..parts.options
        },
        ..parts
    };
    let resume = Resume {
        started_at: Some(started_at),
        ..Resume::default()
    };
    execute_plan(&plan, parts, resume).await
}

/// Everything a worker needs, shared by all of them.
pub(crate) struct Shared {
    pub(crate) source: Arc<dyn DataSource>,
    pub(crate) sink: Arc<dyn Sink>,
    pub(crate) options: ExportOptions,
    pub(crate) control: ExportControl,
    pub(crate) counters: Arc<Counters>,
    pub(crate) checkpoint: Option<Arc<dyn crate::checkpoint::CheckpointStore>>,
    /// Cancelled by the user's token or by a failure that stops the whole export.
    pub(crate) stop: tokio_util::sync::CancellationToken,
    /// The failure that stopped the export (a checkpoint that could not be written).
    fatal: std::sync::Mutex<Option<Error>>,
    export_id: String,
}

impl Shared {
    pub(crate) async fn open(
        &self,
        slot: usize,
        chunk: &Chunk,
        attempt: u32,
    ) -> Result<Box<dyn ChunkWriter>> {
        let ctx = ChunkContext {
            export_id: self.export_id.clone(),
            chunk_id: chunk.id,
            partition: chunk.partition,
            attempt,
            format: self.options.format,
        };
        self.sink.open_chunk(slot, &ctx).await
    }

    pub(crate) fn feeder<'w>(&self, writer: &'w mut dyn ChunkWriter) -> Feeder<'w> {
        Feeder::new(
            writer,
            self.options.format,
            self.options.batch_bytes,
            self.counters.clone(),
        )
    }

    /// Stops the whole export with `err` (the first such error is kept).
    pub(crate) fn fail_export(&self, err: Error) {
        let mut fatal = self.fatal.lock().unwrap_or_else(|p| p.into_inner());
        fatal.get_or_insert(err);
        self.stop.cancel();
    }

    fn take_fatal(&self) -> Option<Error> {
        self.fatal.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

/// Runs the chunks of `plan` that `resume` does not show as committed and returns the
/// manifest of all chunks.
pub async fn execute_plan(
    plan: &ExportPlan,
    parts: ExportParts,
    resume: Resume,
) -> Result<Manifest> {
    let ExportParts {
        source,
        sink,
        options,
        control,
    } = parts;
    options.validate()?;
    let started_at = resume.started_at.unwrap_or_else(Utc::now);
    let export_id = options
        .export_id
        .clone()
        .unwrap_or_else(|| plan.export_id.clone());
    let committed = resume.committed;
    let done: HashSet<u32> = committed.iter().map(|c| c.chunk_id).collect();
    let pending: Vec<Chunk> = plan
        .pending_chunks(committed.iter().map(|c| c.chunk_id))
        .into_iter()
        .cloned()
        .collect();
    let writer_slots = sink.writer_slots(options.workers).max(options.workers);
    // Resuming, fencing comes first: an earlier run's open transactions must not hold
    // readers back, also on slots this run will not use. A new export has nothing to fence.
    if resume.fence_slots > 0 {
        sink.prepare(&export_id, writer_slots.max(resume.fence_slots))
            .await?;
    } else {
        // Still, set every slot's writer up at once in the background: otherwise a slot's
        // first chunk waits for it (a transactional producer's set-up is a few round trips).
        let (sink, export_id) = (sink.clone(), export_id.clone());
        tokio::spawn(async move {
            if let Err(e) = sink.prepare(&export_id, writer_slots).await {
                tracing::debug!(error = %e.chain(), "setting writers up ahead failed; they start on first use");
            }
        });
    }
    let counters = Counters::new(
        pending.iter().map(|c| c.expected_records).sum(),
        pending.len() as u64,
    );
    let shared = Arc::new(Shared {
        source,
        sink: sink.clone(),
        options,
        control: control.clone(),
        counters: counters.clone(),
        checkpoint: resume.checkpoint,
        stop: control.cancel.child_token(),
        fatal: std::sync::Mutex::new(None),
        export_id: export_id.clone(),
    });

    let reporter = spawn_reporter(&shared);
    let results = if plan.splittable {
        run_ranges(&shared, pending, writer_slots).await
    } else {
        run_scan(&shared, plan, &done).await
    };
    reporter.cancel();
    control.emit(ExportEvent::Progress(counters.snapshot()));
    if let Some(err) = shared.take_fatal() {
        return Err(err);
    }

    let mut manifests = committed;
    let mut failures = Vec::new();
    let mut cancelled = false;
    for result in results {
        match result {
            Ok(m) => manifests.push(m),
            Err(ChunkOutcome::Cancelled) => cancelled = true,
            Err(ChunkOutcome::Failed(f)) => failures.push(f),
        }
    }
    if cancelled {
        return Err(Error::Cancelled);
    }
    if !failures.is_empty() {
        failures.sort_by_key(|f| f.chunk_id);
        return Err(Error::ChunksFailed {
            total: plan.chunks.len(),
            failures,
        });
    }
    let header = ManifestHeader {
        export_id,
        topic: sink.destination(),
        format: shared.options.format,
        delivery: sink.delivery(),
        source: shared.source.describe(),
        counted_records: plan.total_records,
        strategy: plan.strategy.clone(),
        timings: Timings {
            started_at: started_at.to_rfc3339(),
            finished_at: Utc::now().to_rfc3339(),
            planning_ms: plan.strategy.duration_ms,
            export_ms: counters.elapsed().as_millis() as u64,
        },
    };
    Ok(Manifest::from_chunks(header, manifests))
}

type ChunkResult = std::result::Result<ChunkManifest, ChunkOutcome>;

/// Runs range chunks in chunk order: at most `workers` reading and encoding at once, and
/// at most `writer_slots` open in the sink (the rest of them committing).
async fn run_ranges(
    shared: &Arc<Shared>,
    pending: Vec<Chunk>,
    writer_slots: usize,
) -> Vec<ChunkResult> {
    let pools = Arc::new(Pools {
        workers: tokio::sync::Semaphore::new(shared.options.workers),
        writers: SlotPool::new(writer_slots),
    });
    let mut tasks = JoinSet::new();
    for chunk in pending {
        let (shared, pools) = (shared.clone(), pools.clone());
        tasks.spawn(async move { run_chunk(&shared, &pools, &chunk).await });
    }
    let mut results = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        results.push(joined.unwrap_or_else(|e| {
            Err(ChunkOutcome::Failed(ChunkFailure {
                chunk_id: u32::MAX,
                attempts: 0,
                error: format!("chunk task ended abnormally: {e}"),
                cause: FailureCause::Internal,
            }))
        }));
    }
    results
}

/// Reads the dataset once, in order, cutting it into the planned blocks.
/// A failed block cannot be re-read alone, so it fails the export (resume rescans).
async fn run_scan(
    shared: &Arc<Shared>,
    plan: &ExportPlan,
    done: &HashSet<u32>,
) -> Vec<ChunkResult> {
    let fail = |chunk_id: u32, err: &Error| {
        if matches!(err, Error::Cancelled | Error::Checkpoint(_)) {
            ChunkOutcome::Cancelled
        } else {
            ChunkOutcome::Failed(ChunkFailure {
                chunk_id,
                attempts: 1,
                error: err.chain(),
                cause: err.failure_cause().unwrap_or(FailureCause::Internal),
            })
        }
    };
    let mut cursor = match shared.source.read(&ChunkRange::All).await {
        Ok(stream) => ScanCursor::new(read_ahead::read_ahead(stream)),
        Err(e) => return vec![Err(fail(0, &e))],
    };
    let mut results = Vec::new();
    let last = plan.chunks.len().saturating_sub(1);
    for (i, chunk) in plan.chunks.iter().enumerate() {
        if done.contains(&chunk.id) {
            if let Err(e) = cursor.skip(chunk.expected_records).await {
                results.push(Err(fail(chunk.id, &e)));
                break;
            }
            continue;
        }
        // The last block takes whatever is left, so records added since counting are kept.
        match run_scan_block(
            shared,
            chunk,
            chunk.expected_records,
            i == last,
            &mut cursor,
        )
        .await
        {
            Ok(m) => results.push(Ok(m)),
            Err(e) => {
                results.push(Err(fail(chunk.id, &e)));
                break;
            }
        }
    }
    results
}

/// Emits progress snapshots until the returned token is cancelled.
fn spawn_reporter(shared: &Arc<Shared>) -> tokio_util::sync::CancellationToken {
    let stop = tokio_util::sync::CancellationToken::new();
    if shared.control.observer.is_none() {
        return stop;
    }
    let (shared, stop_rx) = (shared.clone(), stop.clone());
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(shared.options.progress_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = stop_rx.cancelled() => break,
                _ = tick.tick() => shared.control.emit(ExportEvent::Progress(shared.counters.snapshot())),
            }
        }
    });
    stop
}
