//! Checkpoints of many exports in one SQLite database (feature `sqlite`): what a service
//! that runs exports in the background needs so that every export resumes after a crash.
//!
//! Three tables, each keyed by export id: `checkpoint_exports` (identity and plan),
//! `checkpoint_runs` (one row per run) and `checkpoint_chunks` (one row per chunk, marked
//! committed once it is visible). A committed chunk stays committed. The database can be
//! the application's own ([`SqliteCheckpoints::on`]): the tables sit next to its own.
//!
//! Durability: the caller picks the journal mode; [`SqliteCheckpoints::open`] uses WAL with
//! `synchronous=NORMAL`, where a row is durable once its statement returns against a killed
//! process (not against a power cut).
//!
//! ```
//! # async fn run() -> ldd_core::Result<()> {
//! use ldd_core::checkpoint::SqliteCheckpoints;
//! use ldd_core::CheckpointStore;
//!
//! let path = std::env::temp_dir().join(format!("ldd-doc-{}.sqlite3", std::process::id()));
//! let checkpoints = SqliteCheckpoints::open(&path)?;
//! let store = checkpoints.export("export-1");
//! assert!(store.load().await?.is_none()); // never started
//! # std::fs::remove_file(&path).ok();
//! # Ok(()) }
//! # tokio::runtime::Runtime::new().unwrap().block_on(run()).unwrap();
//! ```

use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rusqlite::{params, OptionalExtension};

use super::{fold_runs, settle_chunks, Checkpoint, CheckpointStore, ExportRecord, RunRecord};
use crate::error::{Error, Result};
use crate::manifest::ChunkManifest;

/// The tables, created when missing.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS checkpoint_exports (
    id     TEXT PRIMARY KEY,
    record TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS checkpoint_runs (
    id            TEXT NOT NULL,
    first_attempt INTEGER NOT NULL,
    last_attempt  INTEGER NOT NULL,
    writer_slots  INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS checkpoint_runs_by_id ON checkpoint_runs(id);
CREATE TABLE IF NOT EXISTS checkpoint_chunks (
    id        TEXT NOT NULL,
    chunk_id  INTEGER NOT NULL,
    committed INTEGER NOT NULL,
    manifest  TEXT NOT NULL,
    PRIMARY KEY (id, chunk_id)
);
";

fn sql_error(err: impl std::fmt::Display) -> Error {
    Error::Checkpoint(format!("checkpoint database: {err}"))
}

/// The checkpoints of every export kept in one SQLite database; cheap to clone.
#[derive(Clone)]
pub struct SqliteCheckpoints {
    conn: Arc<Mutex<rusqlite::Connection>>,
}

impl std::fmt::Debug for SqliteCheckpoints {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteCheckpoints").finish_non_exhaustive()
    }
}

impl SqliteCheckpoints {
    /// Opens (creating when needed) a database file of its own, in WAL mode. Blocking.
    pub fn open(path: &Path) -> Result<Self> {
        let conn = rusqlite::Connection::open(path).map_err(sql_error)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(sql_error)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(sql_error)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(sql_error)?;
        Self::on(Arc::new(Mutex::new(conn)))
    }

    /// Keeps the checkpoints in a database the application already holds, creating the
    /// tables when missing. Blocking.
    pub fn on(conn: Arc<Mutex<rusqlite::Connection>>) -> Result<Self> {
        conn.lock()
            .unwrap_or_else(|p| p.into_inner())
            .execute_batch(SCHEMA)
            .map_err(sql_error)?;
        Ok(SqliteCheckpoints { conn })
    }

    /// The checkpoint store of export `id`.
    pub fn export(&self, id: impl Into<String>) -> SqliteCheckpoint {
        SqliteCheckpoint {
            db: self.clone(),
            id: id.into(),
        }
    }

    /// Runs `f` on a blocking thread; the lock is only ever held there.
    async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&rusqlite::Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || f(&conn.lock().unwrap_or_else(|p| p.into_inner())))
            .await
            .map_err(|e| Error::Checkpoint(format!("checkpoint task failed: {e}")))?
    }
}

/// One export's checkpoint in a [`SqliteCheckpoints`] database.
#[derive(Debug, Clone)]
pub struct SqliteCheckpoint {
    db: SqliteCheckpoints,
    id: String,
}

impl SqliteCheckpoint {
    async fn save_chunk(&self, chunk: &ChunkManifest, committed: bool) -> Result<()> {
        let text = serde_json::to_string(chunk).map_err(sql_error)?;
        let (id, chunk_id) = (self.id.clone(), chunk.chunk_id);
        self.db
            .call(move |c| {
                c.execute(
                    "INSERT INTO checkpoint_chunks(id, chunk_id, committed, manifest)
                     VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT(id, chunk_id) DO UPDATE SET committed = excluded.committed,
                         manifest = excluded.manifest
                     WHERE checkpoint_chunks.committed = 0",
                    params![id, chunk_id, committed, text],
                )
                .map_err(sql_error)?;
                Ok(())
            })
            .await
    }
}

