//! PromQL conformance: runs Prometheus' own test scripts (`../shared/conformance/promqltest/*.test`) through
//! `klaxon::promqltest` and holds the number of passing in-scope evals to a recorded floor.
//!
//! An eval is in scope when `evals.tsv` leaves both `native_histogram` and `experimental_features` empty. In-scope
//! evals may pass or fail but never be skipped; the floor below makes a regression fail CI.
//!
//! Run `cargo test --test conformance -- --nocapture` for the per-file table; set `KLAXON_CONFORMANCE_FAILURES=1`
//! to also list every in-scope failure with its reason.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use klaxon::promqltest::{FileReport, RunOptions, Status, run_file};

/// Minimum in-scope passes per file; a file missing here has floor 0.
///
/// How to update: run `cargo test --test conformance -- --nocapture`; it prints the table and, below it, a
/// ready-to-paste `FLOOR` / `FLOOR_TOTAL` block with the measured in-scope passes. Replace the two constants
/// with it. Only ever raise the numbers (a drop is the regression this test exists to catch); lower one only
/// together with the change that explains why.
const FLOOR: &[(&str, usize)] = &[
    ("aggregators.test", 88),
    ("at_modifier.test", 56),
    ("collision.test", 2),
    ("duration_expression.test", 5),
    ("extended_vectors.test", 21),
    ("fill-modifier.test", 1),
    ("functions.test", 173),
    ("histograms.test", 49),
    ("literals.test", 19),
    ("name_label_dropping.test", 22),
    ("native_histograms.test", 1),
    ("operators.test", 98),
    ("range_queries.test", 10),
    ("selectors.test", 22),
    ("staleness.test", 8),
    ("start_timestamps.test", 1),
    ("subquery.test", 22),
    ("trig_functions.test", 15),
    ("type_and_unit.test", 37),
];

/// Minimum in-scope passes over all files (664 in-scope evals exist).
const FLOOR_TOTAL: usize = 650;

/// One row of `evals.tsv`.
struct Row {
    line: usize,
    in_scope: bool,
    native_histogram: bool,
}

#[derive(Default, Clone, Copy)]
struct Counts {
    pass: usize,
    fail: usize,
    skip: usize,
}

impl Counts {
    fn add(&mut self, s: Status) {
        match s {
            Status::Pass => self.pass += 1,
            Status::Fail => self.fail += 1,
            Status::Skip => self.skip += 1,
        }
    }
}

fn notice(msg: &str) {
    eprintln!("{msg}");
    println!("{msg}");
}

/// Parses `evals.tsv` (header: file, line, kind, native_histogram, experimental_features, ...).
fn read_manifest(path: &Path) -> BTreeMap<String, Vec<Row>> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut lines = text.lines();
    let header: Vec<&str> = lines
        .next()
        .expect("evals.tsv has a header")
        .split('\t')
        .collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("no column {name}"))
    };
    let (c_file, c_line, c_nh, c_exp) = (
        col("file"),
        col("line"),
        col("native_histogram"),
        col("experimental_features"),
    );
    let mut out: BTreeMap<String, Vec<Row>> = BTreeMap::new();
    for l in lines.filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = l.split('\t').collect();
        let get = |i: usize| f.get(i).copied().unwrap_or("").trim();
        let native_histogram = !get(c_nh).is_empty();
        let row = Row {
            line: get(c_line)
                .parse()
                .unwrap_or_else(|_| panic!("bad line number in {l:?}")),
            in_scope: !native_histogram && get(c_exp).is_empty(),
            native_histogram,
        };
        out.entry(get(c_file).to_string()).or_default().push(row);
    }
    out
}

