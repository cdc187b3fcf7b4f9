//! The coordinator of a distributed export: plan, publish the plan and the tasks in one
//! transaction, then build the manifest from the results topic alone.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::Utc;
use ldd_core::manifest::{ManifestHeader, Timings};
use ldd_core::{
    plan_export, ChunkFailure, ChunkManifest, Delivery, Error as CoreError, ExportControl,
    ExportEvent, ExportParts, ExportPlan, Manifest, Partitioner, Progress, TaskSource,
};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

use super::schema::{Destination, PlanRecord, PlannedChunk, ResultRecord, TaskMessage};
use super::topics::{GroupTopics, DEFAULT_TASK_PARTITIONS};
use crate::admin::{blocking, TopicAdmin};
use crate::client::KafkaClient;
use crate::config::KafkaSinkConfig;
use crate::error::{Error, Result};

/// How often the coordinator reports progress and logs its status line.
const PROGRESS_EVERY: Duration = Duration::from_millis(500);
const STATUS_EVERY: Duration = Duration::from_secs(5);

/// What a distributed export needs beyond a local one.
#[derive(Debug, Clone)]
pub struct GroupExport {
    /// The cluster (the coordinator's own client settings).
    pub client: KafkaClient,
    /// The worker group.
    pub group: String,
    /// What the workers read: the generator's settings or a connection name and dataset.
    pub task_source: TaskSource,
    /// Prefix of the coordinator's transactional id, `<prefix>-coord-<group>-<export id>`.
    pub transactional_id_prefix: String,
    /// Partitions of the tasks topic when the coordinator creates it.
    pub task_partitions: u32,
    /// Replication factor of the group's topics when the coordinator creates them.
    pub replication_factor: u16,
}

impl GroupExport {
    /// An export through `group` on `client`'s cluster whose workers read `task_source`.
    pub fn new(client: KafkaClient, group: impl Into<String>, task_source: TaskSource) -> Self {
        GroupExport {
            client,
            group: group.into(),
            task_source,
            transactional_id_prefix: "ldd".into(),
            task_partitions: DEFAULT_TASK_PARTITIONS,
            replication_factor: KafkaSinkConfig::default().replication_factor,
        }
    }
}

/// Runs export `parts` on the workers of `group`: plans with `parts.source` (unless the
/// results topic already holds this export's plan: then it only waits, which is how a
/// restarted coordinator resumes), publishes the tasks, waits for every chunk's result and
/// returns the manifest. Cancelling `parts.control` stops the waiting only: the workers
/// go on, and running the same export id again picks the results up.
pub async fn run_distributed(
    parts: ExportParts,
    sink: &KafkaSinkConfig,
    partitioner: &dyn Partitioner,
    group: &GroupExport,
) -> ldd_core::Result<Manifest> {
    parts.options.validate()?;
    let topics = GroupTopics::new(&group.group)?;
    let export_id = parts
        .options
        .export_id
        .clone()
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let task_partitions = topics
        .ensure(
            &TopicAdmin::new(group.client.clone()),
            group.task_partitions,
            group.replication_factor,
        )
        .await?;
    // Fence first: an earlier coordinator's unfinished publication is aborted before the
    // results are read, so what is read is final.
    let producer = transactional_producer(group, &export_id).await?;
    let reader = ResultsReader::open(&group.client, &topics.results)?;
    let (reader, mut tally) = {
        let export_id = export_id.clone();
        blocking(move || {
            let mut tally = Tally::new(export_id);
            reader.read_to_end(&mut tally)?;
            Ok((reader, tally))
        })
        .await?
    };
    let control = parts.control.clone();
    match &tally.plan {
        Some((_, plan)) => {
            tracing::info!(
                export = %export_id,
                group = %group.group,
                committed = tally.committed.len(),
                chunks = plan.chunks.len(),
                "the export is already published to the group; waiting for its results"
            );
        }
        None => {
            let options = ldd_core::ExportOptions {
                export_id: Some(export_id.clone()),
                ..parts.options.clone()
            };
            let parts = ExportParts { options, ..parts };
            let plan = plan_export(&parts, partitioner).await?;
            if !plan.splittable {
                return Err(CoreError::InvalidInput(format!(
                    "{} can only be read as one ordered scan ({}), which one process must do: \
                     export it without --group",
                    parts.source.describe(),
                    plan.strategy
                        .reason
                        .as_deref()
                        .unwrap_or("it cannot be split")
                )));
            }
            let destination = Destination::new(
                sink,
                plan.partitions,
                parts.options.format,
                parts.options.batch_bytes,
            );
            let record = plan_record(&plan, parts.source.describe(), destination.clone());
            let plan_offset = publish(
                &producer,
                &topics,
                task_partitions,
                &plan,
                &record,
                &group.task_source,
                &destination,
                parts.options.retry.max_attempts,
            )
            .await?;
            tracing::info!(export = %export_id, group = %group.group, chunks = plan.chunks.len(), tasks = %topics.tasks, "tasks published");
            tally.plan = Some((plan_offset, record));
        }
    }
    drop(producer);
    if let Some((_, plan)) = &tally.plan {
        let left: Vec<_> = plan
            .chunks
            .iter()
            .filter(|c| !tally.has_result(c.id))
            .collect();
        control.emit(ExportEvent::Planned {
            export_id: export_id.clone(),
            chunks: left.len(),
            records: left.iter().map(|c| c.expected_records).sum(),
            total_chunks: plan.chunks.len(),
            total_records: plan.total_records,
            partitions: plan.destination.partitions,
            strategy: plan.strategy.name.clone(),
        });
        for chunk in tally.committed.values() {
            control.emit(ExportEvent::ChunkCommitted(chunk.clone()));
        }
    }
    let tally =
        blocking(move || Ok(reader.wait_for_all(&mut tally, &control).map(|()| tally))).await??;
    tally.into_manifest()
}

