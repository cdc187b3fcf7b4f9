//! Query text for a [`Selection`], in InfluxQL and Flux. Every name and value is quoted by
//! [`super::escape`]; times are integers (InfluxQL) or RFC 3339 literals made from integers
//! (Flux).

use std::fmt::Write as _;

use ldd_core::Value;

use super::dataset::{FieldLiteral, Filter, Selection, MAX_TIME, MIN_TIME};
use super::escape::{flux_string, influxql_ident, influxql_string};
use crate::error::Result;

/// Half-open `[start, end)` bounds in ns; `None` is open.
pub(crate) type Bounds = (Option<i64>, Option<i64>);

fn literal(lit: &FieldLiteral) -> Result<String> {
    Ok(match lit {
        FieldLiteral::Float(v) => {
            let text = v.to_string();
            if text.contains('.') {
                text
            } else {
                format!("{text}.0")
            }
        }
        FieldLiteral::Integer(v) => v.to_string(),
        FieldLiteral::Unsigned(v) => v.to_string(),
        FieldLiteral::Boolean(v) => v.to_string(),
        FieldLiteral::String(s) => influxql_string(s)?,
    })
}

/// `FROM "m" WHERE <filters> AND time >= a AND time < b` (the WHERE only when needed).
pub(crate) fn influxql_from_where(sel: &Selection, bounds: Bounds) -> Result<String> {
    let mut out = format!("FROM {}", influxql_ident(&sel.measurement)?);
    let mut conditions = Vec::new();
    for filter in &sel.filters {
        conditions.push(match filter {
            Filter::Tag { key, value } => {
                format!(
                    "{}::tag = {}",
                    influxql_ident(key)?,
                    influxql_string(value)?
                )
            }
            Filter::Field { key, literal: lit } => {
                format!("{}::field = {}", influxql_ident(key)?, literal(lit)?)
            }
        });
    }
    if let Some(start) = bounds.0 {
        conditions.push(format!("time >= {start}"));
    }
    if let Some(end) = bounds.1 {
        conditions.push(format!("time < {end}"));
    }
    if !conditions.is_empty() {
        out.push_str(" WHERE ");
        out.push_str(&conditions.join(" AND "));
    }
    Ok(out)
}

/// The select list of a read: `"f1"::field, ..., "t1"::tag, ...` (fields first, then tags,
/// each sorted), so answer columns are `time`, the fields, the tags, by position.
pub(crate) fn influxql_select_list(sel: &Selection) -> Result<String> {
    let mut items = Vec::new();
    for name in sel.field_names() {
        items.push(format!("{}::field", influxql_ident(name)?));
    }
    for tag in sel.selected_tags() {
        items.push(format!("{}::tag", influxql_ident(tag)?));
    }
    Ok(items.join(", "))
}

/// `SELECT <fields and tags> FROM m WHERE ... [ORDER BY time DESC] [LIMIT n]`.
pub(crate) fn influxql_read(
    sel: &Selection,
    bounds: Bounds,
    descending: bool,
    limit: Option<u64>,
) -> Result<String> {
    let mut q = format!(
        "SELECT {} {}",
        influxql_select_list(sel)?,
        influxql_from_where(sel, bounds)?
    );
    q.push_str(if descending {
        " ORDER BY time DESC"
    } else {
        " ORDER BY time ASC"
    });
    if let Some(n) = limit {
        let _ = write!(q, " LIMIT {n}");
    }
    Ok(q)
}

/// `SELECT count("f1"), count("f2") FROM m WHERE ...`: per-field counts.
pub(crate) fn influxql_count(sel: &Selection, fields: &[String], bounds: Bounds) -> Result<String> {
    let counts = fields
        .iter()
        .map(|f| Ok(format!("count({})", influxql_ident(f)?)))
        .collect::<Result<Vec<_>>>()?;
    Ok(format!(
        "SELECT {} {}",
        counts.join(", "),
        influxql_from_where(sel, bounds)?
    ))
}

/// Per-bucket counts: `SELECT count(..) ... GROUP BY time(<width>ns) fill(none)`.
pub(crate) fn influxql_histogram(
    sel: &Selection,
    fields: &[String],
    start: i64,
    end: i64,
    width: i64,
) -> Result<String> {
    Ok(format!(
        "{} GROUP BY time({width}ns) fill(none)",
        influxql_count(sel, fields, (Some(start), Some(end)))?
    ))
}

/// `SHOW TAG KEYS FROM m` and `SHOW FIELD KEYS FROM m`.
pub(crate) fn influxql_schema(measurement: &str) -> Result<(String, String)> {
    let m = influxql_ident(measurement)?;
    Ok((
        format!("SHOW TAG KEYS FROM {m}"),
        format!("SHOW FIELD KEYS FROM {m}"),
    ))
}

