//! The expression language: grammar, parser, type checker, printer and diagnostics.

pub mod ast;

pub use ast::*;
