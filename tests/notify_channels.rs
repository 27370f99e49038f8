//! Alert delivery through real loopback listeners: an SMTP sink receiving the real message,
//! HTTP receivers for Slack and webhooks (including ones answering 500, 429 and 400), rate
//! limits with digests, and every timer on a `ManualClock`.

#[path = "support/http_sink.rs"]
mod http_sink;
#[path = "support/smtp.rs"]
mod smtp;

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use http_sink::{HttpSink, Received, Reply};
use klaxon::clock::{Clock, ManualClock, SharedClock};
use klaxon::config::{
    BasicAuth, CompiledDelivery, CorrelationConfig, Dur, EmailSpec, HeaderValue, HttpConfig,
    IntegrationKind, IntegrationSpec, NotifyGlobal, RateLimit, ReceiverSpec, RouteTree, Secret,
    SlackConfig, SmtpTls, WebhookConfig,
};
use klaxon::dispatch::{Alert, EscalationInfo, Notification};
use klaxon::model::Labels;
use klaxon::notify::{
    DeliveryReport, Notifier, NotifierOptions, NotifyError, NotifyMetrics, Outcome, webhook_payload,
};
use smtp::{Script, SmtpSink};
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

const T0: i64 = 1_700_000_000_000; // 2023-11-14T22:13:20Z
const WAIT: Duration = Duration::from_secs(10);

// ----------------------------------------------------------------------------------------------
// Captured logs: every test's log lines land here, so tests can assert secrets never do.

static LOGS: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOGS.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_logs() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(|| LogWriter)
            .init();
    });
}

fn logs() -> String {
    String::from_utf8_lossy(&LOGS.lock().unwrap()).into_owned()
}

fn assert_not_logged(secrets: &[&str]) {
    let l = logs();
    for s in secrets {
        assert!(!l.contains(s), "secret {s:?} appears in the logs");
    }
}

// ----------------------------------------------------------------------------------------------
// Fixtures.

fn alert(name: &str, extra: &[(&str, &str)], ends_at: i64) -> Alert {
    let mut pairs = vec![("alertname", name)];
    pairs.extend_from_slice(extra);
    Alert {
        labels: Labels::from_pairs(pairs),
        annotations: Labels::from_pairs([
            (
                "summary",
                format!("{name} on {}", extra.first().map_or("", |p| p.1)),
            ),
            ("runbook", "https://runbooks.example/".to_string() + name),
        ]),
        starts_at: T0 - 600_000,
        ends_at,
        generator_url: format!("http://prometheus.example/graph?g0.expr={name}"),
        updated_at: T0,
        timeout: false,
    }
}

fn notification(receiver: &str, alerts: Vec<Alert>) -> Notification {
    Notification {
        receiver: receiver.into(),
        group_key: "{}/{team=\"db\"}:{team=\"db\"}".into(),
        group_labels: Labels::from_pairs([("team", "db")]),
        alerts,
        now_ms: T0,
        external_url: "https://klaxon.example".into(),
        related: vec![],
        escalation: None,
        digest_of: 0,
    }
}

fn sample() -> Notification {
    notification(
        "ops",
        vec![
            alert(
                "DiskFull",
                &[
                    ("instance", "db-1:9100"),
                    ("severity", "critical"),
                    ("team", "db"),
                ],
                0,
            ),
            alert(
                "DiskFull",
                &[
                    ("instance", "db-2:9100"),
                    ("severity", "critical"),
                    ("team", "db"),
                ],
                0,
            ),
            alert(
                "ReplicationLag",
                &[
                    ("instance", "db-3:9100"),
                    ("severity", "critical"),
                    ("team", "db"),
                ],
                T0 - 60_000,
            ),
        ],
    )
}

fn spec(receiver: &str, kind: IntegrationKind) -> IntegrationSpec {
    IntegrationSpec {
        receiver: receiver.into(),
        index: 0,
        kind,
        send_resolved: true,
        unconfigured: None,
        rate_limit: None,
        http: HttpConfig::default(),
    }
}

fn webhook(receiver: &str, url: String) -> IntegrationSpec {
    spec(
        receiver,
        IntegrationKind::Webhook(WebhookConfig {
            url: Secret(url),
            ..WebhookConfig::default()
        }),
    )
}

