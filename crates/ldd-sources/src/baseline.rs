//! Bare scans of a dataset with the database's own client and nothing of ldd, used by the
//! benchmark harness as the "physical limit" that ldd's source paths are compared with.

use crate::error::Result;

/// Streams every document of `database.collection` with a plain cursor and returns how many
/// there were. No conversion, no filter, no sort.
#[cfg(feature = "mongo")]
pub async fn mongo_cursor_scan(
    url: &str,
    database: &str,
    collection: &str,
    batch_size: u32,
) -> Result<u64> {
    use futures::TryStreamExt;
    use mongodb::bson::{doc, RawDocumentBuf};

    let err = |context: &str| {
        let context = context.to_owned();
        move |source| crate::error::Error::Mongo { context, source }
    };
    let client = mongodb::Client::with_uri_str(url)
        .await
        .map_err(err("connecting"))?;
    let coll = client
        .database(database)
        .collection::<RawDocumentBuf>(collection);
    let mut cursor = coll
        .find(doc! {})
        .batch_size(batch_size)
        .await
        .map_err(err("scanning"))?;
    let mut n = 0u64;
    while cursor.try_next().await.map_err(err("scanning"))?.is_some() {
        n += 1;
    }
    Ok(n)
}

/// Streams `SELECT * FROM measurement` over InfluxQL with `chunked=true` and returns the
/// bytes received. No parsing. `token` authenticates on InfluxDB 2.x (its v1 compatibility
/// API, where `database` is a bucket's name).
#[cfg(feature = "influx")]
pub async fn influx_query_scan(
    url: &str,
    token: Option<&str>,
    database: &str,
    measurement: &str,
    chunk_size: usize,
) -> Result<u64> {
    use futures::StreamExt;

    let query = format!(
        "SELECT * FROM {}",
        crate::influx::escape::influxql_ident(measurement)?
    );
    let err = |source| crate::error::Error::Http {
        context: "scanning".into(),
        source,
    };
    let mut request = reqwest::Client::new().get(format!("{}/query", url.trim_end_matches('/')));
    if let Some(token) = token {
        request = request.header("Authorization", format!("Token {token}"));
    }
    let response = request
        .query(&[
            ("db", database),
            ("q", query.as_str()),
            ("epoch", "ns"),
            ("chunked", "true"),
            ("chunk_size", &chunk_size.to_string()),
        ])
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(err)?;
    let mut body = response.bytes_stream();
    let mut bytes = 0u64;
    while let Some(chunk) = body.next().await {
        bytes += chunk.map_err(err)?.len() as u64;
    }
    Ok(bytes)
}
