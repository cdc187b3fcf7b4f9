//! Helpers of the InfluxDB integration tests: the server address from the environment,
//! random names, connections per language, and a database that drops itself.

#![allow(dead_code, unreachable_pub)]

use ldd_core::{GeneratorConfig, Record, Value};
use ldd_sources::influx::{InfluxConfig, InfluxConnection, QueryLanguage, RowShape};
use ldd_sources::Connection;

/// The server the tests use.
pub fn url() -> String {
    match std::env::var("LDD_TEST_INFLUX_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "LDD_TEST_INFLUX_URL is not set: these tests need a real InfluxDB \
             (e.g. LDD_TEST_INFLUX_URL=http://127.0.0.1:8086; scripts/test.sh starts one)"
        ),
    }
}

/// Whether the server is allowed to lack Flux (`LDD_TEST_INFLUX_NO_FLUX=1`, for InfluxDB
/// builds without it such as Debian's 1.6).
pub fn flux_may_be_missing() -> bool {
    std::env::var("LDD_TEST_INFLUX_NO_FLUX").is_ok_and(|v| v == "1")
}

/// A random name with a prefix.
pub fn rand_name(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}

/// A config for the test server.
pub fn config(language: QueryLanguage, shape: RowShape) -> InfluxConfig {
    let mut cfg = InfluxConfig::new(url());
    cfg.language = language;
    cfg.row_shape = shape;
    cfg.chunk_size = 2_000;
    cfg
}

/// Connects with InfluxQL.
pub async fn influxql(shape: RowShape) -> InfluxConnection {
    InfluxConnection::connect(config(QueryLanguage::Influxql, shape))
        .await
        .expect("connecting with InfluxQL")
}

/// Connects with Flux; `None` only when the server lacks Flux and that is allowed.
pub async fn flux(shape: RowShape) -> Option<InfluxConnection> {
    match InfluxConnection::connect(config(QueryLanguage::Flux, shape)).await {
        Ok(conn) => Some(conn),
        Err(e) if flux_may_be_missing() => {
            eprintln!("Flux is unavailable and LDD_TEST_INFLUX_NO_FLUX=1: skipping ({e})");
            None
        }
        Err(e) => panic!(
            "the InfluxDB server at {} has no Flux ({e}); enable flux-enabled = true in [http], \
             or set LDD_TEST_INFLUX_NO_FLUX=1 for a server without Flux",
            url()
        ),
    }
}

/// Connects in either language.
pub async fn connect(language: QueryLanguage, shape: RowShape) -> Option<InfluxConnection> {
    match language {
        QueryLanguage::Flux => flux(shape).await,
        _ => Some(influxql(shape).await),
    }
}

/// A random database dropped when the value goes away (even when the test panics).
pub struct TempDb {
    pub name: String,
}

impl TempDb {
    pub fn new() -> Self {
        TempDb {
            name: rand_name("ldd_test"),
        }
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Runs on its own thread and runtime: Drop cannot await, and the test's runtime
        // may be shutting down.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Runtime::new() else {
                return;
            };
            rt.block_on(async {
                if let Ok(conn) =
                    InfluxConnection::connect(config(QueryLanguage::Influxql, RowShape::Wide)).await
                {
                    let _ = conn.drop_database(&name).await;
                }
            });
        })
        .join();
    }
}

/// Loads `records` generated points into `db`/`table` through InfluxQL.
pub async fn load(db: &str, table: &str, generator: &GeneratorConfig) {
    let conn = influxql(RowShape::Wide).await;
    let written = conn
        .load_generated(db, table, generator, &|_| {})
        .await
        .expect("loading generated points");
    assert_eq!(written, generator.records);
}

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
