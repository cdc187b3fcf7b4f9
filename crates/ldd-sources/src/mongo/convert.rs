//! BSON ⇄ ldd records.

use ldd_core::{Record, Value, ValueBound};
use mongodb::bson::{self, Bson, Document};

/// A BSON document as a record. `_id` ObjectIds become hex strings (the original system's
/// JSON shape); dates become timestamps.
pub fn document_to_record(doc: Document) -> Record {
    Record {
        fields: doc
            .into_iter()
            .map(|(k, v)| (k, bson_to_value(v)))
            .collect(),
    }
}

/// One BSON value as a record value, for every BSON type.
pub fn bson_to_value(value: Bson) -> Value {
    match value {
        Bson::Double(f) => Value::Float(f),
        Bson::String(s) | Bson::Symbol(s) => Value::String(s),
        Bson::Array(items) => Value::Array(items.into_iter().map(bson_to_value).collect()),
        Bson::Document(doc) => Value::Document(
            doc.into_iter()
                .map(|(k, v)| (k, bson_to_value(v)))
                .collect(),
        ),
        Bson::Boolean(b) => Value::Bool(b),
        Bson::Null | Bson::Undefined => Value::Null,
        Bson::RegularExpression(re) => Value::String(format!("/{}/{}", re.pattern, re.options)),
        Bson::JavaScriptCode(code) => Value::String(code),
        Bson::JavaScriptCodeWithScope(c) => Value::Document(vec![
            ("code".into(), Value::String(c.code)),
            ("scope".into(), bson_to_value(Bson::Document(c.scope))),
        ]),
        Bson::Int32(i) => Value::Int(i64::from(i)),
        Bson::Int64(i) => Value::Int(i),
        Bson::Timestamp(ts) => Value::Document(vec![
            ("t".into(), Value::Int(i64::from(ts.time))),
            ("i".into(), Value::Int(i64::from(ts.increment))),
        ]),
        Bson::Binary(b) => Value::Bytes(b.bytes),
        Bson::ObjectId(oid) => Value::String(oid.to_hex()),
        Bson::DateTime(dt) => Value::Timestamp(dt.timestamp_millis().saturating_mul(1_000_000)),
        Bson::Decimal128(d) => Value::String(d.to_string()),
        Bson::MaxKey => Value::String("MaxKey".into()),
        Bson::MinKey => Value::String("MinKey".into()),
        Bson::DbPointer(p) => Value::String(format!("{p:?}")),
    }
}

/// A record value as BSON (for loading generated data): timestamps become dates.
pub fn value_to_bson(value: &Value) -> Bson {
    match value {
        Value::Null => Bson::Null,
        Value::Bool(b) => Bson::Boolean(*b),
        Value::Int(i) => Bson::Int64(*i),
        Value::Float(f) => Bson::Double(*f),
        Value::String(s) => Bson::String(s.clone()),
        Value::Timestamp(ns) => {
            Bson::DateTime(bson::DateTime::from_millis(ns.div_euclid(1_000_000)))
        }
        Value::Bytes(b) => Bson::Binary(bson::Binary {
            subtype: bson::spec::BinarySubtype::Generic,
            bytes: b.clone(),
        }),
        Value::Document(fields) => Bson::Document(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), value_to_bson(v)))
                .collect(),
        ),
        Value::Array(items) => Bson::Array(items.iter().map(value_to_bson).collect()),
    }
}

/// A record as a BSON document.
pub fn record_to_document(record: &Record) -> Document {
    record
        .fields
        .iter()
        .map(|(k, v)| (k.clone(), value_to_bson(v)))
        .collect()
}

/// A BSON value usable as a range bound, if its type can be one.
pub(crate) fn bson_to_bound(value: &Bson) -> Option<ValueBound> {
    match value {
        Bson::ObjectId(oid) => Some(ValueBound::ObjectId(oid.bytes().to_vec())),
        Bson::DateTime(dt) => Some(ValueBound::Timestamp(
            dt.timestamp_millis().saturating_mul(1_000_000),
        )),
        Bson::Int32(i) => Some(ValueBound::Int(i64::from(*i))),
        Bson::Int64(i) => Some(ValueBound::Int(*i)),
        Bson::Double(f) => Some(ValueBound::Float(*f)),
        Bson::String(s) => Some(ValueBound::String(s.clone())),
        _ => None,
    }
}

