//! The expanding value notation of `load` lines and expected results (`1 2+3x4 _ stale "up"x2`).
//!
//! A line is `<series> <values>`; the values are whitespace-separated items:
//!
//! | item | expands to |
//! |---|---|
//! | `v` | one point (`v` is a float: `1`, `-2.5`, `1e-6`, `.5`, `Inf`, `-inf`, `NaN`, or a duration `-30s` in seconds) |
//! | `stale` | one stale marker |
//! | `_` | one omitted point (a step with no sample) |
//! | `_xN` | `N` omitted points |
//! | `vxN` | `N+1` points, all `v` (promtool counts the point at the start) |
//! | `a+bxN` / `a-bxN` | `N+1` points: `a`, `a±b`, ..., `a±N·b` |
//! | `"text"` / `'text'` / `` `text` `` | one string point (klaxon extension; Go-style escapes inside double quotes) |
//! | `"text"xN` | `N+1` string points |
//! | `{{...}}` | a native histogram: recognised, never decoded (klaxon does not store histograms) |

use std::fmt;

use crate::model::stale_nan;

/// One expanded point of a value sequence.
#[derive(Debug, Clone, PartialEq)]
pub enum SeqValue {
    /// `_`: no sample at this step.
    Omitted,
    /// A float (possibly the stale marker, possibly NaN).
    Float(f64),
    /// A string sample (klaxon extension).
    Str(String),
    /// A native histogram literal (kept as text, only used to skip).
    Histogram(std::sync::Arc<str>),
}

impl fmt::Display for SeqValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SeqValue::Omitted => f.write_str("_"),
            SeqValue::Float(v) => f.write_str(&format_float(*v)),
            SeqValue::Str(s) => write!(f, "{s:?}"),
            SeqValue::Histogram(h) => f.write_str(h),
        }
    }
}

/// Formats a float the way scripts write it (`+Inf`, `NaN`, `stale`, shortest round-trip otherwise).
pub fn format_float(v: f64) -> String {
    if crate::model::is_stale_nan(v) {
        "stale".to_string()
    } else if v.is_nan() {
        "NaN".to_string()
    } else if v == f64::INFINITY {
        "+Inf".to_string()
    } else if v == f64::NEG_INFINITY {
        "-Inf".to_string()
    } else {
        format!("{v}")
    }
}

/// Upper bound on the points one line may expand to, so `1x999999999999` cannot exhaust memory.
pub const MAX_POINTS: u64 = 1_000_000;

/// Splits a `<series> <values>` line into the series descriptor and the rest.
///
/// The descriptor is an optional metric name followed by an optional `{...}` block (quotes respected).
/// Returns `None` when a `{` block is not closed.
pub fn split_series_line(line: &str) -> Option<(&str, &str)> {
    let line = line.trim();
    let bytes = line.as_bytes();
    let mut i = 0;
    while i < bytes.len() && !bytes[i].is_ascii_whitespace() && bytes[i] != b'{' {
        i += 1;
    }
    if i < bytes.len() && bytes[i] == b'{' {
        let mut quote: Option<u8> = None;
        i += 1;
        loop {
            let c = *bytes.get(i)?;
            i += 1;
            match quote {
                Some(q) if c == b'\\' && q != b'`' => i += 1,
                Some(q) if c == q => quote = None,
                Some(_) => {}
                None if c == b'"' || c == b'\'' || c == b'`' => quote = Some(c),
                None if c == b'}' => break,
                None => {}
            }
        }
        // A suffix glued to the braces (`metric{a="b"}@st`) belongs to the descriptor.
        while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
            i += 1;
        }
    }
    Some((&line[..i], line[i..].trim_start()))
}

/// Expands a whitespace-separated list of value items into points.
pub fn parse_values(s: &str) -> Result<Vec<SeqValue>, String> {
    let mut out = Vec::new();
    for item in tokenize(s)? {
        expand_item(item, &mut out)?;
        if out.len() as u64 > MAX_POINTS {
            return Err(format!("more than {MAX_POINTS} points in one series"));
        }
    }
    Ok(out)
}

