//! What a notification looks like to each kind of receiver, and sending it.
//!
//! - webhook: Alertmanager's webhook payload (version 4), one alert per
//!   request, signed with HMAC-SHA256 in `X-Vitalsign-Signature` when the
//!   receiver has a secret;
//! - slack: an incoming-webhook message (`text` plus an attachment);
//! - alertmanager: `POST {url}/api/v2/alerts` with a one-alert array.
//!
//! Every request carries an `Idempotency-Key` that stays the same across
//! retries and restarts, so receivers can drop duplicates.

use std::collections::BTreeMap;
use std::io::Read;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::outbox::{classify, Attempt};
use super::rule::{Receiver, ReceiverKind};
use crate::time::rfc3339;

/// The header holding a webhook body's signature: `sha256=` and the hex
/// HMAC-SHA256 of the body with the receiver's secret.
pub const SIGNATURE_HEADER: &str = "X-Vitalsign-Signature";
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";
/// Go's zero time, which Alertmanager's webhook payload has as `endsAt`
/// of firing alerts.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Firing,
    Resolved,
}

impl Status {
    pub const fn as_str(self) -> &'static str {
        match self {
            Status::Firing => "firing",
            Status::Resolved => "resolved",
        }
    }
}

/// One alert notification as written to the outbox: everything any
/// receiver's request is rendered from, as of the evaluation that made it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    pub alert_id: i64,
    pub status: Status,
    /// A still-firing alert notified again.
    pub repeat: bool,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub starts_at_ms: i64,
    /// When a resolved alert ended.
    pub ends_at_ms: Option<i64>,
    pub fingerprint: String,
    pub dashboard_url: String,
    /// The collector's public URL.
    pub external_url: String,
    pub value: Option<f64>,
    pub threshold: Option<f64>,
    pub sample_count: u64,
    pub baseline: Option<f64>,
}

/// An HTTP request to make.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

/// `sha256=` + hex HMAC-SHA256 of `body` keyed with `secret`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(body);
    let bytes = mac.finalize().into_bytes();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// The alert object shared by the webhook payload and Alertmanager's API.
fn alert_json(n: &Notification, ends_at: String) -> serde_json::Value {
    json!({
        "status": n.status.as_str(),
        "labels": n.labels,
        "annotations": n.annotations,
        "startsAt": rfc3339(n.starts_at_ms),
        "endsAt": ends_at,
        "generatorURL": n.dashboard_url,
        "fingerprint": n.fingerprint,
    })
}

/// Webhook body: Alertmanager's webhook payload, version 4, with the
/// evidence as numbers next to the usual alert fields.
pub fn webhook_body(receiver: &str, n: &Notification) -> serde_json::Value {
    let ends_at = n.ends_at_ms.map_or_else(|| ZERO_TIME.to_string(), rfc3339);
    let mut alert = alert_json(n, ends_at);
    let extra = alert.as_object_mut().expect("an object");
    extra.insert("value".into(), json!(n.value));
    extra.insert("threshold".into(), json!(n.threshold));
    extra.insert("sampleCount".into(), json!(n.sample_count));
    extra.insert("dashboardURL".into(), json!(n.dashboard_url));
    if n.baseline.is_some() {
        extra.insert("baseline".into(), json!(n.baseline));
    }
    let alertname = n.labels.get("alertname").cloned().unwrap_or_default();
    json!({
        "version": "4",
        "groupKey": format!("{{}}:{{alertname=\"{alertname}\", fingerprint=\"{}\"}}", n.fingerprint),
        "truncatedAlerts": 0,
        "status": n.status.as_str(),
        "receiver": receiver,
        "groupLabels": { "alertname": alertname },
        "commonLabels": n.labels,
        "commonAnnotations": n.annotations,
        "externalURL": n.external_url,
        "alerts": [alert],
    })
}

/// Alertmanager API body. A firing alert ends four resend intervals from
/// now unless re-sent (the engine re-sends every interval), so alerts of a
/// collector that went away expire instead of firing forever.
pub fn alertmanager_body(n: &Notification, resend_interval_ms: i64, now_ms: i64) -> serde_json::Value {
    let ends_at = match n.ends_at_ms {
        Some(ms) => ms,
        None => now_ms + 4 * resend_interval_ms,
    };
    let mut alert = alert_json(n, rfc3339(ends_at));
    let obj = alert.as_object_mut().expect("an object");
    // The v2 API computes these itself and rejects nothing, but keep the
    // body to what it documents.
    obj.remove("status");
    obj.remove("fingerprint");
    json!([alert])
}

