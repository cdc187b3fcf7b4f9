//! [`InfluxConnection`]: a connected InfluxDB server as a [`Connection`].

use std::sync::Arc;

use async_trait::async_trait;
#[cfg(feature = "fixtures")]
use futures::stream::{self, StreamExt, TryStreamExt};
#[cfg(feature = "fixtures")]
use ldd_core::GeneratorConfig;
use ldd_core::{DataSource, DatasetSpec, Value};

use super::client::{v2_error, HttpClient};
use super::config::{InfluxConfig, QueryLanguage, RowShape};
use super::dataset::{Lang, FIELD, MEASUREMENT, TIME, VALUE};
use super::escape::influxql_ident;
use super::query;
use super::source::{flux_not_found, Backend, InfluxSource};
#[cfg(feature = "fixtures")]
use super::write::{escape_measurement, write_line};
#[cfg(feature = "fixtures")]
use crate::connection::Fixtures;
use crate::connection::{Connection, DatasetDetail, DatasetInfo, SourceKind};
use crate::error::{Error, Result};

/// Databases (InfluxQL) and buckets (Flux) that are the server's own, never listed.
const SYSTEM_DATABASES: &[&str] = &["_internal", "_monitoring", "_tasks"];
/// `SHOW MEASUREMENTS` statements sent in one request while listing.
const LIST_BATCH: usize = 50;
#[cfg(feature = "fixtures")]
/// Write requests in flight at once while loading.
const WRITES_IN_FLIGHT: usize = 2;

/// What connecting learned about the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerInfo {
    /// The version the server reports in `X-Influxdb-Version`, when it does.
    pub version: Option<String>,
    /// Whether the v1 `/query` API answers (InfluxQL).
    pub influxql: bool,
    /// Whether `/api/v2/query` answers (Flux).
    pub flux: bool,
    /// Why Flux is not available, when it is not.
    pub flux_unavailable: Option<String>,
    /// The language this connection queries with (`influxql` or `flux`, never `auto`).
    pub language: QueryLanguage,
}

/// A connection to one InfluxDB server (1.x, 2.x or 3.x).
///
/// As a [`Connection`]: `list_datasets` lists databases × measurements (`SHOW DATABASES`,
/// `SHOW MEASUREMENTS ON ..`; with Flux `buckets()` × `v1.measurements`), skipping
/// `_internal`, `_monitoring` and `_tasks`; `time_range` and `detail` honour the spec's
/// filters and time range; `load_generated` creates the database and writes line protocol
/// in batches of `write_batch_lines` (see [`write_line`](super::write_line));
/// `drop_dataset` drops the measurement, or the whole database when `table` is empty.
///
/// On InfluxDB 2.x (told by the version the server reports, or by a server without
/// InfluxQL) a database is a bucket: it is created and deleted through the management API
/// (`/api/v2/buckets`, in the configured `org`) and written through `/api/v2/write`.
/// InfluxQL reaches a bucket through its DBRP mapping: the virtual one recent 2.x releases
/// (2.7 among them) make for every bucket (database = the bucket's name), or an explicit
/// one that overrides it; a database no bucket is mapped to is [`Error::NotFound`].
///
/// ```no_run
/// use ldd_sources::influx::{InfluxConfig, InfluxConnection};
/// use ldd_sources::Connection;
///
/// # async fn run() -> ldd_sources::Result<()> {
/// let conn = InfluxConnection::connect(InfluxConfig::new("http://127.0.0.1:8086")).await?;
/// for dataset in conn.list_datasets().await? {
///     println!("{}:{}", dataset.database, dataset.table);
/// }
/// # Ok(()) }
/// ```
pub struct InfluxConnection {
    backend: Arc<Backend>,
    server: ServerInfo,
    #[cfg(feature = "fixtures")]
    write_batch_lines: usize,
    /// Databases are InfluxDB 2.x buckets (managed through `/api/v2/buckets`, written
    /// through `/api/v2/write`), not InfluxQL databases (`CREATE DATABASE`, `/write`).
    buckets: bool,
}

