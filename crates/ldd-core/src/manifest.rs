//! The manifest: exactly where every record of an export landed.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::chunk::PlanStrategy;
use crate::delivery::Delivery;
use crate::error::{Error, Result};
use crate::format::Format;

/// Version of the manifest layout.
pub const MANIFEST_VERSION: u32 = 1;

/// Where one chunk landed, built from the destination's delivery reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkManifest {
    /// Chunk id in the plan.
    pub chunk_id: u32,
    /// The attempt that was committed; messages of other attempts are to be ignored.
    pub attempt: u32,
    /// The partition written.
    pub partition: u32,
    /// Offset of the chunk's first message (absent when the chunk was empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_offset: Option<i64>,
    /// Offset of the chunk's last message (absent when the chunk was empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_offset: Option<i64>,
    /// Messages in the chunk.
    pub messages: u64,
    /// Records in the chunk.
    pub records: u64,
    /// Payload bytes in the chunk (before compression).
    pub bytes: u64,
    /// CRC-32 of the chunk's payloads concatenated in sequence order.
    pub crc32: u32,
}

/// Per-partition totals and the offset range holding the export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionManifest {
    /// Partition number.
    pub partition: u32,
    /// Lowest offset holding a message of the export.
    pub first_offset: i64,
    /// Highest offset holding a message of the export.
    pub last_offset: i64,
    /// Messages of the export in the partition.
    pub messages: u64,
    /// Records of the export in the partition.
    pub records: u64,
}

/// How long the export took.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timings {
    /// When the export started (RFC 3339).
    pub started_at: String,
    /// When the last chunk was committed (RFC 3339).
    pub finished_at: String,
    /// Milliseconds spent planning.
    pub planning_ms: u64,
    /// Milliseconds spent reading, encoding and delivering.
    pub export_ms: u64,
}

/// The manifest of one export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Layout version ([`MANIFEST_VERSION`]).
    pub version: u32,
    /// The export id (also in every message's headers).
    pub export_id: String,
    /// The topic written.
    pub topic: String,
    /// The payload format.
    pub format: Format,
    /// Whether each chunk was one transaction (read with `read_committed`).
    pub transactional: bool,
    /// The guarantee the export was written under (manifests written before this field
    /// existed read as at-least-once).
    #[serde(default)]
    pub delivery: Delivery,
    /// What was exported, as described by the source.
    pub source: String,
    /// Records the source counted when planning.
    pub counted_records: u64,
    /// Records delivered.
    pub total_records: u64,
    /// Messages delivered.
    pub total_messages: u64,
    /// Payload bytes delivered (before compression).
    pub total_bytes: u64,
    /// How planning split the dataset.
    pub strategy: PlanStrategy,
    /// Timings.
    pub timings: Timings,
    /// Per partition, by partition number.
    pub partitions: Vec<PartitionManifest>,
    /// Per chunk, by chunk id.
    pub chunks: Vec<ChunkManifest>,
}

/// Spark/Flink-style bounded offsets of an export: `startingOffsets` is inclusive and
/// `endingOffsets` exclusive, both as `{"topic":{"partition":offset}}` JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SparkOffsets {
    /// Value for Spark's `startingOffsets` option.
    #[serde(rename = "startingOffsets")]
    pub starting_offsets: String,
    /// Value for Spark's `endingOffsets` option.
    #[serde(rename = "endingOffsets")]
    pub ending_offsets: String,
}

/// The fields of a manifest that do not come from delivery reports.
#[derive(Debug, Clone)]
pub struct ManifestHeader {
    /// The export id.
    pub export_id: String,
    /// The topic written.
    pub topic: String,
    /// The payload format.
    pub format: Format,
    /// The guarantee chunks were written under.
    pub delivery: Delivery,
    /// Source description.
    pub source: String,
    /// Records counted by the source.
    pub counted_records: u64,
    /// Planning strategy.
    pub strategy: PlanStrategy,
    /// Timings.
    pub timings: Timings,
}

impl Manifest {
    /// Builds a manifest from the committed chunks, computing per-partition ranges and totals.
    pub fn from_chunks(header: ManifestHeader, mut chunks: Vec<ChunkManifest>) -> Self {
        chunks.sort_by_key(|c| c.chunk_id);
        let mut partitions: BTreeMap<u32, PartitionManifest> = BTreeMap::new();
        for chunk in &chunks {
            let (Some(first), Some(last)) = (chunk.first_offset, chunk.last_offset) else {
                continue;
            };
            let entry = partitions
                .entry(chunk.partition)
                .or_insert(PartitionManifest {
                    partition: chunk.partition,
                    first_offset: first,
                    last_offset: last,
                    messages: 0,
                    records: 0,
                });
            entry.first_offset = entry.first_offset.min(first);
            entry.last_offset = entry.last_offset.max(last);
            entry.messages += chunk.messages;
            entry.records += chunk.records;
        }
        Manifest {
            version: MANIFEST_VERSION,
            export_id: header.export_id,
            topic: header.topic,
            format: header.format,
            transactional: header.delivery == Delivery::ExactlyOnce,
            delivery: header.delivery,
            source: header.source,
            counted_records: header.counted_records,
            total_records: chunks.iter().map(|c| c.records).sum(),
            total_messages: chunks.iter().map(|c| c.messages).sum(),
            total_bytes: chunks.iter().map(|c| c.bytes).sum(),
            strategy: header.strategy,
            timings: header.timings,
            partitions: partitions.into_values().collect(),
            chunks,
        }
    }

