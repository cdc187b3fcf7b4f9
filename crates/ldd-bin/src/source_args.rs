//! Flags that name a database connection and a dataset, shared by `export`, `datasets` and
//! `load`.

use std::sync::Arc;

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use ldd_core::{DatasetSpec, FieldEquals, TimeRange, Value};
use ldd_sources::Connection;

/// Kind of database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum DbType {
    /// MongoDB (or a MongoDB-wire server such as FerretDB).
    Mongo,
    /// InfluxDB.
    Influx,
}

/// InfluxDB query language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum InfluxLanguage {
    /// InfluxQL when `/query` answers, else Flux.
    Auto,
    /// InfluxQL over the v1 `/query` API.
    Influxql,
    /// Flux over `/api/v2/query`.
    Flux,
}

/// How to reach the database.
#[derive(Debug, Clone, Args)]
pub(crate) struct ConnectionArgs {
    /// Kind of database.
    #[arg(long, value_enum)]
    pub(crate) db_type: Option<DbType>,
    /// Server URL (`mongodb://host:port/`, `http://host:8086`).
    #[arg(long, env = "LDD_SOURCE_URL")]
    pub(crate) url: Option<String>,
    /// InfluxDB 2.x/3.x token.
    #[arg(long, env = "LDD_SOURCE_TOKEN", hide_env_values = true)]
    pub(crate) token: Option<String>,
    /// InfluxDB organisation (Flux).
    #[arg(long)]
    pub(crate) org: Option<String>,
    /// InfluxDB 1.x user name.
    #[arg(long, env = "LDD_SOURCE_USERNAME")]
    pub(crate) username: Option<String>,
    /// InfluxDB 1.x password.
    #[arg(long, env = "LDD_SOURCE_PASSWORD", hide_env_values = true)]
    pub(crate) password: Option<String>,
    /// InfluxDB query language.
    #[arg(long, value_enum, default_value = "auto")]
    pub(crate) influx_language: InfluxLanguage,
}

impl ConnectionArgs {
    /// Connects (and pings) the database the flags name.
    pub(crate) async fn connect(&self) -> anyhow::Result<Arc<dyn Connection>> {
        let (Some(db_type), Some(url)) = (self.db_type, self.url.as_deref()) else {
            anyhow::bail!("name the database with --db-type mongo|influx and --url");
        };
        crate::connect::connect(db_type, url, self)
            .await
            .with_context(|| format!("connecting to the {db_type:?} server"))
    }
}

/// Which records of a database to take.
#[derive(Debug, Clone, Args)]
pub(crate) struct DatasetArgs {
    /// Database (MongoDB, InfluxDB 1.x) or bucket (InfluxDB 2.x).
    #[arg(long)]
    pub(crate) database: Option<String>,
    /// Collection (MongoDB) or measurement (InfluxDB).
    #[arg(long)]
    pub(crate) table: Option<String>,
    /// Only records whose tag (or field) has `--tag-value`.
    #[arg(long, requires = "tag_value")]
    pub(crate) tag_key: Option<String>,
    /// Value for `--tag-key`.
    #[arg(long, requires = "tag_key")]
    pub(crate) tag_value: Option<String>,
    /// Time field (MongoDB; InfluxDB always uses `time`).
    #[arg(long)]
    pub(crate) time_field: Option<String>,
    /// Only records at or after this instant (RFC 3339).
    #[arg(long)]
    pub(crate) start: Option<String>,
    /// Only records before this instant (RFC 3339).
    #[arg(long)]
    pub(crate) end: Option<String>,
    /// Only these fields (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub(crate) fields: Option<Vec<String>>,
}

impl DatasetArgs {
    /// The dataset spec, validated.
    pub(crate) fn spec(&self) -> anyhow::Result<DatasetSpec> {
        let (Some(database), Some(table)) = (&self.database, &self.table) else {
            anyhow::bail!("name the dataset with --database and --table");
        };
        let instant = |flag: &str, text: &Option<String>| -> anyhow::Result<Option<i64>> {
            text.as_deref()
                .map(|t| {
                    Value::parse_timestamp(t).with_context(|| {
                        format!(
                            "--{flag} `{t}` is not an RFC 3339 time (e.g. 2024-01-01T00:00:00Z)"
                        )
                    })
                })
                .transpose()
        };
        let start_ns = instant("start", &self.start)?;
        let end_ns = instant("end", &self.end)?;
        let spec = DatasetSpec {
            connection: None,
            database: database.clone(),
            table: table.clone(),
            filters: match (&self.tag_key, &self.tag_value) {
                (Some(field), Some(value)) => vec![FieldEquals {
                    field: field.clone(),
                    value: value.clone(),
                }],
                _ => Vec::new(),
            },
            time_field: self.time_field.clone(),
            time_range: (start_ns.is_some() || end_ns.is_some())
                .then_some(TimeRange { start_ns, end_ns }),
            projection: self.fields.clone(),
        };
        spec.validate()?;
        Ok(spec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> DatasetArgs {
        DatasetArgs {
            database: Some("db".into()),
            table: Some("t".into()),
            tag_key: Some("device".into()),
            tag_value: Some("dev-1".into()),
            time_field: None,
            start: Some("2024-01-01T00:00:00Z".into()),
            end: None,
            fields: None,
        }
    }

    #[test]
    fn builds_a_spec() {
        let spec = args().spec().unwrap();
        assert_eq!(spec.filters[0].field, "device");
        assert_eq!(
            spec.time_range.unwrap().start_ns,
            Some(1_704_067_200_000_000_000)
        );
    }

    #[test]
    fn bad_times_and_missing_names_say_how_to_fix() {
        let mut a = args();
        a.start = Some("yesterday".into());
        assert!(a.spec().unwrap_err().to_string().contains("RFC 3339"));
        let mut a = args();
        a.table = None;
        assert!(a.spec().unwrap_err().to_string().contains("--table"));
    }
}
