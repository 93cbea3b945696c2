//! From request body to storable rows: inflate, parse, validate, convert.
//! Pure functions, so the HTTP layer stays thin and this is testable (and
//! fuzzable) alone.

use std::io::Read;

use crate::validate::WireBeacon;

use crate::reason::Reason;
use crate::store::{NewBeacon, Report};
use crate::validate::{self, Invalid};

/// A parsed beacon and how many unknown fields it had (they are ignored).
#[derive(Clone, Debug, PartialEq)]
pub struct Parsed {
    pub beacon: WireBeacon,
    pub unknown_fields: u32,
}

/// Parses a beacon body. Errors keep serde's message (which names what was
/// wrong, and the line and column) and add the JSON path of the field.
pub fn parse(body: &[u8]) -> Result<Parsed, Invalid> {
    // JSON text is UTF-8: checked once for the whole body (a parse from
    // bytes checks each string again, and skips those it ignores).
    let text = std::str::from_utf8(body).map_err(|e| Invalid {
        reason: Reason::MalformedJson,
        message: format!("malformed JSON: invalid UTF-8 at byte {}", e.valid_up_to()),
        field: None,
    })?;
    // The fast path tracks no field paths; a failure is parsed again to
    // find where it is.
    let mut de = serde_json::Deserializer::from_str(text);
    let parsed = crate::unknown_fields::deserialize::<_, WireBeacon>(&mut de)
        .map_err(|_| ())
        .and_then(|parsed| de.end().map(|()| parsed).map_err(|_| ()));
    match parsed {
        Ok((beacon, unknown_fields)) => Ok(Parsed { beacon, unknown_fields }),
        Err(()) => Err(explain(body)),
    }
}

/// How deep JSON may nest: serde_json's recursion limit. The beacon
/// nests three levels; deeper bodies are refused as malformed, whichever
/// field the nesting is in.
const MAX_DEPTH: usize = 128;

/// Whether `body` nests arrays and objects deeper than `limit` (brackets
/// inside strings do not count).
fn nests_deeper_than(body: &[u8], limit: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in body {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// Why `body` does not parse, with the path of the field where it fails.
fn explain(body: &[u8]) -> Invalid {
    // Only on the failure path: valid beacons never pay for the scan.
    if nests_deeper_than(body, MAX_DEPTH) {
        return Invalid {
            reason: Reason::MalformedJson,
            message: format!("malformed JSON: nested deeper than {MAX_DEPTH} levels"),
            field: None,
        };
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    match serde_path_to_error::deserialize::<_, WireBeacon>(&mut de) {
        Err(e) => {
            // serde_json reports some type errors (a number where an enum's
            // string belongs) as syntax errors; well-formed JSON is not
            // malformed, whatever it says.
            let well_formed = serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok();
            from_serde(e, well_formed, body)
        }
        // Trailing garbage after the object is malformed JSON too.
        Ok(_) => match de.end() {
            Err(e) => Invalid {
                reason: Reason::MalformedJson,
                message: format!("malformed JSON: {e}"),
                field: None,
            },
            Ok(()) => Invalid {
                reason: Reason::MalformedJson,
                message: "malformed JSON".into(),
                field: None,
            },
        },
    }
}

/// The reason and field of a beacon serde refused, decided from the
/// body's structure and the path serde stopped at, never from the wording
/// of its message (which only goes into the message, for people).
fn from_serde(err: serde_path_to_error::Error<serde_json::Error>, well_formed: bool, body: &[u8]) -> Invalid {
    let msg = err.inner().to_string();
    let path: Vec<Step> = steps(err.path());
    let at = json_path(err.path());
    if !well_formed {
        return Invalid {
            reason: Reason::MalformedJson,
            message: format!("malformed JSON: {msg}"),
            field: at,
        };
    }
    // A number too big for a double (1e309) is well-formed JSON (serde
    // skips over it when it only checks the syntax) whose value is wrong.
    if number_out_of_range(body) {
        let message = match &at {
            Some(f) => format!("invalid beacon at {f}: {msg}"),
            None => format!("invalid beacon: a number is too large for a double ({msg})"),
        };
        return Invalid {
            reason: Reason::ValueOutOfRange,
            message,
            field: at,
        };
    }
    let value: serde_json::Value = serde_json::from_slice(body).unwrap_or(serde_json::Value::Null);
    let (reason, field) = classify(&value, &path);
    let message = match &field {
        Some(f) => format!("invalid beacon at {f}: {msg}"),
        None => format!("invalid beacon: {msg}"),
    };
    Invalid { reason, message, field }
}

/// One step of a path into the body.
#[derive(Clone, Debug, PartialEq)]
enum Step {
    Key(String),
    Index(usize),
}

fn steps(path: &serde_path_to_error::Path) -> Vec<Step> {
    use serde_path_to_error::Segment;
    let mut out = Vec::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out.push(Step::Index(*index)),
            Segment::Map { key } | Segment::Enum { variant: key } => out.push(Step::Key(key.clone())),
            Segment::Unknown => break,
        }
    }
    out
}

fn path_text(path: &[Step]) -> Option<String> {
    let mut out = String::new();
    for step in path {
        match step {
            Step::Index(i) => out.push_str(&format!("[{i}]")),
            Step::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
        }
    }
    (!out.is_empty()).then_some(out)
}

/// The required fields of the object at `path` (as `beacon.schema.json`
/// lists them), or none for objects without.
fn required(path: &[Step]) -> &'static [&'static str] {
    let key = |s: &Step, k: &str| matches!(s, Step::Key(x) if x == k);
    match path {
        [] => &["schemaVersion", "page", "metrics"],
        [m, Step::Index(_)] if key(m, "metrics") => &["name", "value", "delta", "id", "rating", "navigationType"],
        [m, Step::Index(_), a, l] if key(m, "metrics") && key(a, "attribution") && key(l, "longestScript") => {
            &["duration"]
        }
        _ => &[],
    }
}

