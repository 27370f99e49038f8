//! The write-ahead log through the real binary: restarts (SIGTERM and SIGKILL) keep pushed samples, a damaged
//! segment is reported, and an unusable data directory degrades ingestion without stopping the server.

mod support;

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use support::{Server, scratch_dir};

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

async fn push(s: &Server, body: &Value) -> (StatusCode, Value) {
    let r = Client::new()
        .post(s.url("/api/v1/push"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap())
}

/// Pushes 30 minutes of three float series and one string series (every 15 s), `per_request` steps at a time.
async fn push_window(s: &Server, end: i64, per_request: usize) {
    let steps: Vec<i64> = (0..120).map(|i| end - (119 - i) * 15_000).collect();
    for chunk in steps.chunks(per_request) {
        let mut samples = Vec::new();
        for &t in chunk {
            for inst in ["a", "b", "c"] {
                samples.push(
                    json!({"metric": "wal_requests_total", "labels": {"instance": inst},
                    "value": (t / 1000) as f64 * 0.5 + inst.len() as f64, "timestamp": t}),
                );
            }
            let state = if (t / 15_000) % 3 == 0 {
                "unhealthy"
            } else {
                "healthy"
            };
            samples.push(
                json!({"metric": "wal_db_health", "labels": {"db": "main"}, "value": state, "timestamp": t}),
            );
        }
        let (st, v) = push(s, &json!({ "samples": samples })).await;
        assert_eq!(st, 200, "{v}");
    }
}

async fn query_range(s: &Server, q: &str, start: i64, end: i64) -> Value {
    let r = Client::new()
        .get(s.url("/api/v1/query_range"))
        .query(&[
            ("query", q),
            ("start", &(start as f64 / 1000.0).to_string()),
            ("end", &(end as f64 / 1000.0).to_string()),
            ("step", "15s"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "query_range {q}");
    let v: Value = r.json().await.unwrap();
    let mut result = v["data"]["result"].as_array().unwrap().clone();
    result.sort_by_key(|x| x["metric"].to_string());
    Value::Array(result)
}

async fn instant(s: &Server, q: &str) -> Value {
    instant_at(s, q, now_ms()).await
}

async fn instant_at(s: &Server, q: &str, t: i64) -> Value {
    let r = Client::new()
        .get(s.url("/api/v1/query"))
        .query(&[("query", q), ("time", &(t as f64 / 1000.0).to_string())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "query {q}");
    let v: Value = r.json().await.unwrap();
    let mut result = v["data"]["result"].as_array().unwrap().clone();
    result.sort_by_key(|x| x["metric"].to_string());
    Value::Array(result)
}

/// What the tests compare before and after a restart: every raw sample of the window, via query_range.
async fn snapshot(s: &Server, start: i64, end: i64) -> (Value, Value) {
    (
        query_range(s, "wal_requests_total", start, end).await,
        query_range(s, "wal_db_health", start, end).await,
    )
}

async fn wal_check(s: &Server) -> (StatusCode, Value, Value) {
    let r = reqwest::get(s.url("/health/detailed")).await.unwrap();
    let status = r.status();
    let v: Value = r.json().await.unwrap();
    let check = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "wal")
        .cloned()
        .unwrap_or_else(|| panic!("no wal check: {v}"));
    (status, v, check)
}

fn segments(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir.join("data/wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn pushed_samples_survive_sigterm_and_sigkill() {
    let s = Server::start().await;
    let end = now_ms() / 15_000 * 15_000;
    let start = end - 119 * 15_000;
    push_window(&s, end, 10).await;
    let before = snapshot(&s, start, end).await;
    assert_eq!(before.0.as_array().unwrap().len(), 3, "{:?}", before.0);
    assert_eq!(before.0[0]["values"].as_array().unwrap().len(), 120);
    assert_eq!(before.1[0]["values"].as_array().unwrap().len(), 120);
    let counts = instant_at(&s, "count_over_time(wal_requests_total[1h])", end).await;
    assert_eq!(counts[0]["value"][1], "120", "{counts}");

    // Graceful stop.
    let s = s.restart(false, &[]).await;
    assert_eq!(snapshot(&s, start, end).await, before);
    assert_eq!(
        instant_at(&s, "count_over_time(wal_requests_total[1h])", end).await,
        counts
    );
    let replayed = s
        .log_lines()
        .into_iter()
        .find(|l| l.contains("WAL replayed"))
        .expect("replay log line");
    assert!(replayed.contains("\"samples\":480"), "{replayed}");
    let (_, _, check) = wal_check(&s).await;
    assert_eq!(check["status"], "healthy", "{check}");
    assert_eq!(check["details"]["replay"]["counts"]["stored"], 480);

    // More samples, then a crash: nothing runs at exit, the acknowledged samples are still in the log.
    let later = end + 15_000;
    let (st, v) = push(
        &s,
        &json!({"samples": [
            {"metric": "wal_requests_total", "labels": {"instance": "a"}, "value": 1e9, "timestamp": later},
            {"metric": "wal_db_health", "labels": {"db": "main"}, "value": "recovering", "timestamp": later},
        ]}),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let before = snapshot(&s, start, later).await;
    let s = s.restart(true, &[]).await;
    assert_eq!(snapshot(&s, start, later).await, before);
    let health = query_range(&s, "wal_db_health", later, later).await;
    assert_eq!(health[0]["values"][0][1], "recovering", "{health}");
}

#[tokio::test]
async fn request_policy_survives_sigkill_and_off_forgets() {
    let s = Server::start_with(&["--wal-fsync", "request"], None).await;
    let end = now_ms() / 15_000 * 15_000;
    let start = end - 119 * 15_000;
    push_window(&s, end, 40).await;
    let before = snapshot(&s, start, end).await;
    let (_, _, check) = wal_check(&s).await;
    assert_eq!(check["details"]["fsync"], "request");
    let s = s.restart(true, &["--wal-fsync", "request"]).await;
    assert_eq!(snapshot(&s, start, end).await, before);

    // With the WAL off, the log is neither written nor read.
    let s = s.restart(false, &["--wal-fsync", "off"]).await;
    assert_eq!(instant(&s, "wal_requests_total").await, json!([]));
    let (_, _, check) = wal_check(&s).await;
    assert_eq!(check["status"], "healthy");
    assert_eq!(check["details"]["enabled"], false);
}

#[tokio::test]
async fn damaged_segment_is_reported_and_good_prefix_kept() {
    let s = Server::start().await;
    let end = now_ms() / 15_000 * 15_000;
    let start = end - 119 * 15_000;
    push_window(&s, end - 15_000, 119).await;
    let first = snapshot(&s, start, end).await;
    let (st, v) = push(
        &s,
        &json!({"samples": [
            {"metric": "wal_requests_total", "labels": {"instance": "a"}, "value": 5, "timestamp": end},
        ]}),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let mut s = s;
    assert!(s.terminate().success());
    // Tear the last record (the last push) in the middle.
    let seg = segments(&s.dir).pop().unwrap();
    let len = std::fs::metadata(&seg).unwrap().len();
    let file = std::fs::OpenOptions::new().write(true).open(&seg).unwrap();
    file.set_len(len - 4).unwrap();
    drop(file);

    let dir = std::mem::replace(&mut s.dir, scratch_dir());
    drop(s);
    let s = Server::start_in(dir, &[], None).await;
    // Everything before the torn record is back; the torn push is not.
    assert_eq!(snapshot(&s, start, end).await, first);
    let (status, report, check) = wal_check(&s).await;
    assert_eq!(status, 200);
    assert_eq!(report["status"], "degraded", "{report}");
    assert_eq!(check["status"], "degraded", "{check}");
    let c = &check["details"]["replay"]["corruptions"][0];
    assert_eq!(c["file"], seg.display().to_string(), "{check}");
    assert!(c["offset"].as_u64().unwrap() > 8, "{c}");
    assert!(
        c["reason"].as_str().unwrap().contains("truncated record"),
        "{c}"
    );
    let msg = check["message"].as_str().unwrap();
    assert!(msg.contains(&seg.display().to_string()), "{msg}");
    let logged = s
        .log_lines()
        .into_iter()
        .find(|l| l.contains("WAL segment damaged"))
        .expect("corruption log line");
    assert!(logged.contains(&seg.display().to_string()), "{logged}");
    // Pushes work again and land in a new segment.
    let (st, _) = push(
        &s,
        &json!({"samples": [{"metric": "wal_after", "value": 1}]}),
    )
    .await;
    assert_eq!(st, 200);
}

#[tokio::test]
async fn unusable_data_dir_keeps_serving_and_refuses_pushes() {
    let dir = scratch_dir();
    // `--data-dir` points below a regular file: nothing can be created there, root or not.
    std::fs::write(dir.join("data"), b"not a directory").unwrap();
    let wal_dir = dir.join("data").join("wal");
    let s = Server::start_in(dir, &[], None).await;

    assert_eq!(instant(&s, "vector(1)").await[0]["value"][1], "1");
    let (st, v) = push(&s, &json!({"samples": [{"metric": "x", "value": 1}]})).await;
    assert_eq!(st, 503, "{v}");
    assert_eq!(v["status"], "error");
    let err = v["error"].as_str().unwrap();
    assert!(
        err.contains(&wal_dir.display().to_string()) && err.contains("write-ahead log"),
        "{err}"
    );
    // Nothing was stored.
    assert_eq!(instant(&s, "x").await, json!([]));

    let (status, report, check) = wal_check(&s).await;
    assert_eq!(status, 200);
    assert_eq!(report["status"], "degraded");
    assert_eq!(check["status"], "degraded");
    let msg = check["message"].as_str().unwrap();
    assert!(msg.contains(&wal_dir.display().to_string()), "{msg}");
    assert!(msg.to_lowercase().contains("not a directory"), "{msg}");
    assert_eq!(check["details"]["dir"], wal_dir.display().to_string());
    assert!(check["details"]["appends_failed"].as_u64().unwrap() >= 1);
    assert!(
        s.log_lines()
            .iter()
            .any(|l| l.contains("WAL write failed") && l.contains(&wal_dir.display().to_string())),
        "no log line names the WAL directory"
    );
}
