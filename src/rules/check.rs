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
    if let Some(Ok(cfg)) = &loaded
        && let Ok(delivery) = cfg.compile_delivery()
    {
        for w in delivery_warnings(&report.rule_set, &delivery) {
            let _ = writeln!(err, "{w}");
        }
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

/// Rules whose `channels:` or `escalation:` name something the config does not define: their
/// alerts would be counted as undelivered at run time, so say it before deploying.
pub fn delivery_warnings(
    set: &super::RuleSet,
    delivery: &crate::config::CompiledDelivery,
) -> Vec<String> {
    let mut out = Vec::new();
    for group in &set.groups {
        for rule in &group.rules {
            let super::Rule::Alerting(a) = rule else {
                continue;
            };
            let at = format!(
                "{}:{}:{}",
                a.location.file.display(),
                a.location.line,
                a.location.column
            );
            for c in a.channels.iter().filter(|c| !delivery.has_receiver(c)) {
                out.push(format!(
                    "warning: {at}: rule {:?} names channel {c:?}, which the config does not define; \
                     its alerts will be kept as undelivered",
                    a.name
                ));
            }
            if let Some(e) = a
                .escalation
                .as_ref()
                .filter(|e| !delivery.escalation_policies.contains_key(*e))
            {
                out.push(format!(
                    "warning: {at}: rule {:?} names escalation policy {e:?}, which the config \
                     does not define",
                    a.name
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn warns_about_channels_and_policies_the_config_lacks() {
        let rules = "- name: db_down\n  description: d\n  condition: up == 0\n  severity: critical\n  \
                     channels: [email, pager]\n  duration_minutes: 1\n";
        let report = crate::rules::load_str(rules, Path::new("r.yml"), &LoadOptions::default());
        assert!(report.is_ok());
        let cfg = crate::config::Config::from_yaml(
            "channels:\n  email:\n    smtp_host: h\n    from_email: a@b\n    to_emails: c@d\n",
            Path::new("c.yml"),
        )
        .unwrap();
        let w = delivery_warnings(&report.rule_set, &cfg.compile_delivery().unwrap());
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].contains("r.yml:1:3") && w[0].contains("\"pager\""),
            "{w:?}"
        );
    }
}
