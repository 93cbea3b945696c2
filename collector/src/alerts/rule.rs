//! Alert rules and receivers: the `[alerts]` section of the config file,
//! its checks and defaults, and the built-in rules a new user gets.

use std::collections::HashSet;

use beacon::{FormFactor, MetricName};
use serde::{Deserialize, Serialize};

use crate::time::{DAY_MS, HOUR_MS};

pub const DEFAULT_EVALUATION_INTERVAL_MS: i64 = 30_000;
pub const DEFAULT_PERCENTILE: f64 = 75.0;
pub const DEFAULT_WINDOW_MS: i64 = HOUR_MS;
pub const DEFAULT_MIN_SAMPLES: u64 = 200;
/// Long enough that one burst of slow page loads does not page anyone.
pub const DEFAULT_FOR_MS: i64 = 5 * 60_000;
pub const DEFAULT_RESOLVE_MARGIN_PERCENT: f64 = 5.0;
pub const DEFAULT_REPEAT_INTERVAL_MS: i64 = 4 * HOUR_MS;
pub const DEFAULT_WORSE_BY_PERCENT: f64 = 20.0;
pub const DEFAULT_BASELINE_MS: i64 = 7 * DAY_MS;
pub const DEFAULT_HISTORY_RETENTION_MS: i64 = 90 * DAY_MS;
pub const DEFAULT_TIMEOUT_MS: i64 = 10_000;
pub const DEFAULT_MAX_ATTEMPTS: u32 = 10;
pub const DEFAULT_INITIAL_BACKOFF_MS: i64 = 1_000;
pub const DEFAULT_MAX_BACKOFF_MS: i64 = 5 * 60_000;
/// Alertmanager forgets an alert that is not re-sent before its `endsAt`;
/// firing alerts are re-sent this often with `endsAt` four intervals ahead,
/// as Prometheus does.
pub const DEFAULT_RESEND_INTERVAL_MS: i64 = 60_000;
/// Hourly aggregates are kept this long; longer windows must be whole days.
const MAX_HOURLY_WINDOW_MS: i64 = 7 * DAY_MS;

/// How urgent an alert is; a label on every notification.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub const fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// What makes a rule's condition true.
#[derive(Clone, Debug, PartialEq)]
pub enum Condition {
    /// The percentile is above `threshold`.
    Threshold { threshold: f64 },
    /// The percentile over the window is at least `worse_by_percent` higher
    /// than over the `baseline_ms` of whole days before the window.
    Regression {
        worse_by_percent: f64,
        baseline_ms: i64,
        baseline_min_samples: u64,
    },
}

/// Which page keys a rule covers: `*` matches any run of characters. A
/// pattern starting with `/` is matched against the key's path (the key
/// without `scheme://host`), any other against the whole key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PagePattern(pub String);

impl PagePattern {
    pub fn matches(&self, page: &str) -> bool {
        if self.0.starts_with('/') {
            glob_match(&self.0, path_of(page))
        } else {
            glob_match(&self.0, page)
        }
    }
}

/// `https://shop.example/cart` -> `/cart`; keys without a scheme as given.
fn path_of(page: &str) -> &str {
    match page.find("://") {
        Some(i) => {
            let rest = &page[i + 3..];
            rest.find('/').map_or("/", |j| &rest[j..])
        }
        None => page,
    }
}

/// Glob match where `*` matches any (possibly empty) run of characters and
/// every other character matches itself.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    // Where the last `*` was and what text position it is matching up to.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// One alert rule, checked, with its defaults filled in.
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    /// Unique; the `alertname` label.
    pub name: String,
    pub metric: MetricName,
    /// Nearest-rank percentile, within `(0, 100)`, at most two decimals.
    pub percentile: f64,
    pub condition: Condition,
    /// One site, or every site (`None`).
    pub site: Option<String>,
    pub page: PagePattern,
    /// One form factor, or all of them together (`None`).
    pub form_factor: Option<FormFactor>,
    pub window_ms: i64,
    pub min_samples: u64,
    pub for_ms: i64,
    pub resolve_margin_percent: f64,
    /// 0: never repeat.
    pub repeat_interval_ms: i64,
    pub severity: Severity,
    /// Receivers by name; `None`: all receivers.
    pub receivers: Option<Vec<String>>,
    /// One of the defaults, not from the config file.
    pub builtin: bool,
}

