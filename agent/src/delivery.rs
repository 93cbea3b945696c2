//! How reports leave the page: packing them into bodies under the size
//! limit, the in-flight budget browsers impose on `sendBeacon` and
//! `fetch(keepalive)`, retries with backoff, and a cap on requests.

#[cfg(test)]
use alloc::vec::Vec;
#[cfg(test)]
use core::ops::Range;

pub use beacon::{MAX_BODY_BYTES, MAX_METRICS_PER_BEACON};
pub const KEEPALIVE_BUDGET_BYTES: usize = 60_000;
pub const KEEPALIVE_BUDGET_REQUESTS: usize = 15;
/// A page view never sends more requests than this.
pub const MAX_REQUESTS_PER_PAGE: u32 = 100;
/// A queue this large (in rough JSON bytes, see [`QueueSize`]) is sent at once.
pub const DEFAULT_MAX_QUEUE_BYTES: usize = 16 * 1024;
/// Time between sends while the page is visible.
pub const DEFAULT_FLUSH_INTERVAL_MS: u32 = 10_000;
pub const DEFAULT_ENDPOINT: &str = "/v1/beacon";
pub const DEFAULT_SAMPLE_RATE: f64 = 1.0;
const BACKOFF_BASE_MS: f64 = 1_000.0;
const BACKOFF_MAX_MS: f64 = 5.0 * 60.0 * 1000.0;

/// Where [`Packer::add`] puts the next item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// Appended to the current body.
    Join = 0,
    /// The current body is full: close it and start a new one with this item.
    Start = 1,
    /// Too large even alone: close the current body and drop this item.
    Drop = 2,
}

/// Splits items (metric JSON of the given sizes) into consecutive bodies of
/// at most `max_items` whose size (`envelope` bytes plus the items and the
/// commas between them) stays within `max_body`.
#[derive(Clone, Copy, Debug)]
pub struct Packer {
    envelope: usize,
    max_body: usize,
    max_items: usize,
    body: usize,
    items: usize,
}

impl Packer {
    pub fn new(envelope: usize, max_body: usize, max_items: usize) -> Packer {
        Packer {
            envelope,
            max_body,
            max_items,
            body: envelope,
            items: 0,
        }
    }

    pub fn add(&mut self, size: usize) -> Placement {
        if self.envelope + size > self.max_body {
            self.body = self.envelope;
            self.items = 0;
            return Placement::Drop;
        }
        let added = size + usize::from(self.items > 0);
        if self.body + added > self.max_body || self.items >= self.max_items {
            self.body = self.envelope + size;
            self.items = 1;
            Placement::Start
        } else {
            self.body += added;
            self.items += 1;
            Placement::Join
        }
    }
}

/// [`Packer`] over a whole list: the runs of item indices, and the items
/// dropped as too large to send even alone.
#[cfg(test)]
pub fn pack(envelope: usize, sizes: &[usize], max_body: usize, max_items: usize) -> (Vec<Range<usize>>, Vec<usize>) {
    let mut packer = Packer::new(envelope, max_body, max_items);
    let mut runs = Vec::new();
    let mut too_large = Vec::new();
    let mut start = 0;
    for (i, &size) in sizes.iter().enumerate() {
        let placement = packer.add(size);
        if placement != Placement::Join && start < i {
            runs.push(start..i);
        }
        match placement {
            Placement::Join => {}
            Placement::Start => start = i,
            Placement::Drop => {
                too_large.push(i);
                start = i + 1;
            }
        }
    }
    if start < sizes.len() {
        runs.push(start..sizes.len());
    }
    (runs, too_large)
}

/// Decides when the queue is large enough to flush before the timer: a
/// rough JSON size per report (exact sizes are measured when packing).
#[derive(Clone, Copy, Debug, Default)]
pub struct QueueSize {
    pub bytes: usize,
    pub max: usize,
}

impl QueueSize {
    /// Bytes a queued report is counted for, besides its id.
    pub const PER_REPORT: usize = 120;

    /// Counts a queued report (`replaced`: it took the place of an earlier
    /// report of the same metric instance, so the queue did not grow);
    /// whether the queue should be flushed now.
    pub fn add(&mut self, id_len: usize, replaced: bool) -> bool {
        if !replaced {
            self.bytes += Self::PER_REPORT + id_len;
        }
        self.bytes >= self.max
    }
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

/// `status` 0 means the request failed (network, CORS). `retry_after_ms`
/// is the `Retry-After` header as a delay (see [`parse_retry_after`]),
/// honoured for 429 and 503. `attempt` counts the failures so far (0 for
/// the first).
pub fn outcome(status: u16, retry_after_ms: Option<f64>, attempt: u32) -> Outcome {
    match status {
        200..=299 => Outcome::Delivered,
        429 | 503 => Outcome::RetryAfter(retry_after_ms.unwrap_or_else(|| backoff_ms(attempt))),
        0 | 408 | 500..=599 => Outcome::RetryAfter(backoff_ms(attempt)),
        _ => Outcome::Rejected,
    }
}

/// The retry state of a page view: failures in a row, and when sending is
/// due again.
#[derive(Clone, Copy, Debug, Default)]
pub struct Retries {
    failures: u32,
    retry_at: f64,
}

impl Retries {
    /// Whether bodies waiting for a retry may be sent at `now`.
    pub fn due(&self, now: f64) -> bool {
        now >= self.retry_at
    }

