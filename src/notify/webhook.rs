//! Generic webhooks: Alertmanager's webhook JSON (version 4) by default, or klaxon's templated
//! `body`; `http_config` auth and headers plus klaxon's own `headers`.

use serde_json::{Map, Value as Json, json};

use super::data::Escape;
use super::data::{common, quote_meta, status_of};
use super::error::{NotifyError, SendError};
use super::gotime::{ZERO_TIME_MS, rfc3339};
use super::http::{build_client, config_headers, post, secret_or_file};
use super::templates::{Field, RenderData, TemplateSet};
use crate::config::delivery::{Secret, WebhookConfig};
use crate::config::{HttpConfig, IntegrationSpec};
use crate::dispatch::{Alert, Notification};

fn time_json(ms: i64) -> Json {
    Json::String(rfc3339(if ms == 0 { ZERO_TIME_MS } else { ms }))
}

/// One alert as Alertmanager's webhook (and template data) serialises it.
pub fn alert_json(a: &Alert, now_ms: i64) -> Json {
    json!({
        "status": status_of(a, now_ms),
        "labels": a.labels.to_json(),
        "annotations": a.annotations.to_json(),
        "startsAt": time_json(a.starts_at),
        "endsAt": time_json(a.ends_at),
        "generatorURL": a.generator_url,
        "fingerprint": a.fingerprint().to_string(),
    })
}

fn map_json(m: std::collections::BTreeMap<String, String>) -> Json {
    Json::Object(m.into_iter().map(|(k, v)| (k, Json::String(v))).collect())
}

/// The JSON body Alertmanager's webhook sends (`version` "4", `groupKey`, `truncatedAlerts`,
/// `status`, `receiver`, `groupLabels`, `commonLabels`, `commonAnnotations`, `externalURL`,
/// `alerts`), keeping at most `max_alerts` alerts (0 = all); plus klaxon's `related`,
/// `escalation` (`policy`, `step` counted from 1, `steps`) and `digestOf` only when set.
pub fn webhook_payload(n: &Notification, max_alerts: usize) -> Json {
    let keep = if max_alerts == 0 {
        n.alerts.len()
    } else {
        max_alerts.min(n.alerts.len())
    };
    let mut body = Map::new();
    body.insert("version".into(), json!("4"));
    body.insert("groupKey".into(), json!(n.group_key));
    body.insert("truncatedAlerts".into(), json!(n.alerts.len() - keep));
    body.insert("status".into(), json!(n.status()));
    body.insert("receiver".into(), json!(quote_meta(&n.receiver)));
    body.insert("groupLabels".into(), n.group_labels.to_json());
    body.insert(
        "commonLabels".into(),
        map_json(common(&n.alerts, |a| &a.labels)),
    );
    body.insert(
        "commonAnnotations".into(),
        map_json(common(&n.alerts, |a| &a.annotations)),
    );
    body.insert("externalURL".into(), json!(n.external_url));
    body.insert(
        "alerts".into(),
        Json::Array(
            n.alerts[..keep]
                .iter()
                .map(|a| alert_json(a, n.now_ms))
                .collect(),
        ),
    );
    if !n.related.is_empty() {
        body.insert(
            "related".into(),
            Json::Array(n.related.iter().map(|a| alert_json(a, n.now_ms)).collect()),
        );
    }
    if let Some(e) = &n.escalation {
        body.insert(
            "escalation".into(),
            json!({"policy": e.policy, "step": e.step + 1, "steps": e.steps}),
        );
    }
    if n.digest_of > 0 {
        body.insert("digestOf".into(), json!(n.digest_of));
    }
    Json::Object(body)
}

/// A ready webhook integration.
#[derive(Debug)]
pub(crate) struct WebhookChannel {
    client: reqwest::Client,
    url: Secret,
    headers: Vec<(String, Secret)>,
    body: Option<Field>,
    max_alerts: usize,
    timeout_ms: i64,
}

impl WebhookChannel {
    pub(crate) fn new(
        spec: &IntegrationSpec,
        cfg: &WebhookConfig,
        http: &HttpConfig,
        templates: &TemplateSet,
        default_timeout_ms: i64,
    ) -> Result<Self, NotifyError> {
        let id = spec.id();
        let timeout_ms = cfg.timeout.map_or(default_timeout_ms, |d| d.ms());
        let mut headers = config_headers(&id, http)?;
        headers.extend(cfg.headers.iter().map(|(k, v)| (k.clone(), v.clone())));
        for (name, _) in &headers {
            if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
                return Err(NotifyError::Config {
                    integration: id,
                    message: format!("invalid header name {name:?}"),
                });
            }
        }
        let body = cfg
            .body
            .as_deref()
            .map(|b| templates.compile(&format!("{id} body"), b, Escape::None))
            .transpose()?;
        Ok(WebhookChannel {
            client: build_client(&id, http, timeout_ms)?,
            url: secret_or_file(&id, "url", &cfg.url, &cfg.url_file)?,
            headers,
            body,
            max_alerts: usize::try_from(cfg.max_alerts).unwrap_or(usize::MAX),
            timeout_ms,
        })
    }

    /// Renders the body (template or Alertmanager JSON).
    pub(crate) fn render(&self, n: &Notification) -> Result<Vec<u8>, SendError> {
        match &self.body {
            Some(f) => f
                .render(&RenderData::new(n))
                .map(String::into_bytes)
                .map_err(|e| SendError::permanent(format!("rendering body: {e}"))),
            None => serde_json::to_vec(&webhook_payload(n, self.max_alerts))
                .map_err(|e| SendError::permanent(format!("encoding payload: {e}"))),
        }
    }

    pub(crate) async fn send(&self, body: Vec<u8>, now_ms: i64) -> Result<(), SendError> {
        if self.url.is_empty() {
            return Err(SendError::permanent("no webhook URL configured"));
        }
        post(
            &self.client,
            &self.url,
            &self.headers,
            body,
            self.timeout_ms,
            now_ms,
        )
        .await
        .map(|_| ())
    }
}
