//! Time-window planning balanced by record count, from count histograms only.
//!
//! The planner never reads rows. It asks for per-bucket counts
//! (`SELECT count(f) ... GROUP BY time(<w>ns)` in InfluxQL, `aggregateWindow(fn: count)` in
//! Flux) and cuts at bucket edges:
//!
//! 1. One histogram over `[first, last + 1)` with about [`BUCKETS_PER_CHUNK`] buckets per
//!    chunk (buckets are aligned to the epoch, so the outer ones are clipped to the range).
//! 2. The ideal cut `k` lies where the cumulative count reaches `k * total / chunks`. If the
//!    nearest bucket edge is within the tolerance of that count, cut there.
//! 3. Otherwise the bucket holding the ideal cut is refined: a histogram of just that bucket
//!    with `ceil(2 * count / tolerance)` (16..=1000) finer buckets replaces it. Refinements
//!    of one round run a few at a time.
//! 4. Repeat until every cut is within tolerance, or sits in a bucket one nanosecond wide
//!    (points sharing one timestamp are never split, so such a cut goes to the nearer edge
//!    and that chunk is larger or smaller), or [`MAX_ROUNDS`] rounds have run.
//!
//! The tolerance is [`TOLERANCE`] of the ideal chunk size per cut (at least one record), so
//! every chunk is within twice that (±10%) of the ideal, except next to a single timestamp
//! holding more than the tolerance. Buckets shrink by at least 16× a round, so a 1 ns bucket
//! is reached within 16 rounds from any span.
//!
//! Cuts are bucket edges, which are instants: a range is `[a, b)` in ns, so points sharing a
//! timestamp always fall into the same range.

use std::collections::BTreeMap;
use std::future::Future;

use futures::stream::{self, StreamExt, TryStreamExt};

use crate::error::Result;

/// Buckets of the first histogram per requested chunk.
pub(crate) const BUCKETS_PER_CHUNK: u64 = 20;
/// Allowed distance of a cut from its ideal position, as a fraction of the ideal chunk.
pub(crate) const TOLERANCE: f64 = 0.05;
/// Refinement rounds at most.
pub(crate) const MAX_ROUNDS: u32 = 24;
/// Histogram queries in flight at once while refining.
const CONCURRENCY: usize = 4;

/// A source of per-bucket counts.
pub(crate) trait Histogram: Sync {
    /// Counts of the non-empty buckets of `width` ns (aligned to the epoch) within
    /// `[start, end)`, as (reported bucket time, count). The reported time may be the
    /// aligned bucket start or that start clipped to `start`.
    fn histogram(
        &self,
        start: i64,
        end: i64,
        width: i64,
    ) -> impl Future<Output = Result<Vec<(i64, u64)>>> + Send;
}

/// A span of time and the records in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Segment {
    /// First instant.
    pub(crate) start: i64,
    /// First instant after.
    pub(crate) end: i64,
    /// Records in `[start, end)`.
    pub(crate) count: u64,
}

/// A planned range: `[start, end)`, `None` when open (first and last range).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Window {
    /// Inclusive start; `None` for the first window.
    pub(crate) start: Option<i64>,
    /// Exclusive end; `None` for the last window.
    pub(crate) end: Option<i64>,
    /// Records the histograms counted in it.
    pub(crate) count: u64,
}

/// The outcome of planning.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TimePlan {
    /// The windows, in time order, covering everything.
    pub(crate) windows: Vec<Window>,
    /// Histogram queries sent.
    pub(crate) queries: u32,
    /// Refinement rounds run.
    pub(crate) rounds: u32,
    /// Cuts that stayed outside the tolerance (single-timestamp buckets or round limit).
    pub(crate) coarse_cuts: u32,
    /// Records counted by the histograms.
    pub(crate) total: u64,
}

