//! `/db-connections/*`: the original connection endpoints.

use axum::body::Bytes;
use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::params::{connection_id, ConnectionParams, LegacyQuery};
use crate::server::connections::ConnectionSpec;
use crate::server::error::{ApiError, PlainError};
use crate::server::ops;
use crate::server::state::AppState;
use ldd_sources::{SourceConfig, SourceKind};

/// Body of `POST /db-connections/register`.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub(crate) struct RegisterBody {
    /// Name of the connection (1-128 of `A-Z a-z 0-9 . _ - : @`).
    pub(crate) connection_id: Option<String>,
    /// `influx` or `mongo`.
    pub(crate) db_type: Option<String>,
    /// Server URL (`http://host:8086`, `mongodb://host:27017`).
    pub(crate) url: Option<String>,
    /// InfluxDB 2.x/3.x token.
    pub(crate) token: Option<String>,
    /// InfluxDB organisation.
    pub(crate) org: Option<String>,
    /// MongoDB database used when a request names none.
    pub(crate) database: Option<String>,
    /// ldd extension: InfluxDB 1.x user name.
    pub(crate) username: Option<String>,
    /// ldd extension: InfluxDB 1.x password.
    pub(crate) password: Option<String>,
    /// ldd extension: InfluxDB query language (`auto`, `influxql`, `flux`).
    pub(crate) language: Option<String>,
    /// ldd extension: InfluxDB record shape, `wide` (one record per point, default) or
    /// `narrow` (one per field value, as the original's Flux rows).
    pub(crate) row_shape: Option<String>,
}

/// Answer of `POST /db-connections/register`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct Registered {
    /// What happened.
    pub(crate) message: String,
    /// The connection.
    pub(crate) connection_id: String,
    /// `influx` or `mongo`.
    pub(crate) db_type: SourceKind,
}

/// One connection of `GET /db-connections/list`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct ListedConnection {
    /// The connection.
    pub(crate) connection_id: String,
    /// `influx` or `mongo`.
    pub(crate) db_type: SourceKind,
    /// `active`; ldd also reports `pending` (not connected yet after a restart) and
    /// `unavailable` (the last attempt failed).
    pub(crate) status: String,
}

/// Answer of `GET /db-connections/list`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
// Named apart from the v1 type of the same name: utoipa keys components by name, and one
// would silently replace the other in the document.
#[schema(as = LegacyConnectionList)]
pub(crate) struct ConnectionList {
    /// The connections (never with secrets).
    pub(crate) connections: Vec<ListedConnection>,
}

/// Answer of `DELETE /db-connections/remove`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct Removed {
    /// What happened.
    pub(crate) message: String,
    /// The connection.
    pub(crate) connection_id: String,
}

fn nonempty(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.is_empty())
}

impl RegisterBody {
    fn into_spec(self) -> Result<ConnectionSpec, ApiError> {
        let missing: Vec<&str> = [
            ("connection_id", &self.connection_id),
            ("db_type", &self.db_type),
            ("url", &self.url),
        ]
        .into_iter()
        .filter(|(_, v)| v.as_deref().is_none_or(str::is_empty))
        .map(|(n, _)| n)
        .collect();
        if !missing.is_empty() {
            return Err(ApiError::BadRequest(format!(
                "missing required field(s): {}; send JSON like {{\"connection_id\":\"influx-prod\",\"db_type\":\"influx\",\"url\":\"http://influxdb:8086\"}}",
                missing.join(", ")
            )));
        }
        let bad = |e: ldd_sources::Error| ApiError::BadRequest(e.to_string());
        let kind: SourceKind = self
            .db_type
            .as_deref()
            .unwrap_or_default()
            .parse()
            .map_err(bad)?;
        Ok(ConnectionSpec {
            id: self.connection_id.unwrap_or_default(),
            source: SourceConfig {
                token: nonempty(self.token),
                org: nonempty(self.org),
                database: nonempty(self.database),
                username: nonempty(self.username),
                password: nonempty(self.password),
                language: nonempty(self.language)
                    .map(|l| l.parse())
                    .transpose()
                    .map_err(bad)?,
                row_shape: nonempty(self.row_shape)
                    .map(|r| r.parse())
                    .transpose()
                    .map_err(bad)?,
                ..SourceConfig::new(kind, self.url.unwrap_or_default())
            },
        })
    }
}

/// Registers a database connection; the server is contacted first. An existing id is
/// replaced.
#[utoipa::path(
    post,
    path = "/db-connections/register",
    operation_id = "legacy_register",
    tag = "original",
    request_body = RegisterBody,
    responses(
        (status = 200, description = "Registered", body = Registered),
        (status = 400, description = "A field is missing or wrong (plain text)", body = String),
        (status = 502, description = "The database did not answer (plain text)", body = String),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn register(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Json<Registered>, PlainError> {
    let body: RegisterBody = serde_json::from_slice(&body).map_err(|e| {
        ApiError::BadRequest(format!(
            "the body is not a JSON object of connection fields ({e}); send connection_id, db_type and url"
        ))
    })?;
    let spec = body.into_spec()?;
    let info = ops::register(&state, spec, true).await?;
    Ok(Json(Registered {
        message: "Connection registered successfully".into(),
        connection_id: info.id,
        db_type: info.db_type,
    }))
}

/// Lists the registered connections (never with secrets).
#[utoipa::path(
    get,
    path = "/db-connections/list",
    operation_id = "legacy_list_connections",
    tag = "original",
    responses((status = 200, description = "The connections", body = ConnectionList)),
    security(("bearer" = []))
)]
pub(crate) async fn list(State(state): State<AppState>) -> Json<ConnectionList> {
    let connections = state
        .registry()
        .list()
        .into_iter()
        .map(|c| ListedConnection {
            connection_id: c.id,
            db_type: c.db_type,
            status: c.status,
        })
        .collect();
    Json(ConnectionList { connections })
}

/// Removes a registered connection.
#[utoipa::path(
    delete,
    path = "/db-connections/remove",
    operation_id = "legacy_remove_connection",
    tag = "original",
    params(ConnectionParams),
    responses(
        (status = 200, description = "Removed", body = Removed),
        (status = 400, description = "connection_id is missing (plain text)", body = String),
        (status = 404, description = "No such connection (plain text)", body = String),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn remove(
    State(state): State<AppState>,
    LegacyQuery(params): LegacyQuery<ConnectionParams>,
) -> Result<Json<Removed>, PlainError> {
    let id = connection_id(&params.connection_id)?;
    ops::unregister(&state, &id).await?;
    Ok(Json(Removed {
        message: "Connection removed successfully".into(),
        connection_id: id,
    }))
}
