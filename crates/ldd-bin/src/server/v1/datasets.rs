//! `/v1/connections/{id}/datasets...`: a connection's catalogue, one dataset's detail and
//! time range.

use axum::extract::State;
use axum::Json;
use ldd_core::format::record_to_json_value;
use ldd_core::{DatasetSpec, Record, TagRule, Value};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{ApiPath, ApiQuery};
use crate::server::connections::ConnectionSpec;
use crate::server::error::{ApiError, ApiResult, ErrorBody};
use crate::server::ops;
use crate::server::state::AppState;
use ldd_sources::SourceKind;

/// One dataset of a connection.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DatasetItem {
    /// `database:table`.
    pub(crate) name: String,
    /// Database or bucket.
    pub(crate) database: String,
    /// Collection or measurement.
    pub(crate) table: String,
    /// Kind of database.
    pub(crate) db_type: SourceKind,
}

/// Answer of `GET /v1/connections/{id}/datasets`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DatasetList {
    /// The connection.
    pub(crate) connection: String,
    /// Its datasets (MongoDB system databases skipped).
    pub(crate) datasets: Vec<DatasetItem>,
}

/// Filters of one dataset.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct DatasetQuery {
    /// Tag (or field) to filter on; give `tag_value` too.
    #[param(
        min_length = 1,
        max_length = 512,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub(crate) tag_key: Option<String>,
    /// Value `tag_key` must have.
    #[param(
        min_length = 1,
        max_length = 512,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub(crate) tag_value: Option<String>,
    /// MongoDB: the field holding each record's time.
    #[param(
        min_length = 1,
        max_length = 512,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub(crate) time_field: Option<String>,
}

/// Answer of `GET /v1/connections/{id}/datasets/{database}/{table}`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DatasetDetailView {
    /// Database or bucket.
    pub(crate) database: String,
    /// Collection or measurement.
    pub(crate) table: String,
    /// Records (with the filter).
    pub(crate) count: u64,
    /// First record's time, RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) start: Option<String>,
    /// Last record's time, RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) end: Option<String>,
    /// Field names, sorted, without `_id`.
    pub(crate) columns: Vec<String>,
    /// The first record.
    #[schema(value_type = Option<Object>)]
    pub(crate) first: Option<serde_json::Value>,
    /// The last record.
    #[schema(value_type = Option<Object>)]
    pub(crate) last: Option<serde_json::Value>,
}

/// Answer of `GET .../time-range`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TimeRangeView {
    /// Database or bucket.
    pub(crate) database: String,
    /// Collection or measurement.
    pub(crate) table: String,
    /// First record's time, RFC 3339.
    pub(crate) start: String,
    /// Last record's time, RFC 3339.
    pub(crate) end: String,
    /// First record's time, ns since the epoch.
    pub(crate) start_ns: i64,
    /// Last record's time, ns since the epoch.
    pub(crate) end_ns: i64,
}

