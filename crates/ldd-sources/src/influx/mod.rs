//! InfluxDB source (feature `influx`).
//!
//! [`InfluxConnection`] connects to InfluxDB 1.x, 2.x or 3.x and speaks InfluxQL over the
//! v1 `/query` API (1.x, 2.x through its v1 compatibility API, 3.x) or Flux over
//! `/api/v2/query` (2.x, 1.8 with `flux-enabled = true`); see [`QueryLanguage`] for how
//! `auto` picks one. [`InfluxSource`] is one measurement (with tag filters, a time range
//! and a projection) as an [`ldd_core::DataSource`]:
//!
//! - **Records** are points in the `wide` shape (`_time`, `_measurement`, tags, fields) or
//!   field values in the `narrow` shape of the original system (`_field`, `_value`); see
//!   [`RowShape`].
//! - **Counting** uses `count()` per field: no row is read.
//! - **Splitting** cuts time windows `[a, b)` at edges of `count(..) GROUP BY time(..)`
//!   histograms, refining only the buckets a cut falls in, so chunks hold about equal record
//!   counts and points sharing a timestamp never straddle two chunks.
//! - **Reading** streams: InfluxQL with `chunked=true` (one JSON object per chunk of
//!   `chunk_size` rows), Flux as annotated CSV parsed as it arrives. Memory stays bounded
//!   by the chunk size.
//! - **Safety**: every user-given name and value is quoted by [`escape`]; tokens and
//!   passwords never reach logs or `Debug` output.
//!
//! ```no_run
//! use futures::TryStreamExt;
//! use ldd_core::{ChunkRange, DataSource, DatasetSpec};
//! use ldd_sources::influx::{InfluxConfig, InfluxConnection};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let conn = InfluxConnection::connect(InfluxConfig::new("http://127.0.0.1:8086")).await?;
//! let source = conn.open_source(&DatasetSpec::new("telegraf", "cpu")).await?;
//! println!("{} records", source.count().await?);
//! let mut batches = source.read(&ChunkRange::All).await?;
//! while let Some(batch) = batches.try_next().await? {
//!     println!("{} records", batch.len());
//! }
//! # Ok(()) }
//! ```

mod client;
mod config;
mod connection;
mod dataset;
pub mod escape;
mod flux_csv;
mod plan;
mod query;
mod read;
mod source;
mod write;

pub use config::{
    InfluxConfig, QueryLanguage, RowShape, DEFAULT_CHUNK_SIZE, DEFAULT_REQUEST_TIMEOUT_SECS,
    DEFAULT_WRITE_BATCH_LINES,
};
pub use connection::{InfluxConnection, ServerInfo};
pub use source::{InfluxSource, STRATEGY};
pub use write::{escape_key, escape_measurement, write_line};
