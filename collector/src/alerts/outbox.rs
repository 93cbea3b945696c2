//! Delivering the outbox: every notification is written to `alert_outbox`
//! (with the state change that caused it, in one transaction) before any
//! attempt; a thread per receiver sends what is due, retrying timeouts,
//! connection failures, 5xx, 408 and 429 with exponential backoff and jitter
//! (or after `Retry-After` when the receiver sends one), giving up at once
//! on other statuses, and dead-lettering what is still undelivered after
//! the receiver's attempt budget. What was pending when the collector
//! stopped is sent after it starts again, with the same `Idempotency-Key`.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use super::receivers::{self, Notification, Sender};
use super::rule::{Receiver, RetryPolicy};
use super::store::{AlertStore, AttemptRecord};
use crate::time::{days_from_civil, now_ms};

/// A `Retry-After` longer than this is cut to it: a receiver's typo must
/// not park notifications for days.
pub const MAX_RETRY_AFTER_MS: i64 = 3_600_000;

/// How one delivery attempt went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attempt {
    Delivered {
        http_status: u16,
    },
    /// Worth trying again.
    Retryable {
        error: String,
        http_status: Option<u16>,
        retry_after_ms: Option<i64>,
    },
    /// Would fail again the same way.
    Permanent {
        error: String,
        http_status: Option<u16>,
    },
}

/// Classifies a response: 2xx delivered; 408, 429 and 5xx retried (after
/// `Retry-After` if given); anything else permanent.
pub fn classify(status: u16, retry_after: Option<&str>, body: &str, now_ms: i64) -> Attempt {
    let error = if body.is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status}: {body}")
    };
    match status {
        200..=299 => Attempt::Delivered { http_status: status },
        408 | 429 | 500..=599 => Attempt::Retryable {
            error,
            http_status: Some(status),
            retry_after_ms: retry_after.and_then(|v| parse_retry_after(v, now_ms)),
        },
        _ => Attempt::Permanent {
            error,
            http_status: Some(status),
        },
    }
}

/// `Retry-After` as a delay in milliseconds: delta-seconds (`120`) or an
/// HTTP date (`Wed, 21 Oct 2015 07:28:00 GMT`); a date past is no delay.
pub fn parse_retry_after(value: &str, now_ms: i64) -> Option<i64> {
    let v = value.trim();
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        return v.parse::<i64>().ok().map(|s| s.saturating_mul(1000));
    }
    parse_http_date(v).map(|at| (at - now_ms).max(0))
}

/// IMF-fixdate, the one HTTP date format senders must use:
/// `Sun, 06 Nov 1994 08:49:37 GMT`.
fn parse_http_date(v: &str) -> Option<i64> {
    let parts: Vec<&str> = v.split_ascii_whitespace().collect();
    let [_weekday, day, month, year, time, "GMT"] = parts[..] else {
        return None;
    };
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| *m == month)? as u32
        + 1;
    let day: u32 = day.parse().ok()?;
    let year: i64 = year.parse().ok()?;
    let hms: Vec<i64> = time.split(':').map(|p| p.parse().ok()).collect::<Option<_>>()?;
    let [h, m, s] = hms[..] else {
        return None;
    };
    if !(1..=31).contains(&day) || !(0..24).contains(&h) || !(0..60).contains(&m) || !(0..=60).contains(&s) {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400_000 + (h * 3600 + m * 60 + s) * 1000)
}

/// The wait before retry number `failed` (1 after the first failure):
/// `initial · 2^(failed-1)`, at most `max`, with "equal jitter" — half of
/// it fixed, half random (`unit` in `[0, 1)`) — so receivers coming back
/// are not hit by every retry at once, yet never retried sooner than half
/// the backoff.
pub fn backoff_ms(policy: &RetryPolicy, failed: u32, unit: f64) -> i64 {
    let exp = failed.saturating_sub(1).min(40);
    let full = policy
        .initial_backoff_ms
        .saturating_mul(1i64 << exp)
        .min(policy.max_backoff_ms);
    let half = full / 2;
    half + ((full - half) as f64 * unit.clamp(0.0, 1.0)) as i64
}

/// After a retryable failure: when to try again, or `None` (dead letter)
/// when the attempts made used up the budget.
pub fn next_attempt_ms(
    policy: &RetryPolicy,
    attempts_made: u32,
    retry_after_ms: Option<i64>,
    unit: f64,
    now_ms: i64,
) -> Option<i64> {
    if attempts_made >= policy.max_attempts {
        return None;
    }
    let wait = match retry_after_ms {
        Some(ms) => ms.clamp(0, MAX_RETRY_AFTER_MS),
        None => backoff_ms(policy, attempts_made, unit),
    };
    Some(now_ms + wait)
}

/// Wakes a sleeping thread early: for new work, or to stop.
#[derive(Default)]
pub struct Signal {
    /// (generation, stopping)
    state: Mutex<(u64, bool)>,
    cv: Condvar,
}

