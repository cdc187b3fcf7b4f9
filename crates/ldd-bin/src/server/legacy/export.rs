//! `/data/export/` and `/data/query-by-time/`: the original synchronous exports, run by the
//! same background manager as v1 exports (so they also show under `/v1/exports`).

use axum::extract::State;
use axum::Json;
use ldd_core::{FailureCause, TimeRange};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::params::{connection_id, go_time, range_params, ExportParams, LegacyQuery};
use crate::server::error::{ApiError, ApiResult, PlainError};
use crate::server::exports::model::{
    DatasetBody, DestinationBody, ExportRequest, ExportState, FilterBody, FormatName, Origin,
    TimeRangeBody,
};
use crate::server::exports::ExportJob;
use crate::server::ops;
use crate::server::state::AppState;
use crate::server::validate::{check_brokers, check_given_texts, check_topic, parse_bool};

/// Answer of a finished original export.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ExportAnswer {
    /// First record's time (`2006-01-02T15:04:05.000Z`), or the `start` given; empty when
    /// unknown.
    pub(crate) query_start_str: String,
    /// Last record's time, or the `end` given.
    pub(crate) query_end_str: String,
    /// Database or bucket.
    pub(crate) database_str: String,
    /// Measurement or collection.
    pub(crate) table_str: String,
    /// The tag key given (or empty).
    pub(crate) tag_key_str: String,
    /// The tag value given (or empty).
    pub(crate) tag_value_str: String,
    /// The brokers written to.
    pub(crate) kafka_brokers_str: String,
    /// The topic written to.
    pub(crate) send_topic_str: String,
    /// Kafka messages delivered (one record each in the default `json` format).
    pub(crate) total_messages: u64,
    /// ldd: records delivered.
    pub(crate) total_records: u64,
    /// When the export started, ms since the epoch.
    pub(crate) start_time_millis: i64,
    /// When it finished, ms since the epoch.
    pub(crate) end_time_millis: i64,
    /// `"partition:firstOffset:lastOffset"` per partition, from the manifest (delivery
    /// reports), never from watermarks.
    pub(crate) offsets_data: Vec<String>,
    /// ldd: the export id (messages carry it in the `ldd-export-id` header); the manifest
    /// is at `/v1/exports/{exportId}/manifest`.
    pub(crate) export_id: String,
}

