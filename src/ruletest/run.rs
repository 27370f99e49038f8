//! Executing a test file: loading rules and series, stepping the rule groups, checking cases.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::CaseReport;
use super::file::{
    RawAlertTest, RawFile, RawPromqlTest, RawTestGroup, Scalar, parse_duration, parse_start,
};
use crate::alert::AlertState;
use crate::alert::GoTemplater;
use crate::eval::{Engine, EngineOptions, Value};
use crate::model::{Labels, SampleValue};
use crate::promqltest::Status;
use crate::promqltest::compare::{almost_equal, format_value};
use crate::promqltest::series::{SeqValue, parse_values, split_series_line};
use crate::rules::{Group, GroupOptions, GroupRunner, LoadOptions, Rule, load_paths};
use crate::store::{Store, StoreOptions};

/// Default `evaluation_interval`.
const DEFAULT_EVAL_INTERVAL_MS: i64 = 60_000;
/// Upper bound on evaluation steps of one test group, so a typo cannot run for hours.
const MAX_STEPS: i64 = 5_000_000;
/// Relative tolerance of `fuzzy_compare`: accepts a difference in the last mantissa bit only.
const FUZZY_EPSILON: f64 = 1.6e-16;

/// Settings shared by every test group of a file.
struct FileCx {
    eval_interval_ms: i64,
    fuzzy: bool,
    groups: Vec<Arc<Group>>,
}

/// A case that fails before anything runs, for file-level problems.
fn file_failure(what: &str, reason: String) -> Vec<CaseReport> {
    vec![CaseReport {
        test: None,
        test_name: None,
        what: what.to_string(),
        status: Status::Fail,
        reason,
    }]
}

/// Runs every test group of a file.
pub(super) fn run(path: &Path, src: &str) -> Vec<CaseReport> {
    let raw: RawFile = match serde_saphyr::from_str::<Option<RawFile>>(src) {
        Ok(r) => r.unwrap_or_default(),
        Err(e) => {
            let msg = e.to_string().replace('\n', " ");
            return file_failure("cannot parse test file", msg);
        }
    };
    let eval_interval_ms = match raw.evaluation_interval.as_ref().map(parse_duration) {
        None | Some(Ok(0)) => DEFAULT_EVAL_INTERVAL_MS,
        Some(Ok(ms)) => ms,
        Some(Err(e)) => return file_failure("evaluation_interval", e),
    };
    let base = path.parent().unwrap_or(Path::new("."));
    let files = match resolve_rule_files(base, raw.rule_files.as_deref().unwrap_or(&[])) {
        Ok(f) => f,
        Err(e) => return file_failure("rule_files", e),
    };
    let mut groups = Vec::new();
    if !files.is_empty() {
        let report = load_paths(
            &files,
            &LoadOptions {
                default_interval_ms: eval_interval_ms,
            },
        );
        if !report.is_ok() {
            let errs: Vec<String> = report.errors.iter().map(one_line).collect();
            return file_failure("rule files do not load", errs.join("; "));
        }
        groups = report.rule_set.groups;
    }
    let order = raw.group_eval_order.unwrap_or_default();
    let mut seen = HashSet::new();
    for g in &order {
        if !seen.insert(g.as_str()) {
            return file_failure(
                "group_eval_order",
                format!("group name repeated in evaluation order: {g}"),
            );
        }
        if !groups.iter().any(|x| &x.name == g) {
            return file_failure(
                "group_eval_order",
                format!("group {g:?} is not in the rule files"),
            );
        }
    }
    // Named groups first, in the given order; the rest keep load order (stable sort).
    groups.sort_by_key(|g| {
        order
            .iter()
            .position(|n| n == &g.name)
            .unwrap_or(order.len())
    });
    let cx = FileCx {
        eval_interval_ms,
        fuzzy: raw.fuzzy_compare.unwrap_or(false),
        groups,
    };
    let mut out = Vec::new();
    for (i, tg) in raw.tests.unwrap_or_default().into_iter().enumerate() {
        let tg = tg.unwrap_or_default();
        out.extend(run_group(&cx, i + 1, tg));
    }
    out
}

/// A diagnostic on one line.
fn one_line(d: &crate::rules::RuleDiagnostic) -> String {
    let text = d.to_string();
    text.lines().next().unwrap_or_default().to_string()
}

