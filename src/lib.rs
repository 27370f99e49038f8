//! klaxon: a declarative alert-rule engine.
//!
//! See `ARCHITECTURE.md` for the data flow and the invariants each module keeps.

pub mod cli;
pub mod eval;
pub mod expr;
pub mod model;
pub mod promqltest;
pub mod store;
