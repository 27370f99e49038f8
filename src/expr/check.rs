//! The type checker: scalar, instant vector, range vector and string, with PromQL's messages
//! and klaxon's one extension (an instant vector may be compared with a string by `==`/`!=`).

use super::ast::{AggOp, BinOp, Cardinality, Expr, ValueType};
use super::diag::Diagnostic;
use super::functions;

/// Infers the type of `e`, or reports the first type error with the offending node's span.
pub fn check(e: &Expr) -> Result<ValueType, Diagnostic> {
    match e {
        Expr::Number { .. } => Ok(ValueType::Scalar),
        Expr::String { .. } => Ok(ValueType::String),
        Expr::VectorSelector(_) => Ok(ValueType::Vector),
        Expr::MatrixSelector { .. } => Ok(ValueType::Matrix),
        Expr::Paren { expr, .. } => check(expr),
        Expr::Subquery { expr, .. } => {
            let t = check(expr)?;
            if t != ValueType::Vector {
                return Err(Diagnostic::new(
                    format!("subquery is only allowed on instant vector, got {t}"),
                    expr.span(),
                ));
            }
            Ok(ValueType::Matrix)
        }
        Expr::Unary { expr, span, .. } => {
            let t = check(expr)?;
            if !matches!(t, ValueType::Scalar | ValueType::Vector) {
                return Err(Diagnostic::new(
                    format!(
                        "unary expression only allowed on expressions of type scalar or instant vector, got {t}"
                    ),
                    *span,
                ));
            }
            Ok(t)
        }
        Expr::Binary {
            op,
            lhs,
            rhs,
            modifier,
            span,
        } => {
            let lt = check(lhs)?;
            let rt = check(rhs)?;
            let has_matching = modifier
                .matching
                .as_ref()
                .is_some_and(|m| !m.labels.is_empty())
                || matches!(
                    modifier.card,
                    Cardinality::ManyToOne(_) | Cardinality::OneToMany(_)
                );

            // klaxon extension: `vector == "text"` / `"text" != vector` filter string samples.
            if lt == ValueType::String || rt == ValueType::String {
                let (s_side, other, other_t) = if lt == ValueType::String {
                    (lhs, rhs, rt)
                } else {
                    (rhs, lhs, lt)
                };
                if !matches!(op, BinOp::Eq | BinOp::Ne) {
                    return Err(Diagnostic::new(
                        format!(
                            "operator \"{}\" not allowed on strings: only == and != compare an instant vector with a string",
                            op.as_str()
                        ),
                        s_side.span(),
                    ));
                }
                if other_t != ValueType::Vector {
                    let msg = if other_t == ValueType::String {
                        "comparison between two strings is not allowed: one side must be an instant vector".to_string()
                    } else {
                        format!("string can only be compared with an instant vector, got {other_t}")
                    };
                    return Err(Diagnostic::new(msg, other.span()));
                }
                if modifier.return_bool {
                    return Err(Diagnostic::new(
                        "bool modifier cannot be used in a string comparison",
                        *span,
                    ));
                }
                if modifier.matching.is_some() || has_matching {
                    return Err(Diagnostic::new(
                        "vector matching only allowed between instant vectors",
                        *span,
                    ));
                }
                return Ok(ValueType::Vector);
            }

            for (side, t) in [(lhs, lt), (rhs, rt)] {
                if !matches!(t, ValueType::Scalar | ValueType::Vector) {
                    return Err(Diagnostic::new(
                        "binary expression must contain only scalar and instant vector types",
                        side.span(),
                    ));
                }
            }
            if modifier.return_bool && !op.is_comparison() {
                return Err(Diagnostic::new(
                    "bool modifier can only be used on comparison operators",
                    *span,
                ));
            }
            if op.is_comparison()
                && lt == ValueType::Scalar
                && rt == ValueType::Scalar
                && !modifier.return_bool
            {
                return Err(Diagnostic::new(
                    "comparisons between scalars must use BOOL modifier",
                    *span,
                ));
            }
            if op.is_set() && (lt == ValueType::Scalar || rt == ValueType::Scalar) {
                return Err(Diagnostic::new(
                    format!(
                        "set operator \"{}\" not allowed in binary scalar expression",
                        op.as_str()
                    ),
                    *span,
                ));
            }
            if has_matching && (lt != ValueType::Vector || rt != ValueType::Vector) {
                return Err(Diagnostic::new(
                    "vector matching only allowed between instant vectors",
                    *span,
                ));
            }
            if lt == ValueType::Scalar && rt == ValueType::Scalar {
                Ok(ValueType::Scalar)
            } else {
                Ok(ValueType::Vector)
            }
        }
        Expr::Aggregate {
            op, expr, param, ..
        } => {
            let t = check(expr)?;
            if t != ValueType::Vector {
                return Err(Diagnostic::new(
                    format!("expected type instant vector in aggregation expression, got {t}"),
                    expr.span(),
                ));
            }
            if let Some(p) = param {
                let want = if *op == AggOp::CountValues {
                    ValueType::String
                } else {
                    ValueType::Scalar
                };
                let pt = check(p)?;
                if pt != want {
                    return Err(Diagnostic::new(
                        format!("expected type {want} in aggregation parameter, got {pt}"),
                        p.span(),
                    ));
                }
            }
            Ok(ValueType::Vector)
        }
        Expr::Call { func, args, span } => {
            let Some(sig) = functions::lookup(func) else {
                return Err(Diagnostic::new(
                    format!("unknown function with name \"{func}\""),
                    *span,
                ));
            };
            let n = args.len();
            if !sig.accepts_arity(n) {
                let msg = match sig.max_args {
                    Some(max) if max == sig.min_args => {
                        format!("expected {max} argument(s) in call to \"{func}\", got {n}")
                    }
                    Some(max) if n > max => {
                        format!("expected at most {max} argument(s) in call to \"{func}\", got {n}")
                    }
                    _ => format!(
                        "expected at least {} argument(s) in call to \"{func}\", got {n}",
                        sig.min_args
                    ),
                };
                return Err(Diagnostic::new(msg, *span));
            }
            for (i, a) in args.iter().enumerate() {
                let want = sig.arg_type(i);
                let got = check(a)?;
                if got != want {
                    return Err(Diagnostic::new(
                        format!("expected type {want} in call to function \"{func}\", got {got}"),
                        a.span(),
                    ));
                }
            }
            Ok(sig.ret)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::parse;

    fn ty(src: &str) -> Result<ValueType, String> {
        let e = parse(src).map_err(|d| format!("parse: {}", d.message))?;
        check(&e).map_err(|d| d.message)
    }

    #[test]
    fn types() {
        use ValueType::*;
        assert_eq!(ty("1"), Ok(Scalar));
        assert_eq!(ty("'a'"), Ok(String));
        assert_eq!(ty("foo"), Ok(Vector));
        assert_eq!(ty("foo[5m]"), Ok(Matrix));
        assert_eq!(ty("foo[5m:]"), Ok(Matrix));
        assert_eq!(ty("rate(foo[5m]) > 0.1"), Ok(Vector));
        assert_eq!(ty("1 + 2"), Ok(Scalar));
        assert_eq!(ty("1 > bool 2"), Ok(Scalar));
        assert_eq!(ty("time()"), Ok(Scalar));
        assert_eq!(ty("database_health == 'unhealthy'"), Ok(Vector));
        assert_eq!(ty("'unhealthy' != database_health"), Ok(Vector));
        assert_eq!(ty("sum by (a) (foo)"), Ok(Vector));
        assert_eq!(ty("count_values('v', foo)"), Ok(Vector));
        assert_eq!(ty("hour()"), Ok(Vector));
        assert_eq!(ty("-foo"), Ok(Vector));
    }

    #[test]
    fn errors() {
        for (src, want) in [
            (
                "rate(foo)",
                "expected type range vector in call to function \"rate\", got instant vector",
            ),
            (
                "foo + foo[5m]",
                "binary expression must contain only scalar and instant vector types",
            ),
            (
                "foo and 1",
                "set operator \"and\" not allowed in binary scalar expression",
            ),
            (
                "1 > 2",
                "comparisons between scalars must use BOOL modifier",
            ),
            (
                "'a' > foo",
                "operator \">\" not allowed on strings: only == and != compare an instant vector with a string",
            ),
            (
                "'a' == 1",
                "string can only be compared with an instant vector, got scalar",
            ),
            (
                "foo == bool 'a'",
                "bool modifier cannot be used in a string comparison",
            ),
            (
                "'a' + 'b'",
                "operator \"+\" not allowed on strings: only == and != compare an instant vector with a string",
            ),
            (
                "rate(foo[5m], 1)",
                "expected 1 argument(s) in call to \"rate\", got 2",
            ),
            (
                "round()",
                "expected at least 1 argument(s) in call to \"round\", got 0",
            ),
            (
                "round(foo, 1, 2)",
                "expected at most 2 argument(s) in call to \"round\", got 3",
            ),
            (
                "sum(foo[5m])",
                "expected type instant vector in aggregation expression, got range vector",
            ),
            (
                "topk('a', foo)",
                "expected type scalar in aggregation parameter, got string",
            ),
            (
                "1 + on(a) foo",
                "vector matching only allowed between instant vectors",
            ),
            (
                "-foo[5m]",
                "unary expression only allowed on expressions of type scalar or instant vector, got range vector",
            ),
            (
                "foo[5m][10m:]",
                "subquery is only allowed on instant vector, got range vector",
            ),
        ] {
            assert_eq!(ty(src), Err(want.to_string()), "{src}");
        }
    }
}
