//! Worker slots: at most `workers` chunks read and encode at once, and each holds a slot id
//! that sinks may tie per-worker resources to (e.g. a transactional producer).

use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A fixed set of slot ids handed out to running chunk attempts.
#[derive(Debug)]
pub(crate) struct SlotPool {
    permits: Arc<Semaphore>,
    free: Mutex<Vec<usize>>,
}

/// A held slot; returned to the pool when dropped.
#[derive(Debug)]
pub(crate) struct Slot<'p> {
    pool: &'p SlotPool,
    id: usize,
    _permit: OwnedSemaphorePermit,
}

impl SlotPool {
    pub(crate) fn new(workers: usize) -> Self {
        SlotPool {
            permits: Arc::new(Semaphore::new(workers)),
            // Reversed so that slot 0 is handed out first.
            free: Mutex::new((0..workers).rev().collect()),
        }
    }

    /// Waits for a free slot (in request order: the semaphore is fair).
    pub(crate) async fn acquire(&self) -> Option<Slot<'_>> {
        let permit = self.permits.clone().acquire_owned().await.ok()?;
        let id = self.free.lock().unwrap_or_else(|p| p.into_inner()).pop()?;
        Some(Slot {
            pool: self,
            id,
            _permit: permit,
        })
    }
}

impl Slot<'_> {
    pub(crate) fn id(&self) -> usize {
        self.id
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        // The id goes back before the permit (dropped after this), so a waiter woken by the
        // permit always finds an id.
        self.pool
            .free
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hands_out_distinct_ids_up_to_the_limit() {
        let pool = SlotPool::new(2);
        let a = pool.acquire().await.unwrap();
        let b = pool.acquire().await.unwrap();
        assert_ne!(a.id(), b.id());
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(20), pool.acquire())
                .await
                .is_err()
        );
        let freed = a.id();
        drop(a);
        assert_eq!(pool.acquire().await.unwrap().id(), freed);
    }
}
