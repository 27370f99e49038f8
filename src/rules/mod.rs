//! Rule files: loading and validating both formats into one typed model, the dependency graph,
//! group scheduling and hot reload.
//!
//! Code past `load` never sees an unchecked expression: every `Rule` here holds a parsed and
//! type-checked `Expr`, and every label name has been validated.

mod check;
mod diag;
mod file;
mod graph;
pub mod group;
mod load;
pub mod manager;
mod model;
mod validate;
pub mod watch;

pub use check::{GraphFormat, run_check};
pub use diag::{LoadError, RuleDiagnostic};
pub use graph::{RuleGraph, RuleNode, dependency_graph};
pub use group::{AlertChange, AlertEvents, GroupEvalReport, GroupOptions, GroupRunner, RuleKey};
pub use load::{LoadOptions, LoadReport, is_rule_test_source, load_paths, load_str};
pub use manager::{
    AlertSink, Manager, ManagerOptions, ReloadStatus, RuleLoader, RuleMetaMap, RuleStateSnapshot,
    SavedGroup, SavedRuleAlerts, SinkOptions,
};
pub use model::*;