impl Rule {
    /// Human text of the percentile: `p75`, `p99.9`.
    pub fn percentile_label(&self) -> String {
        format!("p{}", self.percentile)
    }

    pub fn routes_to(&self, receiver: &str) -> bool {
        self.receivers
            .as_ref()
            .is_none_or(|names| names.iter().any(|n| n == receiver))
    }
}

/// How a notification reaches a receiver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReceiverKind {
    /// JSON shaped like Alertmanager's webhook payload (version 4).
    Webhook { url: String, secret: Option<String> },
    /// A Slack (or Mattermost, ...) incoming webhook.
    Slack { url: String },
    /// Alertmanager's `POST /api/v2/alerts`; `url` is its base URL.
    Alertmanager { url: String, resend_interval_ms: i64 },
}

impl ReceiverKind {
    pub const fn type_name(&self) -> &'static str {
        match self {
            ReceiverKind::Webhook { .. } => "webhook",
            ReceiverKind::Slack { .. } => "slack",
            ReceiverKind::Alertmanager { .. } => "alertmanager",
        }
    }
}

/// Retries of one receiver's deliveries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included; then the notification is
    /// dead-lettered.
    pub max_attempts: u32,
    pub initial_backoff_ms: i64,
    pub max_backoff_ms: i64,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            initial_backoff_ms: DEFAULT_INITIAL_BACKOFF_MS,
            max_backoff_ms: DEFAULT_MAX_BACKOFF_MS,
        }
    }
}

/// A configured receiver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receiver {
    pub name: String,
    pub kind: ReceiverKind,
    /// Per attempt, connecting included.
    pub timeout_ms: i64,
    pub retry: RetryPolicy,
}

/// The alerting settings the collector runs with.
#[derive(Clone, Debug, PartialEq)]
pub struct AlertsConfig {
    pub enabled: bool,
    pub evaluation_interval_ms: i64,
    /// Resolved alerts, their history and delivered notifications are
    /// deleted after this long.
    pub history_retention_ms: i64,
    /// The configured rules, or the built-in ones when none are.
    pub rules: Vec<Rule>,
    pub receivers: Vec<Receiver>,
}

impl Default for AlertsConfig {
    fn default() -> AlertsConfig {
        AlertsConfig::from_file(&AlertsFile::default()).expect("defaults are valid")
    }
}

/// `[alerts]` of the config file. Unknown keys are errors.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsFile {
    pub enabled: Option<bool>,
    pub evaluation_interval: Option<String>,
    pub history_retention: Option<String>,
    #[serde(default)]
    pub rules: Vec<RuleFile>,
    #[serde(default)]
    pub receivers: Vec<ReceiverFile>,
}

/// One `[[alerts.rules]]`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleFile {
    pub name: String,
    /// `threshold` (default) or `regression`.
    pub kind: Option<String>,
    pub metric: String,
    pub percentile: Option<f64>,
    pub threshold: Option<f64>,
    pub worse_by_percent: Option<f64>,
    pub baseline: Option<String>,
    pub baseline_min_samples: Option<u64>,
    pub site: Option<String>,
    pub page: Option<String>,
    pub form_factor: Option<String>,
    pub window: Option<String>,
    pub min_samples: Option<u64>,
    #[serde(rename = "for")]
    pub for_: Option<String>,
    pub resolve_margin_percent: Option<f64>,
    pub repeat_interval: Option<String>,
    pub severity: Option<Severity>,
    pub receivers: Option<Vec<String>>,
}

