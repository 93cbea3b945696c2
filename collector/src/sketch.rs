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

use std::borrow::Cow;

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

/// The first byte of [`Sketch::to_bytes`]: the layout after it. A change
/// of bins (their width, the key mapping) is a new version, so that a
/// stored sketch is never read with another's meaning.
pub const SKETCH_FORMAT: u8 = 1;

/// Sparse sketches go dense from this many bins on (see [`Sketch`]).
const DENSE_MIN: usize = 8;

/// Bytes a bin takes in the sparse form.
const SPARSE_BIN_BYTES: usize = std::mem::size_of::<(u32, u64)>();

/// Whether a sparse sketch of `len` bins spanning `width` keys goes dense
/// with `count_bytes` per count: when that takes no more memory.
fn goes_dense(len: usize, width: usize, count_bytes: usize) -> bool {
    len >= DENSE_MIN && width * count_bytes <= SPARSE_BIN_BYTES * len
}

/// Whether a dense sketch stays dense: until it would take more than twice
/// the memory of the sparse form (plus a little), so that it does not flip
/// back and forth.
fn stays_dense(len: usize, width: usize, count_bytes: usize) -> bool {
    width * count_bytes <= 2 * SPARSE_BIN_BYTES * len + 256
}

/// Counts of values per bin.
///
/// Kept in one of two forms, which no answer, comparison or byte encoding
/// can tell apart:
///
/// * sparse: `(key, count)` sorted by key, no zero count; for small
///   sketches and keys far apart;
/// * dense: a count for every key of a range, in the narrowest of 1, 2, 4
///   or 8 bytes that holds the largest count (widened when a count
///   outgrows it), once the sketch has [`DENSE_MIN`] bins and that takes
///   no more memory than the sparse form. Adding is then one array index
///   instead of a binary search (a chain of cache misses in a big sketch)
///   and sometimes an insert, and the bins of a cell's usual values share
///   a few cache lines. It goes sparse again when it would take twice the
///   memory of the sparse form.
#[derive(Clone, Debug, Default)]
pub struct Sketch {
    zero: u64,
    bins: Bins,
}

#[derive(Clone, Debug)]
enum Bins {
    Sparse(Vec<(u32, u64)>),
    Dense(Dense),
}

impl Default for Bins {
    fn default() -> Bins {
        Bins::Sparse(Vec::new())
    }
}

/// Counts of consecutive keys, as narrow as their largest needs.
#[derive(Clone, Debug)]
enum Counts {
    U8(Box<[u8]>),
    U16(Box<[u16]>),
    U32(Box<[u32]>),
    U64(Box<[u64]>),
}

/// Runs `$e` with `$v` bound to the counts slice, whatever its width.
macro_rules! each_width {
    ($counts:expr, $v:ident => $e:expr) => {{
        // The same expression for every width: for `u64` its conversions
        // to `u64` are the identity.
        #[allow(clippy::useless_conversion, clippy::unnecessary_cast)]
        let out = match $counts {
            Counts::U8($v) => $e,
            Counts::U16($v) => $e,
            Counts::U32($v) => $e,
            Counts::U64($v) => $e,
        };
        out
    }};
}

/// Adds `n` to `v[i]`: `Ok(whether it was 0)`, or `Err(the sum)` when
/// that does not fit (nothing changed then).
#[inline]
fn add_in<T: Copy + Into<u64> + TryFrom<u64>>(v: &mut [T], i: usize, n: u64) -> Result<bool, u64> {
    let old: u64 = v[i].into();
    let new = old + n;
    match T::try_from(new) {
        Ok(c) => {
            v[i] = c;
            Ok(old == 0)
        }
        Err(_) => Err(new),
    }
}

/// Adds `src` to `dst`, up to the first sum that does not fit: how many
/// were added, and how many of those were 0 before.
#[inline]
fn add_slice<T, S>(dst: &mut [T], src: &[S]) -> (usize, u32)
where
    T: Copy + Into<u64> + TryFrom<u64>,
    S: Copy + Into<u64>,
{
    let mut fresh = 0;
    for (i, (d, &s)) in dst.iter_mut().zip(src).enumerate() {
        let s: u64 = s.into();
        if s == 0 {
            continue;
        }
        let old: u64 = (*d).into();
        match T::try_from(old + s) {
            Ok(sum) => *d = sum,
            Err(_) => return (i, fresh),
        }
        fresh += (old == 0) as u32;
    }
    (dst.len().min(src.len()), fresh)
}

/// Subtracts `n` from `v[i]`: `Some(whether it is 0 now)`, or `None` (and
/// no change) when it holds less.
#[inline]
fn sub_in<T: Copy + Into<u64> + TryFrom<u64>>(v: &mut [T], i: usize, n: u64) -> Option<bool> {
    let old: u64 = v[i].into();
    let new = old.checked_sub(n)?;
    v[i] = T::try_from(new).ok()?;
    Some(new == 0)
}

fn boxed<T: TryFrom<u64>>(counts: impl Iterator<Item = u64>) -> Box<[T]> {
    counts
        .map(|c| T::try_from(c).ok().expect("the width fits the largest count"))
        .collect()
}

impl Counts {
    /// Counts `counts`, in the narrowest width holding `max`.
    fn from_iter(counts: impl Iterator<Item = u64>, max: u64) -> Counts {
        if max <= u8::MAX as u64 {
            Counts::U8(boxed(counts))
        } else if max <= u16::MAX as u64 {
            Counts::U16(boxed(counts))
        } else if max <= u32::MAX as u64 {
            Counts::U32(boxed(counts))
        } else {
            Counts::U64(boxed(counts))
        }
    }

