//! Go's `time` package as notification templates and payloads see it: `time.Time` printing and
//! layouts (`.StartsAt.Format "15:04"`, `date`), RFC 3339 in webhook JSON, `time.Duration`
//! printing (`since`), fixed zones for `tz`, and HTTP dates for `Retry-After`.

use crate::model::civil::{civil_from_days, days_from_civil};
use std::sync::Arc;

/// Go's zero `time.Time` (0001-01-01 00:00:00 UTC) in Unix milliseconds; an unset `EndsAt`.
pub const ZERO_TIME_MS: i64 = -62_135_596_800_000;

/// An instant with the zone it is shown in (Go's `time.Time` with a fixed location).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoTime {
    /// Unix milliseconds.
    pub ms: i64,
    /// Offset east of UTC in seconds.
    pub offset_s: i32,
    /// Zone abbreviation (`UTC`, `+0200`...).
    pub zone: Arc<str>,
}

impl GoTime {
    /// `ms` in UTC.
    pub fn utc(ms: i64) -> Self {
        GoTime {
            ms,
            offset_s: 0,
            zone: Arc::from("UTC"),
        }
    }

    /// Go's `IsZero`.
    pub fn is_zero(&self) -> bool {
        self.ms == ZERO_TIME_MS
    }

    fn local(&self) -> Civil {
        Civil::from_ms(self.ms + i64::from(self.offset_s) * 1000)
    }
}

