//! End-to-end tests of `klaxon serve`: the real binary on a loopback port, real HTTP for every endpoint.

mod support;

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use support::Server;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

async fn get_json(s: &Server, path: &str) -> (StatusCode, Value) {
    let r = reqwest::get(s.url(path)).await.unwrap();
    let status = r.status();
    (status, r.json().await.unwrap())
}

async fn post(
    s: &Server,
    path: &str,
    ct: &str,
    body: impl Into<reqwest::Body>,
) -> reqwest::Response {
    Client::new()
        .post(s.url(path))
        .header("content-type", ct)
        .body(body)
        .send()
        .await
        .unwrap()
}

/// Series matching `selector` (via `/api/v1/series`), to prove what was or was not stored.
async fn series(s: &Server, selector: &str) -> Vec<Value> {
    let r = Client::new()
        .get(s.url("/api/v1/series"))
        .query(&[("match[]", selector)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    v["data"].as_array().unwrap().clone()
}

async fn query(s: &Server, q: &str) -> Value {
    let r = Client::new()
        .get(s.url("/api/v1/query"))
        .query(&[("query", q)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "query {q}");
    r.json().await.unwrap()
}

fn assert_error(v: &Value, error_type: &str, needle: &str) {
    assert_eq!(v["status"], "error", "{v}");
    assert_eq!(v["errorType"], error_type, "{v}");
    let msg = v["error"].as_str().unwrap();
    assert!(msg.contains(needle), "{msg:?} should contain {needle:?}");
}

#[tokio::test]
async fn text_push_then_query_vector() {
    let s = Server::start().await;
    let r = post(
        &s,
        "/api/v1/import/prometheus",
        "text/plain; version=0.0.4",
        "# TYPE up gauge\nup{job=\"api\",instance=\"a:1\"} 1\nhttp_requests_total{code=\"500\"} 7\n",
    )
    .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"], "success");
    assert_eq!(v["accepted"], 2);
    assert_eq!(v["dropped"]["out_of_order"], 0);

    let v = query(&s, "up").await;
    assert_eq!(v["status"], "success");
    assert_eq!(v["data"]["resultType"], "vector");
    let result = v["data"]["result"].as_array().unwrap();
    assert_eq!(result.len(), 1);
    assert_eq!(
        result[0]["metric"],
        json!({"__name__": "up", "job": "api", "instance": "a:1"})
    );
    let value = result[0]["value"].as_array().unwrap();
    assert!(value[0].is_number());
    assert_eq!(value[1], "1");

    // POST form and an explicit RFC 3339 / float time.
    let t = (now_ms() as f64 / 1000.0).to_string();
    let r = Client::new()
        .post(s.url("/api/v1/query"))
        .form(&[
            ("query", "sum(http_requests_total) * 2"),
            ("time", t.as_str()),
        ])
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["data"]["result"][0]["value"][1], "14", "{v}");
    assert_eq!(v["data"]["result"][0]["metric"], json!({}));

    let v = query(&s, "1 / 0").await;
    assert_eq!(v["data"]["resultType"], "scalar");
    assert_eq!(v["data"]["result"][1], "+Inf");
    let v = query(&s, "\"hello\"").await;
    assert_eq!(v["data"]["resultType"], "string");
    assert_eq!(v["data"]["result"][1], "hello");

    // Same sample again is a duplicate, an older one is out of order.
    let r = post(
        &s,
        "/api/v1/import/prometheus",
        "text/plain",
        "old_metric 1 2000000000000\nold_metric 2 1000000000000\n",
    )
    .await;
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["accepted"], 1, "{v}");
    assert_eq!(v["dropped"]["out_of_order"], 1, "{v}");
}

#[tokio::test]
async fn string_samples_and_query_range() {
    let s = Server::start().await;
    let now = now_ms();
    let body = json!({"samples": [
        {"metric": "database_health", "labels": {"db": "main"}, "value": "unhealthy"},
        {"metric": "database_health", "labels": {"db": "replica"}, "value": "healthy"},
        {"metric": "queue_depth", "value": 1, "timestamp": now - 60_000},
        {"metric": "queue_depth", "value": 2, "timestamp": now - 30_000},
        {"metric": "queue_depth", "value": 3.5, "timestamp": now},
    ]});
    let r = post(&s, "/api/v1/push", "application/json", body.to_string()).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["accepted"], 5, "{v}");

    let v = query(&s, "database_health == 'unhealthy'").await;
    let result = v["data"]["result"].as_array().unwrap();
    assert_eq!(result.len(), 1, "{v}");
    assert_eq!(result[0]["metric"]["db"], "main");
    assert_eq!(result[0]["value"][1], "unhealthy");

    let start = ((now - 60_000) as f64 / 1000.0).to_string();
    let end = (now as f64 / 1000.0).to_string();
    let r = Client::new()
        .get(s.url("/api/v1/query_range"))
        .query(&[
            ("query", "queue_depth"),
            ("start", start.as_str()),
            ("end", end.as_str()),
            ("step", "30s"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["data"]["resultType"], "matrix", "{v}");
    let values = v["data"]["result"][0]["values"].as_array().unwrap();
    let got: Vec<&str> = values.iter().map(|p| p[1].as_str().unwrap()).collect();
    assert_eq!(got, vec!["1", "2", "3.5"]);
    assert!(values[0][0].is_number());

    // Range query errors.
    let r = Client::new()
        .get(s.url("/api/v1/query_range"))
        .query(&[
            ("query", "queue_depth"),
            ("start", "10"),
            ("end", "5"),
            ("step", "1"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_error(&r.json().await.unwrap(), "bad_data", "end timestamp");
}

#[tokio::test]
async fn query_errors_use_prometheus_codes() {
    let s = Server::start().await;
    let (st, v) = get_json(&s, "/api/v1/query?query=sum(").await;
    assert_eq!(st, 400);
    assert_error(&v, "bad_data", "parse error");
    let (st, v) = get_json(&s, "/api/v1/query?query=up&time=yesterday").await;
    assert_eq!(st, 400);
    assert_error(&v, "bad_data", "invalid parameter \"time\"");
    let (st, v) = get_json(&s, "/api/v1/query").await;
    assert_eq!(st, 400);
    assert_error(&v, "bad_data", "query");
    post(
        &s,
        "/api/v1/import/prometheus",
        "text/plain",
        "x{a=\"1\"} 1\nx{a=\"2\"} 1\ny 1\n",
    )
    .await;
    let (st, v) = get_json(&s, "/api/v1/query?query=y%20%2B%20on()%20x").await;
    assert_eq!(st, 422, "{v}");
    assert_error(&v, "execution", "many");
    let (st, _) = get_json(&s, "/api/v1/query?query=up&timeout=1s").await;
    assert_eq!(st, 200);
}

#[tokio::test]
async fn series_labels_and_values() {
    let s = Server::start().await;
    post(
        &s,
        "/api/v1/import/prometheus",
        "text/plain",
        "cpu{host=\"a\",env=\"prod\"} 1\ncpu{host=\"b\",env=\"dev\"} 2\nmem{host=\"a\"} 3\n",
    )
    .await;
    let found = series(&s, "cpu{env=\"prod\"}").await;
    assert_eq!(
        found,
        vec![json!({"__name__": "cpu", "env": "prod", "host": "a"})]
    );
    let (st, v) = get_json(&s, "/api/v1/labels").await;
    assert_eq!(st, 200);
    assert_eq!(v["data"], json!(["__name__", "env", "host"]));
    let (_, v) = get_json(&s, "/api/v1/label/host/values").await;
    assert_eq!(v["data"], json!(["a", "b"]));
    let (_, v) = get_json(
        &s,
        "/api/v1/label/__name__/values?match[]=%7Bhost%3D%22a%22%7D",
    )
    .await;
    assert_eq!(v["data"], json!(["cpu", "mem"]));
    let (st, v) = get_json(&s, "/api/v1/series").await;
    assert_eq!(st, 400);
    assert_error(&v, "bad_data", "match[]");
    let (st, _) = get_json(&s, "/api/v1/series?match[]=rate(cpu[5m])").await;
    assert_eq!(st, 400);
}

#[derive(Clone, PartialEq, prost::Message)]
struct WriteRequest {
    #[prost(message, repeated, tag = "1")]
    timeseries: Vec<TimeSeries>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct TimeSeries {
    #[prost(message, repeated, tag = "1")]
    labels: Vec<Label>,
    #[prost(message, repeated, tag = "2")]
    samples: Vec<Sample>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Label {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(string, tag = "2")]
    value: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Sample {
    #[prost(double, tag = "1")]
    value: f64,
    #[prost(int64, tag = "2")]
    timestamp: i64,
}

fn remote_write_body(metric: &str, value: f64) -> Vec<u8> {
    use prost::Message;
    let req = WriteRequest {
        timeseries: vec![TimeSeries {
            labels: vec![
                Label {
                    name: "__name__".into(),
                    value: metric.into(),
                },
                Label {
                    name: "job".into(),
                    value: "rw".into(),
                },
            ],
            samples: vec![Sample {
                value,
                timestamp: now_ms(),
            }],
        }],
    };
    snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .unwrap()
}

const RW1: &str = "application/x-protobuf";

#[tokio::test]
async fn remote_write_round_trip_and_rejections() {
    let s = Server::start().await;
    let write = |ct: &'static str, body: Vec<u8>| {
        Client::new()
            .post(s.url("/api/v1/write"))
            .header("content-type", ct)
            .header("content-encoding", "snappy")
            .header("x-prometheus-remote-write-version", "0.1.0")
            .body(body)
            .send()
    };
    let r = write(RW1, remote_write_body("rw_metric", 42.0))
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let v = query(&s, "rw_metric").await;
    assert_eq!(v["data"]["result"][0]["value"][1], "42");
    assert_eq!(v["data"]["result"][0]["metric"]["job"], "rw");

    // remote write 2.0 is refused with 415 so senders fall back.
    let r = write(
        "application/x-protobuf;proto=io.prometheus.write.v2.Request",
        remote_write_body("rw_v2", 1.0),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 415);
    assert!(series(&s, "rw_v2").await.is_empty());

    // Truncated snappy.
    let mut body = remote_write_body("rw_truncated", 1.0);
    body.truncate(body.len() / 2);
    let r = write(RW1, body).await.unwrap();
    assert_eq!(r.status(), 400);
    assert_error(&r.json().await.unwrap(), "bad_data", "");
    assert!(series(&s, "rw_truncated").await.is_empty());

    // Valid snappy around bytes that are not a protobuf WriteRequest.
    let garbage = snap::raw::Encoder::new()
        .compress_vec(b"\x0a\xff\xff\xff\xff\x0frw_bad_proto")
        .unwrap();
    let r = write(RW1, garbage).await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(series(&s, "{job=\"rw\"}").await.len() == 1);
}

#[tokio::test]
async fn bad_text_json_and_gzip_bodies_store_nothing() {
    let s = Server::start().await;
    let r = post(
        &s,
        "/api/v1/import/prometheus",
        "text/plain",
        "good_line 1\nalso_good 2\nbroken{ 3\n",
    )
    .await;
    assert_eq!(r.status(), 400);
    assert_error(&r.json().await.unwrap(), "bad_data", "line 3");
    assert!(series(&s, "good_line").await.is_empty());

    let body = json!({"samples": [
        {"metric": "json_good", "value": 1},
        {"metric": "json_bad", "value": true},
    ]});
    let r = post(&s, "/api/v1/push", "application/json", body.to_string()).await;
    assert_eq!(r.status(), 400);
    assert_error(&r.json().await.unwrap(), "bad_data", "samples[1]");
    assert!(series(&s, "json_good").await.is_empty());
    let r = post(&s, "/api/v1/push", "application/json", "{\"samples\": [").await;
    assert_eq!(r.status(), 400);

    // gzip works; a corrupt gzip body is rejected.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(b"gzipped_metric 5\n").unwrap();
    let gz = gz.finish().unwrap();
    let send = |body: Vec<u8>| {
        Client::new()
            .post(s.url("/api/v1/import/prometheus"))
            .header("content-type", "text/plain")
            .header("content-encoding", "gzip")
            .body(body)
            .send()
    };
    let r = send(gz.clone()).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        query(&s, "gzipped_metric").await["data"]["result"][0]["value"][1],
        "5"
    );
    let r = send(gz[..gz.len() - 10].to_vec()).await.unwrap();
    assert_eq!(r.status(), 400);

    // OpenMetrics by content type (timestamps in seconds, # EOF required).
    let r = post(
        &s,
        "/api/v1/import/prometheus",
        "application/openmetrics-text; version=1.0.0",
        "om_metric 1\n",
    )
    .await;
    assert_eq!(r.status(), 400, "missing # EOF");
    let r = post(
        &s,
        "/api/v1/import/prometheus",
        "application/openmetrics-text; version=1.0.0",
        "om_metric 1\n# EOF\n",
    )
    .await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn oversized_bodies_get_413() {
    let s = Server::start_with(&[], Some("limits:\n  max_body_bytes: 1024\n")).await;
    let mut big = String::new();
    for i in 0..200 {
        big.push_str(&format!("too_big{{i=\"{i}\"}} 1\n"));
    }
    let r = post(&s, "/api/v1/import/prometheus", "text/plain", big.clone()).await;
    assert_eq!(r.status(), 413);
    assert_error(&r.json().await.unwrap(), "bad_data", "");
    let r = post(&s, "/api/v1/push", "application/json", big.into_bytes()).await;
    assert_eq!(r.status(), 413);
    assert!(series(&s, "too_big").await.is_empty());
    let r = post(&s, "/api/v1/import/prometheus", "text/plain", "small 1\n").await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn pushgateway_paths_add_grouping_labels() {
    let s = Server::start().await;
    let r = Client::new()
        .put(s.url("/metrics/job/backup/instance/db1"))
        .body("backup_last_success 1700000000\n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let found = series(&s, "backup_last_success").await;
    assert_eq!(
        found,
        vec![json!({"__name__": "backup_last_success", "job": "backup", "instance": "db1"})]
    );
    // job@base64: "a/b" -> YS9i
    let r = Client::new()
        .post(s.url("/metrics/job@base64/YS9i"))
        .body("slashy 1\n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(series(&s, "slashy").await[0]["job"], "a/b");
    let r = Client::new()
        .post(s.url("/metrics/job/x/orphan"))
        .body("orphan 1\n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(series(&s, "orphan").await.is_empty());
}

#[tokio::test]
async fn auth_tokens_guard_ingestion() {
    let s = Server::start_with(&[], Some("auth:\n  ingest_tokens: [s3cret]\n")).await;
    let push = |token: Option<&'static str>, body: &'static str| {
        let mut rb = Client::new()
            .post(s.url("/api/v1/import/prometheus"))
            .body(body);
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        rb.send()
    };
    let r = push(None, "no_token 1\n").await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    assert_error(
        &r.json().await.unwrap(),
        "unauthorized",
        "missing bearer token",
    );
    let r = push(Some("wrong"), "wrong_token 1\n").await.unwrap();
    assert_eq!(r.status(), 401);
    let r = push(Some("s3cret"), "right_token 1\n").await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(series(&s, "no_token").await.is_empty());
    assert!(series(&s, "wrong_token").await.is_empty());
    assert_eq!(series(&s, "right_token").await.len(), 1);
    // Queries stay open.
    let (st, _) = get_json(&s, "/api/v1/labels").await;
    assert_eq!(st, 200);
    let logs = s.log_lines().join("\n");
    assert!(logs.contains("\"event_type\":\"security\""), "{logs}");
}

#[tokio::test]
async fn health_metrics_and_request_ids() {
    let s = Server::start().await;
    post(&s, "/api/v1/import/prometheus", "text/plain", "h 1\n").await;
    let (st, v) = get_json(&s, "/health").await;
    assert_eq!(st, 200);
    assert_eq!(v["status"], "healthy");

    let (st, v) = get_json(&s, "/health/detailed").await;
    assert_eq!(st, 200);
    for k in ["status", "message", "timestamp", "uptime_seconds", "checks"] {
        assert!(v.get(k).is_some(), "missing {k}: {v}");
    }
    assert_eq!(v["status"], "healthy");
    let checks = v["checks"].as_array().unwrap();
    let names: Vec<&str> = checks.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        vec!["store", "ingestion", "query", "wal", "state", "delivery"]
    );
    for c in checks {
        for k in ["name", "status", "message", "duration_ms", "details"] {
            assert!(c.get(k).is_some(), "check missing {k}: {c}");
        }
    }
    assert_eq!(checks[0]["details"]["series_count"], 1);
    assert!(checks[0]["details"]["memory_bytes"].as_u64().unwrap() > 0);

    let text = reqwest::get(s.url("/health/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("klaxon_health_status 1"), "{text}");
    assert!(
        text.contains("klaxon_health_check_status{check=\"store\"} 1"),
        "{text}"
    );

    let _ = get_json(&s, "/api/v1/label/job/values").await;
    let r = Client::new()
        .get(s.url("/api/v1/labels"))
        .header("x-request-id", "test-corr-42")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "test-corr-42");
    let r = reqwest::get(s.url("/health")).await.unwrap();
    assert!(
        r.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .starts_with("req_")
    );

    let metrics = reqwest::get(s.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("route=\"/api/v1/label/{name}/values\""),
        "{metrics}"
    );
    assert!(
        !metrics.contains("/api/v1/label/job/values"),
        "raw path leaked"
    );
    assert!(metrics.contains("http_requests_total{"), "{metrics}");
    assert!(
        metrics.contains("http_request_duration_seconds_bucket{"),
        "{metrics}"
    );
    assert!(
        metrics.contains("klaxon_ingested_samples_total{protocol=\"prometheus_text\"} 1"),
        "{metrics}"
    );
    for m in [
        "process_open_fds_total ",
        "process_threads_total ",
        "process_resident_memory_bytes ",
        "klaxon_series_in_memory 1",
        "klaxon_query_duration_seconds",
    ] {
        assert!(metrics.contains(m), "missing {m}: {metrics}");
    }

    let logs = s.log_lines();
    let line = logs
        .iter()
        .find(|l| l.contains("test-corr-42"))
        .expect("request log line");
    let v: Value = serde_json::from_str(line).unwrap();
    assert_eq!(v["event_type"], "request");
    assert_eq!(v["level"], "INFO");
    assert_eq!(v["context"]["correlation_id"], "test-corr-42");
    assert_eq!(v["context"]["trace_id"].as_str().unwrap().len(), 32);
    assert!(v["context"]["span_id"].is_string());
    assert_eq!(v["metadata"]["route"], "/api/v1/labels");
    assert!(v["metadata"]["duration_ms"].is_number());
    assert!(v["metadata"]["line"].is_number());
    assert!(v["timestamp"].as_str().unwrap().ends_with('Z'));
}

#[tokio::test]
async fn sigterm_shuts_down_cleanly() {
    let mut s = Server::start().await;
    post(
        &s,
        "/api/v1/import/prometheus",
        "text/plain",
        "before_stop 1\n",
    )
    .await;
    let status = s.terminate();
    assert_eq!(status.code(), Some(0));
    let logs = s.log_lines().join("\n");
    assert!(logs.contains("shutdown requested"), "{logs}");
    assert!(logs.contains("klaxon stopped"), "{logs}");
}

#[tokio::test]
async fn client_probe_endpoints_answer_like_prometheus() {
    let s = Server::start().await;
    let (st, v) = get_json(&s, "/api/v1/status/buildinfo").await;
    assert_eq!(st, 200);
    assert_eq!(v["status"], "success");
    assert_eq!(v["data"]["version"], env!("CARGO_PKG_VERSION"));
    let (st, v) = get_json(&s, "/api/v1/metadata").await;
    assert_eq!(st, 200);
    assert!(v["data"].as_object().unwrap().is_empty());
    let (st, v) = get_json(&s, "/api/v1/query_exemplars?query=up").await;
    assert_eq!(st, 200);
    assert!(v["data"].as_array().unwrap().is_empty());
    for probe in ["/-/healthy", "/-/ready"] {
        let r = reqwest::get(s.url(probe)).await.unwrap();
        assert_eq!(r.status(), 200, "{probe}");
    }
}
