//! Message formats: how records become Kafka payloads and back.
//!
//! - `json`: one record per message, a plain JSON object (the original system's shape).
//! - `jsonl`: many records per message, one JSON object per line.
//! - `protobuf`: many records per message, a `ldd.v1.RecordBatch` (see `proto/`).

mod json;
mod protobuf;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::value::Record;

pub use json::{record_to_json, record_to_json_value, value_to_json};

/// Default target payload size of the batched formats.
pub const DEFAULT_BATCH_BYTES: usize = 128 * 1024;

/// A payload format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// One JSON object per message.
    #[default]
    Json,
    /// Many newline-separated JSON objects per message.
    Jsonl,
    /// A protobuf `RecordBatch` per message.
    Protobuf,
}

impl Format {
    /// The name used in headers, flags and configs.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Jsonl => "jsonl",
            Format::Protobuf => "protobuf",
        }
    }

    /// Whether a message holds many records.
    pub fn is_batched(self) -> bool {
        !matches!(self, Format::Json)
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Format {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "json" => Ok(Format::Json),
            "jsonl" => Ok(Format::Jsonl),
            "protobuf" | "proto" => Ok(Format::Protobuf),
            other => Err(Error::InvalidInput(format!(
                "unknown format `{other}`; use json, jsonl or protobuf"
            ))),
        }
    }
}

/// One encoded payload and how many records it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedMessage {
    /// The payload bytes.
    pub payload: Vec<u8>,
    /// Records in it.
    pub records: u32,
}

/// Turns records into payloads, batching them up to a target size for batched formats.
#[derive(Debug)]
pub struct Encoder {
    format: Format,
    target_bytes: usize,
    buf: Vec<u8>,
    records: u32,
}

impl Encoder {
    /// An encoder for `format` whose batched payloads aim at `target_bytes`
    /// (a batch closes once it reaches the target, so payloads can exceed it by one record).
    pub fn new(format: Format, target_bytes: usize) -> Self {
        let capacity = if format.is_batched() {
            target_bytes + target_bytes / 8
        } else {
            512
        };
        Encoder {
            format,
            target_bytes: target_bytes.max(1),
            buf: Vec::with_capacity(capacity),
            records: 0,
        }
    }

    /// Adds a record; returns a full payload when one is ready.
    pub fn push(&mut self, record: &Record) -> Result<Option<EncodedMessage>> {
        match self.format {
            Format::Json => {
                json::write_record(&mut self.buf, record)?;
                self.records = 1;
                return Ok(self.take());
            }
            Format::Jsonl => {
                json::write_record(&mut self.buf, record)?;
                self.buf.push(b'\n');
            }
            Format::Protobuf => protobuf::append_record(&mut self.buf, record),
        }
        self.records += 1;
        if self.buf.len() >= self.target_bytes {
            Ok(self.take())
        } else {
            Ok(None)
        }
    }

    /// Returns the last, partly filled payload, if any.
    pub fn finish(&mut self) -> Option<EncodedMessage> {
        self.take()
    }

    fn take(&mut self) -> Option<EncodedMessage> {
        if self.records == 0 {
            return None;
        }
        let capacity = self.buf.capacity();
        let payload = std::mem::replace(&mut self.buf, Vec::with_capacity(capacity));
        let records = std::mem::take(&mut self.records);
        Some(EncodedMessage { payload, records })
    }
}

/// Decodes a payload of `format` back into records.
///
/// JSON carries no types beyond its own: timestamps come back as RFC 3339 strings and bytes
/// as base64 strings. Protobuf round-trips every value exactly.
pub fn decode(format: Format, payload: &[u8]) -> Result<Vec<Record>> {
    match format {
        Format::Json => Ok(vec![json::read_record(payload)?]),
        Format::Jsonl => payload
            .split(|b| *b == b'\n')
            .filter(|line| !line.is_empty())
            .map(json::read_record)
            .collect(),
        Format::Protobuf => protobuf::decode_batch(payload),
    }
}

/// Counts the records of a payload without building them (cheap verification).
pub fn count_records(format: Format, payload: &[u8]) -> Result<u32> {
    match format {
        Format::Json => Ok(1),
        // One record per non-empty line. This runs on every message read back, so the
        // newlines are found with SIMD and only the lines are looked at.
        Format::Jsonl => {
            let mut records = 0u32;
            let mut line_start = 0;
            for newline in memchr::memchr_iter(b'\n', payload) {
                records += u32::from(newline > line_start);
                line_start = newline + 1;
            }
            Ok(records + u32::from(line_start < payload.len()))
        }
        Format::Protobuf => protobuf::count_batch(payload),
    }
}

#[cfg(test)]
mod tests;
