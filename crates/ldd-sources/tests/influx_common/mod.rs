//! Helpers of the InfluxDB integration tests: the servers' addresses from the environment,
//! random names, connections per server and language, and a database (1.x) or bucket (2.x)
//! that drops itself.
//!
//! Two servers take part:
//!
//! - [`Server::V1`], InfluxDB 1.8 with Flux: `LDD_TEST_INFLUX_URL` (no authentication).
//! - [`Server::V2`], InfluxDB 2.x: `LDD_TEST_INFLUX2_URL`, `LDD_TEST_INFLUX2_TOKEN` (an
//!   operator token: the tests create and delete buckets and DBRP mappings) and
//!   `LDD_TEST_INFLUX2_ORG`.
//!
//! A missing variable panics with what to set: a test that needs a server never passes
//! without one.

#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use ldd_core::{GeneratorConfig, Record, Value};
use ldd_sources::influx::{InfluxConfig, InfluxConnection, QueryLanguage, RowShape};
use ldd_sources::Fixtures;
use serde_json::{json, Value as Json};

/// The server a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    /// InfluxDB 1.8 with Flux enabled (`LDD_TEST_INFLUX_URL`).
    V1,
    /// InfluxDB 2.x (`LDD_TEST_INFLUX2_URL`, `LDD_TEST_INFLUX2_TOKEN`, `LDD_TEST_INFLUX2_ORG`).
    V2,
}

/// The value of a required environment variable; panics with what to set when it is missing.
fn required_env(name: &str, example: &str) -> String {
    match std::env::var(name) {
        Ok(value) if !value.is_empty() => value,
        _ => panic!(
            "{name} is not set: these tests need a real InfluxDB (e.g. {name}={example}; \
             scripts/services.sh starts InfluxDB 1.8 and 2.x and prints the exports of \
             LDD_TEST_INFLUX_URL, LDD_TEST_INFLUX2_URL, LDD_TEST_INFLUX2_TOKEN and \
             LDD_TEST_INFLUX2_ORG; scripts/test.sh runs these tests with them)"
        ),
    }
}

impl Server {
    /// The server's base URL.
    pub fn url(self) -> String {
        match self {
            Server::V1 => required_env("LDD_TEST_INFLUX_URL", "http://127.0.0.1:8086"),
            Server::V2 => required_env("LDD_TEST_INFLUX2_URL", "http://127.0.0.1:8087"),
        }
    }

    /// The API token (2.x only).
    pub fn token(self) -> Option<String> {
        match self {
            Server::V1 => None,
            Server::V2 => Some(required_env("LDD_TEST_INFLUX2_TOKEN", "<operator token>")),
        }
    }

    /// The organisation (2.x only).
    pub fn org(self) -> Option<String> {
        match self {
            Server::V1 => None,
            Server::V2 => Some(required_env("LDD_TEST_INFLUX2_ORG", "ldd")),
        }
    }
}

/// Whether the 1.x server is allowed to lack Flux (`LDD_TEST_INFLUX_NO_FLUX=1`, for InfluxDB
/// builds without it such as Debian's 1.6). InfluxDB 2.x always has Flux.
pub fn flux_may_be_missing(server: Server) -> bool {
    server == Server::V1 && std::env::var("LDD_TEST_INFLUX_NO_FLUX").is_ok_and(|v| v == "1")
}

/// A random name with a prefix.
pub fn rand_name(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}

/// A config for a test server (with its token and organisation on 2.x).
pub fn config(server: Server, language: QueryLanguage, shape: RowShape) -> InfluxConfig {
    let mut cfg = InfluxConfig::new(server.url());
    cfg.token = server.token();
    cfg.org = server.org();
    cfg.language = language;
    cfg.row_shape = shape;
    cfg.chunk_size = 2_000;
    cfg
}

/// Connects with InfluxQL.
pub async fn influxql(server: Server, shape: RowShape) -> InfluxConnection {
    InfluxConnection::connect(config(server, QueryLanguage::Influxql, shape))
        .await
        .unwrap_or_else(|e| panic!("connecting to {server:?} with InfluxQL: {e}"))
}

