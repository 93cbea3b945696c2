//! The HTTP API: `POST /v1/beacon`, `GET /v1/summary`, `GET /healthz`,
//! and the static directories.

use std::path::Path;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use actix_web::http::header::{self, ContentType};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::DefaultHeaders;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use futures_util::StreamExt;
use serde::Serialize;

use crate::ingest;
use crate::store::{Store, StoreError};
use crate::summary::SummaryQuery;
use crate::validate::Invalid;

/// Largest beacon body accepted. The agent's beacons are a few hundred
/// bytes; `sendBeacon` itself caps bodies at 64 KiB.
pub const MAX_BEACON_BYTES: usize = 64 * 1024;

/// What handlers share.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
}

/// The JSON body of every API error: `{"error": "...", "field": ...}`.
#[derive(Debug, Serialize)]
pub struct ErrorBody {
    pub error: String,
    /// JSON path of the offending field (`metrics[2].value`), or null.
    pub field: Option<String>,
}

/// An API error: an HTTP status plus [`ErrorBody`].
#[derive(Debug, thiserror::Error)]
#[error("{status}: {message}")]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub field: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            field: None,
        }
    }
}

impl From<Invalid> for ApiError {
    fn from(e: Invalid) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message: e.message,
            field: e.field,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::Closed => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "the collector is shutting down",
            ),
            e => {
                tracing::error!(error = %e, "store failed");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("storage failed: {e}"),
                )
            }
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status).json(ErrorBody {
            error: self.message.clone(),
            field: self.field.clone(),
        })
    }
}

/// Registers the API routes; the store is shared by all workers.
pub fn configure_api(cfg: &mut web::ServiceConfig, state: AppState) {
    cfg.app_data(web::Data::new(state))
        .service(
            web::resource("/v1/beacon")
                // Agents post from any site's pages. Issue 5 replaces this
                // with a per-site origin allowlist.
                .wrap(DefaultHeaders::new().add((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")))
                .route(web::post().to(post_beacon))
                .route(web::method(Method::OPTIONS).to(beacon_preflight)),
        )
        .route("/v1/summary", web::get().to(get_summary))
        .route("/healthz", web::get().to(healthz));
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

/// `sendBeacon` sends `text/plain;charset=UTF-8` (a "simple" request, no
/// preflight); `fetch` callers send `application/json`.
fn check_content_type(req: &HttpRequest) -> Result<(), ApiError> {
    let unsupported = |what: &str| {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("unsupported content type {what}; send text/plain or application/json"),
        )
    };
    let Some(value) = req.headers().get(header::CONTENT_TYPE) else {
        return Err(unsupported("(none)"));
    };
    let value = value.to_str().map_err(|_| unsupported("(not ASCII)"))?;
    let essence = value.split(';').next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case("text/plain")
        || essence.eq_ignore_ascii_case("application/json")
    {
        Ok(())
    } else {
        Err(unsupported(&format!("{value:?}")))
    }
}

fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("beacon body is larger than {MAX_BEACON_BYTES} bytes"),
    )
}

/// Reads the body, refusing more than `limit` bytes without buffering them.
async fn read_body(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<web::BytesMut, ApiError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let mut body = web::BytesMut::with_capacity(declared.unwrap_or(1024).min(limit));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::new(StatusCode::BAD_REQUEST, format!("cannot read body: {e}"))
        })?;
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// `POST /v1/beacon`: 204 once the beacon's reports are committed.
async fn post_beacon(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    check_content_type(&req)?;
    let body = read_body(&req, payload, MAX_BEACON_BYTES).await?;
    let reports = ingest::reports(&body, unix_ms()).inspect_err(|e| {
        tracing::debug!(error = %e.message, field = ?e.field, "rejected beacon");
    })?;
    state.store.insert(reports).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// CORS preflight for agents that post with `fetch` and a JSON type.
async fn beacon_preflight() -> HttpResponse {
    HttpResponse::NoContent()
        .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, "POST"))
        .insert_header((header::ACCESS_CONTROL_ALLOW_HEADERS, "content-type"))
        .insert_header((header::ACCESS_CONTROL_MAX_AGE, "86400"))
        .finish()
}

/// `GET /v1/summary[?site=host:port]`.
async fn get_summary(
    query: web::Query<SummaryQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let summary = state.store.summary(query.into_inner()).await?;
    Ok(HttpResponse::Ok().json(summary))
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::json())
        .body(r#"{"status":"ok"}"#)
}
