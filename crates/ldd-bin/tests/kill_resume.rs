//! Exactly-once across a SIGKILL, against the real services: an `ldd export --journal` and an
//! `ldd serve` export are killed mid-run (no clean shutdown: open transactions, a journal or
//! state file cut off anywhere) and resumed. An independent plain `read_committed` reader
//! (`ldd-sink-kafka/tests/common/plain_reader.rs`, no ldd code) then sees every record of the
//! dataset exactly once, and `ldd consume` still verifies the manifest.
//!
//! Opt-in (`--include-ignored`; scripts/test.sh runs them) and loud: a missing service
//! variable fails the test, it never passes silently.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../ldd-sink-kafka/tests/common/plain_reader.rs"]
mod plain_reader;

mod fault_common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use fault_common::{
    assert_consume_verifies, assert_plain_reader_exact, assert_resumed_manifest, brokers, env,
    generator_export_args, ldd, read_journal, read_manifest, run_ldd, seq_key, spawn_ldd,
    stderr_of, wait_for_committed, ChildGuard, TempDir, Topics,
};
use serde_json::{json, Value};

/// Records of the CLI export. The test runs the debug `ldd` (about 30,000 records/s on two
/// cores) and the debug plain reader (about 20,000 records/s), so 300,000 take ~10 s to
/// export and ~15 s to read: long enough that the kill lands mid-run (it is asserted), short
/// enough for the whole test (kill, resume, two read-backs) to stay under a minute.
const CLI_RECORDS: u64 = 300_000;

/// The CLI export is killed once the journal shows this many committed chunks (about 15
/// journal lines: the export line, a run line and two lines per chunk).
const KILL_AFTER_COMMITTED: usize = 6;