    /// After the collector answered `status` (0: the request failed), with
    /// `retry_after` from [`parse_retry_after`]: the delay before the body
    /// is sent again, or `None` to forget it.
    pub fn answered(&mut self, status: u16, retry_after: Option<f64>, now: f64) -> Option<f64> {
        match outcome(status, retry_after, self.failures) {
            Outcome::Delivered => {
                self.failures = 0;
                None
            }
            Outcome::Rejected => None,
            Outcome::RetryAfter(ms) => {
                self.failures += 1;
                self.retry_at = self.retry_at.max(now + ms);
                Some(ms)
            }
        }
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

/// `Retry-After` as a delay in ms, capped at 5 minutes: delay-seconds, or
/// an HTTP date, which the browser parses (`Date.parse(header)`, NaN when
/// it is not one) into `date_ms`.
pub fn parse_retry_after(header: &str, date_ms: f64, now_ms: f64) -> Option<f64> {
    if let Some(s) = parse_decimal(header.trim_matches(' ')) {
        Some((s * 1000.0).min(BACKOFF_MAX_MS))
    } else if !date_ms.is_nan() {
        Some((date_ms - now_ms).clamp(0.0, BACKOFF_MAX_MS))
    } else {
        None
    }
}

fn parse_decimal(s: &str) -> Option<f64> {
    if s.is_empty() || s.len() > 15 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(s.bytes().fold(0.0, |n, b| n * 10.0 + f64::from(b - b'0')))
}

#[cfg(test)]
#[allow(clippy::single_range_in_vec_init)] // runs of one body
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
        let ra = |h: &str, date: f64, now: f64| parse_retry_after(h, date, now);
        assert_eq!(outcome(204, None, 0), Outcome::Delivered);
        assert_eq!(outcome(429, ra("3", f64::NAN, 0.0), 0), Outcome::RetryAfter(3000.0));
        assert_eq!(outcome(429, ra(" 3 ", f64::NAN, 0.0), 0), Outcome::RetryAfter(3000.0));
        assert_eq!(
            outcome(503, ra("Thu, 01 Jan 1970 00:00:05 GMT", 5000.0, 1000.0), 0),
            Outcome::RetryAfter(4000.0)
        );
        assert_eq!(outcome(429, ra("soon", f64::NAN, 0.0), 2), Outcome::RetryAfter(4000.0));
        assert_eq!(
            outcome(503, ra("3", 0.0, 0.0), 5),
            Outcome::RetryAfter(3000.0),
            "not a date"
        );
        assert_eq!(
            outcome(500, ra("3", f64::NAN, 0.0), 0),
            Outcome::RetryAfter(1000.0),
            "only 429/503"
        );
        assert_eq!(outcome(0, None, 3), Outcome::RetryAfter(8000.0));
        assert_eq!(outcome(408, None, 1), Outcome::RetryAfter(2000.0));
        assert_eq!(outcome(400, None, 0), Outcome::Rejected);
        assert_eq!(outcome(413, None, 0), Outcome::Rejected);
    }

    #[test]
    fn answers_decide_retries_and_when_they_are_due() {
        let mut r = Retries::default();
        assert_eq!(r.answered(204, None, 0.0), None);
        let ra = parse_retry_after("3", f64::NAN, 1_000.0);
        assert_eq!(r.answered(429, ra, 1_000.0), Some(3_000.0));
        assert!(!r.due(3_999.0) && r.due(4_000.0));
        let ra = parse_retry_after("Wed, 21 Oct 2026 07:28:00 GMT", 11_000.0, 1_000.0);
        assert_eq!(r.answered(503, ra, 1_000.0), Some(10_000.0), "an HTTP date");
        assert!(!r.due(10_999.0) && r.due(11_000.0), "the later of two retry times");
        assert_eq!(r.answered(500, None, 0.0), Some(4_000.0), "backoff after two failures");
        assert_eq!(r.answered(400, None, 0.0), None, "rejected: dropped");
        assert_eq!(r.answered(204, None, 0.0), None);
        assert_eq!(r.answered(0, None, 0.0), Some(1_000.0), "a success resets the backoff");
    }

    #[test]
    fn queue_size_grows_with_new_instances_only() {
        let mut q = QueueSize { bytes: 0, max: 1000 };
        for _ in 0..100 {
            assert!(!q.add(30, true), "a growing CLS replaces its own report");
        }
        assert_eq!(q.bytes, 0);
        let flushes = (0..10).filter(|_| q.add(30, false)).count();
        assert_eq!((q.bytes, flushes), (1500, 4), "full from the 7th new report on");
    }

    #[test]
    fn backoff_doubles_up_to_a_cap() {
        assert_eq!(backoff_ms(0), 1000.0);
        assert_eq!(backoff_ms(1), 2000.0);
        assert_eq!(backoff_ms(5), 32000.0);
        assert_eq!(backoff_ms(40), BACKOFF_MAX_MS);
        assert_eq!(parse_retry_after("86400", f64::NAN, 0.0), Some(BACKOFF_MAX_MS));
        assert_eq!(parse_retry_after("a date in the past", 100.0, 5000.0), Some(0.0));
    }
}
