//! One chunk: its attempts, retries and the manifest entry of the one that committed.

use std::sync::Arc;

use futures::StreamExt;

use super::feeder::SentStats;
use super::progress::{Counters, ExportEvent};
use super::read_ahead::read_ahead;
use super::slots::SlotPool;
use super::Shared;
use crate::chunk::Chunk;
use crate::error::{ChunkFailure, Error, Result};
use crate::manifest::ChunkManifest;
use crate::sink::{ChunkDelivery, ChunkWriter};
use crate::source::RecordStream;
use crate::value::Record;

/// Runs a range chunk until it commits, fails for good, or the export is cancelled.
pub(crate) async fn run_chunk(
    shared: &Shared,
    slots: &SlotPool,
    chunk: &Chunk,
) -> Result<ChunkManifest, ChunkOutcome> {
    let policy = shared.options.retry;
    let mut backoff = policy.initial_backoff;
    let first = shared.options.first_attempt;
    let mut attempt = first;
    loop {
        match run_attempt(shared, slots, chunk, attempt).await {
            Ok(manifest) => return Ok(manifest),
            Err(Error::Cancelled) => return Err(ChunkOutcome::Cancelled),
            Err(err) if err.is_retryable() && attempt - first + 1 < policy.max_attempts => {
                let error = err.chain();
                tracing::warn!(chunk = chunk.id, attempt, %error, "chunk attempt failed; retrying");
                shared.control.emit(ExportEvent::ChunkRetrying {
                    chunk_id: chunk.id,
                    attempt,
                    error,
                });
                tokio::select! {
                    _ = shared.control.cancel.cancelled() => return Err(ChunkOutcome::Cancelled),
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = backoff.saturating_mul(2);
                attempt += 1;
            }
            Err(err) => {
                return Err(ChunkOutcome::Failed(ChunkFailure {
                    chunk_id: chunk.id,
                    attempts: attempt - first + 1,
                    error: err.chain(),
                }))
            }
        }
    }
}

/// Why a chunk did not commit.
#[derive(Debug)]
pub(crate) enum ChunkOutcome {
    Cancelled,
    Failed(ChunkFailure),
}

async fn run_attempt(
    shared: &Shared,
    slots: &SlotPool,
    chunk: &Chunk,
    attempt: u32,
) -> Result<ChunkManifest> {
    let slot = tokio::select! {
        _ = shared.control.cancel.cancelled() => return Err(Error::Cancelled),
        slot = slots.acquire() => slot.ok_or(Error::Cancelled)?,
    };
    let mut stream = read_ahead(shared.source.read(&chunk.range).await?);
    let mut writer = shared.open(slot.id(), chunk, attempt).await?;
    let fed = feed_stream(shared, writer.as_mut(), &mut stream).await;
    drop(stream);
    // Waiting for acknowledgements needs no worker: when the sink allows, the slot starts
    // its next chunk meanwhile, so the pipeline never drains between chunks.
    let slot = if shared.sink.overlapping_commits() {
        drop(slot);
        None
    } else {
        Some(slot)
    };
    let result = finish_attempt(shared, writer, chunk, attempt, fed).await;
    drop(slot);
    result
}

async fn feed_stream(
    shared: &Shared,
    writer: &mut dyn ChunkWriter,
    stream: &mut RecordStream,
) -> (Result<SentStats>, SentStats) {
    let mut feeder = shared.feeder(writer);
    let result = async {
        loop {
            let batch = tokio::select! {
                _ = shared.control.cancel.cancelled() => return Err(Error::Cancelled),
                batch = stream.next() => batch,
            };
            let Some(batch) = batch else { break };
            for record in &batch? {
                feeder.push(record).await?;
            }
        }
        Ok(())
    }
    .await;
    feeder.close(result).await
}

/// Feeds exactly `records` records taken from a shared ordered scan into one chunk attempt.
pub(crate) async fn run_scan_block(
    shared: &Shared,
    chunk: &Chunk,
    records: u64,
    take_all: bool,
    scan: &mut ScanCursor,
) -> Result<ChunkManifest> {
    let attempt = shared.options.first_attempt;
    let mut writer = shared.open(0, chunk, attempt).await?;
    let fed = {
        let mut feeder = shared.feeder(writer.as_mut());
        let result = async {
            let mut left = records;
            while take_all || left > 0 {
                if shared.control.cancel.is_cancelled() {
                    return Err(Error::Cancelled);
                }
                let Some(record) = scan.next().await? else {
                    break;
                };
                feeder.push(&record).await?;
                left = left.saturating_sub(1);
            }
            Ok(())
        }
        .await;
        feeder.close(result).await
    };
    finish_attempt(shared, writer, chunk, attempt, fed).await
}

async fn finish_attempt(
    shared: &Shared,
    writer: Box<dyn ChunkWriter>,
    chunk: &Chunk,
    attempt: u32,
    (fed, sent_before_error): (Result<SentStats>, SentStats),
) -> Result<ChunkManifest> {
    let counters: &Arc<Counters> = &shared.counters;
    let stats = match fed {
        Ok(stats) => stats,
        Err(err) => {
            counters.take_back(
                sent_before_error.records,
                sent_before_error.bytes,
                sent_before_error.messages,
            );
            if let Err(abort_err) = writer.abort().await {
                tracing::warn!(chunk = chunk.id, error = %abort_err.chain(), "abort failed");
            }
            return Err(err);
        }
    };
    let delivery = match writer.commit().await {
        Ok(d) => d,
        Err(err) => {
            counters.take_back(stats.records, stats.bytes, stats.messages);
            return Err(err);
        }
    };
    if let Err(err) = check_delivery(chunk, &stats, &delivery) {
        counters.take_back(stats.records, stats.bytes, stats.messages);
        return Err(err);
    }
    counters
        .chunks
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    Ok(ChunkManifest {
        chunk_id: chunk.id,
        attempt,
        partition: delivery.partition,
        first_offset: delivery.first_offset,
        last_offset: delivery.last_offset,
        messages: stats.messages,
        records: stats.records,
        bytes: stats.bytes,
        crc32: stats.crc32,
    })
}

/// A commit must account for every message sent, in the planned partition.
fn check_delivery(chunk: &Chunk, stats: &SentStats, delivery: &ChunkDelivery) -> Result<()> {
    if delivery.messages != stats.messages {
        return Err(Error::sink_msg(
            format!(
                "chunk {}: {} messages sent but {} acknowledged",
                chunk.id, stats.messages, delivery.messages
            ),
            true,
        ));
    }
    if delivery.partition != chunk.partition {
        return Err(Error::sink_msg(
            format!(
                "chunk {} was planned for partition {} but landed in {}",
                chunk.id, chunk.partition, delivery.partition
            ),
            false,
        ));
    }
    Ok(())
}

/// Hands out the records of one ordered scan one at a time.
pub(crate) struct ScanCursor {
    stream: RecordStream,
    batch: std::vec::IntoIter<Record>,
}

impl ScanCursor {
    pub(crate) fn new(stream: RecordStream) -> Self {
        ScanCursor {
            stream,
            batch: Vec::new().into_iter(),
        }
    }

    pub(crate) async fn next(&mut self) -> Result<Option<Record>> {
        loop {
            if let Some(record) = self.batch.next() {
                return Ok(Some(record));
            }
            match self.stream.next().await {
                Some(batch) => self.batch = batch?.into_iter(),
                None => return Ok(None),
            }
        }
    }

    /// Skips `n` records (blocks committed by an earlier run).
    pub(crate) async fn skip(&mut self, n: u64) -> Result<()> {
        for _ in 0..n {
            if self.next().await?.is_none() {
                break;
            }
        }
        Ok(())
    }
}
