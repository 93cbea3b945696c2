//! The page key a beacon is filed under: by default the URL without query
//! string and fragment (as the Chrome UX Report keys pages), with path
//! segments that look like identifiers replaced by `:id`, so that neither
//! personal data nor one key per user reaches the collector.

use alloc::string::String;
use alloc::vec::Vec;

use crate::text::split;

/// Placeholder for a path segment that looks like an identifier.
pub const ID: &str = ":id";

/// Whether a path segment looks like an identifier or personal data: all
/// digits, a UUID, long hex, an e-mail address, or a long token mixing
/// letters and digits.
pub fn is_identifier(segment: &str) -> bool {
    let s = segment;
    if s.is_empty() {
        return false;
    }
    let all = |f: fn(u8) -> bool| s.bytes().all(f);
    let digits = s.bytes().filter(u8::is_ascii_digit).count();
    let letters = s.bytes().filter(u8::is_ascii_alphabetic).count();
    all(|b| b.is_ascii_digit())
        || is_uuid(s)
        || (s.len() >= 12 && all(|b| b.is_ascii_hexdigit()) && digits > 0)
        || crate::text::contains(s, "@")
        || crate::text::contains(s, "%40")
        // Tokens: long, mostly alphanumeric (base64url, JWT pieces, hashes)
        // with both letters and digits.
        || (s.len() >= 20 && digits > 0 && letters > 0 && all(|b| b.is_ascii_alphanumeric() || b"-_.~=".contains(&b)))
}

fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, &c)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                c == b'-'
            } else {
                c.is_ascii_hexdigit()
            }
        })
}

/// `path` with identifier-like segments replaced by `:id`.
pub fn scrub_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for (i, seg) in split(path, b'/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        out.push_str(if is_identifier(seg) { ID } else { seg });
    }
    out
}

/// The first route pattern (`/products/:id`, `/blog/*`) that `path` matches.
/// `:name` matches one segment, a trailing `*` the rest of the path.
pub fn match_route<'a>(path: &str, routes: &'a [String]) -> Option<&'a str> {
    routes.iter().map(String::as_str).find(|r| route_matches(r, path))
}

fn route_matches(route: &str, path: &str) -> bool {
    let mut p = split(path.trim_end_matches('/'), b'/');
    for r in split(route.trim_end_matches('/'), b'/') {
        if r == "*" {
            return true;
        }
        match p.next() {
            Some(seg) if r.starts_with(':') && !seg.is_empty() => {}
            Some(seg) if seg == r => {}
            _ => return false,
        }
    }
    p.next().is_none()
}

/// The query string keeping only `keys` (in the page's order); empty when
/// none are kept. `query` has no leading `?`.
pub fn keep_query(query: &str, keys: &[String]) -> String {
    let kept: Vec<&str> = split(query, b'&')
        .filter(|pair| {
            let key = split(pair, b'=').next().unwrap_or("");
            !key.is_empty() && keys.iter().any(|k| k == key)
        })
        .collect();
    let mut out = String::new();
    for (i, pair) in kept.iter().enumerate() {
        out.push(if i == 0 { '?' } else { '&' });
        out.push_str(pair);
    }
    out
}

/// The page key for `origin` + `path` + `query` (no `?`): the first
/// matching route, else the scrubbed path; plus allowed query keys.
pub fn page_key(origin: &str, path: &str, query: &str, routes: &[String], query_keys: &[String]) -> String {
    let mut key = String::from(origin);
    match match_route(path, routes) {
        Some(route) => key.push_str(route),
        None => key.push_str(&scrub_path(path)),
    }
    key.push_str(&keep_query(query, query_keys));
    key
}

/// `key` without the user info (`user:password@`) of its URL's authority,
/// whatever made the key (the default, a route, a `pageKey` callback): like
/// the query string and the fragment it is not the page, and it may be a
/// credential. A key that is no URL with an authority is returned as is.
pub fn without_user_info(key: &str) -> String {
    let scheme = key
        .bytes()
        .position(|b| !(b.is_ascii_alphanumeric() || b"+-.".contains(&b)))
        .unwrap_or(key.len());
    let authority_start = match key.get(scheme..) {
        Some(rest) if scheme > 0 && rest.starts_with("://") => scheme + 3,
        Some(rest) if scheme == 0 && rest.starts_with("//") => 2,
        _ => return key.into(),
    };
    let rest = key.get(authority_start..).unwrap_or_default();
    let authority_len = rest
        .bytes()
        .position(|b| matches!(b, b'/' | b'?' | b'#' | b'\\'))
        .unwrap_or(rest.len());
    match rest
        .get(..authority_len)
        .and_then(|a| a.bytes().rposition(|b| b == b'@'))
    {
        Some(at) => [
            key.get(..authority_start).unwrap_or_default(),
            rest.get(at + 1..).unwrap_or_default(),
        ]
        .concat(),
        None => key.into(),
    }
}

