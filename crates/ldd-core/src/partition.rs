//! How many chunks an export has, how big each is, and which partition each goes to.

use crate::error::{Error, Result};

/// Decides the chunk layout of an export.
pub trait Partitioner: Send + Sync {
    /// Number of chunks for `records` records into a topic of `partitions` partitions.
    fn chunk_count(&self, records: u64, partitions: u32) -> Result<usize>;

    /// The partition chunk `index` goes to.
    fn partition_of(&self, index: usize, partitions: u32) -> u32 {
        // `partitions` is validated to be > 0 by `chunk_count`; guard anyway.
        (index % partitions.max(1) as usize) as u32
    }

    /// Sizes of `chunks` contiguous blocks holding `records` records, as equal as possible
    /// (the first `records % chunks` blocks hold one more).
    fn block_sizes(&self, records: u64, chunks: usize) -> Vec<u64> {
        if chunks == 0 {
            return Vec::new();
        }
        let n = chunks as u64;
        (0..n)
            .map(|i| records / n + u64::from(i < records % n))
            .collect()
    }
}

/// The original system's rule: a configured job count, minus one with `drop_last`, rounded to
/// the nearest multiple of the partition count and never below it; chunk `i` goes to
/// partition `i mod P`.
///
/// ```
/// use ldd_core::{JobCountPartitioner, Partitioner};
/// let p = JobCountPartitioner { jobs: 48, drop_last: true };
/// // 47 jobs rounded to the nearest multiple of 5.
/// assert_eq!(p.chunk_count(1_000_000, 5).unwrap(), 45);
/// assert_eq!(p.partition_of(7, 5), 2);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobCountPartitioner {
    /// Configured number of jobs (the original's `dividedJobs`, 48 by default).
    pub jobs: usize,
    /// Drop one job before rounding (the original's `drop_last`, on by default).
    pub drop_last: bool,
}

impl Default for JobCountPartitioner {
    fn default() -> Self {
        JobCountPartitioner {
            jobs: 48,
            drop_last: true,
        }
    }
}

impl Partitioner for JobCountPartitioner {
    fn chunk_count(&self, records: u64, partitions: u32) -> Result<usize> {
        if partitions == 0 {
            return Err(Error::InvalidInput(
                "the topic has no partitions; create it with at least one".into(),
            ));
        }
        if self.jobs == 0 {
            return Err(Error::InvalidInput(
                "job count is 0; configure at least one job".into(),
            ));
        }
        let p = partitions as usize;
        let jobs = self.jobs - usize::from(self.drop_last && self.jobs > 1);
        // Nearest multiple, halves rounded up, never below one multiple.
        let rounded = ((jobs + p / 2) / p).max(1) * p;
        // No chunk is planned empty: with fewer records than chunks, one record per chunk.
        let count = u64::try_from(rounded).map_or(records, |r| r.min(records));
        Ok(count as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(jobs: usize, drop_last: bool) -> JobCountPartitioner {
        JobCountPartitioner { jobs, drop_last }
    }

    #[test]
    fn seed_rule_rounds_to_nearest_multiple() {
        assert_eq!(p(48, true).chunk_count(10_000, 4).unwrap(), 48); // 47 -> 48
        assert_eq!(p(48, false).chunk_count(10_000, 4).unwrap(), 48);
        assert_eq!(p(48, true).chunk_count(10_000, 10).unwrap(), 50); // 47 -> 50
        assert_eq!(p(48, true).chunk_count(10_000, 3).unwrap(), 48); // 47 -> 48
        assert_eq!(p(48, true).chunk_count(10_000, 7).unwrap(), 49); // 47 -> 49
        assert_eq!(p(48, true).chunk_count(10_000, 1).unwrap(), 47);
        assert_eq!(p(10, false).chunk_count(10_000, 4).unwrap(), 12); // 10 -> 12 (half up)
    }

    #[test]
    fn never_below_partition_count() {
        assert_eq!(p(4, true).chunk_count(10_000, 16).unwrap(), 16);
        assert_eq!(p(1, true).chunk_count(10_000, 3).unwrap(), 3);
    }

    #[test]
    fn small_datasets_get_one_record_per_chunk() {
        assert_eq!(p(48, true).chunk_count(0, 4).unwrap(), 0);
        assert_eq!(p(48, true).chunk_count(1, 4).unwrap(), 1);
        assert_eq!(p(48, true).chunk_count(5, 4).unwrap(), 5);
    }

    #[test]
    fn zero_partitions_or_jobs_is_an_error() {
        assert!(p(48, true).chunk_count(10, 0).is_err());
        assert!(p(0, false).chunk_count(10, 1).is_err());
    }

    #[test]
    fn chunks_round_robin_over_partitions() {
        let part = p(48, true);
        let parts: Vec<u32> = (0..6).map(|i| part.partition_of(i, 4)).collect();
        assert_eq!(parts, vec![0, 1, 2, 3, 0, 1]);
    }

    #[test]
    fn block_sizes_are_balanced_and_cover_everything() {
        let part = p(48, true);
        let sizes = part.block_sizes(10, 4);
        assert_eq!(sizes, vec![3, 3, 2, 2]);
        assert_eq!(part.block_sizes(0, 3), vec![0, 0, 0]);
        assert!(part.block_sizes(5, 0).is_empty());
        let sizes = part.block_sizes(1_000_003, 48);
        assert_eq!(sizes.iter().sum::<u64>(), 1_000_003);
        assert!(sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1);
    }
}
