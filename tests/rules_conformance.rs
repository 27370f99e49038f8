//! Every rule file in `../shared/conformance/rules/` loads, and the known-bad ones fail with the
//! error their README names. Skips with a notice when the folder is absent.

use std::path::{Path, PathBuf};

use klaxon::rules::{LoadOptions, load_paths};

const ROOT: &str = "../shared/conformance/rules";

/// Files that must be rejected, and a phrase the error must contain.
const BAD: &[(&str, &str)] = &[
    (
        "prometheus-rulefmt-testdata/duplicate_grp.bad.yaml",
        "duplicate group",
    ),
    (
        "prometheus-rulefmt-testdata/bad_expr.bad.yaml",
        "parse error",
    ),
    (
        "prometheus-rulefmt-testdata/record_and_alert.bad.yaml",
        "only one of record and alert",
    ),
    (
        "prometheus-rulefmt-testdata/no_rec_alert.bad.yaml",
        "one of record or alert must be set",
    ),
    (
        "prometheus-rulefmt-testdata/noexpr.bad.yaml",
        "expr must be set",
    ),
    (
        "prometheus-rulefmt-testdata/invalid_record_name.bad.yaml",
        "invalid recording rule name",
    ),
    (
        "prometheus-rulefmt-testdata/bad_field.bad.yaml",
        "unknown field",
    ),
    (
        "prometheus-rulefmt-testdata/invalid_label_name.bad.yaml",
        "invalid label name",
    ),
    (
        "prometheus-rulefmt-testdata/record_and_for.bad.yaml",
        "'for' in a recording rule",
    ),
    (
        "prometheus-rulefmt-testdata/record_and_keep_firing_for.bad.yaml",
        "'keep_firing_for' in a recording rule",
    ),
    (
        "prometheus-rules-fixtures/invalid_rules.yaml",
        "unknown field",
    ),
];

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            walk(&p, out);
        } else {
            out.push(p);
        }
    }
}

#[test]
fn conformance_rule_files() {
    let root = Path::new(ROOT);
    if !root.is_dir() {
        eprintln!("notice: {ROOT} is absent; skipping rule-file conformance");
        return;
    }
    let mut files = Vec::new();
    walk(root, &mut files);
    let (mut loaded, mut rejected, mut rules) = (0, 0, 0);
    let mut failures = Vec::new();
    for f in &files {
        let name = f
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let report = load_paths(std::slice::from_ref(f), &LoadOptions::default());
        let rendered: String = report.errors.iter().map(|e| e.render()).collect();
        match BAD.iter().find(|(n, _)| *n == name) {
            Some((_, needle)) => {
                if report.is_ok() {
                    failures.push(format!("{name}: loaded but must fail ({needle})"));
                } else if !report.errors.iter().any(|e| e.message.contains(needle)) {
                    failures.push(format!(
                        "{name}: error does not mention {needle:?}:\n{rendered}"
                    ));
                } else {
                    rejected += 1;
                }
            }
            None => {
                if report.is_ok() {
                    loaded += 1;
                    rules += report.rule_count();
                } else {
                    failures.push(format!("{name}: must load:\n{rendered}"));
                }
            }
        }
    }
    eprintln!(
        "rule conformance: {loaded} files loaded ({rules} rules), {rejected}/{} bad files rejected, {} failures",
        BAD.len(),
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(rejected, BAD.len());
}
