//! Buffered `PerformanceObserver`s (web-vitals `observe()`), fed first with
//! what the npm loader recorded before the wasm ran, where it did.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::Array;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{PerformanceEntry, PerformanceObserver, PerformanceObserverEntryList};

use super::bindings::{ObserveOptions, Observer};

/// The entry types one metric observes together; the loader records each
/// group in its own list (`npm/src/index.js`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Group {
    Paint,
    LargestContentfulPaint,
    LayoutShift,
    Event,
    /// With `reportSoftNavs`: the group and `soft-navigation` entries (and
    /// `interaction-contentful-paint` for LCP) in one observer.
    SoftNavs(SoftGroup),
    /// Attribution: LCP's resource.
    #[cfg(feature = "attribution")]
    Resource,
    /// Attribution: INP's long animation frames.
    #[cfg(feature = "attribution")]
    LongAnimationFrame,
}

/// The groups that follow soft navigations, and `soft-navigation` alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SoftGroup {
    LargestContentfulPaint,
    LayoutShift,
    Event,
    SoftNavigation,
}

impl Group {
    fn types(self) -> &'static [&'static str] {
        match self {
            Group::Paint => &["paint"],
            Group::LargestContentfulPaint => &["largest-contentful-paint"],
            Group::LayoutShift => &["layout-shift"],
            Group::Event => &["event", "first-input"],
            Group::SoftNavs(SoftGroup::LargestContentfulPaint) => &[
                "largest-contentful-paint",
                "interaction-contentful-paint",
                "soft-navigation",
            ],
            Group::SoftNavs(SoftGroup::LayoutShift) => &["layout-shift", "soft-navigation"],
            Group::SoftNavs(SoftGroup::Event) => &["event", "first-input", "soft-navigation"],
            Group::SoftNavs(SoftGroup::SoftNavigation) => &["soft-navigation"],
            #[cfg(feature = "attribution")]
            Group::Resource => &["resource"],
            #[cfg(feature = "attribution")]
            Group::LongAnimationFrame => &["long-animation-frame"],
        }
    }

    /// The group whose entries the npm loader recorded (it records no
    /// soft-navigation entries: those are always observed buffered).
    fn recorded_as(self) -> Option<Group> {
        match self {
            Group::SoftNavs(SoftGroup::LargestContentfulPaint) => Some(Group::LargestContentfulPaint),
            Group::SoftNavs(SoftGroup::LayoutShift) => Some(Group::LayoutShift),
            Group::SoftNavs(SoftGroup::Event) => Some(Group::Event),
            Group::SoftNavs(SoftGroup::SoftNavigation) => None,
            g => Some(g),
        }
    }
}

/// A batch of entries, as the observer delivered it.
pub type Batch = Vec<PerformanceEntry>;

/// The entries of a JS array (by index: smaller than the iterator protocol).
pub fn entries(list: &Array) -> Batch {
    (0..list.length()).map(|i| list.get(i).unchecked_into()).collect()
}

/// Observes the supported types of `group` (buffered), calling `on_batch`
/// for each batch; with several types, a batch is sorted by end time.
/// `None` where no type is supported or the observer cannot be made.
/// `duration_threshold` applies to `event` entries.
pub fn observe(
    group: Group,
    duration_threshold: Option<f64>,
    on_batch: impl FnMut(Batch, &PerformanceObserver) + 'static,
) -> Option<PerformanceObserver> {
    observe_boxed(group, duration_threshold, Box::new(on_batch))
}

type OnBatch = Box<dyn FnMut(Batch, &PerformanceObserver)>;

fn observe_boxed(group: Group, duration_threshold: Option<f64>, on_batch: OnBatch) -> Option<PerformanceObserver> {
    let supported = Observer::supported_entry_types().ok().flatten()?;
    let types: Vec<&str> = group
        .types()
        .iter()
        .copied()
        .filter(|t| supported.includes(&JsValue::from_str(t), 0))
        .collect();
    if types.is_empty() {
        return None;
    }
    let sort = types.len() > 1;
    let on_batch = Rc::new(RefCell::new(on_batch));
    let deliver = move |mut batch: Batch, po: &PerformanceObserver| {
        if sort {
            crate::sort::sort_by_key_f64(&mut batch, |e| e.start_time() + e.duration());
        }
        if let Ok(mut f) = on_batch.try_borrow_mut() {
            f(batch, po);
        }
    };
    let deliver = Rc::new(deliver);
    let callback: Box<dyn FnMut(PerformanceObserverEntryList, PerformanceObserver)> = Box::new({
        let deliver = deliver.clone();
        move |list: PerformanceObserverEntryList, po: PerformanceObserver| deliver(entries(&list.get_entries()), &po)
    });
    let callback = Closure::wrap(callback).into_js_value();
    let po = Observer::new(callback.unchecked_ref()).ok()?;
    let recorded = group.recorded_as().and_then(super::recorded);
    for t in &types {
        let options: ObserveOptions = js_sys::Object::new().unchecked_into();
        options.set_type(t);
        options.set_buffered(recorded.is_none() || matches!(*t, "soft-navigation" | "interaction-contentful-paint"));
        if let Some(ms) = duration_threshold {
            options.set_duration_threshold(ms);
        }
        po.observe(&options).ok()?;
    }
    for batch in recorded.iter().flat_map(entries) {
        // The loader observed `event` at the lowest threshold there is.
        let batch: Batch = entries(batch.unchecked_ref())
            .into_iter()
            .filter(|e| !duration_threshold.is_some_and(|t| t > e.duration()) || e.entry_type() != "event")
            .collect();
        if !batch.is_empty() {
            deliver(batch, &po);
        }
    }
    Some(po.into())
}
