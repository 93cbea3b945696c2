//! The invariants the fuzz target (`collector/fuzz`) checks on arbitrary
//! input; also run on mutated beacons by the unit tests, so that
//! `cargo test` covers them in a small way.

use beacon::MetricName;

use crate::aggregate::Cell;
use crate::ingest;
use crate::validate::{self, MAX_ID_CHARS};

/// Sample beacons to start mutating from.
pub const SEEDS: &[&str] = &[
    r#"{"schemaVersion":1,"page":"https://shop.example/products/:id","pageViewId":"v5-1700000000000-1","sessionId":"s-1","navigationType":"navigate","formFactor":"phone","effectiveType":"4g","deviceMemory":8,"metrics":[{"name":"LCP","value":1234.5,"delta":1234.5,"id":"v5-1700000000000-2","rating":"good","navigationType":"navigate"}]}"#,
    r#"{"schemaVersion":1,"page":"http://127.0.0.1:8080/a?q=1#f","metrics":[{"name":"CLS","value":0,"delta":0,"id":"c","rating":"good","navigationType":"back-forward-cache"},{"name":"INP","value":60000,"delta":-5,"id":"i","rating":"poor","navigationType":"reload"},{"name":"TTFB","value":0.5,"delta":0.5,"id":"t","rating":"good","navigationType":"prerender"},{"name":"FCP","value":119999.99,"delta":1,"id":"f","rating":"poor","navigationType":"restore"}]}"#,
    r#"{"schemaVersion":1,"page":"https://[::1]:3000/","extra":{"nested":[1,2,{"x":null}]},"metrics":[]}"#,
];

/// Feeds `data` to the gzip inflater and the beacon parser and validator,
/// and panics if an invariant does not hold:
///
/// * nothing panics, whatever the bytes;
/// * inflating never yields more than the limit;
/// * an accepted beacon's reports are within every limit (value ranges,
///   id lengths, metric count), carry the rating of their value, have a
///   normalised http(s) page key without query or fragment, and parse
///   again to the same reports when re-serialised;
/// * their values can be added to an aggregate and removed again.
pub fn check_beacon(data: &[u8]) {
    const LIMIT: usize = 64 * 1024;
    if let Ok(inflated) = ingest::gunzip(data, LIMIT) {
        assert!(inflated.len() <= LIMIT);
    }
    let max_metrics = 1 + data.first().map_or(0, |&b| b as usize) % validate::MAX_METRICS;
    let Ok(accepted) = ingest::accept(data, 1_700_000_000_000, max_metrics) else {
        return;
    };
    let parsed = ingest::parse(data).expect("accepted, so it parses");
    let reports = accepted.beacon.to_reports();
    assert!(reports.len() <= max_metrics);
    let key = &accepted.beacon;
    assert!(
        key.page.starts_with("http://") || key.page.starts_with("https://"),
        "{key:?}"
    );
    assert!(!key.page.contains('#') && !key.page.contains('?'), "{key:?}");
    assert!(!key.site.is_empty());
    let mut cell = Cell::default();
    for r in &reports {
        assert!(r.value.is_finite() && r.value >= 0.0, "{r:?}");
        assert!(r.value <= validate::max_value(r.metric), "{r:?}");
        assert!(r.delta.is_finite(), "{r:?}");
        assert_eq!(r.rating, r.metric.rate(r.value));
        assert!(!r.report_id.is_empty() && r.report_id.chars().count() <= MAX_ID_CHARS);
        assert_eq!((&r.site, &r.page), (&key.site, &key.page));
        cell.add(r.metric, r.value);
    }
    assert_eq!(cell.count(), reports.len() as u64);
    if let Some(p75) = cell.sketch.quantile(75.0) {
        let max = reports.iter().map(|r| r.value).fold(0.0, f64::max);
        assert!(p75 <= max * 1.01 && p75 >= 0.0, "{p75} > {max}");
    }
    for r in &reports {
        assert!(cell.remove(r.metric, r.value), "{r:?}");
    }
    assert!(cell.is_empty());
    let again = serde_json::to_vec(&parsed.beacon).expect("serialises");
    let reparsed = ingest::accept(&again, 1_700_000_000_000, max_metrics).expect("re-serialised beacon is accepted");
    assert_eq!(reparsed.beacon, accepted.beacon);
    let _ = MetricName::ALL;
}

/// A small deterministic mutator (for the unit tests): flips, inserts,
/// deletes and splices bytes of `input`.
pub fn mutate(input: &[u8], mut seed: u64) -> Vec<u8> {
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut out = input.to_vec();
    const TOKENS: &[&[u8]] = &[
        b"-1",
        b"1e308",
        b"NaN",
        b"null",
        b"\"\"",
        b"{}",
        b"[]",
        b"0.0000001",
        b"\"FID\"",
        b"true",
        b"\"\\ud800\"",
        b"120000.0001",
        b"\"https://x.example/\"",
        b",",
        b":",
        b"\xff",
    ];
    for _ in 0..1 + next() % 4 {
        let len = out.len().max(1);
        let at = (next() as usize) % len;
        match next() % 5 {
            0 if !out.is_empty() => out[at] ^= 1 << (next() % 8),
            1 => {
                let t = TOKENS[(next() as usize) % TOKENS.len()];
                out.splice(at.min(out.len())..at.min(out.len()), t.iter().copied());
            }
            2 if !out.is_empty() => {
                let end = (at + 1 + (next() as usize) % 8).min(out.len());
                out.drain(at..end);
            }
            3 => {
                // Replace a number-looking run with a token.
                let t = TOKENS[(next() as usize) % TOKENS.len()];
                let end = (at + 1).min(out.len());
                out.splice(at.min(out.len())..end, t.iter().copied());
            }
            _ => {
                let from = (next() as usize) % len;
                let end = (from + 16).min(out.len());
                let piece: Vec<u8> = out.get(from..end).unwrap_or_default().to_vec();
                out.splice(at.min(out.len())..at.min(out.len()), piece);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_are_accepted_and_hold_the_invariants() {
        for seed in SEEDS {
            assert!(ingest::accept(seed.as_bytes(), 0, 256).is_ok(), "{seed}");
            check_beacon(seed.as_bytes());
        }
    }

    #[test]
    fn mutated_beacons_hold_the_invariants() {
        let mut accepted = 0;
        for i in 0..20_000u64 {
            let seed = SEEDS[(i % SEEDS.len() as u64) as usize].as_bytes();
            let input = mutate(seed, i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
            check_beacon(&input);
            accepted += ingest::accept(&input, 0, 256).is_ok() as u32;
        }
        // The mutations must reach both sides of the validator.
        assert!(accepted > 100 && accepted < 19_000, "{accepted}");
    }

    #[test]
    fn random_bytes_and_gzip_hold_the_invariants() {
        use std::io::Write;
        let mut state = 0x1234_5678_9abc_def1u64;
        for i in 0..2_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let len = (state % 300) as usize;
            let bytes: Vec<u8> = (0..len).map(|j| (state >> (j % 56)) as u8 ^ j as u8).collect();
            check_beacon(&bytes);
            if i % 50 == 0 {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                e.write_all(SEEDS[i % SEEDS.len()].as_bytes()).unwrap();
                let mut gz = e.finish().unwrap();
                check_beacon(&gz);
                let at = (state as usize) % gz.len();
                gz[at] ^= 0x40;
                check_beacon(&gz);
            }
        }
    }
}
