//! Time to First Byte: the navigation entry's `responseStart`, from
//! activation for prerendered pages.

/// Whether the navigation entry can be trusted: browsers sometimes report 0
/// (privacy), negative, or future values for `responseStart`.
pub fn entry_is_valid(response_start: f64, now: f64) -> bool {
    response_start > 0.0 && response_start < now
}

pub fn value(response_start: f64, activation_start: f64) -> f64 {
    (response_start - activation_start).max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_response_start_is_discarded() {
        assert!(!entry_is_valid(0.0, 100.0));
        assert!(!entry_is_valid(-5.0, 100.0));
        assert!(!entry_is_valid(150.0, 100.0));
        assert!(entry_is_valid(42.0, 100.0));
    }

    #[test]
    fn measured_from_activation_and_clamped() {
        assert_eq!(value(42.0, 0.0), 42.0);
        assert_eq!(value(42.0, 40.0), 2.0);
        assert_eq!(value(42.0, 500.0), 0.0);
    }
}
