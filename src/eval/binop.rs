//! Binary operators: scalar/scalar, vector/scalar, vector/vector with one-to-one, many-to-one and
//! one-to-many matching, set operators, and klaxon's string comparisons.

use ahash::{AHashMap as HashMap, AHashSet as HashSet};
use std::sync::Arc;

use crate::expr::{BinModifier, BinOp, Cardinality, Expr};
use crate::model::{Labels, LabelsBuilder, SampleValue};

use super::EvalError;
use super::engine::{Ctx, Val};
use super::value::{
    Elem, drop_metadata, drop_names, hash_all, hash_on, hash_without, is_metadata_label, keep_only,
    labels_string,
};

/// Evaluates `lhs op rhs` at `t`.
pub(crate) fn eval_binary(
    ctx: &Ctx<'_>,
    op: BinOp,
    lhs: &Expr,
    rhs: &Expr,
    modifier: &BinModifier,
    t: i64,
) -> Result<Val, EvalError> {
    let l = ctx.eval(lhs, t)?;
    let r = ctx.eval(rhs, t)?;
    let rb = modifier.return_bool;
    match (l, r) {
        (Val::Scalar(a), Val::Scalar(b)) => Ok(Val::Scalar(scalar_binop(op, a, b))),
        (Val::Vector(v), Val::Scalar(s)) => {
            Ok(Val::Vector(vector_scalar(ctx, op, v, s, false, rb)?))
        }
        (Val::Scalar(s), Val::Vector(v)) => {
            Ok(Val::Vector(vector_scalar(ctx, op, v, s, true, rb)?))
        }
        (Val::Vector(a), Val::Vector(b)) => {
            if op.is_set() {
                Ok(Val::Vector(set_op(op, a, b, modifier)))
            } else {
                Ok(Val::Vector(vector_vector(ctx, op, a, b, modifier)?))
            }
        }
        (Val::Vector(v), Val::Str(s)) | (Val::Str(s), Val::Vector(v)) => {
            Ok(Val::Vector(vector_string(ctx, op, v, &s, rb)?))
        }
        (Val::Str(a), Val::Str(b)) if matches!(op, BinOp::Eq | BinOp::Ne) => {
            let keep = (a == b) == (op == BinOp::Eq);
            Ok(Val::Scalar(if keep { 1.0 } else { 0.0 }))
        }
        (l, r) => Err(EvalError::Type(format!(
            "binary operator {:?} not defined between {} and {}",
            op.as_str(),
            type_name(&l),
            type_name(&r)
        ))),
    }
}

fn type_name(v: &Val) -> &'static str {
    match v {
        Val::Scalar(_) => "scalar",
        Val::Str(_) => "string",
        Val::Vector(_) => "instant vector",
        Val::Matrix(_) => "range vector",
    }
}

/// The float result of `l op r` and whether a comparison keeps the sample (Prometheus' `vectorElemBinop`).
pub(crate) fn float_binop(op: BinOp, l: f64, r: f64) -> (f64, bool) {
    match op {
        BinOp::Add => (l + r, true),
        BinOp::Sub => (l - r, true),
        BinOp::Mul => (l * r, true),
        BinOp::Div => (l / r, true),
        BinOp::Pow => (l.powf(r), true),
        BinOp::Mod => (l % r, true),
        BinOp::Atan2 => (l.atan2(r), true),
        BinOp::Eq => (l, l == r),
        BinOp::Ne => (l, l != r),
        BinOp::Gt => (l, l > r),
        BinOp::Lt => (l, l < r),
        BinOp::Ge => (l, l >= r),
        BinOp::Le => (l, l <= r),
        BinOp::And | BinOp::Or | BinOp::Unless => (l, false),
    }
}

/// Scalar op scalar; comparisons yield 1 or 0.
fn scalar_binop(op: BinOp, a: f64, b: f64) -> f64 {
    let (v, keep) = float_binop(op, a, b);
    if op.is_comparison() {
        if keep { 1.0 } else { 0.0 }
    } else {
        v
    }
}

