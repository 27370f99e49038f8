//! `klaxon routes test` and `klaxon check --config` through the real binary: the routing
//! expectations of `../shared/conformance/README.md`, amtool's output format and exit codes.
//! Tests that need the conformance folder skip with a notice when it is absent.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const AM_DIR: &str = "../shared/conformance/alertmanager";

fn am_dir() -> Option<PathBuf> {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join(AM_DIR);
    if d.is_dir() {
        Some(d)
    } else {
        eprintln!("skipping: {AM_DIR} is absent (conformance data lives outside the repository)");
        None
    }
}

fn klaxon(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_klaxon"))
        .args(args)
        .env_clear()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The routing table of the conformance README: config, alert labels, receivers in order.
const ROUTING: &[(&str, &[&str], &str)] = &[
    ("cli-testdata/conf.routing.yml", &["test=1"], "test1"),
    ("cli-testdata/conf.routing.yml", &["test=2"], "test1,test2"),
    (
        "cli-testdata/conf.routing-reverted.yml",
        &["test=2"],
        "test2,test1",
    ),
    (
        "cli-testdata/conf.routing.yml",
        &["test=volovina"],
        "default",
    ),
    (
        "doc-examples/simple.yml",
        &["service=foo1", "severity=critical"],
        "team-X-pager",
    ),
    (
        "doc-examples/simple.yml",
        &["service=foo1", "severity=warning"],
        "team-X-mails",
    ),
    (
        "doc-examples/simple.yml",
        &["service=files", "severity=critical"],
        "team-Y-pager",
    ),
    (
        "doc-examples/simple.yml",
        &["service=database", "owner=team-X"],
        "team-X-pager",
    ),
    (
        "doc-examples/simple.yml",
        &["service=database"],
        "team-DB-pager",
    ),
    (
        "doc-examples/simple.yml",
        &["service=other"],
        "team-X-mails",
    ),
];

#[test]
fn routes_test_matches_the_conformance_table() {
    let Some(dir) = am_dir() else { return };
    for (config, labels, want) in ROUTING {
        let cfg = dir.join(config);
        let mut args = vec!["routes", "test", "--config", cfg.to_str().unwrap()];
        args.extend_from_slice(labels);
        let out = klaxon(&args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{config} {labels:?}: {}",
            text(&out.stderr)
        );
        assert_eq!(
            text(&out.stdout),
            format!("{want}\n"),
            "{config} {labels:?}"
        );
        // amtool's --verify.receivers accepts the same list...
        let verify = format!("--verify.receivers={want}");
        let mut args2 = args.clone();
        args2.insert(2, &verify);
        assert_eq!(klaxon(&args2).status.code(), Some(0), "{config} {labels:?}");
    }
    // ...and fails on any other.
    let cfg = dir.join("doc-examples/simple.yml");
    let out = klaxon(&[
        "routes",
        "test",
        "--config",
        cfg.to_str().unwrap(),
        "--verify.receivers=team-DB-pager",
        "service=other",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains("did not match"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn routes_test_errors_exit_1_with_the_reason_on_stderr() {
    let out = klaxon(&[
        "routes",
        "test",
        "--config",
        "/nonexistent/klaxon.yaml",
        "a=b",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("/nonexistent/klaxon.yaml"),
        "{}",
        text(&out.stderr)
    );
    assert!(text(&out.stdout).is_empty());

    let out = klaxon(&[
        "routes",
        "test",
        "--config",
        "klaxon.yaml",
        "severity=~crit",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("key=value"),
        "{}",
        text(&out.stderr)
    );

    if let Some(dir) = am_dir() {
        let bad = dir.join("cli-testdata/conf.bad.yml");
        let out = klaxon(&["routes", "test", "--config", bad.to_str().unwrap(), "a=b"]);
        assert_eq!(out.status.code(), Some(1));
        assert!(
            text(&out.stderr).contains("must be a YAML mapping"),
            "{}",
            text(&out.stderr)
        );
    }
}

#[test]
fn routes_test_on_the_shipped_example() {
    // Runs with an empty environment: every channel is unconfigured, routing still works.
    for (labels, want) in [
        (
            &["severity=critical", "alertname=DatabaseDown"][..],
            "sre,email,slack\n",
        ),
        (&["severity=high"][..], "email,slack\n"),
        (&["severity=\"warning\""][..], "slack\n"),
    ] {
        let mut args = vec!["routes", "test"];
        args.extend_from_slice(labels);
        let out = klaxon(&args);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        assert_eq!(text(&out.stdout), want, "{labels:?}");
    }
}

#[test]
fn check_config_accepts_valid_and_rejects_invalid_conformance_configs() {
    let Some(dir) = am_dir() else { return };
    let bad = [
        "cli-testdata/conf.bad.yml",
        "config-testdata/conf.nil-match_re-route.yml",
        "config-testdata/conf.nil-source_match_re-inhibition.yml",
        "config-testdata/conf.nil-target_match_re-inhibition.yml",
    ];
    let tmp = std::env::temp_dir().join(format!("klaxon-routes-cli-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    for sub in ["cli-testdata", "config-testdata", "doc-examples"] {
        for e in std::fs::read_dir(dir.join(sub)).unwrap() {
            let p = e.unwrap().path();
            let rel = format!("{sub}/{}", p.file_name().unwrap().to_string_lossy());
            // Run from a directory without `rules/`, so only the config is checked.
            let out = Command::new(env!("CARGO_BIN_EXE_klaxon"))
                .args(["check", "--config"])
                .arg(&p)
                .env_clear()
                .current_dir(&tmp)
                .output()
                .unwrap();
            let stderr = text(&out.stderr);
            if bad.contains(&rel.as_str()) {
                assert_eq!(out.status.code(), Some(1), "{rel}: {stderr}");
                assert!(stderr.starts_with("error: "), "{rel}: {stderr}");
                assert!(
                    stderr.contains(p.file_name().unwrap().to_str().unwrap()),
                    "{stderr}"
                );
                assert!(text(&out.stdout).contains("1 errors"));
            } else {
                assert_eq!(out.status.code(), Some(0), "{rel}: {stderr}");
                assert_eq!(text(&out.stdout), "config ok\n", "{rel}");
                assert!(!stderr.contains("error"), "{rel}: {stderr}");
            }
        }
    }
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn check_reports_unconfigured_channels_of_the_shipped_example() {
    let out = klaxon(&["check", "--config", "klaxon.yaml", "rules"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(
            "warning: klaxon.yaml: slack/slack[0]: unconfigured: SLACK_WEBHOOK_URL not set"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("ALERT_TO_EMAILS not set"), "{stderr}");
}
