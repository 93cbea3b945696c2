//! The SQLite store's aggregates in memory: hourly and daily [`Cell`]s per
//! (page or whole site, metric, form factor or all). Reads merge them per
//! window; the writer updates them after each commit. They are a function
//! of the raw reports, saved to the `aggregates` table at shutdown and
//! rebuilt from the raw reports after a crash.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use beacon::{FormFactor, MetricName};

use crate::aggregate::{Cell, Span};
use crate::sketch::bin_of;
use crate::time::Resolution;

/// Form factor codes, as stored: 0 when the beacon named none.
pub const FF_UNKNOWN: u8 = 0;
/// The code of "all form factors together" (never stored in raw reports).
pub const FF_ALL: u8 = 255;

pub fn ff_code(ff: Option<FormFactor>) -> u8 {
    match ff {
        None => FF_UNKNOWN,
        Some(FormFactor::Phone) => 1,
        Some(FormFactor::Tablet) => 2,
        Some(FormFactor::Desktop) => 3,
    }
}

pub fn ff_from_code(code: u8) -> Option<FormFactor> {
    match code {
        1 => Some(FormFactor::Phone),
        2 => Some(FormFactor::Tablet),
        3 => Some(FormFactor::Desktop),
        _ => None,
    }
}

/// A query's form factor selector as a code.
pub fn ff_selector(ff: Option<FormFactor>) -> u8 {
    ff.map(|f| ff_code(Some(f))).unwrap_or(FF_ALL)
}

/// A fast hasher for the small integer keys of the in-memory aggregates
/// (the "Fx" hash of rustc and Firefox). Those keys are ids the store
/// hands out, not strings a client chooses, so SipHash's protection
/// against chosen collisions buys nothing, and it was a noticeable part of
/// the writer's time (several look-ups per report).
#[derive(Clone, Copy, Default)]
pub struct FxHasher(u64);

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
        for &b in chunks.remainder() {
            self.add(b as u64);
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(i as u64);
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(i as u64);
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    /// Rotated so that the well-mixed high bits pick the bucket (the
    /// table indexes by the low bits; a product's low bits only depend on
    /// the low bits of the word hashed). As in `rustc-hash` 2.
    #[inline]
    fn finish(&self) -> u64 {
        self.0.rotate_left(26)
    }
}

/// A `HashMap` with [`FxHasher`].
pub type FxHashMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    Site(u32),
    Page(u32),
}

/// One series: hourly and daily cells of (scope, metric, form factor code
/// or [`FF_ALL`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct SeriesKey {
    scope: Scope,
    metric: MetricName,
    ff: u8,
}

/// The series of one (scope, metric), every form factor: a report finds
/// both of its series of a scope with one hash look-up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct GroupKey {
    scope: Scope,
    metric: MetricName,
}

impl std::hash::Hash for GroupKey {
    /// One word (the key packed) instead of four: hashing is a noticeable
    /// part of a look-up.
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        let (kind, id) = match self.scope {
            Scope::Site(id) => (0u64, id),
            Scope::Page(id) => (1u64, id),
        };
        state.write_u64((id as u64) << 8 | kind << 4 | self.metric as u64);
    }
}

#[derive(Debug, Default)]
struct Slot {
    cell: Cell,
    /// Changed since loaded or saved (only page cells of one form factor
    /// are saved; the rest are derived when loading).
    dirty: bool,
}

/// No bucket: the key of [`Buckets::newest`] when there are none.
const NONE: i64 = i64::MIN;

/// Values by time bucket. Reports arrive in time order, so the one to
/// update is almost always the newest: kept inline (in the series itself),
/// found without a search and without one more cache miss; the older ones
/// are in an array (not a tree's nodes). Also used by `Values` for days.
#[derive(Debug)]
pub(super) struct Buckets<T> {
    /// The buckets before `newest_key`, ascending.
    older: Vec<(i64, T)>,
    /// [`NONE`] when there are no buckets at all.
    newest_key: i64,
    newest: T,
}

impl<T: Default> Default for Buckets<T> {
    fn default() -> Buckets<T> {
        Buckets {
            older: Vec::new(),
            newest_key: NONE,
            newest: T::default(),
        }
    }
}

/// What a bucket's value does when a newer bucket comes: its time is
/// over, so it will rarely change again; a chance to give back the room
/// kept for growing.
pub(super) trait Close {
    fn close(&mut self);
}

impl Close for Slot {
    fn close(&mut self) {
        self.cell.sketch.shrink_to_fit();
    }
}

impl<T: Default + Close> Buckets<T> {
    pub(super) fn is_empty(&self) -> bool {
        self.newest_key == NONE
    }

    /// The newest bucket's value (a default one when there is none).
    #[inline]
    pub(super) fn newest(&self) -> &T {
        &self.newest
    }

    /// The value of bucket `b`, made if missing.
    #[inline]
    pub(super) fn entry(&mut self, b: i64) -> &mut T {
        if b == self.newest_key {
            return &mut self.newest;
        }
        self.entry_slow(b)
    }

