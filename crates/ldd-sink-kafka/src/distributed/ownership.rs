//! Who owns the task being run: shared by the worker's poll thread (rebalance callbacks)
//! and the chunk's commit, so that a chunk never commits after its task's partition was
//! handed to another worker.
//!
//! The commit step holds the lock from the ownership check to the end of `EndTxn`; a
//! revocation waits for it, so the partition's next owner sees either the committed offset
//! or an aborted transaction, never a commit racing its own attempt.

use std::sync::{Mutex, MutexGuard};

use ldd_core::CancellationToken;

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

/// What the poll thread should do once the executor is done with a task.
#[derive(Debug, Default)]
pub(crate) struct State {
    pub(crate) current: Option<Current>,
    /// Resume fetching the whole assignment.
    pub(crate) resume: bool,
    /// Seek this partition back to this offset first (the task must be taken again).
    pub(crate) rewind: Option<(i32, i64)>,
}

/// The lock around [`State`].
#[derive(Debug, Default)]
pub(crate) struct Ownership {
    state: Mutex<State>,
}

impl Ownership {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a task is being run.
    pub(crate) fn busy(&self) -> bool {
        self.lock().current.is_some()
    }

    /// A task from `partition` starts; its chunk is cancelled with `cancel`.
    pub(crate) fn begin(&self, partition: i32, cancel: CancellationToken) {
        self.lock().current = Some(Current {
            partition,
            cancel,
            revoked: false,
        });
    }

    /// The task is done; the poll thread resumes fetching (after `rewind`, if any).
    pub(crate) fn finish(&self, rewind: Option<(i32, i64)>) {
        let mut state = self.lock();
        state.current = None;
        state.resume = true;
        state.rewind = rewind;
    }

    /// Partitions were revoked (or lost): the running task stops if it came from one.
    pub(crate) fn revoke(&self, partitions: &[i32]) -> bool {
        let mut state = self.lock();
        match &mut state.current {
            Some(current) if partitions.contains(&current.partition) => {
                current.revoked = true;
                current.cancel.cancel();
                true
            }
            _ => false,
        }
    }

    /// Whether the running task's partition was revoked.
    pub(crate) fn revoked(&self) -> bool {
        self.lock().current.as_ref().is_some_and(|c| c.revoked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revoking_another_partition_leaves_the_task_alone() {
        let ownership = Ownership::default();
        let cancel = CancellationToken::new();
        ownership.begin(3, cancel.clone());
        assert!(!ownership.revoke(&[1, 2]));
        assert!(!ownership.revoked() && !cancel.is_cancelled());
        assert!(ownership.revoke(&[3]));
        assert!(ownership.revoked() && cancel.is_cancelled());
        ownership.finish(Some((3, 7)));
        let state = ownership.lock();
        assert!(state.current.is_none() && state.resume);
        assert_eq!(state.rewind, Some((3, 7)));
    }
}
