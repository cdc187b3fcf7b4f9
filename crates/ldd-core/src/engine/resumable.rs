//! The one resumable export: plan or load, fence, settle what is in doubt, run the rest.

use std::sync::Arc;

use chrono::Utc;

use super::{execute_plan, plan_export, ExportEvent, ExportParts, Resume};
use crate::checkpoint::{Checkpoint, CheckpointStore, ExportRecord, RunRecord};
use crate::error::{Error, Result};
use crate::manifest::{ChunkManifest, Manifest};
use crate::partition::Partitioner;

/// Runs an export that records its plan and every committed chunk in `store`, or resumes
/// the export the store describes: only chunks it does not show as committed run again,
/// under attempt numbers no earlier run used, after the sink has fenced every writer an
/// earlier run may have left open.
///
/// A store written for another export (other source, destination, format, delivery or id)
/// is refused with [`Error::InvalidInput`]; a store that cannot be written stops the export
/// with [`Error::Checkpoint`].
///
/// ```
/// use std::sync::Arc;
/// use ldd_core::testing::MemorySink;
/// use ldd_core::{export_resumable, ExportControl, ExportOptions, ExportParts, GeneratorConfig,
///     GeneratorSource, JobCountPartitioner, JournalFile};
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let path = std::env::temp_dir().join(format!("ldd-doc-resume-{}.journal", std::process::id()));
/// let parts = ExportParts {
///     source: Arc::new(GeneratorSource::new(GeneratorConfig { records: 1_000, ..Default::default() })),
///     sink: Arc::new(MemorySink::new(4)),
///     options: ExportOptions::default(),
///     control: ExportControl::default(),
/// };
/// let journal = Arc::new(JournalFile::new(&path));
/// let manifest = export_resumable(parts.clone(), &JobCountPartitioner::default(), journal.clone())
///     .await.unwrap();
/// // Run again: everything is committed already, so nothing is written twice.
/// let again = export_resumable(parts, &JobCountPartitioner::default(), journal).await.unwrap();
/// assert_eq!(again.chunks, manifest.chunks);
/// # std::fs::remove_file(&path).unwrap();
/// # });
/// ```
pub async fn export_resumable(
    parts: ExportParts,
    partitioner: &dyn Partitioner,
    store: Arc<dyn CheckpointStore>,
) -> Result<Manifest> {
    parts.options.validate()?;
    let (record, mut committed, in_doubt, first_attempt, earlier_slots) = match store.load().await?
    {
        Some(checkpoint) => {
            check_same_export(&checkpoint.export, &parts)?;
            let Checkpoint {
                export,
                committed,
                in_doubt,
                next_attempt,
                writer_slots,
            } = checkpoint;
            (
                export,
                committed,
                in_doubt,
                next_attempt,
                writer_slots as usize,
            )
        }
        None => {
            let record = plan_new(&parts, partitioner).await?;
            store.save_export(&record).await?;
            (record, Vec::new(), Vec::new(), 1, 0)
        }
    };
    let options = &parts.options;
    let writer_slots = parts
        .sink
        .writer_slots(options.workers)
        .max(options.workers)
        .max(earlier_slots);
    let last_attempt = first_attempt
        .checked_add(options.retry.max_attempts - 1)
        .ok_or_else(|| {
            Error::InvalidInput(format!(
                "export {} has used up its attempt numbers; start it anew",
                record.export_id
            ))
        })?;
    // Recorded before anything is written: a later resume then uses attempt numbers above
    // this run's and fences at least as many writer slots.
    store
        .save_run(&RunRecord {
            first_attempt,
            last_attempt,
            writer_slots: u32::try_from(writer_slots).unwrap_or(u32::MAX),
        })
        .await?;
    // Resuming: fence every slot an earlier run may have left a transaction open on, then
    // ask the sink about the chunks that run left in doubt.
    let fence_slots = if earlier_slots > 0 {
        parts.sink.prepare(&record.export_id, writer_slots).await?;
        committed.extend(settle_in_doubt(&parts, &record, &*store, in_doubt).await?);
        writer_slots
    } else {
        0
    };

    let pending = record
        .plan
        .pending_chunks(committed.iter().map(|c| c.chunk_id));
    parts.control.emit(ExportEvent::Planned {
        export_id: record.export_id.clone(),
        chunks: pending.len(),
        records: pending.iter().map(|c| c.expected_records).sum(),
        total_chunks: record.plan.chunks.len(),
        total_records: record.plan.total_records,
        partitions: record.plan.partitions,
        strategy: record.plan.strategy.name.clone(),
    });
    let started_at = chrono::DateTime::parse_from_rfc3339(&record.started_at)
        .map(|t| t.with_timezone(&Utc))
        .ok();
    let parts = ExportParts {
        options: crate::ExportOptions {
            export_id: Some(record.export_id.clone()),
            first_attempt,
            ..parts.options
        },
        ..parts
    };
    let resume = Resume {
        committed,
        checkpoint: Some(store),
        fence_slots,
        started_at,
    };
    execute_plan(&record.plan, parts, resume).await
}

async fn plan_new(parts: &ExportParts, partitioner: &dyn Partitioner) -> Result<ExportRecord> {
    let started_at = Utc::now();
    let plan = plan_export(parts, partitioner).await?;
    Ok(ExportRecord {
        export_id: plan.export_id.clone(),
        topic: parts.sink.destination(),
        format: parts.options.format,
        source: parts.source.describe(),
        delivery: parts.sink.delivery(),
        started_at: started_at.to_rfc3339(),
        plan,
    })
}

/// Chunks an interrupted run recorded as committing: the sink (its earlier writers now
/// fenced) says which became visible; those are recorded as committed, the rest run again.
async fn settle_in_doubt(
    parts: &ExportParts,
    record: &ExportRecord,
    store: &dyn CheckpointStore,
    in_doubt: Vec<ChunkManifest>,
) -> Result<Vec<ChunkManifest>> {
    let mut settled = Vec::new();
    for chunk in in_doubt {
        if parts.sink.chunk_visible(&record.export_id, &chunk).await? {
            tracing::info!(
                chunk = chunk.chunk_id,
                attempt = chunk.attempt,
                "an interrupted run committed this chunk; kept"
            );
            store.save_committed(&chunk).await?;
            settled.push(chunk);
        }
    }
    Ok(settled)
}

/// A checkpoint resumes only the export it was written for.
fn check_same_export(then: &ExportRecord, parts: &ExportParts) -> Result<()> {
    let now = (
        parts.source.describe(),
        parts.sink.destination(),
        parts.options.format,
        parts.sink.delivery(),
    );
    let was = (
        then.source.clone(),
        then.topic.clone(),
        then.format,
        then.delivery,
    );
    let other_id = parts
        .options
        .export_id
        .as_ref()
        .is_some_and(|id| *id != then.export_id);
    if now != was || other_id {
        return Err(Error::InvalidInput(format!(
            "the checkpoint belongs to export {} of {} into `{}` ({}, {}), but this export is of \
             {} into `{}` ({}, {}){}; resume it with its original settings, or start a new \
             checkpoint",
            then.export_id,
            was.0,
            was.1,
            was.2,
            was.3,
            now.0,
            now.1,
            now.2,
            now.3,
            if other_id {
                " under another export id"
            } else {
                ""
            }
        )));
    }
    Ok(())
}
