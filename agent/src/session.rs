//! First-party sessions (30 minutes of inactivity end one) and per-session
//! sampling.

use alloc::string::String;

/// Inactivity that ends a session, as most analytics products count it.
pub const SESSION_TIMEOUT_MS: f64 = 30.0 * 60.0 * 1000.0;

/// A session as stored: `<id>.<last activity, ms since epoch>`.
#[derive(Clone, Debug, PartialEq)]
pub struct Session {
    pub id: String,
    pub last_active_ms: f64,
}

impl Session {
    pub fn parse(stored: &str) -> Option<Session> {
        let (id, t) = crate::text::rsplit_once(stored, b'.')?;
        let last_active_ms = parse_u64(t)? as f64;
        (!id.is_empty() && id.len() <= 64).then(|| Session {
            id: id.into(),
            last_active_ms,
        })
    }

    pub fn serialize(&self) -> String {
        let mut s = self.id.clone();
        s.push('.');
        crate::id::push_decimal(&mut s, self.last_active_ms.max(0.0) as u64);
        s
    }

    /// The session to use at `now_ms`: the stored one if still active
    /// (touched), else a new one with `new_id`.
    pub fn resume(stored: Option<Session>, now_ms: f64, new_id: impl FnOnce() -> String) -> Session {
        match stored {
            Some(s) if now_ms - s.last_active_ms < SESSION_TIMEOUT_MS && now_ms >= s.last_active_ms => Session {
                id: s.id,
                last_active_ms: now_ms,
            },
            _ => Session {
                id: new_id(),
                last_active_ms: now_ms,
            },
        }
    }
}

fn parse_u64(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 16 {
        return None;
    }
    s.bytes()
        .try_fold(0u64, |n, b| b.is_ascii_digit().then(|| n * 10 + u64::from(b - b'0')))
}

/// Whether a session is sampled at `rate` (0 to 1). Decided from the
/// session id alone, so every page view of a session agrees.
pub fn is_sampled(session_id: &str, rate: f64) -> bool {
    if rate.is_nan() || rate <= 0.0 {
        return false;
    }
    if rate >= 1.0 {
        return true;
    }
    // FNV-1a, then the top 32 bits as a fraction of 2^32.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in session_id.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    ((h >> 32) as f64 / 4_294_967_296.0) < rate
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;

    #[test]
    fn stored_sessions_round_trip() {
        let s = Session {
            id: "vs-1-1234567890123".into(),
            last_active_ms: 1_700_000_000_000.0,
        };
        assert_eq!(Session::parse(&s.serialize()), Some(s));
        for bad in ["", "abc", ".123", "id.", "id.12x", "id.-5", "id.99999999999999999999"] {
            assert_eq!(Session::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn thirty_minutes_of_inactivity_start_a_new_session() {
        let old = Session {
            id: "old".into(),
            last_active_ms: 1_000_000.0,
        };
        let next = |now| Session::resume(Some(old.clone()), now, || "new".into());
        assert_eq!(next(1_000_000.0 + SESSION_TIMEOUT_MS - 1.0).id, "old");
        assert_eq!(
            next(1_000_000.0 + SESSION_TIMEOUT_MS - 1.0).last_active_ms,
            1_000_000.0 + SESSION_TIMEOUT_MS - 1.0
        );
        assert_eq!(next(1_000_000.0 + SESSION_TIMEOUT_MS).id, "new");
        assert_eq!(next(500.0).id, "new", "a clock that went backwards starts afresh");
        assert_eq!(Session::resume(None, 5.0, || "first".into()).id, "first");
    }

    #[test]
    fn sampling_is_per_session_and_close_to_the_rate() {
        assert!(!is_sampled("any", 0.0));
        assert!(!is_sampled("any", f64::NAN));
        assert!(is_sampled("any", 1.0));
        let id = "vs-1795325779545-6661003465578";
        assert_eq!(is_sampled(id, 0.5), is_sampled(id, 0.5), "deterministic");
        let n = 20_000;
        let kept = (0..n)
            .filter(|i| is_sampled(&format!("vs-17953257{i}-{}", i * 7919), 0.25))
            .count();
        let share = kept as f64 / n as f64;
        assert!((share - 0.25).abs() < 0.02, "{share}");
        // A session sampled at a rate stays sampled at any higher rate.
        for i in 0..500 {
            let id = format!("s{i}");
            if is_sampled(&id, 0.1) {
                assert!(is_sampled(&id, 0.2));
            }
        }
    }
}
