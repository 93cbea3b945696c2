//! The subparts of LCP, FCP and TTFB (web-vitals/attribution 6.2.3), from
//! the navigation entry and the LCP resource's timings.

/// What the subparts read from the (valid) navigation entry.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Navigation {
    pub response_start: f64,
    /// `activationStart`, 0 where absent.
    pub activation_start: f64,
}

impl Navigation {
    /// Time to first byte from activation, never negative.
    pub fn ttfb(self) -> f64 {
        (self.response_start - self.activation_start).max(0.0)
    }
}

/// A Resource Timing entry's times.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Resource {
    pub start_time: f64,
    /// 0 without `Timing-Allow-Origin` on a cross-origin resource.
    pub request_start: f64,
    pub response_end: f64,
}

impl Resource {
    /// `requestStart` where the browser exposes it, else `startTime`.
    pub fn request(self) -> f64 {
        if self.request_start != 0.0 {
            self.request_start
        } else {
            self.start_time
        }
    }
}

/// LCP's four subparts, which sum to LCP.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LcpParts {
    pub time_to_first_byte: f64,
    pub resource_load_delay: f64,
    pub resource_load_duration: f64,
    pub element_render_delay: f64,
}

/// Without an LCP entry or navigation entry: all render delay.
pub fn lcp_default(value: f64) -> LcpParts {
    LcpParts {
        time_to_first_byte: 0.0,
        resource_load_delay: 0.0,
        resource_load_duration: 0.0,
        element_render_delay: value,
    }
}

/// LCP's subparts; the resource's load is capped at LCP (videos keep
/// downloading).
pub fn lcp_parts(value: f64, nav: Navigation, resource: Option<Resource>) -> LcpParts {
    let ttfb = nav.ttfb();
    let request_start = ttfb.max(resource.map_or(0.0, |r| r.request() - nav.activation_start));
    let response_end = value.min(request_start.max(resource.map_or(0.0, |r| r.response_end - nav.activation_start)));
    LcpParts {
        time_to_first_byte: ttfb,
        resource_load_delay: request_start - ttfb,
        resource_load_duration: response_end - request_start,
        element_render_delay: value - response_end,
    }
}

/// Whether a resource entry is what LCP painted: the same URL, requested
/// no later than the paint (`responseEnd` is not checked).
pub fn is_lcp_resource(name: &str, resource: Resource, lcp_url: &str, lcp_start_time: f64) -> bool {
    name == lcp_url && resource.request() <= lcp_start_time
}

/// The last `limit` resource entries seen (the reference's own buffer,
/// `resourceBufferSize`, default 50): the LCP resource survives the
/// browser's buffer filling up. As the reference, one entry leaves per
/// entry added, so a lowered limit takes effect gradually, and a limit
/// that is not a number never drops any.
#[derive(Debug)]
pub struct ResourceBuffer<R> {
    entries: alloc::collections::VecDeque<R>,
    pub limit: f64,
}

/// The default of `resourceBufferSize`.
pub const DEFAULT_RESOURCE_BUFFER_SIZE: f64 = 50.0;

impl<R> Default for ResourceBuffer<R> {
    fn default() -> Self {
        ResourceBuffer {
            entries: Default::default(),
            limit: DEFAULT_RESOURCE_BUFFER_SIZE,
        }
    }
}

impl<R> ResourceBuffer<R> {
    pub fn push(&mut self, entry: R) {
        self.entries.push_back(entry);
        if self.entries.len() as f64 > self.limit {
            self.entries.pop_front();
        }
    }

    /// The latest entry for which `f` holds.
    pub fn find_last(&self, f: impl Fn(&R) -> bool) -> Option<&R> {
        self.entries.iter().rev().find(|e| f(e))
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// FCP's two subparts: (time to first byte, first byte to FCP).
pub fn fcp_parts(value: f64, nav: Navigation) -> (f64, f64) {
    let ttfb = nav.ttfb();
    (ttfb, value - ttfb)
}

/// What TTFB's subparts read from the navigation entry.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct NavigationPhases {
    /// `activationStart`, 0 where absent.
    pub activation_start: f64,
    pub worker_start: f64,
    pub fetch_start: f64,
    pub domain_lookup_start: f64,
    pub connect_start: f64,
    pub connect_end: f64,
}

/// TTFB's five subparts, which sum to TTFB.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct TtfbParts {
    pub waiting_duration: f64,
    pub cache_duration: f64,
    pub dns_duration: f64,
    pub connection_duration: f64,
    pub request_duration: f64,
}

