//! `/v1/connections`: create, list, get, delete.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ApiJson, ApiPath};
use crate::server::connections::{ConnectionInfo, ConnectionSpec};
use crate::server::error::{ApiResult, ErrorBody};
use crate::server::ops;
use crate::server::state::AppState;
use ldd_sources::{QueryLanguage, RowShape, SourceConfig, SourceKind};

/// Body of `POST /v1/connections`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateConnection {
    /// Name of the connection (1-128 of `A-Z a-z 0-9 . _ - : @`).
    #[schema(
        min_length = 1,
        max_length = 128,
        pattern = r"^[A-Za-z0-9_:@-][A-Za-z0-9._:@-]{0,127}$"
    )]
    pub(crate) id: String,
    /// Kind of database.
    pub(crate) db_type: SourceKind,
    /// Server URL (`mongodb://user:pass@host:27017/`, `http://host:8086`).
    #[schema(
        min_length = 1,
        max_length = 2048,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub(crate) url: String,
    /// InfluxDB 2.x/3.x token (stored, never shown).
    #[serde(default)]
    #[schema(
        min_length = 1,
        max_length = 4096,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub(crate) token: Option<String>,
    /// InfluxDB organisation.
    #[serde(default)]
    #[schema(
        min_length = 1,
        max_length = 256,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub(crate) org: Option<String>,
    /// MongoDB: database used when a request names none.
    #[serde(default)]
    #[schema(
        min_length = 1,
        max_length = 256,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub(crate) database: Option<String>,
    /// InfluxDB 1.x user name.
    #[serde(default)]
    #[schema(
        min_length = 1,
        max_length = 256,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub(crate) username: Option<String>,
    /// InfluxDB 1.x password (stored, never shown).
    #[serde(default)]
    #[schema(
        min_length = 1,
        max_length = 1024,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub(crate) password: Option<String>,
    /// InfluxDB query language: `auto` (default), `influxql` or `flux`.
    #[serde(default)]
    pub(crate) language: Option<QueryLanguage>,
    /// InfluxDB record shape: `wide` (one record per point, default) or `narrow` (one per
    /// field value, the original's shape).
    #[serde(default)]
    pub(crate) row_shape: Option<RowShape>,
}

/// Answer of `GET /v1/connections`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ConnectionList {
    /// The connections, by id.
    pub(crate) connections: Vec<ConnectionInfo>,
}

/// Registers a connection after checking that its server answers.
#[utoipa::path(
    post,
    path = "/v1/connections",
    operation_id = "v1_create_connection",
    tag = "connections",
    request_body = CreateConnection,
    responses(
        (status = 201, description = "Registered", body = ConnectionInfo),
        (status = 400, description = "The request is wrong", body = ErrorBody),
        (status = 409, description = "The id is taken", body = ErrorBody),
        (status = 502, description = "The database did not answer", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn create(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateConnection>,
) -> ApiResult<impl IntoResponse> {
    let spec = ConnectionSpec {
        id: body.id,
        source: SourceConfig {
            kind: body.db_type,
            url: body.url,
            token: body.token,
            org: body.org,
            database: body.database,
            username: body.username,
            password: body.password,
            language: body.language,
            row_shape: body.row_shape,
        },
    };
    let info = ops::register(&state, spec, false).await?;
    let location = format!("/v1/connections/{}", info.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(info),
    ))
}

/// Lists the connections (never with secrets).
#[utoipa::path(
    get,
    path = "/v1/connections",
    operation_id = "v1_list_connections",
    tag = "connections",
    responses((status = 200, description = "The connections", body = ConnectionList)),
    security(("bearer" = []))
)]
pub(crate) async fn list(State(state): State<AppState>) -> Json<ConnectionList> {
    Json(ConnectionList {
        connections: state.registry().list(),
    })
}

/// One connection (never with secrets).
#[utoipa::path(
    get,
    path = "/v1/connections/{id}",
    operation_id = "v1_get_connection",
    tag = "connections",
    params(("id" = String, Path, description = "Connection id", pattern = r"^[A-Za-z0-9_:@-][A-Za-z0-9._:@-]{0,127}$", min_length = 1, max_length = 128)),
    responses(
        (status = 200, description = "The connection", body = ConnectionInfo),
        (status = 404, description = "No such connection", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn get(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<ConnectionInfo>> {
    Ok(Json(state.registry().info(&id)?))
}

/// Removes a connection.
#[utoipa::path(
    delete,
    path = "/v1/connections/{id}",
    operation_id = "v1_delete_connection",
    tag = "connections",
    params(("id" = String, Path, description = "Connection id", pattern = r"^[A-Za-z0-9_:@-][A-Za-z0-9._:@-]{0,127}$", min_length = 1, max_length = 128)),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "No such connection", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn delete(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    ops::unregister(&state, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
