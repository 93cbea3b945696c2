use alloc::rc::Rc;
use core::cell::RefCell;

use beacon::MetricName;
use js_sys::{Array, Function};

use super::bindings::{self, now, Observer};
use super::lifecycle::{
    activation_start, double_raf, first_hidden_time, listen, on_bfcache_restore, when_activated, when_idle_or_hidden,
};
use super::metric::{Metric, Options, Sink};
use super::observe::observe;
use crate::lcp;

struct State {
    metric: Metric,
    finalized: bool,
    observer: Option<Observer>,
    finalize_listener: Option<Function>,
}

pub fn on_lcp(sink: Sink, opts: Options) {
    when_activated(move || {
        first_hidden_time();
        let state = Rc::new(RefCell::new(State {
            metric: Metric::new(MetricName::Lcp, -1.0, None, opts, sink),
            finalized: false,
            observer: None,
            finalize_listener: None,
        }));
        let s = state.clone();
        let po = observe(&["largest-contentful-paint"], None, move |entries, _| {
            for e in &entries[lcp::entries_to_process(entries.len(), opts.report_all_changes)] {
                if let Some(v) = lcp::value(e.start_time(), activation_start(), first_hidden_time()) {
                    let mut s = s.borrow_mut();
                    s.metric.value = v;
                    s.metric.entries = Array::of1(e);
                    s.metric.report(false);
                }
            }
        });
        let Some(po) = po else { return };
        state.borrow_mut().observer = Some(po);

        // The browser stops emitting LCP after input, but does not tell us:
        // report as final on the first trusted keydown, click or hide.
        let s = state.clone();
        let listener = listen(lcp::FINALIZE_EVENTS[0], true, move |event| {
            if event.is_trusted() != Some(true) || s.borrow().finalized {
                return;
            }
            let id = s.borrow().metric.id.clone();
            let s = s.clone();
            when_idle_or_hidden(move || finalize(&s, &id));
        });
        for t in &lcp::FINALIZE_EVENTS[1..] {
            bindings::add_event_listener(t, &listener, true);
        }
        state.borrow_mut().finalize_listener = Some(listener);
        if super::early::had_input() {
            // The user interacted before the agent ran: LCP is final.
            let id = state.borrow().metric.id.clone();
            let s = state.clone();
            when_idle_or_hidden(move || finalize(&s, &id));
        }

        on_bfcache_restore(move |event| {
            {
                let mut s = state.borrow_mut();
                s.metric.restart(-1.0, opts);
                s.finalized = false;
            }
            let s = state.clone();
            let restored_at = event.time_stamp();
            double_raf(move || {
                let mut s = s.borrow_mut();
                s.metric.value = now() - restored_at;
                s.finalized = true;
                s.metric.report(true);
            });
        });
    });
}

fn finalize(state: &Rc<RefCell<State>>, id: &str) {
    let mut s = state.borrow_mut();
    if s.finalized {
        return;
    }
    if let Some(po) = s.observer.take() {
        po.disconnect();
    }
    if let Some(l) = s.finalize_listener.take() {
        for t in lcp::FINALIZE_EVENTS {
            bindings::remove_event_listener(t, &l, true);
        }
    }
    // A bfcache restore in the meantime started a new instance: leave it.
    if s.metric.id == id {
        s.finalized = true;
        s.metric.report(true);
    }
}
