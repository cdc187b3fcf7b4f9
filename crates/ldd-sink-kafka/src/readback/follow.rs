//! Following an export: reading and verifying each chunk as soon as its commit is announced,
//! while the export still runs.
//!
//! Readers (one consumer each) take chunks from a queue in the order they were announced and
//! read exactly the chunk's offsets. When the final manifest arrives it is the authority: a
//! chunk it names that was never announced, or announced with another attempt or other
//! offsets, is read now; announced chunks it does not name are left out of the report.
//! So the report is the same as that of [`read_back`](super::read_back) over the final
//! manifest, only most of the reading is done before the export ends.
//!
//! Records go to the output as they are read, so a chunk announced with an entry the
//! manifest then replaces (an export only does that when a chunk committed twice, which an
//! exactly-once export never does) reaches the output twice; the report counts it once.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::AtomicU64;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Mutex;
use std::time::Instant;

use ldd_core::feed::{CommittedChunk, FeedEntry};
use ldd_core::{ChunkManifest, Manifest, PartitionManifest};

use super::reader::{GroupReader, PartitionOutcome, Target};
use super::{Hooks, PartitionReport, ReadBackConfig, ReadBackReport};
use crate::error::{Error, Result};

/// What following an export ended with.
#[derive(Debug, Clone)]
pub struct FollowOutcome {
    /// The export's final manifest.
    pub manifest: Manifest,
    /// What reading found, over the final manifest.
    pub report: ReadBackReport,
    /// Chunks that had been read before the final manifest arrived.
    pub chunks_read_early: u64,
}

/// A chunk and the reading of it.
type ChunkResult = (ChunkManifest, Result<Vec<PartitionOutcome>>);

/// Follows export `export_id` through `feed` (entries in the order the export announced
/// them; other exports' entries are ignored) until its final manifest arrives and every
/// chunk is verified. Blocking: call it from a thread or `spawn_blocking`.
///
/// Fails when the feed ends without a final manifest, or announces that the export failed.
pub fn follow(
    export_id: &str,
    feed: impl IntoIterator<Item = Result<FeedEntry>>,
    config: &ReadBackConfig,
    hooks: Option<&Hooks<'_>>,
) -> Result<FollowOutcome> {
    config.validate()?;
    let hooks = hooks.copied().unwrap_or_default();
    let started = Instant::now();
    let done_records = AtomicU64::new(0);
    let (jobs_tx, jobs_rx) = channel::<CommittedChunk>();
    let (results_tx, results_rx) = channel::<ChunkResult>();
    let jobs_rx = Mutex::new(jobs_rx);
    let readers = config.parallelism.max(1);
    // A chunk just committed may not be readable yet (its commit markers, or another
    // chunk's open transaction in the partition, hold the last stable offset back): poll
    // for it briskly instead of in the default 500 ms long polls.
    let mut config = config.clone();
    config
        .librdkafka
        .entry("fetch.wait.max.ms".into())
        .or_insert_with(|| "10".into());
    let config = &config;
    std::thread::scope(|scope| {
        for _ in 0..readers {
            let (jobs_rx, results_tx, config, hooks, done_records) =
                (&jobs_rx, results_tx.clone(), config, &hooks, &done_records);
            scope.spawn(move || {
                ChunkReader {
                    config,
                    hooks,
                    done_records,
                }
                .serve(jobs_rx, &results_tx)
            });
        }
        drop(results_tx);
        // Dropping `jobs_tx` (also on an early return) lets the readers end.
        let ended = dispatch(export_id, feed, jobs_tx);
        let results: Vec<ChunkResult> = results_rx.iter().collect();
        let (manifest, early) = ended?;
        if let Some(output) = hooks.output {
            output.flush()?;
        }
        let report = assemble(&manifest, results, started)?;
        Ok(FollowOutcome {
            manifest,
            report,
            chunks_read_early: early,
        })
    })
}

/// Hands announced chunks to the readers until the final manifest; then hands them the
/// manifest's chunks that were not read as the manifest names them. Answers the manifest and
/// how many of its chunks were handed out before it arrived.
fn dispatch(
    export_id: &str,
    feed: impl IntoIterator<Item = Result<FeedEntry>>,
    jobs: Sender<CommittedChunk>,
) -> Result<(Manifest, u64)> {
    // Every entry handed out per chunk: a chunk may be announced more than once.
    let mut handed_out: HashMap<u32, Vec<ChunkManifest>> = HashMap::new();
    for entry in feed {
        let entry = entry?;
        if entry.export_id() != export_id {
            continue;
        }
        match entry {
            FeedEntry::Chunk(chunk) => {
                let seen = handed_out.entry(chunk.chunk.chunk_id).or_default();
                if seen.contains(&chunk.chunk) {
                    continue; // announced twice (e.g. by a resumed run)
                }
                seen.push(chunk.chunk.clone());
                send(&jobs, chunk)?;
            }
            FeedEntry::Failed { error, .. } => {
                return Err(Error::Decode(format!(
                    "export `{export_id}` failed: {error}; once it is resumed, follow it again"
                )))
            }
            FeedEntry::Finished(manifest) => {
                manifest
                    .check_consistency()
                    .map_err(|e| Error::Decode(e.to_string()))?;
                let mut early = 0;
                for chunk in &manifest.chunks {
                    if handed_out
                        .get(&chunk.chunk_id)
                        .is_some_and(|seen| seen.contains(chunk))
                    {
                        early += 1;
                        continue;
                    }
                    send(
                        &jobs,
                        CommittedChunk {
                            export_id: manifest.export_id.clone(),
                            topic: manifest.topic.clone(),
                            format: manifest.format,
                            chunk: chunk.clone(),
                        },
                    )?;
                }
                return Ok((*manifest, early));
            }
        }
    }
    Err(Error::Decode(format!(
        "the feed of export `{export_id}` ended before its final manifest"
    )))
}

