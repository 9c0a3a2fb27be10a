//! The clap command tree. One file per command group; each file turns arguments into library
//! calls and renders the result. Global options come before the subcommand, as with
//! `docker compose -f x -p y up`, so that they never clash with a subcommand's own short flags
//! (`logs -f`, `run -p`, `down -v`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub mod config;
pub mod version;

#[derive(Debug, Parser)]
#[command(
    name = "rcompose",
    version,
    about = "A daemonless container engine and Docker Compose orchestrator",
    propagate_version = true,
    disable_help_subcommand = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalOpts,
    #[command(subcommand)]
    pub command: Command,
}

/// Options shared by every command.
#[derive(Debug, Clone, Args)]
pub struct GlobalOpts {
    /// Compose configuration files (repeatable; `-` reads standard input)
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub files: Vec<String>,
    /// Project name
    #[arg(short = 'p', long = "project-name", value_name = "NAME")]
    pub project_name: Option<String>,
    /// Alternate working directory (default: the directory of the first compose file)
    #[arg(long, value_name = "DIR")]
    pub project_directory: Option<PathBuf>,
    /// Alternate environment files (repeatable)
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_files: Vec<PathBuf>,
    /// Profiles to enable (repeatable)
    #[arg(long = "profile", value_name = "PROFILE")]
    pub profiles: Vec<String>,
    /// Control when to print ANSI control characters
    #[arg(long, value_enum, default_value_t = Ansi::Auto)]
    pub ansi: Ansi,
    /// Show what would be done without changing anything
    #[arg(long)]
    pub dry_run: bool,
    /// Show debug output and full error chains
    #[arg(short = 'v', long)]
    pub verbose: bool,
    /// State root (images, containers, volumes, networks)
    #[arg(long, env = "RCOMPOSE_ROOT", default_value = "/var/lib/rcompose", value_name = "DIR")]
    pub root: PathBuf,
    /// Runtime state root, cleared by a reboot
    #[arg(long, env = "RCOMPOSE_RUN_ROOT", default_value = "/run/rcompose", value_name = "DIR")]
    pub run_root: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Ansi {
    Never,
    Always,
    Auto,
}

impl GlobalOpts {
    /// Whether output should carry colours and cursor movement.
    pub fn use_colour(&self) -> bool {
        match self.ansi {
            Ansi::Never => false,
            Ansi::Always => true,
            Ansi::Auto => {
                std::env::var_os("NO_COLOR").is_none()
                    && unsafe { libc::isatty(libc::STDOUT_FILENO) } == 1
            }
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Parse, resolve and render the compose file in canonical format
    Config(config::ConfigArgs),
    /// Show the rcompose version information
    Version(version::VersionArgs),
}

pub fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Config(args) => config::run(&cli.global, args),
        Command::Version(args) => version::run(&cli.global, args),
    }
}

pub fn init_tracing(verbose: bool) {
    let default = if verbose { "debug" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("RCOMPOSE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .without_time()
        .with_target(false)
        .try_init();
}

/// One readable message; the cause chain on separate lines. No backtrace.
pub fn render_error(err: &anyhow::Error) {
    let mut msg = format!("error: {err}");
    for cause in err.chain().skip(1) {
        let text = cause.to_string();
        if !msg.contains(&text) {
            msg.push_str(&format!("\n  caused by: {text}"));
        }
    }
    eprintln!("{msg}");
}

/// Commands may attach an [`ExitStatus`] to an error to choose their exit code (docker uses
/// 125 for engine errors, 126/127 for exec failures); everything else exits 1.
pub fn exit_code_for(err: &anyhow::Error) -> u8 {
    err.downcast_ref::<ExitStatus>().map(|s| s.0).unwrap_or(1)
}

/// An error that only carries an exit code (its message has been printed already, or is empty).
#[derive(Debug)]
pub struct ExitStatus(pub u8);

impl std::fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit status {}", self.0)
    }
}

impl std::error::Error for ExitStatus {}
