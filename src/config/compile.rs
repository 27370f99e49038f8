//! The delivery configuration after validation: receivers flattened into integrations with
//! global defaults applied, routes compiled to a tree, matchers compiled. Dispatch and notify
//! read only these types.
//!
//! Compilation is also the validation: `Config::compile_delivery` runs on every load, so
//! `klaxon check`, start-up and reload reject the same files. A missing setting (an unset
//! `${SLACK_WEBHOOK_URL}`) is never an error: the integration is kept and marked
//! `unconfigured` with the reason.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use super::delivery::{
    ChannelConfig, CorrelationConfig, EmailConfig, EscalationPolicy, HttpConfig, NotifyGlobal,
    RateLimit, Receiver, Secret, SlackConfig, StringList, TimeIntervalSet, WebhookConfig,
};
use super::route::{
    CompiledTimeIntervals, Problem, RouteRefs, compile_inhibit_rule, compile_tree, problem,
};
use super::timeinterval::compile_interval;
use super::{Config, ConfigError};
use crate::model::is_legacy_label_name;

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
// Built once per (re)load and shared; boxing the large variants would only add indirection.
#[allow(clippy::large_enum_variant)]
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

// ---------------------------------------------------------------------------------------------
// Compiling the configuration.

/// Receiver name of the synthesized root route when the file has neither `route` nor
/// `receivers` (alerts then reach only their rules' `channels`).
pub const DEFAULT_RECEIVER: &str = "default";

/// Alertmanager `global` keys klaxon accepts without using them (integrations it does not
/// implement, and settings of other deployments).
const KNOWN_GLOBAL_KEYS: &[&str] = &[
    "jira_api_url",
    "incidentio_url",
    "mattermost_webhook_url",
    "mattermost_webhook_url_file",
    "opsgenie_api_key",
    "opsgenie_api_key_file",
    "opsgenie_api_url",
    "pagerduty_url",
    "rocketchat_api_url",
    "rocketchat_token",
    "rocketchat_token_file",
    "rocketchat_token_id",
    "rocketchat_token_id_file",
    "slack_app_token",
    "slack_app_token_file",
    "slack_app_url",
    "smtp_auth_secret_file",
    "smtp_force_implicit_tls",
    "smtp_tls_config",
    "telegram_api_url",
    "telegram_bot_token",
    "telegram_bot_token_file",
    "victorops_api_key",
    "victorops_api_key_file",
    "victorops_api_url",
    "webex_api_url",
    "wechat_api_corp_id",
    "wechat_api_secret",
    "wechat_api_url",
];

/// Alertmanager's `send_resolved` default per unsupported integration kind.
fn unsupported_send_resolved_default(kind: &str) -> bool {
    !matches!(kind, "wechat" | "slack" | "email")
}

/// The default rate limit of an integration kind (guide: Slack 1/s burst 5, email 30/min).
pub fn default_rate_limit(kind: &str) -> Option<RateLimit> {
    match kind {
        "slack" => Some(RateLimit {
            limit: 1,
            per: super::delivery::Dur(1000),
            burst: Some(5),
        }),
        "email" => Some(RateLimit {
            limit: 30,
            per: super::delivery::Dur(60_000),
            burst: Some(30),
        }),
        _ => None,
    }
}

/// `limit: 0` means unlimited.
fn effective_rate_limit(r: Option<&RateLimit>, kind: &str) -> Option<RateLimit> {
    match r {
        Some(r) if r.limit == 0 => None,
        Some(r) => Some(r.clone()),
        None => default_rate_limit(kind),
    }
}

struct Ctx<'a> {
    cfg: &'a Config,
    base_dir: PathBuf,
}

impl Ctx<'_> {
    /// Why an empty field is empty: the unset variables it referenced, else the field name.
    fn why_empty(&self, paths: &[&str], field: &str) -> String {
        let vars = self.missing_vars(paths);
        if vars.is_empty() {
            format!("{field} is not set")
        } else {
            format!("{} not set", vars.join(", "))
        }
    }

    fn missing_vars(&self, paths: &[&str]) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for p in paths {
            for (path, vars) in &self.cfg.source.missing_env {
                let under = path == p
                    || path
                        .strip_prefix(p)
                        .is_some_and(|r| r.starts_with(['.', '[']));
                if under {
                    for v in vars {
                        if !out.contains(v) {
                            out.push(v.clone());
                        }
                    }
                }
            }
        }
        out
    }

    /// Reads a `*_file` setting relative to the config file.
    fn read_secret_file(&self, file: &str) -> Result<Secret, String> {
        let p = self.base_dir.join(file);
        std::fs::read_to_string(&p)
            .map(|s| Secret(s.trim().to_string()))
            .map_err(|e| format!("reading {}: {e}", p.display()))
    }
}

