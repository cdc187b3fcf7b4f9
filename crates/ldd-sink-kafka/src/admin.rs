//! Topic administration: partition counts, creation, deletion, watermarks.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::ClientConfig;

use crate::client::{consumer_failure, ClientErrors, KafkaClient};
use crate::error::{Error, Result};

/// Talks to the cluster about topics. Cheap to create; holds no connection.
#[derive(Debug, Clone)]
pub struct TopicAdmin {
    client: KafkaClient,
    timeout: Duration,
}

impl TopicAdmin {
    /// An admin for the cluster `client` names (a broker string is a client without
    /// properties).
    pub fn new(client: impl Into<KafkaClient>) -> Self {
        TopicAdmin {
            client: client.into(),
            timeout: Duration::from_secs(15),
        }
    }

    fn client_config(&self) -> ClientConfig {
        self.client.admin_config()
    }

    /// The topic's partition count, or `None` when it does not exist.
    pub async fn partition_count(&self, topic: &str) -> Result<Option<u32>> {
        let cfg = self.client_config();
        let (topic, timeout) = (topic.to_owned(), self.timeout);
        blocking(move || {
            let consumer: BaseConsumer<ClientErrors> = cfg
                .create_with_context(ClientErrors::default())
                .map_err(|e| Error::kafka("creating a metadata client", e))?;
            let metadata = consumer
                .fetch_metadata(Some(&topic), timeout)
                .map_err(|e| {
                    consumer_failure(&consumer, format!("reading metadata of topic `{topic}`"), e)
                })?;
            let Some(t) = metadata.topics().iter().find(|t| t.name() == topic) else {
                return Ok(None);
            };
            match t.error() {
                None if !t.partitions().is_empty() => Ok(Some(t.partitions().len() as u32)),
                None => Ok(None),
                Some(code)
                    if RDKafkaErrorCode::from(code)
                        == RDKafkaErrorCode::UnknownTopicOrPartition =>
                {
                    Ok(None)
                }
                Some(code) => Err(Error::kafka(
                    format!("reading metadata of topic `{topic}`"),
                    rdkafka::error::KafkaError::MetadataFetch(code.into()),
                )),
            }
        })
        .await
    }

    /// Creates the topic; an existing topic is fine.
    pub async fn create_topic(&self, topic: &str, partitions: u32, replication: u16) -> Result<()> {
        let admin: AdminClient<DefaultClientContext> = self
            .client_config()
            .create()
            .map_err(|e| Error::kafka("creating an admin client", e))?;
        let new = NewTopic::new(
            topic,
            partitions as i32,
            TopicReplication::Fixed(i32::from(replication)),
        );
        let opts = AdminOptions::new().operation_timeout(Some(self.timeout));
        let results = admin
            .create_topics([&new], &opts)
            .await
            .map_err(|e| Error::kafka(format!("creating topic `{topic}`"), e))?;
        for result in results {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((name, code)) => {
                    return Err(Error::kafka(
                        format!("creating topic `{name}`"),
                        rdkafka::error::KafkaError::AdminOp(code),
                    ))
                }
            }
        }
        Ok(())
    }

    /// Makes sure the topic exists (creating it with `create` partitions when given) and
    /// returns its partition count.
    pub async fn ensure_topic(
        &self,
        topic: &str,
        create: Option<u32>,
        replication: u16,
    ) -> Result<u32> {
        if let Some(n) = self.partition_count(topic).await? {
            return Ok(n);
        }
        let Some(partitions) = create else {
            return Err(Error::UnknownTopic(topic.to_owned()));
        };
        self.create_topic(topic, partitions, replication).await?;
        // Metadata can lag creation briefly; poll until the topic is visible.
        for _ in 0..50 {
            if let Some(n) = self.partition_count(topic).await? {
                return Ok(n);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(Error::Task(format!(
            "topic `{topic}` was created but does not show in metadata"
        )))
    }

    /// Deletes the topic (tests clean up with this).
    pub async fn delete_topic(&self, topic: &str) -> Result<()> {
        let admin: AdminClient<DefaultClientContext> = self
            .client_config()
            .create()
            .map_err(|e| Error::kafka("creating an admin client", e))?;
        let opts = AdminOptions::new().operation_timeout(Some(self.timeout));
        let results = admin
            .delete_topics(&[topic], &opts)
            .await
            .map_err(|e| Error::kafka(format!("deleting topic `{topic}`"), e))?;
        for result in results {
            if let Err((name, code)) = result {
                if code != RDKafkaErrorCode::UnknownTopicOrPartition {
                    return Err(Error::kafka(
                        format!("deleting topic `{name}`"),
                        rdkafka::error::KafkaError::AdminOp(code),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Runs a blocking client call off the async workers.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Task(e.to_string()))?
}
