//! Executing a parsed script against a fresh store and the evaluator, one report entry per eval.

use super::compare::{compare_instant, compare_range, describe_expected, describe_value};
use super::script::{Command, Eval, EvalKind, ExpectKind, Load, Script};
use super::series::SeqValue;
use super::{EvalReport, RunOptions, Status};
use crate::eval::{Engine, EngineOptions, Outcome, Value};
use crate::expr::{AtModifier, Expr, ParseOptions, VectorSelector};
use crate::model::{Labels, LabelsBuilder, METRIC_NAME, SampleValue};
use crate::store::{Store, StoreOptions};

/// Functions whose result depends on the evaluation time even with step-invariant arguments; queries
/// calling them are not re-run with `@` (as upstream).
const AT_UNSAFE_FUNCTIONS: &[&str] = &[
    "days_in_month",
    "day_of_month",
    "day_of_week",
    "day_of_year",
    "hour",
    "minute",
    "month",
    "year",
    "predict_linear",
    "time",
    "timestamp",
];

/// Functions that only read native histograms (on floats they return nothing).
const NATIVE_HISTOGRAM_FUNCTIONS: &[&str] = &[
    "histogram_avg",
    "histogram_count",
    "histogram_stddev",
    "histogram_stdvar",
    "histogram_sum",
];

/// The state of one script run: data loaded since the last `clear` and what could not be loaded.
struct Runner<'a> {
    opts: &'a RunOptions,
    store: Store,
    engine: Engine,
    /// Series that have native-histogram points (not loaded): evals selecting them are skipped.
    histogram_series: Vec<Labels>,
    /// A load error since the last `clear`: (line, why). Evals after it fail.
    load_error: Option<(usize, String)>,
    reports: Vec<EvalReport>,
    errors: Vec<(usize, String)>,
}

/// Runs every command of `script`; returns per-eval reports and script-level errors (bad load lines).
pub fn run_script(script: &Script, opts: &RunOptions) -> (Vec<EvalReport>, Vec<(usize, String)>) {
    let mut r = Runner {
        opts,
        store: new_store(),
        engine: Engine::new(EngineOptions::default()),
        histogram_series: Vec::new(),
        load_error: None,
        reports: Vec::new(),
        errors: Vec::new(),
    };
    let mut pending_load_error_line = None;
    for cmd in &script.commands {
        match cmd {
            Command::Load(load) => {
                if let Some((line, why)) = r.load(load) {
                    r.errors.push((line, why.clone()));
                    if r.load_error.is_none() {
                        r.load_error = Some((line, why));
                        pending_load_error_line = Some(line);
                    }
                }
            }
            Command::Clear { .. } => {
                r.flush_unattributed_load_error(&mut pending_load_error_line);
                r.store.clear();
                r.histogram_series.clear();
                r.load_error = None;
            }
            Command::Eval(ev) => {
                pending_load_error_line = None;
                let (status, reason) = r.eval(ev);
                r.reports.push(EvalReport {
                    line: ev.line,
                    query: ev.query.clone(),
                    status,
                    reason,
                });
            }
            Command::Invalid { line, message } => {
                r.reports.push(EvalReport {
                    line: *line,
                    query: String::new(),
                    status: Status::Fail,
                    reason: message.clone(),
                });
            }
        }
    }
    r.flush_unattributed_load_error(&mut pending_load_error_line);
    r.reports.sort_by_key(|e| e.line);
    (r.reports, r.errors)
}

fn new_store() -> Store {
    Store::new(StoreOptions {
        retention_ms: 0,
        ..StoreOptions::default()
    })
}