    #[inline(never)]
    fn entry_slow(&mut self, b: i64) -> &mut T {
        debug_assert_ne!(b, NONE);
        if b > self.newest_key {
            if self.newest_key != NONE {
                // Grown by a quarter, not doubled: the array holds up to a
                // week of hours in every series.
                if self.older.len() == self.older.capacity() {
                    self.older.reserve_exact(self.older.len() / 4 + 4);
                }
                self.newest.close();
                self.older.push((self.newest_key, std::mem::take(&mut self.newest)));
            }
            self.newest_key = b;
            return &mut self.newest;
        }
        let i = match self.older.binary_search_by_key(&b, |e| e.0) {
            Ok(i) => i,
            Err(i) => {
                self.older.insert(i, (b, T::default()));
                i
            }
        };
        &mut self.older[i].1
    }

    pub(super) fn get(&self, b: i64) -> Option<&T> {
        if b >= self.newest_key {
            return (b == self.newest_key).then_some(&self.newest);
        }
        let i = self.older.binary_search_by_key(&b, |e| e.0).ok()?;
        Some(&self.older[i].1)
    }

    pub(super) fn get_mut(&mut self, b: i64) -> Option<&mut T> {
        if b >= self.newest_key {
            return (b == self.newest_key).then_some(&mut self.newest);
        }
        let i = self.older.binary_search_by_key(&b, |e| e.0).ok()?;
        Some(&mut self.older[i].1)
    }

    /// `(bucket, value)` of buckets `first..=last`, ascending.
    pub(super) fn range(&self, first: i64, last: i64) -> impl Iterator<Item = (i64, &T)> + Clone {
        let start = self.first_at_or_after(first);
        let end = start + self.older[start..].partition_point(|e| e.0 <= last);
        let newest = (self.newest_key != NONE && (first..=last).contains(&self.newest_key))
            .then_some((self.newest_key, &self.newest));
        self.older[start..end].iter().map(|(b, v)| (*b, v)).chain(newest)
    }

    /// The index in `older` of the first bucket `>= b`. Searched from the
    /// end (reads are mostly of recent buckets): fewer cache misses than a
    /// binary search of the whole array.
    fn first_at_or_after(&self, b: i64) -> usize {
        let v = &self.older;
        let mut step = 1;
        let mut hi = v.len();
        while hi > 0 {
            let lo = hi.saturating_sub(step);
            if v[lo].0 < b {
                return lo + 1 + v[lo + 1..hi].partition_point(|e| e.0 < b);
            }
            hi = lo;
            step *= 2;
        }
        0
    }

    /// `(bucket, value)` of every bucket, ascending.
    pub(super) fn iter(&self) -> impl Iterator<Item = (i64, &T)> {
        self.range(i64::MIN + 1, i64::MAX)
    }

    /// `(bucket, value)` of every bucket, ascending.
    pub(super) fn iter_mut(&mut self) -> impl Iterator<Item = (i64, &mut T)> {
        let newest = (self.newest_key != NONE).then_some((self.newest_key, &mut self.newest));
        self.older.iter_mut().map(|(b, v)| (*b, v)).chain(newest)
    }

    pub(super) fn values_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.iter_mut().map(|(_, v)| v)
    }

    /// Drops the buckets before `b`, returning them, ascending.
    pub(super) fn split_before(&mut self, b: i64) -> Vec<(i64, T)> {
        if self.newest_key < b {
            let mut all = std::mem::take(self);
            if all.newest_key != NONE {
                all.older.push((all.newest_key, all.newest));
            }
            return all.older;
        }
        let n = self.older.partition_point(|e| e.0 < b);
        if n == 0 {
            return Vec::new();
        }
        let dropped = self.older.drain(..n).collect();
        self.shrink();
        dropped
    }

    /// Keeps the buckets whose value `keep` says so.
    pub(super) fn retain(&mut self, mut keep: impl FnMut(&T) -> bool) {
        let len = self.older.len();
        self.older.retain(|(_, v)| keep(v));
        if self.newest_key != NONE && !keep(&self.newest) {
            match self.older.pop() {
                Some((b, v)) => {
                    self.newest_key = b;
                    self.newest = v;
                }
                None => *self = Buckets::default(),
            }
        }
        if self.older.len() < len {
            self.shrink();
        }
    }

    fn shrink(&mut self) {
        if self.older.capacity() > self.older.len() + self.older.len() / 2 + 8 {
            self.older.shrink_to_fit();
        }
    }
}

impl Buckets<Slot> {
    /// The cells of buckets `first..=last`, ascending.
    fn cells(&self, first: i64, last: i64) -> impl Iterator<Item = &Cell> + Clone {
        self.range(first, last).map(|(_, slot)| &slot.cell)
    }
}

#[derive(Debug, Default)]
struct Series {
    hours: Buckets<Slot>,
    days: Buckets<Slot>,
    /// For all-form-factor series: the merge of the whole buckets of the
    /// standard windows, kept up to date, so that a summary adds just the
    /// current bucket instead of merging 25 or 29 cells per page.
    rolling: Vec<Rolling>,
    /// Changes when the series does, so that exact results computed from
    /// it can be kept until then: the [`Cells`]' change count at its last
    /// change (so never the same number for different contents, even
    /// after the series was dropped and made again).
    version: u64,
}

