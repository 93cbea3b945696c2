//! The metric object's `attribution` for JS callbacks, shaped as
//! web-vitals/attribution 6.2.3 shapes it: the same keys in the same
//! order, present as `undefined` where the reference leaves them so and
//! absent where it does, the browser's entry objects themselves.

use beacon::{InteractionType, LoadState};
use js_sys::Array;
use serde::Serialize;
use wasm_bindgen::JsValue;
use web_sys::PerformanceEntry;

use super::Attribution;

/// A JS value kept as it is (entries, sources).
#[derive(Serialize)]
#[serde(transparent)]
struct Js(#[serde(with = "serde_wasm_bindgen::preserve")] JsValue);

fn js<T: Into<JsValue>>(v: Option<T>) -> Js {
    Js(v.map_or(JsValue::UNDEFINED, Into::into))
}

fn list(entries: &[PerformanceEntry]) -> Js {
    Js(entries.iter().collect::<Array>().into())
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Fcp {
    time_to_first_byte: f64,
    #[serde(rename = "firstByteToFCP")]
    first_byte_to_fcp: f64,
    load_state: LoadState,
    #[serde(skip_serializing_if = "Option::is_none")]
    navigation_entry: Option<Js>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fcp_entry: Option<Js>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Lcp {
    time_to_first_byte: f64,
    resource_load_delay: f64,
    resource_load_duration: f64,
    element_render_delay: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lcp_entry: Option<Js>,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lcp_resource_entry: Option<Js>,
    #[serde(skip_serializing_if = "Option::is_none")]
    navigation_entry: Option<Js>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Cls {
    largest_shift_target: Option<String>,
    largest_shift_time: f64,
    largest_shift_value: f64,
    largest_shift_source: Js,
    largest_shift_entry: Js,
    load_state: LoadState,
}

#[derive(Serialize)]
struct Empty {}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LongestScript {
    entry: Js,
    subpart: &'static str,
    intersecting_duration: f64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Inp {
    interaction_target: Option<String>,
    interaction_type: Option<InteractionType>,
    interaction_time: f64,
    next_paint_time: f64,
    processed_event_entries: Js,
    long_animation_frame_entries: Js,
    input_delay: f64,
    processing_duration: f64,
    presentation_delay: f64,
    load_state: LoadState,
    longest_script: Option<LongestScript>,
    total_script_duration: Option<f64>,
    total_style_and_layout_duration: Option<f64>,
    total_paint_duration: Option<f64>,
    total_unattributed_duration: Option<f64>,
}

/// An INP report without entries (after a bfcache restore).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct InpWithoutEntries {
    processed_event_entries: Js,
    long_animation_frame_entries: Js,
    input_delay: f64,
    processing_duration: f64,
    presentation_delay: f64,
    load_state: LoadState,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Ttfb {
    waiting_duration: f64,
    cache_duration: f64,
    dns_duration: f64,
    connection_duration: f64,
    request_duration: f64,
    navigation_entry: Js,
}

fn ser<T: Serialize>(v: &T) -> JsValue {
    v.serialize(&serde_wasm_bindgen::Serializer::new())
        .unwrap_or(JsValue::UNDEFINED)
}

/// The `attribution` object of a JS metric.
pub fn to_js(a: &Attribution) -> JsValue {
    match a {
        Attribution::Fcp(a) => ser(&Fcp {
            time_to_first_byte: a.time_to_first_byte,
            first_byte_to_fcp: a.first_byte_to_fcp,
            load_state: a.load_state,
            navigation_entry: a.navigation_entry.clone().map(|e| Js(e.into())),
            // Absent for a route (its soft-navigation entry is the navigation).
            fcp_entry: a.fcp_entry.clone().map(|e| Js(e.into())),
        }),
        Attribution::Lcp(a) => ser(&Lcp {
            time_to_first_byte: a.time_to_first_byte,
            resource_load_delay: a.resource_load_delay,
            resource_load_duration: a.resource_load_duration,
            element_render_delay: a.element_render_delay,
            target: a.target.clone(),
            lcp_entry: a.lcp_entry.clone().map(|e| Js(e.into())),
            url: a.url.clone(),
            lcp_resource_entry: a.lcp_resource_entry.clone().map(|e| Js(e.into())),
            navigation_entry: a.navigation_entry.clone().map(|e| Js(e.into())),
        }),
        Attribution::Cls(a) => match (&a.largest_shift_source, &a.largest_shift_entry) {
            (Some(source), Some(entry)) => ser(&Cls {
                largest_shift_target: a.largest_shift_target.clone().flatten(),
                largest_shift_time: a.largest_shift_time.unwrap_or_default(),
                largest_shift_value: a.largest_shift_value.unwrap_or_default(),
                largest_shift_source: Js(source.clone()),
                largest_shift_entry: Js(entry.into()),
                load_state: a.load_state.unwrap_or(LoadState::Complete),
            }),
            _ => ser(&Empty {}),
        },
        Attribution::Inp(a) => match (a.interaction_time, a.next_paint_time) {
            (Some(interaction_time), Some(next_paint_time)) => ser(&Inp {
                interaction_target: a.interaction_target.clone().flatten(),
                interaction_type: a.interaction_type,
                interaction_time,
                next_paint_time,
                processed_event_entries: list(&a.processed_event_entries),
                long_animation_frame_entries: list(&a.long_animation_frame_entries),
                input_delay: a.input_delay,
                processing_duration: a.processing_duration,
                presentation_delay: a.presentation_delay,
                load_state: a.load_state,
                longest_script: a.longest_script.as_ref().map(|s| LongestScript {
                    entry: Js(s.entry.clone().into()),
                    subpart: s.subpart.as_str(),
                    intersecting_duration: s.intersecting_duration,
                }),
                total_script_duration: a.total_script_duration,
                total_style_and_layout_duration: a.total_style_and_layout_duration,
                total_paint_duration: a.total_paint_duration,
                total_unattributed_duration: a.total_unattributed_duration,
            }),
            _ => ser(&InpWithoutEntries {
                processed_event_entries: list(&a.processed_event_entries),
                long_animation_frame_entries: list(&a.long_animation_frame_entries),
                input_delay: a.input_delay,
                processing_duration: a.processing_duration,
                presentation_delay: a.presentation_delay,
                load_state: a.load_state,
            }),
        },
        Attribution::Ttfb(a) => ser(&Ttfb {
            waiting_duration: a.waiting_duration,
            cache_duration: a.cache_duration,
            dns_duration: a.dns_duration,
            connection_duration: a.connection_duration,
            request_duration: a.request_duration,
            navigation_entry: js(a.navigation_entry.clone()),
        }),
    }
}

/// The attribution build's TypeScript declarations, appended to the
/// package's by `npm/build.mjs`.
#[wasm_bindgen::prelude::wasm_bindgen(typescript_custom_section)]
const TYPES: &str = r#"// <vitalsign-attribution-types>
// vitalsign/attribution: the metric object's `attribution`, as
// web-vitals/attribution 6.2.3 has it.

export type LoadState = 'loading' | 'dom-interactive' | 'dom-content-loaded' | 'complete';

export interface AttributionReportOpts extends ReportOpts {
  /** Names a target instead of the default selector; null/undefined falls back to it. */
  generateTarget?: (el: Node | null) => string | undefined | null;
}
export interface LCPAttributionReportOpts extends AttributionReportOpts {
  /** Resource entries kept to find the LCP resource (default 50). */
  resourceBufferSize?: number;
}
export interface INPAttributionReportOpts extends AttributionReportOpts, INPReportOpts {
  /** Fill `processedEventEntries` (default false). */
  includeProcessedEventEntries?: boolean;
}

export interface FCPAttribution {
  timeToFirstByte: number;
  firstByteToFCP: number;
  loadState: LoadState;
  fcpEntry?: PerformancePaintTiming;
  navigationEntry?: PerformanceNavigationTiming;
}
export interface LCPAttribution {
  target?: string;
  url?: string;
  timeToFirstByte: number;
  resourceLoadDelay: number;
  resourceLoadDuration: number;
  elementRenderDelay: number;
  navigationEntry?: PerformanceNavigationTiming;
  lcpResourceEntry?: PerformanceResourceTiming;
  lcpEntry?: PerformanceEntry;
}
export interface CLSAttribution {
  largestShiftTarget?: string;
  largestShiftTime?: number;
  largestShiftValue?: number;
  largestShiftEntry?: PerformanceEntry;
  largestShiftSource?: unknown;
  loadState?: LoadState;
}
export interface INPLongestScriptSummary {
  entry: PerformanceEntry;
  subpart: 'input-delay' | 'processing-duration' | 'presentation-delay';
  intersectingDuration: number;
}
export interface INPAttribution {
  interactionTarget?: string;
  interactionTime?: number;
  interactionType?: 'pointer' | 'keyboard';
  nextPaintTime?: number;
  processedEventEntries: PerformanceEventTiming[];
  inputDelay: number;
  processingDuration: number;
  presentationDelay: number;
  loadState: LoadState;
  longAnimationFrameEntries: PerformanceEntry[];
  longestScript?: INPLongestScriptSummary;
  totalScriptDuration?: number;
  totalStyleAndLayoutDuration?: number;
  totalPaintDuration?: number;
  totalUnattributedDuration?: number;
}
export interface TTFBAttribution {
  waitingDuration: number;
  cacheDuration: number;
  dnsDuration: number;
  connectionDuration: number;
  requestDuration: number;
  navigationEntry?: PerformanceNavigationTiming;
}

export interface FCPMetricWithAttribution extends FCPMetric { attribution: FCPAttribution }
export interface LCPMetricWithAttribution extends LCPMetric { attribution: LCPAttribution }
export interface CLSMetricWithAttribution extends CLSMetric { attribution: CLSAttribution }
export interface INPMetricWithAttribution extends INPMetric { attribution: INPAttribution }
export interface TTFBMetricWithAttribution extends TTFBMetric { attribution: TTFBAttribution }

export function onFCP(callback: (metric: FCPMetricWithAttribution) => void, opts?: AttributionReportOpts): void;
export function onLCP(callback: (metric: LCPMetricWithAttribution) => void, opts?: LCPAttributionReportOpts): void;
export function onCLS(callback: (metric: CLSMetricWithAttribution) => void, opts?: AttributionReportOpts): void;
export function onINP(callback: (metric: INPMetricWithAttribution) => void, opts?: INPAttributionReportOpts): void;
export function onTTFB(callback: (metric: TTFBMetricWithAttribution) => void, opts?: AttributionReportOpts): void;

export interface InitOpts {
  /** Each beacon report carries its attribution (selectors, subparts, load state, the longest script). */
  attribution?: boolean;
}
// </vitalsign-attribution-types>
"#;