    fn width_for(max: u64) -> usize {
        if max <= u8::MAX as u64 {
            1
        } else if max <= u16::MAX as u64 {
            2
        } else if max <= u32::MAX as u64 {
            4
        } else {
            8
        }
    }

    fn len(&self) -> usize {
        each_width!(self, v => v.len())
    }

    /// Bytes per count.
    fn count_bytes(&self) -> usize {
        match self {
            Counts::U8(_) => 1,
            Counts::U16(_) => 2,
            Counts::U32(_) => 4,
            Counts::U64(_) => 8,
        }
    }

    #[inline]
    fn get(&self, i: usize) -> u64 {
        each_width!(self, v => v[i].into())
    }

    fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }

    fn max(&self) -> u64 {
        each_width!(self, v => v.iter().map(|&c| c.into()).max().unwrap_or(0))
    }

    fn sum(&self, end: usize) -> u64 {
        each_width!(self, v => v[..end].iter().map(|&c| c as u64).sum::<u64>())
    }

    /// Adds `n` at `i`, widening if needed; whether it was 0.
    #[inline]
    fn add(&mut self, i: usize, n: u64) -> bool {
        match each_width!(self, v => add_in(v, i, n)) {
            Ok(was_zero) => was_zero,
            Err(new) => {
                self.widen_to(new);
                each_width!(self, v => add_in(v, i, n)).expect("widened")
            }
        }
    }

    /// Widens the counts to hold `max`.
    #[cold]
    fn widen_to(&mut self, max: u64) {
        let max = max.max(self.max());
        *self = Counts::from_iter(self.iter(), max);
    }

    /// The counts moved `shift` keys up, `width` of them.
    fn resized(&self, shift: usize, width: usize) -> Counts {
        fn grow<T: Copy + Default>(v: &[T], shift: usize, width: usize) -> Box<[T]> {
            let mut out = vec![T::default(); width];
            out[shift..shift + v.len()].copy_from_slice(v);
            out.into_boxed_slice()
        }
        match self {
            Counts::U8(v) => Counts::U8(grow(v, shift, width)),
            Counts::U16(v) => Counts::U16(grow(v, shift, width)),
            Counts::U32(v) => Counts::U32(grow(v, shift, width)),
            Counts::U64(v) => Counts::U64(grow(v, shift, width)),
        }
    }
}

/// `counts[i]` is the count of key `lo + i`; `len` of them are not zero.
/// Zeros at the ends are room to grow.
#[derive(Clone, Debug)]
struct Dense {
    lo: u32,
    len: u32,
    counts: Counts,
}

impl Dense {
    /// The dense form of sorted bins, over exactly `lo..=hi`.
    fn from_sparse(bins: &[(u32, u64)], lo: u32, hi: u32) -> Dense {
        let width = (hi - lo) as usize + 1;
        let max = bins.iter().map(|b| b.1).max().unwrap_or(0);
        let mut at = bins.iter().peekable();
        let counts = (lo..lo + width as u32).map(|k| match at.peek() {
            Some(&&(key, n)) if key == k => {
                at.next();
                n
            }
            _ => 0,
        });
        Dense {
            lo,
            len: bins.len() as u32,
            counts: Counts::from_iter(counts, max),
        }
    }

    /// A dense sketch of `counts` (of keys from `lo`, not all 0), over
    /// its first to last bin, in the narrowest width.
    fn from_counts(lo: u32, counts: &[u64]) -> Dense {
        let first = counts.iter().position(|&n| n > 0).unwrap_or(0);
        let last = counts.iter().rposition(|&n| n > 0).unwrap_or(0);
        let counts = &counts[first..=last];
        let (mut len, mut max) = (0, 0);
        for &n in counts {
            len += (n > 0) as u32;
            max = max.max(n);
        }
        Dense {
            lo: lo + first as u32,
            len,
            counts: Counts::from_iter(counts.iter().copied(), max),
        }
    }

    fn to_sparse(&self) -> Vec<(u32, u64)> {
        let mut out = Vec::with_capacity(self.len as usize);
        out.extend(self.iter());
        out
    }

