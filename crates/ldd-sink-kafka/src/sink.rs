//! The Kafka [`Sink`]: one transactional producer per writer slot (exactly once, the
//! default), or one shared idempotent producer (at least once), with the manifest built from
//! delivery reports.
//!
//! Transactional ids are `<prefix>-<export id>-<slot>`, the same in every run of an export:
//! [`Sink::prepare`] initializes every slot's producer before the first chunk, which fences
//! the producers an interrupted run left and makes the broker abort their open
//! transactions at once, so `read_committed` readers never wait for the transaction timeout.
//! There are twice as many writer slots as workers: a chunk's commit (flush, then the
//! `EndTxn` round trip) overlaps the next chunk's reading on another producer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use ldd_core::sink::header;
use ldd_core::{
    ChunkContext, ChunkDelivery, ChunkManifest, ChunkWriter, Delivery, OutMessage, Sink,
};
use rdkafka::config::FromClientConfigAndContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use tokio::sync::Semaphore;

use crate::admin::{blocking, TopicAdmin};
use crate::config::{KafkaSinkConfig, MessageKey};
use crate::delivery::{permits_for, ChunkTracker, DeliveryContext, DeliveryToken, PERMIT_BYTES};
use crate::error::{Error, Result};

pub(crate) type KafkaProducer = ThreadedProducer<DeliveryContext>;

/// Extra time, beyond the delivery timeout, to wait for the last delivery reports.
const REPORT_GRACE: Duration = Duration::from_secs(30);

/// Transactional writer slots per worker: one streaming, one committing.
const TRANSACTIONAL_SLOTS_PER_WORKER: usize = 2;

/// Writer slots per worker without transactions: the shared producer holds nothing per
/// slot, so chunks awaiting acknowledgements only need to be bounded, not serialized.
const SHARED_SLOTS_PER_WORKER: usize = 4;

/// Writes chunks into one Kafka topic.
pub struct KafkaSink {
    config: KafkaSinkConfig,
    partitions: u32,
    budget: Arc<Semaphore>,
    budget_permits: usize,
    shared: Option<Arc<KafkaProducer>>,
    /// Transactional producers by export id and writer slot; a slot's producer is dropped
    /// after a failed transaction so the next attempt starts clean (a new producer with the
    /// same transactional id fences the old one).
    slots: SlotMap,
}

/// Transactional producers by (export id, writer slot), shared with chunk writers. Each
/// slot's producer is initialized once even when several callers ask at the same time: two
/// producers with one transactional id would fence each other.
type SlotMap = Arc<Mutex<HashMap<(String, usize), SlotCell>>>;
type SlotCell = Arc<tokio::sync::OnceCell<Arc<KafkaProducer>>>;

fn lock_slots(slots: &SlotMap) -> std::sync::MutexGuard<'_, HashMap<(String, usize), SlotCell>> {
    slots.lock().unwrap_or_else(|p| p.into_inner())
}

impl std::fmt::Debug for KafkaSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSink")
            .field("topic", &self.config.topic)
            .field("partitions", &self.partitions)
            .field("delivery", &self.config.delivery)
            .finish()
    }
}