/// Turns histogram answers into segments clipped to `[start, end)`.
pub(crate) fn segments(buckets: &[(i64, u64)], start: i64, end: i64, width: i64) -> Vec<Segment> {
    let mut by_start: BTreeMap<i64, u64> = BTreeMap::new();
    for &(time, count) in buckets {
        if count == 0 {
            continue;
        }
        let aligned = time.div_euclid(width).saturating_mul(width);
        *by_start.entry(aligned).or_default() += count;
    }
    by_start
        .into_iter()
        .filter_map(|(aligned, count)| {
            let s = aligned.max(start);
            let e = aligned.saturating_add(width).min(end);
            (s < e).then_some(Segment {
                start: s,
                end: e,
                count,
            })
        })
        .collect()
}

fn ceil_div(a: i128, b: i128) -> i128 {
    (a + b - 1) / b
}

/// Where a cut goes, or which segment needs refining.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cut {
    /// Cut at this instant; this many records lie before it.
    At {
        time: i64,
        before: u64,
        coarse: bool,
    },
    /// Refine the segment with this index.
    Refine(usize),
}

fn place_cuts(segs: &[Segment], chunks: usize, tolerance: u64, force: bool) -> Vec<Cut> {
    let mut cum = Vec::with_capacity(segs.len() + 1);
    cum.push(0u64);
    for s in segs {
        cum.push(cum[cum.len() - 1] + s.count);
    }
    let total = cum[cum.len() - 1];
    (1..chunks)
        .map(|k| {
            let target = (u128::from(total) * k as u128 / chunks as u128) as u64;
            // cum[i] <= target < cum[i + 1]
            let i = cum
                .partition_point(|&c| c <= target)
                .saturating_sub(1)
                .min(segs.len() - 1);
            let seg = segs[i];
            if cum[i] == target {
                return Cut::At {
                    time: seg.start,
                    before: cum[i],
                    coarse: false,
                };
            }
            let before = target - cum[i];
            let after = cum[i + 1] - target;
            let single = seg.end - seg.start <= 1;
            if before.min(after) <= tolerance || single || force {
                let coarse = before.min(after) > tolerance;
                if before <= after {
                    Cut::At {
                        time: seg.start,
                        before: cum[i],
                        coarse,
                    }
                } else {
                    Cut::At {
                        time: seg.end,
                        before: cum[i + 1],
                        coarse,
                    }
                }
            } else {
                Cut::Refine(i)
            }
        })
        .collect()
}

/// Plans `chunks` windows over the records between `first` and `last` (inclusive).
pub(crate) async fn plan_windows<H: Histogram>(
    histogram: &H,
    first: i64,
    last: i64,
    chunks: usize,
) -> Result<TimePlan> {
    let chunks = chunks.max(1);
    let (start, end) = (first, last.saturating_add(1));
    let span = i128::from(end) - i128::from(start);
    let buckets = (chunks as u128 * u128::from(BUCKETS_PER_CHUNK)) as i128;
    let width = ceil_div(span.max(1), buckets).clamp(1, i128::from(i64::MAX)) as i64;
    let mut segs = segments(
        &histogram.histogram(start, end, width).await?,
        start,
        end,
        width,
    );
    let mut queries = 1u32;
    let mut rounds = 0u32;
    loop {
        let total: u64 = segs.iter().map(|s| s.count).sum();
        if total == 0 {
            return Ok(TimePlan {
                windows: Vec::new(),
                queries,
                rounds,
                coarse_cuts: 0,
                total,
            });
        }
        let ideal = total as f64 / chunks as f64;
        let tolerance = ((ideal * TOLERANCE) as u64).max(1);
        let cuts = place_cuts(&segs, chunks, tolerance, rounds >= MAX_ROUNDS);
        let mut refine: Vec<usize> = cuts
            .iter()
            .filter_map(|c| match c {
                Cut::Refine(i) => Some(*i),
                Cut::At { .. } => None,
            })
            .collect();
        refine.dedup();
        if refine.is_empty() {
            return Ok(windows_from_cuts(&cuts, total, queries, rounds));
        }
        rounds += 1;
        let jobs: Vec<(Segment, i64)> = refine
            .iter()
            .map(|&i| {
                let seg = segs[i];
                let len = i128::from(seg.end) - i128::from(seg.start);
                let parts =
                    ceil_div(2 * i128::from(seg.count), i128::from(tolerance)).clamp(16, 1000);
                (seg, ceil_div(len, parts).max(1) as i64)
            })
            .collect();
        let finer: Vec<Vec<Segment>> =
            stream::iter(jobs.into_iter().map(|(seg, width)| async move {
                let buckets = histogram.histogram(seg.start, seg.end, width).await?;
                Ok::<_, crate::error::Error>(segments(&buckets, seg.start, seg.end, width))
            }))
            .buffered(CONCURRENCY)
            .try_collect()
            .await?;
        queries += refine.len() as u32;
        let mut replaced =
            Vec::with_capacity(segs.len() + finer.iter().map(Vec::len).sum::<usize>());
        let mut next = refine.iter().zip(finer).peekable();
        for (i, seg) in segs.into_iter().enumerate() {
            match next.peek() {
                Some((&j, _)) if j == i => {
                    if let Some((_, sub)) = next.next() {
                        replaced.extend(sub);
                    }
                }
                _ => replaced.push(seg),
            }
        }
        segs = replaced;
    }
}

