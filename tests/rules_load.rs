//! Rule loading: snapshots of the diagnostics for bad fixtures, the model built from good ones,
//! directory walking, and `klaxon check` through the real binary.

use std::path::{Path, PathBuf};
use std::process::Command;

use klaxon::rules::{LoadOptions, LoadReport, Rule, dependency_graph, load_paths, load_str};

/// Fixture paths relative to the crate root, so snapshots don't depend on the checkout location.
fn rel(p: &Path) -> PathBuf {
    p.strip_prefix(env!("CARGO_MANIFEST_DIR"))
        .map(Path::to_path_buf)
        .unwrap_or_else(|_| p.to_path_buf())
}

fn render(report: &LoadReport) -> String {
    let mut out = String::new();
    for e in &report.errors {
        out.push_str(&e.render());
    }
    for w in &report.warnings {
        out.push_str(&w.render_warning());
    }
    out
}

fn load(name: &str) -> LoadReport {
    load_paths(
        &[PathBuf::from("tests/rules").join(name)],
        &LoadOptions::default(),
    )
}

#[test]
fn bad_fixtures_render() {
    insta::glob!("rules/*.bad.yaml", |path| {
        let report = load_paths(&[rel(path)], &LoadOptions::default());
        assert!(!report.is_ok(), "{} should fail", path.display());
        insta::assert_snapshot!(render(&report));
    });
}

#[test]
fn good_fixtures_have_no_diagnostics() {
    insta::glob!("rules/*.good.yaml", |path| {
        let report = load_paths(&[rel(path)], &LoadOptions::default());
        assert!(report.errors.is_empty(), "{}", render(&report));
    });
}

fn pairs(p: &[(String, String)]) -> Vec<(&str, &str)> {
    p.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect()
}

#[test]
fn prometheus_format_fields() {
    let report = load("prometheus.good.yaml");
    assert!(report.is_ok(), "{}", render(&report));
    let set = report.rule_set;
    assert_eq!(set.groups.len(), 2);
    let g = &set.groups[0];
    assert_eq!(g.name, "api");
    assert_eq!(g.file, PathBuf::from("tests/rules/prometheus.good.yaml"));
    assert_eq!(g.interval_ms, 30_000);
    assert_eq!(g.query_offset_ms, 60_000);
    assert_eq!(g.limit, 10);
    assert_eq!(pairs(&g.labels), [("team", "payments")]);
    assert_eq!(g.rules.len(), 2);
    let Rule::Recording(r) = &g.rules[0] else {
        panic!("expected a recording rule")
    };
    assert_eq!(r.record, "job:http_errors:rate5m");
    assert_eq!(r.expr_text, "sum by (job) (rate(http_errors_total[5m]))");
    assert_eq!(pairs(&r.labels), [("source", "recorded")]);
    assert_eq!((r.location.line, r.location.column), (10, 9));
    let Rule::Alerting(a) = &g.rules[1] else {
        panic!("expected an alerting rule")
    };
    assert_eq!(a.name, "HighErrorRate");
    assert!(
        a.expr_text
            .starts_with("job:http_errors:rate5m\n  / on (job)")
    );
    assert_eq!(a.for_ms, 5_400_000);
    assert_eq!(a.keep_firing_for_ms, 300_000);
    assert_eq!(
        pairs(&a.labels),
        [
            ("severity", "critical"),
            ("ins-tance", "utf8 label names are valid")
        ]
    );
    assert_eq!(a.annotations[0].0, "summary");
    assert_eq!(
        a.annotations[1],
        (
            "description".to_string(),
            "{{ $value | humanizePercentage }} of requests fail".to_string()
        )
    );
    assert!(a.channels.is_empty());

    let g = &set.groups[1];
    assert_eq!(g.name, "scalars");
    assert_eq!(g.interval_ms, 15_000, "default interval");
    assert_eq!(g.rules.len(), 2);
    assert_eq!(g.rules[0].name(), "build:time");
}

