//! One evaluation of every rule: read the metric store, step each series'
//! state machine, and persist the new states with the notifications they
//! cause, all in one transaction, so a crash leaves either both or neither.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use super::evaluate::{self, AlertSource, Observation, PageStats, Period, Side, OTHER_PAGE};
use super::receivers::{Notification, Status};
use super::rule::{format_duration, AlertsConfig, Condition, ReceiverKind, Rule};
use super::state::{self, Inputs, Level, Machine, Notify, State};
use super::store::{form_factor_str, AlertStore, SeriesKey, SeriesRow, Silence, Tx};
use super::AlertError;
use crate::time::{DAY_MS, HOUR_MS};

/// What one evaluation did, for logs and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EvalSummary {
    /// Series looked at.
    pub series: usize,
    pub transitions: usize,
    /// Notifications written to the outbox.
    pub notifications: usize,
    /// Rules skipped because the metric store failed; their alerts keep
    /// their state.
    pub failed_rules: usize,
}

pub struct Engine {
    pub config: Arc<AlertsConfig>,
    pub store: Arc<AlertStore>,
    /// Where the dashboard is, without a trailing slash.
    pub public_url: String,
}

/// One series to step this evaluation.
struct Plan<'a> {
    key: SeriesKey,
    /// `None`: the rule is gone from the config.
    rule: Option<&'a Rule>,
    existing: Option<&'a SeriesRow>,
    obs: Observation,
}

