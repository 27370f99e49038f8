//! klaxon: a declarative alert-rule engine.
//!
//! See `ARCHITECTURE.md` for the data flow and the invariants each module keeps.

pub mod alert;
pub mod api;
pub mod cli;
pub mod clock;
pub mod config;
pub mod dispatch;
pub mod eval;
pub mod expr;
pub mod ingest;
pub mod model;
pub mod notify;
pub mod pipeline;
pub mod promqltest;
pub mod rules;
pub mod ruletest;
pub mod server;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod template;
pub mod wal;
pub mod yaml;