impl Signal {
    pub fn notify(&self) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.0 += 1;
        self.cv.notify_all();
    }

    pub fn stop(&self) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.1 = true;
        self.cv.notify_all();
    }

    pub fn stopping(&self) -> bool {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).1
    }

    pub fn generation(&self) -> u64 {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).0
    }

    /// Sleeps up to `timeout`, less if notified after generation `seen` or
    /// stopped.
    pub fn wait(&self, seen: u64, timeout: Duration) {
        let s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let _ = self.cv.wait_timeout_while(s, timeout, |s| s.0 == seen && !s.1);
    }
}

/// xorshift64*: jitter needs spread, not secrecy.
struct Jitter(u64);

impl Jitter {
    fn new(salt: &str) -> Jitter {
        let mut seed = now_ms() as u64 ^ 0x9E37_79B9_7F4A_7C15;
        for b in salt.bytes() {
            seed = (seed ^ b as u64).wrapping_mul(0x100_0000_01B3);
        }
        Jitter(seed.max(1))
    }

    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Whether this collector may deliver, and which notifications: with
/// alert state shared among collectors, only the lease holder delivers,
/// and only notifications that a saved snapshot holds (so that the next
/// holder has them if this one dies). Alone, it always delivers all.
#[derive(Debug)]
pub struct Gate {
    open: AtomicBool,
    /// The highest outbox id that may be sent.
    upto: AtomicI64,
}

impl Default for Gate {
    fn default() -> Gate {
        Gate::always()
    }
}

impl Gate {
    pub fn always() -> Gate {
        Gate {
            open: AtomicBool::new(true),
            upto: AtomicI64::new(i64::MAX),
        }
    }

    /// Closed: nothing is sent until [`Gate::open_upto`].
    pub fn closed() -> Gate {
        Gate {
            open: AtomicBool::new(false),
            upto: AtomicI64::new(0),
        }
    }

    pub fn open_upto(&self, id: i64) {
        self.upto.store(id, Ordering::SeqCst);
        self.open.store(true, Ordering::SeqCst);
    }

    pub fn close(&self) {
        self.open.store(false, Ordering::SeqCst);
    }

    pub fn is_open(&self) -> bool {
        self.open.load(Ordering::SeqCst)
    }