/// The labels of a series' notifications; silences match on them.
pub fn labels(rule: &Rule, key: &SeriesKey) -> BTreeMap<String, String> {
    [
        ("alertname", rule.name.clone()),
        ("metric", rule.metric.as_str().to_string()),
        ("severity", rule.severity.as_str().to_string()),
        ("site", key.site.clone()),
        ("page", key.page.clone()),
        ("form_factor", form_factor_str(key.form_factor).to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// The dashboard's detail view of the alerting page:
/// `http://collector/?view=page&site=..&page=..&metric=..&window=..&formFactor=..&alert=..`,
/// in the window of the dashboard's (1h, 24h, 7d, 28d) that holds the
/// rule's window (`None`: the rule is gone, 28d).
pub fn dashboard_url(
    public_url: &str,
    key: &SeriesKey,
    metric: &str,
    rule_window_ms: Option<i64>,
    alert: Option<i64>,
) -> String {
    let window = match rule_window_ms {
        Some(ms) if ms <= HOUR_MS => "1h",
        Some(ms) if ms <= 24 * HOUR_MS => "24h",
        Some(ms) if ms <= 7 * DAY_MS => "7d",
        _ => "28d",
    };
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair("view", "page")
        .append_pair("site", &key.site)
        .append_pair("page", &key.page)
        .append_pair("metric", metric)
        .append_pair("window", window)
        .append_pair("formFactor", form_factor_str(key.form_factor));
    if let Some(id) = alert {
        q.append_pair("alert", &id.to_string());
    }
    format!("{public_url}/?{}", q.finish())
}

/// A metric value as people read it: CLS unitless, the others in ms.
pub fn format_value(metric: beacon::MetricName, v: f64) -> String {
    if metric == beacon::MetricName::Cls {
        format!("{}", (v * 1000.0).round() / 1000.0)
    } else {
        format!("{} ms", v.round())
    }
}

fn annotations(
    rule: &Rule,
    key: &SeriesKey,
    obs: &Observation,
    status: Status,
    ended: Option<State>,
    dashboard: &str,
) -> BTreeMap<String, String> {
    let m = rule.metric;
    let p = rule.percentile_label();
    let fmt = |v: Option<f64>| v.map_or_else(|| "n/a".to_string(), |v| format_value(m, v));
    let devices = match key.form_factor {
        None => "all devices".to_string(),
        Some(ff) => format!("{} devices", ff.as_str()),
    };
    let window = format_duration(rule.window_ms);
    let mut a: BTreeMap<String, String> = BTreeMap::new();
    let (value, threshold) = (fmt(obs.value), fmt(obs.threshold));
    let summary = match (status, ended, &rule.condition) {
        (Status::Resolved, Some(State::InsufficientData), _) => format!(
            "{} {p} on {} can no longer be judged: {} samples in the last {window}, fewer than {}",
            m.as_str(),
            key.page,
            obs.count,
            rule.min_samples
        ),
        (Status::Resolved, _, _) => format!(
            "{} {p} on {} is back to {value} (threshold {threshold})",
            m.as_str(),
            key.page
        ),
        (Status::Firing, _, Condition::Threshold { .. }) => {
            format!("{} {p} on {} is {value}, above {threshold}", m.as_str(), key.page)
        }
        (Status::Firing, _, Condition::Regression { worse_by_percent, .. }) => format!(
            "{} {p} on {} is {value}, at least {worse_by_percent}% worse than {} before",
            m.as_str(),
            key.page,
            fmt(obs.baseline)
        ),
    };
    let description = match &rule.condition {
        Condition::Threshold { .. } => format!(
            "{p} of {} over the last {window} ({devices}, {} samples) against the threshold {threshold}; \
             fires when above it for {}, resolves at or below {}.",
            m.as_str(),
            obs.count,
            format_duration(rule.for_ms),
            fmt(obs
                .threshold
                .map(|t| evaluate::resolve_threshold(t, rule.resolve_margin_percent)))
        ),
        Condition::Regression { baseline_ms, .. } => format!(
            "{p} of {} over the last {window} ({devices}, {} samples) against {} over the {} before \
             ({} samples); limit {threshold}.",
            m.as_str(),
            obs.count,
            fmt(obs.baseline),
            format_duration(*baseline_ms),
            obs.baseline_count.unwrap_or(0)
        ),
    };
    a.insert("summary".into(), summary);
    a.insert("description".into(), description);
    a.insert("value".into(), value);
    a.insert("threshold".into(), threshold);
    a.insert("sample_count".into(), obs.count.to_string());
    a.insert("window".into(), window);
    a.insert("dashboard".into(), dashboard.to_string());
    if let Condition::Regression { .. } = rule.condition {
        a.insert("baseline".into(), fmt(obs.baseline));
        a.insert(
            "baseline_sample_count".into(),
            obs.baseline_count.unwrap_or(0).to_string(),
        );
    }
    a
}

impl Engine {
    /// Evaluates every rule at `now_ms`.
    pub fn evaluate(&self, source: &dyn AlertSource, now_ms: i64) -> Result<EvalSummary, AlertError> {
        let mut summary = EvalSummary::default();
        if !source.ready() {
            tracing::debug!("the metric store is not ready yet: evaluation skipped");
            return Ok(summary);
        }
        let silences: Vec<Silence> = self
            .store
            .silences(now_ms)?
            .into_iter()
            .filter(|s| s.active_at(now_ms))
            .collect();
        let rows = self.store.all_series()?;
        let by_fingerprint: HashMap<&str, &SeriesRow> = rows.iter().map(|r| (r.fingerprint.as_str(), r)).collect();
        let mut plans: Vec<Plan> = Vec::new();
        for rule in &self.config.rules {
            match self.plan_rule(rule, source, &by_fingerprint, &rows, now_ms) {
                Ok(mut p) => plans.append(&mut p),
                Err(e) => {
                    // Not "no data": a store failure must not resolve alerts.
                    tracing::error!(rule = %rule.name, error = %e, "evaluating alert rule failed");
                    summary.failed_rules += 1;
                }
            }
        }
        let names: HashSet<&str> = self.config.rules.iter().map(|r| r.name.as_str()).collect();
        for row in rows.iter().filter(|r| !names.contains(r.key.rule.as_str())) {
            // The rule is gone: close what it had open, once.
            if matches!(row.machine.state, State::Firing | State::Pending) {
                plans.push(Plan {
                    key: row.key.clone(),
                    rule: None,
                    existing: Some(row),
                    obs: Observation {
                        level: Level::Below,
                        value: row.value,
                        threshold: row.threshold,
                        count: row.count,
                        baseline: row.baseline,
                        baseline_count: row.baseline_count,
                    },
                });
            }
        }
        summary.series = plans.len();
        self.store.write(|tx| {
            for plan in &plans {
                self.apply(tx, plan, &silences, now_ms, &mut summary)?;
            }
            Ok(())
        })?;
        Ok(summary)
    }

    fn plan_rule<'a>(
        &self,
        rule: &'a Rule,
        source: &dyn AlertSource,
        by_fingerprint: &HashMap<&str, &'a SeriesRow>,
        rows: &'a [SeriesRow],
        now_ms: i64,
    ) -> Result<Vec<Plan<'a>>, AlertError> {
        let period = Period::window(rule.window_ms, now_ms);
        let ff = rule.form_factor;
        let pages = source.pages(rule.site.as_deref(), rule.metric, ff, period, rule.percentile)?;
        let baseline: HashMap<(String, String), PageStats> = match rule.condition {
            Condition::Regression { baseline_ms, .. } => source
                .pages(
                    rule.site.as_deref(),
                    rule.metric,
                    ff,
                    Period::baseline(period, baseline_ms),
                    rule.percentile,
                )?
                .into_iter()
                .map(|s| ((s.site.clone(), s.page.clone()), s))
                .collect(),
            Condition::Threshold { .. } => HashMap::new(),
        };
        let mut plans = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        for stats in &pages {
            if stats.page == OTHER_PAGE || !rule.page.matches(&stats.page) {
                continue;
            }
            let key = SeriesKey {
                rule: rule.name.clone(),
                site: stats.site.clone(),
                page: stats.page.clone(),
                form_factor: ff,
            };
            let fingerprint = key.fingerprint();
            let existing = by_fingerprint.get(fingerprint.as_str()).copied();
            let firing = existing.is_some_and(|r| r.machine.state == State::Firing);
            let obs = match rule.condition {
                Condition::Threshold { threshold } => {
                    let mut obs = evaluate::threshold(rule, threshold, source, stats, period, firing)?;
                    // The exact value is evidence, fetched only where it is
                    // kept: alerts that exist or are about to.
                    if existing.is_some() || obs.level == Level::Above {
                        obs.value = source.value(&stats.site, &stats.page, rule.metric, ff, period, rule.percentile)?;
                    }
                    obs
                }
                Condition::Regression {
                    worse_by_percent,
                    baseline_min_samples,
                    ..
                } => {
                    let base = baseline.get(&(stats.site.clone(), stats.page.clone()));
                    let side = |s: Option<&PageStats>| Side {
                        count: s.map_or(0, |s| s.count),
                        value: s.and_then(|s| s.value),
                    };
                    let rough = evaluate::regression(
                        rule,
                        worse_by_percent,
                        baseline_min_samples,
                        side(Some(stats)),
                        side(base),
                    );
                    // Sketch values are within 1 %: only pages clearly fine
                    // by them skip the exact values.
                    let near = rough.level != Level::Insufficient
                        && rough
                            .value
                            .zip(rough.threshold)
                            .is_some_and(|(v, limit)| v >= 0.9 * limit);
                    if existing.is_some() || near {
                        let exact = |p: Option<&PageStats>, period: Period| -> Result<Side, AlertError> {
                            Ok(match p {
                                Some(p) => Side {
                                    count: p.count,
                                    value: source.value(&p.site, &p.page, rule.metric, ff, period, rule.percentile)?,
                                },
                                None => side(None),
                            })
                        };
                        let baseline_period = match rule.condition {
                            Condition::Regression { baseline_ms, .. } => Period::baseline(period, baseline_ms),
                            Condition::Threshold { .. } => period,
                        };
                        evaluate::regression(
                            rule,
                            worse_by_percent,
                            baseline_min_samples,
                            exact(Some(stats), period)?,
                            exact(base, baseline_period)?,
                        )
                    } else {
                        rough
                    }
                }
            };
            seen.insert(fingerprint);
            // A page that never breached and does not now is not stored:
            // nothing to step.
            if existing.is_none() && obs.level != Level::Above {
                continue;
            }
            plans.push(Plan {
                key,
                rule: Some(rule),
                existing,
                obs,
            });
        }
        // Series with no reports in the window at all.
        for row in rows
            .iter()
            .filter(|r| r.key.rule == rule.name && !seen.contains(&r.fingerprint))
        {
            plans.push(Plan {
                key: row.key.clone(),
                rule: Some(rule),
                existing: Some(row),
                obs: Observation::no_data(rule),
            });
        }
        Ok(plans)
    }

    fn apply(
        &self,
        tx: &Tx,
        plan: &Plan,
        silences: &[Silence],
        now_ms: i64,
        summary: &mut EvalSummary,
    ) -> Result<(), AlertError> {
        let (machine, labels) = match (plan.existing, plan.rule) {
            (Some(row), Some(rule)) => (row.machine.clone(), labels(rule, &plan.key)),
            (Some(row), None) => (row.machine.clone(), row.labels.clone()),
            (None, Some(rule)) => (Machine::new(now_ms), labels(rule, &plan.key)),
            (None, None) => return Ok(()),
        };
        let silenced = silences.iter().any(|s| s.matches(&labels));
        let rule = plan.rule;
        let step = state::step(
            &machine,
            &Inputs {
                now_ms,
                level: plan.obs.level,
                for_ms: rule.map_or(0, |r| r.for_ms),
                repeat_interval_ms: rule.map_or(0, |r| r.repeat_interval_ms),
                silenced,
                acknowledged: plan.existing.is_some_and(|r| r.ack.is_some()),
            },
        );
        let id = match plan.existing {
            Some(row) => {
                tx.update_series(row.id, &step.machine, &plan.obs, &labels, now_ms)?;
                row.id
            }
            // Only series that ever breach are remembered: not every page
            // with too few samples.
            None if matches!(step.machine.state, State::Pending | State::Firing) => {
                tx.insert_series(&plan.key, &step.machine, &plan.obs, &labels, now_ms)?
            }
            None => return Ok(()),
        };
        if let Some((from, to)) = step.transition {
            summary.transitions += 1;
            let comment = rule.is_none().then_some("rule removed from the configuration");
            tx.add_transition(id, from, to, &plan.obs, comment, now_ms)?;
            tracing::info!(alert = id, rule = %plan.key.rule, site = %plan.key.site, page = %plan.key.page,
                from = from.as_str(), to = to.as_str(), value = ?plan.obs.value, samples = plan.obs.count,
                "alert state changed");
        }
        let fingerprint = plan.key.fingerprint();
        let episode = step.machine.fired_at_ms.unwrap_or(now_ms);
        let metric = labels.get("metric").cloned().unwrap_or_default();
        let dashboard = dashboard_url(
            &self.public_url,
            &plan.key,
            &metric,
            rule.map(|r| r.window_ms),
            Some(id),
        );
        let notification = |status: Status, repeat: bool| {
            let annotations = match rule {
                Some(rule) => annotations(rule, &plan.key, &plan.obs, status, Some(step.machine.state), &dashboard),
                None => [(
                    "summary".to_string(),
                    format!("rule {} was removed from the configuration", plan.key.rule),
                )]
                .into(),
            };
            Notification {
                alert_id: id,
                status,
                repeat,
                labels: labels.clone(),
                annotations,
                starts_at_ms: episode,
                ends_at_ms: (status == Status::Resolved).then(|| step.machine.resolved_at_ms.unwrap_or(now_ms)),
                fingerprint: fingerprint.clone(),
                dashboard_url: dashboard.clone(),
                external_url: self.public_url.clone(),
                value: plan.obs.value,
                threshold: plan.obs.threshold,
                sample_count: plan.obs.count,
                baseline: plan.obs.baseline,
            }
        };
        let mut enqueue = |receiver: &str, n: &Notification, key: &str| -> Result<(), AlertError> {
            let json = serde_json::to_string(n).expect("notifications serialise");
            if tx.enqueue(receiver, id, n.status.as_str(), key, &json, now_ms)? {
                summary.notifications += 1;
            }
            Ok(())
        };
        let routed: Vec<&super::rule::Receiver> = match rule {
            Some(rule) => self
                .config
                .receivers
                .iter()
                .filter(|r| rule.routes_to(&r.name))
                .collect(),
            None => {
                let names = tx.receivers_of(id)?;
                self.config
                    .receivers
                    .iter()
                    .filter(|r| names.contains(&r.name))
                    .collect()
            }
        };
        match step.notify {
            Some(Notify::Firing { repeat }) => {
                let n = notification(Status::Firing, repeat);
                let key = format!("{fingerprint}-{episode}-firing-{}", step.machine.notifications);
                for r in &routed {
                    enqueue(&r.name, &n, &key)?;
                }
            }
            Some(Notify::Resolved) => {
                let n = notification(Status::Resolved, false);
                let key = format!("{fingerprint}-{episode}-resolved");
                for r in &routed {
                    enqueue(&r.name, &n, &key)?;
                }
            }
            None if step.machine.state == State::Firing && step.machine.notifications > 0 && !silenced => {
                // Alertmanager drops alerts not re-sent before their endsAt.
                for r in &routed {
                    let ReceiverKind::Alertmanager { resend_interval_ms, .. } = r.kind else {
                        continue;
                    };
                    let last = tx.last_enqueued_ms(id, &r.name)?;
                    if last.is_none_or(|at| now_ms - at >= resend_interval_ms) {
                        let key = format!("{fingerprint}-{episode}-refresh-{now_ms}");
                        enqueue(&r.name, &notification(Status::Firing, true), &key)?;
                    }
                }
            }
            None => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::evaluate::{rank, SourceError};
    use crate::alerts::receivers::Notification;
    use crate::alerts::rule::{AlertsFile, ReceiverFile, RuleFile};
    use crate::alerts::store::ListFilter;
    use beacon::{FormFactor, MetricName};
    use std::cell::RefCell;

    type Values = BTreeMap<(String, String), Vec<f64>>;

    /// Literal values per (site, page), in hourly periods (rule windows)
    /// and daily ones (baselines); `fail` makes every call fail.
    #[derive(Default)]
    struct Fake {
        pages: RefCell<Values>,
        daily: RefCell<Values>,
        fail: std::cell::Cell<bool>,
    }

    impl Fake {
        fn set(&self, page: &str, values: Vec<f64>) {
            self.pages
                .borrow_mut()
                .insert(("shop.example".into(), page.into()), values);
        }

        fn set_baseline(&self, page: &str, values: Vec<f64>) {
            self.daily
                .borrow_mut()
                .insert(("shop.example".into(), page.into()), values);
        }

        fn data(&self, period: Period) -> std::cell::Ref<'_, Values> {
            if period.hourly {
                self.pages.borrow()
            } else {
                self.daily.borrow()
            }
        }
    }

    impl AlertSource for Fake {
        fn pages(
            &self,
            site: Option<&str>,
            metric: MetricName,
            _: Option<FormFactor>,
            period: Period,
            p: f64,
        ) -> Result<Vec<PageStats>, SourceError> {
            if self.fail.get() {
                return Err(SourceError("disk on fire".into()));
            }
            let t = metric.thresholds();
            Ok(self
                .data(period)
                .iter()
                .filter(|((s, _), v)| site.is_none_or(|x| x == s) && !v.is_empty())
                .map(|((s, page), v)| {
                    let mut sorted = v.clone();
                    sorted.sort_by(f64::total_cmp);
                    PageStats {
                        site: s.clone(),
                        page: page.clone(),
                        count: v.len() as u64,
                        good: v.iter().filter(|&&x| x <= t.good).count() as u64,
                        needs_improvement: v.iter().filter(|&&x| x > t.good && x <= t.poor).count() as u64,
                        value: Some(sorted[(rank(p, v.len() as u64) as usize).max(1) - 1]),
                    }
                })
                .collect())
        }

        fn value(
            &self,
            site: &str,
            page: &str,
            _: MetricName,
            _: Option<FormFactor>,
            period: Period,
            p: f64,
        ) -> Result<Option<f64>, SourceError> {
            let pages = self.data(period);
            let mut v = pages[&(site.to_string(), page.to_string())].clone();
            v.sort_by(f64::total_cmp);
            Ok(v.get((rank(p, v.len() as u64) as usize).max(1) - 1).copied())
        }

        fn count_at_or_below(
            &self,
            site: &str,
            page: &str,
            _: MetricName,
            _: Option<FormFactor>,
            _: Period,
            threshold: f64,
        ) -> Result<u64, SourceError> {
            let pages = self.pages.borrow();
            let v = &pages[&(site.to_string(), page.to_string())];
            Ok(v.iter().filter(|&&x| x <= threshold).count() as u64)
        }
    }

    const PAGE: &str = "https://shop.example/cart";
    const MIN: i64 = 60_000;
    const T0: i64 = 1_714_572_000_000;

    fn engine(dir: &std::path::Path, rules: Vec<RuleFile>, receivers: Vec<ReceiverFile>) -> Engine {
        let config = AlertsConfig::from_file(&AlertsFile {
            rules,
            receivers,
            ..Default::default()
        })
        .unwrap();
        Engine {
            config: Arc::new(config),
            store: Arc::new(AlertStore::open(dir.join("alerts.db"), None).unwrap()),
            public_url: "http://rum.example".into(),
        }
    }

    fn lcp_rule() -> RuleFile {
        RuleFile {
            name: "lcp".into(),
            metric: "LCP".into(),
            threshold: Some(4000.0),
            min_samples: Some(8),
            for_: Some("2m".into()),
            repeat_interval: Some("10m".into()),
            severity: Some(crate::alerts::Severity::Critical),
            ..Default::default()
        }
    }

    fn receiver(name: &str, type_: &str) -> ReceiverFile {
        ReceiverFile {
            name: name.into(),
            type_: type_.into(),
            url: "http://127.0.0.1:9/".into(),
            ..Default::default()
        }
    }

    /// (receiver, idempotency key, notification) of every outbox row.
    fn outbox(e: &Engine) -> Vec<(String, String, Notification)> {
        let mut out = vec![];
        for r in ["hook", "am"] {
            for item in e.store.due(r, i64::MAX, 1000).unwrap() {
                out.push((
                    r.to_string(),
                    item.idempotency_key,
                    serde_json::from_str(&item.notification).unwrap(),
                ));
                e.store
                    .record_attempt(
                        item.id,
                        1,
                        crate::alerts::store::AttemptRecord::Sent { http_status: 200 },
                        0,
                    )
                    .unwrap();
            }
        }
        out
    }

    fn state(e: &Engine) -> State {
        e.store.all_series().unwrap()[0].machine.state
    }

    #[test]
    fn fires_once_repeats_at_interval_resolves_once() {
        let dir = tempfile::tempdir().unwrap();
        let e = engine(dir.path(), vec![lcp_rule()], vec![receiver("hook", "webhook")]);
        let src = Fake::default();
        // Too few samples: nothing at all is remembered.
        src.set(PAGE, vec![9000.0; 7]);
        e.evaluate(&src, T0).unwrap();
        assert!(e.store.all_series().unwrap().is_empty());
        src.set(PAGE, vec![9000.0; 8]);
        e.evaluate(&src, T0 + MIN).unwrap();
        assert_eq!(state(&e), State::Pending);
        assert!(outbox(&e).is_empty());
        let s = e.evaluate(&src, T0 + 3 * MIN).unwrap();
        assert_eq!((state(&e), s.transitions, s.notifications), (State::Firing, 1, 1));
        let sent = outbox(&e);
        assert_eq!(sent.len(), 1);
        let n = &sent[0].2;
        assert_eq!(
            (n.status, n.value, n.threshold, n.sample_count),
            (Status::Firing, Some(9000.0), Some(4000.0), 8)
        );
        assert_eq!(n.labels["alertname"], "lcp");
        assert_eq!(n.labels["severity"], "critical");
        // The dashboard's detail view of the page (`/dashboard` was a 404).
        assert!(
            n.dashboard_url.starts_with(
                "http://rum.example/?view=page&site=shop.example&page=https%3A%2F%2Fshop.example%2Fcart&metric=LCP\
                 &window=1h&formFactor=all&alert="
            ),
            "{}",
            n.dashboard_url
        );
        assert!(n.annotations["summary"].contains("9000 ms"), "{:?}", n.annotations);
        // Still firing: nothing until the repeat interval.
        for m in 4..13 {
            e.evaluate(&src, T0 + m * MIN).unwrap();
        }
        assert!(outbox(&e).is_empty());
        e.evaluate(&src, T0 + 13 * MIN).unwrap();
        let repeat = outbox(&e);
        assert_eq!(repeat.len(), 1);
        assert!(repeat[0].2.repeat);
        assert_ne!(repeat[0].1, sent[0].1, "a repeat has its own key");
        // 4000 is not above; 3900 is within the margin: still firing.
        src.set(PAGE, vec![3900.0; 8]);
        e.evaluate(&src, T0 + 14 * MIN).unwrap();
        assert_eq!(state(&e), State::Firing);
        src.set(PAGE, vec![1000.0; 8]);
        e.evaluate(&src, T0 + 15 * MIN).unwrap();
        e.evaluate(&src, T0 + 16 * MIN).unwrap();
        assert_eq!(state(&e), State::Resolved);
        let resolved = outbox(&e);
        assert_eq!(resolved.len(), 1);
        assert_eq!(resolved[0].2.status, Status::Resolved);
        assert_eq!(resolved[0].2.ends_at_ms, Some(T0 + 15 * MIN));
        assert_eq!(resolved[0].2.starts_at_ms, T0 + 3 * MIN);
        let row = &e
            .store
            .list(&ListFilter {
                states: vec![State::Resolved],
                ..Default::default()
            })
            .unwrap()[0];
        let events: Vec<String> = e
            .store
            .events(row.id, 100)
            .unwrap()
            .into_iter()
            .map(|e| e.event)
            .collect();
        assert_eq!(events, ["pending", "firing", "resolved"]);
    }

    #[test]
    fn regressions_against_the_baseline() {
        let dir = tempfile::tempdir().unwrap();
        let rule = RuleFile {
            name: "inp-worse".into(),
            kind: Some("regression".into()),
            metric: "INP".into(),
            min_samples: Some(10),
            for_: Some("0s".into()),
            ..Default::default()
        };
        let e = engine(dir.path(), vec![rule], vec![receiver("hook", "webhook")]);
        let src = Fake::default();
        src.set(PAGE, vec![300.0; 10]);
        // No baseline: no decision.
        e.evaluate(&src, T0).unwrap();
        assert!(e.store.all_series().unwrap().is_empty());
        src.set_baseline(PAGE, vec![200.0; 10]);
        e.evaluate(&src, T0 + MIN).unwrap();
        assert_eq!(state(&e), State::Firing);
        let n = outbox(&e);
        assert_eq!(
            (n[0].2.value, n[0].2.threshold, n[0].2.baseline),
            (Some(300.0), Some(240.0), Some(200.0))
        );
        assert!(
            n[0].2.annotations["summary"].contains("at least 20% worse than 200 ms"),
            "{:?}",
            n[0].2.annotations
        );
        // 230: not 20 % worse, but within the margin of it.
        src.set(PAGE, vec![230.0; 10]);
        e.evaluate(&src, T0 + 2 * MIN).unwrap();
        assert_eq!(state(&e), State::Firing);
        src.set(PAGE, vec![220.0; 10]);
        e.evaluate(&src, T0 + 3 * MIN).unwrap();
        assert_eq!(state(&e), State::Resolved);
    }

    #[test]
    fn a_restarted_engine_neither_refires_nor_forgets() {
        let dir = tempfile::tempdir().unwrap();
        let src = Fake::default();
        src.set(PAGE, vec![9000.0; 8]);
        let mut rule = lcp_rule();
        rule.for_ = Some("0s".into());
        {
            let e = engine(dir.path(), vec![rule.clone()], vec![receiver("hook", "webhook")]);
            e.evaluate(&src, T0).unwrap();
            assert_eq!(outbox(&e).len(), 1);
        }
        let e = engine(dir.path(), vec![rule], vec![receiver("hook", "webhook")]);
        e.evaluate(&src, T0 + MIN).unwrap();
        assert!(outbox(&e).is_empty());
        src.set(PAGE, vec![10.0; 8]);
        e.evaluate(&src, T0 + 2 * MIN).unwrap();
        assert_eq!(outbox(&e).len(), 1);
    }

    #[test]
    fn store_failures_keep_alerts_as_they_are() {
        let dir = tempfile::tempdir().unwrap();
        let mut rule = lcp_rule();
        rule.for_ = Some("0s".into());
        let e = engine(dir.path(), vec![rule], vec![receiver("hook", "webhook")]);
        let src = Fake::default();
        src.set(PAGE, vec![9000.0; 8]);
        e.evaluate(&src, T0).unwrap();
        outbox(&e);
        src.fail.set(true);
        let s = e.evaluate(&src, T0 + MIN).unwrap();
        assert_eq!((s.failed_rules, state(&e)), (1, State::Firing));
        assert!(outbox(&e).is_empty());
        // No reports at all is a decision: too few samples ends the alert.
        src.fail.set(false);
        src.set(PAGE, vec![]);
        e.evaluate(&src, T0 + 2 * MIN).unwrap();
        assert_eq!(state(&e), State::InsufficientData);
        let n = outbox(&e);
        assert_eq!(n.len(), 1);
        assert!(
            n[0].2.annotations["summary"].contains("can no longer be judged"),
            "{:?}",
            n[0].2.annotations
        );
    }

    #[test]
    fn removed_rules_close_their_alerts() {
        let dir = tempfile::tempdir().unwrap();
        let mut rule = lcp_rule();
        rule.for_ = Some("0s".into());
        let src = Fake::default();
        src.set(PAGE, vec![9000.0; 8]);
        let labels = {
            let e = engine(
                dir.path(),
                vec![rule],
                vec![receiver("hook", "webhook"), receiver("am", "webhook")],
            );
            e.evaluate(&src, T0).unwrap();
            outbox(&e)[0].2.labels.clone()
        };
        let mut other = lcp_rule();
        other.name = "other".into();
        other.page = Some("/nothing".into());
        let e = engine(
            dir.path(),
            vec![other],
            vec![receiver("hook", "webhook"), receiver("am", "webhook")],
        );
        e.evaluate(&src, T0 + MIN).unwrap();
        let n = outbox(&e);
        assert_eq!(n.len(), 2, "{n:?}");
        assert_eq!(n[0].2.status, Status::Resolved);
        assert_eq!(n[0].2.labels, labels, "the labels the firing one had");
        e.evaluate(&src, T0 + 2 * MIN).unwrap();
        assert!(outbox(&e).is_empty());
    }

    #[test]
    fn silences_acks_and_alertmanager_refreshes() {
        let dir = tempfile::tempdir().unwrap();
        let mut rule = lcp_rule();
        rule.for_ = Some("0s".into());
        rule.repeat_interval = Some("2m".into());
        let mut am = receiver("am", "alertmanager");
        am.resend_interval = Some("3m".into());
        let e = engine(dir.path(), vec![rule], vec![receiver("hook", "webhook"), am]);
        let src = Fake::default();
        src.set(PAGE, vec![9000.0; 8]);
        let silence = e
            .store
            .add_silence(
                &[("page".to_string(), "*/cart".to_string())].into(),
                T0,
                T0 + 2 * MIN,
                "ops",
                "deploy",
                T0,
            )
            .unwrap();
        e.evaluate(&src, T0).unwrap();
        e.evaluate(&src, T0 + MIN).unwrap();
        assert_eq!(state(&e), State::Firing);
        assert!(outbox(&e).is_empty(), "silenced");
        e.evaluate(&src, T0 + 2 * MIN).unwrap();
        let first: Vec<String> = outbox(&e)
            .into_iter()
            .map(|(r, _, n)| format!("{r}:{}", n.repeat))
            .collect();
        assert_eq!(first, ["hook:false", "am:false"]);
        assert!(e.store.expire_silence(silence.id, T0).unwrap().is_some());
        // Acknowledged: no more repeats to people, but Alertmanager is
        // still refreshed every 3 minutes.
        let id = e.store.all_series().unwrap()[0].id;
        assert!(matches!(
            e.store.ack(id, "alice", "", T0 + 2 * MIN).unwrap(),
            crate::alerts::store::AckOutcome::Acked(_)
        ));
        let mut got = vec![];
        for m in 3..=8 {
            e.evaluate(&src, T0 + m * MIN).unwrap();
            got.extend(outbox(&e).into_iter().map(|(r, _, _)| format!("{r}@{m}")));
        }
        assert_eq!(got, ["am@5", "am@8"]);
    }
}