/// Resolves `rule_files` against the test file's directory, expanding `*`/`?`/`[...]` in the
/// last path component.
fn resolve_rule_files(base: &Path, patterns: &[String]) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    for p in patterns {
        if p.is_empty() {
            continue;
        }
        let full = if Path::new(p).is_absolute() {
            PathBuf::from(p)
        } else {
            base.join(p)
        };
        let name = full
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        if !name.contains(['*', '?', '[']) {
            out.push(full);
            continue;
        }
        let dir = full.parent().unwrap_or(Path::new("."));
        let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|f| {
                f.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| glob_match(name.as_bytes(), n.as_bytes()))
            })
            .collect();
        found.sort();
        out.extend(found);
    }
    Ok(out)
}

/// Shell-style matching of one path component: `*`, `?`, `[abc]`, `[a-z]`, `[!x]`.
fn glob_match(p: &[u8], s: &[u8]) -> bool {
    match p.first() {
        None => s.is_empty(),
        Some(b'*') => (0..=s.len()).any(|i| glob_match(&p[1..], &s[i..])),
        Some(b'?') => !s.is_empty() && glob_match(&p[1..], &s[1..]),
        Some(b'[') => {
            let Some(end) = p.iter().skip(1).position(|&c| c == b']').map(|i| i + 1) else {
                return s.first() == Some(&b'[') && glob_match(&p[1..], &s[1..]);
            };
            let Some(&c) = s.first() else { return false };
            let (neg, set) = match p.get(1) {
                Some(b'!' | b'^') => (true, &p[2..end]),
                _ => (false, &p[1..end]),
            };
            let mut hit = false;
            let mut i = 0;
            while i < set.len() {
                if i + 2 < set.len() && set[i + 1] == b'-' {
                    hit |= set[i] <= c && c <= set[i + 2];
                    i += 3;
                } else {
                    hit |= set[i] == c;
                    i += 1;
                }
            }
            hit != neg && glob_match(&p[end + 1..], &s[1..])
        }
        Some(&c) => s.first() == Some(&c) && glob_match(&p[1..], &s[1..]),
    }
}

/// One alert as compared: (labels including `alertname`, annotations).
type AlertView = (BTreeMap<String, String>, BTreeMap<String, String>);

/// A validated alert case.
struct AlertCase {
    index: usize,
    eval_ms: i64,
    eval_text: String,
    alertname: String,
    expected: Vec<AlertView>,
}

/// A validated query case.
struct PromqlCase {
    index: usize,
    eval_ms: i64,
    eval_text: String,
    expr: String,
    raw: RawPromqlTest,
}

