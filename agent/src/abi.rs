//! The wasm's whole interface: plain functions of numbers that the browser
//! glue (`npm/src/agent.js`) calls with what the browser reports, and that
//! answer with the decisions of the crate's modules. The wasm imports
//! nothing and never calls into JavaScript, so it cannot re-enter itself.
//!
//! Strings cross through two scratch buffers: the glue writes UTF-8 at
//! [`vs_alloc`] and pushes it as an argument with [`vs_arg`]; functions that
//! return a string write it at [`vs_out`] and return its length. Metric
//! state lives in handles (indices) the glue keeps, one per metric instance.
//!
//! Codes: metric names, ratings, navigation types and form factors are
//! indices into `beacon`'s `ALL` arrays, which the glue mirrors.

use alloc::string::String;
use alloc::vec::Vec;

use beacon::{FormFactor, MetricName, NavigationType};
#[cfg(target_arch = "wasm32")]
use beacon::{Rating, SCHEMA_VERSION};

use crate::cls::{Cls, Shift};
use crate::delivery::{self, KeepaliveBudget, Outcome, Packer, QueueSize};
use crate::inp::{InteractionCountEstimate, LongestInteractions, Selected};
use crate::navigation::{navigation_type, PageState};
use crate::report::Reporter;
use crate::session::{self, Session};

/// One INP instance: the longest interactions, their entries as slots the
/// glue maps to `PerformanceEventTiming` objects, and the selected one.
#[derive(Default)]
pub struct Inp {
    longest: LongestInteractions<u32>,
    selected: Vec<u32>,
}

/// Everything the agent remembers between calls.
pub struct Agent {
    input: Vec<u8>,
    args: Vec<String>,
    out: Vec<u8>,
    reporters: Vec<Reporter>,
    cls: Vec<Cls>,
    inp: Vec<Inp>,
    estimate: InteractionCountEstimate,
    session: Option<Session>,
    queue: QueueSize,
    packer: Option<Packer>,
    keepalive: KeepaliveBudget,
    requests: u32,
    failures: u32,
    retry_at: f64,
}

impl Default for Agent {
    fn default() -> Self {
        Self::new()
    }
}

fn metric(code: u32) -> MetricName {
    MetricName::ALL.get(code as usize).copied().unwrap_or(MetricName::Fcp)
}

fn nav(code: u32) -> NavigationType {
    NavigationType::ALL
        .get(code as usize)
        .copied()
        .unwrap_or(NavigationType::Navigate)
}

fn code<T: PartialEq>(all: &[T], v: T) -> u32 {
    all.iter().position(|x| *x == v).unwrap_or(0) as u32
}

impl Agent {
    /// `const`, so that the wasm's global starts initialised in its data
    /// instead of by code.
    pub const fn new() -> Agent {
        Agent {
            input: Vec::new(),
            args: Vec::new(),
            out: Vec::new(),
            reporters: Vec::new(),
            cls: Vec::new(),
            inp: Vec::new(),
            estimate: InteractionCountEstimate::new(),
            session: None,
            queue: QueueSize {
                bytes: 0,
                max: delivery::DEFAULT_MAX_QUEUE_BYTES,
            },
            packer: None,
            keepalive: KeepaliveBudget { bytes: 0, requests: 0 },
            requests: 0,
            failures: 0,
            retry_at: 0.0,
        }
    }

    fn take_args(&mut self) -> Vec<String> {
        core::mem::take(&mut self.args)
    }

    fn put(&mut self, s: &str) -> u32 {
        self.out.clear();
        self.out.extend_from_slice(s.as_bytes());
        s.len() as u32
    }

    pub fn alloc(&mut self, len: usize) -> *mut u8 {
        self.input.clear();
        self.input.resize(len, 0);
        self.input.as_mut_ptr()
    }

    /// Pushes the first `len` bytes written at [`Agent::alloc`] as an
    /// argument.
    ///
    /// # Safety
    /// Those bytes must be UTF-8 (the glue writes only `TextEncoder` output;
    /// validating it again would cost a kilobyte of wasm).
    pub unsafe fn arg(&mut self, len: usize) {
        let bytes = self.input.get(..len).unwrap_or_default().to_vec();
        // SAFETY: the caller's promise.
        self.args.push(unsafe { String::from_utf8_unchecked(bytes) });
    }

