//! Where read-back records go: JSON lines, CSV, or nowhere.

use std::io::Write;
use std::sync::Mutex;

use ldd_core::format::{record_to_json, value_to_json};
use ldd_core::{Format, Record, Value};

use crate::error::{Error, Result};

/// Receives decoded records from the partition readers (called from several threads).
pub trait RecordOutput: Send + Sync {
    /// Writes a batch of records.
    fn write(&self, records: &[Record]) -> Result<()>;
    /// Writes a payload as it came from Kafka when this output's shape is the payload's own
    /// (no decoding, no re-encoding); returns `false` when the records must be decoded and
    /// passed to [`RecordOutput::write`] instead. The default always declines.
    fn write_encoded(&self, format: Format, payload: &[u8]) -> Result<bool> {
        let _ = (format, payload);
        Ok(false)
    }
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

    /// `json` and `jsonl` payloads already are this output's lines (the same object shape):
    /// copying them is several times faster than decoding and re-encoding.
    fn write_encoded(&self, format: Format, payload: &[u8]) -> Result<bool> {
        if !matches!(format, Format::Json | Format::Jsonl) {
            return Ok(false);
        }
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        // Blank lines are not records; the encoder writes none, but a payload from elsewhere
        // might, so only non-empty lines are copied.
        for line in payload.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            out.write_all(line)?;
            out.write_all(b"\n")?;
        }
        Ok(true)
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
        // Bytes, documents and arrays as their JSON text.
        nested => value_to_json(nested).unwrap_or_default(),
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

    #[test]
    fn jsonl_copies_json_payloads_and_declines_protobuf() {
        let records = [
            rec(&[("a", Value::Int(1))]),
            rec(&[("b", Value::from("x"))]),
        ];
        let encode = |format: Format, records: &[Record]| {
            let mut encoder = ldd_core::format::Encoder::new(format, 1 << 20);
            let mut messages: Vec<_> = records
                .iter()
                .filter_map(|r| encoder.push(r).unwrap())
                .collect();
            messages.extend(encoder.finish());
            assert_eq!(messages.len(), 1);
            messages.remove(0).payload
        };
        let jsonl = encode(Format::Jsonl, &records);
        let json = encode(Format::Json, &records[..1]);
        let protobuf = encode(Format::Protobuf, &records);

        let copied = JsonlOutput::new(Vec::new());
        assert!(copied.write_encoded(Format::Jsonl, &jsonl).unwrap());
        assert!(copied.write_encoded(Format::Json, &json).unwrap());
        assert!(copied
            .write_encoded(Format::Jsonl, b"\n{\"c\":2}\n\n")
            .unwrap());
        assert!(!copied.write_encoded(Format::Protobuf, &protobuf).unwrap());

        // The copy is exactly what decoding and re-encoding would have written.
        let rewritten = JsonlOutput::new(Vec::new());
        rewritten.write(&records).unwrap();
        rewritten.write(&records[..1]).unwrap();
        rewritten.write(&[rec(&[("c", Value::Int(2))])]).unwrap();
        assert_eq!(
            String::from_utf8(copied.out.into_inner().unwrap()).unwrap(),
            String::from_utf8(rewritten.out.into_inner().unwrap()).unwrap()
        );
    }
}
