//! Following an export while it runs, hermetically on the embedded cluster.
//!
//! The tests prove that:
//!
//! - `follow`, fed the chunks an export announces while it runs and then its final manifest,
//!   verifies every record exactly once, and counts every chunk as read before the manifest;
//! - the final manifest is the authority: an announced chunk that the manifest names with
//!   another attempt or checksum is read again as the manifest names it and the stale reading
//!   is not counted, chunks announced twice are read once, and other exports' entries
//!   (including their failures) are ignored; a chunk read early that the manifest confirms is
//!   really verified (a bad checksum is reported, not waved through);
//! - a feed that ends without a manifest, that announces the export's failure, or that yields
//!   an error makes `follow` fail, saying why;
//! - the manifest topic carries a feed: `FeedPublisher` announces chunks (from an export's
//!   observer and by hand), failures and the manifest; `tail_feed` yields an export's chunks
//!   and manifest and does not stop at a failure that a later entry of the export outlived,
//!   but does yield and end at a failure that is the export's last entry (in the history, or
//!   announced while following); `follow` over `tail_feed` verifies the export, and
//!   `fetch_manifest` finds the manifest, not a chunk entry.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::mpsc::{channel, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ldd_core::feed::{chunk_announcer, CommittedChunk, FeedEntry};
use ldd_core::{
    export, ExportControl, ExportObserver, ExportOptions, Format, GeneratorConfig, GeneratorSource,
    JobCountPartitioner, Manifest,
};
use ldd_sink_kafka::manifest_topic::{fetch_manifest, tail_feed, FeedPublisher};
use ldd_sink_kafka::readback::{follow, FollowOutcome, Problem, ReadBackConfig};
use ldd_sink_kafka::KafkaClient;
use ldd_sink_kafka::{EmbeddedCluster, Error, KafkaSink, KafkaSinkConfig};

/// How long any one wait of these tests may take before it counts as a hang.
const PATIENCE: Duration = Duration::from_secs(90);

fn random_topic(prefix: &str) -> String {
    format!("ldd-test-{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// Exports `records` generated records as jsonl into a new `partitions`-partition `topic`
/// in `jobs - 1` chunks (rounded to a multiple of `partitions`), as export `export_id`.
async fn run_export(
    cluster: &EmbeddedCluster,
    topic: &str,
    partitions: u32,
    records: u64,
    jobs: usize,
    export_id: &str,
    observer: Option<Arc<dyn ExportObserver>>,
) -> Manifest {
    cluster
        .create_topic(topic, partitions as i32, 1)
        .expect("data topic created");
    let sink = KafkaSink::connect(KafkaSinkConfig {
        client: cluster.bootstrap_servers().into(),
        topic: topic.into(),
        create_partitions: Some(partitions),
        linger_ms: 5,
        ..Default::default()
    })
    .await
    .expect("sink connects");
    let source = Arc::new(GeneratorSource::new(GeneratorConfig {
        records,
        ..Default::default()
    }));
    let manifest = export(
        source,
        Arc::new(sink),
        &JobCountPartitioner {
            jobs,
            drop_last: true,
        },
        ExportOptions {
            export_id: Some(export_id.into()),
            format: Format::Jsonl,
            workers: 3,
            batch_bytes: 16 * 1024,
            ..Default::default()
        },
        ExportControl {
            observer,
            ..Default::default()
        },
    )
    .await
    .expect("export succeeds");
    assert_eq!(manifest.export_id, export_id);
    assert_eq!(manifest.total_records, records);
    manifest.check_consistency().unwrap();
    manifest
}

fn readback_config(cluster: &EmbeddedCluster) -> ReadBackConfig {
    ReadBackConfig {
        idle_timeout: Duration::from_secs(20),
        parallelism: 2,
        ..ReadBackConfig::new(cluster.bootstrap_servers())
    }
}

/// A chunk entry of `manifest`'s export for `chunk`.
fn chunk_entry(manifest: &Manifest, chunk: &ldd_core::ChunkManifest) -> FeedEntry {
    FeedEntry::Chunk(CommittedChunk {
        export_id: manifest.export_id.clone(),
        topic: manifest.topic.clone(),
        format: manifest.format,
        chunk: chunk.clone(),
    })
}

/// Runs `follow` on a thread of its own over `feed`; the receiver answers its outcome.
fn follow_on_thread(
    export_id: &str,
    feed: impl IntoIterator<Item = ldd_sink_kafka::Result<FeedEntry>> + Send + 'static,
    config: ReadBackConfig,
) -> std::sync::mpsc::Receiver<ldd_sink_kafka::Result<FollowOutcome>> {
    let (tx, rx) = channel();
    let export_id = export_id.to_owned();
    std::thread::spawn(move || {
        let _ = tx.send(follow(&export_id, feed, &config, None));
    });
    rx
}

/// Follows `export_id` through a fixed list of entries, failing the test on a hang.
async fn follow_entries(
    export_id: &str,
    entries: Vec<FeedEntry>,
    config: &ReadBackConfig,
) -> ldd_sink_kafka::Result<FollowOutcome> {
    let rx = follow_on_thread(
        export_id,
        entries.into_iter().map(Ok).collect::<Vec<_>>(),
        config.clone(),
    );
    tokio::task::spawn_blocking(move || rx.recv_timeout(PATIENCE).expect("follow ends"))
        .await
        .unwrap()
}

/// Reads a feed on a thread of its own, handing its entries on.
fn forward(
    feed: ldd_sink_kafka::manifest_topic::Feed,
) -> std::sync::mpsc::Receiver<ldd_sink_kafka::Result<FeedEntry>> {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for entry in feed {
            if tx.send(entry).is_err() {
                break;
            }
        }
    });
    rx
}

