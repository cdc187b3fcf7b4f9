//! `ldd datasets`: the catalogue of a database, or one dataset's detail and time range.

use std::process::ExitCode;

use clap::Args;
use ldd_core::format::record_to_json_value;
use ldd_core::Value;
use serde_json::json;

use crate::source_args::{ConnectionArgs, DatasetArgs};

/// Flags of this subcommand.
#[derive(Debug, Args)]
pub(crate) struct DatasetsArgs {
    #[command(flatten)]
    pub(crate) connection: ConnectionArgs,
    /// With --database and --table: that dataset's count, time range, columns and
    /// first/last record instead of the list.
    #[command(flatten)]
    pub(crate) dataset: DatasetArgs,
}

pub(crate) async fn run(args: DatasetsArgs) -> anyhow::Result<ExitCode> {
    let connection = args.connection.connect(None).await?;
    let answer = if args.dataset.database.is_some() || args.dataset.table.is_some() {
        let spec = args.dataset.spec()?;
        let detail = connection.detail(&spec).await?;
        let time = |t: Option<i64>| t.map(Value::format_timestamp);
        let record = |r: &Option<ldd_core::Record>| {
            r.as_ref()
                .map(record_to_json_value)
                .transpose()
                .map(|v| v.unwrap_or(serde_json::Value::Null))
        };
        json!({
            "dataset": spec.display_name(),
            "count": detail.count,
            "start": time(detail.start_ns),
            "end": time(detail.end_ns),
            "columns": detail.columns,
            "first": record(&detail.first)?,
            "last": record(&detail.last)?,
        })
    } else {
        let datasets = connection.list_datasets().await?;
        json!({
            "datasets": datasets.iter().map(|d| json!({
                "dataset_name": format!("{}:{}", d.database, d.table),
                "database": d.database,
                "table": d.table,
                "dataset_type": d.kind.dataset_type(),
            })).collect::<Vec<_>>()
        })
    };
    println!("{}", serde_json::to_string_pretty(&answer)?);
    Ok(ExitCode::SUCCESS)
}
