//! InfluxDB source tests.
//!
//! Hermetic tests (escaping, line protocol, configuration) always run. The others need real
//! servers: they are `#[ignore]`d and fail when their environment is missing. `v1_*` tests
//! use InfluxDB 1.8 with Flux at `LDD_TEST_INFLUX_URL`; `v2_*` tests use InfluxDB 2.x at
//! `LDD_TEST_INFLUX2_URL` with `LDD_TEST_INFLUX2_TOKEN` (an operator token) and
//! `LDD_TEST_INFLUX2_ORG`. Run them with `cargo test -p ldd-sources --features influx --test
//! influx -- --include-ignored` and those variables set (scripts/test.sh does). Every
//! scenario runs on both servers with InfluxQL and with Flux; a 1.x server without Flux
//! fails the Flux tests unless `LDD_TEST_INFLUX_NO_FLUX=1`. Each test writes into its own
//! random database (1.x) or bucket with a DBRP mapping (2.x) and drops it.

#![cfg(all(feature = "influx", feature = "fixtures"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod influx_common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use futures::TryStreamExt;
use influx_common::{connect, identity, load, narrow_identity, time_of, Server, TempDb};
use ldd_core::testing::{check_source, MemorySink};
use ldd_core::{
    ChunkRange, DataSource, DatasetSpec, ExportControl, ExportOptions, FieldEquals, Format,
    GeneratorConfig, JobCountPartitioner, Record, SplitKind, TimeRange, Value,
};
use ldd_sources::influx::escape::{flux_string, influxql_ident, influxql_string};
use ldd_sources::influx::{
    write_line, InfluxConfig, InfluxConnection, QueryLanguage, RowShape, STRATEGY,
};
use ldd_sources::{Connection, Error, Fixtures};

/// Names and values meant to break out of a quoted literal.
const HOSTILE: &[&str] = &[
    "'; DROP MEASUREMENT real; --",
    "\") |> drop(columns: [\"_value\"]) |> yield(name: \"x",
    "\" OR \"device\" != \"",
    "' OR '1'='1",
    "x\\' OR 1=1 --",
    "back\\slash\\",
    "${secrets.get(key: \"k\")}",
    "new\nline",
    "",
];

async fn read_all(source: &dyn DataSource, range: &ChunkRange) -> Vec<Record> {
    let batches: Vec<Vec<Record>> = source
        .read(range)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    batches.into_iter().flatten().collect()
}

fn generator(records: u64) -> GeneratorConfig {
    GeneratorConfig {
        records,
        ..Default::default()
    }
}

// ---------------------------------------------------------------- hermetic

#[test]
fn hostile_names_are_quoted() {
    for value in HOSTILE {
        let ql = influxql_string(value).unwrap();
        assert!(ql.starts_with('\'') && ql.ends_with('\''));
        assert!(!ql.contains('\n'), "{ql}");
        // Every quote inside is escaped: strip escapes pairwise, no bare quote may remain.
        let inner = &ql[1..ql.len() - 1];
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    chars.next();
                }
                '\'' => panic!("bare quote in {ql}"),
                _ => {}
            }
        }
        let flux = flux_string(value).unwrap();
        let inner = &flux[1..flux.len() - 1];
        let mut chars = inner.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    chars.next();
                }
                '"' => panic!("bare quote in {flux}"),
                '$' => assert_ne!(chars.peek(), Some(&'{'), "interpolation in {flux}"),
                '\n' => panic!("raw newline in {flux}"),
                _ => {}
            }
        }
        if !value.is_empty() {
            let ident = influxql_ident(value).unwrap();
            assert!(ident.starts_with('"') && ident.ends_with('"'));
        }
    }
    for nul in ["a\0", "\0"] {
        assert!(matches!(influxql_string(nul), Err(Error::InvalidInput(_))));
        assert!(matches!(influxql_ident(nul), Err(Error::InvalidInput(_))));
        assert!(matches!(flux_string(nul), Err(Error::InvalidInput(_))));
    }
}

