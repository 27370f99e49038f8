//! Alertmanager's template data for a [`Notification`] (`template.Data`): `.Receiver`, `.Status`,
//! `.Alerts` (with the `Firing`/`Resolved` methods), `.GroupLabels`, `.CommonLabels`,
//! `.CommonAnnotations` (KV maps with `SortedPairs`, `Names`, `Values`, `Remove`),
//! `.ExternalURL`, plus klaxon's `.GroupKey`, `.Related` (correlated symptom alerts, an alert
//! list like `.Alerts`), `.Escalation` (`.Policy`, `.Step` counted from 1, `.Steps`; nil when
//! the notification is not an escalation) and `.DigestOf` (how many rate-limited notifications
//! this one folds; 0 for an ordinary notification).
//!
//! Each alert has `.Status .Labels .Annotations .StartsAt .EndsAt .GeneratorURL .Fingerprint`;
//! times are Go `time.Time` values (`.StartsAt.Format "15:04"`, `.Unix`, `.UTC`, `.IsZero`,
//! printed as Go prints them). A missing KV key renders empty (Alertmanager's
//! `missingkey=zero`).

use std::collections::BTreeMap;
use std::sync::Arc;

use super::gotime::{self, GoTime, ZERO_TIME_MS};
use crate::dispatch::{Alert, Notification};
use crate::model::Labels;
use crate::template::{FuncError, Methods, Value, html_escape};

