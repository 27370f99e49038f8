use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    klaxon::cli::run(klaxon::cli::Cli::parse())
}
