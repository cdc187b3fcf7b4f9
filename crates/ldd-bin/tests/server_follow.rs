//! Following a running server export chunk by chunk, against the real services (FerretDB at
//! `LDD_TEST_MONGO_URL`, Kafka at `LDD_TEST_KAFKA_BROKERS`).
//!
//! An `ldd serve` child process exports a generated dataset, exactly-once, in 16 chunks. While
//! it runs:
//!
//! - `ldd consume --follow --server` (started right after the export was accepted) reads every
//!   chunk from the export's `chunk` events, before the final manifest exists, and then
//!   verifies the whole export (`verified: OK`, exit 0);
//! - two event streams of the test's own (one opened at once, one opened mid-run, which gets
//!   the chunks committed before it opened replayed) each carry exactly one `chunk` event per
//!   chunk of the final manifest (a repeat only if identical), each equal to the manifest's
//!   entry, interleaved with `progress` events, and end with `done` / `succeeded`;
//! - the manifest topic carries the same chunk entries and the same final manifest.
//!
//! Independently of ldd's reader, the plain `read_committed` reader
//! (`ldd-sink-kafka/tests/common/plain_reader.rs`) then sees every record of the dataset
//! exactly once in the manifest's ranges.
//!
//! Opt-in (`--include-ignored`; scripts/test.sh runs it) and loud: a missing service variable
//! fails the test, it never passes silently.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../ldd-sink-kafka/tests/common/plain_reader.rs"]
mod plain_reader;

mod fault_common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use fault_common::{brokers, env, ldd, seq_key, stderr_of, ChildGuard, TempDir, Topics};
use ldd_core::FeedEntry;
use plain_reader::{read_manifest_ranges, PlainReadReport};
use serde_json::{json, Value};

/// Records of the dataset. FerretDB reads ~2,500 documents/s here, so the export runs for
/// several seconds: long enough that the follower and the test's streams connect while it
/// runs (asserted), short enough to keep the test within about a minute.
const RECORDS: u64 = 50_000;

/// Configured jobs: 15 after `drop_last`, rounded to 16 chunks on 4 partitions.
const JOBS: u64 = 16;
const PARTITIONS: u64 = 4;

/// The second event stream opens once this many chunks are done (with 4 chunks delivered at
/// once, at least one of them has been announced by then, so it is replayed).
const LATE_STREAM_AFTER: u64 = 5;

const TOKEN: &str = "server-follow-token-0123456789abcdef";

/// A collection of generated records loaded with `ldd load` into a fresh FerretDB database,
/// dropped (database and all) when this is dropped, also when the test panics.
struct Dataset {
    url: String,
    database: String,
    table: String,
}