async fn transactional_producer(group: &GroupExport, export_id: &str) -> Result<FutureProducer> {
    let id = format!(
        "{}-coord-{}-{export_id}",
        group.transactional_id_prefix, group.group
    );
    let producer: FutureProducer = group
        .client
        .coordinator_producer_config(&id)
        .create()
        .map_err(|e| Error::kafka("creating the coordinator's producer", e))?;
    blocking(move || {
        producer
            .init_transactions(Duration::from_secs(60))
            .map_err(|e| Error::kafka("initializing the coordinator's transactions", e))?;
        Ok(producer)
    })
    .await
}

fn plan_record(plan: &ExportPlan, source: String, destination: Destination) -> PlanRecord {
    PlanRecord {
        export_id: plan.export_id.clone(),
        total_records: plan.total_records,
        strategy: plan.strategy.clone(),
        chunks: plan
            .chunks
            .iter()
            .map(|c| PlannedChunk {
                id: c.id,
                partition: c.partition,
                expected_records: c.expected_records,
            })
            .collect(),
        source,
        destination,
        started_at: Utc::now().to_rfc3339(),
    }
}

/// Publishes the plan and one task per chunk in one transaction; returns the plan's offset.
/// Chunk `i` goes to task partition `i mod partitions`, so that chunks spread evenly over
/// the workers.
#[allow(clippy::too_many_arguments)]
async fn publish(
    producer: &FutureProducer,
    topics: &GroupTopics,
    task_partitions: u32,
    plan: &ExportPlan,
    record: &PlanRecord,
    source: &TaskSource,
    destination: &Destination,
    max_attempts: u32,
) -> Result<i64> {
    producer
        .begin_transaction()
        .map_err(|e| Error::kafka("beginning the publication", e))?;
    let published = async {
        let payload = ResultRecord::Plan(record.clone()).to_json()?;
        let plan_offset = producer
            .send(
                FutureRecord::to(&topics.results)
                    .partition(0)
                    .key(&plan.export_id)
                    .payload(&payload),
                Duration::from_secs(60),
            )
            .await
            .map_err(|(e, _)| Error::kafka("publishing the plan", e))?
            .offset;
        let tasks: Vec<(String, Vec<u8>, i32)> = plan
            .chunks
            .iter()
            .enumerate()
            .map(|(i, chunk)| {
                let task = TaskMessage {
                    export_id: plan.export_id.clone(),
                    plan_offset,
                    chunk: chunk.clone(),
                    source: source.clone(),
                    destination: destination.clone(),
                    max_attempts,
                };
                let payload = serde_json::to_vec(&task)
                    .map_err(|e| Error::Decode(format!("encoding a task: {e}")))?;
                Ok((
                    task.key(),
                    payload,
                    (i as u32 % task_partitions.max(1)) as i32,
                ))
            })
            .collect::<Result<_>>()?;
        let sends = tasks.iter().map(|(key, payload, partition)| {
            producer.send(
                FutureRecord::to(&topics.tasks)
                    .partition(*partition)
                    .key(key)
                    .payload(payload),
                Duration::from_secs(60),
            )
        });
        for sent in futures::future::join_all(sends).await {
            sent.map_err(|(e, _)| Error::kafka("publishing a task", e))?;
        }
        Ok::<_, Error>(plan_offset)
    }
    .await;
    let (producer, timeout) = (producer.clone(), Duration::from_secs(60));
    match published {
        Ok(plan_offset) => {
            blocking(move || {
                producer
                    .commit_transaction(timeout)
                    .map_err(|e| Error::kafka("committing the publication", e))
            })
            .await?;
            Ok(plan_offset)
        }
        Err(err) => {
            let _ = blocking(move || {
                producer
                    .abort_transaction(timeout)
                    .map_err(|e| Error::kafka("aborting the publication", e))
            })
            .await;
            Err(err)
        }
    }
}

