//! Durable state through the real binary: alerts fire from pushed samples and notifications are
//! delivered or mid-flight, then the process is killed with SIGKILL (or stopped with SIGTERM) and
//! restarted on the same data directory. Checked: no alert state lost (same `activeAt`), no
//! acknowledged notification repeated, no pending one lost, acks and silences kept, history
//! recorded, and a corrupt or unusable database degrades health without stopping the server.

mod support;

#[path = "support/http_sink.rs"]
mod http_sink;

use std::time::{Duration, Instant};

use http_sink::{HttpSink, Reply};
use klaxon::telemetry::time::parse_rfc3339_ms;
use reqwest::Client;
use serde_json::{Value, json};
use support::{Server, scratch_dir};

/// Flags of every server here: fast rule evaluation and snapshots.
const FLAGS: &[&str] = &[
    "--evaluation-interval",
    "1s",
    "--state-save-interval",
    "200ms",
];

const RULES: &str = r#"
groups:
  - name: durable
    interval: 1s
    rules:
      - alert: DiskFull
        expr: disk_used_percent > 90
        for: 2s
        labels:
          severity: page
        annotations:
          summary: "disk {{ $labels.instance }} at {{ $value }}%"
      - alert: SlowBurn
        expr: slow_burn > 0
        for: 1h
"#;

fn config(url: &str) -> String {
    format!(
        r#"
route:
  receiver: hook
  group_by: [alertname]
  group_wait: 1s
  group_interval: 2s
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs:
      - url: "{url}"
"#
    )
}

async fn get(s: &Server, path: &str) -> Value {
    let r = Client::new().get(s.url(path)).send().await.unwrap();
    let status = r.status();
    let body = r.text().await.unwrap();
    assert!(status.is_success(), "GET {path}: {status} {body}");
    serde_json::from_str(&body).unwrap()
}