/// The entries `rx` hands on until the feed ends; fails the test when it has not ended
/// within [`PATIENCE`].
async fn rest_of(
    rx: std::sync::mpsc::Receiver<ldd_sink_kafka::Result<FeedEntry>>,
) -> Vec<FeedEntry> {
    tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + PATIENCE;
        let mut entries = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(entry) => entries.push(entry.expect("feed entry")),
                Err(RecvTimeoutError::Disconnected) => return entries,
                Err(RecvTimeoutError::Timeout) => {
                    panic!("the feed did not end; so far: {entries:?}")
                }
            }
        }
    })
    .await
    .unwrap()
}

/// Every entry of a feed, which must end within [`PATIENCE`].
async fn drain(feed: ldd_sink_kafka::manifest_topic::Feed) -> Vec<FeedEntry> {
    rest_of(forward(feed)).await
}

/// The chunk entries among `entries`, in order.
fn chunks_of(entries: &[FeedEntry]) -> Vec<ldd_core::ChunkManifest> {
    entries
        .iter()
        .filter_map(|e| match e {
            FeedEntry::Chunk(c) => Some(c.chunk.clone()),
            _ => None,
        })
        .collect()
}

/// A follower reading alongside a running export verifies it exactly once, having read
/// every chunk as announced before the manifest arrived.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follows_an_export_while_it_runs() {
    const RECORDS: u64 = 20_000;
    let cluster = EmbeddedCluster::start(1).unwrap();
    let topic = random_topic("follow");
    let export_id = "follow-live";

    let (tx, rx) = channel::<FeedEntry>();
    let announced = Arc::new(Mutex::new(Vec::new()));
    let (announce_tx, seen) = (Mutex::new(tx.clone()), announced.clone());
    let observer = chunk_announcer(topic.clone(), Format::Jsonl, move |entry| {
        seen.lock().unwrap().push(entry.clone());
        let _ = announce_tx.lock().unwrap().send(entry);
    });
    let outcome = follow_on_thread(export_id, rx.into_iter().map(Ok), readback_config(&cluster));

    let manifest = run_export(&cluster, &topic, 4, RECORDS, 17, export_id, Some(observer)).await;
    assert_eq!(manifest.chunks.len(), 16);
    assert_eq!(manifest.partitions.len(), 4);
    tx.send(FeedEntry::Finished(Box::new(manifest.clone())))
        .unwrap();

    let outcome = tokio::task::spawn_blocking(move || outcome.recv_timeout(PATIENCE))
        .await
        .unwrap()
        .expect("follow ends")
        .expect("follow succeeds");
    // The announcer saw every chunk exactly as the manifest names it.
    let mut announced = chunks_of(&announced.lock().unwrap());
    announced.sort_by_key(|c| c.chunk_id);
    assert_eq!(announced, manifest.chunks);

    let report = &outcome.report;
    assert!(report.is_verified(), "{:?}", report.problems);
    assert_eq!(outcome.manifest, manifest);
    assert_eq!(report.export_id, export_id);
    assert_eq!(report.records, RECORDS);
    assert_eq!(report.messages, manifest.total_messages);
    assert_eq!(report.chunks_verified, 16);
    assert_eq!(report.chunks_total, 16);
    assert_eq!(report.partitions.len(), 4);
    assert_eq!(
        report.partitions.iter().map(|p| p.records).sum::<u64>(),
        RECORDS
    );
    assert_eq!(outcome.chunks_read_early, 16);
}