/// The merge of buckets `first..=last` of one resolution.
#[derive(Debug)]
struct Rolling {
    resolution: Resolution,
    first: i64,
    last: i64,
    cell: Cell,
}

/// The rolling merges kept: the whole buckets before the current one of
/// the `24h`, `7d` and `28d` windows.
const ROLLING: [(Resolution, i64); 3] = [(Resolution::Hour, 24), (Resolution::Day, 7), (Resolution::Day, 28)];

impl Series {
    /// A series with no cells is as good as none (and is dropped when
    /// cells are pruned or saved).
    fn is_empty(&self) -> bool {
        self.hours.is_empty() && self.days.is_empty()
    }

    fn buckets(&self, r: Resolution) -> &Buckets<Slot> {
        match r {
            Resolution::Hour => &self.hours,
            Resolution::Day => &self.days,
        }
    }

    fn buckets_mut(&mut self, r: Resolution) -> &mut Buckets<Slot> {
        match r {
            Resolution::Hour => &mut self.hours,
            Resolution::Day => &mut self.days,
        }
    }

    /// Makes the rolling merges ending before the buckets `current`, from
    /// the cells (none for a new series).
    fn start_rolling(&mut self, current: (i64, i64)) {
        self.rolling = ROLLING
            .iter()
            .map(|&(r, len)| {
                let last = match r {
                    Resolution::Hour => current.0,
                    Resolution::Day => current.1,
                } - 1;
                let first = last - len + 1;
                Rolling {
                    resolution: r,
                    first,
                    last,
                    cell: Cell::merged(self.buckets(r).cells(first, last)),
                }
            })
            .collect();
    }

    /// Adds a value to bucket `b` of resolution `r`, whose current bucket
    /// is `current`, and to the rolling merges holding it.
    #[inline]
    fn add(&mut self, r: Resolution, b: i64, current: i64, metric: MetricName, value: f64) {
        let slot = self.buckets_mut(r).entry(b);
        slot.cell.add(metric, value);
        slot.dirty = true;
        // The merges end before the current bucket: the usual report's
        // bucket is in none of them.
        if b < current {
            for rolling in &mut self.rolling {
                if rolling.resolution == r && (rolling.first..=rolling.last).contains(&b) {
                    rolling.cell.add(metric, value);
                }
            }
        }
    }

    fn remove(&mut self, r: Resolution, b: i64, metric: MetricName, value: f64) {
        if let Some(slot) = self.buckets_mut(r).get_mut(b) {
            slot.cell.remove(metric, value);
            slot.dirty = true;
            for rolling in &mut self.rolling {
                if rolling.resolution == r && (rolling.first..=rolling.last).contains(&b) {
                    rolling.cell.remove(metric, value);
                }
            }
        }
    }
}

/// Reports [`Cells::add_many`] reads ahead.
const ADD_CHUNK: usize = 32;

/// The index of [`FF_ALL`] in [`Group::series`].
const ALL: usize = 4;

/// The series of one (scope, metric).
#[derive(Debug, Default)]
struct Group {
    /// Form factor codes 0 to 3, then [`FF_ALL`].
    series: [Series; 5],
    /// Series of other codes (none unless a database holds odd ones).
    other: Vec<(u8, Series)>,
}

impl Group {
    #[inline]
    fn get(&self, ff: u8) -> Option<&Series> {
        match ff {
            0..=3 => Some(&self.series[ff as usize]),
            FF_ALL => Some(&self.series[ALL]),
            _ => self.other.iter().find(|o| o.0 == ff).map(|o| &o.1),
        }
    }

    #[inline]
    fn get_mut(&mut self, ff: u8) -> Option<&mut Series> {
        match ff {
            0..=3 => Some(&mut self.series[ff as usize]),
            FF_ALL => Some(&mut self.series[ALL]),
            _ => self.other.iter_mut().find(|o| o.0 == ff).map(|o| &mut o.1),
        }
    }

    /// The series of `ff`, made if missing.
    #[inline]
    fn entry(&mut self, ff: u8) -> &mut Series {
        if let 0..=3 | FF_ALL = ff {
            return self.get_mut(ff).expect("a fixed code");
        }
        let i = match self.other.iter().position(|o| o.0 == ff) {
            Some(i) => i,
            None => {
                self.other.push((ff, Series::default()));
                self.other.len() - 1
            }
        };
        &mut self.other[i].1
    }

    /// `(code, series)` of every series, empty ones included.
    fn iter_mut(&mut self) -> impl Iterator<Item = (u8, &mut Series)> {
        let codes = [0u8, 1, 2, 3, FF_ALL];
        codes
            .into_iter()
            .zip(self.series.iter_mut())
            .chain(self.other.iter_mut().map(|(ff, s)| (*ff, s)))
    }

    fn is_empty(&self) -> bool {
        self.series.iter().all(Series::is_empty) && self.other.iter().all(|o| o.1.is_empty())
    }

    /// Resets the series left without cells (dropping their rolling
    /// merges and version, as if they had never been).
    fn drop_empty_series(&mut self) {
        for s in &mut self.series {
            if s.is_empty() {
                *s = Series::default();
            }
        }
        self.other.retain(|o| !o.1.is_empty());
    }
}

