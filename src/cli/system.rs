//! `rcompose system df|info|prune|doctor` (docker's `docker system …`): disk usage of the state root,
//! facts about the host and the engine, and one prune for containers, networks, images and
//! (on request) volumes.

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use rcompose_engine::container::model::Status;
use rcompose_engine::store::Store;
use serde_json::{Value, json};

use super::GlobalOpts;
use super::container::engine;
use super::image::fmt::table;
use rcompose_engine::host::HostFacts;
use rcompose_engine::units::human_size;
use rcompose_engine::usage::{Usage, disk_usage};

#[derive(Debug, Args)]
pub struct SystemArgs {
    #[command(subcommand)]
    pub command: SystemCommand,
}

#[derive(Debug, Subcommand)]
pub enum SystemCommand {
    /// Show rcompose disk usage
    Df(DfArgs),
    /// Display system-wide information
    Info(InfoArgs),
    /// Remove unused data
    Prune(PruneArgs),
    /// Close the files of an existing state root to other users (configs, logs, bundles
    /// and sockets 0600 in 0700 directories)
    MigratePerms,
    /// Check the host for what containers and networks need, with fixes
    Doctor(super::doctor::DoctorArgs),
    /// Serve the Docker Engine API (v1.41) on a unix socket, for docker's CLI, docker-compose
    /// and other Docker clients (`DOCKER_HOST=unix:///run/rcompose/docker.sock`)
    Service(ServiceArgs),
}

#[derive(Debug, Args)]
pub struct ServiceArgs {
    /// Seconds without a connection before the service exits (0: serve until killed)
    #[arg(short = 't', long = "time", default_value_t = 5)]
    pub time: u64,
    /// The socket to listen on (ignored when systemd passes one)
    #[arg(default_value = "unix:///run/rcompose/docker.sock")]
    pub uri: String,
}

#[derive(Debug, Args)]
pub struct DfArgs {
    /// Show detailed information on space usage
    #[arg(short = 'v', long)]
    pub verbose: bool,
    /// Output format: table (default) or json
    #[arg(long)]
    pub format: Option<String>,
}

#[derive(Debug, Args)]
pub struct InfoArgs {
    /// Output format: json, or the default human-readable listing
    #[arg(short = 'f', long)]
    pub format: Option<String>,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Remove all unused images not just dangling ones
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Prune anonymous volumes
    #[arg(long)]
    pub volumes: bool,
}

pub fn run(g: &GlobalOpts, a: SystemArgs) -> Result<ExitCode> {
    match a.command {
        SystemCommand::Df(a) => df(g, a),
        SystemCommand::Info(a) => info(g, a),
        SystemCommand::Prune(a) => prune(g, a),
        SystemCommand::MigratePerms => migrate_perms(g),
        SystemCommand::Doctor(a) => super::doctor::run(g, a),
        SystemCommand::Service(a) => service(g, a),
    }
}

/// `system migrate-perms`: what `doctor` reports as readable by others, closed.
fn migrate_perms(g: &GlobalOpts) -> Result<ExitCode> {
    let n = rcompose_engine::store::perms::tighten(&g.root, &g.run_root)
        .with_context(|| format!("tightening the modes under {}", g.root.display()))?;
    println!("{n} file(s) and directories closed to other users");
    Ok(ExitCode::SUCCESS)
}

/// `system service`: the API server over this invocation's roots, until idle.
fn service(g: &GlobalOpts, a: ServiceArgs) -> Result<ExitCode> {
    let listener = match rcompose_api::systemd_listener() {
        Some(l) => l,
        None => rcompose_api::bind(&rcompose_api::server::socket_path(&a.uri)?)?,
    };
    let ctx = rcompose_api::Context::new(
        g.root.clone(),
        g.run_root.clone(),
        std::env::current_exe().context("locating the rcompose binary for the monitor")?,
    );
    let idle = (a.time > 0).then(|| std::time::Duration::from_secs(a.time));
    rcompose_api::serve(ctx, listener, idle)?;
    Ok(ExitCode::SUCCESS)
}

/// RECLAIMABLE: bytes, and their share of SIZE.
fn reclaimable_cell(u: &Usage) -> String {
    if u.size == 0 {
        return human_size(u.reclaimable);
    }
    let pct = u.reclaimable * 100 / u.size;
    format!("{} ({pct}%)", human_size(u.reclaimable))
}

struct DfReport {
    images: Usage,
    containers: Usage,
    volumes: Usage,
    image_rows: Vec<Vec<String>>,
    container_rows: Vec<Vec<String>>,
    volume_rows: Vec<Vec<String>>,
}

