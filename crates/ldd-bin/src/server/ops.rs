//! Operations both APIs share (register, remove, catalogue); the handlers only shape the
//! answers.

use std::sync::Arc;

use ldd_core::DatasetSpec;
use ldd_sources::{Connection, DatasetDetail, DatasetInfo};

use super::connections::{scrubbed, ConnectionInfo, ConnectionSpec};
use super::error::{ApiError, ApiResult};
use super::exports::manager::now;
use super::state::AppState;

/// Registers a connection after connecting to it (which pings the server). With
/// `replace`, an existing id is replaced (the original's behaviour); without, it is a 409.
pub(crate) async fn register(
    state: &AppState,
    spec: ConnectionSpec,
    replace: bool,
) -> ApiResult<ConnectionInfo> {
    spec.validate()?;
    if !replace && state.registry().contains(&spec.id) {
        return Err(ApiError::Conflict(format!(
            "connection `{}` exists; delete it first (DELETE /v1/connections/{})",
            spec.id, spec.id
        )));
    }
    let live = state.registry().connect(&spec).await?;
    let created_at = now();
    state.store().put_connection(&spec, &created_at).await?;
    tracing::info!(
        "connection `{}` registered ({} at {})",
        spec.id,
        spec.source.kind.as_str(),
        spec.source.redacted().url
    );
    let id = spec.id.clone();
    state.registry().insert(spec, created_at, Some(live));
    state.registry().info(&id)
}

/// Removes a connection from the registry and the state file.
pub(crate) async fn unregister(state: &AppState, id: &str) -> ApiResult<()> {
    if !state.registry().contains(id) {
        return Err(super::registry::unknown_connection(id));
    }
    state.store().delete_connection(id).await?;
    state.registry().remove(id);
    tracing::info!("connection `{id}` removed");
    Ok(())
}

/// The registration and live connection of an id (connecting when needed).
pub(crate) async fn connection(
    state: &AppState,
    id: &str,
) -> ApiResult<(ConnectionSpec, Arc<dyn Connection>)> {
    let spec = state.registry().spec(id)?;
    let live = state.registry().connection(id).await?;
    Ok((spec, live))
}

/// The datasets of a connection.
pub(crate) async fn list_datasets(
    state: &AppState,
    id: &str,
) -> ApiResult<(ConnectionSpec, Vec<DatasetInfo>)> {
    let (spec, live) = connection(state, id).await?;
    let datasets = live
        .list_datasets()
        .await
        .map_err(|e| scrubbed(&spec, "listing datasets", e))?;
    Ok((spec, datasets))
}

/// Count, time range, columns and first/last record of a dataset.
pub(crate) async fn detail(
    spec: &ConnectionSpec,
    live: &dyn Connection,
    dataset: &DatasetSpec,
) -> ApiResult<DatasetDetail> {
    live.detail(dataset).await.map_err(|e| {
        scrubbed(
            spec,
            &format!("reading the detail of {}", dataset.display_name()),
            e,
        )
    })
}

/// First and last record time of a dataset; `None` when it is empty.
pub(crate) async fn time_range(
    spec: &ConnectionSpec,
    live: &dyn Connection,
    dataset: &DatasetSpec,
) -> ApiResult<Option<(i64, i64)>> {
    live.time_range(dataset).await.map_err(|e| {
        scrubbed(
            spec,
            &format!("reading the time range of {}", dataset.display_name()),
            e,
        )
    })
}

/// The 404 of a dataset without records (no time range).
pub(crate) fn empty_dataset(dataset: &DatasetSpec) -> ApiError {
    ApiError::NotFound(format!(
        "dataset {} has no records (with the given filters), so it has no time range",
        dataset.display_name()
    ))
}
