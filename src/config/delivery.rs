//! The delivery half of the configuration file: an Alertmanager-compatible section (`route`,
//! `receivers`, `inhibit_rules`, `time_intervals`, `templates`, the notification fields of
//! `global`) plus klaxon's own `channels`, `escalation_policies`, `correlation` and rate limits.
//!
//! These are the types as written in YAML; `Config::compile_delivery` (in `config::compile`)
//! validates them and resolves defaults and cross references. Integrations klaxon does not implement
//! (`pagerduty_configs`, `opsgenie_configs`, ...) are accepted and kept as opaque values so
//! existing Alertmanager files load; alerts routed to them are counted as undeliverable.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A duration written as `30s`, `5m`, `1h30m`, `2d`; stored in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Dur(pub i64);

impl Dur {
    /// Milliseconds.
    pub fn ms(self) -> i64 {
        self.0
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let ms = crate::expr::parse_duration(&s).map_err(serde::de::Error::custom)?;
        if ms < 0 {
            return Err(serde::de::Error::custom(format!(
                "duration {s:?} must not be negative"
            )));
        }
        Ok(Dur(ms))
    }
}

impl Serialize for Dur {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::expr::format_duration(self.0))
    }
}

/// A value that must never appear in logs, errors or API output (passwords, webhook URLs,
/// tokens): `Debug`, `Display` and `Serialize` print `<secret>`.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(pub String);

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SecretVisitor)
    }
}

/// Accepts any scalar: `password:` with no value is an empty secret (as in Alertmanager), and an
/// all-digit password from `${SMTP_PASSWORD}` (typed as a number) is still a string.
struct SecretVisitor;

impl<'de> serde::de::Visitor<'de> for SecretVisitor {
    type Value = Secret;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Secret, E> {
        Ok(Secret(v.to_string()))
    }
    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Secret, E> {
        Ok(Secret(v))
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Secret, E> {
        Ok(Secret(v.to_string()))
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Secret, E> {
        Ok(Secret(v.to_string()))
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Secret, E> {
        Ok(Secret(v.to_string()))
    }
    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Secret, E> {
        Ok(Secret(v.to_string()))
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<Secret, E> {
        Ok(Secret::default())
    }
    fn visit_none<E: serde::de::Error>(self) -> Result<Secret, E> {
        Ok(Secret::default())
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Secret, D::Error> {
        d.deserialize_any(SecretVisitor)
    }
}

impl Secret {
    /// The real value, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// True when no value was configured (after `${VAR}` interpolation).
    pub fn is_empty(&self) -> bool {
        self.0.trim().is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<secret>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<secret>")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("<secret>")
    }
}

/// Debug for structs with an opaque `other` map: its values may be credentials of
/// integrations klaxon does not implement (`routing_key`, `api_key`, oauth2 secrets), so only
/// the keys are shown.
macro_rules! debug_hiding_other {
    ($ty:ident { $($field:ident),* $(,)? }) => {
        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($ty))
                    $(.field(stringify!($field), &self.$field))*
                    .field("other", &OpaqueKeys(&self.other))
                    .finish()
            }
        }
    };
}

struct OpaqueKeys<'a>(&'a BTreeMap<String, serde_json::Value>);

impl fmt::Debug for OpaqueKeys<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.keys().map(|k| (k, OpaquePlaceholder)))
            .finish()
    }
}

/// A YAML value klaxon accepts but does not interpret (Alertmanager settings of features it
/// does not implement); `Debug` hides it because it may hold credentials.
#[derive(Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(transparent)]
pub struct Opaque(pub serde_json::Value);

struct OpaquePlaceholder;

impl fmt::Debug for OpaquePlaceholder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<opaque>")
    }
}

impl fmt::Debug for Opaque {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<opaque>")
    }
}

