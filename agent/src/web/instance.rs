//! Metric instances (web-vitals `initMetric` + `bindReporter`) and where
//! their reports go.

use std::cell::RefCell;
use std::rc::Rc;

use beacon::{MetricName, NavigationType, Rating};
use js_sys::Array;

use crate::report::{Changes, Reporter};
use crate::soft_nav::Navigation;

/// One report of an instance, as its sink receives it.
pub struct Report<'a> {
    pub name: MetricName,
    pub value: f64,
    pub delta: f64,
    pub rating: Rating,
    pub id: &'a str,
    pub navigation_type: NavigationType,
    /// The browser's entry objects (shared with the instance).
    pub entries: &'a Array,
    /// The navigation (hard, soft, restored) the instance measures.
    pub navigation: &'a Navigation,
    /// What attribution says about it, where the sink asked for it.
    #[cfg(feature = "attribution")]
    pub attribution: Option<&'a super::attribution::Attribution>,
}

/// Where an instance's reports go.
pub enum Sink {
    /// A Rust callback (the crate's API).
    Rust(Box<dyn FnMut(&crate::Metric)>),
    /// An internal hook (CLS starts after FCP).
    Hook(Box<dyn FnMut()>),
    /// The beacon queue of `init()`.
    Queue,
    /// A JavaScript callback, given one object per instance updated in place.
    #[cfg(feature = "js")]
    Js(crate::js::Callback),
    /// Another sink whose reports carry attribution, with its options.
    #[cfg(feature = "attribution")]
    Attributed(Box<Sink>, super::attribution::Options),
}

impl Sink {
    fn deliver(&mut self, r: &Report) {
        match self {
            Sink::Rust(f) => f(&crate::Metric {
                name: r.name,
                value: r.value,
                rating: r.rating,
                delta: r.delta,
                id: r.id.into(),
                navigation_type: r.navigation_type,
                entries: super::observe::entries(r.entries),
                navigation_id: r.navigation.id as u64,
                navigation_interaction_id: r.navigation.interaction_id.map(|i| i as u64),
                navigation_url: r.navigation.url.clone(),
                navigation_start_time: r.navigation.start_time,
                #[cfg(feature = "attribution")]
                attribution: r.attribution.cloned(),
            }),
            Sink::Hook(f) => f(),
            Sink::Queue => super::transport::enqueue(r),
            #[cfg(feature = "js")]
            Sink::Js(cb) => cb.deliver(r),
            #[cfg(feature = "attribution")]
            Sink::Attributed(sink, _) => sink.deliver(r),
        }
    }

    /// The attribution options of a sink that wants attribution.
    #[cfg(feature = "attribution")]
    pub fn attribution(&self) -> Option<super::attribution::Options> {
        match self {
            Sink::Attributed(_, o) => Some(o.clone()),
            _ => None,
        }
    }

    fn new_instance(&mut self) {
        #[cfg(feature = "js")]
        if let Sink::Js(cb) = self {
            cb.new_instance();
        }
        #[cfg(feature = "attribution")]
        if let Sink::Attributed(sink, _) = self {
            sink.new_instance();
        }
    }
}

/// The state of one metric instance.
pub struct State {
    pub name: MetricName,
    /// Negative while unknown.
    pub value: f64,
    pub id: String,
    pub navigation_type: NavigationType,
    pub entries: Array,
    pub navigation: Navigation,
    reporter: Reporter,
}

/// A metric instance and its sink; a bfcache restore starts a new instance
/// in the same place ([`Instance::restart`]).
pub struct Instance {
    pub state: RefCell<State>,
    sink: RefCell<Sink>,
    changes: Changes,
    /// Computes a report's attribution from the instance's state.
    #[cfg(feature = "attribution")]
    attribute: RefCell<Option<Attributor>>,
}

/// Computes a report's attribution from the instance's state.
#[cfg(feature = "attribution")]
pub type Attributor = Box<dyn Fn(&State) -> super::attribution::Attribution>;

