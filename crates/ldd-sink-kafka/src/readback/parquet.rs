//! Parquet output of read-back: typed columns, bounded row groups, one file per export.
//!
//! A manifest names no columns, so the schema is taken from the first row group's records
//! (up to [`ParquetOptions::row_group_rows`] of them), in the order fields first appear:
//!
//! | values seen in the column        | Parquet / Arrow type                      |
//! |----------------------------------|-------------------------------------------|
//! | booleans                         | `BOOLEAN`                                 |
//! | integers                         | `INT64`                                   |
//! | floats, or integers and floats   | `DOUBLE`                                  |
//! | timestamps, or RFC 3339 strings  | `INT64 TIMESTAMP(NANOS, UTC)`             |
//! | other strings                    | `BYTE_ARRAY UTF8`                         |
//! | bytes                            | `BYTE_ARRAY`                              |
//! | documents, arrays, mixed, nulls  | `BYTE_ARRAY UTF8` holding the JSON text   |
//!
//! Every column is nullable; a record without a field has null there. JSON payloads carry
//! timestamps as text, hence the RFC 3339 rule. A later record that does not fit (a field
//! outside the schema, a float in an integer column, text in a timestamp column) stops the
//! output with an error that names the column; the file is then left without its footer,
//! so that no reader takes a partial file for a whole one.
//!
//! One file per export, not per partition: the readers share it, each full row group is
//! encoded while the others keep reading, and a single file is what pandas, polars and
//! DuckDB take without a glob.

use std::collections::HashMap;
use std::io::Write;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use arrow_array::builder::{
    BinaryBuilder, BooleanBuilder, Float64Builder, Int64Builder, StringBuilder,
    TimestampNanosecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch, RecordBatchOptions};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use ldd_core::format::value_to_json;
use ldd_core::{Record, Value};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use super::output::RecordOutput;
use crate::error::{Error, Result};

/// Compression of the Parquet column chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ParquetCompression {
    /// Zstandard, level 1: small files, fast to write and read.
    #[default]
    Zstd,
    /// Snappy: the most widely supported codec, larger files.
    Snappy,
    /// No compression.
    None,
}

impl FromStr for ParquetCompression {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        match text.to_ascii_lowercase().as_str() {
            "zstd" => Ok(ParquetCompression::Zstd),
            "snappy" => Ok(ParquetCompression::Snappy),
            "none" | "uncompressed" => Ok(ParquetCompression::None),
            other => Err(Error::Config(format!(
                "unknown Parquet compression `{other}`; use zstd, snappy or none"
            ))),
        }
    }
}

/// How the Parquet file is written.
#[derive(Debug, Clone)]
pub struct ParquetOptions {
    /// Column compression.
    pub compression: ParquetCompression,
    /// Rows per row group: the schema comes from the first group, and at most about two
    /// groups are held in memory at once (one filling, one being encoded).
    pub row_group_rows: usize,
}

/// Rows per row group unless set. The first group is held as records until the schema is
/// known, which is what costs memory: with the generator's ten-field records, 65,536 rows
/// put `ldd consume` at 133 MB, 32,768 at 98 MB (flat from 1M to 10M records), with files
/// no larger and writing no slower.
pub const DEFAULT_ROW_GROUP_ROWS: usize = 32_768;

impl Default for ParquetOptions {
    fn default() -> Self {
        ParquetOptions {
            compression: ParquetCompression::default(),
            row_group_rows: DEFAULT_ROW_GROUP_ROWS,
        }
    }
}

/// The type of a column, as inferred from the first row group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ColumnType {
    Bool,
    Int,
    Float,
    Timestamp,
    Text,
    Bytes,
    Json,
}

impl ColumnType {
    fn data_type(self) -> DataType {
        match self {
            ColumnType::Bool => DataType::Boolean,
            ColumnType::Int => DataType::Int64,
            ColumnType::Float => DataType::Float64,
            ColumnType::Timestamp => DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
            ColumnType::Text | ColumnType::Json => DataType::Utf8,
            ColumnType::Bytes => DataType::Binary,
        }
    }

