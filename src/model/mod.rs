//! Shared vocabulary: label sets, matchers, sample values and time.
//!
//! Every other module speaks in these types, so they stay small and free of IO.

pub mod civil;
mod labels;
mod matcher;

pub use labels::{
    Label, Labels, LabelsBuilder, METRIC_NAME, is_legacy_label_name, is_legacy_metric_name, quote,
};
pub use matcher::{MatchOp, Matcher, MatcherError};

use std::sync::Arc;

/// Milliseconds since the Unix epoch; the unit Prometheus uses on the wire and in its TSDB.
pub type Timestamp = i64;

/// Bit pattern Prometheus uses to mark a series as stale (a NaN that no arithmetic produces).
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// The stale marker as a float, for writers that end a series.
pub fn stale_nan() -> f64 {
    f64::from_bits(STALE_NAN_BITS)
}

/// True only for the exact stale marker, never for ordinary NaNs.
pub fn is_stale_nan(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

/// A stored sample value: PromQL floats, plus klaxon's string extension (`database_health = "unhealthy"`).
#[derive(Debug, Clone, PartialEq)]
pub enum SampleValue {
    /// An ordinary float sample (may be the stale marker).
    Float(f64),
    /// A string sample, comparable with `==`/`!=` against string literals.
    Str(Arc<str>),
}

impl SampleValue {
    /// Whether this is the staleness marker that ends a series.
    pub fn is_stale(&self) -> bool {
        matches!(self, SampleValue::Float(v) if is_stale_nan(*v))
    }
}
