//! Unique metric ids (`v6-<ms since epoch>-<13 random digits>` in the
//! reference; ours start with `vs-`), without `format!` so the wasm stays
//! small.

use alloc::string::String;

/// Appends `n` in decimal.
pub fn push_decimal(out: &mut String, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &b in &buf[i..] {
        out.push(b as char);
    }
}

/// `now_ms` is `Date.now()`; `random` is in [0, 1).
pub fn metric_id(now_ms: f64, random: f64) -> String {
    let mut s = String::with_capacity(32);
    s.push_str("vs-");
    push_decimal(&mut s, now_ms.max(0.0) as u64);
    s.push('-');
    push_decimal(
        &mut s,
        (random.clamp(0.0, 1.0) * (9e12 - 1.0)) as u64 + 1_000_000_000_000,
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal() {
        for n in [0u64, 7, 10, 1234567890123, u64::MAX] {
            let mut s = String::new();
            push_decimal(&mut s, n);
            assert_eq!(s, n.to_string());
        }
    }

    #[test]
    fn ids_have_the_reference_shape() {
        assert_eq!(metric_id(1700000000123.0, 0.0), "vs-1700000000123-1000000000000");
        let id = metric_id(1700000000123.0, 0.999_999);
        assert_eq!(id.len(), "vs-1700000000123-".len() + 13, "{id}");
    }
}