/// Connects with Flux; `None` only when the server lacks Flux and that is allowed.
pub async fn flux(server: Server, shape: RowShape) -> Option<InfluxConnection> {
    match InfluxConnection::connect(config(server, QueryLanguage::Flux, shape)).await {
        Ok(conn) => Some(conn),
        Err(e) if flux_may_be_missing(server) => {
            eprintln!("Flux is unavailable and LDD_TEST_INFLUX_NO_FLUX=1: skipping ({e})");
            None
        }
        Err(e) => panic!(
            "the InfluxDB server at {} has no Flux ({e}); on 1.8 enable flux-enabled = true in \
             [http], or set LDD_TEST_INFLUX_NO_FLUX=1 for a 1.x server without Flux",
            server.url()
        ),
    }
}

/// Connects in either language.
pub async fn connect(
    server: Server,
    language: QueryLanguage,
    shape: RowShape,
) -> Option<InfluxConnection> {
    match language {
        QueryLanguage::Flux => flux(server, shape).await,
        _ => Some(influxql(server, shape).await),
    }
}

// ---------------------------------------------------------------- the 2.x management API

/// A call to the InfluxDB 2.x HTTP API with the test token; panics on a non-2xx answer,
/// returns the JSON body (`Null` when empty).
async fn v2_api(
    method: reqwest::Method,
    path: &str,
    query: &[(&str, &str)],
    body: Option<Json>,
) -> Json {
    v2_api_or_missing(method.clone(), path, query, body)
        .await
        .unwrap_or_else(|| panic!("{method} {path} on InfluxDB 2.x answered 404"))
}

/// [`v2_api`], with `None` for a 404 answer.
async fn v2_api_or_missing(
    method: reqwest::Method,
    path: &str,
    query: &[(&str, &str)],
    body: Option<Json>,
) -> Option<Json> {
    let url = format!("{}/{path}", Server::V2.url().trim_end_matches('/'));
    let token = Server::V2.token().unwrap_or_default();
    let mut request = reqwest::Client::new()
        .request(method.clone(), &url)
        .query(query)
        .header("Authorization", format!("Token {token}"))
        .timeout(Duration::from_secs(30));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method} {path} on InfluxDB 2.x: {e}"));
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    if status == reqwest::StatusCode::NOT_FOUND {
        return None;
    }
    assert!(
        status.is_success(),
        "{method} {path} on InfluxDB 2.x answered {status}: {text}"
    );
    Some(if text.trim().is_empty() {
        Json::Null
    } else {
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e}): {text}"))
    })
}