    fn iter(&self) -> BinIter<'_> {
        let lo = self.lo;
        BinIter(match &self.counts {
            Counts::U8(v) => Iter::U8(DenseIter { lo, counts: v, i: 0 }),
            Counts::U16(v) => Iter::U16(DenseIter { lo, counts: v, i: 0 }),
            Counts::U32(v) => Iter::U32(DenseIter { lo, counts: v, i: 0 }),
            Counts::U64(v) => Iter::U64(DenseIter { lo, counts: v, i: 0 }),
        })
    }

    fn width(&self) -> usize {
        self.counts.len()
    }

    fn stays_dense(&self) -> bool {
        stays_dense(self.len as usize, self.width(), self.counts.count_bytes())
    }

    /// Last key of the range.
    fn hi(&self) -> u32 {
        self.lo + self.width() as u32 - 1
    }

    #[inline]
    fn index(&self, key: u32) -> Option<usize> {
        let i = key.wrapping_sub(self.lo) as usize;
        (i < self.width()).then_some(i)
    }

    /// First and last key with a count.
    fn key_range(&self) -> Option<(u32, u32)> {
        if self.len == 0 {
            return None;
        }
        let (first, last) = each_width!(&self.counts, v => (
            v.iter().position(|&n| n > 0)?,
            v.iter().rposition(|&n| n > 0)?,
        ));
        Some((self.lo + first as u32, self.lo + last as u32))
    }

    /// Widens the range to hold `lo..=hi`, with some room beyond; false,
    /// changing nothing, when that would be too sparse for `len` bins.
    fn widen(&mut self, lo: u32, hi: u32, len: usize) -> bool {
        let (cur_lo, cur_hi) = (self.lo, self.hi());
        if lo >= cur_lo && hi <= cur_hi {
            return true;
        }
        // Room to grow into: a sketch's range widens a lot at first (a new
        // cell's first values are all it has seen), each time a copy.
        let width = self.width() as u32;
        for room in [(width / 4).max(8), 0] {
            let new_lo = if lo < cur_lo { lo.saturating_sub(room) } else { cur_lo };
            let new_hi = if hi > cur_hi { hi.saturating_add(room) } else { cur_hi };
            let width = (new_hi - new_lo) as usize + 1;
            if !stays_dense(len, width, self.counts.count_bytes()) {
                continue;
            }
            self.counts = self.counts.resized((cur_lo - new_lo) as usize, width);
            self.lo = new_lo;
            return true;
        }
        false
    }

    /// Where rank `rank` falls, with `below` values before the range
    /// (`below < rank <= below + the counts`).
    fn locate(&self, rank: u64, below: u64) -> Located {
        fn find<T: Copy + Into<u64>>(v: &[T], rank: u64, mut below: u64) -> (usize, u64, u64) {
            for (i, &n) in v.iter().enumerate() {
                let n: u64 = n.into();
                // An empty bin never holds the rank: `below < rank` here.
                if below + n >= rank {
                    return (i, n, below);
                }
                below += n;
            }
            unreachable!("rank {rank} beyond the counts")
        }
        let (i, count, below) = each_width!(&self.counts, v => find(v, rank, below));
        Located::Bin {
            key: self.lo + i as u32,
            rank_in_bin: rank - below,
            bin_count: count,
            below,
        }
    }

    /// Adds the bins of `other`, whose keys `lo..=hi` the range holds.
    fn add_all(&mut self, other: &Bins, lo: u32, hi: u32) {
        match other {
            Bins::Sparse(v) => {
                for &(k, n) in v {
                    self.len += self.counts.add((k - self.lo) as usize, n) as u32;
                }
            }
            Bins::Dense(o) => {
                let start = (lo - self.lo) as usize;
                let from = (lo - o.lo) as usize;
                let n = (hi - lo) as usize + 1;
                let mut done = 0;
                loop {
                    let (a, b) = (start + done, from + done);
                    let (added, fresh) = each_width!(&o.counts, src => each_width!(&mut self.counts, dst => {
                        add_slice(&mut dst[a..start + n], &src[b..from + n])
                    }));
                    self.len += fresh;
                    done += added;
                    if done == n {
                        break;
                    }
                    // A sum that does not fit: widen, then go on from there.
                    let sum = self.counts.get(start + done) + o.counts.get(from + done);
                    self.counts.widen_to(sum);
                }
            }
        }
    }
}

/// The `(key, count)` of a sketch's non-empty bins, ascending.
pub struct BinIter<'a>(Iter<'a>);

