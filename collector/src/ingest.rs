//! From request body to storable rows: parse, validate, convert. Pure
//! functions, so the HTTP layer stays thin and this is testable alone.

use beacon::Beacon;
use serde_json::error::Category;

use crate::store::Report;
use crate::validate::{self, Invalid};

/// Parses a beacon body. Errors keep serde's message (which names what was
/// wrong, and the line and column) and add the JSON path of the field.
pub fn parse(body: &[u8]) -> Result<Beacon, Invalid> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let beacon: Beacon = serde_path_to_error::deserialize(&mut de).map_err(from_serde)?;
    // Trailing garbage after the object is malformed JSON too.
    de.end().map_err(|e| Invalid {
        message: format!("malformed JSON: {e}"),
        field: None,
    })?;
    Ok(beacon)
}

fn from_serde(err: serde_path_to_error::Error<serde_json::Error>) -> Invalid {
    let mut field = json_path(err.path());
    let inner = err.inner();
    let msg = inner.to_string();
    // serde reports a missing field at the object holding it; name the field.
    if let Some(name) = msg
        .strip_prefix("missing field `")
        .and_then(|r| r.split('`').next())
    {
        field = Some(match field {
            Some(parent) => format!("{parent}.{name}"),
            None => name.to_owned(),
        });
    }
    // serde_json files a number too big for f64 (1e309) under syntax
    // errors, but the JSON is well formed: it is the value that is wrong.
    let malformed = match inner.classify() {
        Category::Syntax => !msg.starts_with("number out of range"),
        Category::Eof => true,
        Category::Data | Category::Io => false,
    };
    let message = match &field {
        _ if malformed => format!("malformed JSON: {msg}"),
        Some(f) => format!("invalid beacon at {f}: {msg}"),
        None => format!("invalid beacon: {msg}"),
    };
    Invalid { message, field }
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

/// Parses and validates a beacon body into the rows to store. A beacon is
/// all or nothing: any problem rejects all of it.
pub fn reports(body: &[u8], received_at_ms: i64) -> Result<Vec<Report>, Invalid> {
    let beacon = parse(body)?;
    let key = validate::validate(&beacon)?;
    Ok(validate::reports(&beacon, &key, received_at_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"schemaVersion":1,"page":"https://a.example/","metrics":[
        {"name":"FCP","value":100,"delta":100,"id":"i1","rating":"good","navigationType":"navigate"}]}"#;

    fn err(body: &str) -> Invalid {
        reports(body.as_bytes(), 0).unwrap_err()
    }

    #[test]
    fn good_body_gives_rows() {
        assert_eq!(reports(GOOD.as_bytes(), 0).unwrap().len(), 1);
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
