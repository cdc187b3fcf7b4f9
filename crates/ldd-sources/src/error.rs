//! The error type of `ldd-sources`.

/// `Result` with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong talking to a database.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request is wrong (bad identifier, unknown dataset...); the message says what to fix.
    #[error("{0}")]
    InvalidInput(String),
    /// The dataset (database, table) does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The server lacks something the operation needs.
    #[error("{0}")]
    Unsupported(String),
    /// A MongoDB driver call failed.
    #[cfg(feature = "mongo")]
    #[error("{context}: {source}")]
    Mongo {
        /// What was being done.
        context: String,
        /// The driver's error.
        #[source]
        source: mongodb::error::Error,
    },
    /// An HTTP request failed before the server answered.
    #[cfg(feature = "influx")]
    #[error("{context}: {source}")]
    Http {
        /// What was being done.
        context: String,
        /// The client's error.
        #[source]
        source: reqwest::Error,
    },
    /// The server answered with an error.
    #[error("{context}: server answered {status}: {message}")]
    Server {
        /// What was being done.
        context: String,
        /// HTTP status (0 when not HTTP).
        status: u16,
        /// The server's message.
        message: String,
    },
    /// A response could not be decoded.
    #[error("{0}")]
    Decode(String),
}

impl Error {
    /// Whether retrying the same operation may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            #[cfg(feature = "mongo")]
            Error::Mongo { source, .. } => {
                use mongodb::error::ErrorKind;
                matches!(
                    *source.kind,
                    ErrorKind::Io(_)
                        | ErrorKind::ConnectionPoolCleared { .. }
                        | ErrorKind::ServerSelection { .. }
                ) || source.contains_label("RetryableWriteError")
                    || source.contains_label("RetryableReadError")
            }
            #[cfg(feature = "influx")]
            Error::Http { source, .. } => source.is_timeout() || source.is_connect(),
            Error::Server { status, .. } => *status >= 500 || *status == 429,
            Error::InvalidInput(_)
            | Error::NotFound(_)
            | Error::Unsupported(_)
            | Error::Decode(_) => false,
        }
    }
}

impl From<Error> for ldd_core::Error {
    fn from(err: Error) -> Self {
        match err {
            Error::InvalidInput(msg) | Error::NotFound(msg) => ldd_core::Error::InvalidInput(msg),
            other => {
                let retryable = other.is_retryable();
                ldd_core::Error::Source {
                    message: other.to_string(),
                    retryable,
                    cause: None,
                }
            }
        }
    }
}