fn windows_from_cuts(cuts: &[Cut], total: u64, queries: u32, rounds: u32) -> TimePlan {
    let mut points: Vec<(i64, u64)> = Vec::with_capacity(cuts.len());
    let mut coarse_cuts = 0;
    for cut in cuts {
        if let Cut::At {
            time,
            before,
            coarse,
        } = *cut
        {
            coarse_cuts += u32::from(coarse);
            if before == 0 || before == total {
                continue;
            }
            if points.last().is_some_and(|(t, _)| *t >= time) {
                continue;
            }
            points.push((time, before));
        }
    }
    let mut windows = Vec::with_capacity(points.len() + 1);
    let mut prev: (Option<i64>, u64) = (None, 0);
    for (time, before) in points {
        windows.push(Window {
            start: prev.0,
            end: Some(time),
            count: before - prev.1,
        });
        prev = (Some(time), before);
    }
    windows.push(Window {
        start: prev.0,
        end: None,
        count: total - prev.1,
    });
    TimePlan {
        windows,
        queries,
        rounds,
        coarse_cuts,
        total,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// Timestamps held in memory, counted the way InfluxQL does (bucket start aligned to
    /// the epoch, possibly before `start`).
    struct Fake {
        times: Vec<i64>,
        calls: AtomicU32,
    }

    impl Fake {
        fn new(mut times: Vec<i64>) -> Self {
            times.sort();
            Fake {
                times,
                calls: AtomicU32::new(0),
            }
        }
    }

    impl Histogram for Fake {
        async fn histogram(&self, start: i64, end: i64, width: i64) -> Result<Vec<(i64, u64)>> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let mut map: BTreeMap<i64, u64> = BTreeMap::new();
            for &t in self.times.iter().filter(|t| (start..end).contains(*t)) {
                *map.entry(t.div_euclid(width).saturating_mul(width))
                    .or_default() += 1;
            }
            Ok(map.into_iter().collect())
        }
    }

    async fn check(times: Vec<i64>, chunks: usize) -> TimePlan {
        let fake = Fake::new(times);
        let first = fake.times[0];
        let last = *fake.times.last().unwrap();
        let plan = plan_windows(&fake, first, last, chunks).await.unwrap();
        assert_eq!(plan.queries, fake.calls.load(Ordering::SeqCst));
        // Windows cover everything, in order, with exact counts.
        let mut covered = 0;
        for (i, w) in plan.windows.iter().enumerate() {
            assert_eq!(w.start.is_none(), i == 0);
            assert_eq!(w.end.is_none(), i == plan.windows.len() - 1);
            if let (Some(s), Some(e)) = (w.start, w.end) {
                assert!(s < e);
            }
            let n = fake
                .times
                .iter()
                .filter(|&&t| w.start.is_none_or(|s| t >= s) && w.end.is_none_or(|e| t < e))
                .count() as u64;
            assert_eq!(n, w.count, "window {i}");
            covered += n;
        }
        assert_eq!(covered, fake.times.len() as u64);
        assert_eq!(plan.total, covered);
        plan
    }

    fn balanced(plan: &TimePlan, chunks: usize) {
        let ideal = plan.total as f64 / chunks as f64;
        assert_eq!(plan.windows.len(), chunks);
        for w in &plan.windows {
            let off = (w.count as f64 - ideal).abs() / ideal;
            assert!(
                off <= 2.0 * TOLERANCE + 1e-9,
                "{} vs {ideal}: {plan:?}",
                w.count
            );
        }
    }

    #[tokio::test]
    async fn uniform_data_needs_one_query() {
        let times: Vec<i64> = (0..100_000)
            .map(|i| 1_704_067_200_000_000_000 + i * 1_000_000)
            .collect();
        let plan = check(times, 48).await;
        assert_eq!(plan.queries, 1);
        balanced(&plan, 48);
    }

    #[tokio::test]
    async fn skewed_data_is_refined_until_balanced() {
        // 90% of the points in the last 0.1% of the span.
        let mut times: Vec<i64> = (0..1_000).map(|i| i * 1_000_000_000).collect();
        times.extend((0..9_000).map(|i| 1_000_000_000_000 + i * 1_000));
        let plan = check(times, 10).await;
        assert!(plan.queries > 1 && plan.rounds >= 1, "{plan:?}");
        balanced(&plan, 10);
    }

    #[tokio::test]
    async fn shared_timestamps_never_straddle() {
        // 7 points per timestamp, and one timestamp holding a third of everything.
        let mut times: Vec<i64> = (0..3_000).map(|i| -1_000_000 + (i / 7) * 13).collect();
        times.extend(std::iter::repeat_n(5_000, 1_500));
        let plan = check(times, 8).await;
        // The big timestamp cannot be split: its cut is coarse, and counts stay exact.
        assert!(plan.coarse_cuts > 0, "{plan:?}");
        // Single timestamp: one window.
        let plan = check(vec![42; 10], 4).await;
        assert_eq!(plan.windows.len(), 1);
        assert_eq!(plan.windows[0].count, 10);
    }

    #[tokio::test]
    async fn one_point_and_extreme_times() {
        let plan = check(vec![7], 3).await;
        assert_eq!(plan.windows.len(), 1);
        let plan = check(vec![i64::MIN + 2, 0, i64::MAX - 2], 3).await;
        assert_eq!(plan.windows.len(), 3);
        let plan = check((0..1000).collect(), 1).await;
        assert_eq!(plan.windows.len(), 1);
    }

    #[test]
    fn segments_clip_to_the_range() {
        let segs = segments(&[(0, 3), (10, 0), (20, 2), (20, 1)], 5, 25, 10);
        assert_eq!(
            segs,
            vec![
                Segment {
                    start: 5,
                    end: 10,
                    count: 3
                },
                Segment {
                    start: 20,
                    end: 25,
                    count: 3
                },
            ]
        );
        // A clipped reported time (Flux's window start at the range start) aligns the same.
        assert_eq!(
            segments(&[(5, 3)], 5, 25, 10)[0],
            Segment {
                start: 5,
                end: 10,
                count: 3
            }
        );
        // Negative times align downwards.
        assert_eq!(segments(&[(-15, 1)], -100, 100, 10)[0].start, -20);
    }
}
