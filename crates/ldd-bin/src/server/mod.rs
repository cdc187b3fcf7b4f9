//! `ldd serve`: the HTTP API (in progress).

use std::process::ExitCode;

use clap::Args;

/// Flags of `ldd serve`.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:3001")]
    pub(crate) listen: String,
}

/// Runs the server until SIGINT/SIGTERM.
pub(crate) async fn run(_args: ServeArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("ldd serve is not built yet")
}
