//! Why a beacon was not stored: one name per rejection path, used in the
//! `reason` of error bodies, in logs and as the label of the
//! `vitalsign_beacons_rejected_total` counter.

use actix_web::http::StatusCode;

macro_rules! reasons {
    ($($variant:ident = $name:literal, $status:ident, $doc:literal;)*) => {
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Reason {
            $(#[doc = $doc] $variant,)*
        }

        impl Reason {
            pub const ALL: &'static [Reason] = &[$(Reason::$variant,)*];

            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Reason::$variant => $name,)*
                }
            }

            /// The HTTP status a beacon rejected for this reason gets.
            pub const fn status(self) -> StatusCode {
                match self {
                    $(Reason::$variant => StatusCode::$status,)*
                }
            }

            pub const fn doc(self) -> &'static str {
                match self {
                    $(Reason::$variant => $doc,)*
                }
            }
        }
    };
}

reasons! {
    BodyTooLarge = "body_too_large", PAYLOAD_TOO_LARGE,
        "The body, or the body after gzip inflation, is larger than `max_body_bytes`.";
    UnsupportedMediaType = "unsupported_media_type", UNSUPPORTED_MEDIA_TYPE,
        "Content-Type is neither text/plain nor application/json.";
    UnsupportedEncoding = "unsupported_encoding", UNSUPPORTED_MEDIA_TYPE,
        "Content-Encoding is neither gzip nor identity.";
    BadEncoding = "bad_encoding", BAD_REQUEST,
        "The body is not valid gzip.";
    MalformedJson = "malformed_json", BAD_REQUEST,
        "The body is not JSON (or not UTF-8).";
    InvalidField = "invalid_field", BAD_REQUEST,
        "A field is missing, of the wrong type, or not one of its allowed values.";
    UnknownMetric = "unknown_metric", BAD_REQUEST,
        "A metric name other than FCP, LCP, CLS, INP, TTFB.";
    ValueOutOfRange = "value_out_of_range", BAD_REQUEST,
        "A metric value or delta out of its range, not finite, or deviceMemory negative.";
    TooManyMetrics = "too_many_metrics", BAD_REQUEST,
        "More metric reports than `max_metrics`.";
    StringTooLong = "string_too_long", BAD_REQUEST,
        "page, an id or effectiveType longer than allowed.";
    UnsupportedSchemaVersion = "unsupported_schema_version", BAD_REQUEST,
        "schemaVersion is not 1.";
    InvalidPage = "invalid_page", BAD_REQUEST,
        "page is not an absolute http(s) URL with a host.";
    UnknownSite = "unknown_site", FORBIDDEN,
        "Sites are configured and the beacon's site is not one of them.";
    OriginNotAllowed = "origin_not_allowed", FORBIDDEN,
        "The Origin (or Referer) is not allowed for the beacon's site.";
    TooManySites = "too_many_sites", FORBIDDEN,
        "A new site past `max_sites` (when no sites are configured).";
    RateLimitedIp = "rate_limited_ip", TOO_MANY_REQUESTS,
        "Over the per-IP rate limit.";
    RateLimitedSite = "rate_limited_site", TOO_MANY_REQUESTS,
        "Over the per-site rate limit.";
    Bot = "bot", NO_CONTENT,
        "A known bot User-Agent: answered 204 and dropped.";
    BodyTimeout = "body_timeout", REQUEST_TIMEOUT,
        "The body did not arrive within `body_timeout` (a client trickling it).";
    Overloaded = "overloaded", SERVICE_UNAVAILABLE,
        "The write queue is full, or the collector is shutting down.";
    Starting = "starting", SERVICE_UNAVAILABLE,
        "The store is still opening (migrating its schema); `Retry-After`.";
    DiskFull = "disk_full", SERVICE_UNAVAILABLE,
        "No space left on the data directory's disk: nothing was stored; `Retry-After`.";
    StoreUnavailable = "store_unavailable", SERVICE_UNAVAILABLE,
        "The shared store (ClickHouse) cannot take the beacon and it could not be spilled to disk; `Retry-After`.";
    StoreFailed = "store_failed", INTERNAL_SERVER_ERROR,
        "The database failed to commit.";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_snake_case() {
        let mut names: Vec<&str> = Reason::ALL.iter().map(|r| r.as_str()).collect();
        assert!(names
            .iter()
            .all(|n| n.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')));
        names.sort();
        names.dedup();
        assert_eq!(names.len(), Reason::ALL.len());
    }
}
