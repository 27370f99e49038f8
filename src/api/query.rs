//! Prometheus' query API: `/api/v1/query`, `/api/v1/query_range`, `/api/v1/series`,
//! `/api/v1/labels` and `/api/v1/label/{name}/values`, with Prometheus' JSON shapes.
//!
//! Evaluation runs on the blocking pool under the request's timeout. A query that times out is
//! answered with 503 at once; its evaluation still finishes in the background (the engine has no
//! cancellation hook) but is bounded by `max_samples`.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use serde_json::{Map, Value, json};

use super::params::Params;
use super::{ApiError, Shared};
use crate::eval::{EvalError, Outcome, Value as EvalValue};
use crate::expr::{Expr, parse_and_check, parse_duration};
use crate::model::{Labels, Matcher, SampleValue};
use crate::store::Store;
use crate::telemetry::metrics::QueryLabels;
use crate::telemetry::time::parse_rfc3339_ms;

/// Prometheus' cap on points per series in a range query.
const MAX_POINTS: i64 = 11_000;

/// Parses a `time`/`start`/`end` parameter: unix seconds (float) or RFC 3339.
pub fn parse_time(name: &str, s: &str) -> Result<i64, ApiError> {
    let bad = || {
        ApiError::bad_data(format!(
            "invalid parameter \"{name}\": cannot parse \"{s}\" to a valid timestamp"
        ))
    };
    if let Ok(f) = s.trim().parse::<f64>() {
        let ms = (f * 1000.0).round();
        if !ms.is_finite() || ms.abs() > 9.2e18 {
            return Err(bad());
        }
        return Ok(ms as i64);
    }
    parse_rfc3339_ms(s).ok_or_else(bad)
}

/// Parses a `step`/`timeout` parameter: a duration (`15s`, `1m30s`) or float seconds.
pub fn parse_duration_param(name: &str, s: &str) -> Result<i64, ApiError> {
    parse_duration(s).map_err(|_| {
        ApiError::bad_data(format!(
            "invalid parameter \"{name}\": cannot parse \"{s}\" to a valid duration"
        ))
    })
}

fn parse_query(params: &Params) -> Result<(String, Expr), ApiError> {
    let q = params
        .get("query")
        .ok_or_else(|| ApiError::bad_data("invalid parameter \"query\": query is empty"))?;
    let expr = parse_and_check(q).map_err(|d| {
        let (line, col) = d.line_col(q);
        ApiError::bad_data(format!(
            "invalid parameter \"query\": {line}:{col}: parse error: {}",
            d.message
        ))
    })?;
    Ok((q.to_string(), expr))
}

fn timeout_of(st: &Shared, params: &Params) -> Result<Duration, ApiError> {
    match params.get("timeout") {
        None => Ok(st.query_timeout),
        Some(s) => {
            let ms = parse_duration_param("timeout", s)?;
            if ms <= 0 {
                return Err(ApiError::bad_data(
                    "invalid parameter \"timeout\": timeout must be positive",
                ));
            }
            Ok(Duration::from_millis(ms.unsigned_abs()).min(st.query_timeout))
        }
    }
}

/// Formats a float the way Prometheus does (Go's `strconv.FormatFloat(f, 'f', -1, 64)`).
pub fn format_value(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f == f64::INFINITY {
        "+Inf".into()
    } else if f == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{f}")
    }
}

fn sample_value(v: &SampleValue) -> String {
    match v {
        SampleValue::Float(f) => format_value(*f),
        SampleValue::Str(s) => s.to_string(),
    }
}

/// A timestamp in ms as Prometheus' JSON number of seconds (`1435781451.781`).
fn json_time(ms: i64) -> Value {
    if ms % 1000 == 0 {
        Value::from(ms / 1000)
    } else {
        Value::from(ms as f64 / 1000.0)
    }
}

fn point(ms: i64, v: String) -> Value {
    Value::Array(vec![json_time(ms), Value::String(v)])
}

fn metric_json(l: &Labels) -> Value {
    Value::Object(
        l.iter()
            .map(|l| (l.name.to_string(), Value::from(&*l.value)))
            .collect::<Map<_, _>>(),
    )
}

