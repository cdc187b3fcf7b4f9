//! A deterministic generator of synthetic IoT points, for tests, benchmarks and the demo.

use async_trait::async_trait;
use futures::stream;
use serde::{Deserialize, Serialize};

use crate::chunk::{ChunkRange, PlanStrategy, ValueBound};
use crate::error::{Error, Result};
use crate::source::{DataSource, PlannedRange, RecordStream, Split, SplitKind};
use crate::value::{Record, Value};

/// Name of the generator's time field.
pub const TIME_FIELD: &str = "_time";

/// Shape of a generated dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GeneratorConfig {
    /// Number of records.
    pub records: u64,
    /// Time of the first record, in nanoseconds since the epoch.
    pub start_ns: i64,
    /// Time between consecutive timestamps, in nanoseconds.
    pub interval_ns: i64,
    /// Records sharing each timestamp (devices reporting at the same instant).
    pub points_per_timestamp: u32,
    /// Distinct `device` tag values.
    pub devices: u32,
    /// Distinct `site` tag values.
    pub sites: u32,
    /// Measurement name written in `_measurement`.
    pub measurement: String,
    /// Records per batch yielded by `read`.
    pub batch_size: usize,
    /// When false, the source refuses to split (exercises the engine's ordered-scan path).
    pub splittable: bool,
}

impl Default for GeneratorConfig {
    fn default() -> Self {
        GeneratorConfig {
            records: 1_000,
            // 2024-01-01T00:00:00Z
            start_ns: 1_704_067_200_000_000_000,
            interval_ns: 1_000_000,
            points_per_timestamp: 1,
            devices: 100,
            sites: 8,
            measurement: "iot".into(),
            batch_size: 1024,
            splittable: true,
        }
    }
}

impl GeneratorConfig {
    /// Rejects values that would make the dataset meaningless or overflow time.
    pub fn validate(&self) -> Result<()> {
        if self.interval_ns <= 0 {
            return Err(Error::InvalidInput(
                "generator interval must be > 0 ns".into(),
            ));
        }
        if self.points_per_timestamp == 0 || self.devices == 0 || self.sites == 0 {
            return Err(Error::InvalidInput(
                "generator points_per_timestamp, devices and sites must be > 0".into(),
            ));
        }
        if self.batch_size == 0 {
            return Err(Error::InvalidInput(
                "generator batch_size must be > 0".into(),
            ));
        }
        let steps = (self.records / u64::from(self.points_per_timestamp)).saturating_add(1);
        let span = i64::try_from(steps)
            .ok()
            .and_then(|s| s.checked_mul(self.interval_ns))
            .and_then(|s| s.checked_add(self.start_ns));
        if span.is_none() {
            return Err(Error::InvalidInput(
                "generator time span overflows; use fewer records or a smaller interval".into(),
            ));
        }
        Ok(())
    }

    /// Time of record `index`.
    pub fn time_of(&self, index: u64) -> i64 {
        let step = (index / u64::from(self.points_per_timestamp)) as i64;
        self.start_ns + step * self.interval_ns
    }

    /// Index of the first record whose time is at or after `nanos`.
    fn first_index_at(&self, nanos: i64) -> u64 {
        if nanos <= self.start_ns {
            return 0;
        }
        let offset = (nanos - self.start_ns) as u64;
        let interval = self.interval_ns as u64;
        let step = offset.div_ceil(interval);
        step.saturating_mul(u64::from(self.points_per_timestamp))
            .min(self.records)
    }

    /// Record `index` of the dataset.
    pub fn record(&self, index: u64) -> Record {
        let device = index % u64::from(self.devices);
        let site = device % u64::from(self.sites);
        // A cheap, stable hash so values look varied but are reproducible.
        let h = index
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .rotate_left(17)
            .wrapping_add(device);
        let unit = |shift: u32| ((h >> shift) & 0xFFFF) as f64 / 65_535.0;
        let mut rec = Record::with_capacity(10);
        rec.push(TIME_FIELD, Value::Timestamp(self.time_of(index)));
        rec.push("_measurement", self.measurement.as_str());
        rec.push("device", format!("dev-{device:05}"));
        rec.push("site", format!("site-{site:02}"));
        rec.push("seq", index as i64);
        rec.push("temperature", round2(15.0 + 20.0 * unit(0)));
        rec.push("humidity", round2(30.0 + 60.0 * unit(16)));
        rec.push("pressure", round2(980.0 + 50.0 * unit(32)));
        rec.push("battery", round2(100.0 * unit(48)));
        rec.push("ok", !h.is_multiple_of(17));
        rec
    }

