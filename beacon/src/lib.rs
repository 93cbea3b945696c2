//! The beacon wire format shared by the agent (which writes it) and the
//! collector (which reads it), plus the Core Web Vitals thresholds both use.
//!
//! `beacon.schema.json` in this crate is the same format as a JSON Schema;
//! the tests keep the two in agreement.
#![cfg_attr(not(test), no_std)]
extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;
#[cfg(feature = "serde")]
use serde::{Deserialize, Serialize};

/// Version of the beacon format written in `schemaVersion`.
pub const SCHEMA_VERSION: u32 = 1;

/// Most metric reports in one beacon (`metrics` in the schema).
pub const MAX_METRICS_PER_BEACON: usize = 256;

/// Largest beacon body the agent sends: browsers cap in-flight beacon and
/// keepalive bodies at 64 KiB in total, so agents keep a margin below it.
pub const MAX_BODY_BYTES: usize = 60_000;

/// The JSON Schema of a beacon, for tests and for anyone integrating.
pub const JSON_SCHEMA: &str = include_str!("../beacon.schema.json");

/// One of the five Core Web Vitals the agent measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub enum MetricName {
    #[cfg_attr(feature = "serde", serde(rename = "FCP"))]
    Fcp,
    #[cfg_attr(feature = "serde", serde(rename = "LCP"))]
    Lcp,
    #[cfg_attr(feature = "serde", serde(rename = "CLS"))]
    Cls,
    #[cfg_attr(feature = "serde", serde(rename = "INP"))]
    Inp,
    #[cfg_attr(feature = "serde", serde(rename = "TTFB"))]
    Ttfb,
}

impl MetricName {
    pub const ALL: [MetricName; 5] = [
        MetricName::Fcp,
        MetricName::Lcp,
        MetricName::Cls,
        MetricName::Inp,
        MetricName::Ttfb,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            MetricName::Fcp => "FCP",
            MetricName::Lcp => "LCP",
            MetricName::Cls => "CLS",
            MetricName::Inp => "INP",
            MetricName::Ttfb => "TTFB",
        }
    }

    pub fn parse(s: &str) -> Option<MetricName> {
        MetricName::ALL.into_iter().find(|m| m.as_str() == s)
    }

    /// The reference's (good, poor) thresholds: `value <= good` is good,
    /// `value <= poor` needs improvement, anything above is poor.
    pub const fn thresholds(self) -> Thresholds {
        match self {
            MetricName::Fcp => Thresholds {
                good: 1800.0,
                poor: 3000.0,
            },
            MetricName::Lcp => Thresholds {
                good: 2500.0,
                poor: 4000.0,
            },
            MetricName::Cls => Thresholds { good: 0.1, poor: 0.25 },
            MetricName::Inp => Thresholds {
                good: 200.0,
                poor: 500.0,
            },
            MetricName::Ttfb => Thresholds {
                good: 800.0,
                poor: 1800.0,
            },
        }
    }

    pub fn rate(self, value: f64) -> Rating {
        self.thresholds().rate(value)
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Thresholds {
    pub good: f64,
    pub poor: f64,
}

impl Thresholds {
    pub fn rate(self, value: f64) -> Rating {
        if value > self.poor {
            Rating::Poor
        } else if value > self.good {
            Rating::NeedsImprovement
        } else {
            Rating::Good
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "kebab-case"))]
pub enum Rating {
    Good,
    NeedsImprovement,
    Poor,
}

impl Rating {
    pub const ALL: [Rating; 3] = [Rating::Good, Rating::NeedsImprovement, Rating::Poor];

    pub const fn as_str(self) -> &'static str {
        match self {
            Rating::Good => "good",
            Rating::NeedsImprovement => "needs-improvement",
            Rating::Poor => "poor",
        }
    }
}

/// How the page view started, as the reference reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "kebab-case"))]
pub enum NavigationType {
    Navigate,
    Reload,
    BackForward,
    BackForwardCache,
    Prerender,
    Restore,
    SoftNavigation,
}

impl NavigationType {
    pub const ALL: [NavigationType; 7] = [
        NavigationType::Navigate,
        NavigationType::Reload,
        NavigationType::BackForward,
        NavigationType::BackForwardCache,
        NavigationType::Prerender,
        NavigationType::Restore,
        NavigationType::SoftNavigation,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            NavigationType::Navigate => "navigate",
            NavigationType::Reload => "reload",
            NavigationType::BackForward => "back-forward",
            NavigationType::BackForwardCache => "back-forward-cache",
            NavigationType::Prerender => "prerender",
            NavigationType::Restore => "restore",
            NavigationType::SoftNavigation => "soft-navigation",
        }
    }

    /// Maps a navigation timing entry's `type` (`navigate`, `reload`,
    /// `back_forward`, `prerender`) the way the reference does: `_` becomes `-`.
    pub fn from_entry_type(t: &str) -> Option<NavigationType> {
        match t {
            "navigate" => Some(NavigationType::Navigate),
            "reload" => Some(NavigationType::Reload),
            "back_forward" | "back-forward" => Some(NavigationType::BackForward),
            "prerender" => Some(NavigationType::Prerender),
            _ => None,
        }
    }
}

/// The device class a beacon came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
pub enum FormFactor {
    Phone,
    Tablet,
    Desktop,
}

impl FormFactor {
    pub const ALL: [FormFactor; 3] = [FormFactor::Phone, FormFactor::Tablet, FormFactor::Desktop];

    pub const fn as_str(self) -> &'static str {
        match self {
            FormFactor::Phone => "phone",
            FormFactor::Tablet => "tablet",
            FormFactor::Desktop => "desktop",
        }
    }
}

