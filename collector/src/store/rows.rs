//! The reports of one beacon, packed into one blob of one SQLite row.
//!
//! One row per beacon instead of one per report: for the writer, a row
//! insert (with its index entry) costs far more than its bytes, and a
//! 10-metric beacon was 10 of them. The beacon-level fields (page, form
//! factor, time, page view, session) are columns; each report is a slot in
//! the `reports` blob:
//!
//! ```text
//! format u8 (= 1), then per report:
//!   metric code u8, navigation type code u8, value f64, delta f64,
//!   id length u16, id (UTF-8)            -- little-endian
//! ```
//!
//! A re-report patches its slot's value and delta in place
//! ([`replace_value`]; the length does not change).

/// The reports' attributions, as the row's `attribution` column holds them:
/// a JSON array with one entry per slot (`null` for none), or no value at
/// all (NULL) when no report of the row has one.
pub fn encode_attributions(slots: &[Option<&beacon::Attribution>]) -> Option<String> {
    if slots.iter().all(Option::is_none) {
        return None;
    }
    Some(serde_json::to_string(slots).expect("attributions serialise"))
}

/// The attributions of [`encode_attributions`]; a malformed value (never
/// written so) reads as none.
pub fn decode_attributions(text: &str) -> Vec<Option<beacon::Attribution>> {
    serde_json::from_str(text).unwrap_or_default()
}

/// The first byte of every blob: the layout below it.
pub const FORMAT: u8 = 1;

/// Most reports in one row, so that a slot number fits a `u8`.
pub const MAX_SLOTS: usize = 256;

const HEADER: usize = 2 + 8 + 8 + 2;

/// One report of a row.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Slot<'a> {
    pub metric: u8,
    pub navigation_type: u8,
    pub value: f64,
    pub delta: f64,
    pub id: &'a str,
}

/// Appends `slot` to `blob` (starting the blob if empty).
pub fn push(blob: &mut Vec<u8>, slot: &Slot) {
    if blob.is_empty() {
        blob.push(FORMAT);
    }
    // Ids are at most 128 characters (validated), far below u16::MAX bytes.
    let len = u16::try_from(slot.id.len()).expect("report id too long for a row slot");
    blob.push(slot.metric);
    blob.push(slot.navigation_type);
    blob.extend_from_slice(&slot.value.to_le_bytes());
    blob.extend_from_slice(&slot.delta.to_le_bytes());
    blob.extend_from_slice(&len.to_le_bytes());
    blob.extend_from_slice(slot.id.as_bytes());
}

/// The reports of a blob, in order; `None` if it is malformed.
pub fn decode(blob: &[u8]) -> Option<Vec<Slot<'_>>> {
    let mut rest = blob.strip_prefix(&[FORMAT])?;
    let mut slots = Vec::new();
    while !rest.is_empty() {
        let (slot, next) = decode_one(rest)?;
        slots.push(slot);
        rest = next;
    }
    Some(slots)
}

fn decode_one(bytes: &[u8]) -> Option<(Slot<'_>, &[u8])> {
    let header = bytes.get(..HEADER)?;
    let f64_at = |i: usize| f64::from_le_bytes(header[i..i + 8].try_into().expect("8 bytes"));
    let len = u16::from_le_bytes([header[18], header[19]]) as usize;
    let id = std::str::from_utf8(bytes.get(HEADER..HEADER + len)?).ok()?;
    let slot = Slot {
        metric: header[0],
        navigation_type: header[1],
        value: f64_at(2),
        delta: f64_at(10),
        id,
    };
    Some((slot, &bytes[HEADER + len..]))
}

/// If slot `index` holds the report (`metric`, `id`), sets its value and
/// delta and returns the old value; otherwise changes nothing.
pub fn replace_value(blob: &mut [u8], index: usize, metric: u8, id: &str, value: f64, delta: f64) -> Option<f64> {
    let mut at = blob.first().filter(|&&f| f == FORMAT).map(|_| 1)?;
    for _ in 0..index {
        let len = blob.get(at + 18..at + 20)?;
        at += HEADER + u16::from_le_bytes([len[0], len[1]]) as usize;
    }
    let (slot, _) = decode_one(blob.get(at..)?)?;
    if slot.metric != metric || slot.id != id {
        return None;
    }
    let old = slot.value;
    blob[at + 2..at + 10].copy_from_slice(&value.to_le_bytes());
    blob[at + 10..at + 18].copy_from_slice(&delta.to_le_bytes());
    Some(old)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(id: &str, value: f64) -> Slot<'_> {
        Slot {
            metric: 2,
            navigation_type: 4,
            value,
            delta: value / 2.0,
            id,
        }
    }

    #[test]
    fn round_trip() {
        let slots = [slot("v5-1-1", 0.0), slot("", 1.5), slot("é-ü", 120_000.0)];
        let mut blob = Vec::new();
        for s in &slots {
            push(&mut blob, s);
        }
        assert_eq!(decode(&blob).unwrap(), slots);
        assert_eq!(blob.len(), 1 + 3 * HEADER + 6 + 5);
    }

    #[test]
    fn replace_value_patches_one_slot_of_the_same_report() {
        let mut blob = Vec::new();
        for s in [slot("a", 1.0), slot("bb", 2.0), slot("ccc", 3.0)] {
            push(&mut blob, &s);
        }
        assert_eq!(replace_value(&mut blob, 1, 2, "bb", 7.0, 5.0), Some(2.0));
        let slots = decode(&blob).unwrap();
        assert_eq!((slots[1].value, slots[1].delta, slots[1].id), (7.0, 5.0, "bb"));
        assert_eq!((slots[0].value, slots[2].value), (1.0, 3.0));
        let before = blob.clone();
        assert_eq!(replace_value(&mut blob, 1, 2, "a", 9.0, 9.0), None, "another id");
        assert_eq!(replace_value(&mut blob, 1, 3, "bb", 9.0, 9.0), None, "another metric");
        assert_eq!(replace_value(&mut blob, 3, 2, "a", 9.0, 9.0), None, "no such slot");
        assert_eq!(blob, before);
        assert_eq!(replace_value(&mut [], 0, 2, "a", 1.0, 1.0), None);
    }

    #[test]
    fn malformed_blobs_are_refused() {
        let mut blob = Vec::new();
        push(&mut blob, &slot("abc", 1.0));
        assert!(decode(&blob[..blob.len() - 1]).is_none(), "truncated id");
        assert!(decode(&blob[..5]).is_none(), "truncated header");
        assert!(decode(&[]).is_none(), "no format byte");
        let mut other = blob.clone();
        other[0] = 9;
        assert!(decode(&other).is_none(), "unknown format");
        let mut bad_utf8 = blob.clone();
        let n = bad_utf8.len();
        bad_utf8[n - 1] = 0xff;
        assert!(decode(&bad_utf8).is_none(), "id not UTF-8");
        assert_eq!(decode(&[FORMAT]).unwrap(), vec![], "empty row");
    }
}
