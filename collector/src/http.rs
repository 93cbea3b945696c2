//! The HTTP API: `POST /v1/beacon`, the read APIs (`/v1/summary`,
//! `/v1/pages`, `/v1/timeseries`, `/v1/export`), `/metrics`, `/healthz`,
//! `/readyz`, the alert routes ([`crate::alerts::api`]), and the static
//! directories.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use actix_web::dev::Service;
use actix_web::http::header::{self, ContentType, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use beacon::{FormFactor, MetricName};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use crate::aggregate::{Window, WindowName};
use crate::config::Config;
use crate::ingest::{self, InflateError};
use crate::limit::{self, RateLimits};
use crate::metrics::{Metrics, Route, SiteGauge};
use crate::reason::Reason;
use crate::store::{AggregateQuery, ExportQuery, PageScope, Report, Store, StoreError, OTHER_PAGE};
use crate::summary::{self, TimeseriesError};
use crate::time::{now_ms, parse_time, rfc3339, Resolution};
use crate::validate;

/// What the beacon endpoint enforces, from the configuration.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    pub max_body_bytes: usize,
    /// Longest a body may take to arrive once the headers have.
    pub body_timeout: std::time::Duration,
    pub max_metrics: usize,
    /// Configured sites to their allowed origins and API keys; empty: every
    /// site and origin is accepted.
    pub sites: HashMap<String, SitePolicy>,
    /// Every origin some site allows (CORS preflights name no site).
    pub origins: HashSet<String>,
    /// Keys that read every site.
    pub api_keys: Vec<String>,
    pub trust_forwarded_for: bool,
    pub bot_user_agents: Vec<String>,
    /// What the read APIs mark as a low sample.
    pub trust: summary::Trust,
}

#[derive(Clone, Debug, Default)]
pub struct SitePolicy {
    pub origins: HashSet<String>,
    pub api_keys: Vec<String>,
}

impl Policy {
    pub fn from_config(c: &Config) -> Policy {
        Policy {
            max_body_bytes: c.limits.max_body_bytes,
            body_timeout: c.limits.body_timeout,
            max_metrics: c.limits.max_metrics,
            sites: c
                .sites
                .iter()
                .map(|s| {
                    (
                        s.host.clone(),
                        SitePolicy {
                            origins: s.origins.clone(),
                            api_keys: s.api_keys.clone(),
                        },
                    )
                })
                .collect(),
            origins: c.sites.iter().flat_map(|s| s.origins.iter().cloned()).collect(),
            api_keys: c.api_keys.clone(),
            trust_forwarded_for: c.trust_forwarded_for,
            bot_user_agents: c.bot_user_agents.clone(),
            // The alert minimum: what the rules would not judge either.
            trust: summary::Trust {
                low_sample_below: c
                    .alerts
                    .rules
                    .iter()
                    .map(|r| r.min_samples)
                    .min()
                    .unwrap_or(summary::Trust::default().low_sample_below),
            },
        }
    }

    fn origin_known(&self, origin: &str) -> bool {
        self.sites.is_empty() || self.origins.contains(origin)
    }

    fn auth_required(&self) -> bool {
        !self.api_keys.is_empty() || self.sites.values().any(|s| !s.api_keys.is_empty())
    }
}

/// What handlers share.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub policy: Arc<Policy>,
    pub limits: Arc<RateLimits>,
    pub metrics: Arc<Metrics>,
    /// The alert routes are served when set.
    pub alerts: Option<Arc<crate::alerts::Alerts>>,
}

/// The JSON body of every API error.
#[derive(Debug, Serialize)]
pub struct ErrorBody {
    pub error: String,
    /// JSON path of the offending field (`metrics[2].value`), or null.
    pub field: Option<String>,
    /// For rejected beacons, why (see `docs/collector.md`), or null.
    pub reason: Option<&'static str>,
}

/// An API error: an HTTP status plus [`ErrorBody`].
#[derive(Debug, thiserror::Error)]
#[error("{status}: {message}")]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub field: Option<String>,
    pub reason: Option<Reason>,
    /// Seconds, for 429 and 503.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            field: None,
            reason: None,
            retry_after: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    fn rejected(reason: Reason, message: impl Into<String>) -> ApiError {
        ApiError {
            status: reason.status(),
            message: message.into(),
            field: None,
            reason: Some(reason),
            retry_after: None,
        }
    }
}

impl From<validate::Invalid> for ApiError {
    fn from(e: validate::Invalid) -> ApiError {
        ApiError {
            status: e.reason.status(),
            message: e.message,
            field: e.field,
            reason: Some(e.reason),
            retry_after: None,
        }
    }
}

