//! Function calls: instant-vector functions (math, dates, labels, sorting, classic histograms),
//! scalar functions, and the dispatch of range-vector functions over windows.

use crate::model::civil::{civil_from_days, days_in_month, is_leap};
use std::rc::Rc;
use std::sync::Arc;

use crate::expr::{Expr, Span};
use crate::model::{Labels, LabelsBuilder, METRIC_NAME, MatchOp, SampleValue};

use super::EvalError;
use super::annotations::{
    Level, bad_bucket_label, forced_monotonicity, invalid_quantile, possible_non_counter,
    sort_in_range_query,
};
use super::engine::{Ctx, Val};
use super::range;
use super::value::{Elem, SeriesData, Window, go_max, go_min, hash_without, parse_go_float};

/// Evaluates `func(args...)` at `t`.
pub(crate) fn eval_call(
    ctx: &Ctx<'_>,
    func: &str,
    args: &[Expr],
    span: Span,
    t: i64,
) -> Result<Val, EvalError> {
    let arg = |i: usize| -> Result<&Expr, EvalError> {
        args.get(i)
            .ok_or_else(|| EvalError::Type(format!("missing argument {} to {func}()", i + 1)))
    };
    match func {
        "time" => Ok(Val::Scalar(t as f64 / 1000.0)),
        "pi" => Ok(Val::Scalar(std::f64::consts::PI)),
        "vector" => {
            let s = ctx.eval_scalar(arg(0)?, t)?;
            Ok(Val::Vector(vec![Elem::float(
                Arc::new(Labels::empty()),
                s,
                false,
            )]))
        }
        "scalar" => {
            let v = ctx.eval_vector(arg(0)?, t)?;
            let floats: Vec<f64> = v.iter().filter_map(Elem::f).collect();
            Ok(Val::Scalar(if floats.len() == 1 {
                floats[0]
            } else {
                f64::NAN
            }))
        }
        "timestamp" => timestamp(ctx, arg(0)?, t),
        "absent" => {
            let v = ctx.eval_vector(arg(0)?, t)?;
            if !v.is_empty() {
                return Ok(Val::Vector(Vec::new()));
            }
            Ok(Val::Vector(vec![Elem::float(
                Arc::new(absent_labels(arg(0)?)),
                1.0,
                false,
            )]))
        }
        "label_replace" => label_replace(ctx, args, t),
        "label_join" => label_join(ctx, args, t),
        "sort" | "sort_desc" | "sort_by_label" | "sort_by_label_desc" => {
            if ctx.in_range_mode() {
                ctx.annotate(Level::Warn, sort_in_range_query(), span);
            }
            let v = ctx.eval_vector(arg(0)?, t)?;
            if func.starts_with("sort_by_label") {
                let mut names = Vec::new();
                for a in &args[1..] {
                    names.push(ctx.eval_string(a, t)?);
                }
                Ok(Val::Vector(sort_by_label(
                    v,
                    &names,
                    func == "sort_by_label_desc",
                )))
            } else {
                Ok(Val::Vector(sort_by_value(v, func == "sort_desc")))
            }
        }
        "histogram_quantile" => {
            let q = ctx.eval_scalar(arg(0)?, t)?;
            let v = ctx.eval_vector(arg(1)?, t)?;
            if q.is_nan() || !(0.0..=1.0).contains(&q) {
                ctx.annotate(Level::Warn, invalid_quantile(q), arg(0)?.span());
            }
            histogram_quantile(ctx, q, v, arg(1)?.span())
        }
        "histogram_quantiles" => {
            // Experimental upstream: one output series per quantile, labelled with it.
            let v = ctx.eval_vector(arg(0)?, t)?;
            let label = ctx.eval_string(arg(1)?, t)?;
            if label.is_empty() {
                return Err(EvalError::InvalidLabelName(format!(
                    "invalid quantile label name {}",
                    crate::model::quote(&label)
                )));
            }
            let mut out = Vec::new();
            for qa in &args[2..] {
                let q = ctx.eval_scalar(qa, t)?;
                if q.is_nan() || !(0.0..=1.0).contains(&q) {
                    ctx.annotate(Level::Warn, invalid_quantile(q), qa.span());
                }
                let Val::Vector(res) = histogram_quantile(ctx, q, v.clone(), arg(0)?.span())?
                else {
                    continue;
                };
                let mut qs = super::value::format_f(q);
                if !qs.contains(['.', 'e', 'N', 'I']) {
                    qs.push_str(".0");
                }
                for mut el in res {
                    el.labels = Arc::new(super::value::with_label(&el.labels, &label, &qs));
                    out.push(el);
                }
            }
            Ok(Val::Vector(out))
        }
        "histogram_fraction" => {
            let lower = ctx.eval_scalar(arg(0)?, t)?;
            let upper = ctx.eval_scalar(arg(1)?, t)?;
            let v = ctx.eval_vector(arg(2)?, t)?;
            histogram_fraction(ctx, lower, upper, v, arg(2)?.span())
        }
        "histogram_count" | "histogram_sum" | "histogram_avg" | "histogram_stddev"
        | "histogram_stdvar" => {
            // Native histograms only; float samples are ignored.
            ctx.eval_vector(arg(0)?, t)?;
            Ok(Val::Vector(Vec::new()))
        }
        "round" => {
            let v = ctx.eval_vector(arg(0)?, t)?;
            let to_nearest = match args.get(1) {
                Some(a) => ctx.eval_scalar(a, t)?,
                None => 1.0,
            };
            let inv = 1.0 / to_nearest;
            Ok(Val::Vector(map_floats(ctx, v, |f| {
                (f * inv + 0.5).floor() / inv
            })))
        }
        "clamp" => {
            let v = ctx.eval_vector(arg(0)?, t)?;
            let min = ctx.eval_scalar(arg(1)?, t)?;
            let max = ctx.eval_scalar(arg(2)?, t)?;
            if max < min {
                return Ok(Val::Vector(Vec::new()));
            }
            Ok(Val::Vector(map_floats(ctx, v, |f| {
                go_max(min, go_min(max, f))
            })))
        }
        "clamp_min" => {
            let v = ctx.eval_vector(arg(0)?, t)?;
            let min = ctx.eval_scalar(arg(1)?, t)?;
            Ok(Val::Vector(map_floats(ctx, v, |f| go_max(min, f))))
        }
        "clamp_max" => {
            let v = ctx.eval_vector(arg(0)?, t)?;
            let max = ctx.eval_scalar(arg(1)?, t)?;
            Ok(Val::Vector(map_floats(ctx, v, |f| go_min(max, f))))
        }
        "day_of_month" | "day_of_week" | "day_of_year" | "days_in_month" | "hour" | "minute"
        | "month" | "year" => {
            let f = date_fn(func);
            match args.first() {
                None => Ok(Val::Vector(vec![Elem::float(
                    Arc::new(Labels::empty()),
                    f(t.div_euclid(1000)),
                    false,
                )])),
                Some(a) => {
                    let v = ctx.eval_vector(a, t)?;
                    Ok(Val::Vector(map_floats(ctx, v, |x| f(x as i64))))
                }
            }
        }
        "step" => Ok(Val::Scalar(ctx.step as f64 / 1000.0)),
        "range" => Ok(Val::Scalar((ctx.end - ctx.start) as f64 / 1000.0)),
        "start" => Ok(Val::Scalar(ctx.start as f64 / 1000.0)),
        "end" => Ok(Val::Scalar(ctx.end as f64 / 1000.0)),
        "min_of" | "max_of" => {
            let a = ctx.eval_scalar(arg(0)?, t)?;
            let b = ctx.eval_scalar(arg(1)?, t)?;
            if a.is_nan() || b.is_nan() {
                return Ok(Val::Scalar(f64::NAN));
            }
            Ok(Val::Scalar(if func == "min_of" {
                go_min(a, b)
            } else {
                go_max(a, b)
            }))
        }
        _ => {
            if let Some(f) = simple_fn(func) {
                let v = ctx.eval_vector(arg(0)?, t)?;
                return Ok(Val::Vector(map_floats(ctx, v, f)));
            }
            if let Some(f) = RangeFn::from_name(func) {
                return eval_range_call(ctx, f, args, t);
            }
            Err(EvalError::UnknownFunction(func.to_string()))
        }
    }
}

