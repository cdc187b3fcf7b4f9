//! Peak memory of `ldd export` and `ldd consume` as separate processes.

use anyhow::Context as _;
use ldd_core::Format;
use tokio::process::Command;

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

/// Exports `size` generated records (jsonl) with a child `ldd export`, consumes them to a
/// file with a child `ldd consume`, and reports both processes' peak RSS.
pub(super) async fn measure(brokers: &str, size: u64, partitions: u32) -> anyhow::Result<Vec<Row>> {
    let exe = std::env::current_exe().context("locating the ldd binary")?;
    let dir = std::env::temp_dir().join(format!("ldd-bench-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    let manifest = dir.join("manifest.json");
    let topic = format!("ldd-bench-rss-{}", uuid::Uuid::new_v4().simple());
    let started = std::time::Instant::now();
    let export = Command::new(&exe)
        .env(REPORT_ENV, "1")
        .args(["export", "--brokers", brokers, "--topic", &topic, "--quiet"])
        .args([
            "--partitions",
            &partitions.to_string(),
            "--records",
            &size.to_string(),
        ])
        .args(["--format", "jsonl", "--manifest-topic", ""])
        .arg("--manifest-out")
        .arg(&manifest)
        .output()
        .await?;
    let export_secs = started.elapsed().as_secs_f64();
    if !export.status.success() {
        anyhow::bail!(
            "ldd export failed: {}",
            String::from_utf8_lossy(&export.stderr)
        );
    }
    let started = std::time::Instant::now();
    let consume = Command::new(&exe)
        .env(REPORT_ENV, "1")
        .args([
            "consume",
            "--brokers",
            brokers,
            "--quiet",
            "--output-format",
            "jsonl",
        ])
        .arg("--manifest")
        .arg(&manifest)
        .arg("--output")
        .arg(dir.join("out.jsonl"))
        .output()
        .await?;
    let consume_secs = started.elapsed().as_secs_f64();
    if !consume.status.success() {
        anyhow::bail!(
            "ldd consume failed: {}",
            String::from_utf8_lossy(&consume.stderr)
        );
    }
    let _ = ldd_sink_kafka::TopicAdmin::new(brokers)
        .delete_topic(&topic)
        .await;
    let _ = std::fs::remove_dir_all(&dir);
    let row = |path: &str, secs: f64, stderr: &[u8]| {
        let mut r = Row::reference(
            path,
            size,
            Measure {
                records: size,
                bytes: 0,
                seconds: secs,
                peak_rss_mb: parse_peak(stderr),
            },
        );
        r.format = Some(Format::Jsonl.to_string());
        r
    };
    Ok(vec![
        row("process: ldd export", export_secs, &export.stderr),
        row("process: ldd consume > file", consume_secs, &consume.stderr),
    ])
}
