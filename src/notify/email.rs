//! Email over SMTP with `lettre`: STARTTLS, implicit TLS or plain, optional AUTH, a
//! `multipart/alternative` text + HTML body, templated subject, headers and addresses.
//! Transports are pooled and shared by integrations with the same SMTP settings.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailboxes, MultiPart, SinglePart};
use lettre::transport::smtp::AsyncSmtpTransport;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncTransport, Message, Tokio1Executor};

use super::data::Escape;
use super::error::{NotifyError, SendError, redact};
use super::retry::smtp_code_retryable;
use super::templates::{Field, RenderData, TemplateSet};
use crate::config::delivery::Secret;
use crate::config::{EmailSpec, IntegrationSpec, SmtpTls};
use crate::dispatch::Notification;

/// A pooled SMTP transport.
pub(crate) type Transport = AsyncSmtpTransport<Tokio1Executor>;

/// The settings that decide which transport an integration can share.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct TransportKey {
    host: String,
    port: u16,
    tls: u8,
    insecure: bool,
    username: String,
    password: String,
    hello: String,
    timeout_ms: i64,
}

/// A transport built on first use: lettre's pool spawns its cleanup task on the tokio
/// runtime, and the notifier may be built outside one.
pub(crate) struct LazyTransport {
    builder: lettre::transport::smtp::AsyncSmtpTransportBuilder,
    cell: std::sync::OnceLock<Transport>,
}

impl LazyTransport {
    fn get(&self) -> &Transport {
        self.cell.get_or_init(|| self.builder.clone().build())
    }
}

/// Transports built so far, by settings.
pub(crate) type TransportCache = HashMap<TransportKey, Arc<LazyTransport>>;

fn transport(
    id: &str,
    spec: &EmailSpec,
    timeout_ms: i64,
    cache: &mut TransportCache,
) -> Result<Arc<LazyTransport>, NotifyError> {
    let key = TransportKey {
        host: spec.host.clone(),
        port: spec.port,
        tls: spec.tls as u8,
        insecure: spec.insecure_skip_verify,
        username: spec.username.clone(),
        password: spec.password.expose().to_string(),
        hello: spec.hello.clone(),
        timeout_ms,
    };
    if let Some(t) = cache.get(&key) {
        return Ok(t.clone());
    }
    let cfg_err = |message: String| NotifyError::Config {
        integration: id.to_string(),
        message,
    };
    let tls_params = || {
        super::install_crypto_provider();
        TlsParameters::builder(spec.host.clone())
            .dangerous_accept_invalid_certs(spec.insecure_skip_verify)
            .build_rustls()
            .map_err(|e| cfg_err(format!("TLS setup for {}: {e}", spec.host)))
    };
    let tls = match spec.tls {
        SmtpTls::StartTls => Tls::Required(tls_params()?),
        SmtpTls::Implicit => Tls::Wrapper(tls_params()?),
        SmtpTls::None => Tls::None,
    };
    let mut b = Transport::builder_dangerous(spec.host.clone())
        .port(spec.port)
        .tls(tls)
        .timeout(Some(Duration::from_millis(timeout_ms.max(1) as u64)));
    if !spec.hello.is_empty() {
        b = b.hello_name(ClientId::Domain(spec.hello.clone()));
    }
    if !spec.username.is_empty() {
        b = b.credentials(Credentials::new(
            spec.username.clone(),
            spec.password.expose().to_string(),
        ));
    }
    let t = Arc::new(LazyTransport {
        builder: b,
        cell: std::sync::OnceLock::new(),
    });
    cache.insert(key, t.clone());
    Ok(t)
}

/// A ready email integration.
pub(crate) struct EmailChannel {
    transport: Arc<LazyTransport>,
    password: Secret,
    from: Field,
    to: Field,
    subject: Field,
    headers: Vec<(HeaderName, Field)>,
    text: Option<Field>,
    html: Option<Field>,
    timeout_ms: i64,
}

impl std::fmt::Debug for EmailChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailChannel").finish_non_exhaustive()
    }
}

/// A rendered message, ready to send.
pub(crate) struct Rendered(Message);

