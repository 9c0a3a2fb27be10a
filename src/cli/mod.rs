//! The clap command tree. One file per command group; each file turns arguments into library
//! calls and renders the result. Global options come before the subcommand, as with
//! `docker compose -f x -p y up`, so that they never clash with a subcommand's own short flags
//! (`logs -f`, `run -p`, `down -v`).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub mod argv;
pub mod compose_build;
pub mod compose_common;
pub mod compose_ctl;
pub mod compose_down;
pub mod compose_events;
pub mod compose_info;
pub mod compose_logs;
pub mod compose_ps;
pub mod compose_pull;
pub mod compose_run;
pub mod compose_up;
pub mod compose_watch;
pub mod config;
pub mod container;
pub mod container_attach;
pub mod container_files;
pub mod container_fmt;
pub mod container_net;
pub mod container_run;
pub mod container_run_flags;
pub mod container_show;
pub mod convert;
pub mod dashboard;
pub mod doctor;
pub mod image;
pub mod inspect;
pub mod login;
pub mod network;
pub mod stack;
pub mod system;
pub mod version;
pub mod volume;

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
    #[arg(long, value_enum, default_value_t = Ansi::Auto, env = "COMPOSE_ANSI")]
    pub ansi: Ansi,
    /// Set type of progress output (auto, tty, plain, json, quiet)
    #[arg(long, value_enum, default_value_t = ProgressMode::Auto, env = "COMPOSE_PROGRESS")]
    pub progress: ProgressMode,
    /// Show what would be done without changing anything
    #[arg(long)]
    pub dry_run: bool,
    /// Show debug output and full error chains
    #[arg(short = 'v', long)]
    pub verbose: bool,
    /// State root (images, containers, volumes, networks)
    #[arg(
        long,
        env = "RCOMPOSE_ROOT",
        default_value = "/var/lib/rcompose",
        value_name = "DIR"
    )]
    pub root: PathBuf,
    /// Runtime state root, cleared by a reboot
    #[arg(
        long,
        env = "RCOMPOSE_RUN_ROOT",
        default_value = "/run/rcompose",
        value_name = "DIR"
    )]
    pub run_root: PathBuf,
}

/// A boolean flag's value from its `COMPOSE_*` variable, read as compose v2 reads it: true for
/// `1`, `t` or `true` in any case, false for anything else (also what clap passes for an
/// absent or present flag: `false` / `true`).
pub fn env_flag(value: &str) -> Result<bool, std::convert::Infallible> {
    Ok(matches!(
        value.trim().to_ascii_lowercase().as_str(),
        "1" | "t" | "true"
    ))
}

