//! One background export from `queued` to its final state.

use std::sync::Arc;
use std::time::Duration;

use ldd_core::{
    execute_plan, plan_export, CancellationToken, DataSource, ExportControl, ExportEvent, Manifest,
    Sink,
};
use ldd_sink_kafka::{manifest_topic, KafkaSink};

use super::job::ExportJob;
use super::manager::{now, ExportHandle, ExportManager};
use super::metered::MeteredSink;
use super::model::{ExportState, PlanView, ProgressView};
use crate::server::connections::ConnectionSpec;

/// How often a running export's progress is written to the state file.
const PERSIST_EVERY: Duration = Duration::from_secs(2);

/// How an export ended.
enum Outcome {
    Succeeded(Box<Manifest>, Vec<String>),
    Cancelled,
    Failed {
        message: String,
        cause: &'static str,
    },
}

fn failed(cause: &'static str, message: String) -> Outcome {
    Outcome::Failed { message, cause }
}

/// Runs the export and records how it ended.
pub(crate) async fn run(manager: &Arc<ExportManager>, handle: &Arc<ExportHandle>, job: ExportJob) {
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
            manager.metrics.export_error(cause);
            (
                ExportState::Failed,
                Some(message.clone()),
                Some((*cause).to_owned()),
            )
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
async fn drive(
    manager: &Arc<ExportManager>,
    handle: &Arc<ExportHandle>,
    job: &ExportJob,
) -> Outcome {
    let cancel = handle.cancel_token();
    let permit = tokio::select! {
        _ = cancel.cancelled() => return Outcome::Cancelled,
        permit = manager.slots.clone().acquire_owned() => match permit {
            Ok(p) => p,
            Err(_) => return failed("internal", "the export queue is closed".into()),
        },
    };
    handle.update(|s| {
        s.state = ExportState::Planning;
        s.started_at = Some(now());
    });
    save(manager, handle).await;

    let spec = match manager.registry.spec(&job.request.connection) {
        Ok(spec) => spec,
        Err(err) => return failed("input", err.public_message()),
    };
    let prepared = tokio::select! {
        _ = cancel.cancelled() => return Outcome::Cancelled,
        prepared = prepare(manager, job, &spec) => prepared,
    };
    let (source, sink, plan) = match prepared {
        Ok(p) => p,
        Err(outcome) => return outcome,
    };
    let (committed, first_attempt) = job
        .resume
        .as_ref()
        .map_or((Vec::new(), 1), |r| (r.committed.clone(), r.first_attempt));
    // Recorded before anything is written, so that a later resume knows the plan and uses
    // attempt numbers above this run's.
    let next_attempt = first_attempt.saturating_add(job.options.retry.max_attempts);
    if let Err(err) = manager.store.save_plan(&job.id, &plan, next_attempt).await {
        return failed("internal", format!("recording the plan: {err}"));
    }
    let pending = plan.pending_chunks(&committed);
    handle.update(|s| {
        s.state = ExportState::Running;
        s.plan = Some(PlanView {
            chunks: plan.chunks.len() as u64,
            records: plan.total_records,
            partitions: plan.partitions,
            strategy: plan.strategy.name.clone(),
        });
        // Progress counts what this run exports (all of it unless resuming).
        s.progress = ProgressView {
            records_total: pending.iter().map(|c| c.expected_records).sum(),
            chunks_total: pending.len() as u64,
            ..Default::default()
        };
    });
    save(manager, handle).await;

    let observer = {
        let (handle, metrics, id) = (handle.clone(), manager.metrics.clone(), job.id.clone());
        let store = manager.store.clone();
        move |event: &ExportEvent| match event {
            ExportEvent::Progress(p) => handle.update(|s| s.progress = p.clone().into()),
            ExportEvent::ChunkCommitted(m) => {
                metrics.chunk_committed(m.records, m.bytes, m.messages);
                // A chunk missing here is only exported again by a resume: never lost.
                let (store, id, chunk) = (store.clone(), id.clone(), m.clone());
                tokio::spawn(async move {
                    if let Err(err) = store.save_chunk(&id, &chunk).await {
                        tracing::warn!("export {id}: recording chunk {}: {err}", chunk.chunk_id);
                    }
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
    let control = ExportControl {
        cancel: cancel.clone(),
        observer: Some(Arc::new(observer)),
    };
    let started_at = chrono::Utc::now();
    let options = ldd_core::ExportOptions {
        first_attempt,
        ..job.options.clone()
    };
    let result = execute_plan(&plan, source, sink, options, control, committed, started_at).await;
    drop(permit);
    let manifest = match result {
        Ok(m) => m,
        Err(ldd_core::Error::Cancelled) => return Outcome::Cancelled,
        Err(e) => {
            let cause = match &e {
                ldd_core::Error::Source { .. } => "source",
                ldd_core::Error::InvalidInput(_) => "input",
                _ => "kafka",
            };
            return failed(cause, spec.scrub(&e.chain()));
        }
    };
    let mut warnings = Vec::new();
    if let Some(topic) = &job.manifest_topic {
        if let Err(e) = manifest_topic::publish_manifest(&job.sink.brokers, topic, &manifest).await
        {
            manager.metrics.export_error("manifest_topic");
            warnings.push(format!(
                "the manifest could not be published to topic `{topic}`: {e}; fetch it from GET /v1/exports/{}/manifest",
                job.id
            ));
        }
    }
    Outcome::Succeeded(Box::new(manifest), warnings)
}

type Prepared = (Arc<dyn DataSource>, Arc<dyn Sink>, ldd_core::ExportPlan);

/// Connects to the database and Kafka and plans the chunks.
async fn prepare(
    manager: &Arc<ExportManager>,
    job: &ExportJob,
    spec: &ConnectionSpec,
) -> Result<Prepared, Outcome> {
    let connection = manager
        .registry
        .connection(&job.request.connection)
        .await
        .map_err(|e| failed("source", e.public_message()))?;
    let source = connection.open(&job.spec).await.map_err(|e| {
        failed(
            "source",
            spec.scrub(&format!("opening dataset {}: {e}", job.spec.display_name())),
        )
    })?;
    let kafka = KafkaSink::connect(job.sink.clone()).await.map_err(|e| {
        let cause = if matches!(e, ldd_sink_kafka::Error::Config(_)) {
            "input"
        } else {
            "kafka"
        };
        failed(
            cause,
            format!("connecting to Kafka at {}: {e}", job.sink.brokers),
        )
    })?;
    let sink: Arc<dyn Sink> = Arc::new(MeteredSink::new(Arc::new(kafka), manager.metrics.clone()));
    if let Some(resume) = &job.resume {
        return Ok((source, sink, resume.plan.clone()));
    }
    let plan = plan_export(source.as_ref(), sink.as_ref(), &job.partitioner, &job.id)
        .await
        .map_err(|e| {
            let cause = match &e {
                ldd_core::Error::Sink { .. } => "kafka",
                ldd_core::Error::InvalidInput(_) => "input",
                _ => "source",
            };
            failed(cause, spec.scrub(&format!("planning: {}", e.chain())))
        })?;
    Ok((source, sink, plan))
}

async fn save(manager: &ExportManager, handle: &ExportHandle) {
    if let Err(err) = manager.store.save_export(&handle.current()).await {
        tracing::error!("export {}: saving its state failed: {err}", handle.id);
    }
}

/// Writes the progress to the state file now and then, until `stop`.
async fn persist_progress(
    manager: Arc<ExportManager>,
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