    fn name(self) -> &'static str {
        match self {
            ColumnType::Bool => "boolean",
            ColumnType::Int => "integer",
            ColumnType::Float => "float",
            ColumnType::Timestamp => "timestamp",
            ColumnType::Text => "string",
            ColumnType::Bytes => "bytes",
            ColumnType::Json => "JSON text",
        }
    }
}

/// What one value says about its column's type; strings that are RFC 3339 instants are
/// told apart so that a column of them becomes a timestamp column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    Type(ColumnType),
    InstantText,
}

fn seen(value: &Value) -> Option<Seen> {
    Some(match value {
        Value::Null => return None,
        Value::Bool(_) => Seen::Type(ColumnType::Bool),
        Value::Int(_) => Seen::Type(ColumnType::Int),
        Value::Float(_) => Seen::Type(ColumnType::Float),
        Value::Timestamp(_) => Seen::Type(ColumnType::Timestamp),
        Value::String(text) if Value::parse_timestamp(text).is_some() => Seen::InstantText,
        Value::String(_) => Seen::Type(ColumnType::Text),
        Value::Bytes(_) => Seen::Type(ColumnType::Bytes),
        Value::Document(_) | Value::Array(_) => Seen::Type(ColumnType::Json),
    })
}

/// The type of a column holding both `a` and `b`.
fn merge(a: Seen, b: Seen) -> Seen {
    use ColumnType::*;
    match (a, b) {
        (a, b) if a == b => a,
        (Seen::Type(Int), Seen::Type(Float)) | (Seen::Type(Float), Seen::Type(Int)) => {
            Seen::Type(Float)
        }
        (Seen::Type(Timestamp), Seen::InstantText) | (Seen::InstantText, Seen::Type(Timestamp)) => {
            Seen::Type(Timestamp)
        }
        (Seen::Type(Text), Seen::InstantText) | (Seen::InstantText, Seen::Type(Text)) => {
            Seen::Type(Text)
        }
        _ => Seen::Type(Json),
    }
}

/// The columns of the file, in the order fields first appeared.
struct Columns {
    types: Vec<ColumnType>,
    by_name: HashMap<String, usize>,
    schema: SchemaRef,
}

impl Columns {
    fn infer(records: &[Record]) -> Self {
        let mut names: Vec<String> = Vec::new();
        let mut by_name: HashMap<String, usize> = HashMap::new();
        let mut kinds: Vec<Option<Seen>> = Vec::new();
        for record in records {
            for (name, value) in &record.fields {
                let column = *by_name.entry(name.clone()).or_insert_with(|| {
                    names.push(name.clone());
                    kinds.push(None);
                    names.len() - 1
                });
                if let Some(now) = seen(value) {
                    kinds[column] = Some(kinds[column].map_or(now, |before| merge(before, now)));
                }
            }
        }
        let types: Vec<ColumnType> = kinds
            .into_iter()
            .map(|kind| match kind {
                Some(Seen::Type(t)) => t,
                Some(Seen::InstantText) => ColumnType::Timestamp,
                // Only nulls so far: JSON text takes whatever comes later.
                None => ColumnType::Json,
            })
            .collect();
        let fields: Vec<Field> = names
            .iter()
            .zip(&types)
            .map(|(name, t)| Field::new(name, t.data_type(), true))
            .collect();
        Columns {
            types,
            by_name,
            schema: Arc::new(Schema::new(fields)),
        }
    }

    fn builders(&self, capacity: usize) -> Vec<ColumnBuilder> {
        self.types
            .iter()
            .map(|t| ColumnBuilder::new(*t, capacity))
            .collect()
    }

    fn names(&self) -> Vec<&str> {
        self.schema
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect()
    }
}

