//! `klaxon test` end to end: the real binary on the scripts under `tests/promql/`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn promql_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/promql")
}

/// The shipped, all-passing scripts (`*.test`; fixtures with other suffixes are excluded).
fn passing_scripts() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(promql_dir())
        .expect("tests/promql exists")
        .map(|e| e.expect("readable dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "test"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 2,
        "expected the shipped scripts in tests/promql, found {files:?}"
    );
    files
}

fn klaxon(args: &[&str], files: &[PathBuf]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_klaxon"))
        .arg("test")
        .args(args)
        .args(files)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run klaxon")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("utf-8 output")
}

fn last_line(s: &str) -> &str {
    s.lines().last().unwrap_or("")
}

/// Parses the summary line `N passed, N failed, N skipped`.
fn summary(s: &str) -> (usize, usize, usize) {
    let nums: Vec<usize> = last_line(s)
        .split(", ")
        .map(|part| {
            part.split(' ')
                .next()
                .and_then(|n| n.parse().ok())
                .expect("summary line")
        })
        .collect();
    assert_eq!(nums.len(), 3, "summary line: {:?}", last_line(s));
    (nums[0], nums[1], nums[2])
}

#[test]
fn shipped_scripts_pass() {
    let out = klaxon(&[], &passing_scripts());
    let text = stdout(&out);
    let (passed, failed, skipped) = summary(&text);
    assert!(passed >= 20, "too few evals ran:\n{text}");
    assert_eq!(
        last_line(&text),
        format!("{passed} passed, 0 failed, 0 skipped"),
        "{text}"
    );
    assert_eq!((failed, skipped), (0, 0));
    assert_eq!(out.status.code(), Some(0), "{text}");
    // Without -v a clean run prints only the summary.
    assert_eq!(text.lines().count(), 1, "{text}");
}

#[test]
fn verbose_prints_one_line_per_eval() {
    let files = passing_scripts();
    let out = klaxon(&["-v"], &files);
    let text = stdout(&out);
    let (passed, _, _) = summary(&text);
    let pass_lines: Vec<&str> = text.lines().filter(|l| l.starts_with("PASS ")).collect();
    assert_eq!(pass_lines.len(), passed, "{text}");
    assert_eq!(text.lines().count(), passed + 1, "{text}");
    let basics = files
        .iter()
        .find(|f| f.ends_with("basics.test"))
        .expect("basics.test");
    let first_eval = format!("PASS {}:12", basics.display());
    assert!(
        text.lines().any(|l| l == first_eval),
        "no {first_eval:?} in\n{text}"
    );
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn failing_eval_is_reported_with_file_and_line() {
    let file = PathBuf::from("tests/promql/failing.test.fail");
    let out = klaxon(&[], std::slice::from_ref(&file));
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert_eq!(last_line(&text), "2 passed, 1 failed, 0 skipped", "{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    let failure = lines[0];
    assert!(
        failure.starts_with("tests/promql/failing.test.fail:8: up: "),
        "{failure}"
    );
    // The line names what was expected and what came back.
    assert!(failure.contains("expected 2"), "{failure}");
    assert!(failure.contains("got 1"), "{failure}");

    let out = klaxon(&["-v"], &[file]);
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert_eq!(lines[0], "PASS tests/promql/failing.test.fail:5");
    assert!(
        lines[1].starts_with("FAIL tests/promql/failing.test.fail:8: up: expected 2"),
        "{}",
        lines[1]
    );
    assert_eq!(lines[2], "PASS tests/promql/failing.test.fail:11");
    assert_eq!(lines[3], "2 passed, 1 failed, 0 skipped");
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn bad_load_line_fails_dependent_evals_only() {
    let out = klaxon(&["-v"], &[PathBuf::from("tests/promql/bad_load.test.fail")]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("tests/promql/bad_load.test.fail:3: "),
        "{text}"
    );
    assert!(lines[0].contains("three"), "{text}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("FAIL tests/promql/bad_load.test.fail:5: ")),
        "{text}"
    );
    assert!(
        lines.contains(&"PASS tests/promql/bad_load.test.fail:13"),
        "{text}"
    );
    assert_eq!(last_line(&text), "1 passed, 1 failed, 0 skipped");
}

#[test]
fn native_histogram_evals_are_skipped() {
    let out = klaxon(
        &["-v"],
        &[PathBuf::from("tests/promql/native_histograms.test.skip")],
    );
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let skips: Vec<&str> = text.lines().filter(|l| l.starts_with("SKIP ")).collect();
    assert_eq!(skips.len(), 2, "{text}");
    assert!(
        skips[0].starts_with("SKIP tests/promql/native_histograms.test.skip:9: "),
        "{text}"
    );
    assert!(
        skips[1].starts_with("SKIP tests/promql/native_histograms.test.skip:12: "),
        "{text}"
    );
    assert_eq!(last_line(&text), "1 passed, 0 failed, 2 skipped");
}

#[test]
fn unreadable_file_is_a_usage_error() {
    let out = klaxon(&[], &[PathBuf::from("tests/promql/does-not-exist.test")]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("does-not-exist.test"), "{err}");
    assert_eq!(last_line(&stdout(&out)), "0 passed, 0 failed, 0 skipped");

    let out = klaxon(&[], &[]);
    assert_eq!(out.status.code(), Some(2), "no files is a usage error");
}
