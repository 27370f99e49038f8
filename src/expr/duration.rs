//! PromQL durations (`1h30m`, `5m`, `500ms`) and number literals, shared by the parser, the
//! printer and the test-script runner.

use std::fmt::Write as _;

/// Milliseconds per unit, largest first: the order units must appear in, as in Prometheus.
const UNITS: [(&str, i64); 7] = [
    ("y", 365 * 24 * 3_600_000),
    ("w", 7 * 24 * 3_600_000),
    ("d", 24 * 3_600_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
];

/// Why a duration string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Nothing to parse.
    #[error("empty duration string")]
    Empty,
    /// Not `[0-9]+unit...` with units in y, w, d, h, m, s, ms order, nor a plain number.
    #[error("not a valid duration string: {0:?}")]
    Invalid(String),
    /// Does not fit in milliseconds as a signed 64-bit integer.
    #[error("duration out of range: {0:?}")]
    OutOfRange(String),
}

/// Parses a PromQL duration into milliseconds.
///
/// Accepts unit strings (`1y2w3d4h5m6s7ms`, each unit at most once and largest first, as
/// Prometheus' `model.ParseDuration`) and, as PromQL 3 does wherever a duration is expected,
/// a plain non-negative number meaning seconds (`300`, `1.5`, `0`). A leading `-` is accepted
/// so callers can read negative offsets.
pub fn parse_duration(s: &str) -> Result<i64, DurationError> {
    let t = s.trim();
    if t.is_empty() {
        return Err(DurationError::Empty);
    }
    let (neg, body) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t),
    };
    let ms = match parse_units(body) {
        Ok(ms) => ms,
        Err(UnitsError::Overflow) => return Err(DurationError::OutOfRange(s.to_string())),
        Err(UnitsError::Syntax) => {
            let secs = parse_number(body).ok_or_else(|| DurationError::Invalid(s.to_string()))?;
            if secs.is_nan() || secs < 0.0 {
                return Err(DurationError::Invalid(s.to_string()));
            }
            seconds_to_ms(secs).ok_or_else(|| DurationError::OutOfRange(s.to_string()))?
        }
    };
    Ok(if neg { -ms } else { ms })
}

/// Why a `1h30m`-style string did not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UnitsError {
    /// Not digits+unit groups in decreasing unit order.
    Syntax,
    /// Well-formed but larger than `i64` milliseconds.
    Overflow,
}

/// `1h30m` style: digits+unit groups, units strictly in decreasing size.
pub(crate) fn parse_units(s: &str) -> Result<i64, UnitsError> {
    let mut next_unit = 0; // index into UNITS of the largest unit still allowed
    let mut total: Option<i64> = Some(0);
    let mut rest = s;
    if rest.is_empty() {
        return Err(UnitsError::Syntax);
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(UnitsError::Syntax);
        }
        let n: Option<i64> = rest[..digits].parse().ok();
        rest = &rest[digits..];
        let (idx, (unit, size)) = UNITS
            .iter()
            .enumerate()
            .skip(next_unit)
            // "ms" must win over "m".
            .find(|(_, (u, _))| rest.starts_with(u) && !(*u == "m" && rest.starts_with("ms")))
            .ok_or(UnitsError::Syntax)?;
        rest = &rest[unit.len()..];
        next_unit = idx + 1;
        total = total.and_then(|t| {
            n.and_then(|n| n.checked_mul(*size))
                .and_then(|v| t.checked_add(v))
        });
    }
    total.ok_or(UnitsError::Overflow)
}

/// Seconds (a PromQL number used as a duration or timestamp) to whole milliseconds, rounding to
/// the nearest millisecond; `None` for NaN, infinities and values beyond `i64` milliseconds.
pub(crate) fn seconds_to_ms(secs: f64) -> Option<i64> {
    let ms = (secs * 1000.0).round();
    // 2^63 is exactly representable; anything at or above it does not fit.
    if ms.is_finite() && ms.abs() < -(i64::MIN as f64) {
        Some(ms as i64)
    } else {
        None
    }
}

/// Parses a PromQL number literal: decimal with optional exponent, `.5`, `2.`, hex `0x1F`,
/// Go-style octal integers with a leading zero (`010` is 8, as Go's `ParseInt(s, 0, 64)`),
/// and `Inf`/`NaN` in any case. No sign.
pub(crate) fn parse_number(s: &str) -> Option<f64> {
    if s.eq_ignore_ascii_case("inf") {
        return Some(f64::INFINITY);
    }
    if s.eq_ignore_ascii_case("nan") {
        return Some(f64::NAN);
    }
    if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        return Some(
            hex.chars()
                .filter_map(|c| c.to_digit(16))
                .fold(0.0, |acc, d| acc * 16.0 + f64::from(d)),
        );
    }
    if s.len() > 1 && s.starts_with('0') && s.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return Some(
            s.bytes()
                .fold(0.0, |acc, d| acc * 8.0 + f64::from(d - b'0')),
        );
    }
    let ok_chars = s
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'));
    if !ok_chars
        || !s
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_digit() || b == b'.')
    {
        return None;
    }
    s.parse::<f64>().ok()
}

/// Formats milliseconds as a PromQL duration (`1h30m`, `500ms`, `0s`, `-5m`), using the largest
/// units first, so that `parse_duration(&format_duration(ms)) == Ok(ms)`.
pub fn format_duration(ms: i64) -> String {
    if ms == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    if ms < 0 {
        out.push('-');
    }
    let mut rest = ms.unsigned_abs();
    for (unit, size) in UNITS {
        let size = size.unsigned_abs();
        if rest >= size {
            let _ = write!(out, "{}{unit}", rest / size);
            rest %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(parse_duration("5m"), Ok(300_000));
        assert_eq!(parse_duration("1h30m"), Ok(5_400_000));
        assert_eq!(parse_duration("1y"), Ok(31_536_000_000));
        assert_eq!(parse_duration("500ms"), Ok(500));
        assert_eq!(parse_duration("1m40s"), Ok(100_000));
        assert_eq!(parse_duration("2w1d"), Ok(15 * 86_400_000));
        assert_eq!(parse_duration("-5m"), Ok(-300_000));
        assert_eq!(parse_duration("0"), Ok(0));
        assert_eq!(parse_duration("100"), Ok(100_000));
        assert_eq!(parse_duration("1.234"), Ok(1234));
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("5m1h").is_err());
        assert!(parse_duration("5m5m").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("m").is_err());
        assert!(parse_duration("Inf").is_err());
        assert!(parse_duration("99999999999999999999y").is_err());
    }

    #[test]
    fn format_roundtrips() {
        for ms in [
            0,
            1,
            999,
            1000,
            60_000,
            5_400_000,
            31_536_000_000 + 1,
            -300_000,
            i64::MAX,
            i64::MIN + 1,
        ] {
            let s = format_duration(ms);
            assert_eq!(parse_duration(&s), Ok(ms), "{s}");
        }
        assert_eq!(format_duration(5_400_000), "1h30m");
        assert_eq!(format_duration(1), "1ms");
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_number("0x1f"), Some(31.0));
        assert_eq!(parse_number("010"), Some(8.0));
        assert_eq!(parse_number("09"), Some(9.0));
        assert_eq!(parse_number(".5"), Some(0.5));
        assert_eq!(parse_number("2."), Some(2.0));
        assert_eq!(parse_number("12.34e+6"), Some(12_340_000.0));
        assert!(parse_number("NaN").is_some_and(f64::is_nan));
        assert_eq!(parse_number("inF"), Some(f64::INFINITY));
        assert_eq!(parse_number("1x"), None);
    }
}
