//! `klaxon check`: validate rule files and report every problem, for CI and pre-deploy hooks.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::graph::dependency_graph;
use super::load::{LoadOptions, load_paths};

/// How `klaxon check --graph` prints the dependency graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GraphFormat {
    /// One `producer -> reader` line per edge.
    Text,
    /// Graphviz DOT (`klaxon check --graph=dot | dot -Tsvg`).
    Dot,
}

/// Runs `klaxon check`: diagnostics and warnings on stderr, the summary (and graph) on stdout;
/// exit 0 when there are no errors.
pub fn run_check(paths: &[PathBuf], config: Option<&Path>, graph: Option<GraphFormat>) -> ExitCode {
    if let Some(c) = config {
        eprintln!(
            "note: --config {} is accepted but not read yet; rules use the default evaluation interval",
            c.display()
        );
    }
    let default_paths = [PathBuf::from("rules")];
    let paths = if paths.is_empty() {
        &default_paths[..]
    } else {
        paths
    };
    let report = load_paths(paths, &LoadOptions::default());
    let mut err = std::io::stderr().lock();
    for w in &report.warnings {
        let _ = writeln!(err, "{}", w.render_warning());
    }
    for e in &report.errors {
        let _ = writeln!(err, "{}", e.render());
    }
    drop(err);
    let mut out = std::io::stdout().lock();
    if let Some(fmt) = graph {
        let g = dependency_graph(&report.rule_set);
        let text = match fmt {
            GraphFormat::Text => g.text(),
            GraphFormat::Dot => g.dot(),
        };
        let _ = write!(out, "{text}");
    }
    let files = report.files.len();
    let groups = report.rule_set.groups.len();
    let rules = report.rule_count();
    let mut summary = format!("{files} files, {groups} groups, {rules} rules: ");
    if report.is_ok() {
        summary.push_str("ok");
    } else {
        summary.push_str(&format!("{} errors", report.errors.len()));
    }
    if !report.warnings.is_empty() {
        summary.push_str(&format!(", {} warnings", report.warnings.len()));
    }
    let _ = writeln!(out, "{summary}");
    if report.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
