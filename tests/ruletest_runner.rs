//! Behaviour of the `promtool test rules` runner beyond the upstream files: klaxon's string values,
//! group evaluation order, templates, bad input, and the `klaxon test` dispatch.

use std::path::{Path, PathBuf};
use std::process::Command;

use klaxon::promqltest::Status;
use klaxon::ruletest::{RuleTestReport, is_rule_test_source, run_source};

/// A scratch directory for rule files, unique per test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("klaxon-ruletest-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn run_with_rules(name: &str, rules: &str, test: &str) -> RuleTestReport {
    let dir = scratch(name);
    std::fs::write(dir.join("rules.yml"), rules).unwrap();
    run_source(&dir.join("test.yml"), test)
}

fn statuses(r: &RuleTestReport) -> Vec<Status> {
    r.cases.iter().map(|c| c.status).collect()
}

#[test]
fn detects_test_files() {
    assert!(is_rule_test_source("rule_files:\n  - a.yml\n"));
    assert!(is_rule_test_source("# c\ntests:\n  - {}\n"));
    assert!(!is_rule_test_source(
        "load 1m\n  tests 1\n\neval instant at 0 tests\n"
    ));
    assert!(!is_rule_test_source("groups:\n  - name: x\n    tests: 1\n"));
}

#[test]
fn string_series_and_templates() {
    let rules = r#"
groups:
  - name: g
    rules:
      - alert: DbDown
        expr: database_health == 'unhealthy'
        for: 1m
        labels:
          severity: critical
        annotations:
          summary: '{{ $labels.db }} is {{ $value }} ({{ $externalLabels.env }}, {{ $externalURL }})'
          count: '{{ with query "count(database_health)" }}{{ . | first | value }}{{ end }}'
"#;
    let test = r#"
rule_files: [rules.yml]
tests:
  - interval: 1m
    external_labels: {env: prod}
    external_url: http://klaxon.example
    input_series:
      - series: 'database_health{db="main"}'
        values: '"healthy" "unhealthy"x3'
    alert_rule_test:
      - eval_time: 1m
        alertname: DbDown
      - eval_time: 2m
        alertname: DbDown
        exp_alerts:
          - exp_labels: {severity: critical, db: main}
            exp_annotations:
              summary: 'main is unhealthy (prod, http://klaxon.example)'
              count: '1'
"#;
    let r = run_with_rules("strings", rules, test);
    assert_eq!(statuses(&r), [Status::Pass, Status::Pass], "{:?}", r.cases);
}

#[test]
fn group_eval_order_decides_what_a_rule_sees() {
    let rules = r#"
groups:
  - name: reader
    rules:
      - record: copy
        expr: base
  - name: writer
    rules:
      - record: base
        expr: vector(1)
"#;
    let test = |order: &str| {
        format!(
            "rule_files: [rules.yml]\n{order}\ntests:\n  - promql_expr_test:\n      - expr: copy\n        eval_time: 0\n        exp_samples:\n          - labels: copy\n            value: 1\n"
        )
    };
    let r = run_with_rules("order", rules, &test("group_eval_order: [writer, reader]"));
    assert_eq!(statuses(&r), [Status::Pass], "{:?}", r.cases);
    // File order: `reader` runs first and sees nothing at t=0.
    let r = run_with_rules("order2", rules, &test(""));
    assert_eq!(statuses(&r), [Status::Fail], "{:?}", r.cases);
    let r = run_with_rules("order3", rules, &test("group_eval_order: [nope]"));
    assert_eq!(statuses(&r), [Status::Fail]);
    assert!(r.cases[0].reason.contains("nope"), "{:?}", r.cases);
}

#[test]
fn pending_alerts_are_not_firing() {
    let rules = "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up == 0\n        for: 2m\n";
    let test = r#"
rule_files: [rules.yml]
tests:
  - input_series:
      - series: 'up{job="x"}'
        values: '0x5'
    alert_rule_test:
      - {eval_time: 1m, alertname: A, exp_alerts: []}
      - {eval_time: 2m30s, alertname: A, exp_alerts: [{exp_labels: {job: x}}]}
    promql_expr_test:
      - expr: ALERTS
        eval_time: 1m
        exp_samples:
          - labels: 'ALERTS{alertname="A", alertstate="pending", job="x"}'
            value: 1
"#;
    let r = run_with_rules("pending", rules, test);
    assert_eq!(statuses(&r), [Status::Pass; 3], "{:?}", r.cases);
}

#[test]
fn bad_files_fail_with_clear_messages_and_never_panic() {
    let cases: &[(&str, &str)] = &[
        ("tests: [", "cannot parse"),
        ("tests:\n  - bogus: 1\n", "bogus"),
        ("rule_files: [missing.yml]\ntests: [{}]\n", "missing.yml"),
        ("evaluation_interval: 5x\ntests: [{}]\n", "5x"),
        ("tests:\n  - interval: soon\n", "soon"),
        (
            "tests:\n  - alert_rule_test: [{eval_time: 1m}]\n",
            "alertname",
        ),
        (
            "tests:\n  - input_series: [{series: 'x{', values: '1'}]\n",
            "input_series",
        ),
        (
            "tests:\n  - input_series: [{series: x, values: '1 q'}]\n",
            "values",
        ),
        (
            "tests:\n  - promql_expr_test: [{expr: 'sum(', eval_time: 0}]\n",
            "error",
        ),
        (
            "tests:\n  - promql_expr_test: [{expr: x, eval_time: 1000000000d}]\n",
            "evaluations",
        ),
        ("tests:\n  - start_timestamp: tomorrow\n", "start_timestamp"),
    ];
    for (src, needle) in cases {
        let r = run_source(Path::new("bad.yml"), src);
        assert!(
            r.count(Status::Fail) > 0,
            "{src:?} should fail: {:?}",
            r.cases
        );
        let text = klaxon::ruletest::report_lines(&r, false).join("\n");
        assert!(text.starts_with("bad.yml: "), "{text}");
        assert!(text.contains(needle), "{src:?}: {needle:?} not in {text}");
    }
}

#[test]
fn cli_runs_both_formats_with_one_summary() {
    let dir = scratch("cli");
    let script = dir.join("a.test");
    std::fs::write(&script, "load 1m\n  m 1\n\neval instant at 0 m\n  m 1\n").unwrap();
    let promtool = dir.join("b.yml");
    std::fs::write(
        &promtool,
        "tests:\n  - input_series: [{series: m, values: '1'}]\n    promql_expr_test:\n      - {expr: m, eval_time: 0, exp_samples: [{labels: m, value: 2}]}\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_klaxon"))
        .arg("test")
        .arg(&script)
        .arg(&promtool)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines.last(),
        Some(&"1 passed, 1 failed, 0 skipped"),
        "{stdout}"
    );
    assert!(
        lines[0].contains("b.yml: test 1: promql_expr_test 1"),
        "{stdout}"
    );
    assert!(lines[0].contains("expected [m 2]"), "{stdout}");
    assert_eq!(out.status.code(), Some(1));
}