    pub fn out(&self) -> &[u8] {
        &self.out
    }

    pub fn reporter(&mut self, name: u32, report_all_changes: bool) -> u32 {
        self.reporters.push(Reporter::new(metric(name), report_all_changes));
        self.reporters.len() as u32 - 1
    }

    /// The delta to report, or NaN when nothing is reported.
    pub fn report(&mut self, h: u32, value: f64, force: bool) -> f64 {
        self.reporters
            .get_mut(h as usize)
            .and_then(|r| r.report(value, force))
            .map_or(f64::NAN, |r| r.delta)
    }

    pub fn cls(&mut self) -> u32 {
        self.cls.push(Cls::default());
        self.cls.len() as u32 - 1
    }

    /// 0: ignored, 1: joined the window, 2: opened a new window.
    pub fn cls_add(&mut self, h: u32, start: f64, value: f64, recent_input: bool) -> u32 {
        match self.cls.get_mut(h as usize).map(|c| c.add(start, value, recent_input)) {
            Some(Shift::Joined) => 1,
            Some(Shift::NewWindow) => 2,
            _ => 0,
        }
    }

    /// The new CLS when the current window became the largest, else -1.
    pub fn cls_update(&mut self, h: u32) -> f64 {
        let grown = |c: &mut Cls| if c.update() { c.value } else { -1.0 };
        self.cls.get_mut(h as usize).map_or(-1.0, grown)
    }

    pub fn inp(&mut self) -> u32 {
        self.inp.push(Inp::default());
        self.inp.len() as u32 - 1
    }

    pub fn inp_add(&mut self, h: u32, interaction_id: f64, duration: f64, start: f64, slot: u32) {
        if let Some(i) = self.inp.get_mut(h as usize) {
            i.longest.add(interaction_id as u64, duration, start, slot);
        }
    }

    /// INP's latency now (-1 while there is none); its entries' slots are
    /// then read with [`Agent::inp_entry`].
    pub fn inp_select(&mut self, h: u32, interaction_count: f64, nav_code: u32) -> f64 {
        let Some(i) = self.inp.get_mut(h as usize) else {
            return -1.0;
        };
        i.selected.clear();
        match i.longest.select(interaction_count, nav(nav_code)) {
            Some(Selected::Interaction(x)) => {
                i.selected.extend_from_slice(&x.entries);
                x.latency
            }
            Some(Selected::Floor) => 8.0,
            None => -1.0,
        }
    }

    /// The `n`th entry slot of the selected interaction, -1 past the end.
    pub fn inp_entry(&self, h: u32, n: u32) -> f64 {
        self.inp
            .get(h as usize)
            .and_then(|i| i.selected.get(n as usize))
            .map_or(-1.0, |&s| f64::from(s))
    }

    /// The `n`th slot still held by any kept interaction, -1 past the end:
    /// the glue forgets the entries of the others.
    pub fn inp_live(&self, h: u32, n: u32) -> f64 {
        self.inp
            .get(h as usize)
            .and_then(|i| i.longest.entry(n as usize))
            .map_or(-1.0, |&s| f64::from(s))
    }

    /// Feeds an `event` entry's interaction id to the estimate of
    /// `performance.interactionCount` (for browsers without it).
    pub fn estimate_add(&mut self, interaction_id: f64) {
        self.estimate.add(interaction_id);
    }

    pub fn estimate(&self) -> f64 {
        self.estimate.count
    }

    pub fn navigation_type(
        &mut self,
        restored: bool,
        has_entry: bool,
        prerendering: bool,
        activation_start: f64,
        was_discarded: bool,
    ) -> u32 {
        let args = self.take_args();
        let t = navigation_type(&PageState {
            restored_from_bfcache: restored,
            has_navigation_entry: has_entry,
            prerendering,
            activation_start,
            was_discarded,
            entry_type: args.first().map(String::as_str),
        });
        code(&NavigationType::ALL, t)
    }

    pub fn id(&mut self, now: f64, random: f64) -> u32 {
        let id = crate::id::metric_id(now, random);
        self.put(&id)
    }