/// Applies `f` to every float sample, dropping strings and marking the name for removal.
fn map_floats(ctx: &Ctx<'_>, v: Vec<Elem>, f: impl Fn(f64) -> f64) -> Vec<Elem> {
    let mut out = Vec::with_capacity(v.len());
    for mut el in v {
        if let SampleValue::Float(x) = el.v {
            el.v = SampleValue::Float(f(x));
            ctx.mark_drop(&mut el);
            out.push(el);
        }
    }
    out
}

/// One-argument math functions.
fn simple_fn(name: &str) -> Option<fn(f64) -> f64> {
    Some(match name {
        "abs" => f64::abs,
        "ceil" => f64::ceil,
        "floor" => f64::floor,
        "exp" => f64::exp,
        "sqrt" => f64::sqrt,
        "ln" => f64::ln,
        "log2" => f64::log2,
        "log10" => f64::log10,
        "sin" => f64::sin,
        "cos" => f64::cos,
        "tan" => f64::tan,
        "asin" => f64::asin,
        "acos" => f64::acos,
        "atan" => f64::atan,
        "sinh" => f64::sinh,
        "cosh" => f64::cosh,
        "tanh" => f64::tanh,
        "asinh" => f64::asinh,
        "acosh" => f64::acosh,
        "atanh" => f64::atanh,
        "deg" => |f| f * 180.0 / std::f64::consts::PI,
        "rad" => |f| f * std::f64::consts::PI / 180.0,
        "sgn" => |f: f64| {
            if f < 0.0 {
                -1.0
            } else if f > 0.0 {
                1.0
            } else {
                f
            }
        },
        _ => return None,
    })
}

