//! Line protocol: turning records into points for `/write`.
//!
//! A record becomes one point: `_time` is the timestamp (ns), `_measurement` is replaced by
//! the measurement being written, text values become tags (sorted by key) and every other
//! value becomes a field: integers with the `i` suffix, floats as written (NaN and
//! infinities, which InfluxDB cannot store, are left out), booleans, and other timestamps as
//! integer nanoseconds. For generated records that is: tags `device`, `site`; fields `seq`
//! (integer), `temperature`, `humidity`, `pressure`, `battery` (floats), `ok` (boolean).

use ldd_core::{Record, Value};

use crate::error::{Error, Result};

/// Escapes a measurement, tag key, tag value or field key. `specials` are escaped with a
/// backslash; names line protocol cannot carry are rejected.
fn escape_name(name: &str, specials: &[char], what: &str, out: &mut String) -> Result<()> {
    if name.is_empty() {
        return Err(Error::InvalidInput(format!(
            "line protocol: the {what} is empty"
        )));
    }
    let mut chars = name.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\n' | '\r' | '\0' => {
                return Err(Error::InvalidInput(format!(
                    "line protocol cannot carry a newline, carriage return or NUL in a {what} \
                     ({name:?}); rename it"
                )))
            }
            '\\' => {
                let next = chars.peek().copied();
                if next.is_none_or(|n| n == '\\' || specials.contains(&n)) {
                    return Err(Error::InvalidInput(format!(
                        "line protocol cannot carry a backslash at the end of a {what} or before \
                         a backslash, space, comma or equals sign ({name:?}); rename it"
                    )));
                }
                out.push('\\');
            }
            c if specials.contains(&c) => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    Ok(())
}

/// Escapes a measurement name for line protocol (`,` and space).
pub fn escape_measurement(name: &str, out: &mut String) -> Result<()> {
    escape_name(name, &[',', ' '], "measurement name", out)
}

/// Escapes a tag key, tag value or field key for line protocol (`,`, `=` and space).
pub fn escape_key(name: &str, out: &mut String) -> Result<()> {
    escape_name(name, &[',', '=', ' '], "tag or field name", out)
}

/// Appends `record` as one line of line protocol (with its `\n`) for `measurement`.
///
/// ```
/// use ldd_core::{Record, Value};
/// use ldd_sources::influx::write_line;
///
/// let mut rec = Record::default();
/// rec.push("_time", Value::Timestamp(1_000));
/// rec.push("device", "dev 1");
/// rec.push("seq", 7i64);
/// rec.push("t", 1.5);
/// let mut line = String::new();
/// write_line(&rec, "my m", &mut line).unwrap();
/// assert_eq!(line, "my\\ m,device=dev\\ 1 seq=7i,t=1.5 1000\n");
/// ```
pub fn write_line(record: &Record, measurement: &str, out: &mut String) -> Result<()> {
    let start = out.len();
    let result = write_line_inner(record, measurement, out);
    if result.is_err() {
        out.truncate(start);
    }
    result
}

fn write_line_inner(record: &Record, measurement: &str, out: &mut String) -> Result<()> {
    use std::fmt::Write as _;
    escape_measurement(measurement, out)?;
    let mut tags: Vec<(&str, &str)> = record
        .fields
        .iter()
        .filter_map(|(k, v)| match v {
            Value::String(s) if k != "_measurement" && !s.is_empty() => {
                Some((k.as_str(), s.as_str()))
            }
            _ => None,
        })
        .collect();
    tags.sort_unstable();
    for (key, value) in tags {
        out.push(',');
        escape_key(key, out)?;
        out.push('=');
        escape_key(value, out)?;
    }
    let mut time = None;
    let mut first = true;
    for (key, value) in &record.fields {
        if key == "_time" {
            if let Value::Timestamp(t) | Value::Int(t) = value {
                time = Some(*t);
                continue;
            }
        }
        if key == "_measurement" {
            continue;
        }
        let sep = if first { ' ' } else { ',' };
        match value {
            Value::Null | Value::String(_) => continue,
            Value::Float(f) if !f.is_finite() => continue,
            Value::Bytes(_) | Value::Document(_) | Value::Array(_) => {
                return Err(Error::InvalidInput(format!(
                    "line protocol: field `{key}` holds a {} value; InfluxDB fields are numbers, \
                     booleans or strings",
                    value.type_name()
                )))
            }
            _ => {}
        }
        out.push(sep);
        first = false;
        escape_key(key, out)?;
        out.push('=');
        match value {
            Value::Int(i) | Value::Timestamp(i) => {
                let _ = write!(out, "{i}i");
            }
            Value::Float(f) => {
                let _ = write!(out, "{f}");
            }
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            _ => {}
        }
    }
    if first {
        return Err(Error::InvalidInput(
            "line protocol: a point needs at least one number or boolean field".into(),
        ));
    }
    if let Some(t) = time {
        let _ = write!(out, " {t}");
    }
    out.push('\n');
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ldd_core::GeneratorConfig;

    #[test]
    fn generated_records_become_points() {
        let cfg = GeneratorConfig::default();
        let mut line = String::new();
        write_line(&cfg.record(3), "iot", &mut line).unwrap();
        assert!(
            line.starts_with("iot,device=dev-00003,site=site-03 seq=3i,temperature="),
            "{line}"
        );
        assert!(
            line.contains(",ok=true") || line.contains(",ok=false"),
            "{line}"
        );
        assert!(line.ends_with(&format!(" {}\n", cfg.time_of(3))), "{line}");
        assert_eq!(line.matches('\n').count(), 1);
    }

    #[test]
    fn names_are_escaped_or_rejected() {
        let mut out = String::new();
        escape_measurement("a,b c=d\"e'f\\g", &mut out).unwrap();
        assert_eq!(out, "a\\,b\\ c=d\"e'f\\g");
        let mut out = String::new();
        escape_key("k=v, w", &mut out).unwrap();
        assert_eq!(out, "k\\=v\\,\\ w");
        for bad in ["a\nb", "a\\", "a\\,b", "a\\\\b", "nul\0", ""] {
            let err = escape_key(bad, &mut String::new()).unwrap_err().to_string();
            assert!(err.contains("line protocol"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn values_are_typed_and_bad_records_leave_no_trace() {
        let mut rec = Record::default();
        rec.push("_time", Value::Timestamp(-5));
        rec.push("_measurement", "ignored");
        rec.push("f", 2.0);
        rec.push("nan", f64::NAN);
        rec.push("i", -3i64);
        rec.push("b", false);
        rec.push("n", Value::Null);
        rec.push("at", Value::Timestamp(9));
        let mut out = String::from("keep\n");
        write_line(&rec, "m", &mut out).unwrap();
        assert_eq!(out, "keep\nm f=2,i=-3i,b=false,at=9i -5\n");

        let mut only_tags = Record::default();
        only_tags.push("device", "x");
        let mut out = String::from("keep\n");
        assert!(write_line(&only_tags, "m", &mut out).is_err());
        assert_eq!(out, "keep\n");
        let mut doc = Record::default();
        doc.push("d", Value::Document(vec![]));
        assert!(write_line(&doc, "m", &mut out).is_err());
        assert_eq!(out, "keep\n");
    }
}
