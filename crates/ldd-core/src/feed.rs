//! The chunk feed: what an export announces while it runs, so that a consumer can read each
//! chunk as soon as it is committed instead of waiting for the final manifest.
//!
//! An export announces three kinds of entries, in this order:
//!
//! - [`FeedEntry::Chunk`] once per chunk, after its transaction committed (so a
//!   `read_committed` reader can read it at once);
//! - then either [`FeedEntry::Finished`] with the final [`Manifest`], or
//!   [`FeedEntry::Failed`] with the reason.
//!
//! The final manifest is the authority: a chunk announced twice (a resumed export, an
//! at-least-once retry) or never announced (the announcing process died between the commit
//! and the announcement) is settled against it. A follower that verifies every announced chunk
//! and then, once the manifest arrives, every chunk it did not verify yet, has verified the
//! whole export exactly once.
//!
//! ```
//! use ldd_core::feed::{CommittedChunk, FeedEntry};
//! use ldd_core::{ChunkManifest, Format};
//!
//! let entry = FeedEntry::Chunk(CommittedChunk {
//!     export_id: "exp-1".into(),
//!     topic: "events".into(),
//!     format: Format::Jsonl,
//!     chunk: ChunkManifest {
//!         chunk_id: 0, attempt: 1, partition: 3, first_offset: Some(10), last_offset: Some(12),
//!         messages: 3, records: 300, bytes: 30_000, crc32: 0xdead_beef,
//!     },
//! });
//! let json = serde_json::to_string(&entry).unwrap();
//! assert!(json.starts_with(r#"{"kind":"chunk""#));
//! assert_eq!(serde_json::from_str::<FeedEntry>(&json).unwrap(), entry);
//! assert_eq!(entry.export_id(), "exp-1");
//! ```

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::engine::{ExportEvent, ExportObserver};
use crate::format::Format;
use crate::manifest::{ChunkManifest, Manifest};

/// A chunk that was committed, with what a reader needs to find and decode it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommittedChunk {
    /// The export.
    pub export_id: String,
    /// The topic the chunk was written to.
    pub topic: String,
    /// The payload format.
    pub format: Format,
    /// The chunk, exactly as it will appear in the final manifest.
    pub chunk: ChunkManifest,
}

/// One entry of an export's feed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FeedEntry {
    /// A chunk was committed and can be read.
    Chunk(CommittedChunk),
    /// The export succeeded; this is its final manifest.
    Finished(Box<Manifest>),
    /// The export failed (it may be resumed later and then announce again).
    Failed {
        /// The export.
        export_id: String,
        /// Why.
        error: String,
    },
}

impl FeedEntry {
    /// The export the entry belongs to.
    pub fn export_id(&self) -> &str {
        match self {
            FeedEntry::Chunk(c) => &c.export_id,
            FeedEntry::Finished(m) => &m.export_id,
            FeedEntry::Failed { export_id, .. } => export_id,
        }
    }

    /// Whether no entry of the export follows this one.
    pub fn is_last(&self) -> bool {
        !matches!(self, FeedEntry::Chunk(_))
    }
}

/// Turns an export's [`ExportEvent::ChunkCommitted`] events into [`FeedEntry::Chunk`]s for
/// `announce` (a channel, a topic producer). The export id comes from the
/// [`ExportEvent::Planned`] event, so it works for generated ids too.
///
/// `announce` is called on the engine's tasks: it must only hand the entry on.
pub fn chunk_announcer(
    topic: impl Into<String>,
    format: Format,
    announce: impl Fn(FeedEntry) + Send + Sync + 'static,
) -> Arc<dyn ExportObserver> {
    let topic = topic.into();
    let export_id = std::sync::Mutex::new(String::new());
    Arc::new(move |event: &ExportEvent| match event {
        ExportEvent::Planned { export_id: id, .. } => {
            *export_id.lock().unwrap_or_else(|p| p.into_inner()) = id.clone();
        }
        ExportEvent::ChunkCommitted(chunk) => {
            let export_id = export_id.lock().unwrap_or_else(|p| p.into_inner()).clone();
            announce(FeedEntry::Chunk(CommittedChunk {
                export_id,
                topic: topic.clone(),
                format,
                chunk: chunk.clone(),
            }));
        }
        _ => {}
    })
}

/// One observer that hands every event to each of `observers` in turn.
pub fn fan_out(observers: Vec<Arc<dyn ExportObserver>>) -> Arc<dyn ExportObserver> {
    Arc::new(move |event: &ExportEvent| {
        for observer in &observers {
            observer.on_event(event);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn chunk(id: u32) -> ChunkManifest {
        ChunkManifest {
            chunk_id: id,
            attempt: 1,
            partition: id % 2,
            first_offset: Some(0),
            last_offset: Some(1),
            messages: 2,
            records: 20,
            bytes: 200,
            crc32: 7,
        }
    }

    fn planned(id: &str) -> ExportEvent {
        ExportEvent::Planned {
            export_id: id.into(),
            chunks: 2,
            records: 40,
            total_chunks: 2,
            total_records: 40,
            partitions: 2,
            strategy: "test".into(),
        }
    }

    #[test]
    fn announces_committed_chunks_with_the_planned_export_id() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        let observer = chunk_announcer("t", Format::Json, move |e| sink.lock().unwrap().push(e));
        observer.on_event(&planned("exp-9"));
        observer.on_event(&ExportEvent::ChunkCommitted(chunk(1)));
        observer.on_event(&ExportEvent::ChunkRetrying {
            chunk_id: 0,
            attempt: 1,
            error: "x".into(),
        });
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1);
        let FeedEntry::Chunk(c) = &seen[0] else {
            panic!("not a chunk: {:?}", seen[0]);
        };
        assert_eq!((c.export_id.as_str(), c.topic.as_str()), ("exp-9", "t"));
        assert_eq!(c.chunk, chunk(1));
        assert!(!seen[0].is_last());
    }

    #[test]
    fn fan_out_reaches_every_observer() {
        let count = Arc::new(Mutex::new(0));
        let observers: Vec<Arc<dyn ExportObserver>> = (0..3)
            .map(|_| {
                let count = count.clone();
                Arc::new(move |_: &ExportEvent| *count.lock().unwrap() += 1)
                    as Arc<dyn ExportObserver>
            })
            .collect();
        fan_out(observers).on_event(&planned("e"));
        assert_eq!(*count.lock().unwrap(), 3);
    }

    #[test]
    fn failed_entries_round_trip() {
        let entry = FeedEntry::Failed {
            export_id: "e".into(),
            error: "boom".into(),
        };
        let json = serde_json::to_string(&entry).unwrap();
        assert_eq!(json, r#"{"kind":"failed","export_id":"e","error":"boom"}"#);
        assert!(serde_json::from_str::<FeedEntry>(&json).unwrap().is_last());
    }
}
