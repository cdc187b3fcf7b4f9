//! Engine behaviour against the in-memory sink: coverage, retries, failures, cancellation.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ldd_core::testing::{Fault, MemorySink};
use ldd_core::{
    decode, export, export_resumable, CheckpointStore, Error, ExportControl, ExportEvent,
    ExportOptions, ExportParts, Format, GeneratorConfig, GeneratorSource, JobCountPartitioner,
    JournalFile, Manifest, Resume, RetryPolicy, Value,
};

fn source(records: u64) -> Arc<GeneratorSource> {
    Arc::new(GeneratorSource::new(GeneratorConfig {
        records,
        points_per_timestamp: 3,
        batch_size: 100,
        ..Default::default()
    }))
}

fn options(format: Format) -> ExportOptions {
    ExportOptions {
        export_id: Some("test-export".into()),
        format,
        batch_bytes: 4096,
        workers: 3,
        retry: RetryPolicy {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(4),
        },
        ..Default::default()
    }
}

/// Reads back every committed message of the manifest's attempts and returns the `seq`
/// values, checking counts and checksums on the way.
/// How many committed copies of a chunk's first message the sink holds.
fn visible_copies(sink: &MemorySink, chunk: &ldd_core::ChunkManifest) -> usize {
    sink.partition_log(chunk.partition)
        .iter()
        .filter(|m| m.context.chunk_id == chunk.chunk_id && m.message.sequence == 0)
        .count()
}

fn read_back(sink: &MemorySink, manifest: &Manifest) -> Vec<i64> {
    let mut seqs = Vec::new();
    for chunk in &manifest.chunks {
        let log = sink.partition_log(chunk.partition);
        let mut crc = crc32fast::Hasher::new();
        let mut records = 0;
        let msgs: Vec<_> = log
            .iter()
            .filter(|m| m.context.chunk_id == chunk.chunk_id && m.context.attempt == chunk.attempt)
            .collect();
        assert_eq!(msgs.len() as u64, chunk.messages);
        for (i, m) in msgs.iter().enumerate() {
            assert_eq!(m.message.sequence as usize, i);
            crc.update(&m.message.payload);
            for rec in decode(manifest.format, &m.message.payload).unwrap() {
                records += 1;
                match rec.get("seq") {
                    Some(Value::Int(s)) => seqs.push(*s),
                    other => panic!("no seq: {other:?}"),
                }
            }
        }
        assert_eq!(records, chunk.records);
        assert_eq!(crc.finalize(), chunk.crc32, "chunk {}", chunk.chunk_id);
    }
    seqs.sort_unstable();
    seqs
}

#[tokio::test]
async fn every_record_lands_exactly_once_in_every_format() {
    for format in [Format::Json, Format::Jsonl, Format::Protobuf] {
        let sink = Arc::new(MemorySink::new(4));
        let manifest = export(
            source(5_000),
            sink.clone(),
            &JobCountPartitioner::default(),
            options(format),
            ExportControl::default(),
        )
        .await
        .unwrap();
        manifest.check_consistency().unwrap();
        assert_eq!(manifest.total_records, 5_000);
        assert_eq!(manifest.counted_records, 5_000);
        assert_eq!(manifest.chunks.len(), 48);
        assert_eq!(manifest.partitions.len(), 4);
        for c in &manifest.chunks {
            assert_eq!(c.partition, c.chunk_id % 4);
        }
        assert_eq!(read_back(&sink, &manifest), (0..5_000).collect::<Vec<_>>());
        if format.is_batched() {
            assert!(
                manifest.total_messages < 5_000 / 10,
                "{format} did not batch"
            );
        } else {
            assert_eq!(manifest.total_messages, 5_000);
        }
    }
}

