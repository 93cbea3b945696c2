//! The collector's own counters and the Prometheus text exposition of
//! `GET /metrics`. Atomics only: counting costs a few nanoseconds on the
//! beacon path. Every label has a bounded set of values.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::reason::Reason;
use crate::store::{Inserted, StoreStatus};

/// The routes request latency is reported for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    Beacon,
    Preflight,
    Summary,
    Pages,
    Timeseries,
    Page,
    Export,
    Alerts,
    Metrics,
    Health,
    Other,
}

impl Route {
    pub const ALL: [Route; 11] = [
        Route::Beacon,
        Route::Preflight,
        Route::Summary,
        Route::Pages,
        Route::Timeseries,
        Route::Page,
        Route::Export,
        Route::Alerts,
        Route::Metrics,
        Route::Health,
        Route::Other,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Route::Beacon => "beacon",
            Route::Preflight => "beacon_preflight",
            Route::Summary => "summary",
            Route::Pages => "pages",
            Route::Timeseries => "timeseries",
            Route::Page => "page",
            Route::Export => "export",
            Route::Alerts => "alerts",
            Route::Metrics => "metrics",
            Route::Health => "health",
            Route::Other => "other",
        }
    }

    pub fn of(method: &actix_web::http::Method, path: &str) -> Route {
        match path {
            "/v1/beacon" if method == actix_web::http::Method::OPTIONS => Route::Preflight,
            "/v1/beacon" => Route::Beacon,
            "/v1/summary" | "/v1/sites" => Route::Summary,
            "/v1/pages" => Route::Pages,
            "/v1/timeseries" => Route::Timeseries,
            "/v1/page" | "/v1/fix-first" => Route::Page,
            "/v1/export" => Route::Export,
            "/metrics" => Route::Metrics,
            "/healthz" | "/readyz" => Route::Health,
            p if p.starts_with("/v1/alerts") || p.starts_with("/v1/silences") => Route::Alerts,
            _ => Route::Other,
        }
    }
}

