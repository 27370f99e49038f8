//! The evaluator: the meaning of an expression at a time (instant) or over a range of times.

use crate::model::{Labels, SampleValue};

/// One float sample of an instant vector.
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