/// Runs one test group: the cases' verdicts.
fn run_group(cx: &FileCx, index: usize, tg: RawTestGroup) -> Vec<CaseReport> {
    let name = tg.name.clone().filter(|n| !n.is_empty());
    let case = |what: String, status: Status, reason: String| CaseReport {
        test: Some(index),
        test_name: name.clone(),
        what,
        status,
        reason,
    };
    let fail_group =
        |what: &str, reason: String| vec![case(what.to_string(), Status::Fail, reason)];
    let interval_ms = match tg.interval.as_ref().map(parse_duration) {
        None | Some(Ok(0)) => cx.eval_interval_ms,
        Some(Ok(ms)) => ms,
        Some(Err(e)) => return fail_group("interval", e),
    };
    let start_ms = match tg.start_timestamp.as_ref().map(parse_start) {
        None => 0,
        Some(Ok(ms)) => ms,
        Some(Err(e)) => return fail_group("start_timestamp", e),
    };
    // Cases, validated up front (promtool rejects the group on a nameless alert case).
    let mut alert_cases = Vec::new();
    for (i, a) in tg
        .alert_rule_test
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        match alert_case(i + 1, a) {
            Ok(c) => alert_cases.push(c),
            Err(e) => return fail_group(&format!("alert_rule_test {}", i + 1), e),
        }
    }
    let mut promql_cases = Vec::new();
    for (i, p) in tg
        .promql_expr_test
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        let eval_text = p.eval_time.as_ref().map(Scalar::text).unwrap_or("0".into());
        let eval_ms = match p.eval_time.as_ref().map(parse_duration).unwrap_or(Ok(0)) {
            Ok(ms) => ms,
            Err(e) => return fail_group(&format!("promql_expr_test {}", i + 1), e),
        };
        promql_cases.push(PromqlCase {
            index: i + 1,
            eval_ms,
            eval_text,
            expr: p.expr.clone().unwrap_or_default(),
            raw: p,
        });
    }
    let max_eval = alert_cases
        .iter()
        .map(|c| c.eval_ms)
        .chain(promql_cases.iter().map(|c| c.eval_ms))
        .max()
        .unwrap_or(0);
    if max_eval / cx.eval_interval_ms > MAX_STEPS {
        return fail_group(
            "eval_time",
            format!(
                "{max_eval} ms at an evaluation_interval of {} ms is more than {MAX_STEPS} evaluations",
                cx.eval_interval_ms
            ),
        );
    }
    // Input series.
    let input = match load_input(tg.input_series.unwrap_or_default(), start_ms, interval_ms) {
        Ok(i) => i,
        Err(e) => return fail_group("input_series", e),
    };
    let store = Arc::new(Store::new(StoreOptions {
        retention_ms: 0,
        ..StoreOptions::default()
    }));
    let engine = Engine::new(EngineOptions {
        default_subquery_step_ms: cx.eval_interval_ms,
        delayed_name_removal: false,
        ..EngineOptions::default()
    });
    let templater = Arc::new(GoTemplater {
        external_labels: tg
            .external_labels
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.text()))
            .collect(),
        external_url: tg.external_url.unwrap_or_default(),
    });
    let opts = GroupOptions {
        templater,
        ..GroupOptions::default()
    };
    let mut runners: Vec<GroupRunner> = cx
        .groups
        .iter()
        .map(|g| GroupRunner::new(Arc::clone(g), opts.clone()))
        .collect();
    alert_cases.sort_by_key(|c| c.eval_ms);
    let mut results: Vec<(usize, CaseReport)> = Vec::new();
    let mut next_alert = 0;
    let mut next_sample = 0;
    let end_ms = start_ms.saturating_add(max_eval);
    let mut ts = start_ms;
    while ts <= end_ms {
        while let Some((t, labels, v)) = input.samples.get(next_sample)
            && *t <= ts
        {
            if let Err(e) = store.append(labels, *t, v.clone()) {
                return fail_group("input_series", format!("{labels} at {t} ms: {e}"));
            }
            next_sample += 1;
        }
        let mut errors = Vec::new();
        for r in &mut runners {
            let rep = r.eval(ts, &engine, &store);
            for rule in rep.rules {
                if let Some(e) = rule.error {
                    errors.push(format!(
                        "rule {} at {}: {e}",
                        rule.name,
                        fmt_ms(ts - start_ms)
                    ));
                }
            }
        }
        if !errors.is_empty() {
            let mut out: Vec<CaseReport> = results.into_iter().map(|(_, c)| c).collect();
            out.push(case(
                "rule evaluation".into(),
                Status::Fail,
                errors.join("; "),
            ));
            return out;
        }
        let rel = ts - start_ms;
        while let Some(c) = alert_cases.get(next_alert)
            && c.eval_ms >= rel
            && c.eval_ms < rel + cx.eval_interval_ms
        {
            let got = firing_alerts(&runners, &c.alertname);
            let what = format!(
                "alert_rule_test {} ({} at {})",
                c.index, c.alertname, c.eval_text
            );
            let mut exp = c.expected.clone();
            exp.sort();
            let rep = if exp == got {
                case(what, Status::Pass, String::new())
            } else {
                case(
                    what,
                    Status::Fail,
                    format!("expected {}; got {}", fmt_alerts(&exp), fmt_alerts(&got)),
                )
            };
            results.push((c.index, rep));
            next_alert += 1;
        }
        match ts.checked_add(cx.eval_interval_ms) {
            Some(next) => ts = next,
            None => break,
        }
    }
    let mut out: Vec<CaseReport> = {
        results.sort_by_key(|(i, _)| *i);
        results.into_iter().map(|(_, c)| c).collect()
    };
    for c in &promql_cases {
        let what = format!(
            "promql_expr_test {} ({:?} at {})",
            c.index, c.expr, c.eval_text
        );
        let (status, reason) =
            promql_case(cx, c, &input.histogram_names, &engine, &store, start_ms);
        out.push(case(what, status, reason));
    }
    if out.is_empty() {
        out.push(case(
            "rules evaluate without errors".into(),
            Status::Pass,
            String::new(),
        ));
    }
    out
}

/// Validates one alert case.
fn alert_case(index: usize, a: RawAlertTest) -> Result<AlertCase, String> {
    let alertname = a
        .alertname
        .filter(|n| !n.is_empty())
        .ok_or("misses required attribute alertname")?;
    let eval_text = a.eval_time.as_ref().map(Scalar::text).unwrap_or("0".into());
    let eval_ms = a.eval_time.as_ref().map(parse_duration).unwrap_or(Ok(0))?;
    let expected = a
        .exp_alerts
        .unwrap_or_default()
        .into_iter()
        .map(|e| {
            let e = e.unwrap_or_default();
            let mut labels: BTreeMap<String, String> = e
                .exp_labels
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.text()))
                .collect();
            labels.insert("alertname".into(), alertname.clone());
            let ann = e
                .exp_annotations
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.text()))
                .collect();
            (labels, ann)
        })
        .collect();
    Ok(AlertCase {
        index,
        eval_ms,
        eval_text,
        alertname,
        expected,
    })
}