enum Iter<'a> {
    Sparse(std::slice::Iter<'a, (u32, u64)>),
    U8(DenseIter<'a, u8>),
    U16(DenseIter<'a, u16>),
    U32(DenseIter<'a, u32>),
    U64(DenseIter<'a, u64>),
}

struct DenseIter<'a, T> {
    lo: u32,
    counts: &'a [T],
    i: usize,
}

impl<T: Copy + Into<u64>> Iterator for DenseIter<'_, T> {
    type Item = (u32, u64);

    #[inline]
    fn next(&mut self) -> Option<(u32, u64)> {
        while let Some(&n) = self.counts.get(self.i) {
            self.i += 1;
            let n: u64 = n.into();
            if n > 0 {
                return Some((self.lo + (self.i - 1) as u32, n));
            }
        }
        None
    }
}

impl Iterator for BinIter<'_> {
    type Item = (u32, u64);

    #[inline]
    fn next(&mut self) -> Option<(u32, u64)> {
        match &mut self.0 {
            Iter::Sparse(it) => it.next().copied(),
            Iter::U8(it) => it.next(),
            Iter::U16(it) => it.next(),
            Iter::U32(it) => it.next(),
            Iter::U64(it) => it.next(),
        }
    }
}

impl PartialEq for Sketch {
    fn eq(&self, other: &Sketch) -> bool {
        self.zero == other.zero && self.bin_len() == other.bin_len() && self.iter_bins().eq(other.iter_bins())
    }
}

impl Eq for Sketch {}

impl Sketch {
    pub fn new() -> Sketch {
        Sketch::default()
    }

    pub fn count(&self) -> u64 {
        self.zero
            + match &self.bins {
                Bins::Sparse(v) => v.iter().map(|&(_, n)| n).sum::<u64>(),
                Bins::Dense(d) => d.counts.sum(d.width()),
            }
    }

    pub fn is_empty(&self) -> bool {
        self.zero == 0 && self.bin_len() == 0
    }

    pub fn zero_count(&self) -> u64 {
        self.zero
    }

    /// How many bins are not empty.
    pub fn bin_len(&self) -> usize {
        match &self.bins {
            Bins::Sparse(v) => v.len(),
            Bins::Dense(d) => d.len as usize,
        }
    }

    /// `(key, count)` of every non-empty bin, ascending. Copies them when
    /// the sketch is dense: [`Sketch::iter_bins`] does not.
    pub fn bins(&self) -> Cow<'_, [(u32, u64)]> {
        match &self.bins {
            Bins::Sparse(v) => Cow::Borrowed(v),
            Bins::Dense(d) => Cow::Owned(d.to_sparse()),
        }
    }

    /// `(key, count)` of every non-empty bin, ascending.
    pub fn iter_bins(&self) -> BinIter<'_> {
        match &self.bins {
            Bins::Sparse(v) => BinIter(Iter::Sparse(v.iter())),
            Bins::Dense(d) => d.iter(),
        }
    }

    /// How many values are in bins below `key`, the zero bin included.
    pub fn count_below(&self, key: u32) -> u64 {
        self.zero
            + match &self.bins {
                Bins::Sparse(v) => v.iter().take_while(|&&(k, _)| k < key).map(|&(_, n)| n).sum::<u64>(),
                Bins::Dense(d) => d.counts.sum((key.saturating_sub(d.lo) as usize).min(d.width())),
            }
    }

    /// First and last key of the non-empty bins.
    fn key_range(&self) -> Option<(u32, u32)> {
        match &self.bins {
            Bins::Sparse(v) => Some((v.first()?.0, v.last()?.0)),
            Bins::Dense(d) => d.key_range(),
        }
    }

    /// Count of values in bin `key`.
    #[inline]
    pub fn bin_count(&self, key: u32) -> u64 {
        match &self.bins {
            Bins::Sparse(v) => match v.binary_search_by_key(&key, |&(k, _)| k) {
                Ok(i) => v[i].1,
                Err(_) => 0,
            },
            Bins::Dense(d) => d.index(key).map_or(0, |i| d.counts.get(i)),
        }
    }

    /// Whether `value`'s bin is not empty.
    #[inline]
    pub fn holds(&self, value: f64) -> bool {
        if value <= 0.0 {
            self.zero > 0
        } else {
            self.bin_count(bin_of(value)) > 0
        }
    }

    /// Adds `value` (finite, >= 0).
    #[inline]
    pub fn add(&mut self, value: f64) {
        debug_assert!(value >= 0.0 && value.is_finite(), "{value}");
        if value <= 0.0 {
            self.zero += 1;
            return;
        }
        self.add_key(bin_of(value), 1);
    }

    /// Adds `n` values to bin `key` ([`bin_of`]), or to the zero bin for
    /// `None`: how an engine that counts values per bin itself (ClickHouse)
    /// builds the same sketch.
    pub fn add_bin(&mut self, key: Option<u32>, n: u64) {
        match key {
            None => self.zero += n,
            Some(_) if n == 0 => {}
            Some(key) => self.add_key(key, n),
        }
    }

    /// Adds `n` values to bin `key`.
    #[inline]
    fn add_key(&mut self, key: u32, n: u64) {
        match &mut self.bins {
            Bins::Dense(d) => {
                if let Some(i) = d.index(key) {
                    if let Ok(was_zero) = each_width!(&mut d.counts, v => add_in(v, i, n)) {
                        d.len += was_zero as u32;
                        return;
                    }
                }
            }
            Bins::Sparse(v) => {
                if let Ok(i) = v.binary_search_by_key(&key, |&(k, _)| k) {
                    v[i].1 += n;
                    return;
                }
            }
        }
        self.add_key_slow(key, n);
    }

    /// [`Sketch::add_key`] when the bin is new, or outside the dense
    /// range, or its count outgrows its width.
    #[inline(never)]
    fn add_key_slow(&mut self, key: u32, n: u64) {
        if let Bins::Dense(d) = &mut self.bins {
            let new = d.index(key).is_none_or(|i| d.counts.get(i) == 0) as usize;
            if d.widen(key, key, d.len as usize + new) {
                let i = (key - d.lo) as usize;
                d.len += d.counts.add(i, n) as u32;
                self.maybe_sparse();
                return;
            }
            self.bins = Bins::Sparse(d.to_sparse());
        }
        let Bins::Sparse(v) = &mut self.bins else {
            unreachable!("made sparse above")
        };
        let i = v.partition_point(|&(k, _)| k < key);
        if v.get(i).is_some_and(|b| b.0 == key) {
            v[i].1 += n;
            return;
        }
        let len = v.len() + 1;
        if len >= DENSE_MIN {
            let lo = v[0].0.min(key);
            let hi = v[len - 2].0.max(key);
            let max = v.iter().map(|b| b.1).max().unwrap_or(0).max(n);
            if goes_dense(len, (hi - lo) as usize + 1, Counts::width_for(max)) {
                v.insert(i, (key, n));
                self.bins = Bins::Dense(Dense::from_sparse(v, lo, hi));
                return;
            }
        }
        v.insert(i, (key, n));
    }

    /// Removes one occurrence of `value`'s bin. Returns false (and changes
    /// nothing) when that bin is empty, i.e. `value` was never added.
    #[inline]
    pub fn remove(&mut self, value: f64) -> bool {
        if value <= 0.0 {
            if self.zero == 0 {
                return false;
            }
            self.zero -= 1;
            return true;
        }
        let key = bin_of(value);
        match &mut self.bins {
            Bins::Sparse(v) => match v.binary_search_by_key(&key, |&(k, _)| k) {
                Ok(i) => {
                    v[i].1 -= 1;
                    if v[i].1 == 0 {
                        v.remove(i);
                    }
                    true
                }
                Err(_) => false,
            },
            Bins::Dense(d) => {
                let Some(i) = d.index(key) else {
                    return false;
                };
                match each_width!(&mut d.counts, v => sub_in(v, i, 1)) {
                    None => false,
                    Some(now_zero) => {
                        if now_zero {
                            d.len -= 1;
                            self.maybe_sparse();
                        }
                        true
                    }
                }
            }
        }
    }

    /// Gives back memory kept for growing: a sparse sketch's spare
    /// capacity, a dense one's empty keys at the ends.
    pub fn shrink_to_fit(&mut self) {
        match &mut self.bins {
            Bins::Sparse(v) => v.shrink_to_fit(),
            Bins::Dense(d) => {
                if let Some((lo, hi)) = d.key_range() {
                    if (lo, hi) != (d.lo, d.hi()) {
                        let from = (lo - d.lo) as usize;
                        let width = (hi - lo) as usize + 1;
                        d.counts = each_width!(&d.counts, v => Counts::from_iter(
                            v[from..from + width].iter().map(|&n| n as u64),
                            d.counts.max(),
                        ));
                        d.lo = lo;
                    }
                }
            }
        }
    }

    /// Goes dense if sparse and that takes no more memory.
    fn maybe_dense(&mut self) {
        if let Bins::Sparse(v) = &self.bins {
            if let (Some(first), Some(last)) = (v.first(), v.last()) {
                let max = v.iter().map(|b| b.1).max().unwrap_or(0);
                if goes_dense(v.len(), (last.0 - first.0) as usize + 1, Counts::width_for(max)) {
                    self.bins = Bins::Dense(Dense::from_sparse(v, first.0, last.0));
                }
            }
        }
    }

    /// Goes sparse if dense and too empty.
    fn maybe_sparse(&mut self) {
        if let Bins::Dense(d) = &self.bins {
            if !d.stays_dense() {
                self.bins = Bins::Sparse(d.to_sparse());
            }
        }
    }

    /// Adds every value of `other`. Bins `self` already has are counted
    /// in place, so merging a small sketch into a large one is cheap.
    pub fn merge(&mut self, other: &Sketch) {
        self.zero += other.zero;
        // Into a dense range that holds all of the other's range (the
        // usual case: a cell into a rolling merge): no need to find its
        // first and last bin.
        if let (Bins::Dense(d), Bins::Dense(o)) = (&mut self.bins, &other.bins) {
            if d.lo <= o.lo && o.hi() <= d.hi() {
                d.add_all(&other.bins, o.lo, o.hi());
                return;
            }
        }
        let Some((lo, hi)) = other.key_range() else {
            return;
        };
        let len = other.bin_len();
        if let Bins::Sparse(v) = &self.bins {
            let Some((&first, &last)) = v.first().zip(v.last()) else {
                self.bins = other.bins.clone();
                return;
            };
            if let Bins::Dense(o) = &other.bins {
                // Into a copy of the dense one, if the union can be dense.
                let mut d = o.clone();
                if d.widen(first.0, last.0, v.len() + len) {
                    d.add_all(&self.bins, first.0, last.0);
                    self.bins = Bins::Dense(d);
                    self.maybe_sparse();
                    return;
                }
            }
        }
        if let Bins::Dense(d) = &mut self.bins {
            if d.widen(lo, hi, d.len as usize + len) {
                d.add_all(&other.bins, lo, hi);
                self.maybe_sparse();
                return;
            }
            self.bins = Bins::Sparse(d.to_sparse());
        }
        let Bins::Sparse(bins) = &mut self.bins else {
            unreachable!("made sparse above")
        };
        let mut missing = Vec::new();
        for (k, n) in other.iter_bins() {
            match bins.binary_search_by_key(&k, |&(k, _)| k) {
                Ok(i) => bins[i].1 += n,
                Err(_) => missing.push((k, n)),
            }
        }
        if !missing.is_empty() {
            let mut out = Vec::with_capacity(bins.len() + missing.len());
            let (mut a, mut b) = (bins.iter().peekable(), missing.iter().peekable());
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
            *bins = out;
        }
        self.maybe_dense();
    }

    /// The merge of many sketches: counted into a dense array over the
    /// keys' range when that is not much wider than the bins (the usual
    /// case: values of one metric), else sorted.
    pub fn merged<'a>(parts: impl IntoIterator<Item = &'a Sketch>) -> Sketch {
        let mut zero = 0;
        let mut with_bins: Vec<&Sketch> = Vec::new();
        for p in parts {
            zero += p.zero;
            if p.bin_len() > 0 {
                with_bins.push(p);
            }
        }
        // Each one's range: a dense one's whole range, without looking
        // for its first and last bin.
        let range = |p: &Sketch| match &p.bins {
            Bins::Sparse(v) => (v[0].0, v[v.len() - 1].0),
            Bins::Dense(d) => (d.lo, d.hi()),
        };
        let bins = match with_bins[..] {
            [] => Bins::default(),
            [one] => one.bins.clone(),
            _ => {
                let lo = with_bins.iter().map(|p| range(p).0).min().unwrap_or(0);
                let hi = with_bins.iter().map(|p| range(p).1).max().unwrap_or(0);
                let pairs: usize = with_bins.iter().map(|p| p.bin_len()).sum();
                let width = (hi - lo) as usize + 1;
                if width <= 2 * pairs + 256 {
                    let mut acc = vec![0u64; width];
                    for p in &with_bins {
                        match &p.bins {
                            Bins::Sparse(v) => {
                                for &(k, n) in v {
                                    acc[(k - lo) as usize] += n;
                                }
                            }
                            Bins::Dense(d) => {
                                let out = &mut acc[(d.lo - lo) as usize..][..d.width()];
                                each_width!(&d.counts, v => {
                                    for (o, &n) in out.iter_mut().zip(v.iter()) {
                                        *o += n as u64;
                                    }
                                });
                            }
                        }
                    }
                    let d = Dense::from_counts(lo, &acc);
                    if d.stays_dense() {
                        Bins::Dense(d)
                    } else {
                        Bins::Sparse(d.to_sparse())
                    }
                } else {
                    let mut all: Vec<(u32, u64)> = Vec::with_capacity(pairs);
                    for p in &with_bins {
                        all.extend(p.iter_bins());
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
                    Bins::Sparse(all)
                }
            }
        };
        let mut out = Sketch { zero, bins };
        out.maybe_dense();
        out
    }

    /// Subtracts every value of `other`, which must have been merged in.
    /// Returns false (leaving `self` unspecified) if it was not.
    pub fn subtract(&mut self, other: &Sketch) -> bool {
        if other.zero > self.zero {
            return false;
        }
        self.zero -= other.zero;
        match &mut self.bins {
            Bins::Sparse(bins) => {
                for (key, n) in other.iter_bins() {
                    match bins.binary_search_by_key(&key, |&(k, _)| k) {
                        Ok(i) if bins[i].1 >= n => bins[i].1 -= n,
                        _ => return false,
                    }
                }
                bins.retain(|&(_, n)| n > 0);
            }
            Bins::Dense(d) => {
                for (key, n) in other.iter_bins() {
                    let Some(i) = d.index(key) else {
                        return false;
                    };
                    match each_width!(&mut d.counts, v => sub_in(v, i, n)) {
                        Some(now_zero) => d.len -= now_zero as u32,
                        None => return false,
                    }
                }
                self.maybe_sparse();
            }
        }
        true
    }

    /// Where the nearest-rank `p`-th percentile (0..=100) lies, or `None`
    /// when empty.
    pub fn locate(&self, p: f64) -> Option<Located> {
        let n = self.count();
        if n == 0 {
            return None;
        }
        self.locate_rank(percentile::rank(p, n as usize).clamp(1, n as usize) as u64)
    }

    /// Where the `rank`-th smallest value (1-based, clamped to the count)
    /// lies, or `None` when empty.
    pub fn locate_rank(&self, rank: u64) -> Option<Located> {
        let n = self.count();
        if n == 0 {
            return None;
        }
        let rank = rank.clamp(1, n);
        if rank <= self.zero {
            return Some(Located::Zero);
        }
        if let Bins::Dense(d) = &self.bins {
            return Some(d.locate(rank, self.zero));
        }
        let mut below = self.zero;
        for (key, count) in self.iter_bins() {
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

    /// Compact bytes: the format version ([`SKETCH_FORMAT`]), then varints
    /// of the zero count, the number of bins, then per bin the key's
    /// difference from the previous key and the count. (The same bytes
    /// whatever the form.)
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(5 + self.bin_len() * 3);
        out.push(SKETCH_FORMAT);
        put_varint(&mut out, self.zero);
        put_varint(&mut out, self.bin_len() as u64);
        let mut prev = 0u32;
        for (key, n) in self.iter_bins() {
            put_varint(&mut out, (key - prev) as u64);
            put_varint(&mut out, n);
            prev = key;
        }
        out
    }

    /// Reads what [`Sketch::to_bytes`] wrote; `None` if it is not that
    /// (another format version, malformed bytes).
    pub fn from_bytes(bytes: &[u8]) -> Option<Sketch> {
        let mut bytes = bytes.strip_prefix(&[SKETCH_FORMAT])?;
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
        if !bytes.is_empty() {
            return None;
        }
        let mut s = Sketch {
            zero,
            bins: Bins::Sparse(bins),
        };
        s.maybe_dense();
        Some(s)
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
        assert_eq!(Sketch::from_bytes(&[SKETCH_FORMAT, 0, 200, 1]), None);
        assert_eq!(Sketch::from_bytes(&[0xff; 12]), None);
        // Another format version (or none: the bytes saved before it).
        assert_eq!(Sketch::from_bytes(&bytes[1..]), None);
        let mut other = bytes.clone();
        other[0] = SKETCH_FORMAT + 1;
        assert_eq!(Sketch::from_bytes(&other), None);
    }

    /// What a sketch must equal: the zero count and a count per key.
    #[derive(Clone, Default)]
    struct Model {
        zero: u64,
        bins: std::collections::BTreeMap<u32, u64>,
    }

    impl Model {
        fn add(&mut self, v: f64, n: u64) {
            if v <= 0.0 {
                self.zero += n;
            } else {
                *self.bins.entry(bin_of(v)).or_default() += n;
            }
        }
        fn remove(&mut self, v: f64) -> bool {
            if v <= 0.0 {
                if self.zero == 0 {
                    return false;
                }
                self.zero -= 1;
                return true;
            }
            let key = bin_of(v);
            match self.bins.get_mut(&key) {
                Some(n) => {
                    *n -= 1;
                    if *n == 0 {
                        self.bins.remove(&key);
                    }
                    true
                }
                None => false,
            }
        }
        fn merge(&mut self, other: &Model) {
            self.zero += other.zero;
            for (&k, &n) in &other.bins {
                *self.bins.entry(k).or_default() += n;
            }
        }
        fn sorted(&self) -> Vec<(u32, u64)> {
            self.bins.iter().map(|(&k, &n)| (k, n)).collect()
        }
    }

    /// `s` holds exactly what `m` does, by every read, and keeps its
    /// form's invariants. Returns whether it is dense.
    fn check(s: &Sketch, m: &Model) -> bool {
        let want = m.sorted();
        assert_eq!(s.zero_count(), m.zero);
        assert_eq!(s.iter_bins().collect::<Vec<_>>(), want);
        assert_eq!(&*s.bins(), &want[..]);
        assert_eq!(s.bin_len(), want.len());
        let total = m.zero + want.iter().map(|b| b.1).sum::<u64>();
        assert_eq!(s.count(), total);
        assert_eq!(s.is_empty(), total == 0);
        let reference = Sketch {
            zero: m.zero,
            bins: Bins::Sparse(want.clone()),
        };
        assert_eq!(*s, reference);
        assert_eq!(reference, *s);
        for p in [0.0, 1.0, 50.0, 75.0, 90.0, 99.0, 100.0] {
            assert_eq!(s.locate(p), reference.locate(p), "p{p}");
        }
        let mut below = m.zero;
        for &(k, n) in &want {
            assert_eq!(s.bin_count(k), n);
            assert_eq!(s.count_below(k), below);
            assert_eq!(s.bin_count(k + 1), m.bins.get(&(k + 1)).copied().unwrap_or(0));
            below += n;
        }
        assert_eq!(s.count_below(u32::MAX), below);
        assert_eq!(s.count_below(0), m.zero);
        assert_eq!(s.bin_count(0), 0);
        let bytes = s.to_bytes();
        assert_eq!(bytes, reference.to_bytes(), "the same bytes in either form");
        assert_eq!(Sketch::from_bytes(&bytes).as_ref(), Some(s));
        match &s.bins {
            Bins::Sparse(v) => {
                assert!(v.windows(2).all(|w| w[0].0 < w[1].0) && v.iter().all(|b| b.1 > 0));
                false
            }
            Bins::Dense(d) => {
                assert!(d.width() > 0);
                assert_eq!(d.len as usize, d.counts.iter().filter(|&n| n > 0).count());
                assert!(d.stays_dense(), "{} {}", d.len, d.width());
                assert!(d.counts.count_bytes() >= Counts::width_for(d.counts.max()));
                true
            }
        }
    }

    /// Values of a few shapes: timings, CLS with many zeros, and rare far
    /// outliers (which make sketches sparse again).
    fn value(rng: &mut Rng, shape: u64) -> f64 {
        match shape {
            0 => (rng.f64_log(100.0, 3000.0) * 10.0).round() / 10.0,
            1 => {
                if rng.below(3) == 0 {
                    0.0
                } else {
                    rng.f64_log(0.0001, 0.4)
                }
            }
            2 => (rng.below(100) * 8 + 16) as f64,
            _ => [1e-300, 1e300, 5e-7, 1e9, 3.0][rng.below(5) as usize],
        }
    }

    /// Dense, sparse and changing sketches agree with the brute-force
    /// model through adds, removes, merges, `merged` and subtracts.
    #[test]
    fn both_forms_agree_with_a_model() {
        let mut rng = Rng::new(17);
        let (mut dense_seen, mut sparse_seen) = (0, 0);
        let mut tally = |dense: bool| {
            if dense {
                dense_seen += 1
            } else {
                sparse_seen += 1
            }
        };
        for round in 0..60 {
            let n = [5, 40, 300, 3000][round % 4];
            let shapes = 1 + rng.below(3);
            let outliers = rng.below(4) == 0;
            let mut s = Sketch::new();
            let mut m = Model::default();
            let mut added: Vec<f64> = Vec::new();
            let mut parts: Vec<(Sketch, Model)> = Vec::new();
            for i in 0..n {
                let shape = if outliers && rng.below(50) == 0 {
                    3
                } else {
                    rng.below(shapes)
                };
                let v = value(&mut rng, shape);
                s.add(v);
                m.add(v, 1);
                added.push(v);
                if rng.below(4) == 0 && !added.is_empty() {
                    let v = added.swap_remove(rng.below(added.len() as u64) as usize);
                    assert!(s.remove(v));
                    assert!(m.remove(v));
                }
                if rng.below(8) == 0 {
                    // Never added (or all removed): refused, nothing changes.
                    let shape = rng.below(4);
                    let v = value(&mut rng, shape);
                    let had = m.clone().remove(v);
                    assert_eq!(s.remove(v), had);
                    if had {
                        // It took one of the values added to its bin.
                        m.remove(v);
                        let same = |a: f64| {
                            if v <= 0.0 {
                                a <= 0.0
                            } else {
                                a > 0.0 && bin_of(a) == bin_of(v)
                            }
                        };
                        let i = added.iter().position(|&a| same(a)).expect("a value of that bin");
                        added.swap_remove(i);
                    }
                }
                if rng.below(100) == 0 {
                    s.shrink_to_fit();
                }
                if i % 97 == 0 || i == n - 1 {
                    tally(check(&s, &m));
                }
                if rng.below(200) == 0 {
                    parts.push((s.clone(), m.clone()));
                }
            }
            // Emptying a sketch by removes.
            if round % 5 == 0 {
                let mut e = s.clone();
                let mut em = m.clone();
                for &v in &added {
                    assert!(e.remove(v));
                    assert!(em.remove(v));
                }
                check(&e, &em);
                assert_eq!(e.count(), 0);
                assert!(e.is_empty());
            }
            parts.push((s.clone(), m.clone()));
            parts.push((Sketch::new(), Model::default()));
            // merge one by one (into either form) equals `merged` equals the model.
            let mut acc = Sketch::new();
            let mut acc_m = Model::default();
            for (p, pm) in &parts {
                acc.merge(p);
                acc_m.merge(pm);
                tally(check(&acc, &acc_m));
            }
            let all = Sketch::merged(parts.iter().map(|p| &p.0));
            tally(check(&all, &acc_m));
            // Merging into the other part's form: small into big, big into small.
            for (p, pm) in &parts {
                let mut x = p.clone();
                x.merge(&s);
                let mut xm = pm.clone();
                xm.merge(&m);
                tally(check(&x, &xm));
                // And subtract takes it back.
                assert!(x.subtract(&s));
                tally(check(&x, pm));
                assert!(x.subtract(p));
                check(&x, &Model::default());
            }
            // Subtracting what was never merged in is refused.
            let mut y = Sketch::new();
            y.add(1e-300);
            let mut x = s.clone();
            if !m.bins.contains_key(&bin_of(1e-300)) {
                assert!(!x.subtract(&y));
            }
        }
        assert!(dense_seen > 50 && sparse_seen > 50, "{dense_seen} {sparse_seen}");
    }

    /// A big sketch of one metric's values goes dense, and an outlier far
    /// away makes it sparse again rather than a huge array.
    #[test]
    fn forms_follow_the_shape_of_the_bins() {
        let mut s = Sketch::new();
        for i in 0..1000 {
            s.add(100.0 + i as f64 * 2.9);
        }
        assert!(matches!(s.bins, Bins::Dense(_)));
        let before = s.clone();
        s.add(1e300);
        s.add(1e-300);
        assert!(matches!(s.bins, Bins::Sparse(_)));
        assert!(s.remove(1e300) && s.remove(1e-300));
        assert_eq!(s, before);
        // A handful of bins stays sparse.
        let mut small = Sketch::new();
        for v in [1.0, 2.0, 3.0, 4.0] {
            small.add(v);
        }
        assert!(matches!(small.bins, Bins::Sparse(_)));
        // Loading bytes picks the form too.
        assert!(matches!(
            Sketch::from_bytes(&before.to_bytes()).unwrap().bins,
            Bins::Dense(_)
        ));
    }

    /// Counts outgrow 1, 2 and 4 bytes, through adds, merges and saved
    /// bytes, and stay exact; subtracting brings them back.
    #[test]
    fn counts_widen_past_each_width() {
        let width = |s: &Sketch| match &s.bins {
            Bins::Dense(d) => d.counts.count_bytes(),
            Bins::Sparse(_) => 0,
        };
        let mut s = Sketch::new();
        let mut m = Model::default();
        for i in 0..20 {
            let v = 1000.0 + 16.0 * i as f64;
            s.add(v);
            m.add(v, 1);
        }
        assert_eq!(width(&s), 1);
        for _ in 0..300 {
            s.add(1000.0);
            m.add(1000.0, 1);
        }
        assert_eq!(width(&s), 2);
        check(&s, &m);
        // A saved sketch with big counts loads dense, 4 bytes a count.
        let mut big = Sketch::new();
        let mut big_m = Model::default();
        for i in 0..20 {
            let v = 1000.0 + 16.0 * i as f64;
            big.add(v);
            big_m.add(v, 1);
        }
        let key = bin_of(1100.0);
        let mut bytes = vec![SKETCH_FORMAT, 0u8, 20];
        let mut prev = 0;
        for (k, n) in big.iter_bins() {
            let n = if k == key { 70_000 } else { n };
            put_varint(&mut bytes, (k - prev) as u64);
            put_varint(&mut bytes, n);
            prev = k;
        }
        let loaded = Sketch::from_bytes(&bytes).unwrap();
        assert_eq!(width(&loaded), 4);
        big_m.add(1100.0, 70_000 - big_m.bins[&key]);
        check(&loaded, &big_m);
        // Merging past 4 bytes.
        let mut bytes = vec![SKETCH_FORMAT, 0u8, 1];
        put_varint(&mut bytes, bin_of(1050.0) as u64);
        put_varint(&mut bytes, 1 << 34);
        let mut huge = Sketch::from_bytes(&bytes).unwrap();
        let mut huge_m = Model::default();
        huge_m.bins.insert(bin_of(1050.0), 1 << 34);
        check(&huge, &huge_m);
        let mut all = loaded.clone();
        all.merge(&s);
        all.merge(&huge);
        assert_eq!(width(&all), 8);
        let mut all_m = big_m.clone();
        all_m.merge(&m);
        all_m.merge(&huge_m);
        check(&all, &all_m);
        let mut back = all.clone();
        assert!(back.subtract(&huge));
        assert!(back.subtract(&s));
        check(&back, &big_m);
        assert!(back.subtract(&loaded));
        check(&back, &Model::default());
        huge.merge(&all);
        huge_m.merge(&all_m);
        check(&huge, &huge_m);
        for (p, pm) in [(&s, &m), (&loaded, &big_m)] {
            let merged = Sketch::merged([p, &huge, p]);
            let mut mm = huge_m.clone();
            mm.merge(pm);
            mm.merge(pm);
            check(&merged, &mm);
        }
        // Dense into dense, a sum outgrowing 1 byte in the middle.
        let mut a = Sketch::new();
        let mut am = Model::default();
        for i in 0..40 {
            for _ in 0..(if i == 20 { 200 } else { 1 + i % 3 }) {
                let v = 500.0 + 8.0 * i as f64;
                a.add(v);
                am.add(v, 1);
            }
        }
        assert_eq!(width(&a), 1);
        let b = a.clone();
        a.merge(&b);
        assert_eq!(width(&a), 2);
        let bm = am.clone();
        am.merge(&bm);
        check(&a, &am);
        // Removing one by one across the 255 boundary.
        for _ in 0..300 {
            assert!(s.remove(1000.0));
            assert!(m.remove(1000.0));
        }
        check(&s, &m);
    }

    #[test]
    fn empty_sketch() {
        let s = Sketch::new();
        assert_eq!(s.quantile(75.0), None);
        assert_eq!(s.locate(50.0), None);
        assert_eq!(s.count(), 0);
    }
}
