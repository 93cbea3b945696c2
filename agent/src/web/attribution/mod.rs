//! Attribution in the page (feature `attribution`): what web-vitals/
//! attribution 6.2.3 adds to each metric, read from the entries and the
//! DOM when the reference reads them (targets when an entry is
//! processed, the rest when a report is made), computed by the pure
//! rules of `crate::attribution`.

pub mod bindings;
mod cls;
mod inp;
#[cfg(feature = "js")]
pub mod js;
mod lcp;
mod timing;

use beacon::{InteractionType, LoadState};
#[cfg(feature = "js")]
use js_sys::Function;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{Element, Node, PerformanceEntry};

pub use cls::ClsTracker;
pub use inp::InpTracker;
pub use lcp::LcpTracker;
pub use timing::{fcp_attribution, ttfb_attribution};

use crate::attribution::selector::{selector, SelectorNode};

/// Computes a target's name instead of the default selector
/// (`generateTarget`); `None` (JS: `null`/`undefined`) falls back to it.
#[derive(Clone)]
pub enum GenerateTarget {
    /// A Rust function.
    Rust(fn(&Node) -> Option<String>),
    /// A JavaScript function (`generateTarget` of the npm API).
    #[cfg(feature = "js")]
    Js(Function),
}

impl core::fmt::Debug for GenerateTarget {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            GenerateTarget::Rust(_) => "GenerateTarget::Rust",
            #[cfg(feature = "js")]
            GenerateTarget::Js(_) => "GenerateTarget::Js",
        })
    }
}

/// The attribution options of one registration (web-vitals'
/// `AttributionReportOpts`).
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Names targets instead of the default selector.
    pub generate_target: Option<GenerateTarget>,
    /// INP: fill `processed_event_entries` (default false).
    pub include_processed_event_entries: bool,
    /// LCP: how many recent resource entries the agent keeps (default
    /// 50, shared by all registrations: the last one given wins).
    pub resource_buffer_size: Option<f64>,
}

impl Options {
    /// The name of a target: `generateTarget(node)`, else the selector.
    pub fn target(&self, node: &Node) -> String {
        let custom = match &self.generate_target {
            None => None,
            Some(GenerateTarget::Rust(f)) => f(node),
            #[cfg(feature = "js")]
            Some(GenerateTarget::Js(f)) => f.call1(&JsValue::UNDEFINED, node).ok().and_then(|v| v.as_string()),
        };
        custom.unwrap_or_else(|| selector(Some(DomNode(node.clone()))))
    }
}

struct DomNode(Node);

impl SelectorNode for DomNode {
    fn node_type(&self) -> u16 {
        self.0.node_type()
    }
    fn node_name(&self) -> String {
        self.0.node_name()
    }
    fn id(&self) -> String {
        self.0.dyn_ref::<Element>().map(Element::id).unwrap_or_default()
    }
    fn classes(&self) -> Vec<String> {
        let Some(list) = self.0.dyn_ref::<Element>().map(Element::class_list) else {
            return Vec::new();
        };
        (0..list.length()).filter_map(|i| list.item(i)).collect()
    }
    fn parent(&self) -> Option<Self> {
        self.0.parent_node().map(DomNode)
    }
    fn lower(s: &str) -> String {
        js_sys::JsString::from(s).to_lower_case().into()
    }
    fn upper(s: &str) -> String {
        js_sys::JsString::from(s).to_upper_case().into()
    }
}

/// The soft-navigation entries a metric's attribution names, by
/// `navigationId`: the last two, as the reference's `storeSoftNavEntry`
/// keeps them (only where soft navigations are reported).
#[derive(Default)]
pub struct SoftNavEntries(std::cell::RefCell<Vec<(f64, PerformanceEntry)>>);

impl SoftNavEntries {
    /// Stores a `soft-navigation` entry (one without an id is not).
    pub fn store(&self, entry: &PerformanceEntry) {
        let id = entry
            .unchecked_ref::<crate::web::bindings::NavigatedEntry>()
            .navigation_id()
            .filter(|id| *id != 0.0 && !id.is_nan());
        let Some(id) = id else { return };
        let mut v = self.0.borrow_mut();
        // Map.set: an existing key keeps its place.
        match v.iter_mut().find(|(k, _)| *k == id) {
            Some(slot) => slot.1 = entry.clone(),
            None => {
                v.push((id, entry.clone()));
                if v.len() > 2 {
                    v.remove(0);
                }
            }
        }
    }

    pub fn get(&self, id: f64) -> Option<PerformanceEntry> {
        self.0.borrow().iter().find(|(k, _)| *k == id).map(|(_, e)| e.clone())
    }
}