fn email(receiver: &str, sink: &SmtpSink, to: &[&str]) -> IntegrationSpec {
    spec(
        receiver,
        IntegrationKind::Email(EmailSpec {
            host: "127.0.0.1".into(),
            port: sink.addr.port(),
            tls: SmtpTls::None,
            insecure_skip_verify: false,
            username: String::new(),
            password: Secret::default(),
            hello: "klaxon.test".into(),
            from: "klaxon@example.com".into(),
            to: to.iter().map(|s| s.to_string()).collect(),
            headers: BTreeMap::new(),
            html: None,
            text: None,
        }),
    )
}

fn delivery(specs: Vec<IntegrationSpec>, files: Vec<(String, String)>) -> Arc<CompiledDelivery> {
    let mut receivers: BTreeMap<String, ReceiverSpec> = BTreeMap::new();
    for s in specs {
        receivers
            .entry(s.receiver.clone())
            .or_insert_with(|| ReceiverSpec {
                name: s.receiver.clone(),
                integrations: vec![],
                from_channel: false,
            })
            .integrations
            .push(s);
    }
    Arc::new(CompiledDelivery {
        routes: RouteTree { nodes: Vec::new() },
        inhibit_rules: Vec::new(),
        time_intervals: HashMap::new(),
        receivers,
        escalation_policies: HashMap::new(),
        correlation: CorrelationConfig::default(),
        global: NotifyGlobal::default(),
        external_url: "https://klaxon.example".into(),
        template_files: files,
    })
}

fn opts() -> NotifierOptions {
    NotifierOptions {
        request_timeout_ms: 5_000,
        max_attempts: 5,
        max_retry_ms: 10 * 60_000,
        backoff_base_ms: 100,
        backoff_max_ms: 1_000,
    }
}

struct Harness {
    clock: Arc<ManualClock>,
    notifier: Notifier,
    metrics: Arc<NotifyMetrics>,
    reports: UnboundedReceiver<DeliveryReport>,
}

fn harness(specs: Vec<IntegrationSpec>, opts: NotifierOptions) -> Harness {
    capture_logs();
    let clock = Arc::new(ManualClock::new(T0));
    let metrics = Arc::new(NotifyMetrics::default());
    let (tx, rx) = unbounded_channel();
    let shared: SharedClock = clock.clone();
    let notifier = Notifier::new(delivery(specs, vec![]), shared, metrics.clone(), tx, opts)
        .expect("notifier builds");
    Harness {
        clock,
        notifier,
        metrics,
        reports: rx,
    }
}

impl Harness {
    /// The next report, moving the clock forward `step_ms` every couple of real milliseconds
    /// so backoff and rate-limit waits elapse.
    async fn report_advancing(&mut self, step_ms: i64) -> DeliveryReport {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            tokio::select! {
                r = self.reports.recv() => return r.expect("report channel open"),
                _ = tokio::time::sleep(Duration::from_millis(2)) => {
                    assert!(tokio::time::Instant::now() < deadline, "no report in time");
                    self.clock.advance(step_ms);
                }
            }
        }
    }

    /// The next report without touching the clock.
    async fn report(&mut self) -> DeliveryReport {
        tokio::time::timeout(WAIT, self.reports.recv())
            .await
            .expect("report in time")
            .expect("report channel open")
    }
}

fn pretty(v: &serde_json::Value) -> String {
    serde_json::to_string_pretty(v).unwrap()
}

// ----------------------------------------------------------------------------------------------
// MIME helpers for the captured email.

fn split_head(s: &str) -> (&str, &str) {
    s.split_once("\r\n\r\n").unwrap_or((s, ""))
}

fn header(head: &str, name: &str) -> Option<String> {
    let mut out: Option<String> = None;
    for line in head.split("\r\n") {
        if line.starts_with([' ', '\t']) {
            if let Some(o) = out.as_mut() {
                o.push_str(line.trim_start_matches(['\t']));
            }
            continue;
        }
        if out.is_some() {
            break;
        }
        if let Some((n, v)) = line.split_once(':')
            && n.eq_ignore_ascii_case(name)
        {
            out = Some(v.trim().to_string());
        }
    }
    out
}

