//! [`KafkaClient`]: the one owner of the settings every Kafka client of ldd needs (where
//! the cluster is, how to authenticate, any other client property), and the one place each
//! librdkafka configuration is built from them.
//!
//! Every client ldd starts (the sink's producers, the admin and metadata clients, the
//! visibility probe, the manifest topic's producer and readers, the feed tailer and the
//! read-back consumers) is configured by one of the `*_config` functions here, so a SASL or
//! TLS setting given once reaches all of them: a cluster that needs credentials cannot
//! accept the export and then refuse its manifest.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::ClientConfig;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Where a Kafka cluster is and how to talk to it: bootstrap servers and librdkafka client
/// properties (`security.protocol`, `sasl.*`, `ssl.*`, `client.id`, `debug`, ...), given to
/// every client ldd creates. `Debug` hides values that look like secrets.
///
/// What a client does (idempotence, isolation, fetch sizes) is ldd's setting of that client
/// and wins over these properties; tune one client through its own passthrough
/// ([`KafkaSinkConfig::librdkafka`], [`ReadBackConfig::librdkafka`]).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaClient {
    /// Bootstrap servers, `host:port[,host:port...]`.
    pub brokers: String,
    /// librdkafka properties of every client of this cluster (security included).
    pub properties: BTreeMap<String, String>,
}

impl Default for KafkaClient {
    fn default() -> Self {
        KafkaClient::new("127.0.0.1:9092")
    }
}

impl From<String> for KafkaClient {
    fn from(brokers: String) -> Self {
        KafkaClient::new(brokers)
    }
}

impl From<&str> for KafkaClient {
    fn from(brokers: &str) -> Self {
        KafkaClient::new(brokers)
    }
}

impl From<&String> for KafkaClient {
    fn from(brokers: &String) -> Self {
        KafkaClient::new(brokers.as_str())
    }
}

impl fmt::Debug for KafkaClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaClient")
            .field("brokers", &self.brokers)
            .field("properties", &redacted(&self.properties))
            .finish()
    }
}

/// Whether a librdkafka property holds a secret (passwords, keys, JAAS configs, tokens).
pub fn is_secret_property(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["password", "secret", "jaas", "token", "key.pem", "private"]
        .iter()
        .any(|needle| key.contains(needle))
}

/// `properties` with the values of secret ones replaced by `***`, for logs and `Debug`.
pub fn redacted(properties: &BTreeMap<String, String>) -> BTreeMap<&str, &str> {
    properties
        .iter()
        .map(|(k, v)| {
            let shown = if is_secret_property(k) {
                "***"
            } else {
                v.as_str()
            };
            (k.as_str(), shown)
        })
        .collect()
}

/// Properties ldd sets on every client itself: passing them as client properties would
/// break a guarantee (idempotence, transactions) or hide where the cluster is.
const RESERVED: &[&str] = &[
    "bootstrap.servers",
    "metadata.broker.list",
    "enable.idempotence",
    "transactional.id",
    "isolation.level",
    "group.id",
];

/// Whether `key` is a connection setting, which belongs to the [`KafkaClient`] (every
/// client needs it) rather than to one client's passthrough.
fn is_connection_property(key: &str) -> bool {
    key == "security.protocol" || key.starts_with("sasl.") || key.starts_with("ssl.")
}

/// Rejects connection settings in one client's passthrough (`what` names it): given there,
/// that client would authenticate and the others (admin, manifest topic) would not.
pub(crate) fn check_passthrough(what: &str, properties: &BTreeMap<String, String>) -> Result<()> {
    match properties.keys().find(|k| is_connection_property(k)) {
        Some(key) => Err(Error::Config(format!(
            "`{key}` in the {what} properties would reach only that client; give it as a \
             Kafka client property (`--kafka-property {key}=...`) so every client uses it"
        ))),
        None => Ok(()),
    }
}

impl KafkaClient {
    /// A client of the cluster at `brokers`, without extra properties.
    pub fn new(brokers: impl Into<String>) -> Self {
        KafkaClient {
            brokers: brokers.into(),
            properties: BTreeMap::new(),
        }
    }

    /// Adds (or replaces) one client property.
    pub fn with_property(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.properties.insert(key.into(), value.into());
        self
    }

    /// Adds (or replaces) client properties.
    pub fn with_properties<K: Into<String>, V: Into<String>>(
        mut self,
        properties: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        self.properties
            .extend(properties.into_iter().map(|(k, v)| (k.into(), v.into())));
        self
    }

    /// Checks the settings without I/O; the message says what to fix.
    pub fn validate(&self) -> Result<()> {
        if self.brokers.trim().is_empty() {
            return Err(Error::Config(
                "no brokers given; set brokers to host:port[,host:port]".into(),
            ));
        }
        for key in self.properties.keys() {
            if RESERVED.contains(&key.as_str()) {
                return Err(Error::Config(format!(
                    "librdkafka option `{key}` is managed by ldd; use the dedicated setting"
                )));
            }
        }
        Ok(())
    }

