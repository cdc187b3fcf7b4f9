//! Shared helpers of the Kafka integration tests: brokers (embedded or real) and random
//! topic names.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

pub mod plain_reader;

use ldd_sink_kafka::{EmbeddedCluster, TopicAdmin};

/// Env var naming the real broker for the tests that need one.
pub const KAFKA_ENV: &str = "LDD_TEST_KAFKA_BROKERS";

/// A broker to test against; an embedded cluster stops when this is dropped.
pub struct Broker {
    pub brokers: String,
    pub real: bool,
    _embedded: Option<EmbeddedCluster>,
}

impl Broker {
    pub fn embedded() -> Self {
        let cluster = EmbeddedCluster::start(1).expect("embedded cluster starts");
        Broker {
            brokers: cluster.bootstrap_servers(),
            real: false,
            _embedded: Some(cluster),
        }
    }

    /// The real broker from the environment. Fails loudly when it is not configured:
    /// these tests are opt-in (`--include-ignored`) and must never pass without a broker.
    pub fn real() -> Self {
        let brokers = std::env::var(KAFKA_ENV).unwrap_or_else(|_| {
            panic!("{KAFKA_ENV} is not set: start the services with scripts/services.sh start and export its env (scripts/test.sh does both)")
        });
        Broker {
            brokers,
            real: true,
            _embedded: None,
        }
    }

    /// Creates the topic on the embedded cluster, whose admin API cannot create topics;
    /// on a real broker the sink creates it (exercising that path).
    pub fn prepare(&self, topic: &str, partitions: u32) {
        if let Some(cluster) = &self._embedded {
            // Several exports of one test may share a topic; an existing topic is fine.
            let _ = cluster.create_topic(topic, partitions as i32, 1);
        }
    }

    /// Deletes a topic (real brokers only; the embedded one vanishes anyway).
    pub async fn cleanup(&self, topic: &str) {
        if self.real {
            TopicAdmin::new(self.brokers.clone())
                .delete_topic(topic)
                .await
                .expect("test topic deleted");
        }
    }
}

/// A fresh topic name, so tests never share topics.
pub fn random_topic(prefix: &str) -> String {
    format!("ldd-test-{prefix}-{}", uuid::Uuid::new_v4().simple())
}
