//! Soft navigations (web-vitals 6 `reportSoftNavs`): the navigation a
//! metric instance belongs to (web-vitals `initMetric`'s `navigationId`,
//! `navigationInteractionId`, `navigationURL`, `navigationStartTime`) and
//! the values of a route's FCP and LCP from its `soft-navigation` and
//! `interaction-contentful-paint` entries. The browser side is
//! `web/soft_nav.rs`.

use alloc::string::String;

/// JavaScript's truthiness of a number: not 0, not NaN, not missing.
fn truthy(x: Option<f64>) -> Option<f64> {
    x.filter(|v| *v != 0.0 && !v.is_nan())
}

/// The navigation a metric instance measures.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Navigation {
    /// The browser's `navigationId` (0 where it has none).
    pub id: f64,
    /// The interaction that caused a soft navigation.
    pub interaction_id: Option<f64>,
    /// The URL of the navigation (the route for a soft navigation).
    pub url: Option<String>,
    /// When it started (0 for the hard navigation; the `soft-navigation`
    /// entry's `startTime`, or the restore's `timeStamp` after a bfcache
    /// restore).
    pub start_time: f64,
}

impl Navigation {
    /// The hard navigation, from the (valid) navigation entry, if any.
    pub fn hard(entry_navigation_id: Option<f64>, entry_url: Option<String>) -> Self {
        Navigation {
            id: truthy(entry_navigation_id).unwrap_or(0.0),
            interaction_id: None,
            url: entry_url,
            start_time: 0.0,
        }
    }

    /// `initMetric(name, value, type, id, interactionId, url, startTime)`:
    /// a missing (falsy) id or URL falls back to the hard navigation's, a
    /// missing start time is 0.
    pub fn new(
        id: Option<f64>,
        interaction_id: Option<f64>,
        url: Option<String>,
        start_time: Option<f64>,
        hard: &Navigation,
    ) -> Self {
        Navigation {
            id: truthy(id).unwrap_or(hard.id),
            interaction_id,
            url: url.filter(|u| !u.is_empty()).or_else(|| hard.url.clone()),
            start_time: truthy(start_time).unwrap_or(0.0),
        }
    }

    /// After a bfcache restore at `restored_at`: the same navigation, timed
    /// from the restore.
    pub fn restored(&self, restored_at: f64, hard: &Navigation) -> Self {
        Navigation::new(
            Some(self.id),
            self.interaction_id,
            self.url.clone(),
            Some(restored_at),
            hard,
        )
    }
}

/// A soft navigation's FCP: its paint (presentation time, else paint time)
/// relative to its start, never negative.
pub fn fcp_value(start_time: f64, presentation_time: Option<f64>, paint_time: Option<f64>) -> f64 {
    let paint = truthy(presentation_time).or(truthy(paint_time)).unwrap_or(0.0);
    (paint - start_time).max(0.0)
}

/// Whether an `interaction-contentful-paint` entry counts for the LCP of
/// `navigation`: only for a navigation with an id, and (where the entry
/// has an `interactionId`) only the interaction that caused it.
pub fn icp_counts(navigation: &Navigation, entry_interaction_id: Option<f64>) -> bool {
    truthy(Some(navigation.id)).is_some() && entry_interaction_id.is_none_or(|i| Some(i) == navigation.interaction_id)
}

/// The render time (0 where missing) of an `interaction-contentful-paint`
/// entry's largest paint and the LCP value it gives, relative to the
/// entry's start, never negative.
pub fn icp_value(render_time: Option<f64>, entry_start_time: f64) -> (f64, f64) {
    let render = truthy(render_time).unwrap_or(0.0);
    (render, (render - entry_start_time).max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hard() -> Navigation {
        Navigation::hard(Some(8915.0), Some("https://a.example/".into()))
    }

    #[test]
    fn hard_navigation_fields() {
        assert_eq!(
            hard(),
            Navigation {
                id: 8915.0,
                interaction_id: None,
                url: Some("https://a.example/".into()),
                start_time: 0.0
            }
        );
        assert_eq!(Navigation::hard(None, None), Navigation::default());
    }

    #[test]
    fn soft_navigation_fields_fall_back_to_the_hard_navigation() {
        let soft = Navigation::new(
            Some(8922.0),
            Some(5726.0),
            Some("https://a.example/route1".into()),
            Some(431.7),
            &hard(),
        );
        assert_eq!(
            (soft.id, soft.interaction_id, soft.start_time),
            (8922.0, Some(5726.0), 431.7)
        );
        assert_eq!(soft.url.as_deref(), Some("https://a.example/route1"));
        let missing = Navigation::new(Some(0.0), None, Some(String::new()), Some(f64::NAN), &hard());
        assert_eq!(missing, hard());
    }

    #[test]
    fn a_restore_keeps_the_navigation_and_times_it_from_the_restore() {
        let soft = Navigation::new(
            Some(8922.0),
            Some(5726.0),
            Some("https://a.example/r".into()),
            Some(431.7),
            &hard(),
        );
        let restored = soft.restored(5000.0, &hard());
        assert_eq!(
            (restored.id, restored.interaction_id, restored.start_time),
            (8922.0, Some(5726.0), 5000.0)
        );
        assert_eq!(restored.url, soft.url);
        assert_eq!(Navigation::default().restored(10.0, &hard()).id, 8915.0);
    }

    #[test]
    fn soft_fcp_is_the_first_paint_after_the_start() {
        assert_eq!(fcp_value(431.5, Some(456.0), Some(445.5)), 24.5);
        assert_eq!(fcp_value(431.5, None, Some(445.5)), 14.0);
        assert_eq!(fcp_value(431.5, Some(0.0), None), 0.0, "clamped at 0");
    }

    #[test]
    fn only_the_navigations_own_interaction_counts_for_its_lcp() {
        let soft = Navigation::new(Some(8922.0), Some(5726.0), None, Some(431.7), &hard());
        assert!(icp_counts(&soft, Some(5726.0)));
        assert!(!icp_counts(&soft, Some(5733.0)));
        assert!(icp_counts(&soft, None));
        assert!(
            !icp_counts(&hard(), Some(5726.0)),
            "the hard navigation has no interaction"
        );
        assert!(!icp_counts(&Navigation::default(), None), "no navigation id");
    }

    #[test]
    fn soft_lcp_value_from_the_render_time() {
        assert_eq!(icp_value(Some(456.0), 431.5), (456.0, 24.5));
        assert_eq!(icp_value(None, 431.5), (0.0, 0.0));
    }
}
