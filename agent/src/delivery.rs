//! How reports leave the page: packing them into bodies under the size
//! limit, the in-flight budget browsers impose on `sendBeacon` and
//! `fetch(keepalive)`, retries with backoff, and a cap on requests.

use alloc::vec::Vec;
use core::ops::Range;

pub use beacon::{MAX_BODY_BYTES, MAX_METRICS_PER_BEACON};
pub const KEEPALIVE_BUDGET_BYTES: usize = 60_000;
pub const KEEPALIVE_BUDGET_REQUESTS: usize = 15;
/// A page view never sends more requests than this.
pub const MAX_REQUESTS_PER_PAGE: u32 = 100;
pub const DEFAULT_FLUSH_INTERVAL_MS: f64 = 10_000.0;
pub const DEFAULT_MAX_QUEUE_BYTES: usize = 16 * 1024;
const BACKOFF_BASE_MS: f64 = 1_000.0;
const BACKOFF_MAX_MS: f64 = 5.0 * 60.0 * 1000.0;

/// Splits items of the given JSON sizes into consecutive runs of at most
/// `max_items` whose body (`envelope` bytes plus the items and the commas
/// between them) stays within `max_body`. An item too large to fit even
/// alone is dropped (returned in the second list), never sent.
pub fn pack(envelope: usize, sizes: &[usize], max_body: usize, max_items: usize) -> (Vec<Range<usize>>, Vec<usize>) {
    let mut runs = Vec::new();
    let mut too_large = Vec::new();
    let mut start = 0;
    let mut body = envelope;
    for (i, &size) in sizes.iter().enumerate() {
        if envelope + size > max_body {
            if start < i {
                runs.push(start..i);
            }
            too_large.push(i);
            start = i + 1;
            body = envelope;
            continue;
        }
        let added = size + usize::from(i > start);
        if body + added > max_body || i - start >= max_items {
            runs.push(start..i);
            start = i;
            body = envelope + size;
        } else {
            body += added;
        }
    }
    if start < sizes.len() {
        runs.push(start..sizes.len());
    }
    (runs, too_large)
}

/// Bytes and requests handed to the browser with `keepalive` and not yet
/// answered.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct KeepaliveBudget {
    pub bytes: usize,
    pub requests: usize,
}

impl KeepaliveBudget {
    pub fn try_reserve(&mut self, bytes: usize) -> bool {
        let fits = self.bytes + bytes <= KEEPALIVE_BUDGET_BYTES && self.requests < KEEPALIVE_BUDGET_REQUESTS;
        if fits {
            self.bytes += bytes;
            self.requests += 1;
        }
        fits
    }

    /// Counts a request the browser already accepted (`sendBeacon`).
    pub fn force_reserve(&mut self, bytes: usize) {
        self.bytes += bytes;
        self.requests += 1;
    }

    pub fn release(&mut self, bytes: usize) {
        self.bytes = self.bytes.saturating_sub(bytes);
        self.requests = self.requests.saturating_sub(1);
    }
}

/// What to do with reports after the collector answered.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Outcome {
    Delivered,
    /// Keep them and try again after this many ms.
    RetryAfter(f64),
    /// The collector will never take them (a 4xx other than 408/429).
    Rejected,
}

/// `status` 0 means the request failed (network, CORS). `retry_after` is the
/// `Retry-After` header, honoured for 429 and 503. `attempt` counts the
/// failures so far (0 for the first).
pub fn outcome(status: u16, retry_after: Option<&str>, now_ms: f64, attempt: u32) -> Outcome {
    match status {
        200..=299 => Outcome::Delivered,
        429 | 503 => Outcome::RetryAfter(
            retry_after
                .and_then(|h| parse_retry_after(h, now_ms))
                .unwrap_or_else(|| backoff_ms(attempt)),
        ),
        0 | 408 | 500..=599 => Outcome::RetryAfter(backoff_ms(attempt)),
        _ => Outcome::Rejected,
    }
}

/// Exponential backoff: 1 s, 2 s, 4 s ... capped at 5 minutes.
pub fn backoff_ms(attempt: u32) -> f64 {
    let mut d = BACKOFF_BASE_MS;
    for _ in 0..attempt.min(20) {
        d *= 2.0;
    }
    d.min(BACKOFF_MAX_MS)
}

/// `Retry-After` as delay-seconds (an HTTP date needs `Date.parse`, done by
/// the caller, which passes it as `@<ms since epoch>`).
pub fn parse_retry_after(header: &str, now_ms: f64) -> Option<f64> {
    let h = header.trim();
    if let Some(at) = h.strip_prefix('@') {
        let at: f64 = parse_decimal(at)?;
        return Some((at - now_ms).clamp(0.0, BACKOFF_MAX_MS));
    }
    parse_decimal(h).map(|s| (s * 1000.0).min(BACKOFF_MAX_MS))
}

