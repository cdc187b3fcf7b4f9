//! The `Sink` trait: where encoded messages go, one chunk at a time.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::format::Format;

/// Header names carried by every message, so that any consumer can attribute and dedupe it.
pub mod header {
    /// The export id.
    pub const EXPORT_ID: &str = "ldd-export-id";
    /// The chunk id within the export.
    pub const CHUNK_ID: &str = "ldd-chunk-id";
    /// The attempt number of the chunk (from 1); only the manifest's attempt counts.
    pub const ATTEMPT: &str = "ldd-attempt";
    /// The message's sequence number within its chunk attempt (from 0).
    pub const SEQUENCE: &str = "ldd-seq";
    /// Records in the message.
    pub const RECORDS: &str = "ldd-records";
    /// The payload format (`json`, `jsonl`, `protobuf`).
    pub const FORMAT: &str = "ldd-format";
}

/// The identity of one chunk attempt, stamped on all of its messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkContext {
    /// The export id.
    pub export_id: String,
    /// The chunk id.
    pub chunk_id: u32,
    /// Target partition.
    pub partition: u32,
    /// Attempt number, from 1.
    pub attempt: u32,
    /// Payload format.
    pub format: Format,
}

/// One encoded message to deliver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutMessage {
    /// The encoded records.
    pub payload: Vec<u8>,
    /// Sequence number within the chunk attempt, from 0.
    pub sequence: u32,
    /// Records in the payload.
    pub records: u32,
}

/// Where a committed chunk landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkDelivery {
    /// The partition written.
    pub partition: u32,
    /// Offset of the first message, if any was sent.
    pub first_offset: Option<i64>,
    /// Offset of the last message, if any was sent.
    pub last_offset: Option<i64>,
    /// Messages acknowledged by the destination.
    pub messages: u64,
}

/// A destination for chunks of encoded messages.
///
/// The engine opens one [`ChunkWriter`] per chunk attempt on a worker `slot`
/// (`0..workers`); a sink may keep per-slot resources (e.g. one transactional producer per
/// worker).
#[async_trait]
pub trait Sink: Send + Sync {
    /// A short description for logs and manifests (never containing secrets).
    fn destination(&self) -> String;

    /// Number of partitions of the destination.
    async fn partition_count(&self) -> Result<u32>;

    /// Whether a worker slot may start its next chunk while the previous chunk's `commit`
    /// is still waiting for acknowledgements. True for sinks whose writers hold no per-slot
    /// resource during commit; false (the default) keeps commit inside the slot, as a
    /// per-slot transactional producer needs.
    fn overlapping_commits(&self) -> bool {
        false
    }

    /// Starts writing one chunk attempt.
    async fn open_chunk(&self, slot: usize, chunk: &ChunkContext) -> Result<Box<dyn ChunkWriter>>;
}

/// Writes the messages of one chunk attempt; either `commit` or `abort` ends it.
#[async_trait]
pub trait ChunkWriter: Send {
    /// Queues messages, in sequence order; may wait when the destination pushes back.
    /// Messages come in batches so that per-call costs are paid once per batch, not per
    /// message. A failure here or at `commit` fails the whole attempt.
    async fn send(&mut self, messages: Vec<OutMessage>) -> Result<()>;

    /// Waits until every message is acknowledged (and the chunk's transaction, if any, is
    /// committed) and says where they landed.
    async fn commit(self: Box<Self>) -> Result<ChunkDelivery>;

    /// Gives up the attempt; in transactional sinks nothing of it becomes visible.
    async fn abort(self: Box<Self>) -> Result<()>;
}
