//! # ldd-sink-kafka
//!
//! The Apache Kafka side of **ldd**: a [`KafkaSink`] that the `ldd-core` engine writes
//! chunks into, and [`read_back`](readback::read_back), which reads exactly the offsets a
//! [`Manifest`](ldd_core::Manifest) names, in parallel, and proves that every chunk arrived
//! whole, once, and uncorrupted.
//!
//! Built on `rdkafka` with librdkafka compiled in (no system library needed).
//!
//! - Producing uses `ThreadedProducer` with delivery callbacks (never one awaited send per
//!   record); idempotence and `acks=all` are always on; lz4 by default.
//! - Every message carries headers (`ldd-export-id`, `ldd-chunk-id`, `ldd-attempt`,
//!   `ldd-seq`, `ldd-records`, `ldd-format`) so any consumer can attribute and dedupe it.
//! - Offsets in the manifest come from delivery reports, never from watermarks.
//! - By default ([`Delivery::ExactlyOnce`]) each chunk is one Kafka transaction: any
//!   `read_committed` reader of the manifest's ranges (Spark, Flink, a plain client) reads
//!   exactly the dataset, also after failed attempts and a killed-then-resumed export.
//!   [`Delivery::AtLeastOnce`] writes without transactions; failed attempts' messages then
//!   stay inside the ranges, and only readers that skip them by header read exactly.
//! - [`EmbeddedCluster`] wraps librdkafka's mock cluster for hermetic tests and the demo.
//!
//! ## Example
//! ```no_run
//! use std::sync::Arc;
//! use ldd_core::{export, ExportControl, ExportOptions, GeneratorConfig, GeneratorSource,
//!     JobCountPartitioner};
//! use ldd_sink_kafka::{readback, KafkaSink, KafkaSinkConfig};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let sink = KafkaSink::connect(KafkaSinkConfig {
//!     brokers: "127.0.0.1:9092".into(),
//!     topic: "iot".into(),
//!     create_partitions: Some(8),
//!     ..Default::default()
//! }).await?;
//! let source = Arc::new(GeneratorSource::new(GeneratorConfig::default()));
//! let manifest = export(source, Arc::new(sink), &JobCountPartitioner::default(),
//!     ExportOptions::default(), ExportControl::default()).await?;
//! let report = readback::read_back(&manifest, &readback::ReadBackConfig::new("127.0.0.1:9092"),
//!     None)?;
//! assert!(report.is_verified());
//! # Ok(()) }
//! ```
//!
//! ## Debugging
//! Pass librdkafka's `debug` property through (`librdkafka: {"debug": "broker,msg"}`) and
//! run with `RUST_LOG=rdkafka=debug`.

pub mod admin;
pub mod config;
mod delivery;
pub mod embedded;
pub mod error;
pub mod manifest_topic;
pub mod readback;
mod sink;
mod visibility;

pub use admin::TopicAdmin;
pub use config::{Compression, Delivery, KafkaSinkConfig, MessageKey};
pub use embedded::EmbeddedCluster;
pub use error::{Error, Result};
pub use sink::KafkaSink;