#[test]
fn generated_records_become_line_protocol() {
    let cfg = generator(10);
    let mut lines = String::new();
    for i in 0..10 {
        write_line(&cfg.record(i), "m x", &mut lines).unwrap();
    }
    let first = lines.lines().next().unwrap();
    assert!(
        first.starts_with("m\\ x,device=dev-00000,site=site-00 seq=0i,"),
        "{first}"
    );
    assert!(first.ends_with(" 1704067200000000000"), "{first}");
    assert_eq!(lines.lines().count(), 10);
    let err = write_line(&cfg.record(0), "bad\nname", &mut lines).unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err}");
}

#[test]
fn config_debug_hides_secrets() {
    let mut cfg = InfluxConfig::new("http://127.0.0.1:8086");
    cfg.token = Some("tok-123-secret".into());
    assert!(!format!("{cfg:?}").contains("tok-123-secret"));
}

#[tokio::test]
async fn unreachable_servers_fail_with_retryable_errors_and_no_secrets() {
    let mut cfg = InfluxConfig::new("http://127.0.0.1:9");
    cfg.token = Some("tok-123-secret".into());
    cfg.request_timeout_secs = 5;
    let err = InfluxConnection::connect(cfg).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    let text = format!("{err} {err:?}");
    assert!(!text.contains("tok-123-secret"), "{text}");
    let err = InfluxConnection::connect(InfluxConfig::new("127.0.0.1:8086"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err}");
}

// ---------------------------------------------------------------- scenarios

async fn edge_cases(server: Server, language: QueryLanguage) {
    let Some(conn) = connect(server, language, RowShape::Wide).await else {
        return;
    };
    let db = TempDb::new(server).await;
    load(server, &db.name, "one", &generator(1)).await;
    let shared = GeneratorConfig {
        records: 1_000,
        points_per_timestamp: 100,
        ..Default::default()
    };
    load(server, &db.name, "shared", &shared).await;

    // A measurement that was never written.
    let source = conn
        .open(&DatasetSpec::new(&db.name, "none"))
        .await
        .unwrap();
    let report = check_source(source.as_ref(), 4, identity, |_| true)
        .await
        .unwrap();
    assert_eq!((report.counted, report.ranges), (0, 0));

    // One point.
    let source = conn.open(&DatasetSpec::new(&db.name, "one")).await.unwrap();
    let report = check_source(source.as_ref(), 4, identity, |_| true)
        .await
        .unwrap();
    assert_eq!((report.counted, report.ranges), (1, 1));
    assert_eq!(report.strategy, STRATEGY);

    // 100 points per timestamp: every cut falls on a shared timestamp and must not split it.
    let source = conn
        .open(&DatasetSpec::new(&db.name, "shared"))
        .await
        .unwrap();
    let report = check_source(source.as_ref(), 7, identity, |_| true)
        .await
        .unwrap();
    assert_eq!(report.counted, 1_000);
    assert!(report.ranges > 1, "{report:?}");
    let split = source.split(7, 1_000).await.unwrap();
    let SplitKind::Ranges(ranges) = split.kind else {
        panic!("expected ranges: {split:?}");
    };
    let mut seen_times = HashSet::new();
    for planned in &ranges {
        assert_eq!(planned.expected_records % 100, 0, "{planned:?}");
        let times: HashSet<i64> = read_all(source.as_ref(), &planned.range)
            .await
            .iter()
            .map(time_of)
            .collect();
        assert!(
            times.is_disjoint(&seen_times),
            "a timestamp straddles two ranges"
        );
        seen_times.extend(times);
    }

    // Skewed: 1000 points over 1000 s, then 9000 within 9 ms. Cuts in the dense part need
    // finer histograms; chunks still come out balanced and exact.
    let sparse = GeneratorConfig {
        records: 1_000,
        interval_ns: 1_000_000_000,
        ..Default::default()
    };
    let dense = GeneratorConfig {
        records: 9_000,
        interval_ns: 1_000,
        start_ns: sparse.start_ns + 2_000_000_000_000,
        ..Default::default()
    };
    load(server, &db.name, "skewed", &sparse).await;
    load(server, &db.name, "skewed", &dense).await;
    let skewed = conn
        .open(&DatasetSpec::new(&db.name, "skewed"))
        .await
        .unwrap();
    let timed = |r: &Record| format!("{}|{}", time_of(r), identity(r));
    let report = check_source(skewed.as_ref(), 10, timed, |_| true)
        .await
        .unwrap();
    assert_eq!((report.counted, report.ranges), (10_000, 10));
    let split = skewed.split(10, 10_000).await.unwrap();
    eprintln!("{server:?} {language:?} skewed: {:?}", split.strategy);
    assert!(split.strategy.queries > 3, "{:?}", split.strategy);
    let SplitKind::Ranges(ranges) = split.kind else {
        panic!("expected ranges");
    };
    for r in &ranges {
        assert!((900..=1_100).contains(&r.expected_records), "{r:?}");
    }

    // Both languages read the same records.
    if language == QueryLanguage::Flux {
        let ql = influx_common::influxql(server, RowShape::Wide).await;
        let ql_source = ql
            .open(&DatasetSpec::new(&db.name, "shared"))
            .await
            .unwrap();
        let mut a = read_all(ql_source.as_ref(), &ChunkRange::All).await;
        let mut b = read_all(source.as_ref(), &ChunkRange::All).await;
        a.sort_by_key(identity);
        b.sort_by_key(identity);
        assert_eq!(a.len(), 1_000);
        assert_eq!(a, b);
    }
}

async fn large(server: Server, language: QueryLanguage) {
    let Some(conn) = connect(server, language, RowShape::Wide).await else {
        return;
    };
    let db = TempDb::new(server).await;
    let gen = generator(100_000);
    let started = Instant::now();
    load(server, &db.name, "iot", &gen).await;
    eprintln!("loaded 100000 points in {:?}", started.elapsed());

    let source = conn.open(&DatasetSpec::new(&db.name, "iot")).await.unwrap();
    let started = Instant::now();
    assert_eq!(source.count().await.unwrap(), 100_000);
    let split = source.split(48, 100_000).await.unwrap();
    eprintln!(
        "{server:?} {language:?}: count + split in {:?}: {:?}",
        started.elapsed(),
        split.strategy
    );
    assert_eq!(split.strategy.name, STRATEGY);
    assert_eq!(split.strategy.reason, None);
    let SplitKind::Ranges(ranges) = &split.kind else {
        panic!("expected ranges");
    };
    assert_eq!(ranges.len(), 48);
    let ideal = 100_000.0 / 48.0;
    for r in ranges {
        let off = (r.expected_records as f64 - ideal).abs() / ideal;
        assert!(off <= 0.1, "unbalanced range {r:?}");
    }

    let started = Instant::now();
    let report = check_source(source.as_ref(), 48, identity, |_| true)
        .await
        .unwrap();
    eprintln!(
        "{server:?} {language:?}: conformance in {:?}: {report:?}",
        started.elapsed()
    );
    assert_eq!(report.counted, 100_000);
    assert_eq!(report.read_by_ranges, 100_000);

    // Tag filter and time range.
    let start_ns = gen.time_of(20_000) + 1;
    let end_ns = gen.time_of(70_000);
    let mut spec = DatasetSpec::new(&db.name, "iot");
    spec.filters = vec![FieldEquals {
        field: "site".into(),
        value: "site-03".into(),
    }];
    spec.time_range = Some(TimeRange {
        start_ns: Some(start_ns),
        end_ns: Some(end_ns),
    });
    let expected = (0..gen.records)
        .map(|i| gen.record(i))
        .filter(|r| r.get("site") == Some(&Value::from("site-03")))
        .filter(|r| (start_ns..end_ns).contains(&time_of(r)))
        .count() as u64;
    let source = conn.open(&spec).await.unwrap();
    let report = check_source(source.as_ref(), 10, identity, |r| {
        r.get("site") == Some(&Value::from("site-03")) && (start_ns..end_ns).contains(&time_of(r))
    })
    .await
    .unwrap();
    assert_eq!(report.counted, expected);
    assert!(expected > 1_000);

    // Projection: only `seq` and `device` follow `_time` and `_measurement`.
    spec.filters.clear();
    spec.projection = Some(vec!["seq".into(), "device".into()]);
    let source = conn.open(&spec).await.unwrap();
    let records = read_all(source.as_ref(), &ChunkRange::All).await;
    assert_eq!(records.len(), 70_000 - 20_001);
    for r in records.iter().take(100) {
        let names: Vec<_> = r.fields.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["_time", "_measurement", "device", "seq"]);
    }
}