debug_hiding_other!(NotifyGlobal {
    resolve_timeout,
    smtp_from,
    smtp_hello,
    smtp_smarthost,
    smtp_auth_username,
    smtp_auth_password,
    smtp_auth_password_file,
    smtp_auth_identity,
    smtp_auth_secret,
    smtp_require_tls,
    slack_api_url,
    slack_api_url_file,
    http_config
});

debug_hiding_other!(HttpConfig {
    basic_auth,
    authorization,
    bearer_token,
    http_headers,
    proxy_url,
    follow_redirects,
    tls_config
});

debug_hiding_other!(TlsConfig {
    insecure_skip_verify
});

debug_hiding_other!(Receiver {
    name,
    email_configs,
    slack_configs,
    webhook_configs,
    rate_limit
});

debug_hiding_other!(SlackConfig {
    send_resolved,
    api_url,
    api_url_file,
    http_config,
    channel,
    username,
    color,
    title,
    title_link,
    pretext,
    text,
    fallback,
    icon_emoji,
    icon_url,
    image_url,
    thumb_url
});

/// Either a YAML list of strings or one comma-separated string (`ALERT_TO_EMAILS=a@x,b@y`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(transparent)]
pub struct StringList(pub Vec<String>);

impl<'de> Deserialize<'de> for StringList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            One(String),
            Many(Vec<String>),
        }
        let items = match Raw::deserialize(d)? {
            Raw::One(s) => s.split(',').map(str::to_string).collect::<Vec<_>>(),
            Raw::Many(v) => v,
        };
        Ok(StringList(
            items
                .into_iter()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
        ))
    }
}

/// Alertmanager's `global` notification defaults (klaxon's own `external_labels` /
/// `external_url` live beside them in `config::GlobalConfig`).
#[derive(Clone, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct NotifyGlobal {
    /// An alert posted without `endsAt` is resolved this long after its last update.
    pub resolve_timeout: Dur,
    /// Default sender address for email.
    pub smtp_from: String,
    /// EHLO name.
    pub smtp_hello: String,
    /// Default `host:port` of the SMTP server.
    pub smtp_smarthost: String,
    /// Default SMTP AUTH user.
    pub smtp_auth_username: String,
    /// Default SMTP AUTH password.
    pub smtp_auth_password: Secret,
    /// File holding the SMTP AUTH password.
    pub smtp_auth_password_file: String,
    /// SMTP AUTH identity (PLAIN).
    pub smtp_auth_identity: String,
    /// SMTP CRAM-MD5 secret (accepted, not used).
    pub smtp_auth_secret: Secret,
    /// Require STARTTLS when the port is not 465.
    pub smtp_require_tls: bool,
    /// Default Slack incoming-webhook URL.
    pub slack_api_url: Secret,
    /// File holding the Slack URL.
    pub slack_api_url_file: String,
    /// Default HTTP client settings for every HTTP integration.
    pub http_config: HttpConfig,
    /// Settings of integrations klaxon does not implement, kept so Alertmanager files load.
    #[serde(flatten, skip_serializing)]
    pub other: BTreeMap<String, serde_json::Value>,
}

impl Default for NotifyGlobal {
    fn default() -> Self {
        NotifyGlobal {
            resolve_timeout: Dur(5 * 60_000),
            smtp_from: String::new(),
            smtp_hello: "localhost".into(),
            smtp_smarthost: String::new(),
            smtp_auth_username: String::new(),
            smtp_auth_password: Secret::default(),
            smtp_auth_password_file: String::new(),
            smtp_auth_identity: String::new(),
            smtp_auth_secret: Secret::default(),
            smtp_require_tls: true,
            slack_api_url: Secret::default(),
            slack_api_url_file: String::new(),
            http_config: HttpConfig::default(),
            other: BTreeMap::new(),
        }
    }
}

