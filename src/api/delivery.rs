//! Delivery endpoints: Alertmanager's v2 API (so Prometheus can post alerts here and `amtool`
//! works), the guide's manual trigger, acknowledgements and incidents.
//!
//! Alertmanager's endpoints answer in its own shapes (bare JSON, `{"silenceID": ..}`), not in
//! Prometheus' `{"status":"success","data":..}` envelope; klaxon's own v1 endpoints use the envelope.

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, Shared, auth};
use crate::dispatch::{AlertFilter, DispatchError, Fingerprint, PostableSilence, PostedAlert};
use crate::model::Matcher;
use crate::telemetry::time::{format_rfc3339_ms, parse_rfc3339_ms};

impl From<DispatchError> for ApiError {
    fn from(e: DispatchError) -> Self {
        match e {
            DispatchError::NotFound(_) => ApiError {
                status: StatusCode::NOT_FOUND,
                kind: super::ErrorType::NotFound,
                message: e.to_string(),
            },
            _ => ApiError::bad_data(e.to_string()),
        }
    }
}

/// Parses a JSON body, naming the field on error.
fn json_body<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de)
        .map_err(|e| ApiError::bad_data(format!("invalid body at {}: {}", e.path(), e.inner())))
}

fn query_pairs(raw: Option<&str>) -> Vec<(String, String)> {
    raw.map(super::params::parse_form).unwrap_or_default()
}

fn flag(pairs: &[(String, String)], key: &str) -> Result<bool, ApiError> {
    match pairs.iter().rev().find(|(k, _)| k == key) {
        None => Ok(true),
        Some((_, v)) => v
            .parse()
            .map_err(|_| ApiError::bad_data(format!("{key}: expected true or false, got {v:?}"))),
    }
}

/// `filter=` matchers (Alertmanager syntax, repeatable).
fn filter_matchers(pairs: &[(String, String)]) -> Result<Vec<Matcher>, ApiError> {
    let mut out = Vec::new();
    for (_, v) in pairs.iter().filter(|(k, _)| k == "filter") {
        let ms = crate::config::parse_matchers(v)
            .map_err(|e| ApiError::bad_data(format!("filter {v:?}: {e}")))?;
        out.extend(ms);
    }
    Ok(out)
}

fn alert_filter(raw: Option<&str>) -> Result<AlertFilter, ApiError> {
    let pairs = query_pairs(raw);
    let receiver = match pairs.iter().rev().find(|(k, _)| k == "receiver") {
        None => None,
        Some((_, r)) => Some(
            regex::Regex::new(&format!("^(?:{r})$"))
                .map_err(|e| ApiError::bad_data(format!("receiver {r:?}: {e}")))?,
        ),
    };
    Ok(AlertFilter {
        active: flag(&pairs, "active")?,
        silenced: flag(&pairs, "silenced")?,
        inhibited: flag(&pairs, "inhibited")?,
        unprocessed: flag(&pairs, "unprocessed")?,
        receiver,
        matchers: filter_matchers(&pairs)?,
    })
}

/// `GET /api/v2/alerts`.
pub async fn list_alerts(
    State(st): State<Shared>,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let filter = alert_filter(q.as_deref())?;
    Ok(Json(
        st.pipeline
            .dispatcher
            .alerts_json(&filter, st.clock.now_ms()),
    ))
}

/// `GET /api/v2/alerts/groups`.
pub async fn list_groups(
    State(st): State<Shared>,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let filter = alert_filter(q.as_deref())?;
    Ok(Json(
        st.pipeline
            .dispatcher
            .groups_json(&filter, st.clock.now_ms()),
    ))
}

/// One alert as Alertmanager's `postableAlert`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PostableAlertJson {
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(default, rename = "startsAt")]
    starts_at: Option<String>,
    #[serde(default, rename = "endsAt")]
    ends_at: Option<String>,
    #[serde(default, rename = "generatorURL")]
    generator_url: String,
}

/// An optional time of the v2 API; Go's zero time (`0001-01-01T00:00:00.000Z`, which amtool sends
/// for "not set") and anything before the epoch count as unset.
fn time_field(v: Option<&str>, what: &str) -> Result<Option<i64>, ApiError> {
    match v {
        None | Some("") => Ok(None),
        Some(s) => parse_rfc3339_ms(s)
            .map(|ms| (ms > 0).then_some(ms))
            .ok_or_else(|| ApiError::bad_data(format!("{what}: not an RFC 3339 time: {s:?}"))),
    }
}

