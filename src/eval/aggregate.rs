//! Aggregation operators (`sum`, `avg`, `topk`, `quantile`, `count_values`, ...) with `by` /
//! `without`, reproducing Prometheus' numerics (Kahan sums, overflow-safe averages, Welford
//! variance) and its heap-based `topk`/`bottomk` ordering.

use ahash::AHashMap as HashMap;
use std::sync::Arc;

use crate::expr::{AggOp, Expr, Grouping};
use crate::model::{Labels, SampleValue};

use super::EvalError;
use super::annotations::{Level, invalid_quantile};
use super::engine::{Ctx, Val};
use super::value::{
    Elem, drop_names, format_f, format_v, hash_on, hash_without, kahan_inc, keep_only, with_label,
};

/// Running state of one group.
struct Group {
    labels: Arc<Labels>,
    value: f64,
    mean: f64,
    kahan_c: f64,
    count: f64,
    incremental_mean: bool,
    values: Vec<Elem>,
    drop_name: bool,
}

impl Group {
    fn new(labels: Arc<Labels>) -> Self {
        Group {
            labels,
            value: 0.0,
            mean: 0.0,
            kahan_c: 0.0,
            count: 0.0,
            incremental_mean: false,
            values: Vec::new(),
            drop_name: false,
        }
    }
}

/// Grouping key of a label set.
fn group_key(labels: &Labels, grouping: Option<&Grouping>) -> u64 {
    match grouping {
        None => 0,
        Some(Grouping::By(names)) => hash_on(labels, names),
        Some(Grouping::Without(names)) => hash_without(labels, names, true, true),
    }
}

/// Output labels of a group.
fn group_labels(labels: &Labels, grouping: Option<&Grouping>) -> Labels {
    match grouping {
        None => Labels::empty(),
        Some(Grouping::By(names)) => keep_only(labels, names),
        Some(Grouping::Without(names)) => drop_names(labels, names, true),
    }
}

/// Evaluates an aggregation at `t`.
pub(crate) fn eval_aggregate(
    ctx: &Ctx<'_>,
    op: AggOp,
    expr: &Expr,
    param: Option<&Expr>,
    grouping: Option<&Grouping>,
    t: i64,
) -> Result<Val, EvalError> {
    match op {
        AggOp::Topk | AggOp::Bottomk | AggOp::Limitk => {
            let p = param
                .ok_or_else(|| EvalError::Type(format!("{} requires a parameter", op.as_str())))?;
            let k = ctx.eval_scalar(p, t)?;
            let input = ctx.eval_vector(expr, t)?;
            let k = k_param(k)?;
            if k < 1 {
                return Ok(Val::Vector(Vec::new()));
            }
            Ok(Val::Vector(aggregate_k(op, k, input, grouping)))
        }
        AggOp::Quantile => {
            let p = param
                .ok_or_else(|| EvalError::Type("quantile requires a parameter".to_string()))?;
            let q = ctx.eval_scalar(p, t)?;
            if q.is_nan() || !(0.0..=1.0).contains(&q) {
                ctx.annotate(Level::Warn, invalid_quantile(q), p.span());
            }
            let input = ctx.eval_vector(expr, t)?;
            Ok(Val::Vector(aggregate_simple(op, q, input, grouping)))
        }
        AggOp::CountValues => {
            let p = param
                .ok_or_else(|| EvalError::Type("count_values requires a parameter".to_string()))?;
            let label = ctx.eval_string(p, t)?;
            if label.is_empty() {
                return Err(EvalError::InvalidLabelName(format!(
                    "invalid label name {}",
                    crate::model::quote(&label)
                )));
            }
            let input = ctx.eval_vector(expr, t)?;
            Ok(Val::Vector(count_values(&label, input, grouping)))
        }
        AggOp::LimitRatio => {
            let p = param
                .ok_or_else(|| EvalError::Type("limit_ratio requires a parameter".to_string()))?;
            let r = ctx.eval_scalar(p, t)?;
            if r.is_nan() {
                return Err(EvalError::NanParameter);
            }
            let input = ctx.eval_vector(expr, t)?;
            Ok(Val::Vector(limit_ratio(r, input)))
        }
        _ => {
            let input = ctx.eval_vector(expr, t)?;
            Ok(Val::Vector(aggregate_simple(op, 0.0, input, grouping)))
        }
    }
}

/// Validates `k` of `topk`/`bottomk`/`limitk` and converts it like Go's `int64(f)`.
fn k_param(k: f64) -> Result<i64, EvalError> {
    if k.is_nan() {
        return Err(EvalError::NanParameter);
    }
    if k > i64::MAX as f64 {
        return Err(EvalError::ParameterOverflow(format!(
            "Scalar value {} overflows int64",
            format_v(k)
        )));
    }
    if k < i64::MIN as f64 {
        return Err(EvalError::ParameterOverflow(format!(
            "Scalar value {} underflows int64",
            format_v(k)
        )));
    }
    Ok(k as i64)
}

