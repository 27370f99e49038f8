//! Alertmanager's template functions (`toUpper`, `toLower`, `title`, `trimSpace`, `join`,
//! `match`, `safeHtml`, `safeUrl`, `urlUnescape`, `reReplaceAll`, `stringSlice`, `date`, `tz`,
//! `since`, `humanizeDuration`, `toJson`), plus Prometheus' pure helpers (`humanize`,
//! `humanizePercentage`, ...) for rule authors used to them.

use std::sync::Arc;

use super::data::{duration_value, strings_of, time_of, time_value};
use super::gotime::{self, GoTime};
use crate::template::{FuncError, Functions, PromFunctions, Value};

/// Functions only Alertmanager has (or defines differently from Prometheus).
const AM_FUNCS: &[&str] = &[
    "toUpper",
    "toLower",
    "title",
    "trimSpace",
    "join",
    "match",
    "safeHtml",
    "safeUrl",
    "urlUnescape",
    "reReplaceAll",
    "stringSlice",
    "date",
    "tz",
    "since",
    "humanizeDuration",
    "toJson",
];

/// Prometheus functions that need no query engine, offered as extras.
const PROM_EXTRAS: &[&str] = &[
    "humanize",
    "humanize1024",
    "humanizePercentage",
    "humanizeTimestamp",
    "toTime",
    "parseDuration",
    "stripPort",
    "stripDomain",
];

/// Regex functions cost this many execution steps (as in the Prometheus set).
const REGEX_COST: u64 = 100;

/// The notification function set, bound to the notification's time (for `since`).
pub struct NotifyFunctions<'a> {
    now_ms: i64,
    prom: PromFunctions<'a>,
}

impl<'a> NotifyFunctions<'a> {
    /// Functions evaluated at `now_ms` (`since` measures to it).
    pub fn new(now_ms: i64) -> Self {
        NotifyFunctions {
            now_ms,
            prom: PromFunctions::new(None, now_ms, ""),
        }
    }
}

fn want(name: &str, args: &[Value], n: usize) -> Result<(), FuncError> {
    if args.len() != n {
        return Err(FuncError::Raw(format!(
            "wrong number of args for {name}: want {n} got {}",
            args.len()
        )));
    }
    Ok(())
}

fn s(v: &Value) -> Result<String, FuncError> {
    match v.plain() {
        Value::Str(s) => Ok(s.to_string()),
        Value::Missing | Value::Nil => Err(FuncError::Raw("invalid value; expected string".into())),
        other => Err(FuncError::Raw(format!(
            "wrong type for value; expected string; got {}",
            other.type_name()
        ))),
    }
}

fn time_arg(v: &Value) -> Result<GoTime, FuncError> {
    time_of(v).ok_or_else(|| {
        FuncError::Raw(format!(
            "wrong type for value; expected time.Time; got {}",
            v.type_name()
        ))
    })
}

fn regex(p: &str) -> Result<regex::Regex, FuncError> {
    regex::Regex::new(p).map_err(|e| FuncError::Call(format!("error parsing regexp: {e}")))
}

/// `cases.Title`: the first letter of each word upper-cased, the rest lower-cased.
fn title(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut start = true;
    for c in text.chars() {
        if c.is_alphanumeric() || c == '\'' {
            if start {
                out.extend(c.to_uppercase());
            } else {
                out.extend(c.to_lowercase());
            }
            start = false;
        } else {
            out.push(c);
            start = true;
        }
    }
    out
}

fn url_unescape(s: &str) -> Result<String, FuncError> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = s
                    .get(i + 1..i + 3)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| {
                        FuncError::Call(format!(
                            "invalid URL escape {:?}",
                            s.get(i..(i + 3).min(s.len())).unwrap_or("%")
                        ))
                    })?;
                out.push(hex);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| FuncError::Call("invalid UTF-8 after unescaping".into()))
}

/// A template value as JSON (KV maps as objects, times as RFC 3339).
pub fn to_json(v: &Value) -> serde_json::Value {
    if let Some(t) = time_of(v) {
        return serde_json::Value::String(gotime::rfc3339(t.ms));
    }
    match v.plain() {
        Value::Missing | Value::Nil => serde_json::Value::Null,
        Value::Bool(b) => (*b).into(),
        Value::Int(i) => (*i).into(),
        Value::Float(f) => serde_json::Number::from_f64(*f)
            .map(serde_json::Value::Number)
            .unwrap_or(serde_json::Value::Null),
        Value::Str(s) => serde_json::Value::String(s.to_string()),
        Value::List(l) => l.iter().map(to_json).collect(),
        Value::Map(m) => m.iter().map(|(k, v)| (k.clone(), to_json(v))).collect(),
        Value::Struct(st) => {
            let mut out = serde_json::Map::new();
            for (k, v) in &st.fields {
                let mut key = k.clone();
                if let Some(c) = key.get(..1) {
                    key = c.to_lowercase() + &key[1..];
                }
                out.insert(key, to_json(v));
            }
            serde_json::Value::Object(out)
        }
        Value::Object(o) => to_json(&o.inner),
    }
}

