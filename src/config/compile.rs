//! The delivery configuration after validation: receivers flattened into integrations with
//! global defaults applied, routes compiled to a tree, matchers compiled. Dispatch and notify
//! read only these types.

use std::collections::{BTreeMap, HashMap};

use super::delivery::{
    CorrelationConfig, EscalationPolicy, HttpConfig, NotifyGlobal, RateLimit, Secret, SlackConfig,
    WebhookConfig,
};

/// How an SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// STARTTLS after connecting (required unless `require_tls: false`).
    StartTls,
    /// TLS from the first byte (port 465).
    Implicit,
    /// Plain text (only when explicitly configured).
    None,
}

/// A fully resolved email integration.
#[derive(Debug, Clone, PartialEq)]
pub struct EmailSpec {
    /// SMTP host.
    pub host: String,
    /// SMTP port.
    pub port: u16,
    /// Transport security.
    pub tls: SmtpTls,
    /// Skip certificate verification.
    pub insecure_skip_verify: bool,
    /// SMTP AUTH user; no AUTH when empty.
    pub username: String,
    /// SMTP AUTH password.
    pub password: Secret,
    /// EHLO name.
    pub hello: String,
    /// Sender.
    pub from: String,
    /// Recipients.
    pub to: Vec<String>,
    /// Extra headers (`Subject` overrides the subject template).
    pub headers: BTreeMap<String, String>,
    /// HTML body template (default template when `None`).
    pub html: Option<String>,
    /// Text body template (default template when `None`).
    pub text: Option<String>,
}

/// What kind of integration, with its resolved settings.
#[derive(Debug, Clone, PartialEq)]
pub enum IntegrationKind {
    /// SMTP email.
    Email(EmailSpec),
    /// Slack incoming webhook; `api_url` and `http_config` already defaulted from `global`.
    Slack(SlackConfig),
    /// Generic webhook; `http_config` already defaulted from `global`.
    Webhook(WebhookConfig),
    /// An Alertmanager integration klaxon does not implement (`pagerduty`, ...).
    Unsupported(String),
}

impl IntegrationKind {
    /// Short name used in metrics and logs (`email`, `slack`, `webhook`, `pagerduty`...).
    pub fn name(&self) -> &str {
        match self {
            IntegrationKind::Email(_) => "email",
            IntegrationKind::Slack(_) => "slack",
            IntegrationKind::Webhook(_) => "webhook",
            IntegrationKind::Unsupported(n) => n,
        }
    }
}

/// One integration of a receiver; the unit the notification log and retries work on.
#[derive(Debug, Clone, PartialEq)]
pub struct IntegrationSpec {
    /// Owning receiver.
    pub receiver: String,
    /// Position within the receiver's integrations of the same kind (`email_configs[1]`).
    pub index: usize,
    /// Kind and settings.
    pub kind: IntegrationKind,
    /// Notify when alerts resolve.
    pub send_resolved: bool,
    /// Why it cannot send (missing URL, host...), when it cannot; alerts for it are kept and
    /// counted.
    pub unconfigured: Option<String>,
    /// Effective rate limit (receiver's, channel's, or the kind's default); `None` = unlimited.
    pub rate_limit: Option<RateLimit>,
    /// Effective HTTP client settings for HTTP kinds.
    pub http: HttpConfig,
}

impl IntegrationSpec {
    /// Stable id for logs, metrics and the notification log: `receiver/kind[index]`.
    pub fn id(&self) -> String {
        format!("{}/{}[{}]", self.receiver, self.kind.name(), self.index)
    }
}

/// A receiver with its integrations flattened in configuration order.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceiverSpec {
    /// Name routes, rules and escalation steps refer to.
    pub name: String,
    /// Integrations, in order: email, slack, webhook, then unsupported ones.
    pub integrations: Vec<IntegrationSpec>,
    /// Built from the guide's `channels:` section rather than `receivers:`.
    pub from_channel: bool,
}

/// Everything dispatch and notify need, compiled once per (re)load.
#[derive(Debug, Clone)]
pub struct CompiledDelivery {
    /// The routing tree.
    pub routes: super::route::RouteTree,
    /// Inhibition rules with compiled matchers.
    pub inhibit_rules: Vec<super::route::CompiledInhibitRule>,
    /// Named time intervals.
    pub time_intervals: HashMap<String, super::route::CompiledTimeIntervals>,
    /// Receivers (from `receivers:` and from `channels:`), by name.
    pub receivers: BTreeMap<String, ReceiverSpec>,
    /// Escalation policies by name.
    pub escalation_policies: HashMap<String, EscalationPolicy>,
    /// Correlation settings.
    pub correlation: CorrelationConfig,
    /// Alertmanager globals (resolve_timeout...).
    pub global: NotifyGlobal,
    /// `.ExternalURL` for templates.
    pub external_url: String,
    /// Text of every file matched by `templates:` globs, with its path, for `define`d templates.
    pub template_files: Vec<(String, String)>,
}
