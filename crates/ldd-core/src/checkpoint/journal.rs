//! [`JournalFile`]: a [`CheckpointStore`] in one JSON-lines file.
//!
//! The file is appended and synced line by line: first the export (id, topic, format,
//! source, plan), then a line per run and two lines per chunk (committing, committed).
//! A crash can leave at most the last line incomplete; it is ignored when read and cut
//! off before the next append.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{fold_runs, settle_chunks, Checkpoint, CheckpointStore, ExportRecord, RunRecord};
use crate::error::{Error, Result};
use crate::manifest::ChunkManifest;

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Line {
    Export(ExportRecord),
    Run(RunRecord),
    Committing(ChunkManifest),
    Committed(ChunkManifest),
}

/// A checkpoint kept in a JSON-lines file (`ldd export --journal FILE`).
///
/// ```
/// use ldd_core::checkpoint::{CheckpointStore, JournalFile};
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let path = std::env::temp_dir().join(format!("ldd-doc-{}.journal", std::process::id()));
/// let journal = JournalFile::new(&path);
/// assert!(journal.load().await.unwrap().is_none()); // a new export
/// # let _ = std::fs::remove_file(&path);
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct JournalFile {
    path: PathBuf,
    /// Opened for appending on the first write.
    file: Arc<Mutex<Option<File>>>,
}

impl JournalFile {
    /// A journal at `path`; nothing is read or written until used.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        JournalFile {
            path: path.into(),
            file: Arc::new(Mutex::new(None)),
        }
    }

    /// The journal's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn error(&self, what: &str, e: impl std::fmt::Display) -> Error {
        Error::Checkpoint(format!("{what} journal {}: {e}", self.path.display()))
    }

    fn read(&self) -> Result<Option<Checkpoint>> {
        let file = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.error("opening", e)),
        };
        let mut lines = Vec::new();
        for line in BufReader::new(file).lines() {
            lines.push(line.map_err(|e| self.error("reading", e))?);
        }
        parse(&lines).map_err(|e| self.error("reading", e))
    }

    /// Appends a line and syncs it. The first append of a new export truncates the file
    /// (an empty file, or a header a crash cut short); the first append to an existing
    /// journal cuts off an incomplete last line, so what follows starts on its own line.
    fn append(&self, line: &Line) -> Result<()> {
        let mut text = serde_json::to_string(line).map_err(|e| self.error("encoding", e))?;
        text.push('\n');
        let mut guard = self.file.lock().unwrap_or_else(|p| p.into_inner());
        if guard.is_none() {
            *guard = Some(self.open_for_append(matches!(line, Line::Export(_)))?);
        }
        let Some(file) = guard.as_mut() else {
            return Err(self.error("opening", "no file"));
        };
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_data())
            .map_err(|e| self.error("writing", e))
    }

    fn open_for_append(&self, fresh: bool) -> Result<File> {
        if fresh {
            return OpenOptions::new()
                .create(true)
                .truncate(true)
                .write(true)
                .open(&self.path)
                .map_err(|e| self.error("creating", e));
        }
        let text = std::fs::read(&self.path).map_err(|e| self.error("opening", e))?;
        let complete = text.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let file = OpenOptions::new()
            .append(true)
            .open(&self.path)
            .map_err(|e| self.error("opening", e))?;
        if complete < text.len() {
            file.set_len(complete as u64)
                .map_err(|e| self.error("repairing", e))?;
        }
        Ok(file)
    }

    async fn append_blocking(&self, line: Line) -> Result<()> {
        let journal = self.clone();
        tokio::task::spawn_blocking(move || journal.append(&line))
            .await
            .map_err(|e| self.error("writing", e))?
    }
}

fn parse(lines: &[String]) -> std::result::Result<Option<Checkpoint>, String> {
    let mut export = None;
    let mut runs = Vec::new();
    let mut chunks = Vec::new();
    let last = lines.len().saturating_sub(1);
    for (i, text) in lines.iter().enumerate() {
        if text.trim().is_empty() {
            continue;
        }
        let line: Line = match serde_json::from_str(text) {
            Ok(line) => line,
            // A crash while appending leaves at most the last line incomplete.
            Err(_) if i == last => break,
            Err(e) => return Err(format!("line {} is not a journal entry ({e})", i + 1)),
        };
        match (line, export.is_some()) {
            (Line::Export(record), false) => export = Some(record),
            (Line::Export(_), true) => return Err(format!("line {}: a second export", i + 1)),
            (_, false) => return Err(format!("line {}: entries before the export", i + 1)),
            (Line::Run(run), true) => runs.push(run),
            (Line::Committing(chunk), true) => chunks.push((false, chunk)),
            (Line::Committed(chunk), true) => chunks.push((true, chunk)),
        }
    }
    let Some(export) = export else {
        return Ok(None);
    };
    let (next_attempt, writer_slots) = fold_runs(&runs);
    let (committed, in_doubt) = settle_chunks(chunks);
    Ok(Some(Checkpoint {
        export,
        committed,
        in_doubt,
        next_attempt,
        writer_slots,
    }))
}

#[async_trait]
impl CheckpointStore for JournalFile {
    async fn load(&self) -> Result<Option<Checkpoint>> {
        let journal = self.clone();
        tokio::task::spawn_blocking(move || journal.read())
            .await
            .map_err(|e| self.error("reading", e))?
    }

