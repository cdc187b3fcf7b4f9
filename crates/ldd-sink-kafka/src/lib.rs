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
//! - [`KafkaClient`] owns the cluster's client settings (brokers, security, any other
//!   client property); every librdkafka configuration is built from it.
//! - [`EmbeddedCluster`] wraps librdkafka's mock cluster for hermetic tests and the demo.
//!
//! ## Example
//! ```no_run
//! use std::sync::Arc;
//! use ldd_core::{export, ExportControl, ExportOptions, GeneratorConfig, GeneratorSource,
//!     JobCountPartitioner};
//! use ldd_sink_kafka::{manifest_topic, readback, KafkaClient, KafkaSink, KafkaSinkConfig};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // One client: every producer, consumer and admin client of the export uses its settings.
//! let client = KafkaClient::new("127.0.0.1:9092")
//!     .with_property("security.protocol", "SASL_PLAINTEXT")
//!     .with_property("sasl.mechanism", "PLAIN")
//!     .with_property("sasl.username", "ldd")
//!     .with_property("sasl.password", "secret");
//! let sink = KafkaSink::connect(KafkaSinkConfig {
//!     client: client.clone(),
//!     topic: "iot".into(),
//!     create_partitions: Some(8),
//!     ..Default::default()
//! }).await?;
//! let source = Arc::new(GeneratorSource::new(GeneratorConfig::default()));
//! let manifest = export(source, Arc::new(sink), &JobCountPartitioner::default(),
//!     ExportOptions::default(), ExportControl::default()).await?;
//! manifest_topic::publish_manifest(&client, manifest_topic::DEFAULT_MANIFEST_TOPIC, &manifest)
//!     .await?;
//! let report = readback::read_back(&manifest, &readback::ReadBackConfig::new(client), None)?;
//! assert!(report.is_verified());
//! # Ok(()) }
//! ```
//!
//! ## Debugging
//! Pass librdkafka's `debug` property through (`librdkafka: {"debug": "broker,msg"}`) and
//! run with `RUST_LOG=rdkafka=debug`.

pub mod admin;
#[cfg(feature = "fixtures")]
pub mod baseline;
pub mod client;
pub mod config;
mod delivery;
pub mod distributed;
pub mod embedded;
pub mod error;
pub mod manifest_topic;
pub mod readback;
mod sink;
mod visibility;

pub use admin::TopicAdmin;
pub use client::KafkaClient;
pub use config::{Compression, Delivery, KafkaSinkConfig, MessageKey};
pub use embedded::EmbeddedCluster;
pub use error::{Error, Result};
pub use sink::KafkaSink;