/// Splits value items on whitespace, keeping quoted strings and `{{...}}` histograms whole.
fn tokenize(s: &str) -> Result<Vec<&str>, String> {
    let bytes = s.as_bytes();
    let mut items = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        let mut quote: Option<u8> = None;
        let mut depth = 0usize;
        while i < bytes.len() {
            let c = bytes[i];
            match quote {
                Some(q) => {
                    if c == b'\\' && q != b'`' {
                        i += 1;
                    } else if c == q {
                        quote = None;
                    }
                }
                None => match c {
                    b'"' | b'\'' | b'`' => quote = Some(c),
                    b'{' => depth += 1,
                    b'}' => depth = depth.saturating_sub(1),
                    c if c.is_ascii_whitespace() && depth == 0 => break,
                    _ => {}
                },
            }
            i += 1;
        }
        if quote.is_some() {
            return Err(format!("unterminated string in {:?}", &s[start..]));
        }
        if depth > 0 {
            return Err(format!("unterminated histogram in {:?}", &s[start..]));
        }
        items.push(&s[start..i.min(bytes.len())]);
    }
    Ok(items)
}

/// Parses `xN` (the repetition suffix) from the start of `s`; `s` must be exactly that. `have` points exist
/// already; the line may not grow past [`MAX_POINTS`].
fn parse_times(s: &str, item: &str, have: usize) -> Result<u64, String> {
    let digits = s
        .strip_prefix('x')
        .ok_or_else(|| format!("unexpected {s:?} in {item:?}"))?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("bad repetition count {digits:?} in {item:?}"));
    }
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("repetition count too large in {item:?}"))?;
    if n.saturating_add(have as u64 + 1) > MAX_POINTS {
        return Err(format!(
            "repetition count {n} too large in {item:?} (at most {MAX_POINTS} points per line)"
        ));
    }
    Ok(n)
}

fn expand_item(item: &str, out: &mut Vec<SeqValue>) -> Result<(), String> {
    if item.starts_with("{{") {
        // `{{...}}` possibly followed by `+{{...}}xN` or `xN`: one or more histograms, never decoded.
        let close = item
            .find("}}")
            .ok_or_else(|| format!("unterminated histogram {item:?}"))?;
        let rest = &item[close + 2..];
        let n = if rest.is_empty() {
            0
        } else {
            match rest.rfind('x') {
                Some(p)
                    if rest[p + 1..].bytes().all(|b| b.is_ascii_digit()) && p + 1 < rest.len() =>
                {
                    parse_times(&rest[p..], item, out.len())?
                }
                _ => return Err(format!("bad histogram series item {item:?}")),
            }
        };
        let h: std::sync::Arc<str> = item.into();
        out.extend(std::iter::repeat_n(SeqValue::Histogram(h), n as usize + 1));
        return Ok(());
    }
    if let Some(rest) = item.strip_prefix('_') {
        let n = if rest.is_empty() {
            1
        } else {
            parse_times(rest, item, out.len())?
        };
        out.extend(std::iter::repeat_n(SeqValue::Omitted, n as usize));
        return Ok(());
    }
    if let Some(q) = item
        .chars()
        .next()
        .filter(|c| matches!(c, '"' | '\'' | '`'))
    {
        let (text, rest) = parse_quoted(item, q)?;
        let n = if rest.is_empty() {
            0
        } else {
            parse_times(rest, item, out.len())?
        };
        out.extend(std::iter::repeat_n(SeqValue::Str(text), n as usize + 1));
        return Ok(());
    }
    let (base, rest) = parse_number(item, true).ok_or_else(|| format!("invalid value {item:?}"))?;
    if rest.is_empty() {
        out.push(SeqValue::Float(base));
        return Ok(());
    }
    if rest.starts_with('x') {
        let n = parse_times(rest, item, out.len())?;
        out.extend(std::iter::repeat_n(SeqValue::Float(base), n as usize + 1));
        return Ok(());
    }
    let (sign, rest) = match rest.as_bytes()[0] {
        b'+' => (1.0, &rest[1..]),
        b'-' => (-1.0, &rest[1..]),
        _ => return Err(format!("invalid value {item:?}")),
    };
    if crate::model::is_stale_nan(base) {
        return Err(format!("cannot add to a stale marker in {item:?}"));
    }
    let (step, rest) =
        parse_number(rest, false).ok_or_else(|| format!("invalid increment in {item:?}"))?;
    if rest.is_empty() {
        return Err(format!("missing repetition `xN` in {item:?}"));
    }
    let n = parse_times(rest, item, out.len())?;
    let step = sign * step;
    let mut v = base;
    for _ in 0..=n {
        out.push(SeqValue::Float(v));
        v += step;
    }
    Ok(())
}

