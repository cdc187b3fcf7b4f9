//! Query parameters of the original endpoints, with their aliases, and how they become a
//! dataset spec.

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use chrono::{DateTime, Utc};
use ldd_core::{DatasetSpec, TagRule, TimeRange};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::server::connections::ConnectionSpec;
use crate::server::error::{ApiError, ApiResult, PlainError};
use crate::server::validate::check_identifier;
#[cfg(test)]
use ldd_sources::SourceConfig;
use ldd_sources::SourceKind;

/// A query string parsed into `T`; a malformed one is a plain-text 400.
#[derive(Debug)]
pub(crate) struct LegacyQuery<T>(pub(crate) T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for LegacyQuery<T> {
    type Rejection = PlainError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(t)| LegacyQuery(t))
            .map_err(|e| {
                PlainError(ApiError::BadRequest(format!(
                    "the query string cannot be read ({}); give each parameter once, URL-encoded",
                    e.body_text()
                )))
            })
    }
}

/// `?connection_id=`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ConnectionParams {
    /// The registered connection.
    #[param(
        required = true,
        min_length = 1,
        max_length = 128,
        pattern = r"^[A-Za-z0-9_:@-][A-Za-z0-9._:@-]{0,127}$"
    )]
    pub(crate) connection_id: Option<String>,
}

/// Parameters of `GET /datasets/detail/`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct DetailParams {
    /// The registered connection.
    #[param(
        required = true,
        min_length = 1,
        max_length = 128,
        pattern = r"^[A-Za-z0-9_:@-][A-Za-z0-9._:@-]{0,127}$"
    )]
    pub(crate) connection_id: Option<String>,
    /// Database (InfluxDB 1.x, MongoDB) or bucket.
    #[param(max_length = 512, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    pub(crate) database_name: Option<String>,
    /// Alias of `database_name`.
    #[param(max_length = 512, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    pub(crate) bucket_name: Option<String>,
    /// Measurement or collection.
    #[param(max_length = 512, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    pub(crate) table_name: Option<String>,
    /// Alias of `table_name`.
    #[param(max_length = 512, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    pub(crate) measurement: Option<String>,
    /// Tag (or field) to filter on; applies only together with `tag_value`.
    #[param(max_length = 512, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    pub(crate) tag_key: Option<String>,
    /// Value `tag_key` must have.
    #[param(max_length = 512, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    pub(crate) tag_value: Option<String>,
    /// MongoDB database (falls back to `database_name`, then the connection's database).
    #[param(max_length = 512, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    pub(crate) mongo_database: Option<String>,
    /// MongoDB collection (falls back to `table_name`).
    #[param(max_length = 512, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    pub(crate) collection: Option<String>,
    /// MongoDB time field.
    #[param(max_length = 512, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    pub(crate) time_field: Option<String>,
}

/// Parameters of `GET /datasets/time-range/`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct RangeParams {
    /// The registered connection.
    #[param(
        required = true,
        min_length = 1,
        max_length = 128,
        pattern = r"^[A-Za-z0-9_:@-][A-Za-z0-9._:@-]{0,127}$"
    )]
    pub(crate) connection_id: Option<String>,
    /// Database (InfluxDB 1.x, MongoDB) or bucket.
    #[param(max_length = 512, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    pub(crate) database: Option<String>,
    /// Alias of `database`.
    #[param(max_length = 512, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    pub(crate) bucket: Option<String>,
    /// Measurement or collection.
    #[param(max_length = 512, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    pub(crate) table: Option<String>,
    /// Alias of `table`.
    #[param(max_length = 512, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    pub(crate) measurement: Option<String>,
    /// Tag (or field) to filter on; applies only together with `tag_value`.
    #[param(max_length = 512, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    pub(crate) tag_key: Option<String>,
    /// Value `tag_key` must have.
    #[param(max_length = 512, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    pub(crate) tag_value: Option<String>,
    /// MongoDB database (falls back to `database`, then the connection's database).
    #[param(max_length = 512, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    pub(crate) mongo_database: Option<String>,
    /// MongoDB collection (falls back to `table`).
    #[param(max_length = 512, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    pub(crate) collection: Option<String>,
    /// MongoDB time field.
    #[param(max_length = 512, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    pub(crate) time_field: Option<String>,
}

