//! Comparing a query result with what an eval expects: floats with relative tolerance, series as sets
//! (or in order), range results point by point.

use std::collections::HashMap;
use std::fmt::Write as _;

use super::script::{Eval, ExpectedSeries};
use super::series::{SeqValue, format_float};
use crate::eval::{Sample, Series, Value};
use crate::model::{Labels, SampleValue, is_stale_nan};

/// Relative tolerance of float comparisons, as upstream's harness.
pub const EPSILON: f64 = 1e-6;

/// How many series a failure message lists before eliding the rest.
const MAX_LISTED: usize = 8;

/// Float equality as Prometheus' test harness defines it: stale markers only equal stale markers, NaN equals
/// NaN, otherwise equal within relative tolerance `eps` (absolute near zero).
pub fn almost_equal(a: f64, b: f64, eps: f64) -> bool {
    const MIN_NORMAL: f64 = f64::MIN_POSITIVE; // 2^-1022, Go's math.Float64frombits(0x0010000000000000)
    if is_stale_nan(a) || is_stale_nan(b) {
        return is_stale_nan(a) && is_stale_nan(b);
    }
    if a.is_nan() && b.is_nan() {
        return true;
    }
    if a == b {
        return true;
    }
    let abs_sum = a.abs() + b.abs();
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || abs_sum < MIN_NORMAL {
        return diff < eps * MIN_NORMAL;
    }
    diff / abs_sum.min(f64::MAX) < eps
}

/// Whether a result value equals an expected point.
fn value_matches(expected: &SeqValue, got: &SampleValue) -> bool {
    match (expected, got) {
        (SeqValue::Float(e), SampleValue::Float(g)) => almost_equal(*e, *g, EPSILON),
        (SeqValue::Str(e), SampleValue::Str(g)) => **e == **g,
        _ => false,
    }
}

/// Formats a result value as a script would write it.
pub fn format_value(v: &SampleValue) -> String {
    match v {
        SampleValue::Float(f) => format_float(*f),
        SampleValue::Str(s) => format!("{:?}", &**s),
    }
}

/// Summarises a result value for failure messages (`{a="b"} 1, {c="d"} 2`, elided after a few series).
pub fn describe_value(v: &Value) -> String {
    match v {
        Value::Scalar(f) => format!("scalar {}", format_float(*f)),
        Value::String(s) => format!("string {s:?}"),
        Value::Vector(samples) => {
            let items: Vec<String> = samples
                .iter()
                .map(|s| format!("{} {}", s.labels, format_value(&s.value)))
                .collect();
            format!("vector [{}]", list(&items))
        }
        Value::Matrix(series) => {
            let items: Vec<String> = series.iter().map(describe_series).collect();
            format!("matrix [{}]", list(&items))
        }
    }
}

fn describe_series(s: &Series) -> String {
    let mut out = format!("{} ", s.labels);
    for (i, (t, v)) in s.points.iter().enumerate() {
        if i >= 12 {
            out.push_str(" ...");
            break;
        }
        if i > 0 {
            out.push(' ');
        }
        let _ = write!(out, "{}@{}", format_value(v), fmt_ms(*t));
    }
    out
}

/// Milliseconds as seconds (`90s`, `1.5s`), for timestamps in messages.
fn fmt_ms(t: i64) -> String {
    if t % 1000 == 0 {
        format!("{}s", t / 1000)
    } else {
        format!("{}s", t as f64 / 1000.0)
    }
}

fn list(items: &[String]) -> String {
    let mut out = items
        .iter()
        .take(MAX_LISTED)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > MAX_LISTED {
        let _ = write!(out, ", ... ({} more)", items.len() - MAX_LISTED);
    }
    out
}

/// Summarises what an eval expects, for failure messages.
pub fn describe_expected(ev: &Eval) -> String {
    if let Some(s) = &ev.expect_string {
        return format!("string {s:?}");
    }
    if let Some(v) = ev.scalar {
        return format!("scalar {}", format_float(v));
    }
    let items: Vec<String> = ev
        .series
        .iter()
        .map(|s| {
            let vals: Vec<String> = s.values.iter().map(ToString::to_string).collect();
            format!("{} {}", s.labels, vals.join(" "))
        })
        .collect();
    format!("[{}]", list(&items))
}

