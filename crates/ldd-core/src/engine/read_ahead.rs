//! Reading a source a little ahead of the encoder.

use futures::StreamExt;
use tokio::sync::mpsc;

use crate::source::RecordStream;

/// Batches read ahead of the encoder, per stream: enough to keep the source busy while the
/// current batch is encoded and sent, and a bound on the memory it costs.
const BATCHES_AHEAD: usize = 2;

/// Polls `stream` on a task of its own, so that the source fetches its next batch while the
/// engine encodes and sends the current one. A database cursor only asks the server for more
/// when it is polled: without this, the server and ldd took turns (FerretDB: 1M documents in
/// 72 s against a bare cursor's 59 s). Dropping the returned stream stops the task.
pub(crate) fn read_ahead(mut stream: RecordStream) -> RecordStream {
    let (tx, rx) = mpsc::channel(BATCHES_AHEAD);
    tokio::spawn(async move {
        loop {
            let next = tokio::select! {
                _ = tx.closed() => break,
                next = stream.next() => next,
            };
            let Some(batch) = next else { break };
            let failed = batch.is_err();
            if tx.send(batch).await.is_err() || failed {
                break;
            }
        }
    });
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|b| (b, rx)) }).boxed()
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use futures::TryStreamExt;

    use super::*;
    use crate::error::Error;
    use crate::value::{Record, Value};

    fn batch(i: i64) -> Vec<Record> {
        vec![[("i", Value::Int(i))].into_iter().collect()]
    }

    #[tokio::test]
    async fn keeps_order_and_ends_with_the_source() {
        let source = futures::stream::iter((0..50).map(|i| Ok(batch(i)))).boxed();
        let read: Vec<Vec<Record>> = read_ahead(source).try_collect().await.unwrap();
        assert_eq!(read, (0..50).map(batch).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn passes_an_error_on_and_stops_there() {
        let items = vec![
            Ok(batch(1)),
            Err(Error::Format("boom".into())),
            Ok(batch(2)),
        ];
        let mut read = read_ahead(futures::stream::iter(items).boxed());
        assert_eq!(read.next().await.unwrap().unwrap(), batch(1));
        assert!(matches!(read.next().await, Some(Err(Error::Format(_)))));
        assert!(read.next().await.is_none());
    }

    #[tokio::test]
    async fn reads_at_most_a_bounded_distance_ahead_and_stops_when_dropped() {
        let polled = Arc::new(AtomicUsize::new(0));
        let counter = polled.clone();
        let endless = futures::stream::repeat_with(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            Ok(batch(0))
        })
        .boxed();
        let mut read = read_ahead(endless);
        read.next().await.unwrap().unwrap();
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        // One taken, two queued, one waiting for room: never the whole source.
        let ahead = polled.load(Ordering::SeqCst);
        assert!(ahead <= 1 + BATCHES_AHEAD + 1, "read {ahead} batches ahead");
        drop(read);
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        let after_drop = polled.load(Ordering::SeqCst);
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert_eq!(polled.load(Ordering::SeqCst), after_drop);
    }
}