#[test]
#[ignore = "needs a real Kafka broker (LDD_TEST_KAFKA_BROKERS); scripts/test.sh runs it"]
fn a_sigkilled_cli_export_resumes_from_its_journal_exactly_once() {
    let started = Instant::now();
    let brokers = brokers();
    let mut topics = Topics::new(&brokers);
    let topic = topics.add("ldd-test-kill-cli");
    let dir = TempDir::new("ldd-kill-cli");
    let journal = dir.path("export.journal");
    let manifest_path = dir.path("manifest.json");
    let args = generator_export_args(&brokers, &topic, 8, CLI_RECORDS, &journal, &manifest_path);

    // Run 1, SIGKILLed once some (not all) chunks are committed.
    let err1 = dir.path("run1.err");
    let mut child = spawn_ldd(&args, &dir.path("run1.out"), &err1, "the first ldd export");
    wait_for_committed(
        &mut child,
        &journal,
        KILL_AFTER_COMMITTED,
        Duration::from_secs(120),
        &err1,
    );
    child.sigkill();
    let killed = read_journal(&journal);
    let export_id = killed
        .export_id
        .clone()
        .expect("the journal names the export");
    let planned = killed.planned_chunks;
    assert!(
        killed.committed.len() >= KILL_AFTER_COMMITTED && killed.committed.len() < planned,
        "the kill must land mid-run: {} of {planned} chunks committed; make CLI_RECORDS larger",
        killed.committed.len()
    );
    assert!(!manifest_path.exists(), "a killed export wrote a manifest");
    let last_attempt = killed.runs.last().expect("a run line")["last_attempt"]
        .as_u64()
        .unwrap();
    eprintln!(
        "killed after {:.1} s with {} of {planned} chunks committed ({} committing)",
        started.elapsed().as_secs_f64(),
        killed.committed.len(),
        killed.committing_only.len()
    );

    // The same command again, until it succeeds (a resume that fails is resumed again).
    let mut errors = Vec::new();
    for _ in 0..3 {
        let out = run_ldd(&args);
        errors.push(stderr_of(&out));
        if out.status.success() {
            break;
        }
    }
    eprintln!(
        "resumed ({} run(s)) after {:.1} s",
        errors.len(),
        started.elapsed().as_secs_f64()
    );
    let last = errors.last().unwrap();
    assert!(
        manifest_path.exists(),
        "the export did not succeed in 3 resumes: {errors:#?}"
    );
    let resumed_line = format!(
        "resuming export {export_id} from {}: {} of {planned} chunks already committed",
        journal.display(),
        killed.committed.len()
    );
    assert!(errors[0].contains(&resumed_line), "{}", errors[0]);
    assert!(last.contains("exported 300,000 records"), "{last}");

    let manifest = read_manifest(&manifest_path);
    assert_eq!(manifest["export_id"], export_id.as_str());
    assert_eq!(manifest["delivery"], "exactly-once");
    assert_eq!(manifest["transactional"], true);
    assert_eq!(manifest["total_records"], CLI_RECORDS);
    assert_resumed_manifest(
        &manifest,
        planned,
        &killed.committed,
        &killed.committing_only,
        last_attempt,
    );

    assert_plain_reader_exact(&brokers, &manifest_path, CLI_RECORDS, &seq_key(CLI_RECORDS));
    eprintln!(
        "plain reader done after {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert_consume_verifies(&brokers, &manifest_path);
    topics.delete();
    eprintln!(
        "CLI kill/resume test took {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

// ------------------------------------------------------------------------------- the server

/// A database the server exports from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Db {
    Mongo,
    Influx,
}

impl Db {
    fn name(self) -> &'static str {
        match self {
            Db::Mongo => "mongo",
            Db::Influx => "influx",
        }
    }

    fn url(self) -> String {
        match self {
            Db::Mongo => env("LDD_TEST_MONGO_URL"),
            Db::Influx => env("LDD_TEST_INFLUX_URL"),
        }
    }
}

/// A generated dataset loaded with `ldd load` into a fresh database, dropped (database and
/// all) when this is dropped, also when the test panics.
struct Dataset {
    db: Db,
    url: String,
    database: String,
    table: String,
}

impl Dataset {
    fn load(db: Db, records: u64) -> Self {
        let dataset = Dataset {
            db,
            url: db.url(),
            database: format!("ldd_test_kill_{}", uuid::Uuid::new_v4().simple()),
            table: "points".into(),
        };
        let started = Instant::now();
        let out = ldd()
            .args(["load", "--db-type", db.name(), "--url", &dataset.url])
            .args(["--database", &dataset.database, "--table", &dataset.table])
            .args([
                "--records",
                &records.to_string(),
                "--devices",
                "10",
                "--quiet",
            ])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(out.status.success(), "ldd load: {}", stderr_of(&out));
        eprintln!(
            "loaded {records} records into {} in {:.1} s",
            db.name(),
            started.elapsed().as_secs_f64()
        );
        dataset
    }

    fn drop_now(&self) -> Result<(), String> {
        let (db, url, database, table) = (
            self.db,
            self.url.clone(),
            self.database.clone(),
            self.table.clone(),
        );
        std::thread::spawn(move || {
            use ldd_sources::Fixtures;
            let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
            runtime.block_on(async {
                let connection: Box<dyn Fixtures> = match db {
                    Db::Mongo => Box::new(
                        ldd_sources::mongo::MongoConnection::connect(
                            ldd_sources::mongo::MongoConfig {
                                url,
                                ..Default::default()
                            },
                        )
                        .await
                        .map_err(|e| e.to_string())?,
                    ),
                    Db::Influx => Box::new(
                        ldd_sources::influx::InfluxConnection::connect(
                            ldd_sources::influx::InfluxConfig::new(url),
                        )
                        .await
                        .map_err(|e| e.to_string())?,
                    ),
                };
                if db == Db::Mongo {
                    connection
                        .drop_dataset(&database, &table)
                        .await
                        .map_err(|e| e.to_string())?;
                }
                connection
                    .drop_dataset(&database, "")
                    .await
                    .map_err(|e| format!("dropping {database}: {e}"))
            })
        })
        .join()
        .map_err(|_| "the drop thread panicked".to_owned())?
    }
}

impl Drop for Dataset {
    fn drop(&mut self) {
        if let Err(e) = self.drop_now() {
            eprintln!("warning: test database not dropped: {e}");
        }
    }
}

const TOKEN: &str = "kill-resume-token-0123456789abcdef";

/// `ldd serve` as a child process on a state directory, on a free loopback port.
struct Server {
    process: ChildGuard,
    base: String,
    log: Arc<Mutex<String>>,
}

impl Server {
    fn start(state_dir: &Path, brokers: &str) -> Self {
        let mut child = ldd()
            .args(["serve", "--listen", "127.0.0.1:0", "--state-dir"])
            .arg(state_dir)
            .args(["--kafka-brokers", brokers, "--token", TOKEN])
            // Not into the shared `ldd.manifests` topic: the test fetches the manifest.
            .args(["--manifest-topic", "", "--workers", "4"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let process = ChildGuard::new(child, "ldd serve");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let lines = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    let addr = rest.split_whitespace().next().unwrap_or_default();
                    let _ = tx.send(addr.to_owned());
                }
                let mut log = lines.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| {
                panic!(
                    "ldd serve did not say where it listens: {}",
                    log.lock().unwrap()
                )
            });
        Server {
            process,
            base: format!("http://{addr}"),
            log,
        }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

/// A small blocking HTTP client for the server's API.
struct Api {
    runtime: tokio::runtime::Runtime,
    http: reqwest::Client,
    base: String,
}

impl Api {
    fn new(base: &str) -> Self {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::AUTHORIZATION,
            format!("Bearer {TOKEN}").parse().unwrap(),
        );
        Api {
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            http: reqwest::Client::builder()
                .default_headers(headers)
                .build()
                .unwrap(),
            base: base.to_owned(),
        }
    }

    fn call(&self, request: reqwest::RequestBuilder) -> (u16, Value) {
        self.runtime.block_on(async {
            let answer = request.send().await.unwrap();
            let status = answer.status().as_u16();
            let text = answer.text().await.unwrap();
            let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
            (status, body)
        })
    }

    fn get(&self, path: &str) -> (u16, Value) {
        self.call(self.http.get(format!("{}{path}", self.base)))
    }

    fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(self.http.post(format!("{}{path}", self.base)).json(&body))
    }
}

/// Polls an export's status until `done(status)` holds; panics when it reaches a final state
/// first or `timeout` passes.
fn poll_export(
    api: &Api,
    server: &Server,
    id: &str,
    timeout: Duration,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        let (code, status) = api.get(&format!("/v1/exports/{id}"));
        assert_eq!(code, 200, "{status}");
        if done(&status) {
            return status;
        }
        let state = status["state"].as_str().unwrap_or_default();
        assert!(
            !["succeeded", "failed", "cancelled", "interrupted"].contains(&state),
            "waiting for {what}, the export ended: {status}\nserver log:\n{}",
            server.log()
        );
        assert!(
            Instant::now() < deadline,
            "no {what} within {timeout:?}: {status}\nserver log:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// What the state file of a killed server holds about one export's checkpoint.
struct StoredCheckpoint {
    planned_chunks: usize,
    committed: BTreeMap<u64, Value>,
    in_doubt: BTreeMap<u64, Value>,
    last_attempt: u64,
}

/// Reads the checkpoint tables of the state file (the server is dead; SQLite recovers its
/// write-ahead log on open).
fn stored_checkpoint(state_dir: &Path, id: &str) -> StoredCheckpoint {
    let path: PathBuf = state_dir.join("ldd-state.sqlite3");
    let db = rusqlite::Connection::open(&path).unwrap();
    let record: String = db
        .query_row(
            "SELECT record FROM checkpoint_exports WHERE id = ?1",
            [id],
            |row| row.get(0),
        )
        .unwrap();
    let record: Value = serde_json::from_str(&record).unwrap();
    let planned_chunks = record["plan"]["chunks"].as_array().unwrap().len();
    let last_attempt: i64 = db
        .query_row(
            "SELECT MAX(last_attempt) FROM checkpoint_runs WHERE id = ?1",
            [id],
            |row| row.get(0),
        )
        .unwrap();
    let mut committed = BTreeMap::new();
    let mut in_doubt = BTreeMap::new();
    let mut statement = db
        .prepare("SELECT chunk_id, committed, manifest FROM checkpoint_chunks WHERE id = ?1")
        .unwrap();
    let rows = statement
        .query_map([id], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, String>(2)?,
            ))
        })
        .unwrap();
    for row in rows {
        let (chunk_id, is_committed, manifest) = row.unwrap();
        let entry: Value = serde_json::from_str(&manifest).unwrap();
        let target = if is_committed != 0 {
            &mut committed
        } else {
            &mut in_doubt
        };
        target.insert(chunk_id as u64, entry);
    }
    StoredCheckpoint {
        planned_chunks,
        committed,
        in_doubt,
        last_attempt: last_attempt as u64,
    }
}

