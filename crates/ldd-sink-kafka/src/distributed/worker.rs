//! The worker: a member of the group's consumer group on the tasks topic that runs one
//! chunk at a time, each as one transaction with its result and its task's offset.
//!
//! A poll thread owns the consumer: it keeps polling (so the worker stays in the group and
//! takes part in rebalances) and queues the tasks it fetches; the executor runs them one
//! by one. Offsets are committed only inside chunk transactions, so fetched tasks are
//! harmless; a revocation drops the revoked partitions' queued tasks and stops a running
//! chunk from one of them ([`Ownership`]).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ldd_core::CancellationToken;
use ldd_core::{
    execute_plan, Chunk, ChunkFailure, DataSource, Error as CoreError, ExportControl, ExportEvent,
    ExportOptions, ExportParts, ExportPlan, FailureCause, PlanStrategy, RateLimit, Resume,
    RetryPolicy, SourceResolver, ThrottledSource,
};
use rdkafka::client::ClientContext;
use rdkafka::config::FromClientConfigAndContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use tokio::sync::Semaphore;

use super::ownership::{Ownership, Queued};
use super::schema::{Destination, ResultRecord, TaskMessage};
use super::task_sink::{TaskBinding, TaskSink};
use super::topics::{GroupTopics, DEFAULT_TASK_PARTITIONS};
use crate::admin::{blocking, TopicAdmin};
use crate::client::KafkaClient;
use crate::config::{Compression, Delivery, KafkaSinkConfig};
use crate::delivery::PERMIT_BYTES;
use crate::error::{Error, Result};
use crate::sink::{create_producer, KafkaProducer};

/// How a worker runs. Everything that reaches a database or the cluster is the worker's
/// own: tasks carry no secrets.
#[derive(Clone)]
pub struct WorkerConfig {
    /// The cluster and its client settings (security included).
    pub client: KafkaClient,
    /// The worker group: its topics are `ldd.<group>.tasks` and `ldd.<group>.results`, and
    /// its consumer group id is the group name.
    pub group: String,
    /// This worker's name, in results and logs, and part of its transactional id
    /// (`<prefix>-worker-<group>-<worker id>`). Keep it stable across restarts of one
    /// worker (a host or pod name): a restarted worker then aborts the open transaction of
    /// its killed predecessor at once instead of after the transaction timeout.
    pub worker_id: String,
    /// Prefix of the worker's transactional id.
    pub transactional_id_prefix: String,
    /// Opens the sources tasks name (connections by name; the generator needs none).
    pub resolver: Arc<dyn SourceResolver>,
    /// Records per second this process reads at most, over all its chunks.
    pub rate_limit: Option<RateLimit>,
    /// How long the group waits for a silent worker before handing its partitions on.
    pub session_timeout: Duration,
    /// Partitions of the tasks topic when this worker creates it.
    pub task_partitions: u32,
    /// Replication factor of the group's topics when this worker creates them.
    pub replication_factor: u16,
    /// Most payload bytes in flight.
    pub max_in_flight_bytes: usize,
    /// Extra librdkafka properties of the chunk producer.
    pub producer_properties: BTreeMap<String, String>,
    /// How often the worker logs its status line.
    pub status_interval: Duration,
}

impl std::fmt::Debug for WorkerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerConfig")
            .field("brokers", &self.client.brokers)
            .field("group", &self.group)
            .field("worker_id", &self.worker_id)
            .field("rate_limit", &self.rate_limit)
            .finish()
    }
}

impl WorkerConfig {
    /// A worker of `group` on `client`'s cluster, with `resolver` for sources and defaults
    /// for the rest (worker id `<host>-<pid>`).
    pub fn new(
        client: KafkaClient,
        group: impl Into<String>,
        resolver: Arc<dyn SourceResolver>,
    ) -> Self {
        let defaults = KafkaSinkConfig::default();
        WorkerConfig {
            client,
            group: group.into(),
            worker_id: default_worker_id(),
            transactional_id_prefix: "ldd".into(),
            resolver,
            rate_limit: None,
            session_timeout: Duration::from_secs(10),
            task_partitions: DEFAULT_TASK_PARTITIONS,
            replication_factor: defaults.replication_factor,
            max_in_flight_bytes: defaults.max_in_flight_bytes,
            producer_properties: BTreeMap::new(),
            status_interval: Duration::from_secs(10),
        }
    }