impl Runner<'_> {
    /// A load error that no eval came to fail on still has to fail the run: report it as a failure of its line.
    fn flush_unattributed_load_error(&mut self, pending: &mut Option<usize>) {
        if let (Some(line), Some((_, why))) = (pending.take(), &self.load_error) {
            self.reports.push(EvalReport {
                line,
                query: String::new(),
                status: Status::Fail,
                reason: format!("load failed and no eval used the data: {why}"),
            });
        }
    }

    /// Loads a block into the store; returns the first problem, if any.
    fn load(&mut self, load: &Load) -> Option<(usize, String)> {
        let mut first_err = load.errors.first().cloned();
        let mut nhcb_sources: Vec<Labels> = Vec::new();
        // As upstream, a series listed twice in one block takes its last definition.
        let mut last: std::collections::HashMap<(&Labels, bool), usize> =
            std::collections::HashMap::new();
        for (i, s) in load.series.iter().enumerate() {
            last.insert((&s.labels, s.start_timestamps), i);
        }
        for (i, s) in load.series.iter().enumerate() {
            if last.get(&(&s.labels, s.start_timestamps)) != Some(&i) {
                continue;
            }
            if s.start_timestamps {
                // Start timestamps (`metric@st`) have no counterpart in klaxon's store: ignored.
                continue;
            }
            let mut has_histogram = false;
            for (i, v) in s.values.iter().enumerate() {
                let t = (i as i64).saturating_mul(load.interval);
                let value = match v {
                    SeqValue::Omitted => continue,
                    SeqValue::Histogram(_) => {
                        has_histogram = true;
                        continue;
                    }
                    SeqValue::Float(f) => SampleValue::Float(*f),
                    SeqValue::Str(text) => SampleValue::Str(text.as_str().into()),
                };
                if let Err(e) = self.store.append(&s.labels, t, value) {
                    if first_err.is_none() {
                        first_err =
                            Some((s.line, format!("cannot load {} at {}ms: {e}", s.labels, t)));
                    }
                    break;
                }
            }
            if has_histogram {
                self.histogram_series.push(s.labels.clone());
            }
            if load.nhcb {
                nhcb_sources.push(s.labels.clone());
            }
        }
        // `load_with_nhcb` also creates a native histogram with custom buckets per classic histogram,
        // named after the `_bucket` series without the suffix and without `le`.
        for l in nhcb_sources {
            if let (Some(name), true) = (
                l.metric_name().and_then(|n| n.strip_suffix("_bucket")),
                l.has("le"),
            ) {
                let mut b = LabelsBuilder::new(&l);
                b.set(METRIC_NAME, name).del("le");
                let h = b.build();
                if !self.histogram_series.contains(&h) {
                    self.histogram_series.push(h);
                }
            }
        }
        first_err
    }

    /// Why an eval needs native histograms, if it does. When the caller lists the evals that need them, that
    /// list decides alone; otherwise the script does (histogram results, histogram functions, histogram data).
    fn needs_histograms(&self, ev: &Eval, expr: Option<&Expr>) -> Option<String> {
        if let Some(lines) = &self.opts.native_histogram_lines {
            return lines
                .contains(&ev.line)
                .then(|| "flagged as needing native histograms".to_string());
        }
        if ev.histograms {
            return Some("expects native histogram results".to_string());
        }
        // Histogram functions are experimental for klaxon's parser; look at the query with them enabled.
        let lenient;
        let expr = match expr {
            Some(e) => e,
            None => {
                let opts = ParseOptions {
                    experimental_functions: true,
                };
                lenient = crate::expr::parse_with(&ev.query, opts).ok()?;
                &lenient
            }
        };
        let mut func = None;
        visit_calls(expr, &mut |name| {
            if NATIVE_HISTOGRAM_FUNCTIONS.contains(&name) {
                func.get_or_insert_with(|| name.to_string());
            }
        });
        if let Some(f) = func {
            return Some(format!("calls native histogram function {f}"));
        }
        let mut hit = None;
        visit_selectors(expr, &mut |vs: &VectorSelector| {
            if hit.is_none() {
                hit = self
                    .histogram_series
                    .iter()
                    .find(|l| vs.matchers.iter().all(|m| m.matches_labels(l)))
                    .cloned();
            }
        });
        hit.map(|l| format!("selects native histogram series {l}"))
    }

    /// Runs one eval: its verdict and, unless it passed, why.
    fn eval(&mut self, ev: &Eval) -> (Status, String) {
        if let Some((line, why)) = &ev.error {
            return (Status::Fail, format!("line {line}: {why}"));
        }
        if let Some((line, why)) = &self.load_error {
            return (
                Status::Fail,
                format!("data not loaded (line {line}): {why}"),
            );
        }
        let parsed = crate::expr::parse_and_check(&ev.query);
        if let Some(why) = self.needs_histograms(ev, parsed.as_ref().ok()) {
            return (Status::Skip, why);
        }
        let expr = match parsed {
            Ok(e) => e,
            Err(d) => {
                return match check_failure(ev, &d.message, "parse error") {
                    Ok(()) => (Status::Pass, String::new()),
                    Err(why) => (Status::Fail, why),
                };
            }
        };
        let result = match ev.kind {
            EvalKind::Instant { at } => self.eval_instant(ev, &expr, at),
            EvalKind::Range { start, end, step } => self.eval_range(ev, &expr, start, end, step),
        };
        match result {
            Ok(()) => (Status::Pass, String::new()),
            Err(why) => (Status::Fail, why),
        }
    }

    fn eval_range(
        &self,
        ev: &Eval,
        expr: &Expr,
        start: i64,
        end: i64,
        step: i64,
    ) -> Result<(), String> {
        let out = match self
            .engine
            .range_with_text(&self.store, expr, start, end, step, &ev.query)
        {
            Ok(out) => out,
            Err(e) => return check_failure(ev, &e.to_string(), "query failed"),
        };
        if ev.expects_fail() {
            return Err(format!(
                "expected the query to fail, but it returned {}",
                describe_value(&out.value)
            ));
        }
        check_annotations(ev, &out)?;
        compare_range(ev, &out.value, start, end, step)
    }

    /// Runs an instant eval, then (as upstream) re-checks it as a range query and with `@` modifiers.
    fn eval_instant(&self, ev: &Eval, expr: &Expr, at: i64) -> Result<(), String> {
        self.instant_case(ev, expr, at, "")?;
        if !self.opts.at_modifier_check {
            return Ok(());
        }
        let Some(pinned) = pin_at(expr, at) else {
            return Ok(());
        };
        let times: Vec<i64> = if at == 0 {
            vec![0, 10, 1000]
        } else {
            vec![at.saturating_mul(-10), 0, at / 5, at, at.saturating_mul(10)]
        };
        for t in times {
            let mode = format!(" (with @ {} evaluated at {})", fmt_secs(at), fmt_secs(t));
            self.instant_case(ev, &pinned, t, &mode)?;
        }
        Ok(())
    }

    /// One instant evaluation, checked; then the same query as a range query around `at`.
    fn instant_case(&self, ev: &Eval, expr: &Expr, at: i64, mode: &str) -> Result<(), String> {
        let out = match self
            .engine
            .instant_with_text(&self.store, expr, at, &ev.query)
        {
            Ok(out) => out,
            Err(e) => {
                return check_failure(ev, &e.to_string(), "query failed")
                    .map_err(|why| format!("{why}{mode}"));
            }
        };
        if ev.expects_fail() {
            return Err(format!(
                "expected the query to fail, but it returned {}{mode}",
                describe_value(&out.value)
            ));
        }
        check_annotations(ev, &out).map_err(|why| format!("{why}{mode}"))?;
        compare_instant(ev, &out.value).map_err(|why| format!("{why}{mode}"))?;

        if !self.opts.range_check || !matches!(out.value, Value::Scalar(_) | Value::Vector(_)) {
            return Ok(());
        }
        let (start, end) = (at.saturating_sub(60_000), at.saturating_add(60_000));
        let range_mode = match mode.strip_prefix(" (") {
            Some(m) => format!(" (range mode, {m}"),
            None => " (range mode)".to_string(),
        };
        let rout = self
            .engine
            .range_with_text(&self.store, expr, start, end, 60_000, &ev.query)
            .map_err(|e| format!("query failed in range mode: {e}{range_mode}"))?;
        if ev.ordered {
            // Range results are always sorted by labels; the order cannot be checked there.
            return Ok(());
        }
        let Value::Matrix(series) = &rout.value else {
            return Err(format!(
                "range query returned {}{range_mode}",
                describe_value(&rout.value)
            ));
        };
        let samples: Vec<crate::eval::Sample> = series
            .iter()
            .filter_map(|s| {
                s.points
                    .iter()
                    .find(|(t, _)| *t == at)
                    .map(|(t, v)| crate::eval::Sample {
                        labels: s.labels.clone(),
                        t: *t,
                        value: v.clone(),
                    })
            })
            .collect();
        let as_instant = match out.value {
            Value::Scalar(_) => match samples.first() {
                Some(crate::eval::Sample {
                    value: SampleValue::Float(f),
                    ..
                }) => Value::Scalar(*f),
                _ => {
                    return Err(format!(
                        "expected {} but the range query has no point at {}{range_mode}",
                        describe_expected(ev),
                        fmt_secs(at)
                    ));
                }
            },
            _ => Value::Vector(samples),
        };
        compare_instant(ev, &as_instant).map_err(|why| format!("{why}{range_mode}"))
    }
}

