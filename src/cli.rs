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
    /// Run PromQL test scripts (Prometheus' promqltest format).
    Test {
        /// Print one line per eval (PASS/FAIL/SKIP).
        #[arg(short, long)]
        verbose: bool,
        /// Script files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Run the HTTP server: ingestion, the Prometheus query API, health and self-metrics.
    Serve(Box<crate::server::ServeArgs>),
}

/// Runs a parsed command line and maps the outcome to an exit code.
pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Test { verbose, files } => crate::promqltest::run_cli(&files, verbose),
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