/// `Retry-After` while the store is starting: loading takes seconds.
const STARTING_RETRY_SECS: u64 = 2;
/// `Retry-After` while ClickHouse and the spill file both fail.
const UNAVAILABLE_RETRY_SECS: u64 = 5;
/// `Retry-After` while the disk is full: an operator has to act.
const DISK_FULL_RETRY_SECS: u64 = 30;

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        let unavailable = |reason, retry_after| {
            let mut a = ApiError::rejected(reason, format!("try again later: {e}"));
            a.retry_after = Some(retry_after);
            a
        };
        match e {
            StoreError::Closed | StoreError::Overloaded => unavailable(Reason::Overloaded, 1),
            StoreError::Starting(_) => unavailable(Reason::Starting, STARTING_RETRY_SECS),
            StoreError::DiskFull(_) => unavailable(Reason::DiskFull, DISK_FULL_RETRY_SECS),
            StoreError::Unavailable(_) => unavailable(Reason::StoreUnavailable, UNAVAILABLE_RETRY_SECS),
            StoreError::TooManySites { .. } => ApiError::rejected(Reason::TooManySites, e.to_string()),
            e => {
                tracing::error!(error = %e, "store failed");
                ApiError::rejected(Reason::StoreFailed, format!("storage failed: {e}"))
            }
        }
    }
}

impl From<TimeseriesError> for ApiError {
    fn from(e: TimeseriesError) -> ApiError {
        match e {
            TimeseriesError::Store(e) => e.into(),
            TimeseriesError::NotFound(_) => ApiError::new(StatusCode::NOT_FOUND, e.to_string()),
            e => ApiError::bad_request(e.to_string()),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut r = HttpResponse::build(self.status);
        if let Some(secs) = self.retry_after {
            r.insert_header((header::RETRY_AFTER, secs.to_string()));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            r.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
        }
        if self.status == StatusCode::NO_CONTENT {
            return r.finish();
        }
        r.json(ErrorBody {
            error: self.message.clone(),
            field: self.field.clone(),
            reason: self.reason.map(Reason::as_str),
        })
    }
}

/// Registers the API routes, and times every request.
pub fn configure_api(cfg: &mut web::ServiceConfig, state: AppState) {
    let alerts = state.alerts.clone().map(|a| (a, state.policy.clone()));
    // The beacon route first: routes are tried in order, and the alert
    // routes with `{id}` segments are matched by regular expression, which
    // cost every beacon a few per cent of its CPU time when tried first.
    cfg.app_data(web::Data::new(state))
        .service(
            web::resource("/v1/beacon")
                .route(web::post().to(post_beacon))
                .route(web::method(Method::OPTIONS).to(beacon_preflight)),
        )
        .route("/v1/summary", web::get().to(get_summary))
        .route("/v1/sites", web::get().to(get_sites))
        .route("/v1/pages", web::get().to(get_pages))
        .route("/v1/timeseries", web::get().to(get_timeseries))
        .route("/v1/page", web::get().to(get_page))
        .route("/v1/fix-first", web::get().to(get_fix_first))
        .route("/v1/export", web::get().to(get_export))
        .route("/metrics", web::get().to(get_metrics))
        .route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz));
    if let Some((alerts, policy)) = alerts {
        crate::alerts::api::configure(cfg, alerts, Arc::new(move |req: &HttpRequest| access(req, &policy)));
    }
}

/// Builds the app: API, static directories, request timing.
pub fn app(
    state: AppState,
    www_dir: std::path::PathBuf,
    agent_dir: std::path::PathBuf,
) -> actix_web::App<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let metrics = state.metrics.clone();
    actix_web::App::new()
        .configure(|cfg| configure_api(cfg, state))
        .configure(|cfg| configure_static(cfg, &www_dir, &agent_dir))
        .wrap_fn(move |req, srv| {
            let started = Instant::now();
            let route = Route::of(req.method(), req.path());
            let metrics = metrics.clone();
            let fut = srv.call(req);
            async move {
                let res = fut.await;
                metrics.observe(route, started.elapsed());
                res
            }
        })
}

/// Mounts the agent at `/agent/` and the site at `/`, skipping directories
/// that do not exist (the caller warns: this runs once per worker).
/// Register after the API: the `/` mount matches every path.
pub fn configure_static(cfg: &mut web::ServiceConfig, www_dir: &Path, agent_dir: &Path) {
    if agent_dir.is_dir() {
        cfg.service(actix_files::Files::new("/agent", agent_dir));
    }
    if www_dir.is_dir() {
        cfg.service(actix_files::Files::new("/", www_dir).index_file("index.html"));
    }
}

fn header_str(req: &HttpRequest, name: header::HeaderName) -> Option<&str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// `sendBeacon` sends `text/plain;charset=UTF-8` (a "simple" request, no
/// preflight); `fetch` callers send `application/json`.
fn check_content_type(req: &HttpRequest) -> Result<(), ApiError> {
    let unsupported = |what: &str| {
        ApiError::rejected(
            Reason::UnsupportedMediaType,
            format!("unsupported content type {what}; send text/plain or application/json"),
        )
    };
    let Some(value) = req.headers().get(header::CONTENT_TYPE) else {
        return Err(unsupported("(none)"));
    };
    let value = value.to_str().map_err(|_| unsupported("(not ASCII)"))?;
    let essence = value.split(';').next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case("text/plain") || essence.eq_ignore_ascii_case("application/json") {
        Ok(())
    } else {
        Err(unsupported(&format!("{value:?}")))
    }
}

