//! Shared helpers of the fault tests (`kill_resume.rs`, `broker_restart.rs`): the `ldd`
//! binary as a child process, its journal, the independent plain reader's exactness check,
//! `ldd consume` verification, and clean-up guards that also run when a test panics.
//!
//! Every test binary that uses this module also declares
//! `#[path = "../../ldd-sink-kafka/tests/common/plain_reader.rs"] mod plain_reader;` at its
//! root (this module reaches it as `crate::plain_reader`).

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::plain_reader::{read_manifest_file, PlainReadReport};

/// A required environment variable; a missing one fails the test (never a silent pass).
pub fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: start the services with scripts/services.sh start and export \
             `scripts/services.sh env` (scripts/test.sh does both)"
        )
    })
}

/// The real broker of the tests.
pub fn brokers() -> String {
    env("LDD_TEST_KAFKA_BROKERS")
}

/// A random Kafka-safe name.
pub fn random_name(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// The debug (or whatever profile the test runs under) `ldd` binary of this package.
pub fn ldd_path() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ldd"))
}

/// An `ldd` command that does not pick up settings from the caller's environment.
pub fn ldd() -> Command {
    let mut command = Command::new(ldd_path());
    for var in [
        "LDD_KAFKA_BROKERS",
        "LDD_KAFKA_PROPERTIES",
        "LDD_TOKEN",
        "LDD_STATE_DIR",
        "LDD_CONFIG",
        "LDD_LISTEN",
        "LDD_SOURCE_URL",
        "LDD_SOURCE_TOKEN",
        "LDD_SOURCE_USERNAME",
        "LDD_SOURCE_PASSWORD",
    ] {
        command.env_remove(var);
    }
    command
}

/// A fresh directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> Self {
        let dir = std::env::temp_dir().join(random_name(prefix));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Deletes its topics when dropped, also when the test panics.
pub struct Topics {
    brokers: String,
    pub names: Vec<String>,
}

impl Topics {
    pub fn new(brokers: &str) -> Self {
        Topics {
            brokers: brokers.to_owned(),
            names: Vec::new(),
        }
    }

    /// A new random topic name, deleted at the end.
    pub fn add(&mut self, prefix: &str) -> String {
        let name = random_name(prefix);
        self.names.push(name.clone());
        name
    }

    /// Deletes the topics now; panics when a deletion fails.
    pub fn delete(mut self) {
        let names = std::mem::take(&mut self.names);
        delete_topics(&self.brokers, &names).unwrap_or_else(|e| panic!("{e}"));
    }
}

impl Drop for Topics {
    fn drop(&mut self) {
        if !self.names.is_empty() {
            if let Err(e) = delete_topics(&self.brokers, &self.names) {
                eprintln!("warning: {e}");
            }
        }
    }
}

/// Deletes topics on a thread of its own (callable from inside and outside a runtime).
fn delete_topics(brokers: &str, names: &[String]) -> Result<(), String> {
    let (brokers, names) = (brokers.to_owned(), names.to_vec());
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
        let admin = ldd_sink_kafka::TopicAdmin::new(brokers);
        for name in &names {
            runtime
                .block_on(admin.delete_topic(name))
                .map_err(|e| format!("deleting test topic {name}: {e}"))?;
        }
        Ok(())
    })
    .join()
    .map_err(|_| "the topic deletion thread panicked".to_owned())?
}

/// A child process that is SIGKILLed and reaped when dropped (a panicking test leaves no
/// process behind).
pub struct ChildGuard {
    pub child: Option<Child>,
    pub what: String,
}

impl ChildGuard {
    pub fn new(child: Child, what: impl Into<String>) -> Self {
        ChildGuard {
            child: Some(child),
            what: what.into(),
        }
    }

    pub fn id(&self) -> u32 {
        self.child.as_ref().expect("child is running").id()
    }

