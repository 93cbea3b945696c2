//! Checks a parsed beacon against the rules serde cannot express (ranges,
//! lengths, the schema version), and turns it into storable rows.

use beacon::{Attribution, Beacon, MetricName, SCHEMA_VERSION};
use url::Url;

use crate::reason::Reason;
use crate::store::{NewBeacon, NewReport};

/// Most characters a `page` may have (as in `beacon.schema.json`).
pub const MAX_PAGE_CHARS: usize = 2048;
/// Most characters a metric `id`, `pageViewId` or `sessionId` may have.
pub const MAX_ID_CHARS: usize = 128;
/// Most characters of `effectiveType`.
pub const MAX_EFFECTIVE_TYPE_CHARS: usize = 16;
/// Most metric reports in one beacon (as in `beacon.schema.json`; the
/// `max_metrics` setting can lower it).
pub const MAX_METRICS: usize = 256;
/// Most characters of an attribution's selector or function name.
pub const MAX_SELECTOR_CHARS: usize = 256;
/// Most characters of an attribution's URL.
pub const MAX_URL_CHARS: usize = 1024;
/// Highest plausible attribution duration (ms): as the timings' cap.
pub const MAX_DURATION_MS: f64 = 120_000.0;

/// A beacon as the collector reads it: with the attribution agents that
/// collect it send.
pub type WireBeacon = Beacon<Attribution>;

/// Why a beacon was rejected, and where: `field` is a JSON path such as
/// `metrics[2].value`, or `None` when the beacon as a whole is wrong.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct Invalid {
    pub reason: Reason,
    pub message: String,
    pub field: Option<String>,
}

impl Invalid {
    pub fn new(reason: Reason, field: impl Into<String>, message: impl Into<String>) -> Invalid {
        Invalid {
            reason,
            message: message.into(),
            field: Some(field.into()),
        }
    }
}

/// Highest plausible value of each metric; anything above is a broken or
/// hostile agent. Timings are capped at two minutes, INP at one, CLS at 10.
pub fn max_value(name: MetricName) -> f64 {
    match name {
        MetricName::Fcp | MetricName::Lcp | MetricName::Ttfb => 120_000.0,
        MetricName::Inp => 60_000.0,
        MetricName::Cls => 10.0,
    }
}

/// The site a page belongs to: the host of its URL, with the port when the
/// URL names one (`127.0.0.1:8080`, `shop.example`).
pub fn site_of(page: &Url) -> Option<String> {
    let host = page.host_str()?;
    Some(match page.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    })
}

/// A valid beacon's page, parsed: the site it belongs to and the page key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageKey {
    pub site: String,
    /// The URL as the `url` crate normalises it, without query, fragment
    /// and user info: keeps one page under one key (`http://A` =
    /// `http://a/`) and keeps query strings and credentials, which may
    /// carry personal data, out of storage.
    pub page: String,
}

