//! Kafka sink and read-back, on the embedded cluster and (opt-in, `--include-ignored`) on
//! the real broker named by `LDD_TEST_KAFKA_BROKERS`. Both run the same scenarios.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{random_topic, Broker};
use ldd_core::{
    export, ExportControl, ExportOptions, Format, GeneratorConfig, GeneratorSource,
    JobCountPartitioner, Manifest,
};
use ldd_sink_kafka::readback::{read_back, Hooks, JsonlOutput, Problem, ReadBackConfig};
use ldd_sink_kafka::{manifest_topic, Compression, Delivery, KafkaSink, KafkaSinkConfig};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

fn sink_config(broker: &Broker, topic: &str, partitions: u32) -> KafkaSinkConfig {
    broker.prepare(topic, partitions);
    KafkaSinkConfig {
        client: broker.brokers.clone().into(),
        topic: topic.into(),
        create_partitions: Some(partitions),
        linger_ms: 5,
        ..Default::default()
    }
}

async fn run_export(
    config: KafkaSinkConfig,
    records: u64,
    format: Format,
    export_id: &str,
) -> Manifest {
    let sink = KafkaSink::connect(config).await.expect("sink connects");
    let source = Arc::new(GeneratorSource::new(GeneratorConfig {
        records,
        ..Default::default()
    }));
    export(
        source,
        Arc::new(sink),
        &JobCountPartitioner {
            jobs: 8,
            drop_last: false,
        },
        ExportOptions {
            export_id: Some(export_id.into()),
            format,
            workers: 3,
            batch_bytes: 16 * 1024,
            ..Default::default()
        },
        ExportControl::default(),
    )
    .await
    .expect("export succeeds")
}

fn readback_config(broker: &Broker) -> ReadBackConfig {
    ReadBackConfig {
        idle_timeout: Duration::from_secs(20),
        ..ReadBackConfig::new(broker.brokers.clone())
    }
}

async fn produce_and_verify_every_format(broker: Broker) {
    for format in [Format::Json, Format::Jsonl, Format::Protobuf] {
        let topic = random_topic("formats");
        let manifest = run_export(
            sink_config(&broker, &topic, 4),
            20_000,
            format,
            &format!("e-{format}"),
        )
        .await;
        assert_eq!(manifest.total_records, 20_000);
        assert_eq!(manifest.partitions.len(), 4);
        assert_eq!(
            manifest.partitions.iter().map(|p| p.records).sum::<u64>(),
            20_000
        );
        manifest.check_consistency().unwrap();

        let out = JsonlOutput::new(Vec::new());
        let hooks = Hooks {
            output: Some(&out),
            progress: None,
        };
        let report = read_back(&manifest, &readback_config(&broker), Some(&hooks)).unwrap();
        assert!(report.is_verified(), "{format}: {:?}", report.problems);
        assert_eq!(report.records, 20_000);
        assert_eq!(report.messages, manifest.total_messages);
        // One consumer for all four partitions, and an uneven share (2, 1, 1).
        for parallelism in [1, 3] {
            let config = ReadBackConfig {
                parallelism,
                ..readback_config(&broker)
            };
            let report = read_back(&manifest, &config, None).unwrap();
            assert!(
                report.is_verified(),
                "{format} x{parallelism}: {:?}",
                report.problems
            );
            assert_eq!(report.records, 20_000);
            assert_eq!(report.partitions.len(), 4);
        }
        broker.cleanup(&topic).await;
    }
}

/// Reads the first message of partition 0 raw and checks its headers and key.
async fn messages_carry_headers_and_key(broker: Broker) {
    let topic = random_topic("headers");
    let manifest = run_export(sink_config(&broker, &topic, 2), 1_000, Format::Jsonl, "hdr").await;
    let first = manifest.chunks.iter().find(|c| c.partition == 0).unwrap();
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &broker.brokers)
        .set("group.id", "ldd-test")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&topic, 0, Offset::Offset(first.first_offset.unwrap()))
        .unwrap();
    consumer.assign(&tpl).unwrap();
    let msg = match consumer.poll(Duration::from_secs(10)) {
        Some(Ok(m)) => m,
        Some(Err(e)) => panic!("consume failed: {e}"),
        None => panic!("no message within 10 s"),
    };
    let headers: Vec<(String, String)> = msg
        .headers()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h.key.to_string(),
                String::from_utf8(h.value.unwrap().to_vec()).unwrap(),
            )
        })
        .collect();
    let get = |k: &str| {
        headers
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(get("ldd-export-id"), Some("hdr"));
    assert_eq!(
        get("ldd-chunk-id"),
        Some(first.chunk_id.to_string().as_str())
    );
    assert_eq!(get("ldd-attempt"), Some("1"));
    assert_eq!(get("ldd-seq"), Some("0"));
    assert_eq!(get("ldd-format"), Some("jsonl"));
    let records: u64 = get("ldd-records").unwrap().parse().unwrap();
    assert!(records > 1);
    assert_eq!(msg.key(), Some(first.chunk_id.to_string().as_bytes()));
    broker.cleanup(&topic).await;
}

