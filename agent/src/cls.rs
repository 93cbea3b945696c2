//! Cumulative Layout Shift: the largest burst of unexpected layout shifts,
//! where a burst ("session window") ends after a 1 s gap or 5 s in total.

/// Shifts less than this apart stay in one window.
pub const MAX_GAP_MS: f64 = 1000.0;
/// A window never spans more than this from its first shift.
pub const MAX_WINDOW_MS: f64 = 5000.0;

/// What adding a shift did to the session window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shift {
    /// Right after user input: expected, not counted.
    Ignored,
    /// Added to the current window.
    Joined,
    /// Opened a new window with this shift alone.
    NewWindow,
}

/// The session window being built. Entries are kept by the caller (the
/// agent keeps the browser's `LayoutShift` objects in a JS array, shared
/// with the metric as the reference does), guided by [`Shift`].
#[derive(Clone, Copy, Debug, Default)]
pub struct SessionWindow {
    pub value: f64,
    first_start: f64,
    last_start: f64,
}

impl SessionWindow {
    /// Adds one `layout-shift` entry.
    pub fn add(&mut self, start_time: f64, value: f64, had_recent_input: bool) -> Shift {
        if had_recent_input {
            return Shift::Ignored;
        }
        // A window with value 0 holds nothing worth extending (the
        // reference tests the session value, not the entry count).
        let joins = self.value != 0.0
            && start_time - self.last_start < MAX_GAP_MS
            && start_time - self.first_start < MAX_WINDOW_MS;
        self.last_start = start_time;
        if joins {
            self.value += value;
            Shift::Joined
        } else {
            self.value = value;
            self.first_start = start_time;
            Shift::NewWindow
        }
    }
}

/// CLS so far: the largest window's value.
#[derive(Clone, Copy, Debug, Default)]
pub struct Cls {
    pub window: SessionWindow,
    pub value: f64,
}

impl Cls {
    pub fn add(&mut self, start_time: f64, value: f64, had_recent_input: bool) -> Shift {
        self.window.add(start_time, value, had_recent_input)
    }

    /// Promotes the current window to the CLS value when it became the
    /// largest (done once per observer batch, as the reference does).
    /// Returns whether it did: the metric's entries become the window's.
    pub fn update(&mut self) -> bool {
        let grew = self.window.value > self.value;
        if grew {
            self.value = self.window.value;
        }
        grew
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;

    /// CLS plus entry bookkeeping as the agent does it: the window's
    /// entries, and the metric's entries (the largest window's).
    struct Run {
        value: f64,
        entries: Vec<usize>,
        window: Vec<usize>,
        window_value: f64,
    }

    fn cls(shifts: &[(f64, f64)]) -> Run {
        run(&shifts.iter().map(|&(t, v)| (t, v, false)).collect::<Vec<_>>())
    }

    fn run(shifts: &[(f64, f64, bool)]) -> Run {
        let mut c = Cls::default();
        let (mut window, mut entries) = (Vec::new(), Vec::new());
        for (i, &(t, v, input)) in shifts.iter().enumerate() {
            match c.add(t, v, input) {
                Shift::Ignored => {}
                Shift::Joined => window.push(i),
                Shift::NewWindow => window = vec![i],
            }
            if c.update() {
                entries = window.clone();
            }
        }
        Run {
            value: c.value,
            entries,
            window,
            window_value: c.window.value,
        }
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
        assert_eq!(c.window_value, 0.15);
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
        assert_eq!(c.window, vec![6, 7]);
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
        let c = run(&[(0.0, 0.5, true), (10.0, 0.02, false)]);
        assert_eq!(c.value, 0.02);
        assert_eq!(c.entries, vec![1]);
    }

    #[test]
    fn a_zero_shift_does_not_extend_an_empty_window() {
        let c = cls(&[(0.0, 0.0), (100.0, 0.1), (200.0, 0.1)]);
        assert_eq!(c.entries, vec![1, 2]);
        assert_eq!(c.value, 0.2);
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
