//! The exact values of the raw reports, in memory, for exact percentiles
//! and threshold counts.
//!
//! The sketch of a window says in which bin the nearest-rank p75 falls and
//! its rank within that bin, exactly; what it cannot say is the value. That
//! takes the raw values of that bin. They used to come from a SQLite index
//! on `(page, metric, value, …)`, but every report inserted into it at a
//! random place, dirtying about one 4 KiB page per report at each commit:
//! most of the writer's cost. Here they are kept in memory instead, per
//! page, metric and day, 16 bytes per report: each day's values are sorted
//! by value, with a short unsorted tail of recent additions that is merged
//! in from time to time, and removed values are marked dead until the next
//! merge. A look-up binary-searches each day of the window whose sketch
//! holds values of the bin and scans the tail.
//!
//! Like the cells, they are a function of the raw reports: filled from the
//! `reports` table at start-up and updated by the writer with each commit.

use beacon::MetricName;

use super::cells::{Buckets, Close, FxHashMap, Place, FF_ALL};
use crate::time::{Resolution, DAY_MS};

/// A form factor code no report has: marks a removed value.
const DEAD: u8 = 254;

#[derive(Clone, Copy, Debug, PartialEq)]
struct Entry {
    value: f64,
    /// Milliseconds since the start of the day.
    at: u32,
    ff: u8,
}

/// One page's values of one metric received on one day.
#[derive(Debug)]
struct Day {
    /// `entries[..sorted]` are sorted by value; the rest are not.
    entries: Vec<Entry>,
    sorted: u32,
    dead: u32,
    /// Changed since loaded or saved.
    dirty: bool,
}

impl Default for Day {
    fn default() -> Day {
        Day {
            entries: Vec::new(),
            sorted: 0,
            dead: 0,
            dirty: true,
        }
    }
}

/// Bytes per value when saved: the value, the time in the day, the form
/// factor.
const SAVED_LEN: usize = 13;

impl Close for Day {
    /// Sorts a day that is over and gives back the room kept for growing.
    fn close(&mut self) {
        if self.tail_len() > 0 || self.dead > 0 {
            self.merge();
        }
        self.entries.shrink_to_fit();
    }
}

impl Day {
    fn tail_len(&self) -> usize {
        self.entries.len() - self.sorted as usize
    }

    /// Merges the tail into the sorted part when it has grown past a
    /// sixteenth of it (amortized O(1) per value), and drops dead values.
    fn maybe_merge(&mut self) {
        let tail = self.tail_len();
        let sorted = self.sorted as usize;
        if tail > 32 && (tail * 16 > sorted || tail >= 1 << 16) || (self.dead as usize) * 16 > sorted.max(64) {
            self.merge();
        }
    }

    fn merge(&mut self) {
        if self.dead > 0 {
            self.entries.retain(|e| e.ff != DEAD);
            self.dead = 0;
        }
        // A stable sort finds the sorted prefix and merges the tail into it.
        self.entries.sort_by(|a, b| a.value.total_cmp(&b.value));
        self.sorted = self.entries.len() as u32;
        if self.entries.capacity() > self.entries.len() * 2 {
            self.entries.shrink_to_fit();
        }
    }

    /// The live entries with `lo <= value < hi` (or `<= hi`).
    fn each_in(&self, lo: f64, hi: f64, hi_inclusive: bool, mut f: impl FnMut(&Entry)) {
        let below_hi = |v: f64| if hi_inclusive { v <= hi } else { v < hi };
        let sorted = &self.entries[..self.sorted as usize];
        let start = sorted.partition_point(|e| e.value < lo);
        for e in sorted[start..].iter().take_while(|e| below_hi(e.value)) {
            if e.ff != DEAD {
                f(e);
            }
        }
        for e in &self.entries[self.sorted as usize..] {
            if e.ff != DEAD && e.value >= lo && below_hi(e.value) {
                f(e);
            }
        }
    }
}

/// The exact values of every page, metric and day.
#[derive(Debug, Default)]
pub struct Values {
    /// Days by page and metric; today's inline (see [`Buckets`]).
    series: FxHashMap<(u32, MetricName), Buckets<Day>>,
    len: u64,
}