/// Firing alerts named `name` across every group, as sorted (labels, annotations) pairs.
fn firing_alerts(runners: &[GroupRunner], name: &str) -> Vec<AlertView> {
    let mut got = Vec::new();
    for r in runners {
        for (i, rule) in r.group().rules.iter().enumerate() {
            let Rule::Alerting(a) = rule else { continue };
            if a.name != name {
                continue;
            }
            let Some(state) = r.alert_state(i) else {
                continue;
            };
            for alert in state.alerts().filter(|a| a.state == AlertState::Firing) {
                let labels = alert
                    .labels
                    .iter()
                    .map(|l| (l.name.to_string(), l.value.to_string()))
                    .collect();
                got.push((labels, alert.annotations.clone()));
            }
        }
    }
    got.sort();
    got
}

/// `[{alertname="A", x="y"} {summary="..."}, ...]`.
fn fmt_alerts(a: &[AlertView]) -> String {
    let map = |m: &BTreeMap<String, String>| {
        let inner: Vec<String> = m.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
        format!("{{{}}}", inner.join(", "))
    };
    let items: Vec<String> = a
        .iter()
        .map(|(l, ann)| {
            if ann.is_empty() {
                map(l)
            } else {
                format!("{} annotations {}", map(l), map(ann))
            }
        })
        .collect();
    format!("[{}]", items.join(", "))
}

/// A duration in ms as promtool prints it (`1h2m3s`, `0s`).
fn fmt_ms(ms: i64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    let mut rest = ms;
    if rest < 0 {
        out.push('-');
        rest = -rest;
    }
    for (unit, len) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
    ] {
        if rest >= len {
            out.push_str(&format!("{}{unit}", rest / len));
            rest %= len;
        }
    }
    if rest > 0 {
        out.push_str(&format!("{rest}ms"));
    }
    out
}

/// Loaded input: samples sorted by time, and metric names that had native-histogram values.
struct Input {
    samples: Vec<(i64, Labels, SampleValue)>,
    histogram_names: HashSet<String>,
}

/// Parses `input_series` (the last definition of a repeated series wins, as in promqltest).
fn load_input(
    series: Vec<super::file::RawSeries>,
    start_ms: i64,
    interval_ms: i64,
) -> Result<Input, String> {
    let mut by_labels: HashMap<Labels, Vec<(i64, SampleValue)>> = HashMap::new();
    let mut order = Vec::new();
    let mut histogram_names = HashSet::new();
    for (i, s) in series.into_iter().enumerate() {
        let desc = s.series.unwrap_or_default();
        let line = format!("{desc} {}", s.values.map(|t| t.0).unwrap_or_default());
        let labels =
            parse_labels(desc.trim()).map_err(|e| format!("series {} {desc:?}: {e}", i + 1))?;
        let values_text = split_series_line(&line).map(|(_, v)| v).unwrap_or_default();
        let values = parse_values(values_text)
            .map_err(|e| format!("series {} {desc:?}: values: {e}", i + 1))?;
        let mut points = Vec::with_capacity(values.len());
        for (k, v) in values.into_iter().enumerate() {
            let t = (k as i64)
                .checked_mul(interval_ms)
                .and_then(|d| d.checked_add(start_ms))
                .ok_or_else(|| format!("series {} {desc:?}: time out of range", i + 1))?;
            match v {
                SeqValue::Omitted => {}
                SeqValue::Float(f) => points.push((t, SampleValue::Float(f))),
                SeqValue::Str(s) => points.push((t, SampleValue::Str(s.into()))),
                SeqValue::Histogram(_) => {
                    histogram_names.insert(labels.metric_name().unwrap_or_default().to_string());
                }
            }
        }
        if by_labels.insert(labels.clone(), points).is_none() {
            order.push(labels);
        }
    }
    let mut samples = Vec::new();
    for labels in order {
        if let Some(points) = by_labels.remove(&labels) {
            samples.extend(points.into_iter().map(|(t, v)| (t, labels.clone(), v)));
        }
    }
    samples.sort_by_key(|(t, _, _)| *t);
    Ok(Input {
        samples,
        histogram_names,
    })
}

/// Series notation to labels; empty text and `{}` are the empty label set.
fn parse_labels(s: &str) -> Result<Labels, String> {
    let s = s.trim();
    if s.is_empty()
        || s.strip_prefix('{')
            .and_then(|r| r.strip_suffix('}'))
            .is_some_and(|r| r.trim().is_empty())
    {
        return Ok(Labels::empty());
    }
    crate::expr::parse_series_labels(s).map_err(|d| d.message)
}

