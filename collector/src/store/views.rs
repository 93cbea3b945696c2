//! Page views: how many distinct `pageViewId`s a page (and a site) had in
//! each hour and day, by the navigation type of their first report, and
//! when each page's last beacon arrived. For the dashboard's coverage (the
//! share of page views that carry each metric) and navigation-type mix.
//!
//! A page view counts in the bucket of its first beacon, as a report
//! counts in the bucket of its first receipt; its later beacons (the agent
//! sends on every hide) find it among the views seen, a hash table of
//! 64-bit keyed hashes of (site, page view id), about 20 bytes per page
//! view, rebuilt by the start-up scan of `beacons`. A beacon without a
//! `pageViewId` (another agent's) counts no page view.

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};

use beacon::NavigationType;

use super::cells::{FxHashMap, Scope, FF_ALL};
use super::ids::PassThrough;
use crate::aggregate::Span;
use crate::time::Resolution;

/// Navigation types, in [`NavigationType::ALL`] order.
const NAV_TYPES: usize = NavigationType::ALL.len();

/// Page views by navigation type.
pub type NavCounts = [u64; NAV_TYPES];

/// Shards of the table of views seen (doubling one table of millions of
/// keys would stall the writer, as with the report ids).
const SHARDS: usize = 64;

/// (scope, form factor code, resolution: 0 hour / 1 day, bucket).
type CountKey = (Scope, u8, u8, i64);

pub struct Views {
    hash_keys: RandomState,
    /// Views seen, by key, with the day bucket of their first beacon (for
    /// the retention).
    seen: Vec<HashMap<u64, i64, BuildHasherDefault<PassThrough>>>,
    counts: FxHashMap<CountKey, [u32; NAV_TYPES]>,
    /// The last beacon of each page, unix ms.
    last: FxHashMap<u32, i64>,
    /// Hourly counts are kept from here on (as the cells).
    hour_horizon_ms: i64,
}

/// One beacon's part in the views, computed while its group is written
/// and applied once committed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ViewDelta {
    /// The key of its page view (`None`: the beacon names none).
    pub key: Option<u64>,
    pub site: u32,
    pub page: u32,
    pub ff: u8,
    pub at_ms: i64,
    /// The navigation type of its first report.
    pub nav: NavigationType,
}

impl Views {
    pub fn new(hour_horizon_ms: i64) -> Views {
        Views {
            hash_keys: RandomState::new(),
            seen: (0..SHARDS).map(|_| HashMap::default()).collect(),
            counts: FxHashMap::default(),
            last: FxHashMap::default(),
            hour_horizon_ms,
        }
    }

    /// The key of page view `id` of `site`.
    pub fn key(&self, site: u32, id: &str) -> u64 {
        let mut h = self.hash_keys.build_hasher();
        h.write_u32(site);
        h.write(id.as_bytes());
        h.finish()
    }

    /// Applies a beacon: counts its page view if it is a new one, and
    /// moves its page's last beacon time.
    pub fn add(&mut self, d: &ViewDelta) {
        let last = self.last.entry(d.page).or_insert(d.at_ms);
        *last = (*last).max(d.at_ms);
        let Some(key) = d.key else {
            return;
        };
        let day = Resolution::Day.bucket(d.at_ms);
        let shard = &mut self.seen[(key >> 58) as usize % SHARDS];
        if shard.insert(key, day).is_some() {
            return;
        }
        let nav = NavigationType::ALL.iter().position(|&n| n == d.nav).unwrap_or(0);
        let hour = (d.at_ms >= self.hour_horizon_ms).then(|| Resolution::Hour.bucket(d.at_ms));
        for scope in [Scope::Page(d.page), Scope::Site(d.site)] {
            self.counts.entry((scope, d.ff, 1, day)).or_default()[nav] += 1;
            if let Some(hour) = hour {
                self.counts.entry((scope, d.ff, 0, hour)).or_default()[nav] += 1;
            }
        }
    }

    /// Page views of `scope` with form factor code `ff` (or [`FF_ALL`]) in
    /// `span`, by navigation type.
    pub fn count(&self, scope: Scope, ff: u8, span: &Span) -> NavCounts {
        let res = match span.resolution {
            Resolution::Hour => 0,
            Resolution::Day => 1,
        };
        let ffs: &[u8] = if ff == FF_ALL {
            &[0, 1, 2, 3]
        } else {
            std::slice::from_ref(&ff)
        };
        let mut out = [0u64; NAV_TYPES];
        for bucket in span.first..=span.last {
            for &ff in ffs {
                if let Some(c) = self.counts.get(&(scope, ff, res, bucket)) {
                    for (o, n) in out.iter_mut().zip(c) {
                        *o += *n as u64;
                    }
                }
            }
        }
        out
    }

