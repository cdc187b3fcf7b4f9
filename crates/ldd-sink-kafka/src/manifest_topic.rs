//! The manifest topic: every export's manifest as one message keyed by export id, so a
//! consumer can find it with nothing but Kafka.

use std::time::{Duration, Instant};

use ldd_core::Manifest;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use crate::admin::{blocking, TopicAdmin};
use crate::error::{Error, Result};

/// Default name of the manifest topic.
pub const DEFAULT_MANIFEST_TOPIC: &str = "ldd.manifests";

/// Publishes a manifest (creating the one-partition manifest topic if needed).
pub async fn publish_manifest(brokers: &str, topic: &str, manifest: &Manifest) -> Result<()> {
    crate::config::validate_topic_name(topic)?;
    TopicAdmin::new(brokers)
        .ensure_topic(topic, Some(1), 1)
        .await?;
    let payload = serde_json::to_vec(manifest).map_err(|e| Error::Decode(e.to_string()))?;
    let (brokers, topic, key) = (
        brokers.to_owned(),
        topic.to_owned(),
        manifest.export_id.clone(),
    );
    blocking(move || {
        let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("message.max.bytes", "67108864")
            .create()
            .map_err(|e| Error::kafka("creating the manifest producer", e))?;
        producer
            .send(BaseRecord::to(&topic).key(&key).payload(&payload))
            .map_err(|(e, _)| Error::kafka("publishing the manifest", e))?;
        producer
            .flush(Duration::from_secs(30))
            .map_err(|e| Error::kafka("publishing the manifest", e))
    })
    .await
}

/// Finds the newest manifest of `export_id` in the manifest topic.
pub async fn fetch_manifest(brokers: &str, topic: &str, export_id: &str) -> Result<Manifest> {
    let (brokers, topic, export_id) = (brokers.to_owned(), topic.to_owned(), export_id.to_owned());
    blocking(move || {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .set("group.id", "ldd-manifest-reader")
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "true")
            .create()
            .map_err(|e| Error::kafka("creating the manifest reader", e))?;
        let (_, high) = consumer
            .fetch_watermarks(&topic, 0, Duration::from_secs(15))
            .map_err(|e| Error::kafka(format!("reading topic `{topic}`"), e))?;
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&topic, 0, Offset::Beginning)
            .map_err(|e| Error::kafka("building the assignment", e))?;
        consumer
            .assign(&tpl)
            .map_err(|e| Error::kafka("assigning the manifest topic", e))?;
        let mut found = None;
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            match consumer.poll(Duration::from_millis(200)) {
                Some(Ok(msg)) => {
                    if msg.key() == Some(export_id.as_bytes()) {
                        found = msg.payload().map(<[u8]>::to_vec);
                    }
                    if msg.offset() + 1 >= high {
                        break;
                    }
                }
                Some(Err(KafkaError::PartitionEOF(_))) => break,
                Some(Err(e)) => return Err(Error::kafka("reading the manifest topic", e)),
                None => {}
            }
        }
        let payload = found.ok_or_else(|| {
            Error::Decode(format!(
                "no manifest for export `{export_id}` in topic `{topic}`"
            ))
        })?;
        serde_json::from_slice(&payload)
            .map_err(|e| Error::Decode(format!("manifest of `{export_id}` is not valid: {e}")))
    })
    .await
}
