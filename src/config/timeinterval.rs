//! Alertmanager's time intervals (`mute_time_intervals` / `active_time_intervals`), compiled to
//! ranges that test a millisecond timestamp with the same semantics: `times` are `[start, end)`
//! minutes of the day, `weekdays` / `days_of_month` (negative counts from the month's end) /
//! `months` / `years` are inclusive ranges, and every field given must match.
//!
//! Time zones: `UTC`, `Local` (treated as UTC: klaxon servers run in UTC, and a config must mean
//! the same on every host), `Etc/GMT±N` and fixed offsets (`+02:00`). Named zones with daylight
//! saving rules are rejected rather than silently shifted.

use super::delivery::{TimeInterval, TimeRange};
use crate::model::civil::{civil_from_days, days_in_month};

/// One compiled `time_intervals` entry; every non-empty field must match.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CompiledInterval {
    /// `[start, end)` minutes of the day.
    pub times: Vec<(u32, u32)>,
    /// Inclusive weekday ranges, Sunday = 0.
    pub weekdays: Vec<(u32, u32)>,
    /// Inclusive day-of-month ranges; negative days count from the end of the month.
    pub days_of_month: Vec<(i32, i32)>,
    /// Inclusive month ranges, January = 1.
    pub months: Vec<(u32, u32)>,
    /// Inclusive year ranges.
    pub years: Vec<(i64, i64)>,
    /// Offset from UTC in minutes of the interval's `location`.
    pub offset_minutes: i32,
}

/// A field of a time interval that is not valid; `field` is relative to the interval
/// (`weekdays[1]`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct TimeIntervalError {
    /// Where in the interval.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

fn bad(field: String, message: impl Into<String>) -> TimeIntervalError {
    TimeIntervalError {
        field,
        message: message.into(),
    }
}

const WEEKDAYS: [&str; 7] = [
    "sunday",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
];

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

/// Compiles one interval as written.
pub fn compile_interval(ti: &TimeInterval) -> Result<CompiledInterval, TimeIntervalError> {
    let mut out = CompiledInterval::default();
    for (i, t) in ti.times.iter().enumerate() {
        out.times.push(compile_times(t, i)?);
    }
    for (i, w) in ti.weekdays.iter().enumerate() {
        let field = format!("weekdays[{i}]");
        let (b, e) = range(w, &field, |s| {
            WEEKDAYS
                .iter()
                .position(|d| d.eq_ignore_ascii_case(s))
                .map(|p| p as i64)
                .ok_or_else(|| format!("{s:?} is not a day of the week"))
        })?;
        if b > e {
            return Err(bad(field, "start day cannot be after end day"));
        }
        out.weekdays.push((b as u32, e as u32));
    }
    for (i, d) in ti.days_of_month.iter().enumerate() {
        let field = format!("days_of_month[{i}]");
        let (b, e) = range(d, &field, |s| {
            s.parse::<i64>()
                .map_err(|_| format!("{s:?} is not a day of the month"))
        })?;
        for v in [b, e] {
            if v == 0 || !(-31..=31).contains(&v) {
                return Err(bad(
                    field,
                    format!("{v} is not a valid day of the month: out of range"),
                ));
            }
        }
        if b < 0 && e > 0 {
            return Err(bad(
                field,
                "end day must be negative if start day is negative",
            ));
        }
        let check = |v: i64| if v < 0 { 28 + v } else { v };
        if check(b) > check(e) {
            return Err(bad(
                field,
                format!("end day {e} is always before start day {b}"),
            ));
        }
        out.days_of_month.push((b as i32, e as i32));
    }
    for (i, m) in ti.months.iter().enumerate() {
        let field = format!("months[{i}]");
        let (b, e) = range(m, &field, |s| {
            if let Some(p) = MONTHS.iter().position(|n| n.eq_ignore_ascii_case(s)) {
                return Ok(p as i64 + 1);
            }
            match s.parse::<i64>() {
                Ok(n) if (1..=12).contains(&n) => Ok(n),
                _ => Err(format!("{s:?} is not a month")),
            }
        })?;
        if b > e {
            return Err(bad(
                field,
                format!("end month {e} is before start month {b}"),
            ));
        }
        out.months.push((b as u32, e as u32));
    }
    for (i, y) in ti.years.iter().enumerate() {
        let field = format!("years[{i}]");
        let (b, e) = range(y, &field, |s| match s.parse::<i64>() {
            Ok(n) if (0..=9999).contains(&n) => Ok(n),
            _ => Err(format!("{s:?} is not a year")),
        })?;
        if b > e {
            return Err(bad(field, format!("end year {e} is before start year {b}")));
        }
        out.years.push((b, e));
    }
    if let Some(loc) = &ti.location {
        out.offset_minutes = parse_location(loc).map_err(|m| bad("location".to_string(), m))?;
    }
    Ok(out)
}