fn collect_df(g: &GlobalOpts) -> Result<DfReport> {
    let u = disk_usage(&engine(g)?, &g.root)?;
    let image_rows = u
        .image_rows
        .iter()
        .map(|r| {
            vec![
                r.repository.clone(),
                r.tag.clone(),
                r.short_id.clone(),
                super::image::fmt::since(r.created.as_deref()),
                human_size(r.size),
                human_size(r.shared),
                human_size(r.size - r.shared.min(r.size)),
                r.containers.to_string(),
            ]
        })
        .collect();
    let container_rows = u
        .container_rows
        .iter()
        .map(|r| {
            let c = &r.config;
            let command = c.args.join(" ");
            let command = if command.chars().count() > 20 {
                format!("\"{}…\"", command.chars().take(19).collect::<String>())
            } else {
                format!("\"{command}\"")
            };
            let volumes = c.host.mounts.iter().filter(|m| m.kind == "volume").count();
            vec![
                c.id[..c.id.len().min(12)].to_string(),
                c.image.clone(),
                command,
                volumes.to_string(),
                human_size(r.size),
                super::image::fmt::since(Some(&c.created)),
                r.status.as_str().to_string(),
                c.name.clone(),
            ]
        })
        .collect();
    let volume_rows = u
        .volume_rows
        .iter()
        .map(|v| vec![v.name.clone(), v.links.to_string(), human_size(v.size)])
        .collect();
    Ok(DfReport {
        images: u.images,
        containers: u.containers,
        volumes: u.volumes,
        image_rows,
        container_rows,
        volume_rows,
    })
}

fn df(g: &GlobalOpts, a: DfArgs) -> Result<ExitCode> {
    let r = collect_df(g)?;
    let lines = [
        ("Images", &r.images),
        ("Containers", &r.containers),
        ("Local Volumes", &r.volumes),
        ("Build Cache", &Usage::default()),
    ];
    match a.format.as_deref() {
        Some("json") | Some("{{json .}}") => {
            for (kind, u) in lines {
                let v = json!({
                    "Type": kind, "TotalCount": u.total.to_string(), "Active": u.active.to_string(),
                    "Size": human_size(u.size), "Reclaimable": reclaimable_cell(u),
                });
                println!("{v}");
            }
            return Ok(ExitCode::SUCCESS);
        }
        None | Some("table") => {}
        Some(f) => bail!("unsupported --format {f:?}: use table or json"),
    }
    if !a.verbose {
        let mut rows = vec![vec![
            "TYPE".into(),
            "TOTAL".into(),
            "ACTIVE".into(),
            "SIZE".into(),
            "RECLAIMABLE".into(),
        ]];
        for (kind, u) in lines {
            rows.push(vec![
                kind.into(),
                u.total.to_string(),
                u.active.to_string(),
                human_size(u.size),
                reclaimable_cell(u),
            ]);
        }
        print!("{}", table(&rows));
        return Ok(ExitCode::SUCCESS);
    }
    let section = |title: &str, head: &[&str], rows: Vec<Vec<String>>| {
        println!("{title}");
        let mut all = vec![head.iter().map(|s| s.to_string()).collect::<Vec<_>>()];
        all.extend(rows);
        print!("{}", table(&all));
        println!();
    };
    section(
        "Images space usage:\n",
        &[
            "REPOSITORY",
            "TAG",
            "IMAGE ID",
            "CREATED",
            "SIZE",
            "SHARED SIZE",
            "UNIQUE SIZE",
            "CONTAINERS",
        ],
        r.image_rows,
    );
    section(
        "Containers space usage:\n",
        &[
            "CONTAINER ID",
            "IMAGE",
            "COMMAND",
            "LOCAL VOLUMES",
            "SIZE",
            "CREATED",
            "STATUS",
            "NAMES",
        ],
        r.container_rows,
    );
    section(
        "Local Volumes space usage:\n",
        &["VOLUME NAME", "LINKS", "SIZE"],
        r.volume_rows,
    );
    println!("Build cache usage: 0B");
    Ok(ExitCode::SUCCESS)
}

fn info_value(g: &GlobalOpts) -> Result<Value> {
    let eng = engine(g)?;
    let (mut running, mut paused, mut stopped) = (0, 0, 0);
    let containers = eng.store.list()?;
    for c in &containers {
        match eng.observe(&c.id)?.status {
            Status::Running | Status::Restarting => running += 1,
            Status::Paused => paused += 1,
            _ => stopped += 1,
        }
    }
    let images = Store::open(&g.root)?.list()?.len();
    let registry = rcompose_engine::image::registry::config::RegistryConfig::load()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let host = HostFacts::gather();
    Ok(json!({
        "Containers": containers.len(),
        "ContainersRunning": running,
        "ContainersPaused": paused,
        "ContainersStopped": stopped,
        "Images": images,
        "Driver": "overlay2",
        "LoggingDriver": "json-file",
        "CgroupDriver": "cgroupfs",
        "CgroupVersion": host.cgroup_version.to_string(),
        "DefaultRuntime": "libcontainer",
        "KernelVersion": host.kernel_version,
        "OperatingSystem": host.operating_system,
        "OSType": "linux",
        "Architecture": std::env::consts::ARCH,
        "NCPU": host.cpus,
        "MemTotal": host.mem_total,
        "Name": host.hostname,
        "ServerVersion": env!("CARGO_PKG_VERSION"),
        "DockerRootDir": g.root.display().to_string(),
        "RunRoot": g.run_root.display().to_string(),
        "RegistryConfig": {
            "Mirrors": registry.mirrors,
            "InsecureRegistries": registry.insecure,
        },
    }))
}