/// Which values a look-up wants.
#[derive(Clone, Copy, Debug)]
pub struct Select {
    pub metric: MetricName,
    /// A form factor code, or [`FF_ALL`].
    pub ff: u8,
    /// `from_ms <= received_at < to_ms`.
    pub from_ms: i64,
    pub to_ms: i64,
    pub lo: f64,
    pub hi: f64,
    /// `value <= hi` instead of `value < hi`.
    pub hi_inclusive: bool,
}

/// -0.0 as 0.0: SQLite may hand a stored -0.0 back as 0.0, and a removal
/// must find the value it added.
fn norm(value: f64) -> f64 {
    value + 0.0
}

fn split(at_ms: i64) -> (i64, u32) {
    (Resolution::Day.bucket(at_ms), at_ms.rem_euclid(DAY_MS) as u32)
}

impl Values {
    pub fn new() -> Values {
        Values::default()
    }

    /// Values held (live ones).
    pub fn len(&self) -> u64 {
        self.len
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn add(&mut self, page: u32, metric: MetricName, ff: u8, at_ms: i64, value: f64) {
        let (day, at) = split(at_ms);
        let d = self.series.entry((page, metric)).or_default().entry(day);
        d.entries.push(Entry {
            value: norm(value),
            at,
            ff,
        });
        d.dirty = true;
        d.maybe_merge();
        self.len += 1;
    }

    /// Adds many reports: the same as [`Values::add`] of each in turn, but
    /// the places a few reports go to are read first, so that their cache
    /// misses overlap (see `Cells::add_many`).
    pub fn add_many(&mut self, reports: &[(Place, f64)]) {
        for chunk in reports.chunks(16) {
            let mut sink = 0u64;
            for (p, _) in chunk {
                if let Some(days) = self.series.get(&(p.page, p.metric)) {
                    let d = days.newest();
                    sink = sink.wrapping_add(d.entries.last().map_or(0, |e| e.at as u64));
                }
            }
            std::hint::black_box(sink);
            for (p, value) in chunk {
                self.add(p.page, p.metric, p.ff, p.received_at_ms, *value);
            }
        }
    }

    /// Removes one value added with these arguments; false if there is none.
    pub fn remove(&mut self, page: u32, metric: MetricName, ff: u8, at_ms: i64, value: f64) -> bool {
        let (day, at) = split(at_ms);
        let Some(d) = self.series.get_mut(&(page, metric)).and_then(|s| s.get_mut(day)) else {
            return false;
        };
        let value = norm(value);
        let target = Entry { value, at, ff };
        let sorted = d.sorted as usize;
        let start = d.entries[..sorted].partition_point(|e| e.value.total_cmp(&value).is_lt());
        let in_sorted = d.entries[start..sorted]
            .iter()
            .take_while(|e| e.value.total_cmp(&value).is_eq())
            .position(|e| *e == target)
            .map(|i| start + i);
        if let Some(i) = in_sorted {
            // Marked dead, so that the order stays; dropped at the next merge.
            d.entries[i].ff = DEAD;
            d.dead += 1;
        } else if let Some(i) = d.entries[sorted..].iter().position(|e| *e == target) {
            d.entries.swap_remove(sorted + i);
        } else {
            return false;
        }
        d.dirty = true;
        self.len -= 1;
        d.maybe_merge();
        true
    }

    /// The selected values of `pages`, sorted.
    pub fn select(&self, pages: &[u32], s: &Select) -> Vec<f64> {
        let mut out = Vec::new();
        if s.to_ms <= s.from_ms {
            return out;
        }
        self.each(pages, s, |v| out.push(v));
        out.sort_unstable_by(f64::total_cmp);
        out
    }

    /// How many values of `pages` are selected.
    pub fn count(&self, pages: &[u32], s: &Select) -> u64 {
        let mut n = 0;
        if s.to_ms > s.from_ms {
            self.each(pages, s, |_| n += 1);
        }
        n
    }

    fn each(&self, pages: &[u32], s: &Select, mut f: impl FnMut(f64)) {
        let (first, _) = split(s.from_ms);
        let (last, _) = split(s.to_ms - 1);
        for &page in pages {
            let Some(days) = self.series.get(&(page, s.metric)) else {
                continue;
            };
            for (day, d) in days.range(first, last) {
                let start = Resolution::Day.start(day);
                // Whole days need no time check.
                let whole = start >= s.from_ms && start + DAY_MS <= s.to_ms;
                d.each_in(s.lo, s.hi, s.hi_inclusive, |e| {
                    if (s.ff == FF_ALL || e.ff == s.ff)
                        && (whole || (s.from_ms..s.to_ms).contains(&(start + e.at as i64)))
                    {
                        f(e.value);
                    }
                });
            }
        }
    }

    /// The pages with at least one value.
    pub fn pages(&self) -> std::collections::HashSet<u32> {
        self.series
            .iter()
            .filter(|(_, days)| days.iter().any(|(_, d)| d.entries.len() > d.dead as usize))
            .map(|(&(page, _), _)| page)
            .collect()
    }

    /// Drops the values of days before `day_before`.
    pub fn prune(&mut self, day_before: i64) {
        let mut dropped = 0u64;
        self.series.retain(|_, days| {
            dropped += days
                .split_before(day_before)
                .iter()
                .map(|(_, d)| (d.entries.len() - d.dead as usize) as u64)
                .sum::<u64>();
            !days.is_empty()
        });
        self.len -= dropped;
    }

    /// The days changed since loaded or last taken, as saved by
    /// [`Values::load_day`] (`None`: the day is empty now, delete it), and
    /// forgets their change.
    pub fn take_changed(&mut self) -> Vec<(u32, MetricName, i64, Option<Vec<u8>>)> {
        let mut out = Vec::new();
        for (&(page, metric), days) in self.series.iter_mut() {
            for (day, d) in days.iter_mut().filter(|(_, d)| d.dirty) {
                d.merge();
                d.dirty = false;
                let blob = (!d.entries.is_empty()).then(|| {
                    let mut blob = Vec::with_capacity(d.entries.len() * SAVED_LEN);
                    for e in &d.entries {
                        blob.extend_from_slice(&e.value.to_le_bytes());
                        blob.extend_from_slice(&e.at.to_le_bytes());
                        blob.push(e.ff);
                    }
                    blob
                });
                out.push((page, metric, day, blob));
            }
            days.retain(|d| !d.entries.is_empty());
        }
        self.series.retain(|_, days| !days.is_empty());
        out
    }

    /// Adds a day saved by [`Values::take_changed`]; false (adding
    /// nothing) if `blob` is malformed.
    pub fn load_day(&mut self, page: u32, metric: MetricName, day: i64, blob: &[u8]) -> bool {
        if !blob.len().is_multiple_of(SAVED_LEN) {
            return false;
        }
        let mut entries = Vec::with_capacity(blob.len() / SAVED_LEN);
        for c in blob.chunks_exact(SAVED_LEN) {
            let value = f64::from_le_bytes(c[..8].try_into().expect("8 bytes"));
            let at = u32::from_le_bytes(c[8..12].try_into().expect("4 bytes"));
            if !(value.is_finite() && value >= 0.0) || at as i64 >= DAY_MS || c[12] == DEAD {
                return false;
            }
            entries.push(Entry { value, at, ff: c[12] });
        }
        if !entries.is_sorted_by(|a, b| a.value.total_cmp(&b.value).is_le()) {
            return false;
        }
        self.len += entries.len() as u64;
        let d = self.series.entry((page, metric)).or_default().entry(day);
        d.entries.extend(entries);
        d.merge();
        d.dirty = false;
        true
    }

    /// Sorts everything (after filling at start-up).
    pub fn finish(&mut self) {
        for days in self.series.values_mut() {
            for d in days.values_mut() {
                if d.tail_len() > 0 || d.dead > 0 {
                    d.merge();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 20_000 * DAY_MS;

    fn sel(ff: u8, from_ms: i64, to_ms: i64, lo: f64, hi: f64) -> Select {
        Select {
            metric: MetricName::Lcp,
            ff,
            from_ms,
            to_ms,
            lo,
            hi,
            hi_inclusive: false,
        }
    }

    #[test]
    fn add_many_equals_adding_one_by_one() {
        let mut rng = crate::testutil::Rng::new(12);
        let reports: Vec<(Place, f64)> = (0..5000)
            .map(|_| {
                let p = Place {
                    site: 1,
                    page: 1 + rng.below(4) as u32,
                    metric: MetricName::Lcp,
                    ff: rng.below(4) as u8,
                    received_at_ms: T0 - rng.below(3 * DAY_MS as u64) as i64,
                };
                (p, rng.below(3000) as f64)
            })
            .collect();
        let (mut one, mut many) = (Values::new(), Values::new());
        for (p, v) in &reports {
            one.add(p.page, p.metric, p.ff, p.received_at_ms, *v);
        }
        many.add_many(&reports);
        assert_eq!(one.len(), many.len());
        for ff in [0, 1, 2, 3, FF_ALL] {
            for (lo, hi) in [(0.0, 3000.0), (500.0, 700.0), (2999.0, 3000.0)] {
                let s = sel(ff, T0 - 2 * DAY_MS - 5, T0, lo, hi);
                let mut a = one.select(&[1, 2, 3, 4], &s);
                let mut b = many.select(&[1, 2, 3, 4], &s);
                a.sort_by(f64::total_cmp);
                b.sort_by(f64::total_cmp);
                assert_eq!(a, b, "ff {ff} {lo}..{hi}");
                assert!(!a.is_empty() || lo > 2000.0);
            }
        }
    }

    #[test]
    fn select_matches_brute_force_through_adds_removes_and_merges() {
        let mut values = Values::new();
        let mut all: Vec<(u32, u8, i64, f64)> = Vec::new();
        let mut rng = crate::testutil::Rng::new(7);
        for i in 0..20_000 {
            let page = rng.below(3) as u32;
            let ff = rng.below(4) as u8;
            let at = T0 + rng.below(3 * DAY_MS as u64) as i64;
            let value = rng.below(500) as f64 / 4.0;
            values.add(page, MetricName::Lcp, ff, at, value);
            all.push((page, ff, at, value));
            if i % 5 == 0 {
                let k = rng.below(all.len() as u64) as usize;
                let (p, f, a, v) = all.swap_remove(k);
                assert!(values.remove(p, MetricName::Lcp, f, a, v));
            }
            if i % 997 == 0 {
                for (ff, from, to, lo, hi) in [
                    (FF_ALL, T0, T0 + 3 * DAY_MS, 0.0, 1000.0),
                    (2, T0 + DAY_MS / 3, T0 + 2 * DAY_MS + 5, 10.0, 60.25),
                    (FF_ALL, T0 + 7, T0 + DAY_MS, 30.0, 30.5),
                ] {
                    for pages in [&[0u32][..], &[0, 2][..]] {
                        // The selection by brute force over every live value.
                        let brute = |s: &Select| -> Vec<f64> {
                            all.iter()
                                .filter(|(p, f, a, v)| {
                                    pages.contains(p)
                                        && (s.ff == FF_ALL || *f == s.ff)
                                        && (s.from_ms..s.to_ms).contains(a)
                                        && *v >= s.lo
                                        && (*v < s.hi || (s.hi_inclusive && *v == s.hi))
                                })
                                .map(|x| x.3)
                                .collect()
                        };
                        let s = sel(ff, from, to, lo, hi);
                        let mut want = brute(&s);
                        want.sort_by(f64::total_cmp);
                        assert_eq!(values.select(pages, &s), want);
                        assert_eq!(values.count(pages, &s), want.len() as u64);
                        let inclusive = Select {
                            hi_inclusive: true,
                            ..s
                        };
                        assert_eq!(values.count(pages, &inclusive), brute(&inclusive).len() as u64);
                    }
                }
            }
        }
        assert_eq!(values.len(), all.len() as u64);
        values.finish();
        let s = sel(FF_ALL, T0, T0 + 3 * DAY_MS, 0.0, f64::INFINITY);
        assert_eq!(values.count(&[0, 1, 2], &s), all.len() as u64);
    }

    #[test]
    fn saved_days_load_back_and_only_changed_days_are_saved() {
        let mut values = Values::new();
        for (i, v) in [5.0, 1.0, 3.0, 0.0, 2.5].into_iter().enumerate() {
            values.add(1, MetricName::Lcp, (i % 4) as u8, T0 + i as i64 * 1000, v);
        }
        values.add(2, MetricName::Cls, 3, T0 + DAY_MS + 7, 0.25);
        values.add(2, MetricName::Cls, 3, T0 + 2 * DAY_MS, 0.5);
        assert!(values.remove(2, MetricName::Cls, 3, T0 + 2 * DAY_MS, 0.5));
        let saved = values.take_changed();
        assert_eq!(saved.len(), 3);
        assert!(saved
            .iter()
            .any(|s| s.2 == Resolution::Day.bucket(T0) + 2 && s.3.is_none()));
        assert!(values.take_changed().is_empty(), "nothing changed since");

        let mut loaded = Values::new();
        for (page, metric, day, blob) in &saved {
            if let Some(blob) = blob {
                assert!(loaded.load_day(*page, *metric, *day, blob));
            }
        }
        assert!(loaded.take_changed().is_empty(), "loaded days are not changed");
        assert_eq!(loaded.len(), 6);
        for (pages, metric, ff) in [
            ([1], MetricName::Lcp, FF_ALL),
            ([1], MetricName::Lcp, 1),
            ([2], MetricName::Cls, 3),
        ] {
            let s = Select {
                metric,
                ..sel(ff, T0, T0 + 3 * DAY_MS, 0.0, 100.0)
            };
            assert_eq!(loaded.select(&pages, &s), values.select(&pages, &s));
        }
        loaded.add(1, MetricName::Lcp, 1, T0 + 5, 4.0);
        assert_eq!(loaded.take_changed().len(), 1);

        let blob = saved
            .iter()
            .find_map(|s| s.3.clone().filter(|b| b.len() >= 26))
            .unwrap();
        assert!(!Values::new().load_day(1, MetricName::Lcp, 0, &blob[1..]));
        let mut unsorted = blob[13..26].to_vec();
        unsorted.extend_from_slice(&blob[..13]);
        assert!(!Values::new().load_day(1, MetricName::Lcp, 0, &unsorted));
    }

    #[test]
    fn remove_refuses_strangers_and_prune_drops_old_days() {
        let mut values = Values::new();
        values.add(1, MetricName::Lcp, 1, T0 + 5, 100.0);
        values.add(1, MetricName::Lcp, 1, T0 + DAY_MS + 5, 200.0);
        assert!(!values.remove(1, MetricName::Lcp, 1, T0 + 6, 100.0));
        assert!(!values.remove(1, MetricName::Lcp, 2, T0 + 5, 100.0));
        assert!(!values.remove(1, MetricName::Cls, 1, T0 + 5, 100.0));
        assert!(!values.remove(1, MetricName::Lcp, 1, T0 + 5, 100.5));
        assert_eq!(values.len(), 2);
        values.add(3, MetricName::Lcp, 1, T0 + 5, 100.0);
        assert!(values.remove(3, MetricName::Lcp, 1, T0 + 5, 100.0));
        assert_eq!(values.pages(), [1].into_iter().collect());
        values.prune(Resolution::Day.bucket(T0) + 1);
        assert_eq!(values.len(), 1);
        let all = sel(FF_ALL, T0, T0 + 2 * DAY_MS, 0.0, 1e9);
        assert_eq!(values.select(&[1], &all), vec![200.0]);
        assert!(values.remove(1, MetricName::Lcp, 1, T0 + DAY_MS + 5, 200.0));
        assert!(values.is_empty());
        assert_eq!(values.select(&[1], &all), Vec::<f64>::new());
        // -0.0 and 0.0 are the same value.
        values.add(1, MetricName::Cls, 0, T0, -0.0);
        assert!(values.remove(1, MetricName::Cls, 0, T0, 0.0));
        assert!(values.is_empty());
    }
}
