//! Observability of klaxon itself: structured logs, self-metrics and the time formatting both use.

pub mod log;
pub mod metrics;
pub mod time;

pub use log::{LogFormat, LogInitError};
pub use metrics::Metrics;