/// The date function `name` applied to Unix seconds.
fn date_fn(name: &str) -> fn(i64) -> f64 {
    match name {
        "day_of_month" => |s| civil_from_days(s.div_euclid(86_400)).2 as f64,
        "day_of_week" => |s| (s.div_euclid(86_400) + 4).rem_euclid(7) as f64,
        "day_of_year" => |s| {
            let (y, m, d) = civil_from_days(s.div_euclid(86_400));
            const CUM: [i64; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
            let leap = if m > 2 && is_leap(y) { 1 } else { 0 };
            (CUM[(m - 1) as usize] + i64::from(d) + leap) as f64
        },
        "days_in_month" => |s| {
            let (y, m, _) = civil_from_days(s.div_euclid(86_400));
            f64::from(days_in_month(y, m))
        },
        "hour" => |s| s.rem_euclid(86_400).div_euclid(3600) as f64,
        "minute" => |s| s.rem_euclid(3600).div_euclid(60) as f64,
        "month" => |s| civil_from_days(s.div_euclid(86_400)).1 as f64,
        _ => |s| civil_from_days(s.div_euclid(86_400)).0 as f64,
    }
}

/// `timestamp(v)`: the sample time for a plain selector argument, the evaluation time otherwise.
fn timestamp(ctx: &Ctx<'_>, arg: &Expr, t: i64) -> Result<Val, EvalError> {
    if let Expr::VectorSelector(vs) = arg.unparen() {
        let mut out = Vec::new();
        ctx.for_each_at(vs, t, |d, ts, _| {
            let mut el = Elem::float(d.labels.clone(), ts as f64 / 1000.0, false);
            ctx.mark_drop(&mut el);
            out.push(el);
        });
        ctx.add_samples(out.len())?;
        return Ok(Val::Vector(out));
    }
    let v = ctx.eval_vector(arg, t)?;
    let mut out = Vec::with_capacity(v.len());
    for mut el in v {
        el.v = SampleValue::Float(t as f64 / 1000.0);
        ctx.mark_drop(&mut el);
        out.push(el);
    }
    Ok(Val::Vector(out))
}

/// Labels of `absent(...)` / `absent_over_time(...)`: the equality matchers of a plain selector
/// (a label matched twice is dropped, as upstream).
fn absent_labels(arg: &Expr) -> Labels {
    let matchers = match arg {
        Expr::VectorSelector(vs) => &vs.matchers,
        Expr::MatrixSelector { selector, .. } => &selector.matchers,
        _ => return Labels::empty(),
    };
    let mut b = LabelsBuilder::new(&Labels::empty());
    let mut has: Vec<&str> = Vec::new();
    for m in matchers {
        if m.name == METRIC_NAME {
            continue;
        }
        if m.op == MatchOp::Equal && !has.contains(&m.name.as_str()) {
            b.set(&m.name, &m.value);
            has.push(&m.name);
        } else {
            b.del(&m.name);
        }
    }
    b.build()
}

/// A compiled, fully anchored `label_replace` regex (cached per query).
fn compile_regex(ctx: &Ctx<'_>, src: &str) -> Result<Rc<regex::Regex>, EvalError> {
    if let Some(r) = ctx.regexes.borrow().get(src) {
        return Ok(r.clone());
    }
    let re = regex::Regex::new(&format!("^(?s:{src})$"))
        .map_err(|_| EvalError::InvalidRegex(src.to_string()))?;
    let re = Rc::new(re);
    ctx.regexes.borrow_mut().insert(src.to_string(), re.clone());
    Ok(re)
}

/// Rejects label sets that collide after relabelling.
fn check_unique(v: &[Elem]) -> Result<(), EvalError> {
    let mut seen = ahash::AHashSet::with_capacity(v.len());
    for e in v {
        if !seen.insert(&*e.labels) {
            return Err(EvalError::DuplicateLabelset);
        }
    }
    Ok(())
}

fn label_replace(ctx: &Ctx<'_>, args: &[Expr], t: i64) -> Result<Val, EvalError> {
    if args.len() != 5 {
        return Err(EvalError::Type(
            "label_replace() takes 5 arguments".to_string(),
        ));
    }
    let dst = ctx.eval_string(&args[1], t)?;
    let repl = ctx.eval_string(&args[2], t)?;
    let src = ctx.eval_string(&args[3], t)?;
    let regex_src = ctx.eval_string(&args[4], t)?;
    let re = compile_regex(ctx, &regex_src)?;
    if dst.is_empty() {
        return Err(EvalError::InvalidLabelName(format!(
            "invalid destination label name in label_replace(): {dst}"
        )));
    }
    let v = ctx.eval_vector(&args[0], t)?;
    let mut out = Vec::with_capacity(v.len());
    for mut el in v {
        let src_val = el.labels.get(&src).unwrap_or("");
        if let Some(caps) = re.captures(src_val) {
            let mut res = String::new();
            caps.expand(&repl, &mut res);
            let mut b = LabelsBuilder::new(&el.labels);
            b.set(&dst, &res);
            el.labels = Arc::new(b.build());
            if dst == METRIC_NAME {
                el.drop_name = false;
            }
        }
        out.push(el);
    }
    check_unique(&out)?;
    Ok(Val::Vector(out))
}

fn label_join(ctx: &Ctx<'_>, args: &[Expr], t: i64) -> Result<Val, EvalError> {
    if args.len() < 3 {
        return Err(EvalError::Type(
            "label_join() takes at least 3 arguments".to_string(),
        ));
    }
    let dst = ctx.eval_string(&args[1], t)?;
    let sep = ctx.eval_string(&args[2], t)?;
    let mut srcs = Vec::new();
    for a in &args[3..] {
        let s = ctx.eval_string(a, t)?;
        if s.is_empty() {
            return Err(EvalError::InvalidLabelName(format!(
                "invalid source label name in label_join(): {s}"
            )));
        }
        srcs.push(s);
    }
    if dst.is_empty() {
        return Err(EvalError::InvalidLabelName(format!(
            "invalid destination label name in label_join(): {dst}"
        )));
    }
    let v = ctx.eval_vector(&args[0], t)?;
    let mut out = Vec::with_capacity(v.len());
    for mut el in v {
        let joined = srcs
            .iter()
            .map(|s| el.labels.get(s).unwrap_or(""))
            .collect::<Vec<_>>()
            .join(&sep);
        let mut b = LabelsBuilder::new(&el.labels);
        b.set(&dst, &joined);
        el.labels = Arc::new(b.build());
        if dst == METRIC_NAME {
            el.drop_name = false;
        }
        out.push(el);
    }
    check_unique(&out)?;
    Ok(Val::Vector(out))
}

/// `sort` / `sort_desc`: NaN last in both directions; strings after floats.
fn sort_by_value(mut v: Vec<Elem>, desc: bool) -> Vec<Elem> {
    use std::cmp::Ordering;
    let key = |e: &Elem| -> (u8, f64) {
        match e.v {
            SampleValue::Float(f) if f.is_nan() => (1, 0.0),
            SampleValue::Float(f) => (0, f),
            SampleValue::Str(_) => (2, 0.0),
        }
    };
    v.sort_by(|a, b| {
        let (ka, fa) = key(a);
        let (kb, fb) = key(b);
        ka.cmp(&kb).then_with(|| {
            let o = fa.partial_cmp(&fb).unwrap_or(Ordering::Equal);
            if desc { o.reverse() } else { o }
        })
    });
    v
}

/// `sort_by_label` / `sort_by_label_desc`: natural order of the named labels, then the whole label set.
fn sort_by_label(mut v: Vec<Elem>, names: &[String], desc: bool) -> Vec<Elem> {
    v.sort_by(|a, b| {
        for n in names {
            let o = natural_cmp(a.labels.get(n).unwrap_or(""), b.labels.get(n).unwrap_or(""));
            if o != std::cmp::Ordering::Equal {
                return if desc { o.reverse() } else { o };
            }
        }
        let o = a.labels.cmp(&b.labels);
        if desc { o.reverse() } else { o }
    });
    v
}

/// Natural ordering: digit runs compare numerically.
fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let (ab, bb) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < ab.len() && j < bb.len() {
        if ab[i].is_ascii_digit() && bb[j].is_ascii_digit() {
            let si = i;
            while i < ab.len() && ab[i].is_ascii_digit() {
                i += 1;
            }
            let sj = j;
            while j < bb.len() && bb[j].is_ascii_digit() {
                j += 1;
            }
            let na = a[si..i].trim_start_matches('0');
            let nb = b[sj..j].trim_start_matches('0');
            let o = na.len().cmp(&nb.len()).then_with(|| na.cmp(nb));
            if o != Ordering::Equal {
                return o;
            }
        } else {
            let o = ab[i].cmp(&bb[j]);
            if o != Ordering::Equal {
                return o;
            }
            i += 1;
            j += 1;
        }
    }
    (ab.len() - i).cmp(&(bb.len() - j))
}

