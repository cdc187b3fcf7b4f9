//! JSON encoding of records: plain objects in field order.

use base64::Engine as _;
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

use crate::error::{Error, Result};
use crate::value::{Record, Value};

struct JsonFields<'a>(&'a [(String, Value)]);
struct JsonValue<'a>(&'a Value);

impl Serialize for JsonFields<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (name, value) in self.0 {
            map.serialize_entry(name, &JsonValue(value))?;
        }
        map.end()
    }
}

impl Serialize for JsonValue<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self.0 {
            Value::Null => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Int(i) => s.serialize_i64(*i),
            // serde_json writes non-finite floats as null, as JSON has no such numbers.
            Value::Float(f) => s.serialize_f64(*f),
            Value::String(text) => s.serialize_str(text),
            Value::Timestamp(t) => s.serialize_str(&Value::format_timestamp(*t)),
            Value::Bytes(b) => {
                s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(b))
            }
            Value::Document(fields) => JsonFields(fields).serialize(s),
            Value::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(&JsonValue(item))?;
                }
                seq.end()
            }
        }
    }
}

pub(super) fn write_record(out: &mut Vec<u8>, record: &Record) -> Result<()> {
    serde_json::to_writer(out, &JsonFields(&record.fields))
        .map_err(|e| Error::Format(format!("cannot encode record as JSON: {e}")))
}

/// A record as one JSON object (the `json` format's payload).
pub fn record_to_json(record: &Record) -> Result<String> {
    serde_json::to_string(&JsonFields(&record.fields))
        .map_err(|e| Error::Format(format!("cannot encode record as JSON: {e}")))
}

/// A record as a `serde_json::Value` object, for APIs that answer JSON.
pub fn record_to_json_value(record: &Record) -> Result<serde_json::Value> {
    serde_json::to_value(JsonFields(&record.fields))
        .map_err(|e| Error::Format(format!("cannot encode record as JSON: {e}")))
}

/// One value as JSON text (timestamps as RFC 3339 strings, bytes as base64), for outputs
/// that keep nested or mixed values as text (CSV cells, Parquet JSON columns).
pub fn value_to_json(value: &Value) -> Result<String> {
    serde_json::to_string(&JsonValue(value))
        .map_err(|e| Error::Format(format!("cannot encode value as JSON: {e}")))
}

pub(super) fn read_record(payload: &[u8]) -> Result<Record> {
    let parsed: serde_json::Value = serde_json::from_slice(payload)
        .map_err(|e| Error::Format(format!("payload is not valid JSON: {e}")))?;
    match parsed {
        serde_json::Value::Object(map) => Ok(Record {
            fields: map.into_iter().map(|(k, v)| (k, from_json(v))).collect(),
        }),
        other => Err(Error::Format(format!(
            "expected a JSON object per record, found {}",
            json_kind(&other)
        ))),
    }
}

fn from_json(value: serde_json::Value) -> Value {
    match value {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        serde_json::Value::String(s) => Value::String(s),
        serde_json::Value::Array(items) => Value::Array(items.into_iter().map(from_json).collect()),
        serde_json::Value::Object(map) => {
            Value::Document(map.into_iter().map(|(k, v)| (k, from_json(v))).collect())
        }
    }
}

fn json_kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}