/// Compose v2's `--progress`: how the ` ✔ Container x  Started` lines look. `plain` is for
/// logs and CI (one line per outcome, no symbols), `json` one object per line, `quiet` none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProgressMode {
    Auto,
    Tty,
    Plain,
    Json,
    Quiet,
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
            Ansi::Auto => std::env::var_os("NO_COLOR").is_none() && std::io::stdout().is_terminal(),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Parse, resolve and render the compose file in canonical format
    Config(config::ConfigArgs),
    /// Manage containers
    Container(container::ContainerArgs),
    /// Convert the project to another engine's format (Kubernetes manifests)
    Convert(convert::ConvertArgs),
    /// Serve a web dashboard: projects, containers, logs, images, networks, volumes
    Dashboard(dashboard::DashboardArgs),
    /// Per-container monitor (started by `container run/start`)
    #[command(name = rcompose_engine::monitor::SUBCOMMAND, hide = true)]
    ContainerMonitor(container::MonitorArgs),
    /// Manage images
    Image(image::ImageArgs),
    /// Return low-level information on containers, images, networks or volumes (docker inspect)
    Inspect(inspect::InspectArgs),
    /// Log in to a registry
    Login(login::LoginArgs),
    /// Log out from a registry
    Logout(login::LogoutArgs),
    /// Manage networks
    Network(network::NetworkArgs),
    /// Embedded DNS server for container networks (started on demand)
    #[command(name = rcompose_net::dns::control::SUBCOMMAND, hide = true)]
    DnsServer(network::DnsServerArgs),
    /// Userland proxy for a published port DNAT cannot serve (started on demand)
    #[command(name = rcompose_net::proxy::SUBCOMMAND, hide = true)]
    PortProxy(network::PortProxyArgs),
    /// Manage volumes
    Volume(volume::VolumeArgs),
    /// Manage Swarm stacks (through a Docker daemon that is a swarm manager)
    Stack(stack::StackArgs),
    /// Manage rcompose: disk usage, system information, prune, doctor
    System(system::SystemArgs),
    /// Check the host for what containers and networks need, with fixes
    Doctor(doctor::DoctorArgs),
    /// Show the rcompose version information
    Version(version::VersionArgs),
    /// Create and start containers
    #[command(disable_version_flag = true)]
    Up(compose_up::UpArgs),
    /// Creates containers for a service
    Create(compose_up::CreateArgs),
    /// Stop and remove containers, networks
    Down(compose_down::DownArgs),
    /// List containers
    Ps(compose_ps::PsArgs),
    /// View output from containers
    Logs(compose_logs::LogsArgs),
    /// Start services
    Start(compose_ctl::ServicesArgs),
    /// Stop services
    Stop(compose_ctl::StopArgs),
    /// Restart service containers
    Restart(compose_ctl::StopArgs),
    /// Force stop service containers
    Kill(compose_ctl::KillArgs),
    /// Pause services
    Pause(compose_ctl::ServicesArgs),
    /// Unpause services
    Unpause(compose_ctl::ServicesArgs),
    /// Removes stopped service containers
    Rm(compose_ctl::RmArgs),
    /// List running compose projects
    Ls(compose_info::LsArgs),
    /// Print the public port for a port binding
    Port(compose_info::PortArgs),
    /// List images used by the created containers
    Images(compose_info::ImagesArgs),
    /// Display the running processes
    Top(compose_info::TopArgs),
    /// Block until containers of all (or specified) services stop
    Wait(compose_info::WaitArgs),
    /// Execute a command in a running container
    Exec(compose_run::ComposeExecArgs),
    /// Run a one-off command on a service
    Run(compose_run::RunArgs),
    /// Scale services
    Scale(compose_up::ScaleArgs),
    /// Copy files/folders between a service container and the local filesystem
    Cp(compose_info::CpArgs),
    /// Display a live stream of container(s) resource usage statistics
    Stats(compose_info::StatsArgs),
    /// Receive real time events from containers
    Events(compose_events::EventsArgs),
    /// Attach local standard input, output, and error streams to a service's running container
    Attach(compose_info::AttachArgs),
    /// Create a new image from a service container's changes
    Commit(compose_info::CommitArgs),
    /// Watch the build context for services and sync changes into their containers
    Watch(compose_watch::WatchArgs),
    /// Build or rebuild services
    Build(compose_build::BuildArgs),
    /// Pull service images
    Pull(compose_pull::PullArgs),
    /// Push service images
    Push(compose_pull::PushArgs),
}

/// Commands that only read (or touch no state) leave the roots as they are: `config` and
/// `version` need none, and `doctor` reports a loose mode instead of changing it.
fn uses_state_roots(c: &Command) -> bool {
    !matches!(
        c,
        Command::Config(_)
            | Command::Convert(_)
            | Command::Stack(_)
            | Command::Version(_)
            | Command::Doctor(_)
            | Command::System(system::SystemArgs {
                command: system::SystemCommand::Doctor(_)
            })
    )
}

