//! `rcompose system df|info|prune|doctor` (docker's `docker system …`): disk usage of the state root,
//! facts about the host and the engine, and one prune for containers, networks, images and
//! (on request) volumes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use rcompose_engine::container::model::Status;
use rcompose_engine::store::Store;
use rcompose_engine::volume::Volumes;
use serde_json::{Value, json};

use super::GlobalOpts;
use super::container::engine;
use super::image::fmt::table;
use rcompose_engine::units::human_size;

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
        SystemCommand::Doctor(a) => super::doctor::run(g, a),
        SystemCommand::Service(a) => service(g, a),
    }
}

/// `system service`: the API server over this invocation's roots, until idle.
fn service(g: &GlobalOpts, a: ServiceArgs) -> Result<ExitCode> {
    let listener = match rcompose_api::systemd_listener() {
        Some(l) => l,
        None => rcompose_api::bind(&rcompose_api::server::socket_path(&a.uri)?)?,
    };
    let ctx = rcompose_api::Context {
        root: g.root.clone(),
        run_root: g.run_root.clone(),
        exe: std::env::current_exe().context("locating the rcompose binary for the monitor")?,
    };
    let idle = (a.time > 0).then(|| std::time::Duration::from_secs(a.time));
    rcompose_api::serve(ctx, listener, idle)?;
    Ok(ExitCode::SUCCESS)
}

/// One line of `system df`: TYPE TOTAL ACTIVE SIZE RECLAIMABLE.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Usage {
    total: usize,
    active: usize,
    size: u64,
    reclaimable: u64,
}

impl Usage {
    fn reclaimable_cell(&self) -> String {
        if self.size == 0 {
            return human_size(self.reclaimable);
        }
        let pct = self.reclaimable * 100 / self.size;
        format!("{} ({pct}%)", human_size(self.reclaimable))
    }
}

/// Image usage: layers are counted once however many images share them; what is reclaimable
/// is what only unused images hold.
fn image_usage(images: &[(bool, Vec<(String, u64)>)]) -> Usage {
    let mut all = BTreeMap::new();
    let mut held = BTreeSet::new();
    for (active, layers) in images {
        for (chain, size) in layers {
            all.insert(chain.clone(), *size);
            if *active {
                held.insert(chain.clone());
            }
        }
    }
    let size: u64 = all.values().sum();
    let kept: u64 = held.iter().filter_map(|c| all.get(c)).sum();
    Usage {
        total: images.len(),
        active: images.iter().filter(|(a, _)| *a).count(),
        size,
        reclaimable: size - kept,
    }
}

