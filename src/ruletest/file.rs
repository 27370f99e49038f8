//! The `promtool test rules` file format: YAML shapes (unknown fields are errors, as promtool's
//! strict unmarshalling) and the validated form the runner executes.

use crate::model::civil::days_from_civil;
use std::collections::BTreeMap;

use serde::Deserialize;

use crate::promqltest::series::scan_duration;

/// A YAML scalar as written: promtool reads numbers into string fields as their text.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Scalar {
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string.
    Str(String),
}

impl Scalar {
    /// The scalar as text (`1` for the integer 1).
    pub fn text(&self) -> String {
        match self {
            Scalar::Bool(b) => b.to_string(),
            Scalar::Int(i) => i.to_string(),
            Scalar::Float(f) => crate::expr::format_number(*f),
            Scalar::Str(s) => s.clone(),
        }
    }
}

/// A scalar read as its source text where the YAML library gives it (`0x10` stays `0x10`, as
/// promtool reads it into a string field).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Text(pub String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Text;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string or number")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Text, E> {
                Ok(Text(crate::expr::format_number(v)))
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
        }
        d.deserialize_str(V)
    }
}

/// The whole test file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawFile {
    /// Rule files, relative to the test file; globs allowed.
    pub rule_files: Option<Vec<String>>,
    /// Rule evaluation step (default 1m).
    pub evaluation_interval: Option<Scalar>,
    /// Group names evaluated first, in this order.
    pub group_eval_order: Option<Vec<String>>,
    /// Ignore differences in the last bit of float mantissas.
    pub fuzzy_compare: Option<bool>,
    /// The test groups.
    pub tests: Option<Vec<Option<RawTestGroup>>>,
}

/// One `tests[]` entry.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawTestGroup {
    /// Step of the input series (default: `evaluation_interval`).
    pub interval: Option<Scalar>,
    /// Input series.
    pub input_series: Option<Vec<RawSeries>>,
    /// Test name.
    pub name: Option<String>,
    /// Base time of samples and evaluations (Unix seconds or RFC 3339).
    pub start_timestamp: Option<Scalar>,
    /// Alert checks.
    pub alert_rule_test: Option<Vec<RawAlertTest>>,
    /// Query checks.
    pub promql_expr_test: Option<Vec<RawPromqlTest>>,
    /// `$externalLabels` of templates.
    pub external_labels: Option<BTreeMap<String, Scalar>>,
    /// `$externalURL` of templates.
    pub external_url: Option<String>,
}

/// One input series.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawSeries {
    /// Series selector notation.
    pub series: Option<String>,
    /// Expanding value notation.
    pub values: Option<Text>,
}

/// One `alert_rule_test[]` entry.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawAlertTest {
    /// When to check, relative to the start.
    pub eval_time: Option<Scalar>,
    /// Which alert.
    pub alertname: Option<String>,
    /// The alerts expected firing.
    pub exp_alerts: Option<Vec<Option<RawAlert>>>,
}

/// One expected alert.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawAlert {
    /// Labels (without `alertname`).
    pub exp_labels: Option<BTreeMap<String, Scalar>>,
    /// Rendered annotations.
    pub exp_annotations: Option<BTreeMap<String, Scalar>>,
}

/// One `promql_expr_test[]` entry.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawPromqlTest {
    /// The query.
    pub expr: Option<String>,
    /// When to run it, relative to the start.
    pub eval_time: Option<Scalar>,
    /// Expected result.
    pub exp_samples: Option<Vec<RawSample>>,
}

/// One expected sample.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawSample {
    /// Series notation; empty for no labels.
    pub labels: Option<String>,
    /// Expected value (a string that is no number is a string sample, a klaxon extension).
    pub value: Option<Scalar>,
    /// Expected native histogram (not supported: the case is skipped).
    pub histogram: Option<String>,
}

