//! A DDSketch: a mergeable quantile sketch with a relative-error guarantee
//! and an exact zero bucket.
//!
//! Values are counted in logarithmic bins. The bin of a positive value is
//! read straight off its IEEE-754 bits: the exponent and the top
//! [`SUB_BIN_BITS`] bits of the mantissa, i.e. 64 bins per power of two
//! (DDSketch's "bitwise linearly interpolated" index mapping). So:
//!
//! * a bin `[lo, hi)` has `hi / lo <= 1 + 1/64`, and answering a bin's
//!   harmonic midpoint `2·lo·hi/(lo+hi)` is within [`RELATIVE_ACCURACY`]
//!   (1/129 ≈ 0.78 %, inside the 1 % asked for) of every value in it;
//! * the mapping is exactly monotone and its bin edges are exact floats, so
//!   the store can fetch "the values of bin k" from raw reports with
//!   `value >= lo AND value < hi` and get exactly the values counted there
//!   (used for the exact p75, see `store::sqlite`);
//! * a value can be removed again (bins are plain counts): when an agent
//!   re-reports a metric id, the old value leaves the sketch, so a sketch is
//!   always the sketch of exactly the deduplicated reports.
//!
//! Why not the `sketches-ddsketch` crate: it neither exposes its bins (needed
//! for the exact p75) nor can it remove a value (needed for dedup).
//!
//! Zero is its own exact bin (CLS is often exactly 0). Negative values are
//! not supported (the collector rejects them); NaN and infinities neither.

use crate::percentile;

/// Mantissa bits that pick the bin within a power of two.
pub const SUB_BIN_BITS: u32 = 6;
const SHIFT: u32 = 52 - SUB_BIN_BITS;
/// Largest relative error of [`Sketch::quantile`] for positive normal values:
/// `1 / (2 · 2^SUB_BIN_BITS + 1)`.
pub const RELATIVE_ACCURACY: f64 = 1.0 / 129.0;

/// The bin of a positive finite value.
pub fn bin_of(value: f64) -> u32 {
    debug_assert!(value > 0.0 && value.is_finite(), "{value}");
    (value.to_bits() >> SHIFT) as u32
}

/// The values bin `key` holds: `lo <= v < hi`.
pub fn bin_bounds(key: u32) -> (f64, f64) {
    let lo = f64::from_bits((key as u64) << SHIFT);
    let hi = f64::from_bits(((key as u64) + 1) << SHIFT);
    (lo, hi)
}

/// The value a bin answers for: the one with the least relative error.
pub fn bin_value(key: u32) -> f64 {
    let (lo, hi) = bin_bounds(key);
    if lo == 0.0 {
        return hi / 2.0;
    }
    2.0 * lo * hi / (lo + hi)
}

/// Where a rank falls in a sketch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Located {
    /// In the zero bin: the value is exactly 0.
    Zero,
    /// In bin `key`; the wanted value is the `rank_in_bin`-th smallest
    /// (1-based) of the `bin_count` values there, and `below` values of the
    /// sketch are smaller than the bin.
    Bin {
        key: u32,
        rank_in_bin: u64,
        bin_count: u64,
        below: u64,
    },
}

/// Counts of values per bin. `bins` is sorted by key and has no zero count.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sketch {
    zero: u64,
    bins: Vec<(u32, u64)>,
}

impl Sketch {
    pub fn new() -> Sketch {
        Sketch::default()
    }

    pub fn count(&self) -> u64 {
        self.zero + self.bins.iter().map(|&(_, n)| n).sum::<u64>()
    }

    pub fn is_empty(&self) -> bool {
        self.zero == 0 && self.bins.is_empty()
    }

    pub fn zero_count(&self) -> u64 {
        self.zero
    }

    /// `(key, count)` of every non-empty bin, ascending.
    pub fn bins(&self) -> &[(u32, u64)] {
        &self.bins
    }

    /// Count of values in bin `key`.
    pub fn bin_count(&self, key: u32) -> u64 {
        match self.bins.binary_search_by_key(&key, |&(k, _)| k) {
            Ok(i) => self.bins[i].1,
            Err(_) => 0,
        }
    }

