//! An in-memory, transactional [`Sink`] for tests, with injectable faults.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;

use crate::error::{Error, Result};
use crate::manifest::ChunkManifest;
use crate::sink::{ChunkContext, ChunkDelivery, ChunkWriter, Delivery, OutMessage, Sink};

/// One message as stored in a partition log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    /// Offset in the partition.
    pub offset: i64,
    /// The chunk attempt it belongs to.
    pub context: ChunkContext,
    /// The message.
    pub message: OutMessage,
}

/// A fault to inject into a chunk attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// `send` of this message sequence fails (retryable).
    SendFails {
        /// Sequence number that fails.
        sequence: u32,
    },
    /// `commit` fails (retryable) after all sends.
    CommitFails,
    /// `commit` reports one message fewer than was sent (a lost delivery).
    LosesOneMessage,
    /// `send` fails with a non-retryable error.
    Fatal,
}

#[derive(Default)]
struct State {
    logs: Vec<Vec<StoredMessage>>,
    /// Next offset per partition: flushed attempts take offsets, aborted ones leave gaps
    /// (as Kafka's aborted transactions do).
    next_offsets: Vec<i64>,
    prepared_slots: usize,
    faults: HashMap<(u32, u32), Fault>,
    aborted: u32,
}

/// Keeps partition logs in memory. Each chunk attempt is a transaction: its messages get
/// offsets when flushed but enter the log only when it commits, so an aborted attempt
/// leaves nothing behind but a gap in the offsets.
#[derive(Clone)]
pub struct MemorySink {
    state: Arc<Mutex<State>>,
    partitions: u32,
}

impl MemorySink {
    /// A sink with `partitions` empty partitions.
    pub fn new(partitions: u32) -> Self {
        let state = State {
            logs: vec![Vec::new(); partitions as usize],
            next_offsets: vec![0; partitions as usize],
            ..Default::default()
        };
        MemorySink {
            state: Arc::new(Mutex::new(state)),
            partitions,
        }
    }

    /// Injects `fault` into attempt `attempt` (from 1) of chunk `chunk_id`.
    pub fn inject(&self, chunk_id: u32, attempt: u32, fault: Fault) {
        self.lock().faults.insert((chunk_id, attempt), fault);
    }

    /// The messages of one partition, in offset order.
    pub fn partition_log(&self, partition: u32) -> Vec<StoredMessage> {
        self.lock()
            .logs
            .get(partition as usize)
            .cloned()
            .unwrap_or_default()
    }

    /// The most writer slots [`Sink::prepare`] was asked to fence.
    pub fn prepared_slots(&self) -> usize {
        self.lock().prepared_slots
    }

    /// Attempts aborted so far.
    pub fn aborted(&self) -> u32 {
        self.lock().aborted
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic in another test thread must not hide this test's result.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl Sink for MemorySink {
    fn destination(&self) -> String {
        "memory".into()
    }

    async fn partition_count(&self) -> Result<u32> {
        Ok(self.partitions)
    }

    fn delivery(&self) -> Delivery {
        Delivery::ExactlyOnce
    }

    fn writer_slots(&self, workers: usize) -> usize {
        workers * 2
    }

    async fn prepare(&self, _export_id: &str, slots: usize) -> Result<()> {
        let mut state = self.lock();
        state.prepared_slots = state.prepared_slots.max(slots);
        Ok(())
    }

    async fn chunk_visible(&self, export_id: &str, chunk: &ChunkManifest) -> Result<bool> {
        let Some(first) = chunk.first_offset else {
            return Ok(false);
        };
        Ok(self
            .lock()
            .logs
            .get(chunk.partition as usize)
            .is_some_and(|log| {
                log.iter().any(|m| {
                    m.offset == first
                        && m.context.export_id == export_id
                        && m.context.chunk_id == chunk.chunk_id
                        && m.context.attempt == chunk.attempt
                })
            }))
    }

    async fn open_chunk(&self, _slot: usize, chunk: &ChunkContext) -> Result<Box<dyn ChunkWriter>> {
        if chunk.partition >= self.partitions {
            return Err(Error::InvalidInput(format!(
                "partition {} does not exist",
                chunk.partition
            )));
        }
        let fault = self
            .lock()
            .faults
            .get(&(chunk.chunk_id, chunk.attempt))
            .copied();
        Ok(Box::new(MemoryWriter {
            sink: self.clone(),
            context: chunk.clone(),
            pending: Vec::new(),
            first_offset: 0,
            fault,
        }))
    }
}

struct MemoryWriter {
    sink: MemorySink,
    context: ChunkContext,
    pending: Vec<OutMessage>,
    /// The offset of the first pending message, once flushed.
    first_offset: i64,
    fault: Option<Fault>,
}

#[async_trait]
impl ChunkWriter for MemoryWriter {
    async fn send(&mut self, messages: Vec<OutMessage>) -> Result<()> {
        for message in messages {
            match self.fault {
                Some(Fault::SendFails { sequence }) if sequence == message.sequence => {
                    return Err(Error::sink_msg("injected send failure", true))
                }
                Some(Fault::Fatal) => return Err(Error::sink_msg("injected fatal failure", false)),
                _ => {}
            }
            self.pending.push(message);
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<ChunkDelivery> {
        let mut state = self.sink.lock();
        let next = &mut state.next_offsets[self.context.partition as usize];
        self.first_offset = *next;
        *next += self.pending.len() as i64;
        let mut messages = self.pending.len() as u64;
        if self.fault == Some(Fault::LosesOneMessage) {
            messages = messages.saturating_sub(1);
        }
        let first = self.first_offset;
        Ok(ChunkDelivery {
            partition: self.context.partition,
            first_offset: (messages > 0).then_some(first),
            last_offset: (messages > 0).then_some(first + messages as i64 - 1),
            messages,
        })
    }

    async fn commit(self: Box<Self>) -> Result<()> {
        if self.fault == Some(Fault::CommitFails) {
            self.sink.lock().aborted += 1;
            return Err(Error::sink_msg("injected commit failure", true));
        }
        let mut state = self.sink.lock();
        let log = &mut state.logs[self.context.partition as usize];
        for (i, message) in self.pending.into_iter().enumerate() {
            log.push(StoredMessage {
                offset: self.first_offset + i as i64,
                context: self.context.clone(),
                message,
            });
        }
        Ok(())
    }

    async fn abort(self: Box<Self>) -> Result<()> {
        self.sink.lock().aborted += 1;
        Ok(())
    }
}
