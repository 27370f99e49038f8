//! Runner for Prometheus' PromQL test scripts (`load`, `clear`, `eval`, `expect`), so klaxon's compatibility
//! with PromQL is measured against upstream's own acceptance scripts.
//!
//! The script language is upstream's (`promql/promqltest/README.md`): `load <interval>` blocks of series in
//! the expanding notation (see [`series`]), `clear`, `eval instant at <t> <query>` and
//! `eval range from <start> to <end> step <step> <query>` followed by `expect ...` lines and the expected
//! result (`{labels} value...`, or a bare number for a scalar). The deprecated forms `eval_fail`, `eval_warn`,
//! `eval_info`, `eval_ordered`, `expected_fail_message` and `expected_fail_regexp` are accepted too.
//!
//! Harness semantics follow upstream: times are relative to the Unix epoch; results are compared as sets by
//! label set unless `expect ordered`; floats are equal within relative tolerance 1e-6 (NaN equals NaN, stale
//! markers only equal stale markers). Every instant eval is re-checked as a range query (from `t-1m` to
//! `t+1m`, step 1m, comparing the middle step) and with `@ t` pinned on every selector, evaluated at
//! `-10t, 0, t/5, t, 10t`, unless the query calls a time-dependent function.
//!
//! Native histograms are out of klaxon's scope: histogram literals (`{{...}}`) in `load` lines are not
//! loaded, and an eval is skipped when it expects a histogram, calls a native-histogram-only function, or
//! selects a series that had one (or, for `load_with_nhcb`, the native histogram derived from a `_bucket`
//! series). A caller that knows which evals need native histograms (a conformance manifest) passes their
//! lines in [`RunOptions::native_histogram_lines`] and then exactly those are skipped. Nothing else is ever
//! skipped. A series listed twice in one `load` block takes its last definition, as upstream.
//! Start-timestamp lines (`metric@st ...`) are accepted and ignored (klaxon stores no start timestamps).
//!
//! ## String values (klaxon extension)
//!
//! klaxon series may carry strings (`database_health == 'unhealthy'`). In `load` lines and expected results a
//! quoted item is a string sample: `"text"`, `'text'` or `` `text` `` (Go-style escapes `\" \\ \n \t` inside
//! `"`/`'`), and `"text"xN` repeats it (`N+1` samples, like `vxN`). Example:
//!
//! ```text
//! load 1m
//!   database_health{db="main"} "healthy" "unhealthy"x3 _ "healthy"
//!
//! eval instant at 2m database_health == 'unhealthy'
//!   database_health{db="main"} "unhealthy"
//! ```

pub mod compare;
mod run;
pub mod script;
pub mod series;

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Knobs of a run; `Default` is upstream's harness.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Re-check each instant eval as a range query around its time (upstream does).
    pub range_check: bool,
    /// Re-check each instant eval with `@` pinned on its selectors at several evaluation times (upstream does).
    pub at_modifier_check: bool,
    /// Lines of the evals that need native histograms, when the caller knows them (a conformance manifest):
    /// exactly these are skipped. `None`: the runner decides from the script (histogram literals in expected
    /// results, native-histogram functions, selected series that had histogram samples or `load_with_nhcb`).
    pub native_histogram_lines: Option<BTreeSet<usize>>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            range_check: true,
            at_modifier_check: true,
            native_histogram_lines: None,
        }
    }
}

/// The verdict on one eval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// Every check passed.
    Pass,
    /// A check failed, the query errored unexpectedly, or the eval's block or data did not parse.
    Fail,
    /// Needs native histograms, which klaxon does not implement.
    Skip,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Pass => "PASS",
            Status::Fail => "FAIL",
            Status::Skip => "SKIP",
        })
    }
}

/// The outcome of one eval (or of a script line that should have been one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvalReport {
    /// 1-based line of the `eval` command.
    pub line: usize,
    /// The query text (empty for lines that are no valid command).
    pub query: String,
    /// Verdict.
    pub status: Status,
    /// Why it failed or was skipped; empty on pass.
    pub reason: String,
}

/// Everything a run of one file produced.
#[derive(Debug, Clone)]
pub struct FileReport {
    /// The script's path as given.
    pub path: PathBuf,
    /// One entry per eval, by line.
    pub evals: Vec<EvalReport>,
    /// Script lines that did not load (bad `load` lines, rejected samples): (line, why).
    pub errors: Vec<(usize, String)>,
}

impl FileReport {
    /// Number of evals with `status`.
    pub fn count(&self, status: Status) -> usize {
        self.evals.iter().filter(|e| e.status == status).count()
    }
}

