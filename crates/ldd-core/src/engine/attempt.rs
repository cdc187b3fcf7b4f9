//! One chunk: its attempts, retries and the manifest entry of the one that committed.

use std::sync::Arc;

use futures::StreamExt;

use super::feeder::SentStats;
use super::progress::{Counters, ExportEvent};
use super::read_ahead::read_ahead;
use super::slots::SlotPool;
use super::Shared;
use crate::chunk::Chunk;
use crate::error::{ChunkFailure, Error, FailureCause, Result};
use crate::manifest::ChunkManifest;
use crate::sink::{ChunkDelivery, ChunkWriter};
use crate::source::RecordStream;
use crate::value::Record;

/// The limits chunks run under: workers read and encode; writer slots are held from a
/// chunk's first message until its commit, so with more writer slots than workers a
/// chunk's commit overlaps the next chunk's reading.
pub(crate) struct Pools {
    pub(crate) workers: tokio::sync::Semaphore,
    pub(crate) writers: SlotPool,
}

/// Runs a range chunk until it commits, fails for good, or the export is cancelled.
pub(crate) async fn run_chunk(
    shared: &Shared,
    pools: &Pools,
    chunk: &Chunk,
) -> Result<ChunkManifest, ChunkOutcome> {
    let policy = shared.options.retry;
    let first = shared.options.first_attempt;
    let mut attempt = first;
    loop {
        match run_attempt(shared, pools, chunk, attempt).await {
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
                    _ = shared.stop.cancelled() => return Err(ChunkOutcome::Cancelled),
                    _ = tokio::time::sleep(policy.backoff(attempt - first)) => {}
                }
                attempt += 1;
            }
            Err(err) => {
                return Err(ChunkOutcome::Failed(ChunkFailure {
                    chunk_id: chunk.id,
                    attempts: attempt - first + 1,
                    error: err.chain(),
                    cause: err.failure_cause().unwrap_or(FailureCause::Internal),
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
    pools: &Pools,
    chunk: &Chunk,
    attempt: u32,
) -> Result<ChunkManifest> {
    let worker = tokio::select! {
        _ = shared.stop.cancelled() => return Err(Error::Cancelled),
        permit = pools.workers.acquire() => permit.map_err(|_| Error::Cancelled)?,
    };
    let slot = tokio::select! {
        _ = shared.stop.cancelled() => return Err(Error::Cancelled),
        slot = pools.writers.acquire() => slot.ok_or(Error::Cancelled)?,
    };
    let mut stream = read_ahead(shared.source.read(&chunk.range).await?);
    let mut writer = shared.open(slot.id(), chunk, attempt).await?;
    let fed = feed_stream(shared, writer.as_mut(), &mut stream).await;
    drop(stream);
    // Waiting for acknowledgements and the commit needs no worker: the next chunk starts
    // reading meanwhile (on another writer slot), so the pipeline never drains.
    drop(worker);
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
                _ = shared.stop.cancelled() => return Err(Error::Cancelled),
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
                if shared.stop.is_cancelled() {
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
    mut writer: Box<dyn ChunkWriter>,
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
            abort_quietly(writer, chunk).await;
            return Err(err);
        }
    };
    let entry = match flush_and_check(writer.as_mut(), chunk, attempt, &stats).await {
        Ok(entry) => entry,
        Err(err) => {
            counters.take_back(stats.records, stats.bytes, stats.messages);
            abort_quietly(writer, chunk).await;
            return Err(err);
        }
    };
    // The entry is recorded as committing before it can become visible, so that a crash
    // right after the commit leaves a record the resume can check against the sink.
    if let Some(store) = &shared.checkpoint {
        if let Err(err) = store.save_committing(&entry).await {
            counters.take_back(stats.records, stats.bytes, stats.messages);
            abort_quietly(writer, chunk).await;
            return Err(stop_for_checkpoint(shared, err));
        }
    }
    if let Err(err) = writer.commit_with(&entry).await {
        counters.take_back(stats.records, stats.bytes, stats.messages);
        return Err(err);
    }
    if let Some(store) = &shared.checkpoint {
        if let Err(err) = store.save_committed(&entry).await {
            return Err(stop_for_checkpoint(shared, err));
        }
    }
    counters
        .chunks
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    shared
        .control
        .emit(ExportEvent::ChunkCommitted(entry.clone()));
    Ok(entry)
}

async fn flush_and_check(
    writer: &mut dyn ChunkWriter,
    chunk: &Chunk,
    attempt: u32,
    stats: &SentStats,
) -> Result<ChunkManifest> {
    let delivery = writer.flush().await?;
    check_delivery(chunk, stats, &delivery)?;
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

async fn abort_quietly(writer: Box<dyn ChunkWriter>, chunk: &Chunk) {
    if let Err(abort_err) = writer.abort().await {
        tracing::warn!(chunk = chunk.id, error = %abort_err.chain(), "abort failed");
    }
}

/// A checkpoint that cannot be written stops the whole export: going on would commit
/// chunks that a resume does not know of.
fn stop_for_checkpoint(shared: &Shared, err: Error) -> Error {
    let message = match err {
        Error::Checkpoint(message) => message,
        other => other.chain(),
    };
    shared.fail_export(Error::Checkpoint(message.clone()));
    Error::Checkpoint(message)
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