/// Alertmanager's `http_config`: headers and auth for outgoing requests.
#[derive(Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct HttpConfig {
    /// `Authorization: Basic`.
    pub basic_auth: Option<BasicAuth>,
    /// `Authorization: <type> <credentials>`.
    pub authorization: Option<Authorization>,
    /// Deprecated bearer token.
    pub bearer_token: Option<Secret>,
    /// Extra headers on every request.
    pub http_headers: BTreeMap<String, HeaderValue>,
    /// Proxy URL (accepted; requests go direct when it is unset).
    pub proxy_url: Option<String>,
    /// Follow 3xx redirects (default true).
    pub follow_redirects: Option<bool>,
    /// TLS settings (accepted; `insecure_skip_verify` is honoured).
    pub tls_config: Option<TlsConfig>,
    /// Anything else Alertmanager's HTTP client accepts (oauth2, ...), kept opaque.
    #[serde(flatten, skip_serializing)]
    pub other: BTreeMap<String, serde_json::Value>,
}

/// Basic-auth credentials.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct BasicAuth {
    /// User name.
    pub username: String,
    /// Password.
    pub password: Secret,
    /// File holding the password.
    pub password_file: String,
}

/// `Authorization` header credentials.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Authorization {
    /// Scheme, `Bearer` when empty.
    #[serde(rename = "type")]
    pub kind: String,
    /// Credentials.
    pub credentials: Secret,
    /// File holding the credentials.
    pub credentials_file: String,
}

/// One configured HTTP header: Alertmanager's `{values: [..]}` / `{secrets: [..]}` form or a
/// plain string.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum HeaderValue {
    /// `Header: value`.
    Plain(String),
    /// `Header: {values: [...], secrets: [...]}`.
    Structured {
        /// Public values.
        #[serde(default)]
        values: Vec<String>,
        /// Secret values.
        #[serde(default)]
        secrets: Vec<Secret>,
    },
}

/// TLS client settings.
#[derive(Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct TlsConfig {
    /// Skip certificate verification.
    pub insecure_skip_verify: bool,
    /// Everything else (ca_file, cert_file, server_name, ...), kept opaque.
    #[serde(flatten, skip_serializing)]
    pub other: BTreeMap<String, serde_json::Value>,
}

/// A node of the routing tree as written.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Route {
    /// Receiver name; inherited when empty.
    pub receiver: Option<String>,
    /// Labels that split alerts into groups; `['...']` groups by every label.
    pub group_by: Option<Vec<String>>,
    /// Legacy equality matchers.
    #[serde(rename = "match")]
    pub match_eq: BTreeMap<String, String>,
    /// Legacy regex matchers (anchored).
    pub match_re: BTreeMap<String, Option<String>>,
    /// Matchers in Alertmanager syntax: `severity="critical"`, `team=~"a|b"`.
    pub matchers: Vec<String>,
    /// Keep matching siblings after this route matched.
    #[serde(rename = "continue")]
    pub continue_matching: bool,
    /// Wait before the first notification of a new group.
    pub group_wait: Option<Dur>,
    /// Wait before notifying about changes to a group.
    pub group_interval: Option<Dur>,
    /// Wait before re-sending an unchanged group.
    pub repeat_interval: Option<Dur>,
    /// Names of time intervals when notifications are muted.
    pub mute_time_intervals: Vec<String>,
    /// Names of time intervals outside which notifications are muted.
    pub active_time_intervals: Vec<String>,
    /// klaxon: escalation policy for alerts that end at this route.
    pub escalation: Option<String>,
    /// Alertmanager's route labels for notification templates; inherited, overridable.
    pub labels: BTreeMap<String, String>,
    /// Child routes, tried in order.
    pub routes: Vec<Route>,
}