/// Vector op scalar (`swap`: scalar op vector).
fn vector_scalar(
    ctx: &Ctx<'_>,
    op: BinOp,
    v: Vec<Elem>,
    s: f64,
    swap: bool,
    return_bool: bool,
) -> Result<Vec<Elem>, EvalError> {
    if op.is_set() {
        return Err(EvalError::Type(format!(
            "set operator {:?} not allowed in binary scalar expression",
            op.as_str()
        )));
    }
    let mut out = Vec::with_capacity(v.len());
    for mut el in v {
        let Some(x) = el.f() else { continue };
        let (l, r) = if swap { (s, x) } else { (x, s) };
        let (mut val, mut keep) = float_binop(op, l, r);
        if op.is_comparison() {
            // The vector's value is the result, whichever side it is on.
            val = x;
        }
        if return_bool {
            val = if keep { 1.0 } else { 0.0 };
            keep = true;
        }
        if keep {
            el.v = SampleValue::Float(val);
            if !op.is_comparison() || return_bool {
                ctx.mark_drop(&mut el);
            }
            out.push(el);
        }
    }
    Ok(out)
}

/// klaxon's string comparison: `v == "literal"` / `v != "literal"`.
fn vector_string(
    ctx: &Ctx<'_>,
    op: BinOp,
    v: Vec<Elem>,
    lit: &str,
    return_bool: bool,
) -> Result<Vec<Elem>, EvalError> {
    if !matches!(op, BinOp::Eq | BinOp::Ne) {
        return Err(EvalError::Type(format!(
            "operator {:?} not defined between an instant vector and a string; only == and != compare strings",
            op.as_str()
        )));
    }
    let mut out = Vec::new();
    for mut el in v {
        let SampleValue::Str(s) = &el.v else { continue };
        let keep = (&**s == lit) == (op == BinOp::Eq);
        if return_bool {
            el.v = SampleValue::Float(if keep { 1.0 } else { 0.0 });
            ctx.mark_drop(&mut el);
            out.push(el);
        } else if keep {
            out.push(el);
        }
    }
    Ok(out)
}

/// Signature of a sample for matching: `on` labels, or all but `ignoring` labels and `__name__`.
fn signature(labels: &Labels, modifier: &BinModifier) -> u64 {
    match &modifier.matching {
        Some(m) if m.on => hash_on(labels, &m.labels),
        Some(m) => hash_without(labels, &m.labels, true, false),
        None => hash_without(labels, &[], true, false),
    }
}

/// The labels that identify a match group, for error messages (Prometheus' `MatchLabels`).
fn match_labels(labels: &Labels, modifier: &BinModifier) -> Labels {
    match &modifier.matching {
        Some(m) if m.on => keep_only(labels, &m.labels),
        Some(m) => drop_names(&labels.without_metric_name(), &m.labels, false),
        None => labels.without_metric_name(),
    }
}

/// `and`, `or`, `unless`.
fn set_op(op: BinOp, lhs: Vec<Elem>, rhs: Vec<Elem>, modifier: &BinModifier) -> Vec<Elem> {
    match op {
        BinOp::And => {
            if rhs.is_empty() || lhs.is_empty() {
                return Vec::new();
            }
            let sigs: HashSet<u64> = rhs.iter().map(|e| signature(&e.labels, modifier)).collect();
            lhs.into_iter()
                .filter(|e| sigs.contains(&signature(&e.labels, modifier)))
                .collect()
        }
        BinOp::Unless => {
            if rhs.is_empty() || lhs.is_empty() {
                return lhs;
            }
            let sigs: HashSet<u64> = rhs.iter().map(|e| signature(&e.labels, modifier)).collect();
            lhs.into_iter()
                .filter(|e| !sigs.contains(&signature(&e.labels, modifier)))
                .collect()
        }
        _ => {
            if lhs.is_empty() {
                return rhs;
            }
            if rhs.is_empty() {
                return lhs;
            }
            let sigs: HashSet<u64> = lhs.iter().map(|e| signature(&e.labels, modifier)).collect();
            let mut out = lhs;
            out.extend(
                rhs.into_iter()
                    .filter(|e| !sigs.contains(&signature(&e.labels, modifier))),
            );
            out
        }
    }
}

/// Output labels of a vector/vector operation (Prometheus' `resultMetric`).
fn result_metric(ls: &Labels, rs: &Labels, op: BinOp, modifier: &BinModifier) -> Labels {
    let arithmetic = !op.is_comparison();
    let base: Labels = if arithmetic {
        drop_metadata(ls)
    } else {
        ls.clone()
    };
    match &modifier.card {
        Cardinality::OneToOne | Cardinality::ManyToMany => match &modifier.matching {
            Some(m) if m.on => keep_only(&base, &m.labels),
            Some(m) if !m.labels.is_empty() => drop_names(&base, &m.labels, false),
            _ => base,
        },
        Cardinality::ManyToOne(include) | Cardinality::OneToMany(include) => {
            if include.is_empty() {
                return base;
            }
            let mut b = LabelsBuilder::new(&base);
            for name in include {
                // Included labels come from the "one" side; absent there means absent in the result.
                match rs.get(name) {
                    Some(v) => b.set(name, v),
                    None => b.del(name),
                };
            }
            b.build()
        }
    }
}