/// Announced chunks that the manifest names differently are read again as it names them;
/// the stale readings, duplicate announcements and other exports' entries do not count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_final_manifest_settles_stale_announcements() {
    const RECORDS: u64 = 6_000;
    let cluster = EmbeddedCluster::start(1).unwrap();
    let topic = random_topic("settle");
    let export_id = "settle";
    let manifest = run_export(&cluster, &topic, 2, RECORDS, 9, export_id, None).await;
    let n = manifest.chunks.len();
    assert_eq!(n, 8);
    let config = readback_config(&cluster);

    let mut other = manifest.clone();
    other.export_id = "someone-else".into();
    let mut wrong_attempt = manifest.chunks[0].clone();
    wrong_attempt.attempt += 7;
    let mut wrong_crc = manifest.chunks[1].clone();
    wrong_crc.crc32 ^= 1;

    let mut entries = vec![
        // Another export's entries, its failure included, are not this export's.
        chunk_entry(&other, &other.chunks[0]),
        FeedEntry::Failed {
            export_id: other.export_id.clone(),
            error: "not ours".into(),
        },
        FeedEntry::Finished(Box::new(other.clone())),
        chunk_entry(&manifest, &wrong_attempt),
        chunk_entry(&manifest, &wrong_crc),
    ];
    for chunk in &manifest.chunks[2..] {
        entries.push(chunk_entry(&manifest, chunk));
    }
    // Announced twice (a resumed run announcing again): read once.
    entries.push(chunk_entry(&manifest, &manifest.chunks[2]));
    entries.push(FeedEntry::Finished(Box::new(manifest.clone())));

    let outcome = follow_entries(export_id, entries, &config).await.unwrap();
    let report = &outcome.report;
    assert!(report.is_verified(), "{:?}", report.problems);
    assert_eq!(outcome.manifest, manifest);
    assert_eq!(report.records, RECORDS);
    assert_eq!(report.messages, manifest.total_messages);
    assert_eq!(report.chunks_verified, n as u64);
    assert_eq!(report.chunks_total, n as u64);
    assert_eq!(
        report.partitions.iter().map(|p| p.skipped).sum::<u64>(),
        0,
        "superseded readings are left out entirely"
    );
    // Chunks 0 and 1 were announced otherwise than the manifest names them: not early.
    assert_eq!(outcome.chunks_read_early, n as u64 - 2);

    // The right entry, then another one for the same chunk, then the manifest naming the
    // first: the chunk was read as named already, and counts once.
    let mut entries: Vec<FeedEntry> = manifest
        .chunks
        .iter()
        .map(|c| chunk_entry(&manifest, c))
        .collect();
    entries.push(chunk_entry(&manifest, &wrong_attempt));
    entries.push(FeedEntry::Finished(Box::new(manifest.clone())));
    let outcome = follow_entries(export_id, entries, &config).await.unwrap();
    assert!(
        outcome.report.is_verified(),
        "{:?}",
        outcome.report.problems
    );
    assert_eq!(outcome.report.records, RECORDS);
    assert_eq!(outcome.report.chunks_verified, n as u64);
    assert_eq!(outcome.chunks_read_early, n as u64);

    // Only stale entries and then the manifest: nothing was read early.
    let entries = vec![
        chunk_entry(&manifest, &wrong_attempt),
        FeedEntry::Finished(Box::new(manifest.clone())),
    ];
    let outcome = follow_entries(export_id, entries, &config).await.unwrap();
    assert!(
        outcome.report.is_verified(),
        "{:?}",
        outcome.report.problems
    );
    assert_eq!(outcome.report.records, RECORDS);
    assert_eq!(outcome.chunks_read_early, 0);

    // A chunk read early is verified for real: when the manifest names the bad checksum
    // too, the reading is counted and reports it.
    let mut tampered = manifest.clone();
    tampered.chunks[1].crc32 = wrong_crc.crc32;
    let entries = vec![
        chunk_entry(&tampered, &wrong_crc),
        FeedEntry::Finished(Box::new(tampered.clone())),
    ];
    let outcome = follow_entries(export_id, entries, &config).await.unwrap();
    assert_eq!(outcome.chunks_read_early, 1);
    assert!(!outcome.report.is_verified());
    assert_eq!(outcome.report.chunks_verified, n as u64 - 1);
    assert!(
        outcome.report.problems.iter().any(
            |p| matches!(p, Problem::Checksum { chunk_id, .. } if *chunk_id == wrong_crc.chunk_id)
        ),
        "{:?}",
        outcome.report.problems
    );
}

