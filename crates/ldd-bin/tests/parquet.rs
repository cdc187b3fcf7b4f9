//! `ldd consume --output-format parquet` against the real services: a generated dataset is
//! loaded into MongoDB (FerretDB) or InfluxDB with `ldd load`, exported into Kafka with
//! `ldd export` (JSON lines from MongoDB, so text timestamps; protobuf from InfluxDB, so typed
//! ones), and consumed into a Parquet file with small row groups. An independent reader,
//! pyarrow (`LDD_TEST_PYTHON`, a Python with pyarrow; scripts/test.sh makes one), must read
//! the file back as the database holds the dataset: as many rows as the database counts, one
//! per `seq`, more than one row group, every column of the type the database's own type maps
//! to (the rules of `ldd-sink-kafka/src/readback/parquet.rs`), and for a sample of `seq`s
//! spread over the dataset, every value of every column equal to the one read from the
//! database itself, with its own client (the `mongodb` driver; an InfluxQL query over HTTP),
//! floats bit for bit and timestamps to the nanosecond.
//!
//! Opt-in (`--include-ignored`; scripts/test.sh runs them) and loud: a missing service
//! variable or `LDD_TEST_PYTHON` fails the test, it never passes silently.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../ldd-sink-kafka/tests/common/plain_reader.rs"]
mod plain_reader;

mod fault_common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use fault_common::{brokers, env, ldd, read_manifest, stderr_of, TempDir, Topics};
use futures::TryStreamExt;
use mongodb::bson::{doc, Bson, Document};
use serde_json::Value;

/// Records of each dataset.
const RECORDS: u64 = 20_000;

/// Rows per Parquet row group: small, so that the file has several.
const ROW_GROUP_ROWS: u64 = 4096;

/// `seq`s whose rows are compared value by value.
const SAMPLES: u64 = 25;

/// The Arrow types of the Parquet columns, as pyarrow prints them.
const TIMESTAMP: &str = "timestamp[ns, tz=UTC]";
const INT64: &str = "int64";
const DOUBLE: &str = "double";
const BOOL: &str = "bool";
const STRING: &str = "string";

/// Reads the Parquet file `argv[1]` with pyarrow and prints, as JSON, its row and row-group
/// counts, the distinct `seq`s, each column's Arrow type, and the rows whose `seq` is in the
/// JSON list `argv[2]`: timestamps as integer nanoseconds, floats as their `repr` (exact,
/// and parsed exactly on the Rust side), everything else as is.
const READER_PY: &str = r#"
import json, sys
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

path, seqs = sys.argv[1], json.loads(sys.argv[2])
file = pq.ParquetFile(path)
table = file.read()
picked = table.filter(pc.is_in(table["seq"], value_set=pa.array(seqs, pa.int64())))
columns = {}
for field in picked.schema:
    column = picked[field.name]
    if pa.types.is_timestamp(field.type):
        values = column.cast(pa.int64()).to_pylist()
    elif pa.types.is_floating(field.type):
        values = [None if v is None else repr(v) for v in column.to_pylist()]
    else:
        values = column.to_pylist()
    columns[field.name] = values
print(json.dumps({
    "pyarrow": pa.__version__,
    "num_rows": table.num_rows,
    "num_row_groups": file.num_row_groups,
    "row_group_rows": [file.metadata.row_group(i).num_rows for i in range(file.num_row_groups)],
    "distinct_seq": pc.count_distinct(table["seq"]).as_py(),
    "columns": [[field.name, str(field.type)] for field in table.schema],
    "rows": [{name: values[i] for name, values in columns.items()} for i in range(picked.num_rows)],
}))
"#;

/// One value of a row, as the database has it or as pyarrow read it.
#[derive(Debug, Clone)]
enum Cell {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    /// Nanoseconds since the Unix epoch.
    TimeNs(i64),
}

impl Cell {
    /// Equal, floats bit for bit.
    fn same(&self, other: &Cell) -> bool {
        match (self, other) {
            (Cell::Null, Cell::Null) => true,
            (Cell::Bool(a), Cell::Bool(b)) => a == b,
            (Cell::Int(a), Cell::Int(b)) | (Cell::TimeNs(a), Cell::TimeNs(b)) => a == b,
            (Cell::Float(a), Cell::Float(b)) => a.to_bits() == b.to_bits(),
            (Cell::Str(a), Cell::Str(b)) => a == b,
            _ => false,
        }
    }
}