/// Parses a quoted string at the start of `item`; returns the text and what follows the closing quote.
fn parse_quoted(item: &str, q: char) -> Result<(String, &str), String> {
    let mut out = String::new();
    let mut chars = item.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        if c == q {
            return Ok((out, &item[i + c.len_utf8()..]));
        }
        if c == '\\' && q != '`' {
            let (_, e) = chars
                .next()
                .ok_or_else(|| format!("unterminated string {item:?}"))?;
            out.push(match e {
                'n' => '\n',
                't' => '\t',
                'r' => '\r',
                '\\' => '\\',
                '"' => '"',
                '\'' => '\'',
                other => return Err(format!("unknown escape \\{other} in {item:?}")),
            });
        } else {
            out.push(c);
        }
    }
    Err(format!("unterminated string {item:?}"))
}

/// Parses a number at the start of `s` (a sign is accepted only when `signed`), returning the rest.
///
/// Accepts decimals with optional exponent, `Inf`/`NaN` (any case), `stale` (only when `signed`, i.e.
/// as a base value) and Prometheus durations (`1m30s`, `-500ms`) as seconds.
fn parse_number(s: &str, signed: bool) -> Option<(f64, &str)> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut sign = 1.0;
    let mut has_sign = false;
    if signed && matches!(b.first(), Some(b'+' | b'-')) {
        if b[0] == b'-' {
            sign = -1.0;
        }
        has_sign = true;
        i = 1;
    }
    let body = &s[i..];
    let lower = body.get(..3).map(|p| p.to_ascii_lowercase());
    if matches!(lower.as_deref(), Some("inf")) {
        return Some((sign * f64::INFINITY, &body[3..]));
    }
    if matches!(lower.as_deref(), Some("nan")) {
        return Some((f64::NAN, &body[3..]));
    }
    if signed && !has_sign && body.starts_with("stale") {
        return Some((stale_nan(), &body[5..]));
    }
    let start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let int_end = i;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
    }
    if i == start || (i == start + 1 && b[start] == b'.') {
        return None;
    }
    // Duration: integer followed by unit letters.
    if int_end == i
        && let Some((ms, len)) = scan_duration(&s[start..])
    {
        return Some((sign * ms as f64 / 1000.0, &s[start + len..]));
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        let mut j = i + 1;
        if j < b.len() && (b[j] == b'+' || b[j] == b'-') {
            j += 1;
        }
        let digits_start = j;
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        if j > digits_start {
            i = j;
        }
    }
    let v: f64 = s[start..i].parse().ok()?;
    Some((sign * v, &s[i..]))
}

/// Scans a Prometheus duration (`1h30m`, `500ms`, `2d`) at the start of `s`: milliseconds and bytes used.
///
/// Returns `None` unless at least one `<digits><unit>` group is present.
pub fn scan_duration(s: &str) -> Option<(i64, usize)> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut total: i64 = 0;
    let mut groups = 0;
    loop {
        let ds = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == ds {
            break;
        }
        let n: i64 = s[ds..i].parse().ok()?;
        let (mult, ulen) = if s[i..].starts_with("ms") {
            (1, 2)
        } else {
            match b.get(i) {
                Some(b's') => (1_000, 1),
                Some(b'm') => (60_000, 1),
                Some(b'h') => (3_600_000, 1),
                Some(b'd') => (86_400_000, 1),
                Some(b'w') => (7 * 86_400_000, 1),
                Some(b'y') => (365 * 86_400_000, 1),
                _ => {
                    i = ds;
                    break;
                }
            }
        };
        total = total.checked_add(n.checked_mul(mult)?)?;
        i += ulen;
        groups += 1;
    }
    (groups > 0).then_some((total, i))
}

