//! Attribution (feature `attribution`): what web-vitals/attribution 6.2.3
//! adds to each metric, as [`Metric::attribution`](crate::Metric::attribution).
//!
//! The rules that say what to fix (selectors, load state, subparts, the
//! LoAF intersection and totals, the largest shift) are plain functions
//! over numbers and strings here, tested natively; the browser side
//! (`web/attribution/`) reads the entries and the DOM and calls them.
#![cfg_attr(not(feature = "attribution"), allow(dead_code))]

pub(crate) mod cls;
pub(crate) mod inp;
pub(crate) mod load_state;
pub(crate) mod selector;
pub(crate) mod timing;

#[cfg(feature = "attribution")]
pub use crate::web::attribution::{
    Attribution, ClsAttribution, FcpAttribution, InpAttribution, LcpAttribution, LongestScript, TtfbAttribution,
};
pub use beacon::{InteractionType, LoadState};
pub use inp::Subpart;

/// A URL as the beacon carries it: without user info, query string and
/// fragment (privacy; the reference's `url` keeps them, the JS metric
/// object does too).
pub fn beacon_url(url: &str) -> String {
    let cut = url.find(['?', '#']).unwrap_or(url.len());
    crate::page_key::without_user_info(&url[..cut])
}

/// Longest selector or function name a beacon carries (the collector's
/// limit), in characters.
pub const MAX_TEXT_CHARS: usize = 256;
/// Longest URL a beacon carries (the collector's limit), in characters.
pub const MAX_URL_CHARS: usize = 1024;
/// Largest duration or time a beacon carries, ms (the collector's cap).
pub const MAX_DURATION_MS: f64 = 120_000.0;

fn text(v: &mut Option<String>) {
    if let Some(s) = v {
        if let Some((at, _)) = s.char_indices().nth(MAX_TEXT_CHARS) {
            s.truncate(at);
        }
    }
    if v.as_deref().is_some_and(str::is_empty) {
        *v = None;
    }
}

fn url(v: &mut Option<String>) {
    let ok = v.as_deref().is_some_and(|u| {
        let u = u.to_ascii_lowercase();
        (u.starts_with("https://") || u.starts_with("http://"))
            && u.len() > u.find("//").unwrap_or(0) + 2
            && u.chars().count() <= MAX_URL_CHARS
    });
    if !ok {
        *v = None;
    }
}

fn duration(v: &mut Option<f64>, max: f64) {
    if v.is_some_and(|d| !(0.0..=max).contains(&d)) {
        *v = None;
    }
}

/// Keeps a beacon's attribution within what the collector accepts, field
/// by field, so that one odd value (a `data:` image, a long custom
/// target, a negative remainder, a shift after two minutes) costs that
/// field, not the beacon: selectors cut at 256 characters, URLs only
/// http(s) ones of at most 1,024, times and durations within 0..=120,000
/// ms, the shift value within 0..=10.
pub fn sanitize(a: &mut beacon::Attribution) {
    text(&mut a.target);
    text(&mut a.largest_shift_target);
    text(&mut a.interaction_target);
    url(&mut a.url);
    for d in [
        &mut a.time_to_first_byte,
        &mut a.resource_load_delay,
        &mut a.resource_load_duration,
        &mut a.element_render_delay,
        &mut a.largest_shift_time,
        &mut a.input_delay,
        &mut a.processing_duration,
        &mut a.presentation_delay,
        &mut a.total_script_duration,
        &mut a.total_style_and_layout_duration,
        &mut a.total_paint_duration,
        &mut a.total_unattributed_duration,
        &mut a.first_byte_to_fcp,
        &mut a.waiting_duration,
        &mut a.cache_duration,
        &mut a.dns_duration,
        &mut a.connection_duration,
        &mut a.request_duration,
    ] {
        duration(d, MAX_DURATION_MS);
    }
    duration(&mut a.largest_shift_value, 10.0);
    if let Some(s) = &mut a.longest_script {
        url(&mut s.url);
        text(&mut s.function);
        if !(0.0..=MAX_DURATION_MS).contains(&s.duration) {
            a.longest_script = None;
        }
    }
}