/// Why a script could not be run at all.
#[derive(Debug, thiserror::Error)]
pub enum ScriptError {
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

/// Runs one script file and reports every eval.
pub fn run_file(path: &Path, opts: &RunOptions) -> Result<FileReport, ScriptError> {
    let src = std::fs::read_to_string(path).map_err(|source| ScriptError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(run_source(path, &src, opts))
}

/// Runs a script given as text; `path` only names it in the report.
pub fn run_source(path: &Path, src: &str, opts: &RunOptions) -> FileReport {
    let script = script::parse_script(src, &parse_labels);
    let (evals, errors) = run::run_script(&script, opts);
    FileReport {
        path: path.to_path_buf(),
        evals,
        errors,
    }
}

/// The expression language's series syntax, so load lines quote exactly as queries do.
fn parse_labels(s: &str) -> Result<crate::model::Labels, String> {
    // `{}` (an empty label set, e.g. an aggregation result) is no valid selector, but a valid series.
    if s.strip_prefix('{')
        .and_then(|r| r.strip_suffix('}'))
        .is_some_and(|r| r.trim().is_empty())
    {
        return Ok(crate::model::Labels::empty());
    }
    crate::expr::parse_series_labels(s).map_err(|d| d.message)
}

/// The report of one file as printed: load errors and (failed, or with `verbose` all) evals, in line order.
pub fn report_lines(report: &FileReport, verbose: bool) -> Vec<String> {
    let name = report.path.display();
    let mut lines: Vec<(usize, String)> = report
        .errors
        .iter()
        .map(|(line, why)| (*line, format!("{name}:{line}: {why}")))
        .collect();
    for e in &report.evals {
        let line = e.line;
        let what = if e.query.is_empty() {
            String::new()
        } else {
            format!("{}: ", e.query)
        };
        let text = match (e.status, verbose) {
            (Status::Pass, true) => format!("PASS {name}:{line}"),
            (Status::Fail, true) => format!("FAIL {name}:{line}: {what}{}", e.reason),
            (Status::Skip, true) => format!("SKIP {name}:{line}: {}", e.reason),
            (Status::Fail, false) => format!("{name}:{line}: {what}{}", e.reason),
            _ => continue,
        };
        lines.push((line, text));
    }
    lines.sort_by_key(|(line, _)| *line);
    lines.into_iter().map(|(_, text)| text).collect()
}

/// Runs scripts (and `promtool test rules` files, see [`crate::ruletest`]) and prints the report; exit code 1 when any eval failed, 2 when a file could not be read.
pub fn run_cli(files: &[PathBuf], verbose: bool) -> ExitCode {
    let opts = RunOptions::default();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let (mut passed, mut failed, mut skipped) = (0usize, 0usize, 0usize);
    let mut io_error = false;
    for path in files {
        if crate::ruletest::is_rule_test_file(path) {
            // `promtool test rules` files (top-level `rule_files:` / `tests:`) have their own runner.
            let report = match crate::ruletest::run_file(path) {
                Ok(r) => r,
                Err(e) => {
                    let _ = out.flush();
                    eprintln!("klaxon: {e}");
                    io_error = true;
                    continue;
                }
            };
            for text in crate::ruletest::report_lines(&report, verbose) {
                let _ = writeln!(out, "{text}");
            }
            passed += report.count(Status::Pass);
            failed += report.count(Status::Fail);
            skipped += report.count(Status::Skip);
            continue;
        }
        let report = match run_file(path, &opts) {
            Ok(r) => r,
            Err(e) => {
                let _ = out.flush();
                eprintln!("klaxon: {e}");
                io_error = true;
                continue;
            }
        };
        for text in report_lines(&report, verbose) {
            let _ = writeln!(out, "{text}");
        }
        passed += report.count(Status::Pass);
        failed += report.count(Status::Fail);
        skipped += report.count(Status::Skip);
    }
    let _ = writeln!(out, "{passed} passed, {failed} failed, {skipped} skipped");
    let _ = out.flush();
    if io_error {
        ExitCode::from(2)
    } else if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(src: &str) -> FileReport {
        run_source(Path::new("t.test"), src, &RunOptions::default())
    }

    fn statuses(r: &FileReport) -> Vec<(usize, Status)> {
        r.evals.iter().map(|e| (e.line, e.status)).collect()
    }

    #[test]
    fn runs_evals_against_loaded_data() {
        let r = run(
            "load 1m\n  m{a=\"1\"} 0+1x5\n  m{a=\"2\"} 10\n\neval instant at 2m m\n  m{a=\"1\"} 2\n  m{a=\"2\"} 10\n\n\
             eval range from 0 to 2m step 1m sum(m)\n  {} 10 11 12\n\neval instant at 2m m{a=\"1\"}\n  m{a=\"1\"} 3\n",
        );
        assert_eq!(
            statuses(&r),
            vec![(5, Status::Pass), (9, Status::Pass), (12, Status::Fail)]
        );
        assert!(
            r.evals[2].reason.contains("expected 3"),
            "{}",
            r.evals[2].reason
        );
    }

    #[test]
    fn last_definition_of_a_series_wins() {
        let r = run("load 1m\n  m 1\n  m 2\n\neval instant at 0 m\n  m 2\n");
        assert_eq!(statuses(&r), vec![(5, Status::Pass)]);
        assert!(r.errors.is_empty(), "{:?}", r.errors);
    }

    #[test]
    fn clear_drops_data_and_load_errors() {
        let r = run(
            "load 1m\n  m 1 x\n\neval instant at 0 m\n  m 1\n\nclear\n\nload 1m\n  m 5\n\neval instant at 0 m\n  m 5\n",
        );
        assert_eq!(statuses(&r), vec![(4, Status::Fail), (12, Status::Pass)]);
        assert_eq!(r.errors.len(), 1);
        assert_eq!(r.errors[0].0, 2);
    }

    #[test]
    fn unused_load_error_and_unknown_commands_fail() {
        let r = run("load 1m\n  m 1 x\n\nfrobnicate\n");
        assert_eq!(statuses(&r), vec![(2, Status::Fail), (4, Status::Fail)]);
    }

    #[test]
    fn expected_failures_and_parse_errors() {
        let r = run(
            "eval instant at 0 sum(\n  expect fail\n\neval instant at 0 sum(\n\neval instant at 0 1\n  expect fail\n",
        );
        assert_eq!(
            statuses(&r),
            vec![(1, Status::Pass), (4, Status::Fail), (6, Status::Fail)]
        );
    }

    #[test]
    fn histogram_evals_are_skipped_unless_a_manifest_decides() {
        let src = "load 1m\n  h {{count:1}}\n  f 1\n\neval instant at 0 h\n\neval instant at 0 f\n  f 1\n\n\
                   eval instant at 0 histogram_count(f)\n\neval instant at 0 f\n  f {{count:1}}\n";
        let r = run(src);
        assert_eq!(
            statuses(&r),
            vec![
                (5, Status::Skip),
                (7, Status::Pass),
                (10, Status::Skip),
                (12, Status::Skip)
            ]
        );
        let opts = RunOptions {
            native_histogram_lines: Some([12].into()),
            ..RunOptions::default()
        };
        let r = run_source(Path::new("t.test"), src, &opts);
        assert_eq!(
            r.evals[0].status,
            Status::Pass,
            "empty result, h was not loaded: {:?}",
            r.evals[0]
        );
        assert_eq!(r.evals[3].status, Status::Skip);
    }

    #[test]
    fn nhcb_series_are_histograms() {
        let r = run(
            "load_with_nhcb 1m\n  m_bucket{le=\"1\"} 1\n  m_bucket{le=\"+Inf\"} 2\n\neval instant at 0 m\n\n\
             eval instant at 0 m_bucket{le=\"1\"}\n  m_bucket{le=\"1\"} 1\n",
        );
        assert_eq!(statuses(&r), vec![(5, Status::Skip), (7, Status::Pass)]);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]
        /// Scripts assembled from plausible and random lines never panic the runner.
        #[test]
        fn arbitrary_scripts_never_panic(lines in proptest::collection::vec(
            "(load [0-9]{1,2}(ms|s|m)|load_with_nhcb 1m|clear|\
              eval(_fail|_ordered)? instant at -?[0-9]{1,3}(s|m)? [a-z(){}\\[\\]0-9\"=+*/ ,]{0,24}|\
              eval range from [0-9]m to [0-9]m step [0-9]{1,2}(s|m) [a-z(){}\\[\\]0-9\"= +]{0,20}|\
              expect (fail|warn|info|no_warn|no_info|ordered|string \"a\"|range vector from 0 to 1m step 1m)( msg: x| regex: [(.*]{0,3})?|\
              [a-z_]{1,6}(\\{[a-z]{1,3}=\"[a-z]{0,3}\"\\})? [-+0-9_xe.\"{}a-z ]{0,24}|\
              \\{\\} [-0-9. ]{0,10}|\
              [ -~]{0,30}|)", 0..14)) {
            let _ = run(&lines.join("\n"));
        }
    }

    #[test]
    fn never_panics_on_garbage() {
        for src in [
            "load",
            "load x\n a 1",
            "eval",
            "eval instant at",
            "eval range from 1m to 0 step 1m x",
            "load 1m\n {",
            "\u{0}\u{ff}\n{{{",
            "eval instant at 0 x\n  {} 1 2",
        ] {
            let _ = run(src);
        }
    }
}
