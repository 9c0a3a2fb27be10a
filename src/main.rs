//! rcompose: a daemonless container engine and Docker Compose orchestrator.
//!
//! This file only wires the CLI: parse, set up tracing, dispatch, render errors, exit.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    cli::init_tracing(args.global.verbose);
    match cli::dispatch(args) {
        Ok(code) => code,
        Err(err) => {
            cli::render_error(&err);
            ExitCode::from(cli::exit_code_for(&err))
        }
    }
}