/// Bytes a report's attribution is counted for in the queue's rough size
/// (`delivery::QueueSize`; packing measures the exact JSON): per field
/// its key, punctuation and a number, plus the text of strings.
pub fn rough_bytes(a: &beacon::Attribution) -> usize {
    const FIELD: usize = 40;
    let texts = [&a.target, &a.url, &a.largest_shift_target, &a.interaction_target];
    let numbers = [
        a.time_to_first_byte,
        a.resource_load_delay,
        a.resource_load_duration,
        a.element_render_delay,
        a.largest_shift_time,
        a.largest_shift_value,
        a.input_delay,
        a.processing_duration,
        a.presentation_delay,
        a.total_script_duration,
        a.total_style_and_layout_duration,
        a.total_paint_duration,
        a.total_unattributed_duration,
        a.first_byte_to_fcp,
        a.waiting_duration,
        a.cache_duration,
        a.dns_duration,
        a.connection_duration,
        a.request_duration,
    ];
    let mut n = 20;
    n += texts
        .iter()
        .filter_map(|t| t.as_ref())
        .map(|t| FIELD + t.len())
        .sum::<usize>();
    n += numbers.iter().filter(|v| v.is_some()).count() * FIELD;
    n += usize::from(a.interaction_type.is_some()) * FIELD + usize::from(a.load_state.is_some()) * FIELD;
    if let Some(s) = &a.longest_script {
        n += 2 * FIELD
            + s.url.as_ref().map_or(0, |u| FIELD + u.len())
            + s.function.as_ref().map_or(0, |f| FIELD + f.len());
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rough_bytes_is_at_least_the_json() {
        let a = beacon::Attribution {
            interaction_target: Some("html>body>div.checkout>button.buy.primary".into()),
            interaction_type: Some(beacon::InteractionType::Pointer),
            input_delay: Some(12.300000000745058),
            processing_duration: Some(181.69999999925494),
            presentation_delay: Some(8.0),
            load_state: Some(beacon::LoadState::DomContentLoaded),
            longest_script: Some(beacon::LongestScript {
                url: Some("https://cdn.example/static/app.3f9a.js".into()),
                function: Some("onBuyClick".into()),
                duration: 180.29999999981374,
            }),
            total_script_duration: Some(180.29999999981374),
            total_style_and_layout_duration: Some(0.5),
            total_paint_duration: Some(6.600000000558794),
            total_unattributed_duration: Some(5.099999999627471),
            ..Default::default()
        };
        let json = serde_json::to_string(&a).unwrap();
        assert!(
            rough_bytes(&a) >= json.len(),
            "{} < {}: {json}",
            rough_bytes(&a),
            json.len()
        );
        assert!(rough_bytes(&a) <= 2 * json.len());
        let empty = beacon::Attribution::default();
        assert!(rough_bytes(&empty) >= serde_json::to_string(&empty).unwrap().len());
    }

    #[test]
    fn sanitize_keeps_what_the_collector_accepts() {
        let mut a = beacon::Attribution {
            target: Some("é".repeat(300)),
            largest_shift_target: Some(String::new()),
            interaction_target: Some("#ok".into()),
            url: Some("data:image/png;base64,AAAA".into()),
            time_to_first_byte: Some(12.5),
            total_unattributed_duration: Some(-0.1),
            largest_shift_time: Some(150_000.0),
            largest_shift_value: Some(0.2),
            input_delay: Some(f64::NAN),
            longest_script: Some(beacon::LongestScript {
                url: Some("blob:https://x/1".into()),
                function: Some(String::new()),
                duration: 40.0,
            }),
            ..Default::default()
        };
        sanitize(&mut a);
        assert_eq!(a.target.as_deref().map(|t| t.chars().count()), Some(256));
        assert_eq!(a.largest_shift_target, None);
        assert_eq!(a.interaction_target.as_deref(), Some("#ok"));
        assert_eq!(a.url, None);
        assert_eq!(a.time_to_first_byte, Some(12.5));
        assert_eq!(a.total_unattributed_duration, None);
        assert_eq!(a.largest_shift_time, None);
        assert_eq!(a.largest_shift_value, Some(0.2));
        assert_eq!(a.input_delay, None);
        let s = a.longest_script.as_ref().unwrap();
        assert_eq!(
            (s.url.as_deref(), s.function.as_deref(), s.duration),
            (None, None, 40.0)
        );
        let mut b = beacon::Attribution {
            url: Some("HTTPS://cdn.example/a.png".into()),
            longest_script: Some(beacon::LongestScript {
                url: Some("https://cdn.example/app.js".into()),
                function: Some("onClick".into()),
                duration: 120_000.5,
            }),
            ..Default::default()
        };
        sanitize(&mut b);
        assert_eq!(b.url.as_deref(), Some("HTTPS://cdn.example/a.png"));
        assert_eq!(b.longest_script, None);
        let mut c = beacon::Attribution {
            url: Some("https://".into()),
            ..Default::default()
        };
        sanitize(&mut c);
        assert_eq!(c.url, None);
        let long = format!("https://x.example/{}", "a".repeat(1100));
        let mut d = beacon::Attribution {
            url: Some(long),
            ..Default::default()
        };
        sanitize(&mut d);
        assert_eq!(d.url, None);
    }

    #[test]
    fn beacon_urls_lose_query_fragment_and_user_info() {
        assert_eq!(
            beacon_url("https://cdn.example/a/b.js?v=3#x"),
            "https://cdn.example/a/b.js"
        );
        assert_eq!(
            beacon_url("https://user:pw@cdn.example/b.js"),
            "https://cdn.example/b.js"
        );
        assert_eq!(beacon_url("https://u@h.example/p?q=@x"), "https://h.example/p");
        assert_eq!(beacon_url("https://h.example/p#frag?x"), "https://h.example/p");
        assert_eq!(beacon_url(""), "");
        assert_eq!(beacon_url("data:image/png;base64,AAAA"), "data:image/png;base64,AAAA");
    }
}