/// Parses and checks `page`: it must be an absolute http(s) URL.
pub fn page_key(page: &str) -> Result<PageKey, Invalid> {
    if page.is_empty() {
        return Err(Invalid::new(Reason::InvalidPage, "page", "page must not be empty"));
    }
    if longer_than(page, MAX_PAGE_CHARS) {
        return Err(Invalid::new(
            Reason::StringTooLong,
            "page",
            format!("page is longer than {MAX_PAGE_CHARS} characters"),
        ));
    }
    let mut url = Url::parse(page).map_err(|e| {
        Invalid::new(
            Reason::InvalidPage,
            "page",
            format!("page is not an absolute http(s) URL: {e}"),
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Invalid::new(
            Reason::InvalidPage,
            "page",
            format!("page must be an http or https URL, not {}:", url.scheme()),
        ));
    }
    let site = site_of(&url).ok_or_else(|| Invalid::new(Reason::InvalidPage, "page", "page URL has no host"))?;
    url.set_query(None);
    url.set_fragment(None);
    // Credentials in the URL (`https://user:pass@host/`) are never kept.
    // Both calls succeed on an http(s) URL with a host.
    let _ = url.set_username("");
    let _ = url.set_password(None);
    Ok(PageKey { site, page: url.into() })
}

/// Whether `s` has more than `max` characters; counts them only when its
/// bytes (never fewer than its characters) are over.
fn longer_than(s: &str, max: usize) -> bool {
    s.len() > max && s.chars().count() > max
}

/// Checks an id; `field` names it, built only for an error.
fn check_id(field: impl FnOnce() -> String, id: &str) -> Result<(), Invalid> {
    if id.is_empty() {
        let field = field();
        let message = format!("{field} must not be empty");
        return Err(Invalid::new(Reason::InvalidField, field, message));
    }
    if longer_than(id, MAX_ID_CHARS) {
        let field = field();
        let message = format!("{field} is longer than {MAX_ID_CHARS} characters");
        return Err(Invalid::new(Reason::StringTooLong, field, message));
    }
    Ok(())
}

/// Checks every rule of `beacon.schema.json` that serde does not (and at
/// most `max_metrics` reports), and returns the parsed page key. Stops at
/// the first problem found.
pub fn validate(beacon: &WireBeacon, max_metrics: usize) -> Result<PageKey, Invalid> {
    if beacon.schema_version != SCHEMA_VERSION {
        return Err(Invalid::new(
            Reason::UnsupportedSchemaVersion,
            "schemaVersion",
            format!(
                "unsupported schemaVersion {}, this collector accepts {SCHEMA_VERSION}",
                beacon.schema_version
            ),
        ));
    }
    let key = page_key(&beacon.page)?;
    if let Some(id) = &beacon.page_view_id {
        check_id(|| "pageViewId".into(), id)?;
    }
    if let Some(id) = &beacon.session_id {
        check_id(|| "sessionId".into(), id)?;
    }
    if let Some(t) = &beacon.effective_type {
        if longer_than(t, MAX_EFFECTIVE_TYPE_CHARS) {
            return Err(Invalid::new(
                Reason::StringTooLong,
                "effectiveType",
                format!("effectiveType is longer than {MAX_EFFECTIVE_TYPE_CHARS} characters"),
            ));
        }
    }
    if let Some(m) = beacon.device_memory {
        if !m.is_finite() || m < 0.0 {
            return Err(Invalid::new(
                Reason::ValueOutOfRange,
                "deviceMemory",
                format!("deviceMemory must be a non-negative number, got {m}"),
            ));
        }
    }
    if beacon.metrics.len() > max_metrics {
        return Err(Invalid::new(
            Reason::TooManyMetrics,
            "metrics",
            format!(
                "too many metrics: {}, at most {max_metrics} per beacon",
                beacon.metrics.len()
            ),
        ));
    }
    for (i, m) in beacon.metrics.iter().enumerate() {
        check_id(|| format!("metrics[{i}].id"), &m.id)?;
        let max = max_value(m.name);
        if !m.value.is_finite() || !(0.0..=max).contains(&m.value) {
            return Err(Invalid::new(
                Reason::ValueOutOfRange,
                format!("metrics[{i}].value"),
                format!("{} value must be within 0..={max}, got {}", m.name.as_str(), m.value),
            ));
        }
        // A delta is the change since the previous report of the same id,
        // so it lies within the value's range either way.
        if !m.delta.is_finite() || !(-max..=max).contains(&m.delta) {
            return Err(Invalid::new(
                Reason::ValueOutOfRange,
                format!("metrics[{i}].delta"),
                format!(
                    "{} delta must be within -{max}..={max}, got {}",
                    m.name.as_str(),
                    m.delta
                ),
            ));
        }
        if let Some(a) = &m.attribution {
            check_attribution(i, a)?;
        }
    }
    Ok(key)
}

/// Lengths, ranges and URLs of one report's attribution (`i`: its index).
fn check_attribution(i: usize, a: &Attribution) -> Result<(), Invalid> {
    let field = |name: &str| format!("metrics[{i}].attribution.{name}");
    let text = |name: &str, v: &Option<String>| -> Result<(), Invalid> {
        match v {
            Some(s) if s.is_empty() => Err(Invalid::new(
                Reason::InvalidField,
                field(name),
                format!("{name} must not be empty"),
            )),
            Some(s) if longer_than(s, MAX_SELECTOR_CHARS) => Err(Invalid::new(
                Reason::StringTooLong,
                field(name),
                format!("{name} is longer than {MAX_SELECTOR_CHARS} characters"),
            )),
            _ => Ok(()),
        }
    };
    let url = |name: &str, v: &Option<String>| -> Result<(), Invalid> {
        let Some(s) = v else { return Ok(()) };
        if longer_than(s, MAX_URL_CHARS) {
            return Err(Invalid::new(
                Reason::StringTooLong,
                field(name),
                format!("{name} is longer than {MAX_URL_CHARS} characters"),
            ));
        }
        match Url::parse(s) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.has_host() => Ok(()),
            _ => Err(Invalid::new(
                Reason::InvalidField,
                field(name),
                format!("{name} must be an absolute http(s) URL"),
            )),
        }
    };
    let duration = |name: &str, v: Option<f64>, max: f64| -> Result<(), Invalid> {
        match v {
            Some(d) if !d.is_finite() || !(0.0..=max).contains(&d) => Err(Invalid::new(
                Reason::ValueOutOfRange,
                field(name),
                format!("{name} must be within 0..={max}, got {d}"),
            )),
            _ => Ok(()),
        }
    };
    text("target", &a.target)?;
    text("largestShiftTarget", &a.largest_shift_target)?;
    text("interactionTarget", &a.interaction_target)?;
    url("url", &a.url)?;
    for (name, v) in [
        ("timeToFirstByte", a.time_to_first_byte),
        ("resourceLoadDelay", a.resource_load_delay),
        ("resourceLoadDuration", a.resource_load_duration),
        ("elementRenderDelay", a.element_render_delay),
        ("largestShiftTime", a.largest_shift_time),
        ("inputDelay", a.input_delay),
        ("processingDuration", a.processing_duration),
        ("presentationDelay", a.presentation_delay),
        ("totalScriptDuration", a.total_script_duration),
        ("totalStyleAndLayoutDuration", a.total_style_and_layout_duration),
        ("totalPaintDuration", a.total_paint_duration),
        ("totalUnattributedDuration", a.total_unattributed_duration),
        ("firstByteToFCP", a.first_byte_to_fcp),
        ("waitingDuration", a.waiting_duration),
        ("cacheDuration", a.cache_duration),
        ("dnsDuration", a.dns_duration),
        ("connectionDuration", a.connection_duration),
        ("requestDuration", a.request_duration),
    ] {
        duration(name, v, MAX_DURATION_MS)?;
    }
    duration("largestShiftValue", a.largest_shift_value, max_value(MetricName::Cls))?;
    if let Some(script) = &a.longest_script {
        url("longestScript.url", &script.url)?;
        text("longestScript.function", &script.function)?;
        duration("longestScript.duration", Some(script.duration), MAX_DURATION_MS)?;
    }
    Ok(())
}