    /// Resumes the stored session (the argument, if one was pushed) or
    /// starts one; returns it serialized for storage.
    pub fn session(&mut self, now: f64, random: f64) -> u32 {
        let stored = self.take_args().first().and_then(|s| Session::parse(s));
        let s = Session::resume(stored, now, || crate::id::metric_id(now, random));
        let out = s.serialize();
        self.session = Some(s);
        self.put(&out)
    }

    pub fn session_id(&mut self) -> u32 {
        let id = self.session.as_ref().map(|s| s.id.clone()).unwrap_or_default();
        self.put(&id)
    }

    pub fn sampled(&self, rate: f64) -> bool {
        self.session.as_ref().is_some_and(|s| session::is_sampled(&s.id, rate))
    }

    /// Marks the session active at `now`; returns it serialized.
    pub fn touch(&mut self, now: f64) -> u32 {
        let out = match self.session.as_mut() {
            Some(s) => {
                s.last_active_ms = now;
                s.serialize()
            }
            None => String::new(),
        };
        self.put(&out)
    }

    /// Arguments: origin, path, search (with or without `?`), then
    /// `routes` route patterns and `keys` query keys.
    pub fn page_key(&mut self, routes: u32, keys: u32) -> u32 {
        let args = self.take_args();
        let arg = |i: usize| args.get(i).map_or("", String::as_str);
        let query = arg(2);
        let query = query.strip_prefix('?').unwrap_or(query);
        let routes_end = (3 + routes as usize).min(args.len());
        let keys_end = (routes_end + keys as usize).min(args.len());
        let key = crate::page_key::page_key(
            arg(0),
            arg(1),
            query,
            args.get(3..routes_end).unwrap_or_default(),
            args.get(routes_end..keys_end).unwrap_or_default(),
        );
        self.put(&key)
    }

    /// `mobile`: User-Agent Client Hints' flag, -1 where absent; the
    /// argument is the User-Agent.
    pub fn form_factor(&mut self, mobile: i32) -> u32 {
        let args = self.take_args();
        let mobile = (mobile >= 0).then_some(mobile == 1);
        let ff = crate::form_factor::form_factor(mobile, args.first().map_or("", String::as_str));
        code(&FormFactor::ALL, ff)
    }

    pub fn transport(&mut self, max_queue_bytes: f64) {
        self.queue = QueueSize {
            bytes: 0,
            max: if max_queue_bytes > 0.0 {
                max_queue_bytes as usize
            } else {
                delivery::DEFAULT_MAX_QUEUE_BYTES
            },
        };
    }

    pub fn enqueue(&mut self, id_len: usize, replaced: bool) -> bool {
        self.queue.add(id_len, replaced)
    }

    /// Starts packing a flush whose beacon without metrics is `envelope`
    /// bytes; the queue counts from zero again.
    pub fn pack(&mut self, envelope: usize) {
        self.queue.bytes = 0;
        self.packer = Some(Packer::new(
            envelope,
            delivery::MAX_BODY_BYTES,
            delivery::MAX_METRICS_PER_BEACON,
        ));
    }

    pub fn pack_add(&mut self, size: usize) -> u32 {
        self.packer.as_mut().map_or(2, |p| p.add(size) as u32)
    }

    pub fn request(&mut self) -> bool {
        let ok = self.requests < delivery::MAX_REQUESTS_PER_PAGE;
        self.requests += u32::from(ok);
        ok
    }

    pub fn keepalive(&mut self, len: usize) -> bool {
        self.keepalive.try_reserve(len)
    }

    pub fn beacon_sent(&mut self, len: usize) {
        self.keepalive.force_reserve(len);
    }

    pub fn release(&mut self, len: usize) {
        self.keepalive.release(len);
    }

    pub fn retry_due(&self, now: f64) -> bool {
        now >= self.retry_at
    }

