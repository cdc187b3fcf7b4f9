//! Scale-out rows: one export run by 1, 2 and 4 `ldd worker` processes of a group, each
//! process limited to the same records per second so that the source, not this machine's
//! cores, is the bottleneck; and the coordination overhead (one worker against a local
//! export under the same limit).

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use ldd_core::{
    export, ExportControl, ExportOptions, ExportParts, Format, GeneratorConfig, GeneratorSource,
    JobCountPartitioner, RateLimit, TaskSource, ThrottledSource,
};
use ldd_sink_kafka::distributed::{run_distributed, GroupExport};
use ldd_sink_kafka::{KafkaSink, KafkaSinkConfig};
use tokio::process::{Child, Command};

use super::table::{Measure, Row};
use super::Bench;

/// Worker counts measured; each is compared with one worker.
const WORKER_COUNTS: [usize; 3] = [1, 2, 4];

impl Bench {
    /// The scale-out rows for `records` generated records at `rate` records/s per process.
    pub(super) async fn scale_out_rows(&self, records: u64, rate: u32) -> anyhow::Result<Vec<Row>> {
        let generator = GeneratorConfig {
            records,
            ..Default::default()
        };
        let format = Format::Jsonl;
        let local = self.limited_local_export(&generator, format, rate).await?;
        let mut rows = Vec::new();
        let mut one_worker = None;
        for workers in WORKER_COUNTS {
            let measure = self.group_export(&generator, format, rate, workers).await?;
            let base = *one_worker.get_or_insert(measure);
            if workers == 1 {
                let mut row = Row::new(
                    "scale-out overhead (1 worker vs local)",
                    format,
                    records,
                    local,
                    measure,
                );
                row.note = Some(format!("{rate} records/s per process"));
                rows.push(row);
            } else {
                let mut row = Row::new(
                    &format!("scale-out {workers} workers vs 1"),
                    format,
                    records,
                    base,
                    measure,
                );
                row.note = Some(format!("ideal ratio {workers}"));
                rows.push(row);
            }
        }
        Ok(rows)
    }

    /// A local export whose source reads at most `rate` records/s (all workers together).
    async fn limited_local_export(
        &self,
        generator: &GeneratorConfig,
        format: Format,
        rate: u32,
    ) -> anyhow::Result<Measure> {
        let topic = self.topic("scale-local").await?;
        let sink = KafkaSink::connect(self.sink_config(&topic)).await?;
        let source = ThrottledSource::new(
            Arc::new(GeneratorSource::new(generator.clone())),
            RateLimit::per_second(rate)?,
        );
        let started = Instant::now();
        let manifest = export(
            Arc::new(source),
            Arc::new(sink),
            &JobCountPartitioner::default(),
            ExportOptions {
                format,
                workers: self.workers,
                ..Default::default()
            },
            ExportControl::default(),
        )
        .await?;
        let measure = Measure::of_export(&manifest, started);
        self.cleanup(&topic).await;
        Ok(measure)
    }

    /// The export run by `workers` worker processes of a new group, timed from publishing
    /// to the manifest (the workers have joined before).
    async fn group_export(
        &self,
        generator: &GeneratorConfig,
        format: Format,
        rate: u32,
        workers: usize,
    ) -> anyhow::Result<Measure> {
        let group = format!("ldd-bench-{}", uuid::Uuid::new_v4().simple());
        let logs = tempfile_dir()?;
        let mut children = Vec::new();
        for i in 0..workers {
            children.push(spawn_worker(&self.client.brokers, &group, i, rate, &logs)?);
        }
        let result = async {
            wait_until_assigned(&logs, workers).await?;
            // A tiny export first: the group is serving once it completes.
            self.run_group(
                &group,
                &GeneratorConfig {
                    records: 480,
                    ..generator.clone()
                },
                format,
            )
            .await?;
            self.run_group(&group, generator, format).await
        }
        .await;
        for mut child in children {
            let _ = child.kill().await;
        }
        for topic in [format!("ldd.{group}.tasks"), format!("ldd.{group}.results")] {
            self.cleanup(&topic).await;
        }
        let _ = std::fs::remove_dir_all(&logs);
        result
    }

    async fn run_group(
        &self,
        group: &str,
        generator: &GeneratorConfig,
        format: Format,
    ) -> anyhow::Result<Measure> {
        let topic = self.topic("scale").await?;
        let config: KafkaSinkConfig = self.sink_config(&topic);
        let sink = KafkaSink::connect(config.clone()).await?;
        let parts = ExportParts {
            source: Arc::new(GeneratorSource::new(generator.clone())),
            sink: Arc::new(sink),
            options: ExportOptions {
                format,
                ..Default::default()
            },
            control: ExportControl::default(),
        };
        let task_source = TaskSource::Generator {
            config: generator.clone(),
        };
        let group = GroupExport::new(self.client.clone(), group, task_source);
        let started = Instant::now();
        let manifest =
            run_distributed(parts, &config, &JobCountPartitioner::default(), &group).await?;
        let measure = Measure::of_export(&manifest, started);
        self.cleanup(&topic).await;
        Ok(measure)
    }
}

fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "ldd-bench-workers-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

fn spawn_worker(
    brokers: &str,
    group: &str,
    i: usize,
    rate: u32,
    logs: &Path,
) -> anyhow::Result<Child> {
    let exe = std::env::current_exe().context("finding the ldd binary")?;
    let log = std::fs::File::create(logs.join(format!("worker-{i}.log")))?;
    Command::new(exe)
        .args([
            "worker",
            "--brokers",
            brokers,
            "--group",
            group,
            "--worker-id",
            &format!("bench-{i}"),
        ])
        .args(["--rate-limit", &rate.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .context("starting an ldd worker")
}

/// Waits until every worker's log shows an assignment, then lets the group settle.
async fn wait_until_assigned(logs: &Path, workers: usize) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let assigned = (0..workers)
            .filter(|i| {
                std::fs::read_to_string(logs.join(format!("worker-{i}.log")))
                    .is_ok_and(|t| t.contains("task partitions assigned"))
            })
            .count();
        if assigned == workers {
            tokio::time::sleep(Duration::from_secs(3)).await;
            return Ok(());
        }
        if Instant::now() > deadline {
            anyhow::bail!("only {assigned} of {workers} workers joined the group within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
