//! Alert delivery's sending half: channels (email, Slack, webhooks), retries, rate limits and
//! message templates with Alertmanager's data.
//!
//! - [`Notifier`] owns one queue and worker per integration ([`IntegrationSpec::id`]): rate
//!   limit (a `governor` token bucket on klaxon's clock; a backlog is folded into one digest),
//!   then send with retries (exponential backoff with jitter, `Retry-After` honoured), then a
//!   [`DeliveryReport`]. Every wait goes through [`crate::clock::Clock`].
//! - [`Channel`] renders and sends once; [`send_once`] builds one for a single delivery.
//! - Templates: Go `text/template` (klaxon's interpreter) over Alertmanager's data
//!   ([`data`]), Alertmanager's functions ([`functions`]) and default template names
//!   ([`templates::DEFAULT_TEMPLATES`]), all parsed when the notifier is built.
//! - Secrets (URLs, passwords, tokens) never reach logs, errors or reports: errors are built
//!   without URLs and redacted.
//!
//! [`IntegrationSpec::id`]: crate::config::IntegrationSpec::id

mod channel;
pub mod data;
mod email;
mod error;
pub mod functions;
pub mod gotime;
mod http;
mod metrics;
mod notifier;
pub mod ratelimit;
pub mod retry;
mod slack;
pub mod templates;
mod webhook;

pub use channel::{Channel, unconfigured_reason};
pub use error::{NotifyError, SendError, redact};
pub use metrics::{ChannelLabels, NotifyMetrics, Outcome, OutcomeLabels};
pub use notifier::{DeliveryReport, Notifier, NotifierOptions, fold_digest, send_once};
pub use templates::TemplateSet;
pub use webhook::{alert_json, webhook_payload};

/// Installs rustls' aws-lc-rs crypto provider for the process (once; later calls and an
/// already installed provider are fine). Called before any TLS client is built.
pub fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    });
}
