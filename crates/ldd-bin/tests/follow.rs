//! Consuming while exporting, against the real broker: `ldd consume --follow` is started
//! before `ldd export` and reads each chunk as the export announces it in the manifest
//! topic. It must end verified, with every record of the dataset in its output exactly once
//! (counted here, from the output file, by the generator's unique `seq`), and the
//! independent plain `read_committed` reader (`ldd-sink-kafka/tests/common/plain_reader.rs`,
//! no ldd code) must see the same over the manifest's ranges. A second test SIGKILLs the
//! export while the follower follows, resumes it from its journal, and asks the same.
//!
//! Opt-in (`--include-ignored`; scripts/test.sh runs them) and loud: a missing service
//! variable fails the test, it never passes silently.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../ldd-sink-kafka/tests/common/plain_reader.rs"]
mod plain_reader;

mod fault_common;

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use fault_common::{
    assert_plain_reader_exact, brokers, generator_export_args, random_name, read_journal,
    read_manifest, run_ldd, seq_key, spawn_ldd, stderr_of, wait_for_committed, ChildGuard, TempDir,
    Topics,
};
use serde_json::Value;

/// Records of each export (the debug `ldd` exports about 30,000 records/s on two cores, so
/// the export runs for seconds while the follower reads).
const RECORDS: u64 = 300_000;

/// Chunks asked for: many, so that most are read while the export still runs.
const JOBS: &str = "25";

/// The export's arguments, announcing into `manifest_topic`, with `JOBS` chunks over
/// `partitions` partitions.
fn export_args(
    brokers: &str,
    (topic, partitions): (&str, u32),
    manifest_topic: &str,
    export_id: &str,
    dir: &TempDir,
) -> Vec<String> {
    let mut args = generator_export_args(
        brokers,
        topic,
        partitions,
        RECORDS,
        &dir.path("export.journal"),
        &dir.path("manifest.json"),
    );
    let at = args.iter().position(|a| a == "--manifest-topic").unwrap();
    args[at + 1] = manifest_topic.to_owned();
    args.extend(
        ["--export-id", export_id, "--jobs", JOBS]
            .iter()
            .map(|s| (*s).to_owned()),
    );
    args
}

