//! One background export from `queued` to its final state.

use std::sync::Arc;
use std::time::Duration;

use ldd_core::feed::fan_out;
use ldd_core::CommittedChunk;
use ldd_core::{
    export_resumable, CancellationToken, DataSource, ExportControl, ExportEvent, ExportParts,
    FailureCause, Manifest, Sink,
};
use ldd_sink_kafka::manifest_topic::FeedPublisher;
use ldd_sink_kafka::KafkaSink;

use super::handle::{now, ExportHandle};
use super::job::ExportJob;
use super::model::{ExportState, PlanView, ProgressView};
use crate::server::connections::ConnectionSpec;
use crate::server::metrics::Metrics;
use crate::server::registry::Registry;
use crate::server::store::Store;
use ldd_core::timed_sink::TimedSink;
use ldd_core::TaskSource;
use ldd_sink_kafka::distributed::{run_distributed, GroupExport};
use tokio::sync::Semaphore;

/// What a running export needs from the server: the state file, the connections, the
/// metrics and the slots that bound how many exports run at once.
pub(crate) struct RunContext {
    pub(crate) store: Store,
    pub(crate) registry: Arc<Registry>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) slots: Arc<Semaphore>,
    /// The worker group exports run on, if any.
    pub(crate) group: Option<String>,
}

/// How often a running export's progress is written to the state file.
const PERSIST_EVERY: Duration = Duration::from_secs(2);

/// How an export ended.
enum Outcome {
    Succeeded(Box<Manifest>, Vec<String>),
    Cancelled,
    Failed {
        message: String,
        cause: FailureCause,
    },
}

fn failed(cause: FailureCause, message: String) -> Outcome {
    Outcome::Failed { message, cause }
}

/// Runs the export and records how it ended.
pub(crate) async fn run(manager: &Arc<RunContext>, handle: &Arc<ExportHandle>, job: ExportJob) {
    let stop = CancellationToken::new();
    let persister = tokio::spawn(persist_progress(
        manager.clone(),
        handle.clone(),
        stop.clone(),
    ));
    let outcome = drive(manager, handle, &job).await;
    stop.cancel();
    let _ = persister.await;

    let (state, error, cause) = match &outcome {
        Outcome::Succeeded(..) => (ExportState::Succeeded, None, None),
        Outcome::Cancelled if handle.was_interrupted() => (
            ExportState::Interrupted,
            Some("the server shut down while the export ran; run it again".to_owned()),
            None,
        ),
        Outcome::Cancelled => (ExportState::Cancelled, None, None),
        Outcome::Failed { message, cause } => {
            manager.metrics.export_error(*cause);
            (ExportState::Failed, Some(message.clone()), Some(*cause))
        }
    };
    let mut status = handle.current();
    status.state = state;
    status.error = error;
    status.error_cause = cause;
    status.finished_at = Some(now());
    if let Outcome::Succeeded(manifest, warnings) = outcome {
        status.progress.records_done = manifest.total_records;
        status.progress.messages_done = manifest.total_messages;
        status.progress.bytes_done = manifest.total_bytes;
        status.progress.chunks_done = manifest.chunks.len() as u64;
        status.progress.eta_ms = Some(0);
        status.warnings = warnings;
        status.manifest = Some(*manifest);
    }
    if let Err(err) = manager.store.save_export(&status).await {
        tracing::error!("export {}: recording its end failed: {err}", job.id);
    }
    match &status.error {
        Some(e) => tracing::warn!("export {} {}: {e}", job.id, state.as_str()),
        None => tracing::info!("export {} {}", job.id, state.as_str()),
    }
    manager.metrics.export_finished(state);
    handle.update(|s| *s = status);
}