fn parse_decimal(s: &str) -> Option<f64> {
    if s.is_empty() || s.len() > 15 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(s.bytes().fold(0.0, |n, b| n * 10.0 + f64::from(b - b'0')))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn everything_fits_in_one_body() {
        assert_eq!(pack(50, &[100, 100, 100], 1000, 256), (vec![0..3], vec![]));
        assert_eq!(pack(50, &[], 1000, 256), (vec![], vec![]));
    }

    #[test]
    fn bodies_are_split_exactly_at_the_limit() {
        // envelope 10 + 40 + 1 + 40 + 1 + 8 = 100: fits exactly.
        assert_eq!(pack(10, &[40, 40, 8], 100, 256), (vec![0..3], vec![]));
        assert_eq!(pack(10, &[40, 40, 9], 100, 256), (vec![0..2, 2..3], vec![]));
        let (runs, _) = pack(200, &[150; 1000], MAX_BODY_BYTES, MAX_METRICS_PER_BEACON);
        for r in &runs {
            let body = 200 + r.len() * 150 + r.len() - 1;
            assert!(body <= MAX_BODY_BYTES, "{body}");
        }
        assert_eq!(runs.iter().map(|r| r.len()).sum::<usize>(), 1000);
        // 60,000 bytes hold 397 items of 150, but a beacon holds 256.
        assert_eq!(runs, vec![0..256, 256..512, 512..768, 768..1000]);
        let (runs, _) = pack(200, &[300; 1000], MAX_BODY_BYTES, MAX_METRICS_PER_BEACON);
        // 200 + 300 + 301 * 197 = 59797; one more would be 60098.
        assert_eq!(runs[0], 0..198);
    }

    #[test]
    fn an_item_too_large_alone_is_dropped_not_sent() {
        assert_eq!(pack(10, &[20, 95, 20], 100, 256), (vec![0..1, 2..3], vec![1]));
    }

    #[test]
    fn bodies_hold_at_most_max_items() {
        let (runs, _) = pack(10, &[5; 600], MAX_BODY_BYTES, MAX_METRICS_PER_BEACON);
        assert_eq!(runs, vec![0..256, 256..512, 512..600]);
    }

    #[test]
    fn keepalive_budget_counts_bytes_and_requests() {
        let mut b = KeepaliveBudget::default();
        assert!(b.try_reserve(59_000));
        assert!(!b.try_reserve(1_001));
        assert!(b.try_reserve(1_000));
        b.release(59_000);
        b.release(1_000);
        assert_eq!(b, KeepaliveBudget::default());
        for _ in 0..KEEPALIVE_BUDGET_REQUESTS {
            assert!(b.try_reserve(1));
        }
        assert!(!b.try_reserve(1), "request cap");
        b.release(1);
        assert!(b.try_reserve(1));
    }

    #[test]
    fn responses_decide_retries() {
        assert_eq!(outcome(204, None, 0.0, 0), Outcome::Delivered);
        assert_eq!(outcome(429, Some("3"), 0.0, 0), Outcome::RetryAfter(3000.0));
        assert_eq!(outcome(503, Some("@5000"), 1000.0, 0), Outcome::RetryAfter(4000.0));
        assert_eq!(outcome(429, Some("soon"), 0.0, 2), Outcome::RetryAfter(4000.0));
        assert_eq!(outcome(500, None, 0.0, 0), Outcome::RetryAfter(1000.0));
        assert_eq!(outcome(0, None, 0.0, 3), Outcome::RetryAfter(8000.0));
        assert_eq!(outcome(408, None, 0.0, 1), Outcome::RetryAfter(2000.0));
        assert_eq!(outcome(400, None, 0.0, 0), Outcome::Rejected);
        assert_eq!(outcome(413, None, 0.0, 0), Outcome::Rejected);
    }

    #[test]
    fn backoff_doubles_up_to_a_cap() {
        assert_eq!(backoff_ms(0), 1000.0);
        assert_eq!(backoff_ms(1), 2000.0);
        assert_eq!(backoff_ms(5), 32000.0);
        assert_eq!(backoff_ms(40), BACKOFF_MAX_MS);
        assert_eq!(parse_retry_after("86400", 0.0), Some(BACKOFF_MAX_MS));
        assert_eq!(parse_retry_after("@100", 5000.0), Some(0.0));
    }
}
