//! The conformance suite every [`DataSource`] must pass.

use std::collections::HashSet;

use futures::TryStreamExt;

use crate::chunk::ChunkRange;
use crate::error::{Error, Result};
use crate::source::{DataSource, SplitKind};
use crate::value::Record;

/// What the suite saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConformanceReport {
    /// The source's count.
    pub counted: u64,
    /// Records read through the split ranges (or the scan when the source cannot split).
    pub read_by_ranges: u64,
    /// Records read by one whole scan.
    pub read_by_scan: u64,
    /// Ranges planned.
    pub ranges: usize,
    /// Whether the source split at all.
    pub splittable: bool,
    /// The strategy name.
    pub strategy: String,
}

/// Checks that `source` counts, splits and reads consistently:
/// a whole scan yields `count()` records; split into `chunks` ranges, the ranges are
/// disjoint and cover the dataset (by `identity`), each holds what it was planned to hold
/// when the strategy is exact, and every record satisfies `accept` (filters, time range).
pub async fn check_source(
    source: &dyn DataSource,
    chunks: usize,
    identity: impl Fn(&Record) -> String,
    accept: impl Fn(&Record) -> bool,
) -> Result<ConformanceReport> {
    let fail = |msg: String| Err(Error::InvalidInput(format!("conformance: {msg}")));
    let counted = source.count().await?;

    let mut scanned = HashSet::new();
    let mut read_by_scan = 0u64;
    let mut stream = source.read(&ChunkRange::All).await?;
    while let Some(batch) = stream.try_next().await? {
        for record in &batch {
            read_by_scan += 1;
            if !accept(record) {
                return fail(format!(
                    "scan returned a record outside the dataset: {record:?}"
                ));
            }
            if !scanned.insert(identity(record)) {
                return fail(format!(
                    "scan returned a record twice: {}",
                    identity(record)
                ));
            }
        }
    }
    if read_by_scan != counted {
        return fail(format!(
            "count() says {counted} but a scan read {read_by_scan}"
        ));
    }

    let split = source.split(chunks, counted).await?;
    let (ranges, splittable) = match split.kind {
        SplitKind::Ranges(ranges) => (ranges, true),
        SplitKind::ScanOnly => (Vec::new(), false),
    };
    let mut seen = HashSet::new();
    let mut read_by_ranges = 0u64;
    for (i, planned) in ranges.iter().enumerate() {
        let mut stream = source.read(&planned.range).await?;
        let mut in_range = 0u64;
        while let Some(batch) = stream.try_next().await? {
            for record in &batch {
                in_range += 1;
                let id = identity(record);
                if !accept(record) {
                    return fail(format!("range {i} returned a record outside the dataset"));
                }
                if !seen.insert(id.clone()) {
                    return fail(format!("record {id} appears in two ranges (range {i})"));
                }
            }
        }
        if in_range != planned.expected_records && split.strategy.reason.is_none() {
            return fail(format!(
                "range {i} was planned with {} records but holds {in_range}",
                planned.expected_records
            ));
        }
        read_by_ranges += in_range;
    }
    if splittable {
        if seen != scanned {
            return fail(format!(
                "ranges cover {} records, the scan {}",
                seen.len(),
                scanned.len()
            ));
        }
    } else {
        read_by_ranges = read_by_scan;
    }
    Ok(ConformanceReport {
        counted,
        read_by_ranges,
        read_by_scan,
        ranges: ranges.len(),
        splittable,
        strategy: split.strategy.name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generator::{GeneratorConfig, GeneratorSource};

    fn seq(r: &Record) -> String {
        format!("{:?}", r.get("seq"))
    }

    #[tokio::test]
    async fn generator_conforms() {
        for (records, ppt, chunks) in [(0, 1, 4), (1, 1, 4), (10_000, 13, 48), (100, 100, 4)] {
            let src = GeneratorSource::new(GeneratorConfig {
                records,
                points_per_timestamp: ppt,
                ..Default::default()
            });
            let report = check_source(&src, chunks, seq, |_| true).await.unwrap();
            assert_eq!(report.counted, records);
            assert_eq!(report.read_by_ranges, records);
        }
    }

    #[tokio::test]
    async fn a_lying_filter_is_caught() {
        let src = GeneratorSource::new(GeneratorConfig {
            records: 10,
            ..Default::default()
        });
        let err = check_source(&src, 2, seq, |r| {
            r.get("seq") != Some(&crate::Value::Int(3))
        })
        .await
        .unwrap_err();
        assert!(err.to_string().contains("outside the dataset"));
    }
}
