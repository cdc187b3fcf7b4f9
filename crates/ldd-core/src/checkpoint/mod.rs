//! Durable export state, so that an interrupted export resumes where it stopped.
//!
//! An export's lifecycle is plan → run → checkpoint → resume → manifest. The engine writes
//! through a [`CheckpointStore`]: the export (its identity and plan) once, a line per run
//! (the attempt numbers and transactional writer slots it may use), and for every chunk the
//! manifest entry twice — *committing* just before the sink makes it visible, *committed*
//! right after. A chunk found only as committing was cut off between the two: after the
//! sink has fenced the dead run's writers, the sink tells whether it became visible
//! ([`crate::Sink::chunk_visible`]), so it is neither lost nor written twice.
//!
//! Two stores ship with ldd: [`JournalFile`] (JSON lines in one file, what `ldd export
//! --journal` uses) and the server's SQLite state. [`crate::export_resumable`] is the one
//! function that drives an export through a store.

mod journal;
#[cfg(feature = "sqlite")]
mod sqlite;

pub use journal::JournalFile;
#[cfg(feature = "sqlite")]
pub use sqlite::{SqliteCheckpoint, SqliteCheckpoints};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::chunk::ExportPlan;
use crate::error::Result;
use crate::format::Format;
use crate::manifest::ChunkManifest;
use crate::sink::Delivery;

/// What a checkpoint remembers of the export it belongs to; a resume checks that it is
/// resuming the same export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportRecord {
    /// The export id.
    pub export_id: String,
    /// The sink's destination (the topic).
    pub topic: String,
    /// The payload format.
    pub format: Format,
    /// The source's description.
    pub source: String,
    /// The delivery guarantee the export is written under.
    #[serde(default)]
    pub delivery: Delivery,
    /// When the first run started (RFC 3339).
    #[serde(default)]
    pub started_at: String,
    /// The plan every run follows.
    pub plan: ExportPlan,
}

/// One run of an export: the resources it may have left traces with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    /// First attempt number of every chunk in this run.
    pub first_attempt: u32,
    /// Last attempt number this run may use.
    pub last_attempt: u32,
    /// Chunk writer slots this run may open (e.g. transactional producers); a resume fences
    /// at least as many.
    #[serde(default)]
    pub writer_slots: u32,
}

/// Everything a store holds about one export.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    /// The export.
    pub export: ExportRecord,
    /// Chunks known to be committed, one per chunk id.
    pub committed: Vec<ChunkManifest>,
    /// Chunks recorded as committing but not as committed (a crash between the sink's
    /// commit and its record): visible or not, the sink decides.
    pub in_doubt: Vec<ChunkManifest>,
    /// The first attempt number no earlier run may have used.
    pub next_attempt: u32,
    /// The most writer slots any earlier run may have opened.
    pub writer_slots: u32,
}

/// Durable state of one export. Every method must be durable when it returns: the engine
/// stops the export when a write fails, since a resume could not know what was committed.
#[async_trait]
pub trait CheckpointStore: Send + Sync {
    /// What the store holds, or `None` for an export never started.
    async fn load(&self) -> Result<Option<Checkpoint>>;

    /// Records a new export and its plan (once, before anything is written).
    async fn save_export(&self, export: &ExportRecord) -> Result<()>;

    /// Records that a run starts.
    async fn save_run(&self, run: &RunRecord) -> Result<()>;

    /// Records a chunk about to be made visible.
    async fn save_committing(&self, chunk: &ChunkManifest) -> Result<()>;

    /// Records a chunk made visible.
    async fn save_committed(&self, chunk: &ChunkManifest) -> Result<()>;
}

/// Folds run records into the numbers a resume needs: the next attempt and the most slots.
pub fn fold_runs<'a>(runs: impl IntoIterator<Item = &'a RunRecord>) -> (u32, u32) {
    runs.into_iter().fold((1, 0), |(next, slots), run| {
        (
            next.max(run.last_attempt.saturating_add(1)),
            slots.max(run.writer_slots),
        )
    })
}

/// Splits chunk records into committed and in-doubt ones, one per chunk id (the last
/// record of a chunk wins; a committed record settles a chunk).
pub fn settle_chunks(
    records: impl IntoIterator<Item = (bool, ChunkManifest)>,
) -> (Vec<ChunkManifest>, Vec<ChunkManifest>) {
    use std::collections::BTreeMap;
    let mut committed = BTreeMap::new();
    let mut committing = BTreeMap::new();
    for (is_committed, chunk) in records {
        if is_committed {
            committing.remove(&chunk.chunk_id);
            committed.insert(chunk.chunk_id, chunk);
        } else if !committed.contains_key(&chunk.chunk_id) {
            committing.insert(chunk.chunk_id, chunk);
        }
    }
    (
        committed.into_values().collect(),
        committing.into_values().collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(id: u32, attempt: u32) -> ChunkManifest {
        ChunkManifest {
            chunk_id: id,
            attempt,
            partition: 0,
            first_offset: Some(0),
            last_offset: Some(0),
            messages: 1,
            records: 1,
            bytes: 1,
            crc32: 0,
        }
    }

    #[test]
    fn committed_settles_a_chunk_and_committing_alone_is_in_doubt() {
        let (committed, in_doubt) = settle_chunks([
            (false, chunk(0, 1)),
            (true, chunk(0, 1)),
            (false, chunk(1, 1)),
            (false, chunk(2, 1)),
            (true, chunk(2, 1)),
            // A later committing record of a settled chunk cannot unsettle it.
            (false, chunk(2, 4)),
        ]);
        assert_eq!(committed, vec![chunk(0, 1), chunk(2, 1)]);
        assert_eq!(in_doubt, vec![chunk(1, 1)]);
    }

    #[test]
    fn runs_fold_into_next_attempt_and_most_slots() {
        let runs = [
            RunRecord {
                first_attempt: 1,
                last_attempt: 3,
                writer_slots: 8,
            },
            RunRecord {
                first_attempt: 4,
                last_attempt: 6,
                writer_slots: 4,
            },
        ];
        assert_eq!(fold_runs(&runs), (7, 8));
        assert_eq!(fold_runs(&[]), (1, 0));
    }
}