/// Broken-down local time.
struct Civil {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    ms: u32,
    weekday: u32, // 0 = Sunday
    yday: u32,    // 1-based
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

impl Civil {
    fn from_ms(ms: i64) -> Civil {
        let secs = ms.div_euclid(1000);
        let days = secs.div_euclid(86_400);
        let sod = secs.rem_euclid(86_400) as u32;
        let (year, month, day) = civil_from_days(days);
        let yday = (days - days_from_civil(year, 1, 1) + 1) as u32;
        Civil {
            year,
            month,
            day,
            hour: sod / 3600,
            minute: (sod / 60) % 60,
            second: sod % 60,
            ms: ms.rem_euclid(1000) as u32,
            weekday: (days + 4).rem_euclid(7) as u32,
            yday,
        }
    }
}

fn push_offset(out: &mut String, offset_s: i32, colon: bool, seconds: bool, hours_only: bool) {
    out.push(if offset_s < 0 { '-' } else { '+' });
    let o = offset_s.unsigned_abs();
    out.push_str(&format!("{:02}", o / 3600));
    if hours_only {
        return;
    }
    if colon {
        out.push(':');
    }
    out.push_str(&format!("{:02}", (o / 60) % 60));
    if seconds {
        if colon {
            out.push(':');
        }
        out.push_str(&format!("{:02}", o % 60));
    }
}

/// Formats `t` with a Go reference layout (`2006-01-02T15:04:05Z07:00`, `Jan _2 15:04`...).
pub fn format_layout(t: &GoTime, layout: &str) -> String {
    let c = t.local();
    let b = layout.as_bytes();
    let mut out = String::with_capacity(layout.len() + 8);
    let mut i = 0;
    let starts = |i: usize, p: &str| b[i..].starts_with(p.as_bytes());
    while i < b.len() {
        // Longest tokens first, as Go's nextStdChunk does.
        let hour12 = if c.hour.is_multiple_of(12) {
            12
        } else {
            c.hour % 12
        };
        let (text, len): (String, usize) = if starts(i, "January") {
            (MONTHS[c.month as usize - 1].into(), 7)
        } else if starts(i, "Jan") {
            (MONTHS[c.month as usize - 1][..3].into(), 3)
        } else if starts(i, "Monday") {
            (DAYS[c.weekday as usize].into(), 6)
        } else if starts(i, "Mon") {
            (DAYS[c.weekday as usize][..3].into(), 3)
        } else if starts(i, "MST") {
            (t.zone.to_string(), 3)
        } else if starts(i, "2006") {
            (format!("{:04}", c.year), 4)
        } else if starts(i, "002") {
            (format!("{:03}", c.yday), 3)
        } else if starts(i, "01") {
            (format!("{:02}", c.month), 2)
        } else if starts(i, "02") {
            (format!("{:02}", c.day), 2)
        } else if starts(i, "03") {
            (format!("{hour12:02}"), 2)
        } else if starts(i, "04") {
            (format!("{:02}", c.minute), 2)
        } else if starts(i, "05") {
            (format!("{:02}", c.second), 2)
        } else if starts(i, "06") {
            (format!("{:02}", c.year.rem_euclid(100)), 2)
        } else if starts(i, "15") {
            (format!("{:02}", c.hour), 2)
        } else if starts(i, "__2") {
            (format!("{:>3}", c.yday), 3)
        } else if starts(i, "_2") && !starts(i, "_2006") {
            (format!("{:>2}", c.day), 2)
        } else if starts(i, "1") {
            (c.month.to_string(), 1)
        } else if starts(i, "2") {
            (c.day.to_string(), 1)
        } else if starts(i, "3") {
            (hour12.to_string(), 1)
        } else if starts(i, "4") {
            (c.minute.to_string(), 1)
        } else if starts(i, "5") {
            (c.second.to_string(), 1)
        } else if starts(i, "PM") {
            ((if c.hour >= 12 { "PM" } else { "AM" }).into(), 2)
        } else if starts(i, "pm") {
            ((if c.hour >= 12 { "pm" } else { "am" }).into(), 2)
        } else if b[i] == b'-' || b[i] == b'Z' {
            let z = b[i] == b'Z';
            let rest = &layout[i + 1..];
            let forms: [(&str, bool, bool, bool); 5] = [
                ("070000", false, true, false),
                ("07:00:00", true, true, false),
                ("0700", false, false, false),
                ("07:00", true, false, false),
                ("07", false, false, true),
            ];
            match forms.iter().find(|(p, ..)| rest.starts_with(p)) {
                Some((p, colon, secs, hours)) => {
                    let mut s = String::new();
                    if z && t.offset_s == 0 {
                        s.push('Z');
                    } else {
                        push_offset(&mut s, t.offset_s, *colon, *secs, *hours);
                    }
                    (s, 1 + p.len())
                }
                None => ((b[i] as char).to_string(), 1),
            }
        } else if (b[i] == b'.' || b[i] == b',')
            && i + 1 < b.len()
            && (b[i + 1] == b'0' || b[i + 1] == b'9')
        {
            let digit = b[i + 1];
            let mut j = i + 1;
            while j < b.len() && b[j] == digit {
                j += 1;
            }
            if j < b.len() && b[j].is_ascii_digit() {
                ((b[i] as char).to_string(), 1)
            } else {
                let n = j - i - 1;
                // Nanoseconds from our millisecond precision.
                let frac = format!("{:09}", u64::from(c.ms) * 1_000_000);
                let mut digits = frac[..n.min(9)].to_string();
                if digit == b'9' {
                    digits = digits.trim_end_matches('0').to_string();
                }
                if digits.is_empty() {
                    (String::new(), j - i)
                } else {
                    (format!("{}{digits}", b[i] as char), j - i)
                }
            }
        } else {
            let ch = layout[i..].chars().next().unwrap_or(' ');
            (ch.to_string(), ch.len_utf8())
        };
        out.push_str(&text);
        i += len;
    }
    out
}

/// Go's `time.Time.String()`: `2006-01-02 15:04:05.999999999 -0700 MST`.
pub fn go_string(t: &GoTime) -> String {
    format_layout(t, "2006-01-02 15:04:05.999999999 -0700 MST")
}

/// Go's JSON form of a UTC time (RFC 3339 with trimmed fractional seconds).
pub fn rfc3339(ms: i64) -> String {
    format_layout(&GoTime::utc(ms), "2006-01-02T15:04:05.999999999Z07:00")
}

/// Go's `time.Duration.String()` for a millisecond duration (`1h2m3.5s`, `250ms`, `0s`).
pub fn duration_string(ms: i64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    let sign = if ms < 0 { "-" } else { "" };
    let a = ms.unsigned_abs();
    if a < 1000 {
        return format!("{sign}{a}ms");
    }
    let (h, m, s, frac) = (a / 3_600_000, (a / 60_000) % 60, (a / 1000) % 60, a % 1000);
    let mut out = String::from(sign);
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if h > 0 || m > 0 {
        out.push_str(&format!("{m}m"));
    }
    out.push_str(&s.to_string());
    if frac > 0 {
        out.push('.');
        out.push_str(format!("{frac:03}").trim_end_matches('0'));
    }
    out.push('s');
    out
}

/// The fixed zone for a `tz` name: `UTC`/`GMT`/`Etc/UTC`/`Z`, `Local` (klaxon shows UTC), or
/// an offset `+02:00`, `-0530`, `UTC+2`. IANA region names need a time zone database klaxon
/// does not carry; they fail like Go's `unknown time zone NAME`.
pub fn fixed_zone(name: &str) -> Result<(i32, Arc<str>), String> {
    let unknown = || format!("unknown time zone {name}");
    match name {
        "" | "UTC" | "GMT" | "Etc/UTC" | "Etc/GMT" | "Z" | "Local" => {
            return Ok((0, Arc::from("UTC")));
        }
        _ => {}
    }
    let rest = name
        .strip_prefix("UTC")
        .or_else(|| name.strip_prefix("GMT"))
        .unwrap_or(name);
    let (sign, digits) = match rest.as_bytes().first() {
        Some(b'+') => (1, &rest[1..]),
        Some(b'-') => (-1, &rest[1..]),
        _ => return Err(unknown()),
    };
    let digits: String = digits.chars().filter(|c| *c != ':').collect();
    if digits.is_empty() || digits.len() > 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(unknown());
    }
    let (h, m) = if digits.len() <= 2 {
        (digits.parse::<i32>().map_err(|_| unknown())?, 0)
    } else {
        let split = digits.len() - 2;
        (
            digits[..split].parse::<i32>().map_err(|_| unknown())?,
            digits[split..].parse::<i32>().map_err(|_| unknown())?,
        )
    };
    if h > 14 || m > 59 {
        return Err(unknown());
    }
    let offset = sign * (h * 3600 + m * 60);
    let mut abbr = String::new();
    push_offset(&mut abbr, offset, false, false, false);
    Ok((offset, Arc::from(abbr)))
}

