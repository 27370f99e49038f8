//! Errors of the notify stage: building the notifier (configuration, templates) and sending.
//! Messages never carry secrets: URLs and credentials are left out or redacted.

/// Why the notifier could not be built or could not take a notification.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum NotifyError {
    /// A template does not parse (or a template file is broken).
    #[error("{what}: {error}")]
    Template {
        /// Integration and field, or the template file.
        what: String,
        /// The template error, with a position.
        error: String,
    },
    /// An integration's settings cannot be used (bad address, TLS setup...).
    #[error("{integration}: {message}")]
    Config {
        /// Integration id.
        integration: String,
        /// What is wrong (no secrets).
        message: String,
    },
    /// `submit` named an integration the configuration does not have.
    #[error("unknown integration {0:?}")]
    UnknownIntegration(String),
    /// `submit` after `shutdown`.
    #[error("notifier is shutting down")]
    ShuttingDown,
    /// `submit` outside a tokio runtime (workers are spawned on the current runtime).
    #[error("no tokio runtime to run the notification worker on")]
    NoRuntime,
}

/// One failed delivery attempt or a final failure, classed for retrying.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SendError {
    /// Worth retrying (timeouts, connection errors, 5xx, 429, SMTP 4xx).
    pub retryable: bool,
    /// HTTP status or SMTP reply code, when the peer answered.
    pub status: Option<u16>,
    /// What happened, without secrets.
    pub message: String,
    /// How long the peer asked us to wait (`Retry-After`), in ms.
    pub retry_after_ms: Option<i64>,
}

impl SendError {
    /// A failure that retrying will not fix (bad request, template error, 5xx SMTP reply).
    pub fn permanent(message: impl Into<String>) -> Self {
        SendError {
            retryable: false,
            status: None,
            message: message.into(),
            retry_after_ms: None,
        }
    }

    /// A failure that may pass on retry (timeout, connection refused).
    pub fn transient(message: impl Into<String>) -> Self {
        SendError {
            retryable: true,
            status: None,
            message: message.into(),
            retry_after_ms: None,
        }
    }
}

/// Replaces every occurrence of each non-empty secret in `msg` by `<secret>`.
pub fn redact(msg: &str, secrets: &[&str]) -> String {
    let mut out = msg.to_string();
    for s in secrets {
        let s = s.trim();
        if s.len() >= 4 && out.contains(s) {
            out = out.replace(s, "<secret>");
        }
    }
    out
}