/// Upper bounds of the latency histogram, seconds.
const BUCKETS: [f64; 12] = [
    0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

#[derive(Default)]
struct Histogram {
    /// Non-cumulative counts per bucket; the last one is +Inf.
    counts: [AtomicU64; BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
}

impl Histogram {
    fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = BUCKETS.iter().position(|&b| secs <= b).unwrap_or(BUCKETS.len());
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        self.sum_nanos
            .fetch_add(d.as_nanos().min(u64::MAX as u128) as u64, Ordering::Relaxed);
    }
}

/// One gauge sample of a per-site p75 or count.
#[derive(Clone, Debug, PartialEq)]
pub struct SiteGauge {
    pub site: String,
    pub metric: &'static str,
    pub window: &'static str,
    pub count: u64,
    pub p75: f64,
}

#[derive(Default)]
pub struct Metrics {
    beacons_accepted: AtomicU64,
    reports_new: AtomicU64,
    reports_replaced: AtomicU64,
    reports_deferred: AtomicU64,
    unknown_fields: AtomicU64,
    rejected: [AtomicU64; 32],
    latency: [Histogram; Route::ALL.len()],
}

fn reason_index(r: Reason) -> usize {
    Reason::ALL.iter().position(|&x| x == r).unwrap_or(0)
}

impl Metrics {
    pub fn new() -> Metrics {
        assert!(Reason::ALL.len() <= 32);
        Metrics::default()
    }

    pub fn accepted(&self, inserted: Inserted, unknown_fields: u32) {
        self.beacons_accepted.fetch_add(1, Ordering::Relaxed);
        self.reports_new.fetch_add(inserted.new as u64, Ordering::Relaxed);
        self.reports_replaced
            .fetch_add(inserted.replaced as u64, Ordering::Relaxed);
        if inserted.deferred > 0 {
            self.reports_deferred
                .fetch_add(inserted.deferred as u64, Ordering::Relaxed);
        }
        if unknown_fields > 0 {
            self.unknown_fields.fetch_add(unknown_fields as u64, Ordering::Relaxed);
        }
    }

    pub fn rejected(&self, reason: Reason) {
        self.rejected[reason_index(reason)].fetch_add(1, Ordering::Relaxed);
    }

    pub fn rejected_count(&self, reason: Reason) -> u64 {
        self.rejected[reason_index(reason)].load(Ordering::Relaxed)
    }

    pub fn observe(&self, route: Route, d: Duration) {
        let i = Route::ALL.iter().position(|&r| r == route).unwrap_or(0);
        self.latency[i].observe(d);
    }

    /// The Prometheus text format (version 0.0.4).
    pub fn render(&self, store: &StoreStatus, sites: &[SiteGauge]) -> String {
        let mut out = String::with_capacity(8 * 1024);
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut counter = |name: &str, help: &str, value: u64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}");
        };
        counter(
            "vitalsign_beacons_accepted_total",
            "Beacons stored (committed).",
            load(&self.beacons_accepted),
        );
        counter(
            "vitalsign_reports_stored_total",
            "Metric reports stored under a new id.",
            load(&self.reports_new),
        );
        counter(
            "vitalsign_reports_replaced_total",
            "Metric reports that replaced the value of an id already stored.",
            load(&self.reports_replaced),
        );
        counter(
            "vitalsign_reports_deferred_total",
            "Metric reports received while the store was loading: stored in its intake, then written (deduplicated) once loaded.",
            load(&self.reports_deferred),
        );
        counter(
            "vitalsign_unknown_fields_total",
            "Unknown JSON fields in accepted beacons (ignored).",
            load(&self.unknown_fields),
        );
        let _ = writeln!(
            out,
            "# HELP vitalsign_beacons_rejected_total Beacons not stored, by reason.\n\
             # TYPE vitalsign_beacons_rejected_total counter"
        );
        for &r in Reason::ALL {
            let _ = writeln!(
                out,
                "vitalsign_beacons_rejected_total{{reason=\"{}\"}} {}",
                r.as_str(),
                self.rejected_count(r)
            );
        }
        let _ = writeln!(
            out,
            "# HELP vitalsign_http_request_duration_seconds Time to answer a request (to the first byte of a streamed body).\n\
             # TYPE vitalsign_http_request_duration_seconds histogram"
        );
        for (route, h) in Route::ALL.iter().zip(&self.latency) {
            let route = route.as_str();
            let mut cumulative = 0;
            for (i, count) in h.counts.iter().enumerate() {
                cumulative += load(count);
                let le = BUCKETS.get(i).map_or_else(|| "+Inf".to_string(), |b| b.to_string());
                let _ = writeln!(
                    out,
                    "vitalsign_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{le}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "vitalsign_http_request_duration_seconds_sum{{route=\"{route}\"}} {}\n\
                 vitalsign_http_request_duration_seconds_count{{route=\"{route}\"}} {cumulative}",
                load(&h.sum_nanos) as f64 / 1e9
            );
        }
        let mut gauge = |name: &str, help: &str, value: u64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}");
        };
        gauge(
            "vitalsign_store_size_bytes",
            "Database and WAL size on disk.",
            store.size_bytes,
        );
        gauge(
            "vitalsign_store_queue_depth",
            "Beacons waiting for the database writer.",
            store.queue_depth as u64,
        );
        gauge(
            "vitalsign_store_queue_capacity",
            "Most beacons that may wait for the writer.",
            store.queue_capacity as u64,
        );
        gauge(
            "vitalsign_ready",
            "1 while /readyz says ready: the store has loaded, takes writes, and its queue is not full.",
            store.ready().is_ok() as u64,
        );
        gauge(
            "vitalsign_store_disk_full",
            "1 while writes fail for lack of disk space (beacons get 503 disk_full).",
            store.disk_full.is_some() as u64,
        );
        let _ = writeln!(
            out,
            "# HELP vitalsign_site_p75 Exact nearest-rank p75 per site and metric over a window (all form factors).\n\
             # TYPE vitalsign_site_p75 gauge"
        );
        for g in sites {
            let _ = writeln!(
                out,
                "vitalsign_site_p75{{site=\"{}\",metric=\"{}\",window=\"{}\"}} {}",
                escape(&g.site),
                g.metric,
                g.window,
                g.p75
            );
        }
        let _ = writeln!(
            out,
            "# HELP vitalsign_site_reports Metric reports per site and metric over a window.\n\
             # TYPE vitalsign_site_reports gauge"
        );
        for g in sites {
            let _ = writeln!(
                out,
                "vitalsign_site_reports{{site=\"{}\",metric=\"{}\",window=\"{}\"}} {}",
                escape(&g.site),
                g.metric,
                g.window,
                g.count
            );
        }
        out
    }
}

/// A label value per the exposition format.
fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_histograms_and_gauges() {
        let m = Metrics::new();
        m.accepted(
            Inserted {
                new: 3,
                replaced: 1,
                deferred: 0,
            },
            2,
        );
        m.rejected(Reason::Bot);
        m.rejected(Reason::Bot);
        m.observe(Route::Beacon, Duration::from_micros(700));
        m.observe(Route::Beacon, Duration::from_secs(9));
        let text = m.render(
            &StoreStatus {
                size_bytes: 4096,
                queue_depth: 2,
                queue_capacity: 10,
                accepting: true,
                phase: crate::store::StorePhase::Ready,
                disk_full: None,
            },
            &[SiteGauge {
                site: "a\"b".into(),
                metric: "LCP",
                window: "28d",
                count: 9,
                p75: 1234.5,
            }],
        );
        for line in [
            "vitalsign_beacons_accepted_total 1",
            "vitalsign_reports_stored_total 3",
            "vitalsign_reports_replaced_total 1",
            "vitalsign_unknown_fields_total 2",
            "vitalsign_beacons_rejected_total{reason=\"bot\"} 2",
            "vitalsign_beacons_rejected_total{reason=\"body_too_large\"} 0",
            "vitalsign_http_request_duration_seconds_bucket{route=\"beacon\",le=\"0.0005\"} 0",
            "vitalsign_http_request_duration_seconds_bucket{route=\"beacon\",le=\"0.001\"} 1",
            "vitalsign_http_request_duration_seconds_bucket{route=\"beacon\",le=\"+Inf\"} 2",
            "vitalsign_http_request_duration_seconds_count{route=\"beacon\"} 2",
            "vitalsign_store_queue_depth 2",
            "vitalsign_site_p75{site=\"a\\\"b\",metric=\"LCP\",window=\"28d\"} 1234.5",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
    }
}