/// Go's `regexp.QuoteMeta`: Alertmanager quotes the receiver name in `.Receiver`.
pub fn quote_meta(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Labels common to every alert with the same value (Alertmanager's `CommonLabels`), from
/// `pick(alert)` of each alert.
pub fn common<'a>(
    alerts: impl IntoIterator<Item = &'a Alert>,
    pick: impl Fn(&Alert) -> &Labels,
) -> BTreeMap<String, String> {
    let mut it = alerts.into_iter();
    let Some(first) = it.next() else {
        return BTreeMap::new();
    };
    let mut common: BTreeMap<String, String> = pick(first)
        .iter()
        .map(|l| (l.name.to_string(), l.value.to_string()))
        .collect();
    for a in it {
        if common.is_empty() {
            break;
        }
        let ls = pick(a);
        common.retain(|k, v| ls.get(k) == Some(v.as_str()));
    }
    common
}

/// Alertmanager's `KV.SortedPairs` order: `alertname` first, then by name.
pub fn sorted_pairs(kv: &BTreeMap<String, String>) -> Vec<(&str, &str)> {
    let mut out: Vec<(&str, &str)> = Vec::with_capacity(kv.len());
    if let Some(v) = kv.get("alertname") {
        out.push(("alertname", v));
    }
    out.extend(
        kv.iter()
            .filter(|(k, _)| k.as_str() != "alertname")
            .map(|(k, v)| (k.as_str(), v.as_str())),
    );
    out
}

fn labels_map(l: &Labels) -> BTreeMap<String, String> {
    l.iter()
        .map(|l| (l.name.to_string(), l.value.to_string()))
        .collect()
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

fn string_list<'a>(items: impl IntoIterator<Item = &'a str>) -> Value {
    Value::List(Arc::new(items.into_iter().map(Value::str).collect()))
}

/// Reads a Go `[]string` argument (a list of strings, or a `Pairs`/`KV` names list).
pub fn strings_of(v: &Value) -> Result<Vec<String>, FuncError> {
    match v.plain() {
        Value::List(l) => l
            .iter()
            .map(|e| match e.plain() {
                Value::Str(s) => Ok(s.to_string()),
                other => Err(FuncError::Raw(format!(
                    "wrong type for value; expected string; got {}",
                    other.type_name()
                ))),
            })
            .collect(),
        Value::Missing | Value::Nil => Ok(Vec::new()),
        other => Err(FuncError::Raw(format!(
            "wrong type for value; expected []string; got {}",
            other.type_name()
        ))),
    }
}

fn map_of(v: &Value) -> BTreeMap<String, String> {
    match v.plain() {
        Value::Map(m) => m
            .iter()
            .map(|(k, v)| (k.clone(), v.plain().to_go_string()))
            .collect(),
        _ => BTreeMap::new(),
    }
}

/// `template.KV`: a label or annotation map with Alertmanager's methods.
#[derive(Debug)]
struct KvMethods;

/// A KV value.
pub fn kv(m: &BTreeMap<String, String>) -> Value {
    Value::object("template.KV", Value::string_map(m), Arc::new(KvMethods))
}

fn pairs(m: &BTreeMap<String, String>) -> Value {
    let items = sorted_pairs(m)
        .into_iter()
        .map(|(k, v)| {
            Value::new_struct(
                "template.Pair",
                vec![("Name", Value::str(k)), ("Value", Value::str(v))],
            )
        })
        .collect();
    Value::object(
        "template.Pairs",
        Value::List(Arc::new(items)),
        Arc::new(PairsMethods),
    )
}

fn pairs_string(m: &BTreeMap<String, String>) -> String {
    sorted_pairs(m)
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Methods for KvMethods {
    fn has(&self, name: &str) -> bool {
        matches!(
            name,
            "SortedPairs" | "Names" | "Values" | "Remove" | "String"
        )
    }

    fn call(&self, recv: &Value, name: &str, args: &[Value]) -> Result<Value, FuncError> {
        let m = map_of(recv);
        match name {
            "Remove" => {
                want(name, args, 1)?;
                let drop = strings_of(&args[0])?;
                let kept: BTreeMap<String, String> =
                    m.into_iter().filter(|(k, _)| !drop.contains(k)).collect();
                Ok(kv(&kept))
            }
            _ => {
                want(name, args, 0)?;
                let sp = sorted_pairs(&m);
                Ok(match name {
                    "SortedPairs" => pairs(&m),
                    "Names" => string_list(sp.iter().map(|(k, _)| *k)),
                    "Values" => string_list(sp.iter().map(|(_, v)| *v)),
                    _ => Value::str(pairs_string(&m)),
                })
            }
        }
    }

    fn go_string(&self, recv: &Value) -> Option<String> {
        Some(pairs_string(&map_of(recv)))
    }

    fn missing_key(&self) -> Value {
        Value::str("")
    }
}

/// `template.Pairs`: the result of `SortedPairs`.
#[derive(Debug)]
struct PairsMethods;

fn pair_field(p: &Value, field: &str) -> String {
    match p.plain() {
        Value::Struct(s) => s
            .fields
            .iter()
            .find(|(n, _)| n == field)
            .map(|(_, v)| v.to_go_string())
            .unwrap_or_default(),
        _ => String::new(),
    }
}

impl Methods for PairsMethods {
    fn has(&self, name: &str) -> bool {
        matches!(name, "Names" | "Values" | "String")
    }

    fn call(&self, recv: &Value, name: &str, args: &[Value]) -> Result<Value, FuncError> {
        want(name, args, 0)?;
        let Value::List(l) = recv.plain() else {
            return Ok(Value::List(Arc::new(Vec::new())));
        };
        Ok(match name {
            "Names" => Value::List(Arc::new(
                l.iter()
                    .map(|p| Value::str(pair_field(p, "Name")))
                    .collect(),
            )),
            "Values" => Value::List(Arc::new(
                l.iter()
                    .map(|p| Value::str(pair_field(p, "Value")))
                    .collect(),
            )),
            _ => Value::str(self.go_string(recv).unwrap_or_default()),
        })
    }

    fn go_string(&self, recv: &Value) -> Option<String> {
        let Value::List(l) = recv.plain() else {
            return Some(String::new());
        };
        Some(
            l.iter()
                .map(|p| format!("{}={}", pair_field(p, "Name"), pair_field(p, "Value")))
                .collect::<Vec<_>>()
                .join(", "),
        )
    }
}

/// `template.Alerts`: an alert list with `Firing` and `Resolved`.
#[derive(Debug)]
struct AlertsMethods;

fn alerts_value(items: Vec<Value>) -> Value {
    Value::object(
        "template.Alerts",
        Value::List(Arc::new(items)),
        Arc::new(AlertsMethods),
    )
}

fn alert_status(a: &Value) -> String {
    match a.plain() {
        Value::Struct(s) => s
            .fields
            .iter()
            .find(|(n, _)| n == "Status")
            .map(|(_, v)| v.to_go_string())
            .unwrap_or_default(),
        _ => String::new(),
    }
}

impl Methods for AlertsMethods {
    fn has(&self, name: &str) -> bool {
        matches!(name, "Firing" | "Resolved")
    }

    fn call(&self, recv: &Value, name: &str, args: &[Value]) -> Result<Value, FuncError> {
        want(name, args, 0)?;
        let want_status = if name == "Firing" {
            "firing"
        } else {
            "resolved"
        };
        let items = match recv.plain() {
            Value::List(l) => l
                .iter()
                .filter(|a| alert_status(a) == want_status)
                .cloned()
                .collect(),
            _ => Vec::new(),
        };
        Ok(alerts_value(items))
    }
}

/// `time.Time` with Go's methods; the inner value is a struct holding the instant and zone.
#[derive(Debug)]
struct TimeMethods;

/// A `time.Time` value.
pub fn time_value(t: &GoTime) -> Value {
    Value::object(
        "time.Time",
        Value::new_struct(
            "time.Time",
            vec![
                ("ms", Value::Int(t.ms)),
                ("offset", Value::Int(i64::from(t.offset_s))),
                ("zone", Value::str(t.zone.as_ref())),
            ],
        ),
        Arc::new(TimeMethods),
    )
}

/// The instant and zone of a `time.Time` value, `None` for anything else.
pub fn time_of(v: &Value) -> Option<GoTime> {
    let Value::Object(o) = v else {
        return None;
    };
    if o.type_name != "time.Time" {
        return None;
    }
    let Value::Struct(s) = &o.inner else {
        return None;
    };
    let get = |n: &str| s.fields.iter().find(|(f, _)| f == n).map(|(_, v)| v);
    match (get("ms"), get("offset"), get("zone")) {
        (Some(Value::Int(ms)), Some(Value::Int(off)), Some(Value::Str(z))) => Some(GoTime {
            ms: *ms,
            offset_s: i32::try_from(*off).unwrap_or(0),
            zone: Arc::from(z.as_ref()),
        }),
        _ => None,
    }
}

fn time_of_inner(recv: &Value) -> GoTime {
    time_of(&Value::object(
        "time.Time",
        recv.clone(),
        Arc::new(TimeMethods),
    ))
    .unwrap_or_else(|| GoTime::utc(ZERO_TIME_MS))
}

impl Methods for TimeMethods {
    fn has(&self, name: &str) -> bool {
        matches!(
            name,
            "Format" | "Unix" | "UnixMilli" | "UTC" | "Local" | "IsZero" | "String"
        )
    }

    fn call(&self, recv: &Value, name: &str, args: &[Value]) -> Result<Value, FuncError> {
        let t = time_of_inner(recv);
        if name == "Format" {
            want(name, args, 1)?;
            let Value::Str(layout) = args[0].plain() else {
                return Err(FuncError::Raw(format!(
                    "wrong type for value; expected string; got {}",
                    args[0].type_name()
                )));
            };
            return Ok(Value::str(gotime::format_layout(&t, layout)));
        }
        want(name, args, 0)?;
        Ok(match name {
            "Unix" => Value::Int(t.ms.div_euclid(1000)),
            "UnixMilli" => Value::Int(t.ms),
            "UTC" | "Local" => time_value(&GoTime::utc(t.ms)),
            "IsZero" => Value::Bool(t.is_zero()),
            _ => Value::str(gotime::go_string(&t)),
        })
    }

    fn go_string(&self, recv: &Value) -> Option<String> {
        Some(gotime::go_string(&time_of_inner(recv)))
    }
}

/// `time.Duration` (what `since` returns): prints like Go, plain value is seconds.
#[derive(Debug)]
struct DurationMethods;

/// A `time.Duration` of `ms` milliseconds; functions see its value in seconds.
pub fn duration_value(ms: i64) -> Value {
    Value::object(
        "time.Duration",
        Value::Float(ms as f64 / 1000.0),
        Arc::new(DurationMethods),
    )
}

impl Methods for DurationMethods {
    fn has(&self, name: &str) -> bool {
        matches!(
            name,
            "Seconds" | "Minutes" | "Hours" | "Milliseconds" | "String"
        )
    }

    fn call(&self, recv: &Value, name: &str, args: &[Value]) -> Result<Value, FuncError> {
        want(name, args, 0)?;
        let secs = match recv.plain() {
            Value::Float(f) => *f,
            _ => 0.0,
        };
        Ok(match name {
            "Seconds" => Value::Float(secs),
            "Minutes" => Value::Float(secs / 60.0),
            "Hours" => Value::Float(secs / 3600.0),
            "Milliseconds" => Value::Int((secs * 1000.0).round() as i64),
            _ => Value::str(self.go_string(recv).unwrap_or_default()),
        })
    }

    fn go_string(&self, recv: &Value) -> Option<String> {
        match recv.plain() {
            Value::Float(f) => Some(gotime::duration_string((f * 1000.0).round() as i64)),
            _ => None,
        }
    }
}

/// How strings enter the data: as they are, or HTML-escaped for HTML bodies (klaxon renders
/// HTML with the text engine, so escaping the data stands in for `html/template`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escape {
    /// Plain text (subjects, Slack, webhook bodies).
    None,
    /// HTML bodies: every label, annotation, URL and name is HTML-escaped.
    Html,
}

impl Escape {
    fn s(self, s: &str) -> String {
        match self {
            Escape::None => s.to_string(),
            Escape::Html => html_escape(s),
        }
    }

    fn map(self, m: &BTreeMap<String, String>) -> BTreeMap<String, String> {
        match self {
            Escape::None => m.clone(),
            Escape::Html => m
                .iter()
                .map(|(k, v)| (html_escape(k), html_escape(v)))
                .collect(),
        }
    }
}

/// An alert's status at `now`: `firing` or `resolved`.
pub fn status_of(a: &Alert, now_ms: i64) -> &'static str {
    if a.resolved_at(now_ms) {
        "resolved"
    } else {
        "firing"
    }
}

