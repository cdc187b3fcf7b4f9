//! `ldd export --journal FILE`: what an export has committed, kept durably so that running the
//! same command again resumes it.
//!
//! The file is JSON lines, appended and synced as the export goes: first the export (its id,
//! topic, format, source and plan), then a line per run (the attempt numbers it may use) and a
//! line per committed chunk (its manifest entry). A line cut short by a crash is ignored.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context as _};
use ldd_core::{
    ChunkManifest, DataSource, ExportControl, ExportEvent, ExportObserver, ExportOptions,
    ExportPlan, Format, Manifest, Partitioner, Sink,
};
use serde::{Deserialize, Serialize};

/// The first line: which export this journal belongs to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct JournalHeader {
    pub(crate) export_id: String,
    pub(crate) topic: String,
    pub(crate) format: Format,
    pub(crate) source: String,
    pub(crate) plan: ExportPlan,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Line {
    Export(JournalHeader),
    /// A run may use attempts `first_attempt..=last_attempt` of every chunk.
    Run {
        first_attempt: u32,
        last_attempt: u32,
    },
    Committed(ChunkManifest),
}

/// What a journal says so far.
#[derive(Debug)]
pub(crate) struct JournalState {
    pub(crate) header: JournalHeader,
    /// The committed chunks, one per chunk id.
    pub(crate) committed: Vec<ChunkManifest>,
    /// The first attempt number no earlier run may have used.
    pub(crate) next_attempt: u32,
}

/// Reads a journal; `None` when the file does not exist or is empty.
pub(crate) fn load(path: &Path) -> anyhow::Result<Option<JournalState>> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("opening journal {}", path.display())),
    };
    let mut lines = Vec::new();
    for line in BufReader::new(file).lines() {
        lines.push(line.with_context(|| format!("reading journal {}", path.display()))?);
    }
    parse(&lines).with_context(|| format!("journal {}", path.display()))
}

fn parse(lines: &[String]) -> anyhow::Result<Option<JournalState>> {
    let mut state: Option<JournalState> = None;
    let mut committed = std::collections::BTreeMap::new();
    let last = lines.len().saturating_sub(1);
    for (i, text) in lines.iter().enumerate() {
        if text.trim().is_empty() {
            continue;
        }
        let line: Line = match serde_json::from_str(text) {
            Ok(line) => line,
            // A crash while appending leaves at most the last line incomplete.
            Err(_) if i == last => break,
            Err(e) => bail!("line {} is not a journal entry ({e})", i + 1),
        };
        match (line, state.as_mut()) {
            (Line::Export(header), None) => {
                state = Some(JournalState {
                    header,
                    committed: Vec::new(),
                    next_attempt: 1,
                })
            }
            (Line::Export(_), Some(_)) => bail!("line {}: a second export header", i + 1),
            (_, None) => bail!("line {}: entries before the export header", i + 1),
            (Line::Run { last_attempt, .. }, Some(s)) => {
                s.next_attempt = s.next_attempt.max(last_attempt.saturating_add(1));
            }
            (Line::Committed(chunk), Some(_)) => {
                committed.insert(chunk.chunk_id, chunk);
            }
        }
    }
    Ok(state.map(|mut s| {
        s.committed = committed.into_values().collect();
        s
    }))
}

/// Appends to a journal, syncing every line to disk.
#[derive(Debug)]
pub(crate) struct Journal {
    path: PathBuf,
    file: Mutex<File>,
}

