//! What an export is, as requested, stored and shown.

use ldd_core::{FailureCause, Manifest, Progress};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Where an export is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ExportState {
    /// Accepted, waiting for a free export slot.
    Queued,
    /// Connecting, counting and splitting the dataset.
    Planning,
    /// Chunks are being delivered.
    Running,
    /// Every chunk was delivered; the manifest is ready.
    Succeeded,
    /// Some step failed; `error` says which and why.
    Failed,
    /// Cancelled on request (`DELETE /v1/exports/{id}`).
    Cancelled,
    /// The server stopped while the export ran.
    Interrupted,
}

impl ExportState {
    /// Every state, for metrics.
    pub(crate) const ALL: [ExportState; 7] = [
        ExportState::Queued,
        ExportState::Planning,
        ExportState::Running,
        ExportState::Succeeded,
        ExportState::Failed,
        ExportState::Cancelled,
        ExportState::Interrupted,
    ];

    /// The name on the wire and in the state file.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ExportState::Queued => "queued",
            ExportState::Planning => "planning",
            ExportState::Running => "running",
            ExportState::Succeeded => "succeeded",
            ExportState::Failed => "failed",
            ExportState::Cancelled => "cancelled",
            ExportState::Interrupted => "interrupted",
        }
    }

    /// Parses the stored name.
    pub(crate) fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Whether the export will not change any more.
    pub(crate) fn is_terminal(self) -> bool {
        matches!(
            self,
            ExportState::Succeeded
                | ExportState::Failed
                | ExportState::Cancelled
                | ExportState::Interrupted
        )
    }
}

/// Which API started an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Origin {
    /// `POST /v1/exports`.
    V1,
    /// The original `GET /data/export/` or `/data/query-by-time/`.
    Legacy,
}

/// Payload format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum FormatName {
    /// One JSON object per message (the original's shape).
    Json,
    /// Many newline-separated JSON objects per message.
    Jsonl,
    /// A protobuf `RecordBatch` per message.
    Protobuf,
}

impl From<FormatName> for ldd_core::Format {
    fn from(f: FormatName) -> Self {
        match f {
            FormatName::Json => ldd_core::Format::Json,
            FormatName::Jsonl => ldd_core::Format::Jsonl,
            FormatName::Protobuf => ldd_core::Format::Protobuf,
        }
    }
}

impl From<ldd_core::Format> for FormatName {
    fn from(f: ldd_core::Format) -> Self {
        match f {
            ldd_core::Format::Json => FormatName::Json,
            ldd_core::Format::Jsonl => FormatName::Jsonl,
            ldd_core::Format::Protobuf => FormatName::Protobuf,
        }
    }
}

/// What readers of the manifest's ranges are guaranteed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum DeliveryName {
    /// Each chunk is one Kafka transaction: any `read_committed` reader of the manifest's
    /// ranges reads exactly the dataset (the default).
    ExactlyOnce,
    /// No transactions: failed or interrupted attempts leave messages inside the ranges,
    /// which only readers that skip attempts the manifest does not name (`ldd consume`)
    /// leave out.
    AtLeastOnce,
}

impl From<DeliveryName> for ldd_core::Delivery {
    fn from(d: DeliveryName) -> Self {
        match d {
            DeliveryName::ExactlyOnce => ldd_core::Delivery::ExactlyOnce,
            DeliveryName::AtLeastOnce => ldd_core::Delivery::AtLeastOnce,
        }
    }
}

/// Compression of produced batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum CompressionName {
    /// LZ4 (the default).
    Lz4,
    /// Zstandard.
    Zstd,
    /// None.
    None,
}

impl From<CompressionName> for ldd_sink_kafka::Compression {
    fn from(c: CompressionName) -> Self {
        match c {
            CompressionName::Lz4 => ldd_sink_kafka::Compression::Lz4,
            CompressionName::Zstd => ldd_sink_kafka::Compression::Zstd,
            CompressionName::None => ldd_sink_kafka::Compression::None,
        }
    }
}

impl From<ldd_sink_kafka::Compression> for CompressionName {
    fn from(c: ldd_sink_kafka::Compression) -> Self {
        match c {
            ldd_sink_kafka::Compression::Lz4 => CompressionName::Lz4,
            ldd_sink_kafka::Compression::Zstd => CompressionName::Zstd,
            ldd_sink_kafka::Compression::None => CompressionName::None,
        }
    }
}

