//! `ldd worker`: a member of a worker group that runs the chunks of distributed exports
//! (`ldd export --group`) until SIGTERM or Ctrl-C.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use ldd_core::{CancellationToken, RateLimit};
use ldd_sink_kafka::distributed::{default_worker_id, run_worker, WorkerConfig};
use ldd_sources::ConnectionCatalog;

use crate::flags::{parse_key_value, KafkaClientArgs};

/// Flags of this subcommand.
#[derive(Debug, Args)]
pub(crate) struct WorkerArgs {
    /// Kafka bootstrap servers.
    #[arg(long, env = "LDD_KAFKA_BROKERS")]
    brokers: String,
    #[command(flatten)]
    kafka: KafkaClientArgs,
    /// The worker group: its workers share the chunks of every export sent to it.
    #[arg(long, env = "LDD_GROUP")]
    group: String,
    /// This worker's name [default: <host>-<pid>]. Keep it stable across restarts (a host
    /// or pod name): a restarted worker then aborts its killed predecessor's open
    /// transaction at once. Two live workers must not share one.
    #[arg(long, env = "LDD_WORKER_ID")]
    worker_id: Option<String>,
    /// The database connections tasks may name: a JSON array in the server's format
    /// (`[{"id": "prod", "db_type": "mongo", "url": "mongodb://..."}]`). Without it,
    /// LDD_CONNECTIONS holds the same JSON; the generator needs none.
    #[arg(long)]
    connections: Option<PathBuf>,
    /// At most this many records per second read by this process (to make the source the
    /// bottleneck, e.g. when measuring scale-out).
    #[arg(long)]
    rate_limit: Option<u32>,
    /// Seconds the group waits for a silent (killed) worker before moving its tasks.
    #[arg(long, default_value_t = 10)]
    session_timeout_secs: u64,
    /// Seconds between status lines in the log.
    #[arg(long, default_value_t = 10)]
    status_interval_secs: u64,
    /// Extra librdkafka properties of the chunk producer only, `key=value` (repeatable).
    #[arg(long = "kafka-option", value_parser = parse_key_value)]
    kafka_options: Vec<(String, String)>,
}

pub(crate) async fn run(args: WorkerArgs) -> anyhow::Result<ExitCode> {
    let catalog = match &args.connections {
        Some(path) => ConnectionCatalog::load(path)?,
        None => ConnectionCatalog::from_env()?,
    };
    let client = args.kafka.client(args.brokers.clone());
    let mut config = WorkerConfig::new(client, args.group.clone(), Arc::new(catalog));
    config.worker_id = args.worker_id.clone().unwrap_or_else(default_worker_id);
    config.rate_limit = args.rate_limit.map(RateLimit::per_second).transpose()?;
    config.session_timeout = Duration::from_secs(args.session_timeout_secs);
    config.status_interval = Duration::from_secs(args.status_interval_secs.max(1));
    config.producer_properties = args.kafka_options.iter().cloned().collect();
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        terminated().await;
        eprintln!("stopping: the running chunk is aborted and goes to another worker");
        stop.cancel();
    });
    let summary = run_worker(config, shutdown)
        .await
        .with_context(|| format!("worker of group `{}` failed", args.group))?;
    eprintln!(
        "worker stopped: {} chunks committed ({} records), {} failed, {} handed back",
        summary.chunks_committed,
        summary.records,
        summary.chunks_failed,
        summary.chunks_handed_back
    );
    Ok(ExitCode::SUCCESS)
}

/// SIGTERM (systemd, Kubernetes) or Ctrl-C.
async fn terminated() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