    fn transactional_id(&self) -> String {
        format!(
            "{}-worker-{}-{}",
            self.transactional_id_prefix, self.group, self.worker_id
        )
    }
}

/// `<host name>-<process id>`.
pub fn default_worker_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "worker".into());
    format!("{host}-{}", std::process::id())
}

/// What a worker did before it stopped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkerSummary {
    /// Chunks it committed.
    pub chunks_committed: u64,
    /// Chunks it reported as failed.
    pub chunks_failed: u64,
    /// Chunks it stopped because their partition was revoked or the worker stopped.
    pub chunks_handed_back: u64,
    /// Records in the chunks it committed.
    pub records: u64,
}

/// The consumer's context: rebalances stop a chunk whose task partition is revoked, and
/// pause partitions assigned while a chunk runs.
pub(crate) struct WorkerContext {
    ownership: Arc<Ownership>,
    tasks_topic: String,
    worker: String,
}

impl ClientContext for WorkerContext {}

impl ConsumerContext for WorkerContext {
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let stopped = match rebalance {
            Rebalance::Revoke(partitions) => {
                let revoked: Vec<i32> = partitions
                    .elements()
                    .iter()
                    .filter(|e| e.topic() == self.tasks_topic)
                    .map(|e| e.partition())
                    .collect();
                tracing::debug!(worker = %self.worker, ?revoked, "task partitions revoked");
                self.ownership.revoke(&revoked)
            }
            Rebalance::Assign(partitions) => {
                tracing::info!(worker = %self.worker, partitions = partitions.count(), "task partitions assigned");
                false
            }
            Rebalance::Error(e) => {
                tracing::warn!(worker = %self.worker, error = %e, "rebalance failed; dropping the held tasks");
                self.ownership.revoke_all()
            }
        };
        if stopped {
            tracing::info!(worker = %self.worker, "the running chunk's task partition was revoked; another worker takes it");
        }
    }
}

type TaskConsumer = BaseConsumer<WorkerContext>;

/// Live counters for the status line.
#[derive(Default)]
struct Stats {
    committed: AtomicU64,
    failed: AtomicU64,
    handed_back: AtomicU64,
    records: AtomicU64,
    current_records: AtomicU64,
    current: Mutex<Option<String>>,
}

impl Stats {
    fn summary(&self) -> WorkerSummary {
        WorkerSummary {
            chunks_committed: self.committed.load(Ordering::Relaxed),
            chunks_failed: self.failed.load(Ordering::Relaxed),
            chunks_handed_back: self.handed_back.load(Ordering::Relaxed),
            records: self.records.load(Ordering::Relaxed),
        }
    }

    fn set_current(&self, current: Option<String>) {
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = current;
        self.current_records.store(0, Ordering::Relaxed);
    }
}