/// Parses a script time or interval: a duration (`5m`, `1m30s`), `0`, or plain seconds (`100`, `1.5`), optionally negative.
pub fn parse_time(s: &str) -> Result<i64, String> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let ms = if let Some((ms, len)) = scan_duration(body).filter(|(_, len)| *len == body.len()) {
        let _ = len;
        ms
    } else {
        let secs: f64 = body
            .parse()
            .ok()
            .filter(|v: &f64| {
                v.is_finite() && body.bytes().all(|c| c.is_ascii_digit() || c == b'.')
            })
            .ok_or_else(|| format!("invalid time or duration {s:?}"))?;
        let ms = (secs * 1000.0).round();
        if ms.abs() > 9e15 {
            return Err(format!("time {s:?} out of range"));
        }
        ms as i64
    };
    Ok(if neg { -ms } else { ms })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn floats(s: &str) -> Vec<f64> {
        parse_values(s)
            .unwrap()
            .into_iter()
            .map(|v| match v {
                SeqValue::Float(f) => f,
                SeqValue::Omitted => -999.0,
                other => panic!("unexpected {other:?}"),
            })
            .collect()
    }

    #[test]
    fn expanding_notation() {
        assert_eq!(floats("1 2 3"), vec![1.0, 2.0, 3.0]);
        assert_eq!(floats("0+10x3"), vec![0.0, 10.0, 20.0, 30.0]);
        assert_eq!(floats("10-2x2"), vec![10.0, 8.0, 6.0]);
        assert_eq!(floats("-1-1x2"), vec![-1.0, -2.0, -3.0]);
        assert_eq!(floats("5x2"), vec![5.0, 5.0, 5.0]);
        assert_eq!(floats("_ _x2 1"), vec![-999.0, -999.0, -999.0, 1.0]);
        assert_eq!(
            floats("1e+3 1E-3 -2e2 .5 2. 12.34e6"),
            vec![1000.0, 0.001, -200.0, 0.5, 2.0, 12_340_000.0]
        );
        assert_eq!(floats("1e3+1e3x1"), vec![1000.0, 2000.0]);
        assert_eq!(
            floats("Inf -Inf +inf"),
            vec![f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY]
        );
        assert_eq!(floats("-30s-1mx2 1m30s"), vec![-30.0, -90.0, -150.0, 90.0]);
        assert_eq!(floats("-1ms"), vec![-0.001]);
        let nan = parse_values("NaN nan").unwrap();
        assert!(
            matches!(nan[0], SeqValue::Float(v) if v.is_nan() && !crate::model::is_stale_nan(v))
        );
        assert!(matches!(nan[1], SeqValue::Float(v) if v.is_nan()));
        let st = parse_values("stale").unwrap();
        assert!(matches!(st[0], SeqValue::Float(v) if crate::model::is_stale_nan(v)));
    }

    #[test]
    fn strings_and_histograms() {
        let v = parse_values(r#""healthy" 'a b'x1 "q\"x""#).unwrap();
        assert_eq!(
            v,
            vec![
                SeqValue::Str("healthy".into()),
                SeqValue::Str("a b".into()),
                SeqValue::Str("a b".into()),
                SeqValue::Str("q\"x".into()),
            ]
        );
        let v =
            parse_values("1 {{schema:1 sum:3 buckets:[1 2]}} {{count:0}}+{{count:1}}x2").unwrap();
        assert_eq!(v.len(), 5);
        assert!(matches!(v[1], SeqValue::Histogram(_)));
    }

    #[test]
    fn bad_values_are_errors() {
        for bad in [
            "abc",
            "1+",
            "1+2",
            "1x",
            "1xq",
            "\"abc",
            "{{abc",
            "1+1x99999999999999",
            "--1",
            "1..2",
            "stale+1x2",
        ] {
            assert!(parse_values(bad).is_err(), "{bad} should fail");
        }
    }

    #[test]
    fn split_lines() {
        assert_eq!(
            split_series_line(r#"metric{a="}"} 1 2"#),
            Some((r#"metric{a="}"}"#, "1 2"))
        );
        assert_eq!(split_series_line("metric 1"), Some(("metric", "1")));
        assert_eq!(split_series_line("{} 1"), Some(("{}", "1")));
        assert_eq!(
            split_series_line(r#"{"a.b", x="y"}	0+1x2"#),
            Some((r#"{"a.b", x="y"}"#, "0+1x2"))
        );
        assert_eq!(split_series_line(r#"m{a="b"@st 1"#), None);
        assert_eq!(
            split_series_line(r#"m{a="b"}@st 1"#),
            Some((r#"m{a="b"}@st"#, "1"))
        );
    }

    #[test]
    fn times() {
        assert_eq!(parse_time("0"), Ok(0));
        assert_eq!(parse_time("50m"), Ok(3_000_000));
        assert_eq!(parse_time("9m10s"), Ok(550_000));
        assert_eq!(parse_time("10s53ms"), Ok(10_053));
        assert_eq!(parse_time("100"), Ok(100_000));
        assert_eq!(parse_time("-1m"), Ok(-60_000));
        assert!(parse_time("5x").is_err());
        assert!(parse_time("").is_err());
        assert!(parse_time("1e400").is_err());
    }
}