/// Sum, avg, min, max, count, group, stddev, stdvar, quantile.
fn aggregate_simple(op: AggOp, q: f64, input: Vec<Elem>, grouping: Option<&Grouping>) -> Vec<Elem> {
    let mut index: HashMap<u64, usize> = HashMap::new();
    let mut groups: Vec<Group> = Vec::new();
    let strings_count = matches!(op, AggOp::Count | AggOp::Group);
    for el in input {
        let f = match el.v {
            SampleValue::Float(f) => f,
            SampleValue::Str(_) if strings_count => f64::NAN,
            SampleValue::Str(_) => continue,
        };
        let key = group_key(&el.labels, grouping);
        let gi = match index.get(&key) {
            Some(&gi) => gi,
            None => {
                let labels = match grouping {
                    None => Arc::new(Labels::empty()),
                    Some(g) => Arc::new(group_labels(&el.labels, Some(g))),
                };
                let mut g = Group::new(labels);
                g.count = 1.0;
                g.value = f;
                g.mean = f;
                g.drop_name = el.drop_name;
                match op {
                    AggOp::Stddev | AggOp::Stdvar => {
                        g.value = if f.is_nan() || f.is_infinite() {
                            f64::NAN
                        } else {
                            0.0
                        }
                    }
                    AggOp::Group => g.value = 1.0,
                    AggOp::Quantile => g.values.push(el),
                    _ => {}
                }
                groups.push(g);
                index.insert(key, groups.len() - 1);
                continue;
            }
        };
        let g = &mut groups[gi];
        g.drop_name |= el.drop_name;
        match op {
            AggOp::Sum => (g.value, g.kahan_c) = kahan_inc(f, g.value, g.kahan_c),
            AggOp::Avg => {
                g.count += 1.0;
                if !g.incremental_mean {
                    let (s, c) = kahan_inc(f, g.value, g.kahan_c);
                    if !s.is_infinite() {
                        (g.value, g.kahan_c) = (s, c);
                        continue;
                    }
                    // The sum would overflow: continue with an incremental mean.
                    g.incremental_mean = true;
                    g.mean = g.value / (g.count - 1.0);
                    g.kahan_c /= g.count - 1.0;
                }
                let q = (g.count - 1.0) / g.count;
                (g.mean, g.kahan_c) = kahan_inc(f / g.count, q * g.mean, q * g.kahan_c);
            }
            AggOp::Count => g.count += 1.0,
            AggOp::Group => {}
            AggOp::Max if g.value < f || g.value.is_nan() => g.value = f,
            AggOp::Min if g.value > f || g.value.is_nan() => g.value = f,
            AggOp::Stddev | AggOp::Stdvar => {
                g.count += 1.0;
                let delta = f - g.mean;
                g.mean += delta / g.count;
                g.value += delta * (f - g.mean);
            }
            AggOp::Quantile => g.values.push(el),
            _ => {}
        }
    }
    groups
        .into_iter()
        .map(|g| {
            let v = match op {
                AggOp::Sum => g.value + g.kahan_c,
                AggOp::Avg => {
                    if g.incremental_mean {
                        g.mean + g.kahan_c
                    } else {
                        (g.value + g.kahan_c) / g.count
                    }
                }
                AggOp::Count => g.count,
                AggOp::Stdvar => g.value / g.count,
                AggOp::Stddev => (g.value / g.count).sqrt(),
                AggOp::Quantile => {
                    let mut vals: Vec<f64> = g.values.iter().filter_map(Elem::f).collect();
                    quantile(q, &mut vals)
                }
                _ => g.value,
            };
            Elem::float(g.labels, v, g.drop_name)
        })
        .collect()
}

/// Prometheus' `quantile`: NaN sorts first; linear interpolation between the closest ranks.
pub(crate) fn quantile(q: f64, values: &mut [f64]) -> f64 {
    if values.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    values.sort_by(|a, b| match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Less,
        (false, true) => std::cmp::Ordering::Greater,
        _ => a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal),
    });
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let weight = rank - rank.floor();
    values[lower as usize] * (1.0 - weight) + values[upper as usize] * weight
}

/// `topk`/`bottomk` heap order: NaN is always "less" (evicted first, printed last).
fn heap_less(op: AggOp, a: f64, b: f64) -> bool {
    if a.is_nan() {
        return true;
    }
    if op == AggOp::Topk { a < b } else { a > b }
}

/// Go's `container/heap` sift-up.
fn heap_up(op: AggOp, h: &mut [Elem], mut j: usize) {
    while j > 0 {
        let i = (j - 1) / 2;
        if !heap_less(op, val(&h[j]), val(&h[i])) {
            break;
        }
        h.swap(i, j);
        j = i;
    }
}

/// Go's `container/heap` sift-down; returns whether the element moved.
fn heap_down(op: AggOp, h: &mut [Elem], i0: usize) -> bool {
    let n = h.len();
    let mut i = i0;
    loop {
        let j1 = 2 * i + 1;
        if j1 >= n {
            break;
        }
        let mut j = j1;
        let j2 = j1 + 1;
        if j2 < n && heap_less(op, val(&h[j2]), val(&h[j1])) {
            j = j2;
        }
        if !heap_less(op, val(&h[j]), val(&h[i])) {
            break;
        }
        h.swap(i, j);
        i = j;
    }
    i > i0
}

