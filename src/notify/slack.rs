//! Slack incoming webhooks: one attachment in Alertmanager's shape, every text field a
//! template (defaults `slack.default.*`), colour `danger` while firing and `good` once resolved.

use serde_json::{Map, Value as Json, json};

use super::data::Escape;
use super::error::{NotifyError, SendError};
use super::http::{build_client, config_headers, post, secret_or_file};
use super::templates::{Field, RenderData, TemplateSet};
use crate::config::delivery::{Secret, SlackConfig};
use crate::config::{HttpConfig, IntegrationSpec};
use crate::dispatch::Notification;

/// The templated fields, in payload order.
const FIELDS: &[&str] = &[
    "channel",
    "username",
    "icon_emoji",
    "icon_url",
    "title",
    "title_link",
    "pretext",
    "text",
    "fallback",
    "color",
    "image_url",
    "thumb_url",
    "footer",
];

/// A ready Slack integration.
#[derive(Debug)]
pub(crate) struct SlackChannel {
    client: reqwest::Client,
    url: Secret,
    headers: Vec<(String, Secret)>,
    fields: Vec<(&'static str, Field)>,
    mrkdwn_in: Json,
    passthrough: Map<String, Json>,
    timeout_ms: i64,
}

fn or_default(v: &str, name: &str) -> String {
    if v.is_empty() {
        format!("{{{{ template \"slack.default.{name}\" . }}}}")
    } else {
        v.to_string()
    }
}

fn opt_default(v: &Option<String>, name: &str) -> String {
    match v {
        Some(s) => s.clone(),
        None => format!("{{{{ template \"slack.default.{name}\" . }}}}"),
    }
}

impl SlackChannel {
    pub(crate) fn new(
        spec: &IntegrationSpec,
        cfg: &SlackConfig,
        http: &HttpConfig,
        templates: &TemplateSet,
        timeout_ms: i64,
    ) -> Result<Self, NotifyError> {
        let id = spec.id();
        let text_of = |name: &str| -> String {
            match name {
                "channel" => cfg.channel.clone(),
                "username" => or_default(&cfg.username, "username"),
                "icon_emoji" => or_default(&cfg.icon_emoji, "iconemoji"),
                "icon_url" => or_default(&cfg.icon_url, "iconurl"),
                "title" => opt_default(&cfg.title, "title"),
                "title_link" => opt_default(&cfg.title_link, "titlelink"),
                "pretext" => opt_default(&cfg.pretext, "pretext"),
                "text" => opt_default(&cfg.text, "text"),
                "fallback" => opt_default(&cfg.fallback, "fallback"),
                "color" => opt_default(&cfg.color, "color"),
                "image_url" => cfg.image_url.clone(),
                "thumb_url" => cfg.thumb_url.clone(),
                "footer" => cfg
                    .other
                    .get("footer")
                    .and_then(Json::as_str)
                    .unwrap_or("")
                    .to_string(),
                _ => String::new(),
            }
        };
        let mut fields = Vec::with_capacity(FIELDS.len());
        for name in FIELDS {
            let f = templates.compile(&format!("{id} {name}"), &text_of(name), Escape::None)?;
            fields.push((*name, f));
        }
        let mrkdwn_in = cfg
            .other
            .get("mrkdwn_in")
            .cloned()
            .unwrap_or_else(|| json!(["fallback", "pretext", "text"]));
        let passthrough = [
            "fields",
            "actions",
            "callback_id",
            "short_fields",
            "link_names",
        ]
        .iter()
        .filter_map(|k| cfg.other.get(*k).map(|v| (k.to_string(), v.clone())))
        .collect();
        Ok(SlackChannel {
            client: build_client(&id, http, timeout_ms)?,
            url: secret_or_file(&id, "api_url", &cfg.api_url, &cfg.api_url_file)?,
            headers: config_headers(&id, http)?,
            fields,
            mrkdwn_in,
            passthrough,
            timeout_ms,
        })
    }

    /// Renders the JSON payload.
    pub(crate) fn render(&self, n: &Notification) -> Result<Json, SendError> {
        let data = RenderData::new(n);
        let mut vals = Map::new();
        for (name, f) in &self.fields {
            let v = f
                .render(&data)
                .map_err(|e| SendError::permanent(format!("rendering {name}: {e}")))?;
            vals.insert(name.to_string(), Json::String(v));
        }
        let take = |k: &str| vals.get(k).cloned().unwrap_or(Json::Null);
        let mut att = Map::new();
        for k in [
            "title",
            "title_link",
            "pretext",
            "text",
            "fallback",
            "color",
            "image_url",
            "thumb_url",
            "footer",
        ] {
            let v = take(k);
            if v.as_str().is_some_and(|s| !s.is_empty())
                || matches!(k, "title" | "text" | "fallback" | "color")
            {
                att.insert(k.into(), v);
            }
        }
        att.insert("mrkdwn_in".into(), self.mrkdwn_in.clone());
        for k in ["fields", "actions", "callback_id", "short_fields"] {
            if let Some(v) = self.passthrough.get(k) {
                att.insert(k.into(), v.clone());
            }
        }
        let mut body = Map::new();
        for k in ["channel", "username", "icon_emoji", "icon_url"] {
            let v = take(k);
            if v.as_str().is_some_and(|s| !s.is_empty()) {
                body.insert(k.into(), v);
            }
        }
        if let Some(v) = self.passthrough.get("link_names") {
            body.insert("link_names".into(), v.clone());
        }
        body.insert("attachments".into(), Json::Array(vec![Json::Object(att)]));
        Ok(Json::Object(body))
    }

    pub(crate) async fn send(&self, payload: Json, now_ms: i64) -> Result<(), SendError> {
        if self.url.is_empty() {
            return Err(SendError::permanent("no Slack api_url configured"));
        }
        let body = serde_json::to_vec(&payload)
            .map_err(|e| SendError::permanent(format!("encoding payload: {e}")))?;
        let answer = post(
            &self.client,
            &self.url,
            &self.headers,
            body,
            self.timeout_ms,
            now_ms,
        )
        .await?;
        // The Web API (chat.postMessage) answers 200 with {"ok": false, "error": ...}.
        if answer.body.trim_start().starts_with('{')
            && let Ok(v) = serde_json::from_str::<Json>(&answer.body)
            && v.get("ok") == Some(&Json::Bool(false))
        {
            let err = v.get("error").and_then(Json::as_str).unwrap_or("unknown");
            return Err(SendError::permanent(format!("Slack API error: {err}")));
        }
        Ok(())
    }
}