    /// After the collector answered `status` (0: the request failed), with
    /// the `Retry-After` header as the argument when there was one, and
    /// `date_ms` its value as an HTTP date (`Date.parse`, NaN otherwise):
    /// the delay before the body is sent again, or -1 to forget it.
    pub fn answered(&mut self, status: u16, now: f64, date_ms: f64) -> f64 {
        let retry_after = self
            .take_args()
            .first()
            .and_then(|h| delivery::parse_retry_after(h, date_ms, now));
        match delivery::outcome(status, retry_after, self.failures) {
            Outcome::Delivered => {
                self.failures = 0;
                -1.0
            }
            Outcome::Rejected => -1.0,
            Outcome::RetryAfter(ms) => {
                self.failures += 1;
                self.retry_at = self.retry_at.max(now + ms);
                ms
            }
        }
    }
}

#[cfg(target_arch = "wasm32")]
mod exports {
    //! `extern "C"` wrappers over one global [`Agent`].

    use super::*;

    struct Global(core::cell::UnsafeCell<Agent>);
    // SAFETY: wasm32-unknown-unknown without the atomics feature runs one
    // thread, and no export calls another, so no two borrows overlap.
    unsafe impl Sync for Global {}
    static AGENT: Global = Global(core::cell::UnsafeCell::new(Agent::new()));

