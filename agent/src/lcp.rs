//! Largest Contentful Paint: the last `largest-contentful-paint` entry seen
//! before the user first interacts or hides the page.

/// LCP's value for an entry's `startTime` (render time, or load time for
/// cross-origin images without Timing-Allow-Origin), or `None` if the page
/// was hidden before it rendered.
pub fn value(start_time: f64, activation_start: f64, first_hidden_time: f64) -> Option<f64> {
    if start_time < first_hidden_time {
        Some((start_time - activation_start).max(0.0))
    } else {
        None
    }
}

/// Which entries of an observer batch count: only the last one, unless every
/// change is reported.
pub fn entries_to_process(batch_len: usize, report_all_changes: bool) -> core::ops::Range<usize> {
    if report_all_changes {
        0..batch_len
    } else {
        batch_len.saturating_sub(1)..batch_len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_last_entry_of_a_batch_unless_all_changes() {
        assert_eq!(entries_to_process(3, false), 2..3);
        assert_eq!(entries_to_process(3, true), 0..3);
        assert_eq!(entries_to_process(0, false), 0..0);
    }

    #[test]
    fn hidden_and_prerender_rules() {
        assert_eq!(value(900.0, 0.0, f64::INFINITY), Some(900.0));
        assert_eq!(value(900.0, 0.0, 800.0), None);
        assert_eq!(value(900.0, 1000.0, f64::INFINITY), Some(0.0));
    }
}