    /// Whether `value`'s bin is not empty.
    pub fn holds(&self, value: f64) -> bool {
        if value <= 0.0 {
            self.zero > 0
        } else {
            self.bin_count(bin_of(value)) > 0
        }
    }

    /// Adds `value` (finite, >= 0).
    pub fn add(&mut self, value: f64) {
        debug_assert!(value >= 0.0 && value.is_finite(), "{value}");
        if value <= 0.0 {
            self.zero += 1;
            return;
        }
        let key = bin_of(value);
        match self.bins.binary_search_by_key(&key, |&(k, _)| k) {
            Ok(i) => self.bins[i].1 += 1,
            Err(i) => self.bins.insert(i, (key, 1)),
        }
    }

    /// Removes one occurrence of `value`'s bin. Returns false (and changes
    /// nothing) when that bin is empty, i.e. `value` was never added.
    pub fn remove(&mut self, value: f64) -> bool {
        if value <= 0.0 {
            if self.zero == 0 {
                return false;
            }
            self.zero -= 1;
            return true;
        }
        let key = bin_of(value);
        match self.bins.binary_search_by_key(&key, |&(k, _)| k) {
            Ok(i) => {
                self.bins[i].1 -= 1;
                if self.bins[i].1 == 0 {
                    self.bins.remove(i);
                }
                true
            }
            Err(_) => false,
        }
    }

    /// Adds every value of `other`. Bins `self` already has are counted
    /// in place, so merging a small sketch into a large one is cheap.
    pub fn merge(&mut self, other: &Sketch) {
        self.zero += other.zero;
        if other.bins.is_empty() {
            return;
        }
        if self.bins.is_empty() {
            self.bins.extend_from_slice(&other.bins);
            return;
        }
        let mut missing = Vec::new();
        for &(k, n) in &other.bins {
            match self.bins.binary_search_by_key(&k, |&(k, _)| k) {
                Ok(i) => self.bins[i].1 += n,
                Err(_) => missing.push((k, n)),
            }
        }
        if missing.is_empty() {
            return;
        }
        let mut out = Vec::with_capacity(self.bins.len() + missing.len());
        let (mut a, mut b) = (self.bins.iter().peekable(), missing.iter().peekable());
        loop {
            match (a.peek(), b.peek()) {
                (Some(&&x), Some(&&y)) => {
                    if x.0 < y.0 {
                        out.push(x);
                        a.next();
                    } else {
                        out.push(y);
                        b.next();
                    }
                }
                (Some(_), None) => {
                    out.extend(a);
                    break;
                }
                (None, Some(_)) => {
                    out.extend(b);
                    break;
                }
                (None, None) => break,
            }
        }
        self.bins = out;
    }