async fn narrow(server: Server, language: QueryLanguage) {
    let Some(conn) = connect(server, language, RowShape::Narrow).await else {
        return;
    };
    let db = TempDb::new(server).await;
    let gen = GeneratorConfig {
        records: 1_000,
        points_per_timestamp: 4,
        ..Default::default()
    };
    load(server, &db.name, "iot", &gen).await;
    let source = conn.open(&DatasetSpec::new(&db.name, "iot")).await.unwrap();
    let report = check_source(source.as_ref(), 6, narrow_identity, |r| {
        r.get("_field").is_some() && r.get("_value").is_some()
    })
    .await
    .unwrap();
    // Six fields per point.
    assert_eq!(report.counted, 6_000);
    let records = read_all(source.as_ref(), &ChunkRange::All).await;
    let seq0 = records
        .iter()
        .find(|r| {
            r.get("_field") == Some(&Value::from("seq")) && r.get("_value") == Some(&Value::Int(0))
        })
        .expect("seq 0 as a narrow record");
    let names: Vec<_> = seq0.fields.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "_time",
            "_measurement",
            "device",
            "site",
            "_field",
            "_value"
        ]
    );
}

async fn catalogue(server: Server, language: QueryLanguage) {
    let Some(conn) = connect(server, language, RowShape::Wide).await else {
        return;
    };
    let db = TempDb::new(server).await;
    let gen = generator(500);
    load(server, &db.name, "alpha", &gen).await;
    load(server, &db.name, "beta", &generator(3)).await;

    let datasets = conn.list_datasets().await.unwrap();
    let mut ours: Vec<_> = datasets
        .iter()
        .filter(|d| d.database == db.name || d.database.starts_with(&format!("{}/", db.name)))
        .map(|d| d.table.as_str())
        .collect();
    ours.sort();
    assert_eq!(ours, ["alpha", "beta"], "{datasets:?}");
    assert!(datasets.iter().all(|d| !d.database.starts_with('_')));
    let bucket = datasets
        .iter()
        .find(|d| d.table == "alpha" && d.database.starts_with(&db.name))
        .map(|d| d.database.clone())
        .unwrap();

    let spec = DatasetSpec::new(&bucket, "alpha");
    let range = conn.time_range(&spec).await.unwrap();
    assert_eq!(range, Some((gen.time_of(0), gen.time_of(499))));
    let detail = conn.detail(&spec).await.unwrap();
    assert_eq!(detail.count, 500);
    assert_eq!(detail.start_ns, Some(gen.time_of(0)));
    assert_eq!(detail.end_ns, Some(gen.time_of(499)));
    assert_eq!(
        detail.columns,
        [
            "_measurement",
            "_time",
            "battery",
            "device",
            "humidity",
            "ok",
            "pressure",
            "seq",
            "site",
            "temperature"
        ]
    );
    let first = detail.first.unwrap();
    assert_eq!(first.get("seq"), Some(&Value::Int(0)));
    assert_eq!(first.get("temperature"), gen.record(0).get("temperature"));
    assert_eq!(detail.last.unwrap().get("seq"), Some(&Value::Int(499)));

    let mut filtered = spec.clone();
    filtered.filters = vec![FieldEquals {
        field: "device".into(),
        value: "dev-00007".into(),
    }];
    let detail = conn.detail(&filtered).await.unwrap();
    assert_eq!(detail.count, 5);
    assert_eq!(detail.first.unwrap().get("seq"), Some(&Value::Int(7)));
    assert_eq!(
        conn.time_range(&DatasetSpec::new(&bucket, "none"))
            .await
            .unwrap(),
        None
    );

    // A missing database is NotFound.
    let missing = DatasetSpec::new(influx_common::rand_name("missing"), "alpha");
    let err = conn.detail(&missing).await.unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err}");
}