/// A browser-normalised absolute URL (`location.href`, an entry's `name`)
/// as `location` would split it: origin (with any user info, which
/// [`without_user_info`] removes from the key), path and query (without
/// `?`); the fragment is dropped. `None` for a URL without `scheme://`.
pub fn split_url(url: &str) -> Option<(&str, &str, &str)> {
    // Byte searches: no substring searcher in the wasm.
    let position = |s: &str, b: u8| s.bytes().position(|c| c == b);
    let authority = url.as_bytes().windows(3).position(|w| w == b"://")? + 3;
    let url = url.get(..position(url, b'#').unwrap_or(url.len()))?;
    let (url, query) = match position(url, b'?') {
        Some(q) => (url.get(..q)?, url.get(q + 1..)?),
        None => (url, ""),
    };
    let path_start = position(url.get(authority..)?, b'/').map_or(url.len(), |p| authority + p);
    let path = url.get(path_start..).filter(|p| !p.is_empty()).unwrap_or("/");
    Some((url.get(..path_start)?, path, query))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn identifiers_are_recognised() {
        for id in [
            "12345",
            "0",
            "3f2504e0-4f89-11d3-9a0c-0305e82c3301",
            "5f4dcc3b5aa765d61d8327deb882cf99",
            "a1b2c3d4e5f6",
            "jane.doe@example.com",
            "jane%40example.com",
            "eyJhbGciOiJIUzI1NiJ9abc123",
            "AbCdEf0123456789_-xyzXYZ",
        ] {
            assert!(is_identifier(id), "{id}");
        }
        for word in [
            "",
            "products",
            "blog",
            "2fa",
            "checkout-step-two",
            "deadbeef",
            "v1",
            "index.html",
            "about-us-and-our-history",
        ] {
            assert!(!is_identifier(word), "{word}");
        }
    }

    #[test]
    fn default_key_drops_query_and_scrubs_ids() {
        assert_eq!(
            page_key(
                "https://shop.example",
                "/orders/12345/items/3f2504e0-4f89-11d3-9a0c-0305e82c3301",
                "token=abc",
                &[],
                &[]
            ),
            "https://shop.example/orders/:id/items/:id"
        );
        assert_eq!(page_key("https://a.example", "/", "", &[], &[]), "https://a.example/");
        assert_eq!(
            page_key("https://a.example", "/users/jane@example.com/", "", &[], &[]),
            "https://a.example/users/:id/"
        );
    }

    #[test]
    fn allowed_query_keys_are_kept_in_order() {
        let keys = v(&["lang", "page"]);
        assert_eq!(keep_query("q=secret&page=2&lang=de&email=x", &keys), "?page=2&lang=de");
        assert_eq!(keep_query("q=secret", &keys), "");
        assert_eq!(keep_query("", &keys), "");
        assert_eq!(keep_query("pagex=1&page", &keys), "?page");
        assert_eq!(
            page_key("https://a.example", "/search", "q=x&lang=en", &[], &keys),
            "https://a.example/search?lang=en"
        );
    }

    #[test]
    fn user_info_never_stays_in_a_key() {
        for (key, expected) in [
            ("https://jane:s3cret@shop.example/cart", "https://shop.example/cart"),
            ("https://jane@shop.example", "https://shop.example"),
            (
                "https://a:b@c@shop.example:8443/x?q=1#f",
                "https://shop.example:8443/x?q=1#f",
            ),
            ("http://user:pass@127.0.0.1:8080/", "http://127.0.0.1:8080/"),
            ("//jane:pw@cdn.example/p", "//cdn.example/p"),
            (
                "https://shop.example/users/jane@example.com",
                "https://shop.example/users/jane@example.com",
            ),
            ("https://shop.example?next=a@b", "https://shop.example?next=a@b"),
            ("/checkout", "/checkout"),
            ("custom key @ home", "custom key @ home"),
            ("", ""),
        ] {
            assert_eq!(without_user_info(key), expected, "{key}");
        }
        // Whatever made the key: the default of a URL with user info (the
        // browser's `location.origin` has none, but a page key built from
        // `location.href` by hand does), or a route.
        let routes = v(&["/products/:id"]);
        assert_eq!(
            without_user_info(&page_key("https://u:p@a.example", "/products/7", "", &routes, &[])),
            "https://a.example/products/:id"
        );
    }

    #[test]
    fn routes_replace_the_path() {
        let routes = v(&["/products/:id", "/blog/*", "/"]);
        assert_eq!(match_route("/products/shoe-42", &routes), Some("/products/:id"));
        assert_eq!(match_route("/products/shoe-42/", &routes), Some("/products/:id"));
        assert_eq!(match_route("/products/", &routes), None);
        assert_eq!(match_route("/products/a/b", &routes), None);
        assert_eq!(match_route("/blog/2024/05/hello", &routes), Some("/blog/*"));
        assert_eq!(match_route("/", &routes), Some("/"));
        assert_eq!(match_route("/about", &routes), None);
        assert_eq!(
            page_key("https://a.example", "/products/jane-doe-special", "x=1", &routes, &[]),
            "https://a.example/products/:id"
        );
        assert_eq!(
            page_key("https://a.example", "/about/12", "", &routes, &[]),
            "https://a.example/about/:id"
        );
    }

    #[test]
    fn urls_split_like_location() {
        assert_eq!(
            split_url("https://shop.example/orders/12?token=x&a=1#top"),
            Some(("https://shop.example", "/orders/12", "token=x&a=1"))
        );
        assert_eq!(
            split_url("http://127.0.0.1:8080"),
            Some(("http://127.0.0.1:8080", "/", ""))
        );
        assert_eq!(
            split_url("http://h.example?q=1"),
            Some(("http://h.example", "/", "q=1"))
        );
        assert_eq!(
            split_url("https://u:p@h.example/a"),
            Some(("https://u:p@h.example", "/a", ""))
        );
        assert_eq!(split_url("/relative"), None);
    }
}
