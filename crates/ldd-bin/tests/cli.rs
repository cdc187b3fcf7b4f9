//! The `ldd` binary end to end: demo (embedded) and export/consume/bench (real broker,
//! opt-in with `--include-ignored`; scripts/test.sh runs them).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use assert_cmd::Command;

fn ldd() -> Command {
    Command::cargo_bin("ldd").expect("ldd binary is built")
}

fn real_brokers() -> String {
    std::env::var("LDD_TEST_KAFKA_BROKERS").unwrap_or_else(|_| {
        panic!("LDD_TEST_KAFKA_BROKERS is not set: run scripts/test.sh (it starts Kafka)")
    })
}

#[test]
fn demo_verifies_and_partition_ranges_add_up() {
    let out = ldd()
        .args(["demo", "--records", "60000", "--partitions", "4", "--quiet"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("verified: OK"), "{text}");
    assert!(
        text.contains("per-partition records add up to 60,000"),
        "{text}"
    );
}

#[test]
fn demo_that_overflows_the_embedded_cluster_fails_loudly() {
    // 1 partition, one chunk, one uncompressed JSON record per message: the chunk alone is
    // far beyond the ~5 MB the embedded cluster keeps, so even a follower that reads it the
    // moment it commits finds it truncated, and the demo must say so and exit 3.
    let out = ldd()
        .args([
            "demo",
            "--records",
            "60000",
            "--partitions",
            "1",
            "--jobs",
            "1",
        ])
        .args(["--format", "json", "--compression", "none", "--quiet"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(text.contains("verified: FAILED"), "{text}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("truncated"));
}

#[test]
fn database_flags_never_fall_back_to_the_generator() {
    let export = |extra: &[&str]| {
        let out = ldd()
            .args([
                "export",
                "--brokers",
                "127.0.0.1:1",
                "--topic",
                "t",
                "--quiet",
            ])
            .args(extra)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{extra:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = export(&["--url", "http://127.0.0.1:1", "--table", "iot"]);
    assert!(err.contains("--source mongo|influx"), "{err}");
    let err = export(&["--source", "generator", "--db-type", "influx"]);
    assert!(err.contains("--source is generator"), "{err}");
    let err = export(&["--source", "mongo", "--db-type", "influx"]);
    assert!(err.contains("contradicts"), "{err}");
}

#[test]
fn bad_flags_exit_non_zero_with_a_message() {
    let out = ldd().args(["demo", "--partitions", "0"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--partitions must be at least 1"));
    let out = ldd()
        .args(["export", "--brokers", "127.0.0.1:1", "--topic", "bad topic"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a valid Kafka topic name"));
    let out = ldd()
        .args([
            "consume",
            "--brokers",
            "127.0.0.1:1",
            "--manifest",
            "/nonexistent.json",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("reading the manifest"));
}

#[test]
fn bench_harness_smoke_runs_on_the_embedded_cluster() {
    let dir = std::env::temp_dir().join(format!("ldd-bench-smoke-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("bench.json");
    let out = ldd()
        .args([
            "bench",
            "--embedded",
            "--sizes",
            "5000",
            "--formats",
            "json,jsonl",
        ])
        .arg("--json-out")
        .arg(&json)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let rows = rows.as_array().unwrap();
    // Per format: produce, read-back, exactly-once against at-least-once, and export with a
    // follower against the export alone.
    assert_eq!(rows.len(), 8);
    for row in rows {
        assert!(row["ratio"].as_f64().unwrap() > 0.0, "{row}");
        assert_eq!(row["records"], 5000);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
#[ignore = "needs a real Kafka broker (LDD_TEST_KAFKA_BROKERS); scripts/test.sh runs it"]
fn export_then_consume_against_the_real_broker() {
    let brokers = real_brokers();
    let topic = format!("ldd-test-cli-{}", std::process::id());
    let dir = std::env::temp_dir().join(format!("ldd-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let manifest = dir.join("manifest.json");
    let out = ldd()
        .args([
            "export",
            "--brokers",
            &brokers,
            "--topic",
            &topic,
            "--partitions",
            "3",
        ])
        .args([
            "--records",
            "50000",
            "--format",
            "protobuf",
            "--quiet",
            "--transactional",
        ])
        .args(["--export-id", &format!("cli-{}", std::process::id())])
        .arg("--manifest-out")
        .arg(&manifest)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let csv = dir.join("out.csv");
    let out = ldd()
        .args([
            "consume",
            "--brokers",
            &brokers,
            "--quiet",
            "--output-format",
            "csv",
        ])
        .arg("--manifest")
        .arg(&manifest)
        .arg("--output")
        .arg(&csv)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("verified: OK"), "{err}");
    let rows = std::fs::read_to_string(&csv).unwrap().lines().count();
    assert_eq!(rows, 50_001); // header + records
                              // The manifest topic also holds it: consume by export id alone.
    let out = ldd()
        .args(["consume", "--brokers", &brokers, "--quiet"])
        .args(["--export-id", &format!("cli-{}", std::process::id())])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_dir_all(&dir).unwrap();
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(ldd_sink_kafka::TopicAdmin::new(brokers).delete_topic(&topic))
        .unwrap();
}

#[test]
#[ignore = "needs a real Kafka broker (LDD_TEST_KAFKA_BROKERS); scripts/test.sh runs it"]
fn an_interrupted_export_resumes_from_its_journal() {
    let brokers = real_brokers();
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    let topic = format!("ldd-test-resume-{run_id}");
    let dir = std::env::temp_dir().join(format!("ldd-resume-{run_id}"));
    std::fs::create_dir_all(&dir).unwrap();
    let journal = dir.join("export.journal");
    let export = |records: &str, manifest: &std::path::Path| {
        ldd()
            .args(["export", "--brokers", &brokers, "--topic", &topic])
            .args([
                "--partitions",
                "4",
                "--records",
                records,
                "--format",
                "jsonl",
            ])
            .args(["--quiet", "--manifest-topic", ""])
            .arg("--journal")
            .arg(&journal)
            .arg("--manifest-out")
            .arg(manifest)
            .output()
            .unwrap()
    };
    let first = dir.join("first.json");
    let out = export("20000", &first);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let first: serde_json::Value = serde_json::from_slice(&std::fs::read(&first).unwrap()).unwrap();
    let chunks = first["chunks"].as_array().unwrap().len();

    // As if the first run had stopped before recording some chunks. Chunks 0, 3, 6, ...: the
    // journal forgets them entirely, and their messages (attempt 1) stay in the topic as
    // leftovers between chunks that are kept. Chunks 1, 4, 7, ...: the journal says
    // "committing" but not "committed" (a crash right after the commit): the resume asks
    // the broker, finds them committed, and keeps them instead of writing them twice.
    let text = std::fs::read_to_string(&journal).unwrap();
    let kept: Vec<&str> = text
        .lines()
        .filter(|line| {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let id = v["chunk_id"].as_u64().unwrap_or(2);
            match v["kind"].as_str().unwrap() {
                "committing" => !id.is_multiple_of(3),
                "committed" => id % 3 == 2,
                _ => true,
            }
        })
        .collect();
    std::fs::write(&journal, kept.join("\n") + "\n").unwrap();

    let second = dir.join("second.json");
    let out = export("20000", &second);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let forgotten = (0..chunks).filter(|id| id % 3 == 0).count();
    let in_doubt = (0..chunks).filter(|id| id % 3 == 1).count();
    let resumed_line = format!(
        "{} of {chunks} chunks already committed, {in_doubt} to check against the topic",
        chunks - forgotten - in_doubt
    );
    assert!(err.contains(&resumed_line), "{err}");
    let second_manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&second).unwrap()).unwrap();
    assert_eq!(second_manifest["export_id"], first["export_id"]);
    assert_eq!(second_manifest["delivery"], "exactly-once");
    for chunk in second_manifest["chunks"].as_array().unwrap() {
        let rerun = chunk["chunk_id"].as_u64().unwrap() % 3 == 0;
        assert_eq!(chunk["attempt"].as_u64().unwrap() > 1, rerun, "{chunk}");
    }
    // Read-back takes the new attempts and skips the first run's leftovers.
    let out = ldd()
        .args(["consume", "--brokers", &brokers, "--quiet", "--json"])
        .arg("--manifest")
        .arg(&second)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    // `--json` writes the report to stderr (stdout may carry records), before the summary.
    let report_end = err.find("\n}\n").map(|i| i + 2).expect("a JSON report");
    let report: serde_json::Value = serde_json::from_str(&err[..report_end]).unwrap();
    assert_eq!(report["records"], 20_000);
    assert!(report["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["skipped"].as_u64().unwrap() > 0));

    // Nothing is left to do the third time; another dataset is refused.
    let out = export("20000", &dir.join("third.json"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains(&format!("{chunks} of {chunks} chunks already committed")),
        "{err}"
    );
    assert!(!err.contains("to check against the topic"), "{err}");
    let out = export("30000", &dir.join("other.json"));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("belongs to export"));

    std::fs::remove_dir_all(&dir).unwrap();
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(ldd_sink_kafka::TopicAdmin::new(brokers).delete_topic(&topic))
        .unwrap();
}