/// Bytes of regular files under `dir`, not following symlinks; a missing dir is empty.
fn dir_size(dir: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut total = 0;
    for e in rd.flatten() {
        let Ok(md) = e.metadata() else { continue };
        if md.is_dir() {
            total += dir_size(&e.path());
        } else if md.is_file() {
            total += md.len();
        }
    }
    total
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
    let eng = engine(g)?;
    let store = Store::open(&g.root)?;

    let records = store.list()?;
    let users = store.image_users()?;
    // How many images hold each layer: what more than one holds is their SHARED SIZE.
    let mut holders: BTreeMap<&str, usize> = BTreeMap::new();
    for rec in &records {
        for l in &rec.layers {
            *holders.entry(l.chain_id.as_str()).or_default() += 1;
        }
    }
    let mut images = vec![];
    let mut image_rows = vec![];
    for rec in &records {
        let containers_using = users.get(&rec.id).map_or(0, |u| u.len());
        let active = containers_using > 0;
        let shared: u64 = rec
            .layers
            .iter()
            .filter(|l| holders.get(l.chain_id.as_str()).is_some_and(|n| *n > 1))
            .map(|l| l.size)
            .sum();
        let layers: Vec<(String, u64)> = rec
            .layers
            .iter()
            .map(|l| (l.chain_id.clone(), l.size))
            .collect();
        let tags = rec.familiar_tags();
        let (repo, tag) = tags
            .first()
            .and_then(|t| t.rsplit_once(':'))
            .map(|(r, t)| (r.to_string(), t.to_string()))
            .unwrap_or_else(|| ("<none>".into(), "<none>".into()));
        image_rows.push(vec![
            repo,
            tag,
            rec.short_id().to_string(),
            super::image::fmt::since(rec.created()),
            human_size(rec.size),
            human_size(shared),
            human_size(rec.size - shared.min(rec.size)),
            containers_using.to_string(),
        ]);
        images.push((active, layers));
    }

    let mut containers = Usage::default();
    let mut container_rows = vec![];
    for c in eng.store.list()? {
        let st = eng.observe(&c.id)?;
        let size = eng.size_rw(&c.id).unwrap_or(0);
        let running = matches!(
            st.status,
            Status::Running | Status::Paused | Status::Restarting
        );
        containers.total += 1;
        containers.size += size;
        if running {
            containers.active += 1;
        } else {
            containers.reclaimable += size;
        }
        let command = c.args.join(" ");
        let command = if command.chars().count() > 20 {
            format!("\"{}…\"", command.chars().take(19).collect::<String>())
        } else {
            format!("\"{command}\"")
        };
        let volumes = c.host.mounts.iter().filter(|m| m.kind == "volume").count();
        container_rows.push(vec![
            c.id[..c.id.len().min(12)].to_string(),
            c.image.clone(),
            command,
            volumes.to_string(),
            human_size(size),
            super::image::fmt::since(Some(&c.created)),
            st.status.as_str().to_string(),
            c.name.clone(),
        ]);
    }

    let mut volumes = Usage::default();
    let mut volume_rows = vec![];
    for v in Volumes::new(&g.root).list()? {
        let users = eng.volume_users(&v.name)?.len();
        let size = dir_size(&v.mountpoint);
        volumes.total += 1;
        volumes.size += size;
        if users > 0 {
            volumes.active += 1;
        } else {
            volumes.reclaimable += size;
        }
        volume_rows.push(vec![v.name.clone(), users.to_string(), human_size(size)]);
    }

    Ok(DfReport {
        images: image_usage(&images),
        containers,
        volumes,
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
                    "Size": human_size(u.size), "Reclaimable": u.reclaimable_cell(),
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
                u.reclaimable_cell(),
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

fn read_trim(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

fn os_name() -> String {
    read_trim("/etc/os-release")
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                .map(|v| v.trim_matches('"').to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

fn mem_total() -> u64 {
    read_trim("/proc/meminfo")
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("MemTotal:")
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            })
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

/// 2 on a unified (pure v2) hierarchy; 1 on v1 or hybrid hosts, where the controllers are v1.
fn cgroup_version() -> u8 {
    if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        2
    } else {
        1
    }
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
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    Ok(json!({
        "Containers": containers.len(),
        "ContainersRunning": running,
        "ContainersPaused": paused,
        "ContainersStopped": stopped,
        "Images": images,
        "Driver": "overlay2",
        "LoggingDriver": "json-file",
        "CgroupDriver": "cgroupfs",
        "CgroupVersion": cgroup_version().to_string(),
        "DefaultRuntime": "libcontainer",
        "KernelVersion": read_trim("/proc/sys/kernel/osrelease").unwrap_or_default(),
        "OperatingSystem": os_name(),
        "OSType": "linux",
        "Architecture": std::env::consts::ARCH,
        "NCPU": cpus,
        "MemTotal": mem_total(),
        "Name": read_trim("/proc/sys/kernel/hostname").unwrap_or_default(),
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

    fn layers(v: &[(&str, u64)]) -> Vec<(String, u64)> {
        v.iter().map(|(c, s)| (c.to_string(), *s)).collect()
    }

    #[test]
    fn shared_layers_count_once_and_stay_unreclaimable_while_used() {
        let imgs = vec![
            (true, layers(&[("base", 100), ("app", 10)])),
            (false, layers(&[("base", 100), ("other", 5)])),
        ];
        let u = image_usage(&imgs);
        assert_eq!(u.total, 2);
        assert_eq!(u.active, 1);
        assert_eq!(u.size, 115);
        assert_eq!(u.reclaimable, 5);
        assert_eq!(u.reclaimable_cell(), "5B (4%)");
    }

    #[test]
    fn nothing_used_is_all_reclaimable() {
        let u = image_usage(&[(false, layers(&[("a", 1000)]))]);
        assert_eq!((u.size, u.reclaimable), (1000, 1000));
        assert_eq!(u.reclaimable_cell(), "1kB (100%)");
        assert_eq!(image_usage(&[]).reclaimable_cell(), "0B");
    }

    #[test]
    fn dir_size_counts_files_not_symlinks() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("sub")).unwrap();
        std::fs::write(d.path().join("a"), vec![0u8; 300]).unwrap();
        std::fs::write(d.path().join("sub/b"), vec![0u8; 20]).unwrap();
        std::os::unix::fs::symlink("/usr", d.path().join("link")).unwrap();
        assert_eq!(dir_size(d.path()), 320);
        assert_eq!(dir_size(&d.path().join("missing")), 0);
    }
}