    pub fn allows(&self, id: i64) -> bool {
        self.is_open() && id <= self.upto.load(Ordering::SeqCst)
    }
}

/// Longest sleep without work: a lost wake-up costs at most this.
const IDLE_WAIT: Duration = Duration::from_secs(5);

/// How long a worker waits for its [`Gate`] before looking again.
const GATE_WAIT: Duration = Duration::from_millis(500);

/// Sends one receiver's due notifications until `signal` stops, those its
/// `gate` lets through. Runs on a
/// thread of its own: sending blocks up to the receiver's timeout.
pub fn run_worker(receiver: Receiver, store: Arc<AlertStore>, signal: Arc<Signal>, gate: Arc<Gate>) {
    let sender = Sender::new(receiver.timeout_ms);
    let mut jitter = Jitter::new(&receiver.name);
    while !signal.stopping() {
        let seen = signal.generation();
        if !gate.is_open() {
            signal.wait(seen, GATE_WAIT);
            continue;
        }
        let now = now_ms();
        let mut due = match store.due(&receiver.name, now, 32) {
            Ok(due) => due,
            Err(e) => {
                tracing::error!(receiver = %receiver.name, error = %e, "reading the alert outbox failed");
                signal.wait(seen, IDLE_WAIT);
                continue;
            }
        };
        let found = due.len();
        due.retain(|item| gate.allows(item.id));
        if due.is_empty() && found > 0 {
            // Not in a saved snapshot yet: the evaluator signals once it is.
            signal.wait(seen, GATE_WAIT);
            continue;
        }
        if due.is_empty() {
            let wait = match store.next_due_ms(&receiver.name) {
                Ok(Some(at)) => Duration::from_millis((at - now).clamp(1, IDLE_WAIT.as_millis() as i64) as u64),
                _ => IDLE_WAIT,
            };
            signal.wait(seen, wait);
            continue;
        }
        for item in due {
            if signal.stopping() || !gate.allows(item.id) {
                break;
            }
            let attempts = item.attempts + 1;
            let now = now_ms();
            let attempt = match serde_json::from_str::<Notification>(&item.notification) {
                Ok(n) => {
                    let req = receivers::request(&receiver, &n, &item.idempotency_key, now);
                    sender.send(&req, now)
                }
                Err(e) => Attempt::Permanent {
                    error: format!("stored notification is unreadable: {e}"),
                    http_status: None,
                },
            };
            let now = now_ms();
            let record = match &attempt {
                Attempt::Delivered { http_status } => {
                    tracing::info!(receiver = %receiver.name, key = %item.idempotency_key, attempts,
                        "alert notification delivered");
                    AttemptRecord::Sent {
                        http_status: *http_status,
                    }
                }
                Attempt::Retryable {
                    error,
                    http_status,
                    retry_after_ms,
                } => match next_attempt_ms(&receiver.retry, attempts, *retry_after_ms, jitter.unit(), now) {
                    Some(at) => {
                        tracing::warn!(receiver = %receiver.name, key = %item.idempotency_key, attempts,
                            error = %error, retry_in_ms = at - now, "alert notification failed, will retry");
                        AttemptRecord::Retry {
                            next_attempt_ms: at,
                            error,
                            http_status: *http_status,
                        }
                    }
                    None => dead(&receiver, &item.idempotency_key, attempts, error, *http_status),
                },
                Attempt::Permanent { error, http_status } => {
                    dead(&receiver, &item.idempotency_key, attempts, error, *http_status)
                }
            };
            if let Err(e) = store.record_attempt(item.id, attempts, record, now) {
                tracing::error!(receiver = %receiver.name, error = %e, "recording a delivery attempt failed");
            }
        }
    }
}

fn dead<'a>(
    receiver: &Receiver,
    key: &str,
    attempts: u32,
    error: &'a str,
    http_status: Option<u16>,
) -> AttemptRecord<'a> {
    tracing::error!(receiver = %receiver.name, key, attempts, error,
        "alert notification dead-lettered");
    AttemptRecord::Dead { error, http_status }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_445_412_480_000; // Wed, 21 Oct 2015 07:28:00 GMT

    #[test]
    fn statuses() {
        assert_eq!(classify(200, None, "", NOW), Attempt::Delivered { http_status: 200 });
        assert_eq!(classify(204, None, "", NOW), Attempt::Delivered { http_status: 204 });
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(matches!(classify(s, None, "", NOW), Attempt::Retryable { .. }), "{s}");
        }
        for s in [301, 400, 401, 403, 404, 410, 413, 422] {
            assert!(matches!(classify(s, None, "", NOW), Attempt::Permanent { .. }), "{s}");
        }
        assert_eq!(
            classify(429, Some("7"), "slow down", NOW),
            Attempt::Retryable {
                error: "HTTP 429: slow down".into(),
                http_status: Some(429),
                retry_after_ms: Some(7000)
            }
        );
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("120", NOW), Some(120_000));
        assert_eq!(parse_retry_after(" 0 ", NOW), Some(0));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", NOW), Some(30_000));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", NOW), Some(0));
        for bad in [
            "",
            "-1",
            "1.5",
            "soon",
            "Wed, 21 Oct 2015 07:28:30 CEST",
            "Wed, 32 Oct 2015 07:28:30 GMT",
        ] {
            assert_eq!(parse_retry_after(bad, NOW), None, "{bad:?}");
        }
    }

    #[test]
    fn backoff_doubles_with_jitter_and_a_cap() {
        let p = RetryPolicy {
            max_attempts: 5,
            initial_backoff_ms: 1000,
            max_backoff_ms: 6000,
        };
        assert_eq!(backoff_ms(&p, 1, 0.0), 500);
        assert_eq!(backoff_ms(&p, 1, 0.999_999), 999);
        assert_eq!(backoff_ms(&p, 2, 0.0), 1000);
        assert_eq!(backoff_ms(&p, 3, 0.5), 3000);
        assert_eq!(backoff_ms(&p, 4, 0.0), 3000, "capped at 6000");
        assert_eq!(backoff_ms(&p, 60, 0.0), 3000);
        for failed in 1..5 {
            let b = backoff_ms(&p, failed, 0.5);
            let full = (1000i64 << (failed - 1)).min(6000);
            assert!(b >= full / 2 && b <= full);
        }
        // Retry-After wins over the backoff, within limits.
        assert_eq!(next_attempt_ms(&p, 1, Some(10_000), 0.0, 0), Some(10_000));
        assert_eq!(next_attempt_ms(&p, 1, Some(i64::MAX), 0.0, 0), Some(MAX_RETRY_AFTER_MS));
        assert_eq!(next_attempt_ms(&p, 1, None, 0.0, 100), Some(600));
        // The fifth attempt failed: dead letter.
        assert_eq!(next_attempt_ms(&p, 5, None, 0.0, 0), None);
    }

    #[test]
    fn the_gate_lets_through_what_a_saved_snapshot_holds() {
        assert!(Gate::always().allows(i64::MAX));
        let g = Gate::closed();
        assert!(!g.is_open() && !g.allows(0));
        g.open_upto(5);
        assert!(g.allows(5) && !g.allows(6));
        g.open_upto(9);
        assert!(g.allows(6));
        g.close();
        assert!(!g.allows(1));
    }

    #[test]
    fn signal_wakes_waiters() {
        let s = Arc::new(Signal::default());
        let seen = s.generation();
        let t = {
            let s = s.clone();
            std::thread::spawn(move || {
                let start = std::time::Instant::now();
                s.wait(seen, Duration::from_secs(30));
                start.elapsed()
            })
        };
        std::thread::sleep(Duration::from_millis(20));
        s.notify();
        assert!(t.join().unwrap() < Duration::from_secs(10));
        s.stop();
        assert!(s.stopping());
        s.wait(s.generation(), Duration::from_secs(30)); // returns at once
    }
}