impl EmailChannel {
    pub(crate) fn new(
        spec: &IntegrationSpec,
        email: &EmailSpec,
        templates: &TemplateSet,
        timeout_ms: i64,
        cache: &mut TransportCache,
    ) -> Result<Self, NotifyError> {
        let id = spec.id();
        let compile = |field: &str, text: &str, esc: Escape| {
            templates.compile(&format!("{id} {field}"), text, esc)
        };
        let mut subject = None;
        let mut headers = Vec::new();
        for (name, value) in &email.headers {
            if name.eq_ignore_ascii_case("subject") {
                subject = Some(compile("headers.Subject", value, Escape::None)?);
                continue;
            }
            if [
                "from",
                "to",
                "content-type",
                "mime-version",
                "content-transfer-encoding",
            ]
            .iter()
            .any(|h| name.eq_ignore_ascii_case(h))
            {
                continue; // set from the integration's fields and the body
            }
            let hn = HeaderName::new_from_ascii(name.clone()).map_err(|_| NotifyError::Config {
                integration: id.clone(),
                message: format!("invalid header name {name:?}"),
            })?;
            headers.push((
                hn,
                compile(&format!("headers.{name}"), value, Escape::None)?,
            ));
        }
        let subject = match subject {
            Some(s) => s,
            None => compile(
                "subject",
                "{{ template \"email.default.subject\" . }}",
                Escape::None,
            )?,
        };
        let text = match email.text.as_deref() {
            Some("") => None,
            Some(t) => Some(compile("text", t, Escape::None)?),
            None => Some(compile(
                "text",
                "{{ template \"email.default.text\" . }}",
                Escape::None,
            )?),
        };
        let html = match email.html.as_deref() {
            Some("") => None,
            Some(t) => Some(compile("html", t, Escape::Html)?),
            None => Some(compile(
                "html",
                "{{ template \"email.default.html\" . }}",
                Escape::Html,
            )?),
        };
        Ok(EmailChannel {
            transport: transport(&id, email, timeout_ms, cache)?,
            password: email.password.clone(),
            from: compile("from", &email.from, Escape::None)?,
            to: compile("to", &email.to.join(", "), Escape::None)?,
            subject,
            headers,
            text,
            html,
            timeout_ms,
        })
    }

    /// Renders the message; `now_ms` is its `Date`.
    pub(crate) fn render(&self, n: &Notification, now_ms: i64) -> Result<Rendered, SendError> {
        let data = RenderData::new(n);
        let r = |name: &str, f: &Field| {
            f.render(&data)
                .map_err(|e| SendError::permanent(format!("rendering {name}: {e}")))
        };
        let from = r("from", &self.from)?;
        let to = r("to", &self.to)?;
        let from: Mailboxes = from
            .parse()
            .map_err(|e| SendError::permanent(format!("invalid from address {from:?}: {e}")))?;
        let from = from
            .into_single()
            .ok_or_else(|| SendError::permanent("from must be exactly one address"))?;
        let to: Mailboxes = to
            .parse()
            .map_err(|e| SendError::permanent(format!("invalid to address {to:?}: {e}")))?;
        if to.iter().next().is_none() {
            return Err(SendError::permanent("no recipients"));
        }
        let date = UNIX_EPOCH + Duration::from_millis(u64::try_from(now_ms).unwrap_or(0));
        let subject = r("subject", &self.subject)?;
        let mut b = Message::builder()
            .from(from)
            .mailbox(lettre::message::header::To::from(to))
            .subject(subject.replace(['\r', '\n'], " "))
            .date(date)
            .message_id(None);
        for (name, f) in &self.headers {
            let v = r(name.as_ref(), f)?;
            b = b.raw_header(HeaderValue::new(name.clone(), v.replace(['\r', '\n'], " ")));
        }
        let text = self.text.as_ref().map(|f| r("text", f)).transpose()?;
        let html = self.html.as_ref().map(|f| r("html", f)).transpose()?;
        let msg = match (text, html) {
            (Some(t), Some(h)) => b.multipart(MultiPart::alternative_plain_html(t, h)),
            (Some(t), None) => b.singlepart(SinglePart::plain(t)),
            (None, Some(h)) => b.singlepart(SinglePart::html(h)),
            (None, None) => b.singlepart(SinglePart::plain(String::new())),
        }
        .map_err(|e| SendError::permanent(format!("building message: {e}")))?;
        Ok(Rendered(msg))
    }

    /// The text body (or the HTML one when there is no text body) for `n`.
    pub(crate) fn preview(&self, n: &Notification) -> Result<String, SendError> {
        let data = RenderData::new(n);
        match self.text.as_ref().or(self.html.as_ref()) {
            Some(f) => f
                .render(&data)
                .map_err(|e| SendError::permanent(format!("rendering body: {e}"))),
            None => Ok(String::new()),
        }
    }

    pub(crate) async fn send(&self, msg: Rendered) -> Result<(), SendError> {
        let guard = Duration::from_millis(self.timeout_ms.max(1) as u64 + 1_000);
        match tokio::time::timeout(guard, self.transport.get().send(msg.0)).await {
            Err(_) => Err(SendError::transient(
                "timeout: SMTP exchange did not finish in time",
            )),
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(classify(&e, &self.password)),
        }
    }
}

/// Classes an SMTP error: 4xx replies, timeouts and connection trouble are retryable; 5xx
/// replies, TLS and protocol errors are not.
fn classify(e: &lettre::transport::smtp::Error, password: &Secret) -> SendError {
    let status = e.status().map(u16::from);
    let retryable = match status {
        Some(code) => smtp_code_retryable(code),
        None => e.is_timeout() || !(e.is_tls() || e.is_client() || e.is_response()),
    };
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        let s_str = s.to_string();
        if !msg.contains(&s_str) {
            msg.push_str(": ");
            msg.push_str(&s_str);
        }
        src = s.source();
    }
    SendError {
        retryable,
        status,
        message: redact(&format!("SMTP: {msg}"), &[password.expose()]),
        retry_after_ms: None,
    }
}