/// Appends one column's values.
enum ColumnBuilder {
    Bool(BooleanBuilder),
    Int(Int64Builder),
    Float(Float64Builder),
    Timestamp(TimestampNanosecondBuilder),
    Text(StringBuilder),
    Bytes(BinaryBuilder),
    Json(StringBuilder),
}

impl ColumnBuilder {
    fn new(t: ColumnType, capacity: usize) -> Self {
        match t {
            ColumnType::Bool => ColumnBuilder::Bool(BooleanBuilder::with_capacity(capacity)),
            ColumnType::Int => ColumnBuilder::Int(Int64Builder::with_capacity(capacity)),
            ColumnType::Float => ColumnBuilder::Float(Float64Builder::with_capacity(capacity)),
            ColumnType::Timestamp => ColumnBuilder::Timestamp(
                TimestampNanosecondBuilder::with_capacity(capacity).with_timezone("UTC"),
            ),
            ColumnType::Text => ColumnBuilder::Text(StringBuilder::with_capacity(capacity, 0)),
            ColumnType::Bytes => ColumnBuilder::Bytes(BinaryBuilder::with_capacity(capacity, 0)),
            ColumnType::Json => ColumnBuilder::Json(StringBuilder::with_capacity(capacity, 0)),
        }
    }

    fn column_type(&self) -> ColumnType {
        match self {
            ColumnBuilder::Bool(_) => ColumnType::Bool,
            ColumnBuilder::Int(_) => ColumnType::Int,
            ColumnBuilder::Float(_) => ColumnType::Float,
            ColumnBuilder::Timestamp(_) => ColumnType::Timestamp,
            ColumnBuilder::Text(_) => ColumnType::Text,
            ColumnBuilder::Bytes(_) => ColumnType::Bytes,
            ColumnBuilder::Json(_) => ColumnType::Json,
        }
    }

    /// Appends `value` (`None`: the record has no such field); `false` when it does not
    /// fit the column's type.
    fn append(&mut self, value: Option<&Value>) -> bool {
        let value = value.unwrap_or(&Value::Null);
        match (self, value) {
            (ColumnBuilder::Json(b), Value::Null) => b.append_null(),
            (ColumnBuilder::Json(b), v) => match value_to_json(v) {
                Ok(text) => b.append_value(text),
                Err(_) => return false,
            },
            (b, Value::Null) => b.append_null(),
            (ColumnBuilder::Bool(b), Value::Bool(v)) => b.append_value(*v),
            (ColumnBuilder::Int(b), Value::Int(v)) => b.append_value(*v),
            (ColumnBuilder::Float(b), Value::Float(v)) => b.append_value(*v),
            // Integers in a float column: JSON writes 2.0 as 2, so a float column holds
            // integers whenever a value happens to be whole.
            (ColumnBuilder::Float(b), Value::Int(v)) => b.append_value(*v as f64),
            (ColumnBuilder::Timestamp(b), Value::Timestamp(v)) => b.append_value(*v),
            (ColumnBuilder::Timestamp(b), Value::String(text)) => {
                match Value::parse_timestamp(text) {
                    Some(nanos) => b.append_value(nanos),
                    None => return false,
                }
            }
            (ColumnBuilder::Text(b), Value::String(v)) => b.append_value(v),
            (ColumnBuilder::Bytes(b), Value::Bytes(v)) => b.append_value(v),
            _ => return false,
        }
        true
    }

    fn append_null(&mut self) {
        match self {
            ColumnBuilder::Bool(b) => b.append_null(),
            ColumnBuilder::Int(b) => b.append_null(),
            ColumnBuilder::Float(b) => b.append_null(),
            ColumnBuilder::Timestamp(b) => b.append_null(),
            ColumnBuilder::Text(b) | ColumnBuilder::Json(b) => b.append_null(),
            ColumnBuilder::Bytes(b) => b.append_null(),
        }
    }