/// Lists a connection's datasets.
#[utoipa::path(
    get,
    path = "/v1/connections/{id}/datasets",
    operation_id = "v1_list_datasets",
    tag = "datasets",
    params(("id" = String, Path, description = "Connection id", pattern = r"^[A-Za-z0-9_:@-][A-Za-z0-9._:@-]{0,127}$", min_length = 1, max_length = 128)),
    responses(
        (status = 200, description = "The datasets", body = DatasetList),
        (status = 404, description = "No such connection", body = ErrorBody),
        (status = 502, description = "The database failed", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<DatasetList>> {
    let (spec, datasets) = ops::list_datasets(&state, &id).await?;
    Ok(Json(DatasetList {
        connection: spec.id,
        datasets: datasets
            .into_iter()
            .map(|d| DatasetItem {
                name: format!("{}:{}", d.database, d.table),
                database: d.database,
                table: d.table,
                db_type: spec.source.kind,
            })
            .collect(),
    }))
}

fn spec_of(
    connection: &ConnectionSpec,
    database: String,
    table: String,
    query: &DatasetQuery,
) -> ApiResult<DatasetSpec> {
    DatasetSpec::builder(database, table)
        .connection(connection.id.clone())
        .tag(
            query.tag_key.clone(),
            query.tag_value.clone(),
            TagRule::BothOrNeither,
        )
        .time_field(query.time_field.clone())
        .build()
        .map_err(|e| ApiError::from_core("checking the dataset", e))
}

fn json_record(record: Option<Record>) -> ApiResult<Option<serde_json::Value>> {
    record
        .map(|r| record_to_json_value(&r))
        .transpose()
        .map_err(|e| ApiError::Upstream(format!("rendering a record: {e}")))
}

/// Count, time range, columns and first/last record of a dataset.
#[utoipa::path(
    get,
    path = "/v1/connections/{id}/datasets/{database}/{table}",
    operation_id = "v1_dataset_detail",
    tag = "datasets",
    params(
        ("id" = String, Path, description = "Connection id", pattern = r"^[A-Za-z0-9_:@-][A-Za-z0-9._:@-]{0,127}$", min_length = 1, max_length = 128),
        ("database" = String, Path, description = "Database or bucket", min_length = 1, max_length = 512, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$"),
        ("table" = String, Path, description = "Collection or measurement", min_length = 1, max_length = 512, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$"),
        DatasetQuery,
    ),
    responses(
        (status = 200, description = "The detail", body = DatasetDetailView),
        (status = 400, description = "A parameter is wrong", body = ErrorBody),
        (status = 404, description = "No such connection or dataset", body = ErrorBody),
        (status = 502, description = "The database failed", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn detail(
    State(state): State<AppState>,
    ApiPath((id, database, table)): ApiPath<(String, String, String)>,
    ApiQuery(query): ApiQuery<DatasetQuery>,
) -> ApiResult<Json<DatasetDetailView>> {
    let (spec, live) = ops::connection(&state, &id).await?;
    let dataset = spec_of(&spec, database, table, &query)?;
    let detail = ops::detail(&spec, live.as_ref(), &dataset).await?;
    Ok(Json(DatasetDetailView {
        database: dataset.database,
        table: dataset.table,
        count: detail.count,
        start: detail.start_ns.map(Value::format_timestamp),
        end: detail.end_ns.map(Value::format_timestamp),
        columns: detail.columns,
        first: json_record(detail.first)?,
        last: json_record(detail.last)?,
    }))
}

/// First and last record time of a dataset.
#[utoipa::path(
    get,
    path = "/v1/connections/{id}/datasets/{database}/{table}/time-range",
    operation_id = "v1_time_range",
    tag = "datasets",
    params(
        ("id" = String, Path, description = "Connection id", pattern = r"^[A-Za-z0-9_:@-][A-Za-z0-9._:@-]{0,127}$", min_length = 1, max_length = 128),
        ("database" = String, Path, description = "Database or bucket", min_length = 1, max_length = 512, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$"),
        ("table" = String, Path, description = "Collection or measurement", min_length = 1, max_length = 512, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$"),
        DatasetQuery,
    ),
    responses(
        (status = 200, description = "The time range", body = TimeRangeView),
        (status = 400, description = "A parameter is wrong", body = ErrorBody),
        (status = 404, description = "No such connection, or the dataset is empty", body = ErrorBody),
        (status = 502, description = "The database failed", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn time_range(
    State(state): State<AppState>,
    ApiPath((id, database, table)): ApiPath<(String, String, String)>,
    ApiQuery(query): ApiQuery<DatasetQuery>,
) -> ApiResult<Json<TimeRangeView>> {
    let (spec, live) = ops::connection(&state, &id).await?;
    let dataset = spec_of(&spec, database, table, &query)?;
    let (start, end) = ops::time_range(&spec, live.as_ref(), &dataset)
        .await?
        .ok_or_else(|| ops::empty_dataset(&dataset))?;
    Ok(Json(TimeRangeView {
        database: dataset.database,
        table: dataset.table,
        start: Value::format_timestamp(start),
        end: Value::format_timestamp(end),
        start_ns: start,
        end_ns: end,
    }))
}
