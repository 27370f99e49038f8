//! `promtool test rules` files, run unchanged by `klaxon test` (Prometheus'
//! `docs/configuration/unit_testing_rules.md`).
//!
//! A test file names rule files (relative to itself, globs allowed) and test groups. Each group
//! loads its `input_series` (the expanding notation of [`crate::promqltest::series`], including
//! klaxon's quoted string values) into a fresh store, then evaluates every rule group at every
//! `evaluation_interval` step from the start (`start_timestamp`, default 0) up to the largest
//! `eval_time`, in `group_eval_order` first and then load order, exactly as promtool does
//! (group `interval`s do not change the steps). Input samples become visible when the step
//! reaches them. At each step the `alert_rule_test` cases whose `eval_time` falls in
//! `[step, step + evaluation_interval)` compare the **firing** alerts of that name (labels
//! including `alertname`, rendered annotations; pending alerts do not count) with `exp_alerts`.
//! After the last step every `promql_expr_test` runs its query at `eval_time` and compares the
//! samples as a set: floats exactly, or within the last mantissa bit with `fuzzy_compare`.
//!
//! Verdicts are per test case (one `alert_rule_test` or `promql_expr_test` entry); a test group
//! with no cases counts as one case ("rules evaluate without errors"). Problems that stop a group
//! (bad input series, rule evaluation errors) fail the group as one case; problems with the file
//! (YAML, rule files that do not load) fail it as one case. Native histograms are not supported:
//! cases expecting one, or querying a metric loaded with histogram values, are skipped.

mod file;
mod run;

use std::path::{Path, PathBuf};

pub use file::{Scalar, parse_duration, parse_start};

use crate::promqltest::Status;

/// The outcome of one test case (or of a problem that stopped a test group or the file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseReport {
    /// 1-based index of the test group in `tests`; `None` for file-level problems.
    pub test: Option<usize>,
    /// The test group's `name`, if given.
    pub test_name: Option<String>,
    /// What was checked, e.g. `alert_rule_test 2 (InstanceDown at 10m)`.
    pub what: String,
    /// Verdict.
    pub status: Status,
    /// Why it failed or was skipped; empty on pass.
    pub reason: String,
}

/// Everything one test file produced.
#[derive(Debug, Clone)]
pub struct RuleTestReport {
    /// The file's path as given.
    pub path: PathBuf,
    /// One entry per case, in file order.
    pub cases: Vec<CaseReport>,
}

impl RuleTestReport {
    /// Number of cases with `status`.
    pub fn count(&self, status: Status) -> usize {
        self.cases.iter().filter(|c| c.status == status).count()
    }
}

/// Why a test file could not be run at all.
#[derive(Debug, thiserror::Error)]
pub enum RuleTestError {
    /// The file could not be read (missing, unreadable, not UTF-8).
    #[error("cannot read {path}: {source}")]
    Io {
        /// The path as given.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

pub use crate::rules::is_rule_test_source;

/// Whether the file at `path` is a promtool rule test; unreadable files are not.
pub fn is_rule_test_file(path: &Path) -> bool {
    std::fs::read_to_string(path).is_ok_and(|s| is_rule_test_source(&s))
}

/// Runs one test file.
pub fn run_file(path: &Path) -> Result<RuleTestReport, RuleTestError> {
    let src = std::fs::read_to_string(path).map_err(|source| RuleTestError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(run_source(path, &src))
}

/// Runs a test file given as text; `path` names it and anchors relative `rule_files`.
pub fn run_source(path: &Path, src: &str) -> RuleTestReport {
    RuleTestReport {
        path: path.to_path_buf(),
        cases: run::run(path, src),
    }
}

/// The report of one file as printed: failures (with `verbose`, every case with its verdict).
pub fn report_lines(report: &RuleTestReport, verbose: bool) -> Vec<String> {
    let file = report.path.display();
    report
        .cases
        .iter()
        .filter(|c| verbose || c.status == Status::Fail)
        .map(|c| {
            let test = match (c.test, &c.test_name) {
                (Some(i), Some(n)) => format!("test {i} ({n}): "),
                (Some(i), None) => format!("test {i}: "),
                (None, _) => String::new(),
            };
            let body = if c.reason.is_empty() {
                format!("{file}: {test}{}", c.what)
            } else {
                format!("{file}: {test}{}: {}", c.what, c.reason)
            };
            if verbose {
                format!("{} {body}", c.status)
            } else {
                body
            }
        })
        .collect()
}
