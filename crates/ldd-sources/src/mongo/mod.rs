//! The MongoDB source (feature `mongo`): works with MongoDB and MongoDB-wire servers such as
//! FerretDB, using only the documented MongoDB API.
//!
//! - [`MongoConnection`]: catalogue (databases × collections, system databases skipped),
//!   dataset detail, time range, loading generated data, opening datasets.
//! - [`MongoSource`]: counts with `countDocuments`; splits on the server with `$bucketAuto`
//!   over the time field (or `_id`) in one aggregation; where the server lacks it (FerretDB
//!   1.24), says so and lets the engine cut one ordered `_id` scan into blocks. Reads are
//!   keyset range filters (`field >= a and < b`) streamed in cursor batches — never skip
//!   paging.
//! - User input only ever becomes BSON values; field names starting with `$` or holding NUL
//!   are rejected.

mod config;
mod connection;
pub mod convert;
mod count;
mod error;
mod filter;
mod source;

pub use crate::redact::redact_url;
pub use config::MongoConfig;
pub use connection::MongoConnection;
pub use source::MongoSource;