    /// The values so far as an array; the builder starts over empty.
    fn finish(&mut self) -> ArrayRef {
        match self {
            ColumnBuilder::Bool(b) => Arc::new(b.finish()),
            ColumnBuilder::Int(b) => Arc::new(b.finish()),
            ColumnBuilder::Float(b) => Arc::new(b.finish()),
            ColumnBuilder::Timestamp(b) => Arc::new(b.finish()),
            ColumnBuilder::Text(b) | ColumnBuilder::Json(b) => Arc::new(b.finish()),
            ColumnBuilder::Bytes(b) => Arc::new(b.finish()),
        }
    }
}

/// Rows being gathered into the next row group.
struct Rows {
    /// Set once the first row group is full (or at the end).
    columns: Option<Columns>,
    /// The first row group's records, kept until the schema is known.
    first: Vec<Record>,
    /// How many records the schema was taken from.
    schema_rows: usize,
    builders: Vec<ColumnBuilder>,
    count: usize,
    /// The first error: later writes and the final flush answer it again.
    failed: Option<String>,
}

impl Rows {
    /// Appends one record; a record that does not fit leaves the row group unusable, so
    /// the whole output stops.
    fn append(&mut self, record: &Record) -> std::result::Result<(), String> {
        let Some(columns) = &self.columns else {
            self.first.push(record.clone());
            self.count += 1;
            return Ok(());
        };
        let mut filled = vec![false; columns.types.len()];
        for (name, value) in &record.fields {
            let Some(&column) = columns.by_name.get(name) else {
                return Err(format!(
                    "a record has the field `{name}`, which the first {} records did not have (the Parquet columns are {}); write JSONL or CSV instead, or raise --parquet-row-group-rows so that the schema sees more records",
                    self.schema_rows,
                    columns.names().join(", ")
                ));
            };
            if filled[column] {
                // A repeated field name (decoded payloads have none): the first counts.
                continue;
            }
            let builder = &mut self.builders[column];
            if !builder.append(Some(value)) {
                return Err(format!(
                    "column `{name}` is {} (from the first records), but a record has the {} value {}; write JSONL or CSV instead",
                    builder.column_type().name(),
                    value.type_name(),
                    value_to_json(value).unwrap_or_default()
                ));
            }
            filled[column] = true;
        }
        for (column, builder) in self.builders.iter_mut().enumerate() {
            if !filled[column] {
                builder.append_null();
            }
        }
        self.count += 1;
        Ok(())
    }

    /// Fixes the schema from the records gathered so far and moves them into the builders.
    fn settle_schema(&mut self, capacity: usize) -> std::result::Result<(), String> {
        if self.columns.is_some() {
            return Ok(());
        }
        let columns = Columns::infer(&self.first);
        self.schema_rows = self.first.len();
        self.builders = columns.builders(capacity);
        self.columns = Some(columns);
        self.count = 0;
        let first = std::mem::take(&mut self.first);
        first.iter().try_for_each(|record| self.append(record))
    }

    /// Takes the gathered rows as a batch.
    fn take_batch(&mut self) -> std::result::Result<Option<RecordBatch>, String> {
        let Some(columns) = &self.columns else {
            return Ok(None);
        };
        if self.count == 0 {
            return Ok(None);
        }
        let arrays: Vec<ArrayRef> = self
            .builders
            .iter_mut()
            .map(ColumnBuilder::finish)
            .collect();
        let options = RecordBatchOptions::new().with_row_count(Some(self.count));
        self.count = 0;
        RecordBatch::try_new_with_options(columns.schema.clone(), arrays, &options)
            .map(Some)
            .map_err(|e| format!("building a row group: {e}"))
    }
}

/// The file: created with the schema once it is known.
struct FileState<W: Write + Send> {
    out: Option<W>,
    writer: Option<ArrowWriter<W>>,
    closed: bool,
}

