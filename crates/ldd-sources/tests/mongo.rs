//! The MongoDB source against a real MongoDB-wire server (FerretDB under scripts/test.sh),
//! at `LDD_TEST_MONGO_URL`. Opt-in (`--include-ignored`); fails loudly without the server.

#![cfg(all(feature = "mongo", feature = "fixtures"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use ldd_core::testing::{check_source, MemorySink};
use ldd_core::{
    export, DatasetSpec, ExportControl, ExportOptions, FieldEquals, GeneratorConfig,
    JobCountPartitioner, Record, TimeRange, Value,
};
use ldd_sources::mongo::{MongoConfig, MongoConnection};
use ldd_sources::{Connection, Fixtures};

const IGNORE: &str = "needs a MongoDB-wire server (LDD_TEST_MONGO_URL); scripts/test.sh runs it";

async fn connect() -> MongoConnection {
    let _ = IGNORE;
    let url = std::env::var("LDD_TEST_MONGO_URL").unwrap_or_else(|_| {
        panic!("LDD_TEST_MONGO_URL is not set: run scripts/test.sh (it starts FerretDB)")
    });
    MongoConnection::connect(MongoConfig {
        url,
        ..Default::default()
    })
    .await
    .expect("the MongoDB-wire server answers")
}

/// A loaded collection in a fresh database, dropped at the end of the test.
struct Loaded {
    conn: MongoConnection,
    database: String,
    table: String,
}

impl Loaded {
    async fn new(config: GeneratorConfig) -> Self {
        let conn = connect().await;
        let database = format!("ldd_test_{}", uuid::Uuid::new_v4().simple());
        let table = "points".to_owned();
        conn.load_generated(&database, &table, &config, &|_| {})
            .await
            .unwrap();
        Loaded {
            conn,
            database,
            table,
        }
    }

    fn spec(&self) -> DatasetSpec {
        DatasetSpec {
            time_field: Some("_time".into()),
            ..DatasetSpec::new(&self.database, &self.table)
        }
    }

    async fn drop(self) {
        self.conn
            .drop_dataset(&self.database, &self.table)
            .await
            .unwrap();
        self.conn.drop_dataset(&self.database, "").await.unwrap();
    }
}

fn seq(r: &Record) -> String {
    format!("{:?}", r.get("seq"))
}

fn generated(records: u64, points_per_timestamp: u32) -> GeneratorConfig {
    GeneratorConfig {
        records,
        points_per_timestamp,
        devices: 7,
        sites: 3,
        ..Default::default()
    }
}

#[tokio::test]
#[ignore = "needs a MongoDB-wire server (LDD_TEST_MONGO_URL); scripts/test.sh runs it"]
async fn conformance_on_small_and_edge_datasets() {
    for (records, ppt) in [(0, 1), (1, 1), (2_000, 500)] {
        let loaded = Loaded::new(generated(records, ppt)).await;
        let source = loaded.conn.open(&loaded.spec()).await.unwrap();
        let report = check_source(source.as_ref(), 8, seq, |_| true)
            .await
            .unwrap();
        assert_eq!(report.counted, records);
        assert_eq!(report.read_by_ranges, records);
        loaded.drop().await;
    }
}

#[tokio::test]
#[ignore = "needs a MongoDB-wire server (LDD_TEST_MONGO_URL); scripts/test.sh runs it"]
async fn conformance_on_100k_with_filter_and_time_range() {
    let config = generated(100_000, 1);
    let loaded = Loaded::new(config.clone()).await;
    let source = loaded.conn.open(&loaded.spec()).await.unwrap();
    let report = check_source(source.as_ref(), 48, seq, |_| true)
        .await
        .unwrap();
    assert_eq!(report.counted, 100_000);
    eprintln!("strategy on this server: {}", report.strategy);

    let (start, end) = (config.time_of(10_000), config.time_of(60_000));
    let mut spec = loaded.spec();
    spec.filters.push(FieldEquals {
        field: "device".into(),
        value: "dev-00003".into(),
    });
    spec.time_range = Some(TimeRange {
        start_ns: Some(start),
        end_ns: Some(end),
    });
    let expected = (10_000..60_000).filter(|i| i % 7 == 3).count() as u64;
    let source = loaded.conn.open(&spec).await.unwrap();
    let report = check_source(source.as_ref(), 8, seq, |r| {
        let t = match r.get("_time") {
            Some(Value::Timestamp(t)) => *t,
            _ => return false,
        };
        r.get("device") == Some(&Value::from("dev-00003")) && t >= start && t < end
    })
    .await
    .unwrap();
    assert_eq!(report.counted, expected);
    loaded.drop().await;
}

