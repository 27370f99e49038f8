//! The real `klaxon serve` binary with `--rules <dir>`: evaluation, `/api/v1/alerts`, hot reload
//! on file change, a broken file keeping the old rules, and `POST /-/reload`.

mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

struct Proc {
    child: Child,
    base: String,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(dir: &Path, rules: &Path) -> Proc {
    spawn_with(dir, rules, &[])
}

fn spawn_with(dir: &Path, rules: &Path, extra: &[&str]) -> Proc {
    let mut child = Command::new(env!("CARGO_BIN_EXE_klaxon"))
        .arg("serve")
        .args(["--listen", "127.0.0.1:0", "--log-format", "json"])
        .args(extra)
        .arg("--data-dir")
        .arg(dir.join("data"))
        .arg("--rules")
        .arg(rules)
        .env("LOG_LEVEL", "info")
        .env_remove("LOG_DIR")
        .env_remove("METRICS_PORT")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn klaxon");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if line.contains("klaxon listening")
                && let Ok(v) = serde_json::from_str::<Value>(&line)
                && let Some(addr) = v["metadata"]["listen_addr"].as_str()
                && let Some(tx) = tx.take()
            {
                let _ = tx.send(addr.to_string());
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("klaxon logged its listen address");
    Proc {
        child,
        base: format!("http://{addr}"),
    }
}

async fn get(p: &Proc, path: &str) -> Value {
    reqwest::get(format!("{}{path}", p.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Polls `f` every 50 ms until it returns true or `limit` passes; returns the time it took.
async fn wait_for<F, Fut>(limit: Duration, what: &str, mut f: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if f().await {
            return start.elapsed();
        }
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

const RULES: &str = r#"
groups:
  - name: load
    interval: 1s
    rules:
      - alert: HighLoad
        expr: load > 1
        labels:
          severity: warning
        annotations:
          summary: "load {{ $value }} on {{ $labels.instance }}"
"#;

fn firing_severity(v: &Value) -> Option<String> {
    v["data"]["alerts"].as_array()?.iter().find_map(|a| {
        (a["labels"]["alertname"] == "HighLoad" && a["state"] == "firing")
            .then(|| a["labels"]["severity"].as_str().unwrap_or("").to_string())
    })
}

#[tokio::test]
async fn rules_evaluate_reload_and_survive_broken_files() {
    let dir = support::scratch_dir();
    let rules = dir.join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(rules.join("load.yml"), RULES).unwrap();
    let p = spawn(&dir, &rules);
    let client = reqwest::Client::new();
    let status = get(&p, "/api/v1/status/reload").await;
    assert_eq!(status["data"]["success"], true, "{status}");

    // Keep the series fresh while the test runs.
    let push_url = format!("{}/api/v1/import/prometheus", p.base);
    let pusher = {
        let client = client.clone();
        tokio::spawn(async move {
            loop {
                let _ = client
                    .post(&push_url)
                    .body("load{instance=\"a\"} 5\n")
                    .send()
                    .await;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    };

    wait_for(Duration::from_secs(10), "the alert to fire", || async {
        firing_severity(&get(&p, "/api/v1/alerts").await).as_deref() == Some("warning")
    })
    .await;
    let r = get(&p, "/api/v1/rules").await;
    let rule = &r["data"]["groups"][0]["rules"][0];
    assert_eq!(rule["type"], "alerting");
    assert_eq!(rule["health"], "ok");
    assert_eq!(rule["state"], "firing");
    assert_eq!(rule["alerts"][0]["annotations"]["summary"], "load 5 on a");
    assert_eq!(rule["alerts"][0]["value"], "5e+00");
    assert!(!rule["evaluations"].as_array().unwrap().is_empty());
    assert_eq!(r["data"]["groups"][0]["interval"], 1.0);

    // An edit is live within ~1-2 s.
    std::fs::write(
        rules.join("load.yml"),
        RULES.replace("severity: warning", "severity: critical"),
    )
    .unwrap();
    let took = wait_for(Duration::from_secs(5), "the edit to be live", || async {
        firing_severity(&get(&p, "/api/v1/alerts").await).as_deref() == Some("critical")
    })
    .await;
    assert!(took < Duration::from_millis(2500), "edit took {took:?}");

    // A broken file: the reload fails, the old rules keep running.
    std::fs::write(rules.join("broken.yml"), "groups:\n  - name: [oops\n").unwrap();
    wait_for(Duration::from_secs(5), "the reload error", || async {
        let s = get(&p, "/api/v1/status/reload").await;
        s["data"]["success"] == false && !s["data"]["errors"].as_array().unwrap().is_empty()
    })
    .await;
    let s = get(&p, "/api/v1/status/reload").await;
    assert!(
        s["data"]["errors"][0]
            .as_str()
            .unwrap()
            .contains("broken.yml"),
        "{s}"
    );
    let before = get(&p, "/api/v1/rules").await["data"]["groups"][0]["lastEvaluation"].clone();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let after = get(&p, "/api/v1/rules").await;
    assert_ne!(
        after["data"]["groups"][0]["lastEvaluation"], before,
        "old rules still evaluate"
    );
    assert_eq!(
        firing_severity(&get(&p, "/api/v1/alerts").await).as_deref(),
        Some("critical")
    );
    let metrics = client
        .get(format!("{}/metrics", p.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("klaxon_rules_last_reload_successful 0"),
        "{metrics}"
    );
    let bad = client
        .post(format!("{}/-/reload", p.base))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 500);

    // Fixed: POST /-/reload applies.
    std::fs::remove_file(rules.join("broken.yml")).unwrap();
    let ok = client
        .post(format!("{}/-/reload", p.base))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let v: Value = ok.json().await.unwrap();
    assert_eq!(v["data"]["success"], true, "{v}");
    pusher.abort();
}

#[tokio::test]
async fn templates_see_external_labels_and_url_from_config() {
    let dir = support::scratch_dir();
    let rules = dir.join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(
        rules.join("up.yml"),
        r#"
groups:
  - name: ext
    interval: 1s
    rules:
      - alert: AlwaysOn
        expr: vector(1)
        annotations:
          where: "{{ $externalLabels.cluster }} at {{ $externalURL }}"
"#,
    )
    .unwrap();
    let config = dir.join("klaxon.yml");
    std::fs::write(
        &config,
        "global:\n  external_labels: {cluster: eu-1}\n  external_url: https://klaxon.example\n",
    )
    .unwrap();
    let p = spawn_with(&dir, &rules, &["--config", config.to_str().unwrap()]);
    wait_for(Duration::from_secs(10), "the templated alert", || async {
        let v = get(&p, "/api/v1/alerts").await;
        v["data"]["alerts"].as_array().is_some_and(|a| {
            a.iter()
                .any(|a| a["annotations"]["where"] == "eu-1 at https://klaxon.example")
        })
    })
    .await;
}

/// Kubernetes mounts a ConfigMap as `..data -> ..<timestamp>` with the visible files linking through
/// `..data`, and updates it by swapping the `..data` symlink atomically; the swap must reload.
#[cfg(unix)]
#[tokio::test]
async fn configmap_symlink_swap_and_sighup_reload() {
    use std::os::unix::fs::symlink;
    let dir = support::scratch_dir();
    let rules = dir.join("rules");
    let v1 = rules.join("..2026_11_24_v1");
    let v2 = rules.join("..2026_11_24_v2");
    std::fs::create_dir_all(&v1).unwrap();
    std::fs::create_dir_all(&v2).unwrap();
    std::fs::write(v1.join("load.yml"), RULES).unwrap();
    std::fs::write(
        v2.join("load.yml"),
        RULES.replace("severity: warning", "severity: critical"),
    )
    .unwrap();
    symlink("..2026_11_24_v1", rules.join("..data")).unwrap();
    symlink("..data/load.yml", rules.join("load.yml")).unwrap();
    let p = spawn(&dir, &rules);
    let client = reqwest::Client::new();
    let push_url = format!("{}/api/v1/import/prometheus", p.base);
    let pusher = tokio::spawn(async move {
        loop {
            let _ = client
                .post(&push_url)
                .body("load{instance=\"a\"} 5\n")
                .send()
                .await;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    wait_for(Duration::from_secs(10), "the alert to fire", || async {
        firing_severity(&get(&p, "/api/v1/alerts").await).as_deref() == Some("warning")
    })
    .await;

    // The swap: a new symlink renamed over `..data`, as the kubelet does it.
    symlink("..2026_11_24_v2", rules.join("..data_tmp")).unwrap();
    std::fs::rename(rules.join("..data_tmp"), rules.join("..data")).unwrap();
    wait_for(
        Duration::from_secs(5),
        "the swapped rules to be live",
        || async {
            firing_severity(&get(&p, "/api/v1/alerts").await).as_deref() == Some("critical")
        },
    )
    .await;

    // SIGHUP reloads although no file changed: the reload timestamp moves.
    let before = get(&p, "/api/v1/status/reload").await["data"]["lastReload"].clone();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let status = Command::new("kill")
        .args(["-HUP", &p.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    wait_for(Duration::from_secs(5), "the SIGHUP reload", || async {
        let s = get(&p, "/api/v1/status/reload").await;
        s["data"]["lastReload"] != before && s["data"]["success"] == true
    })
    .await;
    pusher.abort();
}