/// Exports a dataset into a Kafka topic and answers when every record is delivered.
#[utoipa::path(
    get,
    path = "/data/export/",
    operation_id = "legacy_export",
    tag = "original",
    params(ExportParams),
    responses(
        (status = 200, description = "Delivered", body = ExportAnswer),
        (status = 400, description = "A parameter is missing or wrong (plain text)", body = String),
        (status = 404, description = "No such connection (plain text)", body = String),
        (status = 502, description = "The database or Kafka failed (plain text)", body = String),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn export(
    State(state): State<AppState>,
    LegacyQuery(params): LegacyQuery<ExportParams>,
) -> Result<Json<ExportAnswer>, PlainError> {
    Ok(Json(run(&state, params, false).await?))
}

/// Like `/data/export/`, over the dataset's time range (`start`/`end` narrow it): the
/// range is read first, and an empty dataset is a 404.
#[utoipa::path(
    get,
    path = "/data/query-by-time/",
    operation_id = "legacy_query_by_time",
    tag = "original",
    params(ExportParams),
    responses(
        (status = 200, description = "Delivered", body = ExportAnswer),
        (status = 400, description = "A parameter is missing or wrong (plain text)", body = String),
        (status = 404, description = "No such connection, or the dataset is empty (plain text)", body = String),
        (status = 502, description = "The database or Kafka failed (plain text)", body = String),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn query_by_time(
    State(state): State<AppState>,
    LegacyQuery(params): LegacyQuery<ExportParams>,
) -> Result<Json<ExportAnswer>, PlainError> {
    Ok(Json(run(&state, params, true).await?))
}

async fn run(state: &AppState, params: ExportParams, by_time: bool) -> ApiResult<ExportAnswer> {
    let missing: Vec<&str> = [
        ("connection_id", &params.connection_id),
        ("kafka_brokers", &params.kafka_brokers),
        ("send_topic", &params.send_topic),
    ]
    .into_iter()
    .filter(|(_, v)| v.as_deref().is_none_or(str::is_empty))
    .map(|(n, _)| n)
    .collect();
    if !missing.is_empty() {
        return Err(ApiError::BadRequest(format!(
            "missing required parameter(s): {}; e.g. ?connection_id=influx-prod&database=telegraf&table=cpu&kafka_brokers=broker1:9092&send_topic=cpu-data",
            missing.join(", ")
        )));
    }
    let id = connection_id(&params.connection_id)?;
    check_given_texts(&[
        ("database", &params.database),
        ("bucket", &params.bucket),
        ("table", &params.table),
        ("measurement", &params.measurement),
        ("tag_key", &params.tag_key),
        ("tag_value", &params.tag_value),
        ("mongo_database", &params.mongo_database),
        ("collection", &params.collection),
        ("time_field", &params.time_field),
    ])?;
    let brokers = params.kafka_brokers.clone().unwrap_or_default();
    let topic = params.send_topic.clone().unwrap_or_default();
    check_brokers("kafka_brokers", &brokers)?;
    check_topic("send_topic", &topic)?;
    let drop_last = match params.drop_last.as_deref() {
        None | Some("") => true,
        Some(v) => parse_bool("drop_last", v)?,
    };
    let format = match params.format.as_deref() {
        None | Some("") => FormatName::Json,
        Some(v) => v
            .parse::<ldd_core::Format>()
            .map_err(|_| ApiError::BadRequest("format must be json, jsonl or protobuf".into()))?
            .into(),
    };
    let requested = range_params(&params.start, &params.end)?;
    let query = params.dataset();
    let (spec, live) = ops::connection(state, &id).await?;
    let mut dataset = query.spec(&spec)?;
    dataset.time_range = requested;

    // query-by-time needs the dataset's first and last times before it can export; export
    // shows them in the answer too, but looks them up while the export runs.
    let mut found = None;
    if by_time {
        let (first, last) = ops::time_range(&spec, live.as_ref(), &dataset)
            .await?
            .ok_or_else(|| ops::empty_dataset(&dataset))?;
        found = Some((first, last));
        // Inclusive of the last record, as the original's range query was.
        let start_ns = requested.and_then(|r| r.start_ns).unwrap_or(first);
        let end_ns = requested
            .and_then(|r| r.end_ns)
            .unwrap_or_else(|| last.saturating_add(1));
        dataset.time_range = Some(TimeRange {
            start_ns: Some(start_ns),
            end_ns: Some(end_ns),
        });
    }

    let defaults = &state.config().exports;
    let request = ExportRequest {
        connection: id,
        dataset: DatasetBody {
            database: dataset.database.clone(),
            table: dataset.table.clone(),
            filters: dataset
                .filters
                .iter()
                .map(|f| FilterBody {
                    field: f.field.clone(),
                    value: f.value.clone(),
                })
                .collect(),
            time_field: dataset.time_field.clone(),
            time_range: dataset.time_range.map(|r| TimeRangeBody {
                start_ns: r.start_ns,
                end_ns: r.end_ns,
                ..Default::default()
            }),
            projection: None,
        },
        destination: DestinationBody {
            brokers: Some(brokers.clone()),
            topic: topic.clone(),
            partitions: Some(defaults.partitions),
            compression: None,
            transactional: None,
        },
        format: Some(format),
        delivery: None,
        jobs: None,
        drop_last: Some(drop_last),
        workers: None,
        batch_kib: None,
        attempts: None,
        export_id: None,
        manifest_topic: None,
    };
    let job = ExportJob::build(request, defaults, Origin::Legacy)?;
    let export_id = job.id.clone();
    let started = chrono::Utc::now().timestamp_millis();
    let handle = state.exports().submit(job).await?;
    let lookup = async {
        if found.is_some() {
            return found;
        }
        match ops::time_range(&spec, live.as_ref(), &dataset).await {
            Ok(range) => range,
            Err(err) => {
                tracing::debug!("export {}: no time range: {err}", dataset.display_name());
                None
            }
        }
    };
    let (found, status) = tokio::join!(lookup, handle.finished());
    let finished = chrono::Utc::now().timestamp_millis();
    let shown =
        |given: Option<i64>, found: Option<i64>| given.or(found).map(go_time).unwrap_or_default();
    let query_start_str = shown(requested.and_then(|r| r.start_ns), found.map(|f| f.0));
    let query_end_str = shown(requested.and_then(|r| r.end_ns), found.map(|f| f.1));
    match (status.state, status.manifest) {
        (ExportState::Succeeded, Some(manifest)) => Ok(ExportAnswer {
            query_start_str,
            query_end_str,
            database_str: dataset.database,
            table_str: dataset.table,
            tag_key_str: query.tag_key_str(),
            tag_value_str: query.tag_value_str(),
            kafka_brokers_str: brokers,
            send_topic_str: topic,
            total_messages: manifest.total_messages,
            total_records: manifest.total_records,
            start_time_millis: started,
            end_time_millis: finished,
            offsets_data: manifest.offsets_data(),
            export_id,
        }),
        (ExportState::Failed, _) => {
            let message = format!(
                "export {export_id} failed: {}",
                status.error.unwrap_or_default()
            );
            Err(match status.error_cause {
                Some(FailureCause::Input) => ApiError::BadRequest(message),
                _ => ApiError::Upstream(message),
            })
        }
        (ExportState::Cancelled, _) => Err(ApiError::Conflict(format!(
            "export {export_id} was cancelled (DELETE /v1/exports/{export_id})"
        ))),
        (state, _) => Err(ApiError::Unavailable(format!(
            "export {export_id} ended as {}: {}",
            state.as_str(),
            status.error.unwrap_or_default()
        ))),
    }
}