/// Slack incoming-webhook message; Mattermost and Rocket.Chat read the same.
pub fn slack_body(n: &Notification) -> serde_json::Value {
    let label = |k: &str| n.labels.get(k).map(String::as_str).unwrap_or("");
    let severity = label("severity");
    let (icon, color) = match (n.status, severity) {
        (Status::Resolved, _) => (":white_check_mark:", "#2eb886"),
        (_, "critical") => (":red_circle:", "#d40e0d"),
        (_, "warning") => (":large_orange_circle:", "#e8a33a"),
        _ => (":large_blue_circle:", "#439fe0"),
    };
    let status = match (n.status, n.repeat) {
        (Status::Resolved, _) => "RESOLVED",
        (Status::Firing, true) => "STILL FIRING",
        (Status::Firing, false) => "FIRING",
    };
    let summary = n.annotations.get("summary").cloned().unwrap_or_default();
    let text = format!(
        "{icon} [{status}] {} ({severity}): {summary} <{}|dashboard>",
        label("alertname"),
        n.dashboard_url
    );
    let mut fields = vec![
        json!({"title": "Site", "value": label("site"), "short": true}),
        json!({"title": "Form factor", "value": label("form_factor"), "short": true}),
    ];
    for (title, key) in [
        ("Value", "value"),
        ("Threshold", "threshold"),
        ("Samples", "sample_count"),
    ] {
        if let Some(v) = n.annotations.get(key) {
            fields.push(json!({"title": title, "value": v, "short": true}));
        }
    }
    json!({
        "text": text,
        "attachments": [{
            "color": color,
            "title": format!("{} {}", label("metric"), label("page")),
            "title_link": n.dashboard_url,
            "text": n.annotations.get("description").cloned().unwrap_or_default(),
            "fields": fields,
            "ts": n.ends_at_ms.unwrap_or(n.starts_at_ms) / 1000,
        }],
    })
}

/// The request delivering `n` to `receiver`.
pub fn request(receiver: &Receiver, n: &Notification, idempotency_key: &str, now_ms: i64) -> Request {
    let mut headers = vec![
        ("Content-Type", "application/json".to_string()),
        (IDEMPOTENCY_HEADER, idempotency_key.to_string()),
    ];
    let (url, body) = match &receiver.kind {
        ReceiverKind::Webhook { url, secret } => {
            let body = webhook_body(&receiver.name, n).to_string();
            if let Some(secret) = secret {
                headers.push((SIGNATURE_HEADER, signature(secret, body.as_bytes())));
            }
            (url.clone(), body)
        }
        ReceiverKind::Slack { url } => (url.clone(), slack_body(n).to_string()),
        ReceiverKind::Alertmanager {
            url,
            resend_interval_ms,
        } => (
            format!("{url}/api/v2/alerts"),
            alertmanager_body(n, *resend_interval_ms, now_ms).to_string(),
        ),
    };
    Request { url, headers, body }
}

/// An HTTP client for one receiver.
pub struct Sender {
    agent: ureq::Agent,
}

impl Sender {
    pub fn new(timeout_ms: i64) -> Sender {
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_millis(timeout_ms.max(1) as u64)))
            // Statuses are classified here, not turned into errors.
            .http_status_as_error(false)
            // A redirected POST would lose its body: report the 3xx.
            .max_redirects(0)
            .user_agent(concat!("vitalsign-collector/", env!("CARGO_PKG_VERSION")))
            .build();
        Sender { agent: config.into() }
    }

    /// Makes one attempt.
    pub fn send(&self, req: &Request, now_ms: i64) -> Attempt {
        let mut builder = self.agent.post(&req.url);
        for (name, value) in &req.headers {
            builder = builder.header(*name, value);
        }
        match builder.send(req.body.as_str()) {
            Ok(mut resp) => {
                let status = resp.status().as_u16();
                let retry_after = resp
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                // The start of the body says why a request failed.
                let mut snippet = Vec::new();
                if !(200..300).contains(&status) {
                    let _ = resp.body_mut().as_reader().take(300).read_to_end(&mut snippet);
                }
                let snippet = String::from_utf8_lossy(&snippet).trim().to_string();
                classify(status, retry_after.as_deref(), &snippet, now_ms)
            }
            Err(e) => transport_error(e),
        }
    }
}