#[tokio::test]
#[ignore = "needs a MongoDB-wire server (LDD_TEST_MONGO_URL); scripts/test.sh runs it"]
async fn catalogue_detail_and_time_range() {
    let config = generated(500, 1);
    let loaded = Loaded::new(config.clone()).await;
    let datasets = loaded.conn.list_datasets().await.unwrap();
    assert!(datasets
        .iter()
        .any(|d| d.database == loaded.database && d.table == "points"));
    assert!(datasets.iter().all(|d| d.database != "admin"));
    let range = loaded.conn.time_range(&loaded.spec()).await.unwrap();
    // BSON dates keep milliseconds.
    assert_eq!(range, Some((config.time_of(0), config.time_of(499))));
    let detail = loaded.conn.detail(&loaded.spec()).await.unwrap();
    assert_eq!(detail.count, 500);
    assert!(detail.columns.contains(&"temperature".to_string()));
    assert!(!detail.columns.contains(&"_id".to_string()));
    let mut sorted = detail.columns.clone();
    sorted.sort();
    assert_eq!(sorted, detail.columns);
    assert_eq!(detail.first.unwrap().get("seq"), Some(&Value::Int(0)));
    assert_eq!(detail.last.unwrap().get("seq"), Some(&Value::Int(499)));
    loaded.drop().await;
}

#[tokio::test]
#[ignore = "needs a MongoDB-wire server (LDD_TEST_MONGO_URL); scripts/test.sh runs it"]
async fn hostile_input_injects_nothing() {
    let loaded = Loaded::new(generated(300, 1)).await;
    for value in [r#"{"$gt": ""}"#, "$where", "' || '1'=='1", "dev-00001\0"] {
        let mut spec = loaded.spec();
        spec.filters.push(FieldEquals {
            field: "device".into(),
            value: value.into(),
        });
        let source = loaded.conn.open(&spec).await.unwrap();
        assert_eq!(
            source.count().await.unwrap(),
            0,
            "{value:?} matched documents"
        );
    }
    for field in ["$where", "a\0b", ""] {
        let mut spec = loaded.spec();
        spec.filters.push(FieldEquals {
            field: field.into(),
            value: "x".into(),
        });
        assert!(loaded.conn.open(&spec).await.is_err(), "{field:?} accepted");
    }
    let spec = DatasetSpec::new("bad/db", "points");
    assert!(loaded.conn.open(&spec).await.is_err());
    // The collection is intact.
    let source = loaded.conn.open(&loaded.spec()).await.unwrap();
    assert_eq!(source.count().await.unwrap(), 300);
    loaded.drop().await;
}

#[tokio::test]
#[ignore = "needs a MongoDB-wire server (LDD_TEST_MONGO_URL); scripts/test.sh runs it"]
async fn exports_through_the_engine() {
    let loaded = Loaded::new(generated(20_000, 1)).await;
    let source = loaded.conn.open(&loaded.spec()).await.unwrap();
    let sink = Arc::new(MemorySink::new(4));
    let manifest = export(
        source,
        sink,
        &JobCountPartitioner::default(),
        ExportOptions::default(),
        ExportControl::default(),
    )
    .await
    .unwrap();
    assert_eq!(manifest.total_records, 20_000);
    assert_eq!(manifest.counted_records, 20_000);
    loaded.drop().await;
}