async fn both_delivery_modes_verify(broker: Broker) {
    for delivery in [Delivery::ExactlyOnce, Delivery::AtLeastOnce] {
        let topic = random_topic("delivery");
        let config = KafkaSinkConfig {
            delivery,
            transactional_id_prefix: Some(format!("{topic}-tx")),
            compression: Compression::Zstd,
            ..sink_config(&broker, &topic, 3)
        };
        let manifest = run_export(config, 10_000, Format::Protobuf, "txn").await;
        assert_eq!(manifest.delivery, delivery);
        assert_eq!(manifest.transactional, delivery == Delivery::ExactlyOnce);
        let report = read_back(&manifest, &readback_config(&broker), None).unwrap();
        assert!(report.is_verified(), "{delivery}: {:?}", report.problems);
        assert_eq!(report.records, 10_000);
        broker.cleanup(&topic).await;
    }
}

/// Two exports into one topic at once: each manifest verifies alone, skipping the other's
/// messages (the original system's watermark offsets could not do this).
async fn concurrent_exports_share_a_topic(broker: Broker) {
    let topic = random_topic("shared");
    let a = run_export(sink_config(&broker, &topic, 2), 5_000, Format::Json, "a");
    let b = run_export(sink_config(&broker, &topic, 2), 7_000, Format::Jsonl, "b");
    let (a, b) = tokio::join!(a, b);
    for (m, n) in [(&a, 5_000), (&b, 7_000)] {
        let report = read_back(m, &readback_config(&broker), None).unwrap();
        assert!(
            report.is_verified(),
            "{}: {:?}",
            m.export_id,
            report.problems
        );
        assert_eq!(report.records, n);
    }
    broker.cleanup(&topic).await;
}

/// A manifest that does not match the topic is caught, never reported as success.
async fn tampered_manifest_is_caught(broker: Broker) {
    let topic = random_topic("tamper");
    let manifest = run_export(sink_config(&broker, &topic, 2), 2_000, Format::Jsonl, "t").await;
    let mut bad = manifest.clone();
    bad.chunks[0].crc32 ^= 1;
    let report = read_back(&bad, &readback_config(&broker), None).unwrap();
    assert!(!report.is_verified());
    assert!(report.problems.iter().any(
        |p| matches!(p, Problem::Checksum { chunk_id, .. } if *chunk_id == bad.chunks[0].chunk_id)
    ));

    let mut wrong_export = manifest.clone();
    wrong_export.export_id = "someone-else".into();
    let report = read_back(&wrong_export, &readback_config(&broker), None).unwrap();
    assert!(!report.is_verified());
    assert_eq!(report.records, 0);
    broker.cleanup(&topic).await;
}

async fn missing_topic_is_a_clear_error(broker: Broker) {
    let topic = random_topic("missing");
    let config = KafkaSinkConfig {
        client: broker.brokers.clone().into(),
        topic: topic.clone(),
        create_partitions: None,
        ..Default::default()
    };
    let err = KafkaSink::connect(config).await.unwrap_err().to_string();
    assert!(err.contains("does not exist"), "{err}");
}

async fn manifest_topic_round_trip(broker: Broker) {
    let topic = random_topic("manifests");
    let data = random_topic("data");
    let manifest = run_export(sink_config(&broker, &data, 1), 100, Format::Json, "mt").await;
    broker.prepare(&topic, 1);
    manifest_topic::publish_manifest(&broker.brokers.as_str().into(), &topic, &manifest)
        .await
        .unwrap();
    let back = manifest_topic::fetch_manifest(&broker.brokers.as_str().into(), &topic, "mt")
        .await
        .unwrap();
    assert_eq!(back, manifest);
    let err = manifest_topic::fetch_manifest(&broker.brokers.as_str().into(), &topic, "nope")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no manifest"));
    broker.cleanup(&topic).await;
    broker.cleanup(&data).await;
}

macro_rules! on_both_brokers {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Broker::embedded()).await
                }
            )*
        }
        mod real_broker {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[ignore = "needs a real Kafka broker (LDD_TEST_KAFKA_BROKERS); scripts/test.sh runs it"]
                async fn $name() {
                    super::$name(super::Broker::real()).await
                }
            )*
        }
    };
}

on_both_brokers!(
    produce_and_verify_every_format,
    messages_carry_headers_and_key,
    both_delivery_modes_verify,
    concurrent_exports_share_a_topic,
    tampered_manifest_is_caught,
    missing_topic_is_a_clear_error,
    manifest_topic_round_trip,
);

/// The embedded cluster keeps only the newest ~5 MB per partition. Read-back must say the
/// data is gone rather than count short.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_truncation_is_detected() {
    let broker = Broker::embedded();
    let topic = random_topic("trunc");
    let config = KafkaSinkConfig {
        compression: Compression::None,
        ..sink_config(&broker, &topic, 1)
    };
    let manifest = run_export(config, 40_000, Format::Json, "trunc").await;
    assert_eq!(manifest.total_records, 40_000);
    let report = read_back(&manifest, &readback_config(&broker), None).unwrap();
    assert!(!report.is_verified());
    assert!(
        report
            .problems
            .iter()
            .any(|p| matches!(p, Problem::Truncated { .. })),
        "{:?}",
        report.problems
    );
}