/// The id of the test organisation (`GET /api/v2/orgs?org=NAME`).
pub async fn v2_org_id() -> String {
    let org = Server::V2.org().unwrap_or_default();
    let answer = v2_api(reqwest::Method::GET, "api/v2/orgs", &[("org", &org)], None).await;
    answer["orgs"][0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no organisation `{org}` on InfluxDB 2.x: {answer}"))
        .to_owned()
}

/// The DBRP mappings, explicit and virtual, of database `database` or bucket `bucket_id`
/// (`GET /api/v2/dbrps?orgID=..`, filtered here: the server's own filters leave the virtual
/// mappings out).
pub async fn v2_dbrps(org_id: &str, database: &str, bucket_id: &str) -> Vec<Json> {
    let answer = v2_api(
        reqwest::Method::GET,
        "api/v2/dbrps",
        &[("orgID", org_id)],
        None,
    )
    .await;
    answer["content"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|m| m["database"] == database || m["bucketID"] == bucket_id)
        .collect()
}

/// The id of the bucket named `name` in the test organisation, `None` when there is none.
pub async fn v2_bucket_id(name: &str) -> Option<String> {
    let org = Server::V2.org().unwrap_or_default();
    // 2.x answers 404 for a name no bucket has.
    let answer = v2_api_or_missing(
        reqwest::Method::GET,
        "api/v2/buckets",
        &[("org", &org), ("name", name)],
        None,
    )
    .await?;
    answer["buckets"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|b| b["name"] == name)
        .and_then(|b| b["id"].as_str())
        .map(str::to_owned)
}

/// Creates a bucket and its DBRP mapping (database = the bucket's name, retention policy
/// `autogen`, default), so InfluxQL over `/query` reads the bucket under the same name.
/// Returns the bucket's id.
async fn v2_create_bucket(org_id: &str, name: &str) -> String {
    let bucket = v2_api(
        reqwest::Method::POST,
        "api/v2/buckets",
        &[],
        Some(json!({ "orgID": org_id, "name": name, "retentionRules": [] })),
    )
    .await;
    let bucket_id = bucket["id"]
        .as_str()
        .unwrap_or_else(|| panic!("creating bucket `{name}`: no id in {bucket}"))
        .to_owned();
    v2_api(
        reqwest::Method::POST,
        "api/v2/dbrps",
        &[],
        Some(json!({
            "bucketID": bucket_id,
            "database": name,
            "retention_policy": "autogen",
            "default": true,
            "orgID": org_id,
        })),
    )
    .await;
    bucket_id
}

/// Deletes a bucket (its DBRP mappings go with it).
async fn v2_delete_bucket(bucket_id: &str) {
    v2_api(
        reqwest::Method::DELETE,
        &format!("api/v2/buckets/{bucket_id}"),
        &[],
        None,
    )
    .await;
}

// ---------------------------------------------------------------- databases and data

/// A random database (1.x) or bucket with its DBRP mapping (2.x), dropped when the value
/// goes away (even when the test panics).
pub struct TempDb {
    /// The database's (bucket's) name.
    pub name: String,
    /// The server it lives on.
    pub server: Server,
    /// 2.x: the organisation's and the bucket's ids, when [`TempDb::new`] made the bucket.
    pub ids: Option<(String, String)>,
}

impl TempDb {
    /// A new name on 1.x (the database is created by the first [`load`]); on 2.x a new
    /// bucket with an explicit DBRP mapping, made through the HTTP API (not through ldd).
    pub async fn new(server: Server) -> Self {
        let name = rand_name("ldd_test");
        let ids = match server {
            Server::V1 => None,
            Server::V2 => {
                let org_id = v2_org_id().await;
                let bucket_id = v2_create_bucket(&org_id, &name).await;
                Some((org_id, bucket_id))
            }
        };
        TempDb { name, server, ids }
    }

    /// A new name only, for a test that creates the database (bucket) itself; dropped
    /// through ldd's own [`InfluxConnection::drop_database`].
    pub fn unmade(server: Server) -> Self {
        TempDb {
            name: rand_name("ldd_test"),
            server,
            ids: None,
        }
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        let server = self.server;
        let ids = self.ids.clone();
        // Runs on its own thread and runtime: Drop cannot await, and the test's runtime
        // may be shutting down. Failures are reported, not raised (a panic here would abort
        // a test that is already unwinding).
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Runtime::new() else {
                return;
            };
            rt.block_on(async {
                match ids {
                    None => {
                        if let Ok(conn) = InfluxConnection::connect(config(
                            server,
                            QueryLanguage::Influxql,
                            RowShape::Wide,
                        ))
                        .await
                        {
                            if let Err(e) = conn.drop_database(&name).await {
                                eprintln!("dropping test database `{name}`: {e}");
                            }
                        }
                    }
                    Some((_, bucket_id)) => v2_delete_bucket(&bucket_id).await,
                }
            });
        })
        .join();
    }
}

/// Loads generated points into `db`/`table` through ldd's own loader (InfluxQL
/// connection: `/write` on 1.x, `/api/v2/write` on 2.x).
pub async fn load(server: Server, db: &str, table: &str, generator: &GeneratorConfig) {
    let conn = influxql(server, RowShape::Wide).await;
    let written = conn
        .load_generated(db, table, generator, &|_| {})
        .await
        .unwrap_or_else(|e| panic!("loading generated points into {server:?}: {e}"));
    assert_eq!(written, generator.records);
}

// ---------------------------------------------------------------- records

/// The identity of a wide record: `seq` and the tags.
pub fn identity(r: &Record) -> String {
    format!(
        "{:?}|{:?}|{:?}",
        r.get("seq"),
        r.get("device"),
        r.get("site")
    )
}

/// The identity of a narrow record: time, tags and field.
pub fn narrow_identity(r: &Record) -> String {
    format!(
        "{:?}|{:?}|{:?}|{:?}",
        r.get("_time"),
        r.get("device"),
        r.get("site"),
        r.get("_field")
    )
}

/// The record's time.
pub fn time_of(r: &Record) -> i64 {
    match r.get("_time") {
        Some(Value::Timestamp(t)) => *t,
        other => panic!("record without _time: {other:?}"),
    }
}
