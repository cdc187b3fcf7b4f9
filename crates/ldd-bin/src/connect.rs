//! Builds a database connection from flags (the one place that knows the backends).

use std::sync::Arc;

use ldd_sources::Connection;

use crate::source_args::{ConnectionArgs, DbType};

/// Connects to `url` as `db_type`.
pub(crate) async fn connect(
    db_type: DbType,
    url: &str,
    args: &ConnectionArgs,
) -> anyhow::Result<Arc<dyn Connection>> {
    let _ = (db_type, url, args);
    anyhow::bail!("database sources are not built yet")
}
