//! In-memory series store: the window of recent samples that rules and queries read.
//!
//! Writers (ingest, recording rules, the test-script loader) call `append`; readers (the evaluator,
//! the query API) call `select` through the `SeriesSource` trait so the evaluator never depends on
//! how samples are laid out.

mod chunk;
mod db;
mod index;
mod intern;
mod series;
mod shard;

pub use db::{AppendError, Appended, BatchOutcome, GcOutcome, SeriesRef, Store, StoreOptions};

use std::sync::Arc;

use crate::model::{Labels, Matcher, SampleValue, Timestamp};

/// The samples of one series inside a requested time window, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesSamples {
    /// The series' full label set, `__name__` included.
    pub labels: Labels,
    /// Samples with `mint <= t <= maxt`, time-ordered; stale markers included as `Float(stale NaN)`.
    pub samples: Vec<(Timestamp, SampleValue)>,
}

/// What the evaluator needs from storage; implemented by `Store` and by test doubles.
pub trait SeriesSource: Send + Sync {
    /// Every series matching all `matchers` that has at least one sample in `[mint, maxt]`, with those samples.
    fn select(&self, matchers: &[Matcher], mint: Timestamp, maxt: Timestamp) -> Vec<SeriesSamples>;
}

impl<T: SeriesSource + ?Sized> SeriesSource for Arc<T> {
    fn select(&self, matchers: &[Matcher], mint: Timestamp, maxt: Timestamp) -> Vec<SeriesSamples> {
        (**self).select(matchers, mint, maxt)
    }
}