/// `POST /api/v2/alerts`: Alertmanager's alert intake (Prometheus' notifier posts here).
pub async fn post_alerts(
    State(st): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    auth::authorized(&st.auth.ingest, &headers)?;
    let raw: Vec<PostableAlertJson> = json_body(&body)?;
    let mut posted = Vec::with_capacity(raw.len());
    for (i, a) in raw.into_iter().enumerate() {
        posted.push(PostedAlert {
            labels: a.labels,
            annotations: a.annotations,
            starts_at: time_field(a.starts_at.as_deref(), &format!("[{i}].startsAt"))?,
            ends_at: time_field(a.ends_at.as_deref(), &format!("[{i}].endsAt"))?,
            generator_url: a.generator_url,
        });
    }
    let now = st.clock.now_ms();
    let alerts = st.pipeline.dispatcher.normalize_posted(posted, now)?;
    st.pipeline.put_alerts(alerts);
    Ok(StatusCode::OK.into_response())
}

/// `GET /api/v2/status`: what `amtool config show` and Grafana read.
pub async fn status(State(st): State<Shared>) -> Json<Value> {
    let cfg = st.pipeline.config_status();
    let original = cfg
        .path
        .as_ref()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .map(|t| redact_original(&t))
        .unwrap_or_default();
    Json(json!({
        "cluster": {"status": "disabled", "peers": [], "name": ""},
        "versionInfo": {
            "version": env!("CARGO_PKG_VERSION"),
            "revision": "",
            "branch": "",
            "buildUser": "",
            "buildDate": "",
            "goVersion": "none (klaxon, Rust)",
        },
        "config": {"original": original},
        "uptime": format_rfc3339_ms(st.started_ms),
    }))
}

/// `GET /api/v2/receivers`.
pub async fn receivers(State(st): State<Shared>) -> Json<Value> {
    Json(st.pipeline.dispatcher.receivers_json())
}

/// `GET /api/v2/silences`.
pub async fn list_silences(
    State(st): State<Shared>,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let matchers = filter_matchers(&query_pairs(q.as_deref()))?;
    Ok(Json(
        st.pipeline
            .dispatcher
            .silences_json(&matchers, st.clock.now_ms()),
    ))
}

/// `POST /api/v2/silences`: create or update; answers `{"silenceID": ..}`.
pub async fn post_silence(
    State(st): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    auth::authorized(&st.auth.admin, &headers)?;
    let s: PostableSilence = json_body(&body)?;
    let id = st.pipeline.dispatcher.put_silence(s, st.clock.now_ms())?;
    st.pipeline.poke();
    Ok(Json(json!({ "silenceID": id })))
}

/// `GET /api/v2/silence/{id}`.
pub async fn get_silence(
    State(st): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    st.pipeline
        .dispatcher
        .silence_json(&id, st.clock.now_ms())
        .map(Json)
        .ok_or_else(|| DispatchError::NotFound(format!("silence {id}")).into())
}

/// `DELETE /api/v2/silence/{id}`: expires the silence.
pub async fn delete_silence(
    State(st): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    auth::authorized(&st.auth.admin, &headers)?;
    st.pipeline
        .dispatcher
        .expire_silence(&id, st.clock.now_ms())?;
    st.pipeline.poke();
    Ok(StatusCode::OK)
}

/// The guide's manual trigger body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TriggerJson {
    name: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    labels: BTreeMap<String, Value>,
    #[serde(default)]
    annotations: BTreeMap<String, Value>,
    #[serde(default)]
    severity: Option<String>,
}

/// Annotation and label values may be numbers or booleans in the guide's examples.
fn scalar_text(v: &Value, field: &str) -> Result<String, ApiError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        _ => Err(ApiError::bad_data(format!(
            "{field}: expected a string, number or boolean"
        ))),
    }
}

/// `POST /api/v1/alerts/trigger`: raises an alert by hand (`{name, message, labels,
/// annotations, severity}`); it resolves after `resolve_timeout` unless re-triggered.
pub async fn trigger(
    State(st): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    auth::authorized(&st.auth.ingest, &headers)?;
    let t: TriggerJson = json_body(&body)?;
    let mut labels = BTreeMap::new();
    for (k, v) in &t.labels {
        labels.insert(k.clone(), scalar_text(v, &format!("labels.{k}"))?);
    }
    labels.insert("alertname".to_string(), t.name.clone());
    if let Some(sev) = &t.severity {
        labels.insert("severity".to_string(), sev.clone());
    }
    let mut annotations = BTreeMap::new();
    for (k, v) in &t.annotations {
        annotations.insert(k.clone(), scalar_text(v, &format!("annotations.{k}"))?);
    }
    if !t.message.is_empty() {
        annotations.insert("message".to_string(), t.message.clone());
        annotations
            .entry("summary".to_string())
            .or_insert_with(|| t.message.clone());
    }
    let now = st.clock.now_ms();
    let posted = PostedAlert {
        labels,
        annotations,
        starts_at: None,
        ends_at: None,
        generator_url: String::new(),
    };
    let alerts = st.pipeline.dispatcher.normalize_posted(vec![posted], now)?;
    let fp = alerts.first().map(|a| a.fingerprint().to_string());
    st.pipeline.put_alerts(alerts);
    Ok(Json(json!({
        "status": "success",
        "data": {"fingerprint": fp, "alertname": t.name},
    })))
}