/// An expected sample value: numbers are floats; a string that reads as a float too; any other
/// string is a string sample (klaxon extension).
fn expected_value(v: Option<&Scalar>) -> SampleValue {
    match v {
        None => SampleValue::Float(0.0),
        Some(Scalar::Int(i)) => SampleValue::Float(*i as f64),
        Some(Scalar::Float(f)) => SampleValue::Float(*f),
        Some(Scalar::Bool(b)) => SampleValue::Str(b.to_string().into()),
        Some(Scalar::Str(s)) => match parse_values(s).ok().as_deref() {
            Some([SeqValue::Float(f)]) => SampleValue::Float(*f),
            _ => SampleValue::Str(s.as_str().into()),
        },
    }
}

/// Runs one query case: verdict and reason.
fn promql_case(
    cx: &FileCx,
    c: &PromqlCase,
    histogram_names: &HashSet<String>,
    engine: &Engine,
    store: &Store,
    start_ms: i64,
) -> (Status, String) {
    if c.raw
        .exp_samples
        .iter()
        .flatten()
        .any(|s| s.histogram.is_some())
    {
        return (
            Status::Skip,
            "expects a native histogram (not supported)".into(),
        );
    }
    if histogram_names
        .iter()
        .any(|n| !n.is_empty() && c.expr.contains(n.as_str()))
    {
        return (
            Status::Skip,
            "queries a series loaded with native histograms (not supported)".into(),
        );
    }
    let expr = match crate::expr::parse_and_check(&c.expr) {
        Ok(e) => e,
        Err(d) => return (Status::Fail, format!("error: {}", d.message)),
    };
    let got = match engine.instant(store, &expr, start_ms + c.eval_ms) {
        Ok(o) => o.value,
        Err(e) => return (Status::Fail, format!("error: {e}")),
    };
    let mut got: Vec<(Labels, SampleValue)> = match got {
        Value::Vector(v) => v.into_iter().map(|s| (s.labels, s.value)).collect(),
        Value::Scalar(f) => vec![(Labels::empty(), SampleValue::Float(f))],
        _ => {
            return (
                Status::Fail,
                "error: query result is not a vector or scalar".into(),
            );
        }
    };
    let mut exp = Vec::new();
    for s in c.raw.exp_samples.iter().flatten() {
        let text = s.labels.as_deref().unwrap_or("");
        match parse_labels(text) {
            Ok(l) => exp.push((l, expected_value(s.value.as_ref()))),
            Err(e) => return (Status::Fail, format!("labels {text:?}: {e}")),
        }
    }
    got.sort_by(|a, b| a.0.cmp(&b.0));
    exp.sort_by(|a, b| a.0.cmp(&b.0));
    let eps = if cx.fuzzy { FUZZY_EPSILON } else { 0.0 };
    let same = got.len() == exp.len()
        && got.iter().zip(&exp).all(|((gl, gv), (el, ev))| {
            gl == el
                && match (gv, ev) {
                    (SampleValue::Float(g), SampleValue::Float(e)) => almost_equal(*g, *e, eps),
                    (SampleValue::Str(g), SampleValue::Str(e)) => g == e,
                    _ => false,
                }
        });
    if same {
        (Status::Pass, String::new())
    } else {
        (
            Status::Fail,
            format!("expected {}; got {}", fmt_samples(&exp), fmt_samples(&got)),
        )
    }
}

/// `[{a="b"} 1, m 2]`.
fn fmt_samples(s: &[(Labels, SampleValue)]) -> String {
    let items: Vec<String> = s
        .iter()
        .map(|(l, v)| {
            let text = l.to_string();
            // `m{}` reads better as `m`.
            let text = match text.strip_suffix("{}") {
                Some(name) if !name.is_empty() => name.to_string(),
                _ => text,
            };
            format!("{text} {}", format_value(v))
        })
        .collect();
    format!("[{}]", items.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match(b"*.yml", b"rules.yml"));
        assert!(!glob_match(b"*.yml", b"rules.yaml"));
        assert!(glob_match(b"r?les.y[am]l", b"rules.yml"));
        assert!(glob_match(b"[!x]*", b"abc"));
        assert!(!glob_match(b"[!a]*", b"abc"));
    }

    #[test]
    fn durations_print_like_go() {
        assert_eq!(fmt_ms(0), "0s");
        assert_eq!(fmt_ms(3_723_000), "1h2m3s");
        assert_eq!(fmt_ms(86_400_000 + 500), "1d500ms");
    }
}
