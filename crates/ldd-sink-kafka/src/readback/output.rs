//! Where read-back records go: JSON lines, CSV, or nowhere.

use std::io::Write;
use std::sync::Mutex;

use ldd_core::format::record_to_json;
use ldd_core::{Record, Value};

use crate::error::{Error, Result};

/// Receives decoded records from the partition readers (called from several threads).
pub trait RecordOutput: Send + Sync {
    /// Writes a batch of records.
    fn write(&self, records: &[Record]) -> Result<()>;
    /// Flushes buffered output.
    fn flush(&self) -> Result<()>;
}

/// One JSON object per line.
pub struct JsonlOutput<W: Write + Send> {
    out: Mutex<W>,
}

impl<W: Write + Send> JsonlOutput<W> {
    /// Writes to `out` (wrap files in a `BufWriter`).
    pub fn new(out: W) -> Self {
        JsonlOutput {
            out: Mutex::new(out),
        }
    }
}

impl<W: Write + Send> RecordOutput for JsonlOutput<W> {
    fn write(&self, records: &[Record]) -> Result<()> {
        let mut text = String::with_capacity(records.len() * 256);
        for record in records {
            text.push_str(&record_to_json(record).map_err(|e| Error::Decode(e.to_string()))?);
            text.push('\n');
        }
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        out.write_all(text.as_bytes())?;
        Ok(())
    }

    fn flush(&self) -> Result<()> {
        self.out.lock().unwrap_or_else(|p| p.into_inner()).flush()?;
        Ok(())
    }
}

/// CSV with a header row taken from the first record's fields. Later records are written
/// in that column order; a missing field is an empty cell, and fields the first record did
/// not have are dropped (the count of such records is reported by `dropped_fields`).
pub struct CsvOutput<W: Write + Send> {
    state: Mutex<CsvState<W>>,
}

struct CsvState<W: Write> {
    writer: csv::Writer<W>,
    columns: Option<Vec<String>>,
    dropped: u64,
}

impl<W: Write + Send> CsvOutput<W> {
    /// Writes to `out`.
    pub fn new(out: W) -> Self {
        CsvOutput {
            state: Mutex::new(CsvState {
                writer: csv::Writer::from_writer(out),
                columns: None,
                dropped: 0,
            }),
        }
    }

    /// Records that had fields outside the header.
    pub fn dropped_fields(&self) -> u64 {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).dropped
    }
}

fn cell(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => f.to_string(),
        Value::String(s) => s.clone(),
        Value::Timestamp(t) => Value::format_timestamp(*t),
        nested => {
            // Bytes, documents and arrays as their JSON text.
            let wrapped = Record {
                fields: vec![(String::new(), nested.clone())],
            };
            let json = record_to_json(&wrapped).unwrap_or_default();
            // Strip the `{"":` prefix and `}` suffix.
            json.get(4..json.len().saturating_sub(1))
                .unwrap_or_default()
                .to_owned()
        }
    }
}

impl<W: Write + Send> RecordOutput for CsvOutput<W> {
    fn write(&self, records: &[Record]) -> Result<()> {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let csv_err = |e: csv::Error| Error::Output(std::io::Error::other(e));
        for record in records {
            if st.columns.is_none() {
                let columns: Vec<String> = record.fields.iter().map(|(k, _)| k.clone()).collect();
                st.writer.write_record(&columns).map_err(csv_err)?;
                st.columns = Some(columns);
            }
            let columns = st.columns.as_deref().unwrap_or_default();
            let row: Vec<String> = columns
                .iter()
                .map(|c| record.get(c).map(cell).unwrap_or_default())
                .collect();
            let extra = record.fields.iter().any(|(k, _)| !columns.contains(k));
            st.writer.write_record(&row).map_err(csv_err)?;
            if extra {
                st.dropped += 1;
            }
        }
        Ok(())
    }

    fn flush(&self) -> Result<()> {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .writer
            .flush()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(pairs: &[(&str, Value)]) -> Record {
        pairs.iter().cloned().collect()
    }

    #[test]
    fn csv_uses_first_record_columns() {
        let out = CsvOutput::new(Vec::new());
        out.write(&[
            rec(&[("a", Value::Int(1)), ("b", Value::from("x,y"))]),
            rec(&[("b", Value::Null), ("c", Value::Bool(true))]),
            rec(&[("a", Value::Array(vec![Value::Int(1), Value::Timestamp(0)]))]),
        ])
        .unwrap();
        out.flush().unwrap();
        assert_eq!(out.dropped_fields(), 1);
        let text = String::from_utf8(out.state.into_inner().unwrap().writer.into_inner().unwrap())
            .unwrap();
        assert_eq!(
            text,
            "a,b\n1,\"x,y\"\n,\n\"[1,\"\"1970-01-01T00:00:00Z\"\"]\",\n"
        );
    }

    #[test]
    fn jsonl_writes_one_object_per_line() {
        let out = JsonlOutput::new(Vec::new());
        out.write(&[rec(&[("a", Value::Int(1))]), rec(&[("b", Value::Null)])])
            .unwrap();
        let text = String::from_utf8(out.out.into_inner().unwrap()).unwrap();
        assert_eq!(text, "{\"a\":1}\n{\"b\":null}\n");
    }
}
