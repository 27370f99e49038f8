//! Prometheus' template functions (`template/template.go` semantics, independently written).

use crate::model::civil::civil_from_days;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use regex::Regex;

use super::QueryFn;
use super::exec::{FuncError, Functions, arg_str, query_escape, want_args};
use super::gofmt::format_g;
use super::value::Value;

/// Names of the Prometheus functions [`PromFunctions`] provides.
pub const PROM_FUNCS: &[&str] = &[
    "query",
    "first",
    "label",
    "value",
    "strvalue",
    "sortByLabel",
    "args",
    "reReplaceAll",
    "match",
    "title",
    "toUpper",
    "toLower",
    "safeHtml",
    "humanize",
    "humanize1024",
    "humanizeDuration",
    "humanizePercentage",
    "humanizeTimestamp",
    "toTime",
    "parseDuration",
    "stripPort",
    "stripDomain",
    "graphLink",
    "tableLink",
    "externalURL",
    "pathPrefix",
];

/// Execution steps charged per `query` call (bounds the number of queries per expansion).
const QUERY_COST: u64 = 10_000;
/// Execution steps charged per regex function call (compilation is cached, matching is not free).
const REGEX_COST: u64 = 100;
/// Distinct patterns cached per expansion.
const REGEX_CACHE: usize = 32;

/// The Prometheus function set bound to one evaluation (query callback, time, external URL).
pub struct PromFunctions<'a> {
    query: Option<&'a dyn QueryFn>,
    t_ms: i64,
    external_url: &'a str,
    regexes: RefCell<HashMap<String, Regex>>,
}

impl<'a> PromFunctions<'a> {
    /// Binds the functions to a query callback (`None` makes `query` fail), time and external URL.
    pub fn new(query: Option<&'a dyn QueryFn>, t_ms: i64, external_url: &'a str) -> Self {
        PromFunctions {
            query,
            t_ms,
            external_url,
            regexes: RefCell::new(HashMap::new()),
        }
    }

    fn regex(&self, p: &str) -> Result<Regex, FuncError> {
        if let Some(r) = self.regexes.borrow().get(p) {
            return Ok(r.clone());
        }
        let r = regex(p)?;
        let mut cache = self.regexes.borrow_mut();
        if cache.len() < REGEX_CACHE {
            cache.insert(p.to_string(), r.clone());
        }
        Ok(r)
    }
}

fn err<T>(msg: impl Into<String>) -> Result<T, FuncError> {
    Err(FuncError::Call(msg.into()))
}

/// Go's `strconv.ParseFloat(s, 64)` (decimal, `Inf`, `NaN`), with its error wording.
pub fn parse_go_float(s: &str) -> Result<f64, String> {
    let ok = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'+' | b'-'));
    match s.parse::<f64>() {
        Ok(f) if ok => Ok(f),
        _ => Err(format!(
            "strconv.ParseFloat: parsing {}: invalid syntax",
            super::gofmt::quote(s)
        )),
    }
}

/// Prometheus' `convertToFloat`: numbers, and strings that parse as numbers.
pub fn to_float(v: &Value) -> Result<f64, FuncError> {
    match v {
        Value::Float(f) => Ok(*f),
        Value::Int(i) => Ok(*i as f64),
        Value::Str(s) => parse_go_float(s).map_err(FuncError::Call),
        other => err(format!("can't convert {} to float", other.type_name())),
    }
}

fn g4(v: f64) -> String {
    format_g(v, Some(4))
}

/// Prometheus' `humanize`: SI prefixes with 4 significant digits.
pub fn humanize(mut v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return g4(v);
    }
    let mut prefix = "";
    if v.abs() >= 1.0 {
        for p in ["k", "M", "G", "T", "P", "E", "Z", "Y"] {
            if v.abs() < 1000.0 {
                break;
            }
            prefix = p;
            v /= 1000.0;
        }
    } else {
        for p in ["m", "µ", "n", "p", "f", "a", "z", "y"] {
            if v.abs() >= 1.0 {
                break;
            }
            prefix = p;
            v *= 1000.0;
        }
    }
    format!("{}{prefix}", g4(v))
}

/// Prometheus' `humanize1024`: binary prefixes (`ki`, `Mi`, ...) with 4 significant digits.
pub fn humanize1024(mut v: f64) -> String {
    if v.abs() <= 1.0 || !v.is_finite() {
        return g4(v);
    }
    let mut prefix = "";
    for p in ["ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"] {
        if v.abs() < 1024.0 {
            break;
        }
        prefix = p;
        v /= 1024.0;
    }
    format!("{}{prefix}", g4(v))
}

