//! Builds a database connection from flags (the one place that knows the backends).

use std::sync::Arc;

use ldd_sources::influx::{InfluxConfig, InfluxConnection, QueryLanguage};
use ldd_sources::mongo::{MongoConfig, MongoConnection};
use ldd_sources::Connection;

use crate::source_args::{ConnectionArgs, DbType, InfluxLanguage};

/// Connects to `url` as `db_type`.
pub(crate) async fn connect(
    db_type: DbType,
    url: &str,
    args: &ConnectionArgs,
) -> anyhow::Result<Arc<dyn Connection>> {
    match db_type {
        DbType::Mongo => Ok(Arc::new(
            MongoConnection::connect(MongoConfig {
                url: url.to_owned(),
                ..Default::default()
            })
            .await?,
        )),
        DbType::Influx => {
            let language = match args.influx_language {
                InfluxLanguage::Auto => QueryLanguage::Auto,
                InfluxLanguage::Influxql => QueryLanguage::Influxql,
                InfluxLanguage::Flux => QueryLanguage::Flux,
            };
            Ok(Arc::new(
                InfluxConnection::connect(InfluxConfig {
                    token: args.token.clone(),
                    username: args.username.clone(),
                    password: args.password.clone(),
                    org: args.org.clone(),
                    language,
                    ..InfluxConfig::new(url)
                })
                .await?,
            ))
        }
    }
}