/// One report of one metric, as the agent's callback saw it.
///
/// `A` is what the report may carry as attribution: [`Attribution`] for
/// agents that collect it (and the collector), [`NoAttribution`] for the
/// core agent, whose serializer then has no attribution code to carry.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "camelCase"))]
pub struct MetricReport<A = NoAttribution> {
    pub name: MetricName,
    pub value: f64,
    pub delta: f64,
    /// Unique per metric instance; a later report with the same id replaces
    /// the earlier one (CLS and INP grow over the page's life).
    pub id: String,
    pub rating: Rating,
    pub navigation_type: NavigationType,
    /// What to fix first: the element, the subparts, the scripts.
    #[cfg_attr(feature = "serde", serde(default = "none", skip_serializing_if = "Option::is_none"))]
    pub attribution: Option<A>,
}

/// Absent, as `serde(default)` would say, without asking `A: Default`.
#[cfg(feature = "serde")]
fn none<A>() -> Option<A> {
    None
}

/// No attribution: a type without values, so `Option<NoAttribution>` is
/// always `None`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub enum NoAttribution {}

/// What a page was doing when a metric's moment came
/// (`document.readyState`, as the reference names it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "kebab-case"))]
pub enum LoadState {
    Loading,
    DomInteractive,
    DomContentLoaded,
    Complete,
}

impl LoadState {
    pub const ALL: [LoadState; 4] = [
        LoadState::Loading,
        LoadState::DomInteractive,
        LoadState::DomContentLoaded,
        LoadState::Complete,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            LoadState::Loading => "loading",
            LoadState::DomInteractive => "dom-interactive",
            LoadState::DomContentLoaded => "dom-content-loaded",
            LoadState::Complete => "complete",
        }
    }
}

/// How the user interacted (INP).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
pub enum InteractionType {
    Pointer,
    Keyboard,
}

/// The script of a long animation frame that ran longest in an INP
/// interaction.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "camelCase"))]
pub struct LongestScript {
    /// Its source URL, without query string and fragment (privacy).
    #[cfg_attr(feature = "serde", serde(default, skip_serializing_if = "Option::is_none"))]
    pub url: Option<String>,
    /// The function that ran (`sourceFunctionName`), if named.
    #[cfg_attr(feature = "serde", serde(default, skip_serializing_if = "Option::is_none"))]
    pub function: Option<String>,
    /// How long it ran within the interaction, ms.
    pub duration: f64,
}

/// The attribution of one report, compactly: the fields of
/// `web-vitals/attribution` 6.2.3 that say what to fix (target selectors,
/// subparts, load state, the longest script), without the browser's
/// entries. Each metric fills its own; every field is optional.
#[derive(Clone, Debug, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "camelCase", default))]
pub struct Attribution {
    // LCP
    /// The LCP element's selector.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub target: Option<String>,
    /// The LCP resource's URL, without query string and fragment.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub url: Option<String>,
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub time_to_first_byte: Option<f64>,
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub resource_load_delay: Option<f64>,
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub resource_load_duration: Option<f64>,
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub element_render_delay: Option<f64>,
    // CLS
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub largest_shift_target: Option<String>,
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub largest_shift_time: Option<f64>,
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub largest_shift_value: Option<f64>,
    // INP
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub interaction_target: Option<String>,
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub interaction_type: Option<InteractionType>,
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub input_delay: Option<f64>,
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub processing_duration: Option<f64>,
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub presentation_delay: Option<f64>,
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub longest_script: Option<LongestScript>,
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub total_script_duration: Option<f64>,
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub total_style_and_layout_duration: Option<f64>,
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub total_paint_duration: Option<f64>,
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub total_unattributed_duration: Option<f64>,
    // FCP (and LCP's, INP's and CLS's load state)
    /// `firstByteToFCP`, as the schema and the reference spell it (not
    /// serde's camel case).
    #[cfg_attr(
        feature = "serde",
        serde(
            rename = "firstByteToFCP",
            alias = "firstByteToFcp",
            skip_serializing_if = "Option::is_none"
        )
    )]
    pub first_byte_to_fcp: Option<f64>,
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub load_state: Option<LoadState>,
    // TTFB
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub waiting_duration: Option<f64>,
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub cache_duration: Option<f64>,
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub dns_duration: Option<f64>,
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub connection_duration: Option<f64>,
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub request_duration: Option<f64>,
}

/// What the agent sends in one request (`A`: see [`MetricReport`]).
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "camelCase"))]
pub struct Beacon<A = NoAttribution> {
    pub schema_version: u32,
    /// The page key: the page's URL without query string and fragment
    /// (as the Chrome UX Report keys pages), e.g. `https://shop.example/cart`.
    pub page: String,
    #[cfg_attr(feature = "serde", serde(default, skip_serializing_if = "Option::is_none"))]
    pub page_view_id: Option<String>,
    #[cfg_attr(feature = "serde", serde(default, skip_serializing_if = "Option::is_none"))]
    pub session_id: Option<String>,
    #[cfg_attr(feature = "serde", serde(default, skip_serializing_if = "Option::is_none"))]
    pub navigation_type: Option<NavigationType>,
    #[cfg_attr(feature = "serde", serde(default, skip_serializing_if = "Option::is_none"))]
    pub form_factor: Option<FormFactor>,
    #[cfg_attr(feature = "serde", serde(default, skip_serializing_if = "Option::is_none"))]
    pub effective_type: Option<String>,
    #[cfg_attr(feature = "serde", serde(default, skip_serializing_if = "Option::is_none"))]
    pub device_memory: Option<f64>,
    pub metrics: Vec<MetricReport<A>>,
}

#[cfg(all(test, feature = "serde"))]
mod tests;
