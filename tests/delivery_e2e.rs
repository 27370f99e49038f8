//! End to end through the real binary: a pushed sample makes a flat-format rule fire, and the
//! alert reaches a webhook receiver and an SMTP server listening on loopback; then the Alertmanager
//! API, silences, acknowledgements and the manual trigger are exercised over HTTP.

mod support;

#[path = "support/http_sink.rs"]
mod http_sink;
#[path = "support/smtp.rs"]
mod smtp;

use std::time::Duration;

use http_sink::HttpSink;
use serde_json::{Value, json};
use smtp::{Script, SmtpSink};
use support::Server;

const RULE: &str = r#"
- name: "database_connection_failed"
  description: "Database connection failure"
  condition: "database_health == 'unhealthy'"
  severity: "critical"
  channels: ["email", "webhook"]
  duration_minutes: 0
"#;

fn config(webhook: &str, smtp_port: u16) -> String {
    format!(
        r#"
route:
  receiver: default
  group_by: [alertname]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: default
channels:
  webhook:
    url: "{webhook}"
    headers:
      Authorization: "Bearer e2e-token"
  email:
    smtp_host: 127.0.0.1
    smtp_port: {smtp_port}
    from_email: klaxon@example.test
    to_emails: "oncall@example.test,sre@example.test"
    tls: false
"#
    )
}

async fn get_json(client: &reqwest::Client, url: String) -> Value {
    client
        .get(url)
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("JSON body")
}

