//! The original server's endpoints, with their parameters, aliases and answer fields.
//! Errors are plain text, as the original's were. Each path answers with and without a
//! trailing slash.

pub(crate) mod connections;
pub(crate) mod datasets;
pub(crate) mod export;
pub(crate) mod params;

use axum::routing::{delete, get, post, MethodRouter};
use axum::Router;

use super::state::AppState;

/// The routes, each under both `/path` and `/path/`.
pub(crate) fn routes() -> Router<AppState> {
    let routes: [(&str, MethodRouter<AppState>); 8] = [
        ("/db-connections/register", post(connections::register)),
        ("/db-connections/list", get(connections::list)),
        ("/db-connections/remove", delete(connections::remove)),
        ("/datasets/list", get(datasets::list)),
        ("/datasets/detail", get(datasets::detail)),
        ("/datasets/time-range", get(datasets::time_range)),
        ("/data/export", get(export::export)),
        ("/data/query-by-time", get(export::query_by_time)),
    ];
    routes
        .into_iter()
        .fold(Router::new(), |router, (path, method)| {
            router
                .route(path, method.clone())
                .route(&format!("{path}/"), method)
        })
}
