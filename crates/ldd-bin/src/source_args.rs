//! Flags that name a database connection and a dataset, shared by `export`, `datasets` and
//! `load`.

use std::sync::Arc;

use anyhow::Context as _;
use clap::Args;
use ldd_core::{DatasetSpec, TagRule, TimeBound};
use ldd_sources::{Connection, Fixtures, QueryLanguage, SourceConfig, SourceKind};

/// How to reach the database.
#[derive(Debug, Clone, Args)]
pub(crate) struct ConnectionArgs {
    /// Kind of database: mongo or influx.
    #[arg(long)]
    pub(crate) db_type: Option<SourceKind>,
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
    /// InfluxDB query language: auto (InfluxQL when /query answers, else Flux), influxql
    /// or flux.
    #[arg(long)]
    pub(crate) influx_language: Option<QueryLanguage>,
}

impl ConnectionArgs {
    /// The connection the flags name, with `kind` when the caller already knows it.
    pub(crate) fn config(&self, kind: Option<SourceKind>) -> anyhow::Result<SourceConfig> {
        let (Some(kind), Some(url)) = (kind.or(self.db_type), self.url.as_deref()) else {
            anyhow::bail!("name the database with --db-type mongo|influx and --url");
        };
        Ok(SourceConfig {
            token: self.token.clone(),
            org: self.org.clone(),
            username: self.username.clone(),
            password: self.password.clone(),
            language: self.influx_language,
            ..SourceConfig::new(kind, url)
        })
    }

    /// Connects (and pings) the database the flags name.
    pub(crate) async fn connect(
        &self,
        kind: Option<SourceKind>,
    ) -> anyhow::Result<Arc<dyn Connection>> {
        let config = self.config(kind)?;
        ldd_sources::connect(&config)
            .await
            .with_context(|| format!("connecting to the {} server", config.kind.dataset_type()))
    }

    /// [`connect`](Self::connect), able to load and drop test data too (`ldd load`).
    pub(crate) async fn connect_fixtures(&self) -> anyhow::Result<Arc<dyn Fixtures>> {
        let config = self.config(None)?;
        ldd_sources::connect_fixtures(&config)
            .await
            .with_context(|| format!("connecting to the {} server", config.kind.dataset_type()))
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
        let text = |t: &Option<String>| t.clone().map(TimeBound::Text);
        Ok(DatasetSpec::builder(database.clone(), table.clone())
            .named_with("--")
            .tag(
                self.tag_key.clone(),
                self.tag_value.clone(),
                TagRule::BothOrNeither,
            )
            .time_field(self.time_field.clone())
            .start(text(&self.start))
            .end(text(&self.end))
            .projection(self.fields.clone())
            .build()?)
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
