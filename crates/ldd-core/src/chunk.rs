//! Chunks and the export plan.

use serde::{Deserialize, Serialize};

use crate::value::Value;

/// The slice of a dataset one chunk reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ChunkRange {
    /// The whole dataset (used by sources that can only be scanned once).
    All,
    /// Records whose `field` lies in `[start, end)`; an absent bound is open.
    Range {
        /// The field the range is on (a time field, `_id`, ...).
        field: String,
        /// Inclusive lower bound.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        start: Option<ValueBound>,
        /// Exclusive upper bound.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        end: Option<ValueBound>,
    },
}

/// A range bound, as a serializable subset of [`Value`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "snake_case")]
pub enum ValueBound {
    /// An instant in nanoseconds since the epoch.
    Timestamp(i64),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// Text.
    String(String),
    /// Bytes, e.g. a MongoDB ObjectId's 12 bytes.
    ObjectId(Vec<u8>),
}

impl ValueBound {
    /// The bound as a record value (an ObjectId becomes its bytes).
    pub fn to_value(&self) -> Value {
        match self {
            ValueBound::Timestamp(t) => Value::Timestamp(*t),
            ValueBound::Int(i) => Value::Int(*i),
            ValueBound::Float(f) => Value::Float(*f),
            ValueBound::String(s) => Value::String(s.clone()),
            ValueBound::ObjectId(b) => Value::Bytes(b.clone()),
        }
    }
}

/// One unit of work: a slice of the dataset that goes to one partition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chunk {
    /// Position in the plan, from 0.
    pub id: u32,
    /// Target partition.
    pub partition: u32,
    /// What to read.
    pub range: ChunkRange,
    /// How many records planning expects (exact for most strategies, an estimate for some).
    pub expected_records: u64,
}

/// How planning split the dataset, and at what cost.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanStrategy {
    /// Short name of the strategy (`time-windows`, `id-boundaries`, `ordered-scan`, ...).
    pub name: String,
    /// Why this strategy ran (e.g. why a better one was not possible).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Queries sent to the database while planning.
    pub queries: u32,
    /// Wall time spent planning, in milliseconds.
    pub duration_ms: u64,
}

/// The chunks of one export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportPlan {
    /// The export this plan belongs to.
    pub export_id: String,
    /// Records counted in the dataset when planning.
    pub total_records: u64,
    /// Partition count of the destination.
    pub partitions: u32,
    /// How the split was made.
    pub strategy: PlanStrategy,
    /// Whether chunks are read by range (`true`) or cut from one ordered scan (`false`).
    pub splittable: bool,
    /// The chunks, by id.
    pub chunks: Vec<Chunk>,
}

impl ExportPlan {
    /// The chunks still to run when the chunks with ids `committed` are done (a resumed
    /// export).
    pub fn pending_chunks(&self, committed: impl IntoIterator<Item = u32>) -> Vec<&Chunk> {
        let done: std::collections::HashSet<u32> = committed.into_iter().collect();
        self.chunks
            .iter()
            .filter(|c| !done.contains(&c.id))
            .collect()
    }
}