/// The dataset as the database itself shows it.
struct Expected {
    /// Records the database counts.
    count: u64,
    /// Every column with the Arrow type its database type maps to.
    columns: BTreeMap<String, &'static str>,
    /// The sampled rows by `seq`.
    rows: BTreeMap<i64, BTreeMap<String, Cell>>,
}

/// What pyarrow read from the Parquet file.
struct ParquetRead {
    num_rows: u64,
    num_row_groups: u64,
    row_group_rows: Vec<u64>,
    distinct_seq: u64,
    /// Columns in file order, with their Arrow types.
    columns: Vec<(String, String)>,
    /// The sampled rows by `seq` (a `seq` found twice fails).
    rows: BTreeMap<i64, BTreeMap<String, Cell>>,
}

/// The Python interpreter with pyarrow; its absence fails the test.
fn python() -> String {
    std::env::var("LDD_TEST_PYTHON").unwrap_or_else(|_| {
        panic!(
            "LDD_TEST_PYTHON is not set: point it at a Python with pyarrow \
             (scripts/test.sh installs one into ~/.cache/ldd/venv and exports it)"
        )
    })
}

/// `SAMPLES` `seq`s spread evenly over `0..RECORDS`, the first and the last included.
fn sample_seqs() -> Vec<i64> {
    (0..SAMPLES)
        .map(|i| i64::try_from(i * (RECORDS - 1) / (SAMPLES - 1)).unwrap())
        .collect()
}

/// A tokio runtime for the database clients (the tests themselves are synchronous: they run
/// `ldd` as a child process).
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().unwrap()
}

/// Runs `ldd <args>`, asserts that it succeeded, and returns its stderr.
fn run(what: &str, args: &[&str]) -> String {
    let started = Instant::now();
    let out = ldd().args(args).stdin(Stdio::null()).output().unwrap();
    let err = stderr_of(&out);
    assert!(
        out.status.success(),
        "{what} failed ({}): {err}",
        out.status
    );
    eprintln!(
        "{what}: {:.1} s: {}",
        started.elapsed().as_secs_f64(),
        err.trim()
    );
    err
}

/// `ldd load`s `RECORDS` generated records into `database`/`table`.
fn load(db_type: &str, url: &str, database: &str, table: &str) {
    run(
        "ldd load",
        &[
            "load",
            "--db-type",
            db_type,
            "--url",
            url,
            "--database",
            database,
            "--table",
            table,
            "--records",
            &RECORDS.to_string(),
            "--quiet",
        ],
    );
}

/// `ldd export`s `database`/`table` into a fresh topic in `format`, then `ldd consume`s the
/// export into a Parquet file in `dir`, which it names after the export id. Returns the
/// file.
fn export_and_consume(
    (db_type, url): (&str, &str),
    (database, table): (&str, &str),
    format: &str,
    topics: &mut Topics,
    dir: &TempDir,
) -> std::path::PathBuf {
    let brokers = brokers();
    let topic = topics.add("ldd-test-parquet");
    let manifest = dir.path("manifest.json");
    run(
        "ldd export",
        &[
            "export",
            "--db-type",
            db_type,
            "--url",
            url,
            "--database",
            database,
            "--table",
            table,
            "--brokers",
            &brokers,
            "--topic",
            &topic,
            "--partitions",
            "4",
            "--format",
            format,
            "--manifest-out",
            manifest.to_str().unwrap(),
            // Not into the shared `ldd.manifests` topic: consume reads the manifest file.
            "--manifest-topic",
            "",
            "--quiet",
        ],
    );
    let manifest_json = read_manifest(&manifest);
    let export_id = manifest_json["export_id"]
        .as_str()
        .unwrap_or_else(|| panic!("a manifest without an export_id: {manifest_json}"))
        .to_owned();
    assert_eq!(
        manifest_json["format"].as_str(),
        Some(format),
        "the manifest names another format"
    );
    let out_dir = dir.path("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    let err = run(
        "ldd consume",
        &[
            "consume",
            "--brokers",
            &brokers,
            "--manifest",
            manifest.to_str().unwrap(),
            "--output-format",
            "parquet",
            "--output",
            out_dir.to_str().unwrap(),
            "--parquet-row-group-rows",
            &ROW_GROUP_ROWS.to_string(),
            "--quiet",
        ],
    );
    assert!(err.contains("verified: OK"), "ldd consume: {err}");
    let file = out_dir.join(format!("{export_id}.parquet"));
    let files: Vec<_> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    assert_eq!(
        files,
        vec![file.clone()],
        "the output directory must hold exactly <export id>.parquet"
    );
    file
}