/// `url` without query string, fragment and user info (agents strip them;
/// the collector keeps to it whatever an agent sends). Only for URLs
/// [`validate`] accepted.
fn private_url(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut u) => {
            u.set_query(None);
            u.set_fragment(None);
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.into()
        }
        Err(_) => url.to_owned(),
    }
}

/// An attribution as stored: its URLs kept private.
fn stored_attribution(mut a: Attribution) -> Attribution {
    a.url = a.url.as_deref().map(private_url);
    if let Some(script) = &mut a.longest_script {
        script.url = script.url.as_deref().map(private_url);
    }
    a
}

/// What a valid beacon stores; its strings move, not copied.
///
/// The agent's `rating` labels are dropped: ratings are computed from the
/// values at the reference thresholds, so that every stored rating means
/// the same thing whichever agent version sent it.
pub fn new_beacon(beacon: WireBeacon, key: PageKey, received_at_ms: i64) -> NewBeacon {
    NewBeacon {
        site: key.site,
        page: key.page,
        form_factor: beacon.form_factor,
        page_view_id: beacon.page_view_id,
        session_id: beacon.session_id,
        received_at_ms,
        reports: beacon
            .metrics
            .into_iter()
            .map(|m| NewReport {
                metric: m.name,
                report_id: m.id,
                // -0 is 0 (adding +0 turns -0 into +0 and nothing else):
                // exports would show `-0` otherwise.
                value: m.value + 0.0,
                delta: m.delta + 0.0,
                navigation_type: m.navigation_type,
                attribution: m.attribution.map(stored_attribution),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use beacon::{FormFactor, MetricReport, NavigationType, Rating};

    fn metric(name: MetricName, value: f64) -> MetricReport<Attribution> {
        MetricReport {
            name,
            value,
            delta: value,
            id: "v4-1-1".into(),
            rating: Rating::Good,
            navigation_type: NavigationType::Navigate,
            attribution: None,
        }
    }

    fn beacon() -> WireBeacon {
        Beacon {
            schema_version: 1,
            page: "http://127.0.0.1:8080/".into(),
            page_view_id: Some("pv".into()),
            session_id: None,
            navigation_type: Some(NavigationType::Navigate),
            form_factor: Some(FormFactor::Desktop),
            effective_type: Some("4g".into()),
            device_memory: Some(8.0),
            metrics: vec![metric(MetricName::Fcp, 123.0)],
        }
    }

    fn field_of(b: &WireBeacon) -> Option<String> {
        validate(b, MAX_METRICS).unwrap_err().field
    }

    #[test]
    fn a_good_beacon_passes() {
        let key = validate(&beacon(), MAX_METRICS).unwrap();
        assert_eq!(
            key,
            PageKey {
                site: "127.0.0.1:8080".into(),
                page: "http://127.0.0.1:8080/".into()
            }
        );
    }

    #[test]
    fn schema_version_must_be_1() {
        let mut b = beacon();
        b.schema_version = 2;
        assert_eq!(field_of(&b).as_deref(), Some("schemaVersion"));
    }

    #[test]
    fn page_rules() {
        for bad in ["", "/relative", "not a url", "ftp://x.example/", "file:///etc/passwd"] {
            let mut b = beacon();
            b.page = bad.into();
            assert_eq!(field_of(&b).as_deref(), Some("page"), "{bad:?}");
        }
        let mut b = beacon();
        b.page = format!("https://x.example/{}", "a".repeat(MAX_PAGE_CHARS));
        assert_eq!(field_of(&b).as_deref(), Some("page"));
    }

    #[test]
    fn site_has_port_only_when_named() {
        let k = page_key("https://Shop.Example/cart?u=me#top").unwrap();
        assert_eq!(k.site, "shop.example");
        assert_eq!(k.page, "https://shop.example/cart");
        assert_eq!(page_key("https://shop.example:443/").unwrap().site, "shop.example");
        assert_eq!(page_key("http://[::1]:3000/a").unwrap().site, "[::1]:3000");
    }

    /// Finding 6: credentials in a page URL were stored and exported.
    #[test]
    fn user_info_is_stripped_from_page_keys() {
        for (page, key) in [
            ("https://user:pass@shop.example/x?q=1#f", "https://shop.example/x"),
            ("https://user@shop.example:8443/x", "https://shop.example:8443/x"),
            ("http://:secret@127.0.0.1:8080/", "http://127.0.0.1:8080/"),
            ("https://us%40er:p%3Ass@shop.example/", "https://shop.example/"),
        ] {
            let k = page_key(page).unwrap();
            assert_eq!(k.page, key, "{page}");
            assert!(!k.site.contains('@'), "{page}: {}", k.site);
        }
    }

    /// Finding 9: `-0` was stored (and exported) as `-0`.
    #[test]
    fn negative_zero_is_stored_as_zero() {
        let mut b = beacon();
        b.metrics[0].value = -0.0;
        b.metrics[0].delta = -0.0;
        let key = validate(&b, MAX_METRICS).unwrap();
        let stored = new_beacon(b, key, 0);
        let r = &stored.reports[0];
        assert!(r.value == 0.0 && r.value.is_sign_positive(), "{:?}", r.value);
        assert!(r.delta.is_sign_positive(), "{:?}", r.delta);
    }

    #[test]
    fn metric_id_rules() {
        let mut b = beacon();
        b.metrics[0].id = String::new();
        assert_eq!(field_of(&b).as_deref(), Some("metrics[0].id"));
        b.metrics[0].id = "x".repeat(MAX_ID_CHARS + 1);
        assert_eq!(field_of(&b).as_deref(), Some("metrics[0].id"));
        b.metrics[0].id = "x".repeat(MAX_ID_CHARS);
        assert!(validate(&b, MAX_METRICS).is_ok());
        // The limit counts characters, not bytes.
        b.metrics[0].id = "é".repeat(MAX_ID_CHARS);
        assert!(validate(&b, MAX_METRICS).is_ok());
        b.metrics[0].id = "é".repeat(MAX_ID_CHARS + 1);
        assert_eq!(field_of(&b).as_deref(), Some("metrics[0].id"));
    }

    #[test]
    fn at_most_256_metrics() {
        let mut b = beacon();
        b.metrics = vec![metric(MetricName::Fcp, 1.0); MAX_METRICS];
        assert!(validate(&b, MAX_METRICS).is_ok());
        b.metrics.push(metric(MetricName::Fcp, 1.0));
        assert_eq!(field_of(&b).as_deref(), Some("metrics"));
    }

    #[test]
    fn value_ranges() {
        let cases = [
            (MetricName::Fcp, 120_000.0, true),
            (MetricName::Fcp, 120_000.5, false),
            (MetricName::Lcp, -0.001, false),
            (MetricName::Ttfb, 0.0, true),
            (MetricName::Inp, 60_000.0, true),
            (MetricName::Inp, 60_001.0, false),
            (MetricName::Cls, 10.0, true),
            (MetricName::Cls, 10.01, false),
            (MetricName::Cls, f64::NAN, false),
            (MetricName::Lcp, f64::INFINITY, false),
        ];
        for (name, value, ok) in cases {
            let mut b = beacon();
            b.metrics.insert(0, metric(MetricName::Fcp, 1.0));
            b.metrics[1] = metric(name, value);
            b.metrics[1].delta = 0.0;
            let r = validate(&b, MAX_METRICS);
            assert_eq!(r.is_ok(), ok, "{name:?} {value}");
            if !ok {
                assert_eq!(r.unwrap_err().field.as_deref(), Some("metrics[1].value"));
            }
        }
    }

    #[test]
    fn delta_must_be_finite_and_in_range() {
        let mut b = beacon();
        b.metrics[0].delta = -50.0; // shrinking is allowed
        assert!(validate(&b, MAX_METRICS).is_ok());
        b.metrics[0].delta = f64::NEG_INFINITY;
        assert_eq!(field_of(&b).as_deref(), Some("metrics[0].delta"));
    }

    #[test]
    fn optional_fields() {
        let mut b = beacon();
        b.page_view_id = Some(String::new());
        assert_eq!(field_of(&b).as_deref(), Some("pageViewId"));
        let mut b = beacon();
        b.session_id = Some("s".repeat(MAX_ID_CHARS + 1));
        assert_eq!(field_of(&b).as_deref(), Some("sessionId"));
        let mut b = beacon();
        b.effective_type = Some("x".repeat(17));
        assert_eq!(field_of(&b).as_deref(), Some("effectiveType"));
        let mut b = beacon();
        b.device_memory = Some(-1.0);
        assert_eq!(field_of(&b).as_deref(), Some("deviceMemory"));
    }

    #[test]
    fn rows_carry_the_recomputed_rating() {
        let mut b = beacon();
        b.metrics = vec![metric(MetricName::Lcp, 5000.0)];
        let key = validate(&b, MAX_METRICS).unwrap();
        let rows = new_beacon(b, key, 7).to_reports();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].rating, Rating::Poor);
        assert_eq!(rows[0].site, "127.0.0.1:8080");
        assert_eq!(rows[0].form_factor, Some(FormFactor::Desktop));
        assert_eq!(rows[0].received_at_ms, 7);
    }
}
