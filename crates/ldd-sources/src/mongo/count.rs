//! Counting the documents of a dataset without reading them where the server allows.

use futures::stream::TryStreamExt;
use mongodb::bson::{doc, Bson, Document};
use mongodb::Collection;

use super::error::mongo;
use crate::error::Result;

/// Documents matching `filter`. A whole collection is counted from the storage statistics
/// (`$collStats`): the driver's estimated count uses the `count` command, which FerretDB
/// answers by reading every document (9 s for 200,000 on SQLite, against 0.2 s here).
pub(crate) async fn count(collection: &Collection<Document>, filter: &Document) -> Result<u64> {
    if !filter.is_empty() {
        return collection
            .count_documents(filter.clone())
            .await
            .map_err(|e| mongo("counting documents", e));
    }
    match storage_count(collection).await {
        Ok(Some(n)) => Ok(n),
        // Views and servers without `$collStats` still have the estimated count.
        Ok(None) | Err(_) => collection
            .estimated_document_count()
            .await
            .map_err(|e| mongo("counting documents", e)),
    }
}

async fn storage_count(collection: &Collection<Document>) -> Result<Option<u64>> {
    let stats: Vec<Document> = collection
        .aggregate(vec![doc! { "$collStats": { "count": {} } }])
        .await
        .map_err(|e| mongo("$collStats", e))?
        .try_collect()
        .await
        .map_err(|e| mongo("$collStats", e))?;
    // A sharded collection answers one document per shard.
    let mut total = 0u64;
    for shard in &stats {
        match shard.get("count") {
            Some(Bson::Int32(n)) => total += u64::try_from(*n).unwrap_or(0),
            Some(Bson::Int64(n)) => total += u64::try_from(*n).unwrap_or(0),
            Some(Bson::Double(n)) if *n >= 0.0 => total += *n as u64,
            _ => return Ok(None),
        }
    }
    Ok((!stats.is_empty()).then_some(total))
}