/// Classic histogram buckets of one output series.
struct BucketSet {
    labels: Arc<Labels>,
    metric: String,
    buckets: Vec<(f64, f64)>,
}

/// Groups `le`-labelled float samples into bucket sets (series identity without `le`).
fn bucket_sets(ctx: &Ctx<'_>, v: Vec<Elem>, span: Span) -> Vec<BucketSet> {
    let mut index: ahash::AHashMap<u64, usize> = ahash::AHashMap::new();
    let mut sets: Vec<BucketSet> = Vec::new();
    let le = ["le".to_string()];
    for el in v {
        let Some(f) = el.f() else { continue };
        let le_val = el.labels.get("le").unwrap_or("");
        let Some(upper) = parse_go_float(le_val) else {
            ctx.annotate(
                Level::Warn,
                bad_bucket_label(el.labels.metric_name().unwrap_or(""), le_val),
                span,
            );
            continue;
        };
        let key = hash_without(&el.labels, &le, false, false);
        let i = match index.get(&key) {
            Some(&i) => i,
            None => {
                let mut b = LabelsBuilder::new(&el.labels);
                b.del("le");
                sets.push(BucketSet {
                    labels: Arc::new(b.build()),
                    metric: el.labels.metric_name().unwrap_or("").to_string(),
                    buckets: Vec::new(),
                });
                index.insert(key, sets.len() - 1);
                sets.len() - 1
            }
        };
        sets[i].buckets.push((upper, f));
    }
    sets
}