/// A named set of integrations.
#[derive(Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(default, from = "RawReceiver")]
pub struct Receiver {
    /// Unique name routes refer to.
    pub name: String,
    /// SMTP integrations.
    pub email_configs: Vec<EmailConfig>,
    /// Slack incoming-webhook integrations.
    pub slack_configs: Vec<SlackConfig>,
    /// Generic webhook integrations.
    pub webhook_configs: Vec<WebhookConfig>,
    /// klaxon: rate limit shared by every integration of this receiver.
    pub rate_limit: Option<RateLimit>,
    /// Integrations klaxon does not implement (`pagerduty_configs`, ...), kept opaque.
    #[serde(skip_serializing)]
    pub other: BTreeMap<String, serde_json::Value>,
}

/// Alertmanager integration lists klaxon accepts but does not implement.
pub const UNSUPPORTED_INTEGRATIONS: &[&str] = &[
    "discord_configs",
    "incidentio_configs",
    "jira_configs",
    "mattermost_configs",
    "msteams_configs",
    "msteamsv2_configs",
    "opsgenie_configs",
    "pagerduty_configs",
    "pushover_configs",
    "rocketchat_configs",
    "sns_configs",
    "telegram_configs",
    "victorops_configs",
    "webex_configs",
    "wechat_configs",
];

/// A receiver as written: every Alertmanager integration key is known, anything else is an
/// error naming the key.
#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawReceiver {
    name: String,
    email_configs: Vec<EmailConfig>,
    slack_configs: Vec<SlackConfig>,
    webhook_configs: Vec<WebhookConfig>,
    rate_limit: Option<RateLimit>,
    discord_configs: Option<serde_json::Value>,
    incidentio_configs: Option<serde_json::Value>,
    jira_configs: Option<serde_json::Value>,
    mattermost_configs: Option<serde_json::Value>,
    msteams_configs: Option<serde_json::Value>,
    msteamsv2_configs: Option<serde_json::Value>,
    opsgenie_configs: Option<serde_json::Value>,
    pagerduty_configs: Option<serde_json::Value>,
    pushover_configs: Option<serde_json::Value>,
    rocketchat_configs: Option<serde_json::Value>,
    sns_configs: Option<serde_json::Value>,
    telegram_configs: Option<serde_json::Value>,
    victorops_configs: Option<serde_json::Value>,
    webex_configs: Option<serde_json::Value>,
    wechat_configs: Option<serde_json::Value>,
}

impl From<RawReceiver> for Receiver {
    fn from(r: RawReceiver) -> Self {
        let other = [
            ("discord_configs", r.discord_configs),
            ("incidentio_configs", r.incidentio_configs),
            ("jira_configs", r.jira_configs),
            ("mattermost_configs", r.mattermost_configs),
            ("msteams_configs", r.msteams_configs),
            ("msteamsv2_configs", r.msteamsv2_configs),
            ("opsgenie_configs", r.opsgenie_configs),
            ("pagerduty_configs", r.pagerduty_configs),
            ("pushover_configs", r.pushover_configs),
            ("rocketchat_configs", r.rocketchat_configs),
            ("sns_configs", r.sns_configs),
            ("telegram_configs", r.telegram_configs),
            ("victorops_configs", r.victorops_configs),
            ("webex_configs", r.webex_configs),
            ("wechat_configs", r.wechat_configs),
        ]
        .into_iter()
        .filter_map(|(k, v)| Some((k.to_string(), v?)))
        .filter(|(_, v)| !v.is_null())
        .collect();
        Receiver {
            name: r.name,
            email_configs: r.email_configs,
            slack_configs: r.slack_configs,
            webhook_configs: r.webhook_configs,
            rate_limit: r.rate_limit,
            other,
        }
    }
}