/// Whether the body is gzip (`Content-Encoding: gzip`) or plain.
fn is_gzip(req: &HttpRequest) -> Result<bool, ApiError> {
    let Some(value) = req.headers().get(header::CONTENT_ENCODING) else {
        return Ok(false);
    };
    let value = value.to_str().unwrap_or("").trim();
    if value.eq_ignore_ascii_case("gzip") || value.eq_ignore_ascii_case("x-gzip") {
        Ok(true)
    } else if value.is_empty() || value.eq_ignore_ascii_case("identity") {
        Ok(false)
    } else {
        Err(ApiError::rejected(
            Reason::UnsupportedEncoding,
            format!("unsupported content encoding {value:?}; send gzip or none"),
        ))
    }
}

fn too_large(limit: usize, inflated: bool) -> ApiError {
    let what = if inflated {
        "inflates to more than"
    } else {
        "is larger than"
    };
    ApiError::rejected(Reason::BodyTooLarge, format!("beacon body {what} {limit} bytes"))
}

/// Reads the body within `deadline` (a body trickling in a byte at a
/// time would hold the connection, and delay shutdown, for as long as
/// the client likes: a per-read idle timeout does not bound that), else
/// 408 `body_timeout`.
async fn read_body_within(
    req: &HttpRequest,
    payload: web::Payload,
    limit: usize,
    deadline: std::time::Duration,
) -> Result<web::Bytes, ApiError> {
    match actix_web::rt::time::timeout(deadline, read_body(req, payload, limit)).await {
        Ok(body) => body,
        Err(_) => Err(ApiError::rejected(
            Reason::BodyTimeout,
            format!("the body did not arrive within {} ms", deadline.as_millis()),
        )),
    }
}

/// Reads the body, refusing more than `limit` bytes without buffering them.
/// A body that arrives in one chunk (the usual beacon) is that chunk, a
/// view into the connection's read buffer: no copy, and no allocation of a
/// kilobyte or more (which makes glibc's malloc sweep its small free
/// chunks).
async fn read_body(req: &HttpRequest, mut payload: web::Payload, limit: usize) -> Result<web::Bytes, ApiError> {
    let declared = header_str(req, header::CONTENT_LENGTH).and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large(limit, false));
    }
    let mut first = web::Bytes::new();
    let mut joined: Option<web::BytesMut> = None;
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::bad_request(format!("cannot read body: {e}")))?;
        let have = joined.as_ref().map_or(first.len(), |j| j.len());
        if have + chunk.len() > limit {
            return Err(too_large(limit, false));
        }
        match &mut joined {
            Some(j) => j.extend_from_slice(&chunk),
            None if first.is_empty() => first = chunk,
            None => {
                let mut j = web::BytesMut::with_capacity(declared.unwrap_or(0).max(have + chunk.len()).min(limit));
                j.extend_from_slice(&first);
                j.extend_from_slice(&chunk);
                joined = Some(j);
            }
        }
    }
    Ok(joined.map_or(first, web::BytesMut::freeze))
}

/// The client's address: the peer, or what a trusted proxy says.
fn client_ip(req: &HttpRequest, trust_forwarded_for: bool) -> Option<IpAddr> {
    if trust_forwarded_for {
        let info = req.connection_info();
        if let Some(addr) = info.realip_remote_addr() {
            let addr = addr.trim_matches(|c| c == '[' || c == ']');
            if let Ok(ip) = addr.parse::<IpAddr>() {
                return Some(ip);
            }
            if let Ok(sa) = addr.parse::<std::net::SocketAddr>() {
                return Some(sa.ip());
            }
        }
    }
    req.peer_addr().map(|a| a.ip())
}

/// The browser origin a request comes from: its `Origin`, else the origin
/// of its `Referer`; `None` for non-browser clients that send neither.
fn request_origin(req: &HttpRequest) -> Option<String> {
    if let Some(o) = req.headers().get(header::ORIGIN) {
        return Some(o.to_str().unwrap_or("null").to_owned());
    }
    let referer = header_str(req, header::REFERER)?;
    Some(
        url::Url::parse(referer)
            .map(|u| u.origin().ascii_serialization())
            .unwrap_or_else(|_| "null".into()),
    )
}

/// CORS headers for `/v1/beacon`: `*` without an Origin; the exact origin
/// with credentials allowed when some site allows it; none otherwise.
fn cors_headers(req: &HttpRequest, policy: &Policy, resp: &mut HttpResponse) {
    let h = resp.headers_mut();
    match req.headers().get(header::ORIGIN) {
        None => {
            h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
        }
        Some(origin) => {
            h.insert(header::VARY, HeaderValue::from_static("Origin"));
            if origin.to_str().is_ok_and(|o| policy.origin_known(o)) {
                h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
                h.insert(
                    header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                    HeaderValue::from_static("true"),
                );
            }
        }
    }
}

