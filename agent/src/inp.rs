//! Interaction to Next Paint: close to the 98th percentile of the page's
//! interaction latencies, from the 10 longest interactions kept in memory.

use alloc::vec;
use alloc::vec::Vec;

use beacon::NavigationType;

/// Only this many of the longest interactions are kept as candidates.
pub const MAX_CANDIDATES: usize = 10;
/// One worst interaction is skipped for every this many interactions.
pub const INTERACTIONS_PER_SKIP: f64 = 50.0;

/// All event entries of one user interaction (same `interactionId`); its
/// latency is the longest entry's duration.
#[derive(Clone, Debug)]
pub struct Interaction<E> {
    pub id: u64,
    pub latency: f64,
    start_time: f64,
    pub entries: Vec<E>,
}

/// The longest interactions of the page, longest first.
#[derive(Clone, Debug)]
pub struct LongestInteractions<E> {
    list: Vec<Interaction<E>>,
}

impl<E> Default for LongestInteractions<E> {
    fn default() -> Self {
        LongestInteractions { list: Vec::new() }
    }
}

/// The interaction INP reports.
#[derive(Debug, PartialEq)]
pub enum Selected<'a, E> {
    Interaction(&'a Interaction<E>),
    /// Interactions happened (after a bfcache restore or soft navigation)
    /// but none was long enough to be observed: report the 8 ms floor.
    Floor,
}

impl<E: PartialEq> PartialEq for Interaction<E> {
    fn eq(&self, o: &Self) -> bool {
        self.id == o.id && self.latency == o.latency && self.entries == o.entries
    }
}

impl<E> LongestInteractions<E> {
    pub fn clear(&mut self) {
        self.list.clear();
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.list.len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The kept interaction with this id.
    #[cfg(feature = "attribution")]
    pub fn get(&self, id: u64) -> Option<&Interaction<E>> {
        self.list.iter().find(|i| i.id == id)
    }

    /// The kept interactions, longest first.
    #[cfg(feature = "attribution")]
    pub fn iter(&self) -> impl Iterator<Item = &Interaction<E>> {
        self.list.iter()
    }

    /// Adds one `event` or `first-input` entry.
    pub fn add(&mut self, interaction_id: u64, duration: f64, start_time: f64, entry: E) {
        if interaction_id == 0 {
            return; // not part of an interaction (e.g. mouseover)
        }
        let pos = self.list.iter().position(|i| i.id == interaction_id);
        let shortest = self.list.last().map(|i| i.latency);
        match pos {
            Some(p) => {
                let i = &mut self.list[p];
                if duration > i.latency {
                    i.entries.clear();
                    i.entries.push(entry);
                    i.latency = duration;
                    i.start_time = start_time;
                } else if duration == i.latency && start_time == i.start_time {
                    i.entries.push(entry);
                }
            }
            None => {
                if self.list.len() >= MAX_CANDIDATES && shortest.is_some_and(|s| duration <= s) {
                    return;
                }
                self.list.push(Interaction {
                    id: interaction_id,
                    latency: duration,
                    start_time,
                    entries: vec![entry],
                });
            }
        }
        // Stable sort keeps earlier interactions first among equal latencies,
        // as the reference's Array.prototype.sort does.
        crate::sort::sort_by_key_f64(&mut self.list, |i| -i.latency);
        self.list.truncate(MAX_CANDIDATES);
    }

    /// The interaction at index `min(kept - 1, floor(count / 50))`.
    pub fn select(&self, interaction_count: f64, navigation_type: NavigationType) -> Option<Selected<'_, E>> {
        if self.list.is_empty() {
            let restarted = matches!(
                navigation_type,
                NavigationType::BackForwardCache | NavigationType::SoftNavigation
            );
            return (interaction_count != 0.0 && restarted).then_some(Selected::Floor);
        }
        let last = self.list.len() - 1;
        // floor() for a non-negative count; `as` saturates (NaN gives 0).
        let skip = (interaction_count / INTERACTIONS_PER_SKIP) as usize;
        let index = skip.min(last);
        self.list.get(index).map(Selected::Interaction)
    }
}

/// Estimates `performance.interactionCount` where the browser lacks it:
/// interaction ids grow by 7 per interaction in Chromium.
#[derive(Clone, Copy, Debug)]
pub struct InteractionCountEstimate {
    min_id: f64,
    max_id: f64,
    pub count: f64,
}

impl Default for InteractionCountEstimate {
    fn default() -> Self {
        Self::new()
    }
}

impl InteractionCountEstimate {
    pub const fn new() -> Self {
        InteractionCountEstimate {
            min_id: f64::INFINITY,
            max_id: 0.0,
            count: 0.0,
        }
    }