/// Alertmanager's `email_configs` entry.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmailConfig {
    /// Notify when alerts resolve (default false for email, as in Alertmanager).
    pub send_resolved: Option<bool>,
    /// Recipients, comma-separated or a list.
    pub to: StringList,
    /// Sender; `global.smtp_from` when empty.
    pub from: String,
    /// EHLO name.
    pub hello: String,
    /// `host:port`; `global.smtp_smarthost` when empty.
    pub smarthost: String,
    /// SMTP AUTH user.
    pub auth_username: String,
    /// SMTP AUTH password.
    pub auth_password: Secret,
    /// File holding the password.
    pub auth_password_file: String,
    /// SMTP AUTH identity.
    pub auth_identity: String,
    /// SMTP CRAM-MD5 secret (accepted, not used).
    pub auth_secret: Secret,
    /// File holding the CRAM-MD5 secret (accepted, not used).
    pub auth_secret_file: String,
    /// Require STARTTLS (unless port 465, which is implicit TLS).
    pub require_tls: Option<bool>,
    /// Use TLS from the first byte whatever the port.
    pub force_implicit_tls: Option<bool>,
    /// Alertmanager's mail threading settings (accepted, not used).
    #[serde(skip_serializing)]
    pub threading: Option<Opaque>,
    /// TLS settings.
    pub tls_config: Option<TlsConfig>,
    /// Extra headers; `Subject` overrides the default subject template.
    pub headers: BTreeMap<String, String>,
    /// HTML body template.
    pub html: Option<String>,
    /// Text body template.
    pub text: Option<String>,
}

/// Alertmanager's `slack_configs` entry.
#[derive(Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct SlackConfig {
    /// Notify when alerts resolve (default false, as in Alertmanager).
    pub send_resolved: Option<bool>,
    /// Incoming-webhook URL; `global.slack_api_url` when empty.
    pub api_url: Secret,
    /// File holding the URL.
    pub api_url_file: String,
    /// HTTP client settings.
    pub http_config: Option<HttpConfig>,
    /// Channel override.
    pub channel: String,
    /// Bot user name.
    pub username: String,
    /// Attachment colour template.
    pub color: Option<String>,
    /// Title template.
    pub title: Option<String>,
    /// Title link template.
    pub title_link: Option<String>,
    /// Pretext template.
    pub pretext: Option<String>,
    /// Text template.
    pub text: Option<String>,
    /// Fallback template.
    pub fallback: Option<String>,
    /// Icon emoji.
    pub icon_emoji: String,
    /// Icon URL.
    pub icon_url: String,
    /// Image URL.
    pub image_url: String,
    /// Thumbnail URL.
    pub thumb_url: String,
    /// Everything else (fields, actions, ...), kept opaque.
    #[serde(flatten, skip_serializing)]
    pub other: BTreeMap<String, serde_json::Value>,
}

/// Alertmanager's `webhook_configs` entry plus klaxon's headers and templated body.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookConfig {
    /// Notify when alerts resolve (default true).
    pub send_resolved: Option<bool>,
    /// Target URL.
    pub url: Secret,
    /// File holding the URL.
    pub url_file: String,
    /// HTTP client settings.
    pub http_config: Option<HttpConfig>,
    /// Most alerts per message (0 = all).
    pub max_alerts: u64,
    /// Per-request timeout (default 10s).
    pub timeout: Option<Dur>,
    /// klaxon: extra request headers.
    pub headers: BTreeMap<String, Secret>,
    /// klaxon: Go-template body; Alertmanager's webhook JSON when unset.
    pub body: Option<String>,
}

/// Alertmanager's inhibition rule: mute targets while a matching source fires.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct InhibitRule {
    /// Legacy source equality matchers.
    pub source_match: BTreeMap<String, String>,
    /// Legacy source regex matchers.
    pub source_match_re: BTreeMap<String, Option<String>>,
    /// Source matchers.
    pub source_matchers: Vec<String>,
    /// Legacy target equality matchers.
    pub target_match: BTreeMap<String, String>,
    /// Legacy target regex matchers.
    pub target_match_re: BTreeMap<String, Option<String>>,
    /// Target matchers.
    pub target_matchers: Vec<String>,
    /// Labels whose values must be equal in source and target.
    pub equal: Vec<String>,
}