/// Seconds for messages (`300s`, `0.01s`).
fn fmt_secs(ms: i64) -> String {
    if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{}s", ms as f64 / 1000.0)
    }
}

/// Checks a query error (`kind`: parse error or query failed) against the eval's `fail` expectations.
fn check_failure(ev: &Eval, msg: &str, kind: &str) -> Result<(), String> {
    let fails: Vec<_> = ev
        .expectations
        .iter()
        .filter(|e| e.kind == ExpectKind::Fail)
        .collect();
    if fails.is_empty() {
        return Err(format!("{kind}: {msg}"));
    }
    match fails.iter().find(|e| !e.message.matches(msg)) {
        Some(e) => Err(format!(
            "expected the query to fail with{}, but got {kind}: {msg}",
            e.message
        )),
        None => Ok(()),
    }
}

/// Checks warn/info annotations against the eval's expectations (upstream's rules).
fn check_annotations(ev: &Eval, out: &Outcome) -> Result<(), String> {
    let (warnings, infos) = annotation_texts(out);
    for (kind, none_kind, found, what, a_what) in [
        (
            ExpectKind::Warn,
            ExpectKind::NoWarn,
            &warnings,
            "warning",
            "a warning",
        ),
        (
            ExpectKind::Info,
            ExpectKind::NoInfo,
            &infos,
            "info",
            "an info",
        ),
    ] {
        if ev.expectations.iter().any(|e| e.kind == none_kind) && !found.is_empty() {
            return Err(format!(
                "expected no {what} annotation, got: {}",
                found.join("; ")
            ));
        }
        let exps: Vec<_> = ev.expectations.iter().filter(|e| e.kind == kind).collect();
        if exps.is_empty() {
            continue;
        }
        if found.is_empty() {
            return Err(format!("expected {a_what} annotation, got none"));
        }
        if let Some(e) = exps
            .iter()
            .find(|e| !found.iter().any(|a| e.message.matches(a)))
        {
            return Err(format!(
                "expected {a_what} annotation matching{}, got: {}",
                e.message,
                found.join("; ")
            ));
        }
        if let Some(a) = found
            .iter()
            .find(|a| !exps.iter().any(|e| e.message.matches(a)))
        {
            return Err(format!("unexpected {what} annotation: {a}"));
        }
    }
    Ok(())
}