/// Why the beacon `value` (well-formed JSON) does not fit the beacon
/// types, where serde stopped at `path`: a metric name that is a string but
/// none of the five is `unknown_metric`; a required field missing names
/// that field; anything else is `invalid_field` at the path.
fn classify(value: &serde_json::Value, path: &[Step]) -> (Reason, Option<String>) {
    let mut node = Some(value);
    for step in path {
        node = node.and_then(|n| match step {
            Step::Key(k) => n.get(k),
            Step::Index(i) => n.get(*i),
        });
    }
    let is_metric_name = matches!(path, [Step::Key(m), Step::Index(_), Step::Key(n)] if m == "metrics" && n == "name");
    match node {
        Some(serde_json::Value::String(_)) if is_metric_name => (Reason::UnknownMetric, path_text(path)),
        // serde stops at the object that lacks a field: name the field.
        Some(serde_json::Value::Object(o)) => match required(path).iter().find(|f| !o.contains_key(**f)) {
            Some(missing) => {
                let mut full = path.to_vec();
                full.push(Step::Key(missing.to_string()));
                (Reason::InvalidField, path_text(&full))
            }
            None => (Reason::InvalidField, path_text(path)),
        },
        _ => (Reason::InvalidField, path_text(path)),
    }
}

/// Whether the body (well-formed or not) holds a number literal outside
/// the range of a double, e.g. `1e309` (numbers inside strings do not
/// count).
fn number_out_of_range(body: &[u8]) -> bool {
    let (mut i, mut in_string, mut escaped) = (0, false, false);
    while i < body.len() {
        let b = body[i];
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            i += 1;
            continue;
        }
        if b == b'"' {
            in_string = true;
            i += 1;
            continue;
        }
        if b == b'-' || b.is_ascii_digit() {
            let start = i;
            while i < body.len() && matches!(body[i], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E') {
                i += 1;
            }
            let parsed = std::str::from_utf8(&body[start..i])
                .ok()
                .and_then(|t| t.parse::<f64>().ok());
            if parsed.is_some_and(f64::is_infinite) {
                return true;
            }
            continue;
        }
        i += 1;
    }
    false
}

/// `metrics[2].value` for a serde path; `None` at the root. Stops at an
/// unknown segment (serde_path_to_error's `?`, e.g. inside a bad token).
fn json_path(path: &serde_path_to_error::Path) -> Option<String> {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Unknown => break,
        }
    }
    (!out.is_empty()).then_some(out)
}

/// A valid beacon, ready to store.
#[derive(Clone, Debug, PartialEq)]
pub struct Accepted {
    pub beacon: NewBeacon,
    pub unknown_fields: u32,
}

/// Parses and validates a beacon body into what to store. A beacon is all
/// or nothing: any problem rejects all of it.
pub fn accept(body: &[u8], received_at_ms: i64, max_metrics: usize) -> Result<Accepted, Invalid> {
    let parsed = parse(body)?;
    let key = validate::validate(&parsed.beacon, max_metrics)?;
    Ok(Accepted {
        beacon: validate::new_beacon(parsed.beacon, key, received_at_ms),
        unknown_fields: parsed.unknown_fields,
    })
}

/// [`accept`] with the default limits, returning the reports only.
pub fn reports(body: &[u8], received_at_ms: i64) -> Result<Vec<Report>, Invalid> {
    accept(body, received_at_ms, validate::MAX_METRICS).map(|a| a.beacon.to_reports())
}

/// Why a gzip body cannot be inflated.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InflateError {
    #[error("the body inflates to more than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("the body is not valid gzip: {0}")]
    Malformed(String),
}