/// Parses a promtool duration (`5m`, `1h30m`, `100d`, `0`); negative durations are refused.
pub fn parse_duration(s: &Scalar) -> Result<i64, String> {
    match s {
        Scalar::Int(0) => Ok(0),
        Scalar::Float(f) if *f == 0.0 => Ok(0),
        Scalar::Str(t) => {
            let t = t.trim();
            if t == "0" {
                return Ok(0);
            }
            match scan_duration(t) {
                Some((ms, len)) if len == t.len() => Ok(ms),
                _ => Err(format!(
                    "invalid duration {t:?} (want e.g. 30s, 5m, 1h30m, 1d)"
                )),
            }
        }
        other => Err(format!(
            "invalid duration {} (want e.g. 30s, 5m, 1h30m, 1d)",
            other.text()
        )),
    }
}

/// Parses `start_timestamp`: Unix seconds, or an RFC 3339 time; milliseconds since the epoch.
pub fn parse_start(s: &Scalar) -> Result<i64, String> {
    let bad = || format!("invalid start_timestamp {:?}", s.text());
    match s {
        Scalar::Int(i) => i.checked_mul(1000).ok_or_else(bad),
        Scalar::Float(f) if f.is_finite() && f.abs() < 9e12 => Ok((f * 1000.0).round() as i64),
        Scalar::Str(t) => {
            let t = t.trim();
            if let Ok(i) = t.parse::<i64>() {
                return i.checked_mul(1000).ok_or_else(bad);
            }
            parse_rfc3339(t).ok_or_else(bad)
        }
        _ => Err(bad()),
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)` to milliseconds since the epoch.
fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut frac_ms = 0i64;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        i = start;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return None;
        }
        let digits = &s[start..i.min(start + 3)];
        frac_ms = format!("{digits:0<3}").parse().ok()?;
    }
    let offset_min = match s.get(i..)? {
        "Z" | "z" => 0,
        rest if rest.len() == 6 && (rest.starts_with('+') || rest.starts_with('-')) => {
            if rest.as_bytes()[3] != b':' {
                return None;
            }
            let oh = num(i + 1..i + 3)?;
            let om = num(i + 4..i + 6)?;
            let v = oh * 60 + om;
            if rest.starts_with('-') { -v } else { v }
        }
        _ => return None,
    };
    let days = days_from_civil(y, u32::try_from(mo).ok()?, u32::try_from(d).ok()?);
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset_min * 60;
    Some(secs * 1000 + frac_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_keep_their_text() {
        let s: RawSeries = serde_saphyr::from_str("series: up\nvalues: 0x10\n").unwrap();
        assert_eq!(s.values, Some(Text("0x10".into())));
        let s: RawSeries = serde_saphyr::from_str("series: up\nvalues: 1\n").unwrap();
        assert_eq!(s.values, Some(Text("1".into())));
        let s: RawSeries =
            serde_saphyr::from_str("series: up\nvalues: 2.9999999999999996\n").unwrap();
        assert_eq!(s.values, Some(Text("2.9999999999999996".into())));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration(&Scalar::Int(0)), Ok(0));
        assert_eq!(parse_duration(&Scalar::Str("0".into())), Ok(0));
        assert_eq!(parse_duration(&Scalar::Str("1d".into())), Ok(86_400_000));
        assert_eq!(
            parse_duration(&Scalar::Str("2m59s999ms".into())),
            Ok(179_999)
        );
        assert!(parse_duration(&Scalar::Str("5x".into())).is_err());
        assert!(parse_duration(&Scalar::Int(5)).is_err());
    }

    #[test]
    fn start_timestamps() {
        assert_eq!(
            parse_start(&Scalar::Str("2024-01-01T00:00:00Z".into())),
            Ok(1_704_067_200_000)
        );
        assert_eq!(
            parse_start(&Scalar::Str("2024-01-01T01:00:00.5+01:00".into())),
            Ok(1_704_067_200_500)
        );
        assert_eq!(
            parse_start(&Scalar::Int(1_609_459_200)),
            Ok(1_609_459_200_000)
        );
        assert!(parse_start(&Scalar::Str("yesterday".into())).is_err());
    }
}