/// Prometheus' `humanizeDuration`: seconds as `1d 2h 3m 4s`, sub-second with SI prefixes.
pub fn humanize_duration(mut v: f64) -> String {
    if !v.is_finite() {
        return g4(v);
    }
    if v == 0.0 {
        return format!("{}s", g4(v));
    }
    if v.abs() >= 1.0 {
        let sign = if v < 0.0 { "-" } else { "" };
        v = v.abs();
        let d = v as i64;
        let (secs, mins, hours, days) = (d % 60, (d / 60) % 60, (d / 3600) % 24, d / 86400);
        if days != 0 {
            return format!("{sign}{days}d {hours}h {mins}m {secs}s");
        }
        if hours != 0 {
            return format!("{sign}{hours}h {mins}m {secs}s");
        }
        if mins != 0 {
            return format!("{sign}{mins}m {secs}s");
        }
        return format!("{sign}{}s", g4(v));
    }
    let mut prefix = "";
    for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
        if v.abs() >= 1.0 {
            break;
        }
        prefix = p;
        v *= 1000.0;
    }
    format!("{}{prefix}s", g4(v))
}

/// Prometheus' `humanizePercentage`: a ratio as a percentage with 4 significant digits.
pub fn humanize_percentage(v: f64) -> String {
    format!("{}%", g4(v * 100.0))
}

/// Formats Unix milliseconds like Go's `time.Time.String()` in UTC.
pub fn format_go_time_ms(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let frac_ms = ms.rem_euclid(1000);
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    let mut out = format!(
        "{y:04}-{mo:02}-{d:02} {:02}:{:02}:{:02}",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    );
    if frac_ms != 0 {
        let f = format!("{frac_ms:03}");
        out.push('.');
        out.push_str(f.trim_end_matches('0'));
    }
    out.push_str(" +0000 UTC");
    out
}

/// Prometheus' `floatToTime` (seconds to model time, millisecond precision) as Go prints it.
fn float_to_time(v: f64) -> Result<String, FuncError> {
    let ns = v * 1e9;
    if ns > i64::MAX as f64 || ns < i64::MIN as f64 {
        return err(format!(
            "{} cannot be represented as a nanoseconds timestamp since it overflows int64",
            format_g(v, None)
        ));
    }
    Ok(format_go_time_ms((ns as i64) / 1_000_000))
}

/// Go's `net.SplitHostPort`, returning `None` on error.
fn split_host_port(s: &str) -> Option<(&str, &str)> {
    if let Some(rest) = s.strip_prefix('[') {
        let end = rest.find(']')?;
        let host = &rest[..end];
        let port = rest[end + 1..].strip_prefix(':')?;
        if port.contains(':') || port.contains(']') {
            return None;
        }
        return Some((host, port));
    }
    let i = s.rfind(':')?;
    let host = &s[..i];
    if host.contains(':') || host.contains('[') || host.contains(']') {
        return None;
    }
    Some((host, &s[i + 1..]))
}

fn sample_of(v: &Value, expected: &str) -> Result<Option<Arc<super::value::Struct>>, FuncError> {
    match v {
        Value::Struct(s) if s.type_name == "*template.sample" => Ok(Some(s.clone())),
        Value::Missing | Value::Nil => Ok(None),
        other => Err(FuncError::Raw(format!(
            "wrong type for value; expected {expected}; got {}",
            other.type_name()
        ))),
    }
}

fn sample_field<'v>(s: &'v super::value::Struct, name: &str) -> Option<&'v Value> {
    s.fields.iter().find(|(n, _)| n == name).map(|(_, v)| v)
}

fn sample_label(s: &super::value::Struct, label: &str) -> String {
    match sample_field(s, "Labels") {
        Some(Value::Map(m)) => match m.get(label) {
            Some(Value::Str(v)) => v.to_string(),
            _ => String::new(),
        },
        _ => String::new(),
    }
}

fn list_of(v: &Value) -> Result<Arc<Vec<Value>>, FuncError> {
    match v {
        Value::List(l) => Ok(l.clone()),
        Value::Missing | Value::Nil => Ok(Arc::new(Vec::new())),
        other => Err(FuncError::Raw(format!(
            "wrong type for value; expected template.queryResult; got {}",
            other.type_name()
        ))),
    }
}

/// Builds the `*template.sample` value for one query result.
pub fn sample_value(labels: &BTreeMap<String, String>, value: f64) -> Value {
    Value::new_struct(
        "*template.sample",
        vec![
            ("Labels", Value::string_map(labels)),
            ("Value", Value::Float(value)),
        ],
    )
}

