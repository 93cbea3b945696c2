//! Attribution (web-vitals/attribution 6.2.3), the pure part: the rules
//! that say what to fix, as plain functions over numbers and strings,
//! tested natively. The browser side (`web/attribution/`) reads the
//! entries and the DOM and calls these.
//!
//! Built with the `attribution` feature (and for the native tests).
#![cfg_attr(not(feature = "attribution"), allow(dead_code))]

pub mod cls;
pub mod inp;
pub mod load_state;
pub mod selector;
pub mod timing;

/// A URL as the beacon carries it: without user info, query string and
/// fragment (privacy; the reference's `url` keeps them, the JS metric
/// object does too).
pub fn beacon_url(url: &str) -> String {
    let cut = url.find(['?', '#']).unwrap_or(url.len());
    crate::page_key::without_user_info(&url[..cut])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beacon_urls_lose_query_fragment_and_user_info() {
        assert_eq!(
            beacon_url("https://cdn.example/a/b.js?v=3#x"),
            "https://cdn.example/a/b.js"
        );
        assert_eq!(
            beacon_url("https://user:pw@cdn.example/b.js"),
            "https://cdn.example/b.js"
        );
        assert_eq!(beacon_url("https://u@h.example/p?q=@x"), "https://h.example/p");
        assert_eq!(beacon_url("https://h.example/p#frag?x"), "https://h.example/p");
        assert_eq!(beacon_url(""), "");
        assert_eq!(beacon_url("data:image/png;base64,AAAA"), "data:image/png;base64,AAAA");
    }
}