/// Annotation texts as the API renders them (`PromQL warning: ... (1:5)`), warnings then infos.
fn annotation_texts(out: &Outcome) -> (Vec<String>, Vec<String>) {
    (
        out.warnings.iter().map(ToString::to_string).collect(),
        out.infos.iter().map(ToString::to_string).collect(),
    )
}

/// Calls `f` on every vector selector (also those inside matrix selectors and subqueries).
fn visit_selectors(e: &Expr, f: &mut dyn FnMut(&VectorSelector)) {
    match e {
        Expr::VectorSelector(vs) => f(vs),
        Expr::MatrixSelector { selector, .. } => f(selector),
        Expr::Subquery { expr, .. } | Expr::Paren { expr, .. } | Expr::Unary { expr, .. } => {
            visit_selectors(expr, f)
        }
        Expr::Binary { lhs, rhs, .. } => {
            visit_selectors(lhs, f);
            visit_selectors(rhs, f);
        }
        Expr::Aggregate { expr, param, .. } => {
            if let Some(p) = param {
                visit_selectors(p, f);
            }
            visit_selectors(expr, f);
        }
        Expr::Call { args, .. } => args.iter().for_each(|a| visit_selectors(a, f)),
        Expr::Number { .. } | Expr::String { .. } => {}
    }
}

