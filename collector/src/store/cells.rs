//! The SQLite store's aggregates in memory: hourly and daily [`Cell`]s per
//! (page or whole site, metric, form factor or all). Reads merge them per
//! window; the writer updates them after each commit. They are a function
//! of the raw reports, saved to the `aggregates` table at shutdown and
//! rebuilt from the raw reports after a crash.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};

use beacon::{FormFactor, MetricName};

use crate::aggregate::{Cell, Span};
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
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

/// A `HashMap` with [`FxHasher`].
pub type FxHashMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    Site(u32),
    Page(u32),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct SeriesKey {
    scope: Scope,
    metric: MetricName,
    ff: u8,
}

#[derive(Debug, Default)]
struct Slot {
    cell: Cell,
    /// Changed since loaded or saved (only page cells of one form factor
    /// are saved; the rest are derived when loading).
    dirty: bool,
}

#[derive(Debug, Default)]
struct Series {
    hours: BTreeMap<i64, Slot>,
    days: BTreeMap<i64, Slot>,
    /// For all-form-factor series: the merge of the whole buckets of the
    /// standard windows, kept up to date, so that a summary adds just the
    /// current bucket instead of merging 25 or 29 cells per page.
    rolling: Vec<Rolling>,
    /// Counts changes, so that exact results computed from this series
    /// can be kept until it changes.
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
    fn buckets(&self, r: Resolution) -> &BTreeMap<i64, Slot> {
        match r {
            Resolution::Hour => &self.hours,
            Resolution::Day => &self.days,
        }
    }

    fn buckets_mut(&mut self, r: Resolution) -> &mut BTreeMap<i64, Slot> {
        match r {
            Resolution::Hour => &mut self.hours,
            Resolution::Day => &mut self.days,
        }
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
    /// form factor and for all together.
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
    series: FxHashMap<SeriesKey, Series>,
    /// Reports received before this get no hourly cells.
    hour_horizon_ms: i64,
    /// The current hour and day buckets the rolling merges end before.
    current: (i64, i64),
}

impl Cells {
    pub fn new(hour_horizon_ms: i64) -> Cells {
        Cells {
            series: FxHashMap::default(),
            hour_horizon_ms,
            current: (i64::MIN, i64::MIN),
        }
    }

    fn current_bucket(&self, r: Resolution) -> i64 {
        match r {
            Resolution::Hour => self.current.0,
            Resolution::Day => self.current.1,
        }
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
        for series in self.series.values_mut() {
            for i in 0..series.rolling.len() {
                let r = series.rolling[i].resolution;
                let last = current(r) - 1;
                let (old_first, old_last) = (series.rolling[i].first, series.rolling[i].last);
                if old_last == last {
                    continue;
                }
                let first = last - (old_last - old_first);
                let old_cell = std::mem::take(&mut series.rolling[i].cell);
                let buckets = match r {
                    Resolution::Hour => &series.hours,
                    Resolution::Day => &series.days,
                };
                let slid = if old_first <= first && first <= old_last + 1 {
                    // Slide: drop the buckets that left, add those that closed.
                    let mut cell = old_cell;
                    let ok = buckets
                        .range(old_first..first)
                        .all(|(_, slot)| cell.subtract(&slot.cell));
                    for (_, slot) in buckets.range(old_last + 1..=last) {
                        cell.merge(&slot.cell);
                    }
                    ok.then_some(cell)
                } else {
                    None
                };
                let cell =
                    slid.unwrap_or_else(|| Cell::merged(buckets.range(first..=last).map(|(_, slot)| &slot.cell)));
                series.rolling[i] = Rolling {
                    resolution: r,
                    first,
                    last,
                    cell,
                };
            }
        }
    }

    /// A new series, with empty rolling merges if it is for all form
    /// factors.
    fn new_series(ff: u8, current: (i64, i64)) -> Series {
        let mut series = Series::default();
        if ff == FF_ALL && current.0 != i64::MIN {
            series.rolling = ROLLING
                .iter()
                .map(|&(r, len)| {
                    let last = match r {
                        Resolution::Hour => current.0,
                        Resolution::Day => current.1,
                    } - 1;
                    Rolling {
                        resolution: r,
                        first: last - len + 1,
                        last,
                        cell: Cell::default(),
                    }
                })
                .collect();
        }
        series
    }

