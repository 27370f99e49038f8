//! The shipped `rules/`: every rule file loads without errors, and every unit test under
//! `rules/tests/` passes.

use std::path::{Path, PathBuf};

use klaxon::promqltest::Status;
use klaxon::rules::{LoadOptions, Rule, load_paths};

/// `rules/*.yml`: the rule files (the promtool tests live in `rules/tests/*.yaml`).
fn rule_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir("rules")
        .expect("rules/ exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "yml"))
        .collect();
    files.sort();
    files
}

fn test_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir("rules/tests")
        .expect("rules/tests/ exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

#[test]
fn shipped_rules_load_without_errors() {
    let files = rule_files();
    assert_eq!(files.len(), 3, "{files:?}");
    let report = load_paths(&files, &LoadOptions::default());
    let errors: Vec<String> = report.errors.iter().map(|d| d.to_string()).collect();
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    let warnings: Vec<String> = report.warnings.iter().map(|d| d.to_string()).collect();
    assert!(warnings.is_empty(), "{}", warnings.join("\n"));
    let names: Vec<&str> = report
        .rule_set
        .groups
        .iter()
        .flat_map(|g| g.rules.iter().map(Rule::name))
        .collect();
    for expected in [
        "error_rate",
        "job:http_request_duration_seconds:mean5m",
        "job:database_query_duration_seconds:p95_5m",
        "provider:model_requests:error_ratio_rate5m",
        "CPUUsageCritical",
        "MemoryUsageWarning",
        "DiskUsageCritical",
        "ErrorRateWarning",
        "ResponseTimeCritical",
        "database_connection_failed",
        "high_error_rate",
        "CriticalSecurityEvent",
        "NoRequests",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
    // The guide's flat-format alerts keep their channels and durations.
    let flat: Vec<_> = report
        .rule_set
        .groups
        .iter()
        .flat_map(|g| g.rules.iter())
        .filter_map(|r| match r {
            Rule::Alerting(a) if !a.channels.is_empty() => Some(a),
            _ => None,
        })
        .collect();
    assert_eq!(flat.len(), 2);
    let db = flat
        .iter()
        .find(|a| a.name == "database_connection_failed")
        .unwrap();
    assert_eq!(db.channels, ["email", "slack", "webhook"]);
    assert_eq!(db.for_ms, 60_000);
    let er = flat.iter().find(|a| a.name == "high_error_rate").unwrap();
    assert_eq!(er.channels, ["email", "slack"]);
    assert_eq!(er.for_ms, 600_000);
}

#[test]
fn rules_dir_loads_without_errors() {
    // The directory walk skips the promtool test files under rules/tests/, so `klaxon serve` and
    // `klaxon check` can take the whole folder.
    let report = load_paths(&[PathBuf::from("rules")], &LoadOptions::default());
    let errors: Vec<String> = report.errors.iter().map(|d| d.to_string()).collect();
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    assert!(report.rule_count() >= 22, "{} rules", report.rule_count());
    assert!(
        report.files.iter().all(|f| !f.starts_with("rules/tests")),
        "test files were loaded as rules: {:?}",
        report.files
    );
}

#[test]
fn every_alerting_rule_has_a_unit_test() {
    let report = load_paths(&rule_files(), &LoadOptions::default());
    let tests: String = test_files()
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    for g in &report.rule_set.groups {
        for r in &g.rules {
            let needle = match r {
                Rule::Alerting(a) => format!("alertname: {}", a.name),
                Rule::Recording(r) => r.record.clone(),
            };
            assert!(tests.contains(&needle), "no unit test mentions {needle:?}");
        }
    }
}

#[test]
fn shipped_rule_tests_pass() {
    let files = test_files();
    assert!(files.len() >= 5, "{files:?}");
    let mut failures = Vec::new();
    for f in &files {
        let report = klaxon::ruletest::run_file(Path::new(f)).expect("readable");
        assert!(
            report.count(Status::Pass) > 0,
            "{}: nothing ran",
            f.display()
        );
        if report.count(Status::Fail) > 0 || report.count(Status::Skip) > 0 {
            failures.extend(klaxon::ruletest::report_lines(&report, true));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