async fn hostile(server: Server, language: QueryLanguage) {
    let Some(conn) = connect(server, language, RowShape::Wide).await else {
        return;
    };
    let db = TempDb::new(server).await;
    load(server, &db.name, "real", &generator(500)).await;
    let real = DatasetSpec::new(&db.name, "real");
    let real_count = || async { conn.open(&real).await.unwrap().count().await.unwrap() };
    assert_eq!(real_count().await, 500);

    // A hostile tag value matches nothing rather than everything.
    for value in HOSTILE {
        let mut spec = real.clone();
        spec.filters = vec![FieldEquals {
            field: "device".into(),
            value: (*value).into(),
        }];
        let source = conn.open(&spec).await.unwrap();
        let report = check_source(source.as_ref(), 4, identity, |_| false)
            .await
            .unwrap_or_else(|e| panic!("{value:?}: {e}"));
        assert_eq!(report.counted, 0, "{value:?}");
    }

    // A hostile tag key is not a tag: a clear error, no query.
    let mut spec = real.clone();
    spec.filters = vec![FieldEquals {
        field: "device\" = 'x' OR \"site".into(),
        value: "x".into(),
    }];
    let err = conn.open_source(&spec).await.unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err}");

    // Hostile measurement and database names find nothing or fail; the data stays.
    for name in HOSTILE.iter().filter(|n| !n.is_empty()) {
        if let Ok(source) = conn.open(&DatasetSpec::new(&db.name, *name)).await {
            assert_eq!(source.count().await.unwrap_or(0), 0, "{name:?}");
            assert!(read_all_or_empty(source.as_ref()).await.is_empty());
        }
        if let Ok(source) = conn.open(&DatasetSpec::new(*name, "real")).await {
            assert_eq!(source.count().await.unwrap_or(0), 0, "{name:?}");
        }
        let _ = conn.time_range(&DatasetSpec::new(&db.name, *name)).await;
    }
    assert_eq!(real_count().await, 500);

    // A hostile measurement name written and read back exactly.
    let name =
        "h \"q\" 'a', x=1; DROP MEASUREMENT real; -- \") |> drop(columns: [\"_value\"]) ${x}";
    load(server, &db.name, name, &generator(50)).await;
    let spec = DatasetSpec::new(&db.name, name);
    let source = conn.open(&spec).await.unwrap();
    let report = check_source(source.as_ref(), 3, identity, |r| {
        r.get("_measurement") == Some(&Value::from(name))
    })
    .await
    .unwrap();
    assert_eq!(report.counted, 50);
    let datasets = conn.list_datasets().await.unwrap();
    assert!(datasets.iter().any(|d| d.table == name), "{datasets:?}");
    assert_eq!(real_count().await, 500);
    // Dropping it leaves the real measurement intact.
    conn.drop_dataset(&db.name, name).await.unwrap();
    assert_eq!(conn.open(&spec).await.unwrap().count().await.unwrap(), 0);
    assert_eq!(real_count().await, 500);
}

