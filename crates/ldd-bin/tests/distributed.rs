//! One export across separate `ldd worker` processes, against the real broker: three
//! workers, one SIGKILLed while chunks run; the coordinator (`ldd export --group`) SIGKILLed
//! too and restarted with the same export id; a fourth worker started mid-export. The
//! export must succeed, the late worker must take chunks, and an independent plain
//! `read_committed` reader of the manifest's ranges must see every record exactly once.
//!
//! Opt-in (`--include-ignored`; scripts/test.sh runs it) and loud: a missing service
//! variable fails the test, it never passes silently.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../ldd-sink-kafka/tests/common/plain_reader.rs"]
mod plain_reader;

mod fault_common;

use std::path::Path;
use std::time::{Duration, Instant};

use fault_common::{
    assert_consume_verifies, assert_plain_reader_exact, brokers, random_name, read_manifest,
    seq_key, spawn_ldd, ChildGuard, TempDir, Topics,
};

/// Records of the export: 48 chunks of 6,250.
const RECORDS: u64 = 300_000;

/// Records per second each worker reads: a chunk takes about 0.8 s, so a kill lands
/// mid-chunk, and the export lasts long enough (about 15 s) for the coordinator's restart
/// and the late worker.
const RATE_PER_WORKER: u32 = 8_000;