/// Whether a reported version (`X-Influxdb-Version`) is InfluxDB 2.x: `2.7.12`, `v2.0.4`.
/// InfluxQL on 2.x answers `not implemented` to `CREATE DATABASE` and `DROP DATABASE`.
fn is_influxdb2(version: Option<&str>) -> bool {
    version.is_some_and(|v| {
        let v = v.trim().trim_start_matches('v');
        v.split('.').next() == Some("2") && v.contains('.')
    })
}

impl std::fmt::Debug for InfluxConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InfluxConnection")
            .field("url", &self.backend.url)
            .field("server", &self.server)
            .field("shape", &self.backend.shape)
            .finish_non_exhaustive()
    }
}

impl InfluxConnection {
    /// Validates `config`, pings the server (`/ping`) and detects its languages: InfluxQL
    /// when `/query` answers `SHOW DATABASES`, Flux when `/api/v2/query` answers
    /// `buckets()`. Then picks the language: the configured one (failing with
    /// [`Error::Unsupported`] when the server lacks it), or with `auto` InfluxQL when
    /// available, else Flux.
    pub async fn connect(config: InfluxConfig) -> Result<Self> {
        let client = HttpClient::new(&config)?;
        let version = client.ping().await?;
        let influxql = client.probe_influxql().await?;
        let flux_unavailable = client.probe_flux().await?;
        let flux = flux_unavailable.is_none();
        let no_flux = || {
            Error::Unsupported(format!(
                "the InfluxDB server does not answer Flux on /api/v2/query ({}); on InfluxDB 1.8 \
                 set flux-enabled = true in the [http] section, or use the influxql language",
                flux_unavailable.as_deref().unwrap_or("unknown reason")
            ))
        };
        let lang =
            match config.language {
                QueryLanguage::Influxql if !influxql => return Err(Error::Unsupported(
                    "the InfluxDB server does not answer InfluxQL on /query; use the flux language"
                        .into(),
                )),
                QueryLanguage::Influxql => Lang::InfluxQl,
                QueryLanguage::Flux if !flux => return Err(no_flux()),
                QueryLanguage::Flux => Lang::Flux,
                QueryLanguage::Auto if influxql => Lang::InfluxQl,
                QueryLanguage::Auto if flux => Lang::Flux,
                QueryLanguage::Auto => {
                    return Err(Error::Unsupported(format!(
                        "the InfluxDB server answers neither InfluxQL on /query nor Flux on \
                     /api/v2/query ({})",
                        flux_unavailable.as_deref().unwrap_or("unknown reason")
                    )))
                }
            };
        let server = ServerInfo {
            version,
            influxql,
            flux,
            flux_unavailable: flux_unavailable.clone(),
            language: match lang {
                Lang::InfluxQl => QueryLanguage::Influxql,
                Lang::Flux => QueryLanguage::Flux,
            },
        };
        tracing::info!(url = %config.url, ?server, "connected to InfluxDB");
        Ok(InfluxConnection {
            backend: Arc::new(Backend {
                client,
                lang,
                shape: config.row_shape,
                chunk_size: config.chunk_size,
                url: config.url.trim_end_matches('/').to_owned(),
            }),
            buckets: is_influxdb2(server.version.as_deref()) || !server.influxql,
            server,
            #[cfg(feature = "fixtures")]
            write_batch_lines: config.write_batch_lines,
        })
    }

    /// What connecting learned about the server.
    pub fn server(&self) -> &ServerInfo {
        &self.server
    }

    /// Opens a dataset as the typed source (the [`Connection::open`] answer, unerased).
    /// Fails early when the dataset's filters or projection do not fit its schema.
    pub async fn open_source(&self, spec: &DatasetSpec) -> Result<InfluxSource> {
        let selection = self.backend.selection(spec).await?;
        Ok(InfluxSource::new(
            Arc::clone(&self.backend),
            spec.clone(),
            Some(selection),
        ))
    }