impl Journal {
    /// Starts a new journal at `path` with its header. Only for a path [`load`] found
    /// nothing in: an empty file, or a header a crash cut short, is replaced.
    pub(crate) fn create(path: &Path, header: &JournalHeader) -> anyhow::Result<Journal> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(path)
            .with_context(|| format!("creating journal {}", path.display()))?;
        let journal = Journal {
            path: path.to_owned(),
            file: Mutex::new(file),
        };
        journal.append(&Line::Export(header.clone()))?;
        Ok(journal)
    }

    /// Opens an existing journal to add to it, first cutting off a last line that a crash
    /// left incomplete (what follows must start on a line of its own).
    pub(crate) fn reopen(path: &Path) -> anyhow::Result<Journal> {
        let context = || format!("opening journal {}", path.display());
        let text = std::fs::read(path).with_context(context)?;
        let complete = text.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let file = OpenOptions::new()
            .append(true)
            .open(path)
            .with_context(context)?;
        if complete < text.len() {
            file.set_len(complete as u64).with_context(context)?;
        }
        Ok(Journal {
            path: path.to_owned(),
            file: Mutex::new(file),
        })
    }

    /// Records that a run starts, with the attempt numbers it may use.
    pub(crate) fn start_run(&self, first_attempt: u32, max_attempts: u32) -> anyhow::Result<()> {
        self.append(&Line::Run {
            first_attempt,
            last_attempt: first_attempt.saturating_add(max_attempts.saturating_sub(1)),
        })
    }

    /// Records a committed chunk.
    pub(crate) fn committed(&self, chunk: &ChunkManifest) -> anyhow::Result<()> {
        self.append(&Line::Committed(chunk.clone()))
    }

    fn append(&self, line: &Line) -> anyhow::Result<()> {
        let mut text = serde_json::to_string(line).context("encoding a journal line")?;
        text.push('\n');
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_data())
            .with_context(|| format!("writing journal {}", self.path.display()))
    }
}

/// Runs an export that records its progress in the journal at `path`, or resumes the one
/// the journal describes: only chunks it does not show as committed run again, under attempt
/// numbers no earlier run used.
pub(crate) async fn export_journaled(
    path: &Path,
    source: Arc<dyn DataSource>,
    sink: Arc<dyn Sink>,
    partitioner: &dyn Partitioner,
    options: ExportOptions,
    control: ExportControl,
    progress: Arc<dyn ExportObserver>,
) -> anyhow::Result<Manifest> {
    let started_at = chrono::Utc::now();
    let (journal, header, committed, first_attempt) = match load(path)? {
        Some(state) => {
            check_same_export(
                path,
                &state.header,
                source.as_ref(),
                sink.as_ref(),
                &options,
            )?;
            eprintln!(
                "resuming export {} from {}: {} of {} chunks already committed",
                state.header.export_id,
                path.display(),
                state.committed.len(),
                state.header.plan.chunks.len()
            );
            (
                Journal::reopen(path)?,
                state.header,
                state.committed,
                state.next_attempt,
            )
        }
        None => {
            let export_id = options
                .export_id
                .clone()
                .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
            let plan =
                ldd_core::plan_export(source.as_ref(), sink.as_ref(), partitioner, &export_id)
                    .await
                    .context("planning the export")?;
            let header = JournalHeader {
                export_id,
                topic: sink.destination(),
                format: options.format,
                source: source.describe(),
                plan,
            };
            (Journal::create(path, &header)?, header, Vec::new(), 1)
        }
    };
    journal.start_run(first_attempt, options.retry.max_attempts)?;
    // Progress counts what this run exports: the chunks not yet committed.
    let pending = header.plan.pending_chunks(&committed);
    progress.on_event(&ExportEvent::Planned {
        chunks: pending.len(),
        records: pending.iter().map(|c| c.expected_records).sum(),
        strategy: header.plan.strategy.name.clone(),
    });

    // A chunk the journal does not record would be exported again by a resume: stop at the
    // first failed write rather than go on without a record.
    let journal_error = Arc::new(Mutex::new(None::<String>));
    let observer = {
        let (journal_error, cancel) = (journal_error.clone(), control.cancel.clone());
        move |event: &ExportEvent| {
            progress.on_event(event);
            if let ExportEvent::ChunkCommitted(chunk) = event {
                if let Err(e) = journal.committed(chunk) {
                    let mut first = journal_error.lock().unwrap_or_else(|p| p.into_inner());
                    first.get_or_insert(format!("{e:#}"));
                    cancel.cancel();
                }
            }
        }
    };
    let options = ExportOptions {
        export_id: Some(header.export_id.clone()),
        first_attempt,
        ..options
    };
    let control = ExportControl {
        observer: Some(Arc::new(observer)),
        ..control
    };
    let result = ldd_core::execute_plan(
        &header.plan,
        source,
        sink,
        options,
        control,
        committed,
        started_at,
    )
    .await;
    if let Some(e) = journal_error
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take()
    {
        bail!("{e}: export stopped, as a resume could not know what was committed");
    }
    Ok(result?)
}