/// Sorts buckets by upper bound and merges equal bounds.
fn prepare_buckets(buckets: &mut Vec<(f64, f64)>) {
    buckets.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
    let mut merged: Vec<(f64, f64)> = Vec::with_capacity(buckets.len());
    for &(u, c) in buckets.iter() {
        match merged.last_mut() {
            Some(last) if last.0 == u => last.1 += c,
            _ => merged.push((u, c)),
        }
    }
    *buckets = merged;
}

/// Prometheus' `almost.Equal`.
fn almost_equal(a: f64, b: f64, epsilon: f64) -> bool {
    const MIN_NORMAL: f64 = f64::MIN_POSITIVE;
    if a.is_nan() && b.is_nan() {
        return true;
    }
    if a == b {
        return true;
    }
    let abs_sum = a.abs() + b.abs();
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || abs_sum < MIN_NORMAL {
        return diff < epsilon * MIN_NORMAL;
    }
    diff / abs_sum.min(f64::MAX) < epsilon
}

/// Forces counts to be monotonic; returns whether a real (not rounding) decrease was fixed.
fn ensure_monotonic(buckets: &mut [(f64, f64)]) -> bool {
    let mut forced = false;
    let Some(first) = buckets.first() else {
        return false;
    };
    let mut prev = first.1;
    for b in buckets.iter_mut().skip(1) {
        let curr = b.1;
        if curr == prev {
            continue;
        }
        if almost_equal(prev, curr, 1e-12) {
            b.1 = prev;
            continue;
        }
        if curr < prev {
            b.1 = prev;
            forced = true;
            continue;
        }
        prev = curr;
    }
    forced
}

/// Prometheus' `BucketQuantile`; returns the quantile and whether monotonicity had to be forced.
pub(crate) fn bucket_quantile(q: f64, buckets: &mut Vec<(f64, f64)>) -> (f64, bool) {
    if q.is_nan() {
        return (f64::NAN, false);
    }
    if q < 0.0 {
        return (f64::NEG_INFINITY, false);
    }
    if q > 1.0 {
        return (f64::INFINITY, false);
    }
    buckets.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
    match buckets.last() {
        Some(b) if b.0 == f64::INFINITY => {}
        _ => return (f64::NAN, false),
    }
    prepare_buckets(buckets);
    let forced = ensure_monotonic(buckets);
    if buckets.len() < 2 {
        return (f64::NAN, false);
    }
    let observations = buckets[buckets.len() - 1].1;
    if observations == 0.0 {
        return (f64::NAN, false);
    }
    let mut rank = q * observations;
    let n = buckets.len() - 1;
    let b = buckets[..n].partition_point(|bk| bk.1 < rank);
    if b == n {
        return (buckets[n - 1].0, forced);
    }
    if b == 0 && buckets[0].0 <= 0.0 {
        return (buckets[0].0, forced);
    }
    let (mut start, end, mut count) = (0.0, buckets[b].0, buckets[b].1);
    if b > 0 {
        start = buckets[b - 1].0;
        count -= buckets[b - 1].1;
        rank -= buckets[b - 1].1;
    }
    (start + (end - start) * (rank / count), forced)
}

/// The fraction of observations in `[lower, upper]` of a classic histogram.
pub(crate) fn bucket_fraction(lower: f64, upper: f64, buckets: &mut Vec<(f64, f64)>) -> f64 {
    buckets.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
    match buckets.last() {
        Some(b) if b.0 == f64::INFINITY => {}
        _ => return f64::NAN,
    }
    prepare_buckets(buckets);
    ensure_monotonic(buckets);
    let total = buckets[buckets.len() - 1].1;
    if total == 0.0 || lower.is_nan() || upper.is_nan() {
        return f64::NAN;
    }
    if lower >= upper {
        return 0.0;
    }
    let rank = |v: f64| -> f64 {
        let mut prev_count = 0.0;
        for (i, &(hi, count)) in buckets.iter().enumerate() {
            let lo = if i == 0 {
                if hi > 0.0 { 0.0 } else { f64::NEG_INFINITY }
            } else {
                buckets[i - 1].0
            };
            if v <= lo {
                return prev_count;
            }
            if v < hi {
                // Inside this bucket: interpolate linearly, but never into an infinitely wide bucket.
                if lo == f64::NEG_INFINITY {
                    return count;
                }
                if hi == f64::INFINITY {
                    return prev_count;
                }
                return prev_count + (count - prev_count) * (v - lo) / (hi - lo);
            }
            prev_count = count;
        }
        total
    };
    (rank(upper) - rank(lower)) / total
}

