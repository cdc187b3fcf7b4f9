//! `/v1/exports`: background exports with progress, cancel, events and manifests.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::IntoResponse;
use axum::Json;
use futures::stream::{self, BoxStream, StreamExt};
use ldd_core::{CommittedChunk, Manifest};
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, watch};
use utoipa::{IntoParams, ToSchema};

use super::{ApiJson, ApiPath, ApiQuery};
use crate::server::error::{ApiError, ApiResult, ErrorBody};
use crate::server::exports::manager::ExportHandle;
use crate::server::exports::model::{
    ExportAccepted, ExportEventData, ExportRequest, ExportState, ExportStatus, Origin,
};
use crate::server::exports::ExportJob;
use crate::server::state::AppState;

/// Answer of `GET /v1/exports`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ExportList {
    /// Exports, newest first, without manifests.
    pub(crate) exports: Vec<ExportStatus>,
}

/// Filters of `GET /v1/exports`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListQuery {
    /// Only exports in this state.
    pub(crate) state: Option<ExportState>,
    /// At most this many, 1-1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub(crate) limit: Option<usize>,
}

/// Starts an export in the background.
#[utoipa::path(
    post,
    path = "/v1/exports",
    operation_id = "v1_create_export",
    tag = "exports",
    request_body = ExportRequest,
    responses(
        (status = 202, description = "Accepted; follow it at status_url or events_url", body = ExportAccepted),
        (status = 400, description = "The request is wrong", body = ErrorBody),
        (status = 404, description = "No such connection", body = ErrorBody),
        (status = 409, description = "The export id is taken", body = ErrorBody),
        (status = 503, description = "The server is shutting down", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn create(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<ExportRequest>,
) -> ApiResult<impl IntoResponse> {
    let job = ExportJob::build(request, &state.config().exports, Origin::V1)?;
    let handle = state.exports().submit(job).await?;
    Ok(accepted(&handle))
}

/// `202 Accepted` with where to follow the export.
fn accepted(handle: &ExportHandle) -> impl IntoResponse {
    let accepted = ExportAccepted::new(&handle.id, handle.current().state);
    let location = accepted.status_url.clone();
    (
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        Json(accepted),
    )
}

/// Lists exports, newest first (running ones with live progress).
#[utoipa::path(
    get,
    path = "/v1/exports",
    operation_id = "v1_list_exports",
    tag = "exports",
    params(ListQuery),
    responses(
        (status = 200, description = "The exports", body = ExportList),
        (status = 400, description = "A filter is wrong", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> ApiResult<Json<ExportList>> {
    let limit = query.limit.unwrap_or(100);
    // Rejected rather than clamped, so that the documented range is the accepted one.
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "`limit` is {limit}; give 1 to 1000"
        )));
    }
    Ok(Json(ExportList {
        exports: state.exports().list(query.state, limit).await?,
    }))
}