impl Dataset {
    fn load(records: u64) -> Self {
        let dataset = Dataset {
            url: env("LDD_TEST_MONGO_URL"),
            database: format!("ldd_test_follow_{}", uuid::Uuid::new_v4().simple()),
            table: "points".into(),
        };
        let started = Instant::now();
        let out = ldd()
            .args(["load", "--db-type", "mongo", "--url", &dataset.url])
            .args(["--database", &dataset.database, "--table", &dataset.table])
            .args(["--records", &records.to_string(), "--devices", "10"])
            .arg("--quiet")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(out.status.success(), "ldd load: {}", stderr_of(&out));
        eprintln!(
            "loaded {records} records into FerretDB in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        dataset
    }

    fn drop_now(&self) -> Result<(), String> {
        let (url, database, table) = (self.url.clone(), self.database.clone(), self.table.clone());
        std::thread::spawn(move || {
            use ldd_sources::Fixtures;
            let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
            runtime.block_on(async {
                let connection =
                    ldd_sources::mongo::MongoConnection::connect(ldd_sources::mongo::MongoConfig {
                        url,
                        ..Default::default()
                    })
                    .await
                    .map_err(|e| e.to_string())?;
                connection
                    .drop_dataset(&database, &table)
                    .await
                    .map_err(|e| e.to_string())?;
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

/// `ldd serve` as a child process on a fresh state directory, on a free loopback port.
struct Server {
    _process: ChildGuard,
    base: String,
    log: Arc<Mutex<String>>,
    _state: TempDir,
}

impl Server {
    fn start(brokers: &str, manifest_topic: &str) -> Self {
        let state = TempDir::new("ldd-follow-state");
        let mut child = ldd()
            .args(["serve", "--listen", "127.0.0.1:0", "--state-dir"])
            .arg(&state.0)
            .args(["--kafka-brokers", brokers, "--token", TOKEN])
            .args(["--manifest-topic", manifest_topic, "--workers", "4"])
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
            _process: process,
            base: format!("http://{addr}"),
            log,
            _state: state,
        }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

/// An HTTP client for the server's API, with its token.
fn client() -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {TOKEN}").parse().unwrap(),
    );
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap()
}

async fn call(request: reqwest::RequestBuilder) -> (u16, Value) {
    let answer = request.send().await.unwrap();
    let status = answer.status().as_u16();
    let text = answer.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}

/// One server-sent event: its name and its data as JSON.
#[derive(Debug, Clone)]
struct Sse {
    event: String,
    data: Value,
}

/// Parses a complete `text/event-stream` body: `field: value` lines, events ended by a blank
/// line, `:` comments (keep-alives) skipped. A cut-off last event fails the test.
fn parse_sse(body: &str) -> Vec<Sse> {
    let mut events = Vec::new();
    let (mut event, mut data): (Option<String>, Vec<String>) = (None, Vec::new());
    for line in body.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            if event.is_some() || !data.is_empty() {
                let text = data.join("\n");
                let data = serde_json::from_str(&text)
                    .unwrap_or_else(|e| panic!("event data is not JSON ({e}): {text}"));
                events.push(Sse {
                    event: event.take().unwrap_or_else(|| "message".into()),
                    data,
                });
            }
            data = Vec::new();
            continue;
        }
        if line.starts_with(':') {
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => event = Some(value.to_owned()),
            "data" => data.push(value.to_owned()),
            _ => {}
        }
    }
    assert!(
        event.is_none() && data.is_empty(),
        "the event stream ended inside an event: {event:?} {data:?}"
    );
    events
}

/// Opens `GET /v1/exports/{id}/events` and reads it to its end.
async fn read_events(http: reqwest::Client, base: String, id: String) -> Vec<Sse> {
    let answer = http
        .get(format!("{base}/v1/exports/{id}/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 200, "opening the event stream");
    let kind = answer
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(kind.starts_with("text/event-stream"), "content type {kind}");
    let body = tokio::time::timeout(Duration::from_secs(600), answer.text())
        .await
        .expect("the event stream did not end within 10 minutes")
        .unwrap();
    parse_sse(&body)
}

/// Checks one event stream against the final manifest: one `chunk` event per chunk (a repeat
/// only if identical), each equal to the manifest's entry, chunks interleaved with `progress`
/// events of the running export, and a last `done` event that says `succeeded`. Answers how
/// many chunk events came right after the stream's first event (the replayed ones, for a
/// stream opened mid-run).
fn check_stream(what: &str, events: &[Sse], manifest: &Value, id: &str, topic: &str) -> usize {
    let summary: Vec<String> = events
        .iter()
        .map(|e| match e.event.as_str() {
            "chunk" => format!("chunk {}", e.data["chunk"]["chunk_id"]),
            other => format!("{other} {}", e.data["state"]),
        })
        .collect();
    eprintln!("{what}: {} events: {summary:?}", events.len());

    let entries: BTreeMap<u64, &Value> = manifest["chunks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["chunk_id"].as_u64().unwrap(), c))
        .collect();
    let mut seen: BTreeMap<u64, Value> = BTreeMap::new();
    let mut chunk_events = 0;
    for event in events.iter().filter(|e| e.event == "chunk") {
        chunk_events += 1;
        let data = &event.data;
        assert_eq!(data["export_id"], id, "{what}: {data}");
        assert_eq!(data["topic"], topic, "{what}: {data}");
        assert_eq!(data["format"], "jsonl", "{what}: {data}");
        let chunk = &data["chunk"];
        let chunk_id = chunk["chunk_id"]
            .as_u64()
            .unwrap_or_else(|| panic!("{what}: a chunk event without a chunk_id: {data}"));
        let entry = entries.get(&chunk_id).unwrap_or_else(|| {
            panic!("{what}: chunk {chunk_id} is not in the final manifest: {data}")
        });
        assert_eq!(
            chunk, *entry,
            "{what}: the chunk event of chunk {chunk_id} differs from the manifest's entry"
        );
        if let Some(before) = seen.insert(chunk_id, chunk.clone()) {
            assert_eq!(
                &before, chunk,
                "{what}: chunk {chunk_id} announced twice, differently"
            );
        }
    }
    assert!(chunk_events > 0, "{what}: no chunk events at all");
    assert_eq!(
        seen.keys().collect::<Vec<_>>(),
        entries.keys().collect::<Vec<_>>(),
        "{what}: one chunk event per chunk of the manifest"
    );
    if chunk_events != seen.len() {
        eprintln!(
            "{what}: {} chunk events repeated (identically)",
            chunk_events - seen.len()
        );
    }

    // Chunks come while the export runs, not all at its end: a progress event of the running
    // export follows the first chunk event.
    let first_chunk = events.iter().position(|e| e.event == "chunk").unwrap();
    assert!(
        events[first_chunk..]
            .iter()
            .any(|e| e.event == "progress" && e.data["state"] == "running"),
        "{what}: no progress event of the running export after the first chunk: {summary:?}"
    );

    let (last, before_last) = events.split_last().unwrap();
    assert_eq!(last.event, "done", "{what}: the last event: {summary:?}");
    assert_eq!(last.data["state"], "succeeded", "{what}: {}", last.data);
    assert_eq!(last.data["id"], id);
    assert_eq!(last.data["progress"]["records_done"], RECORDS);
    assert_eq!(
        last.data["progress"]["chunks_done"],
        entries.len() as u64,
        "{what}: {}",
        last.data
    );
    assert!(
        before_last.iter().all(|e| e.event != "done"),
        "{what}: more than one done event: {summary:?}"
    );
    events[1..]
        .iter()
        .take_while(|e| e.event == "chunk")
        .count()
}

/// What the manifest topic holds about the export: its chunk entries, then the final
/// manifest (read with a timeout, on a thread of its own).
fn manifest_topic_entries(brokers: &str, topic: &str, id: &str) -> Vec<FeedEntry> {
    let (brokers, topic, id) = (brokers.to_owned(), topic.to_owned(), id.to_owned());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let feed = runtime
            .block_on(ldd_sink_kafka::manifest_topic::tail_feed(
                &brokers.as_str().into(),
                &topic,
                &id,
            ))
            .unwrap();
        let mut entries = Vec::new();
        for entry in feed {
            let entry = entry.unwrap();
            let last = entry.is_last();
            entries.push(entry);
            if last {
                break;
            }
        }
        let _ = tx.send(entries);
    });
    rx.recv_timeout(Duration::from_secs(120))
        .expect("the manifest topic did not yield the export's entries within 2 minutes")
}

#[test]
#[ignore = "needs real services (LDD_TEST_KAFKA_BROKERS, LDD_TEST_MONGO_URL); scripts/test.sh runs it"]
fn a_follower_reads_each_chunk_of_a_running_server_export_as_it_commits() {
    let started = Instant::now();
    let brokers = brokers();
    let dataset = Dataset::load(RECORDS);
    let mut topics = Topics::new(&brokers);
    let topic = topics.add("ldd-test-follow");
    let manifest_topic = topics.add("ldd-test-follow-manifests");
    let logs = TempDir::new("ldd-follow-logs");
    let server = Server::start(&brokers, &manifest_topic);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let http = client();
    let base = server.base.clone();

    let (code, answer) = runtime.block_on(call(http.post(format!("{base}/v1/connections")).json(
        &json!({"id": "source", "db_type": "mongo", "url": dataset.url, "database": dataset.database}),
    )));
    assert_eq!(code, 201, "{answer}");
    let request = json!({
        "connection": "source",
        "dataset": {"database": dataset.database, "table": dataset.table, "time_field": "_time"},
        "destination": {"topic": topic, "partitions": PARTITIONS},
        "format": "jsonl",
        "jobs": JOBS,
    });
    let (code, accepted) =
        runtime.block_on(call(http.post(format!("{base}/v1/exports")).json(&request)));
    assert_eq!(code, 202, "{accepted}");
    let id = accepted["id"].as_str().unwrap().to_owned();

    // The follower, at once (the export is queued or planning). Not `--quiet`: it then says
    // how many chunks it read while the export ran (its progress bar stays off, stderr is no
    // terminal). The token comes from the environment, as the flag's help advises.
    let follower_err = logs.path("follower.err");
    let follower = ldd()
        .args(["consume", "--follow", "--server", &base, "--export-id", &id])
        .args(["--brokers", &brokers])
        .env("LDD_TOKEN", TOKEN)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(logs.path("follower.out")).unwrap())
        .stderr(std::fs::File::create(&follower_err).unwrap())
        .spawn()
        .unwrap();
    let follower = ChildGuard::new(follower, "ldd consume --follow");
    let (_, status) = runtime.block_on(call(http.get(format!("{base}/v1/exports/{id}"))));
    let state_at_follow = status["state"].clone();

    // The test's own streams: one at once, one once some chunks are done.
    let (early, late) = runtime.block_on(async {
        let first = tokio::spawn(read_events(http.clone(), base.clone(), id.clone()));
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let (code, status) = call(http.get(format!("{base}/v1/exports/{id}"))).await;
            assert_eq!(code, 200, "{status}");
            assert!(
                !["succeeded", "failed", "cancelled", "interrupted"]
                    .contains(&status["state"].as_str().unwrap_or_default()),
                "the export ended before {LATE_STREAM_AFTER} chunks were seen done (make RECORDS larger): {status}\nserver log:\n{}",
                server.log()
            );
            if status["progress"]["chunks_done"].as_u64().unwrap_or(0) >= LATE_STREAM_AFTER {
                eprintln!(
                    "opening the second stream after {:.1} s: {}",
                    started.elapsed().as_secs_f64(),
                    status["progress"]
                );
                break;
            }
            assert!(
                Instant::now() < deadline,
                "not {LATE_STREAM_AFTER} chunks done in 5 minutes: {status}\nserver log:\n{}",
                server.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let late = read_events(http.clone(), base.clone(), id.clone()).await;
        (first.await.unwrap(), late)
    });
    eprintln!(
        "both event streams ended after {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let (code, manifest) =
        runtime.block_on(call(http.get(format!("{base}/v1/exports/{id}/manifest"))));
    assert_eq!(code, 200, "{manifest}\nserver log:\n{}", server.log());
    assert_eq!(manifest["export_id"], id.as_str());
    assert_eq!(manifest["delivery"], "exactly-once");
    assert_eq!(manifest["transactional"], true);
    assert_eq!(manifest["total_records"], RECORDS);
    let chunks = manifest["chunks"].as_array().unwrap().len();
    assert_eq!(chunks, 16, "the plan: 16 chunks");

    check_stream("the stream opened at once", &early, &manifest, &id, &topic);
    assert_eq!(
        early[0].event, "progress",
        "it opened before the export ended"
    );
    let replayed = check_stream("the stream opened mid-run", &late, &manifest, &id, &topic);
    assert_eq!(
        late[0].event, "progress",
        "it opened before the export ended"
    );
    assert!(
        replayed >= 1,
        "the stream opened after {LATE_STREAM_AFTER} chunks were done replays the chunks committed before it"
    );
    eprintln!("the stream opened mid-run replayed {replayed} chunks first");

    // The follower verified everything, and had read every chunk before the manifest came.
    let status = follower.wait_timeout(Duration::from_secs(300));
    let err = std::fs::read_to_string(&follower_err).unwrap();
    eprintln!("follower (started while the export was {state_at_follow}):\n{err}");
    assert!(status.success(), "ldd consume --follow: {status}\n{err}");
    assert!(err.contains("verified: OK"), "{err}");
    assert!(
        err.contains(&format!(
            "{chunks} of {chunks} chunks were read while the export ran"
        )),
        "the follower read the chunks from their events, not after the manifest: {err}"
    );
    assert!(
        err.contains(&format!("{chunks} of {chunks} chunks verified")),
        "{err}"
    );

    // The manifest topic got the same chunks and the same manifest.
    let entries = manifest_topic_entries(&brokers, &manifest_topic, &id);
    let (last, announced) = entries.split_last().expect("entries in the manifest topic");
    let FeedEntry::Finished(published) = last else {
        panic!("the manifest topic's last entry is not the manifest: {last:?}");
    };
    assert_eq!(serde_json::to_value(published).unwrap(), manifest);
    let mut announced_chunks = BTreeMap::new();
    for entry in announced {
        let FeedEntry::Chunk(c) = entry else {
            panic!("not a chunk entry before the manifest: {entry:?}");
        };
        announced_chunks.insert(
            u64::from(c.chunk.chunk_id),
            serde_json::to_value(&c.chunk).unwrap(),
        );
    }
    let manifest_chunks: BTreeMap<u64, Value> = manifest["chunks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["chunk_id"].as_u64().unwrap(), c.clone()))
        .collect();
    assert_eq!(
        announced_chunks, manifest_chunks,
        "the manifest topic announces every chunk as the manifest has it"
    );

    // Independent proof: the plain read_committed reader sees each record exactly once.
    let report = read_manifest_ranges(
        &brokers,
        &manifest,
        &seq_key(RECORDS),
        Duration::from_secs(120),
    );
    assert_eq!(
        report,
        PlainReadReport {
            total: RECORDS,
            distinct: RECORDS,
            duplicated: 0,
        },
        "the plain read_committed reader must see exactly the dataset"
    );

    drop(server);
    topics.delete();
    dataset.drop_now().unwrap();
    eprintln!(
        "server follow test took {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
