//! Shared helpers of the server tests: a fake database connection backed by the
//! generator, an in-process server on an embedded Kafka cluster, and request helpers.
//!
//! The test crates include the server module from `src/server` (the `ldd` package has no
//! library target), so these helpers reach its internals directly.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use ldd_core::{DataSource, DatasetSpec, GeneratorConfig, GeneratorSource, Record};
use ldd_sink_kafka::EmbeddedCluster;
use ldd_sources::{Connection, DatasetDetail, DatasetInfo, SourceKind};
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::server::connections::ConnectionFactory;
use crate::server::{ApiError, AppState, ServerConfig};

/// Records of the fake `plant/sensors` dataset.
pub const SENSOR_RECORDS: u64 = 5_000;

/// Records of the fake `plant/slow` dataset, which yields a batch of 100 every 20 ms.
pub const SLOW_RECORDS: u64 = 20_000;

/// A database that answers from generated datasets: `plant/sensors` (5,000 records),
/// `plant/empty` (none), `plant/huge` (10^9) and `plant/slow` (20,000, slowly).
pub struct FakeConnection {
    kind: SourceKind,
    datasets: BTreeMap<(String, String), GeneratorConfig>,
}

impl FakeConnection {
    pub fn new(kind: SourceKind) -> Self {
        let mut datasets = BTreeMap::new();
        for (table, records) in [
            ("sensors", SENSOR_RECORDS),
            ("empty", 0),
            ("huge", 1_000_000_000),
            ("slow", SLOW_RECORDS),
        ] {
            datasets.insert(
                ("plant".to_owned(), table.to_owned()),
                GeneratorConfig {
                    records,
                    measurement: table.into(),
                    batch_size: 100,
                    ..Default::default()
                },
            );
        }
        FakeConnection { kind, datasets }
    }

    fn dataset(&self, spec: &DatasetSpec) -> ldd_sources::Result<&GeneratorConfig> {
        self.datasets
            .get(&(spec.database.clone(), spec.table.clone()))
            .ok_or_else(|| {
                ldd_sources::Error::NotFound(format!(
                    "dataset {} does not exist",
                    spec.display_name()
                ))
            })
    }
}

#[async_trait]
impl Connection for FakeConnection {
    fn kind(&self) -> SourceKind {
        self.kind
    }

    async fn ping(&self) -> ldd_sources::Result<()> {
        Ok(())
    }

    async fn list_datasets(&self) -> ldd_sources::Result<Vec<DatasetInfo>> {
        Ok(self
            .datasets
            .keys()
            .map(|(database, table)| DatasetInfo {
                database: database.clone(),
                table: table.clone(),
                kind: self.kind,
            })
            .collect())
    }

    async fn time_range(&self, spec: &DatasetSpec) -> ldd_sources::Result<Option<(i64, i64)>> {
        let cfg = self.dataset(spec)?;
        Ok((cfg.records > 0).then(|| (cfg.time_of(0), cfg.time_of(cfg.records - 1))))
    }

    async fn detail(&self, spec: &DatasetSpec) -> ldd_sources::Result<DatasetDetail> {
        let cfg = self.dataset(spec)?;
        if cfg.records == 0 {
            return Ok(DatasetDetail::default());
        }
        let first: Record = cfg.record(0);
        let mut columns: Vec<String> = first.fields.iter().map(|(n, _)| n.clone()).collect();
        columns.sort();
        Ok(DatasetDetail {
            count: cfg.records,
            start_ns: Some(cfg.time_of(0)),
            end_ns: Some(cfg.time_of(cfg.records - 1)),
            columns,
            first: Some(first),
            last: Some(cfg.record(cfg.records - 1)),
        })
    }

    async fn open(&self, spec: &DatasetSpec) -> ldd_sources::Result<Arc<dyn DataSource>> {
        let source = Arc::new(GeneratorSource::new(self.dataset(spec)?.clone()));
        if spec.table == "slow" {
            return Ok(Arc::new(SlowSource(source)));
        }
        Ok(source)
    }
}

/// A source whose batches arrive 20 ms apart, so an export of it can be stopped midway.
struct SlowSource(Arc<GeneratorSource>);

#[async_trait]
impl DataSource for SlowSource {
    fn describe(&self) -> String {
        self.0.describe()
    }

    async fn count(&self) -> ldd_core::Result<u64> {
        self.0.count().await
    }

    async fn split(&self, chunks: usize, total: u64) -> ldd_core::Result<ldd_core::Split> {
        self.0.split(chunks, total).await
    }

    async fn read(&self, range: &ldd_core::ChunkRange) -> ldd_core::Result<ldd_core::RecordStream> {
        use futures::StreamExt;
        let stream = self.0.read(range).await?;
        Ok(stream
            .then(|batch| async move {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                batch
            })
            .boxed())
    }
}

