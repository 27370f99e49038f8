//! Shared label-set validation and construction, so every format applies the same rules and limits.

use std::collections::HashSet;
use std::sync::Arc;

use super::{IngestError, IngestErrorKind, Limits, Location};
use crate::model::{Label, Labels, METRIC_NAME};

/// Why a label set was refused, and which input pair (in the caller's order) is at fault.
#[derive(Debug)]
pub(crate) struct LabelProblem {
    /// Index of the offending pair in the order the caller passed them, when one pair is to blame.
    pub pair: Option<usize>,
    pub kind: IngestErrorKind,
    pub message: String,
}

impl LabelProblem {
    fn new(pair: Option<usize>, kind: IngestErrorKind, message: String) -> Self {
        LabelProblem {
            pair,
            kind,
            message,
        }
    }

    /// The problem as an error at `location`.
    pub fn into_error(self, location: Location) -> IngestError {
        IngestError::new(self.kind, location, self.message)
    }
}

/// Builds validated `Labels`, sharing one `Arc<str>` per distinct string within a request.
pub(crate) struct SeriesBuilder<'l> {
    limits: &'l Limits,
    strings: HashSet<Arc<str>, ahash::RandomState>,
    scratch: Vec<Label>,
}

/// Strings longer than this are not interned: they are rarely repeated and would bloat the table.
const MAX_INTERNED_LEN: usize = 128;

impl<'l> SeriesBuilder<'l> {
    /// A builder enforcing `limits`.
    pub fn new(limits: &'l Limits) -> Self {
        SeriesBuilder {
            limits,
            strings: HashSet::default(),
            scratch: Vec::new(),
        }
    }

    fn intern(&mut self, s: &str) -> Arc<str> {
        if s.len() > MAX_INTERNED_LEN {
            return Arc::from(s);
        }
        if let Some(a) = self.strings.get(s) {
            return Arc::clone(a);
        }
        let a: Arc<str> = Arc::from(s);
        self.strings.insert(Arc::clone(&a));
        a
    }

    /// Validates `(name, value)` pairs (the metric name as `__name__`) and builds the sorted set.
    pub fn build<'p>(
        &mut self,
        pairs: impl IntoIterator<Item = (&'p str, &'p str)>,
    ) -> Result<Labels, LabelProblem> {
        let limits = self.limits;
        self.scratch.clear();
        let mut count = 0usize;
        let mut has_name = false;
        for (i, (name, value)) in pairs.into_iter().enumerate() {
            check_name(name, limits).map_err(|m| LabelProblem::new(Some(i), m.0, m.1))?;
            if value.len() > limits.max_label_value_len {
                let what = if name == METRIC_NAME {
                    "metric name".to_string()
                } else {
                    format!("value of label {name:?}")
                };
                return Err(LabelProblem::new(
                    Some(i),
                    IngestErrorKind::Limit,
                    format!(
                        "{what} is {} bytes long, more than the limit of {}",
                        value.len(),
                        limits.max_label_value_len
                    ),
                ));
            }
            count += 1;
            if count > limits.max_labels_per_series {
                return Err(LabelProblem::new(
                    None,
                    IngestErrorKind::Limit,
                    format!(
                        "series has more than {} labels",
                        limits.max_labels_per_series
                    ),
                ));
            }
            if name == METRIC_NAME {
                has_name = !value.is_empty();
            }
            // Empty values are kept until the duplicate check, then dropped.
            let name = self.intern(name);
            let value = self.intern(value);
            self.scratch.push(Label { name, value });
        }
        if !has_name {
            return Err(LabelProblem::new(
                None,
                IngestErrorKind::Limit,
                "missing metric name".to_string(),
            ));
        }
        self.scratch.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        if let Some(w) = self.scratch.windows(2).find(|w| w[0].name == w[1].name) {
            return Err(LabelProblem::new(
                None,
                IngestErrorKind::Syntax,
                format!("duplicate label name {:?}", &*w[0].name),
            ));
        }
        let labels: Vec<Label> = self
            .scratch
            .drain(..)
            .filter(|l| !l.value.is_empty())
            .collect();
        Ok(Labels::from_sorted(labels))
    }
}

/// Label-name rules: non-empty, within the length limit, not a reserved `__` name.
pub(crate) fn check_name(name: &str, limits: &Limits) -> Result<(), (IngestErrorKind, String)> {
    if name == METRIC_NAME {
        return Ok(());
    }
    if name.is_empty() {
        return Err((IngestErrorKind::Syntax, "empty label name".to_string()));
    }
    if name.len() > limits.max_label_name_len {
        return Err((
            IngestErrorKind::Limit,
            format!(
                "label name {:?}... is {} bytes long, more than the limit of {}",
                truncate(name, 32),
                name.len(),
                limits.max_label_name_len
            ),
        ));
    }
    if name.starts_with("__") && name != METRIC_NAME {
        return Err((
            IngestErrorKind::Limit,
            format!("label name {name:?} is reserved (names starting with \"__\")"),
        ));
    }
    Ok(())
}

/// At most `max` bytes of `s`, cut on a character boundary, for error messages.
pub(crate) fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The error for exceeding `Limits::max_samples`.
pub(crate) fn too_many_samples(limits: &Limits, location: Location) -> IngestError {
    IngestError::new(
        IngestErrorKind::TooLarge,
        location,
        format!("more than {} samples in one request", limits.max_samples),
    )
}

/// The error for a body over `Limits::max_decompressed_bytes`, checked by every decoder.
pub(crate) fn check_body_len(len: usize, limits: &Limits) -> Result<(), IngestError> {
    if len > limits.max_decompressed_bytes {
        return Err(IngestError::whole(
            IngestErrorKind::TooLarge,
            format!(
                "body is {len} bytes, more than the limit of {} bytes",
                limits.max_decompressed_bytes
            ),
        ));
    }
    Ok(())
}