/// Parses an HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`, RFC 850 or asctime form) to Unix ms.
pub fn parse_http_date(s: &str) -> Option<i64> {
    let month = |m: &str| {
        MONTHS
            .iter()
            .position(|n| n[..3].eq_ignore_ascii_case(m))
            .map(|i| i as u32 + 1)
    };
    let hms = |t: &str| -> Option<i64> {
        let mut it = t.split(':').map(|p| p.parse::<i64>().ok());
        let (h, m, s) = (it.next()??, it.next()??, it.next()??);
        (it.next().is_none() && h < 24 && m < 60 && s < 61).then_some(h * 3600 + m * 60 + s)
    };
    let parts: Vec<&str> = s.split_whitespace().collect();
    let (y, mo, d, secs) = match parts.as_slice() {
        // IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT
        [_, d, m, y, t, "GMT"] => (y.parse().ok()?, month(m)?, d.parse().ok()?, hms(t)?),
        // RFC 850: Sunday, 06-Nov-94 08:49:37 GMT
        [_, dmy, t, "GMT"] => {
            let mut it = dmy.split('-');
            let (d, m, y) = (it.next()?, it.next()?, it.next()?);
            let y: i64 = y.parse().ok()?;
            let y = if y < 70 { 2000 + y } else { 1900 + y };
            (y, month(m)?, d.parse().ok()?, hms(t)?)
        }
        // asctime: Sun Nov  6 08:49:37 1994
        [_, m, d, t, y] => (y.parse().ok()?, month(m)?, d.parse().ok()?, hms(t)?),
        _ => return None,
    };
    if !(1..=31).contains(&d) {
        return None;
    }
    Some((days_from_civil(y, mo, d) * 86_400 + secs) * 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: i64 = 1_700_000_000_123; // 2023-11-14 22:13:20.123 UTC, a Tuesday

    #[test]
    fn go_layouts() {
        let t = GoTime::utc(T);
        assert_eq!(go_string(&t), "2023-11-14 22:13:20.123 +0000 UTC");
        assert_eq!(
            format_layout(&t, "Mon Jan _2 15:04:05 2006"),
            "Tue Nov 14 22:13:20 2023"
        );
        assert_eq!(
            format_layout(&t, "Monday, 02-January-06 3:04PM .000"),
            "Tuesday, 14-November-23 10:13PM .123"
        );
        assert_eq!(
            format_layout(&t, "2006-01-02T15:04:05Z07:00"),
            "2023-11-14T22:13:20Z"
        );
        assert_eq!(format_layout(&t, "002 __2"), "318 318");
        let (off, zone) = fixed_zone("+05:30").unwrap();
        let local = GoTime {
            ms: T,
            offset_s: off,
            zone,
        };
        assert_eq!(
            format_layout(&local, "2006-01-02 15:04 -07:00 MST Z0700"),
            "2023-11-15 03:43 +05:30 +0530 +0530"
        );
    }

    #[test]
    fn zero_time_and_rfc3339() {
        assert_eq!(rfc3339(ZERO_TIME_MS), "0001-01-01T00:00:00Z");
        assert_eq!(
            go_string(&GoTime::utc(ZERO_TIME_MS)),
            "0001-01-01 00:00:00 +0000 UTC"
        );
        assert_eq!(rfc3339(T), "2023-11-14T22:13:20.123Z");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn durations_print_like_go() {
        assert_eq!(duration_string(0), "0s");
        assert_eq!(duration_string(250), "250ms");
        assert_eq!(duration_string(1500), "1.5s");
        assert_eq!(duration_string(3_723_000), "1h2m3s");
        assert_eq!(duration_string(60_000), "1m0s");
        assert_eq!(duration_string(-90_000), "-1m30s");
    }

    #[test]
    fn zones() {
        assert_eq!(fixed_zone("UTC").unwrap().0, 0);
        assert_eq!(fixed_zone("-0800").unwrap().0, -8 * 3600);
        assert_eq!(fixed_zone("UTC+2").unwrap().0, 7200);
        assert_eq!(
            fixed_zone("Europe/Paris").unwrap_err(),
            "unknown time zone Europe/Paris"
        );
    }

    #[test]
    fn http_dates() {
        let want = Some(784_111_777_000);
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), want);
        assert_eq!(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), want);
        assert_eq!(parse_http_date("Sun Nov  6 08:49:37 1994"), want);
        assert_eq!(parse_http_date("soon"), None);
    }
}
