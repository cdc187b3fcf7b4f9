//! A MongoDB collection (with its filters) as an [`ldd_core::DataSource`].

use async_trait::async_trait;
use futures::stream::{self, TryStreamExt};
use ldd_core::{
    ChunkRange, DataSource, DatasetSpec, PlanStrategy, PlannedRange, RecordStream, Split, SplitKind,
};
use mongodb::bson::{doc, Bson, Document};
use mongodb::Collection;

use super::convert::{bson_to_bound, document_to_record};
use super::error::mongo;
use super::filter::{chunk_filter, dataset_filter, projection};
use crate::error::{Error, Result};

/// One dataset of a MongoDB server.
#[derive(Debug, Clone)]
pub struct MongoSource {
    collection: Collection<Document>,
    spec: DatasetSpec,
    filter: Document,
    projection: Option<Document>,
    batch_size: u32,
}

impl MongoSource {
    /// A source over `collection` restricted by `spec`'s filters and time range.
    pub fn new(
        collection: Collection<Document>,
        spec: DatasetSpec,
        batch_size: u32,
    ) -> Result<Self> {
        let filter = dataset_filter(&spec)?;
        let projection = projection(&spec)?;
        Ok(MongoSource {
            collection,
            spec,
            filter,
            projection,
            batch_size: batch_size.max(1),
        })
    }

    /// The field chunks are split on: the time field when there is one, else `_id`.
    fn split_field(&self) -> &str {
        self.spec.time_field.as_deref().unwrap_or("_id")
    }

    /// Server-side split with `$bucketAuto`: one aggregation that returns `chunks` buckets
    /// of about equal counts, equal values never split across buckets.
    async fn bucket_auto(&self, chunks: usize, total: u64) -> Result<Vec<PlannedRange>> {
        let field = self.split_field().to_owned();
        // Probe on one document first: a server without $bucketAuto may only say so after
        // running the stages before it over the whole collection.
        let probe = vec![
            doc! { "$limit": 1 },
            doc! { "$bucketAuto": { "groupBy": format!("${field}"), "buckets": 1 } },
        ];
        let _: Vec<Document> = self
            .collection
            .aggregate(probe)
            .await
            .map_err(|e| mongo("$bucketAuto", e))?
            .try_collect()
            .await
            .map_err(|e| mongo("$bucketAuto", e))?;
        let pipeline = vec![
            doc! { "$match": self.filter.clone() },
            doc! { "$bucketAuto": { "groupBy": format!("${field}"), "buckets": chunks as i64 } },
        ];
        let buckets: Vec<Document> = self
            .collection
            .aggregate(pipeline)
            .await
            .map_err(|e| mongo("$bucketAuto", e))?
            .try_collect()
            .await
            .map_err(|e| mongo("$bucketAuto", e))?;
        let mut starts = Vec::with_capacity(buckets.len());
        let mut counts = Vec::with_capacity(buckets.len());
        for b in &buckets {
            let min = b
                .get_document("_id")
                .ok()
                .and_then(|id| id.get("min"))
                .ok_or_else(|| Error::Decode("$bucketAuto answered without _id.min".into()))?;
            let bound = bson_to_bound(min).ok_or_else(|| {
                Error::Unsupported(format!(
                    "`{field}` holds values that cannot bound a range ({})",
                    bson_kind(min)
                ))
            })?;
            starts.push(bound);
            counts.push(match b.get("count") {
                Some(Bson::Int32(n)) => u64::try_from(*n).unwrap_or(0),
                Some(Bson::Int64(n)) => u64::try_from(*n).unwrap_or(0),
                _ => 0,
            });
        }
        // Ranges on a field with mixed types, or documents without it, would lose records.
        let same_type = starts
            .windows(2)
            .all(|w| std::mem::discriminant(&w[0]) == std::mem::discriminant(&w[1]));
        let counted: u64 = counts.iter().sum();
        if !same_type || counted != total {
            return Err(Error::Unsupported(format!(
                "`{field}` is missing or of mixed types in some documents ({counted} of {total} bucketed)"
            )));
        }
        let n = starts.len();
        Ok((0..n)
            .map(|i| PlannedRange {
                range: ChunkRange::Range {
                    field: field.clone(),
                    start: (i > 0).then(|| starts[i].clone()),
                    end: starts.get(i + 1).cloned(),
                },
                expected_records: counts[i],
            })
            .collect())
    }
}

/// Why the server could not split, in one line (driver errors carry a raw reply dump).
fn split_unavailable_reason(err: &Error) -> String {
    let text = err.to_string();
    if text.contains("NotImplemented") || text.contains("not implemented") {
        return "the server does not implement $bucketAuto (FerretDB 1.24 does not)".into();
    }
    let first = text.split(", labels").next().unwrap_or(&text);
    format!(
        "server-side split unavailable: {}",
        first.chars().take(200).collect::<String>()
    )
}

fn bson_kind(value: &Bson) -> String {
    format!("{:?}", value.element_type())
}

#[async_trait]
impl DataSource for MongoSource {
    fn describe(&self) -> String {
        format!(
            "mongo:{}.{}",
            self.collection.namespace().db,
            self.collection.name()
        )
    }

    async fn count(&self) -> ldd_core::Result<u64> {
        Ok(super::count::count(&self.collection, &self.filter).await?)
    }

    async fn split(&self, chunks: usize, total: u64) -> ldd_core::Result<Split> {
        match self.bucket_auto(chunks, total).await {
            Ok(ranges) => Ok(Split {
                kind: SplitKind::Ranges(ranges),
                strategy: PlanStrategy {
                    name: format!("bucket-auto on {}", self.split_field()),
                    reason: None,
                    queries: 2,
                    duration_ms: 0,
                },
            }),
            Err(err) => {
                // FerretDB 1.24 has no $bucketAuto (nor splitVector, $sample, or $min/$max in
                // $group), and its range counts scan the collection, so probing boundaries
                // with counts would read the data many times over. One ordered scan reads
                // it once.
                tracing::info!(error = %err, "cannot split on the server; one ordered scan");
                Ok(Split {
                    kind: SplitKind::ScanOnly,
                    strategy: PlanStrategy {
                        name: "ordered-scan".into(),
                        reason: Some(split_unavailable_reason(&err)),
                        queries: 1,
                        duration_ms: 0,
                    },
                })
            }
        }
    }

    async fn read(&self, range: &ChunkRange) -> ldd_core::Result<RecordStream> {
        let filter = chunk_filter(&self.filter, range)?;
        let mut find = self.collection.find(filter).batch_size(self.batch_size);
        if let Some(p) = &self.projection {
            find = find.projection(p.clone());
        }
        if matches!(range, ChunkRange::All) {
            // The ordered scan is cut into blocks by position: the order must be stable.
            find = find.sort(doc! { "_id": 1 });
        }
        let cursor = find.await.map_err(|e| mongo("reading documents", e))?;
        let batch = self.batch_size as usize;
        Ok(Box::pin(stream::try_unfold(
            cursor,
            move |mut cursor| async move {
                let mut records = Vec::with_capacity(batch);
                while records.len() < batch {
                    match cursor.try_next().await {
                        Ok(Some(doc)) => records.push(document_to_record(doc)),
                        Ok(None) => break,
                        Err(e) => return Err(ldd_core::Error::from(mongo("reading documents", e))),
                    }
                }
                Ok((!records.is_empty()).then_some((records, cursor)))
            },
        )))
    }
}
