//! The error type of `ldd-core`.

use std::fmt;

/// A boxed error from a plug-in (source or sink backend), kept with its cause chain.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// `Result` with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in planning, encoding or running an export.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request itself is wrong; the message says what to fix.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The data source failed (query, connection, decoding).
    #[error("source error: {message}")]
    Source {
        /// What was being done.
        message: String,
        /// Whether running the same step again may succeed.
        retryable: bool,
        /// The backend's error.
        #[source]
        cause: Option<BoxError>,
    },
    /// The sink failed (broker, delivery, transaction).
    #[error("sink error: {message}")]
    Sink {
        /// What was being done.
        message: String,
        /// Whether running the same step again may succeed.
        retryable: bool,
        /// The backend's error.
        #[source]
        cause: Option<BoxError>,
    },
    /// A payload could not be encoded or decoded.
    #[error("format error: {0}")]
    Format(String),
    /// The export's checkpoint could not be read or written; the export stops, since a
    /// resume could not know what was committed.
    #[error("checkpoint error: {0}")]
    Checkpoint(String),
    /// The export was cancelled before it finished.
    #[error("export cancelled")]
    Cancelled,
    /// Some chunks failed after all their attempts; the others were committed.
    #[error("{} of {total} chunks failed: {}", failures.len(), summarize(failures))]
    ChunksFailed {
        /// Number of chunks in the plan.
        total: usize,
        /// Each failed chunk and its last error.
        failures: Vec<ChunkFailure>,
    },
}

/// One chunk that could not be delivered.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChunkFailure {
    /// The chunk's id in the plan.
    pub chunk_id: u32,
    /// How many attempts were made.
    pub attempts: u32,
    /// The last error, as text.
    pub error: String,
    /// Which side the last error came from.
    #[serde(default = "default_failure_cause")]
    pub cause: FailureCause,
}

fn default_failure_cause() -> FailureCause {
    FailureCause::Sink
}

/// Which side an export failure came from: what a server reports (`error_cause`), counts
/// (metrics) and maps to a status code, decided once from the [`Error`] variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum FailureCause {
    /// The request is wrong (dataset, options, destination): the caller must fix it.
    Input,
    /// The database failed (connection, query, decoding its answer).
    Source,
    /// The destination failed (broker, delivery, transaction). Earlier versions of the
    /// server wrote `kafka`.
    #[serde(alias = "kafka")]
    Sink,
    /// ldd itself failed (checkpoint store, an aborted task).
    Internal,
}

impl FailureCause {
    /// The name on the wire and in metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureCause::Input => "input",
            FailureCause::Source => "source",
            FailureCause::Sink => "sink",
            FailureCause::Internal => "internal",
        }
    }
}

impl fmt::Display for FailureCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for ChunkFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "chunk {} after {} attempt(s): {}",
            self.chunk_id, self.attempts, self.error
        )
    }
}

fn summarize(failures: &[ChunkFailure]) -> String {
    const SHOWN: usize = 3;
    let mut text = failures
        .iter()
        .take(SHOWN)
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ");
    if failures.len() > SHOWN {
        text.push_str(&format!("; and {} more", failures.len() - SHOWN));
    }
    text
}

impl Error {
    /// A source failure with its cause.
    pub fn source(message: impl Into<String>, retryable: bool, cause: impl Into<BoxError>) -> Self {
        Error::Source {
            message: message.into(),
            retryable,
            cause: Some(cause.into()),
        }
    }

    /// A sink failure with its cause.
    pub fn sink(message: impl Into<String>, retryable: bool, cause: impl Into<BoxError>) -> Self {
        Error::Sink {
            message: message.into(),
            retryable,
            cause: Some(cause.into()),
        }
    }

    /// A sink failure without an underlying cause.
    pub fn sink_msg(message: impl Into<String>, retryable: bool) -> Self {
        Error::Sink {
            message: message.into(),
            retryable,
            cause: None,
        }
    }

    /// Whether running the failed step again may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Source { retryable, .. } | Error::Sink { retryable, .. } => *retryable,
            Error::InvalidInput(_)
            | Error::Format(_)
            | Error::Checkpoint(_)
            | Error::Cancelled
            | Error::ChunksFailed { .. } => false,
        }
    }

    /// Which side the failure came from; `None` for [`Error::Cancelled`], which is not a
    /// failure. Chunks that failed report their first chunk's cause.
    pub fn failure_cause(&self) -> Option<FailureCause> {
        Some(match self {
            Error::Cancelled => return None,
            Error::InvalidInput(_) => FailureCause::Input,
            Error::Source { .. } => FailureCause::Source,
            Error::Sink { .. } => FailureCause::Sink,
            // Encoding records is the source's data meeting the chosen format.
            Error::Format(_) => FailureCause::Source,
            Error::Checkpoint(_) => FailureCause::Internal,
            Error::ChunksFailed { failures, .. } => {
                failures.first().map_or(FailureCause::Internal, |f| f.cause)
            }
        })
    }

    /// The message followed by every cause in the chain, for logs and reports.
    pub fn chain(&self) -> String {
        let mut text = self.to_string();
        let mut cause = std::error::Error::source(self);
        while let Some(inner) = cause {
            text.push_str(": ");
            text.push_str(&inner.to_string());
            cause = inner.source();
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_includes_causes() {
        let io = std::io::Error::other("connection reset");
        let err = Error::source("reading chunk 3", true, io);
        assert_eq!(
            err.chain(),
            "source error: reading chunk 3: connection reset"
        );
        assert!(err.is_retryable());
    }

    #[test]
    fn chunk_failures_are_summarized() {
        let failures = (0..5)
            .map(|i| ChunkFailure {
                chunk_id: i,
                attempts: 2,
                error: "boom".into(),
                cause: FailureCause::Source,
            })
            .collect();
        let err = Error::ChunksFailed {
            total: 10,
            failures,
        };
        let text = err.to_string();
        assert!(text.starts_with("5 of 10 chunks failed: chunk 0 after 2 attempt(s): boom"));
        assert!(text.ends_with("and 2 more"));
        assert_eq!(err.failure_cause(), Some(FailureCause::Source));
        assert_eq!(Error::Cancelled.failure_cause(), None);
        let old: FailureCause = serde_json::from_str(r#""kafka""#).unwrap();
        assert_eq!(old, FailureCause::Sink);
    }
}