async fn read_all_or_empty(source: &dyn DataSource) -> Vec<Record> {
    match source.read(&ChunkRange::All).await {
        Ok(stream) => stream
            .try_collect::<Vec<_>>()
            .await
            .map(|b| b.into_iter().flatten().collect())
            .unwrap_or_default(),
        Err(_) => Vec::new(),
    }
}

async fn engine_export(server: Server, language: QueryLanguage) {
    let Some(conn) = connect(server, language, RowShape::Wide).await else {
        return;
    };
    let db = TempDb::new(server).await;
    load(server, &db.name, "iot", &generator(20_000)).await;
    let source = conn.open(&DatasetSpec::new(&db.name, "iot")).await.unwrap();
    let sink = Arc::new(MemorySink::new(4));
    let options = ExportOptions {
        format: Format::Jsonl,
        ..Default::default()
    };
    let manifest = ldd_core::export(
        source,
        sink.clone(),
        &JobCountPartitioner::default(),
        options,
        ExportControl::default(),
    )
    .await
    .unwrap();
    assert_eq!(manifest.counted_records, 20_000);
    assert_eq!(manifest.total_records, 20_000);
    assert_eq!(manifest.strategy.name, STRATEGY);
    assert_eq!(manifest.chunks.len(), 48);
    assert_eq!(
        manifest.partitions.iter().map(|p| p.records).sum::<u64>(),
        20_000
    );
    let mut seqs = HashSet::new();
    for partition in 0..4 {
        for stored in sink.partition_log(partition) {
            for record in ldd_core::decode(Format::Jsonl, &stored.message.payload).unwrap() {
                assert!(seqs.insert(format!("{:?}", record.get("seq"))));
            }
        }
    }
    assert_eq!(seqs.len(), 20_000);
}

// ---------------------------------------------------------------- the tests

