//! `/datasets/*`: the original catalogue endpoints.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::Json;
use ldd_core::format::record_to_json_value;
use ldd_core::Record;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json_;
use utoipa::ToSchema;

use super::params::{
    connection_id, go_time, ConnectionParams, DetailParams, LegacyQuery, RangeParams,
};
use crate::server::error::{ApiError, PlainError};
use crate::server::ops;
use crate::server::state::AppState;
use crate::server::validate::check_given_texts;
use ldd_sources::SourceKind;

/// One dataset of `GET /datasets/list/`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct ListedDataset {
    /// Database or bucket.
    pub(crate) database_name: String,
    /// Measurement or collection.
    pub(crate) table_name: String,
    /// Always empty (no tag filter).
    #[serde(rename = "tagKeyStr")]
    pub(crate) tag_key_str: String,
    /// Always empty (no tag filter).
    #[serde(rename = "tagValueStr")]
    pub(crate) tag_value_str: String,
    /// `database:table`.
    pub(crate) dataset_name: String,
    /// A sentence describing it.
    pub(crate) dataset_description: String,
    /// `InfluxDB` or `MongoDB`.
    pub(crate) dataset_type: String,
    /// `{bucket, measurement}` (InfluxDB) or `{database, collection}` (MongoDB).
    pub(crate) dataset_params: BTreeMap<String, String>,
}

/// Answer of `GET /datasets/list/`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
// Named apart from the v1 type of the same name: utoipa keys components by name, and one
// would silently replace the other in the document.
#[schema(as = LegacyDatasetList)]
pub(crate) struct DatasetList {
    /// The datasets (MongoDB system databases skipped).
    pub(crate) datasets: Vec<ListedDataset>,
}

/// Answer of `GET /datasets/detail/`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct Detail {
    /// First record's time, `2006-01-02T15:04:05.000Z` (empty when the dataset is empty).
    pub(crate) start: String,
    /// Last record's time.
    pub(crate) end: String,
    /// Database or bucket.
    pub(crate) bucket: String,
    /// Collection or measurement.
    pub(crate) measurement: String,
    /// Records (with the filter applied).
    pub(crate) count: u64,
    /// Field names, sorted, without `_id`.
    pub(crate) columns: Vec<String>,
    /// `[[first record's values], [last record's values]]` in `columns` order.
    #[schema(value_type = Vec<Vec<Object>>)]
    pub(crate) data: Vec<Vec<Json_>>,
    /// InfluxDB: time of the count aggregation (the first record's time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) time: Option<String>,
    /// InfluxDB: the count aggregation's value (the record count).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) value: Option<u64>,
}

/// Answer of `GET /datasets/time-range/`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TimeRangeAnswer {
    /// First record's time, `2006-01-02T15:04:05.000Z`.
    pub(crate) query_start_str: String,
    /// Last record's time.
    pub(crate) query_end_str: String,
    /// Database or bucket.
    pub(crate) database_str: String,
    /// Measurement or collection.
    pub(crate) table_str: String,
    /// The tag key given (or empty).
    pub(crate) tag_key_str: String,
    /// The tag value given (or empty).
    pub(crate) tag_value_str: String,
}

/// Lists the datasets (database × table) of a connection.
#[utoipa::path(
    get,
    path = "/datasets/list/",
    operation_id = "legacy_list_datasets",
    tag = "original",
    params(ConnectionParams),
    responses(
        (status = 200, description = "The datasets", body = DatasetList),
        (status = 400, description = "connection_id is missing (plain text)", body = String),
        (status = 404, description = "No such connection (plain text)", body = String),
        (status = 502, description = "The database failed (plain text)", body = String),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    LegacyQuery(params): LegacyQuery<ConnectionParams>,
) -> Result<Json<DatasetList>, PlainError> {
    let id = connection_id(&params.connection_id)?;
    let (spec, datasets) = ops::list_datasets(&state, &id).await?;
    let kind = spec.source.kind;
    let datasets = datasets
        .into_iter()
        .map(|d| {
            let (description, params) = match kind {
                SourceKind::Influx => (
                    format!(
                        "InfluxDB measurement `{}` in bucket `{}`",
                        d.table, d.database
                    ),
                    [("bucket", &d.database), ("measurement", &d.table)],
                ),
                SourceKind::Mongo => (
                    format!(
                        "MongoDB collection `{}` in database `{}`",
                        d.table, d.database
                    ),
                    [("database", &d.database), ("collection", &d.table)],
                ),
            };
            ListedDataset {
                dataset_name: format!("{}:{}", d.database, d.table),
                dataset_description: description,
                dataset_type: kind.dataset_type().to_owned(),
                dataset_params: params
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v.clone()))
                    .collect(),
                database_name: d.database,
                table_name: d.table,
                tag_key_str: String::new(),
                tag_value_str: String::new(),
            }
        })
        .collect();
    Ok(Json(DatasetList { datasets }))
}

