//! Implement `DataSource` for your own store and export it with the ldd engine.
//!
//! Run with: `cargo run -p ldd-examples --example custom_source`

use std::sync::Arc;

use async_trait::async_trait;
use futures::stream;
use ldd_core::testing::MemorySink;
use ldd_core::{
    export, ChunkRange, DataSource, ExportControl, ExportOptions, JobCountPartitioner,
    PlanStrategy, PlannedRange, Record, RecordStream, Split, SplitKind, Value, ValueBound,
};

/// Rows `0..rows` of an imaginary table keyed by an integer id.
struct IdRangeTable {
    rows: i64,
}

impl IdRangeTable {
    fn row(id: i64) -> Record {
        [
            ("id", Value::Int(id)),
            ("name", Value::from(format!("row {id}"))),
        ]
        .into_iter()
        .collect()
    }
}

#[async_trait]
impl DataSource for IdRangeTable {
    fn describe(&self) -> String {
        format!("id-range table ({} rows)", self.rows)
    }

    async fn count(&self) -> ldd_core::Result<u64> {
        Ok(self.rows as u64)
    }

    async fn split(&self, chunks: usize, total: u64) -> ldd_core::Result<Split> {
        // Equal id ranges: exact because ids are dense.
        let n = chunks.max(1) as i64;
        let total = total as i64;
        let ranges = (0..n)
            .map(|i| {
                let (lo, hi) = (total * i / n, total * (i + 1) / n);
                PlannedRange {
                    range: ChunkRange::Range {
                        field: "id".into(),
                        start: Some(ValueBound::Int(lo)),
                        end: Some(ValueBound::Int(hi)),
                    },
                    expected_records: (hi - lo) as u64,
                }
            })
            .collect();
        Ok(Split {
            kind: SplitKind::Ranges(ranges),
            strategy: PlanStrategy {
                name: "dense-ids".into(),
                ..Default::default()
            },
        })
    }

    async fn read(&self, range: &ChunkRange) -> ldd_core::Result<RecordStream> {
        let (lo, hi) = match range {
            ChunkRange::Range {
                start: Some(ValueBound::Int(lo)),
                end: Some(ValueBound::Int(hi)),
                ..
            } => (*lo, *hi),
            _ => (0, self.rows),
        };
        // Batches of 1,000 rows, produced lazily: memory does not grow with the range.
        let batches = (lo..hi)
            .step_by(1_000)
            .map(move |s| Ok((s..(s + 1_000).min(hi)).map(IdRangeTable::row).collect()));
        Ok(Box::pin(stream::iter(batches)))
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sink = Arc::new(MemorySink::new(4));
    let manifest = export(
        Arc::new(IdRangeTable { rows: 50_000 }),
        sink,
        &JobCountPartitioner::default(),
        ExportOptions::default(),
        ExportControl::default(),
    )
    .await?;
    println!(
        "{} records in {} chunks; per partition: {:?}",
        manifest.total_records,
        manifest.chunks.len(),
        manifest.offsets_data()
    );
    Ok(())
}