    /// The base of every configuration: the brokers, the client properties, then ldd's
    /// `settings` for the client's role, then the role's `passthrough` (which wins). The
    /// only place a librdkafka configuration is created.
    pub(crate) fn build<'a>(
        &self,
        settings: impl IntoIterator<Item = (&'a str, String)>,
        passthrough: Option<&BTreeMap<String, String>>,
    ) -> ClientConfig {
        let mut cfg = ClientConfig::new();
        cfg.set("bootstrap.servers", &self.brokers);
        for (k, v) in &self.properties {
            cfg.set(k, v);
        }
        for (k, v) in settings {
            cfg.set(k, v);
        }
        for (k, v) in passthrough.into_iter().flatten() {
            cfg.set(k, v);
        }
        cfg
    }

    /// A plain client of this cluster: brokers and client properties only, for callers
    /// that configure the rest themselves (a plain reader, a benchmark's baseline).
    pub fn plain_config(&self) -> ClientConfig {
        self.build([], None)
    }

    /// The admin and metadata clients' configuration (topic creation, deletion,
    /// partition counts, watermarks).
    pub fn admin_config(&self) -> ClientConfig {
        self.build([], None)
    }

    /// The configuration of the consumer that checks, on resume, whether an interrupted
    /// run's chunk became visible (`read_committed`, assign only).
    pub fn probe_config(&self) -> ClientConfig {
        self.build(
            [
                ("group.id", "ldd-visibility-probe".to_owned()),
                ("enable.auto.commit", "false".to_owned()),
                ("enable.auto.offset.store", "false".to_owned()),
                ("isolation.level", "read_committed".to_owned()),
                ("auto.offset.reset", "latest".to_owned()),
            ],
            None,
        )
    }

    /// The manifest topic's producer configuration (idempotent, `acks=all`; manifests of
    /// large exports are large messages).
    pub fn manifest_producer_config(&self) -> ClientConfig {
        self.build(
            [
                ("enable.idempotence", "true".to_owned()),
                ("acks", "all".to_owned()),
                ("linger.ms", "5".to_owned()),
                ("message.max.bytes", "67108864".to_owned()),
            ],
            None,
        )
    }

    /// The configuration of a distributed worker's consumer of its group's tasks topic:
    /// `read_committed` (tasks are published in a transaction), offsets committed only
    /// inside chunk transactions, cooperative rebalancing so that a joining worker takes
    /// partitions without stopping the others.
    pub fn task_consumer_config(
        &self,
        group: &str,
        worker_id: &str,
        session_timeout: std::time::Duration,
    ) -> ClientConfig {
        let session_ms = session_timeout.as_millis().max(6_000);
        self.build(
            [
                ("group.id", group.to_owned()),
                ("client.id", format!("ldd-worker-{worker_id}")),
                ("enable.auto.commit", "false".to_owned()),
                ("enable.auto.offset.store", "false".to_owned()),
                ("isolation.level", "read_committed".to_owned()),
                ("auto.offset.reset", "earliest".to_owned()),
                (
                    "partition.assignment.strategy",
                    "cooperative-sticky".to_owned(),
                ),
                ("session.timeout.ms", session_ms.to_string()),
                ("heartbeat.interval.ms", (session_ms / 5).to_string()),
            ],
            None,
        )
    }

    /// The configuration of a distributed export's coordinator producer: it publishes the
    /// plan and the tasks in one transaction, as `transactional_id`.
    pub fn coordinator_producer_config(&self, transactional_id: &str) -> ClientConfig {
        self.build(
            [
                ("enable.idempotence", "true".to_owned()),
                ("acks", "all".to_owned()),
                ("linger.ms", "5".to_owned()),
                ("transactional.id", transactional_id.to_owned()),
                ("transaction.timeout.ms", "60000".to_owned()),
            ],
            None,
        )
    }

    /// The configuration of a coordinator's reader of its group's results topic
    /// (`read_committed`, assign only, reporting the partition's end).
    pub fn results_reader_config(&self) -> ClientConfig {
        self.build(
            [
                ("group.id", "ldd-results-reader".to_owned()),
                ("enable.auto.commit", "false".to_owned()),
                ("enable.partition.eof", "true".to_owned()),
                ("isolation.level", "read_committed".to_owned()),
            ],
            None,
        )
    }

    /// The configuration of the manifest topic's readers: the manifest lookup and the feed
    /// tailer (assign only, reporting the partition's end).
    pub fn manifest_reader_config(&self) -> ClientConfig {
        self.build(
            [
                ("group.id", "ldd-manifest-reader".to_owned()),
                ("enable.auto.commit", "false".to_owned()),
                ("enable.partition.eof", "true".to_owned()),
            ],
            None,
        )
    }
}

/// A client context that remembers why the cluster refused the client's credentials.
///
/// librdkafka reports a refused login only to the error callback and keeps retrying; the
/// call that then times out says "broker transport failure" or "all brokers down". Clients
/// that make the first call of a command (the metadata and manifest-topic readers) use this
/// context, so that the error names the cause instead.
#[derive(Default)]
pub(crate) struct ClientErrors {
    authentication: Mutex<Option<String>>,
}