/// Writes read-back records to one Parquet file (see the module docs for the types).
pub struct ParquetOutput<W: Write + Send> {
    options: ParquetOptions,
    rows: Mutex<Rows>,
    file: Mutex<FileState<W>>,
}

impl<W: Write + Send> ParquetOutput<W> {
    /// Writes to `out` (a file, or stdout: Parquet is written front to back).
    pub fn new(out: W, options: ParquetOptions) -> Result<Self> {
        if options.row_group_rows == 0 {
            return Err(Error::Config(
                "Parquet row groups need at least one row".into(),
            ));
        }
        Ok(ParquetOutput {
            rows: Mutex::new(Rows {
                columns: None,
                first: Vec::with_capacity(options.row_group_rows.min(1 << 20)),
                schema_rows: 0,
                builders: Vec::new(),
                count: 0,
                failed: None,
            }),
            file: Mutex::new(FileState {
                out: Some(out),
                writer: None,
                closed: false,
            }),
            options,
        })
    }

    fn properties(&self) -> WriterProperties {
        let compression = match self.options.compression {
            ParquetCompression::Zstd => Compression::ZSTD(ZstdLevel::default()),
            ParquetCompression::Snappy => Compression::SNAPPY,
            ParquetCompression::None => Compression::UNCOMPRESSED,
        };
        WriterProperties::builder()
            .set_compression(compression)
            .set_max_row_group_row_count(Some(self.options.row_group_rows))
            .set_created_by(format!("ldd {}", env!("CARGO_PKG_VERSION")))
            .build()
    }

    /// Writes one row group (creating the file on the first).
    fn write_batch(&self, schema: &SchemaRef, batch: Option<&RecordBatch>) -> Result<()> {
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        if file.closed {
            return Err(Error::Parquet("the file is already finished".into()));
        }
        if file.writer.is_none() {
            let out = file
                .out
                .take()
                .ok_or_else(|| Error::Parquet("the output is gone".into()))?;
            let writer = ArrowWriter::try_new(out, schema.clone(), Some(self.properties()))
                .map_err(|e| Error::Parquet(format!("starting the file: {e}")))?;
            file.writer = Some(writer);
        }
        if let (Some(writer), Some(batch)) = (file.writer.as_mut(), batch) {
            writer
                .write(batch)
                .and_then(|()| writer.flush())
                .map_err(|e| Error::Parquet(format!("writing a row group: {e}")))?;
        }
        Ok(())
    }

    fn fail(&self, rows: &mut Rows, message: String) -> Error {
        rows.failed.get_or_insert(message.clone());
        Error::Parquet(message)
    }
}

impl<W: Write + Send> RecordOutput for ParquetOutput<W> {
    fn write(&self, records: &[Record]) -> Result<()> {
        // Groups are cut at exactly `row_group_rows`, also within one call (a jsonl message
        // holds many records): the writer would otherwise split an overfull group into a
        // full one and a sliver.
        let mut full = Vec::new();
        let schema = {
            let mut rows = self.rows.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(message) = &rows.failed {
                return Err(Error::Parquet(message.clone()));
            }
            for record in records {
                if let Err(message) = rows.append(record) {
                    return Err(self.fail(&mut rows, message));
                }
                if rows.count < self.options.row_group_rows {
                    continue;
                }
                let batch = rows
                    .settle_schema(self.options.row_group_rows)
                    .and_then(|()| rows.take_batch());
                match batch {
                    Ok(batch) => full.extend(batch),
                    Err(message) => return Err(self.fail(&mut rows, message)),
                }
            }
            rows.columns.as_ref().map(|c| c.schema.clone())
        };
        // Encoded outside the rows lock: the other readers keep filling the next group.
        if let Some(schema) = schema {
            for batch in &full {
                self.write_batch(&schema, Some(batch))?;
            }
        }
        Ok(())
    }

