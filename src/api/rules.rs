//! Rule and alert endpoints in Prometheus' JSON shape: `GET /api/v1/rules`, `GET /api/v1/alerts`,
//! `GET /api/v1/status/reload`, and `POST /-/reload` (admin token when admin tokens are configured).
//!
//! klaxon extension: every rule carries `evaluations`, its last evaluations (oldest first) as
//! `{time, duration_seconds, samples, error}`.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use serde_json::{Map, Value, json};

use super::params::parse_form;
use super::{ApiError, Shared, auth};
use crate::alert::{ActiveAlert, AlertState};
use crate::model::SampleValue;
use crate::rules::group::{GroupStatus, RuleStatus};
use crate::rules::{ReloadStatus, Rule};
use crate::telemetry::time::format_rfc3339_ms;

/// Prometheus' rendering of a zero `time.Time` ("never evaluated").
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

fn ts_json(ms: Option<i64>) -> Value {
    Value::String(ms.map_or_else(|| ZERO_TIME.to_string(), format_rfc3339_ms))
}

fn pairs_json(p: &[(String, String)]) -> Value {
    Value::Object(
        p.iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
    )
}

fn map_json(m: &BTreeMap<String, String>) -> Value {
    Value::Object(
        m.iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
    )
}

/// Formats a float as Go's `strconv.FormatFloat(v, 'e', -1, 64)` (`1e+00`, `3.5e-02`).
pub fn format_float_e(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    let s = format!("{v:e}");
    match s.split_once('e') {
        Some((mant, exp)) => {
            let (sign, digits) = match exp.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', exp),
            };
            format!("{mant}e{sign}{digits:0>2}")
        }
        None => s,
    }
}

fn value_json(v: &SampleValue) -> Value {
    Value::String(match v {
        SampleValue::Float(f) => format_float_e(*f),
        SampleValue::Str(s) => s.to_string(),
    })
}

fn alert_json(a: &ActiveAlert) -> Value {
    let mut m = Map::new();
    m.insert("labels".into(), a.labels.to_json());
    m.insert("annotations".into(), map_json(&a.annotations));
    m.insert("state".into(), a.state.as_str().into());
    m.insert("activeAt".into(), ts_json(Some(a.active_at)));
    if let Some(k) = a.keep_firing_since {
        m.insert("keepFiringSince".into(), ts_json(Some(k)));
    }
    m.insert("value".into(), value_json(&a.value));
    Value::Object(m)
}

fn history_json(st: &RuleStatus) -> Value {
    Value::Array(
        st.history
            .iter()
            .map(|h| {
                json!({
                    "time": format_rfc3339_ms(h.time_ms),
                    "duration_seconds": h.duration.as_secs_f64(),
                    "samples": h.samples,
                    "error": h.error,
                })
            })
            .collect(),
    )
}

fn rule_json(rule: &Rule, st: &RuleStatus, exclude_alerts: bool) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), rule.name().into());
    match rule {
        Rule::Alerting(r) => {
            m.insert("query".into(), r.expr_text.clone().into());
            m.insert("duration".into(), json!(r.for_ms as f64 / 1000.0));
            m.insert(
                "keepFiringFor".into(),
                json!(r.keep_firing_for_ms as f64 / 1000.0),
            );
            m.insert("labels".into(), pairs_json(&r.labels));
            m.insert("annotations".into(), pairs_json(&r.annotations));
            if !exclude_alerts {
                m.insert(
                    "alerts".into(),
                    Value::Array(
                        st.alerts
                            .iter()
                            .filter(|a| a.state != AlertState::Inactive)
                            .map(alert_json)
                            .collect(),
                    ),
                );
            }
            m.insert("state".into(), st.state.as_str().into());
            m.insert("type".into(), "alerting".into());
        }
        Rule::Recording(r) => {
            m.insert("query".into(), r.expr_text.clone().into());
            m.insert("labels".into(), pairs_json(&r.labels));
            m.insert("type".into(), "recording".into());
        }
    }
    m.insert("health".into(), st.health.as_str().into());
    m.insert(
        "lastError".into(),
        st.last_error.clone().unwrap_or_default().into(),
    );
    m.insert(
        "evaluationTime".into(),
        json!(st.last_duration.as_secs_f64()),
    );
    m.insert("lastEvaluation".into(), ts_json(st.last_eval_ts));
    m.insert("evaluations".into(), history_json(st));
    Value::Object(m)
}

/// Filters of `/api/v1/rules`.
#[derive(Debug, Default)]
struct RuleFilter {
    kind: Option<String>,
    names: Vec<String>,
    groups: Vec<String>,
    files: Vec<String>,
    exclude_alerts: bool,
}