fn decode_qp(s: &str) -> String {
    let s = s.replace("=\r\n", "");
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'='
            && let Some(h) = s.get(i + 1..i + 3)
            && let Ok(v) = u8::from_str_radix(h, 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

fn decode_part(head: &str, body: &str) -> String {
    match header(head, "Content-Transfer-Encoding")
        .unwrap_or_default()
        .to_ascii_lowercase()
        .as_str()
    {
        "quoted-printable" => decode_qp(body),
        "base64" => {
            use base64::Engine;
            let joined: String = body.split_whitespace().collect();
            String::from_utf8(
                base64::engine::general_purpose::STANDARD
                    .decode(joined)
                    .unwrap(),
            )
            .unwrap()
        }
        _ => body.to_string(),
    }
    .replace("\r\n", "\n")
}

/// (`text/plain` body, `text/html` body) of a multipart/alternative message.
fn bodies(data: &str) -> (String, String, String) {
    let (head, body) = split_head(data);
    let ct = header(head, "Content-Type").unwrap();
    let boundary = ct
        .split("boundary=")
        .nth(1)
        .unwrap()
        .trim_matches('"')
        .to_string();
    let (mut text, mut html) = (String::new(), String::new());
    for part in body.split(&format!("--{boundary}")).skip(1) {
        let part = part.trim_start_matches("\r\n");
        if part.starts_with("--") {
            continue;
        }
        let (ph, pb) = split_head(part);
        let pb = pb.strip_suffix("\r\n").unwrap_or(pb);
        let pct = header(ph, "Content-Type").unwrap_or_default();
        if pct.starts_with("text/plain") {
            text = decode_part(ph, pb);
        } else if pct.starts_with("text/html") {
            html = decode_part(ph, pb);
        }
    }
    (head.replace(&boundary, "[boundary]"), text, html)
}

fn redact_head(head: &str) -> String {
    head.split("\r\n")
        .map(|l| {
            let lower = l.to_ascii_lowercase();
            if lower.starts_with("date:") {
                "Date: [date]".to_string()
            } else if lower.starts_with("message-id:") {
                "Message-ID: [message-id]".to_string()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

// ----------------------------------------------------------------------------------------------
// Email.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_reaches_the_smtp_sink_with_text_and_html_bodies() {
    let mut sink = SmtpSink::start(Script::default()).await;
    let mut s = email("ops", &sink, &["oncall@example.com", "backup@example.com"]);
    if let IntegrationKind::Email(e) = &mut s.kind {
        e.username = "alice".into();
        e.password = Secret("smtp-pass-4711".into());
        e.headers
            .insert("X-Team".into(), "{{ .CommonLabels.team }}".into());
    }
    let mut h = harness(vec![s], opts());
    let mut n = sample();
    n.alerts[0].annotations = Labels::from_pairs([
        ("summary", "disk <script>alert(1)</script> & more"),
        ("runbook", "https://runbooks.example/DiskFull"),
    ]);
    h.notifier.submit("ops/email[0]", n).unwrap();
    let r = h.report_advancing(100).await;
    assert_eq!(r.result, Ok(()), "{r:?}");
    assert_eq!(r.attempts, 1);
    assert_eq!(r.channel, "email");

    let mail = sink.next(WAIT).await.expect("message received");
    assert_eq!(mail.from, "klaxon@example.com");
    assert_eq!(mail.to, ["oncall@example.com", "backup@example.com"]);
    assert_eq!(mail.auth.as_deref(), Some("alice:smtp-pass-4711"));
    let (head, text, html) = bodies(&mail.data);
    let raw_head = split_head(&mail.data).0;
    assert_eq!(
        header(raw_head, "Subject").unwrap(),
        "[FIRING:2] db (critical)"
    );
    assert_eq!(header(raw_head, "X-Team").unwrap(), "db");
    assert!(
        header(raw_head, "Content-Type")
            .unwrap()
            .starts_with("multipart/alternative")
    );
    // HTML escapes label and annotation values; the text body keeps them as they are.
    assert!(
        html.contains("disk &lt;script&gt;alert(1)&lt;/script&gt; &amp; more"),
        "{html}"
    );
    assert!(!html.contains("<script>"));
    assert!(text.contains("disk <script>alert(1)</script> & more"));
    assert!(html.contains("<h3>Firing (2)</h3>") && html.contains("<h3>Resolved (1)</h3>"));
    insta::assert_snapshot!("email_headers", redact_head(&head));
    insta::assert_snapshot!("email_text_body", text);
    insta::assert_snapshot!("email_html_body", html);
    assert_eq!(h.metrics.outcome_count("email", Outcome::Success), 1);
    assert_not_logged(&["smtp-pass-4711"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_transient_failure_is_retried() {
    let mut sink = SmtpSink::start(Script {
        rcpt: [451].into(),
        ..Script::default()
    })
    .await;
    let mut h = harness(vec![email("ops", &sink, &["oncall@example.com"])], opts());
    h.notifier.submit("ops/email[0]", sample()).unwrap();
    let r = h.report_advancing(50).await;
    assert_eq!(r.result, Ok(()), "{r:?}");
    assert_eq!(r.attempts, 2);
    assert!(sink.next(WAIT).await.is_some());
    assert_eq!(h.metrics.retry_count("email"), 1);
    assert_eq!(h.metrics.attempt_count("email"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_permanent_failure_is_not_retried() {
    let mut sink = SmtpSink::start(Script {
        always_rcpt: Some(550),
        ..Script::default()
    })
    .await;
    let mut h = harness(vec![email("ops", &sink, &["nobody@example.com"])], opts());
    h.notifier.submit("ops/email[0]", sample()).unwrap();
    let r = h.report_advancing(50).await;
    let e = r.result.clone().unwrap_err();
    assert_eq!(r.attempts, 1, "{r:?}");
    assert!(!e.retryable);
    assert_eq!(e.status, Some(550));
    assert!(e.message.contains("550"), "{}", e.message);
    assert!(sink.try_next().is_none());
    assert_eq!(h.metrics.outcome_count("email", Outcome::Failure), 1);
    assert_eq!(h.metrics.retry_count("email"), 0);
}

// ----------------------------------------------------------------------------------------------
// Slack.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_payload_has_alertmanager_shape() {
    let mut sink = HttpSink::ok(None).await;
    let url = sink.url("/services/T0001/B0001/slack-token-123456");
    let s = spec(
        "ops",
        IntegrationKind::Slack(SlackConfig {
            api_url: Secret(url),
            channel: "#db-alerts".into(),
            ..SlackConfig::default()
        }),
    );
    let mut h = harness(vec![s], opts());
    let mut n = sample();
    n.escalation = Some(EscalationInfo {
        policy: "db-oncall".into(),
        step: 0,
        steps: 2,
    });
    h.notifier.submit("ops/slack[0]", n).unwrap();
    let r = h.report_advancing(100).await;
    assert_eq!(r.result, Ok(()), "{r:?}");
    let req = sink.next(WAIT).await.unwrap();
    assert_eq!(req.method, "POST");
    assert_eq!(req.path, "/services/T0001/B0001/slack-token-123456");
    assert_eq!(req.header("content-type"), Some("application/json"));
    let body = req.json();
    assert_eq!(body["attachments"][0]["color"], "danger");
    insta::assert_snapshot!("slack_payload", pretty(&body));

    // Once everything resolved, the colour turns good.
    let mut resolved = sample();
    for a in &mut resolved.alerts {
        a.ends_at = T0 - 1;
    }
    h.notifier.submit("ops/slack[0]", resolved).unwrap();
    h.report_advancing(100).await.result.unwrap();
    let body = sink.next(WAIT).await.unwrap().json();
    assert_eq!(body["attachments"][0]["color"], "good");
    assert!(
        body["attachments"][0]["title"]
            .as_str()
            .unwrap()
            .starts_with("[RESOLVED]")
    );
    assert_not_logged(&["slack-token-123456"]);
}

// ----------------------------------------------------------------------------------------------
// Webhooks.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_default_payload_is_alertmanagers_json() {
    let mut sink = HttpSink::ok(None).await;
    let mut h = harness(vec![webhook("ops", sink.url("/hook"))], opts());
    h.notifier.submit("ops/webhook[0]", sample()).unwrap();
    assert_eq!(h.report_advancing(100).await.result, Ok(()));
    let req = sink.next(WAIT).await.unwrap();
    let body = req.json();
    assert_eq!(body, webhook_payload(&sample(), 0));
    assert_eq!(body["version"], "4");
    assert_eq!(body["truncatedAlerts"], 0);
    assert_eq!(body["commonLabels"]["severity"], "critical");
    assert!(body.get("related").is_none() && body.get("escalation").is_none());
    insta::assert_snapshot!("webhook_default_payload", pretty(&body));
}

#[test]
fn webhook_payload_truncates_and_adds_klaxon_fields() {
    let mut n = sample();
    n.related = vec![alert("DiskIOHigh", &[("instance", "db-1:9100")], 0)];
    n.escalation = Some(EscalationInfo {
        policy: "db-oncall".into(),
        step: 1,
        steps: 3,
    });
    let p = webhook_payload(&n, 2);
    assert_eq!(p["truncatedAlerts"], 1);
    assert_eq!(p["alerts"].as_array().unwrap().len(), 2);
    assert_eq!(p["status"], "firing");
    assert_eq!(p["related"][0]["labels"]["alertname"], "DiskIOHigh");
    assert_eq!(p["escalation"]["step"], 2);
    assert_eq!(p["alerts"][0]["endsAt"], "0001-01-01T00:00:00Z");
    assert_eq!(p["alerts"][0]["startsAt"], "2023-11-14T22:03:20Z");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_custom_headers_auth_and_templated_body() {
    let mut sink = HttpSink::ok(None).await;
    let mut s = spec(
        "ops",
        IntegrationKind::Webhook(WebhookConfig {
            url: Secret(sink.url("/custom?token=url-token-777")),
            headers: BTreeMap::from([
                ("X-Api-Key".to_string(), Secret("hdr-secret-31337".into())),
                ("Content-Type".to_string(), Secret("text/plain".into())),
            ]),
            body: Some(
                "{{ .Status }}: {{ range .Alerts.Firing }}{{ .Labels.instance }} {{ end }}| {{ .CommonLabels.team | toUpper }}".into(),
            ),
            ..WebhookConfig::default()
        }),
    );
    s.http = HttpConfig {
        basic_auth: Some(BasicAuth {
            username: "hook".into(),
            password: Secret("basic-pw-5555".into()),
            password_file: String::new(),
        }),
        http_headers: BTreeMap::from([("X-Env".to_string(), HeaderValue::Plain("prod".into()))]),
        ..HttpConfig::default()
    };
    let mut h = harness(vec![s], opts());
    h.notifier.submit("ops/webhook[0]", sample()).unwrap();
    assert_eq!(h.report_advancing(100).await.result, Ok(()));
    let req = sink.next(WAIT).await.unwrap();
    assert_eq!(req.path, "/custom?token=url-token-777");
    assert_eq!(req.header("x-api-key"), Some("hdr-secret-31337"));
    assert_eq!(req.header("x-env"), Some("prod"));
    assert_eq!(req.header("content-type"), Some("text/plain"));
    use base64::Engine;
    let want = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("hook:basic-pw-5555")
    );
    assert_eq!(req.header("authorization"), Some(want.as_str()));
    assert_eq!(
        String::from_utf8(req.body).unwrap(),
        "firing: db-1:9100 db-2:9100 | DB"
    );
    assert_not_logged(&["url-token-777", "hdr-secret-31337", "basic-pw-5555"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_are_retried_until_success() {
    let mut sink = HttpSink::start(
        vec![Reply::status(500), Reply::status(500)],
        Reply::status(200),
        None,
    )
    .await;
    let mut h = harness(vec![webhook("ops", sink.url("/flaky"))], opts());
    h.notifier.submit("ops/webhook[0]", sample()).unwrap();
    let r = h.report_advancing(50).await;
    assert_eq!(r.result, Ok(()), "{r:?}");
    assert_eq!(r.attempts, 3);
    for _ in 0..3 {
        sink.next(WAIT).await.expect("three requests");
    }
    assert_eq!(h.metrics.attempt_count("webhook"), 3);
    assert_eq!(h.metrics.retry_count("webhook"), 2);
    assert_eq!(h.metrics.outcome_count("webhook", Outcome::Success), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_requests_waits_for_retry_after_on_the_clock() {
    capture_logs();
    let clock = Arc::new(ManualClock::new(T0));
    let shared: SharedClock = clock.clone();
    let mut sink = HttpSink::start(
        vec![Reply::status(429).header("Retry-After", "2")],
        Reply::status(200),
        Some(shared.clone()),
    )
    .await;
    let metrics = Arc::new(NotifyMetrics::default());
    let (tx, rx) = unbounded_channel();
    let notifier = Notifier::new(
        delivery(vec![webhook("ops", sink.url("/busy"))], vec![]),
        shared,
        metrics.clone(),
        tx,
        opts(),
    )
    .unwrap();
    let mut h = Harness {
        clock,
        notifier,
        metrics,
        reports: rx,
    };
    h.notifier.submit("ops/webhook[0]", sample()).unwrap();
    let first = sink.next(WAIT).await.unwrap();
    // Nothing more arrives while the clock stands still.
    assert!(sink.next(Duration::from_millis(300)).await.is_none());
    let r = h.report_advancing(100).await;
    assert_eq!(r.result, Ok(()), "{r:?}");
    assert_eq!(r.attempts, 2);
    let second = sink.next(WAIT).await.unwrap();
    assert!(
        second.at_ms - first.at_ms >= 2_000,
        "retried after {} ms on the clock",
        second.at_ms - first.at_ms
    );
    assert_eq!(h.metrics.retry_count("webhook"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_errors_fail_at_once_without_leaking_the_url() {
    let mut sink = HttpSink::start(vec![Reply::status(400)], Reply::status(200), None).await;
    let mut h = harness(
        vec![webhook("ops", sink.url("/bad/secret-path-2468"))],
        opts(),
    );
    h.notifier.submit("ops/webhook[0]", sample()).unwrap();
    let r = h.report_advancing(50).await;
    let e = r.result.clone().unwrap_err();
    assert_eq!(r.attempts, 1);
    assert_eq!(e.status, Some(400));
    assert!(!e.retryable);
    assert_eq!(e.message, "HTTP 400: scripted 400");
    sink.next(WAIT).await.unwrap();
    assert!(sink.next(Duration::from_millis(200)).await.is_none());
    assert_eq!(h.metrics.outcome_count("webhook", Outcome::Failure), 1);
    assert!(logs().contains("ops/webhook[0]"));
    assert_not_logged(&["secret-path-2468"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_errors_are_retryable_and_hide_the_url() {
    // A port nobody listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut o = opts();
    o.max_attempts = 2;
    let mut h = harness(
        vec![webhook(
            "ops",
            format!("http://127.0.0.1:{port}/hook/refused-token-8642"),
        )],
        o,
    );
    h.notifier.submit("ops/webhook[0]", sample()).unwrap();
    let r = h.report_advancing(50).await;
    let e = r.result.clone().unwrap_err();
    assert!(e.retryable, "{e:?}");
    assert_eq!(r.attempts, 2);
    assert!(!e.message.contains("refused-token-8642"), "{}", e.message);
    assert!(!format!("{r:?}").contains("refused-token-8642"));
    assert_not_logged(&["refused-token-8642"]);
}

// ----------------------------------------------------------------------------------------------
// Rate limits and digests.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limited_backlog_is_folded_into_one_digest() {
    let mut sink = HttpSink::ok(None).await;
    let mut s = webhook("ops", sink.url("/limited"));
    s.rate_limit = Some(RateLimit {
        limit: 1,
        per: Dur(1_000),
        burst: Some(1),
    });
    let mut h = harness(vec![s], opts());
    let mut fingerprints = Vec::new();
    for i in 0..5 {
        let a = alert(
            "QueueDepth",
            &[("queue", &format!("q{i}")), ("team", "db")],
            0,
        );
        fingerprints.push(a.fingerprint().to_string());
        h.notifier
            .submit("ops/webhook[0]", notification("ops", vec![a]))
            .unwrap();
    }
    // The first goes out at once.
    let first = h.report().await;
    assert_eq!(first.result, Ok(()));
    assert_eq!(first.covers.len(), 1);
    let req1 = sink.next(WAIT).await.unwrap();
    // The rest wait for the clock.
    assert!(sink.next(Duration::from_millis(300)).await.is_none());
    assert!(h.metrics.rate_limit_hit_count("webhook") >= 1);
    h.clock.advance(1_000);
    let second = h.report().await;
    assert_eq!(second.result, Ok(()), "{second:?}");
    assert_eq!(second.covers.len(), 4);
    let req2 = sink.next(WAIT).await.unwrap();
    let digest = req2.json();
    assert_eq!(digest["digestOf"], 4);
    assert_eq!(digest["alerts"].as_array().unwrap().len(), 4);
    // Nothing lost: every alert reached the receiver.
    let mut seen: Vec<String> = [req1.json(), digest]
        .iter()
        .flat_map(|b| {
            b["alerts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["fingerprint"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    seen.sort();
    fingerprints.sort();
    assert_eq!(seen, fingerprints);
    assert_eq!(h.metrics.rate_limit_hit_count("webhook"), 4);
    assert_eq!(h.metrics.digested_count("webhook"), 4);
    assert_eq!(h.metrics.outcome_count("webhook", Outcome::Success), 5);
    assert!(logs().contains("rate limited"));
    let _: Option<Received> = sink.try_next();
}

// ----------------------------------------------------------------------------------------------
// Unconfigured integrations, bad templates, shutdown.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unconfigured_integrations_report_at_once() {
    let mut slack = spec("ops", IntegrationKind::Slack(SlackConfig::default()));
    slack.unconfigured = Some("no api_url (and no global slack_api_url)".into());
    let pager = spec("ops", IntegrationKind::Unsupported("pagerduty".into()));
    let mut h = harness(vec![slack, pager], opts());
    h.notifier.submit("ops/slack[0]", sample()).unwrap();
    let r = h.report().await;
    assert!(r.unconfigured);
    assert_eq!(r.attempts, 0);
    assert_eq!(r.covers.len(), 1);
    assert!(r.result.unwrap_err().message.contains("no api_url"));
    h.notifier.submit("ops/pagerduty[0]", sample()).unwrap();
    assert!(h.report().await.unconfigured);
    assert_eq!(h.metrics.outcome_count("slack", Outcome::Unconfigured), 1);
    assert_eq!(
        h.metrics.outcome_count("pagerduty", Outcome::Unconfigured),
        1
    );
    assert_eq!(
        h.notifier.submit("ops/nope[0]", sample()),
        Err(NotifyError::UnknownIntegration("ops/nope[0]".into()))
    );
}

#[test]
fn template_errors_fail_at_load_naming_the_field() {
    let s = spec(
        "ops",
        IntegrationKind::Webhook(WebhookConfig {
            url: Secret("http://127.0.0.1:9/".into()),
            body: Some("ok\n{{ .Status ".into()),
            ..WebhookConfig::default()
        }),
    );
    let (tx, _rx) = unbounded_channel();
    let e = Notifier::new(
        delivery(vec![s], vec![]),
        Arc::new(ManualClock::new(T0)),
        Arc::new(NotifyMetrics::default()),
        tx,
        opts(),
    )
    .unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("ops/webhook[0] body"), "{msg}");
    assert!(msg.contains(":2:"), "{msg}");

    let (tx, _rx) = unbounded_channel();
    let e = Notifier::new(
        delivery(
            vec![webhook("ops", "http://127.0.0.1:9/".into())],
            vec![(
                "team.tmpl".into(),
                "{{ define \"x\" }}{{ humanise 1 }}{{ end }}".into(),
            )],
        ),
        Arc::new(ManualClock::new(T0)),
        Arc::new(NotifyMetrics::default()),
        tx,
        opts(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("team.tmpl"), "{e}");
}

#[test]
fn notifier_builds_tls_transports_outside_a_runtime() {
    let mut specs = Vec::new();
    for (i, tls) in [SmtpTls::StartTls, SmtpTls::Implicit, SmtpTls::None]
        .into_iter()
        .enumerate()
    {
        specs.push(IntegrationSpec {
            index: i,
            ..spec(
                "mail",
                IntegrationKind::Email(EmailSpec {
                    host: "smtp.example.com".into(),
                    port: 587,
                    tls,
                    insecure_skip_verify: false,
                    username: "u".into(),
                    password: Secret("p".into()),
                    hello: "klaxon.test".into(),
                    from: "klaxon@example.com".into(),
                    to: vec!["a@example.com".into()],
                    headers: BTreeMap::new(),
                    html: None,
                    text: None,
                }),
            )
        });
    }
    let (tx, _rx) = unbounded_channel();
    let n = Notifier::new(
        delivery(specs, vec![]),
        Arc::new(ManualClock::new(T0)),
        Arc::new(NotifyMetrics::default()),
        tx,
        opts(),
    )
    .expect("builds without a runtime");
    assert_eq!(
        n.integrations(),
        ["mail/email[0]", "mail/email[1]", "mail/email[2]"]
    );
    assert_eq!(
        n.submit("mail/email[0]", sample()),
        Err(NotifyError::NoRuntime)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_once_delivers_without_the_queue() {
    let mut sink = HttpSink::ok(None).await;
    let s = webhook("ops", sink.url("/once"));
    let d = delivery(vec![s.clone()], vec![]);
    klaxon::notify::send_once(&s, &d, &sample(), &opts())
        .await
        .expect("sent");
    assert_eq!(sink.next(WAIT).await.unwrap().json()["receiver"], "ops");
    let broken = webhook("ops", format!("http://{}/x", "127.0.0.1:1"));
    let e = klaxon::notify::send_once(&broken, &d, &sample(), &opts())
        .await
        .unwrap_err();
    assert!(e.retryable);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn template_files_override_defaults() {
    let mut sink = HttpSink::ok(None).await;
    let s = spec(
        "ops",
        IntegrationKind::Slack(SlackConfig {
            api_url: Secret(sink.url("/slack")),
            ..SlackConfig::default()
        }),
    );
    capture_logs();
    let clock = Arc::new(ManualClock::new(T0));
    let (tx, mut rx) = unbounded_channel();
    let notifier = Notifier::new(
        delivery(
            vec![s],
            vec![(
                "custom.tmpl".into(),
                "text outside defines is ignored\n{{ define \"slack.default.title\" }}{{ len .Alerts.Firing }} firing in {{ .GroupLabels.team }}{{ end }}".into(),
            )],
        ),
        clock,
        Arc::new(NotifyMetrics::default()),
        tx,
        opts(),
    )
    .unwrap();
    notifier.submit("ops/slack[0]", sample()).unwrap();
    let r = tokio::time::timeout(WAIT, rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.result, Ok(()));
    let body = sink.next(WAIT).await.unwrap().json();
    assert_eq!(body["attachments"][0]["title"], "2 firing in db");
    assert_eq!(
        body["attachments"][0]["fallback"],
        "2 firing in db | https://klaxon.example"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_resolved_false_drops_resolved_alerts() {
    let mut sink = HttpSink::ok(None).await;
    let mut s = webhook("ops", sink.url("/firing-only"));
    s.send_resolved = false;
    let mut h = harness(vec![s], opts());
    h.notifier.submit("ops/webhook[0]", sample()).unwrap();
    assert_eq!(h.report().await.result, Ok(()));
    let body = sink.next(WAIT).await.unwrap().json();
    assert_eq!(body["alerts"].as_array().unwrap().len(), 2);
    assert_eq!(body["status"], "firing");
    // All resolved: nothing is sent, the report still says success.
    let mut resolved = sample();
    for a in &mut resolved.alerts {
        a.ends_at = T0 - 1;
    }
    h.notifier.submit("ops/webhook[0]", resolved).unwrap();
    assert_eq!(h.report().await.result, Ok(()));
    assert!(sink.next(Duration::from_millis(200)).await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_reports_what_it_could_not_deliver() {
    let mut sink = HttpSink::start(vec![], Reply::status(503), None).await;
    let mut o = opts();
    o.max_attempts = 1_000;
    let mut h = harness(vec![webhook("ops", sink.url("/down"))], o);
    h.notifier.submit("ops/webhook[0]", sample()).unwrap();
    sink.next(WAIT).await.expect("first attempt");
    let clock = h.clock.clone();
    let advancer = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(2)).await;
            clock.advance(100);
        }
    });
    let deadline = h.clock.now_ms() + 3_000;
    tokio::time::timeout(WAIT, h.notifier.shutdown(deadline))
        .await
        .expect("shutdown returns");
    advancer.abort();
    let r = h.report().await;
    assert_eq!(r.covers.len(), 1);
    assert!(r.result.unwrap_err().message.contains("shutdown"));
    assert_eq!(h.metrics.outcome_count("webhook", Outcome::Dropped), 1);
    assert_eq!(
        h.notifier.submit("ops/webhook[0]", sample()),
        Err(NotifyError::ShuttingDown)
    );
    assert_eq!(h.notifier.pending(), 0);
}