/// A Flux time literal for ns since the epoch.
pub(crate) fn flux_time(nanos: i64) -> String {
    Value::format_timestamp(nanos.clamp(MIN_TIME, MAX_TIME))
}

/// `from |> range |> filter(measurement, tags) [|> filter(fields)]`.
pub(crate) fn flux_base(
    sel: &Selection,
    bounds: Bounds,
    fields: Option<&[String]>,
) -> Result<String> {
    let start = bounds.0.unwrap_or(MIN_TIME);
    let stop = bounds.1.unwrap_or(MAX_TIME);
    let mut q = format!(
        "from(bucket: {})\n  |> range(start: {}, stop: {})\n  |> filter(fn: (r) => r._measurement == {}",
        flux_string(&sel.database)?,
        flux_time(start),
        flux_time(stop),
        flux_string(&sel.measurement)?
    );
    for filter in &sel.filters {
        if let Filter::Tag { key, value } = filter {
            let _ = write!(
                q,
                " and r[{}] == {}",
                flux_string(key)?,
                flux_string(value)?
            );
        }
    }
    q.push(')');
    if let Some(end) = bounds.1 {
        // InfluxDB 1.8's Flux includes points at `stop`; this keeps ranges half-open there
        // and costs nothing where `stop` is already exclusive.
        let _ = write!(q, "\n  |> filter(fn: (r) => r._time < {})", flux_time(end));
    }
    if let Some(fields) = fields {
        if fields.is_empty() {
            q.push_str("\n  |> filter(fn: (r) => false)");
        } else {
            let alternatives = fields
                .iter()
                .map(|f| Ok(format!("r._field == {}", flux_string(f)?)))
                .collect::<Result<Vec<_>>>()?;
            let _ = write!(q, "\n  |> filter(fn: (r) => {})", alternatives.join(" or "));
        }
    }
    Ok(q)
}

/// A read: narrow rows, or wide rows pivoted per series (`_time`, `_measurement`, tags,
/// one column per field). Tables are not merged: Flux on InfluxDB 1.8 misplaces values
/// when `group()` merges tables with different columns, so rows come series by series,
/// each in time order.
pub(crate) fn flux_read(sel: &Selection, bounds: Bounds, wide: bool) -> Result<String> {
    let fields: Vec<String> = sel.field_names().map(str::to_owned).collect();
    let mut q = flux_base(sel, bounds, Some(&fields))?;
    q.push_str("\n  |> drop(columns: [\"_start\", \"_stop\"])");
    if wide {
        q.push_str(
            "\n  |> pivot(rowKey: [\"_time\"], columnKey: [\"_field\"], valueColumn: \"_value\")",
        );
    }
    Ok(q)
}

/// Per-field counts (result `counts`: `_field`, `_value`).
pub(crate) fn flux_count(sel: &Selection, fields: &[String], bounds: Bounds) -> Result<String> {
    Ok(format!(
        "{}\n  |> count()\n  |> keep(columns: [\"_field\", \"_value\"])\n  |> group(columns: [\"_field\"])\n  |> sum()\n  |> yield(name: \"counts\")",
        flux_base(sel, bounds, Some(fields))?
    ))
}

/// Per-bucket counts: windows of `width` ns aligned to the epoch, `_time` = window start.
///
/// Rows are reduced to `_time` (and a value) and merged into one table before windowing:
/// windowing each series separately is about 40 times slower on InfluxDB 1.8 (100 series ×
/// 1000 windows). One field keeps its own values; several fields (narrow shape, whose value
/// types differ) are mapped to a constant first, since merging tables of different column
/// types is unsafe in Flux 1.8.
pub(crate) fn flux_histogram(
    sel: &Selection,
    fields: &[String],
    start: i64,
    end: i64,
    width: i64,
) -> Result<String> {
    let reduce = if fields.len() == 1 {
        "keep(columns: [\"_time\", \"_value\"])"
    } else {
        "map(fn: (r) => ({_time: r._time, _value: 1}))\n  |> keep(columns: [\"_time\", \"_value\"])"
    };
    Ok(format!(
        "{}\n  |> {reduce}\n  |> group()\n  |> aggregateWindow(every: {width}ns, fn: count, createEmpty: false, timeSrc: \"_start\")\n  |> keep(columns: [\"_time\", \"_value\"])",
        flux_base(sel, (Some(start), Some(end)), Some(fields))?
    ))
}

/// First and last point time (results `first` and `last`, column `_time`).
pub(crate) fn flux_first_last(
    sel: &Selection,
    fields: &[String],
    bounds: Bounds,
) -> Result<String> {
    Ok(format!(
        "data = {}\ndata |> first() |> keep(columns: [\"_time\"]) |> group() |> min(column: \"_time\") |> yield(name: \"first\")\ndata |> last() |> keep(columns: [\"_time\"]) |> group() |> max(column: \"_time\") |> yield(name: \"last\")",
        flux_base(sel, bounds, Some(fields))?
    ))
}