/// Where one report counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Place {
    pub site: u32,
    pub page: u32,
    pub metric: MetricName,
    pub ff: u8,
    pub received_at_ms: i64,
}

impl Place {
    /// The series a report updates: its page and its site, each for its
    /// form factor and for all together (no site series for an unknown
    /// form factor).
    fn series(&self) -> impl Iterator<Item = SeriesKey> + '_ {
        let key = |scope, ff| SeriesKey {
            scope,
            metric: self.metric,
            ff,
        };
        [
            Some(key(Scope::Page(self.page), self.ff)),
            Some(key(Scope::Page(self.page), FF_ALL)),
            (self.ff != FF_UNKNOWN).then(|| key(Scope::Site(self.site), self.ff)),
            Some(key(Scope::Site(self.site), FF_ALL)),
        ]
        .into_iter()
        .flatten()
    }
}

/// One saved cell: a page's, for one form factor code, one bucket.
#[derive(Clone, Debug, PartialEq)]
pub struct BaseCell {
    pub page: u32,
    pub metric: MetricName,
    pub ff: u8,
    pub resolution: Resolution,
    pub bucket: i64,
    /// `None`: the cell is empty now (delete the saved row).
    pub cell: Option<Cell>,
}

#[derive(Debug)]
pub struct Cells {
    /// Boxed: the table stays small (and in the caches), a group's
    /// series and their newest cells are together in one block.
    groups: FxHashMap<GroupKey, Box<Group>>,
    /// Reports received before this get no hourly cells.
    hour_horizon_ms: i64,
    /// The current hour and day buckets the rolling merges end before.
    current: (i64, i64),
    /// Counts changes (see `Series::version`).
    changes: u64,
}

impl Cells {
    pub fn new(hour_horizon_ms: i64) -> Cells {
        Cells {
            groups: FxHashMap::default(),
            hour_horizon_ms,
            current: (i64::MIN, i64::MIN),
            changes: 0,
        }
    }

    fn current_bucket(&self, r: Resolution) -> i64 {
        match r {
            Resolution::Hour => self.current.0,
            Resolution::Day => self.current.1,
        }
    }

    fn series(&self, key: SeriesKey) -> Option<&Series> {
        self.groups
            .get(&GroupKey {
                scope: key.scope,
                metric: key.metric,
            })?
            .get(key.ff)
            .filter(|s| !s.is_empty())
    }

    fn series_mut(&mut self, key: SeriesKey) -> Option<&mut Series> {
        self.groups
            .get_mut(&GroupKey {
                scope: key.scope,
                metric: key.metric,
            })?
            .get_mut(key.ff)
            .filter(|s| !s.is_empty())
    }

    /// Moves the rolling merges to end just before the buckets of `now_ms`
    /// (cheap unless the hour or day changed).
    pub fn advance(&mut self, now_ms: i64) {
        let now = (Resolution::Hour.bucket(now_ms), Resolution::Day.bucket(now_ms));
        if now == self.current {
            return;
        }
        self.current = now;
        let current = |r: Resolution| match r {
            Resolution::Hour => now.0,
            Resolution::Day => now.1,
        };
        for group in self.groups.values_mut() {
            for (_, series) in group.iter_mut() {
                for i in 0..series.rolling.len() {
                    let r = series.rolling[i].resolution;
                    let last = current(r) - 1;
                    let (old_first, old_last) = (series.rolling[i].first, series.rolling[i].last);
                    if old_last == last {
                        continue;
                    }
                    let first = last - (old_last - old_first);
                    let old_cell = std::mem::take(&mut series.rolling[i].cell);
                    let buckets = series.buckets(r);
                    let slid = if old_first <= first && first <= old_last + 1 {
                        // Slide: drop the buckets that left, add those that closed.
                        let mut cell = old_cell;
                        let ok = buckets.cells(old_first, first - 1).all(|c| cell.subtract(c));
                        for c in buckets.cells(old_last + 1, last) {
                            cell.merge(c);
                        }
                        ok.then_some(cell)
                    } else {
                        None
                    };
                    let cell = slid.unwrap_or_else(|| Cell::merged(buckets.cells(first, last)));
                    series.rolling[i] = Rolling {
                        resolution: r,
                        first,
                        last,
                        cell,
                    };
                }
            }
        }
    }

    /// Builds every rolling merge anew, ending before the buckets of
    /// `now_ms` (after loading or rebuilding).
    pub fn start_rolling(&mut self, now_ms: i64) {
        let current = (Resolution::Hour.bucket(now_ms), Resolution::Day.bucket(now_ms));
        self.current = current;
        for group in self.groups.values_mut() {
            for (ff, series) in group.iter_mut() {
                if ff == FF_ALL && !series.is_empty() {
                    series.start_rolling(current);
                } else {
                    series.rolling = Vec::new();
                }
            }
        }
    }