/// One `[[alerts.receivers]]`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiverFile {
    pub name: String,
    /// `webhook`, `slack` or `alertmanager`.
    #[serde(rename = "type")]
    pub type_: String,
    pub url: String,
    /// Webhook only: signs bodies with HMAC-SHA256.
    pub secret: Option<String>,
    pub timeout: Option<String>,
    pub max_attempts: Option<u32>,
    pub initial_backoff: Option<String>,
    pub max_backoff: Option<String>,
    /// Alertmanager only.
    pub resend_interval: Option<String>,
}

/// A bad alerting setting, named by its path in the config file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid setting {key}: {message}")]
pub struct RuleError {
    pub key: String,
    pub message: String,
}

fn bad(key: impl Into<String>, message: impl Into<String>) -> RuleError {
    RuleError {
        key: key.into(),
        message: message.into(),
    }
}

/// Parses `200ms`, `30s`, `5m`, `4h`, `7d` and sums like `1h30m`; `0` alone
/// is zero.
pub fn parse_duration(s: &str) -> Option<i64> {
    let s = s.trim();
    if s == "0" {
        return Some(0);
    }
    let mut total: i64 = 0;
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let n: i64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => HOUR_MS,
            "d" => DAY_MS,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total = total.checked_add(n.checked_mul(unit)?)?;
    }
    Some(total)
}

/// The shortest text [`parse_duration`] reads back: `90000` -> `1m30s`.
pub fn format_duration(ms: i64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    let mut rest = ms;
    for (unit, name) in [(DAY_MS, "d"), (HOUR_MS, "h"), (60_000, "m"), (1_000, "s"), (1, "ms")] {
        if rest >= unit {
            out.push_str(&format!("{}{name}", rest / unit));
            rest %= unit;
        }
    }
    out
}

fn duration(key: &str, value: Option<&str>, default: i64) -> Result<i64, RuleError> {
    match value {
        None => Ok(default),
        Some(v) => {
            parse_duration(v).ok_or_else(|| bad(key, format!("{v:?} is not a duration like 200ms, 30s, 5m, 4h, 7d")))
        }
    }
}

/// Rule names become label values and URL parts: keep them plain.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn valid_url(url: &str) -> bool {
    url::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
}

/// Checks a rule window: whole hours up to 7 days (hourly aggregates), or
/// whole days (daily aggregates).
fn check_window(key: &str, ms: i64) -> Result<(), RuleError> {
    if ms <= 0 {
        return Err(bad(key, "must be positive"));
    }
    if ms % DAY_MS == 0 || (ms % HOUR_MS == 0 && ms <= MAX_HOURLY_WINDOW_MS) {
        Ok(())
    } else {
        Err(bad(key, "must be whole hours (up to 7d) or whole days"))
    }
}

/// The rules a new user gets: each Core Web Vital's p75 above its "poor"
/// threshold, per page, over the last hour.
pub fn builtin_rules() -> Vec<Rule> {
    [
        (MetricName::Lcp, Severity::Critical),
        (MetricName::Inp, Severity::Critical),
        (MetricName::Cls, Severity::Warning),
        (MetricName::Fcp, Severity::Warning),
        (MetricName::Ttfb, Severity::Warning),
    ]
    .into_iter()
    .map(|(metric, severity)| Rule {
        name: format!("{}-p75", metric.as_str().to_ascii_lowercase()),
        metric,
        percentile: DEFAULT_PERCENTILE,
        condition: Condition::Threshold {
            threshold: metric.thresholds().poor,
        },
        site: None,
        page: PagePattern("*".into()),
        form_factor: None,
        window_ms: DEFAULT_WINDOW_MS,
        min_samples: DEFAULT_MIN_SAMPLES,
        for_ms: DEFAULT_FOR_MS,
        resolve_margin_percent: DEFAULT_RESOLVE_MARGIN_PERCENT,
        repeat_interval_ms: DEFAULT_REPEAT_INTERVAL_MS,
        severity,
        receivers: None,
        builtin: true,
    })
    .collect()
}

