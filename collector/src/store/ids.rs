//! Where each stored report id is: the writer's in-memory index for dedup.
//!
//! A re-report (same site, metric and id) must find the earlier report to
//! replace its value. An SQLite index on the ids was a B-tree insert per
//! report; this is a hash table of 64-bit keys, about 20 bytes per stored
//! report, rebuilt from the raw reports at start-up.
//!
//! The key is a SipHash of (site, metric, id) with keys chosen at random
//! per process, so clients cannot make ids collide on purpose; an
//! accidental collision (about n²/2⁶⁵ for n stored reports) is caught
//! because the writer compares the stored id before replacing, and the
//! report is then stored as new.

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};

/// A report's place: a row of the `beacons` table and a slot in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Location {
    pub row: i64,
    pub slot: u8,
}

impl Location {
    fn pack(self) -> u64 {
        ((self.row as u64) << 8) | self.slot as u64
    }

    fn unpack(v: u64) -> Location {
        Location {
            row: (v >> 8) as i64,
            slot: v as u8,
        }
    }
}

/// The keys are SipHash outputs already: hashing them again buys nothing.
#[derive(Default)]
pub struct PassThrough(u64);

impl Hasher for PassThrough {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | b as u64;
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// A key of [`ReportIds`].
pub type IdKey = u64;

/// Report id keys to locations, for the changes of one write group.
pub type PendingIds = HashMap<IdKey, Location, BuildHasherDefault<PassThrough>>;

/// Tables the keys are spread over. One table of millions of keys stalled
/// the writer (and every beacon waiting for it) for tens of milliseconds
/// each time it doubled; a shard holds 1/256 of the keys, so its doubling
/// takes a fraction of a millisecond, and the shards double at different
/// moments.
const SHARDS: usize = 256;

pub struct ReportIds {
    hash_keys: RandomState,
    shards: Vec<HashMap<IdKey, u64, BuildHasherDefault<PassThrough>>>,
}

impl Default for ReportIds {
    fn default() -> ReportIds {
        ReportIds::new()
    }
}

impl ReportIds {
    pub fn new() -> ReportIds {
        ReportIds {
            hash_keys: RandomState::new(),
            shards: (0..SHARDS).map(|_| HashMap::default()).collect(),
        }
    }

    /// The shard of `key`: bits the table leaves alone (it indexes with the
    /// low bits and tags with the top seven).
    fn shard(&self, key: IdKey) -> &HashMap<IdKey, u64, BuildHasherDefault<PassThrough>> {
        &self.shards[(key >> 48) as usize % SHARDS]
    }

    fn shard_mut(&mut self, key: IdKey) -> &mut HashMap<IdKey, u64, BuildHasherDefault<PassThrough>> {
        &mut self.shards[(key >> 48) as usize % SHARDS]
    }

    pub fn key(&self, site: u32, metric: u8, id: &str) -> IdKey {
        let mut h = self.hash_keys.build_hasher();
        h.write_u32(site);
        h.write_u8(metric);
        h.write(id.as_bytes());
        h.finish()
    }

    /// How many ids are indexed.
    pub fn len(&self) -> usize {
        self.shards.iter().map(HashMap::len).sum()
    }

    pub fn get(&self, key: IdKey) -> Option<Location> {
        self.shard(key).get(&key).copied().map(Location::unpack)
    }

    pub fn insert(&mut self, key: IdKey, at: Location) {
        self.shard_mut(key).insert(key, at.pack());
    }

    /// Forgets `key` if it is at `at` (not if a colliding id took it over).
    pub fn remove(&mut self, key: IdKey, at: Location) {
        let shard = self.shard_mut(key);
        if shard.get(&key) == Some(&at.pack()) {
            shard.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_tell_site_metric_and_id_apart() {
        let ids = ReportIds::new();
        let k = ids.key(1, 2, "v5-1-1");
        assert_eq!(k, ids.key(1, 2, "v5-1-1"));
        assert_ne!(k, ids.key(2, 2, "v5-1-1"));
        assert_ne!(k, ids.key(1, 3, "v5-1-1"));
        assert_ne!(k, ids.key(1, 2, "v5-1-2"));
    }

    #[test]
    fn insert_get_remove() {
        let mut ids = ReportIds::new();
        let k = ids.key(1, 0, "a");
        let at = Location {
            row: 1 << 40,
            slot: 255,
        };
        assert_eq!(ids.get(k), None);
        ids.insert(k, at);
        assert_eq!(ids.get(k), Some(at));
        // Another location does not remove it.
        ids.remove(k, Location { row: 1, slot: 0 });
        assert_eq!(ids.get(k), Some(at));
        ids.remove(k, at);
        assert_eq!(ids.get(k), None);
    }

    #[test]
    fn many_keys_over_the_shards() {
        let mut ids = ReportIds::new();
        let keys: Vec<IdKey> = (0..50_000).map(|i| ids.key(1, 0, &format!("v5-{i}"))).collect();
        for (i, &k) in keys.iter().enumerate() {
            ids.insert(k, Location { row: i as i64, slot: 0 });
        }
        assert!(ids.shards.iter().all(|s| !s.is_empty()), "keys spread over every shard");
        for (i, &k) in keys.iter().enumerate() {
            assert_eq!(ids.get(k), Some(Location { row: i as i64, slot: 0 }));
        }
        for (i, &k) in keys.iter().enumerate().filter(|(i, _)| i % 2 == 0) {
            ids.remove(k, Location { row: i as i64, slot: 0 });
        }
        for (i, &k) in keys.iter().enumerate() {
            assert_eq!(ids.get(k).is_some(), i % 2 == 1);
        }
    }
}