/// One test of a scenario on one server in one language.
macro_rules! server_test {
    ($name:ident: V1, $language:ident, $scenario:ident) => {
        #[tokio::test]
        #[ignore = "needs InfluxDB 1.8 with Flux (LDD_TEST_INFLUX_URL); scripts/test.sh runs it"]
        async fn $name() {
            $scenario(Server::V1, QueryLanguage::$language).await;
        }
    };
    ($name:ident: V2, $language:ident, $scenario:ident) => {
        #[tokio::test]
        #[ignore = "needs InfluxDB 2.x (LDD_TEST_INFLUX2_URL, LDD_TEST_INFLUX2_TOKEN, LDD_TEST_INFLUX2_ORG); scripts/test.sh runs it"]
        async fn $name() {
            $scenario(Server::V2, QueryLanguage::$language).await;
        }
    };
}

/// Every scenario on both servers in both languages, each a test of its own.
macro_rules! every_server_and_language {
    ($($scenario:ident => $v1_ql:ident, $v1_flux:ident, $v2_ql:ident, $v2_flux:ident;)*) => {$(
        server_test!($v1_ql: V1, Influxql, $scenario);
        server_test!($v1_flux: V1, Flux, $scenario);
        server_test!($v2_ql: V2, Influxql, $scenario);
        server_test!($v2_flux: V2, Flux, $scenario);
    )*};
}

every_server_and_language! {
    edge_cases =>
        v1_influxql_edge_cases, v1_flux_edge_cases,
        v2_influxql_edge_cases, v2_flux_edge_cases;
    large =>
        v1_influxql_100k_points, v1_flux_100k_points,
        v2_influxql_100k_points, v2_flux_100k_points;
    narrow =>
        v1_influxql_narrow_shape, v1_flux_narrow_shape,
        v2_influxql_narrow_shape, v2_flux_narrow_shape;
    catalogue =>
        v1_influxql_catalogue, v1_flux_catalogue,
        v2_influxql_catalogue, v2_flux_catalogue;
    hostile =>
        v1_influxql_hostile_names, v1_flux_hostile_names,
        v2_influxql_hostile_names, v2_flux_hostile_names;
    engine_export =>
        v1_influxql_engine_export, v1_flux_engine_export,
        v2_influxql_engine_export, v2_flux_engine_export;
}

/// `auto` picks InfluxQL whenever `/query` answers, which both servers do (2.x through its
/// v1 compatibility API), and reports Flux as available.
async fn auto_prefers_influxql(server: Server) {
    let conn = InfluxConnection::connect(influx_common::config(
        server,
        QueryLanguage::Auto,
        RowShape::Wide,
    ))
    .await
    .unwrap();
    let info = conn.server();
    eprintln!("{server:?}: {info:?}");
    assert_eq!(info.language, QueryLanguage::Influxql, "{info:?}");
    assert!(info.influxql, "{info:?}");
    if !influx_common::flux_may_be_missing(server) {
        assert!(info.flux, "the server has no Flux: {info:?}");
    }
    let major = match server {
        Server::V1 => "1.",
        Server::V2 => "2.",
    };
    assert!(
        info.version
            .as_deref()
            .is_some_and(|v| v.starts_with(major)),
        "{server:?} reports version {:?}",
        info.version
    );
    conn.ping().await.unwrap();
    if !info.flux {
        let err = InfluxConnection::connect(influx_common::config(
            server,
            QueryLanguage::Flux,
            RowShape::Wide,
        ))
        .await
        .unwrap_err();
        assert!(matches!(err, Error::Unsupported(_)), "{err}");
    }
}

#[tokio::test]
#[ignore = "needs InfluxDB 1.8 with Flux (LDD_TEST_INFLUX_URL); scripts/test.sh runs it"]
async fn v1_auto_prefers_influxql_and_reports_flux() {
    auto_prefers_influxql(Server::V1).await;
}

#[tokio::test]
#[ignore = "needs InfluxDB 2.x (LDD_TEST_INFLUX2_URL, LDD_TEST_INFLUX2_TOKEN, LDD_TEST_INFLUX2_ORG); scripts/test.sh runs it"]
async fn v2_auto_prefers_influxql_and_reports_flux() {
    auto_prefers_influxql(Server::V2).await;
}