fn info(g: &GlobalOpts, a: InfoArgs) -> Result<ExitCode> {
    let v = info_value(g)?;
    match a.format.as_deref() {
        Some("json") | Some("{{json .}}") => {
            println!("{v}");
            return Ok(ExitCode::SUCCESS);
        }
        None => {}
        Some(f) => bail!("unsupported --format {f:?}: use json"),
    }
    let s = |k: &str| match &v[k] {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    println!("Server:");
    println!(" Containers: {}", s("Containers"));
    println!("  Running: {}", s("ContainersRunning"));
    println!("  Paused: {}", s("ContainersPaused"));
    println!("  Stopped: {}", s("ContainersStopped"));
    println!(" Images: {}", s("Images"));
    println!(
        " Server Version: {} (rcompose, no daemon)",
        s("ServerVersion")
    );
    println!(" Storage Driver: {}", s("Driver"));
    println!(" Logging Driver: {}", s("LoggingDriver"));
    println!(" Cgroup Driver: {}", s("CgroupDriver"));
    println!(" Cgroup Version: {}", s("CgroupVersion"));
    println!(" Default Runtime: {}", s("DefaultRuntime"));
    println!(" Kernel Version: {}", s("KernelVersion"));
    println!(" Operating System: {}", s("OperatingSystem"));
    println!(" OSType: {}", s("OSType"));
    println!(" Architecture: {}", s("Architecture"));
    println!(" CPUs: {}", s("NCPU"));
    println!(
        " Total Memory: {}",
        human_size(v["MemTotal"].as_u64().unwrap_or(0))
    );
    println!(" Name: {}", s("Name"));
    println!(" Docker Root Dir: {}", s("DockerRootDir"));
    println!(" Run Root: {}", s("RunRoot"));
    let list = |k: &str| -> Vec<String> {
        v["RegistryConfig"][k]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    println!(" Insecure Registries:");
    println!("  127.0.0.0/8");
    for r in list("InsecureRegistries") {
        println!("  {r}");
    }
    let mirrors = list("Mirrors");
    if !mirrors.is_empty() {
        println!(" Registry Mirrors:");
        for m in mirrors {
            println!("  {m}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn confirm(a: &PruneArgs) -> Result<bool> {
    if a.force {
        return Ok(true);
    }
    let mut what = vec![
        "all stopped containers",
        "all networks not used by at least one container",
    ];
    if a.volumes {
        what.push("all anonymous volumes not used by at least one container");
    }
    what.push(if a.all {
        "all images without at least one container associated to them"
    } else {
        "all dangling images"
    });
    eprintln!("WARNING! This will remove:");
    for w in what {
        eprintln!("  - {w}");
    }
    eprint!("\nAre you sure you want to continue? [y/N] ");
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("reading the confirmation")?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes" | "Yes"))
}

/// Stopped containers first (they hold images, networks and volumes), then networks, volumes
/// and images, each through its own group's prune so the output matches theirs.
fn prune(g: &GlobalOpts, a: PruneArgs) -> Result<ExitCode> {
    if !confirm(&a)? {
        return Ok(ExitCode::SUCCESS);
    }
    super::container_run::prune(g, super::container::PruneArgs { force: true })?;
    super::network::run(
        g,
        super::network::NetworkArgs {
            command: super::network::NetworkCommand::Prune(super::network::PruneArgs {
                force: true,
                filters: vec![],
            }),
        },
    )?;
    if a.volumes {
        super::volume::run(
            g,
            super::volume::VolumeArgs {
                command: super::volume::VolumeCommand::Prune(super::volume::PruneArgs {
                    all: false,
                    force: true,
                    filter: vec![],
                }),
            },
        )?;
    }
    super::image::run(
        g,
        super::image::ImageArgs {
            command: super::image::ImageCommand::Prune(super::image::PruneArgs {
                all: a.all,
                force: true,
            }),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reclaimable_share_of_the_size() {
        let u = |size, reclaimable| Usage {
            size,
            reclaimable,
            ..Default::default()
        };
        assert_eq!(reclaimable_cell(&u(115, 5)), "5B (4%)");
        assert_eq!(reclaimable_cell(&u(1000, 1000)), "1kB (100%)");
        assert_eq!(reclaimable_cell(&Usage::default()), "0B");
    }
}
