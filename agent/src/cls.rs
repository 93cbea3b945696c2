//! Cumulative Layout Shift: the largest burst of unexpected layout shifts,
//! where a burst ("session window") ends after a 1 s gap or 5 s in total.

use alloc::vec::Vec;

/// Shifts less than this apart stay in one window.
pub const MAX_GAP_MS: f64 = 1000.0;
/// A window never spans more than this from its first shift.
pub const MAX_WINDOW_MS: f64 = 5000.0;

/// The session window being built. `E` is whatever identifies an entry (the
/// browser's `LayoutShift` object in the agent, a number in tests).
#[derive(Clone, Debug)]
pub struct SessionWindow<E> {
    pub value: f64,
    first_start: f64,
    last_start: f64,
    pub entries: Vec<E>,
}

impl<E> Default for SessionWindow<E> {
    fn default() -> Self {
        SessionWindow {
            value: 0.0,
            first_start: 0.0,
            last_start: 0.0,
            entries: Vec::new(),
        }
    }
}

impl<E> SessionWindow<E> {
    /// Adds one `layout-shift` entry. Shifts right after user input are
    /// expected and ignored. Returns whether the entry was counted.
    pub fn add(&mut self, start_time: f64, value: f64, had_recent_input: bool, entry: E) -> bool {
        if had_recent_input {
            return false;
        }
        let joins = self.value != 0.0
            && !self.entries.is_empty()
            && start_time - self.last_start < MAX_GAP_MS
            && start_time - self.first_start < MAX_WINDOW_MS;
        if joins {
            self.value += value;
            self.entries.push(entry);
        } else {
            self.value = value;
            self.first_start = start_time;
            self.entries.clear();
            self.entries.push(entry);
        }
        self.last_start = start_time;
        true
    }
}

/// CLS so far: the largest window's value and entries.
#[derive(Clone, Debug)]
pub struct Cls<E> {
    pub window: SessionWindow<E>,
    pub value: f64,
    pub entries: Vec<E>,
}

impl<E> Default for Cls<E> {
    fn default() -> Self {
        Cls {
            window: SessionWindow::default(),
            value: 0.0,
            entries: Vec::new(),
        }
    }
}

impl<E: Clone> Cls<E> {
    pub fn add(&mut self, start_time: f64, value: f64, had_recent_input: bool, entry: E) {
        self.window.add(start_time, value, had_recent_input, entry);
    }

    /// Promotes the current window to the CLS value when it became the
    /// largest (done once per observer batch, as the reference does).
    pub fn update(&mut self) {
        if self.window.value > self.value {
            self.value = self.window.value;
            self.entries = self.window.entries.clone();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cls(shifts: &[(f64, f64)]) -> Cls<usize> {
        let mut c = Cls::default();
        for (i, &(t, v)) in shifts.iter().enumerate() {
            c.add(t, v, false, i);
            c.update();
        }
        c
    }

    #[test]
    fn no_shifts_is_zero() {
        assert_eq!(cls(&[]).value, 0.0);
    }

    #[test]
    fn shifts_close_together_sum() {
        let c = cls(&[(100.0, 0.1), (600.0, 0.2), (1500.0, 0.05)]);
        assert_eq!(c.value, 0.1 + 0.2 + 0.05);
        assert_eq!(c.entries, vec![0, 1, 2]);
    }

    #[test]
    fn a_one_second_gap_starts_a_new_window() {
        // 999 ms apart joins; exactly 1000 ms does not.
        let c = cls(&[(0.0, 0.1), (999.0, 0.1), (1999.0, 0.15)]);
        assert_eq!(c.value, 0.1 + 0.1);
        assert_eq!(c.entries, vec![0, 1]);
        assert_eq!(c.window.value, 0.15);
        let c = cls(&[(0.0, 0.1), (1000.0, 0.05), (1500.0, 0.3)]);
        assert_eq!(c.value, 0.05 + 0.3);
        assert_eq!(c.entries, vec![1, 2]);
    }

    #[test]
    fn a_window_is_capped_at_five_seconds() {
        // Shifts every 900 ms: 0..4500 share one window; 5400 is > 5 s after 0.
        let shifts: Vec<(f64, f64)> = (0..8).map(|i| (i as f64 * 900.0, 0.01)).collect();
        let c = cls(&shifts);
        assert_eq!(c.entries, vec![0, 1, 2, 3, 4, 5]);
        let six: f64 = std::iter::repeat_n(0.01, 6).fold(0.0, |a, b| a + b);
        assert_eq!(c.value, six);
        assert_eq!(c.window.entries, vec![6, 7]);
        // Exactly 5000 ms after the first shift starts a new window too.
        let c = cls(&[
            (0.0, 0.1),
            (900.0, 0.1),
            (1800.0, 0.1),
            (2700.0, 0.1),
            (3600.0, 0.1),
            (4500.0, 0.1),
            (5000.0, 0.7),
        ]);
        assert_eq!(c.value, 0.7);
        assert_eq!(c.entries, vec![6]);
    }

    #[test]
    fn the_largest_window_wins_not_the_total() {
        let c = cls(&[(0.0, 0.2), (3000.0, 0.05), (3100.0, 0.05), (9000.0, 0.1)]);
        assert_eq!(c.value, 0.2);
        assert_eq!(c.entries, vec![0]);
    }

    #[test]
    fn shifts_after_input_are_ignored() {
        let mut c: Cls<usize> = Cls::default();
        c.add(0.0, 0.5, true, 0);
        c.add(10.0, 0.02, false, 1);
        c.update();
        assert_eq!(c.value, 0.02);
        assert_eq!(c.entries, vec![1]);
    }

    #[test]
    fn exact_sums_match_floating_point_order_of_the_reference() {
        // The reference adds shifts in arrival order; so do we, so the sums
        // are bit-identical, not merely close.
        let vals = [0.013_457, 0.000_211, 0.093_2, 0.004_4];
        let shifts: Vec<(f64, f64)> = vals.iter().enumerate().map(|(i, &v)| (i as f64 * 100.0, v)).collect();
        let mut expected = 0.0;
        for v in vals {
            expected += v;
        }
        assert_eq!(cls(&shifts).value.to_bits(), expected.to_bits());
    }
}