    pub fn add(&mut self, place: &Place, value: f64) {
        let at = place.received_at_ms;
        let hour = (at >= self.hour_horizon_ms).then(|| Resolution::Hour.bucket(at));
        let day = Resolution::Day.bucket(at);
        let current = self.current;
        self.changes += 1;
        let version = self.changes;
        let metric = place.metric;
        let add = |series: &mut Series| {
            series.version = version;
            if let Some(h) = hour {
                series.add(Resolution::Hour, h, current.0, metric, value);
            }
            series.add(Resolution::Day, day, current.1, metric, value);
        };
        for (scope, own) in [
            (Scope::Page(place.page), true),
            (Scope::Site(place.site), place.ff != FF_UNKNOWN),
        ] {
            let group = self.groups.entry(GroupKey { scope, metric }).or_default();
            if own {
                add(group.entry(place.ff));
            }
            let all = &mut group.series[ALL];
            if all.rolling.is_empty() && current.0 != i64::MIN {
                all.start_rolling(current);
            }
            add(all);
        }
    }

    /// Adds many reports: the same as [`Cells::add`] of each in turn, but
    /// faster. Adding is mostly waiting for memory (the cells of a page
    /// not seen for a while are not in the caches); here the cells a few
    /// reports will change are read first, so that their cache misses
    /// overlap instead of coming one after another.
    pub fn add_many(&mut self, reports: &[(Place, f64)]) {
        for chunk in reports.chunks(ADD_CHUNK) {
            let mut sink = 0u64;
            for (place, _) in chunk {
                sink = sink.wrapping_add(self.touch_series(place));
            }
            for (place, value) in chunk {
                sink = sink.wrapping_add(self.touch(place, *value));
            }
            std::hint::black_box(sink);
            for (place, value) in chunk {
                self.add(place, *value);
            }
        }
    }