/// Runs a worker until `shutdown` is cancelled (then the running chunk is aborted, and the
/// worker leaves the group so that its partitions move on at once).
pub async fn run_worker(
    config: WorkerConfig,
    shutdown: CancellationToken,
) -> Result<WorkerSummary> {
    config.client.validate()?;
    let topics = GroupTopics::new(&config.group)?;
    topics
        .ensure(
            &TopicAdmin::new(config.client.clone()),
            config.task_partitions,
            config.replication_factor,
        )
        .await?;
    let ownership = Arc::new(Ownership::default());
    let context = WorkerContext {
        ownership: ownership.clone(),
        tasks_topic: topics.tasks.clone(),
        worker: config.worker_id.clone(),
    };
    let consumer_config = config.client.task_consumer_config(
        &config.group,
        &config.worker_id,
        config.session_timeout,
    );
    let consumer = Arc::new(
        TaskConsumer::from_config_and_context(&consumer_config, context)
            .map_err(|e| Error::kafka("creating the worker's consumer", e))?,
    );
    consumer
        .subscribe(&[&topics.tasks])
        .map_err(|e| Error::kafka(format!("subscribing to {}", topics.tasks), e))?;
    let status: FutureProducer = config
        .client
        .manifest_producer_config()
        .create()
        .map_err(|e| Error::kafka("creating the worker's status producer", e))?;
    tracing::info!(worker = %config.worker_id, group = %config.group, tasks = %topics.tasks, "worker started");

    let stats = Arc::new(Stats::default());
    let poll_stop = CancellationToken::new();
    let poller = {
        let (consumer, ownership, stop) = (consumer.clone(), ownership.clone(), poll_stop.clone());
        std::thread::Builder::new()
            .name("ldd-worker-poll".into())
            .spawn(move || poll_loop(&consumer, &ownership, &stop))
            .map_err(|e| Error::Task(format!("starting the poll thread: {e}")))?
    };
    let reporter = spawn_status_line(&config, stats.clone());

    let budget_permits = (config.max_in_flight_bytes / PERMIT_BYTES).max(1);
    let mut runner = Runner {
        config: &config,
        topics: &topics,
        consumer: consumer.clone(),
        ownership: ownership.clone(),
        status,
        producer: None,
        budget: Arc::new(Semaphore::new(budget_permits)),
        budget_permits,
        stats: stats.clone(),
    };
    while let Some((task, cancel)) = ownership.next(&shutdown).await {
        let again = runner.run(&task, &cancel).await;
        ownership.finish(again.then_some(task));
    }
    reporter.cancel();
    poll_stop.cancel();
    drop(runner);
    // Closing the consumer leaves the group, so that the partitions move on without
    // waiting for the session timeout.
    let closed = blocking(move || {
        let _ = poller.join();
        drop(consumer);
        Ok(())
    })
    .await;
    if let Err(e) = closed {
        tracing::warn!(error = %e, "closing the worker's consumer failed");
    }
    let summary = stats.summary();
    tracing::info!(worker = %config.worker_id, ?summary, "worker stopped");
    Ok(summary)
}

/// Polls the consumer until `stop`, queueing every task it fetches.
fn poll_loop(consumer: &TaskConsumer, ownership: &Ownership, stop: &CancellationToken) {
    while !stop.is_cancelled() {
        match consumer.poll(Duration::from_millis(200)) {
            None => {}
            Some(Err(e)) => tracing::debug!(error = %e, "polling the tasks topic"),
            Some(Ok(message)) => ownership.push(Queued {
                partition: message.partition(),
                offset: message.offset(),
                payload: message.payload().map(<[u8]>::to_vec).unwrap_or_default(),
            }),
        }
    }
}

/// Logs a status line every `status_interval` until cancelled.
fn spawn_status_line(config: &WorkerConfig, stats: Arc<Stats>) -> CancellationToken {
    let stop = CancellationToken::new();
    let (stop_rx, every, worker) = (
        stop.clone(),
        config.status_interval,
        config.worker_id.clone(),
    );
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.tick().await;
        let mut last = (Instant::now(), 0u64);
        loop {
            tokio::select! {
                _ = stop_rx.cancelled() => break,
                _ = tick.tick() => {}
            }
            let done = stats.records.load(Ordering::Relaxed)
                + stats.current_records.load(Ordering::Relaxed);
            let rate =
                (done.saturating_sub(last.1)) as f64 / last.0.elapsed().as_secs_f64().max(1e-3);
            last = (Instant::now(), done);
            let current = stats
                .current
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            tracing::info!(
                worker = %worker,
                chunks_committed = stats.committed.load(Ordering::Relaxed),
                chunks_failed = stats.failed.load(Ordering::Relaxed),
                records = done,
                records_per_sec = rate.round() as u64,
                current = current.as_deref().unwrap_or("idle"),
                "worker status"
            );
        }
    });
    stop
}

