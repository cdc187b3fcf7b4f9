//! Encodes records into messages and sends them to one chunk writer, keeping the
//! chunk's counts and checksum.

use std::sync::Arc;

use super::progress::Counters;
use crate::error::Result;
use crate::format::{EncodedMessage, Encoder, Format};
use crate::sink::{ChunkWriter, OutMessage};
use crate::value::Record;

/// What one chunk attempt sent.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SentStats {
    pub(crate) messages: u64,
    pub(crate) records: u64,
    pub(crate) bytes: u64,
    pub(crate) crc32: u32,
}

/// Messages handed to the writer per call, at most (by count or by payload bytes).
const SEND_BATCH_MESSAGES: usize = 256;
const SEND_BATCH_BYTES: usize = 1024 * 1024;

pub(crate) struct Feeder<'w> {
    writer: &'w mut dyn ChunkWriter,
    encoder: Encoder,
    crc: crc32fast::Hasher,
    stats: SentStats,
    counters: Arc<Counters>,
    batch: Vec<OutMessage>,
    batch_bytes: usize,
}

impl<'w> Feeder<'w> {
    pub(crate) fn new(
        writer: &'w mut dyn ChunkWriter,
        format: Format,
        batch_bytes: usize,
        counters: Arc<Counters>,
    ) -> Self {
        Feeder {
            writer,
            encoder: Encoder::new(format, batch_bytes),
            crc: crc32fast::Hasher::new(),
            stats: SentStats::default(),
            counters,
            batch: Vec::with_capacity(SEND_BATCH_MESSAGES),
            batch_bytes: 0,
        }
    }

    pub(crate) async fn push(&mut self, record: &Record) -> Result<()> {
        if let Some(message) = self.encoder.push(record)? {
            self.send(message).await?;
        }
        Ok(())
    }

    /// Sends the last partial payload; returns the attempt's totals.
    async fn finish(mut self) -> Result<SentStats> {
        if let Some(message) = self.encoder.finish() {
            self.send(message).await?;
        }
        self.flush().await?;
        self.stats.crc32 = self.crc.clone().finalize();
        Ok(self.stats)
    }

    /// Ends feeding: after `fed` succeeded, sends what is left. Returns the attempt's totals
    /// (or the error) and what had reached the writer, to take back from progress when the
    /// attempt fails.
    pub(crate) async fn close(self, fed: Result<()>) -> (Result<SentStats>, SentStats) {
        let sent = self.stats;
        match fed {
            Ok(()) => (self.finish().await, sent),
            Err(e) => (Err(e), sent),
        }
    }

    async fn send(&mut self, message: EncodedMessage) -> Result<()> {
        self.crc.update(&message.payload);
        let sequence =
            u32::try_from(self.stats.messages + self.batch.len() as u64).map_err(|_| {
                crate::Error::InvalidInput(
                    "a chunk exceeds 4 billion messages; plan more chunks".into(),
                )
            })?;
        self.batch_bytes += message.payload.len();
        self.batch.push(OutMessage {
            payload: message.payload,
            sequence,
            records: message.records,
        });
        if self.batch.len() >= SEND_BATCH_MESSAGES || self.batch_bytes >= SEND_BATCH_BYTES {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let messages = self.batch.len() as u64;
        let records: u64 = self.batch.iter().map(|m| u64::from(m.records)).sum();
        let bytes = std::mem::take(&mut self.batch_bytes) as u64;
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(SEND_BATCH_MESSAGES));
        self.writer.send(batch).await?;
        // Encoding is CPU-bound and a fast source never makes the task wait: give the
        // runtime's timers and I/O (progress, cancellation, other tasks) a turn per batch.
        tokio::task::yield_now().await;
        self.stats.messages += messages;
        self.stats.records += records;
        self.stats.bytes += bytes;
        self.counters.add(records, bytes, messages);
        Ok(())
    }
}