/// `POST /v1/beacon`: 204 once the beacon's reports are committed.
async fn post_beacon(req: HttpRequest, payload: web::Payload, state: web::Data<AppState>) -> HttpResponse {
    let mut resp = match accept_beacon(&req, payload, &state).await {
        Ok(()) => HttpResponse::NoContent().finish(),
        Err(e) => {
            let reason = e.reason.unwrap_or(Reason::StoreFailed);
            state.metrics.rejected(reason);
            tracing::debug!(reason = reason.as_str(), error = %e.message, field = ?e.field, "rejected beacon");
            let mut resp = e.error_response();
            if reason == Reason::BodyTimeout {
                // The rest of the body is not waited for.
                resp.head_mut()
                    .set_connection_type(actix_web::http::ConnectionType::Close);
            }
            resp
        }
    };
    cors_headers(&req, &state.policy, &mut resp);
    resp
}

async fn accept_beacon(req: &HttpRequest, payload: web::Payload, state: &AppState) -> Result<(), ApiError> {
    let policy = &state.policy;
    // Cheapest refusals first: bots and clients over their rate.
    if header_str(req, header::USER_AGENT).is_some_and(|ua| limit::is_bot(ua, &policy.bot_user_agents)) {
        return Err(ApiError::rejected(Reason::Bot, "bot"));
    }
    if let Some(ip) = client_ip(req, policy.trust_forwarded_for) {
        state.limits.check_ip(ip).map_err(|wait| {
            let mut e = ApiError::rejected(Reason::RateLimitedIp, "too many beacons from this address");
            e.retry_after = Some(limit::retry_after_secs(wait));
            e
        })?;
    }
    check_content_type(req)?;
    let gzip = is_gzip(req)?;
    // The body is dropped once parsed, before waiting for the store: it
    // may be a view into the connection's read buffer, which can then be
    // reused for the next request.
    let accepted = {
        let raw = read_body_within(req, payload, policy.max_body_bytes, policy.body_timeout).await?;
        let body: std::borrow::Cow<[u8]> = if gzip {
            ingest::gunzip(&raw, policy.max_body_bytes)
                .map_err(|e| match e {
                    InflateError::TooLarge { limit } => too_large(limit, true),
                    InflateError::Malformed(_) => ApiError::rejected(Reason::BadEncoding, e.to_string()),
                })?
                .into()
        } else {
            (&raw[..]).into()
        };
        ingest::accept(&body, now_ms(), policy.max_metrics)?
    };
    let site = &accepted.beacon.site;
    if !policy.sites.is_empty() {
        let Some(site_policy) = policy.sites.get(site) else {
            return Err(ApiError::rejected(
                Reason::UnknownSite,
                format!("site {site} is not configured on this collector"),
            ));
        };
        if let Some(origin) = request_origin(req) {
            if !site_policy.origins.contains(&origin) {
                return Err(ApiError::rejected(
                    Reason::OriginNotAllowed,
                    format!("origin {origin} may not send beacons for site {site}"),
                ));
            }
        }
    }
    state.limits.check_site(site).map_err(|wait| {
        let mut e = ApiError::rejected(Reason::RateLimitedSite, format!("too many beacons for site {site}"));
        e.retry_after = Some(limit::retry_after_secs(wait));
        e
    })?;
    let unknown = accepted.unknown_fields;
    let inserted = state.store.insert(vec![accepted.beacon]).await?;
    state.metrics.accepted(inserted, unknown);
    Ok(())
}

/// CORS preflight for agents that post with `fetch` (JSON, or gzip).
async fn beacon_preflight(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    if let Some(origin) = req.headers().get(header::ORIGIN) {
        if !origin.to_str().is_ok_and(|o| state.policy.origin_known(o)) {
            state.metrics.rejected(Reason::OriginNotAllowed);
            return ApiError::rejected(Reason::OriginNotAllowed, "this origin may not send beacons here")
                .error_response();
        }
    }
    let mut resp = HttpResponse::NoContent()
        .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, "POST"))
        .insert_header((header::ACCESS_CONTROL_ALLOW_HEADERS, "content-type, content-encoding"))
        .insert_header((header::ACCESS_CONTROL_MAX_AGE, "86400"))
        .finish();
    cors_headers(&req, &state.policy, &mut resp);
    resp
}

/// Whether two API keys are equal, in time that depends on neither's
/// length nor content: their SHA-256 digests (always 32 bytes) are
/// compared without stopping at the first difference.
fn same_key(a: &str, b: &str) -> bool {
    use sha2::{Digest, Sha256};
    let (x, y) = (Sha256::digest(a.as_bytes()), Sha256::digest(b.as_bytes()));
    x.iter().zip(y.iter()).fold(0u8, |acc, (p, q)| acc | (p ^ q)) == 0
}

/// Whether `key` is one of `keys`, comparing with every one of them.
fn is_one_of(keys: &[String], key: &str) -> bool {
    keys.iter().fold(false, |found, k| found | same_key(k, key))
}

