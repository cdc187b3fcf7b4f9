//! Client security settings reach every Kafka client, against the real broker's
//! SASL_PLAINTEXT listener (`scripts/services.sh`, mechanism PLAIN): `ldd export` with the
//! credentials in `LDD_KAFKA_PROPERTIES` writes the data and publishes its manifest to the
//! manifest topic, and `ldd consume --export-id` finds the manifest there and reads the
//! export back, all through that listener; the independent plain reader (no ldd code, over
//! the PLAINTEXT listener of the same broker) sees exactly the dataset. A wrong password
//! fails at once with an error that names authentication, never a hang.
//!
//! Opt-in (`--include-ignored`; scripts/test.sh runs them) and loud: a missing service
//! variable fails the test, it never passes silently.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../ldd-sink-kafka/tests/common/plain_reader.rs"]
mod plain_reader;

mod fault_common;

use std::collections::HashSet;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use fault_common::{
    assert_plain_reader_exact, brokers, env, ldd, random_name, seq_key, stderr_of, TempDir, Topics,
};
use serde_json::Value;

const RECORDS: u64 = 20_000;

/// The SASL listener and the client properties logging in as `password`.
fn sasl(password: &str) -> (String, String) {
    let brokers = env("LDD_TEST_KAFKA_SASL_BROKERS");
    let username = env("LDD_TEST_KAFKA_SASL_USERNAME");
    let properties = format!(
        "security.protocol=SASL_PLAINTEXT;sasl.mechanism=PLAIN;sasl.username={username};\
         sasl.password={password}"
    );
    (brokers, properties)
}

/// Runs `ldd <args>` with the client properties in the environment (secrets stay out of
/// the process list).
fn run_with(properties: &str, args: &[&str]) -> Output {
    ldd()
        .args(args)
        .env("LDD_KAFKA_PROPERTIES", properties)
        .env("LDD_LOG", "off")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
#[ignore = "needs the SASL listener of scripts/services.sh (LDD_TEST_KAFKA_SASL_*); scripts/test.sh runs it"]
fn export_manifest_topic_and_consume_by_export_id_through_sasl() {
    let (sasl_brokers, properties) = sasl(&env("LDD_TEST_KAFKA_SASL_PASSWORD"));
    // Clean-up and the plain reader use the PLAINTEXT listener of the same broker.
    let plain_brokers = brokers();
    let mut topics = Topics::new(&plain_brokers);
    let (topic, manifests) = (topics.add("ldd-sasl"), topics.add("ldd-sasl-manifests"));
    let export_id = random_name("sasl");
    let dir = TempDir::new("ldd-sasl");
    let manifest = dir.path("manifest.json");
    let records = RECORDS.to_string();
    let out = run_with(
        &properties,
        &[
            "export",
            "--brokers",
            &sasl_brokers,
            "--topic",
            &topic,
            "--partitions",
            "3",
            "--records",
            &records,
            "--format",
            "jsonl",
            "--export-id",
            &export_id,
            "--manifest-topic",
            &manifests,
            "--manifest-out",
            manifest.to_str().unwrap(),
            "--quiet",
        ],
    );
    assert!(
        out.status.success(),
        "ldd export failed: {}",
        stderr_of(&out)
    );
    let written: Value = serde_json::from_slice(&std::fs::read(&manifest).unwrap()).unwrap();
    assert_eq!(written["total_records"], RECORDS);
    assert_eq!(written["export_id"], export_id.as_str());

    // The manifest comes from the manifest topic, through the SASL listener.
    let output = dir.path("records.jsonl");
    let out = run_with(
        &properties,
        &[
            "consume",
            "--brokers",
            &sasl_brokers,
            "--export-id",
            &export_id,
            "--manifest-topic",
            &manifests,
            "--output-format",
            "jsonl",
            "--output",
            output.to_str().unwrap(),
            "--json",
            "--quiet",
        ],
    );
    let err = stderr_of(&out);
    assert!(out.status.success(), "ldd consume failed: {err}");
    // `--json` prints the report first on stderr, the summary lines after it.
    let report: Value = serde_json::Deserializer::from_str(&err)
        .into_iter::<Value>()
        .next()
        .and_then(Result::ok)
        .unwrap_or_else(|| panic!("no JSON report from ldd consume: {err}"));
    assert!(err.contains("verified: OK"), "{err}");
    assert_eq!(report["records"], RECORDS, "{report}");
    assert_eq!(report["expected_records"], RECORDS, "{report}");
    assert_eq!(report["problems"], Value::Array(vec![]), "{report}");
    // Every record exactly once in the output.
    let key = seq_key(RECORDS);
    let text = std::fs::read_to_string(&output).unwrap();
    let seqs: Vec<String> = text
        .lines()
        .map(|line| key(&serde_json::from_str(line).unwrap()))
        .collect();
    assert_eq!(seqs.len() as u64, RECORDS);
    assert_eq!(seqs.iter().collect::<HashSet<_>>().len() as u64, RECORDS);
    // And an independent reader sees exactly the dataset in the manifest's ranges.
    assert_plain_reader_exact(&plain_brokers, &manifest, RECORDS, &key);
    topics.delete();
}

#[test]
#[ignore = "needs the SASL listener of scripts/services.sh (LDD_TEST_KAFKA_SASL_*); scripts/test.sh runs it"]
fn a_wrong_password_fails_naming_authentication() {
    // The variables must be there, so that this never passes against nothing.
    env("LDD_TEST_KAFKA_SASL_PASSWORD");
    let (sasl_brokers, properties) = sasl("not-the-password");
    let plain_brokers = brokers();
    let mut topics = Topics::new(&plain_brokers);
    let (topic, manifests) = (topics.add("ldd-sasl-bad"), topics.add("ldd-sasl-bad-m"));
    let started = Instant::now();
    let out = run_with(
        &properties,
        &[
            "export",
            "--brokers",
            &sasl_brokers,
            "--topic",
            &topic,
            "--partitions",
            "1",
            "--records",
            "100",
            "--manifest-topic",
            &manifests,
            "--manifest-out",
            "-",
            "--quiet",
        ],
    );
    let err = stderr_of(&out);
    assert!(!out.status.success(), "a wrong password must fail: {err}");
    assert!(err.contains("authentication failed"), "{err}");
    assert!(
        !err.contains("not-the-password"),
        "the password is printed: {err}"
    );
    let out = run_with(
        &properties,
        &[
            "consume",
            "--brokers",
            &sasl_brokers,
            "--export-id",
            "nothing",
            "--manifest-topic",
            &manifests,
            "--quiet",
        ],
    );
    let err = stderr_of(&out);
    assert!(!out.status.success(), "a wrong password must fail: {err}");
    assert!(err.contains("authentication failed"), "{err}");
    // Each command gives up after librdkafka's metadata timeout (15 s), not later.
    assert!(
        started.elapsed() < Duration::from_secs(90),
        "took {:?}",
        started.elapsed()
    );
    topics.delete();
}
