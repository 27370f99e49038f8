//! Rule files: loading and validating both formats into one typed model, the dependency graph,
//! group scheduling and hot reload.
//!
//! Code past `load` never sees an unchecked expression: every `Rule` here holds a parsed and
//! type-checked `Expr`, and every label name has been validated.

mod model;

pub use model::*;
