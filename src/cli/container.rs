//! `rcompose container …`: docker's container commands (`docker run` is
//! `rcompose container run`). Argument parsing and dispatch; the work is in
//! `container_run.rs` (run/create/start/attach/exec), `container_show.rs` (ps/inspect/logs)
//! and the engine.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{ArgAction, Args, Subcommand};
use rcompose_engine::container::Containers;

use super::GlobalOpts;

#[derive(Debug, Args)]
pub struct ContainerArgs {
    #[command(subcommand)]
    pub command: ContainerCommand,
}

#[derive(Debug, Subcommand)]
pub enum ContainerCommand {
    /// Create and run a new container from an image
    Run(Box<RunArgs>),
    /// Create a new container
    Create(Box<RunArgs>),
    /// Start one or more stopped containers
    Start(StartArgs),
    /// Stop one or more running containers
    Stop(StopArgs),
    /// Restart one or more containers
    Restart(StopArgs),
    /// Kill one or more running containers
    Kill(KillArgs),
    /// Remove one or more containers
    #[command(alias = "remove")]
    Rm(RmArgs),
    /// List containers
    #[command(alias = "ls", alias = "list")]
    Ps(PsArgs),
    /// Fetch the logs of a container
    Logs(LogsArgs),
    /// Execute a command in a running container
    Exec(ExecArgs),
    /// Attach local standard input, output, and error streams to a running container
    Attach(super::container_attach::AttachArgs),
    /// Display detailed information on one or more containers
    Inspect(InspectArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(NamesArgs),
    /// Pause all processes within one or more containers
    Pause(NamesArgs),
    /// Unpause all processes within one or more containers
    Unpause(NamesArgs),
    /// Rename a container
    Rename(RenameArgs),
    /// Remove all stopped containers
    Prune(PruneArgs),
    /// Start the containers whose restart policy asks for it (always, unless-stopped); run
    /// at boot, e.g. from a systemd unit with `ExecStart=/usr/bin/rcompose container boot`
    Boot,
    /// Copy files/folders between a container and the local filesystem
    Cp(super::container_files::CpArgs),
    /// Inspect changes to files or directories on a container's filesystem
    Diff(super::container_files::DiffArgs),
    /// Export a container's filesystem as a tar archive
    Export(super::container_files::ExportArgs),
    /// Create a new image from a container's changes
    Commit(super::container_files::CommitArgs),
    /// Display the running processes of a container
    Top(super::container_files::TopArgs),
    /// Display a live stream of container(s) resource usage statistics
    Stats(super::container_files::StatsArgs),
    /// List port mappings or a specific mapping for the container
    Port(super::container_net::PortArgs),
}

/// Options of `run` and `create` (docker's flags).
#[derive(Debug, Args)]
#[command(disable_help_flag = true)]
pub struct RunArgs {
    #[arg(long, action = ArgAction::Help, help = "Print help")]
    pub help: Option<bool>,
    /// Run container in background and print container ID
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Pull image before running: always, missing (pull when not in the store) or never
    #[arg(long, value_name = "POLICY", default_value = "missing", value_parser = ["always", "missing", "never"])]
    pub pull: String,
    /// Keep STDIN open even if not attached
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Automatically remove the container when it exits
    #[arg(long)]
    pub rm: bool,
    /// PID namespace to use: host, or container:<name|id>
    #[arg(long, value_name = "MODE")]
    pub pid: Option<String>,
    /// IPC mode to use: private (default), shareable, host, or container:<name|id>
    #[arg(long, value_name = "MODE")]
    pub ipc: Option<String>,
    /// Logging driver for the container: json-file (default) or none
    #[arg(long, value_name = "DRIVER")]
    pub log_driver: Option<String>,
    /// Log driver options: max-size (e.g. 10m) and max-file (json-file rotation)
    #[arg(long = "log-opt", value_name = "KEY=VALUE")]
    pub log_opt: Vec<String>,
    /// Assign a name to the container
    #[arg(long)]
    pub name: Option<String>,
    /// Set environment variables
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long = "env-file")]
    pub env_file: Vec<PathBuf>,
    /// Working directory inside the container
    #[arg(short = 'w', long = "workdir")]
    pub workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Bind mount a volume
    #[arg(short = 'v', long = "volume")]
    pub volumes: Vec<String>,
    /// Attach a filesystem mount to the container
    #[arg(long = "mount")]
    pub mounts: Vec<String>,
    /// Mount a tmpfs directory
    #[arg(long)]
    pub tmpfs: Vec<String>,
    /// Mount volumes from the specified container(s)
    #[arg(long = "volumes-from")]
    pub volumes_from: Vec<String>,
    /// Restart policy to apply when a container exits
    #[arg(long, default_value = "no")]
    pub restart: String,
    /// Set meta data on a container
    #[arg(short = 'l', long = "label")]
    pub labels: Vec<String>,
    /// Container host name
    #[arg(short = 'h', long)]
    pub hostname: Option<String>,
    /// Memory limit
    #[arg(short = 'm', long)]
    pub memory: Option<String>,
    /// Number of CPUs
    #[arg(long)]
    pub cpus: Option<f64>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Size of /dev/shm
    #[arg(long = "shm-size")]
    pub shm_size: Option<String>,
    /// Ulimit options (name=soft[:hard])
    #[arg(long)]
    pub ulimit: Vec<String>,
    /// Run an init inside the container that forwards signals and reaps processes
    #[arg(long)]
    pub init: bool,
    /// Add Linux capabilities
    #[arg(long = "cap-add")]
    pub cap_add: Vec<String>,
    /// Drop Linux capabilities
    #[arg(long = "cap-drop")]
    pub cap_drop: Vec<String>,
    /// Give extended privileges to this container
    #[arg(long)]
    pub privileged: bool,
    /// Mount the container's root filesystem as read only
    #[arg(long = "read-only")]
    pub read_only: bool,
    /// Security options: no-new-privileges, seccomp=unconfined|FILE, apparmor=PROFILE, label=…
    #[arg(long = "security-opt")]
    pub security_opt: Vec<String>,
    /// Signal to stop the container
    #[arg(long = "stop-signal")]
    pub stop_signal: Option<String>,
    /// Timeout (in seconds) to stop a container
    #[arg(long = "stop-timeout")]
    pub stop_timeout: Option<u32>,
    /// Connect a container to a network (bridge, none, host, container:<name|id>, a network,
    /// or name=NET,alias=A,ip=IP,mac-address=MAC); repeat to join several networks
    #[arg(long = "network", alias = "net")]
    pub network: Vec<String>,
    #[command(flatten)]
    pub net: super::container_net::NetworkFlags,
    #[command(flatten)]
    pub extra: super::container_run_flags::RunExtraFlags,
    /// Command to run to check health
    #[arg(long = "health-cmd")]
    pub health_cmd: Option<String>,
    /// Time between running the check (e.g. 30s)
    #[arg(long = "health-interval")]
    pub health_interval: Option<String>,
    /// Maximum time to allow one check to run
    #[arg(long = "health-timeout")]
    pub health_timeout: Option<String>,
    /// Start period for the container to initialize before counting retries
    #[arg(long = "health-start-period")]
    pub health_start_period: Option<String>,
    /// Consecutive failures needed to report unhealthy
    #[arg(long = "health-retries")]
    pub health_retries: Option<u32>,
    /// Disable any container-specified HEALTHCHECK
    #[arg(long = "no-healthcheck")]
    pub no_healthcheck: bool,
    /// Use a root filesystem directory instead of an image (as podman's --rootfs)
    #[arg(long)]
    pub rootfs: bool,
    /// Image (or, with --rootfs, a directory)
    pub image: String,
    /// Command and arguments
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct StartArgs {
    /// Attach STDOUT/STDERR and forward signals
    #[arg(short = 'a', long)]
    pub attach: bool,
    /// Attach container's STDIN
    #[arg(short = 'i', long)]
    pub interactive: bool,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct StopArgs {
    /// Seconds to wait before killing the container
    #[arg(short = 't', long = "timeout", alias = "time")]
    pub timeout: Option<u32>,
    /// Signal to send to the container
    #[arg(short = 's', long)]
    pub signal: Option<String>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct KillArgs {
    /// Signal to send to the container
    #[arg(short = 's', long, default_value = "KILL")]
    pub signal: String,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RmArgs {
    /// Force the removal of a running container (uses SIGKILL)
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Remove anonymous volumes associated with the container
    #[arg(short = 'v', long)]
    pub volumes: bool,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PsArgs {
    /// Show all containers (default shows just running)
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Only display container IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Show n last created containers (includes all states)
    #[arg(short = 'n', long = "last")]
    pub last: Option<usize>,
    /// Show the latest created container
    #[arg(short = 'l', long)]
    pub latest: bool,
    /// Display total file sizes
    #[arg(short = 's', long)]
    pub size: bool,
    /// Filter output (name=, label=, status=, ancestor=, id=, exited=)
    #[arg(short = 'f', long = "filter")]
    pub filter: Vec<String>,
    /// Format output: table, json, or a Go template such as {{.Names}}
    #[arg(long)]
    pub format: Option<String>,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Follow log output
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Number of lines to show from the end of the logs ("all" for everything)
    #[arg(short = 'n', long, default_value = "all")]
    pub tail: String,
    /// Show logs since timestamp (RFC 3339) or relative (e.g. 42m)
    #[arg(long)]
    pub since: Option<String>,
    /// Show logs before a timestamp (RFC 3339) or relative (e.g. 42m)
    #[arg(long)]
    pub until: Option<String>,
    /// Show timestamps
    #[arg(short = 't', long)]
    pub timestamps: bool,
    pub container: String,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Detached mode: run command in the background
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Keep STDIN open even if not attached
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Set environment variables
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long = "workdir")]
    pub workdir: Option<String>,
    pub container: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Format output using a Go template subset or "json"
    #[arg(short = 'f', long)]
    pub format: Option<String>,
    /// Display total file sizes
    #[arg(short = 's', long)]
    pub size: bool,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct NamesArgs {
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RenameArgs {
    pub container: String,
    pub new_name: String,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
}

/// The engine for this invocation.
pub fn engine(g: &GlobalOpts) -> Result<Containers> {
    let exe = std::env::current_exe().context("locating the rcompose binary for the monitor")?;
    Ok(Containers::new(&g.root, &g.run_root, exe))
}

pub fn run(g: &GlobalOpts, args: ContainerArgs) -> Result<ExitCode> {
    use super::container_run as r;
    use super::container_show as s;
    match args.command {
        ContainerCommand::Run(a) => r::run(g, *a, true),
        ContainerCommand::Create(a) => r::run(g, *a, false),
        ContainerCommand::Start(a) => r::start(g, a),
        ContainerCommand::Stop(a) => r::stop(g, a, false),
        ContainerCommand::Restart(a) => r::stop(g, a, true),
        ContainerCommand::Kill(a) => r::kill(g, a),
        ContainerCommand::Rm(a) => r::rm(g, a),
        ContainerCommand::Exec(a) => r::exec(g, a),
        ContainerCommand::Attach(a) => super::container_attach::attach(g, a),
        ContainerCommand::Wait(a) => r::wait(g, a),
        ContainerCommand::Pause(a) => r::pause(g, a, true),
        ContainerCommand::Unpause(a) => r::pause(g, a, false),
        ContainerCommand::Rename(a) => r::rename(g, a),
        ContainerCommand::Prune(a) => r::prune(g, a),
        ContainerCommand::Boot => r::boot(g),
        ContainerCommand::Ps(a) => s::ps(g, a),
        ContainerCommand::Cp(a) => super::container_files::cp(g, a),
        ContainerCommand::Diff(a) => super::container_files::diff(g, a),
        ContainerCommand::Export(a) => super::container_files::export(g, a),
        ContainerCommand::Commit(a) => super::container_files::commit(g, a),
        ContainerCommand::Top(a) => super::container_files::top(g, a),
        ContainerCommand::Stats(a) => super::container_files::stats(g, a),
        ContainerCommand::Port(a) => super::container_net::port(g, a),
        ContainerCommand::Logs(a) => s::logs(g, a),
        ContainerCommand::Inspect(a) => s::inspect(g, a),
    }
}

/// The hidden monitor subcommand.
#[derive(Debug, Args)]
pub struct MonitorArgs {
    pub id: String,
    #[arg(long)]
    pub attach: bool,
}

/// The monitor as `monitor::spawn` starts it (`--root R --run-root RR container-monitor ID
/// [--attach]`), run without building the CLI's command tree: one monitor lives per
/// container, and the heap that clap's tree and the tracing set-up leave fragmented stays
/// resident for the container's whole life. The same for the monitors' fork server
/// (`--root R --run-root RR container-monitor-server ROOM`). Anything else goes through clap
/// as usual.
pub fn monitor_fast_path() -> Option<ExitCode> {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    if let [r, root, rr, run_root, sub, _room] = args.as_slice()
        && r == "--root"
        && rr == "--run-root"
        && sub == rcompose_engine::monitor::forkserver::SERVER_SUBCOMMAND
    {
        let code = rcompose_engine::monitor::forkserver::serve(
            std::path::Path::new(root),
            std::path::Path::new(run_root),
            Some(rcompose_wire::netwire::on_container_exit),
        );
        return Some(ExitCode::from(code.clamp(0, 255) as u8));
    }
    let (root, run_root, id, attach) = match args.as_slice() {
        [r, root, rr, run_root, sub, id, rest @ ..]
            if r == "--root"
                && rr == "--run-root"
                && sub == rcompose_engine::monitor::SUBCOMMAND
                && (rest.is_empty() || (rest.len() == 1 && rest[0] == "--attach")) =>
        {
            (root, run_root, id.to_str()?, !rest.is_empty())
        }
        _ => return None,
    };
    let code = rcompose_engine::monitor::main(
        std::path::Path::new(root),
        std::path::Path::new(run_root),
        id,
        attach,
        Some(rcompose_wire::netwire::on_container_exit),
    );
    Some(ExitCode::from(code.clamp(0, 255) as u8))
}

pub fn monitor(g: &GlobalOpts, args: MonitorArgs) -> Result<ExitCode> {
    let code = rcompose_engine::monitor::main(
        &g.root,
        &g.run_root,
        &args.id,
        args.attach,
        Some(rcompose_wire::netwire::on_container_exit),
    );
    Ok(ExitCode::from(code.clamp(0, 255) as u8))
}
