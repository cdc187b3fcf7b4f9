//! The `ldd` command line. See `ldd --help`.

mod cli;
mod commands;
mod flags;
mod progress;
mod report;
mod server;
mod source_args;

use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use cli::{Cli, Command};

/// jemalloc serves every allocation of the process, Rust's and librdkafka's: with many small
/// messages in flight across threads, glibc's allocator was the largest single cost.
#[cfg(all(target_os = "linux", not(target_env = "musl")))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Exit code when a read-back does not verify (distinct from errors, which exit 1).
pub(crate) const EXIT_UNVERIFIED: u8 = 3;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A worker's chunk and status lines are its observability: shown unless asked otherwise.
    let default_log = match &cli.command {
        Command::Worker(_) if cli.log == "warn" => "warn,ldd_sink_kafka::distributed=info".into(),
        _ => cli.log.clone(),
    };
    let filter = std::env::var("RUST_LOG").unwrap_or(default_log);
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_new(&filter).unwrap_or_else(|_| EnvFilter::new("warn")))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Demo(args) => commands::demo::run(args).await,
            Command::Export(args) => commands::export::run(*args).await,
            Command::Consume(args) => commands::consume::run(args).await,
            Command::Serve(args) => server::run(args).await,
            Command::Datasets(args) => commands::datasets::run(args).await,
            Command::Load(args) => commands::load::run(args).await,
            Command::Bench(args) => commands::bench::run(args).await,
            Command::Worker(args) => commands::worker::run(args).await,
        }
    });
    commands::bench::report_peak_rss_if_asked();
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
