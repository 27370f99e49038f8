//! Wire formats pushers speak, decoded into sample batches: Prometheus text / OpenMetrics,
//! remote_write 1.0, klaxon's JSON push, and Pushgateway-style path labels.
//!
//! Decoding is all-or-nothing: a request either yields every sample or an error naming the
//! line (text) or index (JSON, remote_write), so nothing of a bad request reaches the store.
//!
//! Label rules shared by every format (Prometheus 3 UTF-8 rules plus klaxon's limits):
//! - every series needs a non-empty metric name (`__name__`);
//! - label names are non-empty UTF-8; names starting with `__` other than `__name__` are reserved
//!   and rejected; a name may appear once per series;
//! - an empty label value means "no such label" and drops the label;
//! - [`Limits`] bound body size, decompressed size, sample count and label counts/lengths.
//!
//! The HTTP layer picks the decoder from the content type ([`Format::from_content_type`],
//! [`check_remote_write_content_type`]) and maps failures with [`IngestError::http_status`].

mod encoding;
mod error;
mod json;
mod limits;
mod prom_text;
mod pushgateway;
mod remote_write;
mod series;

pub use encoding::decode_body_encoding;
pub use error::{IngestError, IngestErrorKind, Location};
pub use json::parse_json_push;
pub use limits::Limits;
pub use prom_text::{Format, encode_prom_text, parse_openmetrics, parse_prom_text, parse_text};
pub use pushgateway::{add_labels, pushgateway_labels, pushgateway_path_labels};
pub use remote_write::{
    check_remote_write_content_type, decode_remote_write, decode_remote_write_full,
    encode_remote_write, write_request_from_samples,
};
/// The hand-written remote write 1.0 protobuf messages.
pub mod prompb {
    pub use super::remote_write::{
        Exemplar, Histogram, Label, MetricMetadata, Sample, TimeSeries, WriteRequest,
    };
}

use crate::model::{Labels, SampleValue, Timestamp};

/// One decoded sample, ready for `Store::append_batch`.
pub type DecodedSample = (Labels, Timestamp, SampleValue);

/// A decoded request: its samples plus what was deliberately skipped, for self-metrics.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Decoded {
    /// Samples in request order.
    pub samples: Vec<DecodedSample>,
    /// Parts of the request that were valid but not stored.
    pub ignored: Ignored,
    /// `# TYPE` / `# HELP` per metric family (text formats only), in first-seen order.
    pub metadata: Vec<FamilyMetadata>,
}

/// Counts of valid-but-unstored parts of a request, so the server can expose them as counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ignored {
    /// Native histogram samples (remote_write `TimeSeries.histograms`).
    pub histograms: usize,
    /// Exemplars (remote_write `TimeSeries.exemplars`, text ` # {...} v` suffixes).
    pub exemplars: usize,
    /// remote_write `WriteRequest.metadata` entries.
    pub metadata: usize,
    /// OpenMetrics `_created` samples of counters, histograms and summaries.
    pub created: usize,
}

/// Metric family type from a `# TYPE` line, kept so callers can tell counters from gauges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricType {
    /// `counter`
    Counter,
    /// `gauge`
    Gauge,
    /// `histogram`
    Histogram,
    /// `gaugehistogram` (OpenMetrics)
    GaugeHistogram,
    /// `summary`
    Summary,
    /// `info` (OpenMetrics)
    Info,
    /// `stateset` (OpenMetrics)
    StateSet,
    /// `untyped` (0.0.4) / `unknown` (OpenMetrics)
    Untyped,
}

impl MetricType {
    /// The type as written in the given text format.
    pub fn as_str(self, format: Format) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
            MetricType::GaugeHistogram => "gaugehistogram",
            MetricType::Summary => "summary",
            MetricType::Info => "info",
            MetricType::StateSet => "stateset",
            MetricType::Untyped => match format {
                Format::PromText => "untyped",
                Format::OpenMetrics => "unknown",
            },
        }
    }
}

/// `# TYPE` / `# HELP` of one metric family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FamilyMetadata {
    /// Family name as written on the `# TYPE` / `# HELP` line.
    pub name: String,
    /// Declared type (`Untyped` when only `# HELP` was given).
    pub kind: MetricType,
    /// Unescaped help text, if any.
    pub help: Option<String>,
}

#[cfg(test)]
mod tests;