impl KafkaSink {
    /// Validates the configuration, makes sure the topic exists (creating it if asked) and
    /// starts the producer.
    pub async fn connect(config: KafkaSinkConfig) -> Result<Self> {
        config.validate()?;
        let admin = TopicAdmin::new(config.client.clone());
        let partitions = admin
            .ensure_topic(
                &config.topic,
                config.create_partitions,
                config.replication_factor,
            )
            .await?;
        let budget_permits = (config.max_in_flight_bytes / PERMIT_BYTES).max(1);
        let budget = Arc::new(Semaphore::new(budget_permits));
        let shared = if config.delivery == Delivery::ExactlyOnce {
            None
        } else {
            Some(Arc::new(create_producer(&config, None, budget.clone())?))
        };
        Ok(KafkaSink {
            config,
            partitions,
            budget,
            budget_permits,
            shared,
            slots: Arc::new(Mutex::new(HashMap::new())),
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &KafkaSinkConfig {
        &self.config
    }

    fn transactional(&self) -> bool {
        self.config.delivery == Delivery::ExactlyOnce
    }

    /// The slot's transactional producer, created and initialized (which fences any
    /// earlier producer of the same id) on first use.
    async fn slot_producer(&self, export_id: &str, slot: usize) -> Result<Arc<KafkaProducer>> {
        let key = (export_id.to_owned(), slot);
        let cell = lock_slots(&self.slots).entry(key).or_default().clone();
        let producer = cell
            .get_or_try_init(|| async {
                let id = self.config.transactional_id(export_id, slot);
                let producer = Arc::new(create_producer(
                    &self.config,
                    Some(&id),
                    self.budget.clone(),
                )?);
                let p = producer.clone();
                let timeout = self.config.transaction_timeout.max(Duration::from_secs(30));
                blocking(move || {
                    p.init_transactions(timeout).map_err(|e| {
                        Error::kafka("initializing transactions (fencing earlier writers)", e)
                    })
                })
                .await?;
                Ok::<_, Error>(producer)
            })
            .await?;
        Ok(producer.clone())
    }
}

impl Drop for KafkaSink {
    /// Producers are closed on a thread of their own: closing one waits for its poll thread
    /// and broker threads (up to ~100 ms each, measured), and every message is acknowledged
    /// or committed by then, so nobody needs to wait for it.
    fn drop(&mut self) {
        let shared = self.shared.take();
        let slots: Vec<_> = lock_slots(&self.slots)
            .drain()
            .filter_map(|(_, cell)| cell.get().cloned())
            .collect();
        if shared.is_none() && slots.is_empty() {
            return;
        }
        let spawned = std::thread::Builder::new()
            .name("ldd-producer-close".into())
            .spawn(move || drop((shared, slots)));
        if let Err(e) = spawned {
            tracing::debug!("closing producers in place: {e}");
        }
    }
}

pub(crate) fn create_producer(
    config: &KafkaSinkConfig,
    transactional_id: Option<&str>,
    budget: Arc<Semaphore>,
) -> Result<KafkaProducer> {
    let client_config = config.producer_config(transactional_id);
    KafkaProducer::from_config_and_context(&client_config, DeliveryContext { budget })
        .map_err(|e| Error::kafka("creating the Kafka producer", e))
}

#[async_trait]
impl Sink for KafkaSink {
    fn destination(&self) -> String {
        self.config.topic.clone()
    }

    async fn partition_count(&self) -> ldd_core::Result<u32> {
        Ok(self.partitions)
    }

    fn delivery(&self) -> Delivery {
        self.config.delivery
    }

    fn writer_slots(&self, workers: usize) -> usize {
        if self.transactional() {
            workers * TRANSACTIONAL_SLOTS_PER_WORKER
        } else {
            workers * SHARED_SLOTS_PER_WORKER
        }
    }

    /// Initializes every slot's transactional producer at once (in parallel), fencing the
    /// writers of an interrupted run of the same export.
    async fn prepare(&self, export_id: &str, slots: usize) -> ldd_core::Result<()> {
        if !self.transactional() {
            return Ok(());
        }
        let inits = (0..slots).map(|slot| self.slot_producer(export_id, slot));
        for result in futures::future::join_all(inits).await {
            result?;
        }
        Ok(())
    }

    async fn chunk_visible(
        &self,
        export_id: &str,
        chunk: &ChunkManifest,
    ) -> ldd_core::Result<bool> {
        if !self.transactional() {
            return Ok(false);
        }
        let probe = crate::visibility::Probe {
            client: self.config.client.clone(),
            topic: self.config.topic.clone(),
            timeout: self.config.transaction_timeout + REPORT_GRACE,
        };
        let (export_id, chunk) = (export_id.to_owned(), chunk.clone());
        Ok(blocking(move || probe.chunk_visible(&export_id, &chunk)).await?)
    }

    async fn open_chunk(
        &self,
        slot: usize,
        chunk: &ChunkContext,
    ) -> ldd_core::Result<Box<dyn ChunkWriter>> {
        let (producer, transaction) = if self.transactional() {
            let producer = self.slot_producer(&chunk.export_id, slot).await?;
            if let Err(e) = producer.begin_transaction() {
                lock_slots(&self.slots).remove(&(chunk.export_id.clone(), slot));
                return Err(Error::kafka("beginning a transaction", e).into());
            }
            (producer, Transaction::Slot(slot, self.slots.clone()))
        } else {
            let producer = self.shared.clone().ok_or_else(|| {
                ldd_core::Error::sink_msg("the shared producer is missing", false)
            })?;
            (producer, Transaction::None)
        };
        let handle = SinkHandle {
            topic: self.config.topic.clone(),
            delivery_timeout: self.config.message_timeout(self.transactional()),
            budget: self.budget.clone(),
            budget_permits: self.budget_permits,
        };
        Ok(Box::new(KafkaChunkWriter::new(
            handle,
            producer,
            transaction,
            chunk,
            self.config.key,
        )))
    }
}

/// What a chunk writer needs from its sink.
pub(crate) struct SinkHandle {
    pub(crate) topic: String,
    pub(crate) delivery_timeout: Duration,
    pub(crate) budget: Arc<Semaphore>,
    pub(crate) budget_permits: usize,
}

/// How a chunk's transaction ends, for a chunk that is part of a larger transaction (a
/// distributed worker's task: results record and consumer offset commit with it).
#[async_trait]
pub(crate) trait TransactionEnd: Send + Sync {
    /// Adds what must commit with the chunk, then commits the transaction; on an error the
    /// writer aborts it.
    async fn commit(&self, producer: &Arc<KafkaProducer>, entry: &ChunkManifest) -> Result<()>;
}

/// The transaction a chunk writer is in.
pub(crate) enum Transaction {
    /// None: the shared idempotent producer (at least once).
    None,
    /// The transaction of a writer slot of [`KafkaSink`]; a failed one drops the slot's
    /// producer so that the next attempt starts clean.
    Slot(usize, SlotMap),
    /// A transaction that another component ends.
    External(Arc<dyn TransactionEnd>),
}

impl Transaction {
    fn is_some(&self) -> bool {
        !matches!(self, Transaction::None)
    }
}

pub(crate) struct KafkaChunkWriter {
    sink: SinkHandle,
    producer: Arc<KafkaProducer>,
    transaction: Transaction,
    tracker: Arc<ChunkTracker>,
    context: ChunkContext,
    key: Option<String>,
    /// Export id, chunk id, attempt, format.
    static_headers: [String; 4],
}

impl KafkaChunkWriter {
    /// A writer of chunk attempt `chunk` through `producer`, whose transaction (if any) has
    /// begun.
    pub(crate) fn new(
        sink: SinkHandle,
        producer: Arc<KafkaProducer>,
        transaction: Transaction,
        chunk: &ChunkContext,
        key: MessageKey,
    ) -> Self {
        let key = match key {
            MessageKey::ChunkId => Some(chunk.chunk_id.to_string()),
            MessageKey::None => None,
        };
        KafkaChunkWriter {
            sink,
            producer,
            transaction,
            tracker: Arc::new(ChunkTracker::default()),
            context: chunk.clone(),
            key,
            static_headers: [
                chunk.export_id.clone(),
                chunk.chunk_id.to_string(),
                chunk.attempt.to_string(),
                chunk.format.as_str().to_owned(),
            ],
        }
    }

    fn headers(&self, message: &OutMessage) -> OwnedHeaders {
        let [export_id, chunk_id, attempt, format] = &self.static_headers;
        let (sequence, records) = (message.sequence.to_string(), message.records.to_string());
        fn h<'a>(key: &'a str, value: &'a str) -> Header<'a, &'a [u8]> {
            Header {
                key,
                value: Some(value.as_bytes()),
            }
        }
        OwnedHeaders::new_with_capacity(6)
            .insert(h(header::EXPORT_ID, export_id))
            .insert(h(header::CHUNK_ID, chunk_id))
            .insert(h(header::ATTEMPT, attempt))
            .insert(h(header::SEQUENCE, &sequence))
            .insert(h(header::RECORDS, &records))
            .insert(h(header::FORMAT, format))
    }

    /// Hands one message to the producer, retrying while its queue is full.
    async fn produce(&self, message: &OutMessage, permits: u32) -> ldd_core::Result<()> {
        let headers = self.headers(message);
        self.tracker.sent();
        let token = Box::new(DeliveryToken {
            tracker: self.tracker.clone(),
            permits,
        });
        let mut record = BaseRecord::with_opaque_to(&self.sink.topic, token)
            .partition(self.context.partition as i32)
            .payload(&message.payload)
            .headers(headers);
        if let Some(key) = &self.key {
            record = record.key(key);
        }
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    // The byte budget should prevent this; if librdkafka's own queue is
                    // full anyway (e.g. a tiny passthrough limit), give it time to drain.
                    record = back;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err((err, _)) => {
                    self.tracker.unsent();
                    self.sink.budget.add_permits(permits as usize);
                    return Err(Error::kafka(
                        format!("producing chunk {}", self.context.chunk_id),
                        err,
                    )
                    .into());
                }
            }
        }
    }

