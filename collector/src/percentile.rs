//! Exact percentiles over stored samples.
//!
//! Nearest-rank is used (rather than interpolation) because it always
//! answers with a value that was actually observed, which is what the
//! Chrome UX Report style "p75" means to a reader.

/// Nearest-rank percentile of `sorted` (ascending, no NaN): the smallest
/// value `v` in the data such that at least `p` percent of the samples are
/// `<= v`. That is `sorted[ceil(p/100 * n) - 1]`, clamped to the first
/// element for `p = 0`. `None` for no samples.
///
/// `p` must be within `0.0..=100.0`.
pub fn nearest_rank_sorted(sorted: &[f64], p: f64) -> Option<f64> {
    debug_assert!((0.0..=100.0).contains(&p), "percentile {p} out of range");
    debug_assert!(sorted.windows(2).all(|w| w[0] <= w[1]), "samples not sorted");
    if sorted.is_empty() {
        return None;
    }
    let n = sorted.len();
    let rank = rank(p, n);
    Some(sorted[rank.clamp(1, n) - 1])
}

/// Nearest-rank percentile of unsorted samples (sorts them in place).
pub fn nearest_rank(samples: &mut [f64], p: f64) -> Option<f64> {
    samples.sort_unstable_by(f64::total_cmp);
    nearest_rank_sorted(samples, p)
}

/// The 75th percentile, the one the Core Web Vitals are judged at.
pub fn p75_sorted(sorted: &[f64]) -> Option<f64> {
    nearest_rank_sorted(sorted, 75.0)
}

/// The nearest rank: `ceil(p/100 * n)`, computed in integers where
/// possible, so that e.g. `p = 75, n = 4` gives exactly 3 without
/// floating-point rounding up to 4.
pub fn rank(p: f64, n: usize) -> usize {
    // Percentiles with at most two decimals are exact in hundredths.
    let hundredths = (p * 100.0).round();
    if (hundredths / 100.0 - p).abs() < 1e-12 {
        let h = hundredths as u128;
        let num = h * n as u128;
        num.div_ceil(10_000) as usize
    } else {
        (p / 100.0 * n as f64).ceil() as usize
    }
}

/// The z-score of a two-sided 95 % interval.
pub const Z_95: f64 = 1.959_963_984_540_054;

/// The ranks (1-based, within `1..=n`) of the order statistics that bound a
/// distribution-free 95 % confidence interval for the `p`-th percentile of
/// `n` samples: `floor(n·q − z·s)` and `ceil(n·q + z·s) + 1`, with
/// `q = p/100` and `s = √(n·q·(1−q))` (the normal approximation to the
/// binomial count of samples below the percentile). `None` for no samples.
pub fn interval_ranks(p: f64, n: usize) -> Option<(usize, usize)> {
    if n == 0 {
        return None;
    }
    let q = p / 100.0;
    let nf = n as f64;
    let spread = Z_95 * (nf * q * (1.0 - q)).sqrt();
    let low = (nf * q - spread).floor().max(1.0) as usize;
    let high = ((nf * q + spread).ceil() + 1.0).min(nf) as usize;
    Some((low.clamp(1, n), high.clamp(1, n)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interval_ranks_bracket_the_percentile() {
        assert_eq!(interval_ranks(75.0, 0), None);
        assert_eq!(interval_ranks(75.0, 1), Some((1, 1)));
        // n = 100: 75 ± 1.96·√18.75 = 75 ± 8.49 -> 66 and 85.
        assert_eq!(interval_ranks(75.0, 100), Some((66, 85)));
        for n in 1..2000 {
            let (lo, hi) = interval_ranks(75.0, n).unwrap();
            let r = rank(75.0, n);
            assert!(lo <= r && r <= hi && hi <= n, "{n}: {lo} {r} {hi}");
        }
        // It narrows as samples grow (relative to n).
        let width = |n: usize| {
            let (lo, hi) = interval_ranks(75.0, n).unwrap();
            (hi - lo) as f64 / n as f64
        };
        assert!(width(10_000) < width(1_000) && width(1_000) < width(100));
    }

    /// The definition, literally: the smallest sample `v` such that at least
    /// `p`% of samples are `<= v`.
    fn brute_force(samples: &[f64], p: f64) -> Option<f64> {
        let n = samples.len() as f64;
        samples
            .iter()
            .copied()
            .filter(|&v| {
                let at_or_below = samples.iter().filter(|&&s| s <= v).count() as f64;
                at_or_below * 100.0 >= p * n
            })
            .min_by(f64::total_cmp)
    }

    use crate::testutil::Rng;

    #[test]
    fn empty_has_no_percentile() {
        assert_eq!(nearest_rank_sorted(&[], 75.0), None);
        assert_eq!(p75_sorted(&[]), None);
    }

    #[test]
    fn one_sample_is_every_percentile() {
        for p in [0.0, 1.0, 50.0, 75.0, 100.0] {
            assert_eq!(nearest_rank_sorted(&[42.0], p), Some(42.0));
        }
    }

    #[test]
    fn four_samples_p75_is_the_third() {
        // ceil(0.75 * 4) = 3 -> third smallest.
        assert_eq!(p75_sorted(&[1.0, 2.0, 3.0, 4.0]), Some(3.0));
    }

    #[test]
    fn five_samples_p75_is_the_fourth() {
        // ceil(0.75 * 5) = 4 -> fourth smallest.
        assert_eq!(p75_sorted(&[10.0, 20.0, 30.0, 40.0, 50.0]), Some(40.0));
    }

    #[test]
    fn unsorted_input_is_sorted_first() {
        let mut v = [50.0, 10.0, 40.0, 30.0, 20.0];
        assert_eq!(nearest_rank(&mut v, 75.0), Some(40.0));
        assert_eq!(nearest_rank(&mut v, 100.0), Some(50.0));
        assert_eq!(nearest_rank(&mut v, 0.0), Some(10.0));
        assert_eq!(nearest_rank(&mut v, 50.0), Some(30.0));
    }

    #[test]
    fn ties() {
        assert_eq!(p75_sorted(&[5.0, 5.0, 5.0, 5.0]), Some(5.0));
        assert_eq!(p75_sorted(&[1.0, 7.0, 7.0, 7.0, 9.0]), Some(7.0));
        assert_eq!(p75_sorted(&[1.0, 1.0, 1.0, 9.0]), Some(1.0));
        assert_eq!(p75_sorted(&[1.0, 1.0, 9.0, 9.0]), Some(9.0));
    }

    #[test]
    fn matches_brute_force_on_random_data() {
        let mut rng = Rng::new(0x9E37_79B9_7F4A_7C15);
        for _ in 0..2_000 {
            let n = 1 + rng.below(40) as usize;
            // Few distinct values, so ties are common.
            let distinct = 1 + rng.below(12);
            let samples: Vec<f64> = (0..n).map(|_| rng.below(distinct) as f64 * 12.5).collect();
            let mut sorted = samples.clone();
            sorted.sort_by(f64::total_cmp);
            for p in [0.0, 1.0, 10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.9, 100.0] {
                assert_eq!(
                    nearest_rank_sorted(&sorted, p),
                    brute_force(&samples, p),
                    "p{p} of {samples:?}"
                );
            }
        }
    }
}
