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
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "camelCase"))]
pub struct MetricReport {
    pub name: MetricName,
    pub value: f64,
    pub delta: f64,
    /// Unique per metric instance; a later report with the same id replaces
    /// the earlier one (CLS and INP grow over the page's life).
    pub id: String,
    pub rating: Rating,
    pub navigation_type: NavigationType,
}

/// What the agent sends in one request.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "camelCase"))]
pub struct Beacon {
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
    pub metrics: Vec<MetricReport>,
}

#[cfg(all(test, feature = "serde"))]
mod tests;
