//! The messages of the tasks and results topics (JSON, so that any tool can read them).

use std::time::Duration;

use ldd_core::{Chunk, ChunkFailure, ChunkManifest, Format, PlanStrategy, TaskSource};
use serde::{Deserialize, Serialize};

use crate::config::{Compression, KafkaSinkConfig, MessageKey};
use crate::error::{Error, Result};

/// Where and how a task's chunk is written: the parts of the coordinator's sink settings a
/// worker must follow. The Kafka client settings (brokers, security) are the worker's own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Destination {
    /// The destination topic.
    pub topic: String,
    /// Its partitions when the export was planned.
    pub partitions: u32,
    /// Payload format.
    pub format: Format,
    /// Payload bytes per message.
    pub batch_bytes: usize,
    /// Compression of produced batches.
    pub compression: Compression,
    /// Message key.
    pub key: MessageKey,
    /// The chunk transaction's timeout, in milliseconds.
    pub transaction_timeout_ms: u64,
}

impl Destination {
    /// The destination of an export into `sink` with `format` and `batch_bytes`.
    pub fn new(
        sink: &KafkaSinkConfig,
        partitions: u32,
        format: Format,
        batch_bytes: usize,
    ) -> Self {
        Destination {
            topic: sink.topic.clone(),
            partitions,
            format,
            batch_bytes,
            compression: sink.compression,
            key: sink.key,
            transaction_timeout_ms: sink.transaction_timeout.as_millis() as u64,
        }
    }

    /// The chunk transaction's timeout.
    pub fn transaction_timeout(&self) -> Duration {
        Duration::from_millis(self.transaction_timeout_ms)
    }
}

/// One chunk to run: the message of the tasks topic (key `<export id>/<chunk id>`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskMessage {
    /// The export.
    pub export_id: String,
    /// The offset of the export's plan in the results topic; attempt numbers count from it.
    pub plan_offset: i64,
    /// The chunk: id, target partition, range, expected records.
    pub chunk: Chunk,
    /// What to read, without secrets.
    pub source: TaskSource,
    /// Where to write.
    pub destination: Destination,
    /// Attempts a worker makes before it reports the chunk as failed.
    pub max_attempts: u32,
}

impl TaskMessage {
    /// The message key.
    pub fn key(&self) -> String {
        format!("{}/{}", self.export_id, self.chunk.id)
    }
}

/// One chunk of the plan as the results topic records it (ranges travel in the tasks).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedChunk {
    /// The chunk id.
    pub id: u32,
    /// Its partition.
    pub partition: u32,
    /// Records planning expects.
    pub expected_records: u64,
}

/// The plan of a distributed export, first in the results topic: what a restarted
/// coordinator needs to go on waiting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanRecord {
    /// The export.
    pub export_id: String,
    /// Records counted by the source.
    pub total_records: u64,
    /// How planning split the dataset.
    pub strategy: PlanStrategy,
    /// The chunks.
    pub chunks: Vec<PlannedChunk>,
    /// The source's description, for the manifest.
    pub source: String,
    /// The destination.
    pub destination: Destination,
    /// When the export started (RFC 3339).
    pub started_at: String,
}

/// A record of the results topic (key: the export id).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ResultRecord {
    /// The export's plan, written with its tasks in one transaction.
    Plan(PlanRecord),
    /// A worker starts an attempt of a chunk (written outside any transaction; its offset
    /// numbers the attempt).
    Started {
        /// The export.
        export_id: String,
        /// The chunk.
        chunk_id: u32,
        /// The worker.
        worker: String,
    },
    /// A chunk committed, in the same transaction as its messages and task offset.
    Committed {
        /// The export.
        export_id: String,
        /// The worker that wrote it.
        worker: String,
        /// Where the chunk landed.
        chunk: ChunkManifest,
        /// How long the attempt took, in milliseconds.
        elapsed_ms: u64,
    },
    /// A chunk failed for good (its task is consumed; the export fails).
    Failed {
        /// The export.
        export_id: String,
        /// The worker that gave up.
        worker: String,
        /// Why.
        failure: ChunkFailure,
    },
}

impl ResultRecord {
    /// The export the record belongs to.
    pub fn export_id(&self) -> &str {
        match self {
            ResultRecord::Plan(plan) => &plan.export_id,
            ResultRecord::Started { export_id, .. }
            | ResultRecord::Committed { export_id, .. }
            | ResultRecord::Failed { export_id, .. } => export_id,
        }
    }

    /// The record as JSON.
    pub fn to_json(&self) -> Result<Vec<u8>> {
        serde_json::to_vec(self).map_err(|e| Error::Decode(format!("encoding a result: {e}")))
    }

    /// A record from JSON.
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        serde_json::from_slice(bytes)
            .map_err(|e| Error::Decode(format!("not an ldd result record: {e}")))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn records_round_trip_and_name_their_export() {
        let started = ResultRecord::Started {
            export_id: "e1".into(),
            chunk_id: 3,
            worker: "w".into(),
        };
        let json = started.to_json().unwrap();
        assert!(String::from_utf8_lossy(&json).contains("\"type\":\"started\""));
        let back = ResultRecord::from_json(&json).unwrap();
        assert_eq!(back, started);
        assert_eq!(back.export_id(), "e1");
        assert!(ResultRecord::from_json(b"{}").is_err());
    }
}
