//! The `Sink` trait: where encoded messages go, one chunk at a time.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use crate::delivery::Delivery;
use crate::error::Result;
use crate::format::Format;
use crate::manifest::ChunkManifest;

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
/// The engine opens one [`ChunkWriter`] per chunk attempt on a writer `slot`
/// (`0..writer_slots`); a sink may keep per-slot resources (e.g. one transactional producer
/// per slot).
#[async_trait]
pub trait Sink: Send + Sync {
    /// A short description for logs and manifests (never containing secrets).
    fn destination(&self) -> String;

    /// Number of partitions of the destination.
    async fn partition_count(&self) -> Result<u32>;

    /// The guarantee this sink's chunks are written under (recorded in the manifest).
    fn delivery(&self) -> Delivery {
        Delivery::AtLeastOnce
    }

    /// How many chunk writers may be open at once when `workers` chunks are read at a time.
    /// A worker hands its writer slot on only after the chunk's commit, so more slots than
    /// workers let a chunk's commit overlap the next chunk's reading. The default, `workers`,
    /// keeps commit inside the worker.
    fn writer_slots(&self, workers: usize) -> usize {
        workers
    }

    /// Prepares writer slots `0..slots` of export `export_id` before any chunk is opened.
    /// A transactional sink fences every earlier writer of those slots here, so that an
    /// interrupted run's open transactions are aborted at once and a resume can ask
    /// [`Sink::chunk_visible`]. The default does nothing.
    async fn prepare(&self, _export_id: &str, _slots: usize) -> Result<()> {
        Ok(())
    }

    /// Whether a chunk recorded as committing (but not as committed) by an interrupted run
    /// became visible to readers; asked after [`Sink::prepare`]. The default says no, so the
    /// chunk runs again: right for sinks without transactions, where nothing is hidden.
    async fn chunk_visible(&self, _export_id: &str, _chunk: &ChunkManifest) -> Result<bool> {
        Ok(false)
    }

    /// Starts writing one chunk attempt on writer slot `slot` (`0..writer_slots`).
    async fn open_chunk(&self, slot: usize, chunk: &ChunkContext) -> Result<Box<dyn ChunkWriter>>;
}

/// Writes the messages of one chunk attempt: `send`s, then `flush` and `commit`; `abort`
/// ends it instead at any point.
#[async_trait]
pub trait ChunkWriter: Send {
    /// Queues messages, in sequence order; may wait when the destination pushes back.
    /// Messages come in batches so that per-call costs are paid once per batch, not per
    /// message. A failure here or at `commit` fails the whole attempt.
    async fn send(&mut self, messages: Vec<OutMessage>) -> Result<()>;

    /// Waits until every message is acknowledged and says where they landed. In a
    /// transactional sink the messages are not yet visible to `read_committed` readers.
    async fn flush(&mut self) -> Result<ChunkDelivery>;

    /// Makes the flushed chunk visible (commits its transaction, if any).
    async fn commit(self: Box<Self>) -> Result<()>;

    /// Commits, knowing the chunk's manifest entry: the engine always commits through this.
    /// A sink that records the entry in the same transaction as the chunk (a distributed
    /// worker writes it to a results topic, with the task's consumer offset) overrides it;
    /// the default ignores the entry and calls [`ChunkWriter::commit`].
    async fn commit_with(self: Box<Self>, _entry: &ChunkManifest) -> Result<()> {
        self.commit().await
    }

    /// Gives up the attempt; in transactional sinks nothing of it becomes visible.
    async fn abort(self: Box<Self>) -> Result<()>;
}
