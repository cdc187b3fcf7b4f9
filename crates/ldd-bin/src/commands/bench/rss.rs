//! Peak memory of `ldd export` and `ldd consume` as separate processes, per format and
//! output, and the write speed of Parquet next to JSONL from the same export.
//!
//! Each size gets one export per format; every output then reads that same export back in
//! a process of its own, so that the peak RSS it reports is the read-back's alone.

use anyhow::Context as _;
use ldd_core::Format;
use tokio::process::Command;

use std::path::Path;

use super::table::{Measure, Row};

/// Env var that makes `ldd` print its peak RSS on exit.
pub(crate) const REPORT_ENV: &str = "LDD_REPORT_PEAK_RSS";

/// Prints `peak_rss_kb=N` to stderr when [`REPORT_ENV`] is set (Linux).
pub(crate) fn report_if_asked() {
    if std::env::var_os(REPORT_ENV).is_none() {
        return;
    }
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        if let Some(kb) = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.split_whitespace().next())
        {
            eprintln!("peak_rss_kb={kb}");
        }
    }
}

fn parse_peak(stderr: &[u8]) -> Option<f64> {
    String::from_utf8_lossy(stderr)
        .lines()
        .find_map(|l| l.strip_prefix("peak_rss_kb="))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
}

/// The outputs read-back is measured with (`ldd consume --output-format`).
const OUTPUTS: [&str; 4] = ["discard", "jsonl", "csv", "parquet"];

/// One `ldd consume` child's figures.
struct Consumed {
    output: &'static str,
    measure: Measure,
}

/// Peak RSS of the read-back of one format and output at the smallest and largest size.
pub(super) struct Growth {
    format: Format,
    output: &'static str,
    by_size: Vec<(u64, f64)>,
}

/// What [`measure`] found for every size, kept to compare sizes at the end.
#[derive(Default)]
pub(super) struct RssLog {
    growth: Vec<Growth>,
}

impl RssLog {
    fn note(&mut self, format: Format, output: &'static str, size: u64, peak_mb: Option<f64>) {
        let Some(peak) = peak_mb else { return };
        match self
            .growth
            .iter_mut()
            .find(|g| g.format == format && g.output == output)
        {
            Some(g) => g.by_size.push((size, peak)),
            None => self.growth.push(Growth {
                format,
                output,
                by_size: vec![(size, peak)],
            }),
        }
    }

    /// One row per format and output: peak RSS at the largest size over the smallest
    /// (flat memory is a ratio near 1; the target is at most 1.1).
    pub(super) fn growth_rows(&self) -> Vec<Row> {
        let mut rows = Vec::new();
        for g in &self.growth {
            let (Some(small), Some(large)) = (
                g.by_size.iter().min_by_key(|(n, _)| *n),
                g.by_size.iter().max_by_key(|(n, _)| *n),
            ) else {
                continue;
            };
            if small.0 == large.0 {
                continue;
            }
            let mut row = Row::reference(
                &format!("memory: consume > {} RSS growth", g.output),
                large.0,
                Measure {
                    records: large.0,
                    peak_rss_mb: Some(large.1),
                    ..Measure::default()
                },
            );
            row.format = Some(g.format.to_string());
            row.ratio = Some(large.1 / small.1.max(1e-9));
            row.note = Some(format!(
                "ratio = peak RSS at {} / at {} records ({:.0} MB / {:.0} MB); target <= 1.10",
                large.0, small.0, large.1, small.1
            ));
            rows.push(row);
        }
        rows
    }
}

