//! The tasks a worker holds and the one it runs, shared by the worker's poll thread
//! (which queues fetched tasks and serves rebalance callbacks) and its executor.
//!
//! A revocation drops the revoked partitions' queued tasks and stops the running chunk if
//! it came from one. The chunk's commit holds the lock from its ownership check to the end
//! of `EndTxn`, so a revocation waits for it: the partition's next owner sees either the
//! committed offset or an aborted transaction, never a commit racing its own attempt.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};

use ldd_core::CancellationToken;
use tokio::sync::Notify;

/// A task message fetched from the tasks topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Queued {
    /// Its tasks-topic partition.
    pub(crate) partition: i32,
    /// Its offset.
    pub(crate) offset: i64,
    /// The message.
    pub(crate) payload: Vec<u8>,
}

/// The task a worker is running.
#[derive(Debug)]
pub(crate) struct Current {
    /// The tasks-topic partition the task came from.
    pub(crate) partition: i32,
    /// Cancelled when the partition is revoked (or the worker stops).
    pub(crate) cancel: CancellationToken,
    /// The partition was revoked: the chunk must not commit.
    pub(crate) revoked: bool,
}

/// The worker's tasks.
#[derive(Debug, Default)]
pub(crate) struct State {
    pub(crate) current: Option<Current>,
    queue: VecDeque<Queued>,
}

/// The lock around [`State`], and the signal that a task was queued.
#[derive(Debug, Default)]
pub(crate) struct Ownership {
    state: Mutex<State>,
    ready: Notify,
}

impl Ownership {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues a fetched task.
    pub(crate) fn push(&self, task: Queued) {
        self.lock().queue.push_back(task);
        self.ready.notify_one();
    }

    /// The next task, which becomes the running one (cancelled with a child of
    /// `shutdown`); `None` once `shutdown` is cancelled.
    pub(crate) async fn next(
        &self,
        shutdown: &CancellationToken,
    ) -> Option<(Queued, CancellationToken)> {
        loop {
            {
                let mut state = self.lock();
                if let Some(task) = state.queue.pop_front() {
                    let cancel = shutdown.child_token();
                    state.current = Some(Current {
                        partition: task.partition,
                        cancel: cancel.clone(),
                        revoked: false,
                    });
                    return Some((task, cancel));
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return None,
                _ = self.ready.notified() => {}
            }
        }
    }

    /// The running task is done; `again` goes back to the front of the queue (it is still
    /// ours and neither committed nor reported), unless its partition was revoked.
    pub(crate) fn finish(&self, again: Option<Queued>) {
        let mut state = self.lock();
        let revoked = state.current.take().is_some_and(|c| c.revoked);
        if let Some(task) = again.filter(|_| !revoked) {
            state.queue.push_front(task);
            self.ready.notify_one();
        }
    }

    /// Partitions were revoked (or lost): their queued tasks are dropped, and the running
    /// task stops if it came from one. Says whether it did.
    pub(crate) fn revoke(&self, partitions: &[i32]) -> bool {
        let mut state = self.lock();
        state.queue.retain(|t| !partitions.contains(&t.partition));
        match &mut state.current {
            Some(current) if partitions.contains(&current.partition) => {
                current.revoked = true;
                current.cancel.cancel();
                true
            }
            _ => false,
        }
    }

    /// Everything is lost (a failed rebalance): drops the queue and stops the running task.
    pub(crate) fn revoke_all(&self) -> bool {
        let mut state = self.lock();
        state.queue.clear();
        match &mut state.current {
            Some(current) => {
                current.revoked = true;
                current.cancel.cancel();
                true
            }
            None => false,
        }
    }

    /// Whether the running task's partition was revoked.
    pub(crate) fn revoked(&self) -> bool {
        self.lock().current.as_ref().is_some_and(|c| c.revoked)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn task(partition: i32, offset: i64) -> Queued {
        Queued {
            partition,
            offset,
            payload: Vec::new(),
        }
    }

    #[tokio::test]
    async fn revoking_drops_that_partitions_tasks_and_stops_its_running_one() {
        let ownership = Ownership::default();
        let shutdown = CancellationToken::new();
        for (p, o) in [(3, 0), (1, 0), (3, 1)] {
            ownership.push(task(p, o));
        }
        let (first, cancel) = ownership.next(&shutdown).await.unwrap();
        assert_eq!(first, task(3, 0));
        assert!(!ownership.revoke(&[2]));
        assert!(!cancel.is_cancelled());
        assert!(ownership.revoke(&[3]));
        assert!(ownership.revoked() && cancel.is_cancelled());
        // A revoked task is not queued again, and (3, 1) was dropped.
        ownership.finish(Some(first));
        let (next, _) = ownership.next(&shutdown).await.unwrap();
        assert_eq!(next, task(1, 0));
        // A task that is still ours comes back first.
        ownership.finish(Some(next.clone()));
        assert_eq!(ownership.next(&shutdown).await.unwrap().0, next);
        ownership.finish(None);
        shutdown.cancel();
        assert!(ownership.next(&shutdown).await.is_none());
    }
}
