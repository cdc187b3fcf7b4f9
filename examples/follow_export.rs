//! Read an export while it runs: every chunk is verified at the consumer as soon as its
//! transaction commits, so the data is there almost as soon as the export ends.
//!
//! In one process the feed is a channel; across processes it is the manifest topic
//! (`ldd_sink_kafka::manifest_topic::{FeedPublisher, tail_feed}`), or a server's event stream.
//!
//! Run with: `cargo run -p ldd-examples --example follow_export`

use std::sync::Arc;

use ldd_core::{
    export, ExportControl, ExportOptions, Format, GeneratorConfig, GeneratorSource,
    JobCountPartitioner,
};
use ldd_sink_kafka::readback::{follow, LocalFeed, ReadBackConfig};
use ldd_sink_kafka::{EmbeddedCluster, KafkaSink, KafkaSinkConfig};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cluster = EmbeddedCluster::start(1)?;
    cluster.create_topic("followed", 8, 1)?;
    let brokers = cluster.bootstrap_servers();
    let sink = KafkaSink::connect(KafkaSinkConfig {
        client: brokers.clone().into(),
        topic: "followed".into(),
        ..Default::default()
    })
    .await?;

    // The follower needs the export's id before the export starts.
    let export_id = "follow-example".to_owned();
    let (feed, entries) = LocalFeed::new();
    let control = ExportControl {
        observer: Some(feed.announcer("followed", Format::Jsonl)),
        ..Default::default()
    };
    let id = export_id.clone();
    let follower = tokio::task::spawn_blocking(move || {
        follow(&id, entries, &ReadBackConfig::new(brokers), None)
    });

    let manifest = export(
        Arc::new(GeneratorSource::new(GeneratorConfig {
            records: 200_000,
            ..Default::default()
        })),
        Arc::new(sink),
        &JobCountPartitioner {
            jobs: 33,
            drop_last: true,
        },
        ExportOptions {
            export_id: Some(export_id),
            format: Format::Jsonl,
            ..Default::default()
        },
        control,
    )
    .await?;
    // The final manifest settles everything: chunks announced twice or never are read as
    // the manifest names them.
    feed.finish("follow-example", Ok::<_, ldd_core::Error>(&manifest));

    let followed = follower.await??;
    println!(
        "read {} of {} records; {} of {} chunks while the export ran: {}",
        followed.report.records,
        followed.manifest.total_records,
        followed.chunks_read_early,
        followed.manifest.chunks.len(),
        if followed.report.is_verified() {
            "verified"
        } else {
            "NOT verified"
        }
    );
    Ok(())
}
