//! Sink configuration: validated without I/O, then turned into a librdkafka config by
//! [`KafkaSinkConfig::producer_config`].

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use rdkafka::ClientConfig;
use serde::{Deserialize, Serialize};

pub use crate::client::is_secret_property;
use crate::client::{check_passthrough, redacted, KafkaClient};
use crate::error::{Error, Result};
pub use ldd_core::Delivery;

/// Payload compression of produced batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// No compression.
    None,
    /// LZ4 (fast; the default).
    #[default]
    Lz4,
    /// Zstandard (smaller, slower).
    Zstd,
}

impl Compression {
    /// librdkafka's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Compression {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "none" => Ok(Compression::None),
            "lz4" => Ok(Compression::Lz4),
            "zstd" => Ok(Compression::Zstd),
            other => Err(Error::Config(format!(
                "unknown compression `{other}`; use lz4, zstd or none"
            ))),
        }
    }
}

/// Which key each message carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum MessageKey {
    /// The chunk id as decimal text (the default).
    #[default]
    ChunkId,
    /// No key.
    None,
}

/// How the Kafka sink produces. `Debug` hides values that look like secrets.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaSinkConfig {
    /// The cluster and its client settings (security included), used by every client the
    /// sink starts: producers, admin, visibility probe.
    pub client: KafkaClient,
    /// Destination topic.
    pub topic: String,
    /// Create the topic with this many partitions when it does not exist.
    pub create_partitions: Option<u32>,
    /// Replication factor for a created topic.
    pub replication_factor: u16,
    /// Compression of produced batches.
    pub compression: Compression,
    /// The guarantee: `exactly-once` (the default) writes each chunk as one transaction, so
    /// `read_committed` readers of the manifest's ranges see exactly the dataset;
    /// `at-least-once` writes without transactions (failed attempts' messages stay inside
    /// the ranges; readers must skip attempts the manifest does not name).
    pub delivery: Delivery,
    /// Prefix of transactional ids, `<prefix>-<export id>-<slot>`; defaults to `ldd`. The
    /// ids are the same in every run of one export, so a resumed run fences the writers an
    /// interrupted run left.
    pub transactional_id_prefix: Option<String>,
    /// How long a transaction may stay open before the broker aborts it. This bounds how
    /// long `read_committed` readers of a partition wait behind the open transaction of an
    /// export that was killed and never resumed. At most the broker's
    /// `transaction.max.timeout.ms` (15 min by default).
    #[serde(with = "millis")]
    pub transaction_timeout: Duration,
    /// Message key.
    pub key: MessageKey,
    /// `linger.ms`: how long the producer waits to fill a batch.
    pub linger_ms: u32,
    /// `batch.size` in bytes.
    pub batch_size: u32,
    /// Most payload bytes in flight (queued or awaiting acknowledgement) per sink.
    pub max_in_flight_bytes: usize,
    /// How long a message may take to be delivered before its chunk fails.
    #[serde(with = "millis")]
    pub delivery_timeout: Duration,
    /// Any other librdkafka property of the producer only, passed through as is (wins over
    /// the above). Connection settings (`security.protocol`, `sasl.*`, `ssl.*`) belong in
    /// [`KafkaClient::properties`], so that every client gets them; they are refused here.
    pub librdkafka: BTreeMap<String, String>,
}

impl Default for KafkaSinkConfig {
    fn default() -> Self {
        KafkaSinkConfig {
            client: KafkaClient::default(),
            topic: String::new(),
            create_partitions: None,
            replication_factor: 1,
            compression: Compression::Lz4,
            delivery: Delivery::ExactlyOnce,
            transactional_id_prefix: None,
            transaction_timeout: Duration::from_secs(60),
            key: MessageKey::ChunkId,
            linger_ms: 20,
            batch_size: 1024 * 1024,
            max_in_flight_bytes: 64 * 1024 * 1024,
            delivery_timeout: Duration::from_secs(120),
            librdkafka: BTreeMap::new(),
        }
    }
}

impl fmt::Debug for KafkaSinkConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaSinkConfig")
            .field("client", &self.client)
            .field("topic", &self.topic)
            .field("create_partitions", &self.create_partitions)
            .field("compression", &self.compression)
            .field("delivery", &self.delivery)
            .field("transaction_timeout", &self.transaction_timeout)
            .field("linger_ms", &self.linger_ms)
            .field("batch_size", &self.batch_size)
            .field("librdkafka", &redacted(&self.librdkafka))
            .finish_non_exhaustive()
    }
}

/// Properties ldd sets itself; passing them through would break its guarantees.
const RESERVED: &[&str] = &[
    "enable.idempotence",
    "transactional.id",
    "bootstrap.servers",
];

impl KafkaSinkConfig {
    /// Checks the configuration without I/O; the message says what to fix.
    pub fn validate(&self) -> Result<()> {
        self.client.validate()?;
        validate_topic_name(&self.topic)?;
        if self.create_partitions == Some(0) {
            return Err(Error::Config(
                "a created topic needs at least 1 partition".into(),
            ));
        }
        if self.max_in_flight_bytes < 1024 * 1024 {
            return Err(Error::Config(
                "max_in_flight_bytes must be at least 1 MiB".into(),
            ));
        }
        if self.delivery_timeout < Duration::from_secs(1) {
            return Err(Error::Config(
                "delivery_timeout must be at least 1 s".into(),
            ));
        }
        if !(Duration::from_secs(1)..=Duration::from_secs(15 * 60))
            .contains(&self.transaction_timeout)
        {
            return Err(Error::Config(format!(
                "transaction_timeout {} ms is outside 1 s..15 min (the broker's default \
                 transaction.max.timeout.ms)",
                self.transaction_timeout.as_millis()
            )));
        }
        if let Some(prefix) = &self.transactional_id_prefix {
            if prefix.is_empty()
                || prefix.len() > 64
                || !prefix.chars().all(|c| c.is_ascii_graphic())
            {
                return Err(Error::Config(
                    "transactional_id_prefix must be 1-64 printable ASCII characters".into(),
                ));
            }
        }
        for key in self.librdkafka.keys() {
            if RESERVED.contains(&key.as_str()) {
                return Err(Error::Config(format!(
                    "librdkafka option `{key}` is managed by ldd; use the dedicated setting"
                )));
            }
        }
        check_passthrough("producer", &self.librdkafka)?;
        if let Some(acks) = self.librdkafka.get("acks") {
            if acks != "all" && acks != "-1" {
                return Err(Error::Config(format!(
                    "acks={acks} contradicts idempotence, which needs acks=all; remove it"
                )));
            }
        }
        Ok(())
    }

