//! Benchmark rows and their table.

use ldd_core::Format;
use serde::Serialize;

/// One timed run.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub(crate) struct Measure {
    pub(crate) records: u64,
    pub(crate) bytes: u64,
    pub(crate) seconds: f64,
    /// Peak resident set size, when measured.
    pub(crate) peak_rss_mb: Option<f64>,
}

impl Measure {
    pub(crate) fn records_per_sec(&self) -> f64 {
        if self.seconds > 0.0 {
            self.records as f64 / self.seconds
        } else {
            0.0
        }
    }

    pub(crate) fn mb_per_sec(&self) -> f64 {
        if self.seconds > 0.0 {
            self.bytes as f64 / 1e6 / self.seconds
        } else {
            0.0
        }
    }

    /// The measure of an export that produced `manifest` and started at `started`.
    pub(crate) fn of_export(manifest: &ldd_core::Manifest, started: std::time::Instant) -> Self {
        Measure {
            records: manifest.total_records,
            bytes: manifest.total_bytes,
            seconds: started.elapsed().as_secs_f64(),
            ..Default::default()
        }
    }

    /// Keeps the faster of two runs of the same work.
    pub(crate) fn keep_best(&mut self, other: Measure) {
        if self.seconds == 0.0 || (other.seconds > 0.0 && other.seconds < self.seconds) {
            *self = other;
        }
    }
}

/// ldd next to its baseline on one path.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Row {
    pub(crate) path: String,
    pub(crate) format: Option<String>,
    pub(crate) records: u64,
    pub(crate) baseline: Option<Measure>,
    pub(crate) ldd: Measure,
    pub(crate) baseline_records_per_sec: Option<f64>,
    pub(crate) ldd_records_per_sec: f64,
    pub(crate) ratio: Option<f64>,
    /// Extra detail (e.g. the planning strategy of a source path).
    pub(crate) note: Option<String>,
}

impl Row {
    pub(crate) fn new(
        path: &str,
        format: Format,
        records: u64,
        base: Measure,
        ldd: Measure,
    ) -> Self {
        let (b, o) = (base.records_per_sec(), ldd.records_per_sec());
        Row {
            path: path.into(),
            format: Some(format.to_string()),
            records,
            baseline: Some(base),
            ldd,
            baseline_records_per_sec: Some(b),
            ldd_records_per_sec: o,
            ratio: (b > 0.0).then(|| o / b),
            note: None,
        }
    }

    /// A line with no baseline (a reference figure, or a measurement such as RSS).
    pub(crate) fn reference(path: &str, records: u64, measure: Measure) -> Self {
        Row {
            path: path.into(),
            format: None,
            records,
            baseline: None,
            ldd: measure,
            baseline_records_per_sec: None,
            ldd_records_per_sec: measure.records_per_sec(),
            ratio: None,
            note: None,
        }
    }
}

pub(crate) fn print(rows: &[Row]) {
    println!(
        "| path | format | records | baseline rec/s | ldd rec/s | ratio | ldd MB/s | peak RSS | note |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---|");
    for r in rows {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.path,
            r.format.as_deref().unwrap_or("-"),
            r.records,
            r.baseline_records_per_sec
                .map_or("-".into(), |v| format!("{v:.0}")),
            if r.ldd.seconds > 0.0 {
                format!("{:.0}", r.ldd_records_per_sec)
            } else {
                "-".into()
            },
            r.ratio.map_or("-".into(), |v| format!("{v:.2}")),
            // Child processes report records and time, not bytes.
            if r.ldd.bytes > 0 {
                format!("{:.1}", r.ldd.mb_per_sec())
            } else {
                "-".into()
            },
            r.ldd
                .peak_rss_mb
                .map_or("-".into(), |v| format!("{v:.0} MB")),
            r.note.as_deref().unwrap_or(""),
        );
    }
}