/// Inflates a gzip body, refusing to produce more than `limit` bytes (so a
/// small "zip bomb" costs at most `limit` bytes of memory).
pub fn gunzip(body: &[u8], limit: usize) -> Result<Vec<u8>, InflateError> {
    let mut out = Vec::with_capacity((body.len() * 4).min(limit));
    let mut decoder = flate2::read::GzDecoder::new(body).take(limit as u64 + 1);
    decoder
        .read_to_end(&mut out)
        .map_err(|e| InflateError::Malformed(e.to_string()))?;
    if out.len() > limit {
        return Err(InflateError::TooLarge { limit });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"schemaVersion":1,"page":"https://a.example/","metrics":[
        {"name":"FCP","value":100,"delta":100,"id":"i1","rating":"good","navigationType":"navigate"}]}"#;

    fn err(body: &str) -> Invalid {
        reports(body.as_bytes(), 0).unwrap_err()
    }

    /// Finding 9: deeply nested bodies were labelled `invalid_field` (or
    /// as a missing field), wherever the nesting was.
    #[test]
    fn bodies_nested_too_deeply_are_malformed_json() {
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        let objects = |n: usize| format!("{}1{}", "{\"a\":".repeat(n), "}".repeat(n));
        for body in [
            format!("{{\"schemaVersion\":1,\"x\":{}}}", deep(200)),
            format!("{{\"schemaVersion\":1,\"page\":\"https://a.example/\",\"metrics\":{}}}", deep(200)),
            format!(
                "{{\"schemaVersion\":1,\"page\":\"https://a.example/\",\"metrics\":[{{\"name\":\"LCP\",\"value\":{}}}]}}",
                deep(129)
            ),
            deep(10_000),
            objects(300),
        ] {
            let e = err(&body);
            assert_eq!(e.reason, Reason::MalformedJson, "{}: {}", &body[..40.min(body.len())], e.message);
            assert!(e.message.contains("nested deeper than 128"), "{}", e.message);
        }
        // Brackets inside strings are not nesting; 128 levels of real
        // nesting are only a type error.
        let e = err(&format!(
            "{{\"schemaVersion\":1,\"page\":\"{}\",\"metrics\":{}}}",
            "[".repeat(500),
            deep(127)
        ));
        assert_ne!(e.reason, Reason::MalformedJson, "{}", e.message);
    }

    #[test]
    fn good_body_gives_rows() {
        assert_eq!(reports(GOOD.as_bytes(), 0).unwrap().len(), 1);
    }

    #[test]
    fn unknown_fields_are_ignored_and_counted() {
        let body = GOOD
            .replace("{\"schemaVersion\":1,", "{\"schemaVersion\":1,\"extra\":[1,{\"a\":2}],")
            .replace("\"id\":\"i1\"", "\"id\":\"i1\",\"attribution\":{\"x\":1}");
        let a = accept(body.as_bytes(), 0, 10).unwrap();
        assert_eq!(a.unknown_fields, 2, "{body}");
        assert_eq!(a.beacon.reports.len(), 1);
        assert_eq!(accept(GOOD.as_bytes(), 0, 10).unwrap().unknown_fields, 0);
    }

    #[test]
    fn reasons() {
        assert_eq!(err("{").reason, Reason::MalformedJson);
        assert_eq!(err(&GOOD.replace("FCP", "FID")).reason, Reason::UnknownMetric);
        assert_eq!(
            err(&GOOD.replace("\"value\":100", "\"value\":\"x\"")).reason,
            Reason::InvalidField
        );
        assert_eq!(
            err(&GOOD.replace("\"value\":100", "\"value\":1e999")).reason,
            Reason::ValueOutOfRange
        );
        assert_eq!(
            err(&GOOD.replace("\"value\":100", "\"value\":-1")).reason,
            Reason::ValueOutOfRange
        );
        assert_eq!(err(&GOOD.replace("navigate", "teleport")).reason, Reason::InvalidField);
        assert_eq!(
            err(&GOOD.replace("\"schemaVersion\":1", "\"schemaVersion\":3")).reason,
            Reason::UnsupportedSchemaVersion
        );
        assert_eq!(
            err(&GOOD.replace("https://a.example/", "mailto:x@y")).reason,
            Reason::InvalidPage
        );
        let e = accept(GOOD.as_bytes(), 0, 0).unwrap_err();
        assert_eq!(
            (e.reason, e.field.as_deref()),
            (Reason::TooManyMetrics, Some("metrics"))
        );
    }

    #[test]
    fn gunzip_limits_the_inflated_size() {
        use std::io::Write;
        let gz = |data: &[u8]| {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        };
        assert_eq!(gunzip(&gz(b"hello"), 5).unwrap(), b"hello");
        assert_eq!(gunzip(&gz(b"hello!"), 5), Err(InflateError::TooLarge { limit: 5 }));
        let bomb = gz(&vec![b' '; 10 << 20]);
        assert!(bomb.len() < 20_000);
        assert_eq!(gunzip(&bomb, 65536), Err(InflateError::TooLarge { limit: 65536 }));
        assert!(matches!(gunzip(b"not gzip", 100), Err(InflateError::Malformed(_))));
        assert!(matches!(
            gunzip(&gz(b"hello")[..10], 100),
            Err(InflateError::Malformed(_))
        ));
    }

    #[test]
    fn invalid_utf8_is_malformed_even_in_an_ignored_field() {
        // A parse from bytes would skip an unknown field's string unchecked.
        let body = GOOD.replace("{\"schemaVersion\":1,", "{\"schemaVersion\":1,\"extra\":\"~\",");
        assert!(accept(body.as_bytes(), 0, 10).is_ok());
        let at = body.find('~').unwrap();
        let mut bad = body.into_bytes();
        bad[at] = 0xff;
        let e = accept(&bad, 0, 10).unwrap_err();
        assert_eq!(e.reason, Reason::MalformedJson);
        assert_eq!(e.message, format!("malformed JSON: invalid UTF-8 at byte {at}"));
        assert_eq!(e.field, None);
        // In a field that is read: the same.
        let mut page = GOOD.as_bytes().to_vec();
        page[GOOD.find("a.example").unwrap()] = 0xc3;
        assert_eq!(accept(&page, 0, 10).unwrap_err().reason, Reason::MalformedJson);
    }

    #[test]
    fn malformed_json() {
        let e = err("{\"schemaVersion\":1,");
        assert!(e.message.starts_with("malformed JSON"), "{e:?}");
        assert_eq!(err("{").field, None);
        assert_eq!(err("[1]").field, None);
        let e = err(&format!("{GOOD} x"));
        assert!(e.message.starts_with("malformed JSON"), "{e:?}");
    }

    #[test]
    fn wrong_type_names_the_field() {
        let e = err(&GOOD.replace("\"value\":100", "\"value\":\"fast\""));
        assert_eq!(e.field.as_deref(), Some("metrics[0].value"));
        assert!(e.message.contains("fast"), "{e:?}");
    }

    #[test]
    fn unknown_metric_names_the_value() {
        let e = err(&GOOD.replace("FCP", "FID"));
        assert_eq!(e.field.as_deref(), Some("metrics[0].name"));
        assert!(e.message.contains("FID"), "{e:?}");
    }

    #[test]
    fn missing_fields_are_named() {
        let e = err(r#"{"schemaVersion":1,"metrics":[]}"#);
        assert_eq!(e.field.as_deref(), Some("page"));
        let e = err(&GOOD.replace(",\"delta\":100", ""));
        assert_eq!(e.field.as_deref(), Some("metrics[0].delta"));
    }

    /// The reason comes from the body's structure and serde's path, never
    /// from the words of serde's message.
    #[test]
    fn reasons_follow_the_structure_not_serde_wording() {
        let body: serde_json::Value = serde_json::from_str(GOOD).unwrap();
        let k = |s: &str| Step::Key(s.into());
        let path = [k("metrics"), Step::Index(0), k("name")];
        let mut unknown = body.clone();
        unknown["metrics"][0]["name"] = "FID".into();
        assert_eq!(
            classify(&unknown, &path),
            (Reason::UnknownMetric, Some("metrics[0].name".into()))
        );
        let mut number = body.clone();
        number["metrics"][0]["name"] = 7.into();
        assert_eq!(
            classify(&number, &path),
            (Reason::InvalidField, Some("metrics[0].name".into()))
        );
        let mut missing = body.clone();
        missing["metrics"][0].as_object_mut().unwrap().remove("rating");
        assert_eq!(
            classify(&missing, &[k("metrics"), Step::Index(0)]),
            (Reason::InvalidField, Some("metrics[0].rating".into()))
        );
        let mut root = body;
        root.as_object_mut().unwrap().remove("page");
        assert_eq!(classify(&root, &[]), (Reason::InvalidField, Some("page".into())));
        assert!(number_out_of_range(b"[1e309]") && number_out_of_range(b"{\"a\": -2e400}"));
        assert!(!number_out_of_range(b"[1e308, \"1e309\", 0.5]"));
    }

    #[test]
    fn overflowing_number_names_the_field() {
        // serde_json refuses numbers that overflow f64 rather than making inf.
        let e = err(&GOOD.replace("\"value\":100", "\"value\":1e309"));
        assert_eq!(e.field.as_deref(), Some("metrics[0].value"));
        assert!(
            e.message
                .starts_with("invalid beacon at metrics[0].value: number out of range"),
            "{e:?}"
        );
    }
}