/// Arithmetic and comparisons between two vectors.
fn vector_vector(
    ctx: &Ctx<'_>,
    op: BinOp,
    lhs: Vec<Elem>,
    rhs: Vec<Elem>,
    modifier: &BinModifier,
) -> Result<Vec<Elem>, EvalError> {
    let one_to_many = matches!(modifier.card, Cardinality::OneToMany(_));
    let one_to_one = matches!(
        modifier.card,
        Cardinality::OneToOne | Cardinality::ManyToMany
    );
    // Make the left side the "many" side.
    let (lhs, rhs) = if one_to_many { (rhs, lhs) } else { (lhs, rhs) };
    if lhs.is_empty() || rhs.is_empty() {
        return Ok(Vec::new());
    }
    let mut right: HashMap<u64, usize> = HashMap::with_capacity(rhs.len());
    for (i, rs) in rhs.iter().enumerate() {
        let sig = signature(&rs.labels, modifier);
        if let Some(&j) = right.get(&sig) {
            let mut pair = [labels_string(&rs.labels), labels_string(&rhs[j].labels)];
            pair.sort();
            let [first, second] = pair;
            return Err(EvalError::ManyToMany {
                group: labels_string(&match_labels(&rs.labels, modifier)),
                side: if one_to_many { "left" } else { "right" },
                first,
                second,
            });
        }
        right.insert(sig, i);
    }

    let return_bool = modifier.return_bool;
    let mut matched_one: HashSet<u64> = HashSet::new();
    let mut matched_many: HashMap<u64, HashSet<u64>> = HashMap::new();
    let mut metrics: HashMap<(usize, usize), Arc<Labels>> = HashMap::new();
    let mut out = Vec::with_capacity(lhs.len());
    for (li, ls) in lhs.iter().enumerate() {
        let sig = signature(&ls.labels, modifier);
        let Some(&ri) = right.get(&sig) else { continue };
        let rs = &rhs[ri];

        // Uniqueness is checked before filtering, so a comparison cannot hide ambiguous matches.
        if one_to_one {
            if !matched_one.insert(sig) {
                return Err(EvalError::MultipleMatches);
            }
        } else {
            let metric = Arc::new(result_metric(&ls.labels, &rs.labels, op, modifier));
            if !matched_many
                .entry(sig)
                .or_default()
                .insert(hash_all(&metric))
            {
                return Err(EvalError::GroupingNotUnique);
            }
            metrics.insert((li, ri), metric);
        }

        let (lv, rv) = if one_to_many {
            (&rs.v, &ls.v)
        } else {
            (&ls.v, &rs.v)
        };
        // Comparisons yield the original left operand's value, whichever side is the "many" side.
        let (mut val, mut keep) = match (lv, rv) {
            (SampleValue::Float(a), SampleValue::Float(b)) => float_binop(op, *a, *b),
            (SampleValue::Str(a), SampleValue::Str(b)) if matches!(op, BinOp::Eq | BinOp::Ne) => {
                let keep = (a == b) == (op == BinOp::Eq);
                if !return_bool {
                    if keep {
                        let labels = match metrics.remove(&(li, ri)) {
                            Some(m) => m,
                            None => Arc::new(result_metric(&ls.labels, &rs.labels, op, modifier)),
                        };
                        out.push(Elem {
                            labels,
                            v: lv.clone(),
                            drop_name: ls.drop_name,
                        });
                    }
                    continue;
                }
                (0.0, keep)
            }
            _ => continue,
        };
        if return_bool {
            val = if keep { 1.0 } else { 0.0 };
            keep = true;
        }
        if !keep {
            continue;
        }
        let labels = match metrics.remove(&(li, ri)) {
            Some(m) => m,
            None => {
                let m = result_metric(&ls.labels, &rs.labels, op, modifier);
                if m == *ls.labels {
                    ls.labels.clone()
                } else {
                    Arc::new(m)
                }
            }
        };
        let has_meta = labels.iter().any(|l| is_metadata_label(&l.name));
        let mut el = Elem {
            labels,
            v: SampleValue::Float(val),
            drop_name: ls.drop_name && has_meta,
        };
        if return_bool {
            ctx.mark_drop(&mut el);
        }
        out.push(el);
    }
    Ok(out)
}