    /// Bounded offsets for Spark's Kafka source (end offsets are exclusive).
    pub fn spark_offsets(&self) -> SparkOffsets {
        let side = |pick: fn(&PartitionManifest) -> i64| {
            let per_partition: BTreeMap<String, i64> = self
                .partitions
                .iter()
                .map(|p| (p.partition.to_string(), pick(p)))
                .collect();
            serde_json::json!({ self.topic.clone(): per_partition }).to_string()
        };
        SparkOffsets {
            starting_offsets: side(|p| p.first_offset),
            ending_offsets: side(|p| p.last_offset + 1),
        }
    }

    /// The original API's `offsetsData`: `"partition:first:last"` per partition.
    pub fn offsets_data(&self) -> Vec<String> {
        self.partitions
            .iter()
            .map(|p| format!("{}:{}:{}", p.partition, p.first_offset, p.last_offset))
            .collect()
    }

    /// Checks that totals, partitions and chunks agree (e.g. after loading a file).
    pub fn check_consistency(&self) -> Result<()> {
        let bad = |what: String| {
            Err(Error::InvalidInput(format!(
                "inconsistent manifest: {what}"
            )))
        };
        let chunk_records: u64 = self.chunks.iter().map(|c| c.records).sum();
        let part_records: u64 = self.partitions.iter().map(|p| p.records).sum();
        if chunk_records != self.total_records || part_records != self.total_records {
            return bad(format!(
                "total_records {} but chunks hold {chunk_records} and partitions {part_records}",
                self.total_records
            ));
        }
        let chunk_messages: u64 = self.chunks.iter().map(|c| c.messages).sum();
        if chunk_messages != self.total_messages {
            return bad(format!(
                "total_messages {} but chunks hold {chunk_messages}",
                self.total_messages
            ));
        }
        for c in &self.chunks {
            match (c.first_offset, c.last_offset) {
                (Some(f), Some(l)) if f <= l && l - f + 1 >= c.messages as i64 => {}
                (None, None) if c.messages == 0 => {}
                _ => {
                    return bad(format!(
                        "chunk {} has offsets {:?}..{:?} for {} messages",
                        c.chunk_id, c.first_offset, c.last_offset, c.messages
                    ))
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(id: u32, partition: u32, first: i64, messages: u64) -> ChunkManifest {
        ChunkManifest {
            chunk_id: id,
            attempt: 1,
            partition,
            first_offset: Some(first),
            last_offset: Some(first + messages as i64 - 1),
            messages,
            records: messages * 10,
            bytes: messages * 100,
            crc32: 0,
        }
    }

    fn header() -> ManifestHeader {
        ManifestHeader {
            export_id: "e1".into(),
            topic: "t".into(),
            format: Format::Jsonl,
            delivery: Delivery::AtLeastOnce,
            source: "generator".into(),
            counted_records: 130,
            strategy: PlanStrategy::default(),
            timings: Timings::default(),
        }
    }

    #[test]
    fn partitions_aggregate_their_chunks() {
        let mut empty = chunk(4, 1, 0, 0);
        empty.first_offset = None;
        empty.last_offset = None;
        let m = Manifest::from_chunks(
            header(),
            vec![
                chunk(2, 0, 5, 3),
                chunk(0, 0, 0, 5),
                chunk(1, 1, 7, 5),
                empty,
            ],
        );
        assert_eq!(m.total_records, 130);
        assert_eq!(m.total_messages, 13);
        assert_eq!(m.total_bytes, 1300);
        assert_eq!(
            m.chunks.iter().map(|c| c.chunk_id).collect::<Vec<_>>(),
            [0, 1, 2, 4]
        );
        assert_eq!(
            m.partitions,
            vec![
                PartitionManifest {
                    partition: 0,
                    first_offset: 0,
                    last_offset: 7,
                    messages: 8,
                    records: 80
                },
                PartitionManifest {
                    partition: 1,
                    first_offset: 7,
                    last_offset: 11,
                    messages: 5,
                    records: 50
                },
            ]
        );
        m.check_consistency().unwrap();
        assert_eq!(m.offsets_data(), vec!["0:0:7", "1:7:11"]);
    }

    #[test]
    fn spark_offsets_end_is_exclusive() {
        let m = Manifest::from_chunks(header(), vec![chunk(0, 0, 0, 5), chunk(1, 3, 10, 2)]);
        let spark = m.spark_offsets();
        assert_eq!(spark.starting_offsets, r#"{"t":{"0":0,"3":10}}"#);
        assert_eq!(spark.ending_offsets, r#"{"t":{"0":5,"3":12}}"#);
    }

    #[test]
    fn inconsistent_manifests_are_rejected() {
        let mut m = Manifest::from_chunks(header(), vec![chunk(0, 0, 0, 5)]);
        m.total_records += 1;
        assert!(m.check_consistency().is_err());
        let mut m = Manifest::from_chunks(header(), vec![chunk(0, 0, 0, 5)]);
        m.chunks[0].last_offset = Some(2);
        assert!(m
            .check_consistency()
            .unwrap_err()
            .to_string()
            .contains("chunk 0"));
    }

    #[test]
    fn manifest_round_trips_through_json() {
        let m = Manifest::from_chunks(header(), vec![chunk(0, 0, 0, 5)]);
        let text = serde_json::to_string(&m).unwrap();
        assert_eq!(serde_json::from_str::<Manifest>(&text).unwrap(), m);
    }
}
