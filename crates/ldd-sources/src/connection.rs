//! The object-safe face of a database connection, as the server's registry holds it, and
//! [`connect`], the one function that turns a [`SourceConfig`] into one.

use std::sync::Arc;

use async_trait::async_trait;
#[cfg(feature = "fixtures")]
use ldd_core::GeneratorConfig;
use ldd_core::{DataSource, DatasetSpec, Record};
use serde::{Deserialize, Serialize};

use crate::config::SourceConfig;
pub use crate::config::SourceKind;
use crate::error::{Error, Result};

/// One dataset of a catalogue: database (or bucket) × table (collection or measurement).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetInfo {
    /// Database or bucket.
    pub database: String,
    /// Collection or measurement.
    pub table: String,
    /// The database kind.
    pub kind: SourceKind,
}

/// What `detail` answers about a dataset.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DatasetDetail {
    /// Records in the dataset (with its filters).
    pub count: u64,
    /// Time of the first record, in ns since the epoch, when the dataset has a time field.
    pub start_ns: Option<i64>,
    /// Time of the last record.
    pub end_ns: Option<i64>,
    /// Field names, sorted, without `_id`.
    pub columns: Vec<String>,
    /// The first record.
    pub first: Option<Record>,
    /// The last record.
    pub last: Option<Record>,
}

/// A configured connection to one database server.
#[async_trait]
pub trait Connection: Send + Sync {
    /// The kind of database.
    fn kind(&self) -> SourceKind;

    /// Checks that the server answers.
    async fn ping(&self) -> Result<()>;

    /// Lists datasets (system databases skipped).
    async fn list_datasets(&self) -> Result<Vec<DatasetInfo>>;

    /// First and last record time of a dataset (`None` when it is empty).
    async fn time_range(&self, spec: &DatasetSpec) -> Result<Option<(i64, i64)>>;

    /// Count, time range, columns and first/last record of a dataset.
    async fn detail(&self, spec: &DatasetSpec) -> Result<DatasetDetail>;

    /// Opens a dataset for export.
    async fn open(&self, spec: &DatasetSpec) -> Result<Arc<dyn DataSource>>;
}

/// What tests, benchmarks and `ldd load` need beyond the catalogue and export: writing
/// synthetic data and dropping it again (feature `fixtures`).
#[cfg(feature = "fixtures")]
#[async_trait]
pub trait Fixtures: Connection {
    /// Writes `config.records` generated records into `database`/`table`, calling
    /// `progress` with the number written so far. Used by tests, benchmarks and `ldd load`.
    async fn load_generated(
        &self,
        database: &str,
        table: &str,
        config: &GeneratorConfig,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<u64>;

    /// Drops a dataset, or with an empty `table` the whole database (tests clean up with
    /// this).
    async fn drop_dataset(&self, database: &str, table: &str) -> Result<()>;
}

/// Connects to the database `config` names (the one place that knows the backends) and
/// checks that it answers. Error messages never hold the configuration's secrets.
pub async fn connect(config: &SourceConfig) -> Result<Arc<dyn Connection>> {
    #[cfg(feature = "fixtures")]
    {
        let fixtures: Arc<dyn Connection> = connect_fixtures(config).await?;
        Ok(fixtures)
    }
    #[cfg(not(feature = "fixtures"))]
    {
        connect_backend(config).await
    }
}

/// [`connect`], with the connection's [`Fixtures`] too.
#[cfg(feature = "fixtures")]
pub async fn connect_fixtures(config: &SourceConfig) -> Result<Arc<dyn Fixtures>> {
    connect_backend(config).await
}

#[cfg(feature = "fixtures")]
type Backend = dyn Fixtures;
#[cfg(not(feature = "fixtures"))]
type Backend = dyn Connection;

/// Both backends' `connect` check that the server answers (a ping, a version probe).
async fn connect_backend(config: &SourceConfig) -> Result<Arc<Backend>> {
    config.validate()?;
    match config.kind {
        #[cfg(feature = "mongo")]
        SourceKind::Mongo => {
            let connection = crate::mongo::MongoConnection::connect(config.mongo_config())
                .await
                .map_err(|e| config.scrub_error(e))?;
            Ok(Arc::new(connection))
        }
        #[cfg(feature = "influx")]
        SourceKind::Influx => {
            let connection = crate::influx::InfluxConnection::connect(config.influx_config())
                .await
                .map_err(|e| config.scrub_error(e))?;
            Ok(Arc::new(connection))
        }
        #[allow(unreachable_patterns)]
        kind => Err(Error::Unsupported(format!(
            "this build of ldd has no {} source; enable the cargo feature `{}`",
            kind.dataset_type(),
            kind.as_str()
        ))),
    }
}