/// `getLoadState(timestamp)` in the page.
pub fn load_state(timestamp: f64) -> LoadState {
    use crate::attribution::load_state::{load_state, Milestones};
    let loading = super::bindings::document().ready_state() == "loading";
    let nav = (!loading).then(super::page::navigation_entry).flatten().map(|e| {
        let e: &bindings::NavigationMilestones = e.unchecked_ref();
        Milestones {
            dom_interactive: e.dom_interactive(),
            dom_content_loaded_event_start: e.dom_content_loaded_event_start(),
            dom_complete: e.dom_complete(),
        }
    });
    load_state(loading, timestamp, nav)
}

/// What a report says about its cause, by metric: the fields of
/// web-vitals/attribution 6.2.3 (`Metric::attribution`).
#[derive(Clone, Debug, PartialEq)]
pub enum Attribution {
    /// First Contentful Paint's.
    Fcp(FcpAttribution),
    /// Largest Contentful Paint's.
    Lcp(LcpAttribution),
    /// Cumulative Layout Shift's.
    Cls(ClsAttribution),
    /// Interaction to Next Paint's.
    Inp(InpAttribution),
    /// Time to First Byte's.
    Ttfb(TtfbAttribution),
}

/// FCP: time to first byte and the rest.
#[derive(Clone, Debug, PartialEq)]
pub struct FcpAttribution {
    /// Time to first byte from activation, ms.
    pub time_to_first_byte: f64,
    /// From the first byte to FCP, ms.
    pub first_byte_to_fcp: f64,
    /// What the document was doing at that moment.
    pub load_state: LoadState,
    /// With an FCP entry and a navigation entry.
    pub navigation_entry: Option<PerformanceEntry>,
    /// The `first-contentful-paint` entry.
    pub fcp_entry: Option<PerformanceEntry>,
}

/// LCP: the element, its resource, and the four subparts (which sum to
/// LCP).
#[derive(Clone, Debug, PartialEq)]
pub struct LcpAttribution {
    /// Time to first byte from activation, ms.
    pub time_to_first_byte: f64,
    /// From the first byte to the LCP resource's request, ms.
    pub resource_load_delay: f64,
    /// The LCP resource's download, capped at LCP, ms.
    pub resource_load_duration: f64,
    /// From the resource's end to the paint, ms.
    pub element_render_delay: f64,
    /// The LCP element's name; `None` without an LCP entry, `Some(None)`
    /// for an entry without a named element.
    pub target: Option<Option<String>>,
    /// The `largest-contentful-paint` entry.
    pub lcp_entry: Option<PerformanceEntry>,
    /// The resource's URL, as the entry gives it (query included).
    pub url: Option<String>,
    /// The LCP resource's Resource Timing entry.
    pub lcp_resource_entry: Option<PerformanceEntry>,
    /// The navigation entry the subparts come from.
    pub navigation_entry: Option<PerformanceEntry>,
}

/// CLS: the largest shift of the session window (all `None` without
/// shifts with sources).
#[derive(Clone, Debug, PartialEq)]
pub struct ClsAttribution {
    /// The largest source's name; `Some(None)` where its node was not
    /// named.
    pub largest_shift_target: Option<Option<String>>,
    /// When the largest shift happened.
    pub largest_shift_time: Option<f64>,
    /// Its layout shift score.
    pub largest_shift_value: Option<f64>,
    /// Its largest source (the first that is an element), the
    /// `LayoutShiftAttribution` object.
    pub largest_shift_source: Option<JsValue>,
    /// Its `layout-shift` entry.
    pub largest_shift_entry: Option<PerformanceEntry>,
    /// What the document was doing at that moment.
    pub load_state: Option<LoadState>,
}

/// The longest script of an interaction's long animation frames.
#[derive(Clone, Debug, PartialEq)]
pub struct LongestScript {
    /// The `PerformanceScriptTiming` entry.
    pub entry: PerformanceEntry,
    /// The INP subpart it started in.
    pub subpart: crate::attribution::inp::Subpart,
    /// How long it ran within the interaction, ms.
    pub intersecting_duration: f64,
}

