//! # ldd-sources
//!
//! Data sources of **ldd**: MongoDB (feature `mongo`) and InfluxDB (feature `influx`).
//!
//! Each backend offers a [`Connection`]: a configured client that lists datasets, answers
//! dataset details and time ranges, loads synthetic data, and opens a dataset as an
//! [`ldd_core::DataSource`] for the export engine.

#[cfg(all(feature = "fixtures", any(feature = "mongo", feature = "influx")))]
pub mod baseline;
pub mod catalog;
pub mod config;
pub mod connection;
pub mod error;
#[cfg(feature = "influx")]
pub mod influx;
#[cfg(feature = "mongo")]
pub mod mongo;
pub mod redact;

pub use catalog::ConnectionCatalog;
pub use config::{QueryLanguage, RowShape, SourceConfig, SourceKind};
pub use connection::{connect, Connection, DatasetDetail, DatasetInfo};
#[cfg(feature = "fixtures")]
pub use connection::{connect_fixtures, Fixtures};
pub use error::{Error, Result};
