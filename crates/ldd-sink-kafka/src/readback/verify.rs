//! Per-chunk verification of what a partition reader sees.

use std::collections::HashMap;

use ldd_core::sink::header;
use ldd_core::ChunkManifest;
use rdkafka::message::{BorrowedMessage, Headers, Message};
use serde::{Deserialize, Serialize};

/// Something read-back found wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Problem {
    /// The partition no longer holds the manifest's first offset (retention or a mock
    /// cluster's size limit dropped data).
    Truncated {
        /// Partition.
        partition: u32,
        /// The partition's low watermark.
        low_watermark: i64,
        /// First offset the manifest needs.
        first_offset: i64,
    },
    /// The partition ends before the manifest's last offset.
    ShortPartition {
        /// Partition.
        partition: u32,
        /// The partition's high watermark.
        high_watermark: i64,
        /// Last offset the manifest needs.
        last_offset: i64,
    },
    /// Reading stopped before the manifest's last offset.
    Stalled {
        /// Partition.
        partition: u32,
        /// Last offset read, if any.
        reached: Option<i64>,
        /// Last offset the manifest needs.
        last_offset: i64,
        /// Why.
        reason: String,
    },
    /// A chunk's message arrived more than once.
    Duplicate {
        /// Chunk.
        chunk_id: u32,
        /// Sequence number seen again.
        sequence: u32,
        /// Offset of the repeat.
        offset: i64,
    },
    /// Messages of a chunk are missing.
    Missing {
        /// Chunk.
        chunk_id: u32,
        /// Messages the manifest names.
        expected_messages: u64,
        /// Messages found.
        found_messages: u64,
    },
    /// A chunk's record count differs from the manifest.
    RecordCount {
        /// Chunk.
        chunk_id: u32,
        /// Records the manifest names.
        expected: u64,
        /// Records found.
        found: u64,
    },
    /// A chunk's payloads do not hash to the manifest's checksum.
    Checksum {
        /// Chunk.
        chunk_id: u32,
        /// CRC-32 in the manifest.
        expected: u32,
        /// CRC-32 of what was read.
        found: u32,
    },
    /// A message could not be understood.
    Corrupt {
        /// Partition.
        partition: u32,
        /// Offset.
        offset: i64,
        /// Why.
        reason: String,
    },
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::Truncated { partition, low_watermark, first_offset } => write!(
                f,
                "partition {partition} was truncated: it starts at offset {low_watermark} but the export starts at {first_offset} (data was dropped by retention or size limits)"
            ),
            Problem::ShortPartition { partition, high_watermark, last_offset } => write!(
                f,
                "partition {partition} ends at offset {} but the export ends at {last_offset}",
                high_watermark - 1
            ),
            Problem::Stalled { partition, reached, last_offset, reason } => write!(
                f,
                "partition {partition}: reading stopped at {} before offset {last_offset}: {reason}",
                reached.map_or("the start".to_string(), |o| format!("offset {o}"))
            ),
            Problem::Duplicate { chunk_id, sequence, offset } => write!(
                f,
                "chunk {chunk_id}: message {sequence} seen again at offset {offset}"
            ),
            Problem::Missing { chunk_id, expected_messages, found_messages } => write!(
                f,
                "chunk {chunk_id}: {found_messages} of {expected_messages} messages found"
            ),
            Problem::RecordCount { chunk_id, expected, found } => write!(
                f,
                "chunk {chunk_id}: {found} records found, manifest says {expected}"
            ),
            Problem::Checksum { chunk_id, expected, found } => write!(
                f,
                "chunk {chunk_id}: checksum {found:08x} differs from the manifest's {expected:08x}"
            ),
            Problem::Corrupt { partition, offset, reason } => {
                write!(f, "partition {partition} offset {offset}: {reason}")
            }
        }
    }
}

/// The ldd headers of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LddHeaders<'a> {
    pub(crate) export_id: Option<&'a str>,
    pub(crate) chunk_id: Option<u32>,
    pub(crate) attempt: Option<u32>,
    pub(crate) sequence: Option<u32>,
    pub(crate) records: Option<u32>,
}

pub(crate) fn parse_headers<'a>(msg: &'a BorrowedMessage<'a>) -> LddHeaders<'a> {
    let mut h = LddHeaders {
        export_id: None,
        chunk_id: None,
        attempt: None,
        sequence: None,
        records: None,
    };
    let Some(headers) = msg.headers() else {
        return h;
    };
    for header in headers.iter() {
        let Some(text) = header.value.and_then(|v| std::str::from_utf8(v).ok()) else {
            continue;
        };
        match header.key {
            header::EXPORT_ID => h.export_id = Some(text),
            header::CHUNK_ID => h.chunk_id = text.parse().ok(),
            header::ATTEMPT => h.attempt = text.parse().ok(),
            header::SEQUENCE => h.sequence = text.parse().ok(),
            header::RECORDS => h.records = text.parse().ok(),
            _ => {}
        }
    }
    h
}

/// Running state of one chunk while its partition is read.
#[derive(Debug)]
pub(crate) struct ChunkCheck<'m> {
    pub(crate) manifest: &'m ChunkManifest,
    next_sequence: u32,
    messages: u64,
    records: u64,
    crc: crc32fast::Hasher,
}

impl<'m> ChunkCheck<'m> {
    pub(crate) fn new(manifest: &'m ChunkManifest) -> Self {
        ChunkCheck {
            manifest,
            next_sequence: 0,
            messages: 0,
            records: 0,
            crc: crc32fast::Hasher::new(),
        }
    }

    /// Accounts one message; returns a problem when it is a repeat.
    pub(crate) fn accept(
        &mut self,
        sequence: u32,
        offset: i64,
        payload: &[u8],
        records: u64,
    ) -> Option<Problem> {
        if sequence < self.next_sequence {
            return Some(Problem::Duplicate {
                chunk_id: self.manifest.chunk_id,
                sequence,
                offset,
            });
        }
        // A gap shows up as a missing-message count and a checksum mismatch at the end.
        self.next_sequence = sequence + 1;
        self.messages += 1;
        self.records += records;
        self.crc.update(payload);
        None
    }

    pub(crate) fn finish(self, problems: &mut Vec<Problem>) -> bool {
        let m = self.manifest;
        let before = problems.len();
        if self.messages != m.messages {
            problems.push(Problem::Missing {
                chunk_id: m.chunk_id,
                expected_messages: m.messages,
                found_messages: self.messages,
            });
        }
        if self.records != m.records {
            problems.push(Problem::RecordCount {
                chunk_id: m.chunk_id,
                expected: m.records,
                found: self.records,
            });
        }
        let crc = self.crc.finalize();
        if crc != m.crc32 {
            problems.push(Problem::Checksum {
                chunk_id: m.chunk_id,
                expected: m.crc32,
                found: crc,
            });
        }
        problems.len() == before
    }
}

/// The chunk checks of one partition, by chunk id.
pub(crate) fn checks_for<'m>(
    chunks: impl Iterator<Item = &'m ChunkManifest>,
) -> HashMap<u32, ChunkCheck<'m>> {
    chunks.map(|c| (c.chunk_id, ChunkCheck::new(c))).collect()
}