    async fn save_export(&self, export: &ExportRecord) -> Result<()> {
        self.append_blocking(Line::Export(export.clone())).await
    }

    async fn save_run(&self, run: &RunRecord) -> Result<()> {
        self.append_blocking(Line::Run(*run)).await
    }

    async fn save_committing(&self, chunk: &ChunkManifest) -> Result<()> {
        self.append_blocking(Line::Committing(chunk.clone())).await
    }

    async fn save_committed(&self, chunk: &ChunkManifest) -> Result<()> {
        self.append_blocking(Line::Committed(chunk.clone())).await
    }
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::chunk::{ExportPlan, PlanStrategy};
    use crate::format::Format;
    use crate::sink::Delivery;

    pub(crate) fn record() -> ExportRecord {
        ExportRecord {
            export_id: "e1".into(),
            topic: "t".into(),
            format: Format::Jsonl,
            source: "generator".into(),
            delivery: Delivery::ExactlyOnce,
            started_at: "2026-01-01T00:00:00Z".into(),
            plan: ExportPlan {
                export_id: "e1".into(),
                total_records: 0,
                partitions: 1,
                strategy: PlanStrategy::default(),
                splittable: true,
                chunks: Vec::new(),
            },
        }
    }

    pub(crate) fn chunk(id: u32, attempt: u32) -> ChunkManifest {
        ChunkManifest {
            chunk_id: id,
            attempt,
            partition: 0,
            first_offset: Some(i64::from(id)),
            last_offset: Some(i64::from(id)),
            messages: 1,
            records: 1,
            bytes: 10,
            crc32: 7,
        }
    }

    pub(crate) fn run(first: u32, slots: u32) -> RunRecord {
        RunRecord {
            first_attempt: first,
            last_attempt: first + 2,
            writer_slots: slots,
        }
    }

    fn temp_path() -> PathBuf {
        std::env::temp_dir().join(format!("ldd-journal-{}.jsonl", uuid::Uuid::new_v4()))
    }

    #[tokio::test]
    async fn written_journal_reads_back_and_a_cut_last_line_is_ignored() {
        let path = temp_path();
        let journal = JournalFile::new(&path);
        journal.save_export(&record()).await.unwrap();
        journal.save_run(&run(1, 8)).await.unwrap();
        journal.save_committing(&chunk(0, 1)).await.unwrap();
        journal.save_committed(&chunk(0, 1)).await.unwrap();
        journal.save_committing(&chunk(2, 3)).await.unwrap();
        drop(journal);
        // A crash in the middle of a line.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(br#"{"kind":"committed","chunk_id":5,"att"#)
            .unwrap();
        drop(f);

        let state = JournalFile::new(&path).load().await.unwrap().unwrap();
        assert_eq!(state.export, record());
        assert_eq!(state.committed, vec![chunk(0, 1)]);
        assert_eq!(state.in_doubt, vec![chunk(2, 3)]);
        assert_eq!((state.next_attempt, state.writer_slots), (4, 8));
        // Reopening drops the cut line, so the next entry is whole and readable.
        let journal = JournalFile::new(&path);
        journal.save_run(&run(4, 4)).await.unwrap();
        journal.save_committed(&chunk(2, 3)).await.unwrap();
        journal.save_committed(&chunk(5, 4)).await.unwrap();
        let state = journal.load().await.unwrap().unwrap();
        assert_eq!(state.committed, vec![chunk(0, 1), chunk(2, 3), chunk(5, 4)]);
        assert!(state.in_doubt.is_empty());
        assert_eq!((state.next_attempt, state.writer_slots), (7, 8));
        std::fs::remove_file(&path).unwrap();
    }

    #[tokio::test]
    async fn an_empty_journal_file_is_started_afresh() {
        let path = temp_path();
        std::fs::write(&path, "").unwrap();
        let journal = JournalFile::new(&path);
        assert!(journal.load().await.unwrap().is_none());
        journal.save_export(&record()).await.unwrap();
        assert_eq!(journal.load().await.unwrap().unwrap().export, record());
        std::fs::remove_file(&path).unwrap();
    }

    #[tokio::test]
    async fn missing_journal_is_none_and_a_broken_one_is_an_error() {
        let missing = JournalFile::new("/nonexistent/ldd/journal");
        assert!(missing.load().await.unwrap().is_none());
        let bad = [
            r#"{"kind":"committed"}"#.to_owned(),
            r#"{"kind":"run","first_attempt":1,"last_attempt":3}"#.to_owned(),
        ];
        assert!(parse(&bad).is_err());
        let before = [r#"{"kind":"run","first_attempt":1,"last_attempt":3}"#.to_owned()];
        assert!(parse(&before).unwrap_err().contains("before the export"));
        assert!(parse(&[]).unwrap().is_none());
    }

    #[tokio::test]
    async fn a_write_that_fails_is_a_checkpoint_error() {
        let journal = JournalFile::new("/nonexistent/ldd/journal");
        let err = journal.save_export(&record()).await.unwrap_err();
        assert!(matches!(err, Error::Checkpoint(_)), "{err}");
        assert!(
            err.to_string().contains("/nonexistent/ldd/journal"),
            "{err}"
        );
    }
}