/// A wrong token fails connecting in every language with an error that says 401 /
/// unauthorized, is not worth retrying, and does not carry the token.
#[tokio::test]
#[ignore = "needs InfluxDB 2.x (LDD_TEST_INFLUX2_URL, LDD_TEST_INFLUX2_TOKEN, LDD_TEST_INFLUX2_ORG); scripts/test.sh runs it"]
async fn v2_wrong_token_is_a_clear_error_without_the_token() {
    let wrong = influx_common::rand_name("wrong-token");
    for language in [
        QueryLanguage::Auto,
        QueryLanguage::Influxql,
        QueryLanguage::Flux,
    ] {
        let mut cfg = influx_common::config(Server::V2, language, RowShape::Wide);
        cfg.token = Some(wrong.clone());
        let err = InfluxConnection::connect(cfg).await.unwrap_err();
        let text = format!("{err} {err:?}");
        eprintln!("{language:?}: {err}");
        assert!(
            matches!(err, Error::Server { status: 401, .. }),
            "{language:?}: {text}"
        );
        let shown = err.to_string();
        assert!(shown.contains("401"), "{language:?}: {shown}");
        assert!(
            shown.to_lowercase().contains("unauthorized"),
            "{language:?}: {shown}"
        );
        assert!(!err.is_retryable(), "{language:?}: {shown}");
        assert!(
            !text.contains(&wrong),
            "{language:?}: the token leaked: {text}"
        );
    }
}

/// On 2.x a database is a bucket: the test's bucket carries an explicit DBRP mapping that
/// goes when the bucket goes; ldd creates buckets (InfluxQL reads them through their virtual
/// mapping), writes and drops measurements in them, and deletes them.
#[tokio::test]
#[ignore = "needs InfluxDB 2.x (LDD_TEST_INFLUX2_URL, LDD_TEST_INFLUX2_TOKEN, LDD_TEST_INFLUX2_ORG); scripts/test.sh runs it"]
async fn v2_databases_are_buckets_with_dbrp_mappings() {
    use influx_common::{v2_bucket_id, v2_dbrps};

    // The helper's bucket: one explicit default mapping, gone with the bucket.
    let db = TempDb::new(Server::V2).await;
    let (org_id, bucket_id) = db.ids.clone().unwrap();
    let mappings = v2_dbrps(&org_id, &db.name, &bucket_id).await;
    assert_eq!(mappings.len(), 1, "{mappings:?}");
    assert_eq!(mappings[0]["bucketID"], bucket_id.as_str());
    assert_eq!(mappings[0]["retention_policy"], "autogen");
    assert_eq!(mappings[0]["default"], true);
    assert_eq!(mappings[0]["virtual"], false);
    let name = db.name.clone();
    drop(db);
    assert_eq!(v2_bucket_id(&name).await, None);
    let left = v2_dbrps(&org_id, &name, &bucket_id).await;
    assert!(left.is_empty(), "mappings outlived their bucket: {left:?}");

    // ldd's own create, load, drop.
    let db = TempDb::unmade(Server::V2);
    let ql = influx_common::influxql(Server::V2, RowShape::Wide).await;
    let flux = influx_common::flux(Server::V2, RowShape::Wide)
        .await
        .unwrap();
    ql.create_database(&db.name).await.unwrap();
    ql.create_database(&db.name).await.unwrap();
    assert!(v2_bucket_id(&db.name).await.is_some());
    load(Server::V2, &db.name, "m", &generator(10)).await;
    load(Server::V2, &db.name, "kept", &generator(5)).await;
    let spec = DatasetSpec::new(&db.name, "m");
    for conn in [&ql, &flux] {
        assert_eq!(conn.open(&spec).await.unwrap().count().await.unwrap(), 10);
    }
    ql.drop_dataset(&db.name, "m").await.unwrap();
    for conn in [&ql, &flux] {
        assert_eq!(conn.open(&spec).await.unwrap().count().await.unwrap(), 0);
        let kept = DatasetSpec::new(&db.name, "kept");
        assert_eq!(conn.open(&kept).await.unwrap().count().await.unwrap(), 5);
    }
    ql.drop_database(&db.name).await.unwrap();
    ql.drop_database(&db.name).await.unwrap();
    assert_eq!(v2_bucket_id(&db.name).await, None);
    for conn in [&ql, &flux] {
        let err = conn.detail(&spec).await.unwrap_err();
        assert!(matches!(err, Error::NotFound(_)), "{err}");
    }
}
