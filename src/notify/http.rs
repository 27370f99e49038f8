//! The HTTP side shared by Slack and webhooks: one `reqwest` client per integration built from
//! Alertmanager's `http_config`, auth headers, and classification of responses and errors.
//! URLs are secrets: errors are formatted without them.

use std::time::Duration;

use base64::Engine;

use super::error::{NotifyError, SendError, redact};
use super::retry::{http_status_retryable, parse_retry_after};
use crate::config::delivery::{HeaderValue, HttpConfig, Secret};

/// Most bytes of a failed response body quoted in the error.
const BODY_QUOTE: usize = 256;

fn read_secret_file(id: &str, what: &str, path: &str) -> Result<String, NotifyError> {
    std::fs::read_to_string(path)
        .map(|s| s.trim_end_matches(['\r', '\n']).to_string())
        .map_err(|e| NotifyError::Config {
            integration: id.to_string(),
            message: format!("reading {what} file {path}: {e}"),
        })
}

/// A secret from its value or, when empty, from its `_file`.
pub(crate) fn secret_or_file(
    id: &str,
    what: &str,
    value: &Secret,
    file: &str,
) -> Result<Secret, NotifyError> {
    if value.is_empty() && !file.is_empty() {
        return Ok(Secret(read_secret_file(id, what, file)?));
    }
    Ok(value.clone())
}

/// Headers (`Authorization`, `http_headers`) an `http_config` adds to every request, with
/// secret values kept as [`Secret`].
pub(crate) fn config_headers(
    id: &str,
    http: &HttpConfig,
) -> Result<Vec<(String, Secret)>, NotifyError> {
    let mut out = Vec::new();
    if let Some(b) = &http.basic_auth {
        let pw = secret_or_file(id, "basic_auth password", &b.password, &b.password_file)?;
        let token = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            b.username,
            pw.expose()
        ));
        out.push(("Authorization".into(), Secret(format!("Basic {token}"))));
    }
    if let Some(a) = &http.authorization {
        let cred = secret_or_file(
            id,
            "authorization credentials",
            &a.credentials,
            &a.credentials_file,
        )?;
        let kind = if a.kind.trim().is_empty() {
            "Bearer"
        } else {
            a.kind.trim()
        };
        out.push((
            "Authorization".into(),
            Secret(format!("{kind} {}", cred.expose())),
        ));
    }
    if let Some(t) = &http.bearer_token
        && !t.is_empty()
    {
        out.push((
            "Authorization".into(),
            Secret(format!("Bearer {}", t.expose())),
        ));
    }
    for (name, v) in &http.http_headers {
        match v {
            HeaderValue::Plain(s) => out.push((name.clone(), Secret(s.clone()))),
            HeaderValue::Structured { values, secrets } => {
                out.extend(values.iter().map(|s| (name.clone(), Secret(s.clone()))));
                out.extend(secrets.iter().map(|s| (name.clone(), s.clone())));
            }
        }
    }
    Ok(out)
}

/// A client honouring `http_config` (redirects, proxy, `insecure_skip_verify`) and `timeout_ms`.
pub(crate) fn build_client(
    id: &str,
    http: &HttpConfig,
    timeout_ms: i64,
) -> Result<reqwest::Client, NotifyError> {
    super::install_crypto_provider();
    let mut b = reqwest::Client::builder()
        .timeout(Duration::from_millis(timeout_ms.max(1) as u64))
        .connect_timeout(Duration::from_millis(timeout_ms.max(1) as u64))
        .user_agent(concat!("klaxon/", env!("CARGO_PKG_VERSION")));
    if http.follow_redirects == Some(false) {
        b = b.redirect(reqwest::redirect::Policy::none());
    }
    if http
        .tls_config
        .as_ref()
        .is_some_and(|t| t.insecure_skip_verify)
    {
        b = b.danger_accept_invalid_certs(true);
    }
    match http.proxy_url.as_deref().filter(|p| !p.trim().is_empty()) {
        Some(p) => {
            let proxy = reqwest::Proxy::all(p).map_err(|_| NotifyError::Config {
                integration: id.to_string(),
                message: "invalid proxy_url".into(),
            })?;
            b = b.proxy(proxy);
        }
        None => b = b.no_proxy(),
    }
    b.build().map_err(|e| NotifyError::Config {
        integration: id.to_string(),
        message: format!("building HTTP client: {}", e.without_url()),
    })
}

/// Describes a reqwest error without its URL, with its source chain.
fn describe(e: reqwest::Error) -> (bool, String) {
    let retryable = !(e.is_builder() || e.is_redirect() || e.is_status());
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect error"
    } else if e.is_builder() {
        "invalid request"
    } else if e.is_redirect() {
        "redirect error"
    } else {
        "request error"
    };
    let e = e.without_url();
    let mut msg = format!("{kind}: {e}");
    let mut src = std::error::Error::source(&e);
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    (retryable, msg)
}

/// A 2xx answer: its body (for channels that inspect it).
pub(crate) struct Answer {
    pub body: String,
}

/// POSTs `body` to `url` with `headers`, within `timeout_ms`; classifies every failure.
pub(crate) async fn post(
    client: &reqwest::Client,
    url: &Secret,
    headers: &[(String, Secret)],
    body: Vec<u8>,
    timeout_ms: i64,
    now_ms: i64,
) -> Result<Answer, SendError> {
    let mut secrets: Vec<&str> = vec![url.expose()];
    secrets.extend(headers.iter().map(|(_, v)| v.expose()));
    let mut req = client
        .post(url.expose())
        .timeout(Duration::from_millis(timeout_ms.max(1) as u64));
    let mut has_ct = false;
    for (name, value) in headers {
        has_ct |= name.eq_ignore_ascii_case("content-type");
        req = req.header(name.as_str(), value.expose());
    }
    if !has_ct {
        req = req.header("Content-Type", "application/json");
    }
    let fut = async {
        let resp = req.body(body).send().await?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let text = resp.text().await.unwrap_or_default();
        Ok::<_, reqwest::Error>((status, retry_after, text))
    };
    // reqwest's own timeout covers the whole exchange; this is a guard on top of it.
    let guard = Duration::from_millis(timeout_ms.max(1) as u64 + 1_000);
    let (status, retry_after, text) = match tokio::time::timeout(guard, fut).await {
        Err(_) => return Err(SendError::transient("timeout: no answer in time")),
        Ok(Err(e)) => {
            let (retryable, msg) = describe(e);
            let msg = redact(&msg, &secrets);
            return Err(SendError {
                retryable,
                status: None,
                message: msg,
                retry_after_ms: None,
            });
        }
        Ok(Ok(r)) => r,
    };
    if (200..300).contains(&status) {
        return Ok(Answer { body: text });
    }
    let mut quoted: String = text.trim().chars().take(BODY_QUOTE).collect();
    if text.trim().chars().count() > BODY_QUOTE {
        quoted.push('…');
    }
    let retry_after_ms = if status == 429 || status == 503 {
        retry_after
            .as_deref()
            .and_then(|v| parse_retry_after(v, now_ms))
    } else {
        None
    };
    Err(SendError {
        retryable: http_status_retryable(status),
        status: Some(status),
        message: redact(
            &if quoted.is_empty() {
                format!("HTTP {status}")
            } else {
                format!("HTTP {status}: {quoted}")
            },
            &secrets,
        ),
        retry_after_ms,
    })
}
