//! First Contentful Paint: the `paint` entry named `first-contentful-paint`.

/// FCP's value for the entry, or `None` when the page was hidden before the
/// paint (a background paint is not what the user saw). Measured from
/// activation for prerendered pages, clamped at 0.
pub fn value(start_time: f64, activation_start: f64, first_hidden_time: f64) -> Option<f64> {
    if start_time < first_hidden_time {
        Some((start_time - activation_start).max(0.0))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visible_paint_counts() {
        assert_eq!(value(412.5, 0.0, f64::INFINITY), Some(412.5));
    }

    #[test]
    fn paint_after_hide_is_ignored() {
        assert_eq!(value(412.5, 0.0, 400.0), None);
        assert_eq!(value(400.0, 0.0, 400.0), None);
        assert_eq!(value(10.0, 0.0, 0.0), None, "hidden at load");
    }

    #[test]
    fn prerender_measures_from_activation_clamped() {
        assert_eq!(value(500.0, 300.0, f64::INFINITY), Some(200.0));
        assert_eq!(value(100.0, 300.0, f64::INFINITY), Some(0.0));
    }
}