    fn a() -> &'static mut Agent {
        // SAFETY: see `Global`.
        unsafe { &mut *AGENT.0.get() }
    }

    macro_rules! export {
        ($($name:ident($($arg:ident: $t:ty),*) $(-> $r:ty)? = $body:expr;)*) => {
            $(
                #[no_mangle]
                pub extern "C" fn $name($($arg: $t),*) $(-> $r)? {
                    $body
                }
            )*
        };
    }

    export! {
        vs_alloc(len: usize) -> *mut u8 = a().alloc(len);
        // SAFETY: the glue passes UTF-8 only (see `Agent::arg`).
        vs_arg(len: usize) = unsafe { a().arg(len) };
        vs_out() -> *const u8 = a().out().as_ptr();
        vs_schema_version() -> u32 = SCHEMA_VERSION;
        vs_rating(name: u32, value: f64) -> u32 = code(&Rating::ALL, metric(name).rate(value));
        vs_reporter(name: u32, rac: u32) -> u32 = a().reporter(name, rac != 0);
        vs_report(h: u32, value: f64, force: u32) -> f64 = a().report(h, value, force != 0);
        vs_cls() -> u32 = a().cls();
        vs_cls_add(h: u32, start: f64, value: f64, recent: u32) -> u32 = a().cls_add(h, start, value, recent != 0);
        vs_cls_update(h: u32) -> f64 = a().cls_update(h);
        vs_inp() -> u32 = a().inp();
        vs_inp_add(h: u32, id: f64, duration: f64, start: f64, slot: u32) = a().inp_add(h, id, duration, start, slot);
        vs_inp_select(h: u32, count: f64, nav: u32) -> f64 = a().inp_select(h, count, nav);
        vs_inp_entry(h: u32, n: u32) -> f64 = a().inp_entry(h, n);
        vs_inp_live(h: u32, n: u32) -> f64 = a().inp_live(h, n);
        vs_estimate_add(id: f64) = a().estimate_add(id);
        vs_estimate() -> f64 = a().estimate();
        vs_fcp(start: f64, activation: f64, hidden: f64) -> f64 =
            crate::fcp::value(start, activation, hidden).unwrap_or(-1.0);
        vs_lcp(start: f64, activation: f64, hidden: f64) -> f64 =
            crate::lcp::value(start, activation, hidden).unwrap_or(-1.0);
        vs_lcp_first(len: usize, rac: u32) -> usize = crate::lcp::entries_to_process(len, rac != 0).start;
        vs_ttfb_valid(response_start: f64, now: f64) -> u32 = crate::ttfb::entry_is_valid(response_start, now) as u32;
        vs_ttfb(response_start: f64, activation: f64) -> f64 = crate::ttfb::value(response_start, activation);
        vs_nav(restored: u32, has_entry: u32, prerendering: u32, activation: f64, discarded: u32) -> u32 =
            a().navigation_type(restored != 0, has_entry != 0, prerendering != 0, activation, discarded != 0);
        vs_id(now: f64, random: f64) -> u32 = a().id(now, random);
        vs_session(now: f64, random: f64) -> u32 = a().session(now, random);
        vs_session_id() -> u32 = a().session_id();
        vs_sampled(rate: f64) -> u32 = a().sampled(rate) as u32;
        vs_touch(now: f64) -> u32 = a().touch(now);
        vs_page_key(routes: u32, keys: u32) -> u32 = a().page_key(routes, keys);
        vs_form_factor(mobile: i32) -> u32 = a().form_factor(mobile);
        vs_transport(max_queue_bytes: f64) = a().transport(max_queue_bytes);
        vs_enqueue(id_len: usize, replaced: u32) -> u32 = a().enqueue(id_len, replaced != 0) as u32;
        vs_pack(envelope: usize) = a().pack(envelope);
        vs_pack_add(size: usize) -> u32 = a().pack_add(size);
        vs_body_fits(size: usize) -> u32 = (size <= delivery::MAX_BODY_BYTES) as u32;
        vs_request() -> u32 = a().request() as u32;
        vs_keepalive(len: usize) -> u32 = a().keepalive(len) as u32;
        vs_beacon_sent(len: usize) = a().beacon_sent(len);
        vs_release(len: usize) = a().release(len);
        vs_retry_due(now: f64) -> u32 = a().retry_due(now) as u32;
        vs_answered(status: u32, now: f64, date_ms: f64) -> f64 = a().answered(status as u16, now, date_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &mut Agent, list: &[&str]) {
        for s in list {
            let p = a.alloc(s.len());
            // SAFETY: `alloc` returned a buffer of `s.len()` bytes.
            unsafe {
                core::ptr::copy_nonoverlapping(s.as_ptr(), p, s.len());
                a.arg(s.len());
            }
        }
    }

    fn out(a: &Agent, len: u32) -> &str {
        core::str::from_utf8(&a.out()[..len as usize]).unwrap()
    }

    #[test]
    fn strings_cross_both_ways() {
        let mut a = Agent::default();
        args(
            &mut a,
            &["https://shop.example", "/orders/12345/items", "?q=1&utm=x", "utm"],
        );
        let n = a.page_key(0, 1);
        assert_eq!(out(&a, n), "https://shop.example/orders/:id/items?utm=x");
        assert!(a.args.is_empty(), "arguments are consumed");
        args(&mut a, &["https://a.example", "/p/7", "", "/p/:id"]);
        let n = a.page_key(1, 0);
        assert_eq!(out(&a, n), "https://a.example/p/:id");
    }

    #[test]
    fn reporter_handles_are_independent() {
        let mut a = Agent::default();
        let fcp = a.reporter(0, false);
        let cls = a.reporter(2, true);
        assert!(a.report(fcp, 100.0, false).is_nan(), "not forced");
        assert_eq!(a.report(fcp, 100.0, true), 100.0);
        assert_eq!(a.report(cls, 0.0, false), 0.0, "CLS 0 reported once");
        assert!(a.report(cls, 0.0, false).is_nan());
        assert!(a.report(99, 1.0, true).is_nan(), "an unknown handle reports nothing");
    }

    #[test]
    fn cls_codes_follow_session_windows() {
        let mut a = Agent::default();
        let h = a.cls();
        assert_eq!(a.cls_add(h, 0.0, 0.1, true), 0);
        assert_eq!(a.cls_add(h, 100.0, 0.1, false), 2);
        assert_eq!(a.cls_add(h, 500.0, 0.05, false), 1);
        assert!((a.cls_update(h) - 0.15).abs() < 1e-12);
        assert_eq!(a.cls_update(h), -1.0, "unchanged");
    }

    #[test]
    fn inp_selects_and_keeps_only_live_slots() {
        let mut a = Agent::default();
        let h = a.inp();
        assert_eq!(a.inp_select(h, 0.0, 0), -1.0);
        a.inp_add(h, 7.0, 120.0, 10.0, 0);
        a.inp_add(h, 7.0, 120.0, 10.0, 1);
        a.inp_add(h, 0.0, 300.0, 20.0, 2); // no interaction
        for i in 0..12u32 {
            a.inp_add(h, f64::from(14 + 7 * i), 200.0 + f64::from(i), 30.0, 3 + i);
        }
        assert_eq!(a.inp_select(h, 13.0, 0), 211.0);
        assert_eq!((a.inp_entry(h, 0), a.inp_entry(h, 1)), (14.0, -1.0));
        let live: Vec<f64> = (0..).map(|n| a.inp_live(h, n)).take_while(|s| *s >= 0.0).collect();
        assert_eq!(live.len(), 10, "the 120 ms interaction fell out: {live:?}");
        assert!(!live.contains(&0.0) && !live.contains(&2.0));
        let bf = a.inp();
        assert_eq!(
            a.inp_select(bf, 2.0, code(&NavigationType::ALL, NavigationType::BackForwardCache)),
            8.0
        );
        assert_eq!(a.inp_entry(bf, 0), -1.0);
    }

    #[test]
    fn sessions_resume_and_sample() {
        let mut a = Agent::default();
        let n = a.session(1_000_000.0, 0.5);
        let stored = String::from(out(&a, n));
        assert!(stored.ends_with(".1000000"), "{stored}");
        let n = a.session_id();
        let id = String::from(out(&a, n));
        assert!(stored.starts_with(&id));
        args(&mut a, &[&stored]);
        a.session(1_000_000.0 + 60_000.0, 0.9);
        let n = a.session_id();
        assert_eq!(out(&a, n), id, "resumed within 30 minutes");
        assert!(a.sampled(1.0) && !a.sampled(0.0));
        let n = a.touch(2_000_000.0);
        assert_eq!(out(&a, n), format!("{id}.2000000"));
    }

    #[test]
    fn navigation_type_reads_the_entry_type_argument() {
        let mut a = Agent::default();
        args(&mut a, &["back_forward"]);
        let t = a.navigation_type(false, true, false, 0.0, false);
        assert_eq!(NavigationType::ALL[t as usize], NavigationType::BackForward);
        let t = a.navigation_type(true, true, false, 0.0, false);
        assert_eq!(NavigationType::ALL[t as usize], NavigationType::BackForwardCache);
    }

    #[test]
    fn packing_and_budgets() {
        let mut a = Agent::default();
        a.transport(0.0);
        assert!(!a.enqueue(10, false));
        a.pack(100);
        assert_eq!(a.pack_add(59_000), 0);
        assert_eq!(a.pack_add(1_000), 1, "would pass 60,000 bytes");
        assert_eq!(a.pack_add(70_000), 2, "too large alone");
        assert!(a.keepalive(50_000) && !a.keepalive(20_000));
        a.release(50_000);
        assert!(a.keepalive(20_000));
        for _ in 0..delivery::MAX_REQUESTS_PER_PAGE {
            assert!(a.request());
        }
        assert!(!a.request(), "requests per page are capped");
    }

    #[test]
    fn answers_decide_retries() {
        let mut a = Agent::default();
        assert_eq!(a.answered(204, 0.0, f64::NAN), -1.0);
        args(&mut a, &["3"]);
        assert_eq!(a.answered(429, 1_000.0, f64::NAN), 3_000.0);
        assert!(!a.retry_due(3_999.0) && a.retry_due(4_000.0));
        args(&mut a, &["Wed, 21 Oct 2026 07:28:00 GMT"]);
        assert_eq!(a.answered(503, 1_000.0, 11_000.0), 10_000.0, "an HTTP date");
        assert_eq!(a.answered(500, 0.0, f64::NAN), 4_000.0, "backoff after two failures");
        assert_eq!(a.answered(400, 0.0, f64::NAN), -1.0, "rejected: dropped");
    }

    #[test]
    fn interaction_count_estimate() {
        let mut a = Agent::default();
        assert_eq!(a.estimate(), 0.0);
        for id in [0.0, 700.0, 714.0, 707.0] {
            a.estimate_add(id);
        }
        assert_eq!(a.estimate(), 3.0);
    }

    #[test]
    fn form_factor_codes() {
        let mut a = Agent::default();
        args(&mut a, &["Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X)"]);
        assert_eq!(FormFactor::ALL[a.form_factor(-1) as usize], FormFactor::Tablet);
        args(&mut a, &["Mozilla/5.0 (X11; Linux x86_64)"]);
        assert_eq!(FormFactor::ALL[a.form_factor(1) as usize], FormFactor::Phone);
    }
}