fn regex(p: &str) -> Result<Regex, FuncError> {
    Regex::new(p).map_err(|e| {
        let msg = e.to_string();
        let last = msg.lines().last().unwrap_or("invalid pattern").trim();
        let last = last.strip_prefix("error: ").unwrap_or(last);
        FuncError::Call(format!("error parsing regexp: {last}: `{p}`"))
    })
}

fn title(s: &str) -> String {
    let is_sep = |c: char| {
        if c.is_ascii() {
            !(c.is_ascii_alphanumeric() || c == '_')
        } else if c.is_alphanumeric() {
            false
        } else {
            c.is_whitespace()
        }
    };
    let mut prev = ' ';
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if is_sep(prev) {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev = c;
    }
    out
}

impl Functions for PromFunctions<'_> {
    fn has(&self, name: &str) -> bool {
        PROM_FUNCS.contains(&name)
    }

    fn cost(&self, name: &str) -> u64 {
        match name {
            "query" => QUERY_COST,
            "reReplaceAll" | "match" => REGEX_COST,
            _ => 0,
        }
    }

    fn call(&self, name: &str, a: &[Value]) -> Result<Value, FuncError> {
        let s = |v: String| Ok(Value::str(v));
        match name {
            "humanize" | "humanize1024" | "humanizeDuration" | "humanizePercentage"
            | "humanizeTimestamp" | "toTime" => {
                want_args(name, a, 1)?;
                let v = to_float(&a[0])?;
                match name {
                    "humanize" => s(humanize(v)),
                    "humanize1024" => s(humanize1024(v)),
                    "humanizeDuration" => s(humanize_duration(v)),
                    "humanizePercentage" => s(humanize_percentage(v)),
                    "humanizeTimestamp" if !v.is_finite() => s(g4(v)),
                    "toTime" if !v.is_finite() => err("value is NaN or Inf"),
                    _ => s(float_to_time(v)?),
                }
            }
            "query" => {
                want_args(name, a, 1)?;
                let q = arg_str(&a[0])?;
                let Some(qf) = self.query else {
                    return err("query is not available in this context");
                };
                let res = qf.query(q, self.t_ms).map_err(FuncError::Call)?;
                Ok(Value::List(Arc::new(
                    res.iter()
                        .map(|r| sample_value(&r.labels, r.value))
                        .collect(),
                )))
            }
            "first" => {
                want_args(name, a, 1)?;
                let l = list_of(&a[0])?;
                match l.first() {
                    Some(v) => Ok(v.clone()),
                    None => err("first() called on vector with no elements"),
                }
            }
            "label" => {
                want_args(name, a, 2)?;
                let l = arg_str(&a[0])?;
                Ok(match sample_of(&a[1], "*template.sample")? {
                    Some(smp) => Value::str(sample_label(&smp, l)),
                    None => Value::str(""),
                })
            }
            "value" => {
                want_args(name, a, 1)?;
                match sample_of(&a[0], "*template.sample")? {
                    Some(smp) => Ok(sample_field(&smp, "Value").cloned().unwrap_or(Value::Nil)),
                    None => err("runtime error: invalid memory address or nil pointer dereference"),
                }
            }
            "strvalue" => {
                want_args(name, a, 1)?;
                match sample_of(&a[0], "*template.sample")? {
                    Some(smp) => s(sample_label(&smp, "__value__")),
                    None => s(String::new()),
                }
            }
            "sortByLabel" => {
                want_args(name, a, 2)?;
                let l = arg_str(&a[0])?;
                let list = list_of(&a[1])?;
                let mut keyed: Vec<(String, Value)> = list
                    .iter()
                    .map(|v| {
                        let k = match v {
                            Value::Struct(st) => sample_label(st, l),
                            _ => String::new(),
                        };
                        (k, v.clone())
                    })
                    .collect();
                keyed.sort_by(|x, y| x.0.cmp(&y.0));
                Ok(Value::List(Arc::new(
                    keyed.into_iter().map(|(_, v)| v).collect(),
                )))
            }
            "args" => Ok(Value::Map(Arc::new(
                a.iter()
                    .enumerate()
                    .map(|(i, v)| (format!("arg{i}"), v.clone()))
                    .collect(),
            ))),
            "reReplaceAll" => {
                want_args(name, a, 3)?;
                let re = self.regex(arg_str(&a[0])?)?;
                let repl = arg_str(&a[1])?;
                s(re.replace_all(arg_str(&a[2])?, repl).into_owned())
            }
            "match" => {
                want_args(name, a, 2)?;
                let re = self.regex(arg_str(&a[0])?)?;
                Ok(Value::Bool(re.is_match(arg_str(&a[1])?)))
            }
            "title" => {
                want_args(name, a, 1)?;
                s(title(arg_str(&a[0])?))
            }
            "toUpper" => {
                want_args(name, a, 1)?;
                s(arg_str(&a[0])?.to_uppercase())
            }
            "toLower" => {
                want_args(name, a, 1)?;
                s(arg_str(&a[0])?.to_lowercase())
            }
            "safeHtml" => {
                want_args(name, a, 1)?;
                s(arg_str(&a[0])?.to_string())
            }
            "parseDuration" => {
                want_args(name, a, 1)?;
                let d = arg_str(&a[0])?;
                match crate::expr::parse_duration(d) {
                    Ok(ms) => Ok(Value::Float(ms as f64 / 1000.0)),
                    Err(_) => err(format!(
                        "not a valid duration string: {}",
                        super::gofmt::quote(d)
                    )),
                }
            }
            "stripPort" => {
                want_args(name, a, 1)?;
                let hp = arg_str(&a[0])?;
                s(split_host_port(hp).map_or(hp, |(h, _)| h).to_string())
            }
            "stripDomain" => {
                want_args(name, a, 1)?;
                let hp = arg_str(&a[0])?;
                let (host, port) = split_host_port(hp).unwrap_or((hp, ""));
                if host.parse::<std::net::IpAddr>().is_ok() {
                    return s(hp.to_string());
                }
                let host = host.split('.').next().unwrap_or("");
                if port.is_empty() {
                    s(host.to_string())
                } else if host.contains(':') {
                    s(format!("[{host}]:{port}"))
                } else {
                    s(format!("{host}:{port}"))
                }
            }
            "graphLink" | "tableLink" => {
                want_args(name, a, 1)?;
                let tab = if name == "graphLink" { 0 } else { 1 };
                s(format!(
                    "/graph?g0.expr={}&g0.tab={tab}",
                    query_escape(arg_str(&a[0])?)
                ))
            }
            "externalURL" => {
                want_args(name, a, 0)?;
                s(self.external_url.to_string())
            }
            "pathPrefix" => {
                want_args(name, a, 0)?;
                let u = self.external_url;
                let after_scheme = u.split_once("://").map_or(u, |(_, r)| r);
                let path = after_scheme.find('/').map_or("", |i| &after_scheme[i..]);
                let path = path.split(['?', '#']).next().unwrap_or("");
                s(path.to_string())
            }
            _ => Err(FuncError::Raw(format!("function \"{name}\" not defined"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn humanize_table() {
        for (v, want) in [
            (0.0, "0"),
            (1.0, "1"),
            (1234.0, "1.234k"),
            (1234567.0, "1.235M"),
            (0.12, "120m"),
            (0.001, "1m"),
            (0.000123, "123µ"),
            (-1234.0, "-1.234k"),
            (1e30, "1e+06Y"),
            (f64::INFINITY, "+Inf"),
            (f64::NAN, "NaN"),
        ] {
            assert_eq!(humanize(v), want, "{v}");
        }
    }

    #[test]
    fn durations_and_times() {
        assert_eq!(humanize_duration(90061.0), "1d 1h 1m 1s");
        assert_eq!(humanize_duration(0.5), "500ms");
        assert_eq!(humanize_duration(0.0), "0s");
        assert_eq!(humanize_duration(1.2345), "1.234s");
        assert_eq!(humanize_duration(60.5), "1m 0s");
        assert_eq!(
            humanize_duration(-(86400.0 * 2.0 + 3600.0 * 3.0 + 245.0)),
            "-2d 3h 4m 5s"
        );
        assert_eq!(humanize1024(1048576.0), "1Mi");
        assert_eq!(humanize1024(1024.0), "1ki");
        assert_eq!(humanize_percentage(0.1234), "12.34%");
        assert_eq!(humanize_percentage(0.5), "50%");
        assert_eq!(
            float_to_time(1435065584.128).unwrap(),
            "2015-06-23 13:19:44.128 +0000 UTC"
        );
        assert_eq!(float_to_time(0.0).unwrap(), "1970-01-01 00:00:00 +0000 UTC");
        assert!(float_to_time(1e300).is_err());
    }

    #[test]
    fn host_helpers() {
        assert_eq!(split_host_port("a.b:9090"), Some(("a.b", "9090")));
        assert_eq!(split_host_port("[::1]:80"), Some(("::1", "80")));
        assert_eq!(split_host_port("a.b"), None);
        assert_eq!(title("hello world-foo_bar"), "Hello World-Foo_bar");
    }
}