/// Loads `records` generated records into `db`, starts an export of them on `ldd serve`,
/// SIGKILLs the server once `kill_after` chunks are done, restarts it on the same state
/// directory, resumes the export and checks the result exactly.
fn server_kill_and_resume(db: Db, records: u64, kill_after: u64) {
    let started = Instant::now();
    let brokers = brokers();
    let dataset = Dataset::load(db, records);
    let mut topics = Topics::new(&brokers);
    let topic = topics.add(&format!("ldd-test-kill-serve-{}", db.name()));
    let state = TempDir::new("ldd-kill-serve-state");
    let manifest_path = state.path("manifest.json");

    let server = Server::start(&state.0, &brokers);
    let api = Api::new(&server.base);
    let (code, answer) = api.post(
        "/v1/connections",
        json!({"id": "source", "db_type": db.name(), "url": dataset.url, "database": dataset.database}),
    );
    assert_eq!(code, 201, "{answer}");
    let mut dataset_body = json!({"database": dataset.database, "table": dataset.table});
    if db == Db::Mongo {
        dataset_body["time_field"] = json!("_time");
    }
    let (code, accepted) = api.post(
        "/v1/exports",
        json!({
            "connection": "source",
            "dataset": dataset_body,
            "destination": {"topic": topic, "partitions": 8},
            "format": "jsonl",
        }),
    );
    assert_eq!(code, 202, "{accepted}");
    let id = accepted["id"].as_str().unwrap().to_owned();
    let before_kill = poll_export(
        &api,
        &server,
        &id,
        Duration::from_secs(180),
        &format!("{kill_after} chunks done"),
        |s| s["progress"]["chunks_done"].as_u64().unwrap_or(0) >= kill_after,
    );
    let Server { process, .. } = server;
    process.sigkill();
    let chunks_total = before_kill["progress"]["chunks_total"].as_u64().unwrap();
    let stored = stored_checkpoint(&state.0, &id);
    assert_eq!(stored.planned_chunks as u64, chunks_total);
    assert!(
        !stored.committed.is_empty() && stored.committed.len() < stored.planned_chunks,
        "the kill must land mid-run: {} of {} chunks committed",
        stored.committed.len(),
        stored.planned_chunks
    );
    eprintln!(
        "server killed after {:.1} s with {} of {} chunks committed ({} in doubt)",
        started.elapsed().as_secs_f64(),
        stored.committed.len(),
        stored.planned_chunks,
        stored.in_doubt.len()
    );

    // A new server on the same state directory: the export is interrupted, and resumes.
    let server = Server::start(&state.0, &brokers);
    let api = Api::new(&server.base);
    let (code, status) = api.get(&format!("/v1/exports/{id}"));
    assert_eq!(code, 200, "{status}");
    assert_eq!(status["state"], "interrupted", "{status}");
    let (code, answer) = api.post(&format!("/v1/exports/{id}/resume"), json!({}));
    assert_eq!(code, 202, "{answer}");
    let done = poll_export(
        &api,
        &server,
        &id,
        Duration::from_secs(300),
        "success",
        |s| s["state"] == "succeeded",
    );
    assert_eq!(done["progress"]["records_done"], records, "{done}");

    let (code, manifest) = api.get(&format!("/v1/exports/{id}/manifest"));
    assert_eq!(code, 200, "{manifest}");
    assert_eq!(manifest["export_id"], id.as_str());
    assert_eq!(manifest["delivery"], "exactly-once");
    assert_eq!(manifest["total_records"], records);
    assert_resumed_manifest(
        &manifest,
        stored.planned_chunks,
        &stored.committed,
        &stored.in_doubt,
        stored.last_attempt,
    );
    std::fs::write(
        &manifest_path,
        serde_json::to_vec_pretty(&manifest).unwrap(),
    )
    .unwrap();

    assert_plain_reader_exact(&brokers, &manifest_path, records, &seq_key(records));
    assert_consume_verifies(&brokers, &manifest_path);

    drop(api);
    drop(server);
    topics.delete();
    dataset.drop_now().unwrap();
    eprintln!(
        "server kill/resume test on {} took {:.1} s",
        db.name(),
        started.elapsed().as_secs_f64()
    );
}

/// FerretDB cannot split (`$bucketAuto`), so this export is one ordered `_id` scan cut into
/// blocks; the resume skips the committed blocks. FerretDB reads ~2,500 documents/s here,
/// hence the modest size.
#[test]
#[ignore = "needs real services (LDD_TEST_KAFKA_BROKERS, LDD_TEST_MONGO_URL); scripts/test.sh runs it"]
fn a_sigkilled_server_resumes_a_mongo_export_exactly_once() {
    server_kill_and_resume(Db::Mongo, 60_000, 3);
}

/// InfluxDB splits into time windows, read in parallel.
#[test]
#[ignore = "needs real services (LDD_TEST_KAFKA_BROKERS, LDD_TEST_INFLUX_URL); scripts/test.sh runs it"]
fn a_sigkilled_server_resumes_an_influx_export_exactly_once() {
    server_kill_and_resume(Db::Influx, 200_000, 4);
}