fn time_or_zero(ms: i64) -> i64 {
    if ms == 0 { ZERO_TIME_MS } else { ms }
}

fn alert_value(a: &Alert, now_ms: i64, esc: Escape) -> Value {
    Value::new_struct(
        "template.Alert",
        vec![
            ("Status", Value::str(status_of(a, now_ms))),
            ("Labels", kv(&esc.map(&labels_map(&a.labels)))),
            ("Annotations", kv(&esc.map(&labels_map(&a.annotations)))),
            (
                "StartsAt",
                time_value(&GoTime::utc(time_or_zero(a.starts_at))),
            ),
            ("EndsAt", time_value(&GoTime::utc(time_or_zero(a.ends_at)))),
            ("GeneratorURL", Value::str(esc.s(&a.generator_url))),
            ("Fingerprint", Value::str(a.fingerprint().to_string())),
        ],
    )
}

/// The template data (`*template.Data` plus klaxon's fields) for `n`, with strings escaped
/// per `esc`.
pub fn template_data(n: &Notification, esc: Escape) -> Value {
    let alerts = alerts_value(
        n.alerts
            .iter()
            .map(|a| alert_value(a, n.now_ms, esc))
            .collect(),
    );
    let related = alerts_value(
        n.related
            .iter()
            .map(|a| alert_value(a, n.now_ms, esc))
            .collect(),
    );
    let escalation = match &n.escalation {
        Some(e) => Value::new_struct(
            "*notify.Escalation",
            vec![
                ("Policy", Value::str(esc.s(&e.policy))),
                ("Step", Value::Int(e.step as i64 + 1)),
                ("Steps", Value::Int(e.steps as i64)),
            ],
        ),
        None => Value::Nil,
    };
    Value::new_struct(
        "*template.Data",
        vec![
            ("Receiver", Value::str(esc.s(&quote_meta(&n.receiver)))),
            ("Status", Value::str(n.status())),
            ("Alerts", alerts),
            ("GroupLabels", kv(&esc.map(&labels_map(&n.group_labels)))),
            (
                "CommonLabels",
                kv(&esc.map(&common(&n.alerts, |a| &a.labels))),
            ),
            (
                "CommonAnnotations",
                kv(&esc.map(&common(&n.alerts, |a| &a.annotations))),
            ),
            ("ExternalURL", Value::str(esc.s(&n.external_url))),
            ("GroupKey", Value::str(esc.s(&n.group_key))),
            ("Related", related),
            ("Escalation", escalation),
            ("DigestOf", Value::Int(n.digest_of as i64)),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::EscalationInfo;
    use crate::template::{Limits, PromFunctions, execute_template, parse_template};

    pub(crate) fn alert(name: &str, extra: &[(&str, &str)], ends_at: i64) -> Alert {
        let mut pairs = vec![("alertname", name)];
        pairs.extend_from_slice(extra);
        Alert {
            labels: Labels::from_pairs(pairs),
            annotations: Labels::from_pairs([("summary", format!("{name} is bad"))]),
            starts_at: 1_000_000,
            ends_at,
            generator_url: "http://prom/graph?g0.expr=up".into(),
            updated_at: 1_000_000,
            timeout: false,
        }
    }

    fn notification() -> Notification {
        Notification {
            receiver: "team.x".into(),
            group_key: "{}:{job=\"api\"}".into(),
            group_labels: Labels::from_pairs([("job", "api")]),
            alerts: vec![
                alert("HighLatency", &[("job", "api"), ("severity", "page")], 0),
                alert(
                    "HighLatency",
                    &[("job", "api"), ("severity", "page"), ("zone", "b")],
                    2_000_000,
                ),
                alert("Errors", &[("job", "api"), ("severity", "page")], 0),
            ],
            now_ms: 3_000_000,
            external_url: "http://klaxon".into(),
            related: vec![],
            escalation: Some(EscalationInfo {
                policy: "oncall".into(),
                step: 1,
                steps: 3,
            }),
            digest_of: 0,
        }
    }

    fn render(text: &str, n: &Notification, esc: Escape) -> String {
        let f = PromFunctions::new(None, 0, "");
        let t = parse_template("t", text, &f).unwrap_or_else(|e| panic!("{e}"));
        execute_template(&t, &template_data(n, esc), &f, Limits::default())
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn firing_and_resolved_are_methods_of_the_alert_list() {
        let n = notification();
        assert_eq!(
            render(
                "{{ len .Alerts }} {{ len .Alerts.Firing }} {{ .Alerts.Resolved | len }} {{ range .Alerts.Firing }}{{ .Labels.alertname }},{{ end }}",
                &n,
                Escape::None
            ),
            "3 2 1 HighLatency,Errors,"
        );
        assert_eq!(render("{{ .Status }}", &n, Escape::None), "firing");
        assert_eq!(
            render(
                "{{ range .Alerts.Resolved }}{{ .EndsAt.Unix }} {{ .Status }}{{ end }}",
                &n,
                Escape::None
            ),
            "2000 resolved"
        );
    }

    #[test]
    fn common_labels_and_kv_methods() {
        let n = notification();
        assert_eq!(
            render("{{ .CommonLabels }}", &n, Escape::None),
            "job=api, severity=page"
        );
        assert_eq!(
            render(
                "{{ .CommonLabels.Names }} {{ .CommonLabels.SortedPairs.Values }}",
                &n,
                Escape::None
            ),
            "[job severity] [api page]"
        );
        assert_eq!(
            render(
                "{{ range .CommonLabels.SortedPairs }}{{ .Name }}={{ .Value }};{{ end }}",
                &n,
                Escape::None
            ),
            "job=api;severity=page;"
        );
        assert_eq!(
            render(
                "{{ (.CommonLabels.Remove .GroupLabels.Names).Values }}",
                &n,
                Escape::None
            ),
            "[page]"
        );
        assert_eq!(
            render(
                "{{ with .CommonLabels.Remove .GroupLabels.Names }}{{ .severity }}{{ end }}",
                &n,
                Escape::None
            ),
            "page"
        );
        assert_eq!(
            render(
                "[{{ .CommonLabels.nope }}] {{ .CommonAnnotations }}",
                &n,
                Escape::None
            ),
            "[] "
        );
        // alertname sorts first.
        assert_eq!(
            render("{{ (index .Alerts 1).Labels.Names }}", &n, Escape::None),
            "[alertname job severity zone]"
        );
        assert_eq!(
            render(
                "{{ .Receiver }} {{ .Escalation.Step }}/{{ .Escalation.Steps }} {{ .DigestOf }}",
                &n,
                Escape::None
            ),
            "team\\.x 2/3 0"
        );
    }

    #[test]
    fn times_print_and_format_like_go() {
        let n = notification();
        assert_eq!(
            render(
                "{{ (index .Alerts 0).StartsAt }}|{{ (index .Alerts 0).EndsAt.IsZero }}|{{ (index .Alerts 0).StartsAt.Format \"15:04:05\" }}",
                &n,
                Escape::None
            ),
            "1970-01-01 00:16:40 +0000 UTC|true|00:16:40"
        );
    }

    #[test]
    fn html_escape_applies_to_values() {
        let mut n = notification();
        n.alerts[0].annotations = Labels::from_pairs([("summary", "<b>&</b>")]);
        n.alerts.truncate(1);
        assert_eq!(
            render("{{ .CommonAnnotations.summary }}", &n, Escape::Html),
            "&lt;b&gt;&amp;&lt;/b&gt;"
        );
        assert_eq!(
            render("{{ .CommonAnnotations.summary }}", &n, Escape::None),
            "<b>&</b>"
        );
    }

    #[test]
    fn method_argument_errors_are_reported() {
        let n = notification();
        let f = PromFunctions::new(None, 0, "");
        let t = parse_template("t", "{{ .CommonLabels.Remove }}", &f).unwrap();
        let e = execute_template(&t, &template_data(&n, Escape::None), &f, Limits::default())
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("wrong number of args for Remove: want 1 got 0"),
            "{e}"
        );
        let t = parse_template("t", "{{ .Status.Foo 1 }}", &f).unwrap();
        let e = execute_template(&t, &template_data(&n, Escape::None), &f, Limits::default())
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("can't give argument to non-function"),
            "{e}"
        );
    }

    #[test]
    fn quote_meta_matches_go() {
        assert_eq!(quote_meta("a.b+c-d"), "a\\.b\\+c-d");
    }
}
