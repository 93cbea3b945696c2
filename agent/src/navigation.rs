//! The `navigationType` of a metric, decided as the reference's `initMetric`.

use beacon::NavigationType;

/// What the page knows about how it was loaded, when a metric starts.
#[derive(Clone, Copy, Debug, Default)]
pub struct PageState<'a> {
    /// A bfcache restore happened on this page (`pageshow` with `persisted`).
    pub restored_from_bfcache: bool,
    /// The navigation entry exists and its `responseStart` is valid.
    pub has_navigation_entry: bool,
    pub prerendering: bool,
    pub activation_start: f64,
    pub was_discarded: bool,
    /// The navigation entry's `type` (`navigate`, `reload`, `back_forward`...).
    pub entry_type: Option<&'a str>,
}

pub fn navigation_type(p: &PageState) -> NavigationType {
    if p.restored_from_bfcache {
        return NavigationType::BackForwardCache;
    }
    if !p.has_navigation_entry {
        return NavigationType::Navigate;
    }
    if p.prerendering || p.activation_start > 0.0 {
        NavigationType::Prerender
    } else if p.was_discarded {
        NavigationType::Restore
    } else {
        p.entry_type
            .and_then(NavigationType::from_entry_type)
            .unwrap_or(NavigationType::Navigate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nav(entry_type: &str) -> PageState<'_> {
        PageState {
            has_navigation_entry: true,
            entry_type: Some(entry_type),
            ..Default::default()
        }
    }

    #[test]
    fn order_of_precedence() {
        let mut p = nav("reload");
        assert_eq!(navigation_type(&p), NavigationType::Reload);
        p.was_discarded = true;
        assert_eq!(navigation_type(&p), NavigationType::Restore);
        p.activation_start = 12.0;
        assert_eq!(navigation_type(&p), NavigationType::Prerender);
        p.activation_start = 0.0;
        p.prerendering = true;
        assert_eq!(navigation_type(&p), NavigationType::Prerender);
        p.restored_from_bfcache = true;
        assert_eq!(navigation_type(&p), NavigationType::BackForwardCache);
    }

    #[test]
    fn underscores_become_dashes() {
        assert_eq!(navigation_type(&nav("back_forward")), NavigationType::BackForward);
        assert_eq!(navigation_type(&nav("navigate")), NavigationType::Navigate);
    }

    #[test]
    fn without_a_valid_navigation_entry_it_is_navigate() {
        let p = PageState {
            was_discarded: true,
            prerendering: true,
            entry_type: Some("reload"),
            ..Default::default()
        };
        assert_eq!(navigation_type(&p), NavigationType::Navigate);
    }
}