/// Body of an acknowledgement.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AckJson {
    by: String,
    #[serde(default)]
    comment: String,
}

/// `POST /api/v1/alerts/{fingerprint}/ack`: stops escalation for a firing alert.
pub async fn ack_alert(
    State(st): State<Shared>,
    headers: HeaderMap,
    Path(fp): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    auth::authorized(&st.auth.admin, &headers)?;
    let fp: Fingerprint = fp
        .parse()
        .map_err(|_| ApiError::bad_data(format!("fingerprint {fp:?}: expected 16 hex digits")))?;
    let a: AckJson = json_body(&body)?;
    let ack = st
        .pipeline
        .dispatcher
        .ack(fp, &a.by, &a.comment, st.clock.now_ms())?;
    st.pipeline.poke();
    Ok(Json(json!({"status": "success", "data": ack.to_json()})))
}

/// `POST /api/v1/alerts/groups/{id}/ack`: acknowledges every firing alert of a group.
pub async fn ack_group(
    State(st): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    auth::authorized(&st.auth.admin, &headers)?;
    let a: AckJson = json_body(&body)?;
    let acks = st
        .pipeline
        .dispatcher
        .ack_group(&id, &a.by, &a.comment, st.clock.now_ms())?;
    st.pipeline.poke();
    let data: Vec<Value> = acks.iter().map(|a| a.to_json()).collect();
    Ok(Json(json!({"status": "success", "data": data})))
}

/// `GET /api/v1/acks`: acknowledgements in force.
pub async fn acks(State(st): State<Shared>) -> Json<Value> {
    Json(json!({"status": "success", "data": st.pipeline.dispatcher.acks_json()}))
}

/// `GET /api/v1/incidents`: correlated alerts with their root cause.
pub async fn incidents(State(st): State<Shared>) -> Json<Value> {
    Json(json!({
        "status": "success",
        "data": st.pipeline.dispatcher.incidents_json(st.clock.now_ms()),
    }))
}

/// Keys whose values are secrets in Alertmanager and klaxon configs.
const SECRET_KEYS: &[&str] = &[
    "password",
    "auth_password",
    "smtp_auth_password",
    "credentials",
    "bearer_token",
    "api_url",
    "slack_api_url",
    "webhook_url",
    "url",
    "api_key",
    "routing_key",
    "service_key",
    "token",
    "secret",
    "smtp_auth_secret",
    "auth_secret",
    "authorization",
];

/// The config file text for `/api/v2/status`, with every secret-bearing value replaced by
/// `<secret>` (line based: `key: value` where `key` is a secret key or a header).
pub fn redact_original(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let trimmed = line.trim_start().trim_start_matches("- ");
        let redacted = trimmed.split_once(':').and_then(|(k, v)| {
            let key = k.trim().trim_matches(['"', '\'']).to_ascii_lowercase();
            let secret = SECRET_KEYS.contains(&key.as_str()) && !v.trim().is_empty();
            secret.then(|| {
                let indent = &line[..line.len() - line.trim_start().len()];
                let dash = if line.trim_start().starts_with("- ") {
                    "- "
                } else {
                    ""
                };
                format!("{indent}{dash}{}: <secret>", k.trim())
            })
        });
        out.push_str(redacted.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_zero_time_means_unset() {
        for zero in ["0001-01-01T00:00:00Z", "0001-01-01T00:00:00.000Z", ""] {
            assert_eq!(time_field(Some(zero), "endsAt").unwrap(), None, "{zero}");
        }
        assert_eq!(
            time_field(Some("2026-11-24T00:00:00Z"), "endsAt").unwrap(),
            Some(1_795_478_400_000)
        );
        assert!(time_field(Some("yesterday"), "endsAt").is_err());
    }

    #[test]
    fn redacts_secret_values_only() {
        let text = "global:\n  slack_api_url: 'https://hooks/x'\nreceivers:\n  - name: a\n    webhook_configs:\n      - url: http://h/x\n        password: hunter2\n";
        let r = redact_original(text);
        assert!(
            !r.contains("hooks/x") && !r.contains("http://h/x") && !r.contains("hunter2"),
            "{r}"
        );
        assert!(r.contains("- name: a"), "{r}");
        assert!(r.contains("      - url: <secret>"), "{r}");
    }
}
