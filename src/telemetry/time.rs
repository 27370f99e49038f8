//! RFC 3339 formatting and parsing without a date crate: log timestamps, health responses and
//! the query API's `time=2024-01-15T10:30:45.123Z` parameters.
use crate::model::civil::{civil_from_days, days_from_civil};

/// `2024-01-15T10:30:45.123Z` for a millisecond timestamp.
pub fn format_rfc3339_ms(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let milli = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{milli:03}Z",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    )
}

fn digits(s: &str) -> Option<i64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Parses an RFC 3339 date-time (`Z` or `±hh:mm` offset, optional fraction) into ms since the epoch.
pub fn parse_rfc3339_ms(s: &str) -> Option<i64> {
    let s = s.trim();
    if s.len() < 20 || !s.is_ascii() {
        return None;
    }
    let b = s.as_bytes();
    if b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (y, mo, d) = (digits(&s[0..4])?, digits(&s[5..7])?, digits(&s[8..10])?);
    let (h, mi, se) = (
        digits(&s[11..13])?,
        digits(&s[14..16])?,
        digits(&s[17..19])?,
    );
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let mut rest = &s[19..];
    let mut frac_ms = 0i64;
    if let Some(r) = rest.strip_prefix('.') {
        let n = r.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return None;
        }
        let frac = &r[..n];
        let padded: String = frac.chars().chain("000".chars()).take(3).collect();
        frac_ms = digits(&padded)?;
        rest = &r[n..];
    }
    let offset_s = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6 && (rest.starts_with('+') || rest.starts_with('-')) => {
            if rest.as_bytes()[3] != b':' {
                return None;
            }
            let off = digits(&rest[1..3])? * 3600 + digits(&rest[4..6])? * 60;
            if rest.starts_with('-') { -off } else { off }
        }
        _ => return None,
    };
    let secs = days_from_civil(y, u32::try_from(mo).ok()?, u32::try_from(d).ok()?) * 86_400
        + h * 3600
        + mi * 60
        + se
        - offset_s;
    secs.checked_mul(1000)?.checked_add(frac_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for ms in [0, 1_705_314_645_123, -1, 951_782_400_000, 4_102_444_800_000] {
            assert_eq!(parse_rfc3339_ms(&format_rfc3339_ms(ms)), Some(ms), "{ms}");
        }
        assert_eq!(
            format_rfc3339_ms(1_705_314_645_123),
            "2024-01-15T10:30:45.123Z"
        );
    }

    #[test]
    fn offsets_and_fractions() {
        assert_eq!(
            parse_rfc3339_ms("2024-01-15T11:30:45.1234+01:00"),
            Some(1_705_314_645_123)
        );
        assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339_ms("2024-13-01T00:00:00Z"), None);
        assert_eq!(parse_rfc3339_ms("garbage"), None);
        assert_eq!(parse_rfc3339_ms("2024-01-15T10:30:45"), None);
    }
}