/// The `data` object of a query result.
pub fn result_json(v: &EvalValue, t_ms: i64) -> Value {
    match v {
        EvalValue::Scalar(f) => {
            json!({"resultType": "scalar", "result": point(t_ms, format_value(*f))})
        }
        EvalValue::String(s) => json!({"resultType": "string", "result": point(t_ms, s.clone())}),
        EvalValue::Vector(samples) => json!({
            "resultType": "vector",
            "result": samples.iter().map(|s| json!({
                "metric": metric_json(&s.labels),
                "value": point(s.t, sample_value(&s.value)),
            })).collect::<Vec<_>>(),
        }),
        EvalValue::Matrix(series) => json!({
            "resultType": "matrix",
            "result": series.iter().map(|s| json!({
                "metric": metric_json(&s.labels),
                "values": s.points.iter().map(|(t, v)| point(*t, sample_value(v))).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        }),
    }
}

fn success(data: Value, warnings: Vec<String>, infos: Vec<String>) -> Json<Value> {
    let mut body = Map::new();
    body.insert("status".into(), "success".into());
    body.insert("data".into(), data);
    if !warnings.is_empty() {
        body.insert("warnings".into(), warnings.into());
    }
    if !infos.is_empty() {
        body.insert("infos".into(), infos.into());
    }
    Json(Value::Object(body))
}

/// Decrements the in-flight gauge when the evaluation ends, even if the request gave up waiting.
struct InFlight(Shared);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0
            .stats
            .queries_in_flight
            .fetch_sub(1, Ordering::Relaxed);
    }
}

/// Runs `f` on the blocking pool within `timeout`, with query bookkeeping.
async fn evaluate<F>(
    st: &Shared,
    kind: &'static str,
    timeout: Duration,
    f: F,
) -> Result<Outcome, ApiError>
where
    F: FnOnce(&Shared) -> Result<Outcome, EvalError> + Send + 'static,
{
    st.stats.queries.fetch_add(1, Ordering::Relaxed);
    st.stats.queries_in_flight.fetch_add(1, Ordering::Relaxed);
    let guard = InFlight(Arc::clone(st));
    let started = Instant::now();
    let task = tokio::task::spawn_blocking(move || {
        let r = f(&guard.0);
        drop(guard);
        r
    });
    let res = tokio::time::timeout(timeout, task).await;
    let secs = started.elapsed().as_secs_f64();
    st.metrics
        .query_duration
        .get_or_create(&QueryLabels { kind })
        .observe(secs);
    let out = match res {
        Err(_) => Err(ApiError::timeout(
            "query timed out in expression evaluation",
        )),
        Ok(Err(join)) => Err(ApiError::internal(format!(
            "query evaluation failed: {join}"
        ))),
        Ok(Ok(Err(e))) => Err(ApiError::execution(e.to_string())),
        Ok(Ok(Ok(o))) => Ok(o),
    };
    match &out {
        Ok(_) => tracing::debug!(
            event_type = "performance",
            kind,
            duration_ms = secs * 1000.0,
            "query evaluated"
        ),
        Err(e) => {
            st.stats.queries_failed.fetch_add(1, Ordering::Relaxed);
            if secs > 1.0 || e.status.is_server_error() {
                tracing::warn!(event_type = "performance", kind, duration_ms = secs * 1000.0, error = %e.message, "query failed");
            }
        }
    }
    out
}

/// `GET|POST /api/v1/query`.
pub async fn instant(
    State(st): State<Shared>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let params = Params::collect(raw.as_deref(), &headers, &body);
    let (text, expr) = parse_query(&params)?;
    let t = match params.get("time") {
        Some(s) => parse_time("time", s)?,
        None => st.clock.now_ms(),
    };
    let timeout = timeout_of(&st, &params)?;
    let o = evaluate(&st, "instant", timeout, move |st| {
        st.engine.instant_with_text(&*st.store, &expr, t, &text)
    })
    .await?;
    Ok(success(result_json(&o.value, t), o.warnings, o.infos))
}

/// `GET|POST /api/v1/query_range`.
pub async fn range(
    State(st): State<Shared>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let params = Params::collect(raw.as_deref(), &headers, &body);
    let (text, expr) = parse_query(&params)?;
    let required = |name: &str| {
        params
            .get(name)
            .ok_or_else(|| ApiError::bad_data(format!("invalid parameter \"{name}\": missing")))
    };
    let start = parse_time("start", required("start")?)?;
    let end = parse_time("end", required("end")?)?;
    if end < start {
        return Err(ApiError::bad_data(
            "invalid parameter \"end\": end timestamp must not be before start time",
        ));
    }
    let step = parse_duration_param("step", required("step")?)?;
    if step <= 0 {
        return Err(ApiError::bad_data(
            "invalid parameter \"step\": zero or negative query resolution step widths are not accepted. Try a positive integer",
        ));
    }
    if (end - start) / step > MAX_POINTS {
        return Err(ApiError::bad_data(
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
        ));
    }
    let timeout = timeout_of(&st, &params)?;
    let o = evaluate(&st, "range", timeout, move |st| {
        st.engine
            .range_with_text(&*st.store, &expr, start, end, step, &text)
    })
    .await?;
    Ok(success(result_json(&o.value, end), o.warnings, o.infos))
}

/// Matcher sets of the `match[]` parameters; each must be a plain series selector.
fn match_sets(params: &Params) -> Result<Vec<Vec<Matcher>>, ApiError> {
    params
        .all("match[]")
        .into_iter()
        .map(|m| match parse_and_check(m) {
            Ok(Expr::VectorSelector(vs)) => Ok(vs.matchers),
            Ok(_) => Err(ApiError::bad_data(format!(
                "invalid parameter \"match[]\": {m:?} is not a series selector"
            ))),
            Err(d) => Err(ApiError::bad_data(format!(
                "invalid parameter \"match[]\": {}",
                d.message
            ))),
        })
        .collect()
}

fn window(params: &Params) -> Result<(i64, i64), ApiError> {
    let start = match params.get("start") {
        Some(s) => parse_time("start", s)?,
        None => i64::MIN,
    };
    let end = match params.get("end") {
        Some(s) => parse_time("end", s)?,
        None => i64::MAX,
    };
    if end < start {
        return Err(ApiError::bad_data(
            "invalid parameter \"end\": end timestamp must not be before start time",
        ));
    }
    Ok((start, end))
}

/// Runs a metadata lookup once per `match[]` set on the blocking pool (it scans every shard) and
/// returns the sorted union of the answers, as Prometheus unions `match[]` selectors.
async fn union_per_set<T, F>(
    st: &Shared,
    sets: Vec<Vec<Matcher>>,
    (start, end): (i64, i64),
    lookup: F,
) -> Result<BTreeSet<T>, ApiError>
where
    T: Ord + Send + 'static,
    F: Fn(&Store, &[Matcher], i64, i64) -> Vec<T> + Send + 'static,
{
    let st = Arc::clone(st);
    tokio::task::spawn_blocking(move || {
        let mut all = BTreeSet::new();
        for m in &sets {
            all.extend(lookup(&st.store, m, start, end));
        }
        all
    })
    .await
    .map_err(|e| ApiError::internal(format!("lookup failed: {e}")))
}

/// `GET|POST /api/v1/series`.
pub async fn series(
    State(st): State<Shared>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let params = Params::collect(raw.as_deref(), &headers, &body);
    let sets = match_sets(&params)?;
    if sets.is_empty() {
        return Err(ApiError::bad_data("no match[] parameter provided"));
    }
    let found = union_per_set(&st, sets, window(&params)?, |store, m, start, end| {
        store.series(m, start, end)
    })
    .await?;
    let data: Vec<Value> = found.iter().map(metric_json).collect();
    Ok(success(Value::Array(data), vec![], vec![]))
}

/// `GET|POST /api/v1/labels`.
pub async fn labels(
    State(st): State<Shared>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let params = Params::collect(raw.as_deref(), &headers, &body);
    let mut sets = match_sets(&params)?;
    if sets.is_empty() {
        sets.push(Vec::new());
    }
    let names = union_per_set(&st, sets, window(&params)?, |store, m, start, end| {
        store.label_names(m, start, end)
    })
    .await?;
    Ok(success(
        Value::Array(names.into_iter().map(Value::from).collect()),
        vec![],
        vec![],
    ))
}

/// `GET /api/v1/label/{name}/values`.
pub async fn label_values(
    State(st): State<Shared>,
    Path(name): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let params = Params::collect(raw.as_deref(), &headers, &Bytes::new());
    if name.is_empty() {
        return Err(ApiError::bad_data(format!("invalid label name: {name:?}")));
    }
    let mut sets = match_sets(&params)?;
    if sets.is_empty() {
        sets.push(Vec::new());
    }
    let values = union_per_set(&st, sets, window(&params)?, move |store, m, start, end| {
        store.label_values(&name, m, start, end)
    })
    .await?;
    Ok(success(
        Value::Array(values.into_iter().map(Value::from).collect()),
        vec![],
        vec![],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_go() {
        assert_eq!(format_value(1.0), "1");
        assert_eq!(format_value(0.1), "0.1");
        assert_eq!(format_value(1e21), "1000000000000000000000");
        assert_eq!(format_value(f64::NAN), "NaN");
        assert_eq!(format_value(f64::NEG_INFINITY), "-Inf");
        assert_eq!(format_value(f64::INFINITY), "+Inf");
    }

    #[test]
    fn parses_times() {
        assert_eq!(parse_time("t", "1.5").unwrap(), 1500);
        assert_eq!(parse_time("t", "1970-01-01T00:00:02Z").unwrap(), 2000);
        assert!(parse_time("t", "nope").is_err());
        assert!(parse_time("t", "1e300").is_err());
        assert_eq!(json_time(1500), json!(1.5));
        assert_eq!(json_time(2000), json!(2));
    }
}
