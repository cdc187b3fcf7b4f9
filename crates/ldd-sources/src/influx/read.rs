//! Turning query answers into records, and the record streams of reads.
//!
//! InfluxQL reads select `"f1"::field, ..., "t1"::tag, ...` explicitly (fields, then tags,
//! each sorted) without `GROUP BY`: the server then merges all series into one stream
//! ordered by time, and the answer's columns are known by position, so a tag and a field
//! sharing a name, or a field typed differently in two shards, cannot be confused. (`SELECT
//! *` would need `SHOW TAG KEYS` to tell tags from fields anyway; `GROUP BY *` would return
//! series one after another instead of in time order.) Field values are typed from `SHOW
//! FIELD KEYS`, since JSON writes the float `1.0` as `1`.
//!
//! Flux reads come series by series (see [`super::query::flux_read`]); columns are told
//! apart by name: the dataset's fields, the system columns, and tags (everything else).

use std::collections::HashSet;
use std::sync::Arc;

use futures::stream::{self, StreamExt};
use ldd_core::{Record, RecordStream, Value};

use super::client::{FluxStream, QueryStream, Series, StatementResult};
use super::config::RowShape;
use super::dataset::{FieldType, Selection, FIELD, MEASUREMENT, TIME, VALUE};
use super::flux_csv::{FluxRow, FluxTable};
use crate::error::{Error, Result};

/// A JSON value of a column of `ty` as a record value (`None` for null).
pub(crate) fn json_value(value: &serde_json::Value, ty: FieldType) -> Option<Value> {
    use serde_json::Value as J;
    Some(match value {
        J::Null => return None,
        J::Bool(b) => Value::Bool(*b),
        J::Number(n) => match ty {
            FieldType::Float => Value::Float(n.as_f64()?),
            _ => {
                if let Some(i) = n.as_i64() {
                    Value::Int(i)
                } else {
                    Value::Float(n.as_f64()?)
                }
            }
        },
        J::String(s) => Value::String(s.clone()),
        other => Value::String(other.to_string()),
    })
}

fn json_time(value: &serde_json::Value) -> Option<i64> {
    match value {
        serde_json::Value::Number(n) => n.as_i64(),
        serde_json::Value::String(s) => Value::parse_timestamp(s),
        _ => None,
    }
}

/// Converts the series of an InfluxQL read into records.
#[derive(Debug, Clone)]
pub(crate) struct InfluxQlRows {
    sel: Arc<Selection>,
}

impl InfluxQlRows {
    /// A converter for reads of `sel` (built with [`super::query::influxql_read`]).
    pub(crate) fn new(sel: Arc<Selection>) -> Self {
        InfluxQlRows { sel }
    }

    /// Appends the records of one series chunk to `out`.
    pub(crate) fn convert(&self, series: &Series, out: &mut Vec<Record>) -> Result<()> {
        let sel = &*self.sel;
        let tags = sel.selected_tags();
        let n_fields = sel.fields.len();
        let expected = 1 + n_fields + tags.len();
        if series.columns.len() != expected {
            return Err(Error::Decode(format!(
                "InfluxQL read of `{}` answered {} columns ({}), expected {expected}",
                sel.measurement,
                series.columns.len(),
                series.columns.join(", ")
            )));
        }
        let measurement = if series.name.is_empty() {
            sel.measurement.as_str()
        } else {
            series.name.as_str()
        };
        for row in &series.values {
            let time = row.first().and_then(json_time).ok_or_else(|| {
                Error::Decode(format!(
                    "InfluxQL read of `{}` answered a row without a time",
                    sel.measurement
                ))
            })?;
            let tag_values =
                tags.iter()
                    .enumerate()
                    .filter_map(|(j, tag)| match row.get(1 + n_fields + j) {
                        Some(serde_json::Value::String(s)) if !s.is_empty() => {
                            Some((tag.as_str(), s.as_str()))
                        }
                        _ => None,
                    });
            match sel.shape {
                RowShape::Wide => {
                    let mut rec = Record::with_capacity(2 + tags.len() + n_fields);
                    rec.push(TIME, Value::Timestamp(time));
                    rec.push(MEASUREMENT, measurement);
                    for (tag, value) in tag_values {
                        rec.push(tag, value);
                    }
                    for (i, (name, ty)) in sel.fields.iter().enumerate() {
                        if !sel.emit[i] {
                            continue;
                        }
                        if let Some(v) = row.get(1 + i).and_then(|v| json_value(v, *ty)) {
                            rec.push(name.as_str(), v);
                        }
                    }
                    out.push(rec);
                }
                RowShape::Narrow => {
                    let tag_values: Vec<(&str, &str)> = tag_values.collect();
                    for (i, (name, ty)) in sel.fields.iter().enumerate() {
                        if !sel.emit[i] {
                            continue;
                        }
                        let Some(v) = row.get(1 + i).and_then(|v| json_value(v, *ty)) else {
                            continue;
                        };
                        let mut rec = Record::with_capacity(4 + tag_values.len());
                        rec.push(TIME, Value::Timestamp(time));
                        rec.push(MEASUREMENT, measurement);
                        for (tag, value) in &tag_values {
                            rec.push(*tag, *value);
                        }
                        rec.push(FIELD, name.as_str());
                        rec.push(VALUE, v);
                        out.push(rec);
                    }
                }
            }
        }
        Ok(())
    }