fn val(e: &Elem) -> f64 {
    e.f().unwrap_or(f64::NAN)
}

/// `topk`, `bottomk`, `limitk`: the selected input samples, labels untouched.
fn aggregate_k(op: AggOp, k: i64, input: Vec<Elem>, grouping: Option<&Grouping>) -> Vec<Elem> {
    let k = usize::try_from(k).unwrap_or(usize::MAX);
    let mut index: HashMap<u64, usize> = HashMap::new();
    let mut groups: Vec<Vec<Elem>> = Vec::new();
    for el in input {
        if el.f().is_none() {
            continue;
        }
        let key = group_key(&el.labels, grouping);
        let gi = match index.get(&key) {
            Some(&gi) => gi,
            None => {
                groups.push(vec![el]);
                index.insert(key, groups.len() - 1);
                continue;
            }
        };
        let h = &mut groups[gi];
        if op == AggOp::Limitk {
            if h.len() < k {
                h.push(el);
            }
            continue;
        }
        let f = val(&el);
        if h.len() < k {
            h.push(el);
            let last = h.len() - 1;
            heap_up(op, h, last);
        } else {
            let top = val(&h[0]);
            let replace =
                if op == AggOp::Topk { top < f } else { top > f } || (top.is_nan() && !f.is_nan());
            if replace {
                h[0] = el;
                if k > 1 && !heap_down(op, h, 0) {
                    heap_up(op, h, 0);
                }
            }
        }
    }
    let mut out = Vec::new();
    for mut h in groups {
        if op != AggOp::Limitk && h.len() > 1 {
            // Go's sort.Sort(sort.Reverse(heap)); insertion sort for small inputs, as Go does.
            if h.len() <= 12 {
                for i in 1..h.len() {
                    let mut j = i;
                    while j > 0 && heap_less(op, val(&h[j - 1]), val(&h[j])) {
                        h.swap(j, j - 1);
                        j -= 1;
                    }
                }
            } else {
                h.sort_by(|a, b| {
                    if heap_less(op, val(b), val(a)) {
                        std::cmp::Ordering::Less
                    } else if heap_less(op, val(a), val(b)) {
                        std::cmp::Ordering::Greater
                    } else {
                        std::cmp::Ordering::Equal
                    }
                });
            }
        }
        out.extend(h);
    }
    out
}

/// `count_values`: one output series per distinct value per group.
fn count_values(label: &str, input: Vec<Elem>, grouping: Option<&Grouping>) -> Vec<Elem> {
    let grouping: Option<Grouping> = match grouping {
        Some(Grouping::By(names)) => {
            let mut names = names.clone();
            names.push(label.to_string());
            Some(Grouping::By(names))
        }
        None => Some(Grouping::By(vec![label.to_string()])),
        Some(g) => Some(g.clone()),
    };
    let mut index: HashMap<u64, usize> = HashMap::new();
    let mut groups: Vec<(Arc<Labels>, f64)> = Vec::new();
    for el in input {
        let value = match &el.v {
            SampleValue::Float(f) => format_f(*f),
            SampleValue::Str(s) => s.to_string(),
        };
        let metric = with_label(&el.labels, label, &value);
        let key = group_key(&metric, grouping.as_ref());
        match index.get(&key) {
            Some(&i) => groups[i].1 += 1.0,
            None => {
                groups.push((Arc::new(group_labels(&metric, grouping.as_ref())), 1.0));
                index.insert(key, groups.len() - 1);
            }
        }
    }
    groups
        .into_iter()
        .map(|(l, c)| Elem::float(l, c, false))
        .collect()
}

/// `limit_ratio` (experimental upstream): a deterministic, label-hash based sample of the input.
fn limit_ratio(r: f64, input: Vec<Elem>) -> Vec<Elem> {
    let r = r.clamp(-1.0, 1.0);
    input
        .into_iter()
        .filter(|e| {
            let frac = super::value::hash_all(&e.labels) as f64 / u64::MAX as f64;
            if r >= 0.0 { frac < r } else { frac >= 1.0 + r }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_interpolates_with_nan_first() {
        assert_eq!(quantile(0.8, &mut [0.0, 1.0]), 0.8);
        assert!((quantile(0.8, &mut [0.0, 1.0, f64::NAN]) - 0.6).abs() < 1e-12);
        assert!(quantile(0.2, &mut [0.0, 1.0, f64::NAN]).is_nan());
        assert_eq!(quantile(2.0, &mut [1.0]), f64::INFINITY);
        assert_eq!(quantile(-1.0, &mut [1.0]), f64::NEG_INFINITY);
        assert!(quantile(0.5, &mut []).is_nan());
    }

    #[test]
    fn k_param_edges() {
        assert!(matches!(k_param(f64::NAN), Err(EvalError::NanParameter)));
        assert_eq!(k_param(2.9).unwrap(), 2);
        assert!(k_param(1e300).is_err());
    }
}