    pub fn add(&mut self, interaction_id: f64) {
        if interaction_id > 0.0 {
            self.min_id = self.min_id.min(interaction_id);
            self.max_id = self.max_id.max(interaction_id);
            self.count = (self.max_id - self.min_id) / 7.0 + 1.0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use NavigationType::*;

    /// Interactions with ids 1..=n and the given latencies.
    fn with_latencies(latencies: &[f64]) -> LongestInteractions<u64> {
        let mut l = LongestInteractions::default();
        for (i, &d) in latencies.iter().enumerate() {
            let id = i as u64 + 1;
            l.add(id, d, id as f64 * 100.0, id);
        }
        l
    }

    fn inp(l: &LongestInteractions<u64>, count: f64) -> f64 {
        match l.select(count, Navigate) {
            Some(Selected::Interaction(i)) => i.latency,
            other => panic!("{other:?}"),
        }
    }

    /// Brute force: sort all latencies descending and skip one per 50.
    fn reference(latencies: &[f64]) -> f64 {
        let mut all = latencies.to_vec();
        all.sort_by(|a, b| b.total_cmp(a));
        let idx = ((latencies.len() as f64 / 50.0).floor() as usize).min(all.len().min(10) - 1);
        all[idx]
    }

    fn latencies(n: usize) -> Vec<f64> {
        // Distinct, shuffled latencies in 8 ms steps as browsers round them.
        (0..n).map(|i| 8.0 * (((i * 37) % n) as f64 + 1.0)).collect()
    }

    #[test]
    fn fewer_than_50_interactions_is_the_worst() {
        let l = latencies(49);
        let kept = with_latencies(&l);
        assert_eq!(kept.len(), 10);
        assert_eq!(inp(&kept, 49.0), 49.0 * 8.0);
        assert_eq!(inp(&kept, 49.0), reference(&l));
    }

    #[test]
    fn fifty_interactions_skip_the_worst() {
        let l = latencies(50);
        let kept = with_latencies(&l);
        assert_eq!(inp(&kept, 50.0), 49.0 * 8.0);
        assert_eq!(inp(&kept, 50.0), reference(&l));
    }

    #[test]
    fn a_hundred_interactions_skip_two() {
        let l = latencies(100);
        let kept = with_latencies(&l);
        assert_eq!(inp(&kept, 100.0), 98.0 * 8.0);
        assert_eq!(inp(&kept, 100.0), reference(&l));
    }

    #[test]
    fn five_hundred_and_more_use_the_last_kept_candidate() {
        for n in [500, 501, 549, 550, 1000] {
            let l = latencies(n);
            let kept = with_latencies(&l);
            // floor(n/50) >= 10 > kept - 1, so the 10th longest is INP.
            assert_eq!(inp(&kept, n as f64), (n as f64 - 9.0) * 8.0, "n={n}");
            assert_eq!(inp(&kept, n as f64), reference(&l), "n={n}");
        }
    }

    #[test]
    fn entries_of_one_interaction_merge_by_longest_duration() {
        let mut l = LongestInteractions::default();
        l.add(7, 40.0, 100.0, 1); // pointerdown
        l.add(7, 40.0, 100.0, 2); // same duration and start: same frame, kept
        l.add(7, 32.0, 110.0, 3); // shorter: ignored
        assert_eq!(l.len(), 1);
        let Some(Selected::Interaction(i)) = l.select(1.0, Navigate) else {
            panic!()
        };
        assert_eq!((i.latency, i.entries.clone()), (40.0, vec![1, 2]));
        l.add(7, 104.0, 105.0, 4); // longer replaces the entries
        let Some(Selected::Interaction(i)) = l.select(1.0, Navigate) else {
            panic!()
        };
        assert_eq!((i.latency, i.entries.clone()), (104.0, vec![4]));
    }

    #[test]
    fn entries_without_interaction_id_are_ignored() {
        let mut l = LongestInteractions::default();
        l.add(0, 500.0, 1.0, 1);
        assert!(l.is_empty());
        assert_eq!(l.select(0.0, Navigate), None);
    }

    #[test]
    fn short_new_interactions_do_not_displace_kept_ones() {
        let mut l = with_latencies(&[100.0; 10]);
        l.add(99, 100.0, 1.0, 99); // equal to the shortest: not kept
        assert!(l.list.iter().all(|i| i.id != 99));
        l.add(98, 101.0, 1.0, 98);
        assert_eq!(l.list[0].id, 98);
        assert_eq!(l.len(), 10);
    }

    #[test]
    fn floor_after_restore_without_observed_interactions() {
        let l: LongestInteractions<u64> = LongestInteractions::default();
        assert_eq!(l.select(2.0, BackForwardCache), Some(Selected::Floor));
        assert_eq!(l.select(2.0, SoftNavigation), Some(Selected::Floor));
        assert_eq!(l.select(2.0, Navigate), None);
        assert_eq!(l.select(0.0, BackForwardCache), None);
    }

    #[test]
    fn interaction_count_estimate_from_ids() {
        let mut e = InteractionCountEstimate::default();
        assert_eq!(e.count, 0.0);
        e.add(0.0);
        assert_eq!(e.count, 0.0);
        for id in [1000.0, 1007.0, 1021.0] {
            e.add(id);
        }
        assert_eq!(e.count, 4.0);
    }
}
