//! The evaluator: the meaning of an expression at a time (instant) or over a range of times.
//!
//! Semantics follow Prometheus 3.x (`promql/engine.go`, `promql/functions.go`): 5m lookback with
//! left-open windows, stale markers ending series, `offset` / `@` (incl. `start()` / `end()`),
//! subqueries aligned to absolute multiples of their step, extrapolated `rate`/`increase`/`delta`,
//! Kahan summation, delayed `__name__` removal, vector matching with its exact error messages,
//! and Prometheus' annotations (`PromQL warning: ...` / `PromQL info: ...` with a `(line:col)`
//! position).
//!
//! # How evaluation works
//!
//! Every selector's samples are fetched once per query, for the whole window the query needs
//! (`SeriesSource::select` is never called per step). A range query evaluates the expression at
//! each step; per-series cursors resume where the previous step's window ended (binary search when
//! time moves backwards), and a subquery's result grows step by step, so each absolute sub-step is
//! evaluated once per query, as Prometheus evaluates a subquery once over the whole range.
//!
//! # klaxon extension: string samples
//!
//! A series may carry string samples (`SampleValue::Str`). Rules:
//!
//! - An instant selector returns string samples like float samples, with `SampleValue::Str` values.
//! - `v == "literal"` / `v != "literal"` (either operand order) keep the string samples equal (not
//!   equal) to the literal, with all labels including the metric name, like a filtering comparison.
//!   With `bool` they yield 1/0 and drop the name. Float samples compared with a string are dropped.
//!   Between two vectors, `==` / `!=` compare two string samples by text; a string and a float never match.
//! - String samples are dropped by every numeric operation, function and aggregation, except:
//!   `count`, `group`, `count_values` (the string becomes the label value), `absent`,
//!   `present_over_time`, `absent_over_time`, `count_over_time`, `last_over_time`,
//!   `first_over_time`, `timestamp`, the label functions (`label_replace`, `label_join`), the sort
//!   functions (strings sort after floats) and the set operators `and` / `or` / `unless`, which only
//!   look at labels.

mod aggregate;
mod annotations;
mod binop;
mod engine;
mod functions;
mod range;
mod value;

#[cfg(test)]
mod tests;

use crate::expr::Expr;
use crate::model::{Labels, SampleValue};
use crate::store::SeriesSource;

/// One sample of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Series labels.
    pub labels: Labels,
    /// Evaluation timestamp (ms).
    pub t: i64,
    /// The value: float, or a string for klaxon's string series.
    pub value: SampleValue,
}

/// One series of a range-query result or range vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Series labels.
    pub labels: Labels,
    /// Points, time-ordered.
    pub points: Vec<(i64, SampleValue)>,
}

/// The result of evaluating an expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A float.
    Scalar(f64),
    /// A string.
    String(String),
    /// An instant vector.
    Vector(Vec<Sample>),
    /// A range vector / range query result.
    Matrix(Vec<Series>),
}

/// Knobs of the engine; defaults match Prometheus' and its test harness.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineOptions {
    /// How far back an instant selector looks for the latest sample (Prometheus: 5m).
    pub lookback_delta_ms: i64,
    /// Step of subqueries written without one (`x[1h:]`); Prometheus uses the rule evaluation interval.
    pub default_subquery_step_ms: i64,
    /// Upper bound on samples held at once, so one query cannot exhaust memory.
    pub max_samples: usize,
    /// Remove `__name__` at the end of evaluation rather than where it is dropped (Prometheus 3 harness default).
    pub delayed_name_removal: bool,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            lookback_delta_ms: 300_000,
            default_subquery_step_ms: 60_000,
            max_samples: 50_000_000,
            delayed_name_removal: true,
        }
    }
}

/// The query engine; cheap to share, holds only options (every query gets its own state).
#[derive(Debug, Clone)]
pub struct Engine {
    opts: EngineOptions,
}

/// A successful evaluation: the value plus Prometheus-style annotations.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The result.
    pub value: Value,
    /// `PromQL warning: ... (line:col)` annotations.
    pub warnings: Vec<String>,
    /// `PromQL info: ... (line:col)` annotations.
    pub infos: Vec<String>,
}

