//! Incremental parsing of Flux's annotated CSV (RFC 4180 CSV with `#datatype`, `#group` and
//! `#default` annotation rows; tables separated by blank lines).
//!
//! [`CsvReader`] turns bytes, fed in any pieces, into CSV records (quoted fields may hold
//! commas, quotes and newlines); [`AnnotatedCsv`] turns records into typed [`FluxRow`]s,
//! and an error table (`error,reference` header) into an error.

use std::sync::Arc;

use ldd_core::Value;

use crate::error::{Error, Result};

/// A column of a Flux table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FluxColumn {
    /// Column name.
    pub(crate) name: String,
    /// `#datatype` annotation (`string`, `long`, `double`, `dateTime:RFC3339`, ...).
    pub(crate) datatype: String,
    /// Whether the column is part of the group key.
    pub(crate) group: bool,
}

/// The columns of one table (without the leading annotation column).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FluxTable {
    /// The columns.
    pub(crate) columns: Vec<FluxColumn>,
}

impl FluxTable {
    /// Index of the column with this name.
    pub(crate) fn index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }
}

/// One row, typed by its table's `#datatype` annotation; `None` is a null (empty) cell.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FluxRow {
    /// The table the row belongs to (shared by its rows).
    pub(crate) table: Arc<FluxTable>,
    /// One value per column.
    pub(crate) values: Vec<Option<Value>>,
}

impl FluxRow {
    /// The value of the named column.
    pub(crate) fn get(&self, name: &str) -> Option<&Value> {
        self.table
            .index(name)
            .and_then(|i| self.values.get(i))
            .and_then(Option::as_ref)
    }
}

/// Splits bytes into CSV records.
#[derive(Debug, Default)]
pub(crate) struct CsvReader {
    field: Vec<u8>,
    record: Vec<String>,
    in_quotes: bool,
    quote_in_quotes: bool,
    quoted: bool,
}

impl CsvReader {
    fn end_field(&mut self) -> Result<()> {
        let bytes = std::mem::take(&mut self.field);
        let text = String::from_utf8(bytes)
            .map_err(|e| Error::Decode(format!("Flux answer is not UTF-8: {e}")))?;
        self.record.push(text);
        self.quoted = false;
        Ok(())
    }

    /// Parses `bytes`, appending every completed record to `out`.
    pub(crate) fn feed(&mut self, bytes: &[u8], out: &mut Vec<Vec<String>>) -> Result<()> {
        for &b in bytes {
            if self.in_quotes {
                if self.quote_in_quotes {
                    self.quote_in_quotes = false;
                    if b == b'"' {
                        self.field.push(b'"');
                        continue;
                    }
                    self.in_quotes = false;
                } else if b == b'"' {
                    self.quote_in_quotes = true;
                    continue;
                } else {
                    self.field.push(b);
                    continue;
                }
            }
            match b {
                b',' => self.end_field()?,
                b'\n' => {
                    self.end_field()?;
                    out.push(std::mem::take(&mut self.record));
                }
                b'\r' => {}
                b'"' if self.field.is_empty() && !self.quoted => {
                    self.in_quotes = true;
                    self.quoted = true;
                }
                _ => self.field.push(b),
            }
        }
        Ok(())
    }

    /// Ends the input, appending a last record that had no newline.
    pub(crate) fn finish(&mut self, out: &mut Vec<Vec<String>>) -> Result<()> {
        if self.quote_in_quotes {
            self.quote_in_quotes = false;
            self.in_quotes = false;
        }
        if self.in_quotes {
            return Err(Error::Decode(
                "Flux answer ends inside a quoted CSV field (truncated?)".into(),
            ));
        }
        if !self.field.is_empty() || !self.record.is_empty() || self.quoted {
            self.end_field()?;
            out.push(std::mem::take(&mut self.record));
        }
        Ok(())
    }
}

/// Turns CSV records of an annotated-CSV answer into typed rows.
#[derive(Debug, Default)]
pub(crate) struct AnnotatedCsv {
    datatypes: Vec<String>,
    groups: Vec<String>,
    defaults: Vec<String>,
    table: Option<Arc<FluxTable>>,
    error_table: bool,
}

impl AnnotatedCsv {
    /// Takes one record; returns a row when it is a data row.
    pub(crate) fn push(&mut self, record: Vec<String>) -> Result<Option<FluxRow>> {
        if record.iter().all(String::is_empty) {
            // A blank line: the next table starts (with its own annotations and header).
            self.table = None;
            self.error_table = false;
            return Ok(None);
        }
        let first = record.first().map(String::as_str).unwrap_or_default();
        if first.starts_with('#') {
            match first {
                "#datatype" => self.datatypes = record,
                "#group" => self.groups = record,
                "#default" => self.defaults = record,
                _ => {}
            }
            self.table = None;
            return Ok(None);
        }
        let Some(table) = &self.table else {
            let names = record
                .iter()
                .skip(1)
                .map(String::as_str)
                .collect::<Vec<_>>();
            self.error_table = record.len() >= 2
                && names.first() == Some(&"error")
                && names.iter().all(|n| *n == "error" || *n == "reference");
            let columns = record
                .iter()
                .enumerate()
                .skip(1)
                .map(|(i, name)| FluxColumn {
                    name: name.clone(),
                    datatype: self.datatypes.get(i).cloned().unwrap_or_default(),
                    group: self.groups.get(i).is_some_and(|g| g == "true"),
                })
                .collect();
            self.table = Some(Arc::new(FluxTable { columns }));
            return Ok(None);
        };
        if self.error_table {
            let message = record.get(1).cloned().unwrap_or_default();
            return Err(Error::Server {
                context: "running Flux".into(),
                status: 200,
                message,
            });
        }
        let mut values = Vec::with_capacity(table.columns.len());
        for (i, column) in table.columns.iter().enumerate() {
            let cell = record.get(i + 1).map(String::as_str).unwrap_or_default();
            let cell = if cell.is_empty() {
                self.defaults
                    .get(i + 1)
                    .map(String::as_str)
                    .unwrap_or_default()
            } else {
                cell
            };
            values.push(parse_cell(&column.name, &column.datatype, cell)?);
        }
        Ok(Some(FluxRow {
            table: Arc::clone(table),
            values,
        }))
    }
}

