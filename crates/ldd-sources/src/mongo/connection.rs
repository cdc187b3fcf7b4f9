//! A MongoDB server as an ldd [`Connection`]: catalogue, details, loading, sources.

use std::sync::Arc;

use async_trait::async_trait;
#[cfg(feature = "fixtures")]
use ldd_core::GeneratorConfig;
use ldd_core::{DataSource, DatasetSpec, Value};
use mongodb::bson::{doc, Document};
use mongodb::options::ClientOptions;
#[cfg(feature = "fixtures")]
use mongodb::{options::IndexOptions, IndexModel};
use mongodb::{Client, Collection};

use super::config::MongoConfig;
#[cfg(feature = "fixtures")]
use super::convert::record_to_document;
use super::convert::{bson_to_value, document_to_record};
use super::error::mongo;
use super::filter::{check_collection, check_database, check_field, dataset_filter};
use super::source::MongoSource;
#[cfg(feature = "fixtures")]
use crate::connection::Fixtures;
use crate::connection::{Connection, DatasetDetail, DatasetInfo, SourceKind};
use crate::error::{Error, Result};
use crate::redact::redact_url;

/// Databases the catalogue never lists.
const SYSTEM_DATABASES: &[&str] = &["admin", "local", "config"];

#[cfg(feature = "fixtures")]
/// Documents per `insertMany` when loading.
const LOAD_BATCH: u64 = 10_000;

/// A connected MongoDB client.
#[derive(Debug, Clone)]
pub struct MongoConnection {
    client: Client,
    config: MongoConfig,
}

impl MongoConnection {
    /// Connects and pings the server.
    pub async fn connect(config: MongoConfig) -> Result<Self> {
        let shown = redact_url(&config.url);
        let mut options = ClientOptions::parse(&config.url)
            .await
            .map_err(|e| Error::InvalidInput(format!("MongoDB URL {shown} is not valid: {e}")))?;
        options.app_name = Some("ldd".into());
        options.connect_timeout = Some(config.connect_timeout());
        options.server_selection_timeout = Some(config.server_selection_timeout());
        options.max_pool_size = Some(config.max_pool_size);
        let client = Client::with_options(options)
            .map_err(|e| mongo(format!("connecting to {shown}"), e))?;
        let conn = MongoConnection { client, config };
        conn.ping().await?;
        Ok(conn)
    }

    fn collection(&self, spec: &DatasetSpec) -> Result<Collection<Document>> {
        let database = if spec.database.is_empty() {
            self.config.database.clone().unwrap_or_default()
        } else {
            spec.database.clone()
        };
        check_database(&database)?;
        check_collection(&spec.table)?;
        Ok(self.client.database(&database).collection(&spec.table))
    }

    /// First or last document by `field`.
    async fn edge(
        &self,
        coll: &Collection<Document>,
        filter: &Document,
        field: &str,
        direction: i32,
    ) -> Result<Option<Document>> {
        coll.find_one(filter.clone())
            .sort(doc! { field: direction })
            .await
            .map_err(|e| mongo(format!("finding the edge of `{field}`"), e))
    }
}

fn time_of(doc: &Document, field: &str) -> Option<i64> {
    match doc.get(field).cloned().map(bson_to_value) {
        Some(Value::Timestamp(ns)) => Some(ns),
        _ => None,
    }
}

#[async_trait]
impl Connection for MongoConnection {
    fn kind(&self) -> SourceKind {
        SourceKind::Mongo
    }

    async fn ping(&self) -> Result<()> {
        self.client
            .database("admin")
            .run_command(doc! { "ping": 1 })
            .await
            .map_err(|e| mongo(format!("pinging {}", redact_url(&self.config.url)), e))?;
        Ok(())
    }

    async fn list_datasets(&self) -> Result<Vec<DatasetInfo>> {
        let mut out = Vec::new();
        let mut databases = self
            .client
            .list_database_names()
            .await
            .map_err(|e| mongo("listing databases", e))?;
        databases.sort();
        for db in databases {
            if SYSTEM_DATABASES.contains(&db.as_str()) {
                continue;
            }
            let mut collections = self
                .client
                .database(&db)
                .list_collection_names()
                .await
                .map_err(|e| mongo(format!("listing collections of `{db}`"), e))?;
            collections.sort();
            for table in collections {
                if table.starts_with("system.") {
                    continue;
                }
                out.push(DatasetInfo {
                    database: db.clone(),
                    table,
                    kind: SourceKind::Mongo,
                });
            }
        }
        Ok(out)
    }

