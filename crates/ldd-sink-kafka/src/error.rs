//! The error type of `ldd-sink-kafka`.

use rdkafka::error::{KafkaError, RDKafkaErrorCode};

/// `Result` with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong talking to Kafka or verifying a read-back.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is wrong; the message says what to fix.
    #[error("invalid Kafka configuration: {0}")]
    Config(String),
    /// A Kafka client call failed.
    #[error("{context}: {source}")]
    Kafka {
        /// What was being done.
        context: String,
        /// librdkafka's error.
        #[source]
        source: KafkaError,
    },
    /// The cluster refused the client's credentials (SASL or TLS).
    #[error(
        "{context}: authentication failed, the cluster refused the credentials: {reason} \
         (check security.protocol, sasl.* and ssl.* of the Kafka client properties)"
    )]
    Authentication {
        /// What was being done.
        context: String,
        /// librdkafka's account of the refusal.
        reason: String,
    },
    /// The topic does not exist and creating it was not asked for.
    #[error("topic `{0}` does not exist; create it first or ask ldd to create it (e.g. `--partitions N`)")]
    UnknownTopic(String),
    /// A blocking client call could not run.
    #[error("background task failed: {0}")]
    Task(String),
    /// Writing read-back output failed.
    #[error("writing output: {0}")]
    Output(#[from] std::io::Error),
    /// The Parquet output could not take the records (they do not fit its schema) or could
    /// not be written.
    #[error("Parquet output: {0}")]
    Parquet(String),
    /// A message or manifest could not be decoded.
    #[error("{0}")]
    Decode(String),
}

impl Error {
    pub(crate) fn kafka(context: impl Into<String>, source: KafkaError) -> Self {
        Error::Kafka {
            context: context.into(),
            source,
        }
    }

    /// Whether retrying the same operation may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Kafka {
                source: KafkaError::ClientCreation(_) | KafkaError::ClientConfig(..),
                ..
            } => false,
            Error::Kafka { source, .. } => !matches!(
                source.rdkafka_error_code(),
                Some(
                    RDKafkaErrorCode::InvalidConfig
                        | RDKafkaErrorCode::UnknownTopicOrPartition
                        | RDKafkaErrorCode::TopicAuthorizationFailed
                        | RDKafkaErrorCode::ClusterAuthorizationFailed
                        | RDKafkaErrorCode::MessageSizeTooLarge
                        | RDKafkaErrorCode::InvalidTransactionalState
                        | RDKafkaErrorCode::Fatal
                )
            ),
            Error::Task(_) => true,
            Error::Config(_)
            | Error::Authentication { .. }
            | Error::UnknownTopic(_)
            | Error::Output(_)
            | Error::Parquet(_)
            | Error::Decode(_) => false,
        }
    }
}

impl From<Error> for ldd_core::Error {
    fn from(err: Error) -> Self {
        match err {
            Error::Config(msg) => ldd_core::Error::InvalidInput(msg),
            Error::UnknownTopic(_) => ldd_core::Error::InvalidInput(err.to_string()),
            other => ldd_core::Error::sink_msg(other.to_string(), other.is_retryable()),
        }
    }
}