fn worker_args(brokers: &str, group: &str, id: &str) -> Vec<String> {
    [
        "worker",
        "--brokers",
        brokers,
        "--group",
        group,
        "--worker-id",
        id,
        "--rate-limit",
        &RATE_PER_WORKER.to_string(),
        "--session-timeout-secs",
        "6",
        "--status-interval-secs",
        "2",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

fn coordinator_args(
    brokers: &str,
    group: &str,
    topic: &str,
    export_id: &str,
    manifest: &Path,
) -> Vec<String> {
    [
        "export",
        "--brokers",
        brokers,
        "--topic",
        topic,
        "--partitions",
        "6",
        "--records",
        &RECORDS.to_string(),
        "--format",
        "jsonl",
        "--group",
        group,
        "--export-id",
        export_id,
        // A killed worker's open transaction is aborted by the broker after this.
        "--transaction-timeout-secs",
        "10",
        "--manifest-out",
        manifest.to_str().unwrap(),
        "--manifest-topic",
        "",
        "--quiet",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

/// "chunk committed" lines in a worker's log.
fn committed_in(log: &Path) -> usize {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .matches("chunk committed")
        .count()
}

/// Waits until `logs` show at least `n` committed chunks in total.
fn wait_for_commits(logs: &[&Path], n: usize, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let done: usize = logs.iter().map(|l| committed_in(l)).sum();
        if done >= n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "only {done} of {n} chunks committed within {timeout:?}; worker logs: {}",
            logs.iter()
                .map(|l| std::fs::read_to_string(l).unwrap_or_default())
                .collect::<Vec<_>>()
                .join("\n---\n")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// SIGTERMs a worker and checks that it stops cleanly.
fn stop_gracefully(worker: ChildGuard, log: &Path) {
    let pid = worker.id().to_string();
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(sent.success());
    let status = worker.wait_timeout(Duration::from_secs(60));
    let text = std::fs::read_to_string(log).unwrap_or_default();
    assert!(
        status.success(),
        "the worker exited with {status} on SIGTERM: {text}"
    );
    assert!(text.contains("worker stopped:"), "{text}");
}

#[test]
#[ignore = "needs a real Kafka broker (LDD_TEST_KAFKA_BROKERS); scripts/test.sh runs it"]
fn workers_and_coordinator_killed_mid_export_still_deliver_exactly_once() {
    let started = Instant::now();
    let brokers = brokers();
    let mut topics = Topics::new(&brokers);
    let topic = topics.add("ldd-test-group-dest");
    let group = random_name("ldd-test-group");
    topics.names.push(format!("ldd.{group}.tasks"));
    topics.names.push(format!("ldd.{group}.results"));
    let dir = TempDir::new("ldd-group");
    let export_id = random_name("export");
    let manifest = dir.path("manifest.json");
    let log = |name: &str| dir.path(&format!("{name}.err"));

    let mut workers = Vec::new();
    for id in ["w1", "w2", "w3"] {
        let worker = spawn_ldd(
            &worker_args(&brokers, &group, id),
            &dir.path(&format!("{id}.out")),
            &log(id),
            &format!("worker {id}"),
        );
        workers.push((id, worker));
    }
    let coordinator_cmd = coordinator_args(&brokers, &group, &topic, &export_id, &manifest);
    let coordinator = spawn_ldd(
        &coordinator_cmd,
        &dir.path("coord1.out"),
        &log("coord1"),
        "the first coordinator",
    );

    // Kill w1 once it has committed a chunk: it is rate-limited, so it is mid-chunk.
    let (w1_log, w2_log, w3_log) = (log("w1"), log("w2"), log("w3"));
    wait_for_commits(&[&w1_log], 1, Duration::from_secs(120));
    let (_, w1) = workers.remove(0);
    w1.sigkill();
    let w1_committed = committed_in(&w1_log);
    eprintln!(
        "w1 SIGKILLed after {:.1} s with {w1_committed} chunks committed",
        started.elapsed().as_secs_f64()
    );

    // Then the coordinator, a few chunks later.
    wait_for_commits(&[&w1_log, &w2_log, &w3_log], 10, Duration::from_secs(120));
    coordinator.sigkill();
    assert!(!manifest.exists(), "a killed coordinator wrote a manifest");
    let done_at_kill: usize = [&w1_log, &w2_log, &w3_log]
        .iter()
        .map(|l| committed_in(l))
        .sum();
    assert!(
        done_at_kill < 48,
        "the coordinator must be killed mid-export: {done_at_kill} of 48 chunks were done"
    );
    eprintln!("coordinator SIGKILLed with {done_at_kill} of 48 chunks committed");

    // A worker joins mid-export, and the coordinator is restarted on the same export.
    let w4_log = log("w4");
    let w4 = spawn_ldd(
        &worker_args(&brokers, &group, "w4"),
        &dir.path("w4.out"),
        &w4_log,
        "worker w4",
    );
    let coordinator = spawn_ldd(
        &coordinator_cmd,
        &dir.path("coord2.out"),
        &log("coord2"),
        "the restarted coordinator",
    );
    let status = coordinator.wait_timeout(Duration::from_secs(300));
    let coord_err = std::fs::read_to_string(log("coord2")).unwrap_or_default();
    assert!(
        status.success(),
        "the restarted coordinator failed: {coord_err}"
    );
    assert!(coord_err.contains(&export_id), "{coord_err}");

    let value = read_manifest(&manifest);
    assert_eq!(value["export_id"], export_id.as_str());
    assert_eq!(value["total_records"], RECORDS);
    assert_eq!(value["chunks"].as_array().unwrap().len(), 48);
    assert_eq!(value["delivery"], "exactly-once");
    let w4_committed = committed_in(&w4_log);
    assert!(
        w4_committed >= 1,
        "the worker started mid-export took no chunk: {}",
        std::fs::read_to_string(&w4_log).unwrap_or_default()
    );
    let by_worker: Vec<usize> = [&w1_log, &w2_log, &w3_log, &w4_log]
        .iter()
        .map(|l| committed_in(l))
        .collect();
    assert_eq!(
        by_worker.iter().sum::<usize>(),
        48,
        "every chunk is committed once, by one worker: {by_worker:?}"
    );
    eprintln!(
        "export done after {:.1} s; chunks by w1..w4: {by_worker:?}",
        started.elapsed().as_secs_f64()
    );

    assert_plain_reader_exact(&brokers, &manifest, RECORDS, &seq_key(RECORDS));
    assert_consume_verifies(&brokers, &manifest);

    stop_gracefully(w4, &w4_log);
    for (id, worker) in workers {
        stop_gracefully(worker, &log(id));
    }
    topics.delete();
    eprintln!("done in {:.1} s", started.elapsed().as_secs_f64());
}

/// Drops an InfluxDB database on a thread of its own.
fn drop_influx_database(url: &str, database: &str) {
    let (url, name) = (url.to_owned(), database.to_owned());
    let dropped = std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let config = ldd_sources::SourceConfig::new(ldd_sources::SourceKind::Influx, &url);
            let connection = ldd_sources::connect_fixtures(&config).await?;
            connection.drop_dataset(&name, "points").await
        })
    })
    .join()
    .unwrap();
    if let Err(e) = dropped {
        eprintln!("warning: dropping {database}: {e}");
    }
}

/// A database dataset: the coordinator plans with its own connection flags, the workers
/// read through the connection they know by name (their --connections file), and a name
/// they do not know fails the export with a message that says so.
#[test]
#[ignore = "needs Kafka (LDD_TEST_KAFKA_BROKERS) and InfluxDB (LDD_TEST_INFLUX_URL); scripts/test.sh runs it"]
fn workers_read_a_database_through_their_own_named_connection() {
    const LOADED: u64 = 40_000;
    let brokers = brokers();
    let url = fault_common::env("LDD_TEST_INFLUX_URL");
    let database = format!("ldd_test_group_{}", uuid::Uuid::new_v4().simple());
    let load = fault_common::ldd()
        .args([
            "load",
            "--db-type",
            "influx",
            "--url",
            &url,
            "--database",
            &database,
        ])
        .args([
            "--table",
            "points",
            "--records",
            &LOADED.to_string(),
            "--quiet",
        ])
        .output()
        .unwrap();
    assert!(
        load.status.success(),
        "ldd load: {}",
        fault_common::stderr_of(&load)
    );

    let mut topics = Topics::new(&brokers);
    let topic = topics.add("ldd-test-group-influx");
    let group = random_name("ldd-test-group-db");
    topics.names.push(format!("ldd.{group}.tasks"));
    topics.names.push(format!("ldd.{group}.results"));
    let dir = TempDir::new("ldd-group-db");
    let connections = dir.path("connections.json");
    std::fs::write(
        &connections,
        serde_json::json!([{"id": "test-influx", "db_type": "influx", "url": url}]).to_string(),
    )
    .unwrap();
    let mut workers = Vec::new();
    for id in ["d1", "d2"] {
        let mut args = worker_args(&brokers, &group, id);
        args.truncate(7); // no rate limit
        args.extend(["--connections".into(), connections.to_str().unwrap().into()]);
        let log = dir.path(&format!("{id}.err"));
        workers.push((
            spawn_ldd(&args, &dir.path(&format!("{id}.out")), &log, id),
            log,
        ));
    }
    let export = |name: &str, manifest: &Path| {
        fault_common::ldd()
            .args([
                "export",
                "--brokers",
                &brokers,
                "--topic",
                &topic,
                "--partitions",
                "4",
            ])
            .args([
                "--db-type",
                "influx",
                "--url",
                &url,
                "--database",
                &database,
            ])
            .args(["--table", "points", "--format", "jsonl", "--group", &group])
            .args([
                "--connection-name",
                name,
                "--attempts",
                "2",
                "--manifest-topic",
                "",
            ])
            .arg("--manifest-out")
            .arg(manifest)
            .arg("--quiet")
            .output()
            .unwrap()
    };
    let manifest = dir.path("manifest.json");
    let out = export("test-influx", &manifest);
    assert!(
        out.status.success(),
        "export: {}",
        fault_common::stderr_of(&out)
    );
    let value = read_manifest(&manifest);
    assert_eq!(value["total_records"], LOADED);
    assert_plain_reader_exact(&brokers, &manifest, LOADED, &seq_key(LOADED));

    let unknown = export("not-configured", &dir.path("unknown.json"));
    let err = fault_common::stderr_of(&unknown);
    assert!(
        !unknown.status.success(),
        "an unknown connection name must fail the export"
    );
    assert!(
        err.contains("no connection named `not-configured`"),
        "{err}"
    );

    for (worker, log) in workers {
        stop_gracefully(worker, &log);
    }
    topics.delete();
    drop_influx_database(&url, &database);
}