impl AlertsConfig {
    /// Fills in defaults and checks every setting.
    pub fn from_file(file: &AlertsFile) -> Result<AlertsConfig, RuleError> {
        let evaluation_interval_ms = duration(
            "alerts.evaluation_interval",
            file.evaluation_interval.as_deref(),
            DEFAULT_EVALUATION_INTERVAL_MS,
        )?;
        if evaluation_interval_ms < 10 {
            return Err(bad("alerts.evaluation_interval", "must be at least 10ms"));
        }
        let history_retention_ms = duration(
            "alerts.history_retention",
            file.history_retention.as_deref(),
            DEFAULT_HISTORY_RETENTION_MS,
        )?;
        if history_retention_ms < HOUR_MS {
            return Err(bad("alerts.history_retention", "must be at least 1h"));
        }
        let mut receivers: Vec<Receiver> = Vec::new();
        for (i, r) in file.receivers.iter().enumerate() {
            let receiver = receiver_from_file(i, r)?;
            if receivers.iter().any(|o| o.name == receiver.name) {
                return Err(bad(
                    format!("alerts.receivers[{i}].name"),
                    format!("{:?} is configured twice", receiver.name),
                ));
            }
            receivers.push(receiver);
        }
        let mut rules: Vec<Rule> = Vec::new();
        for (i, r) in file.rules.iter().enumerate() {
            let rule = rule_from_file(i, r, &receivers)?;
            if rules.iter().any(|o| o.name == rule.name) {
                return Err(bad(
                    format!("alerts.rules[{i}].name"),
                    format!("{:?} is configured twice", rule.name),
                ));
            }
            rules.push(rule);
        }
        if rules.is_empty() {
            rules = builtin_rules();
        }
        Ok(AlertsConfig {
            enabled: file.enabled.unwrap_or(true),
            evaluation_interval_ms,
            history_retention_ms,
            rules,
            receivers,
        })
    }
}

fn receiver_from_file(i: usize, r: &ReceiverFile) -> Result<Receiver, RuleError> {
    let key = |k: &str| format!("alerts.receivers[{i}].{k}");
    if !valid_name(&r.name) {
        return Err(bad(key("name"), "must be 1-100 letters, digits, '-', '_' or '.'"));
    }
    if !valid_url(&r.url) {
        return Err(bad(key("url"), format!("{:?} is not an http(s) URL", r.url)));
    }
    let only = |what: &str, set: bool, kind: &str| {
        if set {
            Err(bad(key(what), format!("is not a setting of {kind} receivers")))
        } else {
            Ok(())
        }
    };
    let url = r.url.clone();
    let kind = match r.type_.as_str() {
        "webhook" => {
            only("resend_interval", r.resend_interval.is_some(), "webhook")?;
            let secret = r.secret.clone().filter(|s| !s.is_empty());
            ReceiverKind::Webhook { url, secret }
        }
        "slack" => {
            only("secret", r.secret.is_some(), "slack")?;
            only("resend_interval", r.resend_interval.is_some(), "slack")?;
            ReceiverKind::Slack { url }
        }
        "alertmanager" => {
            only("secret", r.secret.is_some(), "alertmanager")?;
            let resend_interval_ms = duration(
                &key("resend_interval"),
                r.resend_interval.as_deref(),
                DEFAULT_RESEND_INTERVAL_MS,
            )?;
            if resend_interval_ms < 100 {
                return Err(bad(key("resend_interval"), "must be at least 100ms"));
            }
            ReceiverKind::Alertmanager {
                url: url.trim_end_matches('/').to_string(),
                resend_interval_ms,
            }
        }
        other => {
            return Err(bad(
                key("type"),
                format!("{other:?} is not one of webhook, slack, alertmanager"),
            ))
        }
    };
    let timeout_ms = duration(&key("timeout"), r.timeout.as_deref(), DEFAULT_TIMEOUT_MS)?;
    if timeout_ms < 10 {
        return Err(bad(key("timeout"), "must be at least 10ms"));
    }
    let retry = RetryPolicy {
        max_attempts: r.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS),
        initial_backoff_ms: duration(
            &key("initial_backoff"),
            r.initial_backoff.as_deref(),
            DEFAULT_INITIAL_BACKOFF_MS,
        )?,
        max_backoff_ms: duration(&key("max_backoff"), r.max_backoff.as_deref(), DEFAULT_MAX_BACKOFF_MS)?,
    };
    if retry.max_attempts == 0 {
        return Err(bad(key("max_attempts"), "must be at least 1"));
    }
    if retry.initial_backoff_ms <= 0 {
        return Err(bad(key("initial_backoff"), "must be positive"));
    }
    if retry.max_backoff_ms < retry.initial_backoff_ms {
        return Err(bad(key("max_backoff"), "must be at least initial_backoff"));
    }
    Ok(Receiver {
        name: r.name.clone(),
        kind,
        timeout_ms,
        retry,
    })
}