    /// The merge of many sketches: counted into a dense array over the
    /// keys' range when that is not much wider than the bins (the usual
    /// case: values of one metric), else sorted.
    pub fn merged<'a>(parts: impl IntoIterator<Item = &'a Sketch>) -> Sketch {
        let mut zero = 0;
        let mut with_bins: Vec<&Sketch> = Vec::new();
        for p in parts {
            zero += p.zero;
            if !p.bins.is_empty() {
                with_bins.push(p);
            }
        }
        let bins = match with_bins[..] {
            [] => Vec::new(),
            [one] => one.bins.clone(),
            _ => {
                let lo = with_bins.iter().map(|p| p.bins[0].0).min().unwrap_or(0);
                let hi = with_bins.iter().map(|p| p.bins[p.bins.len() - 1].0).max().unwrap_or(0);
                let pairs: usize = with_bins.iter().map(|p| p.bins.len()).sum();
                let width = (hi - lo) as usize + 1;
                if width <= 2 * pairs + 256 {
                    let mut dense = vec![0u64; width];
                    for p in &with_bins {
                        for &(k, n) in &p.bins {
                            dense[(k - lo) as usize] += n;
                        }
                    }
                    dense
                        .iter()
                        .enumerate()
                        .filter(|&(_, &n)| n > 0)
                        .map(|(i, &n)| (lo + i as u32, n))
                        .collect()
                } else {
                    let mut all: Vec<(u32, u64)> = Vec::with_capacity(pairs);
                    for p in &with_bins {
                        all.extend_from_slice(&p.bins);
                    }
                    all.sort_unstable_by_key(|&(k, _)| k);
                    all.dedup_by(|next, kept| {
                        if next.0 == kept.0 {
                            kept.1 += next.1;
                            true
                        } else {
                            false
                        }
                    });
                    all
                }
            }
        };
        Sketch { zero, bins }
    }

    /// Subtracts every value of `other`, which must have been merged in.
    /// Returns false (leaving `self` unspecified) if it was not.
    pub fn subtract(&mut self, other: &Sketch) -> bool {
        if other.zero > self.zero {
            return false;
        }
        self.zero -= other.zero;
        for &(key, n) in &other.bins {
            match self.bins.binary_search_by_key(&key, |&(k, _)| k) {
                Ok(i) if self.bins[i].1 >= n => self.bins[i].1 -= n,
                _ => return false,
            }
        }
        self.bins.retain(|&(_, n)| n > 0);
        true
    }

    /// Where the nearest-rank `p`-th percentile (0..=100) lies, or `None`
    /// when empty.
    pub fn locate(&self, p: f64) -> Option<Located> {
        let n = self.count();
        if n == 0 {
            return None;
        }
        let rank = percentile::rank(p, n as usize).clamp(1, n as usize) as u64;
        if rank <= self.zero {
            return Some(Located::Zero);
        }
        let mut below = self.zero;
        for &(key, count) in &self.bins {
            if below + count >= rank {
                return Some(Located::Bin {
                    key,
                    rank_in_bin: rank - below,
                    bin_count: count,
                    below,
                });
            }
            below += count;
        }
        unreachable!("rank {rank} beyond count {n}")
    }

    /// The nearest-rank `p`-th percentile, within [`RELATIVE_ACCURACY`] of
    /// the exact one (exact when it is 0).
    pub fn quantile(&self, p: f64) -> Option<f64> {
        Some(match self.locate(p)? {
            Located::Zero => 0.0,
            Located::Bin { key, .. } => bin_value(key),
        })
    }

    /// Compact bytes: varints of the zero count, the number of bins, then
    /// per bin the key's difference from the previous key and the count.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(4 + self.bins.len() * 3);
        put_varint(&mut out, self.zero);
        put_varint(&mut out, self.bins.len() as u64);
        let mut prev = 0u32;
        for &(key, n) in &self.bins {
            put_varint(&mut out, (key - prev) as u64);
            put_varint(&mut out, n);
            prev = key;
        }
        out
    }

    /// Reads what [`Sketch::to_bytes`] wrote; `None` if it is not that.
    pub fn from_bytes(mut bytes: &[u8]) -> Option<Sketch> {
        let zero = get_varint(&mut bytes)?;
        let len = get_varint(&mut bytes)?;
        if len > bytes.len() as u64 {
            return None;
        }
        let mut bins = Vec::with_capacity(len as usize);
        let mut key = 0u32;
        for i in 0..len {
            let d = u32::try_from(get_varint(&mut bytes)?).ok()?;
            if i > 0 && d == 0 {
                return None;
            }
            key = key.checked_add(d)?;
            let n = get_varint(&mut bytes)?;
            if n == 0 {
                return None;
            }
            bins.push((key, n));
        }
        bytes.is_empty().then_some(Sketch { zero, bins })
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(bytes: &mut &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = bytes.split_first()?;
        *bytes = rest;
        v |= ((b & 0x7f) as u64).checked_shl(shift)?;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::Rng;

    fn brute(values: &[f64], p: f64) -> f64 {
        let mut v = values.to_vec();
        percentile::nearest_rank(&mut v, p).unwrap()
    }

    #[test]
    fn bins_are_monotone_with_exact_edges() {
        let mut rng = Rng::new(7);
        for _ in 0..10_000 {
            let v = rng.f64_log(1e-6, 2e5);
            let key = bin_of(v);
            let (lo, hi) = bin_bounds(key);
            assert!(lo <= v && v < hi, "{v} not in [{lo}, {hi})");
            assert_eq!(bin_of(lo), key);
            assert_eq!(bin_of(hi), key + 1);
            let rep = bin_value(key);
            assert!((rep - v).abs() / v <= RELATIVE_ACCURACY + 1e-12, "{v} {rep}");
        }
    }

    #[test]
    fn quantiles_are_within_relative_accuracy_of_nearest_rank() {
        let mut rng = Rng::new(11);
        for _ in 0..300 {
            let n = 1 + rng.below(300) as usize;
            let zeros = rng.below(3) == 0;
            let values: Vec<f64> = (0..n)
                .map(|_| {
                    if zeros && rng.below(3) == 0 {
                        0.0
                    } else {
                        rng.f64_log(0.001, 120_000.0)
                    }
                })
                .collect();
            let mut s = Sketch::new();
            values.iter().for_each(|&v| s.add(v));
            assert_eq!(s.count(), n as u64);
            for p in [1.0, 50.0, 75.0, 95.0, 99.0, 100.0] {
                let exact = brute(&values, p);
                let est = s.quantile(p).unwrap();
                if exact == 0.0 {
                    assert_eq!(est, 0.0);
                } else {
                    assert!(
                        (est - exact).abs() / exact <= RELATIVE_ACCURACY + 1e-12,
                        "p{p}: {est} vs {exact}"
                    );
                }
                // The located bin holds the exact value at the right rank.
                if let Some(Located::Bin { key, rank_in_bin, .. }) = s.locate(p) {
                    let mut in_bin: Vec<f64> = values
                        .iter()
                        .copied()
                        .filter(|&v| v > 0.0 && bin_of(v) == key)
                        .collect();
                    in_bin.sort_by(f64::total_cmp);
                    assert_eq!(in_bin[rank_in_bin as usize - 1], exact);
                }
            }
        }
    }

    #[test]
    fn remove_and_subtract_undo_add_and_merge() {
        let mut rng = Rng::new(3);
        let values: Vec<f64> = (0..500).map(|_| rng.f64_log(0.01, 5000.0)).collect();
        let (a, b) = values.split_at(200);
        let mut sa = Sketch::new();
        a.iter().for_each(|&v| sa.add(v));
        let mut sb = Sketch::new();
        b.iter().for_each(|&v| sb.add(v));
        sb.add(0.0);
        let mut all = sa.clone();
        all.merge(&sb);
        assert_eq!(all.count(), 501);
        let mut direct = Sketch::new();
        values.iter().chain([0.0].iter()).for_each(|&v| direct.add(v));
        assert_eq!(all, direct, "merge equals adding everything");
        assert_eq!(Sketch::merged([&sa, &sb, &Sketch::new()]), direct);
        // Far-apart keys take the sorting path.
        let (mut x, mut y) = (Sketch::new(), Sketch::new());
        x.add(1e-300);
        x.add(1.0);
        y.add(1e300);
        y.add(1.0);
        let m = Sketch::merged([&x, &y]);
        assert_eq!(m.count(), 4);
        assert_eq!(m.bin_count(bin_of(1.0)), 2);
        let mut back = all.clone();
        assert!(back.subtract(&sb));
        assert_eq!(back, sa);
        for &v in a {
            assert!(back.remove(v));
        }
        assert!(back.is_empty());
        assert!(!back.remove(1.0));
        assert!(!back.remove(0.0));
    }

    #[test]
    fn bytes_round_trip_and_garbage_is_refused() {
        let mut s = Sketch::new();
        for v in [0.0, 0.0, 0.1, 0.1, 0.25, 1800.0, 119_999.9, 1e-300] {
            s.add(v);
        }
        assert_eq!(Sketch::from_bytes(&s.to_bytes()), Some(s.clone()));
        assert_eq!(Sketch::from_bytes(&Sketch::new().to_bytes()), Some(Sketch::new()));
        let bytes = s.to_bytes();
        assert_eq!(Sketch::from_bytes(&bytes[..bytes.len() - 1]), None);
        assert_eq!(Sketch::from_bytes(&[0, 200, 1]), None);
        assert_eq!(Sketch::from_bytes(&[0xff; 12]), None);
    }

    #[test]
    fn empty_sketch() {
        let s = Sketch::new();
        assert_eq!(s.quantile(75.0), None);
        assert_eq!(s.locate(50.0), None);
        assert_eq!(s.count(), 0);
    }
}
