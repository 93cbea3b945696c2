//! Time as the collector counts it: unix milliseconds, UTC hours and days,
//! calendar dates, and RFC 3339 text. No time zones: buckets are UTC.

use serde::Serialize;

pub const HOUR_MS: i64 = 3_600_000;
pub const DAY_MS: i64 = 24 * HOUR_MS;

/// The wall clock, unix milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The granularity of a time bucket: a UTC clock hour or a UTC day.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Resolution {
    Hour,
    Day,
}

impl Resolution {
    pub const fn ms(self) -> i64 {
        match self {
            Resolution::Hour => HOUR_MS,
            Resolution::Day => DAY_MS,
        }
    }

    /// The bucket holding `ms`: hours or days since the epoch.
    pub const fn bucket(self, ms: i64) -> i64 {
        ms.div_euclid(self.ms())
    }

    /// Where bucket `b` starts, unix milliseconds.
    pub const fn start(self, b: i64) -> i64 {
        b * self.ms()
    }

    /// Start of the bucket holding `ms`.
    pub const fn floor(self, ms: i64) -> i64 {
        self.start(self.bucket(ms))
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Resolution::Hour => "1h",
            Resolution::Day => "1d",
        }
    }

    pub fn parse(s: &str) -> Option<Resolution> {
        match s {
            "1h" => Some(Resolution::Hour),
            "1d" => Some(Resolution::Day),
            _ => None,
        }
    }
}

/// A calendar date, shaped like the Chrome UX Report API's
/// `collectionPeriod` dates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Date {
    pub year: i64,
    pub month: u32,
    pub day: u32,
}

impl Date {
    /// The UTC date of unix milliseconds `ms`.
    pub fn of_ms(ms: i64) -> Date {
        civil_from_days(ms.div_euclid(DAY_MS))
    }
}

/// Howard Hinnant's `civil_from_days`: days since 1970-01-01 to a date.
pub fn civil_from_days(z: i64) -> Date {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    Date {
        year: if m <= 2 { y + 1 } else { y },
        month: m,
        day: d,
    }
}

/// Howard Hinnant's `days_from_civil`: a date to days since 1970-01-01.
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = month as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `2024-05-01T13:04:05.123Z`.
pub fn rfc3339(ms: i64) -> String {
    let d = Date::of_ms(ms);
    let in_day = ms.rem_euclid(DAY_MS);
    let (h, m, s, milli) = (
        in_day / HOUR_MS,
        in_day / 60_000 % 60,
        in_day / 1000 % 60,
        in_day % 1000,
    );
    format!(
        "{:04}-{:02}-{:02}T{h:02}:{m:02}:{s:02}.{milli:03}Z",
        d.year, d.month, d.day
    )
}

/// Parses a point in time: unix milliseconds (`1714521600000`), a UTC
/// date (`2024-05-01`, its midnight) or RFC 3339 (`2024-05-01T13:00:00Z`,
/// `2024-05-01T15:00:00.5+02:00`).
pub fn parse_time(s: &str) -> Option<i64> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse().ok();
    }
    let date = s.get(..10)?;
    let b = date.as_bytes();
    if b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>, t: &str| -> Option<i64> {
        let part = t.get(r)?;
        part.bytes().all(|c| c.is_ascii_digit()).then(|| part.parse().ok())?
    };
    let (year, month, day) = (num(0..4, s)?, num(5..7, s)?, num(8..10, s)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let days = days_from_civil(year, month as u32, day as u32);
    if civil_from_days(days)
        != (Date {
            year,
            month: month as u32,
            day: day as u32,
        })
    {
        return None; // 2024-02-31
    }
    let mut ms = days * DAY_MS;
    let rest = &s[10..];
    if rest.is_empty() {
        return Some(ms);
    }
    let rest = rest.strip_prefix(['T', 't', ' '])?;
    if rest.len() < 8 || rest.as_bytes()[2] != b':' || rest.as_bytes()[5] != b':' {
        return None;
    }
    let (h, m, sec) = (num(0..2, rest)?, num(3..5, rest)?, num(6..8, rest)?);
    if h > 23 || m > 59 || sec > 60 {
        return None;
    }
    ms += h * HOUR_MS + m * 60_000 + sec * 1000;
    let mut rest = &rest[8..];
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let f = &frac[..digits.min(3)];
        ms += f.parse::<i64>().ok()? * 10i64.pow(3 - f.len() as u32);
        rest = &frac[digits..];
    }
    match rest {
        "Z" | "z" => Some(ms),
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let off = &rest[1..];
            if off.len() != 5 || off.as_bytes()[2] != b':' {
                return None;
            }
            let (oh, om) = (num(0..2, off)?, num(3..5, off)?);
            Some(ms - sign * (oh * HOUR_MS + om * 60_000))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip() {
        for z in (-800_000..800_000).step_by(97) {
            let d = civil_from_days(z);
            assert_eq!(days_from_civil(d.year, d.month, d.day), z);
        }
        assert_eq!(
            civil_from_days(0),
            Date {
                year: 1970,
                month: 1,
                day: 1
            }
        );
        assert_eq!(
            Date::of_ms(1_709_164_800_000),
            Date {
                year: 2024,
                month: 2,
                day: 29
            }
        );
    }

    #[test]
    fn formats_and_parses_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_714_572_245_123), "2024-05-01T14:04:05.123Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59.999Z");
        for ms in [0, 1_714_572_245_123, 1_709_164_800_000, 951_782_400_000] {
            assert_eq!(parse_time(&rfc3339(ms)), Some(ms));
        }
        assert_eq!(parse_time("1714572245123"), Some(1_714_572_245_123));
        assert_eq!(parse_time("2024-05-01"), Some(1_714_521_600_000));
        assert_eq!(parse_time("2024-05-01T14:04:05Z"), Some(1_714_572_245_000));
        assert_eq!(parse_time("2024-05-01T16:04:05.1+02:00"), Some(1_714_572_245_100));
        for bad in [
            "",
            "2024-13-01",
            "2024-02-30",
            "2024-05-01T25:00:00Z",
            "2024-05-01T14:04:05",
            "2024-05-01T14:04Z",
            "yesterday",
            "2024-05-01T14:04:05.Z",
            "-5",
            "2024/05/01",
        ] {
            assert_eq!(parse_time(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn buckets() {
        let t = 1_714_572_245_123;
        assert_eq!(Resolution::Hour.floor(t), 1_714_572_000_000);
        assert_eq!(Resolution::Day.floor(t), 1_714_521_600_000);
        assert_eq!(Resolution::Day.bucket(-1), -1);
        assert_eq!(
            Resolution::Hour.start(Resolution::Hour.bucket(t)),
            Resolution::Hour.floor(t)
        );
    }
}