    /// The records of one answer chunk.
    pub(crate) fn convert_results(&self, results: &[StatementResult]) -> Result<Vec<Record>> {
        let mut out = Vec::new();
        for result in results {
            for series in &result.series {
                self.convert(series, &mut out)?;
            }
        }
        Ok(out)
    }
}

/// Where a Flux table's columns go in a record.
#[derive(Debug, Clone, Default)]
struct Layout {
    time: Option<usize>,
    measurement: Option<usize>,
    /// (name, column) sorted by name.
    tags: Vec<(String, usize)>,
    /// Wide: (name, column) sorted by name.
    fields: Vec<(String, usize)>,
    /// Narrow: `_field` and `_value`.
    field: Option<usize>,
    value: Option<usize>,
}

/// Converts Flux read rows into records.
#[derive(Debug)]
pub(crate) struct FluxRows {
    sel: Arc<Selection>,
    fields: HashSet<String>,
    emitted: HashSet<String>,
    cache: Option<(Arc<FluxTable>, Layout)>,
}

impl FluxRows {
    /// A converter for reads of `sel` (built with [`super::query::flux_read`]).
    pub(crate) fn new(sel: Arc<Selection>) -> Self {
        let fields = sel.field_names().map(str::to_owned).collect();
        let emitted = sel
            .fields
            .iter()
            .zip(&sel.emit)
            .filter(|(_, e)| **e)
            .map(|((n, _), _)| n.clone())
            .collect();
        FluxRows {
            sel,
            fields,
            emitted,
            cache: None,
        }
    }

    fn layout(&self, table: &FluxTable) -> Layout {
        let wide = self.sel.shape == RowShape::Wide;
        let mut layout = Layout::default();
        for (i, column) in table.columns.iter().enumerate() {
            let name = column.name.as_str();
            match name {
                "" | "result" | "table" | "_start" | "_stop" => {}
                TIME => layout.time = Some(i),
                MEASUREMENT => layout.measurement = Some(i),
                FIELD if !wide => layout.field = Some(i),
                VALUE if !wide => layout.value = Some(i),
                _ if wide && self.fields.contains(name) => {
                    if self.emitted.contains(name) {
                        layout.fields.push((name.to_owned(), i));
                    }
                }
                _ => {
                    if self.sel.keeps_tag(name) {
                        layout.tags.push((name.to_owned(), i));
                    }
                }
            }
        }
        layout.tags.sort();
        layout.fields.sort();
        layout
    }