/// Collects reasons an integration cannot send.
#[derive(Default)]
struct Reasons(Vec<String>);

impl Reasons {
    fn push(&mut self, r: String) {
        if !self.0.contains(&r) {
            self.0.push(r);
        }
    }
    fn into_option(self) -> Option<String> {
        (!self.0.is_empty()).then(|| self.0.join("; "))
    }
}

fn check_url(url: &Secret, path: &str) -> Result<(), Problem> {
    if url.is_empty() {
        return Ok(());
    }
    match reqwest::Url::parse(url.expose().trim()) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(()),
        // Never echo the URL: webhook URLs carry their credentials.
        _ => Err(problem(path, "not a valid http(s) URL")),
    }
}

fn split_smarthost(s: &str, path: &str) -> Result<(String, u16), Problem> {
    let s = s.trim();
    let (host, port) = s
        .rsplit_once(':')
        .ok_or_else(|| problem(path, format!("address {s:?}: missing port in address")))?;
    let port: u16 = port
        .parse()
        .map_err(|_| problem(path, format!("address {s:?}: invalid port")))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Ok((host.to_string(), port))
}

impl Config {
    /// Validates the delivery half of the file and compiles it for dispatch and notify; the
    /// same call `klaxon check`, start-up and reload make, so all three agree.
    pub fn compile_delivery(&self) -> Result<CompiledDelivery, ConfigError> {
        self.compile_inner()
            .map_err(|p| self.located(&p.path, &p.message))
    }