    async fn time_range(&self, spec: &DatasetSpec) -> Result<Option<(i64, i64)>> {
        let field = spec.time_field.as_deref().ok_or_else(|| {
            Error::InvalidInput("give the time field (time_field) of the collection".into())
        })?;
        check_field(field)?;
        let coll = self.collection(spec)?;
        let filter = dataset_filter(spec)?;
        let first = self.edge(&coll, &filter, field, 1).await?;
        let last = self.edge(&coll, &filter, field, -1).await?;
        match (
            first.as_ref().and_then(|d| time_of(d, field)),
            last.as_ref().and_then(|d| time_of(d, field)),
        ) {
            (Some(a), Some(b)) => Ok(Some((a, b))),
            (None, None) if first.is_none() => Ok(None),
            _ => Err(Error::InvalidInput(format!(
                "`{field}` does not hold dates in this collection; name the time field"
            ))),
        }
    }

    async fn detail(&self, spec: &DatasetSpec) -> Result<DatasetDetail> {
        let coll = self.collection(spec)?;
        let filter = dataset_filter(spec)?;
        let count = super::count::count(&coll, &filter).await?;
        let order = match spec.time_field.as_deref() {
            Some(f) => {
                check_field(f)?;
                f
            }
            None => "_id",
        };
        let first = self.edge(&coll, &filter, order, 1).await?;
        let last = self.edge(&coll, &filter, order, -1).await?;
        let mut columns: Vec<String> = first
            .iter()
            .chain(last.iter())
            .flat_map(|d| d.keys().cloned())
            .filter(|k| k != "_id")
            .collect();
        columns.sort();
        columns.dedup();
        let (start_ns, end_ns) = match spec.time_field.as_deref() {
            Some(f) => (
                first.as_ref().and_then(|d| time_of(d, f)),
                last.as_ref().and_then(|d| time_of(d, f)),
            ),
            None => (None, None),
        };
        Ok(DatasetDetail {
            count,
            start_ns,
            end_ns,
            columns,
            first: first.map(document_to_record),
            last: last.map(document_to_record),
        })
    }

    async fn open(&self, spec: &DatasetSpec) -> Result<Arc<dyn DataSource>> {
        spec.validate()
            .map_err(|e| Error::InvalidInput(e.to_string()))?;
        let coll = self.collection(spec)?;
        Ok(Arc::new(MongoSource::new(
            coll,
            spec.clone(),
            self.config.batch_size,
        )?))
    }
}

#[cfg(feature = "fixtures")]
#[async_trait]
impl Fixtures for MongoConnection {
    async fn load_generated(
        &self,
        database: &str,
        table: &str,
        config: &GeneratorConfig,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<u64> {
        config
            .validate()
            .map_err(|e| Error::InvalidInput(e.to_string()))?;
        let coll = self.collection(&DatasetSpec::new(database, table))?;
        coll.create_index(
            IndexModel::builder()
                .keys(doc! { ldd_core::generator::TIME_FIELD: 1 })
                .options(IndexOptions::builder().name("ldd_time".to_owned()).build())
                .build(),
        )
        .await
        .map_err(|e| mongo("creating the time index", e))?;
        let mut written = 0u64;
        while written < config.records {
            let end = (written + LOAD_BATCH).min(config.records);
            let docs: Vec<Document> = (written..end)
                .map(|i| record_to_document(&config.record(i)))
                .collect();
            coll.insert_many(docs)
                .ordered(false)
                .await
                .map_err(|e| mongo(format!("inserting documents {written}..{end}"), e))?;
            written = end;
            progress(written);
        }
        Ok(written)
    }

    async fn drop_dataset(&self, database: &str, table: &str) -> Result<()> {
        if table.is_empty() {
            check_database(database)?;
            return self
                .client
                .database(database)
                .drop()
                .await
                .map_err(|e| mongo(format!("dropping database {database}"), e));
        }
        self.collection(&DatasetSpec::new(database, table))?
            .drop()
            .await
            .map_err(|e| mongo(format!("dropping {database}.{table}"), e))
    }
}