/// The query with `@ at` on every selector and subquery that has none, leaving the inside of subqueries with
/// an `@` alone; `None` when the query calls a function that is not step invariant (as upstream).
fn pin_at(e: &Expr, at: i64) -> Option<Expr> {
    let mut unsafe_call = false;
    visit_calls(e, &mut |name| {
        unsafe_call |= AT_UNSAFE_FUNCTIONS.contains(&name)
    });
    if unsafe_call {
        return None;
    }
    let mut out = e.clone();
    pin(&mut out, at);
    Some(out)
}

fn visit_calls(e: &Expr, f: &mut dyn FnMut(&str)) {
    match e {
        Expr::Call { func, args, .. } => {
            f(func);
            args.iter().for_each(|a| visit_calls(a, f));
        }
        Expr::Subquery { expr, .. } | Expr::Paren { expr, .. } | Expr::Unary { expr, .. } => {
            visit_calls(expr, f)
        }
        Expr::Binary { lhs, rhs, .. } => {
            visit_calls(lhs, f);
            visit_calls(rhs, f);
        }
        Expr::Aggregate { expr, param, .. } => {
            if let Some(p) = param {
                visit_calls(p, f);
            }
            visit_calls(expr, f);
        }
        _ => {}
    }
}

fn pin(e: &mut Expr, at: i64) {
    match e {
        Expr::VectorSelector(vs) | Expr::MatrixSelector { selector: vs, .. } => {
            vs.at.get_or_insert(AtModifier::Timestamp(at));
        }
        Expr::Subquery { at: sub_at, .. } => {
            // The subquery gets the `@`; its inside is evaluated relative to it, untouched.
            sub_at.get_or_insert(AtModifier::Timestamp(at));
        }
        Expr::Paren { expr, .. } | Expr::Unary { expr, .. } => pin(expr, at),
        Expr::Binary { lhs, rhs, .. } => {
            pin(lhs, at);
            pin(rhs, at);
        }
        Expr::Aggregate { expr, param, .. } => {
            if let Some(p) = param {
                pin(p, at);
            }
            pin(expr, at);
        }
        Expr::Call { args, .. } => args.iter_mut().for_each(|a| pin(a, at)),
        Expr::Number { .. } | Expr::String { .. } => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::parse_and_check;

    fn ats(e: &Expr) -> Vec<Option<AtModifier>> {
        let mut out = Vec::new();
        visit_selectors(e, &mut |vs| out.push(vs.at));
        out
    }

    #[test]
    fn pin_at_sets_missing_at_modifiers_outside_subqueries() {
        let e = parse_and_check("sum(rate(a[5m])) + b @ 10 + max_over_time(c[5m:1m])").unwrap();
        let p = pin_at(&e, 60_000).unwrap();
        let got = ats(&p);
        assert_eq!(
            got,
            vec![
                Some(AtModifier::Timestamp(60_000)),
                Some(AtModifier::Timestamp(10_000)),
                None
            ],
            "{p:?}"
        );
        let mut sub_at = None;
        fn find_sub(e: &Expr, out: &mut Option<Option<AtModifier>>) {
            match e {
                Expr::Subquery { at, .. } => *out = Some(*at),
                Expr::Binary { lhs, rhs, .. } => {
                    find_sub(lhs, out);
                    find_sub(rhs, out);
                }
                Expr::Call { args, .. } => args.iter().for_each(|a| find_sub(a, out)),
                _ => {}
            }
        }
        find_sub(&p, &mut sub_at);
        assert_eq!(sub_at, Some(Some(AtModifier::Timestamp(60_000))));
    }

    #[test]
    fn pin_at_skips_time_dependent_queries() {
        let e = parse_and_check("timestamp(a) - time()").unwrap();
        assert!(pin_at(&e, 1000).is_none());
        let e = parse_and_check("hour(a)").unwrap();
        assert!(pin_at(&e, 1000).is_none());
    }

    #[test]
    fn failure_expectations() {
        let src = "eval instant at 0 x\n  expect fail msg: boom\n  expect fail regex: bo+m\n";
        let s = super::super::script::parse_script(src, &|_| Ok(Labels::empty()));
        let Command::Eval(ev) = &s.commands[0] else {
            panic!()
        };
        assert!(check_failure(ev, "boom", "query failed").is_ok());
        assert!(check_failure(ev, "booom", "query failed").is_err());
    }
}
