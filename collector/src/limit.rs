//! Per-IP and per-site rate limits (GCRA, from `governor`), and the bot
//! User-Agent filter.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::Limits;

/// Keyed rate limiters; a limit of 0 is off.
pub struct RateLimits {
    per_ip: Option<DefaultKeyedRateLimiter<IpAddr>>,
    per_site: Option<DefaultKeyedRateLimiter<String>>,
    clock: DefaultClock,
}

fn limiter<K: std::hash::Hash + Eq + Clone>(rate: u32, burst: u32) -> Option<DefaultKeyedRateLimiter<K>> {
    let rate = NonZeroU32::new(rate)?;
    let burst = NonZeroU32::new(burst).unwrap_or(rate);
    Some(RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst)))
}

/// The key an address is limited under: IPv6 clients usually hold a whole
/// /64, so they are limited per /64.
pub fn ip_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

impl RateLimits {
    pub fn new(limits: &Limits) -> RateLimits {
        RateLimits {
            per_ip: limiter(limits.rate_per_ip, limits.burst_per_ip),
            per_site: limiter(limits.rate_per_site, limits.burst_per_site),
            clock: DefaultClock::default(),
        }
    }

    /// `Err(wait)` when over the limit: retry after `wait`.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), Duration> {
        match &self.per_ip {
            None => Ok(()),
            Some(l) => l
                .check_key(&ip_key(ip))
                .map_err(|not_until| not_until.wait_time_from(self.clock.now())),
        }
    }

    pub fn check_site(&self, site: &str) -> Result<(), Duration> {
        match &self.per_site {
            None => Ok(()),
            Some(l) => l
                .check_key(&site.to_owned())
                .map_err(|not_until| not_until.wait_time_from(self.clock.now())),
        }
    }

    /// Forgets keys that are back to their full burst, so memory follows
    /// the clients of the last moments, not all clients ever seen.
    pub fn forget_idle(&self) {
        if let Some(l) = &self.per_ip {
            l.retain_recent();
            l.shrink_to_fit();
        }
        if let Some(l) = &self.per_site {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }
}

/// `Retry-After` seconds for a wait: rounded up, at least 1.
pub fn retry_after_secs(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

/// Whether a User-Agent contains one of `needles` (lower-case).
pub fn is_bot(user_agent: &str, needles: &[String]) -> bool {
    if user_agent.is_empty() || needles.is_empty() {
        return false;
    }
    let ua = user_agent.to_ascii_lowercase();
    needles.iter().any(|n| ua.contains(n.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(rate_per_ip: u32, burst_per_ip: u32) -> Limits {
        Limits {
            max_body_bytes: 65536,
            body_timeout: std::time::Duration::from_secs(10),
            max_metrics: 256,
            rate_per_ip,
            burst_per_ip,
            rate_per_site: 1,
            burst_per_site: 2,
        }
    }

    #[test]
    fn bursts_then_limits_per_key() {
        let l = RateLimits::new(&limits(1, 3));
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        for _ in 0..3 {
            assert!(l.check_ip(a).is_ok());
        }
        let wait = l.check_ip(a).unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(1), "{wait:?}");
        assert!(l.check_ip(b).is_ok());
        assert!(l.check_site("x").is_ok() && l.check_site("x").is_ok());
        assert!(l.check_site("x").is_err());
        assert!(l.check_site("y").is_ok());
        l.forget_idle();
        let off = RateLimits::new(&limits(0, 0));
        for _ in 0..10_000 {
            assert!(off.check_ip(a).is_ok());
        }
    }

    #[test]
    fn ipv6_is_limited_per_64() {
        let l = RateLimits::new(&limits(1, 1));
        assert!(l.check_ip("2001:db8::1".parse().unwrap()).is_ok());
        assert!(l.check_ip("2001:db8::2".parse().unwrap()).is_err());
        assert!(l.check_ip("2001:db8:0:1::2".parse().unwrap()).is_ok());
        assert_eq!(
            ip_key("::ffff:10.0.0.1".parse().unwrap()),
            "10.0.0.1".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1000)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1001)), 2);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
    }

    #[test]
    fn bots() {
        let needles: Vec<String> = crate::config::DEFAULT_BOT_USER_AGENTS
            .iter()
            .map(|s| s.to_string())
            .collect();
        for ua in [
            "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
            "Mozilla/5.0 (Linux; Android 11; moto g power (2022)) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/121.0.0.0 Mobile Safari/537.36 Chrome-Lighthouse",
            "facebookexternalhit/1.1",
        ] {
            assert!(is_bot(ua, &needles), "{ua}");
        }
        for ua in [
            "",
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/124.0.0.0 Safari/537.36",
        ] {
            assert!(!is_bot(ua, &needles), "{ua}");
        }
    }
}