    /// The sink's librdkafka producer configuration (validate first), built on
    /// [`KafkaClient`]'s properties; `transactional_id` makes it a transactional producer.
    pub fn producer_config(&self, transactional_id: Option<&str>) -> ClientConfig {
        let mut settings = vec![
            ("enable.idempotence", "true".to_owned()),
            ("acks", "all".to_owned()),
            ("compression.type", self.compression.as_str().to_owned()),
            ("linger.ms", self.linger_ms.to_string()),
            ("batch.size", self.batch_size.to_string()),
            // The byte budget, not librdkafka's queue, is the backpressure; keep the queue
            // large enough that it never refuses a message the budget admitted.
            ("queue.buffering.max.messages", "2000000".to_owned()),
            (
                "queue.buffering.max.kbytes",
                (self.max_in_flight_bytes / 1024 * 2).to_string(),
            ),
            (
                "message.max.bytes",
                (16 * 1024 * 1024 + 64 * 1024).to_string(),
            ),
            (
                "delivery.timeout.ms",
                self.message_timeout(transactional_id.is_some())
                    .as_millis()
                    .to_string(),
            ),
            // A missing topic must be an error, not silently created with broker defaults.
            ("allow.auto.create.topics", "false".to_owned()),
        ];
        if let Some(id) = transactional_id {
            settings.push(("transactional.id", id.to_owned()));
            settings.push((
                "transaction.timeout.ms",
                self.transaction_timeout.as_millis().to_string(),
            ));
        }
        self.client.build(settings, Some(&self.librdkafka))
    }

    /// How long one message may take to be delivered: librdkafka requires it not to exceed
    /// the transaction timeout of a transactional producer.
    pub fn message_timeout(&self, transactional: bool) -> Duration {
        if transactional {
            self.delivery_timeout.min(self.transaction_timeout)
        } else {
            self.delivery_timeout
        }
    }

    /// The transactional id of writer slot `slot` of export `export_id`: the same in every
    /// run of the export, so that a new run's producer fences the old one's.
    pub fn transactional_id(&self, export_id: &str, slot: usize) -> String {
        let prefix = self.transactional_id_prefix.as_deref().unwrap_or("ldd");
        format!("{prefix}-{export_id}-{slot}")
    }
}

/// Kafka's topic name rule: 1-249 characters of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn validate_topic_name(topic: &str) -> Result<()> {
    if topic.is_empty() {
        return Err(Error::Config(
            "no topic given; name the destination topic".into(),
        ));
    }
    if topic.len() > 249
        || topic == "."
        || topic == ".."
        || !topic
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return Err(Error::Config(format!(
            "topic `{}` is not a valid Kafka topic name (1-249 of a-z A-Z 0-9 . _ -)",
            topic.escape_debug()
        )));
    }
    Ok(())
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> KafkaSinkConfig {
        KafkaSinkConfig {
            topic: "t".into(),
            ..Default::default()
        }
    }

    #[test]
    fn defaults_are_idempotent_lz4_acks_all() {
        let cfg = config();
        cfg.validate().unwrap();
        let rd = cfg.producer_config(None);
        assert_eq!(rd.get("enable.idempotence"), Some("true"));
        assert_eq!(rd.get("acks"), Some("all"));
        assert_eq!(rd.get("compression.type"), Some("lz4"));
        assert_eq!(rd.get("transactional.id"), None);
        assert_eq!(
            cfg.producer_config(Some("x-1")).get("transactional.id"),
            Some("x-1")
        );
    }

    #[test]
    fn contradictions_and_bad_names_say_how_to_fix() {
        let mut cfg = config();
        cfg.librdkafka.insert("acks".into(), "1".into());
        assert!(cfg.validate().unwrap_err().to_string().contains("acks=all"));
        let mut cfg = config();
        cfg.librdkafka
            .insert("enable.idempotence".into(), "false".into());
        assert!(cfg
            .validate()
            .unwrap_err()
            .to_string()
            .contains("managed by ldd"));
        for bad in ["", "a b", "..", "x\"y", &"a".repeat(250)] {
            assert!(validate_topic_name(bad).is_err(), "{bad}");
        }
        validate_topic_name("ok.topic_name-1").unwrap();
        assert!("gzip".parse::<Compression>().is_err());
    }

    #[test]
    fn debug_hides_secrets() {
        let mut cfg = config();
        cfg.librdkafka
            .insert("sasl.password".into(), "hunter2".into());
        cfg.librdkafka.insert("linger.ms".into(), "5".into());
        let shown = format!("{cfg:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("\"linger.ms\": \"5\""), "{shown}");
    }

    #[test]
    fn passthrough_wins() {
        let mut cfg = config();
        cfg.librdkafka.insert("linger.ms".into(), "5".into());
        assert_eq!(cfg.producer_config(None).get("linger.ms"), Some("5"));
    }
}
