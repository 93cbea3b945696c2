//! The reference's `getLoadState(timestamp)`: what the document was doing
//! at a moment, from `document.readyState` and the navigation entry.

use beacon::LoadState;

/// The navigation entry's document milestones (0 while not reached).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Milestones {
    pub dom_interactive: f64,
    pub dom_content_loaded_event_start: f64,
    pub dom_complete: f64,
}

/// `loading` while the document still loads; otherwise by the milestones
/// of a valid navigation entry; `complete` without one.
pub fn load_state(ready_state_loading: bool, timestamp: f64, nav: Option<Milestones>) -> LoadState {
    if ready_state_loading {
        return LoadState::Loading;
    }
    if let Some(n) = nav {
        if timestamp < n.dom_interactive {
            return LoadState::Loading;
        } else if n.dom_content_loaded_event_start == 0.0 || timestamp < n.dom_content_loaded_event_start {
            return LoadState::DomInteractive;
        } else if n.dom_complete == 0.0 || timestamp < n.dom_complete {
            return LoadState::DomContentLoaded;
        }
    }
    LoadState::Complete
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAV: Milestones = Milestones {
        dom_interactive: 100.0,
        dom_content_loaded_event_start: 150.0,
        dom_complete: 300.0,
    };

    #[test]
    fn by_milestone() {
        assert_eq!(load_state(false, 50.0, Some(NAV)), LoadState::Loading);
        assert_eq!(load_state(false, 100.0, Some(NAV)), LoadState::DomInteractive);
        assert_eq!(load_state(false, 149.9, Some(NAV)), LoadState::DomInteractive);
        assert_eq!(load_state(false, 150.0, Some(NAV)), LoadState::DomContentLoaded);
        assert_eq!(load_state(false, 300.0, Some(NAV)), LoadState::Complete);
        assert_eq!(
            load_state(false, -1.0, Some(NAV)),
            LoadState::Loading,
            "before any (bfcache: -1)"
        );
    }

    #[test]
    fn still_loading_unreached_milestones_and_no_entry() {
        assert_eq!(load_state(true, 1e9, Some(NAV)), LoadState::Loading);
        let early = Milestones {
            dom_content_loaded_event_start: 0.0,
            dom_complete: 0.0,
            ..NAV
        };
        assert_eq!(load_state(false, 1e9, Some(early)), LoadState::DomInteractive);
        let no_complete = Milestones {
            dom_complete: 0.0,
            ..NAV
        };
        assert_eq!(load_state(false, 1e9, Some(no_complete)), LoadState::DomContentLoaded);
        assert_eq!(load_state(false, 0.0, None), LoadState::Complete);
    }
}
