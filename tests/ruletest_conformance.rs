//! Runs every `promtool test rules` file of `../shared/conformance/promtool-tests/` (files with a
//! top-level `tests:`) and checks that each passes or fails as it does under promtool 3.x.
//!
//! Files expected to FAIL, all for the same reason promtool fails them (they exist upstream to
//! test failure reporting or command-line flags):
//! - `failing.yml`: deliberately wrong expectations.
//! - `bad-rules-error-test.yml`: the rule's evaluation errors (many-to-many matching).
//! - `bad-rules-syntax-test.yml`: the rule file does not parse.
//! - `bad-input-series.yml`: an input series does not parse.
//! - `bad-promql.yml`: the query of a `promql_expr_test` errors.
//! - `rules_run.yml`: its "wrong test" group is deliberately wrong (upstream selects the other group
//!   with `--run`, which klaxon does not have); the "correct test" group must pass.
//! - `rules_run_extrafields.yml`: its rule file has unknown group fields; promtool only accepts it
//!   with `--ignore-unknown-fields` (klaxon has no such flag).
//! - `rules_run_fuzzy.yml`: "wrong fuzzy match" is deliberately too far off for `fuzzy_compare`;
//!   "correct fuzzy match" must pass.
//! - `rules_run_no_fuzzy.yml`: without `fuzzy_compare`, a last-bit difference fails by design.
//!
//! Skipped (not failed): the native-histogram cases of `unittest.yml` (klaxon stores no native
//! histograms).

use std::path::{Path, PathBuf};

use klaxon::promqltest::Status;
use klaxon::ruletest::{RuleTestReport, is_rule_test_file, run_file};

const DIR: &str = "../shared/conformance/promtool-tests";

const EXPECTED_FAIL: &[&str] = &[
    "failing.yml",
    "bad-rules-error-test.yml",
    "bad-rules-syntax-test.yml",
    "bad-input-series.yml",
    "bad-promql.yml",
    "rules_run.yml",
    "rules_run_extrafields.yml",
    "rules_run_fuzzy.yml",
    "rules_run_no_fuzzy.yml",
];

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for p in paths {
        if p.is_dir() {
            collect(&p, out);
        } else if p.extension().is_some_and(|e| e == "yml" || e == "yaml") && is_rule_test_file(&p)
        {
            out.push(p);
        }
    }
}

fn named_group_passes(r: &RuleTestReport, name: &str) -> bool {
    let cases: Vec<_> = r
        .cases
        .iter()
        .filter(|c| c.test_name.as_deref() == Some(name))
        .collect();
    !cases.is_empty() && cases.iter().all(|c| c.status == Status::Pass)
}

#[test]
fn promtool_conformance_files() {
    let dir = Path::new(DIR);
    if !dir.is_dir() {
        println!("skipping: {DIR} not found");
        return;
    }
    let mut files = Vec::new();
    collect(dir, &mut files);
    assert!(files.len() >= 16, "found only {files:?}");
    let mut problems = Vec::new();
    for f in &files {
        let name = f.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let report = run_file(f).expect("readable");
        let failed = report.count(Status::Fail) > 0;
        let expect_fail = EXPECTED_FAIL.contains(&name);
        println!(
            "{name}: {} passed, {} failed, {} skipped",
            report.count(Status::Pass),
            report.count(Status::Fail),
            report.count(Status::Skip)
        );
        if failed != expect_fail {
            problems.push(format!(
                "{}: expected {}, got:\n  {}",
                f.display(),
                if expect_fail { "failure" } else { "pass" },
                klaxon::ruletest::report_lines(&report, true).join("\n  ")
            ));
        }
        if !expect_fail && report.count(Status::Pass) == 0 {
            problems.push(format!("{}: nothing passed", f.display()));
        }
        match name {
            "rules_run.yml" if !named_group_passes(&report, "correct test") => {
                problems.push("rules_run.yml: \"correct test\" should pass".into())
            }
            "rules_run_fuzzy.yml" if !named_group_passes(&report, "correct fuzzy match") => {
                problems.push("rules_run_fuzzy.yml: \"correct fuzzy match\" should pass".into())
            }
            "unittest.yml" if report.count(Status::Skip) != 3 => {
                problems.push("unittest.yml: exactly the 3 histogram cases skip".into())
            }
            _ => {}
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