/// Parameters of `GET /data/export/` and `GET /data/query-by-time/`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ExportParams {
    /// The registered connection.
    #[param(
        required = true,
        min_length = 1,
        max_length = 128,
        pattern = r"^[A-Za-z0-9_:@-][A-Za-z0-9._:@-]{0,127}$"
    )]
    pub(crate) connection_id: Option<String>,
    /// Kafka bootstrap servers, `host:port[,host:port]`.
    #[param(required = true, min_length = 1, max_length = 2048)]
    pub(crate) kafka_brokers: Option<String>,
    /// Destination topic (created with the configured partition count if it does not
    /// exist).
    #[param(required = true, pattern = r"^[A-Za-z0-9._-]{1,249}$")]
    pub(crate) send_topic: Option<String>,
    /// Database (InfluxDB 1.x, MongoDB) or bucket.
    #[param(max_length = 512, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    pub(crate) database: Option<String>,
    /// Alias of `database`.
    #[param(max_length = 512, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    pub(crate) bucket: Option<String>,
    /// Measurement or collection.
    #[param(max_length = 512, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    pub(crate) table: Option<String>,
    /// Alias of `table`.
    #[param(max_length = 512, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    pub(crate) measurement: Option<String>,
    /// Tag (or field) to filter on; applies only together with `tag_value`.
    #[param(max_length = 512, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    pub(crate) tag_key: Option<String>,
    /// Value `tag_key` must have.
    #[param(max_length = 512, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    pub(crate) tag_value: Option<String>,
    /// Drop one job before rounding to the partition count (default true; `false`/`F` turn
    /// it off).
    #[param(pattern = r"^(|1|t|T|true|TRUE|True|0|f|F|false|FALSE|False)$")]
    pub(crate) drop_last: Option<String>,
    /// MongoDB database (falls back to `database`, then the connection's database).
    #[param(max_length = 512, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    pub(crate) mongo_database: Option<String>,
    /// MongoDB collection (falls back to `table`).
    #[param(max_length = 512, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    pub(crate) collection: Option<String>,
    /// MongoDB time field.
    #[param(max_length = 512, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    pub(crate) time_field: Option<String>,
    /// ldd extension: only records at or after this instant (RFC 3339).
    pub(crate) start: Option<String>,
    /// ldd extension: only records before this instant (RFC 3339).
    pub(crate) end: Option<String>,
    /// ldd extension: payload format `json` (default, the original's shape), `jsonl` or
    /// `protobuf`.
    #[param(pattern = r"^(|json|jsonl|protobuf|proto)$")]
    pub(crate) format: Option<String>,
}

/// The dataset parameters of any endpoint, aliases resolved.
#[derive(Debug, Default, Clone)]
pub(crate) struct DatasetQuery {
    pub(crate) database: Option<String>,
    pub(crate) table: Option<String>,
    pub(crate) tag_key: Option<String>,
    pub(crate) tag_value: Option<String>,
    pub(crate) mongo_database: Option<String>,
    pub(crate) collection: Option<String>,
    pub(crate) time_field: Option<String>,
    /// How this endpoint names the database and table parameters, for messages.
    pub(crate) names: (&'static str, &'static str),
}

/// An absent or empty parameter is absent (Go's `c.Query` gives "" for both).
fn given(value: &Option<String>) -> Option<String> {
    value.as_ref().filter(|v| !v.is_empty()).cloned()
}

impl DetailParams {
    /// The dataset part.
    pub(crate) fn dataset(&self) -> DatasetQuery {
        DatasetQuery {
            database: given(&self.database_name).or_else(|| given(&self.bucket_name)),
            table: given(&self.table_name).or_else(|| given(&self.measurement)),
            tag_key: given(&self.tag_key),
            tag_value: given(&self.tag_value),
            mongo_database: given(&self.mongo_database),
            collection: given(&self.collection),
            time_field: given(&self.time_field),
            names: (
                "database_name (or bucket_name)",
                "table_name (or measurement)",
            ),
        }
    }
}

impl RangeParams {
    /// The dataset part.
    pub(crate) fn dataset(&self) -> DatasetQuery {
        DatasetQuery {
            database: given(&self.database).or_else(|| given(&self.bucket)),
            table: given(&self.table).or_else(|| given(&self.measurement)),
            tag_key: given(&self.tag_key),
            tag_value: given(&self.tag_value),
            mongo_database: given(&self.mongo_database),
            collection: given(&self.collection),
            time_field: given(&self.time_field),
            names: ("database (or bucket)", "table (or measurement)"),
        }
    }
}

impl ExportParams {
    /// The dataset part.
    pub(crate) fn dataset(&self) -> DatasetQuery {
        DatasetQuery {
            database: given(&self.database).or_else(|| given(&self.bucket)),
            table: given(&self.table).or_else(|| given(&self.measurement)),
            tag_key: given(&self.tag_key),
            tag_value: given(&self.tag_value),
            mongo_database: given(&self.mongo_database),
            collection: given(&self.collection),
            time_field: given(&self.time_field),
            names: ("database (or bucket)", "table (or measurement)"),
        }
    }
}

/// The connection id, required and checked.
pub(crate) fn connection_id(value: &Option<String>) -> ApiResult<String> {
    let id = given(value).ok_or_else(|| {
        ApiError::BadRequest(
            "missing parameter `connection_id`; give the id of a registered connection".into(),
        )
    })?;
    check_identifier("connection_id", &id)?;
    Ok(id)
}