/// `field == value`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct FilterBody {
    /// Tag or field name.
    pub(crate) field: String,
    /// The value it must have (compared as text).
    pub(crate) value: String,
}

/// A half-open time range `[start, end)`. Give instants as RFC 3339 text or as
/// nanoseconds since the epoch, not both.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TimeRangeBody {
    /// First instant included, RFC 3339 (e.g. `2024-01-01T00:00:00Z`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) start: Option<String>,
    /// First instant excluded, RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) end: Option<String>,
    /// First instant included, ns since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) start_ns: Option<i64>,
    /// First instant excluded, ns since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) end_ns: Option<i64>,
}

/// What to export (the fields of ldd's dataset spec).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DatasetBody {
    /// Database (MongoDB, InfluxDB 1.x) or bucket (InfluxDB 2.x).
    #[schema(
        min_length = 1,
        max_length = 512,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub(crate) database: String,
    /// Collection (MongoDB) or measurement (InfluxDB).
    #[schema(
        min_length = 1,
        max_length = 512,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub(crate) table: String,
    /// Equality filters on tags or fields; a record must match all of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) filters: Vec<FilterBody>,
    /// The field holding each record's time (MongoDB; InfluxDB always uses `time`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(
        min_length = 1,
        max_length = 512,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub(crate) time_field: Option<String>,
    /// Only records in this time range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) time_range: Option<TimeRangeBody>,
    /// Only these fields (all when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) projection: Option<Vec<String>>,
}

/// Where the records go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DestinationBody {
    /// Bootstrap servers `host:port[,...]`; the server's configured brokers when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) brokers: Option<String>,
    /// Destination topic.
    pub(crate) topic: String,
    /// Partitions of the topic when ldd has to create it (the configured default when
    /// absent). An existing topic is used as it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 10000)]
    pub(crate) partitions: Option<u32>,
    /// Compression (the configured default when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) compression: Option<CompressionName>,
    /// Earlier name of `delivery`: `true` is `exactly-once`, `false` `at-least-once`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) transactional: Option<bool>,
}

/// `POST /v1/exports`: an export to run in the background. Absent options take the
/// server's configured defaults; the stored request shows the values used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExportRequest {
    /// A registered connection id.
    #[schema(
        min_length = 1,
        max_length = 128,
        pattern = r"^[A-Za-z0-9_:@-][A-Za-z0-9._:@-]{0,127}$"
    )]
    pub(crate) connection: String,
    /// What to export.
    pub(crate) dataset: DatasetBody,
    /// Where to.
    pub(crate) destination: DestinationBody,
    /// Payload format (default: the configured one, `jsonl` unless changed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) format: Option<FormatName>,
    /// Delivery guarantee (default `exactly-once`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) delivery: Option<DeliveryName>,
    /// Configured job count (chunks before rounding to a multiple of the partitions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 100000)]
    pub(crate) jobs: Option<usize>,
    /// Drop one job before rounding, as the original did (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) drop_last: Option<bool>,
    /// Chunks delivered at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 256)]
    pub(crate) workers: Option<usize>,
    /// Target payload size of batched formats, KiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) batch_kib: Option<usize>,
    /// Attempts per chunk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 20)]
    pub(crate) attempts: Option<u32>,
    /// Export id (a new UUID when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(
        min_length = 1,
        max_length = 128,
        pattern = r"^[A-Za-z0-9_:@-][A-Za-z0-9._:@-]{0,127}$"
    )]
    pub(crate) export_id: Option<String>,
    /// Topic the manifest is also published to (the configured one when absent; empty to
    /// skip).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) manifest_topic: Option<String>,
}

/// A progress snapshot.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub(crate) struct ProgressView {
    /// Records delivered so far.
    pub(crate) records_done: u64,
    /// Records the plan expects.
    pub(crate) records_total: u64,
    /// Payload bytes delivered so far.
    pub(crate) bytes_done: u64,
    /// Messages delivered so far.
    pub(crate) messages_done: u64,
    /// Chunks committed.
    pub(crate) chunks_done: u64,
    /// Chunks in the plan.
    pub(crate) chunks_total: u64,
    /// Milliseconds since delivery started.
    pub(crate) elapsed_ms: u64,
    /// Average records per second so far.
    pub(crate) records_per_sec: f64,
    /// Estimated milliseconds left, once a rate is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) eta_ms: Option<u64>,
}