/// Connects any URL whose host is `fake` to a [`FakeConnection`]; `down` hosts refuse.
pub fn fake_factory() -> ConnectionFactory {
    Arc::new(|spec| {
        Box::pin(async move {
            spec.validate()?;
            if spec.source.url.contains("down") {
                return Err(ApiError::Upstream(format!(
                    "connecting to the server at {}: connection refused",
                    spec.source.url
                )));
            }
            Ok(Arc::new(FakeConnection::new(spec.source.kind)) as Arc<dyn Connection>)
        })
    })
}

/// A fresh directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> Self {
        let dir =
            std::env::temp_dir().join(format!("ldd-server-test-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// An answer: status, content type, body text.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub content_type: String,
    pub text: String,
    pub headers: axum::http::HeaderMap,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.text))
    }
}

/// An in-process server on a fake database and an embedded Kafka cluster.
pub struct TestServer {
    pub state: AppState,
    pub router: Router,
    pub cluster: EmbeddedCluster,
    pub brokers: String,
    pub token: Option<String>,
    pub dir: TempDir,
}

/// The manifest topic the tests' servers publish to.
pub const MANIFEST_TOPIC: &str = "ldd.manifests";

impl TestServer {
    pub async fn new() -> Self {
        Self::build(TempDir::new(), None, None).await
    }

    /// A server that requires `token`.
    pub async fn with_token(token: &str) -> Self {
        Self::build(TempDir::new(), Some(token.to_owned()), None).await
    }

    /// A server on an existing state directory and cluster (a restart).
    pub async fn build(
        dir: TempDir,
        token: Option<String>,
        cluster: Option<EmbeddedCluster>,
    ) -> Self {
        let cluster = cluster.unwrap_or_else(|| EmbeddedCluster::start(1).unwrap());
        let brokers = cluster.bootstrap_servers();
        let _ = cluster.create_topic(MANIFEST_TOPIC, 1, 1);
        let state = AppState::with_connection_factory(
            Self::config(&dir.0, &brokers, token.clone()),
            fake_factory(),
        )
        .await
        .unwrap();
        TestServer {
            router: crate::server::router(state.clone()),
            state,
            cluster,
            brokers,
            token,
            dir,
        }
    }

    pub fn config(dir: &Path, brokers: &str, token: Option<String>) -> ServerConfig {
        let mut config = ServerConfig::with_state_dir(dir);
        config.token = token;
        config.exports.brokers = Some(brokers.to_owned());
        config.exports.manifest_topic = MANIFEST_TOPIC.into();
        config.exports.workers = 2;
        config
    }

    /// Stops this server and starts another on the same state directory and cluster.
    pub async fn restart(self) -> Self {
        let TestServer {
            state,
            router,
            cluster,
            token,
            dir,
            ..
        } = self;
        drop(router);
        drop(state);
        Self::build(dir, token, Some(cluster)).await
    }

    /// A topic with a random name and `partitions` partitions.
    pub fn topic(&self, partitions: i32) -> String {
        let name = format!("ldd-server-test-{}", uuid::Uuid::new_v4().simple());
        self.cluster.create_topic(&name, partitions, 1).unwrap();
        name
    }

    pub async fn call(&self, method: Method, uri: &str, body: Option<Value>) -> Answer {
        let token = self.token.clone();
        self.call_with(method, uri, body, token.as_deref()).await
    }

    pub async fn call_with(
        &self,
        method: Method,
        uri: &str,
        body: Option<Value>,
        token: Option<&str>,
    ) -> Answer {
        let mut request = Request::builder().method(method).uri(uri);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let request = match body {
            Some(body) => request
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.to_string())),
            None => request.body(Body::empty()),
        }
        .unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        Answer {
            status,
            content_type,
            text: String::from_utf8_lossy(&bytes).into_owned(),
            headers,
        }
    }

    pub async fn get(&self, uri: &str) -> Answer {
        self.call(Method::GET, uri, None).await
    }

    pub async fn post(&self, uri: &str, body: Value) -> Answer {
        self.call(Method::POST, uri, Some(body)).await
    }

    pub async fn delete(&self, uri: &str) -> Answer {
        self.call(Method::DELETE, uri, None).await
    }

    /// Registers a fake connection through the original endpoint.
    pub async fn register(&self, id: &str, db_type: &str) {
        let url = if db_type == "mongo" {
            "mongodb://fake:27017/"
        } else {
            "http://fake:8086"
        };
        let answer = self
            .post(
                "/db-connections/register",
                json!({"connection_id": id, "db_type": db_type, "url": url, "database": "plant"}),
            )
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    }

    /// Polls an export until it reaches a final state.
    pub async fn wait_export(&self, id: &str) -> Value {
        for _ in 0..600 {
            let answer = self.get(&format!("/v1/exports/{id}")).await;
            let status = answer.json();
            let state = status["state"].as_str().unwrap_or_default().to_owned();
            if ["succeeded", "failed", "cancelled", "interrupted"].contains(&state.as_str()) {
                return status;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("export {id} did not finish in 60 s");
    }
}