/// What the results topic says about one export.
struct Tally {
    export_id: String,
    plan: Option<(i64, PlanRecord)>,
    committed: BTreeMap<u32, ChunkManifest>,
    failed: BTreeMap<u32, ChunkFailure>,
    /// Chunks committed by each worker.
    workers: BTreeMap<String, u64>,
    /// New commits since the last drain, for events.
    fresh: Vec<ChunkManifest>,
}

impl Tally {
    fn new(export_id: String) -> Self {
        Tally {
            export_id,
            plan: None,
            committed: BTreeMap::new(),
            failed: BTreeMap::new(),
            workers: BTreeMap::new(),
            fresh: Vec::new(),
        }
    }

    fn has_result(&self, chunk: u32) -> bool {
        self.committed.contains_key(&chunk) || self.failed.contains_key(&chunk)
    }

    fn complete(&self) -> bool {
        self.plan
            .as_ref()
            .is_some_and(|(_, plan)| plan.chunks.iter().all(|c| self.has_result(c.id)))
    }

    fn take(&mut self, offset: i64, record: ResultRecord) {
        if record.export_id() != self.export_id {
            return;
        }
        match record {
            ResultRecord::Plan(plan) => {
                if self.plan.is_none() {
                    self.plan = Some((offset, plan));
                } else if self.plan.as_ref().is_some_and(|(at, _)| *at == offset) {
                    // This coordinator's own publication, read back.
                } else {
                    tracing::warn!(export = %self.export_id, offset, "a second plan for this export is ignored");
                }
            }
            ResultRecord::Started {
                chunk_id, worker, ..
            } => {
                tracing::debug!(export = %self.export_id, chunk = chunk_id, %worker, "chunk attempt started");
            }
            ResultRecord::Committed { worker, chunk, .. } => {
                if self.committed.contains_key(&chunk.chunk_id) {
                    // Fencing should make this impossible; the first result is the one
                    // the manifest names.
                    tracing::warn!(export = %self.export_id, chunk = chunk.chunk_id, %worker, "a second committed result for a chunk is ignored");
                    return;
                }
                self.failed.remove(&chunk.chunk_id);
                *self.workers.entry(worker).or_default() += 1;
                self.fresh.push(chunk.clone());
                self.committed.insert(chunk.chunk_id, chunk);
            }
            ResultRecord::Failed {
                failure, worker, ..
            } => {
                if !self.committed.contains_key(&failure.chunk_id) {
                    tracing::warn!(export = %self.export_id, chunk = failure.chunk_id, %worker, error = %failure.error, "chunk failed");
                    self.failed.insert(failure.chunk_id, failure);
                }
            }
        }
    }

    fn progress(&self, started: Instant) -> Progress {
        let (records_total, chunks_total) = self
            .plan
            .as_ref()
            .map_or((0, 0), |(_, p)| (p.total_records, p.chunks.len() as u64));
        let records_done: u64 = self.committed.values().map(|c| c.records).sum();
        let elapsed = started.elapsed();
        let rate = records_done as f64 / elapsed.as_secs_f64().max(1e-3);
        Progress {
            records_done,
            records_total,
            bytes_done: self.committed.values().map(|c| c.bytes).sum(),
            messages_done: self.committed.values().map(|c| c.messages).sum(),
            chunks_done: self.committed.len() as u64,
            chunks_total,
            elapsed_ms: elapsed.as_millis() as u64,
            records_per_sec: rate,
            eta_ms: (rate > 0.0).then(|| {
                (records_total.saturating_sub(records_done) as f64 / rate * 1000.0) as u64
            }),
        }
    }

