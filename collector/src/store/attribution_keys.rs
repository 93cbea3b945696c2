//! The caps on what attribution names: at most [`PER_PAGE`] distinct
//! values per page of each of the LCP element, the LCP resource, the CLS
//! source, the INP target and the INP script, and [`TOTAL`] in all; past
//! a cap, a new value is stored as `(other)`. So a hostile site cannot
//! grow what the store keeps and what "what to fix first" lists without
//! bound, as the page cap does for page keys. A value no report has named
//! within the retention frees its place.
//!
//! Kept in memory as 64-bit keyed hashes with the day each value was last
//! seen (about 24 bytes each), rebuilt by the start-up scan.

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};

use beacon::Attribution;

use super::cells::FxHashMap;
use super::ids::PassThrough;

/// Distinct values per page and field.
pub const PER_PAGE: usize = 100;
/// Distinct values of all pages and fields together.
pub const TOTAL: usize = 500_000;
/// What a value past a cap is stored as.
pub const OTHER: &str = "(other)";

/// The attribution fields that name something.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Field {
    LcpTarget,
    LcpUrl,
    ClsTarget,
    InpTarget,
    ScriptUrl,
}

impl Field {
    pub const ALL: [Field; 5] = [
        Field::LcpTarget,
        Field::LcpUrl,
        Field::ClsTarget,
        Field::InpTarget,
        Field::ScriptUrl,
    ];

    /// The value of this field in `a`.
    pub fn get(self, a: &Attribution) -> Option<&str> {
        match self {
            Field::LcpTarget => a.target.as_deref(),
            Field::LcpUrl => a.url.as_deref(),
            Field::ClsTarget => a.largest_shift_target.as_deref(),
            Field::InpTarget => a.interaction_target.as_deref(),
            Field::ScriptUrl => a.longest_script.as_ref().and_then(|s| s.url.as_deref()),
        }
    }

    /// The value of this field in `a`, to cap.
    pub fn get_mut(self, a: &mut Attribution) -> Option<&mut String> {
        match self {
            Field::LcpTarget => a.target.as_mut(),
            Field::LcpUrl => a.url.as_mut(),
            Field::ClsTarget => a.largest_shift_target.as_mut(),
            Field::InpTarget => a.interaction_target.as_mut(),
            Field::ScriptUrl => a.longest_script.as_mut().and_then(|s| s.url.as_mut()),
        }
    }
}

/// What [`AttributionKeys::admits`] says of a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admit {
    Known,
    New,
    /// Past a cap: store [`OTHER`].
    Full,
}

type Seen = HashMap<u64, i64, BuildHasherDefault<PassThrough>>;

pub struct AttributionKeys {
    hash_keys: RandomState,
    by_page: FxHashMap<(u32, Field), Seen>,
    total: usize,
}

impl Default for AttributionKeys {
    fn default() -> AttributionKeys {
        AttributionKeys::new()
    }
}

impl AttributionKeys {
    pub fn new() -> AttributionKeys {
        AttributionKeys {
            hash_keys: RandomState::new(),
            by_page: FxHashMap::default(),
            total: 0,
        }
    }

    pub fn key(&self, value: &str) -> u64 {
        let mut h = self.hash_keys.build_hasher();
        h.write(value.as_bytes());
        h.finish()
    }

    /// Whether `key` of `field` on `page` is known, or else whether there
    /// is room for it past `pending` new ones this write already let in
    /// (`pending_total` of all pages).
    pub fn admits(&self, page: u32, field: Field, key: u64, pending: usize, pending_total: usize) -> Admit {
        let seen = self.by_page.get(&(page, field));
        if seen.is_some_and(|s| s.contains_key(&key)) {
            Admit::Known
        } else if seen.map_or(0, HashMap::len) + pending < PER_PAGE && self.total + pending_total < TOTAL {
            Admit::New
        } else {
            Admit::Full
        }
    }

    /// Notes that a stored report named `key` on `day`.
    pub fn record(&mut self, page: u32, field: Field, key: u64, day: i64) {
        let seen = self.by_page.entry((page, field)).or_default();
        match seen.get_mut(&key) {
            Some(d) => *d = (*d).max(day),
            None => {
                seen.insert(key, day);
                self.total += 1;
            }
        }
    }

    /// Forgets values last named before `cutoff_day`.
    pub fn prune(&mut self, cutoff_day: i64) {
        let mut total = 0;
        self.by_page.retain(|_, seen| {
            seen.retain(|_, day| *day >= cutoff_day);
            total += seen.len();
            !seen.is_empty()
        });
        self.total = total;
    }

    /// Forgets a page the retention removed.
    pub fn remove_page(&mut self, page: u32) {
        for field in Field::ALL {
            if let Some(seen) = self.by_page.remove(&(page, field)) {
                self.total -= seen.len();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_page_and_field_keeps_at_most_its_cap_until_values_age_out() {
        let mut k = AttributionKeys::new();
        for i in 0..PER_PAGE {
            let key = k.key(&format!("#e{i}"));
            assert_eq!(k.admits(1, Field::LcpTarget, key, 0, 0), Admit::New);
            k.record(1, Field::LcpTarget, key, 10);
        }
        let known = k.key("#e0");
        let new = k.key("#new");
        assert_eq!(
            k.admits(1, Field::LcpTarget, known, 0, 0),
            Admit::Known,
            "a known value stays"
        );
        assert_eq!(k.admits(1, Field::LcpTarget, new, 0, 0), Admit::Full, "past the cap");
        assert_eq!(k.admits(1, Field::InpTarget, new, 0, 0), Admit::New, "another field");
        assert_eq!(k.admits(2, Field::LcpTarget, new, 0, 0), Admit::New, "another page");
        assert_eq!(
            k.admits(2, Field::LcpTarget, new, PER_PAGE, 0),
            Admit::Full,
            "pending ones count"
        );
        k.record(1, Field::LcpTarget, known, 20); // seen again later
        k.prune(11);
        assert_eq!(
            k.admits(1, Field::LcpTarget, new, 0, 0),
            Admit::New,
            "the others aged out"
        );
        assert_eq!(k.admits(1, Field::LcpTarget, known, 0, 0), Admit::Known);
        k.remove_page(1);
        assert_eq!(k.total, 0);
    }
}