    /// When the last beacon of `page` arrived.
    pub fn last(&self, page: u32) -> Option<i64> {
        self.last.get(&page).copied()
    }

    /// Forgets what is past the retention: views first seen before
    /// `cutoff_day`, their counts, and hourly counts before the horizon.
    pub fn prune(&mut self, cutoff_day: i64, hour_horizon_ms: i64) {
        self.hour_horizon_ms = hour_horizon_ms;
        let first_hour = Resolution::Hour.bucket(hour_horizon_ms);
        self.counts.retain(|&(_, _, res, bucket), _| match res {
            0 => bucket >= first_hour,
            _ => bucket >= cutoff_day,
        });
        for shard in &mut self.seen {
            shard.retain(|_, day| *day >= cutoff_day);
        }
    }

    /// Forgets a page the retention removed (and its views' counts).
    pub fn remove_page(&mut self, page: u32) {
        self.last.remove(&page);
        self.counts.retain(|(scope, ..), _| *scope != Scope::Page(page));
    }

    /// Page views seen (within the retention).
    pub fn len(&self) -> usize {
        self.seen.iter().map(HashMap::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::{DAY_MS, HOUR_MS};

    fn delta(v: &Views, id: Option<&str>, page: u32, ff: u8, at_ms: i64, nav: usize) -> ViewDelta {
        ViewDelta {
            key: id.map(|id| v.key(1, id)),
            site: 1,
            page,
            ff,
            at_ms,
            nav: NavigationType::ALL[nav],
        }
    }

    #[test]
    fn a_page_view_counts_once_in_the_bucket_of_its_first_beacon() {
        let day0 = 20_000 * DAY_MS;
        let mut v = Views::new(0);
        v.add(&delta(&v, Some("pv-1"), 7, 1, day0 + HOUR_MS, 0));
        v.add(&delta(&v, Some("pv-1"), 7, 1, day0 + 2 * HOUR_MS, 0)); // its next beacon
        v.add(&delta(&v, Some("pv-2"), 7, 3, day0 + 2 * HOUR_MS, 1));
        v.add(&delta(&v, Some("pv-3"), 8, 3, day0 + 2 * HOUR_MS, 3));
        v.add(&delta(&v, None, 7, 3, day0 + 3 * HOUR_MS, 0)); // no page view id
        let day = Span::bucket_at(Resolution::Day, day0);
        assert_eq!(v.count(Scope::Page(7), FF_ALL, &day), [1, 1, 0, 0, 0, 0, 0]);
        assert_eq!(v.count(Scope::Page(7), 3, &day), [0, 1, 0, 0, 0, 0, 0]);
        assert_eq!(v.count(Scope::Site(1), FF_ALL, &day).iter().sum::<u64>(), 3);
        let hour1 = Span::bucket_at(Resolution::Hour, day0 + HOUR_MS);
        let hour2 = Span::bucket_at(Resolution::Hour, day0 + 2 * HOUR_MS);
        assert_eq!(v.count(Scope::Page(7), FF_ALL, &hour1).iter().sum::<u64>(), 1);
        assert_eq!(
            v.count(Scope::Page(7), FF_ALL, &hour2).iter().sum::<u64>(),
            1,
            "pv-2 only"
        );
        assert_eq!(v.last(7), Some(day0 + 3 * HOUR_MS));
        assert_eq!(v.len(), 3);
        // The same id on another site is another page view.
        let mut other = delta(&v, None, 9, 1, day0, 0);
        other.site = 2;
        other.key = Some(v.key(2, "pv-1"));
        v.add(&other);
        assert_eq!(v.len(), 4);
    }

    #[test]
    fn retention_forgets_old_views_and_removed_pages() {
        let day0 = 20_000 * DAY_MS;
        let mut v = Views::new(0);
        v.add(&delta(&v, Some("old"), 7, 1, day0, 0));
        v.add(&delta(&v, Some("new"), 7, 1, day0 + 2 * DAY_MS, 0));
        v.prune(Resolution::Day.bucket(day0) + 1, day0 + 2 * DAY_MS);
        assert_eq!(v.len(), 1);
        let all = Span {
            resolution: Resolution::Day,
            first: Resolution::Day.bucket(day0),
            last: Resolution::Day.bucket(day0) + 2,
        };
        assert_eq!(v.count(Scope::Page(7), FF_ALL, &all)[0], 1);
        // A view seen again after its day was pruned counts again, in its new bucket.
        v.add(&delta(&v, Some("old"), 7, 1, day0 + 2 * DAY_MS, 0));
        assert_eq!(v.count(Scope::Page(7), FF_ALL, &all)[0], 2);
        v.remove_page(7);
        assert_eq!(v.count(Scope::Page(7), FF_ALL, &all)[0], 0);
        assert_eq!(v.last(7), None);
    }
}