/// The settings a chunk producer is created with; a task asking for others gets a new one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ProducerSettings {
    compression: Compression,
    transaction_timeout_ms: u64,
}

/// Runs tasks on the executor side.
struct Runner<'a> {
    config: &'a WorkerConfig,
    topics: &'a GroupTopics,
    consumer: Arc<TaskConsumer>,
    ownership: Arc<Ownership>,
    status: FutureProducer,
    producer: Option<(ProducerSettings, Arc<KafkaProducer>)>,
    budget: Arc<Semaphore>,
    budget_permits: usize,
    stats: Arc<Stats>,
}

/// What became of one attempt.
enum Attempt {
    Committed,
    HandedBack,
    Failed(ChunkFailure),
}

impl Runner<'_> {
    /// Runs one task; says whether it must run again (it is still ours but neither
    /// committed nor reported).
    async fn run(&mut self, delivered: &Queued, cancel: &CancellationToken) -> bool {
        let binding = Arc::new(TaskBinding {
            consumer: self.consumer.clone(),
            ownership: self.ownership.clone(),
            tasks_topic: self.topics.tasks.clone(),
            results_topic: self.topics.results.clone(),
            partition: delivered.partition,
            offset: delivered.offset,
            worker: self.config.worker_id.clone(),
            started: Instant::now(),
        });
        let task: TaskMessage = match serde_json::from_slice(&delivered.payload) {
            Ok(task) => task,
            Err(e) => {
                tracing::error!(partition = delivered.partition, offset = delivered.offset, error = %e, "not an ldd task; skipping it");
                let skipped = self.end_task(&binding, None, Duration::from_secs(60)).await;
                return skipped.is_err() && !cancel.is_cancelled();
            }
        };
        let task = Arc::new(task);
        let label = format!("{}/{}", task.export_id, task.chunk.id);
        self.stats.set_current(Some(label.clone()));
        let outcome = self.run_attempts(&task, &binding, cancel).await;
        self.stats.set_current(None);
        match outcome {
            Attempt::Committed => false,
            Attempt::HandedBack => {
                self.stats.handed_back.fetch_add(1, Ordering::Relaxed);
                tracing::info!(chunk = %label, "chunk handed back: nothing of this attempt is visible");
                false
            }
            Attempt::Failed(failure) => {
                let timeout = task.destination.transaction_timeout();
                let record = ResultRecord::Failed {
                    export_id: task.export_id.clone(),
                    worker: self.config.worker_id.clone(),
                    failure: failure.clone(),
                };
                tracing::error!(chunk = %label, error = %failure.error, attempts = failure.attempts, "chunk failed; reporting it");
                match self
                    .end_task(&binding, Some((&task.destination, record)), timeout)
                    .await
                {
                    Ok(()) => {
                        self.stats.failed.fetch_add(1, Ordering::Relaxed);
                        false
                    }
                    Err(e) if cancel.is_cancelled() => {
                        tracing::info!(chunk = %label, error = %e, "the failure was not reported; the task stays");
                        false
                    }
                    Err(e) => {
                        tracing::warn!(chunk = %label, error = %e, "reporting the failure failed; the task is taken again");
                        true
                    }
                }
            }
        }
    }

    /// Runs attempts until one commits, the task is handed back, or it fails for good.
    async fn run_attempts(
        &mut self,
        task: &Arc<TaskMessage>,
        binding: &Arc<TaskBinding>,
        cancel: &CancellationToken,
    ) -> Attempt {
        let source = match self.config.resolver.resolve(&task.source).await {
            Ok(source) => self.throttled(source),
            Err(e) => return Attempt::Failed(failure(&task.chunk, 0, &e)),
        };
        let policy = RetryPolicy::default();
        let max_attempts = task.max_attempts.max(1);
        let mut tries = 0;
        loop {
            tries += 1;
            if cancel.is_cancelled() {
                return Attempt::HandedBack;
            }
            let result = self.attempt(task, binding, source.clone(), cancel).await;
            let err = match result {
                Ok(()) => return Attempt::Committed,
                Err(_) if cancel.is_cancelled() || self.ownership.revoked() => {
                    self.producer = None;
                    return Attempt::HandedBack;
                }
                Err(err) => err,
            };
            // A failed transaction may leave the producer unusable: start clean.
            self.producer = None;
            let chunk_failure = match err {
                CoreError::ChunksFailed { mut failures, .. } if !failures.is_empty() => {
                    let mut f = failures.swap_remove(0);
                    f.attempts = tries;
                    f
                }
                other => failure(&task.chunk, tries, &other),
            };
            if chunk_failure.cause == FailureCause::Input || tries >= max_attempts {
                return Attempt::Failed(chunk_failure);
            }
            tracing::warn!(chunk = task.chunk.id, export = %task.export_id, attempt = tries, error = %chunk_failure.error, "chunk attempt failed; retrying");
            tokio::select! {
                _ = cancel.cancelled() => return Attempt::HandedBack,
                _ = tokio::time::sleep(policy.backoff(tries - 1)) => {}
            }
        }
    }

    fn throttled(&self, source: Arc<dyn DataSource>) -> Arc<dyn DataSource> {
        match &self.config.rate_limit {
            Some(limit) => Arc::new(ThrottledSource::new(source, limit.clone())),
            None => source,
        }
    }

    /// One attempt: numbered by its `Started` record, run by the engine as a one-chunk
    /// plan whose commit carries the result and the task offset.
    async fn attempt(
        &mut self,
        task: &Arc<TaskMessage>,
        binding: &Arc<TaskBinding>,
        source: Arc<dyn DataSource>,
        cancel: &CancellationToken,
    ) -> ldd_core::Result<()> {
        let attempt = self.mark_started(task).await?;
        let producer = self.producer_for(&task.destination).await?;
        let sink = TaskSink {
            task: task.clone(),
            producer,
            binding: binding.clone(),
            budget: self.budget.clone(),
            budget_permits: self.budget_permits,
        };
        let plan = one_chunk_plan(task);
        let stats = self.stats.clone();
        let observer = move |event: &ExportEvent| {
            if let ExportEvent::Progress(p) = event {
                stats
                    .current_records
                    .store(p.records_done, Ordering::Relaxed);
            }
        };
        let parts = ExportParts {
            source,
            sink: Arc::new(sink),
            options: ExportOptions {
                export_id: Some(task.export_id.clone()),
                format: task.destination.format,
                batch_bytes: task.destination.batch_bytes,
                workers: 1,
                retry: RetryPolicy {
                    max_attempts: 1,
                    ..RetryPolicy::default()
                },
                first_attempt: attempt,
                ..ExportOptions::default()
            },
            control: ExportControl {
                cancel: cancel.clone(),
                observer: Some(Arc::new(observer)),
            },
        };
        let manifest = execute_plan(&plan, parts, Resume::default()).await?;
        let records = manifest.total_records;
        self.stats.committed.fetch_add(1, Ordering::Relaxed);
        self.stats.records.fetch_add(records, Ordering::Relaxed);
        let elapsed = binding.started.elapsed();
        tracing::info!(
            export = %task.export_id,
            chunk = task.chunk.id,
            attempt,
            records,
            seconds = format_args!("{:.2}", elapsed.as_secs_f64()),
            records_per_sec = (records as f64 / elapsed.as_secs_f64().max(1e-3)).round() as u64,
            "chunk committed"
        );
        Ok(())
    }

    /// Writes the attempt's `Started` record; its offset after the plan's numbers the
    /// attempt, so attempts of one chunk never share a number, whichever worker runs them.
    async fn mark_started(&self, task: &TaskMessage) -> ldd_core::Result<u32> {
        let record = ResultRecord::Started {
            export_id: task.export_id.clone(),
            chunk_id: task.chunk.id,
            worker: self.config.worker_id.clone(),
        };
        let payload = record.to_json()?;
        let message = FutureRecord::to(&self.topics.results)
            .partition(0)
            .key(&task.export_id)
            .payload(&payload);
        let delivered = self
            .status
            .send(message, Duration::from_secs(30))
            .await
            .map_err(|(e, _)| Error::kafka("recording the attempt's start", e))?;
        let attempt = (delivered.offset - task.plan_offset).clamp(1, i64::from(u32::MAX));
        Ok(attempt as u32)
    }

    /// The chunk producer for `destination`, created (and its transactions initialized,
    /// which fences an earlier producer of this worker's id) when missing or different.
    async fn producer_for(&mut self, destination: &Destination) -> Result<Arc<KafkaProducer>> {
        let settings = ProducerSettings {
            compression: destination.compression,
            transaction_timeout_ms: destination.transaction_timeout_ms,
        };
        if let Some((current, producer)) = &self.producer {
            if *current == settings {
                return Ok(producer.clone());
            }
        }
        self.producer = None;
        let sink_config = KafkaSinkConfig {
            client: self.config.client.clone(),
            topic: destination.topic.clone(),
            compression: destination.compression,
            delivery: Delivery::ExactlyOnce,
            transaction_timeout: destination.transaction_timeout(),
            key: destination.key,
            max_in_flight_bytes: self.config.max_in_flight_bytes,
            librdkafka: self.config.producer_properties.clone(),
            ..KafkaSinkConfig::default()
        };
        sink_config.validate()?;
        let id = self.config.transactional_id();
        let producer = Arc::new(create_producer(
            &sink_config,
            Some(&id),
            self.budget.clone(),
        )?);
        let p = producer.clone();
        let timeout = destination
            .transaction_timeout()
            .max(Duration::from_secs(30));
        blocking(move || {
            p.init_transactions(timeout)
                .map_err(|e| Error::kafka("initializing the worker's transactions", e))
        })
        .await?;
        self.producer = Some((settings, producer.clone()));
        Ok(producer)
    }

    /// Consumes the task without a chunk: a transaction with only `result` (if any) and the
    /// task's offset.
    async fn end_task(
        &mut self,
        binding: &Arc<TaskBinding>,
        result: Option<(&Destination, ResultRecord)>,
        timeout: Duration,
    ) -> Result<()> {
        let default_destination;
        let destination = match &result {
            Some((destination, _)) => *destination,
            None => {
                default_destination =
                    Destination::new(&KafkaSinkConfig::default(), 1, ldd_core::Format::Json, 0);
                &default_destination
            }
        };
        let producer = self.producer_for(destination).await?;
        let ended = async {
            producer
                .begin_transaction()
                .map_err(|e| Error::kafka("beginning a transaction", e))?;
            if let Some((_, record)) = &result {
                binding.produce_result(&producer, record, timeout).await?;
            }
            binding.commit_offsets(&producer, timeout).await
        }
        .await;
        if ended.is_err() {
            let p = producer.clone();
            let _ = blocking(move || {
                p.abort_transaction(timeout)
                    .map_err(|e| Error::kafka("aborting", e))
            })
            .await;
            self.producer = None;
        }
        ended
    }
}

/// The plan of a task: its one chunk.
fn one_chunk_plan(task: &TaskMessage) -> ExportPlan {
    ExportPlan {
        export_id: task.export_id.clone(),
        total_records: task.chunk.expected_records,
        partitions: task.destination.partitions,
        strategy: PlanStrategy::default(),
        splittable: true,
        chunks: vec![task.chunk.clone()],
    }
}

fn failure(chunk: &Chunk, attempts: u32, err: &CoreError) -> ChunkFailure {
    ChunkFailure {
        chunk_id: chunk.id,
        attempts,
        error: err.chain(),
        cause: err.failure_cause().unwrap_or(FailureCause::Internal),
    }
}