    /// Appends the record(s) of one row to `out`.
    pub(crate) fn convert(&mut self, row: &FluxRow, out: &mut Vec<Record>) -> Result<()> {
        let fresh = match &self.cache {
            Some((table, _)) => !Arc::ptr_eq(table, &row.table) && **table != *row.table,
            None => true,
        };
        if fresh {
            let layout = self.layout(&row.table);
            self.cache = Some((Arc::clone(&row.table), layout));
        }
        let Some((_, layout)) = &self.cache else {
            return Ok(());
        };
        let value = |i: Option<usize>| i.and_then(|i| row.values.get(i)).and_then(Option::as_ref);
        let Some(Value::Timestamp(time)) = value(layout.time) else {
            return Err(Error::Decode(format!(
                "Flux read of `{}` answered a row without `_time`",
                self.sel.measurement
            )));
        };
        let mut rec = Record::with_capacity(2 + layout.tags.len() + layout.fields.len().max(2));
        rec.push(TIME, Value::Timestamp(*time));
        match value(layout.measurement) {
            Some(m) => rec.push(MEASUREMENT, m.clone()),
            None => rec.push(MEASUREMENT, self.sel.measurement.as_str()),
        }
        for (name, i) in &layout.tags {
            if let Some(v) = value(Some(*i)) {
                rec.push(name.as_str(), v.clone());
            }
        }
        if self.sel.shape == RowShape::Wide {
            for (name, i) in &layout.fields {
                if let Some(v) = value(Some(*i)) {
                    rec.push(name.as_str(), v.clone());
                }
            }
        } else {
            let (Some(field), Some(v)) = (value(layout.field), value(layout.value)) else {
                return Ok(());
            };
            rec.push(FIELD, field.clone());
            rec.push(VALUE, v.clone());
        }
        out.push(rec);
        Ok(())
    }
}

/// The records of an InfluxQL read, one batch per answer chunk.
pub(crate) fn influxql_records(answer: QueryStream, sel: Arc<Selection>) -> RecordStream {
    let rows = InfluxQlRows::new(sel);
    answer
        .filter_map(move |results| {
            let batch = results.and_then(|r| rows.convert_results(&r));
            async move {
                match batch {
                    Ok(b) if b.is_empty() => None,
                    other => Some(other.map_err(ldd_core::Error::from)),
                }
            }
        })
        .boxed()
}