/// A named list of time ranges.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TimeIntervalSet {
    /// Name routes refer to.
    pub name: String,
    /// The ranges; the set matches when any range matches.
    pub time_intervals: Vec<TimeInterval>,
}

/// One time range in Alertmanager syntax; every given field must match.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TimeInterval {
    /// `HH:MM` ranges, e.g. `{start_time: "09:00", end_time: "17:00"}`.
    pub times: Vec<TimeRange>,
    /// `monday:friday`, `saturday`.
    pub weekdays: Vec<String>,
    /// `1:5`, `-3:-1`.
    pub days_of_month: Vec<String>,
    /// `january:march`, `1:3`.
    pub months: Vec<String>,
    /// `2024:2025`.
    pub years: Vec<String>,
    /// IANA zone name; UTC when empty (only `UTC`/`Local` and fixed offsets are supported).
    pub location: Option<String>,
}

/// `HH:MM`..`HH:MM` within a day.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TimeRange {
    /// Inclusive start.
    pub start_time: String,
    /// Exclusive end.
    pub end_time: String,
}

/// klaxon's simple channels, named by the guide's own fields; a rule's `channels: [email]`
/// reaches the entry of that name.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChannelConfig {
    /// `email`, `slack` or `webhook`; defaults to the entry's name.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// Email: SMTP server host.
    pub smtp_host: Option<String>,
    /// Email: SMTP port (465 = implicit TLS, else STARTTLS when `tls`).
    pub smtp_port: Option<u16>,
    /// Email: SMTP AUTH user; Slack: the bot's display name.
    pub username: Option<String>,
    /// Email: SMTP AUTH password.
    pub password: Option<Secret>,
    /// Email: sender.
    pub from_email: Option<String>,
    /// Email: recipients (list or comma-separated).
    pub to_emails: Option<StringList>,
    /// Email: `true`/`starttls`, `implicit`, or `false`/`none` (plain).
    pub tls: Option<serde_json::Value>,
    /// Slack: incoming-webhook URL.
    pub webhook_url: Option<Secret>,
    /// Slack: channel override.
    pub channel: Option<String>,
    /// Webhook: target URL.
    pub url: Option<Secret>,
    /// Webhook: extra headers.
    pub headers: BTreeMap<String, Secret>,
    /// Webhook: Go-template body.
    pub body: Option<String>,
    /// Notify when alerts resolve (default true for channels).
    pub send_resolved: Option<bool>,
    /// Rate limit for this channel (defaults: slack 1/s burst 5, email 30/min).
    pub rate_limit: Option<RateLimit>,
}

/// A token-bucket rate limit: `limit` notifications per `per`, bursting to `burst`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Notifications allowed per period; 0 disables limiting.
    pub limit: u32,
    /// The period (default 1s).
    #[serde(default = "one_second")]
    pub per: Dur,
    /// Burst size (default `limit`).
    #[serde(default)]
    pub burst: Option<u32>,
}

fn one_second() -> Dur {
    Dur(1000)
}

/// An escalation chain: receivers added step by step until the alert is acknowledged or
/// resolved.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct EscalationPolicy {
    /// Name routes and rules refer to with `escalation: NAME`.
    pub name: String,
    /// Steps in order; `after` counts from the group's first notification.
    pub steps: Vec<EscalationStep>,
    /// Start over from the first step after the last one.
    pub repeat: bool,
}

/// One escalation step.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct EscalationStep {
    /// Delay from the first notification.
    pub after: Dur,
    /// Receivers (or channel names) paged at this step.
    pub receivers: Vec<String>,
}

/// Correlation of related alerts into incidents, beyond `group_by`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct CorrelationConfig {
    /// Alerts sharing the value of any of these labels are related (e.g. `instance`).
    pub labels: Vec<String>,
    /// Hold a symptom's own notification this long while waiting for its root (default 0).
    pub hold: Dur,
}