/// INP: the interaction, its subparts, and its long animation frames.
#[derive(Clone, Debug, PartialEq)]
pub struct InpAttribution {
    /// The target's name; `None` for a report without entries (after a
    /// bfcache restore), `Some(None)` where it has none.
    pub interaction_target: Option<Option<String>>,
    /// `pointer` or `keyboard`.
    pub interaction_type: Option<InteractionType>,
    /// When the interaction started (its first entry's `startTime`).
    pub interaction_time: Option<f64>,
    /// When the next frame was presented.
    pub next_paint_time: Option<f64>,
    /// The frame's event entries by processing start (with `include_processed_event_entries`).
    pub processed_event_entries: Vec<PerformanceEntry>,
    /// The long animation frames intersecting the interaction.
    pub long_animation_frame_entries: Vec<PerformanceEntry>,
    /// From the input to its handlers, ms (never negative).
    pub input_delay: f64,
    /// The handlers, ms.
    pub processing_duration: f64,
    /// From the handlers' end to the paint, ms.
    pub presentation_delay: f64,
    /// What the document was doing at that moment.
    pub load_state: LoadState,
    /// The script that ran longest in the interaction.
    pub longest_script: Option<LongestScript>,
    /// Script time within the interaction, forced style and layout excluded, ms.
    pub total_script_duration: Option<f64>,
    /// Style and layout time (forced included), ms.
    pub total_style_and_layout_duration: Option<f64>,
    /// Paint after the last long animation frame, ms.
    pub total_paint_duration: Option<f64>,
    /// What none of the above explains, ms.
    pub total_unattributed_duration: Option<f64>,
}

/// TTFB: its phases (which sum to TTFB).
#[derive(Clone, Debug, PartialEq)]
pub struct TtfbAttribution {
    /// Until the fetch (or service worker) starts: redirects, unload, ms.
    pub waiting_duration: f64,
    /// Service worker and HTTP cache, ms.
    pub cache_duration: f64,
    /// DNS lookup, ms.
    pub dns_duration: f64,
    /// TCP and TLS, ms.
    pub connection_duration: f64,
    /// From the connection to the first byte, ms.
    pub request_duration: f64,
    /// The navigation entry the subparts come from.
    pub navigation_entry: Option<PerformanceEntry>,
}

fn script_function(entry: &PerformanceEntry) -> (String, String) {
    let s: &bindings::ScriptEntry = entry.unchecked_ref();
    (s.source_url(), s.source_function_name())
}

impl Attribution {
    /// What a beacon carries of it: selectors, subparts, load state, the
    /// longest script's URL (without query string, fragment and user
    /// info), function and duration; no entries.
    pub fn to_beacon(&self) -> beacon::Attribution {
        let mut b = beacon::Attribution::default();
        match self {
            Attribution::Fcp(a) => {
                b.time_to_first_byte = Some(a.time_to_first_byte);
                b.first_byte_to_fcp = Some(a.first_byte_to_fcp);
                b.load_state = Some(a.load_state);
            }
            Attribution::Lcp(a) => {
                b.target = a.target.clone().flatten().filter(|t| !t.is_empty());
                b.url = a
                    .url
                    .as_deref()
                    .map(crate::attribution::beacon_url)
                    .filter(|u| !u.is_empty());
                b.time_to_first_byte = Some(a.time_to_first_byte);
                b.resource_load_delay = Some(a.resource_load_delay);
                b.resource_load_duration = Some(a.resource_load_duration);
                b.element_render_delay = Some(a.element_render_delay);
            }
            Attribution::Cls(a) => {
                b.largest_shift_target = a.largest_shift_target.clone().flatten().filter(|t| !t.is_empty());
                b.largest_shift_time = a.largest_shift_time;
                b.largest_shift_value = a.largest_shift_value;
                b.load_state = a.load_state;
            }
            Attribution::Inp(a) => {
                b.interaction_target = a.interaction_target.clone().flatten().filter(|t| !t.is_empty());
                b.interaction_type = a.interaction_type;
                b.input_delay = Some(a.input_delay);
                b.processing_duration = Some(a.processing_duration);
                b.presentation_delay = Some(a.presentation_delay);
                b.load_state = Some(a.load_state);
                b.longest_script = a.longest_script.as_ref().map(|s| {
                    let (url, function) = script_function(&s.entry);
                    beacon::LongestScript {
                        url: Some(crate::attribution::beacon_url(&url)).filter(|u| !u.is_empty()),
                        function: Some(function).filter(|f| !f.is_empty()),
                        duration: s.intersecting_duration,
                    }
                });
                b.total_script_duration = a.total_script_duration;
                b.total_style_and_layout_duration = a.total_style_and_layout_duration;
                b.total_paint_duration = a.total_paint_duration;
                b.total_unattributed_duration = a.total_unattributed_duration;
            }
            Attribution::Ttfb(a) => {
                b.waiting_duration = Some(a.waiting_duration);
                b.cache_duration = Some(a.cache_duration);
                b.dns_duration = Some(a.dns_duration);
                b.connection_duration = Some(a.connection_duration);
                b.request_duration = Some(a.request_duration);
            }
        }
        b
    }
}
