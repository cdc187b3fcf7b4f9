//! Source paths: a bare scan with the database's own client next to ldd exporting the same
//! dataset into Kafka.

use std::sync::Arc;
use std::time::Instant;

use ldd_core::{
    export, DatasetSpec, ExportControl, ExportOptions, Format, GeneratorConfig, JobCountPartitioner,
};
use ldd_sink_kafka::KafkaSink;
use ldd_sources::influx::{InfluxConfig, InfluxConnection};
use ldd_sources::mongo::{MongoConfig, MongoConnection};
use ldd_sources::{baseline, Connection};

use super::table::{Measure, Row};
use super::Bench;

/// Which database a source row is for.
#[derive(Debug, Clone, Copy)]
pub(super) enum Db {
    Mongo,
    Influx,
}

impl Bench {
    /// Loads `size` generated records into the database, then runs bare scan and ldd export
    /// `rounds` times each, interleaved; the dataset is dropped at the end.
    pub(super) async fn source_pair(
        &self,
        db: Db,
        url: &str,
        size: u64,
        rounds: u32,
    ) -> anyhow::Result<Row> {
        let database = format!("ldd_bench_{}", uuid::Uuid::new_v4().simple());
        let table = "points";
        let conn: Arc<dyn Connection> = match db {
            Db::Mongo => Arc::new(
                MongoConnection::connect(MongoConfig {
                    url: url.to_owned(),
                    ..Default::default()
                })
                .await?,
            ),
            Db::Influx => Arc::new(InfluxConnection::connect(InfluxConfig::new(url)).await?),
        };
        let generator = GeneratorConfig {
            records: size,
            measurement: table.into(),
            ..Default::default()
        };
        conn.load_generated(&database, table, &generator, &|_| {})
            .await?;
        let mut spec = DatasetSpec::new(&database, table);
        if matches!(db, Db::Mongo) {
            spec.time_field = Some(ldd_core::generator::TIME_FIELD.into());
        }
        let mut base = Measure::default();
        let mut ours = Measure::default();
        let mut strategy = String::new();
        let result = async {
            for _ in 0..rounds {
                let started = Instant::now();
                let bytes = match db {
                    Db::Mongo => {
                        let n = baseline::mongo_cursor_scan(url, &database, table, 4096).await?;
                        anyhow::ensure!(n == size, "bare scan saw {n} of {size} documents");
                        0
                    }
                    Db::Influx => {
                        baseline::influx_query_scan(
                            url,
                            &database,
                            table,
                            ldd_sources::influx::DEFAULT_CHUNK_SIZE,
                        )
                        .await?
                    }
                };
                base.keep_best(Measure {
                    records: size,
                    bytes,
                    seconds: started.elapsed().as_secs_f64(),
                    peak_rss_mb: None,
                });

                let topic = self.topic("src").await?;
                let sink = KafkaSink::connect(self.sink_config(&topic)).await?;
                let started = Instant::now();
                let manifest = export(
                    conn.open(&spec).await?,
                    Arc::new(sink),
                    &JobCountPartitioner::default(),
                    ExportOptions {
                        format: Format::Jsonl,
                        workers: self.workers,
                        ..Default::default()
                    },
                    ExportControl::default(),
                )
                .await?;
                anyhow::ensure!(
                    manifest.total_records == size,
                    "ldd exported {} of {size} records",
                    manifest.total_records
                );
                ours.keep_best(Measure {
                    records: size,
                    bytes: manifest.total_bytes,
                    seconds: started.elapsed().as_secs_f64(),
                    peak_rss_mb: None,
                });
                strategy = format!(
                    "{}, {} planning queries in {} ms",
                    manifest.strategy.name,
                    manifest.strategy.queries,
                    manifest.strategy.duration_ms
                );
                self.cleanup(&topic).await;
            }
            anyhow::Ok(())
        }
        .await;
        let dropped = conn.drop_dataset(&database, table).await;
        if matches!(db, Db::Influx) {
            // Also remove the benchmark database itself.
            let _ = conn.drop_dataset(&database, "").await;
        }
        result?;
        dropped?;
        let label = match db {
            Db::Mongo => "source: mongo scan -> kafka",
            Db::Influx => "source: influx scan -> kafka",
        };
        let mut row = Row::new(label, Format::Jsonl, size, base, ours);
        row.note = Some(strategy);
        Ok(row)
    }
}