async fn post(s: &Server, path: &str, body: &Value) -> Value {
    let r = Client::new()
        .post(s.url(path))
        .json(body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let text = r.text().await.unwrap();
    assert!(status.is_success(), "POST {path}: {status} {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

async fn push(s: &Server, metric: &str, instance: &str, value: f64) {
    post(
        s,
        "/api/v1/push",
        &json!({"samples": [{"metric": metric, "labels": {"instance": instance}, "value": value}]}),
    )
    .await;
}

/// Polls `f` every 50 ms until it returns `Some`, for at most `secs`.
async fn until<T, F, Fut>(secs: u64, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until a stdout line satisfies `pred` (the log reader thread may lag the HTTP side).
async fn logged(s: &Server, what: &str, pred: impl Fn(&str) -> bool) {
    until(10, what, || async {
        s.log_lines().iter().any(|l| pred(l)).then_some(())
    })
    .await;
}

async fn rules_loaded(s: &Server) {
    until(30, "rules loaded", || async {
        let _ = Client::new().post(s.url("/-/reload")).send().await;
        let v = get(s, "/api/v1/rules").await;
        v.to_string().contains("SlowBurn").then_some(())
    })
    .await;
}

/// The `/api/v1/alerts` entry of `alertname`, once it is in `state`.
async fn rule_alert(s: &Server, alertname: &str, state: &str) -> Value {
    until(30, &format!("{alertname} {state}"), || async {
        let v = get(s, "/api/v1/alerts").await;
        v["data"]["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["labels"]["alertname"] == alertname && a["state"] == state)
            .cloned()
    })
    .await
}

async fn history(s: &Server, query: &str) -> Vec<Value> {
    get(s, &format!("/api/v1/history?{query}")).await["data"]
        .as_array()
        .unwrap()
        .clone()
}

fn firing_names(body: &Value) -> Vec<String> {
    body["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["status"] == "firing")
        .map(|a| a["labels"]["alertname"].as_str().unwrap().to_string())
        .collect()
}

async fn start(sink: &HttpSink) -> Server {
    let s = Server::start_with(FLAGS, Some(&config(&sink.url("/hook")))).await;
    std::fs::create_dir_all(s.dir.join("rules")).unwrap();
    std::fs::write(s.dir.join("rules/durable.yml"), RULES).unwrap();
    rules_loaded(&s).await;
    s
}

/// Fires DiskFull, waits for its notification to be delivered and recorded, restarts (crash or
/// clean), and checks the alert is still firing with the same `activeAt` and not re-sent.
async fn firing_alert_survives_restart(crash: bool) {
    let mut sink = HttpSink::ok(None).await;
    let s = start(&sink).await;
    push(&s, "disk_used_percent", "db-1", 97.0).await;
    let got = sink
        .next(Duration::from_secs(30))
        .await
        .expect("firing notification");
    assert_eq!(firing_names(&got.json()), ["DiskFull"]);
    let before = rule_alert(&s, "DiskFull", "firing").await;
    // The delivery is settled (outbox marked) before its history row is recorded.
    until(10, "delivery recorded", || async {
        history(&s, "alertname=DiskFull")
            .await
            .iter()
            .any(|e| e["kind"] == "notification" && e["outcome"] == "success")
            .then_some(())
    })
    .await;

    let s = s
        .restart_with(crash, FLAGS, Some(&config(&sink.url("/hook"))))
        .await;
    let after = rule_alert(&s, "DiskFull", "firing").await;
    assert_eq!(after["activeAt"], before["activeAt"], "activeAt kept");
    assert_eq!(after["labels"], before["labels"]);
    // The dispatcher still holds it, and the group's notification log says it was sent:
    // group_wait (1s) plus two group intervals (2s) pass without a repeat.
    let am = until(10, "alert in /api/v2/alerts", || async {
        let v = get(&s, "/api/v2/alerts").await;
        v.as_array()
            .unwrap()
            .iter()
            .find(|a| a["labels"]["alertname"] == "DiskFull")
            .cloned()
    })
    .await;
    assert_eq!(am["status"]["state"], "active");
    tokio::time::sleep(Duration::from_secs(6)).await;
    if let Some(again) = sink.try_next() {
        panic!(
            "notification repeated after restart: {}",
            String::from_utf8_lossy(&again.body)
        );
    }
    // History kept across the restart: the rule's transitions and the delivery.
    let h = history(&s, "alertname=DiskFull&limit=1000").await;
    let has = |pred: &dyn Fn(&Value) -> bool| h.iter().any(pred);
    assert!(has(&|e| e["source"] == "rule"
        && e["from_state"] == "inactive"
        && e["to_state"] == "pending"));
    assert!(has(&|e| e["source"] == "rule"
        && e["from_state"] == "pending"
        && e["to_state"] == "firing"));
    assert!(has(
        &|e| e["source"] == "dispatcher" && e["to_state"] == "firing"
    ));
    assert!(has(&|e| e["kind"] == "notification"
        && e["outcome"] == "success"
        && e["integration"] == "hook/webhook[0]"
        && e["channel"] == "webhook"));
    let health = get(&s, "/health/detailed").await;
    let state = health["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "state")
        .unwrap()
        .clone();
    assert_eq!(state["status"], "healthy", "{state}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_keeps_firing_alert_and_does_not_repeat_its_notification() {
    firing_alert_survives_restart(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_keeps_firing_alert_and_does_not_repeat_its_notification() {
    firing_alert_survives_restart(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_acknowledged_just_before_a_crash_is_not_repeated() {
    // No snapshot ever runs: only the outbox journal knows the notification was delivered.
    let flags = ["--evaluation-interval", "1s", "--state-save-interval", "1h"];
    let mut sink = HttpSink::ok(None).await;
    let s = Server::start_with(&flags, Some(&config(&sink.url("/hook")))).await;
    std::fs::create_dir_all(s.dir.join("rules")).unwrap();
    std::fs::write(s.dir.join("rules/durable.yml"), RULES).unwrap();
    rules_loaded(&s).await;
    push(&s, "disk_used_percent", "db-4", 93.0).await;
    sink.next(Duration::from_secs(30))
        .await
        .expect("firing notification");
    until(10, "delivery recorded", || async {
        history(&s, "alertname=DiskFull")
            .await
            .iter()
            .any(|e| e["outcome"] == "success")
            .then_some(())
    })
    .await;
    let s = s
        .restart_with(true, &flags, Some(&config(&sink.url("/hook"))))
        .await;
    logged(&s, "delivery replayed into the notification log", |l| {
        l.contains("outbox restored") && l.contains("\"replayed\":1")
    })
    .await;
    // The rule fires again after `for` (its state was never snapshotted); the group's log
    // already holds the alert, so nothing is sent.
    rule_alert(&s, "DiskFull", "firing").await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    if let Some(again) = sink.try_next() {
        panic!(
            "acknowledged notification repeated: {}",
            String::from_utf8_lossy(&again.body)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_alert_keeps_its_for_timer_within_prometheus_rules() {
    let sink = HttpSink::ok(None).await;
    let s = start(&sink).await;
    push(&s, "slow_burn", "x", 1.0).await;
    let before = rule_alert(&s, "SlowBurn", "pending").await;
    let active = parse_rfc3339_ms(before["activeAt"].as_str().unwrap()).unwrap();
    // Let a snapshot hold it, then crash.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let down = Instant::now();
    let s = s
        .restart_with(true, FLAGS, Some(&config(&sink.url("/hook"))))
        .await;
    let after = rule_alert(&s, "SlowBurn", "pending").await;
    let restarted = parse_rfc3339_ms(after["activeAt"].as_str().unwrap()).unwrap();
    // `for: 1h` is longer than the 10m grace period and far from due: activeAt moves forward by
    // the downtime (from the last evaluation before the crash to the restart) and no more.
    let downtime = i64::try_from(down.elapsed().as_millis()).unwrap();
    assert!(restarted >= active, "{restarted} < {active}");
    assert!(
        restarted - active <= downtime + 2_500,
        "moved {} ms for a downtime of about {downtime} ms",
        restarted - active
    );

    // Past the outage tolerance nothing is restored: the timer starts again at the restart.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let mut flags = FLAGS.to_vec();
    flags.extend(["--rules.alert.for-outage-tolerance", "1ms"]);
    let t0 = klaxon_now();
    let s = s
        .restart_with(true, &flags, Some(&config(&sink.url("/hook"))))
        .await;
    let fresh = rule_alert(&s, "SlowBurn", "pending").await;
    let fresh_at = parse_rfc3339_ms(fresh["activeAt"].as_str().unwrap()).unwrap();
    assert!(
        fresh_at >= t0,
        "not restored past the tolerance: {fresh_at} < {t0}"
    );
}

fn klaxon_now() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// Reads the outbox of a stopped server's database.
async fn outbox_rows(db: &std::path::Path) -> Vec<(String, Option<i64>)> {
    use sqlx::{ConnectOptions, Connection, Row};
    let mut c = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(db)
        .connect()
        .await
        .unwrap();
    let rows = sqlx::query("SELECT integration, delivered_seq FROM outbox")
        .fetch_all(&mut c)
        .await
        .unwrap();
    let out = rows
        .iter()
        .map(|r| (r.get::<String, _>(0), r.get::<Option<i64>, _>(1)))
        .collect();
    c.close().await.unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notification_in_flight_at_a_crash_is_delivered_once_after_restart() {
    // The receiver fails every attempt: the notifier keeps retrying, the outbox keeps the row.
    let mut failing = HttpSink::start(Vec::new(), Reply::status(503), None).await;
    let s = start(&failing).await;
    push(&s, "disk_used_percent", "db-2", 99.0).await;
    failing
        .next(Duration::from_secs(30))
        .await
        .expect("first attempt reached the receiver");
    let dir = s.dir.clone();
    let mut s = s;
    s.kill9();
    let pending = outbox_rows(&dir.join("data/state.db")).await;
    assert!(
        pending
            .iter()
            .any(|(i, seq)| i == "hook/webhook[0]" && seq.is_none()),
        "outbox holds the undelivered notification: {pending:?}"
    );
    drop(failing);

    // Restart against a receiver that now answers 200.
    let mut ok = HttpSink::ok(None).await;
    // (Already killed: the second SIGKILL of `restart_with` is a no-op.)
    let s = s
        .restart_with(true, FLAGS, Some(&config(&ok.url("/hook"))))
        .await;
    let got = ok
        .next(Duration::from_secs(30))
        .await
        .expect("pending notification delivered after restart");
    assert_eq!(firing_names(&got.json()), ["DiskFull"]);
    logged(&s, "re-sent from the outbox", |l| {
        l.contains("outbox restored") && l.contains("\"resubmitted\":1")
    })
    .await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    if let Some(again) = ok.try_next() {
        panic!(
            "delivered more than once: {}",
            String::from_utf8_lossy(&again.body)
        );
    }
    let h = history(&s, "alertname=DiskFull&limit=1000").await;
    assert!(
        h.iter()
            .any(|e| e["kind"] == "notification" && e["outcome"] == "success"),
        "{h:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_and_silences_survive_a_crash() {
    let sink = HttpSink::ok(None).await;
    let s = start(&sink).await;
    post(
        &s,
        "/api/v2/alerts",
        &json!([{"labels": {"alertname": "Manual", "instance": "m1"},
                 "endsAt": "2999-01-01T00:00:00Z"}]),
    )
    .await;
    let fp = until(10, "posted alert", || async {
        let v = get(&s, "/api/v2/alerts").await;
        v.as_array()
            .unwrap()
            .iter()
            .find(|a| a["labels"]["alertname"] == "Manual")
            .map(|a| a["fingerprint"].as_str().unwrap().to_string())
    })
    .await;
    post(
        &s,
        &format!("/api/v1/alerts/{fp}/ack"),
        &json!({"by": "alice", "comment": "mine"}),
    )
    .await;
    let sil = post(
        &s,
        "/api/v2/silences",
        &json!({
            "matchers": [{"name": "instance", "value": "web-9", "isRegex": false, "isEqual": true}],
            "startsAt": "2020-01-01T00:00:00Z",
            "endsAt": "2999-01-01T00:00:00Z",
            "createdBy": "bob",
            "comment": "maintenance"
        }),
    )
    .await;
    let id = sil["silenceID"].as_str().unwrap().to_string();
    tokio::time::sleep(Duration::from_millis(800)).await;

    let s = s
        .restart_with(true, FLAGS, Some(&config(&sink.url("/hook"))))
        .await;
    let acks = get(&s, "/api/v1/acks").await;
    assert_eq!(acks["data"][0]["fingerprint"], fp.as_str(), "{acks}");
    assert_eq!(acks["data"][0]["by"], "alice");
    let silence = get(&s, &format!("/api/v2/silence/{id}")).await;
    assert_eq!(silence["status"]["state"], "active");
    assert_eq!(silence["createdBy"], "bob");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_records_failed_attempts_with_their_error() {
    let sink = HttpSink::start(Vec::new(), Reply::status(400), None).await;
    let s = start(&sink).await;
    push(&s, "disk_used_percent", "db-3", 95.0).await;
    let failure = until(30, "failed attempt in history", || async {
        history(&s, "alertname=DiskFull")
            .await
            .into_iter()
            .find(|e| e["kind"] == "notification" && e["outcome"] == "failure")
    })
    .await;
    assert!(
        failure["error"].as_str().unwrap().contains("400"),
        "{failure}"
    );
    assert_eq!(failure["attempts"], 1);
    assert_eq!(failure["receiver"], "hook");
    let fp = failure["fingerprint"].as_str().unwrap().to_string();
    // Filters: fingerprint, time window, limit; bad parameters are 400s.
    let by_fp = history(&s, &format!("fingerprint={fp}&limit=1000")).await;
    assert!(!by_fp.is_empty() && by_fp.iter().all(|e| e["fingerprint"] == fp.as_str()));
    assert!(
        history(&s, "since=2000-01-01T00:00:00Z&until=2000-01-02T00:00:00Z")
            .await
            .is_empty()
    );
    assert_eq!(history(&s, "limit=1").await.len(), 1);
    let times: Vec<i64> = history(&s, "limit=1000")
        .await
        .iter()
        .map(|e| parse_rfc3339_ms(e["time"].as_str().unwrap()).unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first");
    let r = Client::new()
        .get(s.url("/api/v1/history?limit=0"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

fn state_check(health: &Value) -> Value {
    health["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "state")
        .expect("state check")
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_database_is_moved_aside_and_reported() {
    let dir = scratch_dir();
    std::fs::create_dir_all(dir.join("data")).unwrap();
    std::fs::write(
        dir.join("data/state.db"),
        b"definitely not an sqlite database".repeat(100),
    )
    .unwrap();
    let s = Server::start_in(dir, FLAGS, None).await;
    let health = get(&s, "/health/detailed").await;
    let st = state_check(&health);
    assert_eq!(st["status"], "degraded", "{st}");
    assert!(st["message"].as_str().unwrap().contains("corrupt"), "{st}");
    assert_eq!(st["details"]["mode"], "sqlite");
    let copy = st["details"]["corrupt_copy"].as_str().unwrap().to_string();
    assert!(std::path::Path::new(&copy).exists(), "{copy}");
    // It keeps working and persisting.
    post(
        &s,
        "/api/v2/alerts",
        &json!([{"labels": {"alertname": "AfterCorruption"}}]),
    )
    .await;
    logged(&s, "corruption logged", |l| {
        l.contains("state database is corrupt") && l.contains("state.db")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_database_path_runs_memory_only_and_says_so() {
    let dir = scratch_dir();
    std::fs::create_dir_all(dir.join("data/state.db")).unwrap();
    let s = Server::start_in(dir, FLAGS, None).await;
    let r = Client::new()
        .get(s.url("/health/detailed"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "degraded, still serving");
    let st = state_check(&r.json().await.unwrap());
    assert_eq!(st["status"], "degraded", "{st}");
    assert_eq!(st["details"]["mode"], "memory");
    let msg = st["message"].as_str().unwrap();
    assert!(
        msg.contains("memory-only") && msg.contains("state.db"),
        "{msg}"
    );
    // Alerts, silences and the history API still work (history from memory, with a warning).
    post(
        &s,
        "/api/v2/alerts",
        &json!([{"labels": {"alertname": "NoDisk"}}]),
    )
    .await;
    let v = until(10, "history in memory", || async {
        let v = get(&s, "/api/v1/history?alertname=NoDisk").await;
        (!v["data"].as_array().unwrap().is_empty()).then_some(v)
    })
    .await;
    assert!(v["warnings"][0].as_str().unwrap().contains("unavailable"));
    logged(&s, "open failure logged", |l| {
        l.contains("cannot open the state database") && l.contains("state.db")
    })
    .await;
}
