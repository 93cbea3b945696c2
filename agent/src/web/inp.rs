use alloc::rc::Rc;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};

use beacon::MetricName;
use js_sys::Array;

use super::bindings::{self, Entry};
use super::global::Global;
use super::lifecycle::{first_hidden_time, on_bfcache_restore, on_hidden, when_activated, when_idle_or_hidden};
use super::metric::{Metric, Options, Sink};
use super::observe::{entries, observe};
use crate::inp::{InteractionCountEstimate, LongestInteractions, Selected, DEFAULT_DURATION_THRESHOLD};

/// Set when the browser lacks `performance.interactionCount` and we
/// estimate it from interaction ids instead.
static ESTIMATE: Global<Cell<Option<InteractionCountEstimate>>> = Global::new(Cell::new(None));

fn interaction_count() -> f64 {
    match ESTIMATE.with(Cell::get) {
        Some(e) => e.count,
        None => bindings::get(&bindings::global("performance"), "interactionCount")
            .as_f64()
            .unwrap_or(0.0),
    }
}

fn start_interaction_count_estimate() {
    if bindings::has(&bindings::global("performance"), "interactionCount") || ESTIMATE.with(Cell::get).is_some() {
        return;
    }
    let po = observe(&["event"], Some(0.0), |entries, _| {
        ESTIMATE.with(|cell| {
            let mut e = cell.get().unwrap_or_default();
            for entry in entries {
                e.add(entry.interaction_id().unwrap_or(0.0));
            }
            cell.set(Some(e));
        });
    });
    if po.is_some() {
        ESTIMATE.with(|cell| cell.set(Some(InteractionCountEstimate::default())));
    }
}

struct State {
    metric: Metric,
    longest: LongestInteractions<Entry>,
    /// Interactions before the current instance started (bfcache restore).
    prev_interaction_count: f64,
}

impl State {
    fn update(&mut self) {
        let count = interaction_count() - self.prev_interaction_count;
        let (latency, entries) = match self.longest.select(count, self.metric.navigation_type) {
            Some(Selected::Interaction(i)) => (i.latency, i.entries.iter().collect::<Array>()),
            Some(Selected::Floor) => (8.0, Array::new()),
            None => return,
        };
        if latency != self.metric.value {
            self.metric.value = latency;
            self.metric.entries = entries;
            self.metric.report(false);
        }
    }
}

/// Whether the browser has Event Timing with interaction ids.
fn supported() -> bool {
    let proto = bindings::get(&bindings::global("PerformanceEventTiming"), "prototype");
    bindings::has(&proto, "interactionId")
}

pub fn on_inp(sink: Sink, opts: Options) {
    if !supported() {
        return;
    }
    first_hidden_time();
    when_activated(move || {
        start_interaction_count_estimate();
        let state = Rc::new(RefCell::new(State {
            metric: Metric::new(MetricName::Inp, -1.0, None, opts, sink),
            longest: LongestInteractions::default(),
            prev_interaction_count: 0.0,
        }));

        // Entries are handled in an idle task so that all entries of an
        // interaction have arrived, and no work lands on its frame.
        let handle = {
            let state = state.clone();
            Rc::new(move |entries: Vec<Entry>, force: bool| {
                let state = state.clone();
                when_idle_or_hidden(move || {
                    let mut s = state.borrow_mut();
                    for e in entries {
                        let id = e.interaction_id().unwrap_or(0.0);
                        s.longest.add(id as u64, e.duration(), e.start_time(), e);
                    }
                    s.update();
                    if force {
                        s.metric.report(true);
                    }
                });
            })
        };
        let h = handle.clone();
        let threshold = opts.duration_threshold.unwrap_or(DEFAULT_DURATION_THRESHOLD);
        let po = observe(&["event", "first-input"], Some(threshold), move |entries, _| {
            h(entries, false)
        });
        let Some(po) = po else { return };

        on_hidden(move || handle(entries(&po.take_records()), true));
        on_bfcache_restore(move |_| {
            let mut s = state.borrow_mut();
            s.prev_interaction_count = interaction_count();
            s.longest.clear();
            s.metric.restart(-1.0, opts);
        });
    });
}