pub fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    compose_common::set_progress_mode(cli.global.progress);
    if uses_state_roots(&cli.command) {
        let mut reopened = false;
        for dir in [&cli.global.root, &cli.global.run_root] {
            reopened |= rcompose_engine::store::private::ensure_private_root(dir)
                .map_err(|e| anyhow::anyhow!("state directory {}: {e}", dir.display()))?
                && dir.join("containers").exists();
        }
        // A root that was open (made by an older version, or opened by hand) may hold files
        // others could read while it was: close them too, once, as `system migrate-perms`.
        if reopened {
            rcompose_engine::store::perms::tighten(&cli.global.root, &cli.global.run_root)
                .map_err(|e| anyhow::anyhow!("tightening {}: {e}", cli.global.root.display()))?;
        }
    }
    match cli.command {
        Command::Config(args) => config::run(&cli.global, args),
        Command::Container(args) => container::run(&cli.global, args),
        Command::Convert(args) => convert::run(&cli.global, args),
        Command::Dashboard(args) => dashboard::run(&cli.global, args),
        Command::ContainerMonitor(args) => container::monitor(&cli.global, args),
        Command::Image(args) => image::run(&cli.global, args),
        Command::Inspect(args) => inspect::run(&cli.global, args),
        Command::Login(args) => login::login(&cli.global, args),
        Command::Logout(args) => login::logout(&cli.global, args),
        Command::Network(args) => network::run(&cli.global, args),
        Command::DnsServer(args) => network::run_dns_server(&cli.global, args),
        Command::PortProxy(args) => network::run_port_proxy(args),
        Command::Version(args) => version::run(&cli.global, args),
        Command::Volume(args) => volume::run(&cli.global, args),
        Command::Stack(args) => stack::run(&cli.global, args),
        Command::System(args) => system::run(&cli.global, args),
        Command::Doctor(args) => doctor::run(&cli.global, args),
        Command::Up(args) => compose_up::up(&cli.global, args),
        Command::Create(args) => compose_up::create(&cli.global, args),
        Command::Down(args) => compose_down::run(&cli.global, args),
        Command::Ps(args) => compose_ps::run(&cli.global, args),
        Command::Logs(args) => compose_logs::run(&cli.global, args),
        Command::Start(args) => compose_ctl::start(&cli.global, args),
        Command::Stop(args) => compose_ctl::stop(&cli.global, args),
        Command::Restart(args) => compose_ctl::restart(&cli.global, args),
        Command::Kill(args) => compose_ctl::kill(&cli.global, args),
        Command::Pause(args) => compose_ctl::pause(&cli.global, args, true),
        Command::Unpause(args) => compose_ctl::pause(&cli.global, args, false),
        Command::Rm(args) => compose_ctl::rm(&cli.global, args),
        Command::Ls(args) => compose_info::ls(&cli.global, args),
        Command::Port(args) => compose_info::port(&cli.global, args),
        Command::Images(args) => compose_info::images(&cli.global, args),
        Command::Top(args) => compose_info::top(&cli.global, args),
        Command::Wait(args) => compose_info::wait(&cli.global, args),
        Command::Exec(args) => compose_run::exec(&cli.global, args),
        Command::Run(args) => compose_run::run(&cli.global, args),
        Command::Scale(args) => compose_up::scale(&cli.global, args),
        Command::Cp(args) => compose_info::cp(&cli.global, args),
        Command::Stats(args) => compose_info::stats(&cli.global, args),
        Command::Events(args) => compose_events::run(&cli.global, args),
        Command::Attach(args) => compose_info::attach(&cli.global, args),
        Command::Commit(args) => compose_info::commit(&cli.global, args),
        Command::Watch(args) => compose_watch::run(&cli.global, args),
        Command::Pull(args) => compose_pull::pull(&cli.global, args),
        Command::Build(args) => compose_build::run(&cli.global, args),
        Command::Push(args) => compose_pull::push(&cli.global, args),
    }
}

pub fn init_tracing(verbose: bool) {
    // libcontainer warns about every cgroup controller this host lacks: keep it to errors.
    let default = if verbose {
        "debug"
    } else {
        "warn,libcontainer=error,libcgroups=error"
    };
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
    if is_registry_unreachable(err) {
        msg.push_str(
            "\n  hint: no registry answered: load the image from an archive (`rcompose image load -i FILE`), import a root filesystem (`rcompose image import DIR NAME`), or set a reachable mirror in /etc/rcompose/daemon.json (\"registry-mirrors\")",
        );
    }
    if is_disk_full(err) {
        msg.push_str(
            "\n  hint: the disk is full: free some space (`rcompose system df` shows what the state root holds; `rcompose image prune`, `rcompose system prune`) and retry",
        );
    }
    eprintln!("{msg}");
}

/// Whether a registry could not be reached at all (DNS, connect, TLS), anywhere in the chain.
fn is_registry_unreachable(err: &anyhow::Error) -> bool {
    use rcompose_engine::image::ImageError;
    use rcompose_engine::image::registry::RegistryError;
    err.chain().any(|c| {
        matches!(
            c.downcast_ref::<RegistryError>(),
            Some(RegistryError::Unreachable { .. })
        ) || matches!(
            c.downcast_ref::<ImageError>(),
            Some(ImageError::Registry(RegistryError::Unreachable { .. }))
        )
    })
}

/// Whether an error comes from ENOSPC anywhere in its chain (typed or only as text, since
/// some library errors keep the io::Error's message but not the error itself).
fn is_disk_full(err: &anyhow::Error) -> bool {
    const ENOSPC: i32 = 28;
    err.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.raw_os_error() == Some(ENOSPC))
            || c.to_string().contains("(os error 28)")
    })
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