    /// Whether it has exited (and how), without waiting.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .expect("child is running")
            .try_wait()
            .unwrap()
    }

    /// SIGKILLs it (std's `Child::kill` sends SIGKILL on Unix), reaps it and checks that it
    /// was the signal that ended it, not an exit of its own.
    pub fn sigkill(mut self) {
        let mut child = self.child.take().expect("child is running");
        child.kill().unwrap();
        let status = child.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            status.signal(),
            Some(9),
            "{} ended by itself ({status}) before the SIGKILL landed",
            self.what
        );
    }

    /// Waits for it to exit, at most `timeout`.
    pub fn wait_timeout(mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_wait() {
                self.child = None;
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not exit within {timeout:?}",
                self.what
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// What a journal file shows (a crash may leave its last line incomplete: skipped).
#[derive(Debug, Default, Clone)]
pub struct JournalState {
    /// Complete lines.
    pub lines: usize,
    /// The export id of its `export` line.
    pub export_id: Option<String>,
    /// Chunks of the plan.
    pub planned_chunks: usize,
    /// `run` lines, in order.
    pub runs: Vec<Value>,
    /// Committed chunk entries by chunk id.
    pub committed: BTreeMap<u64, Value>,
    /// Entries of chunks recorded as committing but not (yet) committed, by chunk id.
    pub committing_only: BTreeMap<u64, Value>,
}

/// Reads the journal at `path` (empty state when it does not exist yet).
pub fn read_journal(path: &Path) -> JournalState {
    let mut state = JournalState::default();
    let Ok(text) = std::fs::read_to_string(path) else {
        return state;
    };
    let mut committing = BTreeMap::new();
    for line in text.lines() {
        let Ok(value) = serde_json::from_str::<Value>(line) else {
            continue; // the incomplete last line of a killed run
        };
        state.lines += 1;
        match value["kind"].as_str() {
            Some("export") => {
                state.export_id = value["export_id"].as_str().map(str::to_owned);
                state.planned_chunks = value["plan"]["chunks"].as_array().map_or(0, Vec::len);
            }
            Some("run") => state.runs.push(value),
            Some("committing") => {
                committing.insert(value["chunk_id"].as_u64().unwrap(), value);
            }
            Some("committed") => {
                let id = value["chunk_id"].as_u64().unwrap();
                committing.remove(&id);
                state.committed.insert(id, value);
            }
            _ => {}
        }
    }
    state.committing_only = committing;
    state
}

/// Polls the journal until it shows at least `committed` committed chunks; panics when the
/// export exits first (it was too small to be interrupted) or `timeout` passes.
pub fn wait_for_committed(
    child: &mut ChildGuard,
    journal: &Path,
    committed: usize,
    timeout: Duration,
    stderr: &Path,
) -> JournalState {
    let deadline = Instant::now() + timeout;
    loop {
        let state = read_journal(journal);
        if state.committed.len() >= committed {
            return state;
        }
        if let Some(status) = child.try_wait() {
            panic!(
                "{} exited ({status}) before {committed} chunks were committed: {}",
                child.what,
                std::fs::read_to_string(stderr).unwrap_or_default()
            );
        }
        assert!(
            Instant::now() < deadline,
            "{}: fewer than {committed} committed chunks after {timeout:?} (journal: {state:?})",
            child.what
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The arguments of one `ldd export` of `records` generated records.
pub fn generator_export_args(
    brokers: &str,
    topic: &str,
    partitions: u32,
    records: u64,
    journal: &Path,
    manifest: &Path,
) -> Vec<String> {
    [
        "export",
        "--brokers",
        brokers,
        "--topic",
        topic,
        "--partitions",
        &partitions.to_string(),
        "--records",
        &records.to_string(),
        "--format",
        "jsonl",
        "--journal",
        journal.to_str().unwrap(),
        "--manifest-out",
        manifest.to_str().unwrap(),
        // Not into the shared `ldd.manifests` topic: the test reads the manifest file.
        "--manifest-topic",
        "",
        "--quiet",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

/// Starts `ldd <args>` with its stdout and stderr going to files.
pub fn spawn_ldd(args: &[String], stdout: &Path, stderr: &Path, what: &str) -> ChildGuard {
    let child = ldd()
        .args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(stdout).unwrap())
        .stderr(std::fs::File::create(stderr).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", ldd_path().display()));
    ChildGuard::new(child, what)
}

/// Runs `ldd <args>` to the end.
pub fn run_ldd(args: &[String]) -> Output {
    ldd().args(args).stdin(Stdio::null()).output().unwrap()
}

/// The text of an output's stderr.
pub fn stderr_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A manifest file as JSON.
pub fn read_manifest(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap_or_else(|e| {
        panic!("reading the manifest {}: {e}", path.display());
    }))
    .unwrap()
}

/// The generator's unique field: `seq`, the record's index in `0..records`. Panics on a
/// record without it or outside the dataset.
pub fn seq_key(records: u64) -> impl Fn(&Value) -> String {
    move |record: &Value| {
        let seq = record["seq"]
            .as_u64()
            .unwrap_or_else(|| panic!("a record without an integer `seq`: {record}"));
        assert!(seq < records, "seq {seq} is outside 0..{records}: {record}");
        seq.to_string()
    }
}

/// Reads the manifest's ranges with the independent `read_committed` plain reader and
/// asserts that it sees every one of `records` records exactly once.
pub fn assert_plain_reader_exact(
    brokers: &str,
    manifest: &Path,
    records: u64,
    key_of: &dyn Fn(&Value) -> String,
) -> PlainReadReport {
    let report = read_manifest_file(brokers, manifest, key_of, Duration::from_secs(120));
    assert_eq!(
        report,
        PlainReadReport {
            total: records,
            distinct: records,
            duplicated: 0,
        },
        "the plain read_committed reader must see exactly the dataset"
    );
    report
}

/// `ldd consume --manifest M --brokers B` exits 0 and says `verified: OK`.
pub fn assert_consume_verifies(brokers: &str, manifest: &Path) {
    let out = ldd()
        .args(["consume", "--brokers", brokers, "--quiet", "--manifest"])
        .arg(manifest)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = stderr_of(&out);
    assert!(out.status.success(), "ldd consume failed: {err}");
    assert!(err.contains("verified: OK"), "{err}");
}

/// Checks a final manifest against what the interrupted run had committed: those chunks
/// keep their entries (they did not run again); a chunk the interrupted run had recorded as
/// committing only either keeps that entry (its transaction was found committed) or ran
/// again; every other chunk ran in a later run, under an attempt above every attempt the
/// interrupted run could use.
pub fn assert_resumed_manifest(
    manifest: &Value,
    planned_chunks: usize,
    committed_before: &BTreeMap<u64, Value>,
    in_doubt_before: &BTreeMap<u64, Value>,
    interrupted_last_attempt: u64,
) {
    let chunks = manifest["chunks"].as_array().unwrap();
    assert_eq!(chunks.len(), planned_chunks, "one entry per planned chunk");
    for chunk in chunks {
        let id = chunk["chunk_id"].as_u64().unwrap();
        let in_doubt_kept = in_doubt_before
            .get(&id)
            .is_some_and(|before| before["attempt"] == chunk["attempt"]);
        match committed_before
            .get(&id)
            .or(in_doubt_before.get(&id).filter(|_| in_doubt_kept))
        {
            Some(before) => {
                for field in [
                    "attempt",
                    "partition",
                    "first_offset",
                    "last_offset",
                    "records",
                    "crc32",
                ] {
                    assert_eq!(
                        chunk[field], before[field],
                        "chunk {id} was committed before the kill; its {field} changed: {chunk} vs {before}"
                    );
                }
            }
            None => assert!(
                chunk["attempt"].as_u64().unwrap() > interrupted_last_attempt,
                "chunk {id} ran again, so its attempt must be above {interrupted_last_attempt}: {chunk}"
            ),
        }
    }
}
