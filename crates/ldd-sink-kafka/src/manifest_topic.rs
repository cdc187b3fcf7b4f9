//! The manifest topic: every export's feed and final manifest, keyed by export id, so that a
//! consumer can find an export, and follow it while it runs, with nothing but Kafka.
//!
//! The topic has one partition, so an export's entries are in the order they were
//! announced. Each message is keyed by the export id and carries a `ldd-kind` header:
//!
//! | `ldd-kind` | payload |
//! |---|---|
//! | `chunk` | a [`FeedEntry::Chunk`] as JSON: one committed chunk |
//! | `failed` | a [`FeedEntry::Failed`] as JSON |
//! | `manifest` (or no header: written before there was a feed) | the final [`Manifest`] as JSON |
//!
//! A reader that wants only manifests takes the newest `manifest` message of its key; a
//! follower reads every entry of its key ([`tail_feed`]). Entries are small (a few hundred
//! bytes per chunk), so the topic stays small; compacting it keeps each export's last entry,
//! which is its manifest once it succeeded.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ldd_core::feed::{chunk_announcer, fan_out, FeedEntry};
use ldd_core::{ExportEvent, ExportObserver, Format, Manifest};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};

use crate::admin::{blocking, TopicAdmin};
use crate::client::{consumer_failure, ClientErrors, KafkaClient};
use crate::error::{Error, Result};

/// Default name of the manifest topic.
pub const DEFAULT_MANIFEST_TOPIC: &str = "ldd.manifests";

/// The header naming what a manifest-topic message holds.
pub const KIND_HEADER: &str = "ldd-kind";

/// What a manifest-topic message holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Chunk,
    Failed,
    Manifest,
}

impl Kind {
    fn of(entry: &FeedEntry) -> Kind {
        match entry {
            FeedEntry::Chunk(_) => Kind::Chunk,
            FeedEntry::Failed { .. } => Kind::Failed,
            FeedEntry::Finished(_) => Kind::Manifest,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Chunk => "chunk",
            Kind::Failed => "failed",
            Kind::Manifest => "manifest",
        }
    }

    /// The kind of a message; `None` for kinds of a newer ldd (to be skipped).
    fn of_message(msg: &BorrowedMessage<'_>) -> Option<Kind> {
        let Some(headers) = msg.headers() else {
            return Some(Kind::Manifest);
        };
        let Some(header) = headers.iter().find(|h| h.key == KIND_HEADER) else {
            return Some(Kind::Manifest);
        };
        match header.value {
            Some(b"chunk") => Some(Kind::Chunk),
            Some(b"failed") => Some(Kind::Failed),
            Some(b"manifest") => Some(Kind::Manifest),
            _ => None,
        }
    }
}

/// The message payload of an entry: a final manifest is written bare, as readers of the
/// manifest topic have always read it.
fn payload_of(entry: &FeedEntry) -> Result<Vec<u8>> {
    let encoded = match entry {
        FeedEntry::Finished(manifest) => serde_json::to_vec(manifest),
        other => serde_json::to_vec(other),
    };
    encoded.map_err(|e| Error::Decode(e.to_string()))
}

fn entry_of(kind: Kind, payload: &[u8]) -> Result<FeedEntry> {
    let parsed = match kind {
        Kind::Manifest => {
            serde_json::from_slice::<Manifest>(payload).map(|m| FeedEntry::Finished(Box::new(m)))
        }
        Kind::Chunk | Kind::Failed => serde_json::from_slice::<FeedEntry>(payload),
    };
    parsed.map_err(|e| Error::Decode(format!("a `{}` entry is not valid: {e}", kind.name())))
}

/// Announces an export's entries to the manifest topic.
///
/// Sending only queues the message (librdkafka sends it in the background, idempotently,
/// with `acks=all`), so [`FeedPublisher::observer`] can sit on the engine's event path;
/// [`FeedPublisher::finish`] and [`FeedPublisher::fail`] wait until everything is acked.
pub struct FeedPublisher {
    producer: ThreadedProducer<DefaultProducerContext>,
    topic: String,
    /// The export being announced, once its plan is known.
    export_id: Mutex<Option<String>>,
}

impl FeedPublisher {
    /// Connects to the cluster `client` names, creating the one-partition manifest `topic`
    /// if needed.
    pub async fn connect(client: &KafkaClient, topic: &str) -> Result<Self> {
        client.validate()?;
        crate::config::validate_topic_name(topic)?;
        TopicAdmin::new(client.clone())
            .ensure_topic(topic, Some(1), 1)
            .await?;
        let producer = client
            .manifest_producer_config()
            .create()
            .map_err(|e| Error::kafka("creating the manifest producer", e))?;
        Ok(FeedPublisher {
            producer,
            topic: topic.to_owned(),
            export_id: Mutex::new(None),
        })
    }

