//! Exactly-once across a broker crash: while an `ldd export --journal` runs, the shared
//! real broker is SIGKILLed (`scripts/services.sh crash kafka`) and restarted on its data
//! (`scripts/services.sh revive kafka`). The export either rides it out (librdkafka retries,
//! chunk attempts are retried) or fails and is resumed with the same command. Either way an
//! independent plain `read_committed` reader sees every record exactly once and
//! `ldd consume` verifies the manifest.
//!
//! Its own test binary with one test, because it takes the broker every other test uses
//! away for a while. Opt-in (`--include-ignored`; scripts/test.sh runs it) and loud: a
//! missing `LDD_TEST_KAFKA_BROKERS` fails it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../ldd-sink-kafka/tests/common/plain_reader.rs"]
mod plain_reader;

mod fault_common;

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use fault_common::{
    assert_consume_verifies, assert_plain_reader_exact, brokers, generator_export_args,
    read_journal, read_manifest, run_ldd, seq_key, spawn_ldd, stderr_of, wait_for_committed,
    TempDir, Topics,
};

/// Records of the export: ~35 s of the debug `ldd`, so the crash and the revival (a JVM start
/// and health checks, ~10-20 s) land mid-run.
const RECORDS: u64 = 1_000_000;

fn services_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/services.sh")
}

/// Runs `scripts/services.sh <args>` (it inherits LDD_CACHE_DIR/LDD_RUN_DIR).
fn services(args: &[&str]) -> Output {
    Command::new("bash")
        .arg(services_script())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Revives the broker when dropped unless it was revived already, so a failing test never
/// leaves the shared broker down.
struct CrashedBroker {
    revived: bool,
}

impl CrashedBroker {
    fn crash() -> Self {
        let out = services(&["crash", "kafka"]);
        assert!(out.status.success(), "crash kafka: {}", text(&out));
        eprintln!("{}", text(&out).trim_end());
        CrashedBroker { revived: false }
    }

    fn revive(mut self) {
        self.revived = true;
        let out = services(&["revive", "kafka"]);
        assert!(out.status.success(), "revive kafka: {}", text(&out));
        eprintln!("{}", text(&out).trim_end());
    }
}

impl Drop for CrashedBroker {
    fn drop(&mut self) {
        if !self.revived {
            let out = services(&["revive", "kafka"]);
            eprintln!("revive kafka (clean-up): {}", text(&out));
        }
    }
}

#[test]
#[ignore = "needs a real Kafka broker (LDD_TEST_KAFKA_BROKERS) that scripts/services.sh runs; scripts/test.sh runs it"]
fn an_export_survives_a_broker_crash_exactly_once() {
    let started = Instant::now();
    let brokers = brokers();
    let status = services(&["status"]);
    assert!(
        text(&status).contains("kafka: up"),
        "the broker must run under scripts/services.sh: {}",
        text(&status)
    );
    let mut topics = Topics::new(&brokers);
    let topic = topics.add("ldd-test-broker-restart");
    let dir = TempDir::new("ldd-broker-restart");
    let journal = dir.path("export.journal");
    let manifest_path = dir.path("manifest.json");
    let args = generator_export_args(&brokers, &topic, 8, RECORDS, &journal, &manifest_path);

    let err1 = dir.path("run1.err");
    let mut child = spawn_ldd(&args, &dir.path("run1.out"), &err1, "the ldd export");
    wait_for_committed(&mut child, &journal, 6, Duration::from_secs(180), &err1);
    assert!(
        child.try_wait().is_none(),
        "the export ended before the crash"
    );
    let crashed = CrashedBroker::crash();
    let at_crash = read_journal(&journal);
    assert!(
        at_crash.committed.len() < at_crash.planned_chunks,
        "the crash must land mid-run: {} of {} chunks committed",
        at_crash.committed.len(),
        at_crash.planned_chunks
    );
    eprintln!(
        "broker crashed after {:.1} s with {} of {} chunks committed",
        started.elapsed().as_secs_f64(),
        at_crash.committed.len(),
        at_crash.planned_chunks
    );
    crashed.revive();
    eprintln!(
        "broker revived after {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // The export may ride the crash out; if it fails, the same command resumes it.
    let first = child.wait_timeout(Duration::from_secs(600));
    let mut runs = vec![(
        first.success(),
        std::fs::read_to_string(&err1).unwrap_or_default(),
    )];
    while !runs.last().unwrap().0 && runs.len() < 3 {
        let out = run_ldd(&args);
        runs.push((out.status.success(), stderr_of(&out)));
    }
    for (i, (ok, err)) in runs.iter().enumerate() {
        eprintln!(
            "run {}: {}\n{}",
            i + 1,
            if *ok { "succeeded" } else { "failed" },
            err.trim_end()
        );
    }
    assert!(
        runs.last().unwrap().0,
        "the export did not succeed in {} runs",
        runs.len()
    );
    eprintln!(
        "export done after {:.1} s in {} run(s)",
        started.elapsed().as_secs_f64(),
        runs.len()
    );

    let manifest = read_manifest(&manifest_path);
    assert_eq!(manifest["delivery"], "exactly-once");
    assert_eq!(manifest["total_records"], RECORDS);
    assert_eq!(
        manifest["chunks"].as_array().unwrap().len(),
        at_crash.planned_chunks
    );
    let retried = manifest["chunks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["attempt"].as_u64().unwrap() > 1)
        .count();
    eprintln!("{retried} chunks committed on a later attempt");

    assert_plain_reader_exact(&brokers, &manifest_path, RECORDS, &seq_key(RECORDS));
    assert_consume_verifies(&brokers, &manifest_path);
    topics.delete();

    let status = services(&["status"]);
    assert!(
        text(&status).contains("kafka: up"),
        "the broker is not healthy afterwards: {}",
        text(&status)
    );
    eprintln!(
        "broker restart test took {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