    /// Writes the last row group and the footer: the file is complete after this, and
    /// later writes fail.
    fn flush(&self) -> Result<()> {
        let mut rows = self.rows.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(message) = &rows.failed {
            return Err(Error::Parquet(format!(
                "{message} (the Parquet file was left incomplete)"
            )));
        }
        if let Err(message) = rows.settle_schema(self.options.row_group_rows) {
            return Err(self.fail(&mut rows, message));
        }
        let batch = match rows.take_batch() {
            Ok(batch) => batch,
            Err(message) => return Err(self.fail(&mut rows, message)),
        };
        let schema = rows
            .columns
            .as_ref()
            .map(|c| c.schema.clone())
            .unwrap_or_else(|| Arc::new(Schema::empty()));
        self.write_batch(&schema, batch.as_ref())?;
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        file.closed = true;
        if let Some(writer) = file.writer.take() {
            let mut out = writer
                .into_inner()
                .map_err(|e| Error::Parquet(format!("finishing the file: {e}")))?;
            out.flush()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use arrow_array::cast::AsArray;
    use arrow_array::types::{Float64Type, Int64Type, TimestampNanosecondType};
    use arrow_array::Array;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    /// A sink the test can still read after the writer took it.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn rec(pairs: &[(&str, Value)]) -> Record {
        pairs.iter().cloned().collect()
    }

    fn output(rows_per_group: usize) -> (ParquetOutput<Shared>, Shared) {
        let sink = Shared::default();
        let options = ParquetOptions {
            compression: ParquetCompression::Zstd,
            row_group_rows: rows_per_group,
        };
        (ParquetOutput::new(sink.clone(), options).unwrap(), sink)
    }

    /// The file's batches and its number of row groups.
    fn read(sink: &Shared) -> (Vec<RecordBatch>, usize) {
        let bytes = bytes::Bytes::from(sink.0.lock().unwrap().clone());
        let builder = ParquetRecordBatchReaderBuilder::try_new(bytes).unwrap();
        let groups = builder.metadata().num_row_groups();
        (
            builder.build().unwrap().map(|b| b.unwrap()).collect(),
            groups,
        )
    }

    #[test]
    fn infers_types_from_the_first_group_and_writes_bounded_groups() {
        let (out, sink) = output(2);
        out.write(&[
            rec(&[
                ("time", Value::from("2024-01-01T00:00:00Z")),
                ("n", Value::Int(1)),
                ("x", Value::Int(2)),
                ("ok", Value::Bool(true)),
                ("tag", Value::from("a")),
                ("doc", Value::Document(vec![("k".into(), Value::Int(1))])),
            ]),
            rec(&[
                ("time", Value::from("2024-01-01T00:00:01.5Z")),
                ("n", Value::Null),
                ("x", Value::Float(2.5)),
                ("tag", Value::from("b")),
                ("blob", Value::Bytes(vec![1, 2])),
            ]),
        ])
        .unwrap();
        out.write(&[rec(&[("time", Value::Timestamp(3)), ("n", Value::Int(7))])])
            .unwrap();
        out.flush().unwrap();
        let (batches, groups) = read(&sink);
        assert_eq!(groups, 2);
        let schema = batches[0].schema();
        let types: Vec<(&str, DataType)> = schema
            .fields()
            .iter()
            .map(|f| (f.name().as_str(), f.data_type().clone()))
            .collect();
        assert_eq!(
            types,
            vec![
                (
                    "time",
                    DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))
                ),
                ("n", DataType::Int64),
                ("x", DataType::Float64),
                ("ok", DataType::Boolean),
                ("tag", DataType::Utf8),
                ("doc", DataType::Utf8),
                ("blob", DataType::Binary),
            ]
        );
        let first = &batches[0];
        let time = first.column(0).as_primitive::<TimestampNanosecondType>();
        assert_eq!(time.value(0), 1_704_067_200_000_000_000);
        assert_eq!(time.value(1), 1_704_067_201_500_000_000);
        assert!(first.column(1).is_null(1));
        assert_eq!(first.column(2).as_primitive::<Float64Type>().value(0), 2.0);
        assert_eq!(first.column(5).as_string::<i32>().value(0), r#"{"k":1}"#);
        assert!(first.column(6).is_null(0));
        // The reader joins the two row groups into one batch.
        assert_eq!((batches.len(), first.num_rows()), (1, 3));
        assert_eq!(time.value(2), 3);
        assert_eq!(first.column(1).as_primitive::<Int64Type>().value(2), 7);
        assert!(first.column(4).is_null(2));
    }

