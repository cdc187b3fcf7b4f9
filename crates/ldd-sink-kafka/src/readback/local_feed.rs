//! An export and its follower in one process: the export's observer announces each
//! committed chunk on a channel that [`follow`](super::follow) reads, and the export's end
//! (its manifest, or its error) closes the feed.
//!
//! ```no_run
//! # async fn run(export: impl std::future::Future<Output = ldd_core::Result<ldd_core::Manifest>>)
//! # -> Result<(), Box<dyn std::error::Error>> {
//! use ldd_core::Format;
//! use ldd_sink_kafka::readback::{follow, LocalFeed, ReadBackConfig};
//!
//! let (feed, entries) = LocalFeed::new();
//! let _observer = feed.announcer("topic", Format::Jsonl); // ExportControl::observer
//! let follower = std::thread::spawn(move || {
//!     follow("export-1", entries, &ReadBackConfig::new("127.0.0.1:9092"), None)
//! });
//! feed.finish("export-1", export.await.as_ref());
//! let followed = follower.join().expect("follower thread")?;
//! assert!(followed.report.is_verified());
//! # Ok(()) }
//! ```

use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;

use ldd_core::feed::{chunk_announcer, FeedEntry};
use ldd_core::{ExportObserver, Format, Manifest};

use crate::error::Result;

/// The sending side of an in-process feed.
#[derive(Debug, Clone)]
pub struct LocalFeed {
    entries: Sender<Result<FeedEntry>>,
}

impl LocalFeed {
    /// A feed, and the entries a follower reads.
    pub fn new() -> (LocalFeed, Receiver<Result<FeedEntry>>) {
        let (entries, received) = channel();
        (LocalFeed { entries }, received)
    }

    /// The export observer that announces each committed chunk of `topic` to this feed.
    pub fn announcer(&self, topic: impl Into<String>, format: Format) -> Arc<dyn ExportObserver> {
        let entries = self.entries.clone();
        chunk_announcer(topic, format, move |entry| {
            // A follower that already stopped needs nothing more.
            let _ = entries.send(Ok(entry));
        })
    }

    /// Ends the feed with how export `export_id` ended: the follower settles every chunk
    /// by the manifest, or stops with the export's error.
    pub fn finish<E: std::fmt::Display>(self, export_id: &str, ended: Result<&Manifest, E>) {
        let entry = match ended {
            Ok(manifest) => FeedEntry::Finished(Box::new(manifest.clone())),
            Err(e) => FeedEntry::Failed {
                export_id: export_id.to_owned(),
                error: e.to_string(),
            },
        };
        let _ = self.entries.send(Ok(entry));
    }
}
