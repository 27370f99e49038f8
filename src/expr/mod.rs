//! The expression language: grammar, parser, type checker, printer and diagnostics.
//!
//! `parse` turns text into an [`Expr`] (syntax plus the checks Prometheus makes while parsing),
//! `check` infers the [`ValueType`] and reports type errors, `parse_and_check` does both.
//! `Display` on [`Expr`] prints canonical PromQL that parses back to the same tree.

pub mod ast;
mod check;
pub mod diag;
pub mod duration;
pub mod functions;
mod parser;
mod print;

pub use ast::*;
pub use check::check;
pub use diag::Diagnostic;
pub use duration::{DurationError, format_duration, parse_duration};
pub use parser::{
    MAX_EXPR_LEN, MAX_NESTING, MAX_OPERATORS, MAX_TREE_DEPTH, ParseOptions, parse_series_labels,
    parse_series_labels_prefix, parse_with,
};
pub use print::{format_number, quote};

/// Parses a PromQL expression (syntax and parser-time checks, no type checking).
pub fn parse(src: &str) -> Result<Expr, Diagnostic> {
    parse_with(src, ParseOptions::default())
}

/// Parses and type-checks: what rule loading and the test runner want.
pub fn parse_and_check(src: &str) -> Result<Expr, Diagnostic> {
    let e = parse(src)?;
    check(&e)?;
    Ok(e)
}

/// Parses a duration (`5m`, `-1h30m`, or plain seconds) with a spanned diagnostic on error.
pub fn parse_duration_spanned(src: &str) -> Result<i64, Diagnostic> {
    parser::parse_duration_diag(src)
}