fn histogram_quantile(ctx: &Ctx<'_>, q: f64, v: Vec<Elem>, span: Span) -> Result<Val, EvalError> {
    let mut out = Vec::new();
    for mut set in bucket_sets(ctx, v, span) {
        let (res, forced) = bucket_quantile(q, &mut set.buckets);
        if forced {
            ctx.annotate(Level::Info, forced_monotonicity(&set.metric), span);
        }
        let mut el = Elem::float(set.labels, res, false);
        ctx.mark_drop(&mut el);
        out.push(el);
    }
    Ok(Val::Vector(out))
}

fn histogram_fraction(
    ctx: &Ctx<'_>,
    lower: f64,
    upper: f64,
    v: Vec<Elem>,
    span: Span,
) -> Result<Val, EvalError> {
    let mut out = Vec::new();
    for mut set in bucket_sets(ctx, v, span) {
        let res = bucket_fraction(lower, upper, &mut set.buckets);
        let mut el = Elem::float(set.labels, res, false);
        ctx.mark_drop(&mut el);
        out.push(el);
    }
    Ok(Val::Vector(out))
}

/// The range-vector functions, resolved once per call rather than per series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RangeFn {
    Rate,
    Increase,
    Delta,
    Irate,
    Idelta,
    Deriv,
    PredictLinear,
    Resets,
    Changes,
    Avg,
    Min,
    Max,
    Sum,
    Count,
    Quantile,
    Stddev,
    Stdvar,
    Last,
    First,
    Present,
    Absent,
    Mad,
    TsOfMax,
    TsOfMin,
    TsOfLast,
    TsOfFirst,
    Smoothing,
}

impl RangeFn {
    fn from_name(name: &str) -> Option<RangeFn> {
        use RangeFn::*;
        Some(match name {
            "rate" => Rate,
            "increase" => Increase,
            "delta" => Delta,
            "irate" => Irate,
            "idelta" => Idelta,
            "deriv" => Deriv,
            "predict_linear" => PredictLinear,
            "resets" => Resets,
            "changes" => Changes,
            "avg_over_time" => Avg,
            "min_over_time" => Min,
            "max_over_time" => Max,
            "sum_over_time" => Sum,
            "count_over_time" => Count,
            "quantile_over_time" => Quantile,
            "stddev_over_time" => Stddev,
            "stdvar_over_time" => Stdvar,
            "last_over_time" => Last,
            "first_over_time" => First,
            "present_over_time" => Present,
            "absent_over_time" => Absent,
            "mad_over_time" => Mad,
            "ts_of_max_over_time" => TsOfMax,
            "ts_of_min_over_time" => TsOfMin,
            "ts_of_last_over_time" => TsOfLast,
            "ts_of_first_over_time" => TsOfFirst,
            "double_exponential_smoothing" | "holt_winters" => Smoothing,
            _ => return None,
        })
    }
}

/// The latest (or earliest) sample of a window, float or string, with its time.
fn edge_sample(w: &Window<'_>, last: bool) -> Option<(i64, SampleValue)> {
    let (f, s) = if last {
        (w.floats.last(), w.strings.last())
    } else {
        (w.floats.first(), w.strings.first())
    };
    match (f, s) {
        (Some(f), Some(s)) if (s.0 > f.0) == last => Some((s.0, SampleValue::Str(s.1.clone()))),
        (Some(f), _) => Some((f.0, SampleValue::Float(f.1))),
        (None, Some(s)) => Some((s.0, SampleValue::Str(s.1.clone()))),
        (None, None) => None,
    }
}

