//! Records and their typed values.

use chrono::{DateTime, SecondsFormat, Utc};

/// A typed value of one record field.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// No value.
    Null,
    /// A boolean.
    Bool(bool),
    /// A signed 64-bit integer.
    Int(i64),
    /// A 64-bit float.
    Float(f64),
    /// UTF-8 text.
    String(String),
    /// An instant, as nanoseconds since the Unix epoch (UTC).
    Timestamp(i64),
    /// Raw bytes.
    Bytes(Vec<u8>),
    /// A nested document with ordered fields.
    Document(Vec<(String, Value)>),
    /// A list of values.
    Array(Vec<Value>),
}

impl Value {
    /// The timestamp as RFC 3339 text in UTC with as many fraction digits as needed
    /// (the shape Go's `time.RFC3339Nano` gives, which the original system emitted).
    pub fn format_timestamp(nanos: i64) -> String {
        DateTime::<Utc>::from_timestamp_nanos(nanos).to_rfc3339_opts(SecondsFormat::AutoSi, true)
    }

    /// Parses RFC 3339 text into nanoseconds since the epoch.
    pub fn parse_timestamp(text: &str) -> Option<i64> {
        DateTime::parse_from_rfc3339(text)
            .ok()
            .and_then(|t| t.with_timezone(&Utc).timestamp_nanos_opt())
    }

    /// A short name of the value's type, for messages and CSV headers.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::String(_) => "string",
            Value::Timestamp(_) => "timestamp",
            Value::Bytes(_) => "bytes",
            Value::Document(_) => "document",
            Value::Array(_) => "array",
        }
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::String(v.to_owned())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::String(v)
    }
}
impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}
impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Float(v)
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}

/// One record of a dataset: named values in a stable order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Record {
    /// The fields, in the order the source gave them.
    pub fields: Vec<(String, Value)>,
}

impl Record {
    /// An empty record with room for `capacity` fields.
    pub fn with_capacity(capacity: usize) -> Self {
        Record {
            fields: Vec::with_capacity(capacity),
        }
    }

    /// Appends a field.
    pub fn push(&mut self, name: impl Into<String>, value: impl Into<Value>) {
        self.fields.push((name.into(), value.into()));
    }

    /// The first field with this name.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.fields.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// Whether the record has no fields.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }
}

impl<K: Into<String>, V: Into<Value>> FromIterator<(K, V)> for Record {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Record {
            fields: iter
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_use_rfc3339_nano_shape() {
        assert_eq!(Value::format_timestamp(0), "1970-01-01T00:00:00Z");
        assert_eq!(
            Value::format_timestamp(1_500_000_000_123_000_000),
            "2017-07-14T02:40:00.123Z"
        );
        assert_eq!(
            Value::format_timestamp(1_500_000_000_123_456_789),
            "2017-07-14T02:40:00.123456789Z"
        );
        let text = Value::format_timestamp(-1);
        assert_eq!(Value::parse_timestamp(&text), Some(-1));
    }

    #[test]
    fn record_lookup_and_collect() {
        let rec: Record = [("a", Value::Int(1)), ("b", Value::from("x"))]
            .into_iter()
            .collect();
        assert_eq!(rec.get("b"), Some(&Value::from("x")));
        assert_eq!(rec.get("c"), None);
        assert_eq!(rec.len(), 2);
    }
}