    /// Waits for every outstanding delivery report, bounded by the delivery timeout.
    async fn wait_for_reports(&self) -> Result<()> {
        let limit = self.sink.delivery_timeout + REPORT_GRACE;
        tokio::time::timeout(limit, self.tracker.wait())
            .await
            .map_err(|_| {
                Error::Task(format!(
                    "chunk {}: delivery reports still missing after {} s",
                    self.context.chunk_id,
                    limit.as_secs()
                ))
            })
    }

    /// A producer whose transaction failed is dropped, so the slot starts clean next time.
    fn discard_producer(&self) {
        if let Transaction::Slot(slot, slots) = &self.transaction {
            lock_slots(slots).remove(&(self.context.export_id.clone(), *slot));
        }
    }

    async fn run_transaction_op(
        &self,
        what: &'static str,
        op: fn(&KafkaProducer, Duration) -> rdkafka::error::KafkaResult<()>,
    ) -> Result<()> {
        let producer = self.producer.clone();
        let timeout = self.sink.delivery_timeout;
        blocking(move || op(&producer, timeout).map_err(|e| Error::kafka(what, e))).await
    }
}

impl KafkaChunkWriter {
    /// After a failed commit: aborts (best effort) and drops a slot's producer.
    async fn abort_if_failed(&self, committed: Result<()>) -> ldd_core::Result<()> {
        if let Err(err) = committed {
            let _ = self
                .run_transaction_op("aborting", |p, t| p.abort_transaction(t))
                .await;
            self.discard_producer();
            return Err(err.into());
        }
        Ok(())
    }
}