async fn wait_rule_loaded(s: &Server) {
    let client = reqwest::Client::new();
    for _ in 0..200 {
        let r = client
            .post(s.url("/-/reload"))
            .send()
            .await
            .expect("reload");
        assert!(r.status().is_success(), "reload failed: {}", r.status());
        let rules: Value = get_json(&client, s.url("/api/v1/rules")).await;
        if rules.to_string().contains("database_connection_failed") {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("rule never loaded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushed_sample_fires_rule_and_reaches_webhook_and_email() {
    let mut hook = HttpSink::ok(None).await;
    let mut mail = SmtpSink::start(Script::default()).await;
    let cfg = config(&hook.url("/hook"), mail.addr.port());
    let s = Server::start_with(&["--evaluation-interval", "1s"], Some(&cfg)).await;
    std::fs::create_dir_all(s.dir.join("rules")).unwrap();
    std::fs::write(s.dir.join("rules/db.yml"), RULE).unwrap();
    wait_rule_loaded(&s).await;

    let client = reqwest::Client::new();
    let push = json!({"samples": [
        {"metric": "database_health", "labels": {"instance": "db-1"}, "value": "unhealthy"}
    ]});
    let r = client
        .post(s.url("/api/v1/push"))
        .json(&push)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "push: {}", r.status());

    let got = hook
        .next(Duration::from_secs(30))
        .await
        .expect("webhook received the alert");
    assert_eq!(got.path, "/hook");
    assert_eq!(got.header("authorization"), Some("Bearer e2e-token"));
    let body = got.json();
    assert_eq!(body["version"], "4");
    assert_eq!(body["status"], "firing");
    assert_eq!(body["receiver"], "webhook");
    let alert = &body["alerts"][0];
    assert_eq!(alert["labels"]["alertname"], "database_connection_failed");
    assert_eq!(alert["labels"]["instance"], "db-1");
    assert_eq!(alert["labels"]["severity"], "critical");
    assert_eq!(alert["status"], "firing");

    let m = mail
        .next(Duration::from_secs(30))
        .await
        .expect("email received the alert");
    assert_eq!(m.from, "klaxon@example.test");
    let mut to = m.to.clone();
    to.sort();
    assert_eq!(to, ["oncall@example.test", "sre@example.test"]);
    assert!(
        m.data.contains("database_connection_failed"),
        "mail body names the alert: {}",
        m.data
    );

    // The Alertmanager API shows the alert with its receivers; the fingerprint acks it.
    let alerts: Value = get_json(&client, s.url("/api/v2/alerts")).await;
    let a = alerts
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["labels"]["alertname"] == "database_connection_failed")
        .expect("alert listed");
    let fp = a["fingerprint"].as_str().unwrap().to_string();
    let mut receivers: Vec<&str> = a["receivers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    receivers.sort();
    assert_eq!(receivers, ["email", "webhook"]);
    let r = client
        .post(s.url(&format!("/api/v1/alerts/{fp}/ack")))
        .json(&json!({"by": "alice", "comment": "looking"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let acks: Value = get_json(&client, s.url("/api/v1/acks")).await;
    assert_eq!(acks["data"][0]["fingerprint"], fp.as_str());
    assert_eq!(acks["data"][0]["by"], "alice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_trigger_and_silences_over_http() {
    let mut hook = HttpSink::ok(None).await;
    let cfg = format!(
        r#"
route:
  receiver: hook
  group_wait: 0s
  group_interval: 1s
receivers:
  - name: hook
    webhook_configs:
      - url: "{}"
"#,
        hook.url("/am")
    );
    let s = Server::start_with(&[], Some(&cfg)).await;
    let client = reqwest::Client::new();

    // A silence for instance=web-1 mutes the first trigger but not the second.
    let r = client
        .post(s.url("/api/v2/silences"))
        .json(&json!({
            "matchers": [{"name": "instance", "value": "web-1", "isRegex": false, "isEqual": true}],
            "startsAt": "2020-01-01T00:00:00Z",
            "endsAt": "2999-01-01T00:00:00Z",
            "createdBy": "test",
            "comment": "maintenance"
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let id = r.json::<Value>().await.unwrap()["silenceID"]
        .as_str()
        .unwrap()
        .to_string();
    let got: Value = get_json(&client, s.url(&format!("/api/v2/silence/{id}"))).await;
    assert_eq!(got["status"]["state"], "active");

    for inst in ["web-1", "web-2"] {
        let r = client
            .post(s.url("/api/v1/alerts/trigger"))
            .json(&json!({
                "name": "high_cpu_usage",
                "message": "CPU usage is above 90%",
                "labels": {"component": "system", "instance": inst},
                "annotations": {"cpu_percent": 95.2},
                "severity": "warning"
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{:?}", r.text().await);
    }
    let got = hook.next(Duration::from_secs(20)).await.expect("webhook");
    let body = got.json();
    let instances: Vec<&str> = body["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["labels"]["instance"].as_str().unwrap())
        .collect();
    assert_eq!(instances, ["web-2"], "the silenced alert is not sent");
    assert_eq!(body["alerts"][0]["annotations"]["cpu_percent"], "95.2");
    assert_eq!(
        body["alerts"][0]["annotations"]["message"],
        "CPU usage is above 90%"
    );

    let alerts: Value = get_json(&client, s.url("/api/v2/alerts?silenced=true")).await;
    let web1 = alerts
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["labels"]["instance"] == "web-1")
        .expect("silenced alert is listed");
    assert_eq!(web1["status"]["state"], "suppressed");
    assert_eq!(web1["status"]["silencedBy"][0], id.as_str());

    // Bad input names the field.
    let r = client
        .post(s.url("/api/v1/alerts/trigger"))
        .json(&json!({"message": "no name"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("name"));

    // Expiring the silence lets web-1 through at the next flush.
    let r = client
        .delete(s.url(&format!("/api/v2/silence/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let got = hook
        .next(Duration::from_secs(20))
        .await
        .expect("second flush");
    let n = got.json()["alerts"].as_array().unwrap().len();
    assert_eq!(n, 2, "both alerts after the silence expired");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_file_hot_reloads_and_a_broken_one_keeps_the_running_config() {
    let first = "route:\n  receiver: a\nreceivers:\n  - name: a\n";
    let s = Server::start_with(&[], Some(first)).await;
    let client = reqwest::Client::new();
    let names = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap().to_string())
            .collect()
    };
    let got = get_json(&client, s.url("/api/v2/receivers")).await;
    assert_eq!(names(&got), ["a"]);

    let path = s.dir.join("klaxon.yml");
    let second = "route:\n  receiver: a\n  routes:\n    - matchers: [team=\"b\"]\n      receiver: b\n\
                  receivers:\n  - name: a\n  - name: b\n";
    std::fs::write(&path, second).unwrap();
    let mut reloaded = false;
    for _ in 0..100 {
        if names(&get_json(&client, s.url("/api/v2/receivers")).await).contains(&"b".to_string()) {
            reloaded = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(reloaded, "saving the config file reloads it");

    // A broken file is reported and the running config stays.
    std::fs::write(
        &path,
        "route:\n  receiver: nobody\nreceivers:\n  - name: a\n",
    )
    .unwrap();
    let mut reported = Value::Null;
    for _ in 0..100 {
        let health = get_json(&client, s.url("/health/detailed")).await;
        let delivery = health["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "delivery")
            .cloned()
            .unwrap();
        if !delivery["details"]["config_error"].is_null() {
            reported = delivery;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(reported["status"], "degraded", "{reported}");
    assert!(
        reported["details"]["config_error"]
            .as_str()
            .unwrap()
            .contains("nobody"),
        "{reported}"
    );
    let got = get_json(&client, s.url("/api/v2/receivers")).await;
    assert_eq!(names(&got), ["a", "b"], "the previous config keeps running");
}