/// The API key a request presents: `X-API-Key`, or `Authorization` with
/// the `Bearer` scheme (its name in any case, as HTTP says).
fn presented_key(req: &HttpRequest) -> Option<&str> {
    header_str(req, header::HeaderName::from_static("x-api-key")).or_else(|| {
        let (scheme, token) = header_str(req, header::AUTHORIZATION)?.trim_start().split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
    })
}

/// Checks the API key, when keys are configured: a global key reads every
/// site, a site's key only that site (`site` must name it).
fn authorize(req: &HttpRequest, policy: &Policy, site: Option<&str>) -> Result<(), ApiError> {
    if !policy.auth_required() {
        return Ok(());
    }
    let Some(key) = presented_key(req) else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "an API key is required: send it as X-API-Key or Authorization: Bearer",
        ));
    };
    if is_one_of(&policy.api_keys, key) {
        return Ok(());
    }
    let owner = policy.sites.iter().find(|(_, s)| is_one_of(&s.api_keys, key));
    match (owner, site) {
        (None, _) => Err(ApiError::new(StatusCode::UNAUTHORIZED, "invalid API key")),
        (Some((owner, _)), Some(site)) if owner == site => Ok(()),
        (Some((owner, _)), _) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!("this API key reads site {owner} only; ask with site={owner}"),
        )),
    }
}

/// Which sites a request's API key may read: all when no keys are
/// configured or the key is a global one, else the key's site.
pub fn access(req: &HttpRequest, policy: &Policy) -> Result<crate::alerts::api::Access, ApiError> {
    use crate::alerts::api::Access;
    if !policy.auth_required() {
        return Ok(Access { sites: None });
    }
    let owner = presented_key(req).and_then(|key| {
        policy
            .sites
            .iter()
            .find(|(_, s)| is_one_of(&s.api_keys, key))
            .map(|(site, _)| site.clone())
    });
    match owner {
        Some(site) => Ok(Access {
            sites: Some(vec![site]),
        }),
        // A global key, or the same error as the other read APIs give.
        None => authorize(req, policy, None).map(|()| Access { sites: None }),
    }
}

fn parse_window(s: Option<&str>, default: WindowName) -> Result<WindowName, ApiError> {
    match s {
        None | Some("") => Ok(default),
        Some(w) => WindowName::parse(w)
            .ok_or_else(|| ApiError::bad_request(format!("unknown window {w:?}; use 1h, 24h, 7d or 28d"))),
    }
}

fn parse_form_factor(s: Option<&str>) -> Result<Option<FormFactor>, ApiError> {
    let Some(s) = s.filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    if s.eq_ignore_ascii_case("all") || s.eq_ignore_ascii_case("all_form_factors") {
        return Ok(None);
    }
    FormFactor::ALL
        .into_iter()
        .find(|f| f.as_str().eq_ignore_ascii_case(s))
        .map(Some)
        .ok_or_else(|| ApiError::bad_request(format!("unknown formFactor {s:?}; use phone, tablet, desktop or all")))
}

fn parse_metric(s: Option<&str>) -> Result<MetricName, ApiError> {
    let s = s.ok_or_else(|| ApiError::bad_request("metric is required: FCP, LCP, CLS, INP or TTFB"))?;
    MetricName::parse(&s.to_ascii_uppercase())
        .ok_or_else(|| ApiError::bad_request(format!("unknown metric {s:?}; use FCP, LCP, CLS, INP or TTFB")))
}

/// A `site` parameter, lower-cased like stored site names.
fn site_param(s: &Option<String>) -> Option<String> {
    s.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_ascii_lowercase)
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReadParams {
    pub site: Option<String>,
    pub page: Option<String>,
    pub metric: Option<String>,
    pub window: Option<String>,
    pub step: Option<String>,
    pub form_factor: Option<String>,
    pub format: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub q: Option<String>,
    pub pages: Option<String>,
    pub sort: Option<String>,
    pub order: Option<String>,
    pub offset: Option<String>,
    pub limit: Option<String>,
}

/// The `site` (authorized for the caller), `window` (default 28d) and
/// `formFactor` that the summary and the page list share.
fn site_scope(
    req: &HttpRequest,
    q: &ReadParams,
    state: &AppState,
) -> Result<(Option<String>, WindowName, Option<FormFactor>), ApiError> {
    let site = site_param(&q.site);
    authorize(req, &state.policy, site.as_deref())?;
    let window = parse_window(q.window.as_deref(), WindowName::Days28)?;
    let ff = parse_form_factor(q.form_factor.as_deref())?;
    Ok((site, window, ff))
}

/// `GET /v1/summary?site=&window=28d&formFactor=`.
async fn get_summary(
    req: HttpRequest,
    q: web::Query<ReadParams>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (site, window, ff) = site_scope(&req, &q, &state)?;
    let with_pages = match q.pages.as_deref() {
        None | Some("") | Some("true") => true,
        Some("false") => false,
        Some(p) => return Err(ApiError::bad_request(format!("pages={p:?}: use true or false"))),
    };
    let trust = state.policy.trust;
    let s = summary::summary(state.store.as_ref(), site, window, ff, with_pages, trust, now_ms()).await?;
    Ok(HttpResponse::Ok().json(s))
}