#[async_trait]
impl ChunkWriter for KafkaChunkWriter {
    async fn send(&mut self, messages: Vec<OutMessage>) -> ldd_core::Result<()> {
        // One budget acquisition per batch; each message returns its own share on delivery.
        let shares: Vec<u32> = messages
            .iter()
            .map(|m| permits_for(m.payload.len(), self.sink.budget_permits))
            .collect();
        let total: u32 = shares
            .iter()
            .sum::<u32>()
            .min(self.sink.budget_permits as u32);
        self.sink
            .budget
            .acquire_many(total)
            .await
            .map_err(|_| ldd_core::Error::sink_msg("the sink is shut down", false))?
            .forget();
        // Shares above the capped total (a batch larger than the whole budget) are not
        // returned twice: the last messages carry only what is left.
        let mut left = total;
        for (message, share) in messages.iter().zip(shares) {
            let permits = share.min(left);
            left -= permits;
            if let Err(e) = self.produce(message, permits).await {
                // Return what the unsent messages hold.
                self.sink.budget.add_permits(left as usize);
                return Err(e);
            }
        }
        Ok(())
    }

    async fn flush(&mut self) -> ldd_core::Result<ChunkDelivery> {
        self.wait_for_reports().await?;
        let summary = self.tracker.summary();
        if summary.failed > 0 {
            return Err(ldd_core::Error::sink_msg(
                format!(
                    "chunk {}: {} of {} messages were not delivered: {}",
                    self.context.chunk_id,
                    summary.failed,
                    summary.failed + summary.acked,
                    summary.first_error.unwrap_or_default()
                ),
                true,
            ));
        }
        let partition = summary
            .partition
            .map_or(self.context.partition, |p| p as u32);
        Ok(ChunkDelivery {
            partition,
            first_offset: summary.first_offset,
            last_offset: summary.last_offset,
            messages: summary.acked,
        })
    }

    async fn commit(self: Box<Self>) -> ldd_core::Result<()> {
        match &self.transaction {
            Transaction::None => Ok(()),
            Transaction::Slot(..) => {
                // Every message is acknowledged already (flush), so this is the EndTxn
                // round trip.
                let committed = self
                    .run_transaction_op("committing the chunk's transaction", |p, t| {
                        p.commit_transaction(t)
                    })
                    .await;
                self.abort_if_failed(committed).await
            }
            Transaction::External(_) => Err(ldd_core::Error::sink_msg(
                "this chunk's transaction commits with its manifest entry (commit_with)",
                false,
            )),
        }
    }

    async fn commit_with(self: Box<Self>, entry: &ChunkManifest) -> ldd_core::Result<()> {
        match &self.transaction {
            Transaction::External(end) => {
                let committed = end.commit(&self.producer, entry).await;
                self.abort_if_failed(committed).await
            }
            _ => self.commit().await,
        }
    }

    async fn abort(self: Box<Self>) -> ldd_core::Result<()> {
        if self.transaction.is_some() {
            let result = self
                .run_transaction_op("aborting the chunk's transaction", |p, t| {
                    p.abort_transaction(t)
                })
                .await;
            if result.is_err() {
                self.discard_producer();
            }
            result?;
        }
        // Without a transaction, messages already queued may still land; the manifest names
        // the committed attempt, so readers skip them. Wait so their budget comes back.
        self.wait_for_reports().await?;
        Ok(())
    }
}
