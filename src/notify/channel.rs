//! One ready-to-send integration ([`Channel`]): parsed templates plus its HTTP client or SMTP
//! transport. Sending renders and delivers once; queueing, retries and rate limits live in the
//! notifier.

use std::borrow::Cow;

use super::NotifierOptions;
use super::email::{EmailChannel, TransportCache};
use super::error::{NotifyError, SendError};
use super::slack::SlackChannel;
use super::templates::TemplateSet;
use super::webhook::WebhookChannel;
use crate::config::{IntegrationKind, IntegrationSpec};
use crate::dispatch::Notification;

#[derive(Debug)]
enum Imp {
    Email(Box<EmailChannel>),
    Slack(Box<SlackChannel>),
    Webhook(Box<WebhookChannel>),
}

/// A built integration: what `submit` queues for and `send_once` sends through.
#[derive(Debug)]
pub struct Channel {
    id: String,
    kind: String,
    send_resolved: bool,
    imp: Imp,
}

/// Why an integration cannot send, when it cannot (`unconfigured` or an unsupported kind).
pub fn unconfigured_reason(spec: &IntegrationSpec) -> Option<String> {
    if let Some(r) = &spec.unconfigured {
        return Some(r.clone());
    }
    match &spec.kind {
        IntegrationKind::Unsupported(kind) => {
            Some(format!("klaxon does not implement {kind} integrations"))
        }
        _ => None,
    }
}

impl Channel {
    /// Builds the integration (parses its templates against `templates`); `Ok(None)` when it
    /// cannot send (see [`unconfigured_reason`]).
    pub fn new(
        spec: &IntegrationSpec,
        templates: &TemplateSet,
        opts: &NotifierOptions,
    ) -> Result<Option<Channel>, NotifyError> {
        Self::build(spec, templates, opts, &mut TransportCache::new())
    }

    pub(crate) fn build(
        spec: &IntegrationSpec,
        templates: &TemplateSet,
        opts: &NotifierOptions,
        cache: &mut TransportCache,
    ) -> Result<Option<Channel>, NotifyError> {
        if unconfigured_reason(spec).is_some() {
            return Ok(None);
        }
        let timeout = opts.request_timeout_ms;
        let imp = match &spec.kind {
            IntegrationKind::Email(e) => Imp::Email(Box::new(EmailChannel::new(
                spec, e, templates, timeout, cache,
            )?)),
            IntegrationKind::Slack(s) => Imp::Slack(Box::new(SlackChannel::new(
                spec, s, &spec.http, templates, timeout,
            )?)),
            IntegrationKind::Webhook(w) => Imp::Webhook(Box::new(WebhookChannel::new(
                spec, w, &spec.http, templates, timeout,
            )?)),
            IntegrationKind::Unsupported(_) => return Ok(None),
        };
        Ok(Some(Channel {
            id: spec.id(),
            kind: spec.kind.name().to_string(),
            send_resolved: spec.send_resolved,
            imp,
        }))
    }

    /// The integration id (`receiver/kind[index]`).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The channel kind (`email`, `slack`, `webhook`).
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// `n` as this integration sends it: resolved alerts dropped unless `send_resolved`;
    /// `None` when nothing is left to send.
    pub fn filter<'a>(&self, n: &'a Notification) -> Option<Cow<'a, Notification>> {
        let n = if self.send_resolved || n.resolved().next().is_none() {
            Cow::Borrowed(n)
        } else {
            let mut f = n.clone();
            f.alerts.retain(|a| !a.resolved_at(n.now_ms));
            Cow::Owned(f)
        };
        (!n.alerts.is_empty()).then_some(n)
    }

    /// Renders and delivers `n` once (no retry); `now_ms` stamps the message. Sends nothing
    /// (and succeeds) when no alert is left after `send_resolved` filtering.
    pub async fn send(&self, n: &Notification, now_ms: i64) -> Result<(), SendError> {
        let Some(n) = self.filter(n) else {
            tracing::debug!(integration = %self.id, "nothing to send after send_resolved filtering");
            return Ok(());
        };
        match &self.imp {
            Imp::Email(e) => {
                let msg = e.render(&n, now_ms)?;
                e.send(msg).await
            }
            Imp::Slack(s) => {
                let payload = s.render(&n)?;
                s.send(payload, now_ms).await
            }
            Imp::Webhook(w) => {
                let body = w.render(&n)?;
                w.send(body, now_ms).await
            }
        }
    }

    /// The body this integration would send for `n` (JSON for Slack and webhooks, the text
    /// body for email), for previews and tests.
    pub fn preview(&self, n: &Notification) -> Result<String, SendError> {
        let Some(n) = self.filter(n) else {
            return Ok(String::new());
        };
        match &self.imp {
            Imp::Email(e) => e.preview(&n),
            Imp::Slack(s) => Ok(s.render(&n)?.to_string()),
            Imp::Webhook(w) => Ok(String::from_utf8_lossy(&w.render(&n)?).into_owned()),
        }
    }
}