/// `GET /v1/sites`: the sites this caller may read, the most recently
/// heard from first (a site's API key: its site).
async fn get_sites(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let only = access(&req, &state.policy)?.sites;
    let sites = summary::sites(state.store.as_ref(), only, now_ms()).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "sites": sites })))
}

/// `GET /v1/pages?site=&window=28d&formFactor=`.
async fn get_pages(
    req: HttpRequest,
    q: web::Query<ReadParams>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (site, window, ff) = site_scope(&req, &q, &state)?;
    let list = page_list(&q)?;
    let p = summary::pages(
        state.store.as_ref(),
        site,
        window,
        ff,
        &list,
        state.policy.trust,
        now_ms(),
    )
    .await?;
    Ok(HttpResponse::Ok().json(p))
}

/// `GET /v1/timeseries?site=&page=&metric=&window=24h&step=1h&formFactor=`.
async fn get_timeseries(
    req: HttpRequest,
    q: web::Query<ReadParams>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let metric = parse_metric(q.metric.as_deref())?;
    let page = q.page.as_deref().map(str::trim).filter(|p| !p.is_empty());
    let (site, page) = match page {
        None | Some(OTHER_PAGE) => (site_param(&q.site), page.map(str::to_owned)),
        Some(p) => {
            let key = validate::page_key(p).map_err(|e| ApiError::bad_request(e.message))?;
            (Some(key.site), Some(key.page))
        }
    };
    let site = site.ok_or_else(|| ApiError::bad_request("site (or a page URL) is required"))?;
    authorize(&req, &state.policy, Some(&site))?;
    let window = parse_window(q.window.as_deref(), WindowName::Day)?;
    let step = match q.step.as_deref() {
        None | Some("") => window.shape().0,
        Some(s) => {
            Resolution::parse(s).ok_or_else(|| ApiError::bad_request(format!("unknown step {s:?}; use 1h or 1d")))?
        }
    };
    let ff = parse_form_factor(q.form_factor.as_deref())?;
    let trust = state.policy.trust;
    let t = summary::timeseries(
        state.store.as_ref(),
        site,
        page,
        metric,
        window,
        step,
        ff,
        trust,
        now_ms(),
    )
    .await?;
    Ok(HttpResponse::Ok().json(t))
}

/// The `q`, `sort`, `order`, `offset` and `limit` of `GET /v1/pages`.
fn page_list(q: &ReadParams) -> Result<summary::PageList, ApiError> {
    let sort = match q.sort.as_deref().filter(|s| !s.is_empty()) {
        None => summary::PageSort::Count,
        Some(s) => summary::PageSort::parse(s).ok_or_else(|| {
            ApiError::bad_request(format!(
                "unknown sort {s:?}; use worst, pageViews, count, page, LCP, INP, CLS, FCP or TTFB"
            ))
        })?,
    };
    let descending = match q.order.as_deref().filter(|s| !s.is_empty()) {
        None => sort != summary::PageSort::Page,
        Some("desc") => true,
        Some("asc") => false,
        Some(o) => return Err(ApiError::bad_request(format!("unknown order {o:?}; use asc or desc"))),
    };
    let number =
        |name: &str, v: &Option<String>, max: usize| -> Result<Option<usize>, ApiError> {
            match v.as_deref().filter(|s| !s.is_empty()) {
                None => Ok(None),
                Some(s) => s.parse::<usize>().ok().filter(|&n| n <= max).map(Some).ok_or_else(|| {
                    ApiError::bad_request(format!("{name} {s:?} is not a whole number from 0 to {max}"))
                }),
            }
        };
    Ok(summary::PageList {
        filter: q
            .q
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned),
        sort,
        descending,
        offset: number("offset", &q.offset, usize::MAX >> 1)?.unwrap_or(0),
        limit: match number("limit", &q.limit, summary::MAX_PAGE_LIMIT)? {
            Some(0) => return Err(ApiError::bad_request("limit must be at least 1")),
            l => l,
        },
    })
}

/// The `site` and `page` of a request about one page (a page URL or key,
/// or `(other)` with `site`) or, without `page`, a whole site; authorized.
fn page_scope(req: &HttpRequest, q: &ReadParams, state: &AppState) -> Result<(String, Option<String>), ApiError> {
    let page = q.page.as_deref().map(str::trim).filter(|p| !p.is_empty());
    let (site, page) = match page {
        None | Some(OTHER_PAGE) => (site_param(&q.site), page.map(str::to_owned)),
        Some(p) => {
            let key = validate::page_key(p).map_err(|e| ApiError::bad_request(e.message))?;
            (Some(key.site), Some(key.page))
        }
    };
    let site = site.ok_or_else(|| ApiError::bad_request("site (or a page URL) is required"))?;
    authorize(req, &state.policy, Some(&site))?;
    Ok((site, page))
}