    fn index_range(&self, range: &ChunkRange) -> Result<(u64, u64)> {
        match range {
            ChunkRange::All => Ok((0, self.records)),
            ChunkRange::Range { field, start, end } if field == TIME_FIELD => {
                let bound = |b: &Option<ValueBound>, open: u64| match b {
                    None => Ok(open),
                    Some(ValueBound::Timestamp(t)) => Ok(self.first_index_at(*t)),
                    Some(other) => Err(Error::InvalidInput(format!(
                        "generator ranges are on timestamps, got {other:?}"
                    ))),
                };
                let lo = bound(start, 0)?;
                let hi = bound(end, self.records)?;
                Ok((lo, hi.max(lo)))
            }
            ChunkRange::Range { field, .. } => Err(Error::InvalidInput(format!(
                "generator ranges are on `{TIME_FIELD}`, not `{field}`"
            ))),
        }
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// A [`DataSource`] that generates [`GeneratorConfig::records`] IoT points on the fly.
#[derive(Debug, Clone)]
pub struct GeneratorSource {
    config: GeneratorConfig,
}

impl GeneratorSource {
    /// A generator with this shape.
    pub fn new(config: GeneratorConfig) -> Self {
        GeneratorSource { config }
    }

    /// The shape.
    pub fn config(&self) -> &GeneratorConfig {
        &self.config
    }
}

#[async_trait]
impl DataSource for GeneratorSource {
    fn describe(&self) -> String {
        format!(
            "generator:{} ({} records)",
            self.config.measurement, self.config.records
        )
    }

    async fn count(&self) -> Result<u64> {
        self.config.validate()?;
        Ok(self.config.records)
    }

    async fn split(&self, chunks: usize, total: u64) -> Result<Split> {
        self.config.validate()?;
        if !self.config.splittable {
            return Ok(Split {
                kind: SplitKind::ScanOnly,
                strategy: PlanStrategy {
                    name: "ordered-scan".into(),
                    reason: Some("generator configured as not splittable".into()),
                    ..Default::default()
                },
            });
        }
        let cfg = &self.config;
        let total = total.min(cfg.records);
        let ppt = u64::from(cfg.points_per_timestamp);
        // Boundaries at record indexes rounded down to the start of their timestamp, so
        // points sharing a timestamp never straddle two chunks.
        let n = chunks.max(1) as u64;
        let mut bounds: Vec<u64> = (0..=n)
            .map(|i| {
                let idx = (total as u128 * i as u128 / n as u128) as u64;
                if i == n {
                    total
                } else {
                    idx / ppt * ppt
                }
            })
            .collect();
        bounds.dedup();
        let ranges = bounds
            .windows(2)
            .enumerate()
            .map(|(i, w)| PlannedRange {
                range: ChunkRange::Range {
                    field: TIME_FIELD.into(),
                    start: (i > 0).then(|| ValueBound::Timestamp(cfg.time_of(w[0]))),
                    end: (w[1] < total).then(|| ValueBound::Timestamp(cfg.time_of(w[1]))),
                },
                expected_records: w[1] - w[0],
            })
            .collect();
        Ok(Split {
            kind: SplitKind::Ranges(ranges),
            strategy: PlanStrategy {
                name: "index-arithmetic".into(),
                reason: None,
                ..Default::default()
            },
        })
    }

    async fn read(&self, range: &ChunkRange) -> Result<RecordStream> {
        self.config.validate()?;
        let (lo, hi) = self.config.index_range(range)?;
        let cfg = self.config.clone();
        let batch = cfg.batch_size as u64;
        let starts = (lo..hi).step_by(cfg.batch_size);
        Ok(Box::pin(stream::iter(starts.map(move |s| {
            Ok((s..(s + batch).min(hi)).map(|i| cfg.record(i)).collect())
        }))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::TryStreamExt;

    async fn read_all(src: &GeneratorSource, range: &ChunkRange) -> Vec<Record> {
        let batches: Vec<Vec<Record>> = src.read(range).await.unwrap().try_collect().await.unwrap();
        batches.into_iter().flatten().collect()
    }

    #[tokio::test]
    async fn ranges_are_disjoint_covering_and_timestamp_aligned() {
        let src = GeneratorSource::new(GeneratorConfig {
            records: 1_003,
            points_per_timestamp: 7,
            batch_size: 50,
            ..Default::default()
        });
        let split = src.split(10, 1_003).await.unwrap();
        let SplitKind::Ranges(ranges) = split.kind else {
            panic!("expected ranges")
        };
        let mut seqs = Vec::new();
        let mut last_time = i64::MIN;
        for r in &ranges {
            let recs = read_all(&src, &r.range).await;
            assert_eq!(recs.len() as u64, r.expected_records);
            let first_time = match recs.first().and_then(|r| r.get(TIME_FIELD)) {
                Some(Value::Timestamp(t)) => *t,
                other => panic!("no time: {other:?}"),
            };
            assert!(first_time > last_time, "a timestamp straddles two chunks");
            if let Some(Value::Timestamp(t)) = recs.last().and_then(|r| r.get(TIME_FIELD)) {
                last_time = *t;
            }
            seqs.extend(recs.iter().map(|r| r.get("seq").cloned()));
        }
        let expected: Vec<_> = (0..1_003).map(|i| Some(Value::Int(i))).collect();
        assert_eq!(seqs, expected);
    }

    #[tokio::test]
    async fn generation_is_deterministic() {
        let cfg = GeneratorConfig::default();
        assert_eq!(cfg.record(42), cfg.record(42));
        assert_ne!(cfg.record(42), cfg.record(43));
        let json = crate::format::record_to_json(&cfg.record(0)).unwrap();
        assert!(json.starts_with(r#"{"_time":"2024-01-01T00:00:00Z","_measurement":"iot""#));
    }

    #[tokio::test]
    async fn empty_and_unsplittable() {
        let src = GeneratorSource::new(GeneratorConfig {
            records: 0,
            ..Default::default()
        });
        assert!(read_all(&src, &ChunkRange::All).await.is_empty());
        let src = GeneratorSource::new(GeneratorConfig {
            splittable: false,
            ..Default::default()
        });
        assert_eq!(src.split(4, 1000).await.unwrap().kind, SplitKind::ScanOnly);
    }

    #[test]
    fn bad_config_is_rejected() {
        let cfg = GeneratorConfig {
            interval_ns: 0,
            ..Default::default()
        };
        assert!(cfg.validate().is_err());
        let cfg = GeneratorConfig {
            records: u64::MAX,
            ..Default::default()
        };
        assert!(cfg.validate().is_err());
    }
}
