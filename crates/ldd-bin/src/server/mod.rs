//! `ldd serve`: the HTTP API.
//!
//! - The original server's endpoints (`/db-connections/*`, `/datasets/*`, `/data/*`) with
//!   their parameters, aliases and answer fields ([`legacy`]).
//! - The v1 JSON API: connections, catalogue, background exports with progress, cancel,
//!   server-sent events and manifests ([`v1`]).
//! - `/healthz`, `/metrics` (Prometheus), `/openapi.json` (generated from the code).
//!
//! Connections and exports persist in a SQLite state file ([`store`]); a bearer token
//! guards everything but `/healthz` ([`auth`]). `docs/server.md` is the user guide.

mod auth;
pub(crate) mod config;
pub(crate) mod connections;
pub(crate) mod error;
pub(crate) mod exports;
pub(crate) mod legacy;
pub(crate) mod metrics;
pub(crate) mod openapi;
pub(crate) mod ops;
pub(crate) mod registry;
pub(crate) mod state;
pub(crate) mod store;
pub(crate) mod system;
pub(crate) mod v1;
pub(crate) mod validate;

use std::future::{Future, IntoFuture};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context as _;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use ldd_core::CancellationToken;
use tokio::net::TcpListener;

pub(crate) use config::{ServeArgs, ServerConfig};
pub(crate) use error::ApiError;
pub(crate) use state::AppState;

/// The whole API on `state`.
pub(crate) fn router(state: AppState) -> Router {
    Router::new()
        .merge(legacy::routes())
        .merge(v1::routes())
        .route("/healthz", get(system::healthz))
        .route("/metrics", get(system::metrics))
        .route("/openapi.json", get(openapi::serve))
        .fallback(unknown_route)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

async fn unknown_route() -> ApiError {
    ApiError::NotFound("no such endpoint; GET /openapi.json lists them".into())
}

/// Counts answers by status and logs each request (path only: no query, no headers).
async fn observe(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let (method, path) = (request.method().clone(), request.uri().path().to_owned());
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16();
    state.metrics().http_answer(status);
    tracing::debug!(
        "{method} {path} -> {status} in {} ms",
        started.elapsed().as_millis()
    );
    response
}

/// Runs the server until SIGINT/SIGTERM.
pub(crate) async fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let (config, warnings) = ServerConfig::resolve(&args)?;
    for warning in &warnings {
        tracing::warn!("{warning}");
    }
    let listener = TcpListener::bind(config.listen).await.with_context(|| {
        format!(
            "cannot listen on {}; is another server using the port? choose another with --listen",
            config.listen
        )
    })?;
    let state = AppState::open(config).await?;
    state.warm_up();
    serve(listener, state, shutdown_signal()).await?;
    Ok(ExitCode::SUCCESS)
}

/// Serves `state` on `listener` until `signal` completes; then stops accepting, cancels
/// running exports (recorded as `interrupted`) and waits for them, at most the configured
/// shutdown timeout.
pub(crate) async fn serve(
    listener: TcpListener,
    state: AppState,
    signal: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let addr = listener
        .local_addr()
        .context("reading the listen address")?;
    let config = state.config();
    eprintln!(
        "ldd serve: listening on http://{addr} (state file {}; {})",
        state.store().path().display(),
        if config.token.is_some() {
            "bearer token required"
        } else {
            "no token: unauthenticated"
        }
    );
    let stopping = CancellationToken::new();
    let graceful = {
        let (exports, stopping) = (state.exports().clone(), stopping.clone());
        async move {
            signal.await;
            tracing::warn!("shutting down: cancelling running exports");
            eprintln!("ldd serve: shutting down");
            exports.begin_shutdown();
            stopping.cancel();
        }
    };
    let timeout = config.shutdown_timeout;
    let server = axum::serve(listener, router(state.clone()))
        .with_graceful_shutdown(graceful)
        .into_future();
    tokio::select! {
        result = server => result.context("serving HTTP")?,
        _ = async { stopping.cancelled().await; tokio::time::sleep(timeout).await } => {
            tracing::warn!("requests still open {} s after the shutdown signal; closing them", timeout.as_secs());
        }
    }
    if !state.exports().wait_idle(timeout).await {
        tracing::warn!(
            "some exports did not stop within {} s; they show as interrupted at the next start",
            timeout.as_secs()
        );
    }
    Ok(())
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
