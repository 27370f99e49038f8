//! Loading rule files: finding them, validating each, then the set-wide checks (dependency
//! cycles, rules reading rules evaluated later).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::diag::{LoadError, RuleDiagnostic};
use super::graph::dependency_graph;
use super::model::{Rule, RuleSet};
use super::validate::validate_file;

/// Settings that come from the global configuration rather than the rule files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadOptions {
    /// Interval (ms) for groups that give none: the global `evaluation_interval`.
    pub default_interval_ms: i64,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            default_interval_ms: 15_000,
        }
    }
}

/// Everything one load found: the groups that validated, and every problem.
#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    /// The valid groups (use only when [`LoadReport::is_ok`]).
    pub rule_set: RuleSet,
    /// Every error, file by file in load order.
    pub errors: Vec<RuleDiagnostic>,
    /// Warnings (they do not fail a load).
    pub warnings: Vec<RuleDiagnostic>,
    /// The files read, in load order.
    pub files: Vec<PathBuf>,
}

impl LoadReport {
    /// Whether loading found no errors (warnings allowed).
    pub fn is_ok(&self) -> bool {
        self.errors.is_empty()
    }

    /// The rule set, or every error.
    pub fn into_result(self) -> Result<RuleSet, LoadError> {
        if self.errors.is_empty() {
            Ok(self.rule_set)
        } else {
            Err(LoadError {
                errors: self.errors,
                warnings: self.warnings,
            })
        }
    }

    /// Number of rules across all groups.
    pub fn rule_count(&self) -> usize {
        self.rule_set.groups.iter().map(|g| g.rules.len()).sum()
    }
}

/// Whether a YAML text is a promtool rule unit-test file (a top-level `rule_files:` or `tests:` key)
/// rather than a rule file, so rule tests can live beside the rules they test (`rules/tests/`).
pub fn is_rule_test_source(src: &str) -> bool {
    src.lines().any(|l| {
        !l.starts_with([' ', '\t', '#', '-'])
            && l.split_once(':')
                .is_some_and(|(key, _)| matches!(key.trim_end(), "rule_files" | "tests"))
    })
}

/// Loads files and directories (recursively `*.yml` / `*.yaml`, sorted, hidden entries skipped,
/// symlinks followed, promtool unit-test files skipped); explicitly named files are read whatever
/// their extension.
pub fn load_paths(paths: &[PathBuf], opts: &LoadOptions) -> LoadReport {
    let mut report = LoadReport::default();
    let mut files = Vec::new();
    let mut walked = HashSet::new();
    for p in paths {
        if p.is_dir() {
            let mut visited = HashSet::new();
            let mut found = Vec::new();
            walk(p, &mut found, &mut visited, &mut report.errors);
            if found.is_empty() {
                report.warnings.push(RuleDiagnostic::file_level(
                    p,
                    "no rule files (*.yml, *.yaml) in this directory",
                ));
            }
            found.sort();
            walked.extend(found.iter().cloned());
            files.extend(found);
        } else if p.exists() {
            files.push(p.clone());
        } else {
            report
                .errors
                .push(RuleDiagnostic::file_level(p, "no such file or directory"));
        }
    }
    // A file named twice (directly and through its directory) is loaded once.
    let mut unique = HashSet::new();
    files.retain(|f| unique.insert(f.clone()));
    let mut sources = HashMap::new();
    for f in files {
        match std::fs::read(&f) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(src) if walked.contains(&f) && is_rule_test_source(&src) => continue,
                Ok(src) => {
                    load_one(&f, &src, opts, &mut report);
                    sources.insert(f.clone(), src);
                }
                Err(e) => report.errors.push(RuleDiagnostic::file_level(
                    &f,
                    format!("not valid UTF-8: {e}"),
                )),
            },
            Err(e) => report.errors.push(RuleDiagnostic::file_level(
                &f,
                format!("cannot read file: {e}"),
            )),
        }
        report.files.push(f);
    }
    set_checks(&mut report, &sources);
    report
}