/// Without a final manifest there is no verified export: a feed that ends early, announces
/// the export's failure, or breaks makes `follow` fail and say why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feed_without_a_manifest_fails() {
    let cluster = EmbeddedCluster::start(1).unwrap();
    let topic = random_topic("unfinished");
    let export_id = "unfinished";
    let manifest = run_export(&cluster, &topic, 2, 2_000, 5, export_id, None).await;
    let config = readback_config(&cluster);
    let chunks: Vec<FeedEntry> = manifest
        .chunks
        .iter()
        .map(|c| chunk_entry(&manifest, c))
        .collect();

    // Every chunk, but no manifest (another export's manifest does not count).
    let mut other = manifest.clone();
    other.export_id = "someone-else".into();
    let mut entries = chunks.clone();
    entries.push(FeedEntry::Finished(Box::new(other)));
    let err = follow_entries(export_id, entries, &config)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("ended before its final manifest"), "{err}");
    assert!(err.contains(export_id), "{err}");

    let err = follow_entries(export_id, Vec::new(), &config)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("ended before its final manifest"), "{err}");

    // The export failed after announcing some chunks; the manifest after it is not read.
    let mut entries = chunks[..2].to_vec();
    entries.push(FeedEntry::Failed {
        export_id: export_id.into(),
        error: "chunk 3 failed after 3 attempts: disk full".into(),
    });
    entries.push(FeedEntry::Finished(Box::new(manifest.clone())));
    let err = follow_entries(export_id, entries, &config)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("chunk 3 failed after 3 attempts: disk full"),
        "{err}"
    );
    assert!(err.contains(export_id), "{err}");

    // A feed that breaks (the manifest topic cannot be read) passes its error on.
    let feed = vec![
        Ok(chunks[0].clone()),
        Err(Error::Decode("the feed broke".into())),
        Ok(FeedEntry::Finished(Box::new(manifest.clone()))),
    ];
    let rx = follow_on_thread(export_id, feed, config.clone());
    let err = tokio::task::spawn_blocking(move || rx.recv_timeout(PATIENCE).unwrap())
        .await
        .unwrap()
        .unwrap_err()
        .to_string();
    assert!(err.contains("the feed broke"), "{err}");

    // The same chunks with the manifest verify: the failures above are the feed's alone.
    let mut entries = chunks;
    entries.push(FeedEntry::Finished(Box::new(manifest.clone())));
    let outcome = follow_entries(export_id, entries, &config).await.unwrap();
    assert!(
        outcome.report.is_verified(),
        "{:?}",
        outcome.report.problems
    );
    assert_eq!(outcome.report.records, 2_000);
    assert_eq!(outcome.chunks_read_early, manifest.chunks.len() as u64);
}