/// Timeouts and connection failures are retried; a request that cannot be
/// made at all (bad URL, bad header) is not.
fn transport_error(e: ureq::Error) -> Attempt {
    let error = e.to_string();
    match e {
        ureq::Error::BadUri(_) | ureq::Error::Http(_) | ureq::Error::InvalidProxyUrl | ureq::Error::RedirectFailed => {
            Attempt::Permanent {
                error,
                http_status: None,
            }
        }
        _ => Attempt::Retryable {
            error,
            http_status: None,
            retry_after_ms: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::rule::RetryPolicy;

    pub fn sample(status: Status) -> Notification {
        let labels: BTreeMap<String, String> = [
            ("alertname", "lcp-p75"),
            ("metric", "LCP"),
            ("severity", "critical"),
            ("site", "shop.example"),
            ("page", "https://shop.example/cart"),
            ("form_factor", "all"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let annotations: BTreeMap<String, String> = [
            ("summary", "LCP p75 is 5000 ms"),
            ("value", "5000 ms"),
            ("threshold", "4000 ms"),
            ("sample_count", "250"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        Notification {
            alert_id: 7,
            status,
            repeat: false,
            labels,
            annotations,
            starts_at_ms: 1_714_572_245_123,
            ends_at_ms: (status == Status::Resolved).then_some(1_714_575_845_123),
            fingerprint: "0123456789abcdef".into(),
            dashboard_url: "http://rum.example/?view=page&site=shop.example".into(),
            external_url: "http://rum.example".into(),
            value: Some(5000.0),
            threshold: Some(4000.0),
            sample_count: 250,
            baseline: None,
        }
    }

    fn receiver(kind: ReceiverKind) -> Receiver {
        Receiver {
            name: "ops".into(),
            kind,
            timeout_ms: 1000,
            retry: RetryPolicy::default(),
        }
    }

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn webhook_is_alertmanager_v4_shaped_and_signed() {
        let r = receiver(ReceiverKind::Webhook {
            url: "http://127.0.0.1:1/hook".into(),
            secret: Some("s3cret".into()),
        });
        let req = request(&r, &sample(Status::Firing), "key-1", 0);
        let body: serde_json::Value = serde_json::from_str(&req.body).unwrap();
        assert_eq!(body["version"], "4");
        assert_eq!(body["status"], "firing");
        assert_eq!(body["receiver"], "ops");
        let a = &body["alerts"][0];
        assert_eq!(a["labels"]["page"], "https://shop.example/cart");
        assert_eq!(a["startsAt"], "2024-05-01T14:04:05.123Z");
        assert_eq!(a["endsAt"], ZERO_TIME);
        assert_eq!(a["fingerprint"], "0123456789abcdef");
        assert_eq!(
            (a["value"].as_f64(), a["threshold"].as_f64(), a["sampleCount"].as_u64()),
            (Some(5000.0), Some(4000.0), Some(250))
        );
        assert_eq!(a["generatorURL"], a["dashboardURL"]);
        let header = |name: &str| req.headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.clone());
        assert_eq!(header(SIGNATURE_HEADER), Some(signature("s3cret", req.body.as_bytes())));
        assert_eq!(header(IDEMPOTENCY_HEADER).as_deref(), Some("key-1"));
        let resolved = request(&r, &sample(Status::Resolved), "key-2", 0);
        let body: serde_json::Value = serde_json::from_str(&resolved.body).unwrap();
        assert_eq!(body["alerts"][0]["endsAt"], "2024-05-01T15:04:05.123Z");
        // No secret, no signature.
        let unsigned = receiver(ReceiverKind::Webhook {
            url: "http://x/".into(),
            secret: None,
        });
        assert!(request(&unsigned, &sample(Status::Firing), "k", 0)
            .headers
            .iter()
            .all(|(n, _)| *n != SIGNATURE_HEADER));
    }

    #[test]
    fn alertmanager_alerts_expire_unless_resent() {
        let r = receiver(ReceiverKind::Alertmanager {
            url: "http://127.0.0.1:9093".into(),
            resend_interval_ms: 60_000,
        });
        let req = request(&r, &sample(Status::Firing), "k", 1_714_572_245_123);
        assert_eq!(req.url, "http://127.0.0.1:9093/api/v2/alerts");
        let body: serde_json::Value = serde_json::from_str(&req.body).unwrap();
        assert_eq!(body[0]["endsAt"], "2024-05-01T14:08:05.123Z");
        assert_eq!(body[0]["labels"]["alertname"], "lcp-p75");
        assert!(body[0].get("status").is_none());
        let req = request(&r, &sample(Status::Resolved), "k", 1_714_579_999_999);
        let body: serde_json::Value = serde_json::from_str(&req.body).unwrap();
        assert_eq!(body[0]["endsAt"], "2024-05-01T15:04:05.123Z");
    }

    #[test]
    fn slack_message() {
        let r = receiver(ReceiverKind::Slack {
            url: "https://hooks.slack.com/services/x".into(),
        });
        let body: serde_json::Value = serde_json::from_str(&request(&r, &sample(Status::Firing), "k", 0).body).unwrap();
        let text = body["text"].as_str().unwrap();
        assert!(
            text.contains("[FIRING] lcp-p75 (critical)") && text.contains("|dashboard>"),
            "{text}"
        );
        assert_eq!(
            body["attachments"][0]["title_link"],
            "http://rum.example/?view=page&site=shop.example"
        );
        let body = slack_body(&sample(Status::Resolved));
        assert!(body["text"].as_str().unwrap().contains("[RESOLVED]"));
    }
}