/// Starts `ldd consume --follow` for `export_id`, writing the records as JSON lines.
fn start_follower(
    brokers: &str,
    manifest_topic: &str,
    export_id: &str,
    dir: &TempDir,
) -> ChildGuard {
    let args: Vec<String> = [
        "consume",
        "--follow",
        "--export-id",
        export_id,
        "--brokers",
        brokers,
        "--manifest-topic",
        manifest_topic,
        "--output-format",
        "jsonl",
        "--output",
        dir.path("records.jsonl").to_str().unwrap(),
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let mut follower = spawn_ldd(
        &args,
        &dir.path("follow.out"),
        &dir.path("follow.err"),
        "ldd consume --follow",
    );
    // It waits for the export that has not started yet.
    std::thread::sleep(Duration::from_millis(700));
    assert!(
        follower.try_wait().is_none(),
        "the follower ended before the export started: {}",
        std::fs::read_to_string(dir.path("follow.err")).unwrap_or_default()
    );
    follower
}

/// Waits for the follower and checks that it verified the export.
fn assert_follower_verified(follower: ChildGuard, dir: &TempDir) -> String {
    let status = follower.wait_timeout(Duration::from_secs(180));
    let err = std::fs::read_to_string(dir.path("follow.err")).unwrap();
    assert!(status.success(), "the follower failed ({status}): {err}");
    assert!(err.contains("verified: OK"), "{err}");
    err
}

/// Every record of the follower's output file, each `seq` exactly once.
fn assert_output_exact(path: &Path) {
    let text = std::fs::read_to_string(path).unwrap();
    let key_of = seq_key(RECORDS);
    let mut seen = HashSet::new();
    let mut total = 0u64;
    for line in text.lines() {
        let record: Value = serde_json::from_str(line).unwrap();
        total += 1;
        let key = key_of(&record);
        assert!(
            seen.insert(key.clone()),
            "record seq {key} was written twice"
        );
    }
    assert_eq!(total, RECORDS, "records in the follower's output");
    assert_eq!(
        seen.len() as u64,
        RECORDS,
        "distinct records in the follower's output"
    );
}

#[test]
#[ignore = "needs a real Kafka broker (LDD_TEST_KAFKA_BROKERS); scripts/test.sh runs it"]
fn a_follower_started_first_reads_the_export_exactly_once_while_it_runs() {
    let started = Instant::now();
    let brokers = brokers();
    let mut topics = Topics::new(&brokers);
    let topic = topics.add("ldd-test-follow");
    let manifest_topic = topics.add("ldd-test-follow-manifests");
    let export_id = random_name("follow");
    let dir = TempDir::new("ldd-follow");

    let follower = start_follower(&brokers, &manifest_topic, &export_id, &dir);
    // Two partitions for 24 chunks, several chunks in flight: chunks of one partition
    // interleave, so a committed chunk's range often ends beyond what is readable yet (the
    // next chunk's transaction is still open there) and the follower must wait for it.
    let out = run_ldd(&export_args(
        &brokers,
        (&topic, 2),
        &manifest_topic,
        &export_id,
        &dir,
    ));
    assert!(
        out.status.success(),
        "the export failed: {}",
        stderr_of(&out)
    );
    let exported_at = started.elapsed();
    let err = assert_follower_verified(follower, &dir);
    eprintln!(
        "export done after {:.1} s, follower after {:.1} s",
        exported_at.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );

    let manifest = read_manifest(&dir.path("manifest.json"));
    let chunks = manifest["chunks"].as_array().unwrap().len();
    assert_eq!(chunks, 24, "25 jobs, one dropped, on 2 partitions");
    // Every chunk was announced before the manifest, so each was handed to a reader while
    // the export ran.
    assert!(
        err.contains(&format!(
            "{chunks} of {chunks} chunks were read while the export ran"
        )),
        "{err}"
    );
    assert_output_exact(&dir.path("records.jsonl"));
    assert_plain_reader_exact(
        &brokers,
        &dir.path("manifest.json"),
        RECORDS,
        &seq_key(RECORDS),
    );
    topics.delete();
}

#[test]
#[ignore = "needs a real Kafka broker (LDD_TEST_KAFKA_BROKERS); scripts/test.sh runs it"]
fn a_follower_outlives_a_sigkilled_export_that_is_resumed() {
    let brokers = brokers();
    let mut topics = Topics::new(&brokers);
    let topic = topics.add("ldd-test-follow-kill");
    let manifest_topic = topics.add("ldd-test-follow-kill-manifests");
    let export_id = random_name("follow-kill");
    let dir = TempDir::new("ldd-follow-kill");
    let args = export_args(&brokers, (&topic, 8), &manifest_topic, &export_id, &dir);

    let follower = start_follower(&brokers, &manifest_topic, &export_id, &dir);
    let err1 = dir.path("run1.err");
    let mut exporter = spawn_ldd(&args, &dir.path("run1.out"), &err1, "the first ldd export");
    wait_for_committed(
        &mut exporter,
        &dir.path("export.journal"),
        5,
        Duration::from_secs(120),
        &err1,
    );
    exporter.sigkill();
    let killed = read_journal(&dir.path("export.journal"));
    assert!(
        killed.committed.len() < killed.planned_chunks,
        "the kill must land mid-run: {} of {} chunks committed",
        killed.committed.len(),
        killed.planned_chunks
    );

    // The follower waits through the kill; the same command resumes the export.
    let mut errors = Vec::new();
    for _ in 0..3 {
        let out = run_ldd(&args);
        errors.push(stderr_of(&out));
        if out.status.success() {
            break;
        }
    }
    assert!(
        dir.path("manifest.json").exists(),
        "the export did not succeed in 3 resumes: {errors:#?}"
    );
    assert_follower_verified(follower, &dir);
    assert_output_exact(&dir.path("records.jsonl"));
    assert_plain_reader_exact(
        &brokers,
        &dir.path("manifest.json"),
        RECORDS,
        &seq_key(RECORDS),
    );
    topics.delete();
}