/// TTFB's subparts: waiting (redirects, unload, until the service worker
/// or the fetch starts), cache (service worker, HTTP cache), DNS,
/// connection, request; each phase start relative to activation, never
/// negative.
pub fn ttfb_parts(value: f64, n: NavigationPhases) -> TtfbParts {
    let rel = |t: f64| (t - n.activation_start).max(0.0);
    let wait_start = if n.worker_start != 0.0 {
        n.worker_start
    } else {
        n.fetch_start
    };
    let wait_end = rel(wait_start);
    let dns_start = rel(n.domain_lookup_start);
    let connect_start = rel(n.connect_start);
    let connect_end = rel(n.connect_end);
    TtfbParts {
        waiting_duration: wait_end,
        cache_duration: dns_start - wait_end,
        dns_duration: connect_start - dns_start,
        connection_duration: connect_end - connect_start,
        request_duration: value - connect_end,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAV: Navigation = Navigation {
        response_start: 200.0,
        activation_start: 0.0,
    };

    fn sum(p: LcpParts) -> f64 {
        p.time_to_first_byte + p.resource_load_delay + p.resource_load_duration + p.element_render_delay
    }

    #[test]
    fn lcp_image_subparts() {
        let img = Resource {
            start_time: 250.0,
            request_start: 300.0,
            response_end: 900.0,
        };
        let p = lcp_parts(1000.0, NAV, Some(img));
        assert_eq!(
            p,
            LcpParts {
                time_to_first_byte: 200.0,
                resource_load_delay: 100.0,
                resource_load_duration: 600.0,
                element_render_delay: 100.0
            }
        );
        assert_eq!(sum(p), 1000.0);
        // Without Timing-Allow-Origin, requestStart is 0: startTime.
        let opaque = Resource {
            request_start: 0.0,
            ..img
        };
        assert_eq!(lcp_parts(1000.0, NAV, Some(opaque)).resource_load_delay, 50.0);
    }

    #[test]
    fn lcp_text_capped_and_prerendered() {
        let p = lcp_parts(500.0, NAV, None);
        assert_eq!(
            (p.resource_load_delay, p.resource_load_duration, p.element_render_delay),
            (0.0, 0.0, 300.0)
        );
        // A video still downloading after LCP: its load is capped at LCP.
        let video = Resource {
            start_time: 300.0,
            request_start: 300.0,
            response_end: 5000.0,
        };
        let p = lcp_parts(1000.0, NAV, Some(video));
        assert_eq!((p.resource_load_duration, p.element_render_delay), (700.0, 0.0));
        // A resource requested before the first byte: no negative delay.
        let early = Resource {
            start_time: 10.0,
            request_start: 10.0,
            response_end: 100.0,
        };
        let p = lcp_parts(400.0, NAV, Some(early));
        assert_eq!(
            (p.resource_load_delay, p.resource_load_duration, p.element_render_delay),
            (0.0, 0.0, 200.0)
        );
        // Prerendered: times from activation, TTFB clamped at 0.
        let pre = Navigation {
            response_start: 100.0,
            activation_start: 1000.0,
        };
        let img = Resource {
            start_time: 500.0,
            request_start: 500.0,
            response_end: 1200.0,
        };
        let p = lcp_parts(300.0, pre, Some(img));
        assert_eq!(p.time_to_first_byte, 0.0);
        assert_eq!(
            (p.resource_load_delay, p.resource_load_duration, p.element_render_delay),
            (0.0, 200.0, 100.0)
        );
        assert_eq!(sum(p), 300.0);
        assert_eq!(lcp_default(42.0).element_render_delay, 42.0);
    }

    #[test]
    fn lcp_resource_matching_and_buffer() {
        let r = Resource {
            start_time: 100.0,
            request_start: 0.0,
            response_end: 400.0,
        };
        assert!(is_lcp_resource("https://a/x.png", r, "https://a/x.png", 100.0));
        assert!(
            !is_lcp_resource("https://a/x.png", r, "https://a/x.png", 99.0),
            "requested after the paint"
        );
        assert!(!is_lcp_resource("https://a/y.png", r, "https://a/x.png", 1000.0));
        let mut b = ResourceBuffer::default();
        for i in 0..60 {
            b.push(i);
        }
        assert_eq!(b.len(), 50);
        assert_eq!(b.find_last(|&i| i % 7 == 0), Some(&56));
        assert_eq!(b.find_last(|&i| i < 10), None, "the oldest left");
        b.limit = 10.0;
        b.push(60);
        assert_eq!(b.len(), 50, "one leaves per entry added");
        let mut z = ResourceBuffer {
            limit: 0.0,
            ..Default::default()
        };
        z.push(1);
        assert!(z.is_empty());
        let mut nan = ResourceBuffer {
            limit: f64::NAN,
            ..Default::default()
        };
        for i in 0..100 {
            nan.push(i);
        }
        assert_eq!(nan.len(), 100);
    }

    #[test]
    fn fcp_subparts() {
        assert_eq!(fcp_parts(800.0, NAV), (200.0, 600.0));
        let pre = Navigation {
            response_start: 100.0,
            activation_start: 500.0,
        };
        assert_eq!(fcp_parts(50.0, pre), (0.0, 50.0));
    }

    #[test]
    fn ttfb_subparts() {
        let n = NavigationPhases {
            activation_start: 0.0,
            worker_start: 0.0,
            fetch_start: 5.0,
            domain_lookup_start: 10.0,
            connect_start: 20.0,
            connect_end: 35.0,
        };
        let p = ttfb_parts(100.0, n);
        assert_eq!(
            p,
            TtfbParts {
                waiting_duration: 5.0,
                cache_duration: 5.0,
                dns_duration: 10.0,
                connection_duration: 15.0,
                request_duration: 65.0
            }
        );
        // A service worker: measured from workerStart.
        let sw = NavigationPhases { worker_start: 3.0, ..n };
        assert_eq!(ttfb_parts(100.0, sw).waiting_duration, 3.0);
        // Prerendered: every phase before activation is 0.
        let pre = NavigationPhases {
            activation_start: 50.0,
            ..n
        };
        assert_eq!(
            ttfb_parts(0.0, pre),
            TtfbParts {
                request_duration: 0.0,
                ..Default::default()
            }
        );
    }
}
