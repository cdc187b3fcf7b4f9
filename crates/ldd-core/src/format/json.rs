//! JSON encoding of records: plain objects in field order.

use base64::Engine as _;
use serde::de::{DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Deserializer, Serialize, Serializer};

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
    let mut de = serde_json::Deserializer::from_slice(payload);
    let fields = de
        .deserialize_map(FieldsVisitor)
        .and_then(|fields| de.end().map(|()| fields))
        .map_err(|e| match e.classify() {
            serde_json::error::Category::Data => {
                Error::Format(format!("expected a JSON object per record: {e}"))
            }
            _ => Error::Format(format!("payload is not valid JSON: {e}")),
        })?;
    Ok(Record { fields })
}

// Records are built straight from the parser's events: going through `serde_json::Value`
// (an ordered map per object) first made decoding most of the cost of writing Parquet or
// CSV from a read-back.

/// An object's fields in order; a repeated name keeps its first place and its last value.
struct FieldsVisitor;

impl<'de> Visitor<'de> for FieldsVisitor {
    type Value = Vec<(String, Value)>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<Self::Value, A::Error> {
        let mut fields: Vec<(String, Value)> = Vec::with_capacity(map.size_hint().unwrap_or(8));
        while let Some(name) = map.next_key::<String>()? {
            let value = map.next_value_seed(ValueSeed)?;
            match fields.iter_mut().find(|(n, _)| *n == name) {
                Some(field) => field.1 = value,
                None => fields.push((name, value)),
            }
        }
        Ok(fields)
    }
}

/// One JSON value as a [`Value`]: integers that fit an `i64` stay integers, every other
/// number is a float.
struct ValueSeed;

impl<'de> DeserializeSeed<'de> for ValueSeed {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<Value, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> std::result::Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> std::result::Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_bool<E>(self, b: bool) -> std::result::Result<Value, E> {
        Ok(Value::Bool(b))
    }

    fn visit_i64<E>(self, i: i64) -> std::result::Result<Value, E> {
        Ok(Value::Int(i))
    }

    fn visit_u64<E>(self, u: u64) -> std::result::Result<Value, E> {
        Ok(i64::try_from(u).map_or(Value::Float(u as f64), Value::Int))
    }

    fn visit_f64<E>(self, f: f64) -> std::result::Result<Value, E> {
        Ok(Value::Float(f))
    }

    fn visit_str<E>(self, s: &str) -> std::result::Result<Value, E> {
        Ok(Value::String(s.to_owned()))
    }

    fn visit_string<E>(self, s: String) -> std::result::Result<Value, E> {
        Ok(Value::String(s))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element_seed(ValueSeed)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> std::result::Result<Value, A::Error> {
        FieldsVisitor.visit_map(map).map(Value::Document)
    }
}