impl ClientErrors {
    /// `Error::Authentication` when the cluster refused the credentials, else the error.
    pub(crate) fn error(&self, context: impl Into<String>, source: KafkaError) -> Error {
        let refused = self
            .authentication
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        match refused {
            Some(reason) => Error::Authentication {
                context: context.into(),
                reason,
            },
            None => Error::kafka(context, source),
        }
    }
}

/// The error of a failed call of `consumer`: [`ClientErrors::error`], after serving the
/// client's pending events (librdkafka hands errors to the context only while the client is
/// polled). The caller is failing anyway, so a message this poll might return is dropped.
pub(crate) fn consumer_failure(
    consumer: &BaseConsumer<ClientErrors>,
    context: impl Into<String>,
    source: KafkaError,
) -> Error {
    let _ = consumer.poll(Duration::from_millis(100));
    consumer.context().error(context, source)
}

impl ClientContext for ClientErrors {
    fn error(&self, error: KafkaError, reason: &str) {
        let refused = error.rdkafka_error_code() == Some(RDKafkaErrorCode::Authentication)
            || reason.contains("SASL authentication")
            || reason.contains("SSL handshake failed");
        if refused {
            *self
                .authentication
                .lock()
                .unwrap_or_else(|p| p.into_inner()) = Some(reason.to_owned());
            tracing::warn!("librdkafka: {error}: {reason}");
        } else {
            // Transient broker errors (a connection closing at shutdown, a broker
            // restarting) are retried by librdkafka; the calls that fail report them.
            tracing::debug!("librdkafka: {error}: {reason}");
        }
    }
}

impl ConsumerContext for ClientErrors {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::KafkaSinkConfig;
    use crate::readback::ReadBackConfig;

    fn sasl() -> KafkaClient {
        KafkaClient::new("b:1")
            .with_property("security.protocol", "SASL_PLAINTEXT")
            .with_property("sasl.mechanism", "PLAIN")
            .with_property("sasl.username", "ldd")
            .with_property("sasl.password", "hunter2")
    }

    #[test]
    fn every_config_carries_the_security_settings() {
        let client = sasl();
        let sink = KafkaSinkConfig {
            client: client.clone(),
            topic: "t".into(),
            ..Default::default()
        };
        let readback = ReadBackConfig::new(client.clone());
        for cfg in [
            client.plain_config(),
            client.admin_config(),
            sink.producer_config(Some("x")),
            client.probe_config(),
            client.manifest_producer_config(),
            client.manifest_reader_config(),
            readback.consumer_config("e"),
        ] {
            assert_eq!(cfg.get("bootstrap.servers"), Some("b:1"));
            assert_eq!(cfg.get("security.protocol"), Some("SASL_PLAINTEXT"));
            assert_eq!(cfg.get("sasl.password"), Some("hunter2"));
        }
    }

    #[test]
    fn debug_hides_secrets() {
        let shown = format!("{:?}", sasl().with_property("ssl.key.password", "k3y"));
        assert!(
            !shown.contains("hunter2") && !shown.contains("k3y"),
            "{shown}"
        );
        assert!(shown.contains("\"sasl.username\": \"ldd\""), "{shown}");
        for key in [
            "sasl.password",
            "ssl.key.password",
            "ssl.keystore.password",
            "sasl.oauthbearer.client.secret",
            "some.token",
        ] {
            assert!(is_secret_property(key), "{key}");
        }
        assert!(!is_secret_property("sasl.username"));
    }

    #[test]
    fn ldd_settings_win_over_client_properties_and_reserved_ones_are_refused() {
        let client = KafkaClient::new("b:1").with_property("enable.partition.eof", "false");
        assert_eq!(
            client.manifest_reader_config().get("enable.partition.eof"),
            Some("true")
        );
        client.validate().unwrap();
        for key in ["bootstrap.servers", "enable.idempotence", "isolation.level"] {
            let err = KafkaClient::new("b:1")
                .with_property(key, "x")
                .validate()
                .unwrap_err();
            assert!(err.to_string().contains("managed by ldd"), "{err}");
        }
        assert!(KafkaClient::new(" ").validate().is_err());
    }

    #[test]
    fn connection_settings_in_a_passthrough_are_refused() {
        let mut props = BTreeMap::new();
        props.insert("linger.ms".to_owned(), "5".to_owned());
        check_passthrough("producer", &props).unwrap();
        props.insert("sasl.password".to_owned(), "x".to_owned());
        let err = check_passthrough("producer", &props).unwrap_err();
        assert!(err.to_string().contains("--kafka-property"), "{err}");
    }

    #[test]
    fn serde_round_trip() {
        let text = r#"{"brokers":"b:1","properties":{"sasl.username":"u"}}"#;
        let client: KafkaClient = serde_json::from_str(text).unwrap();
        assert_eq!(
            client.properties.get("sasl.username").map(String::as_str),
            Some("u")
        );
        assert_eq!(serde_json::to_string(&client).unwrap(), text);
    }
}