#[test]
fn flat_format_fields() {
    let opts = LoadOptions {
        default_interval_ms: 60_000,
    };
    let report = load_paths(&[PathBuf::from("tests/rules/flat.good.yaml")], &opts);
    assert!(report.is_ok(), "{}", render(&report));
    let set = report.rule_set;
    assert_eq!(set.groups.len(), 2);
    let g = &set.groups[0];
    assert_eq!(g.name, "flat.good", "default group is the file stem");
    assert_eq!(g.interval_ms, 60_000);
    assert_eq!(g.rules.len(), 2);
    let Rule::Alerting(a) = &g.rules[0] else {
        panic!("flat rules are alerting rules")
    };
    assert_eq!(a.name, "database_connection_failed");
    assert_eq!(a.expr_text, "database_health == 'unhealthy'");
    assert_eq!(a.for_ms, 60_000);
    assert_eq!(pairs(&a.labels), [("severity", "critical")]);
    assert_eq!(
        pairs(&a.annotations),
        [("description", "Database connection failure")]
    );
    assert_eq!(a.channels, ["email", "slack", "webhook"]);
    assert_eq!(a.escalation.as_deref(), Some("oncall-primary"));
    let Rule::Alerting(b) = &g.rules[1] else {
        panic!()
    };
    assert_eq!(b.for_ms, 600_000);
    assert_eq!(b.depends_on, ["database_connection_failed"]);
    let g = &set.groups[1];
    assert_eq!(g.name, "capacity");
    let Rule::Alerting(c) = &g.rules[0] else {
        panic!()
    };
    assert_eq!(c.for_ms, 30_000);
    assert_eq!(pairs(&c.labels), [("team", "infra")]);
    assert_eq!(c.annotations[0].0, "runbook");
}

#[test]
fn expression_errors_point_into_the_yaml() {
    let at = |name: &str| {
        let r = load(name);
        let e = r
            .errors
            .iter()
            .find(|e| e.message.starts_with("parse error in expr"))
            .unwrap_or_else(|| panic!("{name}: {}", render(&r)))
            .clone();
        (e.line, e.column, e.source_line.unwrap_or_default())
    };
    // Plain scalar: the `)` after `> `.
    let (line, col, text) = at("expr_plain.bad.yaml");
    assert_eq!(line, 7);
    assert_eq!(col, text.rfind(')').unwrap() + 1);
    // Literal block: the `)` that should have been `]`, on the block's third content line.
    let (line, col, text) = at("expr_block.bad.yaml");
    assert_eq!(line, 8);
    assert_eq!(col, text.find("[5m)").unwrap() + 4);
    // Folded block: end of input, just after the trailing `+` on the second line.
    let (line, col, text) = at("expr_folded.bad.yaml");
    assert_eq!(line, 7);
    assert_eq!(col, text.find('+').unwrap() + 2);
}

#[test]
fn load_str_and_into_result() {
    let src = "groups:\n  - name: g\n    rules:\n      - record: a:b\n        expr: sum(up)\n";
    let report = load_str(src, Path::new("inline.yaml"), &LoadOptions::default());
    assert_eq!(report.files, [PathBuf::from("inline.yaml")]);
    let set = report.into_result().expect("valid");
    assert_eq!(set.groups[0].rules[0].name(), "a:b");

    let bad = load_str(
        "groups: [{name: g, rules: [{expr: up}]}]",
        Path::new("x.yaml"),
        &LoadOptions::default(),
    );
    let err = bad.into_result().unwrap_err();
    assert_eq!(err.errors.len(), 1);
    assert!(err.to_string().contains("x.yaml:1:"), "{err}");
}

#[test]
fn empty_and_comment_only_files_are_valid() {
    for src in [
        "",
        "# nothing\n",
        "---\n",
        "groups: []\n",
        "groups:\n",
        "[]\n",
    ] {
        let r = load_str(src, Path::new("e.yaml"), &LoadOptions::default());
        assert!(r.is_ok(), "{src:?}: {}", render(&r));
        assert!(r.rule_set.groups.is_empty());
    }
}

#[test]
fn no_panics_on_truncated_or_mangled_fixtures() {
    let dir = Path::new("tests/rules");
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    for p in names {
        let src = std::fs::read_to_string(&p).unwrap();
        for (i, _) in src.char_indices() {
            let _ = load_str(&src[..i], &p, &LoadOptions::default());
            let mangled = format!("{}\t{}", &src[..i], &src[i..]);
            let _ = load_str(&mangled, &p, &LoadOptions::default());
        }
    }
}