pub fn new_id() -> String {
    crate::id::metric_id(js_sys::Date::now(), js_sys::Math::random())
}

impl Instance {
    pub fn new(name: MetricName, value: f64, sink: Sink, changes: Changes) -> Rc<Instance> {
        Self::with_navigation_type(name, value, sink, changes, super::page::navigation_type())
    }

    fn with_navigation_type(
        name: MetricName,
        value: f64,
        sink: Sink,
        changes: Changes,
        navigation_type: NavigationType,
    ) -> Rc<Instance> {
        Rc::new(Instance {
            state: RefCell::new(State {
                name,
                value,
                id: new_id(),
                navigation_type,
                entries: Array::new(),
                navigation: super::page::hard_navigation(),
                reporter: Reporter::new(name, changes),
            }),
            sink: RefCell::new(sink),
            changes,
            #[cfg(feature = "attribution")]
            attribute: RefCell::new(None),
        })
    }

    /// A new instance (new id, new metric object) after a bfcache restore.
    pub fn restart(&self, value: f64) {
        let hard = super::page::hard_navigation();
        let at = super::page::restored_at().unwrap_or(0.0);
        let navigation = self.state.borrow().navigation.restored(at, &hard);
        self.renew(value, NavigationType::BackForwardCache, navigation);
    }

    /// A new instance (new id, new metric object) for `navigation`.
    pub fn renew(&self, value: f64, navigation_type: NavigationType, navigation: Navigation) {
        let mut s = self.state.borrow_mut();
        *s = State {
            name: s.name,
            value,
            id: new_id(),
            navigation_type,
            entries: Array::new(),
            navigation,
            reporter: Reporter::new(s.name, self.changes),
        };
        drop(s);
        if let Ok(mut sink) = self.sink.try_borrow_mut() {
            sink.new_instance();
        }
    }

    /// Where the sink wants attribution: what computes it.
    #[cfg(feature = "attribution")]
    pub fn set_attributor(&self, f: Attributor) {
        *self.attribute.borrow_mut() = Some(f);
    }

    /// The sink's attribution options, where it wants attribution.
    #[cfg(feature = "attribution")]
    pub fn attribution(&self) -> Option<super::attribution::Options> {
        self.sink.try_borrow().ok()?.attribution()
    }

    pub fn set(&self, value: f64, entries: Array) {
        let mut s = self.state.borrow_mut();
        s.value = value;
        s.entries = entries;
    }

    pub fn set_value(&self, value: f64) {
        self.state.borrow_mut().value = value;
    }

    pub fn value(&self) -> f64 {
        self.state.borrow().value
    }

    pub fn id(&self) -> String {
        self.state.borrow().id.clone()
    }

    pub fn navigation_type(&self) -> NavigationType {
        self.state.borrow().navigation_type
    }

    /// Reports the current value if the reporter says so (`force`: on
    /// hide, on finalisation).
    pub fn report(&self, force: bool) {
        let (report, id, entries, navigation) = {
            let mut s = self.state.borrow_mut();
            let value = s.value;
            let Some(r) = s.reporter.report(value, force, super::page::hidden) else {
                return;
            };
            (r, s.id.clone(), s.entries.clone(), s.navigation.clone())
        };
        let s = self.state.borrow();
        #[cfg(feature = "attribution")]
        let attribution = self.attribute.borrow().as_ref().map(|f| f(&s));
        let r = Report {
            name: s.name,
            value: s.value,
            delta: report.delta,
            rating: report.rating,
            id: &id,
            navigation_type: s.navigation_type,
            entries: &entries,
            navigation: &navigation,
            #[cfg(feature = "attribution")]
            attribution: attribution.as_ref(),
        };
        drop(s);
        // A callback that makes the page report again (say, dispatches a
        // hide) reports nothing more from this instance meanwhile.
        if let Ok(mut sink) = self.sink.try_borrow_mut() {
            sink.deliver(&r);
        }
    }
}
