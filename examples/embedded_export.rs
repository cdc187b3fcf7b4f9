//! Export generated records into an in-process Kafka cluster and verify them.
//!
//! Run with: `cargo run -p ldd-examples --example embedded_export`

use std::sync::Arc;

use ldd_core::{
    export, ExportControl, ExportOptions, Format, GeneratorConfig, GeneratorSource,
    JobCountPartitioner,
};
use ldd_sink_kafka::readback::{read_back, ReadBackConfig};
use ldd_sink_kafka::{EmbeddedCluster, KafkaSink, KafkaSinkConfig};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // An in-process cluster: fine for trying things out, not for real data.
    let cluster = EmbeddedCluster::start(1)?;
    cluster.create_topic("example", 8, 1)?;

    let sink = KafkaSink::connect(KafkaSinkConfig {
        client: cluster.bootstrap_servers().into(),
        topic: "example".into(),
        ..Default::default()
    })
    .await?;
    let source = Arc::new(GeneratorSource::new(GeneratorConfig {
        records: 100_000,
        ..Default::default()
    }));
    let options = ExportOptions {
        format: Format::Protobuf,
        ..Default::default()
    };
    let manifest = export(
        source,
        Arc::new(sink),
        &JobCountPartitioner::default(),
        options,
        ExportControl::default(),
    )
    .await?;
    println!(
        "exported {} records in {} chunks",
        manifest.total_records,
        manifest.chunks.len()
    );
    let spark = manifest.spark_offsets();
    println!("Spark startingOffsets: {}", spark.starting_offsets);
    println!("Spark endingOffsets:   {}", spark.ending_offsets);

    // Reading back is blocking (one consumer thread per partition).
    let brokers = cluster.bootstrap_servers();
    let report = tokio::task::spawn_blocking(move || {
        read_back(&manifest, &ReadBackConfig::new(brokers), None)
    })
    .await??;
    println!(
        "read back {} records: {}",
        report.records,
        if report.is_verified() {
            "verified"
        } else {
            "NOT verified"
        }
    );
    Ok(())
}