#[test]
fn dependency_graph_edges_and_dot() {
    // Rules in a cycle stay in the set (the cycle is a set-level error), so the graph shows it.
    let r = load("cycle.bad.yaml");
    let g = dependency_graph(&r.rule_set);
    let cycles: Vec<String> = g.cycles().iter().map(|c| g.spell(c)).collect();
    assert_eq!(
        cycles,
        ["a:sum -> b:sum -> a:sum", "self:loop -> self:loop"]
    );
    let src = "groups:\n  - name: g\n    rules:\n      - record: a:x\n        expr: sum(up)\n      - record: b:x\n        expr: a:x * 2\n      - alert: B\n        expr: b:x > 1 and on() a:x > 0\n";
    let r = load_str(src, Path::new("g.yaml"), &LoadOptions::default());
    assert!(r.is_ok(), "{}", render(&r));
    let g = dependency_graph(&r.rule_set);
    assert_eq!(g.text(), "a:x -> b:x\na:x -> B\nb:x -> B\n");
    assert!(g.cycles().is_empty());
    let dot = g.dot();
    assert!(dot.starts_with("digraph rules {"), "{dot}");
    assert!(dot.contains("n0 -> n1;"), "{dot}");
}

#[test]
fn directories_are_walked_sorted_skipping_hidden() {
    let root = std::env::temp_dir().join(format!("klaxon-rules-walk-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let data = root.join("..2026_data");
    std::fs::create_dir_all(root.join("sub")).unwrap();
    std::fs::create_dir_all(&data).unwrap();
    let rule = |n: &str| {
        format!("groups:\n  - name: {n}\n    rules:\n      - alert: {n}\n        expr: up == 0\n")
    };
    std::fs::write(root.join("b.yaml"), rule("b")).unwrap();
    std::fs::write(root.join("sub/a.yml"), rule("a")).unwrap();
    std::fs::write(root.join("notes.txt"), "not yaml: [").unwrap();
    std::fs::write(root.join(".hidden.yaml"), "broken: [").unwrap();
    std::fs::write(data.join("c.yaml"), rule("c")).unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(data.join("c.yaml"), root.join("c.yaml")).unwrap();
    let report = load_paths(std::slice::from_ref(&root), &LoadOptions::default());
    assert!(report.is_ok(), "{}", render(&report));
    let names: Vec<_> = report
        .files
        .iter()
        .map(|f| f.strip_prefix(&root).unwrap().display().to_string())
        .collect();
    #[cfg(unix)]
    assert_eq!(names, ["b.yaml", "c.yaml", "sub/a.yml"]);
    let missing = load_paths(&[root.join("missing")], &LoadOptions::default());
    assert!(!missing.is_ok());
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn check_cli_exit_codes() {
    let bin = env!("CARGO_BIN_EXE_klaxon");
    let ok = Command::new(bin)
        .args([
            "check",
            "tests/rules/prometheus.good.yaml",
            "tests/rules/flat.good.yaml",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(
        stdout.contains("2 files, 4 groups, 7 rules: ok"),
        "{stdout}"
    );

    let bad = Command::new(bin)
        .args(["check", "--graph", "tests/rules/expr_block.bad.yaml"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("tests/rules/expr_block.bad.yaml:8:"),
        "{stderr}"
    );
    assert!(stderr.contains('^'), "{stderr}");
    assert!(String::from_utf8_lossy(&bad.stdout).contains("1 errors"));

    let graph = Command::new(bin)
        .args(["check", "--graph=dot", "tests/rules/prometheus.good.yaml"])
        .output()
        .unwrap();
    assert_eq!(graph.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&graph.stdout).contains("digraph rules"));
}

#[test]
fn check_cli_validates_the_config_file() {
    let bin = env!("CARGO_BIN_EXE_klaxon");
    let dir = std::env::temp_dir().join(format!("klaxon-check-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.yml");
    std::fs::write(&good, "global:\n  external_url: https://klaxon.example\n").unwrap();
    let bad = dir.join("bad.yml");
    std::fs::write(&bad, "auth:\n  ingest_tokenz: [x]\n").unwrap();
    let run = |config: &std::path::Path| {
        Command::new(bin)
            .args(["check", "--config"])
            .arg(config)
            .arg("tests/rules/prometheus.good.yaml")
            .output()
            .unwrap()
    };
    let ok = run(&good);
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let out = run(&bad);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("bad.yml"), "{stderr}");
    assert!(stderr.contains("ingest_tokenz"), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 errors"));
    let _ = std::fs::remove_dir_all(&dir);
}