/// The records of a Flux read, in batches of about `batch` records.
pub(crate) fn flux_records(answer: FluxStream, sel: Arc<Selection>, batch: usize) -> RecordStream {
    struct State {
        answer: FluxStream,
        rows: FluxRows,
        pending: Vec<Record>,
        done: bool,
        batch: usize,
    }
    let state = State {
        answer,
        rows: FluxRows::new(sel),
        pending: Vec::new(),
        done: false,
        batch: batch.max(1),
    };
    stream::try_unfold(state, |mut st| async move {
        loop {
            if st.pending.len() >= st.batch || (st.done && !st.pending.is_empty()) {
                let rest = if st.pending.len() > st.batch {
                    st.pending.split_off(st.batch)
                } else {
                    Vec::new()
                };
                let out = std::mem::replace(&mut st.pending, rest);
                return Ok(Some((out, st)));
            }
            if st.done {
                return Ok(None);
            }
            match st.answer.next().await {
                Some(rows) => {
                    for row in rows? {
                        st.rows.convert(&row, &mut st.pending)?;
                    }
                }
                None => st.done = true,
            }
        }
    })
    .map(|r: Result<Vec<Record>>| r.map_err(ldd_core::Error::from))
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::influx::dataset::{Lang, Schema};
    use crate::influx::flux_csv::{AnnotatedCsv, CsvReader};
    use ldd_core::DatasetSpec;

    fn selection(shape: RowShape, projection: Option<Vec<&str>>) -> Arc<Selection> {
        let mut spec = DatasetSpec::new("db", "m");
        spec.projection = projection.map(|p| p.into_iter().map(str::to_owned).collect());
        let schema = Schema::new(
            vec!["device".into(), "site".into()],
            vec![
                ("ok".into(), FieldType::Boolean),
                ("s".into(), FieldType::String),
                ("seq".into(), FieldType::Integer),
                ("temp".into(), FieldType::Float),
            ],
        );
        Arc::new(Selection::new(&spec, &schema, shape, Lang::InfluxQl).unwrap())
    }

    /// An answer of `SELECT "ok"::field, "s"::field, "seq"::field, "temp"::field,
    /// "device"::tag, "site"::tag FROM m`, as InfluxDB 1.8 sends it.
    const ANSWER: &str = r#"{"results":[{"statement_id":0,"series":[{"name":"m","columns":["time","ok","s","seq","temp","device","site"],"values":[[1000,true,"hi",1,1,"a","x"],[2000,null,null,3,3.5,"a",null]]}]}]}"#;

    fn records(sel: Arc<Selection>) -> Vec<Record> {
        let results = crate::influx::client::parse_query_line("t", ANSWER.as_bytes()).unwrap();
        InfluxQlRows::new(sel).convert_results(&results).unwrap()
    }

    #[test]
    fn influxql_wide_records_are_typed() {
        let recs = records(selection(RowShape::Wide, None));
        assert_eq!(recs.len(), 2);
        let expected: Record = [
            ("_time", Value::Timestamp(1000)),
            ("_measurement", Value::from("m")),
            ("device", Value::from("a")),
            ("site", Value::from("x")),
            ("ok", Value::Bool(true)),
            ("s", Value::from("hi")),
            ("seq", Value::Int(1)),
            // JSON says 1, the schema says float.
            ("temp", Value::Float(1.0)),
        ]
        .into_iter()
        .collect();
        assert_eq!(recs[0], expected);
        let names: Vec<_> = recs[1].fields.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["_time", "_measurement", "device", "seq", "temp"]);
    }

    #[test]
    fn influxql_narrow_records_one_per_field() {
        let recs = records(selection(RowShape::Narrow, None));
        assert_eq!(recs.len(), 4 + 2);
        assert_eq!(recs[0].get("_field"), Some(&Value::from("ok")));
        assert_eq!(recs[0].get("_value"), Some(&Value::Bool(true)));
        assert_eq!(recs[5].get("_field"), Some(&Value::from("temp")));
        assert_eq!(recs[5].get("_value"), Some(&Value::Float(3.5)));
        assert_eq!(recs[5].get("device"), Some(&Value::from("a")));
    }

    #[test]
    fn influxql_column_mismatch_is_a_decode_error() {
        let sel = selection(RowShape::Wide, Some(vec!["seq"]));
        let results = crate::influx::client::parse_query_line("t", ANSWER.as_bytes()).unwrap();
        let err = InfluxQlRows::new(sel)
            .convert_results(&results)
            .unwrap_err();
        assert!(matches!(err, Error::Decode(_)), "{err}");
    }

    fn flux_rows(body: &str) -> Vec<FluxRow> {
        let mut csv = CsvReader::default();
        let mut records = Vec::new();
        csv.feed(body.as_bytes(), &mut records).unwrap();
        csv.finish(&mut records).unwrap();
        let mut tables = AnnotatedCsv::default();
        records
            .into_iter()
            .filter_map(|r| tables.push(r).unwrap())
            .collect()
    }

    #[test]
    fn flux_pivoted_rows_become_wide_records() {
        let body = "#datatype,string,long,dateTime:RFC3339,string,string,string,boolean,string,long,double\r\n\
#group,false,false,false,true,true,true,false,false,false,false\r\n\
#default,_result,,,,,,,,,\r\n\
,result,table,_time,_measurement,site,device,ok,s,seq,temp\r\n\
,,0,1970-01-01T00:00:00.000001Z,m,x,a,true,hi,1,1\r\n\
,,0,1970-01-01T00:00:00.000002Z,m,x,a,,,3,3.5\r\n";
        let sel = selection(RowShape::Wide, Some(vec!["device", "seq", "temp"]));
        let mut conv = FluxRows::new(sel);
        let mut out = Vec::new();
        for row in flux_rows(body) {
            conv.convert(&row, &mut out).unwrap();
        }
        let names: Vec<_> = out[0].fields.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["_time", "_measurement", "device", "seq", "temp"]);
        assert_eq!(out[0].get("temp"), Some(&Value::Float(1.0)));
        assert_eq!(out[1].get("_time"), Some(&Value::Timestamp(2000)));
    }

    #[test]
    fn flux_narrow_rows_keep_field_and_value() {
        let body = "#datatype,string,long,dateTime:RFC3339,double,string,string,string\r\n\
#group,false,false,false,false,true,true,true\r\n\
#default,_result,,,,,,\r\n\
,result,table,_time,_value,_field,_measurement,device\r\n\
,,0,1970-01-01T00:00:00.000001Z,1.5,temp,m,a\r\n";
        let mut conv = FluxRows::new(selection(RowShape::Narrow, None));
        let mut out = Vec::new();
        for row in flux_rows(body) {
            conv.convert(&row, &mut out).unwrap();
        }
        let expected: Record = [
            ("_time", Value::Timestamp(1000)),
            ("_measurement", Value::from("m")),
            ("device", Value::from("a")),
            ("_field", Value::from("temp")),
            ("_value", Value::Float(1.5)),
        ]
        .into_iter()
        .collect();
        assert_eq!(out, vec![expected]);
    }
}