/// Tag keys and field keys of a measurement, over all time (results `keys`: group-key
/// column names, and `fields`: field names, both in `_value`).
pub(crate) fn flux_schema(database: &str, measurement: &str) -> Result<String> {
    Ok(format!(
        "data = from(bucket: {})\n  |> range(start: {}, stop: {})\n  |> filter(fn: (r) => r._measurement == {})\n  |> first()\n\
         data |> keys() |> keep(columns: [\"_value\"]) |> group() |> distinct() |> yield(name: \"keys\")\n\
         data |> keep(columns: [\"_field\"]) |> group() |> distinct(column: \"_field\") |> yield(name: \"fields\")",
        flux_string(database)?,
        flux_time(MIN_TIME),
        flux_time(MAX_TIME),
        flux_string(measurement)?
    ))
}

/// Measurements of a bucket (column `_value`).
pub(crate) fn flux_measurements(bucket: &str) -> Result<String> {
    Ok(format!(
        "import \"influxdata/influxdb/v1\"\nv1.measurements(bucket: {})",
        flux_string(bucket)?
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::influx::config::RowShape;
    use crate::influx::dataset::{FieldType, Lang, Schema};
    use ldd_core::{DatasetSpec, FieldEquals};

    fn selection(tag_value: &str, measurement: &str) -> Selection {
        let mut spec = DatasetSpec::new("d\"b", measurement);
        spec.filters = vec![FieldEquals {
            field: "device".into(),
            value: tag_value.into(),
        }];
        let schema = Schema::new(
            vec!["device".into()],
            vec![
                ("v".into(), FieldType::Float),
                ("n".into(), FieldType::Integer),
            ],
        );
        Selection::new(&spec, &schema, RowShape::Wide, Lang::InfluxQl).unwrap()
    }

    #[test]
    fn influxql_quotes_everything() {
        let sel = selection("'; DROP MEASUREMENT x; --", "m\"x");
        let q = influxql_read(&sel, (Some(-5), Some(10)), false, Some(1)).unwrap();
        assert_eq!(
            q,
            r#"SELECT "n"::field, "v"::field, "device"::tag FROM "m\"x" WHERE "device"::tag = '\'; DROP MEASUREMENT x; --' AND time >= -5 AND time < 10 ORDER BY time ASC LIMIT 1"#
        );
        let q = influxql_histogram(&sel, &["v".into()], 0, 100, 7).unwrap();
        assert!(
            q.starts_with(r#"SELECT count("v") FROM "m\"x" WHERE"#),
            "{q}"
        );
        assert!(
            q.ends_with("time >= 0 AND time < 100 GROUP BY time(7ns) fill(none)"),
            "{q}"
        );
        assert_eq!(
            influxql_schema("a\\b").unwrap(),
            (
                r#"SHOW TAG KEYS FROM "a\\b""#.to_string(),
                r#"SHOW FIELD KEYS FROM "a\\b""#.to_string()
            )
        );
    }

    #[test]
    fn influxql_field_literals_are_typed() {
        let mut sel = selection("x", "m");
        sel.filters = vec![
            Filter::Field {
                key: "v".into(),
                literal: FieldLiteral::Float(2.0),
            },
            Filter::Field {
                key: "s".into(),
                literal: FieldLiteral::String("a'b".into()),
            },
        ];
        let q = influxql_from_where(&sel, (None, None)).unwrap();
        assert_eq!(
            q,
            r#"FROM "m" WHERE "v"::field = 2.0 AND "s"::field = 'a\'b'"#
        );
    }

    #[test]
    fn flux_quotes_everything() {
        let sel = selection(
            r#"") |> drop(columns: ["_value"]) |> yield(name: "${x}"#,
            "m",
        );
        let q = flux_read(&sel, (None, Some(1_500_000_000_000_000_001)), true).unwrap();
        assert!(q.starts_with(r#"from(bucket: "d\"b")"#), "{q}");
        assert!(
            q.contains(
                r#"r["device"] == "\") |> drop(columns: [\"_value\"]) |> yield(name: \"\${x}")"#
            ),
            "{q}"
        );
        assert!(q.contains("range(start: 1677-09-21T00:12:43.145224194Z, stop: 2017-07-14T02:40:00.000000001Z)"), "{q}");
        assert!(
            q.contains(r#"filter(fn: (r) => r._field == "n" or r._field == "v")"#),
            "{q}"
        );
        assert!(q.ends_with(
            r#"pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")"#
        ));
        let q = flux_base(&sel, (None, None), Some(&[])).unwrap();
        assert!(q.ends_with("filter(fn: (r) => false)"), "{q}");
    }
}