#[tokio::test]
async fn failed_attempts_are_retried_and_only_the_committed_one_counts() {
    let sink = Arc::new(MemorySink::new(4));
    sink.inject(3, 1, Fault::SendFails { sequence: 2 });
    sink.inject(5, 1, Fault::CommitFails);
    sink.inject(7, 1, Fault::LosesOneMessage);
    sink.inject(7, 2, Fault::CommitFails);
    let retries = Arc::new(Mutex::new(Vec::new()));
    let seen = retries.clone();
    let control = ExportControl {
        observer: Some(Arc::new(move |e: &ExportEvent| {
            if let ExportEvent::ChunkRetrying {
                chunk_id, attempt, ..
            } = e
            {
                seen.lock().unwrap().push((*chunk_id, *attempt));
            }
        })),
        ..Default::default()
    };
    let manifest = export(
        source(5_000),
        sink.clone(),
        &JobCountPartitioner::default(),
        options(Format::Jsonl),
        control,
    )
    .await
    .unwrap();
    let attempts: Vec<(u32, u32)> = manifest
        .chunks
        .iter()
        .filter(|c| c.attempt > 1)
        .map(|c| (c.chunk_id, c.attempt))
        .collect();
    assert_eq!(attempts, vec![(3, 2), (5, 2), (7, 3)]);
    let mut retries = retries.lock().unwrap().clone();
    retries.sort_unstable();
    assert_eq!(retries, vec![(3, 1), (5, 1), (7, 1), (7, 2)]);
    // Chunk 7's first attempt was committed by the sink but not fully acknowledged; its
    // messages stay in the log but the manifest points at attempt 3 only.
    assert_eq!(read_back(&sink, &manifest), (0..5_000).collect::<Vec<_>>());
}

#[tokio::test]
async fn chunks_that_keep_failing_are_reported_not_dropped() {
    let sink = Arc::new(MemorySink::new(4));
    for attempt in 1..=3 {
        sink.inject(2, attempt, Fault::CommitFails);
    }
    sink.inject(9, 1, Fault::Fatal);
    let err = export(
        source(5_000),
        sink.clone(),
        &JobCountPartitioner::default(),
        options(Format::Json),
        ExportControl::default(),
    )
    .await
    .unwrap_err();
    match err {
        Error::ChunksFailed { total, failures } => {
            assert_eq!(total, 48);
            let ids: Vec<(u32, u32)> = failures.iter().map(|f| (f.chunk_id, f.attempts)).collect();
            assert_eq!(ids, vec![(2, 3), (9, 1)]);
            assert!(failures[1].error.contains("injected fatal"));
        }
        other => panic!("expected ChunksFailed, got {other}"),
    }
}

#[tokio::test]
async fn cancellation_stops_the_export_and_aborts_running_chunks() {
    let sink = Arc::new(MemorySink::new(4));
    let control = ExportControl::default();
    let cancel = control.cancel.clone();
    let committed = Arc::new(AtomicU32::new(0));
    let counter = committed.clone();
    let control = ExportControl {
        observer: Some(Arc::new(move |e: &ExportEvent| {
            if matches!(e, ExportEvent::ChunkCommitted(_))
                && counter.fetch_add(1, Ordering::SeqCst) == 1
            {
                cancel.cancel();
            }
        })),
        ..control
    };
    let err = export(
        source(200_000),
        sink.clone(),
        &JobCountPartitioner::default(),
        options(Format::Json),
        control,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::Cancelled), "{err}");
    let done = committed.load(Ordering::SeqCst);
    assert!(
        done < 48,
        "cancel did not stop the export ({done} chunks committed)"
    );
}

#[tokio::test]
async fn unsplittable_sources_are_cut_into_contiguous_blocks() {
    let src = Arc::new(GeneratorSource::new(GeneratorConfig {
        records: 1_001,
        splittable: false,
        batch_size: 64,
        ..Default::default()
    }));
    let sink = Arc::new(MemorySink::new(3));
    let manifest = export(
        src,
        sink.clone(),
        &JobCountPartitioner {
            jobs: 6,
            drop_last: false,
        },
        options(Format::Protobuf),
        ExportControl::default(),
    )
    .await
    .unwrap();
    assert_eq!(manifest.strategy.name, "ordered-scan");
    let sizes: Vec<u64> = manifest.chunks.iter().map(|c| c.records).collect();
    assert_eq!(sizes, vec![167, 167, 167, 167, 167, 166]);
    assert_eq!(read_back(&sink, &manifest), (0..1_001).collect::<Vec<_>>());
    // Contiguous: chunk i holds seq values right after chunk i-1's.
    let firsts: HashSet<u64> = manifest.chunks.iter().map(|c| c.records).collect();
    assert!(!firsts.is_empty());
}