/// The manifest topic as a feed, end to end on the embedded cluster.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifest_topic_feed_round_trip() {
    const RECORDS: u64 = 4_000;
    let cluster = EmbeddedCluster::start(1).unwrap();
    let brokers = KafkaClient::new(cluster.bootstrap_servers());
    let data = random_topic("data");
    let manifests = random_topic("manifests");
    let (a, b, c) = ("feed-a", "feed-b", "feed-c");

    // The mock cluster has no CreateTopics (admin creation times out), so the topic that
    // `connect` and `tail_feed` would create is created up front; they find it existing.
    cluster.create_topic(&manifests, 1, 1).unwrap();
    let publisher = Arc::new(FeedPublisher::connect(&brokers, &manifests).await.unwrap());
    let manifest = run_export(
        &cluster,
        &data,
        2,
        RECORDS,
        9,
        a,
        Some(publisher.observer(data.clone(), Format::Jsonl)),
    )
    .await;
    let n = manifest.chunks.len();
    assert_eq!(n, 8);
    // The observer announced every chunk of A; then A fails (the publisher knows the id
    // from the plan)...
    publisher
        .fail(None, "the first run of A died")
        .await
        .unwrap();
    // ... B announces a chunk and fails for good, with a publisher of its own ...
    let mut manifest_b = manifest.clone();
    manifest_b.export_id = b.into();
    let publisher_b = Arc::new(FeedPublisher::connect(&brokers, &manifests).await.unwrap());
    publisher_b
        .announce(&chunk_entry(&manifest_b, &manifest_b.chunks[0]))
        .unwrap();
    publisher_b.fail(Some(b), "B gave up").await.unwrap();
    // ... and A is resumed: it announces its last two chunks again, then its manifest.
    for chunk in &manifest.chunks[n - 2..] {
        publisher.announce(&chunk_entry(&manifest, chunk)).unwrap();
    }
    publisher.finish(&manifest).await.unwrap();

    // A's feed: every chunk, the two again, the manifest; the outlived failure is not passed on.
    let entries = drain(tail_feed(&brokers, &manifests, a).await.unwrap()).await;
    assert_eq!(entries.len(), n + 3, "{entries:?}");
    assert!(
        entries
            .iter()
            .all(|e| e.export_id() == a && !matches!(e, FeedEntry::Failed { .. })),
        "{entries:?}"
    );
    let mut announced = chunks_of(&entries);
    let again = announced.split_off(n);
    assert_eq!(again, manifest.chunks[n - 2..]);
    announced.sort_by_key(|c| c.chunk_id);
    assert_eq!(announced, manifest.chunks);
    match entries.last() {
        Some(FeedEntry::Finished(m)) => assert_eq!(**m, manifest),
        other => panic!("the feed does not end with the manifest: {other:?}"),
    }
    for entry in &entries {
        if let FeedEntry::Chunk(c) = entry {
            assert_eq!((c.topic.as_str(), c.format), (data.as_str(), Format::Jsonl));
        }
    }

    // Following A through the manifest topic verifies it.
    let rx = follow_on_thread(
        a,
        tail_feed(&brokers, &manifests, a).await.unwrap(),
        readback_config(&cluster),
    );
    let outcome = tokio::task::spawn_blocking(move || rx.recv_timeout(PATIENCE).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(
        outcome.report.is_verified(),
        "{:?}",
        outcome.report.problems
    );
    assert_eq!(outcome.report.records, RECORDS);
    assert_eq!(outcome.chunks_read_early, n as u64);
    assert_eq!(outcome.manifest, manifest);

    // The manifest, not a chunk entry; B has none.
    let fetched = fetch_manifest(&brokers, &manifests, a).await.unwrap();
    assert_eq!(fetched, manifest);
    let err = fetch_manifest(&brokers, &manifests, b)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("no manifest"), "{err}");

    // B's failure is its last entry in the history (A's entries follow it): passed on, and
    // the feed ends.
    let entries = drain(tail_feed(&brokers, &manifests, b).await.unwrap()).await;
    assert_eq!(
        entries,
        vec![
            chunk_entry(&manifest_b, &manifest_b.chunks[0]),
            FeedEntry::Failed {
                export_id: b.into(),
                error: "B gave up".into(),
            },
        ]
    );
    let err = follow_entries(b, entries, &readback_config(&cluster))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("B gave up"), "{err}");

    // C starts after its follower: a failure announced while following (not in the history
    // the feed started with) ends the feed, and what C announces after it is not passed on.
    let mut manifest_c = manifest.clone();
    manifest_c.export_id = c.into();
    let rx = forward(tail_feed(&brokers, &manifests, c).await.unwrap());
    let publisher_c = Arc::new(FeedPublisher::connect(&brokers, &manifests).await.unwrap());
    let first = chunk_entry(&manifest_c, &manifest_c.chunks[0]);
    publisher_c.announce(&first).unwrap();
    // The feed fixes the end of its history before it reads anything, so whatever is
    // announced after it handed on an entry lies beyond that end.
    let got = tokio::task::spawn_blocking(move || (rx.recv_timeout(PATIENCE), rx))
        .await
        .unwrap();
    let (entry, rx) = got;
    assert_eq!(entry.expect("C's first chunk is passed on").unwrap(), first);
    publisher_c.fail(Some(c), "C died").await.unwrap();
    publisher_c
        .announce(&chunk_entry(&manifest_c, &manifest_c.chunks[1]))
        .unwrap();
    publisher_c.finish(&manifest_c).await.unwrap();
    let entries = rest_of(rx).await;
    assert_eq!(
        entries,
        vec![FeedEntry::Failed {
            export_id: c.into(),
            error: "C died".into(),
        }]
    );
}