impl Functions for NotifyFunctions<'_> {
    fn has(&self, name: &str) -> bool {
        AM_FUNCS.contains(&name) || PROM_EXTRAS.contains(&name)
    }

    fn cost(&self, name: &str) -> u64 {
        if matches!(name, "match" | "reReplaceAll") {
            REGEX_COST
        } else {
            0
        }
    }

    fn call(&self, name: &str, args: &[Value]) -> Result<Value, FuncError> {
        match name {
            "toUpper" | "toLower" | "title" | "trimSpace" | "safeHtml" | "safeUrl"
            | "urlUnescape" => {
                want(name, args, 1)?;
                let a = s(&args[0])?;
                Ok(Value::str(match name {
                    "toUpper" => a.to_uppercase(),
                    "toLower" => a.to_lowercase(),
                    "title" => title(&a),
                    "trimSpace" => a.trim().to_string(),
                    "urlUnescape" => url_unescape(&a)?,
                    _ => a,
                }))
            }
            "join" => {
                want(name, args, 2)?;
                let sep = s(&args[0])?;
                Ok(Value::str(strings_of(&args[1])?.join(&sep)))
            }
            "match" => {
                want(name, args, 2)?;
                Ok(Value::Bool(regex(&s(&args[0])?)?.is_match(&s(&args[1])?)))
            }
            "reReplaceAll" => {
                want(name, args, 3)?;
                let re = regex(&s(&args[0])?)?;
                Ok(Value::str(
                    re.replace_all(&s(&args[2])?, s(&args[1])?.as_str())
                        .into_owned(),
                ))
            }
            "stringSlice" => Ok(Value::List(Arc::new(
                args.iter()
                    .map(|a| s(a).map(Value::str))
                    .collect::<Result<Vec<_>, _>>()?,
            ))),
            "date" => {
                want(name, args, 2)?;
                let layout = s(&args[0])?;
                Ok(Value::str(gotime::format_layout(
                    &time_arg(&args[1])?,
                    &layout,
                )))
            }
            "tz" => {
                want(name, args, 2)?;
                let zone = s(&args[0])?;
                let t = time_arg(&args[1])?;
                let (offset_s, zone) = gotime::fixed_zone(&zone).map_err(FuncError::Call)?;
                Ok(time_value(&GoTime {
                    ms: t.ms,
                    offset_s,
                    zone,
                }))
            }
            "since" => {
                want(name, args, 1)?;
                Ok(duration_value(self.now_ms - time_arg(&args[0])?.ms))
            }
            "toJson" => {
                want(name, args, 1)?;
                serde_json::to_string(&to_json(&args[0]))
                    .map(Value::str)
                    .map_err(|e| FuncError::Call(e.to_string()))
            }
            _ => {
                // humanizeDuration and the Prometheus extras: durations become seconds.
                let plain: Vec<Value> = args.iter().map(|a| a.plain().clone()).collect();
                self.prom.call(name, &plain)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::{Limits, execute_template, parse_template};

    fn run(text: &str, data: &Value) -> Result<String, String> {
        let f = NotifyFunctions::new(1_700_000_060_000);
        let t = parse_template("t", text, &f).map_err(|e| e.to_string())?;
        execute_template(&t, data, &f, Limits::default()).map_err(|e| e.to_string())
    }

    #[test]
    fn alertmanager_functions() {
        let t = time_value(&GoTime::utc(1_700_000_000_000));
        let data = Value::new_struct("d", vec![("T", t)]);
        let ok = |s: &str| run(s, &data).unwrap();
        assert_eq!(ok(r#"{{ "hELLO wORLD" | title }}"#), "Hello World");
        assert_eq!(ok(r#"{{ "a" | toUpper }}{{ "B" | toLower }}"#), "Ab");
        assert_eq!(ok(r#"{{ stringSlice "a" "b" | join ", " }}"#), "a, b");
        assert_eq!(ok(r#"{{ match "^a+$" "aaa" }}"#), "true");
        assert_eq!(ok(r#"{{ reReplaceAll "(a)b" "${1}x" "abab" }}"#), "axax");
        assert_eq!(ok(r#"{{ "  x " | trimSpace }}"#), "x");
        assert_eq!(
            ok(r#"{{ .T | date "2006-01-02 15:04" }}"#),
            "2023-11-14 22:13"
        );
        assert_eq!(
            ok(r#"{{ .T | tz "+01:00" | date "15:04 MST" }}"#),
            "23:13 +0100"
        );
        assert_eq!(ok(r#"{{ .T | since }}"#), "1m0s");
        assert_eq!(ok(r#"{{ .T | since | humanizeDuration }}"#), "1m 0s");
        assert_eq!(ok(r#"{{ 1234567.0 | humanize }}"#), "1.235M");
        assert_eq!(ok(r#"{{ "a%20b" | urlUnescape }}"#), "a b");
        assert_eq!(ok(r#"{{ stringSlice "x" | toJson }}"#), r#"["x"]"#);
        assert!(
            run(r#"{{ .T | tz "Mars/Olympus" }}"#, &data)
                .unwrap_err()
                .contains("unknown time zone Mars/Olympus")
        );
    }

    #[test]
    fn unknown_functions_fail_at_parse_time() {
        let f = NotifyFunctions::new(0);
        assert!(parse_template("t", "{{ query \"up\" }}", &f).is_err());
        assert!(parse_template("t", "{{ humanise 1 }}", &f).is_err());
    }
}
