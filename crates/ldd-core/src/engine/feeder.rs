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

pub(crate) struct Feeder<'w> {
    writer: &'w mut dyn ChunkWriter,
    encoder: Encoder,
    crc: crc32fast::Hasher,
    stats: SentStats,
    counters: Arc<Counters>,
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
        }
    }

    pub(crate) async fn push(&mut self, record: &Record) -> Result<()> {
        if let Some(message) = self.encoder.push(record)? {
            self.send(message).await?;
        }
        Ok(())
    }

    /// Sends the last partial payload; returns the attempt's totals.
    pub(crate) async fn finish(mut self) -> Result<SentStats> {
        if let Some(message) = self.encoder.finish() {
            self.send(message).await?;
        }
        self.stats.crc32 = self.crc.clone().finalize();
        Ok(self.stats)
    }

    /// What has been sent so far (to take back from progress when the attempt fails).
    pub(crate) fn sent(&self) -> SentStats {
        self.stats
    }

    async fn send(&mut self, message: EncodedMessage) -> Result<()> {
        self.crc.update(&message.payload);
        let bytes = message.payload.len() as u64;
        let sequence = u32::try_from(self.stats.messages).map_err(|_| {
            crate::Error::InvalidInput(
                "a chunk exceeds 4 billion messages; plan more chunks".into(),
            )
        })?;
        self.writer
            .send(OutMessage {
                payload: message.payload,
                sequence,
                records: message.records,
            })
            .await?;
        self.stats.messages += 1;
        self.stats.records += u64::from(message.records);
        self.stats.bytes += bytes;
        self.counters.add(u64::from(message.records), bytes, 1);
        Ok(())
    }
}
