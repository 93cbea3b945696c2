//! CLS attribution in the page: each unexpected shift's largest source
//! named when the shift is processed; the session window's largest shift
//! at each report.

use js_sys::WeakMap;
use wasm_bindgen::JsCast;
use web_sys::PerformanceEntry;

use super::bindings::{ShiftEntry, ShiftSource};
use super::{load_state, Attribution, ClsAttribution, Options};
use crate::attribution::cls::{largest_shift, largest_source};
use crate::web::instance::State;

fn sources(e: &ShiftEntry) -> Vec<ShiftSource> {
    let Some(list) = e.sources() else { return Vec::new() };
    (0..list.length()).map(|i| list.get(i).unchecked_into()).collect()
}

fn largest(e: &ShiftEntry) -> Option<ShiftSource> {
    let s = sources(e);
    let elements: Vec<bool> = s.iter().map(|s| s.node().is_some_and(|n| n.node_type() == 1)).collect();
    largest_source(&elements).map(|i| s[i].clone())
}

/// One `onCLS` registration's attribution state.
pub struct ClsTracker {
    options: Options,
    /// Source -> its target, as the reference's WeakMap.
    targets: WeakMap,
}

impl ClsTracker {
    pub fn new(options: Options) -> ClsTracker {
        ClsTracker {
            options,
            targets: WeakMap::new(),
        }
    }

    /// After an unexpected shift is processed: its largest source's name.
    pub fn processed(&self, entry: &PerformanceEntry) {
        if let Some(source) = largest(entry.unchecked_ref()) {
            if let Some(node) = source.node() {
                self.targets
                    .set(source.unchecked_ref(), &self.options.target(&node).into());
            }
        }
    }

    pub fn attribute(&self, s: &State) -> Attribution {
        let mut a = ClsAttribution {
            largest_shift_target: None,
            largest_shift_time: None,
            largest_shift_value: None,
            largest_shift_source: None,
            largest_shift_entry: None,
            load_state: None,
        };
        let entries: Vec<ShiftEntry> = (0..s.entries.length())
            .map(|i| s.entries.get(i).unchecked_into())
            .collect();
        let values: Vec<f64> = entries.iter().map(ShiftEntry::value).collect();
        if let Some(e) = largest_shift(&values).map(|i| &entries[i]) {
            if let Some(source) = largest(e) {
                let time = e.start_time();
                a.largest_shift_target = Some(self.targets.get(source.unchecked_ref()).as_string());
                a.largest_shift_time = Some(time);
                a.largest_shift_value = Some(e.value());
                a.largest_shift_source = Some(source.into());
                a.largest_shift_entry = Some(e.clone().unchecked_into());
                a.load_state = Some(load_state(time));
            }
        }
        Attribution::Cls(a)
    }
}