fn compile_times(t: &TimeRange, i: usize) -> Result<(u32, u32), TimeIntervalError> {
    let field = format!("times[{i}]");
    let parse = |s: &str, which: &str| -> Result<u32, TimeIntervalError> {
        let err = || {
            bad(
                field.clone(),
                format!("invalid {which} {s:?}: expected HH:MM"),
            )
        };
        let (h, m) = s.trim().split_once(':').ok_or_else(err)?;
        if h.len() != 2 || m.len() != 2 {
            return Err(err());
        }
        let h: u32 = h.parse().map_err(|_| err())?;
        let m: u32 = m.parse().map_err(|_| err())?;
        if m > 59 || h > 24 || (h == 24 && m != 0) {
            return Err(err());
        }
        Ok(h * 60 + m)
    };
    let start = parse(&t.start_time, "start_time")?;
    let end = parse(&t.end_time, "end_time")?;
    if start >= end {
        return Err(bad(
            field,
            "start time cannot be equal or greater than end time",
        ));
    }
    Ok((start, end))
}

/// `a:b` or `a`, each side parsed by `one`.
fn range(
    s: &str,
    field: &str,
    one: impl Fn(&str) -> Result<i64, String>,
) -> Result<(i64, i64), TimeIntervalError> {
    let s = s.trim();
    let (b, e) = match split_range(s) {
        Some((b, e)) => (b.trim(), e.trim()),
        None => (s, s),
    };
    let b = one(b).map_err(|m| bad(field.to_string(), m))?;
    let e = one(e).map_err(|m| bad(field.to_string(), m))?;
    Ok((b, e))
}

/// Splits at the range colon (not a leading minus sign's neighbour).
fn split_range(s: &str) -> Option<(&str, &str)> {
    s.split_once(':')
}

/// UTC offset in minutes of a `location`.
pub fn parse_location(loc: &str) -> Result<i32, String> {
    let l = loc.trim();
    let unsupported = || {
        format!(
            "unsupported time zone {l:?}: klaxon supports UTC, Local (treated as UTC), \
             Etc/GMT±N and fixed offsets such as +02:00"
        )
    };
    match l {
        "" | "UTC" | "Etc/UTC" | "GMT" | "Etc/GMT" | "Z" | "Local" | "Etc/Universal"
        | "Universal" | "Zulu" | "Etc/Zulu" => return Ok(0),
        _ => {}
    }
    if let Some(rest) = l.strip_prefix("Etc/GMT") {
        // POSIX-style: Etc/GMT-2 is two hours *ahead* of UTC.
        let (sign, digits) = match rest.as_bytes().first() {
            Some(b'+') => (-1, &rest[1..]),
            Some(b'-') => (1, &rest[1..]),
            _ => return Err(unsupported()),
        };
        let h: i32 = digits.parse().map_err(|_| unsupported())?;
        if !(0..=14).contains(&h) {
            return Err(unsupported());
        }
        return Ok(sign * h * 60);
    }
    let body = l.strip_prefix("UTC").unwrap_or(l);
    let (sign, digits) = match body.as_bytes().first() {
        Some(b'+') => (1, &body[1..]),
        Some(b'-') => (-1, &body[1..]),
        _ => return Err(unsupported()),
    };
    let (h, m) = match digits.split_once(':') {
        Some((h, m)) => (h, m),
        None if digits.len() == 4 => (&digits[..2], &digits[2..]),
        None => (digits, "0"),
    };
    let h: i32 = h.parse().map_err(|_| unsupported())?;
    let m: i32 = m.parse().map_err(|_| unsupported())?;
    if !(0..=14).contains(&h) || !(0..60).contains(&m) {
        return Err(unsupported());
    }
    Ok(sign * (h * 60 + m))
}