impl From<Progress> for ProgressView {
    fn from(p: Progress) -> Self {
        ProgressView {
            records_done: p.records_done,
            records_total: p.records_total,
            bytes_done: p.bytes_done,
            messages_done: p.messages_done,
            chunks_done: p.chunks_done,
            chunks_total: p.chunks_total,
            elapsed_ms: p.elapsed_ms,
            records_per_sec: p.records_per_sec,
            eta_ms: p.eta_ms,
        }
    }
}

/// How planning split the dataset.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub(crate) struct PlanView {
    /// Chunks planned.
    pub(crate) chunks: u64,
    /// Records counted.
    pub(crate) records: u64,
    /// Partitions of the topic.
    pub(crate) partitions: u32,
    /// The split strategy that ran.
    pub(crate) strategy: String,
}

/// An export as the API shows it (and the state file keeps it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub(crate) struct ExportStatus {
    /// Export id (also in every message's headers).
    pub(crate) id: String,
    /// Which API started it.
    pub(crate) origin: Origin,
    /// Where it is in its life.
    pub(crate) state: ExportState,
    /// The connection read from.
    pub(crate) connection: String,
    /// `database:table`.
    pub(crate) dataset: String,
    /// The topic written.
    pub(crate) topic: String,
    /// The request, with the defaults that were applied.
    pub(crate) request: ExportRequest,
    /// Progress (the last snapshot once finished).
    pub(crate) progress: ProgressView,
    /// The plan, once planning finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) plan: Option<PlanView>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<String>,
    /// What failed: `input` (the request), `source` (the database), `sink` (Kafka),
    /// `internal`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) error_cause: Option<FailureCause>,
    /// Things that went wrong without failing the export (e.g. the manifest topic).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) warnings: Vec<String>,
    /// When it was accepted (RFC 3339).
    pub(crate) created_at: String,
    /// When planning started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) started_at: Option<String>,
    /// When it reached its final state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) finished_at: Option<String>,
    /// The manifest, once succeeded (omitted from lists).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub(crate) manifest: Option<Manifest>,
}

impl ExportStatus {
    /// The status without its manifest (for lists and events).
    pub(crate) fn summary(&self) -> ExportStatus {
        ExportStatus {
            manifest: None,
            ..self.clone()
        }
    }
}

/// The data of one server-sent event of `GET /v1/exports/{id}/events`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub(crate) struct ExportEventData {
    /// Export id.
    pub(crate) id: String,
    /// Where the export is.
    pub(crate) state: ExportState,
    /// Progress so far.
    pub(crate) progress: ProgressView,
    /// The plan, once planning finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) plan: Option<PlanView>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<String>,
    /// Things that went wrong without failing the export.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) warnings: Vec<String>,
}

impl From<&ExportStatus> for ExportEventData {
    fn from(s: &ExportStatus) -> Self {
        ExportEventData {
            id: s.id.clone(),
            state: s.state,
            progress: s.progress.clone(),
            plan: s.plan.clone(),
            error: s.error.clone(),
            warnings: s.warnings.clone(),
        }
    }
}

/// `202 Accepted` answer of `POST /v1/exports`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub(crate) struct ExportAccepted {
    /// Export id.
    pub(crate) id: String,
    /// `queued`.
    pub(crate) state: ExportState,
    /// Where to follow it.
    pub(crate) status_url: String,
    /// Server-sent progress events.
    pub(crate) events_url: String,
    /// The manifest, once succeeded.
    pub(crate) manifest_url: String,
}

impl ExportAccepted {
    /// The answer for export `id`.
    pub(crate) fn new(id: &str, state: ExportState) -> Self {
        ExportAccepted {
            id: id.to_owned(),
            state,
            status_url: format!("/v1/exports/{id}"),
            events_url: format!("/v1/exports/{id}/events"),
            manifest_url: format!("/v1/exports/{id}/manifest"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_and_know_when_they_end() {
        for s in ExportState::ALL {
            assert_eq!(ExportState::parse(s.as_str()), Some(s));
        }
        assert!(ExportState::Interrupted.is_terminal());
        assert!(!ExportState::Running.is_terminal());
    }

    #[test]
    fn requests_reject_unknown_fields() {
        let text = r#"{"connection":"c","dataset":{"database":"d","table":"t"},
            "destination":{"topic":"x","partitons":3}}"#;
        let err = serde_json::from_str::<ExportRequest>(text)
            .unwrap_err()
            .to_string();
        assert!(err.contains("partitons"), "{err}");
    }
}