/// Loads one file's text (tests, the promtool runner); `file` names it in diagnostics.
pub fn load_str(src: &str, file: &Path, opts: &LoadOptions) -> LoadReport {
    let mut report = LoadReport::default();
    load_one(file, src, opts, &mut report);
    report.files.push(file.to_path_buf());
    let sources = HashMap::from([(file.to_path_buf(), src.to_string())]);
    set_checks(&mut report, &sources);
    report
}

fn load_one(file: &Path, src: &str, opts: &LoadOptions, report: &mut LoadReport) {
    let out = validate_file(file, src, opts);
    report.errors.extend(out.errors);
    report.warnings.extend(out.warnings);
    report
        .rule_set
        .groups
        .extend(out.groups.into_iter().map(Arc::new));
}

fn is_hidden(p: &Path) -> bool {
    p.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with('.'))
}

fn walk(
    dir: &Path,
    out: &mut Vec<PathBuf>,
    visited: &mut HashSet<PathBuf>,
    errors: &mut Vec<RuleDiagnostic>,
) {
    // Symlinked directories are followed; canonical paths guard against loops.
    let canon = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    if !visited.insert(canon) {
        return;
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            errors.push(RuleDiagnostic::file_level(
                dir,
                format!("cannot read directory: {e}"),
            ));
            return;
        }
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for p in paths {
        if is_hidden(&p) {
            continue;
        }
        if p.is_dir() {
            walk(&p, out, visited, errors);
        } else if p.is_file()
            && p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| e == "yml" || e == "yaml")
        {
            out.push(p);
        }
    }
}

/// Set-wide checks: dependency cycles (errors) and reads of rules evaluated later (warnings).
fn set_checks(report: &mut LoadReport, sources: &HashMap<PathBuf, String>) {
    let set = &report.rule_set;
    let graph = dependency_graph(set);
    let diag = |rule: &Rule, msg: String| {
        let loc = rule.location();
        match sources.get(&loc.file) {
            Some(src) => RuleDiagnostic::at(&loc.file, src, loc.line, loc.column, msg),
            None => RuleDiagnostic {
                file: loc.file.clone(),
                line: loc.line,
                column: loc.column,
                message: msg,
                source_line: None,
            },
        }
    };
    let mut errors = Vec::new();
    let cycles = graph.cycles();
    // Edges of a reported cycle need no second, "reads later" diagnostic.
    let in_cycle: HashSet<_> = cycles
        .iter()
        .flat_map(|c| c.windows(2).map(|w| (w[0], w[1])))
        .collect();
    for cycle in cycles {
        let first = &graph.graph[cycle[0]];
        let rule = &set.groups[first.group].rules[first.rule];
        let msg = format!(
            "dependency cycle between recording rules: {}",
            graph.spell(&cycle)
        );
        errors.push(diag(rule, msg));
    }
    let mut warnings = Vec::new();
    let mut seen = HashSet::new();
    for e in graph.graph.edge_indices() {
        let Some((p, r)) = graph.graph.edge_endpoints(e) else {
            continue;
        };
        let (pn, rn) = (&graph.graph[p], &graph.graph[r]);
        if p == r || in_cycle.contains(&(p, r)) || !seen.insert((p, r)) {
            continue;
        }
        let reader = &set.groups[rn.group].rules[rn.rule];
        let pg = &set.groups[pn.group];
        let later = if pn.group == rn.group {
            pn.rule > rn.rule
        } else {
            // Groups of different files have no order; within a file they run in file order.
            pn.group > rn.group && pg.file == set.groups[rn.group].file
        };
        if later {
            let msg = format!(
                "{:?} reads {:?}, which group {:?} records later: it sees the previous evaluation's result",
                rn.name, pn.name, pg.name
            );
            warnings.push(diag(reader, msg));
        }
    }
    report.errors.extend(errors);
    report.warnings.extend(warnings);
}
