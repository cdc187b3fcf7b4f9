use super::*;
use crate::value::Value;

fn every_type() -> Record {
    let mut rec = Record::default();
    rec.push("null", Value::Null);
    rec.push("bool", true);
    rec.push("int", -42i64);
    rec.push("big", i64::MAX);
    rec.push("float", 3.25f64);
    rec.push("text", "ünïcode \"quoted\"\nline");
    rec.push("time", Value::Timestamp(1_700_000_000_123_456_789));
    rec.push("bytes", Value::Bytes(vec![0, 1, 2, 255]));
    rec.push(
        "doc",
        Value::Document(vec![
            ("a".into(), Value::Int(1)),
            (
                "b".into(),
                Value::Array(vec![Value::from("x"), Value::Null]),
            ),
        ]),
    );
    rec.push("arr", Value::Array(vec![Value::Int(1), Value::Float(0.5)]));
    rec
}

/// What JSON can carry back: timestamps and bytes become strings.
fn json_view(rec: &Record) -> Record {
    fn view(v: &Value) -> Value {
        match v {
            Value::Timestamp(t) => Value::String(Value::format_timestamp(*t)),
            Value::Bytes(b) => {
                use base64::Engine as _;
                Value::String(base64::engine::general_purpose::STANDARD.encode(b))
            }
            Value::Document(f) => {
                Value::Document(f.iter().map(|(k, v)| (k.clone(), view(v))).collect())
            }
            Value::Array(a) => Value::Array(a.iter().map(view).collect()),
            other => other.clone(),
        }
    }
    Record {
        fields: rec
            .fields
            .iter()
            .map(|(k, v)| (k.clone(), view(v)))
            .collect(),
    }
}

#[test]
fn protobuf_round_trips_every_type_exactly() {
    let records = vec![every_type(), Record::default(), every_type()];
    let mut enc = Encoder::new(Format::Protobuf, 1 << 20);
    for r in &records {
        assert!(enc.push(r).unwrap().is_none());
    }
    let msg = enc.finish().unwrap();
    assert_eq!(msg.records, 3);
    assert_eq!(count_records(Format::Protobuf, &msg.payload).unwrap(), 3);
    assert_eq!(decode(Format::Protobuf, &msg.payload).unwrap(), records);
}

#[test]
fn json_round_trips_what_json_can_carry() {
    let rec = every_type();
    let mut enc = Encoder::new(Format::Json, 10);
    let msg = enc.push(&rec).unwrap().unwrap();
    assert_eq!(msg.records, 1);
    assert!(enc.finish().is_none());
    let back = decode(Format::Json, &msg.payload).unwrap();
    assert_eq!(back, vec![json_view(&rec)]);
    let text = String::from_utf8(msg.payload).unwrap();
    assert!(
        text.starts_with(r#"{"null":null,"bool":true,"int":-42"#),
        "{text}"
    );
    assert!(
        text.contains(r#""time":"2023-11-14T22:13:20.123456789Z""#),
        "{text}"
    );
}

#[test]
fn jsonl_batches_close_at_the_target_size() {
    let rec = every_type();
    let one = record_to_json(&rec).unwrap().len() + 1;
    let mut enc = Encoder::new(Format::Jsonl, one * 3);
    let mut messages = Vec::new();
    for _ in 0..10 {
        messages.extend(enc.push(&rec).unwrap());
    }
    messages.extend(enc.finish());
    let counts: Vec<u32> = messages.iter().map(|m| m.records).collect();
    assert_eq!(counts, vec![3, 3, 3, 1]);
    for m in &messages {
        assert_eq!(count_records(Format::Jsonl, &m.payload).unwrap(), m.records);
        let back = decode(Format::Jsonl, &m.payload).unwrap();
        assert_eq!(back.len(), m.records as usize);
        assert!(back.iter().all(|r| *r == json_view(&rec)));
    }
}

#[test]
fn corrupt_payloads_are_errors_not_panics() {
    assert!(decode(Format::Json, b"[1,2]").is_err());
    assert!(decode(Format::Json, b"{").is_err());
    assert!(decode(Format::Protobuf, &[0x0a, 0x05, 0x01]).is_err());
    assert!(count_records(Format::Protobuf, &[0x0a, 0x05, 0x01]).is_err());
    assert!(count_records(Format::Protobuf, &[0x08, 0x01]).is_err());
}

#[test]
fn format_names_parse() {
    assert_eq!("jsonl".parse::<Format>().unwrap(), Format::Jsonl);
    assert_eq!("protobuf".parse::<Format>().unwrap(), Format::Protobuf);
    let err = "xml".parse::<Format>().unwrap_err().to_string();
    assert!(err.contains("use json, jsonl or protobuf"));
}

#[test]
fn jsonl_counts_match_decoding_with_odd_line_endings() {
    for payload in [
        &b""[..],
        b"{}",
        b"{}\n",
        b"{}\n{}",
        b"\n{}\n\n{}\n",
        b"\n\n",
    ] {
        assert_eq!(
            count_records(Format::Jsonl, payload).unwrap() as usize,
            decode(Format::Jsonl, payload).unwrap().len(),
            "{:?}",
            String::from_utf8_lossy(payload)
        );
    }
}

#[test]
fn json_decoding_keeps_types_order_and_the_last_of_repeated_fields() {
    let records = decode(
        Format::Json,
        br#"{"b":1,"a":-2,"big":18446744073709551615,"f":1.5,"n":null,"t":true,"s":"x","b":3,"d":{"k":[1,"y",{}]}}"#,
    )
    .unwrap();
    assert_eq!(
        records[0].fields,
        vec![
            ("b".to_string(), Value::Int(3)),
            ("a".to_string(), Value::Int(-2)),
            ("big".to_string(), Value::Float(18446744073709551615.0)),
            ("f".to_string(), Value::Float(1.5)),
            ("n".to_string(), Value::Null),
            ("t".to_string(), Value::Bool(true)),
            ("s".to_string(), Value::from("x")),
            (
                "d".to_string(),
                Value::Document(vec![(
                    "k".to_string(),
                    Value::Array(vec![
                        Value::Int(1),
                        Value::from("y"),
                        Value::Document(vec![])
                    ])
                )])
            ),
        ]
    );
    let not_object = decode(Format::Json, br#""text""#).unwrap_err().to_string();
    assert!(
        not_object.contains("expected a JSON object per record"),
        "{not_object}"
    );
    let broken = decode(Format::Jsonl, b"{\"a\":1}\n{\"a\":")
        .unwrap_err()
        .to_string();
    assert!(broken.contains("not valid JSON"), "{broken}");
    let trailing = decode(Format::Json, br#"{"a":1} x"#)
        .unwrap_err()
        .to_string();
    assert!(trailing.contains("not valid JSON"), "{trailing}");
}