fn rule_from_file(i: usize, r: &RuleFile, receivers: &[Receiver]) -> Result<Rule, RuleError> {
    let key = |k: &str| format!("alerts.rules[{i}].{k}");
    if !valid_name(&r.name) {
        return Err(bad(key("name"), "must be 1-100 letters, digits, '-', '_' or '.'"));
    }
    let metric = MetricName::parse(&r.metric.to_ascii_uppercase()).ok_or_else(|| {
        bad(
            key("metric"),
            format!("{:?} is not one of LCP, INP, CLS, FCP, TTFB", r.metric),
        )
    })?;
    let percentile = r.percentile.unwrap_or(DEFAULT_PERCENTILE);
    // Two decimals at most, so the nearest rank is computed exactly.
    if !(percentile > 0.0 && percentile < 100.0) || ((percentile * 100.0).round() / 100.0 - percentile).abs() > 1e-9 {
        return Err(bad(
            key("percentile"),
            "must be within (0, 100) with at most two decimals",
        ));
    }
    let regression_only = [
        ("worse_by_percent", r.worse_by_percent.is_some()),
        ("baseline", r.baseline.is_some()),
        ("baseline_min_samples", r.baseline_min_samples.is_some()),
    ];
    let min_samples = r.min_samples.unwrap_or(DEFAULT_MIN_SAMPLES);
    if min_samples == 0 {
        return Err(bad(key("min_samples"), "must be at least 1"));
    }
    let condition = match r.kind.as_deref().unwrap_or("threshold") {
        "threshold" => {
            if let Some((k, _)) = regression_only.iter().find(|(_, set)| *set) {
                return Err(bad(key(k), "is a setting of regression rules (kind = \"regression\")"));
            }
            let threshold = r
                .threshold
                .ok_or_else(|| bad(key("threshold"), "is required for threshold rules"))?;
            if !threshold.is_finite() || threshold < 0.0 {
                return Err(bad(key("threshold"), "must be a number >= 0"));
            }
            Condition::Threshold { threshold }
        }
        "regression" => {
            if r.threshold.is_some() {
                return Err(bad(key("threshold"), "is a setting of threshold rules"));
            }
            let worse_by_percent = r.worse_by_percent.unwrap_or(DEFAULT_WORSE_BY_PERCENT);
            if !(worse_by_percent.is_finite() && worse_by_percent > 0.0) {
                return Err(bad(key("worse_by_percent"), "must be a number > 0"));
            }
            let baseline_ms = duration(&key("baseline"), r.baseline.as_deref(), DEFAULT_BASELINE_MS)?;
            if baseline_ms <= 0 || baseline_ms % DAY_MS != 0 {
                return Err(bad(key("baseline"), "must be whole days"));
            }
            let baseline_min_samples = r.baseline_min_samples.unwrap_or(min_samples);
            if baseline_min_samples == 0 {
                return Err(bad(key("baseline_min_samples"), "must be at least 1"));
            }
            Condition::Regression {
                worse_by_percent,
                baseline_ms,
                baseline_min_samples,
            }
        }
        other => return Err(bad(key("kind"), format!("{other:?} is not threshold or regression"))),
    };
    let site = match r.site.as_deref().map(str::trim) {
        None | Some("*") => None,
        Some("") => return Err(bad(key("site"), "must be a host[:port] or \"*\"")),
        Some(s) if s.contains('/') || s.contains('*') => {
            return Err(bad(
                key("site"),
                format!("{s:?} is not a host[:port] (no scheme, no path)"),
            ))
        }
        Some(s) => Some(s.to_ascii_lowercase()),
    };
    let page = PagePattern(r.page.clone().unwrap_or_else(|| "*".into()));
    if page.0.is_empty() {
        return Err(bad(key("page"), "must not be empty; \"*\" means every page"));
    }
    let form_factor = match r.form_factor.as_deref().unwrap_or("all") {
        "all" => None,
        s => Some(FormFactor::ALL.into_iter().find(|f| f.as_str() == s).ok_or_else(|| {
            bad(
                key("form_factor"),
                format!("{s:?} is not one of phone, tablet, desktop, all"),
            )
        })?),
    };
    let window_ms = duration(&key("window"), r.window.as_deref(), DEFAULT_WINDOW_MS)?;
    check_window(&key("window"), window_ms)?;
    let for_ms = duration(&key("for"), r.for_.as_deref(), DEFAULT_FOR_MS)?;
    let repeat_interval_ms = duration(
        &key("repeat_interval"),
        r.repeat_interval.as_deref(),
        DEFAULT_REPEAT_INTERVAL_MS,
    )?;
    let resolve_margin_percent = r.resolve_margin_percent.unwrap_or(DEFAULT_RESOLVE_MARGIN_PERCENT);
    if !(0.0..100.0).contains(&resolve_margin_percent) {
        return Err(bad(key("resolve_margin_percent"), "must be within [0, 100)"));
    }
    if let Some(names) = &r.receivers {
        let known: HashSet<&str> = receivers.iter().map(|x| x.name.as_str()).collect();
        if let Some(unknown) = names.iter().find(|n| !known.contains(n.as_str())) {
            return Err(bad(key("receivers"), format!("no receiver is named {unknown:?}")));
        }
    }
    Ok(Rule {
        name: r.name.clone(),
        metric,
        percentile,
        condition,
        site,
        page,
        form_factor,
        window_ms,
        min_samples,
        for_ms,
        resolve_margin_percent,
        repeat_interval_ms,
        severity: r.severity.unwrap_or(Severity::Warning),
        receivers: r.receivers.clone(),
        builtin: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<AlertsConfig, RuleError> {
        #[derive(Deserialize)]
        struct Wrapper {
            alerts: AlertsFile,
        }
        let w: Wrapper = toml::from_str(text).unwrap();
        AlertsConfig::from_file(&w.alerts)
    }

    #[test]
    fn durations() {
        for (text, ms) in [
            ("200ms", 200),
            ("30s", 30_000),
            ("5m", 300_000),
            ("4h", 4 * HOUR_MS),
            ("7d", 7 * DAY_MS),
            ("1h30m", 90 * 60_000),
            ("0", 0),
            ("0s", 0),
        ] {
            assert_eq!(parse_duration(text), Some(ms), "{text}");
            assert_eq!(parse_duration(&format_duration(ms)), Some(ms));
        }
        for bad in ["", "5", "m", "1.5h", "5 m", "-5s", "5w", "h5"] {
            assert_eq!(parse_duration(bad), None, "{bad:?}");
        }
        assert_eq!(format_duration(90_000), "1m30s");
        assert_eq!(format_duration(200), "200ms");
    }

    #[test]
    fn globs() {
        for (p, t, m) in [
            ("*", "anything", true),
            ("*", "", true),
            ("https://a.example/*", "https://a.example/x/y", true),
            ("https://a.example/*", "https://b.example/x", false),
            ("*/cart", "https://a.example/cart", true),
            ("*/cart", "https://a.example/cart/2", false),
            ("a*b*c", "aXXbYYc", true),
            ("a*b*c", "aXXbYY", false),
            ("exact", "exact", true),
            ("exact", "exactly", false),
        ] {
            assert_eq!(glob_match(p, t), m, "{p} {t}");
        }
        let by_path = PagePattern("/products/*".into());
        assert!(by_path.matches("https://shop.example/products/42"));
        assert!(!by_path.matches("https://shop.example/cart"));
        assert!(PagePattern("/".into()).matches("https://shop.example"));
    }

    #[test]
    fn builtin_rules_when_none_configured() {
        let c = AlertsConfig::default();
        assert!(c.enabled);
        assert_eq!(c.evaluation_interval_ms, 30_000);
        let got: Vec<(String, f64, Severity)> = c
            .rules
            .iter()
            .map(|r| match r.condition {
                Condition::Threshold { threshold } => (r.name.clone(), threshold, r.severity),
                _ => panic!("built-ins are threshold rules"),
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("lcp-p75".into(), 4000.0, Severity::Critical),
                ("inp-p75".into(), 500.0, Severity::Critical),
                ("cls-p75".into(), 0.25, Severity::Warning),
                ("fcp-p75".into(), 3000.0, Severity::Warning),
                ("ttfb-p75".into(), 1800.0, Severity::Warning),
            ]
        );
        for r in &c.rules {
            assert_eq!((r.percentile, r.window_ms, r.min_samples), (75.0, HOUR_MS, 200));
            assert_eq!((r.site.as_deref(), r.page.0.as_str(), r.form_factor), (None, "*", None));
            assert!(r.builtin);
        }
    }

    #[test]
    fn configured_rules_replace_the_builtins() {
        let c = parse(
            r#"
            [alerts]
            evaluation_interval = "200ms"
            [[alerts.receivers]]
            name = "ops"
            type = "webhook"
            url = "http://127.0.0.1:9/hook"
            secret = "s3cret"
            max_attempts = 3
            [[alerts.receivers]]
            name = "am"
            type = "alertmanager"
            url = "http://127.0.0.1:9093/"
            [[alerts.rules]]
            name = "checkout-lcp"
            metric = "LCP"
            threshold = 3000
            site = "Shop.Example"
            page = "/checkout/*"
            form_factor = "phone"
            window = "24h"
            min_samples = 50
            for = "1m"
            repeat_interval = "0"
            severity = "critical"
            receivers = ["ops"]
            [[alerts.rules]]
            name = "inp-regression"
            kind = "regression"
            metric = "INP"
            "#,
        )
        .unwrap();
        assert_eq!(c.evaluation_interval_ms, 200);
        assert_eq!(c.rules.len(), 2);
        let r = &c.rules[0];
        assert_eq!(r.condition, Condition::Threshold { threshold: 3000.0 });
        assert_eq!(r.site.as_deref(), Some("shop.example"));
        assert_eq!(r.form_factor, Some(FormFactor::Phone));
        assert_eq!(
            (r.window_ms, r.min_samples, r.for_ms, r.repeat_interval_ms),
            (24 * HOUR_MS, 50, 60_000, 0)
        );
        assert!(r.routes_to("ops") && !r.routes_to("am"));
        let g = &c.rules[1];
        assert_eq!(
            g.condition,
            Condition::Regression {
                worse_by_percent: 20.0,
                baseline_ms: 7 * DAY_MS,
                baseline_min_samples: 200
            }
        );
        assert!(g.routes_to("am") && !g.builtin);
        assert_eq!(
            c.receivers[0].kind,
            ReceiverKind::Webhook {
                url: "http://127.0.0.1:9/hook".into(),
                secret: Some("s3cret".into())
            }
        );
        assert_eq!(c.receivers[0].retry.max_attempts, 3);
        assert_eq!(
            c.receivers[1].kind,
            ReceiverKind::Alertmanager {
                url: "http://127.0.0.1:9093".into(),
                resend_interval_ms: DEFAULT_RESEND_INTERVAL_MS
            }
        );
    }

    #[test]
    fn bad_settings_are_named() {
        let rule = |extra: &str| format!("[alerts]\n[[alerts.rules]]\nname = \"r\"\nmetric = \"LCP\"\n{extra}\n");
        for (text, key) in [
            (rule("threshold = 1\npercentile = 100"), "alerts.rules[0].percentile"),
            (rule("threshold = 1\npercentile = 75.001"), "alerts.rules[0].percentile"),
            (rule(""), "alerts.rules[0].threshold"),
            (rule("threshold = 1\nwindow = \"90m\""), "alerts.rules[0].window"),
            (rule("threshold = 1\nwindow = \"8d1h\""), "alerts.rules[0].window"),
            (rule("threshold = 1\nfor = \"soon\""), "alerts.rules[0].for"),
            (rule("threshold = 1\nworse_by_percent = 10"), "alerts.rules[0].worse_by_percent"),
            (rule("kind = \"regression\"\nbaseline = \"36h\""), "alerts.rules[0].baseline"),
            (rule("threshold = 1\nreceivers = [\"nobody\"]"), "alerts.rules[0].receivers"),
            (rule("threshold = 1\nform_factor = \"watch\""), "alerts.rules[0].form_factor"),
            (rule("threshold = 1\nsite = \"https://x/\""), "alerts.rules[0].site"),
            (rule("threshold = 1\nmin_samples = 0"), "alerts.rules[0].min_samples"),
            (rule("threshold = 1\n[[alerts.rules]]\nname = \"r\"\nmetric = \"CLS\"\nthreshold = 1"), "alerts.rules[1].name"),
            ("[alerts]\n[[alerts.rules]]\nname = \"a b\"\nmetric = \"LCP\"\nthreshold = 1".into(), "alerts.rules[0].name"),
            ("[alerts]\n[[alerts.rules]]\nname = \"r\"\nmetric = \"TBT\"\nthreshold = 1".into(), "alerts.rules[0].metric"),
            ("[alerts]\n[[alerts.receivers]]\nname = \"x\"\ntype = \"pager\"\nurl = \"http://a/\"".into(), "alerts.receivers[0].type"),
            ("[alerts]\n[[alerts.receivers]]\nname = \"x\"\ntype = \"slack\"\nurl = \"ftp://a/\"".into(), "alerts.receivers[0].url"),
            ("[alerts]\n[[alerts.receivers]]\nname = \"x\"\ntype = \"slack\"\nurl = \"http://a/\"\nsecret = \"s\"".into(), "alerts.receivers[0].secret"),
            ("[alerts]\n[[alerts.receivers]]\nname = \"x\"\ntype = \"webhook\"\nurl = \"http://a/\"\nmax_attempts = 0".into(), "alerts.receivers[0].max_attempts"),
            ("[alerts]\nevaluation_interval = \"1ms\"".into(), "alerts.evaluation_interval"),
        ] {
            let err = parse(&text).unwrap_err();
            assert_eq!(err.key, key, "{text}: {err}");
        }
        #[derive(Deserialize, Debug)]
        #[allow(dead_code)]
        struct Wrapper {
            alerts: AlertsFile,
        }
        assert!(toml::from_str::<Wrapper>("[alerts]\nevaluation_intervall = \"1s\"").is_err());
        assert!(toml::from_str::<Wrapper>(
            "[alerts]\n[[alerts.rules]]\nname = \"r\"\nmetric = \"LCP\"\nthreshhold = 1"
        )
        .is_err());
    }
}