/// `GET /v1/fix-first?site=&page=&window=28d&formFactor=`: what to fix
/// first, from the reports' attribution.
async fn get_fix_first(
    req: HttpRequest,
    q: web::Query<ReadParams>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (site, page) = page_scope(&req, &q, &state)?;
    let window = parse_window(q.window.as_deref(), WindowName::Days28)?;
    let ff = parse_form_factor(q.form_factor.as_deref())?;
    let f = crate::fix_first::fix_first(state.store.as_ref(), site, page, window, ff, now_ms()).await?;
    Ok(HttpResponse::Ok().json(f))
}

/// `GET /v1/page?site=&page=&window=28d&formFactor=`: one page (or, without
/// `page`, the whole site) in detail.
async fn get_page(
    req: HttpRequest,
    q: web::Query<ReadParams>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (site, page) = page_scope(&req, &q, &state)?;
    let window = parse_window(q.window.as_deref(), WindowName::Days28)?;
    let ff = parse_form_factor(q.form_factor.as_deref())?;
    let d = summary::page_detail(
        state.store.as_ref(),
        site,
        page,
        window,
        ff,
        state.policy.trust,
        now_ms(),
    )
    .await?;
    Ok(HttpResponse::Ok().json(d))
}

/// One exported report.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ExportRow<'a> {
    site: &'a str,
    page: &'a str,
    metric: &'static str,
    id: &'a str,
    value: f64,
    delta: f64,
    rating: &'static str,
    navigation_type: &'static str,
    form_factor: Option<&'static str>,
    page_view_id: Option<&'a str>,
    session_id: Option<&'a str>,
    received_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    attribution: Option<&'a beacon::Attribution>,
}

impl<'a> ExportRow<'a> {
    fn of(r: &'a Report) -> ExportRow<'a> {
        ExportRow {
            site: &r.site,
            page: &r.page,
            metric: r.metric.as_str(),
            id: &r.report_id,
            value: r.value,
            delta: r.delta,
            rating: r.rating.as_str(),
            navigation_type: r.navigation_type.as_str(),
            form_factor: r.form_factor.map(FormFactor::as_str),
            page_view_id: r.page_view_id.as_deref(),
            session_id: r.session_id.as_deref(),
            received_at: rfc3339(r.received_at_ms),
            attribution: r.attribution.as_ref(),
        }
    }
}

pub const CSV_HEADER: &str =
    "site,page,metric,id,value,delta,rating,navigationType,formFactor,pageViewId,sessionId,receivedAt\n";

/// A CSV text field, quoted when it has to be (RFC 4180). A field that a
/// spreadsheet would run as a formula (starting with `=`, `+`, `-`, `@`,
/// tab or carriage return: ids and page view ids come from browsers) gets
/// a leading `'`, as OWASP advises; JSON exports keep the exact text.
fn csv_field(out: &mut String, s: &str) {
    let formula = s.starts_with(['=', '+', '-', '@', '\t', '\r']);
    if formula || s.contains([',', '"', '\n', '\r']) {
        out.push('"');
        if formula {
            out.push('\'');
        }
        out.push_str(&s.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(s);
    }
}

fn csv_row(out: &mut String, r: &Report) {
    let row = ExportRow::of(r);
    use std::fmt::Write;
    for (i, f) in [row.site, row.page, row.metric, row.id].into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        csv_field(out, f);
    }
    let _ = write!(
        out,
        ",{},{},{},{},{},",
        row.value,
        row.delta,
        row.rating,
        row.navigation_type,
        row.form_factor.unwrap_or("")
    );
    csv_field(out, row.page_view_id.unwrap_or(""));
    out.push(',');
    csv_field(out, row.session_id.unwrap_or(""));
    out.push(',');
    out.push_str(&row.received_at);
    out.push('\n');
}

/// `GET /v1/export?format=csv|json&from=&to=&site=`: raw reports, oldest
/// first, streamed as they are read.
async fn get_export(
    req: HttpRequest,
    q: web::Query<ReadParams>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let site = site_param(&q.site);
    authorize(&req, &state.policy, site.as_deref())?;
    let json = match q.format.as_deref().unwrap_or("csv") {
        "csv" => false,
        "json" => true,
        f => return Err(ApiError::bad_request(format!("unknown format {f:?}; use csv or json"))),
    };
    let time = |name: &str, v: &Option<String>, default: i64| -> Result<i64, ApiError> {
        match v.as_deref().filter(|s| !s.is_empty()) {
            None => Ok(default),
            Some(s) => parse_time(s).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "{name} {s:?} is not a time: use unix milliseconds, 2024-05-01 or 2024-05-01T13:00:00Z"
                ))
            }),
        }
    };
    let from_ms = time("from", &q.from, 0)?;
    let to_ms = time("to", &q.to, i64::MAX)?;
    let rows = state.store.export(ExportQuery { site, from_ms, to_ms });
    let opening = if json { "[" } else { CSV_HEADER };
    let first = web::Bytes::from_static(opening.as_bytes());
    let body = futures_util::stream::once(async move { Ok::<_, actix_web::Error>(first) }).chain(
        futures_util::stream::unfold((rows, true, false), move |(mut rows, mut first, done)| async move {
            if done {
                return None;
            }
            match rows.recv().await {
                Some(Ok(chunk)) => {
                    let mut out = String::with_capacity(chunk.len() * 200);
                    for r in &chunk {
                        if json {
                            out.push_str(if first { "\n" } else { ",\n" });
                            first = false;
                            out.push_str(&serde_json::to_string(&ExportRow::of(r)).unwrap_or_default());
                        } else {
                            csv_row(&mut out, r);
                        }
                    }
                    Some((Ok(web::Bytes::from(out)), (rows, first, false)))
                }
                Some(Err(e)) => {
                    tracing::error!(error = %e, "export failed");
                    Some((Err(actix_web::error::ErrorInternalServerError(e)), (rows, first, true)))
                }
                None if json => Some((Ok(web::Bytes::from_static(b"\n]\n")), (rows, first, true))),
                None => None,
            }
        }),
    );
    let mut resp = HttpResponse::Ok();
    if json {
        resp.content_type(ContentType::json());
    } else {
        resp.content_type("text/csv; charset=utf-8").insert_header((
            header::CONTENT_DISPOSITION,
            "attachment; filename=\"vitalsign-export.csv\"",
        ));
    }
    Ok(resp.streaming(body))
}

