//! klaxon's JSON push format, the one way string samples (`database_health = "unhealthy"`) arrive.
//!
//! ```json
//! {"samples": [
//!   {"metric": "database_health", "labels": {"db": "main"}, "value": "unhealthy"},
//!   {"metric": "queue_depth", "value": 12.5, "timestamp": 1700000000000}
//! ]}
//! ```
//!
//! - `metric` (string, required, non-empty) and `value` (required) per sample; `labels`
//!   (object of strings) and `timestamp` (integer milliseconds) are optional.
//! - A JSON number is a float sample. A JSON string is **always** a string sample, even
//!   `"NaN"` or `"1.5"`: the pusher says which it means by the JSON type.
//! - Unknown fields are errors, so typos do not silently drop data. Within one object a
//!   repeated key keeps its last value (standard JSON parser behaviour).

use serde_json::{Map, Value};

use super::series::{SeriesBuilder, check_body_len, too_many_samples};
use super::{DecodedSample, IngestError, IngestErrorKind, Limits, Location};
use crate::model::{METRIC_NAME, SampleValue};

/// Parses a JSON push body; samples without `timestamp` get `default_ts` (ms).
pub fn parse_json_push(
    body: &[u8],
    default_ts: i64,
    limits: &Limits,
) -> Result<Vec<DecodedSample>, IngestError> {
    check_body_len(body.len(), limits)?;
    let root: Value = serde_json::from_slice(body).map_err(|e| {
        let full = e.to_string();
        let msg = full
            .rsplit_once(" at line ")
            .map_or(full.as_str(), |(m, _)| m);
        IngestError::line(
            e.line().max(1),
            format!("invalid JSON at column {}: {msg}", e.column()),
        )
    })?;
    let syntax = |path: &str, msg: &str| IngestError::at(IngestErrorKind::Syntax, path, msg);
    let Value::Object(root) = root else {
        return Err(IngestError::whole(
            IngestErrorKind::Syntax,
            "expected a JSON object {\"samples\": [...]}",
        ));
    };
    if let Some(k) = root.keys().find(|k| *k != "samples") {
        return Err(syntax(k, "unknown field, expected \"samples\""));
    }
    let samples = match root.get("samples") {
        Some(Value::Array(a)) => a,
        Some(_) => return Err(syntax("samples", "expected an array")),
        None => {
            return Err(IngestError::whole(
                IngestErrorKind::Syntax,
                "missing field \"samples\"",
            ));
        }
    };
    if samples.len() > limits.max_samples {
        return Err(too_many_samples(
            limits,
            Location::Index(format!("samples[{}]", limits.max_samples)),
        ));
    }
    let mut series = SeriesBuilder::new(limits);
    let mut out = Vec::with_capacity(samples.len());
    for (i, s) in samples.iter().enumerate() {
        out.push(sample(i, s, default_ts, &mut series)?);
    }
    Ok(out)
}

/// `labels.job`, or `labels["a.b"]` for names that are not plain identifiers.
fn label_path(i: usize, name: &str) -> String {
    let plain = name
        .bytes()
        .enumerate()
        .all(|(k, b)| b == b'_' || b.is_ascii_alphabetic() || (k > 0 && b.is_ascii_digit()))
        && !name.is_empty();
    if plain {
        format!("samples[{i}].labels.{name}")
    } else {
        format!("samples[{i}].labels[{name:?}]")
    }
}

fn sample(
    i: usize,
    s: &Value,
    default_ts: i64,
    series: &mut SeriesBuilder<'_>,
) -> Result<DecodedSample, IngestError> {
    let at = |field: &str| format!("samples[{i}]{field}");
    let syntax = |path: String, msg: &str| IngestError::at(IngestErrorKind::Syntax, path, msg);
    let Value::Object(obj) = s else {
        return Err(syntax(at(""), "expected an object"));
    };
    if let Some(k) = obj
        .keys()
        .find(|k| !matches!(k.as_str(), "metric" | "labels" | "value" | "timestamp"))
    {
        return Err(syntax(
            at(&format!(".{k}")),
            "unknown field, expected metric, labels, value or timestamp",
        ));
    }
    let metric = match obj.get("metric") {
        Some(Value::String(m)) if !m.is_empty() => m.as_str(),
        Some(Value::String(_)) => return Err(syntax(at(".metric"), "empty metric name")),
        Some(_) => return Err(syntax(at(".metric"), "expected a string")),
        None => return Err(syntax(at(""), "missing field \"metric\"")),
    };
    let empty = Map::new();
    let labels = match obj.get("labels") {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(l)) => l,
        Some(_) => {
            return Err(syntax(
                at(".labels"),
                "expected an object of label names to string values",
            ));
        }
    };
    let mut pairs: Vec<(&str, &str)> = Vec::with_capacity(labels.len() + 1);
    pairs.push((METRIC_NAME, metric));
    for (k, v) in labels {
        if k == METRIC_NAME {
            return Err(syntax(
                label_path(i, k),
                "use the \"metric\" field for the metric name",
            ));
        }
        match v {
            Value::String(v) => pairs.push((k, v)),
            _ => return Err(syntax(label_path(i, k), "expected a string")),
        }
    }
    let value = match obj.get("value") {
        Some(Value::String(v)) => SampleValue::Str(v.as_str().into()),
        Some(Value::Number(n)) => match n.as_f64() {
            Some(f) => SampleValue::Float(f),
            None => return Err(syntax(at(".value"), "number out of range")),
        },
        Some(_) => return Err(syntax(at(".value"), "expected a number or a string")),
        None => return Err(syntax(at(""), "missing field \"value\"")),
    };
    let ts = match obj.get("timestamp") {
        None | Some(Value::Null) => default_ts,
        Some(Value::Number(n)) => match n.as_i64() {
            Some(t) => t,
            None => {
                return Err(syntax(
                    at(".timestamp"),
                    "expected integer milliseconds since the epoch",
                ));
            }
        },
        Some(_) => {
            return Err(syntax(
                at(".timestamp"),
                "expected integer milliseconds since the epoch",
            ));
        }
    };
    let labels = series.build(pairs.iter().copied()).map_err(|p| {
        let loc = match p.pair {
            Some(0) => at(".metric"),
            Some(j) => pairs
                .get(j)
                .map_or_else(|| at(""), |(k, _)| label_path(i, k)),
            None => at(""),
        };
        p.into_error(Location::Index(loc))
    })?;
    Ok((labels, ts, value))
}