/// Reads `path` with pyarrow (see `READER_PY`), picking the rows of `seqs`.
fn read_with_pyarrow(path: &Path, seqs: &[i64], dir: &TempDir) -> ParquetRead {
    let script = dir.path("read_parquet.py");
    std::fs::write(&script, READER_PY).unwrap();
    let python = python();
    let out = Command::new(&python)
        .arg(&script)
        .arg(path)
        .arg(serde_json::to_string(seqs).unwrap())
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {python} (LDD_TEST_PYTHON): {e}"));
    assert!(
        out.status.success(),
        "pyarrow could not read {} ({}): {}",
        path.display(),
        out.status,
        stderr_of(&out)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "the pyarrow reader printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    eprintln!("pyarrow {} read {}", report["pyarrow"], path.display());
    let columns: Vec<(String, String)> = report["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|pair| {
            (
                pair[0].as_str().unwrap().to_owned(),
                pair[1].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let types: BTreeMap<&str, &str> = columns
        .iter()
        .map(|(name, ty)| (name.as_str(), ty.as_str()))
        .collect();
    let mut rows = BTreeMap::new();
    for row in report["rows"].as_array().unwrap() {
        let row: BTreeMap<String, Cell> = row
            .as_object()
            .unwrap()
            .iter()
            .map(|(name, value)| {
                (
                    name.clone(),
                    pyarrow_cell(name, types[name.as_str()], value),
                )
            })
            .collect();
        let Some(Cell::Int(seq)) = row.get("seq") else {
            panic!("a Parquet row without an integer seq: {row:?}");
        };
        let seq = *seq;
        assert!(
            rows.insert(seq, row).is_none(),
            "seq {seq} is in the Parquet file more than once"
        );
    }
    ParquetRead {
        num_rows: report["num_rows"].as_u64().unwrap(),
        num_row_groups: report["num_row_groups"].as_u64().unwrap(),
        row_group_rows: report["row_group_rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_u64().unwrap())
            .collect(),
        distinct_seq: report["distinct_seq"].as_u64().unwrap(),
        columns,
        rows,
    }
}

/// One value printed by `READER_PY` for a column of Arrow type `ty`.
fn pyarrow_cell(name: &str, ty: &str, value: &Value) -> Cell {
    if value.is_null() {
        return Cell::Null;
    }
    let cell = match ty {
        TIMESTAMP => value.as_i64().map(Cell::TimeNs),
        INT64 => value.as_i64().map(Cell::Int),
        DOUBLE => value
            .as_str()
            .map(|text| Cell::Float(text.parse().unwrap())),
        BOOL => value.as_bool().map(Cell::Bool),
        STRING => value.as_str().map(|text| Cell::Str(text.to_owned())),
        other => panic!("column {name} has the unexpected Arrow type {other}"),
    };
    cell.unwrap_or_else(|| panic!("column {name} ({ty}): unexpected value {value}"))
}

/// Compares what pyarrow read with what the database holds.
fn assert_matches(read: &ParquetRead, expected: &Expected, seqs: &[i64]) {
    assert_eq!(
        read.num_rows, expected.count,
        "the Parquet file must hold as many rows as the database counts"
    );
    assert_eq!(
        read.distinct_seq, expected.count,
        "every seq must be in the Parquet file exactly once"
    );
    assert!(
        read.num_row_groups > 1,
        "{} rows in row groups of {ROW_GROUP_ROWS} must make several row groups, not {}",
        read.num_rows,
        read.num_row_groups
    );
    // Every group but the last is full: the bound holds exactly.
    let (last, full) = read
        .row_group_rows
        .split_last()
        .expect("the file has row groups");
    assert!(
        full.iter().all(|&n| n == ROW_GROUP_ROWS) && *last <= ROW_GROUP_ROWS,
        "row groups must hold {ROW_GROUP_ROWS} rows each (the last at most that): {:?}",
        read.row_group_rows
    );
    let types: BTreeMap<String, &str> = read
        .columns
        .iter()
        .map(|(name, ty)| (name.clone(), ty.as_str()))
        .collect();
    assert_eq!(
        types.len(),
        read.columns.len(),
        "duplicate column names: {:?}",
        read.columns
    );
    assert_eq!(
        types, expected.columns,
        "the Parquet columns and their types (left) must be the database's (right)"
    );
    let sampled: BTreeSet<i64> = seqs.iter().copied().collect();
    assert_eq!(
        expected.rows.keys().copied().collect::<BTreeSet<_>>(),
        sampled,
        "the database must have one row for each sampled seq"
    );
    assert_eq!(
        read.rows.keys().copied().collect::<BTreeSet<_>>(),
        sampled,
        "the Parquet file must have one row for each sampled seq"
    );
    for (seq, want) in &expected.rows {
        let got = &read.rows[seq];
        for (column, value) in want {
            let parquet = got
                .get(column)
                .unwrap_or_else(|| panic!("seq {seq}: no column {column} in {got:?}"));
            assert!(
                parquet.same(value),
                "seq {seq}, column {column}: Parquet has {parquet:?}, the database {value:?}\n\
                 Parquet row: {got:?}\ndatabase row: {want:?}"
            );
        }
        assert_eq!(
            got.len(),
            want.len(),
            "seq {seq}: Parquet row {got:?}, database row {want:?}"
        );
    }
    eprintln!(
        "{} rows in {} row groups, {} distinct seqs; {} columns of the expected types; \
         {} sampled rows equal to the database's in every column",
        read.num_rows,
        read.num_row_groups,
        read.distinct_seq,
        read.columns.len(),
        expected.rows.len()
    );
}

/// A MongoDB database, dropped when this is dropped (also when the test panics).
struct MongoDatabase {
    url: String,
    name: String,
}

impl MongoDatabase {
    async fn client(url: &str) -> mongodb::Client {
        mongodb::Client::with_uri_str(url)
            .await
            .unwrap_or_else(|e| panic!("connecting to MongoDB at {url}: {e}"))
    }
}

impl Drop for MongoDatabase {
    fn drop(&mut self) {
        let (url, name) = (self.url.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            runtime().block_on(async {
                MongoDatabase::client(&url)
                    .await
                    .database(&name)
                    .drop()
                    .await
                    .map_err(|e| e.to_string())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!(
                "warning: the test database {} was not dropped: {dropped:?}",
                self.name
            );
        }
    }
}

/// The MongoDB collection as the driver reads it: its count, the Arrow type of each field's
/// BSON type, and the sampled documents.
async fn mongo_expected(url: &str, database: &str, collection: &str, seqs: &[i64]) -> Expected {
    let client = MongoDatabase::client(url).await;
    let collection = client.database(database).collection::<Document>(collection);
    let count = collection.count_documents(doc! {}).await.unwrap();
    let documents: Vec<Document> = collection
        .find(doc! { "seq": { "$in": seqs.to_vec() } })
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let mut columns = BTreeMap::new();
    let mut rows = BTreeMap::new();
    for document in documents {
        let mut row = BTreeMap::new();
        for (field, value) in &document {
            let (ty, cell) = match value {
                Bson::ObjectId(id) => (STRING, Cell::Str(id.to_hex())),
                Bson::DateTime(at) => (
                    TIMESTAMP,
                    Cell::TimeNs(at.timestamp_millis().checked_mul(1_000_000).unwrap()),
                ),
                Bson::String(text) => (STRING, Cell::Str(text.clone())),
                Bson::Int32(n) => (INT64, Cell::Int(i64::from(*n))),
                Bson::Int64(n) => (INT64, Cell::Int(*n)),
                Bson::Double(x) => (DOUBLE, Cell::Float(*x)),
                Bson::Boolean(b) => (BOOL, Cell::Bool(*b)),
                other => panic!("field {field} has a BSON type this test does not map: {other:?}"),
            };
            if let Some(before) = columns.insert(field.clone(), ty) {
                assert_eq!(before, ty, "field {field} has two BSON types");
            }
            row.insert(field.clone(), cell);
        }
        let seq = match row.get("seq") {
            Some(Cell::Int(seq)) => *seq,
            _ => panic!("a document without an integer seq: {document}"),
        };
        assert!(
            rows.insert(seq, row).is_none(),
            "seq {seq} twice in MongoDB"
        );
    }
    Expected {
        count,
        columns,
        rows,
    }
}

/// MongoDB (FerretDB) -> `ldd export --format jsonl` (text timestamps, the `_id` as a hex
/// string) -> `ldd consume --output-format parquet` -> pyarrow: the file is the collection.
#[test]
#[ignore = "needs MongoDB (LDD_TEST_MONGO_URL), Kafka (LDD_TEST_KAFKA_BROKERS) and pyarrow (LDD_TEST_PYTHON)"]
fn parquet_of_a_mongo_export_reads_back_in_pyarrow_as_the_collection() {
    let url = env("LDD_TEST_MONGO_URL");
    brokers();
    python();
    let dir = TempDir::new("ldd-test-parquet-mongo");
    let mut topics = Topics::new(&brokers());
    let database = MongoDatabase {
        url: url.clone(),
        name: format!("ldd_test_parquet_{}", uuid::Uuid::new_v4().simple()),
    };
    let collection = "points";
    load("mongo", &url, &database.name, collection);
    let file = export_and_consume(
        ("mongo", &url),
        (&database.name, collection),
        "jsonl",
        &mut topics,
        &dir,
    );
    let seqs = sample_seqs();
    let expected = runtime().block_on(mongo_expected(&url, &database.name, collection, &seqs));
    assert_eq!(
        expected.count, RECORDS,
        "MongoDB must hold the loaded dataset"
    );
    let read = read_with_pyarrow(&file, &seqs, &dir);
    assert_matches(&read, &expected, &seqs);
    topics.delete();
    drop(database);
}

/// An InfluxDB database, dropped (`DROP DATABASE`) when this is dropped (also when the test
/// panics).
struct InfluxDatabase {
    url: String,
    name: String,
}

impl InfluxDatabase {
    /// Runs one InfluxQL statement and returns its CSV answer (`Accept: application/csv`:
    /// numbers as text, which Rust parses exactly, unlike a JSON number through serde_json)
    /// as rows of cells, the header first.
    async fn query(url: &str, database: &str, statement: &str) -> Vec<Vec<String>> {
        let answer = reqwest::Client::new()
            .post(format!("{url}/query"))
            .header(reqwest::header::ACCEPT, "application/csv")
            .form(&[("db", database), ("epoch", "ns"), ("q", statement)])
            .send()
            .await
            .unwrap_or_else(|e| panic!("InfluxDB at {url}: {statement}: {e}"));
        let status = answer.status();
        let text = answer.text().await.unwrap();
        assert!(
            status.is_success(),
            "InfluxDB: {statement}: {status}: {text}"
        );
        assert!(
            !text.contains('"'),
            "quoted CSV cells, which this test does not parse: {text}"
        );
        text.lines()
            .filter(|line| !line.is_empty())
            .map(|line| line.split(',').map(str::to_owned).collect())
            .collect()
    }
}

impl Drop for InfluxDatabase {
    fn drop(&mut self) {
        let (url, name) = (self.url.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            runtime().block_on(InfluxDatabase::query(
                &url,
                "",
                &format!("DROP DATABASE \"{name}\""),
            ));
        })
        .join();
        if dropped.is_err() {
            eprintln!("warning: the test database {} was not dropped", self.name);
        }
    }
}

/// A CSV answer as maps from header to cell.
fn csv_records(rows: Vec<Vec<String>>) -> Vec<BTreeMap<String, String>> {
    let mut rows = rows.into_iter();
    let header = rows.next().unwrap_or_default();
    rows.map(|row| {
        assert_eq!(row.len(), header.len(), "{row:?} under {header:?}");
        header.iter().cloned().zip(row).collect()
    })
    .collect()
}

/// The InfluxDB measurement as InfluxQL shows it: its count, the Arrow type of each tag
/// (string), field (by its InfluxDB field type), the time and the measurement name, and the
/// sampled points.
async fn influx_expected(url: &str, database: &str, measurement: &str, seqs: &[i64]) -> Expected {
    let count_rows = csv_records(
        InfluxDatabase::query(
            url,
            database,
            &format!("SELECT COUNT(\"seq\") FROM \"{measurement}\""),
        )
        .await,
    );
    assert_eq!(count_rows.len(), 1, "{count_rows:?}");
    let count: u64 = count_rows[0]["count"].parse().unwrap();

    let mut columns = BTreeMap::from([
        ("_time".to_owned(), TIMESTAMP),
        ("_measurement".to_owned(), STRING),
    ]);
    for field in csv_records(
        InfluxDatabase::query(
            url,
            database,
            &format!("SHOW FIELD KEYS FROM \"{measurement}\""),
        )
        .await,
    ) {
        let ty = match field["fieldType"].as_str() {
            "float" => DOUBLE,
            "integer" => INT64,
            "boolean" => BOOL,
            "string" => STRING,
            other => panic!("field {} has the unmapped type {other}", field["fieldKey"]),
        };
        columns.insert(field["fieldKey"].clone(), ty);
    }
    for tag in csv_records(
        InfluxDatabase::query(
            url,
            database,
            &format!("SHOW TAG KEYS FROM \"{measurement}\""),
        )
        .await,
    ) {
        assert!(
            columns.insert(tag["tagKey"].clone(), STRING).is_none(),
            "{} is a tag and a field",
            tag["tagKey"]
        );
    }

    let filter = seqs
        .iter()
        .map(|seq| format!("\"seq\" = {seq}"))
        .collect::<Vec<_>>()
        .join(" OR ");
    let points = csv_records(
        InfluxDatabase::query(
            url,
            database,
            &format!("SELECT * FROM \"{measurement}\" WHERE {filter}"),
        )
        .await,
    );
    let mut rows = BTreeMap::new();
    for point in points {
        let mut row = BTreeMap::new();
        for (column, text) in &point {
            let (name, cell) = match column.as_str() {
                "name" => ("_measurement", Cell::Str(text.clone())),
                "tags" => continue, // empty: no GROUP BY
                "time" => ("_time", Cell::TimeNs(text.parse().unwrap())),
                field => {
                    let cell = if text.is_empty() {
                        Cell::Null
                    } else {
                        match columns.get(field).copied() {
                            Some(DOUBLE) => Cell::Float(text.parse().unwrap()),
                            Some(INT64) => Cell::Int(text.parse().unwrap()),
                            Some(BOOL) => Cell::Bool(text.parse().unwrap()),
                            Some(STRING) => Cell::Str(text.clone()),
                            _ => panic!("column {field} is neither a tag nor a field"),
                        }
                    };
                    (field, cell)
                }
            };
            row.insert(name.to_owned(), cell);
        }
        let seq = match row.get("seq") {
            Some(Cell::Int(seq)) => *seq,
            _ => panic!("a point without an integer seq: {point:?}"),
        };
        assert!(
            rows.insert(seq, row).is_none(),
            "seq {seq} twice in InfluxDB"
        );
    }
    Expected {
        count,
        columns,
        rows,
    }
}

/// InfluxDB -> `ldd export --format protobuf` (typed timestamps) -> `ldd consume
/// --output-format parquet` -> pyarrow: the file is the measurement.
#[test]
#[ignore = "needs InfluxDB (LDD_TEST_INFLUX_URL), Kafka (LDD_TEST_KAFKA_BROKERS) and pyarrow (LDD_TEST_PYTHON)"]
fn parquet_of_an_influx_export_reads_back_in_pyarrow_as_the_measurement() {
    let url = env("LDD_TEST_INFLUX_URL");
    brokers();
    python();
    let dir = TempDir::new("ldd-test-parquet-influx");
    let mut topics = Topics::new(&brokers());
    let database = InfluxDatabase {
        url: url.clone(),
        name: format!("ldd_test_parquet_{}", uuid::Uuid::new_v4().simple()),
    };
    let measurement = "points";
    load("influx", &url, &database.name, measurement);
    let file = export_and_consume(
        ("influx", &url),
        (&database.name, measurement),
        "protobuf",
        &mut topics,
        &dir,
    );
    let seqs = sample_seqs();
    let expected = runtime().block_on(influx_expected(&url, &database.name, measurement, &seqs));
    assert_eq!(
        expected.count, RECORDS,
        "InfluxDB must hold the loaded dataset"
    );
    let read = read_with_pyarrow(&file, &seqs, &dir);
    assert_matches(&read, &expected, &seqs);
    topics.delete();
    drop(database);
}