async fn ldd_child(exe: &Path, args: &[String]) -> anyhow::Result<(f64, std::process::Output)> {
    let started = std::time::Instant::now();
    let out = Command::new(exe)
        .env(REPORT_ENV, "1")
        .args(args)
        .output()
        .await
        .with_context(|| format!("running ldd {}", args.first().map_or("", |a| a.as_str())))?;
    let secs = started.elapsed().as_secs_f64();
    if !out.status.success() {
        anyhow::bail!(
            "ldd {} failed: {}",
            args.first().map_or("", |a| a.as_str()),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok((secs, out))
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

/// Exports `size` generated records in `format` with a child `ldd export`, reads it back
/// with a child `ldd consume` per output, and reports every process's peak RSS, plus the
/// Parquet write speed against JSONL's.
pub(super) async fn measure(
    brokers: &str,
    size: u64,
    partitions: u32,
    format: Format,
    log: &mut RssLog,
) -> anyhow::Result<Vec<Row>> {
    let exe = std::env::current_exe().context("locating the ldd binary")?;
    let dir = std::env::temp_dir().join(format!("ldd-bench-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    let manifest = dir.join("manifest.json");
    let manifest_arg = manifest.display().to_string();
    let topic = format!("ldd-bench-rss-{}", uuid::Uuid::new_v4().simple());
    let (size_arg, partitions_arg, format_arg) =
        (size.to_string(), partitions.to_string(), format.to_string());
    let export = ldd_child(
        &exe,
        &strings(&[
            "export",
            "--brokers",
            brokers,
            "--topic",
            &topic,
            "--quiet",
            "--partitions",
            &partitions_arg,
            "--records",
            &size_arg,
            "--format",
            &format_arg,
            "--manifest-topic",
            "",
            "--manifest-out",
            &manifest_arg,
        ]),
    )
    .await;
    let mut consumed = Vec::new();
    let result = match export {
        Ok((export_secs, export)) => {
            let mut outcome = Ok(());
            for output in OUTPUTS {
                let file = dir.join(format!("out.{output}")).display().to_string();
                let run = ldd_child(
                    &exe,
                    &strings(&[
                        "consume",
                        "--brokers",
                        brokers,
                        "--quiet",
                        "--manifest",
                        &manifest_arg,
                        "--output-format",
                        output,
                        "--output",
                        &file,
                    ]),
                )
                .await;
                // The file is only there to be written; 10M records take gigabytes.
                let _ = std::fs::remove_file(&file);
                match run {
                    Ok((secs, out)) => consumed.push(Consumed {
                        output,
                        measure: Measure {
                            records: size,
                            bytes: 0,
                            seconds: secs,
                            peak_rss_mb: parse_peak(&out.stderr),
                        },
                    }),
                    Err(e) => {
                        outcome = Err(e);
                        break;
                    }
                }
            }
            outcome.map(|()| (export_secs, export))
        }
        Err(e) => Err(e),
    };
    let _ = ldd_sink_kafka::TopicAdmin::new(brokers)
        .delete_topic(&topic)
        .await;
    let _ = std::fs::remove_dir_all(&dir);
    let (export_secs, export) = result?;

    let reference = |path: String, measure: Measure| {
        let mut r = Row::reference(&path, size, measure);
        r.format = Some(format.to_string());
        r
    };
    let mut rows = vec![reference(
        "process: ldd export".into(),
        Measure {
            records: size,
            bytes: 0,
            seconds: export_secs,
            peak_rss_mb: parse_peak(&export.stderr),
        },
    )];
    for c in &consumed {
        log.note(format, c.output, size, c.measure.peak_rss_mb);
        rows.push(reference(
            format!("process: ldd consume > {}", c.output),
            c.measure,
        ));
    }
    let by_output = |name: &str| {
        consumed
            .iter()
            .find(|c| c.output == name)
            .map(|c| c.measure)
    };
    if let (Some(jsonl), Some(parquet)) = (by_output("jsonl"), by_output("parquet")) {
        let mut row = Row::new(
            "read-back: parquet file vs jsonl file",
            format,
            size,
            jsonl,
            parquet,
        );
        row.note = Some("whole `ldd consume` processes writing the same export".into());
        rows.push(row);
    }
    Ok(rows)
}