    fn into_manifest(self) -> ldd_core::Result<Manifest> {
        let Some((_, plan)) = self.plan else {
            return Err(CoreError::InvalidInput(
                "the results topic holds no plan for this export".into(),
            ));
        };
        if !self.failed.is_empty() {
            return Err(CoreError::ChunksFailed {
                total: plan.chunks.len(),
                failures: self.failed.into_values().collect(),
            });
        }
        let started_ms = chrono::DateTime::parse_from_rfc3339(&plan.started_at)
            .map(|t| {
                (Utc::now() - t.with_timezone(&Utc))
                    .num_milliseconds()
                    .max(0) as u64
            })
            .unwrap_or(0);
        let header = ManifestHeader {
            export_id: plan.export_id,
            topic: plan.destination.topic,
            format: plan.destination.format,
            delivery: Delivery::ExactlyOnce,
            source: plan.source,
            counted_records: plan.total_records,
            strategy: plan.strategy.clone(),
            timings: Timings {
                started_at: plan.started_at,
                finished_at: Utc::now().to_rfc3339(),
                planning_ms: plan.strategy.duration_ms,
                export_ms: started_ms.saturating_sub(plan.strategy.duration_ms),
            },
        };
        Ok(Manifest::from_chunks(
            header,
            self.committed.into_values().collect(),
        ))
    }
}

/// A `read_committed` reader of the results topic.
struct ResultsReader {
    consumer: BaseConsumer,
}

impl ResultsReader {
    fn open(client: &KafkaClient, topic: &str) -> Result<Self> {
        let consumer: BaseConsumer = client
            .results_reader_config()
            .create()
            .map_err(|e| Error::kafka("creating the results reader", e))?;
        let mut assignment = TopicPartitionList::new();
        assignment
            .add_partition_offset(topic, 0, Offset::Beginning)
            .map_err(|e| Error::kafka("assigning the results topic", e))?;
        consumer
            .assign(&assignment)
            .map_err(|e| Error::kafka("assigning the results topic", e))?;
        Ok(ResultsReader { consumer })
    }

    /// One record, `Ok(None)` at the end of the partition or after `timeout`.
    fn next(&self, tally: &mut Tally, timeout: Duration) -> Result<Step> {
        match self.consumer.poll(timeout) {
            None => Ok(Step::Idle),
            Some(Err(KafkaError::PartitionEOF(_))) => Ok(Step::End),
            Some(Err(e)) => Err(Error::kafka("reading the results topic", e)),
            Some(Ok(message)) => {
                if message.key() == Some(tally.export_id.as_bytes()) {
                    match message.payload().map(ResultRecord::from_json) {
                        Some(Ok(record)) => tally.take(message.offset(), record),
                        Some(Err(e)) => {
                            tracing::warn!(offset = message.offset(), error = %e, "skipping a record of the results topic")
                        }
                        None => {}
                    }
                }
                Ok(Step::Record)
            }
        }
    }

    /// Reads everything the topic holds now.
    fn read_to_end(&self, tally: &mut Tally) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            match self.next(tally, Duration::from_millis(500))? {
                Step::End => return Ok(()),
                Step::Record => {}
                Step::Idle if Instant::now() > deadline => {
                    return Err(Error::Task(
                        "the results topic did not answer within 120 s".into(),
                    ))
                }
                Step::Idle => {}
            }
        }
    }

    /// Reads until every chunk has a result, reporting progress; stops on cancellation.
    fn wait_for_all(&self, tally: &mut Tally, control: &ExportControl) -> ldd_core::Result<()> {
        let started = Instant::now();
        let (mut last_progress, mut last_status) = (Instant::now(), Instant::now());
        tally.fresh.clear();
        while !tally.complete() {
            if control.cancel.is_cancelled() {
                return Err(CoreError::Cancelled);
            }
            self.next(tally, Duration::from_millis(200))?;
            for chunk in std::mem::take(&mut tally.fresh) {
                control.emit(ExportEvent::ChunkCommitted(chunk));
            }
            if last_progress.elapsed() >= PROGRESS_EVERY {
                control.emit(ExportEvent::Progress(tally.progress(started)));
                last_progress = Instant::now();
            }
            if last_status.elapsed() >= STATUS_EVERY {
                let progress = tally.progress(started);
                tracing::info!(
                    export = %tally.export_id,
                    chunks_committed = progress.chunks_done,
                    chunks = progress.chunks_total,
                    chunks_failed = tally.failed.len(),
                    records = progress.records_done,
                    workers = ?tally.workers,
                    "distributed export progress"
                );
                last_status = Instant::now();
            }
        }
        control.emit(ExportEvent::Progress(tally.progress(started)));
        Ok(())
    }
}

enum Step {
    Record,
    End,
    Idle,
}