    /// The page's newest cells that adding at `place` will use (the
    /// site's are in the caches anyway).
    #[inline]
    fn newest_page_cells<'a>(&'a self, place: &Place) -> impl Iterator<Item = &'a Cell> + 'a {
        let key = GroupKey {
            scope: Scope::Page(place.page),
            metric: place.metric,
        };
        let group = self.groups.get(&key);
        [place.ff, FF_ALL]
            .into_iter()
            .filter_map(move |ff| group?.get(ff))
            .flat_map(|series| [&series.hours.newest().cell, &series.days.newest().cell])
    }

    /// Reads the cells (not their sketches' bins) that adding at `place`
    /// will use, returning a number that depends on them so that the reads
    /// are not optimized away.
    #[inline]
    fn touch_series(&self, place: &Place) -> u64 {
        self.newest_page_cells(place).fold(0u64, |sum, cell| {
            sum.wrapping_add(cell.ratings.good ^ cell.sketch.bin_len() as u64)
        })
    }

    /// Reads what adding `value` at `place` will use of those cells,
    /// their bin of `value` included.
    #[inline]
    fn touch(&self, place: &Place, value: f64) -> u64 {
        self.newest_page_cells(place).fold(0u64, |sum, cell| {
            let bin = if value > 0.0 {
                cell.sketch.bin_count(bin_of(value))
            } else {
                cell.sketch.zero_count()
            };
            sum.wrapping_add(cell.ratings.good).wrapping_add(bin)
        })
    }

    fn resolutions(&self, at_ms: i64) -> &'static [Resolution] {
        if at_ms >= self.hour_horizon_ms {
            &[Resolution::Hour, Resolution::Day]
        } else {
            &[Resolution::Day]
        }
    }

    /// Removes a value added before at `place`. False if the page's cell
    /// does not hold it (then nothing changes).
    pub fn remove(&mut self, place: &Place, value: f64) -> bool {
        let resolutions = self.resolutions(place.received_at_ms);
        let day = Resolution::Day.bucket(place.received_at_ms);
        let holds = self
            .series(SeriesKey {
                scope: Scope::Page(place.page),
                metric: place.metric,
                ff: place.ff,
            })
            .and_then(|s| s.days.get(day))
            .is_some_and(|slot| slot.cell.holds(place.metric, value));
        if !holds {
            return false;
        }
        self.changes += 1;
        let version = self.changes;
        for key in place.series() {
            let Some(series) = self.series_mut(key) else {
                continue;
            };
            series.version = version;
            for &r in resolutions {
                series.remove(r, r.bucket(place.received_at_ms), place.metric, value);
            }
        }
        true
    }

    /// Adds a saved page cell (see [`Cells::take_changed_base_cells`]) and
    /// what derives from it (all form factors, the whole site).
    pub fn load(&mut self, site: u32, base: &BaseCell, cell: &Cell) {
        let place = Place {
            site,
            page: base.page,
            metric: base.metric,
            ff: base.ff,
            received_at_ms: base.resolution.start(base.bucket),
        };
        for key in place.series() {
            self.groups
                .entry(GroupKey {
                    scope: key.scope,
                    metric: key.metric,
                })
                .or_default()
                .entry(key.ff)
                .buckets_mut(base.resolution)
                .entry(base.bucket)
                .cell
                .merge(cell);
        }
    }

    /// The merge of the cells of `span`.
    pub fn window(&self, scope: Scope, metric: MetricName, ff: u8, span: &Span) -> Cell {
        let Some(series) = self.series(SeriesKey { scope, metric, ff }) else {
            return Cell::default();
        };
        if span.is_empty() {
            return Cell::default();
        }
        let buckets = series.buckets(span.resolution);
        // A standard window: its rolling merge plus the current bucket.
        if span.last == self.current_bucket(span.resolution) {
            let rolling = series
                .rolling
                .iter()
                .find(|r| r.resolution == span.resolution && (r.first, r.last) == (span.first, span.last - 1));
            if let Some(r) = rolling {
                let mut cell = r.cell.clone();
                if let Some(slot) = buckets.get(span.last) {
                    cell.merge(&slot.cell);
                }
                return cell;
            }
        }
        let mut range = buckets.cells(span.first, span.last).filter(|c| !c.is_empty());
        match (range.next(), range.next()) {
            (None, _) => Cell::default(),
            (Some(one), None) => one.clone(),
            (Some(a), Some(b)) => Cell::merged([a, b].into_iter().chain(range)),
        }
    }

    /// The change count of a series (see `Series::version`); 0 if none.
    pub fn version(&self, scope: Scope, metric: MetricName, ff: u8) -> u64 {
        self.series(SeriesKey { scope, metric, ff }).map_or(0, |s| s.version)
    }

    /// How many values of `span` fall in sketch bin `key`.
    pub fn bin_count(&self, scope: Scope, metric: MetricName, ff: u8, span: &Span, key: u32) -> u64 {
        let Some(series) = self.series(SeriesKey { scope, metric, ff }) else {
            return 0;
        };
        if span.is_empty() {
            return 0;
        }
        series
            .buckets(span.resolution)
            .cells(span.first, span.last)
            .map(|c| c.sketch.bin_count(key))
            .sum()
    }

    /// Drops daily cells before bucket `day_before` and hourly cells of
    /// reports received before `hour_horizon_ms`.
    pub fn prune(&mut self, day_before: i64, hour_horizon_ms: i64) {
        self.hour_horizon_ms = self.hour_horizon_ms.max(hour_horizon_ms);
        let hour_before = Resolution::Hour.bucket(self.hour_horizon_ms);
        self.groups.retain(|_, group| {
            for (_, s) in group.iter_mut() {
                s.days.split_before(day_before);
                s.hours.split_before(hour_before);
            }
            group.drop_empty_series();
            !group.is_empty()
        });
    }

    pub fn hour_horizon_ms(&self) -> i64 {
        self.hour_horizon_ms
    }

    /// Marks every cell as changed (after rebuilding from raw reports).
    pub fn mark_all_dirty(&mut self) {
        for group in self.groups.values_mut() {
            for (_, s) in group.iter_mut() {
                for slot in s.days.values_mut().chain(s.hours.values_mut()) {
                    slot.dirty = true;
                }
            }
        }
    }

    /// The saved cells (pages, per form factor code) changed since the
    /// last call, and forgets their change. Empty cells are dropped here.
    pub fn take_changed_base_cells(&mut self) -> Vec<BaseCell> {
        let mut out = Vec::new();
        for (key, group) in self.groups.iter_mut() {
            if let Scope::Page(page) = key.scope {
                for (ff, series) in group.iter_mut() {
                    for r in [Resolution::Hour, Resolution::Day] {
                        for (bucket, slot) in series.buckets_mut(r).iter_mut() {
                            if ff != FF_ALL && slot.dirty {
                                out.push(BaseCell {
                                    page,
                                    metric: key.metric,
                                    ff,
                                    resolution: r,
                                    bucket,
                                    cell: (!slot.cell.is_empty()).then(|| slot.cell.clone()),
                                });
                            }
                            slot.dirty = false;
                        }
                    }
                }
            }
        }
        self.groups.retain(|_, group| {
            for (_, s) in group.iter_mut() {
                s.days.retain(|slot| !slot.cell.is_empty());
                s.hours.retain(|slot| !slot.cell.is_empty());
            }
            group.drop_empty_series();
            !group.is_empty()
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::{DAY_MS, HOUR_MS};

    fn place(page: u32, ff: u8, at: i64) -> Place {
        Place {
            site: 1,
            page,
            metric: MetricName::Lcp,
            ff,
            received_at_ms: at,
        }
    }

    fn span(r: Resolution, first_ms: i64, last_ms: i64) -> Span {
        Span {
            resolution: r,
            first: r.bucket(first_ms),
            last: r.bucket(last_ms),
        }
    }

    #[test]
    fn add_many_equals_adding_one_by_one() {
        let mut rng = crate::testutil::Rng::new(11);
        let start = 20_000 * DAY_MS + 5 * HOUR_MS;
        let (mut one, mut many) = (Cells::new(start - 8 * DAY_MS), Cells::new(start - 8 * DAY_MS));
        one.start_rolling(start);
        many.start_rolling(start);
        let reports: Vec<(Place, f64)> = (0..3000)
            .map(|_| {
                let at = start - (rng.below(10 * 24) as i64) * HOUR_MS;
                let mut p = place(1 + rng.below(5) as u32, rng.below(4) as u8, at);
                p.metric = MetricName::ALL[rng.below(5) as usize];
                let v = if rng.below(4) == 0 {
                    0.0
                } else {
                    rng.f64_log(0.01, 9000.0)
                };
                (p, v)
            })
            .collect();
        for (p, v) in &reports {
            one.add(p, *v);
        }
        many.add_many(&reports);
        let spans = [
            span(Resolution::Day, start - 9 * DAY_MS, start),
            span(Resolution::Day, start - 3 * DAY_MS, start - DAY_MS),
            span(Resolution::Hour, start - 30 * HOUR_MS, start),
            span(Resolution::Hour, start, start),
        ];
        let scopes = [1, 2, 3, 4, 5].map(Scope::Page).into_iter().chain([Scope::Site(1)]);
        for scope in scopes {
            for metric in MetricName::ALL {
                for ff in [0, 1, 2, 3, FF_ALL] {
                    for s in &spans {
                        assert_eq!(
                            one.window(scope, metric, ff, s),
                            many.window(scope, metric, ff, s),
                            "{scope:?} {metric:?} {ff} {s:?}"
                        );
                    }
                }
            }
        }
        assert_eq!(
            one.take_changed_base_cells().len(),
            many.take_changed_base_cells().len()
        );
    }

    #[test]
    fn windows_merge_buckets_pages_and_form_factors() {
        let mut c = Cells::new(0);
        let day = 20_000 * DAY_MS;
        c.add(&place(1, 1, day + HOUR_MS), 1000.0);
        c.add(&place(1, 3, day + 2 * HOUR_MS), 3000.0);
        c.add(&place(2, FF_UNKNOWN, day - DAY_MS), 5000.0);
        let all = span(Resolution::Day, day - DAY_MS, day);
        assert_eq!(c.window(Scope::Site(1), MetricName::Lcp, FF_ALL, &all).count(), 3);
        assert_eq!(c.window(Scope::Site(1), MetricName::Lcp, 1, &all).count(), 1);
        assert_eq!(c.window(Scope::Page(1), MetricName::Lcp, FF_ALL, &all).count(), 2);
        let today = span(Resolution::Day, day, day);
        assert_eq!(c.window(Scope::Site(1), MetricName::Lcp, FF_ALL, &today).count(), 2);
        let hour = span(Resolution::Hour, day + HOUR_MS, day + HOUR_MS);
        let w = c.window(Scope::Site(1), MetricName::Lcp, FF_ALL, &hour);
        assert_eq!((w.count(), w.ratings.good), (1, 1));
        assert_eq!(c.window(Scope::Site(1), MetricName::Cls, FF_ALL, &all).count(), 0);
    }

    #[test]
    fn remove_undoes_add_and_refuses_strangers() {
        let mut c = Cells::new(0);
        let p = place(1, 2, 5 * DAY_MS);
        c.add(&p, 100.0);
        assert!(!c.remove(&p, 200.0));
        assert!(!c.remove(&place(9, 2, 5 * DAY_MS), 100.0));
        assert!(c.remove(&p, 100.0));
        let all = span(Resolution::Day, 0, 10 * DAY_MS);
        assert!(c.window(Scope::Site(1), MetricName::Lcp, FF_ALL, &all).is_empty());
        let changed = c.take_changed_base_cells();
        assert_eq!(changed.len(), 2, "{changed:?}"); // hour and day, now empty
        assert!(changed.iter().all(|b| b.cell.is_none()));
        assert!(c.groups.is_empty());
    }

    #[test]
    fn saved_cells_load_back_to_the_same_windows() {
        let mut c = Cells::new(0);
        for (i, ff) in [0u8, 1, 2, 3, 1].into_iter().enumerate() {
            c.add(&place(1 + (i as u32 % 2), ff, i as i64 * 7 * HOUR_MS), i as f64 * 100.0);
        }
        let base = c.take_changed_base_cells();
        assert!(c.take_changed_base_cells().is_empty());
        let mut loaded = Cells::new(0);
        for b in &base {
            loaded.load(1, b, b.cell.as_ref().unwrap());
        }
        let all = span(Resolution::Day, 0, 3 * DAY_MS);
        for scope in [Scope::Site(1), Scope::Page(1), Scope::Page(2)] {
            for ff in [FF_ALL, 0, 1, 2, 3] {
                assert_eq!(
                    loaded.window(scope, MetricName::Lcp, ff, &all),
                    c.window(scope, MetricName::Lcp, ff, &all),
                    "{scope:?} {ff}"
                );
            }
        }
    }

    /// The rolling merges give the same windows as merging the buckets,
    /// through adds, removes and the clock moving on.
    #[test]
    fn rolling_windows_equal_merged_buckets() {
        use crate::testutil::Rng;
        let mut rng = Rng::new(9);
        let start = 20_000 * DAY_MS + 5 * HOUR_MS;
        let mut c = Cells::new(0);
        let mut added: Vec<(Place, f64)> = Vec::new();
        for i in 0..400 {
            if i == 100 {
                c.start_rolling(start);
            }
            let at = start - (rng.below(40 * 24) as i64) * HOUR_MS;
            let p = place(1 + rng.below(3) as u32, rng.below(4) as u8, at);
            let v = rng.f64_log(10.0, 9000.0);
            c.add(&p, v);
            added.push((p, v));
            if i % 7 == 0 {
                let (p, v) = added.swap_remove(rng.below(added.len() as u64) as usize);
                assert!(c.remove(&p, v));
            }
        }
        for step in 0..60i64 {
            let now = start + step * 7 * HOUR_MS;
            c.advance(now);
            if step % 5 == 0 {
                c.add(&place(2, 1, now - HOUR_MS), 123.0);
                let (p, v) = added.swap_remove(rng.below(added.len() as u64) as usize);
                assert!(c.remove(&p, v));
            }
            for (r, len) in ROLLING {
                let current = r.bucket(now);
                let span = Span {
                    resolution: r,
                    first: current - len,
                    last: current,
                };
                for scope in [Scope::Site(1), Scope::Page(1), Scope::Page(2)] {
                    let fast = c.window(scope, MetricName::Lcp, FF_ALL, &span);
                    let key = SeriesKey {
                        scope,
                        metric: MetricName::Lcp,
                        ff: FF_ALL,
                    };
                    let series = c.series(key).unwrap();
                    let slow = Cell::merged(series.buckets(r).cells(span.first, span.last));
                    assert_eq!(fast, slow, "{step} {r:?} {scope:?}");
                    assert!(series
                        .rolling
                        .iter()
                        .any(|x| x.resolution == r && x.first == span.first));
                }
            }
        }
    }

    impl Close for u64 {
        fn close(&mut self) {}
    }

    /// `Buckets` behaves like a sorted map, whatever order buckets come in.
    #[test]
    fn buckets_are_a_sorted_map() {
        use crate::testutil::Rng;
        use std::collections::BTreeMap;
        let mut rng = Rng::new(21);
        for round in 0..200 {
            let mut b: Buckets<u64> = Buckets::default();
            let mut m: BTreeMap<i64, u64> = BTreeMap::new();
            let mut at = 1_000 + rng.below(50) as i64;
            for _ in 0..rng.below(120) {
                // Mostly forward in time, sometimes back.
                let k = if rng.below(5) == 0 {
                    at - rng.below(60) as i64
                } else {
                    at += rng.below(3) as i64;
                    at
                };
                let v = 1 + rng.below(9);
                *b.entry(k) += v;
                *m.entry(k).or_default() += v;
                if rng.below(10) == 0 {
                    let k = at - rng.below(80) as i64;
                    assert_eq!(b.get(k), m.get(&k));
                    if let (Some(x), Some(y)) = (b.get_mut(k), m.get_mut(&k)) {
                        *x += 1;
                        *y += 1;
                    }
                }
            }
            let all: Vec<(i64, u64)> = m.iter().map(|(&k, &v)| (k, v)).collect();
            assert_eq!(b.iter().map(|(k, &v)| (k, v)).collect::<Vec<_>>(), all);
            assert_eq!(b.is_empty(), m.is_empty());
            for _ in 0..20 {
                let first = 950 + rng.below(250) as i64;
                let last = first + rng.below(100) as i64 - 10;
                let want: Vec<(i64, u64)> = all
                    .iter()
                    .copied()
                    .filter(|&(k, _)| (first..=last).contains(&k))
                    .collect();
                assert_eq!(b.range(first, last).map(|(k, &v)| (k, v)).collect::<Vec<_>>(), want);
            }
            match round % 3 {
                0 => {
                    let cut = 1_000 + rng.below(200) as i64;
                    let dropped = b.split_before(cut);
                    let kept = m.split_off(&cut);
                    assert_eq!(dropped, m.into_iter().collect::<Vec<_>>());
                    m = kept;
                }
                1 => {
                    b.retain(|&v| v % 2 == 0);
                    m.retain(|_, v| *v % 2 == 0);
                }
                _ => {
                    for v in b.values_mut() {
                        *v += 1;
                    }
                    m.values_mut().for_each(|v| *v += 1);
                }
            }
            let all: Vec<(i64, u64)> = m.iter().map(|(&k, &v)| (k, v)).collect();
            assert_eq!(b.iter().map(|(k, &v)| (k, v)).collect::<Vec<_>>(), all);
            assert_eq!(b.is_empty(), m.is_empty());
            *b.entry(5_000) += 1;
            assert_eq!(b.get(5_000), Some(&1));
            assert_eq!(b.get(5_001), None);
        }
    }

    #[test]
    fn prune_drops_old_cells_and_old_hours() {
        let mut c = Cells::new(0);
        c.add(&place(1, 1, 1), 1.0);
        c.add(&place(1, 1, 3 * DAY_MS), 2.0);
        c.prune(2, 3 * DAY_MS + HOUR_MS);
        let all = span(Resolution::Day, 0, 5 * DAY_MS);
        assert_eq!(c.window(Scope::Page(1), MetricName::Lcp, 1, &all).count(), 1);
        let hours = span(Resolution::Hour, 0, 5 * DAY_MS);
        assert_eq!(c.window(Scope::Page(1), MetricName::Lcp, 1, &hours).count(), 0);
        // Older than the hour horizon: daily cells only.
        c.add(&place(1, 1, 3 * DAY_MS), 3.0);
        assert_eq!(c.window(Scope::Page(1), MetricName::Lcp, 1, &hours).count(), 0);
        assert_eq!(c.window(Scope::Page(1), MetricName::Lcp, 1, &all).count(), 2);
        assert!(c.remove(&place(1, 1, 3 * DAY_MS), 3.0));
    }
}
