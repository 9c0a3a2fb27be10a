//! rcompose: a daemonless container engine and Docker Compose orchestrator.
//!
//! This file only wires the CLI: parse, set up tracing, dispatch, render errors, exit.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    if let Some(code) = cli::container::monitor_fast_path() {
        return code;
    }
    let argv: Vec<String> = match std::env::args_os()
        .map(|a| a.into_string())
        .collect::<Result<_, _>>()
    {
        Ok(v) => v,
        // Not UTF-8: nothing to translate; clap reports what it cannot read.
        Err(_) => return run(cli::Cli::parse()),
    };
    let words = match cli::argv::normalize(&argv, <cli::Cli as clap::CommandFactory>::command) {
        Ok(w) => w,
        Err(msg) => {
            eprintln!("{msg}");
            return ExitCode::from(1);
        }
    };
    run(cli::Cli::parse_from(words))
}

fn run(args: cli::Cli) -> ExitCode {
    cli::init_tracing(args.global.verbose);
    match cli::dispatch(args) {
        Ok(code) => code,
        Err(err) => {
            cli::render_error(&err);
            ExitCode::from(cli::exit_code_for(&err))
        }
    }
}
