//! String search without `core`'s two-way searcher, which costs ~2 KB of
//! wasm; the haystacks here (a User-Agent, a path segment) are short.

/// Whether `needle` occurs in `hay`.
pub fn contains(hay: &str, needle: &str) -> bool {
    let n = needle.len();
    n == 0 || hay.as_bytes().windows(n).any(|w| w == needle.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::contains;

    #[test]
    fn finds_substrings() {
        assert!(contains("Mozilla/5.0 (iPad; CPU OS)", "iPad"));
        assert!(contains("abc", "abc") && contains("abc", ""));
        assert!(!contains("ab", "abc") && !contains("Mobil", "Mobile"));
    }
}
