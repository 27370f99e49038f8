//! Command-line surface: argument parsing and exit codes; all work is delegated to library modules.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// klaxon's command line.
#[derive(Debug, Parser)]
#[command(name = "klaxon", version, about = "Declarative alert-rule engine")]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run PromQL test scripts (Prometheus' promqltest format) and `promtool test rules` files.
    Test {
        /// Print one line per eval (PASS/FAIL/SKIP).
        #[arg(short, long)]
        verbose: bool,
        /// Script files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Validate rule files (both formats) and the config file; report every problem; exit 1 on errors.
    Check {
        /// Configuration file to validate too (the one `klaxon serve --config` reads).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Also print the rule dependency graph: `--graph` (one `a -> b` edge per line) or `--graph=dot` (Graphviz).
        #[arg(long, value_enum, num_args = 0..=1, require_equals = true, default_missing_value = "text")]
        graph: Option<crate::rules::GraphFormat>,
        /// Rule files or directories (recursively *.yml / *.yaml); default `rules/` (skipped when
        /// only `--config` is given and there is no `rules/`).
        paths: Vec<PathBuf>,
    },
    /// Run the HTTP server: ingestion, the Prometheus query API, health and self-metrics.
    Serve(Box<crate::server::ServeArgs>),
    /// Inspect the config file's routing tree (Alertmanager's `amtool config routes`).
    Routes {
        /// What to do with the routes.
        #[command(subcommand)]
        command: RoutesCommand,
    },
}

/// `klaxon routes` subcommands.
#[derive(Debug, Subcommand)]
pub enum RoutesCommand {
    /// Print the receivers an alert with these labels reaches, in match order, comma-separated
    /// on one line (as `amtool config routes test` does).
    Test {
        /// Configuration file.
        #[arg(long, default_value = "klaxon.yaml")]
        config: PathBuf,
        /// Exit 1 unless the result is exactly this comma-separated receiver list.
        #[arg(long = "verify.receivers")]
        verify_receivers: Option<String>,
        /// Alert labels, `name=value` (or `name="value"`).
        labels: Vec<String>,
    },
}

/// Runs a parsed command line and maps the outcome to an exit code.
pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Test { verbose, files } => crate::promqltest::run_cli(&files, verbose),
        Command::Check {
            config,
            graph,
            paths,
        } => crate::rules::run_check(&paths, config.as_deref(), graph),
        Command::Routes {
            command:
                RoutesCommand::Test {
                    config,
                    verify_receivers,
                    labels,
                },
        } => routes_test(&config, verify_receivers.as_deref(), &labels),
        Command::Serve(args) => match crate::server::run(*args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                let e = anyhow::Error::new(e).context("klaxon serve failed");
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}

/// `klaxon routes test`: exit 0 with the receivers on stdout, 1 on a config or label error (or
/// a `--verify.receivers` mismatch).
fn routes_test(config: &std::path::Path, verify: Option<&str>, labels: &[String]) -> ExitCode {
    let delivery = match crate::config::Config::load(config).and_then(|c| c.compile_delivery()) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let labels = match crate::config::labels_from_args(labels) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let slug = delivery.routes.receivers_for(&labels).join(",");
    println!("{slug}");
    match verify {
        Some(want) if want != slug => {
            println!("WARNING: Expected receivers did not match resolved receivers.");
            ExitCode::FAILURE
        }
        _ => ExitCode::SUCCESS,
    }
}