/// Evaluates a range-vector function at `t`, series by series over their windows.
fn eval_range_call(ctx: &Ctx<'_>, func: RangeFn, args: &[Expr], t: i64) -> Result<Val, EvalError> {
    use RangeFn::*;
    let mi = usize::from(func == Quantile);
    let marg = args
        .get(mi)
        .ok_or_else(|| EvalError::Type("missing range vector argument".to_string()))?;
    // Scalar parameters.
    let mut params = Vec::new();
    for (i, a) in args.iter().enumerate() {
        if i != mi {
            params.push(ctx.eval_scalar(a, t)?);
        }
    }
    let p = |i: usize| params.get(i).copied().unwrap_or(f64::NAN);
    if func == Smoothing {
        let (sf, tf) = (p(0), p(1));
        if sf <= 0.0 || sf >= 1.0 || sf.is_nan() {
            return Err(EvalError::InvalidArgument(format!(
                "invalid smoothing factor. Expected: 0 < sf < 1, got: {sf:.6}"
            )));
        }
        if tf <= 0.0 || tf >= 1.0 || tf.is_nan() {
            return Err(EvalError::InvalidArgument(format!(
                "invalid trend factor. Expected: 0 < tf < 1, got: {tf:.6}"
            )));
        }
    }
    let src = ctx.range_source(marg, t)?;
    // `last_over_time` / `first_over_time` keep the metric name; every other function drops it.
    let keep_name = matches!(func, Last | First);
    let non_counter_check = matches!(func, Rate | Increase);
    let mut checked_name: Option<Arc<str>> = None;
    let mut out: Vec<Elem> = Vec::new();
    let mut any = false;
    src.for_each_window(ctx, |d, w| {
        any = true;
        ctx.add_samples(w.floats.len() + w.strings.len())?;
        let fl = w.floats;
        let secs = |ts: i64| ts as f64 / 1000.0;
        let f = |v: f64| Some(SampleValue::Float(v));
        let value: Option<SampleValue> = match func {
            Rate | Increase | Delta => {
                let counter = func != Delta;
                let r = range::extrapolated_rate(
                    fl,
                    src.mint,
                    src.maxt,
                    src.range,
                    counter,
                    func == Rate,
                );
                if r.is_some() && non_counter_check {
                    check_counter_name(ctx, d, marg.span(), &mut checked_name);
                }
                r.map(SampleValue::Float)
            }
            Irate | Idelta => range::instant_value(fl, func == Irate).map(SampleValue::Float),
            Deriv if fl.len() >= 2 => f(range::linear_regression(fl, fl[0].0).0),
            PredictLinear if fl.len() >= 2 => {
                let (slope, intercept) = range::linear_regression(fl, t);
                f(slope * p(0) + intercept)
            }
            Smoothing => {
                range::double_exponential_smoothing(fl, p(0), p(1)).map(SampleValue::Float)
            }
            Count => f((fl.len() + w.strings.len()) as f64),
            Present => f(1.0),
            Absent => None,
            Last => edge_sample(&w, true).map(|(_, v)| v),
            First => edge_sample(&w, false).map(|(_, v)| v),
            TsOfLast => edge_sample(&w, true).and_then(|(ts, _)| f(secs(ts))),
            TsOfFirst => edge_sample(&w, false).and_then(|(ts, _)| f(secs(ts))),
            _ if fl.is_empty() => None,
            Resets => f(range::resets(fl)),
            Changes => f(range::changes(fl)),
            Avg => f(range::avg_over_time(fl)),
            Sum => f(range::sum_over_time(fl)),
            Min => f(range::compare_over_time(fl, |c, b| c < b).0),
            Max => f(range::compare_over_time(fl, |c, b| c > b).0),
            TsOfMin => f(secs(range::compare_over_time(fl, |c, b| c <= b).1)),
            TsOfMax => f(secs(range::compare_over_time(fl, |c, b| c >= b).1)),
            Stddev => f(range::stdvar_over_time(fl).sqrt()),
            Stdvar => f(range::stdvar_over_time(fl)),
            Mad => f(range::mad_over_time(fl)),
            Quantile => {
                let q = p(0);
                if q.is_nan() || !(0.0..=1.0).contains(&q) {
                    ctx.annotate(Level::Warn, invalid_quantile(q), args[0].span());
                }
                f(range::quantile_over_time(q, fl))
            }
            Deriv | PredictLinear => None,
        };
        if let Some(v) = value {
            let mut el = Elem {
                labels: d.labels.clone(),
                v,
                drop_name: d.drop_name,
            };
            if !keep_name {
                ctx.mark_drop(&mut el);
            }
            out.push(el);
        }
        Ok(())
    })?;
    if func == Absent {
        if any {
            return Ok(Val::Vector(Vec::new()));
        }
        return Ok(Val::Vector(vec![Elem::float(
            Arc::new(absent_labels(marg)),
            1.0,
            false,
        )]));
    }
    Ok(Val::Vector(out))
}