    /// Queues one entry.
    pub fn announce(&self, entry: &FeedEntry) -> Result<()> {
        let payload = payload_of(entry)?;
        let kind = Kind::of(entry);
        let headers = OwnedHeaders::new().insert(Header {
            key: KIND_HEADER,
            value: Some(kind.name()),
        });
        self.producer
            .send(
                BaseRecord::to(&self.topic)
                    .key(entry.export_id())
                    .payload(&payload)
                    .headers(headers),
            )
            .map_err(|(e, _)| Error::kafka(format!("announcing a `{}` entry", kind.name()), e))
    }

    /// An observer that announces every committed chunk of an export into `topic` (the
    /// export's destination) in `format`, and remembers the export's id for
    /// [`FeedPublisher::fail`]. A chunk that cannot be announced is only logged: followers
    /// take it from the final manifest.
    pub fn observer(
        self: &Arc<Self>,
        topic: impl Into<String>,
        format: Format,
    ) -> Arc<dyn ExportObserver> {
        let publisher = self.clone();
        let announcer = chunk_announcer(topic, format, move |entry| {
            if let Err(e) = publisher.announce(&entry) {
                tracing::warn!(error = %e, "a committed chunk could not be announced");
            }
        });
        let publisher = self.clone();
        let remember_id = Arc::new(move |event: &ExportEvent| {
            if let ExportEvent::Planned { export_id, .. } = event {
                *publisher
                    .export_id
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()) = Some(export_id.clone());
            }
        });
        fan_out(vec![remember_id, announcer])
    }

    /// Announces the final manifest and waits until every entry is acked.
    pub async fn finish(self: &Arc<Self>, manifest: &Manifest) -> Result<()> {
        self.announce(&FeedEntry::Finished(Box::new(manifest.clone())))?;
        self.flush("publishing the manifest").await
    }

    /// Announces that the export failed and waits until every entry is acked. The export is
    /// the one [`FeedPublisher::observer`] saw planned, else `export_id`; with neither, no
    /// follower can be waiting for it and nothing is announced.
    pub async fn fail(self: &Arc<Self>, export_id: Option<&str>, error: &str) -> Result<()> {
        let known = self
            .export_id
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let Some(export_id) = known.or_else(|| export_id.map(str::to_owned)) else {
            return Ok(());
        };
        self.announce(&FeedEntry::Failed {
            export_id,
            error: error.to_owned(),
        })?;
        self.flush("announcing the failure").await
    }

    async fn flush(self: &Arc<Self>, what: &'static str) -> Result<()> {
        let publisher = self.clone();
        blocking(move || {
            publisher
                .producer
                .flush(Duration::from_secs(30))
                .map_err(|e| Error::kafka(what, e))
        })
        .await
    }
}

/// Publishes a manifest (creating the one-partition manifest topic if needed).
pub async fn publish_manifest(
    client: &KafkaClient,
    topic: &str,
    manifest: &Manifest,
) -> Result<()> {
    Arc::new(FeedPublisher::connect(client, topic).await?)
        .finish(manifest)
        .await
}

/// A consumer of the manifest topic's one partition, from its beginning.
fn manifest_reader(
    client: &KafkaClient,
    topic: &str,
    what: &str,
) -> Result<BaseConsumer<ClientErrors>> {
    let consumer: BaseConsumer<ClientErrors> = client
        .manifest_reader_config()
        .create_with_context(ClientErrors::default())
        .map_err(|e| Error::kafka(format!("creating the {what}"), e))?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .map_err(|e| Error::kafka("building the assignment", e))?;
    consumer
        .assign(&tpl)
        .map_err(|e| Error::kafka("assigning the manifest topic", e))?;
    Ok(consumer)
}

/// The manifest topic's high watermark (the offset after its newest message).
fn high_watermark(consumer: &BaseConsumer<ClientErrors>, topic: &str) -> Result<i64> {
    consumer
        .fetch_watermarks(topic, 0, Duration::from_secs(15))
        .map(|(_, high)| high)
        .map_err(|e| consumer_failure(consumer, format!("reading topic `{topic}`"), e))
}

