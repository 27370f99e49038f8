//! `amtool` (Alertmanager's own CLI) against the real klaxon binary: alerts, silences and config
//! through the v2 API. Skips with a notice when `amtool` is not installed (`.ci/run` installs it
//! from Debian's `prometheus-alertmanager` when it can).

mod support;

use std::process::Command;

use support::Server;

fn amtool(base: &str, args: &[&str]) -> Option<(bool, String)> {
    let out = Command::new("amtool")
        .arg(format!("--alertmanager.url={base}"))
        .args(args)
        .output()
        .ok()?;
    Some((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amtool_adds_queries_silences_and_expires() {
    if Command::new("amtool").arg("--version").output().is_err() {
        eprintln!("SKIP: amtool not installed (Debian package prometheus-alertmanager)");
        return;
    }
    let cfg = "route:\n  receiver: default\n  group_wait: 0s\nreceivers:\n  - name: default\n";
    let s = Server::start_with(&[], Some(cfg)).await;
    let base = s.base.clone();
    let run = move |args: Vec<String>| {
        let base = base.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                amtool(&base, &args).expect("amtool runs")
            })
            .await
            .unwrap()
        }
    };
    let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();

    let (ok, _) = run(args(&[
        "alert",
        "add",
        "alertname=DiskFull",
        "instance=web-1",
        "severity=critical",
        "--annotation=summary=disk is full",
    ]))
    .await;
    assert!(ok, "amtool alert add");
    let (ok, out) = run(args(&["alert", "query", "-o", "json"])).await;
    assert!(ok);
    let alerts: serde_json::Value = serde_json::from_str(&out).expect("JSON from amtool");
    assert_eq!(alerts[0]["labels"]["alertname"], "DiskFull");
    assert_eq!(alerts[0]["status"]["state"], "active");
    assert_eq!(alerts[0]["annotations"]["summary"], "disk is full");

    let (ok, id) = run(args(&[
        "silence",
        "add",
        "instance=web-1",
        "--comment=maintenance",
        "--author=alice",
        "--duration=1h",
    ]))
    .await;
    assert!(ok, "amtool silence add");
    let id = id.trim().to_string();
    assert_eq!(id.len(), 36, "a UUID-shaped silence id: {id:?}");
    let (ok, out) = run(args(&["alert", "query", "--silenced", "-o", "simple"])).await;
    assert!(ok);
    assert!(out.contains("suppressed"), "{out}");
    let (ok, out) = run(args(&["silence", "query", "-q"])).await;
    assert!(ok);
    assert_eq!(out.trim(), id);

    let (ok, _) = run(args(&["silence", "expire", &id])).await;
    assert!(ok, "amtool silence expire");
    let (_, out) = run(args(&["silence", "query", "-q"])).await;
    assert!(out.trim().is_empty(), "no active silence left: {out}");
    let (_, out) = run(args(&["alert", "query", "-o", "simple"])).await;
    assert!(
        out.contains("active") && !out.contains("suppressed"),
        "{out}"
    );

    let (ok, out) = run(args(&["config", "show"])).await;
    assert!(ok);
    assert!(out.contains("receiver: default"), "{out}");
}