#[tokio::test]
async fn empty_dataset_gives_an_empty_manifest() {
    let sink = Arc::new(MemorySink::new(4));
    let manifest = export(
        source(0),
        sink,
        &JobCountPartitioner::default(),
        options(Format::Json),
        ExportControl::default(),
    )
    .await
    .unwrap();
    assert_eq!(manifest.total_records, 0);
    assert!(manifest.chunks.is_empty() && manifest.partitions.is_empty());
    assert_eq!(
        manifest.spark_offsets().starting_offsets,
        r#"{"memory":{}}"#
    );
}

#[tokio::test]
async fn progress_reports_reach_the_total() {
    let sink = Arc::new(MemorySink::new(2));
    let last = Arc::new(Mutex::new(None));
    let seen = last.clone();
    let control = ExportControl {
        observer: Some(Arc::new(move |e: &ExportEvent| {
            if let ExportEvent::Progress(p) = e {
                *seen.lock().unwrap() = Some(p.clone());
            }
        })),
        ..Default::default()
    };
    export(
        source(3_000),
        sink,
        &JobCountPartitioner::default(),
        options(Format::Jsonl),
        control,
    )
    .await
    .unwrap();
    let p = last
        .lock()
        .unwrap()
        .clone()
        .expect("a final progress event");
    assert_eq!(p.records_done, 3_000);
    assert_eq!(p.records_total, 3_000);
    assert_eq!(p.chunks_done, p.chunks_total);
}

#[tokio::test]
async fn bad_options_are_rejected_before_any_work() {
    let sink = Arc::new(MemorySink::new(2));
    let mut opts = options(Format::Json);
    opts.workers = 0;
    let err = export(
        source(10),
        sink,
        &JobCountPartitioner::default(),
        opts,
        ExportControl::default(),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("workers must be at least 1"));
}

#[tokio::test]
async fn a_resumed_plan_runs_only_the_missing_chunks_under_new_attempt_numbers() {
    // Range chunks, and blocks of one ordered scan (which skips the committed blocks).
    for splittable in [true, false] {
        resume_half_of_an_export(splittable).await;
    }
}