/// Parses one cell by its `#datatype`; an empty cell is null.
pub(crate) fn parse_cell(column: &str, datatype: &str, cell: &str) -> Result<Option<Value>> {
    if cell.is_empty() {
        return Ok(None);
    }
    let bad = || {
        Error::Decode(format!(
            "Flux column `{column}` of type {datatype} holds `{cell}`"
        ))
    };
    let value = match datatype {
        "long" => Value::Int(cell.parse().map_err(|_| bad())?),
        "unsignedLong" => {
            let v: u64 = cell.parse().map_err(|_| bad())?;
            i64::try_from(v).map_or(Value::Float(v as f64), Value::Int)
        }
        "double" => Value::Float(cell.parse().map_err(|_| bad())?),
        "boolean" => match cell {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => return Err(bad()),
        },
        d if d.starts_with("dateTime") => {
            Value::Timestamp(Value::parse_timestamp(cell).ok_or_else(bad)?)
        }
        _ => Value::String(cell.to_owned()),
    };
    Ok(Some(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Annotated CSV as InfluxDB 1.8 sends it (CRLF line ends), two tables and a quoted cell.
    const BODY: &str = "#datatype,string,long,dateTime:RFC3339,dateTime:RFC3339,dateTime:RFC3339,double,string,string,string\r\n\
#group,false,false,true,true,false,false,true,true,true\r\n\
#default,_result,,,,,,,,\r\n\
,result,table,_start,_stop,_time,_value,_field,_measurement,device\r\n\
,,0,1970-01-01T00:00:00Z,2030-01-01T00:00:00Z,1970-01-01T00:00:00.000001Z,1.5,temp,m,\"a,\"\"b\"\"\nc\"\r\n\
,,0,1970-01-01T00:00:00Z,2030-01-01T00:00:00Z,1970-01-01T00:00:00.000002Z,,temp,m,x\r\n\
\r\n\
#datatype,string,long,dateTime:RFC3339,long,boolean,unsignedLong\r\n\
#group,false,false,false,false,false,false\r\n\
#default,_result,,,,,\r\n\
,result,table,_time,seq,ok,big\r\n\
,,1,2024-01-01T00:00:00.123456789Z,-7,true,18446744073709551615\r\n\
\r\n";

    fn parse(body: &[u8], piece: usize) -> Result<Vec<FluxRow>> {
        let mut csv = CsvReader::default();
        let mut tables = AnnotatedCsv::default();
        let mut rows = Vec::new();
        let mut records = Vec::new();
        for chunk in body.chunks(piece) {
            csv.feed(chunk, &mut records)?;
        }
        csv.finish(&mut records)?;
        for r in records {
            if let Some(row) = tables.push(r)? {
                rows.push(row);
            }
        }
        Ok(rows)
    }

    #[test]
    fn rows_are_typed_whatever_the_piece_size() {
        for piece in [1, 2, 3, 7, 64, 10_000] {
            let rows = parse(BODY.as_bytes(), piece).unwrap();
            assert_eq!(rows.len(), 3, "piece {piece}");
            assert_eq!(rows[0].get("_value"), Some(&Value::Float(1.5)));
            assert_eq!(rows[0].get("_time"), Some(&Value::Timestamp(1_000)));
            assert_eq!(
                rows[0].get("device"),
                Some(&Value::String("a,\"b\"\nc".into()))
            );
            assert!(rows[0].table.columns[2].group);
            assert_eq!(rows[1].get("_value"), None);
            assert_eq!(
                rows[2].get("_time"),
                Some(&Value::Timestamp(1_704_067_200_123_456_789))
            );
            assert_eq!(rows[2].get("seq"), Some(&Value::Int(-7)));
            assert_eq!(rows[2].get("ok"), Some(&Value::Bool(true)));
            assert_eq!(rows[2].get("big"), Some(&Value::Float(u64::MAX as f64)));
        }
    }

    #[test]
    fn error_tables_become_errors() {
        let body = "#datatype,string,string\r\n#group,true,true\r\n#default,,\r\n,error,reference\r\n,\"panic: something broke\",897\r\n\r\n";
        let err = parse(body.as_bytes(), 5).unwrap_err().to_string();
        assert!(err.contains("panic: something broke"), "{err}");
    }

    #[test]
    fn bad_cells_and_truncation_are_decode_errors() {
        let body = "#datatype,string,long,long\n#group,false,false,false\n#default,_result,,\n,result,table,v\n,,0,abc\n";
        let err = parse(body.as_bytes(), 100).unwrap_err().to_string();
        assert!(err.contains("`v`"), "{err}");
        let err = parse(b",a\n,\"unterminated", 100).unwrap_err().to_string();
        assert!(err.contains("truncated"), "{err}");
    }

    #[test]
    fn a_last_line_without_newline_counts() {
        let rows = parse(b",result,table,v\n,,0,x", 3).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].get("v"), Some(&Value::String("x".into())));
    }
}