/// Checks the result of an instant query (or the instant-equivalent of a range query) against `ev`.
pub fn compare_instant(ev: &Eval, got: &Value) -> Result<(), String> {
    check_kind(ev, got)?;
    match got {
        Value::String(s) => {
            let Some(e) = &ev.expect_string else {
                return Err(internal());
            };
            if e != s {
                return Err(format!("expected string {e:?} but got {s:?}"));
            }
            Ok(())
        }
        Value::Scalar(v) => {
            let Some(e) = ev.scalar else {
                return Err(internal());
            };
            if !almost_equal(e, *v, EPSILON) {
                return Err(format!(
                    "expected scalar {} but got {}",
                    format_float(e),
                    format_float(*v)
                ));
            }
            Ok(())
        }
        Value::Vector(samples) => compare_vector(ev, samples),
        Value::Matrix(series) => match ev.range_vector {
            Some((start, end, step)) => compare_matrix(&ev.series, series, start, end, step),
            None => Err(
                "query returned a range vector; the eval needs `expect range vector`".to_string(),
            ),
        },
    }
}

/// Checks a range-query result against `ev` (whose kind gives start, end and step).
pub fn compare_range(
    ev: &Eval,
    got: &Value,
    start: i64,
    end: i64,
    step: i64,
) -> Result<(), String> {
    match got {
        Value::Matrix(series) => {
            if ev.ordered {
                return Err(
                    "expected an ordered result, but a range query returns a matrix".to_string(),
                );
            }
            if ev.scalar.is_some() || ev.expect_string.is_some() {
                return Err(format!(
                    "expected {}, but got a matrix",
                    describe_expected(ev)
                ));
            }
            compare_matrix(&ev.series, series, start, end, step)
        }
        other => Err(format!(
            "range query returned {} instead of a matrix",
            describe_value(other)
        )),
    }
}

fn internal() -> String {
    "internal error: result kind not checked".to_string()
}

/// Rejects results whose kind differs from what the eval expects (string, scalar, vector/matrix).
fn check_kind(ev: &Eval, got: &Value) -> Result<(), String> {
    let want = if ev.expect_string.is_some() {
        "string"
    } else if ev.scalar.is_some() {
        "scalar"
    } else if ev.range_vector.is_some() {
        "range vector"
    } else {
        "vector"
    };
    let is = match got {
        Value::String(_) => "string",
        Value::Scalar(_) => "scalar",
        Value::Vector(_) => "vector",
        Value::Matrix(_) => "range vector",
    };
    // An instant vector eval with a matrix result gets its own, more helpful message later.
    if want == is || (want == "vector" && is == "range vector") {
        Ok(())
    } else {
        Err(format!(
            "expected a {want} result ({}), but got {}",
            describe_expected(ev),
            describe_value(got)
        ))
    }
}

fn compare_vector(ev: &Eval, samples: &[Sample]) -> Result<(), String> {
    let expected: HashMap<&Labels, (usize, &ExpectedSeries)> = ev
        .series
        .iter()
        .enumerate()
        .map(|(i, s)| (&s.labels, (i, s)))
        .collect();
    let mut seen: HashMap<&Labels, usize> = HashMap::new();
    let context = || {
        format!(
            " (expected {}, got {})",
            describe_expected(ev),
            describe_value(&Value::Vector(samples.to_vec()))
        )
    };
    for (pos, s) in samples.iter().enumerate() {
        if let Some(prev) = seen.insert(&s.labels, pos) {
            return Err(format!(
                "series {} appears twice in the result (positions {} and {})",
                s.labels,
                prev + 1,
                pos + 1
            ));
        }
        let Some((exp_pos, exp)) = expected.get(&s.labels) else {
            return Err(format!(
                "unexpected series {} {} in result{}",
                s.labels,
                format_value(&s.value),
                context()
            ));
        };
        if ev.ordered && *exp_pos != pos {
            return Err(format!(
                "expected series {} at position {} but it was at {}{}",
                s.labels,
                exp_pos + 1,
                pos + 1,
                context()
            ));
        }
        let want = exp.values.first().unwrap_or(&SeqValue::Omitted);
        if !value_matches(want, &s.value) {
            return Err(format!(
                "expected {} for {} but got {}{}",
                want,
                s.labels,
                format_value(&s.value),
                context()
            ));
        }
    }
    if let Some(missing) = ev.series.iter().find(|e| !seen.contains_key(&e.labels)) {
        let want = missing
            .values
            .first()
            .map(ToString::to_string)
            .unwrap_or_default();
        return Err(format!(
            "expected series {} {} not found{}",
            missing.labels,
            want,
            context()
        ));
    }
    Ok(())
}

