use alloc::rc::Rc;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};

use beacon::MetricName;
use js_sys::Array;

use super::bindings::Entry;
use super::fcp::on_fcp;
use super::lifecycle::{double_raf, first_hidden_time, on_bfcache_restore, on_hidden, set_timeout};
use super::metric::{Metric, Options, Sink};
use super::observe::{entries, observe};
use crate::cls::{Cls, Shift};

struct State {
    metric: Metric,
    cls: Cls,
    /// The current session window's entries. When the window becomes the
    /// largest, the metric shares this very array, as in the reference.
    window_entries: Array,
}

impl State {
    fn new(metric: Metric) -> State {
        State {
            metric,
            cls: Cls::default(),
            window_entries: Array::new(),
        }
    }

    fn add(&mut self, entries: Vec<Entry>) {
        for e in entries {
            match self
                .cls
                .add(e.start_time(), e.value(), e.had_recent_input().unwrap_or(false))
            {
                Shift::Ignored => continue,
                Shift::Joined => {}
                Shift::NewWindow => self.window_entries = Array::new(),
            }
            self.window_entries.push(&e);
        }
        if self.cls.update() {
            self.metric.value = self.cls.value;
            self.metric.entries = self.window_entries.clone();
        }
    }
}

pub fn on_cls(sink: Sink, opts: Options) {
    first_hidden_time();
    // CLS starts after FCP, as in the Chrome UX Report.
    let started = Cell::new(false);
    let start = move |_: &Metric, _| {
        if !started.replace(true) {
            start_cls(sink.clone(), opts);
        }
    };
    on_fcp(Rc::new(start), Options::default());
}

fn start_cls(sink: Sink, opts: Options) {
    let state = Rc::new(RefCell::new(State::new(Metric::new(
        MetricName::Cls,
        0.0,
        None,
        opts,
        sink,
    ))));
    let s = state.clone();
    let po = observe(&["layout-shift"], None, move |entries, _| {
        let mut s = s.borrow_mut();
        s.add(entries);
        s.metric.report(false);
    });
    let Some(po) = po else { return };

    let s = state.clone();
    on_hidden(move || {
        let mut s = s.borrow_mut();
        s.add(entries(&po.take_records()));
        s.metric.report(true);
    });

    let s = state.clone();
    on_bfcache_restore(move |_| {
        {
            let mut s = s.borrow_mut();
            s.metric.restart(0.0, opts);
            s.cls = Cls::default();
            s.window_entries = Array::new();
        }
        let s = s.clone();
        double_raf(move || s.borrow_mut().metric.report(false));
    });

    // Lets CLS 0 be reported right after FCP when reporting all changes.
    set_timeout(move || state.borrow_mut().metric.report(false));
}