    /// Creates a database (`CREATE DATABASE`, a no-op when it exists); on InfluxDB 2.x (or
    /// a server without InfluxQL), creates the bucket in the configured organisation
    /// (a no-op when it exists).
    pub async fn create_database(&self, database: &str) -> Result<()> {
        if self.buckets {
            return self.create_bucket(database).await;
        }
        let q = format!("CREATE DATABASE {}", influxql_ident(database)?);
        let context = format!("creating InfluxDB database `{database}`");
        self.backend.client.influxql(None, &q, &context).await?;
        Ok(())
    }

    /// The id of the bucket named `bucket` in the configured organisation (any
    /// organisation the token sees when none is configured), `None` when there is none.
    async fn bucket_id(&self, bucket: &str, context: &str) -> Result<Option<String>> {
        use influxdb2::api::buckets::ListBucketsRequest;
        let v2 = self.backend.client.v2();
        let found = match v2
            .list_buckets(Some(ListBucketsRequest {
                name: Some(bucket.to_owned()),
                org: (!v2.org.is_empty()).then(|| v2.org.clone()),
                ..Default::default()
            }))
            .await
        {
            Ok(found) => found,
            // 2.x answers a name no bucket has with 404 `bucket "NAME" not found`, not with
            // an empty list.
            Err(influxdb2::RequestError::Http { status, .. }) if status.as_u16() == 404 => {
                return Ok(None)
            }
            Err(e) => return Err(v2_error(context, e)),
        };
        Ok(found
            .buckets
            .into_iter()
            .filter(|b| b.name == bucket)
            .find_map(|b| b.id))
    }

    async fn create_bucket(&self, bucket: &str) -> Result<()> {
        use influxdb2::api::organization::ListOrganizationRequest;
        use influxdb2::models::PostBucketRequest;
        let context = format!("creating InfluxDB bucket `{bucket}`");
        let v2 = self.backend.client.v2();
        if self.bucket_id(bucket, &context).await?.is_some() {
            return Ok(());
        }
        let orgs = v2
            .list_organizations(ListOrganizationRequest {
                org: (!v2.org.is_empty()).then(|| v2.org.clone()),
                ..Default::default()
            })
            .await
            .map_err(|e| v2_error(&context, e))?;
        let org_id = orgs.orgs.into_iter().find_map(|o| o.id).ok_or_else(|| {
            Error::InvalidInput(format!(
                "{context}: no organisation found; set `org` in the InfluxDB connection"
            ))
        })?;
        v2.create_bucket(Some(PostBucketRequest::new(org_id, bucket.to_owned())))
            .await
            .map_err(|e| v2_error(&context, e))
    }

