//! The object-safe face of a database connection, as the server's registry holds it.

use std::sync::Arc;

use async_trait::async_trait;
use ldd_core::{DataSource, DatasetSpec, GeneratorConfig, Record};
use serde::{Deserialize, Serialize};

use crate::error::Result;

/// Which kind of database a connection talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// MongoDB (or a MongoDB-wire server).
    Mongo,
    /// InfluxDB.
    Influx,
}

impl SourceKind {
    /// The name the original API uses in `dataset_type`.
    pub fn dataset_type(self) -> &'static str {
        match self {
            SourceKind::Mongo => "MongoDB",
            SourceKind::Influx => "InfluxDB",
        }
    }
}

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
