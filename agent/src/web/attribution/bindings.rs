//! The entry types and fields attribution reads that web-sys lacks:
//! Largest Contentful Paint's element, Layout Instability's sources,
//! Event Timing's target and processing times, Long Animation Frames and
//! their scripts, and the navigation entry's document milestones.

use js_sys::Array;
use wasm_bindgen::prelude::*;
use web_sys::{Element, Node, PerformanceEntry};

#[wasm_bindgen]
extern "C" {
    /// A `largest-contentful-paint` entry.
    #[wasm_bindgen(extends = PerformanceEntry)]
    pub type LcpEntry;
    #[wasm_bindgen(method, getter)]
    pub fn element(this: &LcpEntry) -> Option<Element>;
    #[wasm_bindgen(method, getter)]
    pub fn id(this: &LcpEntry) -> String;
    #[wasm_bindgen(method, getter)]
    pub fn url(this: &LcpEntry) -> String;

    /// A `layout-shift` entry's `sources`.
    #[wasm_bindgen(extends = PerformanceEntry)]
    #[derive(Clone)]
    pub type ShiftEntry;
    #[wasm_bindgen(method, getter)]
    pub fn sources(this: &ShiftEntry) -> Option<Array>;
    #[wasm_bindgen(method, getter)]
    pub fn value(this: &ShiftEntry) -> f64;

    /// One of a layout shift's `sources` (`LayoutShiftAttribution`).
    #[derive(Clone)]
    pub type ShiftSource;
    #[wasm_bindgen(method, getter)]
    pub fn node(this: &ShiftSource) -> Option<Node>;

    /// An `event` or `first-input` entry with what attribution reads.
    #[wasm_bindgen(extends = PerformanceEntry)]
    pub type EventEntry;
    #[wasm_bindgen(method, getter)]
    pub fn target(this: &EventEntry) -> Option<Node>;
    /// Chrome 148+: the target's selector where `target` is null.
    #[wasm_bindgen(method, getter = targetSelector)]
    pub fn target_selector(this: &EventEntry) -> Option<String>;
    #[wasm_bindgen(method, getter = processingStart)]
    pub fn processing_start(this: &EventEntry) -> f64;
    #[wasm_bindgen(method, getter = processingEnd)]
    pub fn processing_end(this: &EventEntry) -> f64;
    #[wasm_bindgen(method, getter = interactionId)]
    pub fn interaction_id(this: &EventEntry) -> Option<f64>;

    /// A `long-animation-frame` entry.
    #[wasm_bindgen(extends = PerformanceEntry)]
    #[derive(Clone)]
    pub type LoafEntry;
    #[wasm_bindgen(method, getter = styleAndLayoutStart)]
    pub fn style_and_layout_start(this: &LoafEntry) -> f64;
    #[wasm_bindgen(method, getter)]
    pub fn scripts(this: &LoafEntry) -> Array;

    /// One of a long animation frame's `scripts` (`PerformanceScriptTiming`).
    #[wasm_bindgen(extends = PerformanceEntry)]
    pub type ScriptEntry;
    #[wasm_bindgen(method, getter = forcedStyleAndLayoutDuration)]
    pub fn forced_style_and_layout_duration(this: &ScriptEntry) -> f64;
    #[wasm_bindgen(method, getter = sourceURL)]
    pub fn source_url(this: &ScriptEntry) -> String;
    #[wasm_bindgen(method, getter = sourceFunctionName)]
    pub fn source_function_name(this: &ScriptEntry) -> String;

    /// The navigation entry's document milestones (it may be a plain
    /// object where a page replaced it).
    #[wasm_bindgen(extends = PerformanceEntry)]
    pub type NavigationMilestones;
    #[wasm_bindgen(method, getter = domInteractive)]
    pub fn dom_interactive(this: &NavigationMilestones) -> f64;
    #[wasm_bindgen(method, getter = domContentLoadedEventStart)]
    pub fn dom_content_loaded_event_start(this: &NavigationMilestones) -> f64;
    #[wasm_bindgen(method, getter = domComplete)]
    pub fn dom_complete(this: &NavigationMilestones) -> f64;
}