    /// Builds every rolling merge anew, ending before the buckets of
    /// `now_ms` (after loading or rebuilding).
    pub fn start_rolling(&mut self, now_ms: i64) {
        let current = (Resolution::Hour.bucket(now_ms), Resolution::Day.bucket(now_ms));
        self.current = current;
        for (key, series) in self.series.iter_mut() {
            let mut rolling = Cells::new_series(key.ff, current).rolling;
            for r in &mut rolling {
                r.cell = Cell::merged(
                    series
                        .buckets(r.resolution)
                        .range(r.first..=r.last)
                        .map(|(_, slot)| &slot.cell),
                );
            }
            series.rolling = rolling;
        }
    }

    fn resolutions(&self, at_ms: i64) -> &'static [Resolution] {
        if at_ms >= self.hour_horizon_ms {
            &[Resolution::Hour, Resolution::Day]
        } else {
            &[Resolution::Day]
        }
    }

    pub fn add(&mut self, place: &Place, value: f64) {
        let resolutions = self.resolutions(place.received_at_ms);
        let current = self.current;
        for key in place.series() {
            let series = self
                .series
                .entry(key)
                .or_insert_with(|| Cells::new_series(key.ff, current));
            series.version += 1;
            for &r in resolutions {
                let b = r.bucket(place.received_at_ms);
                let slot = series.buckets_mut(r).entry(b).or_default();
                slot.cell.add(place.metric, value);
                slot.dirty = true;
                for rolling in &mut series.rolling {
                    if rolling.resolution == r && (rolling.first..=rolling.last).contains(&b) {
                        rolling.cell.add(place.metric, value);
                    }
                }
            }
        }
    }

    /// Removes a value added before at `place`. False if the page's cell
    /// does not hold it (then nothing changes).
    pub fn remove(&mut self, place: &Place, value: f64) -> bool {
        let resolutions = self.resolutions(place.received_at_ms);
        let day = Resolution::Day.bucket(place.received_at_ms);
        let holds = self
            .series
            .get(&SeriesKey {
                scope: Scope::Page(place.page),
                metric: place.metric,
                ff: place.ff,
            })
            .and_then(|s| s.days.get(&day))
            .is_some_and(|slot| slot.cell.holds(place.metric, value));
        if !holds {
            return false;
        }
        for key in place.series() {
            let Some(series) = self.series.get_mut(&key) else {
                continue;
            };
            series.version += 1;
            for &r in resolutions {
                let b = r.bucket(place.received_at_ms);
                if let Some(slot) = series.buckets_mut(r).get_mut(&b) {
                    slot.cell.remove(place.metric, value);
                    slot.dirty = true;
                    for rolling in &mut series.rolling {
                        if rolling.resolution == r && (rolling.first..=rolling.last).contains(&b) {
                            rolling.cell.remove(place.metric, value);
                        }
                    }
                }
            }
        }
        true
    }

    /// Adds a saved page cell (see [`Cells::base_cells`]) and what derives
    /// from it (all form factors, the whole site).
    pub fn load(&mut self, site: u32, base: &BaseCell, cell: &Cell) {
        let place = Place {
            site,
            page: base.page,
            metric: base.metric,
            ff: base.ff,
            received_at_ms: base.resolution.start(base.bucket),
        };
        for key in place.series() {
            let slot = self
                .series
                .entry(key)
                .or_default()
                .buckets_mut(base.resolution)
                .entry(base.bucket)
                .or_default();
            slot.cell.merge(cell);
        }
    }