/// A civil date and time of day in some offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    /// Year.
    pub year: i64,
    /// 1..=12.
    pub month: u32,
    /// 1..=31.
    pub day: u32,
    /// Sunday = 0.
    pub weekday: u32,
    /// Minutes since midnight.
    pub minute_of_day: u32,
}

/// The civil time of `t_ms` at `offset_minutes` from UTC.
pub fn civil(t_ms: i64, offset_minutes: i32) -> Civil {
    let local_min = t_ms.div_euclid(60_000) + i64::from(offset_minutes);
    let days = local_min.div_euclid(1440);
    let minute_of_day = local_min.rem_euclid(1440) as u32;
    let (year, month, day) = civil_from_days(days);
    Civil {
        year,
        month,
        day,
        weekday: (days + 4).rem_euclid(7) as u32,
        minute_of_day,
    }
}

impl CompiledInterval {
    /// Alertmanager's `TimeInterval.ContainsTime`.
    pub fn contains(&self, t_ms: i64) -> bool {
        let c = civil(t_ms, self.offset_minutes);
        if !self.times.is_empty()
            && !self
                .times
                .iter()
                .any(|&(s, e)| c.minute_of_day >= s && c.minute_of_day < e)
        {
            return false;
        }
        if !self.days_of_month.is_empty() {
            let dim = days_in_month(c.year, c.month) as i32;
            let day = c.day as i32;
            let hit = self.days_of_month.iter().any(|&(b, e)| {
                let b = if b < 0 { dim + b + 1 } else { b };
                let e = if e < 0 { dim + e + 1 } else { e };
                if b > dim {
                    return false;
                }
                let b = b.clamp(-dim, dim);
                let e = e.clamp(-dim, dim);
                day >= b && day <= e
            });
            if !hit {
                return false;
            }
        }
        if !self.months.is_empty()
            && !self
                .months
                .iter()
                .any(|&(b, e)| c.month >= b && c.month <= e)
        {
            return false;
        }
        if !self.weekdays.is_empty()
            && !self
                .weekdays
                .iter()
                .any(|&(b, e)| c.weekday >= b && c.weekday <= e)
        {
            return false;
        }
        if !self.years.is_empty() && !self.years.iter().any(|&(b, e)| c.year >= b && c.year <= e) {
            return false;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::civil::days_from_civil;

    fn ms(y: i64, m: u32, d: u32, hh: i64, mm: i64) -> i64 {
        (days_from_civil(y, m, d) * 1440 + hh * 60 + mm) * 60_000
    }

    fn ti(yaml: &str) -> CompiledInterval {
        let t: TimeInterval = serde_saphyr::from_str(yaml).unwrap();
        compile_interval(&t).unwrap()
    }

    fn ti_err(yaml: &str) -> String {
        let t: TimeInterval = serde_saphyr::from_str(yaml).unwrap();
        compile_interval(&t).unwrap_err().to_string()
    }

    #[test]
    fn civil_dates_round_trip() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        for d in [-800_000, -1, 0, 59, 60, 10_957, 20_000, 2_000_000] {
            let (y, m, dd) = civil_from_days(d);
            assert_eq!(days_from_civil(y, m, dd), d);
        }
        // 2026-11-24 is a Tuesday; 1970-01-01 a Thursday; 2024-02-29 exists.
        assert_eq!(civil(ms(2026, 11, 24, 12, 0), 0).weekday, 2);
        assert_eq!(civil(0, 0).weekday, 4);
        assert_eq!(civil(ms(2024, 2, 29, 0, 0), 0).day, 29);
        assert_eq!(days_in_month(2024, 2), 29);
        assert_eq!(days_in_month(2100, 2), 28);
        assert_eq!(days_in_month(2000, 2), 29);
        let c = civil(ms(2026, 1, 1, 0, 30), -60);
        assert_eq!(
            (c.year, c.month, c.day, c.minute_of_day),
            (2025, 12, 31, 23 * 60 + 30)
        );
    }

    #[test]
    fn business_hours() {
        let t =
            ti("times: [{start_time: '09:00', end_time: '17:00'}]\nweekdays: ['monday:friday']\n");
        assert!(t.contains(ms(2026, 11, 24, 9, 0)));
        assert!(t.contains(ms(2026, 11, 24, 16, 59)));
        assert!(!t.contains(ms(2026, 11, 24, 17, 0)));
        assert!(!t.contains(ms(2026, 11, 24, 8, 59)));
        assert!(!t.contains(ms(2026, 11, 28, 12, 0)), "saturday");
        assert!(!t.contains(ms(2026, 11, 29, 12, 0)), "sunday");
    }

    #[test]
    fn whole_day_end_is_24_00() {
        let t = ti("times: [{start_time: '00:00', end_time: '24:00'}]\n");
        assert!(t.contains(ms(2026, 1, 1, 23, 59)));
    }

    #[test]
    fn negative_days_of_month() {
        let t = ti("days_of_month: ['-3:-1']\n");
        assert!(t.contains(ms(2026, 2, 26, 1, 0)));
        assert!(t.contains(ms(2026, 2, 28, 1, 0)));
        assert!(!t.contains(ms(2026, 2, 25, 1, 0)));
        assert!(t.contains(ms(2026, 1, 29, 1, 0)));
        assert!(!t.contains(ms(2026, 1, 28, 1, 0)));
        let t = ti("days_of_month: ['1:5', '31']\n");
        assert!(t.contains(ms(2026, 3, 5, 0, 0)));
        assert!(!t.contains(ms(2026, 3, 6, 0, 0)));
        assert!(t.contains(ms(2026, 3, 31, 0, 0)));
        let t = ti("days_of_month: ['30:31']\n");
        assert!(
            !t.contains(ms(2026, 2, 28, 0, 0)),
            "skipped when begin > days in month"
        );
    }

    #[test]
    fn months_years_and_offsets() {
        let t = ti("months: ['december', 'january:february']\nyears: ['2026:2027']\n");
        assert!(t.contains(ms(2026, 12, 1, 0, 0)));
        assert!(t.contains(ms(2027, 2, 1, 0, 0)));
        assert!(!t.contains(ms(2026, 3, 1, 0, 0)));
        assert!(!t.contains(ms(2028, 1, 1, 0, 0)));
        let t = ti("months: ['1:3']\n");
        assert!(t.contains(ms(2026, 3, 31, 0, 0)));
        // 23:30 UTC Monday is 01:30 Tuesday at +02:00.
        let t = ti("weekdays: [tuesday]\nlocation: '+02:00'\n");
        assert!(t.contains(ms(2026, 11, 23, 23, 30)));
        let t = ti("weekdays: [tuesday]\nlocation: Etc/GMT-2\n");
        assert!(t.contains(ms(2026, 11, 23, 23, 30)));
        let t = ti("weekdays: [Tuesday]\nlocation: Local\n");
        assert!(!t.contains(ms(2026, 11, 23, 23, 30)));
    }

    #[test]
    fn locations() {
        assert_eq!(parse_location("UTC"), Ok(0));
        assert_eq!(parse_location("+05:30"), Ok(330));
        assert_eq!(parse_location("-0800"), Ok(-480));
        assert_eq!(parse_location("UTC+2"), Ok(120));
        assert_eq!(parse_location("Etc/GMT+5"), Ok(-300));
        assert!(
            parse_location("Europe/Berlin")
                .unwrap_err()
                .contains("Europe/Berlin")
        );
    }

    #[test]
    fn invalid_intervals() {
        assert!(ti_err("weekdays: ['friday:monday']\n").contains("weekdays[0]"));
        assert!(ti_err("weekdays: [funday]\n").contains("not a day"));
        assert!(ti_err("times: [{start_time: '10:00', end_time: '09:00'}]\n").contains("times[0]"));
        assert!(ti_err("times: [{start_time: '9:00', end_time: '10:00'}]\n").contains("HH:MM"));
        assert!(ti_err("days_of_month: ['0']\n").contains("out of range"));
        assert!(ti_err("days_of_month: ['-1:5']\n").contains("negative"));
        assert!(ti_err("days_of_month: ['10:5']\n").contains("always before"));
        assert!(ti_err("months: ['13']\n").contains("not a month"));
        assert!(ti_err("years: ['2027:2026']\n").contains("before start year"));
        assert!(ti_err("location: America/New_York\n").contains("unsupported time zone"));
    }
}
