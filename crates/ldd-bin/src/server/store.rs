//! The state file: an embedded SQLite database holding the registered connections (with
//! their secrets; the file is created with mode 0600) and every export's record.
//!
//! Every call runs on a blocking thread; the connection's lock is only ever held there,
//! never across an `.await`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use ldd_core::checkpoint::SqliteCheckpoints;
use rusqlite::{params, OptionalExtension};

use super::connections::ConnectionSpec;
use super::error::ApiError;
use super::exports::model::{ExportState, ExportStatus};

/// Name of the state file inside the state directory.
pub(crate) const STATE_FILE: &str = "ldd-state.sqlite3";

/// Layout version, in SQLite's `user_version`.
const SCHEMA_VERSION: i64 = 2;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS connections (
    id         TEXT PRIMARY KEY,
    spec       TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS exports (
    id         TEXT PRIMARY KEY,
    state      TEXT NOT NULL,
    created_at TEXT NOT NULL,
    status     TEXT NOT NULL,
    manifest   TEXT
);
CREATE INDEX IF NOT EXISTS exports_by_state ON exports(state);
CREATE INDEX IF NOT EXISTS exports_by_created ON exports(created_at);
";

/// What can go wrong with the state file.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreError {
    /// SQLite failed.
    #[error("state file: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The file or its directory could not be prepared.
    #[error("state directory {path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A stored row does not decode.
    #[error("state file holds an unreadable row: {0}")]
    Json(#[from] serde_json::Error),
    /// The file was written by a newer ldd.
    #[error("state file {path} has layout version {found}; this ldd knows {SCHEMA_VERSION}; upgrade ldd or use another --state-dir")]
    Version {
        /// The file.
        path: PathBuf,
        /// Its version.
        found: i64,
    },
    /// The checkpoint tables could not be prepared.
    #[error("state file: {0}")]
    Checkpoint(#[from] ldd_core::Error),
    /// The blocking task did not finish.
    #[error("state file task failed: {0}")]
    Task(String),
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        ApiError::Internal(err.to_string())
    }
}

/// A handle on the state file; cheap to clone.
#[derive(Clone)]
pub(crate) struct Store {
    conn: Arc<Mutex<rusqlite::Connection>>,
    checkpoints: SqliteCheckpoints,
    path: PathBuf,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Opens (creating when needed) the state file in `dir`. Blocking: call at start.
    pub(crate) fn open(dir: &Path) -> Result<Self, StoreError> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| StoreError::Io { path, source }
        };
        if !dir.exists() {
            std::fs::create_dir_all(dir).map_err(io(dir))?;
            restrict(dir, 0o700).map_err(io(dir))?;
        }
        let path = dir.join(STATE_FILE);
        create_private(&path).map_err(io(&path))?;
        let conn = rusqlite::Connection::open(&path)?;
        // The file may have existed with wider permissions: it holds secrets.
        restrict(&path, 0o600).map_err(io(&path))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::Version {
                path,
                found: version,
            });
        }
        conn.execute_batch(SCHEMA)?;
        conn.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        let conn = Arc::new(Mutex::new(conn));
        let checkpoints = SqliteCheckpoints::on(conn.clone())?;
        Ok(Store {
            conn,
            checkpoints,
            path,
        })
    }

    /// The state file's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on a blocking thread with the connection.
    async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&rusqlite::Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let guard = conn.lock().unwrap_or_else(|p| p.into_inner());
            f(&guard)
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
    }

    /// Saves (or replaces) a connection.
    pub(crate) async fn put_connection(
        &self,
        spec: &ConnectionSpec,
        created_at: &str,
    ) -> Result<(), StoreError> {
        let text = serde_json::to_string(spec)?;
        let (id, created_at) = (spec.id.clone(), created_at.to_owned());
        self.call(move |c| {
            c.execute(
                "INSERT INTO connections(id, spec, created_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT(id) DO UPDATE SET spec = excluded.spec, created_at = excluded.created_at",
                params![id, text, created_at],
            )?;
            Ok(())
        })
        .await
    }

    /// Deletes a connection; false when there was none.
    pub(crate) async fn delete_connection(&self, id: &str) -> Result<bool, StoreError> {
        let id = id.to_owned();
        self.call(move |c| Ok(c.execute("DELETE FROM connections WHERE id = ?1", [id])? > 0))
            .await
    }

    /// Every stored connection with its registration time.
    pub(crate) async fn load_connections(
        &self,
    ) -> Result<Vec<(ConnectionSpec, String)>, StoreError> {
        self.call(|c| {
            let mut stmt = c.prepare("SELECT spec, created_at FROM connections ORDER BY id")?;
            let rows =
                stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
            let mut out = Vec::new();
            for row in rows {
                let (spec, created_at) = row?;
                out.push((serde_json::from_str(&spec)?, created_at));
            }
            Ok(out)
        })
        .await
    }

    /// Saves an export's status; the manifest column is written when the status has one.
    pub(crate) async fn save_export(&self, status: &ExportStatus) -> Result<(), StoreError> {
        let manifest = status
            .manifest
            .as_ref()
            .map(serde_json::to_string)
            .transpose()?;
        let summary = serde_json::to_string(&status.summary())?;
        let (id, state, created_at) = (
            status.id.clone(),
            status.state.as_str(),
            status.created_at.clone(),
        );
        self.call(move |c| {
            c.execute(
                "INSERT INTO exports(id, state, created_at, status, manifest) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(id) DO UPDATE SET state = excluded.state, status = excluded.status,
                     manifest = COALESCE(excluded.manifest, exports.manifest)",
                params![id, state, created_at, summary, manifest],
            )?;
            Ok(())
        })
        .await
    }

    /// The exports' checkpoints, in the same file (ldd-core's tables).
    pub(crate) fn checkpoints(&self) -> &SqliteCheckpoints {
        &self.checkpoints
    }

    /// Whether an export id is taken.
    pub(crate) async fn export_exists(&self, id: &str) -> Result<bool, StoreError> {
        let id = id.to_owned();
        self.call(move |c| {
            Ok(
                c.query_row("SELECT 1 FROM exports WHERE id = ?1", [id], |_| Ok(()))
                    .optional()?
                    .is_some(),
            )
        })
        .await
    }

    /// One export with its manifest.
    pub(crate) async fn get_export(&self, id: &str) -> Result<Option<ExportStatus>, StoreError> {
        let id = id.to_owned();
        self.call(move |c| {
            let row = c
                .query_row(
                    "SELECT status, manifest FROM exports WHERE id = ?1",
                    [id],
                    |r| Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?)),
                )
                .optional()?;
            let Some((status, manifest)) = row else {
                return Ok(None);
            };
            let mut status: ExportStatus = serde_json::from_str(&status)?;
            status.manifest = manifest.map(|m| serde_json::from_str(&m)).transpose()?;
            Ok(Some(status))
        })
        .await
    }

    /// Exports without manifests, newest first, optionally of one state.
    pub(crate) async fn list_exports(
        &self,
        state: Option<ExportState>,
        limit: usize,
    ) -> Result<Vec<ExportStatus>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.call(move |c| {
            let mut stmt = c.prepare(
                "SELECT status FROM exports WHERE (?1 IS NULL OR state = ?1)
                 ORDER BY created_at DESC, id LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![state.map(ExportState::as_str), limit], |r| {
                r.get::<_, String>(0)
            })?;
            let mut out = Vec::new();
            for row in rows {
                out.push(serde_json::from_str(&row?)?);
            }
            Ok(out)
        })
        .await
    }

    /// Marks every export that was not finished as `interrupted` (the server stopped while
    /// it ran); returns their ids.
    pub(crate) async fn interrupt_unfinished(&self, now: &str) -> Result<Vec<String>, StoreError> {
        let now = now.to_owned();
        self.call(move |c| {
            let unfinished: Vec<(String, String)> = {
                let mut stmt = c.prepare(
                    "SELECT id, status FROM exports WHERE state IN ('queued', 'planning', 'running')",
                )?;
                let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
                rows.collect::<Result<_, _>>()?
            };
            let mut ids = Vec::new();
            for (id, text) in unfinished {
                let mut status: ExportStatus = serde_json::from_str(&text)?;
                let was = status.state;
                status.state = ExportState::Interrupted;
                status.finished_at = Some(now.clone());
                status.error = Some(format!(
                    "the server stopped while the export was {}; committed chunks stay in the \
                     topic, but no manifest was made: run the export again",
                    was.as_str()
                ));
                c.execute(
                    "UPDATE exports SET state = ?2, status = ?3 WHERE id = ?1",
                    params![id, status.state.as_str(), serde_json::to_string(&status)?],
                )?;
                ids.push(id);
            }
            Ok(ids)
        })
        .await
    }

    /// Exports per state.
    pub(crate) async fn count_by_state(&self) -> Result<Vec<(ExportState, u64)>, StoreError> {
        self.call(|c| {
            let mut stmt = c.prepare("SELECT state, COUNT(*) FROM exports GROUP BY state")?;
            let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
            let mut out = Vec::new();
            for row in rows {
                let (state, n) = row?;
                if let Some(state) = ExportState::parse(&state) {
                    out.push((state, u64::try_from(n).unwrap_or(0)));
                }
            }
            Ok(out)
        })
        .await
    }
}

/// Creates the file readable by its owner only, if it does not exist.
fn create_private(path: &Path) -> std::io::Result<()> {
    if path.exists() {
        return Ok(());
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Sets Unix permission bits (no-op elsewhere).
fn restrict(path: &Path, mode: u32) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
    Ok(())
}
