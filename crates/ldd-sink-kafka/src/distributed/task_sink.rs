//! The sink of one task on a worker: the engine writes the chunk through the worker's
//! transactional producer, and the chunk's commit also writes its result record and the
//! task's consumer offset into the same transaction.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use ldd_core::{ChunkContext, ChunkManifest, ChunkWriter, Delivery, Sink};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::Semaphore;

use super::ownership::Ownership;
use super::schema::{ResultRecord, TaskMessage};
use super::worker::WorkerContext;
use crate::admin::blocking;
use crate::delivery::{ChunkTracker, DeliveryToken};
use crate::error::{Error, Result};
use crate::sink::{KafkaChunkWriter, KafkaProducer, SinkHandle, Transaction, TransactionEnd};

/// Where the task came from and what its commit must include.
pub(crate) struct TaskBinding {
    pub(crate) consumer: Arc<BaseConsumer<WorkerContext>>,
    pub(crate) ownership: Arc<Ownership>,
    pub(crate) tasks_topic: String,
    pub(crate) results_topic: String,
    pub(crate) partition: i32,
    pub(crate) offset: i64,
    pub(crate) worker: String,
    pub(crate) started: Instant,
}

impl TaskBinding {
    /// The offsets to commit with the task: the one after the task's message.
    fn next_offsets(&self) -> Result<TopicPartitionList> {
        let mut offsets = TopicPartitionList::new();
        offsets
            .add_partition_offset(
                &self.tasks_topic,
                self.partition,
                Offset::Offset(self.offset + 1),
            )
            .map_err(|e| Error::kafka("building the task's offset", e))?;
        Ok(offsets)
    }

    /// Produces `record` to the results topic inside the producer's open transaction and
    /// waits for its acknowledgement.
    pub(crate) async fn produce_result(
        &self,
        producer: &Arc<KafkaProducer>,
        record: &ResultRecord,
        timeout: Duration,
    ) -> Result<()> {
        let payload = record.to_json()?;
        let tracker = Arc::new(ChunkTracker::default());
        tracker.sent();
        let token = Box::new(DeliveryToken {
            tracker: tracker.clone(),
            permits: 0,
        });
        let key = record.export_id().to_owned();
        let message = BaseRecord::with_opaque_to(&self.results_topic, token)
            .partition(0)
            .key(&key)
            .payload(&payload);
        if let Err((e, _)) = producer.send(message) {
            tracker.unsent();
            return Err(Error::kafka("producing the chunk's result", e));
        }
        tokio::time::timeout(timeout, tracker.wait())
            .await
            .map_err(|_| Error::Task("the chunk's result was not acknowledged in time".into()))?;
        let summary = tracker.summary();
        if summary.failed > 0 {
            return Err(Error::Task(format!(
                "the chunk's result was not delivered: {}",
                summary.first_error.unwrap_or_default()
            )));
        }
        Ok(())
    }

    /// Adds the task's offset to the open transaction and commits it, unless the task's
    /// partition was revoked meanwhile. Holds the ownership lock throughout, so that a
    /// revocation waits until the commit is done.
    pub(crate) async fn commit_offsets(
        self: &Arc<Self>,
        producer: &Arc<KafkaProducer>,
        timeout: Duration,
    ) -> Result<()> {
        let (binding, producer) = (self.clone(), producer.clone());
        blocking(move || {
            let state = binding.ownership.lock();
            if state.current.as_ref().is_none_or(|c| c.revoked) {
                return Err(Error::Task(
                    "the task's partition was revoked; another worker takes the chunk".into(),
                ));
            }
            let metadata = binding
                .consumer
                .group_metadata()
                .ok_or_else(|| Error::Task("the worker's consumer has no group metadata".into()))?;
            let offsets = binding.next_offsets()?;
            producer
                .send_offsets_to_transaction(&offsets, &metadata, timeout)
                .map_err(|e| Error::kafka("committing the task's offset with the chunk", e))?;
            producer
                .commit_transaction(timeout)
                .map_err(|e| Error::kafka("committing the chunk's transaction", e))?;
            drop(state);
            Ok(())
        })
        .await
    }
}

/// Ends a chunk's transaction with its result record and the task's offset.
struct TaskCommit {
    export_id: String,
    binding: Arc<TaskBinding>,
    timeout: Duration,
}

#[async_trait]
impl TransactionEnd for TaskCommit {
    async fn commit(&self, producer: &Arc<KafkaProducer>, entry: &ChunkManifest) -> Result<()> {
        let record = ResultRecord::Committed {
            export_id: self.export_id.clone(),
            worker: self.binding.worker.clone(),
            chunk: entry.clone(),
            elapsed_ms: self.binding.started.elapsed().as_millis() as u64,
        };
        self.binding
            .produce_result(producer, &record, self.timeout)
            .await?;
        self.binding.commit_offsets(producer, self.timeout).await
    }
}

/// The sink one task's chunk is written to.
pub(crate) struct TaskSink {
    pub(crate) task: Arc<TaskMessage>,
    pub(crate) producer: Arc<KafkaProducer>,
    pub(crate) binding: Arc<TaskBinding>,
    pub(crate) budget: Arc<Semaphore>,
    pub(crate) budget_permits: usize,
}

#[async_trait]
impl Sink for TaskSink {
    fn destination(&self) -> String {
        self.task.destination.topic.clone()
    }

    async fn partition_count(&self) -> ldd_core::Result<u32> {
        Ok(self.task.destination.partitions)
    }

    fn delivery(&self) -> Delivery {
        Delivery::ExactlyOnce
    }

    fn writer_slots(&self, _workers: usize) -> usize {
        1
    }

    async fn open_chunk(
        &self,
        _slot: usize,
        chunk: &ChunkContext,
    ) -> ldd_core::Result<Box<dyn ChunkWriter>> {
        self.producer
            .begin_transaction()
            .map_err(|e| Error::kafka("beginning the chunk's transaction", e))?;
        let timeout = self.task.destination.transaction_timeout();
        let handle = SinkHandle {
            topic: self.task.destination.topic.clone(),
            delivery_timeout: timeout,
            budget: self.budget.clone(),
            budget_permits: self.budget_permits,
        };
        let end = TaskCommit {
            export_id: self.task.export_id.clone(),
            binding: self.binding.clone(),
            timeout,
        };
        Ok(Box::new(KafkaChunkWriter::new(
            handle,
            self.producer.clone(),
            Transaction::External(Arc::new(end)),
            chunk,
            self.task.destination.key,
        )))
    }
}
