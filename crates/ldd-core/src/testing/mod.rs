//! Test helpers shared by every crate: an in-memory sink with fault injection and the
//! conformance suite every [`DataSource`](crate::DataSource) must pass.

mod conformance;
mod memory_sink;

pub use conformance::{check_source, ConformanceReport};
pub use memory_sink::{Fault, MemorySink, StoredMessage};