/// One export: state, progress (records/s, ETA), plan, error, and the manifest once
/// succeeded.
#[utoipa::path(
    get,
    path = "/v1/exports/{id}",
    operation_id = "v1_get_export",
    tag = "exports",
    params(("id" = String, Path, description = "Export id", pattern = r"^[A-Za-z0-9_:@-][A-Za-z0-9._:@-]{0,127}$", min_length = 1, max_length = 128)),
    responses(
        (status = 200, description = "The export", body = ExportStatus),
        (status = 404, description = "No such export", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn get(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<ExportStatus>> {
    Ok(Json(state.exports().get(&id).await?))
}

/// Cancels a queued or running export; it ends as `cancelled` (committed chunks stay in
/// the topic, no manifest is made).
#[utoipa::path(
    delete,
    path = "/v1/exports/{id}",
    operation_id = "v1_cancel_export",
    tag = "exports",
    params(("id" = String, Path, description = "Export id", pattern = r"^[A-Za-z0-9_:@-][A-Za-z0-9._:@-]{0,127}$", min_length = 1, max_length = 128)),
    responses(
        (status = 202, description = "Cancelling; the status as it was", body = ExportStatus),
        (status = 404, description = "No such export", body = ErrorBody),
        (status = 409, description = "The export already ended", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn cancel(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<impl IntoResponse> {
    let status = state.exports().cancel(&id).await?;
    Ok((StatusCode::ACCEPTED, Json(status.summary())))
}

/// Resumes an interrupted, failed or cancelled export: only the chunks it did not commit
/// run again, under attempt numbers no earlier run used, and the manifest covers them all.
#[utoipa::path(
    post,
    path = "/v1/exports/{id}/resume",
    operation_id = "v1_resume_export",
    tag = "exports",
    params(("id" = String, Path, description = "Export id", pattern = r"^[A-Za-z0-9_:@-][A-Za-z0-9._:@-]{0,127}$", min_length = 1, max_length = 128)),
    responses(
        (status = 202, description = "Resuming; follow it at status_url or events_url", body = ExportAccepted),
        (status = 404, description = "No such export, or its connection is gone", body = ErrorBody),
        (status = 409, description = "It is running, succeeded, or never got a plan", body = ErrorBody),
        (status = 503, description = "The server is shutting down", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn resume(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<impl IntoResponse> {
    let handle = state.exports().resume(&id, &state.config().exports).await?;
    Ok(accepted(&handle))
}

/// The manifest of a succeeded export (what `ldd consume --server` reads).
#[utoipa::path(
    get,
    path = "/v1/exports/{id}/manifest",
    operation_id = "v1_export_manifest",
    tag = "exports",
    params(("id" = String, Path, description = "Export id", pattern = r"^[A-Za-z0-9_:@-][A-Za-z0-9._:@-]{0,127}$", min_length = 1, max_length = 128)),
    responses(
        (status = 200, description = "The manifest", body = Object),
        (status = 404, description = "No such export", body = ErrorBody),
        (status = 409, description = "The export has not succeeded (yet)", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn manifest(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Manifest>> {
    let status = state.exports().get(&id).await?;
    match (status.state, status.manifest) {
        (ExportState::Succeeded, Some(m)) => Ok(Json(m)),
        (state, _) if !state.is_terminal() => Err(ApiError::Conflict(format!(
            "export `{id}` is {}; its manifest exists once it succeeds (follow GET /v1/exports/{id}/events)",
            state.as_str()
        ))),
        (state, _) => Err(ApiError::Conflict(format!(
            "export `{id}` ended as {} and has no manifest{}",
            state.as_str(),
            status.error.map(|e| format!(": {e}")).unwrap_or_default()
        ))),
    }
}

/// The name of a server-sent event of `GET /v1/exports/{id}/events`.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)] // Only describes the events in the document; `event` and `chunk_event` write them.
pub(crate) enum ExportEventName {
    /// The export's state or progress changed; `data` is an `ExportEventData`.
    Progress,
    /// A chunk was committed; `data` is `{"export_id", "topic", "format", "chunk"}`.
    Chunk,
    /// The export reached its final state; `data` is an `ExportEventData`. The last event.
    Done,
}

/// One server-sent event as an event-stream parser reads it (in OpenAPI 3.1 the schema of
/// a `text/event-stream` answer describes each event, not the stream).
#[derive(ToSchema)]
#[allow(dead_code)] // Only describes the events in the document.
pub(crate) struct ExportEvent {
    /// Which event.
    pub(crate) event: ExportEventName,
    /// JSON text: an `ExportEventData` for `progress` and `done`, a committed chunk for
    /// `chunk`.
    #[schema(content_media_type = "application/json")]
    pub(crate) data: String,
}

type EventStream = BoxStream<'static, Result<Event, Infallible>>;

fn event(status: &ExportStatus) -> Event {
    let name = if status.state.is_terminal() {
        "done"
    } else {
        "progress"
    };
    Event::default()
        .event(name)
        .json_data(ExportEventData::from(status))
        .unwrap_or_else(|_| Event::default().event(name).data(status.state.as_str()))
}

/// A `chunk` event: a committed chunk, as `ldd consume --follow` reads it.
fn chunk_event(chunk: &CommittedChunk) -> Event {
    Event::default()
        .event("chunk")
        .json_data(chunk)
        .unwrap_or_else(|_| {
            Event::default()
                .event("chunk")
                .data(chunk.chunk.chunk_id.to_string())
        })
}

/// The event stream of a live export.
struct Live {
    status: watch::Receiver<ExportStatus>,
    chunks: broadcast::Receiver<CommittedChunk>,
    chunks_open: bool,
    pending: VecDeque<Event>,
    done: bool,
}

impl Live {
    /// Queues a status event; after the final state, the chunks still buffered come first.
    fn push_status(&mut self, status: &ExportStatus) {
        if status.state.is_terminal() {
            loop {
                match self.chunks.try_recv() {
                    Ok(chunk) => self.pending.push_back(chunk_event(&chunk)),
                    Err(broadcast::error::TryRecvError::Lagged(_)) => continue,
                    Err(_) => break,
                }
            }
            self.done = true;
        }
        self.pending.push_back(event(status));
    }
}

/// Emits the current status and the chunks committed so far, then every status change and
/// chunk as they happen, and ends after the final state.
fn follow(handle: &ExportHandle) -> EventStream {
    let (so_far, chunks) = handle.follow_chunks();
    let mut status = handle.subscribe();
    let current = status.borrow_and_update().clone();
    let mut live = Live {
        status,
        chunks,
        chunks_open: true,
        pending: VecDeque::new(),
        done: false,
    };
    if !current.state.is_terminal() {
        live.pending.push_back(event(&current));
    }
    live.pending.extend(so_far.iter().map(chunk_event));
    if current.state.is_terminal() {
        live.push_status(&current);
    }
    stream::unfold(live, |mut live| async move {
        loop {
            if let Some(next) = live.pending.pop_front() {
                return Some((Ok(next), live));
            }
            if live.done {
                return None;
            }
            tokio::select! {
                chunk = live.chunks.recv(), if live.chunks_open => match chunk {
                    Ok(chunk) => live.pending.push_back(chunk_event(&chunk)),
                    // A follower that fell behind takes the missed chunks from the manifest.
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => live.chunks_open = false,
                },
                changed = live.status.changed() => match changed {
                    Ok(()) => {
                        let status = live.status.borrow_and_update().clone();
                        live.push_status(&status);
                    }
                    Err(_) => live.done = true,
                },
            }
        }
    })
    .boxed()
}

/// Streams the export's progress as server-sent events: `progress` events while it runs
/// (about twice a second), a `chunk` event for each committed chunk (those committed before
/// the stream was opened first), then one `done` event with the final state. The data of
/// `progress` and `done` is the export's id, state, progress, plan and error; that of `chunk`
/// is `{"export_id", "topic", "format", "chunk": <the chunk's manifest entry>}`.
#[utoipa::path(
    get,
    path = "/v1/exports/{id}/events",
    operation_id = "v1_export_events",
    tag = "exports",
    params(("id" = String, Path, description = "Export id", pattern = r"^[A-Za-z0-9_:@-][A-Za-z0-9._:@-]{0,127}$", min_length = 1, max_length = 128)),
    responses(
        (status = 200, description = "`text/event-stream` of `progress` and `chunk` events and a final `done` event", content_type = "text/event-stream", body = ExportEvent),
        (status = 404, description = "No such export", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn events(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<impl IntoResponse> {
    let stream = match state.exports().live(&id) {
        Some(handle) => follow(&handle),
        None => {
            let status = state.exports().get(&id).await?;
            stream::once(async move { Ok(event(&status)) }).boxed()
        }
    };
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
