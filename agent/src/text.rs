//! String search and splitting on ASCII bytes, without `core`'s pattern
//! searchers (two-way, memchr), which cost kilobytes of wasm; the strings
//! here (a User-Agent, a URL path or query) are short.

/// Whether `needle` occurs in `hay`.
pub fn contains(hay: &str, needle: &str) -> bool {
    let n = needle.len();
    n == 0 || hay.as_bytes().windows(n).any(|w| w == needle.as_bytes())
}

/// `s` split at every `sep` (an ASCII byte), like `str::split`.
pub fn split(s: &str, sep: u8) -> Split<'_> {
    Split { rest: Some(s), sep }
}

pub struct Split<'a> {
    rest: Option<&'a str>,
    sep: u8,
}

impl<'a> Iterator for Split<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let s = self.rest?;
        match s.bytes().position(|b| b == self.sep) {
            // An ASCII byte is always a char boundary: `get` never fails.
            Some(i) => {
                self.rest = s.get(i + 1..);
                s.get(..i)
            }
            None => {
                self.rest = None;
                Some(s)
            }
        }
    }
}

/// `s` split at the last `sep` (an ASCII byte), like `str::rsplit_once`.
pub fn rsplit_once(s: &str, sep: u8) -> Option<(&str, &str)> {
    let i = s.bytes().rposition(|b| b == sep)?;
    Some((s.get(..i)?, s.get(i + 1..)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    #[test]
    fn splits_like_str() {
        for s in ["", "/", "/a/b", "a//b/", "héllo/wörld", "no-sep"] {
            assert_eq!(
                split(s, b'/').collect::<Vec<_>>(),
                s.split('/').collect::<Vec<_>>(),
                "{s:?}"
            );
        }
        for s in ["id.123", "a.b.c", "none", ".x", "x."] {
            assert_eq!(rsplit_once(s, b'.'), s.rsplit_once('.'), "{s:?}");
        }
    }

    #[test]
    fn finds_substrings() {
        assert!(contains("Mozilla/5.0 (iPad; CPU OS)", "iPad"));
        assert!(contains("abc", "abc") && contains("abc", ""));
        assert!(!contains("ab", "abc") && !contains("Mobil", "Mobile"));
    }
}