/// `GET /metrics`: Prometheus text.
async fn get_metrics(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    authorize(&req, &state.policy, None)?;
    let now = now_ms();
    let mut gauges = Vec::new();
    for window in [WindowName::Hour, WindowName::Days28] {
        let w = Window::ending_at(window, now);
        let aggregates = state
            .store
            .aggregates(AggregateQuery {
                site: None,
                pages: PageScope::Site,
                metrics: vec![],
                form_factor: None,
                spans: vec![w.span],
                exact_p75: true,
                p75_interval: false,
            })
            .await;
        // While the store loads: the counters and health, without the
        // per-site gauges.
        let aggregates = match aggregates {
            Err(StoreError::Starting(_)) => break,
            other => other?,
        };
        gauges.extend(aggregates.into_iter().filter_map(|a| {
            Some(SiteGauge {
                count: a.count(),
                p75: a.p75?,
                site: a.key.site,
                metric: a.key.metric.as_str(),
                window: window.as_str(),
            })
        }));
    }
    let mut text = state.metrics.render(&state.store.status(), &gauges);
    text.push_str(&state.store.metrics_text());
    if let Some(alerts) = state.alerts.clone() {
        // Without the alert lines rather than without any metrics.
        match web::block(move || alerts.metrics_text().map_err(|e| e.to_string())).await {
            Ok(Ok(more)) => text.push_str(&more),
            Ok(Err(e)) => tracing::error!(error = %e, "alert metrics failed"),
            Err(e) => tracing::error!(error = %e, "alert metrics failed"),
        }
    }
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(text))
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::json())
        .body(r#"{"status":"ok"}"#)
}

/// Ready while the store has loaded, takes writes (the disk is not full)
/// and its queue is not full; else 503 with the reason and `Retry-After`.
async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let s = state.store.status();
    match s.ready() {
        Ok(()) => HttpResponse::Ok()
            .content_type(ContentType::json())
            .body(r#"{"status":"ready"}"#),
        Err(reason) => {
            let retry_after = if s.disk_full.is_some() {
                DISK_FULL_RETRY_SECS
            } else {
                STARTING_RETRY_SECS
            };
            HttpResponse::ServiceUnavailable()
                .insert_header((header::RETRY_AFTER, retry_after.to_string()))
                .json(serde_json::json!({"status": "not ready", "reason": reason}))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_what_needs_quoting() {
        let mut out = String::new();
        csv_field(&mut out, "plain");
        out.push('|');
        csv_field(&mut out, "a,b \"c\"\nd");
        assert_eq!(out, "plain|\"a,b \"\"c\"\"\nd\"");
    }

    #[test]
    fn keys_compare_exactly() {
        assert!(same_key("abc", "abc"));
        assert!(!same_key("abc", "abd"));
        assert!(!same_key("abc", "abcd"));
        assert!(!same_key("", "a"));
        assert!(is_one_of(&["x".into(), "abc".into()], "abc"));
        assert!(!is_one_of(&["x".into(), "abc".into()], "ab"));
    }

    /// Finding 7: ids starting with a formula character were exported as
    /// they are, and a spreadsheet runs them.
    #[test]
    fn csv_neutralises_formulas() {
        for (text, csv) in [
            ("=HYPERLINK(\"http://x\")", "\"'=HYPERLINK(\"\"http://x\"\")\""),
            ("+1", "\"'+1\""),
            ("-2+3", "\"'-2+3\""),
            ("@SUM(A1)", "\"'@SUM(A1)\""),
            ("\tx", "\"'\tx\""),
            ("\rx", "\"'\rx\""),
            ("v5-1-2", "v5-1-2"),
            ("a=b", "a=b"),
        ] {
            let mut out = String::new();
            csv_field(&mut out, text);
            assert_eq!(out, csv, "{text:?}");
        }
    }
}
