//! Snapshot tests for the expression front end: rendered diagnostics for every
//! `tests/expr/err_*.txt` fixture, and parse trees for every `tests/expr/ok_*.txt` fixture.
//!
//! Regenerate with `INSTA_UPDATE=always cargo test --test expr_errors`, then read the diffs.

use std::fmt::Write as _;
use std::path::Path;

use klaxon::expr::{
    AtModifier, Cardinality, Expr, Grouping, UnaryOp, VectorSelector, check, format_duration,
    parse, parse_and_check,
};

/// The fixture text without the one trailing newline editors add.
fn fixture(path: &Path) -> (String, String) {
    let text = std::fs::read_to_string(path).expect("fixture is readable");
    let text = text.strip_suffix('\n').unwrap_or(&text).to_string();
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("?")
        .to_string();
    (name, text)
}

#[test]
fn error_diagnostics() {
    insta::glob!("expr/err_*.txt", |path| {
        let (name, src) = fixture(path);
        let err = match parse_and_check(&src) {
            Ok(e) => panic!("{name}: expected an error, parsed as {e}"),
            Err(d) => d,
        };
        insta::assert_snapshot!(err.render(&src, Some(&name)));
    });
}

#[test]
fn parse_trees() {
    insta::glob!("expr/ok_*.txt", |path| {
        let (name, src) = fixture(path);
        let e = match parse(&src) {
            Ok(e) => e,
            Err(d) => panic!("{}", d.render(&src, Some(&name))),
        };
        let ty = match check(&e) {
            Ok(t) => t.to_string(),
            Err(d) => format!("error: {}", d.message),
        };
        let printed = e.to_string();
        let reparsed =
            parse(&printed).unwrap_or_else(|d| panic!("{name}: printed form fails: {}", d.message));
        assert_eq!(
            sexpr(&reparsed),
            sexpr(&e),
            "{name}: print/parse round trip changed the tree"
        );
        insta::assert_snapshot!(format!(
            "source:  {src}\nprinted: {printed}\ntype:    {ty}\n\n{}",
            sexpr(&e)
        ));
    });
}

/// The tree as an indented S-expression; floats in Rust's round-trip notation.
pub fn sexpr(e: &Expr) -> String {
    let mut out = String::new();
    write_sexpr(&mut out, e, 0);
    out
}

fn selector(vs: &VectorSelector) -> String {
    let mut s = String::new();
    if let Some(n) = &vs.name {
        let _ = write!(s, "name={n} ");
    }
    let ms: Vec<String> = vs.matchers.iter().map(|m| m.to_string()).collect();
    let _ = write!(s, "{{{}}}", ms.join(", "));
    s.push_str(&modifiers(vs.offset, vs.at));
    s
}

fn modifiers(offset: i64, at: Option<AtModifier>) -> String {
    let mut s = String::new();
    if offset != 0 {
        let _ = write!(s, " offset={}", format_duration(offset));
    }
    match at {
        Some(AtModifier::Timestamp(ms)) => {
            let _ = write!(s, " @={ms}ms");
        }
        Some(AtModifier::Start) => s.push_str(" @=start"),
        Some(AtModifier::End) => s.push_str(" @=end"),
        None => {}
    }
    s
}

fn write_sexpr(out: &mut String, e: &Expr, indent: usize) {
    let pad = "  ".repeat(indent);
    let _ = write!(out, "{pad}");
    match e {
        Expr::Number { value, .. } => {
            let _ = write!(out, "(number {value:?})");
        }
        Expr::String { value, .. } => {
            let _ = write!(out, "(string {value:?})");
        }
        Expr::VectorSelector(vs) => {
            let _ = write!(out, "(selector {})", selector(vs));
        }
        Expr::MatrixSelector {
            selector: vs,
            range,
            ..
        } => {
            let _ = write!(
                out,
                "(matrix [{}] {})",
                format_duration(*range),
                selector(vs)
            );
        }
        Expr::Subquery {
            expr,
            range,
            step,
            offset,
            at,
            ..
        } => {
            let step = step.map(format_duration).unwrap_or_default();
            let _ = writeln!(
                out,
                "(subquery [{}:{step}]{}",
                format_duration(*range),
                modifiers(*offset, *at)
            );
            write_sexpr(out, expr, indent + 1);
            out.push(')');
        }
        Expr::Paren { expr, .. } => {
            out.push_str("(paren\n");
            write_sexpr(out, expr, indent + 1);
            out.push(')');
        }
        Expr::Unary { op, expr, .. } => {
            let op = if *op == UnaryOp::Neg { "-" } else { "+" };
            let _ = writeln!(out, "(unary {op}");
            write_sexpr(out, expr, indent + 1);
            out.push(')');
        }
        Expr::Binary {
            op,
            lhs,
            rhs,
            modifier,
            ..
        } => {
            let _ = write!(out, "(binary {}", op.as_str());
            if modifier.return_bool {
                out.push_str(" bool");
            }
            if let Some(m) = &modifier.matching {
                let _ = write!(
                    out,
                    " {}({})",
                    if m.on { "on" } else { "ignoring" },
                    m.labels.join(", ")
                );
            }
            match &modifier.card {
                Cardinality::OneToOne => {}
                Cardinality::ManyToMany => out.push_str(" many-to-many"),
                Cardinality::ManyToOne(l) => {
                    let _ = write!(out, " group_left({})", l.join(", "));
                }
                Cardinality::OneToMany(l) => {
                    let _ = write!(out, " group_right({})", l.join(", "));
                }
            }
            out.push('\n');
            write_sexpr(out, lhs, indent + 1);
            out.push('\n');
            write_sexpr(out, rhs, indent + 1);
            out.push(')');
        }
        Expr::Aggregate {
            op,
            expr,
            param,
            grouping,
            ..
        } => {
            let _ = write!(out, "(aggregate {}", op.as_str());
            match grouping {
                Some(Grouping::By(l)) => {
                    let _ = write!(out, " by({})", l.join(", "));
                }
                Some(Grouping::Without(l)) => {
                    let _ = write!(out, " without({})", l.join(", "));
                }
                None => {}
            }
            if let Some(p) = param {
                out.push('\n');
                write_sexpr(out, p, indent + 1);
            }
            out.push('\n');
            write_sexpr(out, expr, indent + 1);
            out.push(')');
        }
        Expr::Call { func, args, .. } => {
            let _ = write!(out, "(call {func}");
            for a in args {
                out.push('\n');
                write_sexpr(out, a, indent + 1);
            }
            out.push(')');
        }
    }
}
