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
    quiet_on_closed_stdout();
    let argv: Vec<String> = match std::env::args_os()
        .map(|a| a.into_string())
        .collect::<Result<_, _>>()
    {
        Ok(v) => v,
        // Not UTF-8: nothing to translate; clap reports what it cannot read.
        Err(_) => return run(cli::Cli::parse()),
    };
    // One clap tree for the whole parse: building it is most of the CLI's start-up work.
    let tree = std::cell::OnceCell::new();
    let command = || <cli::Cli as clap::CommandFactory>::command();
    let words = match cli::argv::normalize(&argv, || tree.get_or_init(command)) {
        Ok(w) => w,
        Err(msg) => {
            eprintln!("{msg}");
            return ExitCode::from(1);
        }
    };
    let parsed = tree
        .into_inner()
        .unwrap_or_else(command)
        .try_get_matches_from(&words)
        .and_then(|mut m| {
            <cli::Cli as clap::FromArgMatches>::from_arg_matches_mut(&mut m)
                // As clap's own try_parse_from: render the error against the tree.
                .map_err(|e| e.format(&mut command()))
        });
    match parsed {
        Ok(args) => run(args),
        Err(e) if e.use_stderr() && docker_words(&argv, &words) => {
            // docker's CLI exits 125 on a bad flag or argument, not clap's 2.
            let _ = e.print();
            ExitCode::from(125)
        }
        Err(e) => e.exit(),
    }
}

/// `rcompose network inspect x | head`: once the reader has gone, `println!` panics on the
/// broken pipe. SIGPIPE stays ignored (the API server, dashboard and attach write to sockets
/// whose peers may leave and must see EPIPE, not die), so the CLI ends as a shell expects a
/// pipeline's writer to end (status 141, nothing on stderr) instead of printing a panic.
fn quiet_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if msg.starts_with("failed printing to stdout") && msg.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info);
    }));
}

/// Whether the command line is docker's: invoked as `docker` / `rcompose docker`, or
/// `container run|create` (the verbs tutorials copy from docker, exit codes included).
fn docker_words(argv: &[String], words: &[String]) -> bool {
    let prog = argv
        .first()
        .and_then(|a| std::path::Path::new(a).file_name())
        .and_then(|n| n.to_str());
    if prog == Some("docker") || argv.get(1).is_some_and(|a| a == "docker") {
        return true;
    }
    // The first `container` word (global options before it may take values).
    words
        .iter()
        .position(|w| w == "container")
        .and_then(|i| words.get(i + 1))
        .is_some_and(|v| v == "run" || v == "create")
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
