//! Canonical PromQL text for a tree: `parse(&e.to_string()) == e` for every tree the parser
//! produces. Hand-built trees print with whatever parentheses they need to mean the same.

use std::fmt;

use super::ast::{AtModifier, BinOp, Cardinality, Expr, Grouping, UnaryOp, VectorSelector};
use super::duration::format_duration;
use crate::model::{METRIC_NAME, MatchOp};

/// Binding strength of unary minus/plus: between `*` (5) and `^` (7).
const UNARY_PREC: u8 = 6;

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Number { value, .. } => f.write_str(&format_number(*value)),
            Expr::String { value, .. } => f.write_str(&quote(value)),
            Expr::VectorSelector(vs) => write_selector(f, vs, None),
            Expr::MatrixSelector {
                selector, range, ..
            } => write_selector(f, selector, Some(*range)),
            Expr::Subquery {
                expr,
                range,
                step,
                offset,
                at,
                ..
            } => {
                if needs_parens_before_suffix(expr) {
                    write!(f, "({expr})")?;
                } else {
                    write!(f, "{expr}")?;
                }
                write!(f, "[{}:", format_duration(*range))?;
                if let Some(s) = step {
                    f.write_str(&format_duration(*s))?;
                }
                f.write_str("]")?;
                write_modifiers(f, *offset, *at)
            }
            Expr::Paren { expr, .. } => write!(f, "({expr})"),
            Expr::Unary { op, expr, .. } => {
                f.write_str(match op {
                    UnaryOp::Neg => "-",
                    UnaryOp::Pos => "+",
                })?;
                match expr.as_ref() {
                    Expr::Binary { op, .. } if op.precedence() <= UNARY_PREC => {
                        write!(f, "({expr})")
                    }
                    // A bare number would fold into the literal when read back.
                    Expr::Number { .. } => write!(f, "({expr})"),
                    // `- -x`: a space keeps nested signs readable.
                    Expr::Unary { .. } => write!(f, " {expr}"),
                    _ => write!(f, "{expr}"),
                }
            }
            Expr::Binary {
                op,
                lhs,
                rhs,
                modifier,
                ..
            } => {
                let prec = op.precedence();
                let lhs_wrap = match lhs.as_ref() {
                    Expr::Binary { op: l, .. } => {
                        l.precedence() < prec || (l.precedence() == prec && op.is_right_assoc())
                    }
                    // `-a ^ b` means `-(a ^ b)`.
                    Expr::Unary { .. } => *op == BinOp::Pow,
                    Expr::Number { value, .. } => {
                        *op == BinOp::Pow && value.is_sign_negative() && !value.is_nan()
                    }
                    _ => false,
                };
                let rhs_wrap = match rhs.as_ref() {
                    Expr::Binary { op: r, .. } => {
                        r.precedence() < prec || (r.precedence() == prec && !op.is_right_assoc())
                    }
                    _ => false,
                };
                if lhs_wrap {
                    write!(f, "({lhs})")?;
                } else {
                    write!(f, "{lhs}")?;
                }
                write!(f, " {}", op.as_str())?;
                if modifier.return_bool {
                    f.write_str(" bool")?;
                }
                if let Some(m) = &modifier.matching {
                    write!(
                        f,
                        " {} ({})",
                        if m.on { "on" } else { "ignoring" },
                        label_list(&m.labels)
                    )?;
                }
                match &modifier.card {
                    Cardinality::ManyToOne(l) => write_group(f, "group_left", l)?,
                    Cardinality::OneToMany(l) => write_group(f, "group_right", l)?,
                    Cardinality::OneToOne | Cardinality::ManyToMany => {}
                }
                if rhs_wrap {
                    write!(f, " ({rhs})")
                } else {
                    write!(f, " {rhs}")
                }
            }
            Expr::Aggregate {
                op,
                expr,
                param,
                grouping,
                ..
            } => {
                f.write_str(op.as_str())?;
                match grouping {
                    Some(Grouping::By(l)) => write!(f, " by ({})", label_list(l))?,
                    Some(Grouping::Without(l)) => write!(f, " without ({})", label_list(l))?,
                    None => {}
                }
                if grouping.is_some() {
                    f.write_str(" ")?;
                }
                match param {
                    Some(p) => write!(f, "({p}, {expr})"),
                    None => write!(f, "({expr})"),
                }
            }
            Expr::Call { func, args, .. } => {
                write!(f, "{func}(")?;
                for (i, a) in args.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{a}")?;
                }
                f.write_str(")")
            }
        }
    }
}