impl DatasetQuery {
    /// The dataset spec for a connection of this kind. MongoDB: `mongo_database`, else
    /// the database parameter, else the connection's database; `collection`, else the
    /// table parameter. The tag filter applies only when both `tag_key` and `tag_value`
    /// are given.
    pub(crate) fn spec(&self, connection: &ConnectionSpec) -> ApiResult<DatasetSpec> {
        let (database, table) = match connection.source.kind {
            SourceKind::Mongo => (
                self.mongo_database
                    .clone()
                    .or_else(|| self.database.clone())
                    .or_else(|| connection.source.database.clone()),
                self.collection.clone().or_else(|| self.table.clone()),
            ),
            SourceKind::Influx => (self.database.clone(), self.table.clone()),
        };
        let database = database.ok_or_else(|| {
            ApiError::BadRequest(match connection.source.kind {
                SourceKind::Mongo => format!(
                    "missing parameter: name the MongoDB database with mongo_database or {}",
                    self.names.0
                ),
                SourceKind::Influx => {
                    format!("missing parameter: name the bucket with {}", self.names.0)
                }
            })
        })?;
        let table = table.ok_or_else(|| {
            ApiError::BadRequest(match connection.source.kind {
                SourceKind::Mongo => format!(
                    "missing parameter: name the MongoDB collection with collection or {}",
                    self.names.1
                ),
                SourceKind::Influx => {
                    format!(
                        "missing parameter: name the measurement with {}",
                        self.names.1
                    )
                }
            })
        })?;
        // The original ignored a half-given tag filter, and a time field on InfluxDB.
        let time_field = match connection.source.kind {
            SourceKind::Mongo => self.time_field.clone(),
            SourceKind::Influx => None,
        };
        DatasetSpec::builder(database, table)
            .connection(connection.id.clone())
            .tag(
                self.tag_key.clone(),
                self.tag_value.clone(),
                TagRule::IgnoreIncomplete,
            )
            .time_field(time_field)
            .build()
            .map_err(|e| ApiError::from_core("checking the dataset", e))
    }

    /// The tag key the answer echoes (`tagKeyStr`).
    pub(crate) fn tag_key_str(&self) -> String {
        self.tag_key.clone().unwrap_or_default()
    }

    /// The tag value the answer echoes (`tagValueStr`).
    pub(crate) fn tag_value_str(&self) -> String {
        self.tag_value.clone().unwrap_or_default()
    }
}

/// The original's time format, `2006-01-02T15:04:05.000Z`.
pub(crate) fn go_time(nanos: i64) -> String {
    DateTime::<Utc>::from_timestamp_nanos(nanos)
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// A time range from optional `start`/`end` parameters.
pub(crate) fn range_params(
    start: &Option<String>,
    end: &Option<String>,
) -> ApiResult<Option<TimeRange>> {
    let parse = |name: &str, v: &Option<String>| {
        given(v)
            .map(|t| crate::server::exports::job::parse_instant(name, &t))
            .transpose()
    };
    let (start_ns, end_ns) = (parse("start", start)?, parse("end", end)?);
    let range = (start_ns.is_some() || end_ns.is_some()).then_some(TimeRange { start_ns, end_ns });
    if let Some(r) = &range {
        r.validate()
            .map_err(|e| ApiError::from_core("checking start and end", e))?;
    }
    Ok(range)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mongo() -> ConnectionSpec {
        ConnectionSpec {
            id: "m".into(),
            source: SourceConfig {
                database: Some("fallback".into()),
                ..SourceConfig::new(SourceKind::Mongo, "mongodb://h/")
            },
        }
    }

    #[test]
    fn mongo_database_falls_back() {
        let mut q = RangeParams {
            database: Some("db".into()),
            collection: Some("c".into()),
            ..Default::default()
        }
        .dataset();
        assert_eq!(q.spec(&mongo()).unwrap().database, "db");
        q.mongo_database = Some("mdb".into());
        assert_eq!(q.spec(&mongo()).unwrap().database, "mdb");
        q.mongo_database = None;
        q.database = None;
        assert_eq!(q.spec(&mongo()).unwrap().database, "fallback");
    }

    #[test]
    fn tag_filter_needs_both_parts() {
        let q = RangeParams {
            database: Some("db".into()),
            table: Some("t".into()),
            tag_key: Some("device".into()),
            ..Default::default()
        }
        .dataset();
        assert!(q.spec(&mongo()).unwrap().filters.is_empty());
    }

    #[test]
    fn go_time_has_milliseconds_and_z() {
        assert_eq!(
            go_time(1_704_067_200_000_000_000),
            "2024-01-01T00:00:00.000Z"
        );
        assert_eq!(
            go_time(1_704_067_200_123_456_789),
            "2024-01-01T00:00:00.123Z"
        );
    }
}