/// Plans and runs; every step watches the cancel token.
async fn drive(manager: &RunContext, handle: &Arc<ExportHandle>, job: &ExportJob) -> Outcome {
    let cancel = handle.cancel_token();
    let permit = tokio::select! {
        _ = cancel.cancelled() => return Outcome::Cancelled,
        permit = manager.slots.clone().acquire_owned() => match permit {
            Ok(p) => p,
            Err(_) => return failed(FailureCause::Internal, "the export queue is closed".into()),
        },
    };
    handle.update(|s| {
        s.state = ExportState::Planning;
        s.started_at = Some(now());
    });
    save(manager, handle).await;

    let spec = match manager.registry.spec(&job.request.connection) {
        Ok(spec) => spec,
        Err(err) => return failed(FailureCause::Input, err.public_message()),
    };
    let connected = tokio::select! {
        _ = cancel.cancelled() => return Outcome::Cancelled,
        connected = connect(manager, job, &spec) => connected,
    };
    let (source, sink) = match connected {
        Ok(p) => p,
        Err(outcome) => return outcome,
    };

    // Followers read each chunk as soon as it commits: through the manifest topic, and
    // through the export's event stream.
    let feed = match &job.manifest_topic {
        None => None,
        Some(topic) => match FeedPublisher::connect(&job.sink.client, topic).await {
            Ok(feed) => Some(Arc::new(feed)),
            Err(e) => {
                manager.metrics.manifest_topic_error();
                tracing::warn!("export {}: the manifest topic `{topic}` is not available, chunks are not announced there: {e}", job.id);
                None
            }
        },
    };
    let observer = {
        let (handle, metrics, id) = (handle.clone(), manager.metrics.clone(), job.id.clone());
        let (topic, format) = (job.sink.topic.clone(), job.options.format);
        move |event: &ExportEvent| match event {
            ExportEvent::Planned {
                export_id: _,
                chunks,
                records,
                total_chunks,
                total_records,
                partitions,
                strategy,
            } => handle.update(|s| {
                s.state = ExportState::Running;
                s.plan = Some(PlanView {
                    chunks: *total_chunks as u64,
                    records: *total_records,
                    partitions: *partitions,
                    strategy: strategy.clone(),
                });
                // Progress counts what this run exports (all of it unless resuming).
                s.progress = ProgressView {
                    records_total: *records,
                    chunks_total: *chunks as u64,
                    ..Default::default()
                };
            }),
            ExportEvent::Progress(p) => handle.update(|s| s.progress = p.clone().into()),
            ExportEvent::ChunkCommitted(m) => {
                metrics.chunk_committed(m.records, m.bytes, m.messages);
                handle.chunk_committed(CommittedChunk {
                    export_id: id.clone(),
                    topic: topic.clone(),
                    format,
                    chunk: m.clone(),
                });
            }
            ExportEvent::ChunkRetrying {
                chunk_id,
                attempt,
                error,
            } => {
                metrics.chunk_retry();
                tracing::warn!(
                    "export {id}: chunk {chunk_id} attempt {attempt} failed, retrying: {error}"
                );
            }
            _ => {}
        }
    };
    let parts = ExportParts {
        source,
        sink,
        options: job.options.clone(),
        control: ExportControl {
            cancel: cancel.clone(),
            observer: Some(match &feed {
                Some(feed) => fan_out(vec![
                    Arc::new(observer),
                    feed.observer(job.sink.topic.clone(), job.options.format),
                ]),
                None => Arc::new(observer),
            }),
        },
    };
    // The library drives plan, checkpoint and resume; the state file is its store, so a
    // resumed export picks up exactly where the checkpoint says.
    // On a worker group, the group's results topic is the checkpoint instead: a restarted
    // server runs the export again under its id, finds the plan there and waits.
    let result = match &manager.group {
        Some(group) => {
            let task_source = TaskSource::Dataset {
                connection: job.request.connection.clone(),
                dataset: job.spec.clone(),
            };
            let group = GroupExport::new(job.sink.client.clone(), group, task_source);
            run_distributed(parts, &job.sink, &job.partitioner, &group).await
        }
        None => {
            let checkpoint = Arc::new(manager.store.checkpoints().export(job.id.clone()));
            export_resumable(parts, &job.partitioner, checkpoint).await
        }
    };
    drop(permit);
    let manifest = match result {
        Ok(m) => m,
        Err(e) => {
            let outcome = match e.failure_cause() {
                None => Outcome::Cancelled,
                Some(cause) => failed(cause, spec.source.scrub(&e.chain())),
            };
            // An export interrupted by shutdown resumes when the server is back: its
            // followers wait for it rather than give up.
            let why = match &outcome {
                Outcome::Failed { message, .. } => Some(message.clone()),
                _ if handle.was_interrupted() => None,
                _ => Some("cancelled".to_owned()),
            };
            if let (Some(feed), Some(why)) = (&feed, why) {
                if let Err(e) = feed.fail(Some(&job.id), &why).await {
                    tracing::warn!(
                        "export {}: announcing the failure to the manifest topic: {e}",
                        job.id
                    );
                }
            }
            return outcome;
        }
    };
    let mut warnings = Vec::new();
    if let (Some(feed), Some(topic)) = (&feed, &job.manifest_topic) {
        if let Err(e) = feed.finish(&manifest).await {
            manager.metrics.manifest_topic_error();
            warnings.push(format!(
                "the manifest could not be published to topic `{topic}`: {e}; fetch it from GET /v1/exports/{}/manifest",
                job.id
            ));
        }
    } else if let Some(topic) = &job.manifest_topic {
        warnings.push(format!(
            "the manifest topic `{topic}` was not available, so the manifest is not there; fetch it from GET /v1/exports/{}/manifest",
            job.id
        ));
    }
    Outcome::Succeeded(Box::new(manifest), warnings)
}

type Connected = (Arc<dyn DataSource>, Arc<dyn Sink>);

/// Connects to the database and Kafka.
async fn connect(
    manager: &RunContext,
    job: &ExportJob,
    spec: &ConnectionSpec,
) -> Result<Connected, Outcome> {
    let connection = manager
        .registry
        .connection(&job.request.connection)
        .await
        .map_err(|e| failed(FailureCause::Source, e.public_message()))?;
    let source = connection.open(&job.spec).await.map_err(|e| {
        failed(
            FailureCause::Source,
            spec.source
                .scrub(&format!("opening dataset {}: {e}", job.spec.display_name())),
        )
    })?;
    let kafka = KafkaSink::connect(job.sink.clone()).await.map_err(|e| {
        let cause = if matches!(e, ldd_sink_kafka::Error::Config(_)) {
            FailureCause::Input
        } else {
            FailureCause::Sink
        };
        failed(
            cause,
            format!("connecting to Kafka at {}: {e}", job.sink.client.brokers),
        )
    })?;
    let sink: Arc<dyn Sink> = Arc::new(TimedSink::new(Arc::new(kafka), manager.metrics.clone()));
    Ok((source, sink))
}

async fn save(manager: &RunContext, handle: &ExportHandle) {
    if let Err(err) = manager.store.save_export(&handle.current()).await {
        tracing::error!("export {}: saving its state failed: {err}", handle.id);
    }
}

/// Writes the progress to the state file now and then, until `stop`.
async fn persist_progress(
    manager: Arc<RunContext>,
    handle: Arc<ExportHandle>,
    stop: CancellationToken,
) {
    let mut rx = handle.subscribe();
    let mut tick = tokio::time::interval(PERSIST_EVERY);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        if rx.has_changed().unwrap_or(false) {
            rx.mark_unchanged();
            save(&manager, &handle).await;
        }
    }
}
