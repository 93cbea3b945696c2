//! The alert routes:
//!
//! - `GET /v1/alerts`: active alerts and recently changed ones, filterable;
//! - `GET /v1/alerts/rules`: the rules in force (built-in or configured);
//! - `GET /v1/alerts/{id}`: one alert with its whole history;
//! - `POST /v1/alerts/{id}/ack`: acknowledge a firing alert;
//! - `POST /v1/silences`, `GET /v1/silences`, `DELETE /v1/silences/{id}`.
//!
//! Read access is checked like the other read APIs: a site-scoped API key
//! sees and acts on its sites' alerts only.
//!
//! With the alert state shared among collectors (ClickHouse), a write is
//! first stored as a command for the lease holder (see `shared.rs`): the
//! holder applies it at once and answers as alone; any other collector
//! answers `202 Accepted` with the command's id, and the holder applies it
//! within a second or so (every collector's reads show it once the
//! holder's next snapshot is loaded).

use std::collections::BTreeMap;
use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};

use super::engine::dashboard_url;
use super::rule::{format_duration, parse_duration, Condition, Rule};
use super::shared::{self, Applied, Command, Submitted};
use super::state::State;
use super::store::{form_factor_str, AckOutcome, AlertStore, DeliveryStats, Event, ListFilter, SeriesRow, Silence};
use super::{AlertError, Alerts};
use crate::http::ApiError;
use crate::time::{now_ms, parse_time, rfc3339, DAY_MS};

/// Which sites a request may see: `None` for all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Access {
    pub sites: Option<Vec<String>>,
}

impl Access {
    pub fn allows(&self, site: &str) -> bool {
        self.sites.as_ref().is_none_or(|s| s.iter().any(|x| x == site))
    }
}

/// Decides a request's [`Access`] (the collector's API-key check).
pub type Authorize = Arc<dyn Fn(&HttpRequest) -> Result<Access, ApiError> + Send + Sync>;

#[derive(Clone)]
struct Shared {
    alerts: Arc<Alerts>,
    authorize: Authorize,
}

/// Registers the alert routes.
pub fn configure(cfg: &mut web::ServiceConfig, alerts: Arc<Alerts>, authorize: Authorize) {
    cfg.app_data(web::Data::new(Shared { alerts, authorize }))
        .route("/v1/alerts", web::get().to(list_alerts))
        .route("/v1/alerts/rules", web::get().to(list_rules))
        .route("/v1/alerts/{id}", web::get().to(get_alert))
        .route("/v1/alerts/{id}/ack", web::post().to(ack_alert))
        .route("/v1/silences", web::post().to(create_silence))
        .route("/v1/silences", web::get().to(list_silences))
        .route("/v1/silences/{id}", web::delete().to(expire_silence));
}

fn internal(e: AlertError) -> ApiError {
    if let AlertError::Shared(why) = &e {
        tracing::warn!(error = %why, "the shared alert state is unavailable");
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the alert state shared by the collectors is unavailable: {why}"),
        );
    }
    tracing::error!(error = %e, "alert store failed");
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("alert storage failed: {e}"))
}

fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, message)
}

/// A write's outcome: done here, or handed to the lease holder as the
/// command of this id.
enum Written<T> {
    Done(T),
    Accepted(String),
}

/// Writes through `local` alone; with shared state, stores `command` for
/// the holder first and, on the holder, applies it here at once.
fn write_state<T>(
    alerts: &Alerts,
    command: Command,
    now: i64,
    local: impl FnOnce(&AlertStore) -> Result<T, AlertError>,
    applied: impl FnOnce(Applied) -> Option<T>,
) -> Result<Written<T>, AlertError> {
    let Some(sh) = alerts.shared() else {
        return local(&alerts.store).map(Written::Done);
    };
    let cmd = Submitted::new(command, now);
    let _applying = alerts.commands_lock();
    sh.submit(&cmd).map_err(AlertError::Shared)?;
    if !alerts.is_authoritative() {
        tracing::info!(command = %cmd.id, "alert command handed to the lease holder");
        return Ok(Written::Accepted(cmd.id));
    }
    let out = shared::apply(&alerts.store, &cmd)?;
    alerts.request_save();
    // Already: not expected (the lock), shown with the next snapshot.
    Ok(applied(out).map_or(Written::Accepted(cmd.id), Written::Done))
}

