//! The arithmetic of a benchmark report: percentiles of latency samples, medians and
//! spreads across repetitions, and ratios to a baseline.

use std::time::Duration;

/// Latency samples of one run, kept whole (runs are at most a few hundred thousand
/// requests, so exact percentiles are cheap and need no histogram error bounds).
#[derive(Debug, Clone, Default)]
pub struct Samples {
    nanos: Vec<u64>,
    sorted: bool,
}

impl Samples {
    /// Empty.
    pub fn new() -> Self {
        Self::default()
    }

    /// Empty, with room for `n` samples.
    pub fn with_capacity(n: usize) -> Self {
        Self {
            nanos: Vec::with_capacity(n),
            sorted: true,
        }
    }

    /// Adds one latency.
    pub fn record(&mut self, latency: Duration) {
        self.nanos
            .push(u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX));
        self.sorted = false;
    }

    /// Adds every sample of `other`.
    pub fn merge(&mut self, other: &Samples) {
        self.nanos.extend_from_slice(&other.nanos);
        self.sorted = false;
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.nanos.len()
    }

    /// True when there are no samples.
    pub fn is_empty(&self) -> bool {
        self.nanos.is_empty()
    }

    fn sort(&mut self) {
        if !self.sorted {
            self.nanos.sort_unstable();
            self.sorted = true;
        }
    }

    /// The `p`-th percentile (0 ≤ p ≤ 100) by the nearest-rank method: the smallest
    /// sample such that at least `p` % of all samples are less than or equal to it.
    /// `None` when there are no samples.
    pub fn percentile(&mut self, p: f64) -> Option<Duration> {
        self.sort();
        nearest_rank(&self.nanos, p).map(Duration::from_nanos)
    }

    /// The largest sample.
    pub fn max(&mut self) -> Option<Duration> {
        self.percentile(100.0)
    }
}

/// Nearest-rank percentile of an ascending slice.
pub(crate) fn nearest_rank(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() || !(0.0..=100.0).contains(&p) {
        return None;
    }
    // rank = ceil(p/100 · n), at least 1. Computed in integers where possible so that
    // p = 99 of 100 samples is exactly rank 99 (floating point would give 99.00000001).
    let n = sorted.len();
    let scaled = p * n as f64 / 100.0;
    let rounded = scaled.round();
    let rank = if (scaled - rounded).abs() < 1e-9 {
        rounded as usize
    } else {
        scaled.ceil() as usize
    };
    Some(sorted[rank.clamp(1, n) - 1])
}

/// Median of repeated measurements (the lower middle for an even count, so the result
/// is always one of the measurements). `None` for no measurements or a NaN.
pub fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() || values.iter().any(|v| v.is_nan()) {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    Some(v[(v.len() - 1) / 2])
}

/// The (min, max) of repeated measurements.
pub fn spread(values: &[f64]) -> Option<(f64, f64)> {
    if values.is_empty() || values.iter().any(|v| v.is_nan()) {
        return None;
    }
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    Some((min, max))
}

/// `value / baseline`, or `None` when the baseline is not positive.
pub(crate) fn ratio(value: f64, baseline: f64) -> Option<f64> {
    (baseline > 0.0 && value.is_finite()).then(|| value / baseline)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn nearest_rank_percentiles_of_one_to_a_hundred() {
        let mut s = Samples::new();
        // Recorded out of order: percentile() must sort.
        for i in (1..=100).rev() {
            s.record(ms(i));
        }
        assert_eq!(s.percentile(50.0), Some(ms(50)));
        assert_eq!(s.percentile(90.0), Some(ms(90)));
        assert_eq!(s.percentile(99.0), Some(ms(99)));
        assert_eq!(s.percentile(99.9), Some(ms(100)));
        assert_eq!(s.percentile(100.0), Some(ms(100)));
        assert_eq!(s.percentile(0.0), Some(ms(1)));
        assert_eq!(s.percentile(0.5), Some(ms(1)));
        assert_eq!(s.percentile(1.5), Some(ms(2)));
        assert_eq!(s.max(), Some(ms(100)));
    }

    #[test]
    fn percentiles_of_small_and_skewed_sets() {
        let mut one = Samples::new();
        one.record(ms(7));
        for p in [0.0, 50.0, 99.0, 100.0] {
            assert_eq!(one.percentile(p), Some(ms(7)));
        }
        // Ten samples, one outlier: p50 and p90 ignore it, p99 and max see it.
        let mut s = Samples::new();
        for _ in 0..9 {
            s.record(ms(1));
        }
        s.record(ms(1000));
        assert_eq!(s.percentile(50.0), Some(ms(1)));
        assert_eq!(s.percentile(90.0), Some(ms(1)));
        assert_eq!(s.percentile(91.0), Some(ms(1000)));
        assert_eq!(s.percentile(99.0), Some(ms(1000)));
        // Even count: nearest rank takes the lower middle.
        let mut even = Samples::new();
        for i in [4, 1, 3, 2] {
            even.record(ms(i));
        }
        assert_eq!(even.percentile(50.0), Some(ms(2)));
        assert_eq!(even.percentile(75.0), Some(ms(3)));
        assert_eq!(even.percentile(76.0), Some(ms(4)));
    }

    #[test]
    fn empty_sets_and_bad_percentiles_have_no_answer() {
        let mut s = Samples::new();
        assert_eq!(s.percentile(50.0), None);
        s.record(ms(1));
        assert_eq!(s.percentile(-1.0), None);
        assert_eq!(s.percentile(100.1), None);
        assert_eq!(s.percentile(f64::NAN), None);
    }

    #[test]
    fn merging_pools_the_samples() {
        let mut a = Samples::new();
        let mut b = Samples::new();
        for i in 1..=50 {
            a.record(ms(i));
            b.record(ms(50 + i));
        }
        a.percentile(50.0); // sorted state must be invalidated by merge
        a.merge(&b);
        assert_eq!(a.len(), 100);
        assert_eq!(a.percentile(50.0), Some(ms(50)));
        assert_eq!(a.percentile(99.0), Some(ms(99)));
    }

    #[test]
    fn medians_spreads_and_ratios() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.0));
        assert_eq!(median(&[5.0]), Some(5.0));
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[1.0, f64::NAN]), None);
        assert_eq!(spread(&[3.0, 1.0, 2.0]), Some((1.0, 3.0)));
        assert_eq!(spread(&[]), None);
        assert_eq!(ratio(150.0, 100.0), Some(1.5));
        assert_eq!(ratio(1.0, 0.0), None);
        assert_eq!(ratio(f64::INFINITY, 1.0), None);
    }
}