    #[test]
    fn row_groups_are_cut_at_exactly_the_asked_size() {
        let (out, sink) = output(3);
        let records: Vec<Record> = (0..8).map(|i| rec(&[("i", Value::Int(i))])).collect();
        out.write(&records[..5]).unwrap();
        out.write(&records[5..]).unwrap();
        out.flush().unwrap();
        let bytes = bytes::Bytes::from(sink.0.lock().unwrap().clone());
        let builder = ParquetRecordBatchReaderBuilder::try_new(bytes).unwrap();
        let sizes: Vec<i64> = builder
            .metadata()
            .row_groups()
            .iter()
            .map(|g| g.num_rows())
            .collect();
        assert_eq!(sizes, vec![3, 3, 2]);
    }

    #[test]
    fn mixed_and_null_columns_hold_json_text() {
        let (out, sink) = output(10);
        out.write(&[
            rec(&[("m", Value::Int(1)), ("z", Value::Null)]),
            rec(&[("m", Value::from("one")), ("z", Value::Null)]),
        ])
        .unwrap();
        out.flush().unwrap();
        let (batches, _) = read(&sink);
        let m = batches[0].column(0).as_string::<i32>();
        assert_eq!((m.value(0), m.value(1)), ("1", r#""one""#));
        assert_eq!(batches[0].column(1).null_count(), 2);
    }

    #[test]
    fn a_later_record_that_does_not_fit_stops_the_output() {
        let (out, sink) = output(1);
        out.write(&[rec(&[("n", Value::Int(1))])]).unwrap();
        let err = out.write(&[rec(&[("n", Value::Float(1.5))])]).unwrap_err();
        assert!(err.to_string().contains("column `n` is integer"), "{err}");
        let err = out.write(&[rec(&[("n", Value::Int(2))])]).unwrap_err();
        assert!(err.to_string().contains("column `n`"), "{err}");
        let err = out.flush().unwrap_err();
        assert!(err.to_string().contains("left incomplete"), "{err}");
        // No footer: no reader takes the file for a whole one.
        let bytes = bytes::Bytes::from(sink.0.lock().unwrap().clone());
        assert!(ParquetRecordBatchReaderBuilder::try_new(bytes).is_err());

        let (out, _) = output(1);
        out.write(&[rec(&[("n", Value::Int(1))])]).unwrap();
        let err = out.write(&[rec(&[("other", Value::Int(1))])]).unwrap_err();
        assert!(err.to_string().contains("field `other`"), "{err}");
    }

    #[test]
    fn an_empty_read_back_is_an_empty_file() {
        let (out, sink) = output(4);
        out.flush().unwrap();
        let (batches, groups) = read(&sink);
        assert_eq!((batches.len(), groups), (0, 0));
        assert!(out.write(&[rec(&[("a", Value::Int(1))])]).is_err());
    }

    #[test]
    fn compression_names() {
        assert_eq!(
            "ZSTD".parse::<ParquetCompression>().unwrap(),
            ParquetCompression::Zstd
        );
        assert_eq!(
            "snappy".parse::<ParquetCompression>().unwrap(),
            ParquetCompression::Snappy
        );
        assert!("gzip".parse::<ParquetCompression>().is_err());
        assert!(ParquetOutput::new(
            Vec::new(),
            ParquetOptions {
                row_group_rows: 0,
                ..Default::default()
            }
        )
        .is_err());
    }
}
