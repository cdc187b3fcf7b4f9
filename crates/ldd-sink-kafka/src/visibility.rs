//! Did an interrupted run's chunk become visible? Asked on resume, for a chunk the
//! checkpoint recorded as committing but not as committed.
//!
//! Once the interrupted run's producers are fenced, its transactions are settled: committed
//! or aborted. A `read_committed` consumer assigned at the chunk's first offset then either
//! returns that message (committed) or skips past the chunk's range (aborted: a
//! `read_committed` reader never sees aborted messages).

use std::time::{Duration, Instant};

use ldd_core::sink::header;
use ldd_core::ChunkManifest;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};

use crate::client::KafkaClient;
use crate::error::{Error, Result};

/// Where to look.
pub(crate) struct Probe {
    pub(crate) client: KafkaClient,
    pub(crate) topic: String,
    /// How long the partition's last stable offset may stay below the chunk.
    pub(crate) timeout: Duration,
}

impl Probe {
    /// Whether the committed attempt of `chunk` is visible to `read_committed` readers.
    pub(crate) fn chunk_visible(&self, export_id: &str, chunk: &ChunkManifest) -> Result<bool> {
        let (Some(first), Some(last)) = (chunk.first_offset, chunk.last_offset) else {
            // An empty chunk wrote nothing: running it again duplicates nothing.
            return Ok(false);
        };
        let consumer = self.consumer()?;
        let partition = chunk.partition as i32;
        let mut assignment = TopicPartitionList::new();
        assignment
            .add_partition_offset(&self.topic, partition, Offset::Offset(first))
            .map_err(|e| Error::kafka("assigning the partition to check", e))?;
        consumer
            .assign(&assignment)
            .map_err(|e| Error::kafka("assigning the partition to check", e))?;
        let deadline = Instant::now() + self.timeout;
        while Instant::now() < deadline {
            match consumer.poll(Duration::from_millis(200)) {
                Some(Ok(message)) => {
                    return Ok(message.offset() <= last
                        && is_attempt(&message, export_id, chunk.chunk_id, chunk.attempt));
                }
                Some(Err(e)) => return Err(Error::kafka("reading the chunk to check", e)),
                None => {
                    // Nothing readable: past the chunk's range means it was aborted.
                    if let Ok(position) = consumer.position() {
                        let at = position
                            .find_partition(&self.topic, partition)
                            .and_then(|p| p.offset().to_raw());
                        if at.is_some_and(|o| o > last) {
                            return Ok(false);
                        }
                    }
                    let (_, high) = consumer
                        .fetch_watermarks(&self.topic, partition, Duration::from_secs(10))
                        .map_err(|e| Error::kafka("reading the partition's watermarks", e))?;
                    if high <= first {
                        // The chunk's offsets do not exist: nothing of it is there.
                        return Ok(false);
                    }
                }
            }
        }
        Err(Error::Task(format!(
            "chunk {} of export {export_id}: partition {partition} of `{}` stayed unreadable at \
             offset {first} for {} s (a transaction of another writer is still open)",
            chunk.chunk_id,
            self.topic,
            self.timeout.as_secs()
        )))
    }

    fn consumer(&self) -> Result<BaseConsumer> {
        self.client
            .probe_config()
            .create()
            .map_err(|e| Error::kafka("creating a consumer to check a chunk", e))
    }
}

fn is_attempt(message: &impl Message, export_id: &str, chunk_id: u32, attempt: u32) -> bool {
    let Some(headers) = message.headers() else {
        return false;
    };
    let value = |name: &str| {
        headers
            .iter()
            .find(|h| h.key == name)
            .and_then(|h| h.value)
            .and_then(|v| std::str::from_utf8(v).ok())
            .map(str::to_owned)
    };
    value(header::EXPORT_ID).as_deref() == Some(export_id)
        && value(header::CHUNK_ID) == Some(chunk_id.to_string())
        && value(header::ATTEMPT) == Some(attempt.to_string())
}