    fn compile_inner(&self) -> Result<CompiledDelivery, Problem> {
        let base_dir = self
            .source
            .path
            .as_deref()
            .and_then(Path::parent)
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let ctx = Ctx {
            cfg: self,
            base_dir,
        };
        for key in self.global.notify.other.keys() {
            if !KNOWN_GLOBAL_KEYS.contains(&key.as_str()) {
                return Err(problem(
                    format!("global.{key}"),
                    format!("unknown field `{key}` in global"),
                ));
            }
        }

        // Time intervals (both spellings share one namespace).
        let mut time_intervals = HashMap::new();
        let sets = self
            .time_intervals
            .iter()
            .enumerate()
            .map(|(i, s)| (format!("time_intervals[{i}]"), s))
            .chain(
                self.mute_time_intervals
                    .iter()
                    .enumerate()
                    .map(|(i, s)| (format!("mute_time_intervals[{i}]"), s)),
            );
        for (path, set) in sets {
            let c = compile_interval_set(set, &path)?;
            if time_intervals.contains_key(&c.name) {
                return Err(problem(
                    format!("{path}.name"),
                    format!("time interval {:?} is not unique", c.name),
                ));
            }
            time_intervals.insert(c.name.clone(), c);
        }

        // Receivers and channels.
        let mut receivers = BTreeMap::new();
        for (i, r) in self.receivers.iter().enumerate() {
            let path = format!("receivers[{i}]");
            if r.name.is_empty() {
                return Err(problem(path, "missing name in receiver"));
            }
            if receivers.contains_key(&r.name) {
                return Err(problem(
                    format!("{path}.name"),
                    format!("notification config name {:?} is not unique", r.name),
                ));
            }
            let spec = compile_receiver(&ctx, r, &path)?;
            receivers.insert(r.name.clone(), spec);
        }
        for (name, ch) in &self.channels {
            let path = format!("channels.{name}");
            if receivers.contains_key(name) {
                return Err(problem(
                    path,
                    format!("channel {name:?} has the name of a receiver; names must be unique"),
                ));
            }
            let spec = compile_channel(&ctx, name, ch, &path)?;
            receivers.insert(name.clone(), spec);
        }

        // Escalation policies.
        let mut escalation_policies = HashMap::new();
        for (i, p) in self.escalation_policies.iter().enumerate() {
            let path = format!("escalation_policies[{i}]");
            if p.name.is_empty() {
                return Err(problem(path, "missing name in escalation policy"));
            }
            if escalation_policies.contains_key(&p.name) {
                return Err(problem(
                    format!("{path}.name"),
                    format!("escalation policy {:?} is not unique", p.name),
                ));
            }
            if p.steps.is_empty() {
                return Err(problem(
                    format!("{path}.steps"),
                    "an escalation policy needs at least one step",
                ));
            }
            let mut last = 0;
            for (j, step) in p.steps.iter().enumerate() {
                let sp = format!("{path}.steps[{j}]");
                if step.after.ms() < last {
                    return Err(problem(
                        format!("{sp}.after"),
                        "steps must be in increasing order of `after`",
                    ));
                }
                last = step.after.ms();
                if step.receivers.is_empty() {
                    return Err(problem(
                        format!("{sp}.receivers"),
                        "an escalation step needs at least one receiver",
                    ));
                }
                for (k, r) in step.receivers.iter().enumerate() {
                    if !receivers.contains_key(r) {
                        return Err(problem(
                            format!("{sp}.receivers[{k}]"),
                            format!(
                                "undefined receiver or channel {r:?} used in escalation policy"
                            ),
                        ));
                    }
                }
            }
            escalation_policies.insert(p.name.clone(), p.clone());
        }

        // Routing tree.
        let escalation_names: HashSet<String> = escalation_policies.keys().cloned().collect();
        let routes = match &self.route {
            Some(root) => {
                let exists = |n: &str| receivers.contains_key(n);
                compile_tree(
                    root,
                    &RouteRefs {
                        receivers: &exists,
                        intervals: &time_intervals,
                        escalations: &escalation_names,
                    },
                )?
            }
            None if !self.receivers.is_empty() => {
                return Err(problem("", "no route provided in config"));
            }
            None => {
                if !receivers.contains_key(DEFAULT_RECEIVER) {
                    receivers.insert(
                        DEFAULT_RECEIVER.to_string(),
                        ReceiverSpec {
                            name: DEFAULT_RECEIVER.to_string(),
                            integrations: Vec::new(),
                            from_channel: false,
                        },
                    );
                }
                let root = super::delivery::Route {
                    receiver: Some(DEFAULT_RECEIVER.to_string()),
                    ..Default::default()
                };
                let exists = |_: &str| true;
                compile_tree(
                    &root,
                    &RouteRefs {
                        receivers: &exists,
                        intervals: &time_intervals,
                        escalations: &escalation_names,
                    },
                )?
            }
        };

        let inhibit_rules = self
            .inhibit_rules
            .iter()
            .enumerate()
            .map(|(i, r)| compile_inhibit_rule(r, &format!("inhibit_rules[{i}]")))
            .collect::<Result<Vec<_>, _>>()?;

        let mut seen = HashSet::new();
        for (i, l) in self.correlation.labels.iter().enumerate() {
            let path = format!("correlation.labels[{i}]");
            if !is_legacy_label_name(l) {
                return Err(problem(path, format!("invalid label name {l:?}")));
            }
            if !seen.insert(l) {
                return Err(problem(path, format!("duplicated label {l:?}")));
            }
        }

        let mut template_files = Vec::new();
        for (i, pattern) in self.templates.iter().enumerate() {
            for file in super::glob::glob(pattern, &ctx.base_dir) {
                let text = std::fs::read_to_string(&file).map_err(|e| {
                    problem(
                        format!("templates[{i}]"),
                        format!("reading {}: {e}", file.display()),
                    )
                })?;
                template_files.push((file.display().to_string(), text));
            }
        }

        Ok(CompiledDelivery {
            routes,
            inhibit_rules,
            time_intervals,
            receivers,
            escalation_policies,
            correlation: self.correlation.clone(),
            global: self.global.notify.clone(),
            external_url: self.global.external_url.clone(),
            template_files,
        })
    }
}