/// A record's values in `columns` order (`null` where it lacks one).
fn row(record: &Option<Record>, columns: &[String]) -> Result<Vec<Json_>, ApiError> {
    let Some(record) = record else {
        return Ok(Vec::new());
    };
    let value = record_to_json_value(record)
        .map_err(|e| ApiError::Upstream(format!("rendering a record: {e}")))?;
    Ok(columns
        .iter()
        .map(|c| value.get(c).cloned().unwrap_or(Json_::Null))
        .collect())
}

/// Count, time range, columns and first/last record of a dataset.
#[utoipa::path(
    get,
    path = "/datasets/detail/",
    operation_id = "legacy_dataset_detail",
    tag = "original",
    params(DetailParams),
    responses(
        (status = 200, description = "The detail", body = Detail),
        (status = 400, description = "A parameter is missing or wrong (plain text)", body = String),
        (status = 404, description = "No such connection or dataset (plain text)", body = String),
        (status = 502, description = "The database failed (plain text)", body = String),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn detail(
    State(state): State<AppState>,
    LegacyQuery(params): LegacyQuery<DetailParams>,
) -> Result<Json<Detail>, PlainError> {
    let id = connection_id(&params.connection_id)?;
    check_given_texts(&[
        ("database_name", &params.database_name),
        ("bucket_name", &params.bucket_name),
        ("table_name", &params.table_name),
        ("measurement", &params.measurement),
        ("tag_key", &params.tag_key),
        ("tag_value", &params.tag_value),
        ("mongo_database", &params.mongo_database),
        ("collection", &params.collection),
        ("time_field", &params.time_field),
    ])?;
    let query = params.dataset();
    let (spec, live) = ops::connection(&state, &id).await?;
    let dataset = query.spec(&spec)?;
    let detail = ops::detail(&spec, live.as_ref(), &dataset).await?;
    let time = |t: Option<i64>| t.map(go_time).unwrap_or_default();
    let data = vec![
        row(&detail.first, &detail.columns)?,
        row(&detail.last, &detail.columns)?,
    ];
    let influx = spec.source.kind == SourceKind::Influx;
    Ok(Json(Detail {
        start: time(detail.start_ns),
        end: time(detail.end_ns),
        bucket: dataset.database.clone(),
        measurement: dataset.table.clone(),
        count: detail.count,
        columns: detail.columns,
        data,
        time: influx.then(|| time(detail.start_ns)),
        value: influx.then_some(detail.count),
    }))
}

/// First and last record time of a dataset.
#[utoipa::path(
    get,
    path = "/datasets/time-range/",
    operation_id = "legacy_time_range",
    tag = "original",
    params(RangeParams),
    responses(
        (status = 200, description = "The time range", body = TimeRangeAnswer),
        (status = 400, description = "A parameter is missing or wrong (plain text)", body = String),
        (status = 404, description = "No such connection, or the dataset is empty (plain text)", body = String),
        (status = 502, description = "The database failed (plain text)", body = String),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn time_range(
    State(state): State<AppState>,
    LegacyQuery(params): LegacyQuery<RangeParams>,
) -> Result<Json<TimeRangeAnswer>, PlainError> {
    let id = connection_id(&params.connection_id)?;
    check_given_texts(&range_texts(&params))?;
    let query = params.dataset();
    let (spec, live) = ops::connection(&state, &id).await?;
    let dataset = query.spec(&spec)?;
    let (start, end) = ops::time_range(&spec, live.as_ref(), &dataset)
        .await?
        .ok_or_else(|| ops::empty_dataset(&dataset))?;
    Ok(Json(TimeRangeAnswer {
        query_start_str: go_time(start),
        query_end_str: go_time(end),
        database_str: dataset.database,
        table_str: dataset.table,
        tag_key_str: query.tag_key_str(),
        tag_value_str: query.tag_value_str(),
    }))
}

/// The text parameters of `/datasets/time-range/`, for [`check_given_texts`].
fn range_texts(p: &RangeParams) -> [(&'static str, &Option<String>); 9] {
    [
        ("database", &p.database),
        ("bucket", &p.bucket),
        ("table", &p.table),
        ("measurement", &p.measurement),
        ("tag_key", &p.tag_key),
        ("tag_value", &p.tag_value),
        ("mongo_database", &p.mongo_database),
        ("collection", &p.collection),
        ("time_field", &p.time_field),
    ]
}
