//! Source paths: a bare scan with the database's own client next to ldd exporting the same
//! dataset into Kafka.

use std::sync::Arc;
use std::time::Instant;

use ldd_core::{
    export, DatasetSpec, ExportControl, ExportOptions, Format, GeneratorConfig, JobCountPartitioner,
};
use ldd_sink_kafka::KafkaSink;
use ldd_sources::{baseline, QueryLanguage, SourceConfig, SourceKind};

use super::table::{Measure, Row};
use super::Bench;

/// What a source row is called.
fn label(db: &SourceConfig) -> &'static str {
    match (db.kind, &db.token) {
        (SourceKind::Mongo, _) => "mongo",
        (SourceKind::Influx, None) => "influx 1.x",
        (SourceKind::Influx, Some(_)) => "influx 2.x",
    }
}

impl Bench {
    /// Loads `size` generated records into the database, then runs bare scan and ldd export
    /// `rounds` times each, interleaved; the dataset is dropped at the end.
    ///
    /// InfluxDB gets a second row: the same export with Flux against InfluxQL, which is what
    /// `auto` chooses between.
    pub(super) async fn source_pair(
        &self,
        db: SourceConfig,
        size: u64,
        rounds: u32,
    ) -> anyhow::Result<Vec<Row>> {
        let database = format!("ldd_bench_{}", uuid::Uuid::new_v4().simple());
        let table = "points";
        let conn = ldd_sources::connect_fixtures(&db).await?;
        let url = db.url.as_str();
        let is_influx = db.kind == SourceKind::Influx;
        let generator = GeneratorConfig {
            records: size,
            measurement: table.into(),
            ..Default::default()
        };
        conn.load_generated(&database, table, &generator, &|_| {})
            .await?;
        let mut spec = DatasetSpec::new(&database, table);
        if !is_influx {
            spec.time_field = Some(ldd_core::generator::TIME_FIELD.into());
        }
        let mut base = Measure::default();
        let mut ours = Measure::default();
        let mut influxql = Measure::default();
        let mut flux = Measure::default();
        let mut strategy = String::new();
        let result = async {
            for _ in 0..rounds {
                let started = Instant::now();
                let bytes = match db.kind {
                    SourceKind::Mongo => {
                        let n = baseline::mongo_cursor_scan(url, &database, table, 4096).await?;
                        anyhow::ensure!(n == size, "bare scan saw {n} of {size} documents");
                        0
                    }
                    SourceKind::Influx => {
                        baseline::influx_query_scan(
                            url,
                            db.token.as_deref(),
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

                let (measure, manifest) = self.export_once(conn.open(&spec).await?, size).await?;
                ours.keep_best(measure);
                strategy = format!(
                    "{}, {} planning queries in {} ms",
                    manifest.strategy.name,
                    manifest.strategy.queries,
                    manifest.strategy.duration_ms
                );
                if is_influx {
                    for (language, best) in [
                        (QueryLanguage::Influxql, &mut influxql),
                        (QueryLanguage::Flux, &mut flux),
                    ] {
                        let config = SourceConfig {
                            language: Some(language),
                            ..db.clone()
                        };
                        let conn = ldd_sources::connect(&config).await?;
                        best.keep_best(self.export_once(conn.open(&spec).await?, size).await?.0);
                    }
                }
            }
            anyhow::Ok(())
        }
        .await;
        let dropped = conn.drop_dataset(&database, table).await;
        if is_influx {
            // Also remove the benchmark database itself.
            let _ = conn.drop_dataset(&database, "").await;
        }
        result?;
        dropped?;
        let mut row = Row::new(
            &format!("source: {} scan -> kafka", label(&db)),
            Format::Jsonl,
            size,
            base,
            ours,
        );
        row.note = Some(strategy);
        let mut rows = vec![row];
        if is_influx {
            let mut row = Row::new(
                &format!("source: {} export, flux vs influxql", label(&db)),
                Format::Jsonl,
                size,
                influxql,
                flux,
            );
            row.note = Some("the same ldd export with each language; `auto` picks InfluxQL when the server answers it".into());
            rows.push(row);
        }
        Ok(rows)
    }

    /// One ldd export of `source` into a new topic (deleted afterwards), timed.
    async fn export_once(
        &self,
        source: Arc<dyn ldd_core::DataSource>,
        size: u64,
    ) -> anyhow::Result<(Measure, ldd_core::Manifest)> {
        let topic = self.topic("src").await?;
        let result = async {
            let sink = KafkaSink::connect(self.sink_config(&topic)).await?;
            let started = Instant::now();
            let manifest = export(
                source,
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
            let measure = Measure {
                records: size,
                bytes: manifest.total_bytes,
                seconds: started.elapsed().as_secs_f64(),
                peak_rss_mb: None,
            };
            anyhow::Ok((measure, manifest))
        }
        .await;
        self.cleanup(&topic).await;
        result
    }
}