/// Compares a matrix point by point; expected point `i` is at `start + i*step` and must not pass `end`.
pub fn compare_matrix(
    expected: &[ExpectedSeries],
    got: &[Series],
    start: i64,
    end: i64,
    step: i64,
) -> Result<(), String> {
    let by_labels: HashMap<&Labels, &ExpectedSeries> =
        expected.iter().map(|s| (&s.labels, s)).collect();
    let context = || {
        let items: Vec<String> = expected
            .iter()
            .map(|s| {
                let vals: Vec<String> = s.values.iter().map(ToString::to_string).collect();
                format!("{} {}", s.labels, vals.join(" "))
            })
            .collect();
        format!(
            " (expected [{}], got {})",
            list(&items),
            describe_value(&Value::Matrix(got.to_vec()))
        )
    };
    if let Some(w) = got.windows(2).find(|w| w[0].labels >= w[1].labels) {
        return Err(format!(
            "result series are not sorted by labels: {} before {}",
            w[0].labels, w[1].labels
        ));
    }
    for s in got {
        let Some(exp) = by_labels.get(&s.labels) else {
            return Err(format!(
                "unexpected series {} in result{}",
                describe_series(s),
                context()
            ));
        };
        let mut points = Vec::new();
        for (i, v) in exp.values.iter().enumerate() {
            let t = (i as i64)
                .checked_mul(step)
                .and_then(|o| start.checked_add(o))
                .unwrap_or(i64::MAX);
            if t > end {
                return Err(format!(
                    "expected {} points for {}, but the time range has only {}",
                    exp.values.len(),
                    exp.labels,
                    (end - start) / step + 1
                ));
            }
            if !matches!(v, SeqValue::Omitted) {
                points.push((t, v));
            }
        }
        if points.len() != s.points.len() {
            return Err(format!(
                "expected {} points for {} but got {}{}",
                points.len(),
                s.labels,
                s.points.len(),
                context()
            ));
        }
        for ((et, ev), (gt, gv)) in points.iter().zip(&s.points) {
            if et != gt {
                return Err(format!(
                    "expected a point at {} for {} but got one at {}{}",
                    fmt_ms(*et),
                    s.labels,
                    fmt_ms(*gt),
                    context()
                ));
            }
            if !value_matches(ev, gv) {
                return Err(format!(
                    "expected {} at {} for {} but got {}{}",
                    ev,
                    fmt_ms(*et),
                    s.labels,
                    format_value(gv),
                    context()
                ));
            }
        }
    }
    let seen: std::collections::HashSet<&Labels> = got.iter().map(|s| &s.labels).collect();
    if let Some(missing) = expected.iter().find(|e| !seen.contains(&e.labels)) {
        // A series whose expected points are all omitted is legitimately absent.
        if missing
            .values
            .iter()
            .any(|v| !matches!(v, SeqValue::Omitted))
        {
            return Err(format!(
                "expected series {} not found{}",
                missing.labels,
                context()
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::stale_nan;
    use crate::promqltest::script::{EvalKind, parse_script};

    fn eval(src: &str) -> Eval {
        let mut s = parse_script(src, &crate::promqltest::parse_labels);
        match s.commands.remove(0) {
            crate::promqltest::script::Command::Eval(e) => {
                assert!(e.error.is_none(), "{:?}", e.error);
                *e
            }
            other => panic!("{other:?}"),
        }
    }

    fn sample(l: &str, v: f64) -> Sample {
        Sample {
            labels: crate::promqltest::parse_labels(l).unwrap(),
            t: 0,
            value: SampleValue::Float(v),
        }
    }

    #[test]
    fn almost_equal_rules() {
        assert!(almost_equal(1.0, 1.0 + 1e-9, EPSILON));
        assert!(!almost_equal(1.0, 1.0001, EPSILON));
        assert!(almost_equal(f64::NAN, f64::NAN, EPSILON));
        assert!(!almost_equal(f64::NAN, stale_nan(), EPSILON));
        assert!(almost_equal(stale_nan(), stale_nan(), EPSILON));
        assert!(!almost_equal(0.0, 1e-300, EPSILON));
        assert!(almost_equal(0.0, -0.0, EPSILON));
        assert!(almost_equal(f64::INFINITY, f64::INFINITY, EPSILON));
        assert!(!almost_equal(f64::INFINITY, f64::NEG_INFINITY, EPSILON));
        assert!(!almost_equal(f64::INFINITY, 1.0, EPSILON));
    }

    #[test]
    fn vectors_as_sets_or_ordered() {
        let ev = eval("eval instant at 0 x\n  {a=\"1\"} 1\n  {a=\"2\"} 2\n");
        let good = Value::Vector(vec![
            sample("{a=\"2\"}", 2.0),
            sample("{a=\"1\"}", 1.0000000001),
        ]);
        assert_eq!(compare_instant(&ev, &good), Ok(()));
        let bad = Value::Vector(vec![sample("{a=\"2\"}", 2.1), sample("{a=\"1\"}", 1.0)]);
        assert!(
            compare_instant(&ev, &bad)
                .unwrap_err()
                .contains("expected 2 for {a=\"2\"} but got 2.1")
        );
        let missing = Value::Vector(vec![sample("{a=\"1\"}", 1.0)]);
        assert!(
            compare_instant(&ev, &missing)
                .unwrap_err()
                .contains("not found")
        );
        let extra = Value::Vector(vec![
            sample("{a=\"1\"}", 1.0),
            sample("{a=\"2\"}", 2.0),
            sample("{a=\"3\"}", 3.0),
        ]);
        assert!(
            compare_instant(&ev, &extra)
                .unwrap_err()
                .contains("unexpected series {a=\"3\"} 3")
        );
        let ord = eval("eval instant at 0 x\n  expect ordered\n  {a=\"1\"} 1\n  {a=\"2\"} 2\n");
        assert!(
            compare_instant(&ord, &good)
                .unwrap_err()
                .contains("position")
        );
        assert!(
            compare_instant(
                &ord,
                &Value::Vector(vec![sample("{a=\"1\"}", 1.0), sample("{a=\"2\"}", 2.0)])
            )
            .is_ok()
        );
        assert!(compare_instant(&ev, &Value::Scalar(1.0)).is_err());
        let empty = eval("eval instant at 0 x\n");
        assert!(compare_instant(&empty, &Value::Vector(vec![])).is_ok());
    }

    #[test]
    fn scalars_and_strings() {
        let ev = eval("eval instant at 0 1\n  1\n");
        assert!(compare_instant(&ev, &Value::Scalar(1.0)).is_ok());
        assert!(compare_instant(&ev, &Value::Scalar(2.0)).is_err());
        assert!(compare_instant(&ev, &Value::Vector(vec![])).is_err());
        let ev = eval("eval instant at 0 \"a\"\n  expect string \"a\"\n");
        assert!(compare_instant(&ev, &Value::String("a".into())).is_ok());
        assert!(compare_instant(&ev, &Value::String("b".into())).is_err());
        let ev = eval("eval instant at 0 x\n  x{db=\"m\"} \"down\"\n");
        let s = Sample {
            labels: crate::promqltest::parse_labels("x{db=\"m\"}").unwrap(),
            t: 0,
            value: SampleValue::Str("down".into()),
        };
        assert!(compare_instant(&ev, &Value::Vector(vec![s.clone()])).is_ok());
        let s2 = Sample {
            value: SampleValue::Str("up".into()),
            ..s
        };
        assert!(compare_instant(&ev, &Value::Vector(vec![s2])).is_err());
    }

    #[test]
    fn matrices_point_by_point() {
        let ev = eval("eval range from 0 to 2m step 1m x\n  {a=\"1\"} _ 2 3\n");
        let EvalKind::Range { start, end, step } = ev.kind else {
            panic!()
        };
        let series = |pts: Vec<(i64, f64)>| {
            Value::Matrix(vec![Series {
                labels: crate::promqltest::parse_labels("{a=\"1\"}").unwrap(),
                points: pts
                    .into_iter()
                    .map(|(t, v)| (t, SampleValue::Float(v)))
                    .collect(),
            }])
        };
        assert!(
            compare_range(
                &ev,
                &series(vec![(60_000, 2.0), (120_000, 3.0)]),
                start,
                end,
                step
            )
            .is_ok()
        );
        assert!(
            compare_range(
                &ev,
                &series(vec![(0, 1.0), (60_000, 2.0), (120_000, 3.0)]),
                start,
                end,
                step
            )
            .is_err()
        );
        assert!(
            compare_range(
                &ev,
                &series(vec![(60_000, 2.0), (120_000, 4.0)]),
                start,
                end,
                step
            )
            .is_err()
        );
        assert!(
            compare_range(
                &ev,
                &series(vec![(0, 2.0), (120_000, 3.0)]),
                start,
                end,
                step
            )
            .is_err()
        );
        assert!(compare_range(&ev, &Value::Matrix(vec![]), start, end, step).is_err());
        let too_many = eval("eval range from 0 to 1m step 1m x\n  {a=\"1\"} 1 2 3\n");
        assert!(
            compare_range(
                &too_many,
                &series(vec![(0, 1.0), (60_000, 2.0)]),
                0,
                60_000,
                60_000
            )
            .is_err()
        );
    }
}