async fn resume_half_of_an_export(splittable: bool) {
    let sink = Arc::new(MemorySink::new(4));
    let partitioner = JobCountPartitioner::default();
    let source = Arc::new(GeneratorSource::new(GeneratorConfig {
        records: 5_000,
        points_per_timestamp: 3,
        batch_size: 100,
        splittable,
        ..Default::default()
    }));
    let parts = |options| ExportParts {
        source: source.clone(),
        sink: sink.clone(),
        options,
        control: ExportControl::default(),
    };
    let plan = ldd_core::plan_export(
        &parts(ExportOptions {
            export_id: Some("resumed".into()),
            ..options(Format::Jsonl)
        }),
        &partitioner,
    )
    .await
    .unwrap();
    assert_eq!(plan.export_id, "resumed");
    let first_run = ldd_core::execute_plan(&plan, parts(options(Format::Jsonl)), Resume::default())
        .await
        .unwrap();
    // Pretend the first run stopped after its even chunks: their messages stay in the
    // partitions, and so do the odd chunks' (an unfinished run leaves such leftovers).
    let kept: Vec<_> = first_run
        .chunks
        .iter()
        .filter(|c| c.chunk_id % 2 == 0)
        .cloned()
        .collect();
    let resumed = ldd_core::execute_plan(
        &plan,
        parts(ExportOptions {
            first_attempt: 4,
            ..options(Format::Jsonl)
        }),
        Resume {
            committed: kept.clone(),
            ..Resume::default()
        },
    )
    .await
    .unwrap();
    resumed.check_consistency().unwrap();
    assert_eq!(resumed.chunks.len(), plan.chunks.len());
    for c in &resumed.chunks {
        let expected_attempt = if c.chunk_id % 2 == 0 { 1 } else { 4 };
        assert_eq!(
            c.attempt, expected_attempt,
            "chunk {} ({splittable})",
            c.chunk_id
        );
    }
    // Kept chunks were not written again: one attempt-1 copy each.
    for c in &kept {
        assert_eq!(visible_copies(&sink, c), 1, "chunk {}", c.chunk_id);
    }
    assert_eq!(read_back(&sink, &resumed), (0..5_000).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_zero_first_attempt_is_refused() {
    let err = export(
        source(10),
        Arc::new(MemorySink::new(1)),
        &JobCountPartitioner::default(),
        ExportOptions {
            first_attempt: 0,
            ..options(Format::Json)
        },
        ExportControl::default(),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("first_attempt"), "{err}");
}

/// A journal whose `save_committed` fails once for one chunk: as if the process died right
/// after the sink committed that chunk and before the checkpoint recorded it.
struct CrashAfterCommit {
    journal: JournalFile,
    chunk_id: u32,
    crashed: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl CheckpointStore for CrashAfterCommit {
    async fn load(&self) -> ldd_core::Result<Option<ldd_core::Checkpoint>> {
        self.journal.load().await
    }
    async fn save_export(&self, export: &ldd_core::ExportRecord) -> ldd_core::Result<()> {
        self.journal.save_export(export).await
    }
    async fn save_run(&self, run: &ldd_core::RunRecord) -> ldd_core::Result<()> {
        self.journal.save_run(run).await
    }
    async fn save_committing(&self, chunk: &ldd_core::ChunkManifest) -> ldd_core::Result<()> {
        self.journal.save_committing(chunk).await
    }
    async fn save_committed(&self, chunk: &ldd_core::ChunkManifest) -> ldd_core::Result<()> {
        if chunk.chunk_id == self.chunk_id
            && !self.crashed.swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            return Err(ldd_core::Error::Checkpoint("disk full".into()));
        }
        self.journal.save_committed(chunk).await
    }
}

#[tokio::test]
async fn a_crash_between_commit_and_checkpoint_neither_loses_nor_repeats_the_chunk() {
    let path = std::env::temp_dir().join(format!("ldd-engine-{}.journal", uuid::Uuid::new_v4()));
    let sink = Arc::new(MemorySink::new(4));
    let parts = ExportParts {
        source: source(5_000),
        sink: sink.clone(),
        options: ExportOptions {
            workers: 2,
            ..options(Format::Jsonl)
        },
        control: ExportControl::default(),
    };
    let store = Arc::new(CrashAfterCommit {
        journal: JournalFile::new(&path),
        chunk_id: 5,
        crashed: Default::default(),
    });
    let partitioner = JobCountPartitioner::default();
    let err = export_resumable(parts.clone(), &partitioner, store.clone())
        .await
        .unwrap_err();
    // The export stops at the failed write, with a clear error, instead of going on.
    assert!(matches!(err, ldd_core::Error::Checkpoint(_)), "{err}");
    assert!(err.to_string().contains("disk full"), "{err}");
    let checkpoint = store.load().await.unwrap().unwrap();
    assert_eq!(
        checkpoint
            .in_doubt
            .iter()
            .map(|c| c.chunk_id)
            .collect::<Vec<_>>(),
        vec![5]
    );
    assert!(checkpoint.committed.len() < 48);

    // The same export again: chunk 5 is visible in the sink, so it is kept, not rerun.
    let manifest = export_resumable(parts, &partitioner, store).await.unwrap();
    manifest.check_consistency().unwrap();
    assert_eq!(manifest.total_records, 5_000);
    assert_eq!(manifest.chunks[5].attempt, 1);
    assert!(
        manifest.chunks.iter().any(|c| c.attempt == 4),
        "later chunks reran"
    );
    // Every chunk is visible exactly once: nothing lost, nothing twice.
    for c in &manifest.chunks {
        assert_eq!(visible_copies(&sink, c), 1, "chunk {}", c.chunk_id);
    }
    assert_eq!(read_back(&sink, &manifest), (0..5_000).collect::<Vec<_>>());
    // The resumed run fenced at least the slots of the first one.
    assert!(sink.prepared_slots() >= 4);
    std::fs::remove_file(&path).unwrap();
}

#[tokio::test]
async fn a_checkpoint_of_another_export_is_refused() {
    let path = std::env::temp_dir().join(format!("ldd-engine-{}.journal", uuid::Uuid::new_v4()));
    let store = Arc::new(JournalFile::new(&path));
    let parts = |records, format| ExportParts {
        source: source(records),
        sink: Arc::new(MemorySink::new(2)),
        options: options(format),
        control: ExportControl::default(),
    };
    let partitioner = JobCountPartitioner::default();
    export_resumable(parts(100, Format::Jsonl), &partitioner, store.clone())
        .await
        .unwrap();
    let err = export_resumable(parts(100, Format::Json), &partitioner, store)
        .await
        .unwrap_err();
    assert!(matches!(err, ldd_core::Error::InvalidInput(_)), "{err}");
    assert!(err.to_string().contains("original settings"), "{err}");
    std::fs::remove_file(&path).unwrap();
}