    /// The merge of the cells of `span`.
    pub fn window(&self, scope: Scope, metric: MetricName, ff: u8, span: &Span) -> Cell {
        let Some(series) = self.series.get(&SeriesKey { scope, metric, ff }) else {
            return Cell::default();
        };
        if span.is_empty() {
            return Cell::default();
        }
        // A standard window: its rolling merge plus the current bucket.
        if span.last == self.current_bucket(span.resolution) {
            let rolling = series
                .rolling
                .iter()
                .find(|r| r.resolution == span.resolution && (r.first, r.last) == (span.first, span.last - 1));
            if let Some(r) = rolling {
                let mut cell = r.cell.clone();
                if let Some(slot) = series.buckets(span.resolution).get(&span.last) {
                    cell.merge(&slot.cell);
                }
                return cell;
            }
        }
        let mut range = series
            .buckets(span.resolution)
            .range(span.first..=span.last)
            .map(|(_, slot)| &slot.cell)
            .filter(|c| !c.is_empty());
        match (range.next(), range.next()) {
            (None, _) => Cell::default(),
            (Some(one), None) => one.clone(),
            (Some(a), Some(b)) => Cell::merged([a, b].into_iter().chain(range)),
        }
    }

    /// The change count of a series (see `Series::version`); 0 if none.
    pub fn version(&self, scope: Scope, metric: MetricName, ff: u8) -> u64 {
        self.series
            .get(&SeriesKey { scope, metric, ff })
            .map_or(0, |s| s.version)
    }

    /// How many values of `span` fall in sketch bin `key`.
    pub fn bin_count(&self, scope: Scope, metric: MetricName, ff: u8, span: &Span, key: u32) -> u64 {
        let Some(series) = self.series.get(&SeriesKey { scope, metric, ff }) else {
            return 0;
        };
        if span.is_empty() {
            return 0;
        }
        series
            .buckets(span.resolution)
            .range(span.first..=span.last)
            .map(|(_, slot)| slot.cell.sketch.bin_count(key))
            .sum()
    }

    /// Drops daily cells before bucket `day_before` and hourly cells of
    /// reports received before `hour_horizon_ms`.
    pub fn prune(&mut self, day_before: i64, hour_horizon_ms: i64) {
        self.hour_horizon_ms = self.hour_horizon_ms.max(hour_horizon_ms);
        let hour_before = Resolution::Hour.bucket(self.hour_horizon_ms);
        self.series.retain(|_, s| {
            s.days = s.days.split_off(&day_before);
            s.hours = s.hours.split_off(&hour_before);
            !(s.days.is_empty() && s.hours.is_empty())
        });
    }

    pub fn hour_horizon_ms(&self) -> i64 {
        self.hour_horizon_ms
    }

    /// Marks every cell as changed (after rebuilding from raw reports).
    pub fn mark_all_dirty(&mut self) {
        for s in self.series.values_mut() {
            for slot in s.days.values_mut().chain(s.hours.values_mut()) {
                slot.dirty = true;
            }
        }
    }

    /// The saved cells (pages, per form factor code) changed since the
    /// last call, and forgets their change. Empty cells are dropped here.
    pub fn take_changed_base_cells(&mut self) -> Vec<BaseCell> {
        let mut out = Vec::new();
        for (key, series) in self.series.iter_mut() {
            let Scope::Page(page) = key.scope else {
                continue;
            };
            for r in [Resolution::Hour, Resolution::Day] {
                for (&bucket, slot) in series.buckets_mut(r).iter_mut() {
                    if key.ff != FF_ALL && slot.dirty {
                        out.push(BaseCell {
                            page,
                            metric: key.metric,
                            ff: key.ff,
                            resolution: r,
                            bucket,
                            cell: (!slot.cell.is_empty()).then(|| slot.cell.clone()),
                        });
                    }
                    slot.dirty = false;
                }
            }
        }
        for s in self.series.values_mut() {
            s.days.retain(|_, slot| !slot.cell.is_empty());
            s.hours.retain(|_, slot| !slot.cell.is_empty());
        }
        self.series.retain(|_, s| !(s.days.is_empty() && s.hours.is_empty()));
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
        assert!(c.series.is_empty());
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
                    let slow = Cell::merged(
                        c.series[&key]
                            .buckets(r)
                            .range(span.first..=span.last)
                            .map(|(_, s)| &s.cell),
                    );
                    assert_eq!(fast, slow, "{step} {r:?} {scope:?}");
                    assert!(c.series[&key]
                        .rolling
                        .iter()
                        .any(|x| x.resolution == r && x.first == span.first));
                }
            }
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