impl RuleFilter {
    fn parse(raw: Option<&str>) -> Result<Self, ApiError> {
        let mut f = RuleFilter::default();
        for (k, v) in raw.map(parse_form).unwrap_or_default() {
            match k.as_str() {
                "type" if !v.is_empty() => {
                    if v != "alert" && v != "record" {
                        return Err(ApiError::bad_data(format!("unsupported type {v:?}")));
                    }
                    f.kind = Some(v);
                }
                "rule_name[]" => f.names.push(v),
                "rule_group[]" => f.groups.push(v),
                "file[]" => f.files.push(v),
                "exclude_alerts" => f.exclude_alerts = v == "true" || v == "1",
                _ => {}
            }
        }
        Ok(f)
    }

    fn keeps_group(&self, g: &GroupStatus) -> bool {
        (self.groups.is_empty() || self.groups.contains(&g.group.name))
            && (self.files.is_empty()
                || self
                    .files
                    .iter()
                    .any(|f| *f == g.group.file.to_string_lossy()))
    }

    fn keeps_rule(&self, r: &Rule) -> bool {
        let kind_ok = !matches!(
            (self.kind.as_deref(), r),
            (Some("alert"), Rule::Recording(_)) | (Some("record"), Rule::Alerting(_))
        );
        kind_ok && (self.names.is_empty() || self.names.iter().any(|n| n == r.name()))
    }
}

/// `GET /api/v1/rules`: every group with its rules, health, alerts and recent evaluations.
pub async fn rules(
    State(st): State<Shared>,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let f = RuleFilter::parse(q.as_deref())?;
    let groups: Vec<Value> = st
        .rules
        .groups()
        .iter()
        .filter(|g| f.keeps_group(g))
        .filter_map(|g| {
            let rules: Vec<Value> = g
                .group
                .rules
                .iter()
                .zip(&g.rules)
                .filter(|(r, _)| f.keeps_rule(r))
                .map(|(r, s)| rule_json(r, s, f.exclude_alerts))
                .collect();
            let filtered = f.kind.is_some() || !f.names.is_empty();
            if filtered && rules.is_empty() {
                return None;
            }
            Some(json!({
                "name": g.group.name,
                "file": g.group.file.to_string_lossy(),
                "rules": rules,
                "interval": g.group.interval_ms as f64 / 1000.0,
                "limit": g.group.limit,
                "queryOffset": g.group.query_offset_ms as f64 / 1000.0,
                "evaluationTime": g.last_duration.as_secs_f64(),
                "lastEvaluation": ts_json(g.last_eval_ts),
            }))
        })
        .collect();
    Ok(Json(
        json!({"status": "success", "data": {"groups": groups}}),
    ))
}

/// `GET /api/v1/alerts`: every pending and firing alert.
pub async fn alerts(State(st): State<Shared>) -> Json<Value> {
    let alerts: Vec<Value> = st
        .rules
        .groups()
        .iter()
        .flat_map(|g| g.rules.iter())
        .flat_map(|r| r.alerts.iter())
        .filter(|a| a.state != AlertState::Inactive)
        .map(alert_json)
        .collect();
    Json(json!({"status": "success", "data": {"alerts": alerts}}))
}

fn reload_json(s: &ReloadStatus) -> Value {
    json!({
        "status": "success",
        "data": {
            "success": s.success,
            "lastReload": ts_json(s.last_reload_ms),
            "lastSuccess": ts_json(s.last_success_ms),
            "errors": s.errors,
        }
    })
}

/// `GET /api/v1/status/reload`: the outcome of the last rule reload.
pub async fn reload_status(State(st): State<Shared>) -> Json<Value> {
    Json(reload_json(&st.rules.reload_status()))
}

/// `POST /-/reload`: reloads the rule files now; 500 when the files are invalid (old rules kept).
pub async fn reload(State(st): State<Shared>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    auth::authorized(&st.auth.admin, &headers)?;
    let mgr = st.rules.clone();
    let status = tokio::task::spawn_blocking(move || mgr.reload())
        .await
        .map_err(|e| ApiError::internal(format!("reload task failed: {e}")))?;
    if status.success {
        Ok(Json(reload_json(&status)))
    } else {
        Err(ApiError::internal(format!(
            "failed to reload rules: {}",
            status.errors.join("; ")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_e_format() {
        assert_eq!(format_float_e(1.0), "1e+00");
        assert_eq!(format_float_e(3.5), "3.5e+00");
        assert_eq!(format_float_e(0.035), "3.5e-02");
        assert_eq!(format_float_e(1e300), "1e+300");
        assert_eq!(format_float_e(f64::INFINITY), "+Inf");
    }
}