#[async_trait]
impl CheckpointStore for SqliteCheckpoint {
    async fn load(&self) -> Result<Option<Checkpoint>> {
        let id = self.id.clone();
        self.db.call(move |c| load(c, &id)).await
    }

    async fn save_export(&self, export: &ExportRecord) -> Result<()> {
        let (id, text) = (
            self.id.clone(),
            serde_json::to_string(export).map_err(sql_error)?,
        );
        self.db
            .call(move |c| {
                c.execute(
                    "INSERT OR REPLACE INTO checkpoint_exports(id, record) VALUES (?1, ?2)",
                    params![id, text],
                )
                .map_err(sql_error)?;
                Ok(())
            })
            .await
    }

    async fn save_run(&self, run: &RunRecord) -> Result<()> {
        let (id, run) = (self.id.clone(), *run);
        self.db
            .call(move |c| {
                c.execute(
                    "INSERT INTO checkpoint_runs(id, first_attempt, last_attempt, writer_slots)
                     VALUES (?1, ?2, ?3, ?4)",
                    params![id, run.first_attempt, run.last_attempt, run.writer_slots],
                )
                .map_err(sql_error)?;
                Ok(())
            })
            .await
    }

    async fn save_committing(&self, chunk: &ChunkManifest) -> Result<()> {
        self.save_chunk(chunk, false).await
    }

    async fn save_committed(&self, chunk: &ChunkManifest) -> Result<()> {
        self.save_chunk(chunk, true).await
    }
}

fn load(c: &rusqlite::Connection, id: &str) -> Result<Option<Checkpoint>> {
    let record = c
        .query_row(
            "SELECT record FROM checkpoint_exports WHERE id = ?1",
            [id],
            |r| r.get::<_, String>(0),
        )
        .optional()
        .map_err(sql_error)?;
    let Some(record) = record else {
        return Ok(None);
    };
    let mut stmt = c
        .prepare(
            "SELECT first_attempt, last_attempt, writer_slots FROM checkpoint_runs WHERE id = ?1",
        )
        .map_err(sql_error)?;
    let runs = stmt
        .query_map([id], |r| {
            Ok(RunRecord {
                first_attempt: r.get(0)?,
                last_attempt: r.get(1)?,
                writer_slots: r.get(2)?,
            })
        })
        .and_then(Iterator::collect::<rusqlite::Result<Vec<_>>>)
        .map_err(sql_error)?;
    let mut stmt = c
        .prepare(
            "SELECT committed, manifest FROM checkpoint_chunks WHERE id = ?1 ORDER BY chunk_id",
        )
        .map_err(sql_error)?;
    let rows = stmt
        .query_map([id], |r| Ok((r.get::<_, bool>(0)?, r.get::<_, String>(1)?)))
        .and_then(Iterator::collect::<rusqlite::Result<Vec<_>>>)
        .map_err(sql_error)?;
    let chunks = rows
        .into_iter()
        .map(|(committed, text)| Ok((committed, serde_json::from_str(&text).map_err(sql_error)?)))
        .collect::<Result<Vec<(bool, ChunkManifest)>>>()?;
    let (next_attempt, writer_slots) = fold_runs(&runs);
    let (committed, in_doubt) = settle_chunks(chunks);
    Ok(Some(Checkpoint {
        export: serde_json::from_str(&record).map_err(sql_error)?,
        committed,
        in_doubt,
        next_attempt,
        writer_slots,
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::checkpoint::journal::tests::{chunk, record, run};

    #[tokio::test]
    async fn checkpoints_read_back_per_export_and_committed_chunks_stay_committed() {
        let path = std::env::temp_dir().join(format!("ldd-ckpt-{}.sqlite3", uuid::Uuid::new_v4()));
        let db = SqliteCheckpoints::open(&path).unwrap();
        let (one, other) = (db.export("e1"), db.export("e2"));
        assert!(one.load().await.unwrap().is_none());
        one.save_export(&record()).await.unwrap();
        one.save_run(&run(1, 8)).await.unwrap();
        one.save_committing(&chunk(0, 1)).await.unwrap();
        one.save_committed(&chunk(0, 1)).await.unwrap();
        // A later "committing" row cannot undo a commit.
        one.save_committing(&chunk(0, 2)).await.unwrap();
        one.save_committing(&chunk(1, 1)).await.unwrap();
        one.save_run(&run(3, 4)).await.unwrap();
        drop(db);

        let db = SqliteCheckpoints::open(&path).unwrap();
        let loaded = db.export("e1").load().await.unwrap().unwrap();
        assert_eq!(loaded.export, record());
        assert_eq!(loaded.committed, vec![chunk(0, 1)]);
        assert_eq!(loaded.in_doubt, vec![chunk(1, 1)]);
        assert_eq!((loaded.next_attempt, loaded.writer_slots), (6, 8));
        assert!(other.load().await.unwrap().is_none());
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }
}