fn accepted(command: &str, what: &str, extra: serde_json::Value) -> HttpResponse {
    let mut body = serde_json::json!({
        "accepted": true,
        "command": command,
        "message": format!("{what}: handed to the collector holding the alert lease, applied within seconds"),
    });
    if let (Some(b), serde_json::Value::Object(extra)) = (body.as_object_mut(), extra) {
        b.extend(extra);
    }
    HttpResponse::Accepted().json(body)
}

/// Runs a store call off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, AlertError> + Send + 'static,
) -> Result<T, ApiError> {
    web::block(f)
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("alert task failed: {e}")))?
        .map_err(internal)
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AckView {
    pub by: String,
    pub at: String,
    pub comment: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventView {
    pub at: String,
    /// The state entered, or `acknowledged`.
    pub event: String,
    pub from: Option<State>,
    pub to: Option<State>,
    pub value: Option<f64>,
    pub threshold: Option<f64>,
    pub sample_count: Option<u64>,
    pub baseline: Option<f64>,
    pub by: Option<String>,
    pub comment: Option<String>,
}

impl From<Event> for EventView {
    fn from(e: Event) -> EventView {
        EventView {
            at: rfc3339(e.at_ms),
            event: e.event,
            from: e.from,
            to: e.to,
            value: e.value,
            threshold: e.threshold,
            sample_count: e.count,
            baseline: e.baseline,
            by: e.actor,
            comment: e.comment,
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertView {
    pub id: i64,
    pub fingerprint: String,
    pub rule: String,
    pub metric: Option<String>,
    pub severity: Option<String>,
    pub site: String,
    pub page: String,
    pub form_factor: String,
    pub state: State,
    /// When the current state was entered.
    pub since: String,
    pub fired_at: Option<String>,
    pub resolved_at: Option<String>,
    pub last_notified_at: Option<String>,
    pub value: Option<f64>,
    pub threshold: Option<f64>,
    pub sample_count: u64,
    pub baseline: Option<f64>,
    pub baseline_sample_count: Option<u64>,
    pub evaluated_at: String,
    /// Ids of the active silences that match.
    pub silenced_by: Vec<i64>,
    /// The acknowledgement of the current firing episode.
    pub acknowledged: Option<AckView>,
    pub dashboard: String,
    pub labels: BTreeMap<String, String>,
    pub history: Vec<EventView>,
}

fn alert_view(alerts: &Alerts, row: SeriesRow, silences: &[Silence], history: Vec<Event>) -> AlertView {
    let metric = row.labels.get("metric").cloned();
    AlertView {
        id: row.id,
        dashboard: dashboard_url(
            alerts.public_url(),
            &row.key,
            metric.as_deref().unwrap_or(""),
            alerts
                .config
                .rules
                .iter()
                .find(|r| r.name == row.key.rule)
                .map(|r| r.window_ms),
            Some(row.id),
        ),
        fingerprint: row.fingerprint,
        rule: row.key.rule,
        metric,
        severity: row.labels.get("severity").cloned(),
        site: row.key.site,
        page: row.key.page,
        form_factor: form_factor_str(row.key.form_factor).to_string(),
        state: row.machine.state,
        since: rfc3339(row.machine.since_ms),
        fired_at: row.machine.fired_at_ms.map(rfc3339),
        resolved_at: row.machine.resolved_at_ms.map(rfc3339),
        last_notified_at: row.machine.last_notified_ms.map(rfc3339),
        value: row.value,
        threshold: row.threshold,
        sample_count: row.count,
        baseline: row.baseline,
        baseline_sample_count: row.baseline_count,
        evaluated_at: rfc3339(row.evaluated_ms),
        silenced_by: silences
            .iter()
            .filter(|s| s.matches(&row.labels))
            .map(|s| s.id)
            .collect(),
        acknowledged: row.ack.map(|a| AckView {
            by: a.by,
            at: rfc3339(a.at_ms),
            comment: a.comment,
        }),
        labels: row.labels,
        history: history.into_iter().map(EventView::from).collect(),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Comma-separated states, or `all`. Default: pending and firing, and
    /// any that changed state within `since`.
    pub state: Option<String>,
    pub site: Option<String>,
    pub rule: Option<String>,
    /// Glob over page keys.
    pub page: Option<String>,
    pub severity: Option<String>,
    /// How far back "recent" goes: a time (RFC 3339, date, unix ms) or a
    /// duration before now (`24h`, the default).
    pub since: Option<String>,
    /// Most alerts returned [default 100, at most 1000].
    pub limit: Option<usize>,
    /// History entries per alert [default 10].
    pub history: Option<usize>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListResponse {
    pub alerts: Vec<AlertView>,
    /// Notifications per receiver by delivery state (dead: dead-lettered).
    pub deliveries: Vec<DeliveryStats>,
}

fn parse_since(s: &str, now: i64) -> Option<i64> {
    parse_duration(s).map(|d| now - d).or_else(|| parse_time(s))
}

async fn list_alerts(
    req: HttpRequest,
    query: web::Query<ListQuery>,
    shared: web::Data<Shared>,
) -> Result<HttpResponse, ApiError> {
    let access = (shared.authorize)(&req)?;
    let q = query.into_inner();
    let now = now_ms();
    let states = match q.state.as_deref() {
        None | Some("") => Vec::new(),
        Some("all") => State::ALL.to_vec(),
        Some(list) => list
            .split(',')
            .map(|s| {
                State::parse(s.trim()).ok_or_else(|| {
                    bad_request(format!(
                        "state {s:?} is not one of ok, pending, firing, resolved, insufficient_data, all"
                    ))
                })
            })
            .collect::<Result<_, _>>()?,
    };
    let recent_since_ms = match q.since.as_deref() {
        None => now - DAY_MS,
        Some(s) => parse_since(s, now).ok_or_else(|| {
            bad_request(format!(
                "since {s:?} is not a time (2024-05-01T13:00:00Z) or a duration (24h)"
            ))
        })?,
    };
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let history = q.history.unwrap_or(10).min(1000);
    if let Some(site) = &q.site {
        if !access.allows(site) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!("this API key cannot read site {site:?}"),
            ));
        }
    }
    let filter = ListFilter {
        states,
        recent_since_ms,
        rule: q.rule,
        site: q.site,
        page: q.page,
        sites: access.sites,
        // Severity is filtered below, from the labels.
        limit: if q.severity.is_some() { 0 } else { limit },
    };
    let severity = q.severity;
    let alerts = shared.alerts.clone();
    let body = blocking(move || {
        let silences: Vec<Silence> = alerts
            .store
            .silences(now)?
            .into_iter()
            .filter(|s| s.active_at(now))
            .collect();
        let mut out = Vec::new();
        for row in alerts.store.list(&filter)? {
            if severity
                .as_deref()
                .is_some_and(|s| row.labels.get("severity").map(String::as_str) != Some(s))
            {
                continue;
            }
            let events = if history > 0 {
                alerts.store.events(row.id, history)?
            } else {
                Vec::new()
            };
            out.push(alert_view(&alerts, row, &silences, events));
            if out.len() >= limit {
                break;
            }
        }
        Ok(ListResponse {
            alerts: out,
            deliveries: alerts.store.delivery_stats()?,
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(body))
}

fn parse_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::new(StatusCode::NOT_FOUND, format!("no alert {raw:?}")))
}

async fn get_alert(
    req: HttpRequest,
    path: web::Path<String>,
    shared: web::Data<Shared>,
) -> Result<HttpResponse, ApiError> {
    let access = (shared.authorize)(&req)?;
    let id = parse_id(&path)?;
    let alerts = shared.alerts.clone();
    let now = now_ms();
    let view = blocking(move || {
        let Some(row) = alerts.store.series(id)?.filter(|r| access.allows(&r.key.site)) else {
            return Ok(None);
        };
        let silences: Vec<Silence> = alerts
            .store
            .silences(now)?
            .into_iter()
            .filter(|s| s.active_at(now))
            .collect();
        let events = alerts.store.events(id, 10_000)?;
        Ok(Some(alert_view(&alerts, row, &silences, events)))
    })
    .await?;
    match view {
        Some(v) => Ok(HttpResponse::Ok().json(v)),
        None => Err(ApiError::new(StatusCode::NOT_FOUND, format!("no alert {id}"))),
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleView {
    pub name: String,
    /// `threshold` or `regression`.
    pub kind: &'static str,
    pub metric: &'static str,
    pub percentile: f64,
    pub threshold: Option<f64>,
    pub worse_by_percent: Option<f64>,
    pub baseline: Option<String>,
    pub baseline_min_samples: Option<u64>,
    /// `*`: every site.
    pub site: String,
    pub page: String,
    pub form_factor: &'static str,
    pub window: String,
    pub min_samples: u64,
    #[serde(rename = "for")]
    pub for_: String,
    pub resolve_margin_percent: f64,
    pub repeat_interval: String,
    pub severity: &'static str,
    /// `null`: every receiver.
    pub receivers: Option<Vec<String>>,
    pub builtin: bool,
}

impl From<&Rule> for RuleView {
    fn from(r: &Rule) -> RuleView {
        let (kind, threshold, worse, baseline, baseline_min) = match &r.condition {
            Condition::Threshold { threshold } => ("threshold", Some(*threshold), None, None, None),
            Condition::Regression {
                worse_by_percent,
                baseline_ms,
                baseline_min_samples,
            } => (
                "regression",
                None,
                Some(*worse_by_percent),
                Some(format_duration(*baseline_ms)),
                Some(*baseline_min_samples),
            ),
        };
        RuleView {
            name: r.name.clone(),
            kind,
            metric: r.metric.as_str(),
            percentile: r.percentile,
            threshold,
            worse_by_percent: worse,
            baseline,
            baseline_min_samples: baseline_min,
            site: r.site.clone().unwrap_or_else(|| "*".into()),
            page: r.page.0.clone(),
            form_factor: form_factor_str(r.form_factor),
            window: format_duration(r.window_ms),
            min_samples: r.min_samples,
            for_: format_duration(r.for_ms),
            resolve_margin_percent: r.resolve_margin_percent,
            repeat_interval: format_duration(r.repeat_interval_ms),
            severity: r.severity.as_str(),
            receivers: r.receivers.clone(),
            builtin: r.builtin,
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReceiverView {
    pub name: String,
    #[serde(rename = "type")]
    pub type_: &'static str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RulesResponse {
    pub enabled: bool,
    pub evaluation_interval: String,
    pub rules: Vec<RuleView>,
    /// Names and types only: URLs may hold secrets (Slack's do).
    pub receivers: Vec<ReceiverView>,
}

async fn list_rules(req: HttpRequest, shared: web::Data<Shared>) -> Result<HttpResponse, ApiError> {
    let access = (shared.authorize)(&req)?;
    let c = &shared.alerts.config;
    let rules = c
        .rules
        .iter()
        // A site-scoped key sees the rules that can apply to its sites.
        .filter(|r| r.site.as_deref().is_none_or(|s| access.allows(s)))
        .map(RuleView::from)
        .collect();
    Ok(HttpResponse::Ok().json(RulesResponse {
        enabled: c.enabled,
        evaluation_interval: format_duration(c.evaluation_interval_ms),
        rules,
        receivers: c
            .receivers
            .iter()
            .map(|r| ReceiverView {
                name: r.name.clone(),
                type_: r.kind.type_name(),
            })
            .collect(),
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AckRequest {
    /// Who acknowledges: kept in the alert's history.
    pub by: String,
    #[serde(default)]
    pub comment: String,
}

/// Bodies are JSON; a readable message instead of actix's default.
fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| bad_request(format!("invalid JSON body: {e}")))
}

async fn ack_alert(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    shared: web::Data<Shared>,
) -> Result<HttpResponse, ApiError> {
    let access = (shared.authorize)(&req)?;
    let id = parse_id(&path)?;
    let ack: AckRequest = json_body(&body)?;
    let by = ack.by.trim().to_string();
    if by.is_empty() || by.len() > 200 {
        return Err(bad_request("by must name who acknowledges (1-200 characters)"));
    }
    if ack.comment.len() > 2000 {
        return Err(bad_request("comment is longer than 2000 characters"));
    }
    let alerts = shared.alerts.clone();
    let now = now_ms();
    let outcome = blocking(move || {
        match alerts.store.series(id)? {
            Some(row) if access.allows(&row.key.site) => {
                // Elsewhere than on the holder: checked on the latest
                // snapshot.
                if !alerts.is_authoritative() && row.machine.state != State::Firing {
                    return Ok(Written::Done(AckOutcome::NotFiring(row.machine.state)));
                }
            }
            _ => return Ok(Written::Done(AckOutcome::NotFound)),
        }
        let command = Command::Ack {
            alert: id,
            by: by.clone(),
            comment: ack.comment.clone(),
        };
        write_state(
            &alerts,
            command,
            now,
            |store| store.ack(id, &by, &ack.comment, now),
            |a| match a {
                Applied::Ack(o) => Some(o),
                _ => None,
            },
        )
    })
    .await?;
    let outcome = match outcome {
        Written::Done(o) => o,
        Written::Accepted(command) => {
            return Ok(accepted(&command, "acknowledgement", serde_json::json!({ "id": id })))
        }
    };
    match outcome {
        AckOutcome::Acked(row) => {
            let alerts = shared.alerts.clone();
            let view = blocking(move || {
                let silences: Vec<Silence> = alerts
                    .store
                    .silences(now)?
                    .into_iter()
                    .filter(|s| s.active_at(now))
                    .collect();
                let events = alerts.store.events(row.id, 10)?;
                Ok(alert_view(&alerts, *row, &silences, events))
            })
            .await?;
            Ok(HttpResponse::Ok().json(view))
        }
        AckOutcome::NotFound => Err(ApiError::new(StatusCode::NOT_FOUND, format!("no alert {id}"))),
        AckOutcome::NotFiring(state) => Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "alert {id} is {}, only firing alerts can be acknowledged",
                state.as_str()
            ),
        )),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SilenceRequest {
    /// Label name -> value (`*` matches any run of characters). Labels:
    /// alertname, metric, severity, site, page, form_factor.
    pub matchers: BTreeMap<String, String>,
    /// Default: now.
    pub starts_at: Option<String>,
    /// One of `endsAt` and `duration` is required.
    pub ends_at: Option<String>,
    pub duration: Option<String>,
    pub created_by: String,
    #[serde(default)]
    pub comment: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SilenceView {
    pub id: i64,
    pub matchers: BTreeMap<String, String>,
    pub starts_at: String,
    pub ends_at: String,
    pub created_by: String,
    pub comment: String,
    pub created_at: String,
    pub active: bool,
}

fn silence_view(s: Silence, now: i64) -> SilenceView {
    SilenceView {
        id: s.id,
        active: s.active_at(now),
        starts_at: rfc3339(s.starts_ms),
        ends_at: rfc3339(s.ends_ms),
        created_at: rfc3339(s.created_ms),
        matchers: s.matchers,
        created_by: s.created_by,
        comment: s.comment,
    }
}

const LABELS: [&str; 6] = ["alertname", "metric", "severity", "site", "page", "form_factor"];

async fn create_silence(
    req: HttpRequest,
    body: web::Bytes,
    shared: web::Data<Shared>,
) -> Result<HttpResponse, ApiError> {
    let access = (shared.authorize)(&req)?;
    let s: SilenceRequest = json_body(&body)?;
    let now = now_ms();
    if s.matchers.is_empty() {
        return Err(bad_request("matchers must name at least one label"));
    }
    if let Some(name) = s.matchers.keys().find(|k| !LABELS.contains(&k.as_str())) {
        return Err(bad_request(format!(
            "matcher {name:?} is not one of {}",
            LABELS.join(", ")
        )));
    }
    if access.sites.is_some() {
        // A site-scoped key may only silence its own sites' alerts.
        match s.matchers.get("site") {
            Some(site) if !site.contains('*') && access.allows(site) => {}
            _ => {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "this API key must name one of its sites in matchers.site",
                ))
            }
        }
    }
    let time = |what: &str, v: &str| {
        parse_time(v).ok_or_else(|| bad_request(format!("{what} {v:?} is not a time like 2024-05-01T13:00:00Z")))
    };
    let starts_ms = match &s.starts_at {
        Some(v) => time("startsAt", v)?,
        None => now,
    };
    let ends_ms = match (&s.ends_at, &s.duration) {
        (Some(v), None) => time("endsAt", v)?,
        (None, Some(d)) => {
            starts_ms + parse_duration(d).ok_or_else(|| bad_request(format!("duration {d:?} is not like 2h or 30m")))?
        }
        _ => return Err(bad_request("give exactly one of endsAt and duration")),
    };
    if ends_ms <= starts_ms.max(now) {
        return Err(bad_request("the silence must end after it starts and in the future"));
    }
    let created_by = s.created_by.trim().to_string();
    if created_by.is_empty() || created_by.len() > 200 {
        return Err(bad_request("createdBy must name who silences (1-200 characters)"));
    }
    if s.comment.len() > 2000 {
        return Err(bad_request("comment is longer than 2000 characters"));
    }
    let alerts = shared.alerts.clone();
    let written = blocking(move || {
        let command = Command::AddSilence {
            matchers: s.matchers.clone(),
            starts_ms,
            ends_ms,
            created_by: created_by.clone(),
            comment: s.comment.clone(),
        };
        write_state(
            &alerts,
            command,
            now,
            |store| store.add_silence(&s.matchers, starts_ms, ends_ms, &created_by, &s.comment, now),
            |a| match a {
                Applied::Silence(s) => Some(s),
                _ => None,
            },
        )
    })
    .await?;
    let silence = match written {
        Written::Done(s) => s,
        Written::Accepted(command) => return Ok(accepted(&command, "silence", serde_json::json!({}))),
    };
    tracing::info!(silence = silence.id, by = %silence.created_by, "silence created");
    Ok(HttpResponse::Created().json(silence_view(silence, now)))
}

fn silence_visible(access: &Access, s: &Silence) -> bool {
    access.sites.is_none() || s.matchers.get("site").is_some_and(|site| access.allows(site))
}

async fn list_silences(req: HttpRequest, shared: web::Data<Shared>) -> Result<HttpResponse, ApiError> {
    let access = (shared.authorize)(&req)?;
    let alerts = shared.alerts.clone();
    let now = now_ms();
    let list = blocking(move || alerts.store.silences(now)).await?;
    let views: Vec<SilenceView> = list
        .into_iter()
        .filter(|s| silence_visible(&access, s))
        .map(|s| silence_view(s, now))
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "silences": views })))
}

async fn expire_silence(
    req: HttpRequest,
    path: web::Path<String>,
    shared: web::Data<Shared>,
) -> Result<HttpResponse, ApiError> {
    let access = (shared.authorize)(&req)?;
    let not_found = || ApiError::new(StatusCode::NOT_FOUND, format!("no silence {:?}", path.as_str()));
    let id: i64 = path.parse().map_err(|_| not_found())?;
    let alerts = shared.alerts.clone();
    let now = now_ms();
    let found = blocking(move || {
        let visible = alerts
            .store
            .silences(i64::MIN)?
            .into_iter()
            .any(|s| s.id == id && silence_visible(&access, &s));
        if !visible {
            return Ok(Written::Done(None));
        }
        write_state(
            &alerts,
            Command::ExpireSilence { silence: id },
            now,
            |store| store.expire_silence(id, now),
            |a| match a {
                Applied::Expired(s) => Some(s),
                _ => None,
            },
        )
    })
    .await?;
    match found {
        Written::Done(Some(s)) => Ok(HttpResponse::Ok().json(silence_view(s, now))),
        Written::Done(None) => Err(not_found()),
        Written::Accepted(command) => Ok(accepted(
            &command,
            "expiry of the silence",
            serde_json::json!({ "id": id }),
        )),
    }
}