/// Runs the scripts on two threads (the CI machine has two cores).
fn run_all(files: &[PathBuf], manifest: &BTreeMap<String, Vec<Row>>) -> Vec<FileReport> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(path) = files.get(i) else { break };
                    let name = file_name(path);
                    let opts = RunOptions {
                        // The manifest is the authority on which evals need native histograms.
                        native_histogram_lines: Some(
                            manifest
                                .get(&name)
                                .map(|rows| {
                                    rows.iter()
                                        .filter(|r| r.native_histogram)
                                        .map(|r| r.line)
                                        .collect()
                                })
                                .unwrap_or_default(),
                        ),
                        ..RunOptions::default()
                    };
                    let report = run_file(path, &opts).unwrap_or_else(|e| panic!("{e}"));
                    results
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(report);
                }
            });
        }
    });
    let mut reports = results.into_inner().unwrap_or_else(|e| e.into_inner());
    reports.sort_by(|a, b| a.path.cmp(&b.path));
    reports
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[test]
fn promqltest_conformance() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/conformance/promqltest");
    if !dir.is_dir() {
        notice(&format!(
            "conformance: {} not found; skipping the PromQL conformance run",
            dir.display()
        ));
        return;
    }
    let started = std::time::Instant::now();
    let manifest = read_manifest(&dir.join("evals.tsv"));
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("readable conformance dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "test"))
        .collect();
    files.sort();
    let reports = run_all(&files, &manifest);

    let show_failures = std::env::var_os("KLAXON_CONFORMANCE_FAILURES").is_some();
    let mut problems: Vec<String> = Vec::new();
    let mut table: Vec<(String, Counts, Counts)> = Vec::new();
    let (mut total_in, mut total_out) = (Counts::default(), Counts::default());
    for report in &reports {
        let name = file_name(&report.path);
        let rows = manifest.get(&name).map(Vec::as_slice).unwrap_or(&[]);
        let by_line: HashMap<usize, &klaxon::promqltest::EvalReport> =
            report.evals.iter().map(|e| (e.line, e)).collect();
        // evals.tsv names each eval by the line of its `eval` command; every row must meet a report entry.
        for row in rows {
            if !by_line.contains_key(&row.line) {
                problems.push(format!(
                    "{name}:{}: listed in evals.tsv but no eval reported there",
                    row.line
                ));
            }
        }
        let listed: BTreeSet<usize> = rows.iter().map(|r| r.line).collect();
        let (mut cin, mut cout) = (Counts::default(), Counts::default());
        for row in rows {
            let Some(e) = by_line.get(&row.line) else {
                continue;
            };
            if row.in_scope {
                cin.add(e.status);
                if e.status == Status::Skip {
                    problems.push(format!(
                        "{name}:{}: in-scope eval skipped: {}",
                        row.line, e.reason
                    ));
                }
                if e.status == Status::Fail && show_failures {
                    println!("FAIL {name}:{}: {}: {}", e.line, e.query, e.reason);
                }
            } else {
                cout.add(e.status);
            }
        }
        // Evals the manifest does not list (e.g. an indented `eval` line) count as out of scope.
        for e in report.evals.iter().filter(|e| !listed.contains(&e.line)) {
            cout.add(e.status);
        }
        total_in.pass += cin.pass;
        total_in.fail += cin.fail;
        total_in.skip += cin.skip;
        total_out.pass += cout.pass;
        total_out.fail += cout.fail;
        total_out.skip += cout.skip;
        table.push((name, cin, cout));
    }

    println!();
    println!(
        "{:<28} {:>8} {:>8} {:>8} | {:>8} {:>8} {:>8}",
        "file", "in pass", "in fail", "in skip", "out pass", "out fail", "out skip"
    );
    for (name, i, o) in &table {
        println!(
            "{name:<28} {:>8} {:>8} {:>8} | {:>8} {:>8} {:>8}",
            i.pass, i.fail, i.skip, o.pass, o.fail, o.skip
        );
    }
    let (i, o) = (total_in, total_out);
    println!(
        "{:<28} {:>8} {:>8} {:>8} | {:>8} {:>8} {:>8}",
        "total", i.pass, i.fail, i.skip, o.pass, o.fail, o.skip
    );
    println!(
        "conformance run took {:.1}s",
        started.elapsed().as_secs_f64()
    );

    println!("\nmeasured floor (paste over FLOOR / FLOOR_TOTAL in tests/conformance.rs):");
    println!("const FLOOR: &[(&str, usize)] = &[");
    for (name, i, _) in table.iter().filter(|(_, i, _)| i.pass > 0) {
        println!("    ({name:?}, {}),", i.pass);
    }
    println!("];");
    println!("const FLOOR_TOTAL: usize = {};", total_in.pass);

    for (file, floor) in FLOOR {
        let got = table
            .iter()
            .find(|(n, _, _)| n == file)
            .map_or(0, |(_, c, _)| c.pass);
        if got < *floor {
            problems.push(format!(
                "{file}: {got} in-scope evals pass, floor is {floor}"
            ));
        }
    }
    if total_in.pass < FLOOR_TOTAL {
        problems.push(format!(
            "total: {} in-scope evals pass, floor is {FLOOR_TOTAL}",
            total_in.pass
        ));
    }
    assert!(
        problems.is_empty(),
        "conformance problems:\n{}",
        problems.join("\n")
    );
}
