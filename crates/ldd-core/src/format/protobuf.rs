//! Protobuf encoding of records as `ldd.v1.RecordBatch` messages.

use prost::Message;

use crate::error::{Error, Result};
use crate::value::{Record, Value};

/// Types generated from `proto/ldd/v1/records.proto`.
#[allow(missing_docs, unreachable_pub, clippy::all)]
pub(crate) mod pb {
    include!(concat!(env!("OUT_DIR"), "/ldd.v1.rs"));
}

/// Field number of `RecordBatch.records`.
const RECORDS_FIELD: u32 = 1;

/// Appends one `records` entry to a batch being built. A concatenation of such entries is a
/// valid `RecordBatch`, so batches grow without re-encoding.
pub(super) fn append_record(out: &mut Vec<u8>, record: &Record) {
    prost::encoding::message::encode(RECORDS_FIELD, &to_pb_record(record), out);
}

pub(super) fn decode_batch(payload: &[u8]) -> Result<Vec<Record>> {
    let batch = pb::RecordBatch::decode(payload)
        .map_err(|e| Error::Format(format!("payload is not a protobuf RecordBatch: {e}")))?;
    Ok(batch.records.into_iter().map(from_pb_record).collect())
}

/// Counts `records` entries by walking field keys and lengths, without decoding records.
pub(super) fn count_batch(mut payload: &[u8]) -> Result<u32> {
    use prost::encoding::{decode_key, decode_varint, WireType};
    let bad = |e: prost::DecodeError| Error::Format(format!("corrupt protobuf batch: {e}"));
    let mut count = 0u32;
    while !payload.is_empty() {
        let (field, wire) = decode_key(&mut payload).map_err(bad)?;
        if wire != WireType::LengthDelimited {
            return Err(Error::Format(format!(
                "corrupt protobuf batch: field {field} has wire type {wire:?}"
            )));
        }
        let len = usize::try_from(decode_varint(&mut payload).map_err(bad)?)
            .map_err(|_| Error::Format("corrupt protobuf batch: huge length".into()))?;
        if len > payload.len() {
            return Err(Error::Format("corrupt protobuf batch: truncated".into()));
        }
        payload = &payload[len..];
        if field == RECORDS_FIELD {
            count += 1;
        }
    }
    Ok(count)
}

fn to_pb_record(record: &Record) -> pb::Record {
    pb::Record {
        fields: to_pb_fields(&record.fields),
    }
}

fn to_pb_fields(fields: &[(String, Value)]) -> Vec<pb::Field> {
    fields
        .iter()
        .map(|(name, value)| pb::Field {
            name: name.clone(),
            value: Some(to_pb_value(value)),
        })
        .collect()
}

fn to_pb_value(value: &Value) -> pb::Value {
    use pb::value::Kind;
    let kind = match value {
        Value::Null => Kind::Null(true),
        Value::Bool(b) => Kind::Bool(*b),
        Value::Int(i) => Kind::Int(*i),
        Value::Float(f) => Kind::Float(*f),
        Value::String(s) => Kind::String(s.clone()),
        Value::Timestamp(t) => Kind::TimestampNanos(*t),
        Value::Bytes(b) => Kind::Bytes(b.clone()),
        Value::Document(fields) => Kind::Document(pb::Document {
            fields: to_pb_fields(fields),
        }),
        Value::Array(items) => Kind::Array(pb::Array {
            values: items.iter().map(to_pb_value).collect(),
        }),
    };
    pb::Value { kind: Some(kind) }
}

fn from_pb_record(record: pb::Record) -> Record {
    Record {
        fields: from_pb_fields(record.fields),
    }
}

fn from_pb_fields(fields: Vec<pb::Field>) -> Vec<(String, Value)> {
    fields
        .into_iter()
        .map(|f| (f.name, f.value.map_or(Value::Null, from_pb_value)))
        .collect()
}

fn from_pb_value(value: pb::Value) -> Value {
    use pb::value::Kind;
    match value.kind {
        None | Some(Kind::Null(_)) => Value::Null,
        Some(Kind::Bool(b)) => Value::Bool(b),
        Some(Kind::Int(i)) => Value::Int(i),
        Some(Kind::Float(f)) => Value::Float(f),
        Some(Kind::String(s)) => Value::String(s),
        Some(Kind::TimestampNanos(t)) => Value::Timestamp(t),
        Some(Kind::Bytes(b)) => Value::Bytes(b),
        Some(Kind::Document(d)) => Value::Document(from_pb_fields(d.fields)),
        Some(Kind::Array(a)) => Value::Array(a.values.into_iter().map(from_pb_value).collect()),
    }
}