/// Always writes the label list, even when empty: `group_left (x)` followed by a parenthesised
/// operand would otherwise read the operand as the label list.
fn write_group(f: &mut fmt::Formatter<'_>, kw: &str, labels: &[String]) -> fmt::Result {
    write!(f, " {kw} ({})", label_list(labels))
}

/// Whether a subquery's inner expression must be parenthesised to keep the suffix on all of it.
fn needs_parens_before_suffix(e: &Expr) -> bool {
    match e {
        Expr::Binary { .. } | Expr::Unary { .. } => true,
        Expr::Number { value, .. } => value.is_sign_negative() && !value.is_nan(),
        _ => false,
    }
}

fn write_selector(
    f: &mut fmt::Formatter<'_>,
    vs: &VectorSelector,
    range: Option<i64>,
) -> fmt::Result {
    let is_name = |m: &crate::model::Matcher, n: &str| {
        m.name == METRIC_NAME && m.op == MatchOp::Equal && m.value == n
    };
    // The name goes outside the braces only when it is printable bare and really is a matcher.
    let outside = vs
        .name
        .as_deref()
        .filter(|n| is_bare_metric_name(n) && vs.matchers.iter().any(|m| is_name(m, n)));
    let mut skipped = false;
    let mut parts: Vec<String> = Vec::with_capacity(vs.matchers.len());
    for m in &vs.matchers {
        if let Some(n) = outside
            && !skipped
            && is_name(m, n)
        {
            skipped = true;
            continue;
        }
        if outside.is_none()
            && parts.is_empty()
            && is_name(m, &m.value)
            && !is_bare_metric_name(&m.value)
        {
            // Prometheus 3 style for UTF-8 names: `{"my.metric", ...}`.
            parts.push(quote(&m.value));
            continue;
        }
        parts.push(format!(
            "{}{}{}",
            label_name(&m.name),
            m.op.as_str(),
            quote(&m.value)
        ));
    }
    if let Some(n) = outside {
        f.write_str(n)?;
    }
    if outside.is_none() || !parts.is_empty() {
        write!(f, "{{{}}}", parts.join(", "))?;
    }
    if let Some(r) = range {
        write!(f, "[{}]", format_duration(r))?;
    }
    write_modifiers(f, vs.offset, vs.at)
}

fn write_modifiers(f: &mut fmt::Formatter<'_>, offset: i64, at: Option<AtModifier>) -> fmt::Result {
    match at {
        Some(AtModifier::Start) => f.write_str(" @ start()")?,
        Some(AtModifier::End) => f.write_str(" @ end()")?,
        Some(AtModifier::Timestamp(ms)) => write!(f, " @ {}", format_seconds(ms))?,
        None => {}
    }
    if offset != 0 {
        write!(f, " offset {}", format_duration(offset))?;
    }
    Ok(())
}

/// Milliseconds as exact decimal seconds: `100000` -> `100`, `1234` -> `1.234`, `-50` -> `-0.05`.
fn format_seconds(ms: i64) -> String {
    let sign = if ms < 0 { "-" } else { "" };
    let abs = ms.unsigned_abs();
    let (secs, frac) = (abs / 1000, abs % 1000);
    if frac == 0 {
        format!("{sign}{secs}")
    } else {
        let f = format!("{frac:03}");
        format!("{sign}{secs}.{}", f.trim_end_matches('0'))
    }
}

/// Shortest text that parses back to exactly the same float.
pub fn format_number(v: f64) -> String {
    if v.is_nan() {
        return "NaN".to_string();
    }
    if v.is_infinite() {
        return if v > 0.0 {
            "Inf".to_string()
        } else {
            "-Inf".to_string()
        };
    }
    let a = v.abs();
    if a == 0.0 || (1e-4..1e15).contains(&a) {
        // Display is the shortest round-trip decimal without an exponent.
        v.to_string()
    } else {
        // Debug switches to exponent notation for very large and very small magnitudes.
        let s = format!("{v:?}");
        if s.contains('e') || s.contains('.') {
            s
        } else {
            format!("{v:e}")
        }
    }
}

pub use crate::model::quote;

/// Words the grammar never reads as a bare metric name.
const RESERVED: [&str; 8] = [
    "bool",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "atan2",
    "inf",
    "nan",
];

fn is_bare_metric_name(n: &str) -> bool {
    let mut chars = n.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
        && !RESERVED.iter().any(|r| r.eq_ignore_ascii_case(n))
}

fn label_name(n: &str) -> String {
    let mut chars = n.chars();
    let bare = matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if bare { n.to_string() } else { quote(n) }
}

fn label_list(labels: &[String]) -> String {
    labels
        .iter()
        .map(|l| label_name(l))
        .collect::<Vec<_>>()
        .join(", ")
}