/// Why an evaluation failed; messages are worded as Prometheus words them.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EvalError {
    /// Several series on the "one" side share a match group.
    #[error(
        "found duplicate series for the match group {group} on the {side} hand-side of the operation: [{first}, {second}];many-to-many matching not allowed: matching labels must be unique on one side"
    )]
    ManyToMany {
        /// The matching labels, rendered as `{a="b"}`.
        group: String,
        /// `left` or `right`.
        side: &'static str,
        /// First duplicate series.
        first: String,
        /// Second duplicate series.
        second: String,
    },
    /// One-to-one matching found several left series for one match group.
    #[error(
        "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)"
    )]
    MultipleMatches,
    /// Many-to-one matching produced the same output series twice.
    #[error("multiple matches for labels: grouping labels must ensure unique matches")]
    GroupingNotUnique,
    /// Two output samples ended up with the same label set.
    #[error("vector cannot contain metrics with the same labelset")]
    DuplicateLabelset,
    /// The query would hold more than `max_samples` samples.
    #[error("query processing would load too many samples into memory in query execution")]
    TooManySamples,
    /// `topk`/`bottomk`/`limitk` got NaN as k.
    #[error("Parameter value is NaN")]
    NanParameter,
    /// A parameter that must fit an integer does not (`Scalar value 1e+300 overflows int64`).
    #[error("{0}")]
    ParameterOverflow(String),
    /// An invalid regular expression in `label_replace`.
    #[error("invalid regular expression in label_replace(): {0}")]
    InvalidRegex(String),
    /// An invalid label name given to a function or aggregation.
    #[error("{0}")]
    InvalidLabelName(String),
    /// An argument that Prometheus rejects at evaluation time (e.g. smoothing factors).
    #[error("{0}")]
    InvalidArgument(String),
    /// Bad query bounds (step, start/end).
    #[error("{0}")]
    InvalidQuery(String),
    /// An expression whose types do not fit (normally rejected by the checker first).
    #[error("{0}")]
    Type(String),
    /// A function the evaluator does not implement.
    #[error("unknown function with name {0:?}")]
    UnknownFunction(String),
}

impl Engine {
    /// Creates an engine with the given options.
    pub fn new(opts: EngineOptions) -> Self {
        Engine { opts }
    }

    /// The engine's options.
    pub fn options(&self) -> &EngineOptions {
        &self.opts
    }

    /// Evaluates `expr` at `t_ms`, as Prometheus' `/api/v1/query` does.
    pub fn instant(
        &self,
        src: &dyn SeriesSource,
        expr: &Expr,
        t_ms: i64,
    ) -> Result<Outcome, EvalError> {
        engine::run_instant(&self.opts, src, expr, t_ms, None)
    }

    /// Like [`Engine::instant`], with the query text so annotation positions are exact on multi-line queries.
    pub fn instant_with_text(
        &self,
        src: &dyn SeriesSource,
        expr: &Expr,
        t_ms: i64,
        text: &str,
    ) -> Result<Outcome, EvalError> {
        engine::run_instant(&self.opts, src, expr, t_ms, Some(text))
    }

    /// Evaluates `expr` at every step from `start_ms` to `end_ms`; the value is always a `Value::Matrix`
    /// (a scalar becomes one series with empty labels), series sorted by labels.
    pub fn range(
        &self,
        src: &dyn SeriesSource,
        expr: &Expr,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    ) -> Result<Outcome, EvalError> {
        engine::run_range(&self.opts, src, expr, start_ms, end_ms, step_ms, None)
    }

    /// Like [`Engine::range`], with the query text so annotation positions are exact on multi-line queries.
    pub fn range_with_text(
        &self,
        src: &dyn SeriesSource,
        expr: &Expr,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
        text: &str,
    ) -> Result<Outcome, EvalError> {
        engine::run_range(&self.opts, src, expr, start_ms, end_ms, step_ms, Some(text))
    }
}
