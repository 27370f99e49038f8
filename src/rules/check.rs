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
    // The config file is validated with the same loader `klaxon serve` uses; an invalid one fails the check.
    let loaded = config.map(crate::config::Config::load);
    let config_error = match &loaded {
        Some(Err(e)) => Some(e),
        _ => None,
    };
    if let Some(e) = config_error {
        eprintln!("error: {e}");
    }
    if let (Some(Ok(cfg)), Some(path)) = (&loaded, config) {
        // Channels without their settings still load (alerts for them are kept and counted);
        // say which, so a missing variable is noticed before deploying.
        if let Ok(delivery) = cfg.compile_delivery() {
            for (id, why) in delivery.unconfigured() {
                eprintln!("warning: {}: {id}: unconfigured: {why}", path.display());
            }
        }
    }
    let default_paths = [PathBuf::from("rules")];
    // `klaxon check --config FILE` alone checks the config, plus `rules/` when there is one.
    let config_only = paths.is_empty() && config.is_some() && !default_paths[0].exists();
    if config_only {
        let mut out = std::io::stdout().lock();
        return if config_error.is_none() {
            let _ = writeln!(out, "config ok");
            ExitCode::SUCCESS
        } else {
            let _ = writeln!(out, "config: 1 errors");
            ExitCode::FAILURE
        };
    }
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
    let errors = report.errors.len() + usize::from(config_error.is_some());
    if errors == 0 {
        summary.push_str("ok");
    } else {
        summary.push_str(&format!("{errors} errors"));
    }
    if !report.warnings.is_empty() {
        summary.push_str(&format!(", {} warnings", report.warnings.len()));
    }
    let _ = writeln!(out, "{summary}");
    if errors == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