/// `rate`/`increase` on a metric whose name does not look like a counter: an info annotation
/// (checked once per distinct name).
fn check_counter_name(ctx: &Ctx<'_>, d: &SeriesData, span: Span, checked: &mut Option<Arc<str>>) {
    let Some(label) = d.labels.iter().find(|l| &*l.name == METRIC_NAME) else {
        return;
    };
    if checked
        .as_ref()
        .is_some_and(|c| Arc::ptr_eq(c, &label.value) || **c == *label.value)
    {
        return;
    }
    *checked = Some(label.value.clone());
    let name = &*label.value;
    if !["_total", "_sum", "_count", "_bucket"]
        .iter()
        .any(|s| name.ends_with(s))
    {
        ctx.annotate(Level::Info, possible_non_counter(name), span);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::quote as go_quote;

    #[test]
    fn dates() {
        // 2006-01-02 22:04:05 UTC, a Monday.
        let s = 1_136_239_445;
        assert_eq!(date_fn("year")(s), 2006.0);
        assert_eq!(date_fn("month")(s), 1.0);
        assert_eq!(date_fn("day_of_month")(s), 2.0);
        assert_eq!(date_fn("day_of_week")(s), 1.0);
        assert_eq!(date_fn("hour")(s), 22.0);
        assert_eq!(date_fn("minute")(s), 4.0);
        assert_eq!(date_fn("day_of_week")(0), 4.0);
        assert_eq!(date_fn("day_of_year")(1_483_191_420), 366.0);
        assert_eq!(date_fn("day_of_year")(1_672_493_820), 365.0);
        assert_eq!(date_fn("days_in_month")(1_454_284_800), 29.0);
        assert_eq!(date_fn("days_in_month")(1_485_907_200), 28.0);
        assert_eq!(date_fn("year")(1_230_767_999), 2008.0);
        assert_eq!(date_fn("year")(1_230_768_000), 2009.0);
        // Extreme inputs must not panic.
        let _ = date_fn("year")(i64::MAX);
        let _ = date_fn("day_of_year")(i64::MIN);
    }

    #[test]
    fn quantile_with_nonmonotonic_buckets() {
        let mut b = vec![
            (0.1, 20.0),
            (1.0, 10.0),
            (10.0, 50.0),
            (100.0, 40.0),
            (1000.0, 90.0),
            (f64::INFINITY, 80.0),
        ];
        let (v, forced) = bucket_quantile(0.5, &mut b.clone());
        assert!((v - 8.5).abs() < 1e-12);
        assert!(forced);
        let (v, _) = bucket_quantile(0.01, &mut b);
        assert!((v - 0.0045).abs() < 1e-12);
    }

    #[test]
    fn quantile_edges() {
        assert!(bucket_quantile(0.5, &mut vec![(1.0, 1.0)]).0.is_nan());
        assert!(
            bucket_quantile(0.5, &mut vec![(1.0, 1.0), (2.0, 2.0)])
                .0
                .is_nan()
        );
        assert!(
            bucket_quantile(0.5, &mut vec![(1.0, 0.0), (f64::INFINITY, 0.0)])
                .0
                .is_nan()
        );
        assert_eq!(bucket_quantile(2.0, &mut vec![]).0, f64::INFINITY);
        // The highest bucket returns the second highest bound.
        assert_eq!(
            bucket_quantile(1.0, &mut vec![(1.0, 1.0), (f64::INFINITY, 2.0)]).0,
            1.0
        );
        // Negative lowest bucket returns its bound.
        assert_eq!(
            bucket_quantile(
                0.0,
                &mut vec![(-0.25, 0.0), (-0.2, 1.0), (f64::INFINITY, 2.0)]
            )
            .0,
            -0.25
        );
    }

    #[test]
    fn fractions() {
        let b = vec![(1.0, 1.0), (2.0, 3.0), (3.0, 6.0), (f64::INFINITY, 100.0)];
        let f = |lo, hi| bucket_fraction(lo, hi, &mut b.clone());
        assert!((f(0.0, 1.5) - 0.02).abs() < 1e-12);
        assert!((f(2.0, 5.0) - 0.03).abs() < 1e-12);
        assert!((f(400.0, f64::INFINITY) - 0.94).abs() < 1e-12);
        assert_eq!(f(2.0, 2.0), 0.0);
        assert!((f(0.5, 2.0) - 0.025).abs() < 1e-12);
        assert!((f(f64::NEG_INFINITY, f64::INFINITY) - 1.0).abs() < 1e-12);
        let n = vec![
            (-3.0, 10.0),
            (-2.0, 12.0),
            (-1.0, 15.0),
            (f64::INFINITY, 100.0),
        ];
        assert!((bucket_fraction(-4.0, -2.0, &mut n.clone()) - 0.02).abs() < 1e-12);
        assert!((bucket_fraction(f64::NEG_INFINITY, -1.5, &mut n.clone()) - 0.135).abs() < 1e-12);
        assert!(bucket_fraction(0.0, 5.0, &mut vec![(1.0, 0.0), (f64::INFINITY, 0.0)]).is_nan());
        assert_eq!(
            bucket_fraction(0.0, 1.0, &mut vec![(f64::INFINITY, 100.0)]),
            0.0
        );
    }

    #[test]
    fn natural_order() {
        assert_eq!(natural_cmp("4m5", "4m600"), std::cmp::Ordering::Less);
        assert_eq!(natural_cmp("10", "9"), std::cmp::Ordering::Greater);
        assert_eq!(natural_cmp("a", "a"), std::cmp::Ordering::Equal);
    }

    #[test]
    fn quote_metric_names() {
        assert_eq!(go_quote("a\"b"), "\"a\\\"b\"");
    }
}