/// A journal resumes only the export it was written for.
fn check_same_export(
    path: &Path,
    header: &JournalHeader,
    source: &dyn DataSource,
    sink: &dyn Sink,
    options: &ExportOptions,
) -> anyhow::Result<()> {
    let now = (source.describe(), sink.destination(), options.format);
    let then = (header.source.clone(), header.topic.clone(), header.format);
    let other_id = options
        .export_id
        .as_ref()
        .is_some_and(|id| *id != header.export_id);
    if now != then || other_id {
        bail!(
            "journal {} belongs to export {} of {} into `{}` ({}), but this command exports {} \
             into `{}` ({}){}; run the original command to resume it, or give a new --journal",
            path.display(),
            header.export_id,
            then.0,
            then.1,
            then.2,
            now.0,
            now.1,
            now.2,
            if other_id {
                " under another --export-id"
            } else {
                ""
            }
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> JournalHeader {
        JournalHeader {
            export_id: "e1".into(),
            topic: "t".into(),
            format: Format::Jsonl,
            source: "generator".into(),
            plan: ExportPlan {
                export_id: "e1".into(),
                total_records: 0,
                partitions: 1,
                strategy: ldd_core::PlanStrategy {
                    name: "index-arithmetic".into(),
                    reason: None,
                    queries: 0,
                    duration_ms: 0,
                },
                splittable: true,
                chunks: Vec::new(),
            },
        }
    }

    fn chunk(id: u32, attempt: u32) -> ChunkManifest {
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

    #[test]
    fn written_journal_reads_back_and_a_cut_last_line_is_ignored() {
        let dir = std::env::temp_dir().join(format!("ldd-journal-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("j.jsonl");
        let journal = Journal::create(&path, &header()).unwrap();
        journal.start_run(1, 3).unwrap();
        journal.committed(&chunk(0, 1)).unwrap();
        journal.committed(&chunk(2, 3)).unwrap();
        drop(journal);
        // A crash in the middle of a line.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(br#"{"kind":"committed","chunk_id":5,"att"#)
            .unwrap();
        drop(f);

        let state = load(&path).unwrap().unwrap();
        assert_eq!(state.header, header());
        assert_eq!(state.committed, vec![chunk(0, 1), chunk(2, 3)]);
        assert_eq!(state.next_attempt, 4);
        // Reopening drops the cut line, so the next entry is whole and readable.
        let journal = Journal::reopen(&path).unwrap();
        journal.start_run(4, 3).unwrap();
        journal.committed(&chunk(5, 4)).unwrap();
        drop(journal);
        let state = load(&path).unwrap().unwrap();
        assert_eq!(state.committed, vec![chunk(0, 1), chunk(2, 3), chunk(5, 4)]);
        assert_eq!(state.next_attempt, 7);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_empty_journal_file_is_started_afresh() {
        let dir = std::env::temp_dir().join(format!("ldd-journal-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("j.jsonl");
        std::fs::write(&path, "").unwrap();
        assert!(load(&path).unwrap().is_none());
        Journal::create(&path, &header()).unwrap();
        assert_eq!(load(&path).unwrap().unwrap().header, header());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn missing_journal_is_none_and_a_broken_one_is_an_error() {
        assert!(load(Path::new("/nonexistent/ldd/journal"))
            .unwrap()
            .is_none());
        let bad = [
            r#"{"kind":"committed"}"#.to_owned(),
            r#"{"kind":"run","first_attempt":1,"last_attempt":3}"#.to_owned(),
        ];
        assert!(parse(&bad).is_err());
        let before_header = [r#"{"kind":"run","first_attempt":1,"last_attempt":3}"#.to_owned()];
        assert!(parse(&before_header)
            .unwrap_err()
            .to_string()
            .contains("before the export header"));
        assert!(parse(&[]).unwrap().is_none());
    }
}