    /// Drops a whole database (`DROP DATABASE`; on InfluxDB 2.x deletes the bucket, and
    /// with it its DBRP mappings). A missing one is not an error.
    pub async fn drop_database(&self, database: &str) -> Result<()> {
        if self.buckets {
            let context = format!("deleting InfluxDB bucket `{database}`");
            let Some(id) = self.bucket_id(database, &context).await? else {
                return Ok(());
            };
            return match self.backend.client.v2().delete_bucket(&id).await {
                Ok(()) => Ok(()),
                // Deleted meanwhile.
                Err(influxdb2::RequestError::Http { status, .. }) if status.as_u16() == 404 => {
                    Ok(())
                }
                Err(e) => Err(v2_error(&context, e)),
            };
        }
        let q = format!("DROP DATABASE {}", influxql_ident(database)?);
        let context = format!("dropping InfluxDB database `{database}`");
        match self.backend.client.influxql(None, &q, &context).await {
            Ok(_) | Err(Error::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    #[cfg(feature = "fixtures")]
    async fn write(&self, database: &str, lines: String) -> Result<()> {
        if self.buckets {
            self.backend.client.write_v2(database, lines).await
        } else {
            self.backend.client.write_v1(database, lines).await
        }
    }

    async fn list_influxql(&self) -> Result<Vec<DatasetInfo>> {
        let client = &self.backend.client;
        let results = client
            .influxql(None, "SHOW DATABASES", "listing InfluxDB databases")
            .await?;
        let databases: Vec<String> = results
            .iter()
            .flat_map(|r| &r.series)
            .flat_map(|s| &s.values)
            .filter_map(|row| row.first().and_then(|v| v.as_str()).map(str::to_owned))
            .filter(|db| !SYSTEM_DATABASES.contains(&db.as_str()))
            .collect();
        let mut out = Vec::new();
        for batch in databases.chunks(LIST_BATCH) {
            let q = batch
                .iter()
                .map(|db| Ok(format!("SHOW MEASUREMENTS ON {}", influxql_ident(db)?)))
                .collect::<Result<Vec<_>>>()?
                .join("; ");
            let results = client
                .influxql(None, &q, "listing InfluxDB measurements")
                .await?;
            for result in results {
                let Some(db) = batch.get(result.statement_id) else {
                    continue;
                };
                for row in result.series.iter().flat_map(|s| &s.values) {
                    if let Some(table) = row.first().and_then(|v| v.as_str()) {
                        out.push(DatasetInfo {
                            database: db.clone(),
                            table: table.to_owned(),
                            kind: SourceKind::Influx,
                        });
                    }
                }
            }
        }
        Ok(out)
    }

    async fn list_flux(&self) -> Result<Vec<DatasetInfo>> {
        let client = &self.backend.client;
        let rows = client
            .flux_collect("buckets()", "listing InfluxDB buckets")
            .await?;
        let mut buckets: Vec<String> = rows
            .iter()
            .filter_map(|r| match r.get("name") {
                Some(Value::String(name)) => Some(name.clone()),
                _ => None,
            })
            .filter(|name| {
                let db = name.split('/').next().unwrap_or(name);
                !name.starts_with('_') && !SYSTEM_DATABASES.contains(&db)
            })
            .collect();
        buckets.sort();
        buckets.dedup();
        let mut out = Vec::new();
        for bucket in buckets {
            let q = query::flux_measurements(&bucket)?;
            let context = format!("listing the measurements of bucket `{bucket}`");
            let rows = match client.flux_collect(&q, &context).await {
                Ok(rows) => rows,
                // Deleted since `buckets()` answered: it has nothing to list.
                Err(e) => match flux_not_found(e, &context) {
                    Error::NotFound(_) => continue,
                    e => return Err(e),
                },
            };
            for row in rows {
                if let Some(Value::String(table)) = row.get("_value") {
                    out.push(DatasetInfo {
                        database: bucket.clone(),
                        table: table.clone(),
                        kind: SourceKind::Influx,
                    });
                }
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl Connection for InfluxConnection {
    fn kind(&self) -> SourceKind {
        SourceKind::Influx
    }

    async fn ping(&self) -> Result<()> {
        self.backend.client.ping().await.map(drop)
    }

    async fn list_datasets(&self) -> Result<Vec<DatasetInfo>> {
        match self.backend.lang {
            Lang::InfluxQl => self.list_influxql().await,
            Lang::Flux => self.list_flux().await,
        }
    }

    async fn time_range(&self, spec: &DatasetSpec) -> Result<Option<(i64, i64)>> {
        let sel = self.backend.selection(spec).await?;
        self.backend
            .first_last(&sel, (sel.time.start_ns, sel.time.end_ns))
            .await
    }

    async fn detail(&self, spec: &DatasetSpec) -> Result<DatasetDetail> {
        let sel = Arc::new(self.backend.selection(spec).await?);
        let bounds = (sel.time.start_ns, sel.time.end_ns);
        let counts = self.backend.counts(&sel, bounds).await?;
        let range = self.backend.first_last(&sel, bounds).await?;
        let mut columns: Vec<String> = vec![TIME.into(), MEASUREMENT.into()];
        columns.extend(sel.selected_tags().iter().cloned());
        match sel.shape {
            RowShape::Wide => columns.extend(
                sel.fields
                    .iter()
                    .zip(&sel.emit)
                    .filter(|(_, e)| **e)
                    .map(|((n, _), _)| n.clone()),
            ),
            RowShape::Narrow => columns.extend([FIELD.to_owned(), VALUE.to_owned()]),
        }
        columns.sort();
        columns.dedup();
        let (first, last) = match range {
            Some((start, end)) => (
                self.backend.record_at(&sel, start, false).await?,
                self.backend.record_at(&sel, end, true).await?,
            ),
            None => (None, None),
        };
        Ok(DatasetDetail {
            count: counts.total,
            start_ns: range.map(|r| r.0),
            end_ns: range.map(|r| r.1),
            columns,
            first,
            last,
        })
    }

    async fn open(&self, spec: &DatasetSpec) -> Result<Arc<dyn DataSource>> {
        Ok(Arc::new(self.open_source(spec).await?))
    }
}

#[cfg(feature = "fixtures")]
#[async_trait]
impl Fixtures for InfluxConnection {
    async fn load_generated(
        &self,
        database: &str,
        table: &str,
        config: &GeneratorConfig,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<u64> {
        config.validate().map_err(|e| match e {
            ldd_core::Error::InvalidInput(msg) => Error::InvalidInput(msg),
            other => Error::InvalidInput(other.to_string()),
        })?;
        if database.is_empty() {
            return Err(Error::InvalidInput(
                "name the InfluxDB database to load into".into(),
            ));
        }
        escape_measurement(table, &mut String::new())?;
        self.create_database(database).await?;
        let per_batch = self.write_batch_lines as u64;
        let batches = (0..config.records)
            .step_by(self.write_batch_lines)
            .map(|start| {
                let end = (start + per_batch).min(config.records);
                let mut lines = String::with_capacity((end - start) as usize * 160);
                for i in start..end {
                    write_line(&config.record(i), table, &mut lines)?;
                }
                Ok::<_, Error>((lines, end - start))
            });
        let mut written = 0u64;
        let mut writes = stream::iter(batches)
            .map(|batch| async move {
                let (lines, n) = batch?;
                self.write(database, lines).await?;
                Ok::<_, Error>(n)
            })
            .buffered(WRITES_IN_FLIGHT);
        while let Some(n) = writes.try_next().await? {
            written += n;
            progress(written);
        }
        Ok(written)
    }

    async fn drop_dataset(&self, database: &str, table: &str) -> Result<()> {
        if table.is_empty() {
            return self.drop_database(database).await;
        }
        if self.server.influxql {
            let q = format!("DROP MEASUREMENT {}", influxql_ident(table)?);
            let context = format!("dropping InfluxDB measurement `{database}:{table}`");
            return match self
                .backend
                .client
                .influxql(Some(database), &q, &context)
                .await
            {
                Ok(_) | Err(Error::NotFound(_)) => Ok(()),
                Err(Error::Server { message, .. }) if message.contains("measurement not found") => {
                    Ok(())
                }
                Err(e) => Err(e),
            };
        }
        // InfluxDB 2.x: delete the measurement's points with a predicate.
        let escaped = table.replace('\\', "\\\\").replace('"', "\\\"");
        let predicate = format!("_measurement=\"{escaped}\"");
        let context = format!("deleting InfluxDB measurement `{database}:{table}`");
        let start =
            chrono::DateTime::from_timestamp(super::dataset::MIN_TIME / 1_000_000_000 + 1, 0)
                .map(|t| t.naive_utc())
                .unwrap_or_default();
        let stop = chrono::DateTime::from_timestamp(super::dataset::MAX_TIME / 1_000_000_000, 0)
            .map(|t| t.naive_utc())
            .unwrap_or_default();
        self.backend
            .client
            .v2()
            .delete(database, start, stop, Some(predicate))
            .await
            .map_err(|e| v2_error(&context, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn influxdb2_is_told_by_its_version() {
        for v in ["2.7.12", "v2.0.4", " 2.1.1 "] {
            assert!(is_influxdb2(Some(v)), "{v}");
        }
        for v in ["1.8.10", "3.0.1", "2", "20.1.0", "", "unknown"] {
            assert!(!is_influxdb2(Some(v)), "{v}");
        }
        assert!(!is_influxdb2(None));
    }
}
