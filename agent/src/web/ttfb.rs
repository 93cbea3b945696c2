//! Time to First Byte in the page (web-vitals `onTTFB`).

use beacon::MetricName;
use js_sys::Array;

use super::instance::{Instance, Sink};
use super::page::{activation_start, navigation_entry, on_restore, when_ready};
use crate::report::Changes;

pub fn start(sink: Sink, changes: Changes) {
    let m = Instance::new(MetricName::Ttfb, -1.0, sink, changes);
    #[cfg(feature = "attribution")]
    if m.attribution().is_some() {
        m.set_attributor(Box::new(super::attribution::ttfb_attribution));
    }
    when_ready(move || {
        let Some(entry) = navigation_entry() else { return };
        m.set(
            crate::ttfb::value(entry.response_start(), activation_start()),
            Array::of1(&entry),
        );
        m.report(true);
        on_restore(move |_| {
            m.restart(0.0);
            m.report(true);
        });
    });
}
