//! One export across many processes, coordinated by Kafka itself: no coordinator service,
//! only a consumer group and transactions (the way Kafka Connect's distributed mode works).
//!
//! - The **coordinator** ([`run_distributed`], behind `ldd export --group G`) plans as a
//!   local export does, then publishes, in one transaction, the plan to the group's results
//!   topic and one task per chunk to its tasks topic ([`GroupTopics`]). It then reads the
//!   results topic until every chunk has a result and builds the same manifest a local
//!   export would. It keeps no state of its own: restarted with the same export id, it
//!   finds the plan and the results already there and goes on waiting (resume).
//! - **Workers** ([`run_worker`], behind `ldd worker --group G`) form a consumer group on the
//!   tasks topic and run one chunk at a time. Each chunk is one Kafka transaction holding
//!   the chunk's messages, its manifest entry (written to the results topic) and the task's
//!   consumer offset (`send_offsets_to_transaction` with the group's metadata, so a worker
//!   that lost its partitions is fenced). A worker killed mid-chunk leaves nothing visible;
//!   the group rebalances and another worker redoes the chunk under a new attempt number.
//! - A task carries the dataset and the chunk's range, never a secret: workers resolve the
//!   source with their own [`SourceResolver`](ldd_core::SourceResolver) (connections by
//!   name; the generator needs none) and use their own Kafka client settings.
//!
//! See `docs/distributed.md` for topics, ACLs, deployment and failure behaviour.

mod coordinator;
mod ownership;
mod schema;
mod task_sink;
mod topics;
mod worker;

pub use coordinator::{run_distributed, GroupExport};
pub use schema::{Destination, PlanRecord, ResultRecord, TaskMessage};
pub use topics::{GroupTopics, DEFAULT_TASK_PARTITIONS};
pub use worker::{default_worker_id, run_worker, WorkerConfig, WorkerSummary};