fn compile_interval_set(
    set: &TimeIntervalSet,
    path: &str,
) -> Result<CompiledTimeIntervals, Problem> {
    if set.name.is_empty() {
        return Err(problem(path, "missing name in time interval"));
    }
    let intervals = set
        .time_intervals
        .iter()
        .enumerate()
        .map(|(i, ti)| {
            compile_interval(ti)
                .map_err(|e| problem(format!("{path}.time_intervals[{i}].{}", e.field), e.message))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(CompiledTimeIntervals {
        name: set.name.clone(),
        intervals,
    })
}

fn compile_receiver(ctx: &Ctx<'_>, r: &Receiver, path: &str) -> Result<ReceiverSpec, Problem> {
    let g = &ctx.cfg.global.notify;
    let mut integrations = Vec::new();
    let rate = |kind: &str| effective_rate_limit(r.rate_limit.as_ref(), kind);
    for (i, ec) in r.email_configs.iter().enumerate() {
        let p = format!("{path}.email_configs[{i}]");
        let (email, unconfigured) = email_from_config(ctx, ec, &p)?;
        integrations.push(IntegrationSpec {
            receiver: r.name.clone(),
            index: i,
            kind: IntegrationKind::Email(email),
            send_resolved: ec.send_resolved.unwrap_or(false),
            unconfigured,
            rate_limit: rate("email"),
            http: HttpConfig::default(),
        });
    }
    for (i, sc) in r.slack_configs.iter().enumerate() {
        let p = format!("{path}.slack_configs[{i}]");
        let mut sc = sc.clone();
        let mut reasons = Reasons::default();
        if sc.api_url.is_empty() && !sc.api_url_file.is_empty() {
            match ctx.read_secret_file(&sc.api_url_file) {
                Ok(s) => sc.api_url = s,
                Err(e) => reasons.push(e),
            }
        }
        if sc.api_url.is_empty() && sc.api_url_file.is_empty() {
            if !g.slack_api_url.is_empty() {
                sc.api_url = g.slack_api_url.clone();
            } else if !g.slack_api_url_file.is_empty() {
                match ctx.read_secret_file(&g.slack_api_url_file) {
                    Ok(s) => sc.api_url = s,
                    Err(e) => reasons.push(e),
                }
            }
        }
        check_url(&sc.api_url, &format!("{p}.api_url"))?;
        if sc.api_url.is_empty() && reasons.0.is_empty() {
            let why = ctx.why_empty(
                &[&format!("{p}.api_url"), "global.slack_api_url"],
                "api_url (or global.slack_api_url)",
            );
            reasons.push(why);
        }
        let http = sc
            .http_config
            .clone()
            .unwrap_or_else(|| g.http_config.clone());
        sc.http_config = Some(http.clone());
        integrations.push(IntegrationSpec {
            receiver: r.name.clone(),
            index: i,
            send_resolved: sc.send_resolved.unwrap_or(false),
            kind: IntegrationKind::Slack(sc),
            unconfigured: reasons.into_option(),
            rate_limit: rate("slack"),
            http,
        });
    }
    for (i, wc) in r.webhook_configs.iter().enumerate() {
        let p = format!("{path}.webhook_configs[{i}]");
        let mut wc = wc.clone();
        let mut reasons = Reasons::default();
        if wc.url.is_empty() && !wc.url_file.is_empty() {
            match ctx.read_secret_file(&wc.url_file) {
                Ok(s) => wc.url = s,
                Err(e) => reasons.push(e),
            }
        }
        check_url(&wc.url, &format!("{p}.url"))?;
        if wc.url.is_empty() && reasons.0.is_empty() {
            reasons.push(ctx.why_empty(&[&format!("{p}.url")], "url"));
        }
        let http = wc
            .http_config
            .clone()
            .unwrap_or_else(|| g.http_config.clone());
        wc.http_config = Some(http.clone());
        integrations.push(IntegrationSpec {
            receiver: r.name.clone(),
            index: i,
            send_resolved: wc.send_resolved.unwrap_or(true),
            kind: IntegrationKind::Webhook(wc),
            unconfigured: reasons.into_option(),
            rate_limit: rate("webhook"),
            http,
        });
    }
    for (key, value) in &r.other {
        let kind = key.trim_end_matches("_configs").to_string();
        let items: Vec<&serde_json::Value> = match value {
            serde_json::Value::Array(a) => a.iter().collect(),
            _ => {
                return Err(problem(
                    format!("{path}.{key}"),
                    format!("{key} must be a list"),
                ));
            }
        };
        for (i, item) in items.into_iter().enumerate() {
            let send_resolved = item
                .get("send_resolved")
                .and_then(serde_json::Value::as_bool)
                .unwrap_or_else(|| unsupported_send_resolved_default(&kind));
            integrations.push(IntegrationSpec {
                receiver: r.name.clone(),
                index: i,
                kind: IntegrationKind::Unsupported(kind.clone()),
                send_resolved,
                unconfigured: Some(format!("klaxon does not implement {kind}")),
                rate_limit: rate(&kind),
                http: g.http_config.clone(),
            });
        }
    }
    Ok(ReceiverSpec {
        name: r.name.clone(),
        integrations,
        from_channel: false,
    })
}

/// Resolves an Alertmanager email config against `global`.
fn email_from_config(
    ctx: &Ctx<'_>,
    ec: &EmailConfig,
    p: &str,
) -> Result<(EmailSpec, Option<String>), Problem> {
    let g = &ctx.cfg.global.notify;
    let mut reasons = Reasons::default();
    let (smarthost, smarthost_path) = if ec.smarthost.trim().is_empty() {
        (
            g.smtp_smarthost.as_str(),
            "global.smtp_smarthost".to_string(),
        )
    } else {
        (ec.smarthost.as_str(), format!("{p}.smarthost"))
    };
    let (host, port) = if smarthost.trim().is_empty() {
        (String::new(), 25)
    } else {
        split_smarthost(smarthost, &smarthost_path)?
    };
    if host.is_empty() {
        reasons.push(ctx.why_empty(
            &[&smarthost_path, &format!("{p}.smarthost")],
            "smarthost (or global.smtp_smarthost)",
        ));
    }
    let (from, from_path) = if ec.from.trim().is_empty() {
        (g.smtp_from.clone(), "global.smtp_from".to_string())
    } else {
        (ec.from.clone(), format!("{p}.from"))
    };
    if from.trim().is_empty() {
        reasons.push(ctx.why_empty(
            &[&from_path, &format!("{p}.from")],
            "from (or global.smtp_from)",
        ));
    }
    if ec.to.0.is_empty() {
        reasons.push(ctx.why_empty(&[&format!("{p}.to")], "to"));
    }
    let username = if ec.auth_username.is_empty() {
        g.smtp_auth_username.clone()
    } else {
        ec.auth_username.clone()
    };
    let mut password = ec.auth_password.clone();
    if password.is_empty() && !ec.auth_password_file.is_empty() {
        match ctx.read_secret_file(&ec.auth_password_file) {
            Ok(s) => password = s,
            Err(e) => reasons.push(e),
        }
    } else if password.is_empty() && ec.auth_password_file.is_empty() {
        if !g.smtp_auth_password.is_empty() {
            password = g.smtp_auth_password.clone();
        } else if !g.smtp_auth_password_file.is_empty() {
            match ctx.read_secret_file(&g.smtp_auth_password_file) {
                Ok(s) => password = s,
                Err(e) => reasons.push(e),
            }
        }
    }
    let global_bool = |k: &str| g.other.get(k).and_then(serde_json::Value::as_bool);
    let global_tls_skip = g
        .other
        .get("smtp_tls_config")
        .and_then(|v| v.get("insecure_skip_verify"))
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false);
    let require_tls = ec.require_tls.unwrap_or(g.smtp_require_tls);
    let implicit = ec
        .force_implicit_tls
        .or_else(|| global_bool("smtp_force_implicit_tls"))
        .unwrap_or(false);
    let tls = if implicit || port == 465 {
        SmtpTls::Implicit
    } else if require_tls {
        SmtpTls::StartTls
    } else {
        SmtpTls::None
    };
    let hello = [&ec.hello, &g.smtp_hello]
        .into_iter()
        .find(|h| !h.trim().is_empty())
        .cloned()
        .unwrap_or_else(|| "localhost".into());
    Ok((
        EmailSpec {
            host,
            port,
            tls,
            insecure_skip_verify: ec
                .tls_config
                .as_ref()
                .map_or(global_tls_skip, |t| t.insecure_skip_verify),
            username,
            password,
            hello,
            from,
            to: ec.to.0.clone(),
            headers: ec.headers.clone(),
            html: ec.html.clone(),
            text: ec.text.clone(),
        },
        reasons.into_option(),
    ))
}

/// Which fields belong to which channel kind (for "does not apply" errors).
fn channel_fields(ch: &ChannelConfig) -> Vec<(&'static str, bool, &'static [&'static str])> {
    vec![
        ("smtp_host", ch.smtp_host.is_some(), &["email"]),
        ("smtp_port", ch.smtp_port.is_some(), &["email"]),
        ("username", ch.username.is_some(), &["email", "slack"]),
        ("password", ch.password.is_some(), &["email"]),
        ("from_email", ch.from_email.is_some(), &["email"]),
        ("to_emails", ch.to_emails.is_some(), &["email"]),
        ("tls", ch.tls.is_some(), &["email"]),
        ("webhook_url", ch.webhook_url.is_some(), &["slack"]),
        ("channel", ch.channel.is_some(), &["slack"]),
        ("url", ch.url.is_some(), &["webhook"]),
        ("headers", !ch.headers.is_empty(), &["webhook"]),
        ("body", ch.body.is_some(), &["webhook"]),
    ]
}

fn parse_tls(
    v: Option<&serde_json::Value>,
    port: Option<u16>,
    path: &str,
) -> Result<SmtpTls, Problem> {
    use serde_json::Value;
    let explicit = match v {
        None | Some(Value::Null) => None,
        Some(Value::Bool(true)) => Some(SmtpTls::StartTls),
        Some(Value::Bool(false)) => Some(SmtpTls::None),
        Some(Value::String(s)) => Some(match s.trim().to_ascii_lowercase().as_str() {
            "" => {
                return Ok(if port == Some(465) {
                    SmtpTls::Implicit
                } else {
                    SmtpTls::StartTls
                });
            }
            "true" | "starttls" => SmtpTls::StartTls,
            "implicit" | "ssl" | "tls" => SmtpTls::Implicit,
            "false" | "none" | "plain" => SmtpTls::None,
            other => {
                return Err(problem(
                    path,
                    format!(
                        "invalid tls {other:?}: expected true/starttls, implicit/ssl, or false/none"
                    ),
                ));
            }
        }),
        Some(_) => {
            return Err(problem(
                path,
                "invalid tls: expected true/starttls, implicit/ssl, or false/none",
            ));
        }
    };
    Ok(match explicit {
        Some(SmtpTls::StartTls) if port == Some(465) => SmtpTls::Implicit,
        Some(t) => t,
        None if port == Some(465) => SmtpTls::Implicit,
        None => SmtpTls::StartTls,
    })
}

fn compile_channel(
    ctx: &Ctx<'_>,
    name: &str,
    ch: &ChannelConfig,
    path: &str,
) -> Result<ReceiverSpec, Problem> {
    let g = &ctx.cfg.global.notify;
    let kind = ch.kind.clone().unwrap_or_else(|| name.to_string());
    if !matches!(kind.as_str(), "email" | "slack" | "webhook") {
        let at = if ch.kind.is_some() {
            format!("{path}.type")
        } else {
            path.to_string()
        };
        return Err(problem(
            at,
            format!(
                "unknown channel type {kind:?}: expected email, slack or webhook (name the channel after its type or set `type:`)"
            ),
        ));
    }
    for (field, set, kinds) in channel_fields(ch) {
        if set && !kinds.contains(&kind.as_str()) {
            return Err(problem(
                format!("{path}.{field}"),
                format!("`{field}` does not apply to a {kind} channel"),
            ));
        }
    }
    let f = |field: &str| format!("{path}.{field}");
    let mut reasons = Reasons::default();
    let rate_limit = effective_rate_limit(ch.rate_limit.as_ref(), &kind);
    let send_resolved = ch.send_resolved.unwrap_or(true);
    let integration = match kind.as_str() {
        "email" => {
            let tls = parse_tls(ch.tls.as_ref(), ch.smtp_port, &f("tls"))?;
            let mut host = ch.smtp_host.clone().unwrap_or_default().trim().to_string();
            let mut port = ch
                .smtp_port
                .unwrap_or(if tls == SmtpTls::Implicit { 465 } else { 587 });
            if host.is_empty() && !g.smtp_smarthost.trim().is_empty() {
                let (h, p) = split_smarthost(&g.smtp_smarthost, "global.smtp_smarthost")?;
                host = h;
                if ch.smtp_port.is_none() {
                    port = p;
                }
            }
            if host.is_empty() {
                reasons
                    .push(ctx.why_empty(&[&f("smtp_host"), "global.smtp_smarthost"], "smtp_host"));
            }
            let mut from = ch.from_email.clone().unwrap_or_default().trim().to_string();
            if from.is_empty() {
                from = g.smtp_from.trim().to_string();
            }
            if from.is_empty() {
                reasons.push(ctx.why_empty(&[&f("from_email"), "global.smtp_from"], "from_email"));
            }
            let to = ch.to_emails.clone().unwrap_or(StringList(Vec::new())).0;
            if to.is_empty() {
                reasons.push(ctx.why_empty(&[&f("to_emails")], "to_emails"));
            }
            let username = match ch.username.as_deref().map(str::trim) {
                Some(u) if !u.is_empty() => u.to_string(),
                _ => g.smtp_auth_username.clone(),
            };
            let password = match &ch.password {
                Some(p) if !p.is_empty() => p.clone(),
                _ => g.smtp_auth_password.clone(),
            };
            let hello = if g.smtp_hello.trim().is_empty() {
                "localhost".to_string()
            } else {
                g.smtp_hello.clone()
            };
            IntegrationSpec {
                receiver: name.to_string(),
                index: 0,
                kind: IntegrationKind::Email(EmailSpec {
                    host,
                    port,
                    tls: if port == 465 && tls == SmtpTls::StartTls {
                        SmtpTls::Implicit
                    } else {
                        tls
                    },
                    insecure_skip_verify: false,
                    username,
                    password,
                    hello,
                    from,
                    to,
                    headers: BTreeMap::new(),
                    html: None,
                    text: None,
                }),
                send_resolved,
                unconfigured: None,
                rate_limit,
                http: HttpConfig::default(),
            }
        }
        "slack" => {
            let mut api_url = ch.webhook_url.clone().unwrap_or_default();
            if api_url.is_empty() {
                api_url = g.slack_api_url.clone();
            }
            check_url(&api_url, &f("webhook_url"))?;
            if api_url.is_empty() {
                reasons.push(
                    ctx.why_empty(&[&f("webhook_url"), "global.slack_api_url"], "webhook_url"),
                );
            }
            let http = g.http_config.clone();
            IntegrationSpec {
                receiver: name.to_string(),
                index: 0,
                kind: IntegrationKind::Slack(SlackConfig {
                    send_resolved: Some(send_resolved),
                    api_url,
                    http_config: Some(http.clone()),
                    channel: ch.channel.clone().unwrap_or_default(),
                    username: ch.username.clone().unwrap_or_default(),
                    ..SlackConfig::default()
                }),
                send_resolved,
                unconfigured: None,
                rate_limit,
                http,
            }
        }
        _ => {
            let url = ch.url.clone().unwrap_or_default();
            check_url(&url, &f("url"))?;
            if url.is_empty() {
                reasons.push(ctx.why_empty(&[&f("url")], "url"));
            }
            let http = g.http_config.clone();
            IntegrationSpec {
                receiver: name.to_string(),
                index: 0,
                kind: IntegrationKind::Webhook(WebhookConfig {
                    send_resolved: Some(send_resolved),
                    url,
                    http_config: Some(http.clone()),
                    headers: ch.headers.clone(),
                    body: ch.body.clone(),
                    ..WebhookConfig::default()
                }),
                send_resolved,
                unconfigured: None,
                rate_limit,
                http,
            }
        }
    };
    Ok(ReceiverSpec {
        name: name.to_string(),
        integrations: vec![IntegrationSpec {
            unconfigured: reasons.into_option(),
            ..integration
        }],
        from_channel: true,
    })
}

impl CompiledDelivery {
    /// Every integration that cannot send, with why (`receiver/kind[i]`, reason), for start-up
    /// logs and `klaxon check`.
    pub fn unconfigured(&self) -> Vec<(String, String)> {
        self.receivers
            .values()
            .flat_map(|r| r.integrations.iter())
            .filter_map(|i| i.unconfigured.as_ref().map(|u| (i.id(), u.clone())))
            .collect()
    }

    /// Whether `name` is a receiver or channel rules and escalation steps may name.
    pub fn has_receiver(&self, name: &str) -> bool {
        self.receivers.contains_key(name)
    }
}