/// A range bound as the BSON value to compare with.
pub(crate) fn bound_to_bson(bound: &ValueBound) -> Option<Bson> {
    Some(match bound {
        ValueBound::ObjectId(bytes) => {
            let array: [u8; 12] = bytes.as_slice().try_into().ok()?;
            Bson::ObjectId(bson::oid::ObjectId::from_bytes(array))
        }
        ValueBound::Timestamp(ns) => {
            Bson::DateTime(bson::DateTime::from_millis(ns.div_euclid(1_000_000)))
        }
        ValueBound::Int(i) => Bson::Int64(*i),
        ValueBound::Float(f) => Bson::Double(*f),
        ValueBound::String(s) => Bson::String(s.clone()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::{doc, oid::ObjectId, Decimal128, Regex, Timestamp};

    #[test]
    fn every_bson_type_converts() {
        let oid = ObjectId::parse_str("65a1b2c3d4e5f60718293a4b").unwrap();
        let d = doc! {
            "_id": oid,
            "f": 1.5,
            "s": "x",
            "a": [1, "y"],
            "d": { "n": true },
            "null": Bson::Null,
            "re": Regex { pattern: "^a".into(), options: "i".into() },
            "js": Bson::JavaScriptCode("f()".into()),
            "i32": 7i32,
            "i64": 8i64,
            "ts": Timestamp { time: 5, increment: 6 },
            "bin": bson::Binary { subtype: bson::spec::BinarySubtype::Generic, bytes: vec![1, 2] },
            "date": bson::DateTime::from_millis(1_700_000_000_123),
            "dec": Bson::Decimal128("1.25".parse::<Decimal128>().unwrap()),
            "max": Bson::MaxKey,
            "min": Bson::MinKey,
            "undef": Bson::Undefined,
        };
        let r = document_to_record(d);
        assert_eq!(
            r.get("_id"),
            Some(&Value::String("65a1b2c3d4e5f60718293a4b".into()))
        );
        assert_eq!(r.get("f"), Some(&Value::Float(1.5)));
        assert_eq!(
            r.get("a"),
            Some(&Value::Array(vec![Value::Int(1), Value::from("y")]))
        );
        assert_eq!(
            r.get("d"),
            Some(&Value::Document(vec![("n".into(), Value::Bool(true))]))
        );
        assert_eq!(r.get("null"), Some(&Value::Null));
        assert_eq!(r.get("re"), Some(&Value::from("/^a/i")));
        assert_eq!(r.get("js"), Some(&Value::from("f()")));
        assert_eq!(r.get("i32"), Some(&Value::Int(7)));
        assert_eq!(r.get("i64"), Some(&Value::Int(8)));
        assert_eq!(
            r.get("ts"),
            Some(&Value::Document(vec![
                ("t".into(), Value::Int(5)),
                ("i".into(), Value::Int(6))
            ]))
        );
        assert_eq!(r.get("bin"), Some(&Value::Bytes(vec![1, 2])));
        assert_eq!(
            r.get("date"),
            Some(&Value::Timestamp(1_700_000_000_123_000_000))
        );
        assert_eq!(r.get("dec"), Some(&Value::from("1.25")));
        assert_eq!(r.get("max"), Some(&Value::from("MaxKey")));
        assert_eq!(r.get("undef"), Some(&Value::Null));
    }

    #[test]
    fn bounds_round_trip() {
        let oid = ObjectId::new();
        for b in [
            Bson::ObjectId(oid),
            Bson::DateTime(bson::DateTime::from_millis(42)),
            Bson::Int64(3),
            Bson::String("k".into()),
        ] {
            let bound = bson_to_bound(&b).unwrap();
            assert_eq!(bound_to_bson(&bound).unwrap(), b);
        }
        assert!(bson_to_bound(&Bson::Null).is_none());
    }
}
