//! An in-process Kafka cluster (librdkafka's mock cluster) for hermetic tests and the demo.
//!
//! It is not Kafka: it keeps only the newest few megabytes of each partition and silently
//! drops older data, so size what you write into it; [`read_back`](crate::readback::read_back)
//! detects such truncation from the low watermark and reports it.

use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;

use crate::error::{Error, Result};

/// A running in-process cluster; it stops when dropped.
pub struct EmbeddedCluster {
    cluster: MockCluster<'static, DefaultProducerContext>,
}

impl std::fmt::Debug for EmbeddedCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedCluster")
            .field("bootstrap", &self.cluster.bootstrap_servers())
            .finish()
    }
}

impl EmbeddedCluster {
    /// Starts a cluster of `brokers` brokers.
    pub fn start(brokers: i32) -> Result<Self> {
        let cluster = MockCluster::new(brokers)
            .map_err(|e| Error::kafka("starting the embedded cluster", e))?;
        Ok(EmbeddedCluster { cluster })
    }

    /// Bootstrap servers to connect to.
    pub fn bootstrap_servers(&self) -> String {
        self.cluster.bootstrap_servers()
    }

    /// Creates a topic.
    pub fn create_topic(&self, topic: &str, partitions: i32, replication: i32) -> Result<()> {
        self.cluster
            .create_topic(topic, partitions, replication)
            .map_err(|e| Error::kafka(format!("creating topic `{topic}`"), e))
    }
}
