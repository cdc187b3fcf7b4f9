//! Prometheus metrics (`GET /metrics`).
//!
//! Each server owns its recorder (none is installed globally), so several servers in one
//! process, as in tests, keep separate figures.

use ldd_core::timed_sink::ChunkTimer;
use ldd_core::FailureCause;
use metrics::{Counter, Histogram, Key, Label, Level, Metadata, Recorder, SharedString, Unit};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};

use super::exports::model::ExportState;

const META: Metadata<'static> = Metadata::new(module_path!(), Level::INFO, Some(module_path!()));

/// Chunk duration buckets, seconds.
const CHUNK_BUCKETS: &[f64] = &[
    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

/// The server's metrics.
pub(crate) struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    records: Counter,
    bytes: Counter,
    messages: Counter,
    chunks: Counter,
    chunk_retries: Counter,
    chunk_failures: Counter,
    chunk_seconds: Histogram,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// A fresh recorder with every metric described.
    pub(crate) fn new() -> Self {
        let recorder = match PrometheusBuilder::new().set_buckets_for_metric(
            Matcher::Full("ldd_chunk_duration_seconds".into()),
            CHUNK_BUCKETS,
        ) {
            Ok(b) => b.build_recorder(),
            // Only fails for an empty bucket list, which this is not; keep summaries then.
            Err(_) => PrometheusBuilder::new().build_recorder(),
        };
        let handle = recorder.handle();
        let describe = |name: &'static str, unit: Option<Unit>, help: &'static str| {
            recorder.describe_counter(name.into(), unit, SharedString::const_str(help));
        };
        describe(
            "ldd_records_produced_total",
            Some(Unit::Count),
            "Records delivered to Kafka in committed chunks.",
        );
        describe(
            "ldd_bytes_produced_total",
            Some(Unit::Bytes),
            "Payload bytes (before compression) delivered in committed chunks.",
        );
        describe(
            "ldd_messages_produced_total",
            Some(Unit::Count),
            "Kafka messages delivered in committed chunks.",
        );
        describe(
            "ldd_chunks_committed_total",
            Some(Unit::Count),
            "Chunks committed.",
        );
        describe(
            "ldd_chunk_retries_total",
            Some(Unit::Count),
            "Chunk attempts that failed and were retried.",
        );
        describe(
            "ldd_chunk_failures_total",
            Some(Unit::Count),
            "Chunk attempts that failed to commit.",
        );
        describe(
            "ldd_exports_started_total",
            Some(Unit::Count),
            "Exports accepted, by API.",
        );
        describe(
            "ldd_exports_finished_total",
            Some(Unit::Count),
            "Exports that reached a final state, by state.",
        );
        describe(
            "ldd_export_errors_total",
            Some(Unit::Count),
            "Failed exports, by cause.",
        );
        describe(
            "ldd_http_requests_total",
            Some(Unit::Count),
            "HTTP answers, by status code.",
        );
        recorder.describe_histogram(
            "ldd_chunk_duration_seconds".into(),
            Some(Unit::Seconds),
            SharedString::const_str("Time from opening a chunk to its commit."),
        );
        recorder.describe_gauge(
            "ldd_exports".into(),
            Some(Unit::Count),
            SharedString::const_str("Exports in the state file, by state."),
        );
        let counter =
            |name: &'static str| recorder.register_counter(&Key::from_static_name(name), &META);
        Metrics {
            records: counter("ldd_records_produced_total"),
            bytes: counter("ldd_bytes_produced_total"),
            messages: counter("ldd_messages_produced_total"),
            chunks: counter("ldd_chunks_committed_total"),
            chunk_retries: counter("ldd_chunk_retries_total"),
            chunk_failures: counter("ldd_chunk_failures_total"),
            chunk_seconds: recorder
                .register_histogram(&Key::from_static_name("ldd_chunk_duration_seconds"), &META),
            recorder,
            handle,
        }
    }

    fn labelled(&self, name: &'static str, label: &'static str, value: String) -> Counter {
        self.recorder.register_counter(
            &Key::from_parts(name, vec![Label::new(label, value)]),
            &META,
        )
    }

    /// A chunk committed.
    pub(crate) fn chunk_committed(&self, records: u64, bytes: u64, messages: u64) {
        self.records.increment(records);
        self.bytes.increment(bytes);
        self.messages.increment(messages);
        self.chunks.increment(1);
    }

    /// A chunk attempt failed and is retried.
    pub(crate) fn chunk_retry(&self) {
        self.chunk_retries.increment(1);
    }

    /// An export was accepted.
    pub(crate) fn export_started(&self, origin: &'static str) {
        self.labelled("ldd_exports_started_total", "api", origin.to_owned())
            .increment(1);
    }

    /// An export reached a final state.
    pub(crate) fn export_finished(&self, state: ExportState) {
        self.labelled(
            "ldd_exports_finished_total",
            "state",
            state.as_str().to_owned(),
        )
        .increment(1);
    }

    /// An export failed for this cause.
    pub(crate) fn export_error(&self, cause: FailureCause) {
        self.labelled(
            "ldd_export_errors_total",
            "cause",
            cause.as_str().to_owned(),
        )
        .increment(1);
    }

    /// An export succeeded but its manifest could not be published to the manifest topic
    /// (counted with the failures, under its own cause label).
    pub(crate) fn manifest_topic_error(&self) {
        self.labelled(
            "ldd_export_errors_total",
            "cause",
            "manifest_topic".to_owned(),
        )
        .increment(1);
    }

    /// An HTTP answer was sent.
    pub(crate) fn http_answer(&self, status: u16) {
        self.labelled("ldd_http_requests_total", "status", status.to_string())
            .increment(1);
    }

    /// Renders the Prometheus text, with the per-state export counts given.
    pub(crate) fn render(&self, by_state: &[(ExportState, u64)]) -> String {
        for state in ExportState::ALL {
            let n = by_state
                .iter()
                .find(|(s, _)| *s == state)
                .map_or(0, |(_, n)| *n);
            self.recorder
                .register_gauge(
                    &Key::from_parts("ldd_exports", vec![Label::new("state", state.as_str())]),
                    &META,
                )
                .set(n as f64);
        }
        self.handle.run_upkeep();
        self.handle.render()
    }
}

/// Chunk durations and failures, from the sink wrapper every server export runs through.
impl ChunkTimer for Metrics {
    fn attempt_committed(&self, took: std::time::Duration) {
        self.chunk_seconds.record(took.as_secs_f64());
    }

    fn attempt_failed(&self) {
        self.chunk_failures.increment(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_histograms_and_gauges() {
        let m = Metrics::new();
        m.chunk_committed(10, 100, 1);
        m.attempt_committed(std::time::Duration::from_secs_f64(0.2));
        m.export_finished(ExportState::Succeeded);
        let text = m.render(&[(ExportState::Succeeded, 2)]);
        assert!(text.contains("ldd_records_produced_total 10"), "{text}");
        assert!(text.contains("ldd_chunk_duration_seconds_bucket"), "{text}");
        assert!(
            text.contains("ldd_exports{state=\"succeeded\"} 2"),
            "{text}"
        );
        assert!(text.contains("ldd_exports{state=\"running\"} 0"), "{text}");
    }
}