/// Finds the newest manifest of `export_id` in the manifest topic.
pub async fn fetch_manifest(
    client: &KafkaClient,
    topic: &str,
    export_id: &str,
) -> Result<Manifest> {
    client.validate()?;
    let (client, topic, export_id) = (client.clone(), topic.to_owned(), export_id.to_owned());
    blocking(move || {
        let consumer = manifest_reader(&client, &topic, "manifest reader")?;
        let high = high_watermark(&consumer, &topic)?;
        let mut found = None;
        let deadline = Instant::now() + Duration::from_secs(60);
        while high > 0 && Instant::now() < deadline {
            match consumer.poll(Duration::from_millis(200)) {
                Some(Ok(msg)) => {
                    if msg.key() == Some(export_id.as_bytes())
                        && Kind::of_message(&msg) == Some(Kind::Manifest)
                    {
                        found = msg.payload().map(<[u8]>::to_vec);
                    }
                    if msg.offset() + 1 >= high {
                        break;
                    }
                }
                Some(Err(KafkaError::PartitionEOF(_))) => break,
                Some(Err(e)) => return Err(Error::kafka("reading the manifest topic", e)),
                None => {}
            }
        }
        let payload = found.ok_or_else(|| {
            Error::Decode(format!(
                "no manifest for export `{export_id}` in topic `{topic}`"
            ))
        })?;
        serde_json::from_slice(&payload)
            .map_err(|e| Error::Decode(format!("manifest of `{export_id}` is not valid: {e}")))
    })
    .await
}

/// Follows the entries of `export_id` in the manifest topic, from the first, on a thread of
/// its own; the [`Feed`] yields them in order and ends after the final manifest or a failure.
/// The export may start later: the feed waits for it (and creates the topic if need be).
///
/// A failure that a later run of the export outlived (it was resumed) is not passed on: of
/// the entries already in the topic when following starts, a `failed` one counts only when
/// no other entry of the export comes after it.
pub async fn tail_feed(client: &KafkaClient, topic: &str, export_id: &str) -> Result<Feed> {
    client.validate()?;
    crate::config::validate_topic_name(topic)?;
    TopicAdmin::new(client.clone())
        .ensure_topic(topic, Some(1), 1)
        .await?;
    // A small buffer: the follower keeps up, and a stalled follower stops the reading.
    let (tx, rx) = sync_channel(1024);
    let stop = Arc::new(AtomicBool::new(false));
    let tail = FeedTail {
        client: client.clone(),
        topic: topic.to_owned(),
        export_id: export_id.to_owned(),
        tx,
        stop: stop.clone(),
    };
    std::thread::Builder::new()
        .name("ldd-feed".into())
        .spawn(move || tail.run())
        .map_err(|e| Error::Task(format!("starting the feed reader: {e}")))?;
    Ok(Feed { rx, stop })
}

/// The entries of one export, as [`tail_feed`] reads them. Dropping it stops the reading.
pub struct Feed {
    rx: Receiver<Result<FeedEntry>>,
    stop: Arc<AtomicBool>,
}

impl Iterator for Feed {
    type Item = Result<FeedEntry>;

    /// Blocks until the next entry; `None` once the feed ended.
    fn next(&mut self) -> Option<Self::Item> {
        self.rx.recv().ok()
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The thread of [`tail_feed`].
struct FeedTail {
    client: KafkaClient,
    topic: String,
    export_id: String,
    tx: SyncSender<Result<FeedEntry>>,
    stop: Arc<AtomicBool>,
}

impl FeedTail {
    fn run(self) {
        if let Err(e) = self.read() {
            let _ = self.tx.send(Err(e));
        }
    }

    fn read(&self) -> Result<()> {
        let consumer = manifest_reader(&self.client, &self.topic, "feed reader")?;
        // Entries before this offset were there when following started.
        let history_end = high_watermark(&consumer, &self.topic)?;
        let mut caught_up = history_end == 0;
        let mut pending_failure: Option<FeedEntry> = None;
        while !self.stop.load(Ordering::Relaxed) {
            let msg = match consumer.poll(Duration::from_millis(200)) {
                None => continue,
                Some(Err(KafkaError::PartitionEOF(_))) => {
                    caught_up = true;
                    match pending_failure.take() {
                        Some(failure) => {
                            self.pass_on(failure);
                            return Ok(());
                        }
                        None => continue,
                    }
                }
                Some(Err(e)) => {
                    // librdkafka retries by itself; a broker that is away only delays us.
                    tracing::warn!(error = %e, "reading the manifest topic");
                    continue;
                }
                Some(Ok(msg)) => msg,
            };
            if msg.offset() + 1 >= history_end {
                caught_up = true;
            }
            if msg.key() != Some(self.export_id.as_bytes()) {
                continue;
            }
            let Some(kind) = Kind::of_message(&msg) else {
                continue;
            };
            let entry = entry_of(kind, msg.payload().unwrap_or_default())?;
            if matches!(entry, FeedEntry::Failed { .. }) && !caught_up {
                pending_failure = Some(entry);
                continue;
            }
            pending_failure = None;
            if !self.pass_on(entry) {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Sends an entry on; answers whether to go on reading.
    fn pass_on(&self, entry: FeedEntry) -> bool {
        let last = entry.is_last();
        self.tx.send(Ok(entry)).is_ok() && !last
    }
}