fn send(jobs: &Sender<CommittedChunk>, chunk: CommittedChunk) -> Result<()> {
    jobs.send(chunk)
        .map_err(|_| Error::Task("every chunk reader has stopped".into()))
}

/// One reader: reads one chunk after the other, each with a consumer of its own.
///
/// Reusing one consumer for the next chunk meant replacing its assignment, and with it
/// waiting for the fetch in flight or for a paused partition's fetch back-off: ~1 s for
/// every other chunk on the real broker, ten times the reading itself. A new consumer costs
/// a few milliseconds, and the old one closes on a thread of its own.
struct ChunkReader<'a> {
    config: &'a ReadBackConfig,
    hooks: &'a Hooks<'a>,
    done_records: &'a AtomicU64,
}

impl ChunkReader<'_> {
    fn serve(self, jobs: &Mutex<Receiver<CommittedChunk>>, results: &Sender<ChunkResult>) {
        loop {
            let job = jobs.lock().unwrap_or_else(|p| p.into_inner()).recv();
            let Ok(job) = job else { break };
            let outcome = self.read(&job);
            if results.send((job.chunk, outcome)).is_err() {
                break;
            }
        }
    }

    fn read(&self, job: &CommittedChunk) -> Result<Vec<PartitionOutcome>> {
        let c = &job.chunk;
        let (Some(first_offset), Some(last_offset)) = (c.first_offset, c.last_offset) else {
            return Ok(Vec::new()); // an empty chunk has nothing to read
        };
        let chunks = [c.clone()];
        let partition = [PartitionManifest {
            partition: c.partition,
            first_offset,
            last_offset,
            messages: c.messages,
            records: c.records,
        }];
        let target = Target {
            export_id: &job.export_id,
            topic: &job.topic,
            format: job.format,
            chunks: &chunks,
            total_records: 0,
        };
        let began = Instant::now();
        let outcome = GroupReader {
            target: &target,
            partitions: partition.iter().collect(),
            config: self.config,
            hooks: self.hooks,
            done_records: self.done_records,
            export_ended: false,
        }
        .run();
        tracing::debug!(
            chunk = c.chunk_id,
            partition = c.partition,
            elapsed_ms = began.elapsed().as_millis() as u64,
            "chunk read"
        );
        outcome
    }
}

/// The report over the final manifest from the chunks read.
fn assemble(
    manifest: &Manifest,
    results: Vec<ChunkResult>,
    started: Instant,
) -> Result<ReadBackReport> {
    let mut report = ReadBackReport {
        export_id: manifest.export_id.clone(),
        expected_records: manifest.total_records,
        chunks_total: manifest.chunks.len() as u64,
        ..Default::default()
    };
    let wanted: HashMap<u32, &ChunkManifest> =
        manifest.chunks.iter().map(|c| (c.chunk_id, c)).collect();
    let mut partitions: BTreeMap<u32, PartitionReport> = manifest
        .partitions
        .iter()
        .map(|p| {
            let report = PartitionReport {
                partition: p.partition,
                ..Default::default()
            };
            (p.partition, report)
        })
        .collect();
    let mut counted = HashSet::new();
    for (chunk, outcome) in results {
        // A chunk read as announced but then superseded in the manifest does not count, and
        // a chunk counts once.
        if wanted.get(&chunk.chunk_id) != Some(&&chunk) || !counted.insert(chunk.chunk_id) {
            continue;
        }
        if chunk.messages == 0 {
            report.chunks_verified += 1;
            continue;
        }
        for outcome in outcome? {
            let p = partitions.entry(outcome.report.partition).or_default();
            p.partition = outcome.report.partition;
            p.messages += outcome.report.messages;
            p.records += outcome.report.records;
            p.skipped += outcome.report.skipped;
            report.records += outcome.report.records;
            report.messages += outcome.report.messages;
            report.bytes += outcome.bytes;
            report.chunks_verified += outcome.chunks_verified;
            report.problems.extend(outcome.problems);
        }
    }
    report.partitions = partitions.into_values().collect();
    report.elapsed_ms = started.elapsed().as_millis() as u64;
    Ok(report)
}
