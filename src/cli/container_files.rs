//! `container cp`, `diff`, `export`, `commit`, `top`, `stats`.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use rcompose_engine::container::commit::CommitOptions;
use rcompose_engine::container::files::CpOptions;
use rcompose_engine::container::model::Status;
use rcompose_engine::container::stats;

use super::GlobalOpts;
use super::container::engine;
use super::container_fmt::{render_table, render_template};
use rcompose_engine::units::human_size;

#[derive(Debug, Args)]
pub struct CpArgs {
    /// Always follow symbol link in SRC_PATH
    #[arg(short = 'L', long = "follow-link")]
    pub follow_link: bool,
    /// Archive mode (copy all uid/gid information)
    #[arg(short = 'a', long)]
    pub archive: bool,
    /// CONTAINER:SRC_PATH, a host path, or - (a tar stream on stdin)
    pub src: String,
    /// CONTAINER:DEST_PATH, a host path, or - (a tar stream on stdout)
    pub dest: String,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    pub container: String,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short = 'o', long)]
    pub output: Option<PathBuf>,
    pub container: String,
}

#[derive(Debug, Args)]
pub struct CommitArgs {
    /// Author (e.g. "John Hannibal Smith <hannibal@a-team.com>")
    #[arg(short = 'a', long)]
    pub author: Option<String>,
    /// Apply Dockerfile instruction to the created image
    #[arg(short = 'c', long = "change")]
    pub changes: Vec<String>,
    /// Commit message
    #[arg(short = 'm', long)]
    pub message: Option<String>,
    /// Pause container during commit
    #[arg(short = 'p', long, default_value_t = true, action = clap::ArgAction::Set)]
    pub pause: bool,
    pub container: String,
    /// REPOSITORY[:TAG]
    pub reference: Option<String>,
}

#[derive(Debug, Args)]
pub struct TopArgs {
    pub container: String,
    /// Options passed to the host's ps (default -ef)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_options: Vec<String>,
}

#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Show all containers (default shows just running)
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Disable streaming stats and only pull the first result
    #[arg(long = "no-stream")]
    pub no_stream: bool,
    /// Format output: table, json, or a Go template such as "{{.Name}} {{.NetIO}}"
    #[arg(long)]
    pub format: Option<String>,
    pub containers: Vec<String>,
}

/// `CONTAINER:PATH` → (container, path); host paths (with `/` or `.` first, or no colon)
/// give `None`.
fn split_container_path(s: &str) -> Option<(&str, &str)> {
    if s.starts_with('/') || s.starts_with('.') {
        return None;
    }
    s.split_once(':')
}

pub fn cp(g: &GlobalOpts, a: CpArgs) -> Result<ExitCode> {
    let eng = engine(g)?;
    let opts = CpOptions {
        follow_link: a.follow_link,
        archive: a.archive,
    };
    match (split_container_path(&a.src), split_container_path(&a.dest)) {
        (Some((c, path)), None) => {
            let cfg = eng.store.resolve(c)?;
            if a.dest == "-" {
                let mut out = std::io::stdout().lock();
                eng.copy_out(&cfg.id, path, None, opts, &mut out)?;
                return Ok(ExitCode::SUCCESS);
            }
            eng.copy_to_host(&cfg.id, path, Path::new(&a.dest), opts)?;
        }
        (None, Some((c, path))) => {
            let cfg = eng.store.resolve(c)?;
            if a.src == "-" {
                let mut input = std::io::stdin();
                eng.copy_in(&cfg.id, path, opts, &mut input)?;
                return Ok(ExitCode::SUCCESS);
            }
            eng.copy_from_host(&cfg.id, Path::new(&a.src), path, opts)?;
        }
        (Some(_), Some(_)) => bail!("copying between containers is not supported"),
        (None, None) => bail!("must specify at least one container source (CONTAINER:PATH)"),
    }
    Ok(ExitCode::SUCCESS)
}

pub fn diff(g: &GlobalOpts, a: DiffArgs) -> Result<ExitCode> {
    let eng = engine(g)?;
    let cfg = eng.store.resolve(&a.container)?;
    let mut out = std::io::stdout().lock();
    for c in eng.diff(&cfg.id)? {
        writeln!(out, "{} {}", c.kind, c.path)?;
    }
    Ok(ExitCode::SUCCESS)
}

pub fn export(g: &GlobalOpts, a: ExportArgs) -> Result<ExitCode> {
    let eng = engine(g)?;
    let cfg = eng.store.resolve(&a.container)?;
    match &a.output {
        Some(p) => {
            let mut f =
                std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?;
            eng.export(&cfg.id, &mut f)?;
        }
        None => {
            if std::io::stdout().is_terminal() {
                bail!("cowardly refusing to save to a terminal. Use the -o flag or redirect");
            }
            eng.export(&cfg.id, &mut std::io::stdout().lock())?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn commit(g: &GlobalOpts, a: CommitArgs) -> Result<ExitCode> {
    let eng = engine(g)?;
    let cfg = eng.store.resolve(&a.container)?;
    let id = eng.commit(
        &cfg.id,
        &CommitOptions {
            tag: a.reference.clone(),
            message: a.message.clone(),
            author: a.author.clone(),
            changes: a.changes.clone(),
            pause: a.pause,
        },
    )?;
    println!("{id}");
    Ok(ExitCode::SUCCESS)
}

pub fn top(g: &GlobalOpts, a: TopArgs) -> Result<ExitCode> {
    let eng = engine(g)?;
    let cfg = eng.store.resolve(&a.container)?;
    let st = eng.observe(&cfg.id)?;
    if !matches!(st.status, Status::Running | Status::Paused) {
        bail!("container {} is not running", cfg.name);
    }
    let pids = stats::pids(&cfg.id);
    let list: Vec<String> = pids.iter().map(|p| p.to_string()).collect();
    let opts = if a.ps_options.is_empty() {
        vec!["-f".to_string()]
    } else {
        a.ps_options.clone()
    };
    let out = std::process::Command::new("ps")
        .args(&opts)
        .arg("-p")
        .arg(list.join(","))
        .output()
        .context("running the host's ps (Debian package procps)")?;
    std::io::stdout().write_all(&out.stdout)?;
    Ok(ExitCode::SUCCESS)
}

pub fn stats(g: &GlobalOpts, a: StatsArgs) -> Result<ExitCode> {
    let eng = engine(g)?;
    let targets = if a.containers.is_empty() {
        let mut v = vec![];
        for c in eng.store.list()? {
            let st = eng.observe(&c.id)?;
            if a.all || matches!(st.status, Status::Running | Status::Paused) {
                v.push(c);
            }
        }
        v
    } else {
        a.containers
            .iter()
            .map(|k| eng.store.resolve(k))
            .collect::<Result<Vec<_>, _>>()?
    };
    // `json`, a Go template (`{{.Name}} {{.NetIO}}`; `table …` adds docker's header and
    // aligns the columns), or the default table.
    let template = match a.format.as_deref() {
        None | Some("table") => None,
        Some(t) => Some(t.to_string()),
    };
    let mut table_rows = vec![];
    let json = template.is_some();
    loop {
        let before: Vec<_> = targets.iter().map(|c| stats::sample(&c.id)).collect();
        let host_before = stats::host_cpu_ns();
        std::thread::sleep(Duration::from_millis(500));
        let host_delta = stats::host_cpu_ns().saturating_sub(host_before).max(1);
        let mut out = std::io::stdout().lock();
        if !json {
            if !a.no_stream {
                write!(out, "\x1b[2J\x1b[H")?;
            }
            writeln!(
                out,
                "{:<15}{:<20}{:<10}{:<22}{:<10}{:<20}{:<20}PIDS",
                "CONTAINER ID",
                "NAME",
                "CPU %",
                "MEM USAGE / LIMIT",
                "MEM %",
                "NET I/O",
                "BLOCK I/O"
            )?;
        }
        for (c, b) in targets.iter().zip(before) {
            let now = stats::sample(&c.id);
            let (cpu, mem, limit, pids) = match (&b, &now) {
                (Some(b), Some(n)) => (
                    n.cpu_ns.saturating_sub(b.cpu_ns) as f64 / host_delta as f64
                        * stats::online_cpus() as f64
                        * 100.0,
                    n.mem_usage,
                    n.mem_limit,
                    n.pids,
                ),
                _ => (0.0, 0, 0, 0),
            };
            let mem_pct = if limit > 0 {
                mem as f64 / limit as f64 * 100.0
            } else {
                0.0
            };
            let usage = format!("{} / {}", mib(mem), mib(limit));
            let net = match eng.observe(&c.id) {
                Ok(st) if now.is_some() => stats::net_io(st.pid, st.pid_start_ticks),
                _ => None,
            }
            .unwrap_or_default();
            let net_io = format!("{} / {}", human_size(net.rx), human_size(net.tx));
            let (br, bw) = now.as_ref().map_or((0, 0), |n| (n.blk_read, n.blk_write));
            let block_io = format!("{} / {}", human_size(br), human_size(bw));
            if let Some(t) = &template {
                let j = serde_json::json!({
                    "BlockIO": block_io, "CPUPerc": format!("{cpu:.2}%"), "Container": &c.id[..12],
                    "ID": &c.id[..12], "MemPerc": format!("{mem_pct:.2}%"), "MemUsage": usage,
                    "Name": c.name, "NetIO": net_io, "PIDs": pids.to_string(),
                });
                if t == "json" {
                    writeln!(out, "{j}")?;
                } else if t.starts_with("table ") {
                    table_rows.push(j);
                } else {
                    let line = render_template(t, &j).map_err(|e| anyhow::anyhow!(e))?;
                    writeln!(out, "{line}")?;
                }
            } else {
                writeln!(
                    out,
                    "{:<15}{:<20}{:<10}{:<22}{:<10}{:<20}{:<20}{}",
                    &c.id[..12],
                    c.name,
                    format!("{cpu:.2}%"),
                    usage,
                    format!("{mem_pct:.2}%"),
                    net_io,
                    block_io,
                    pids
                )?;
            }
        }
        if let Some(t) = template.as_deref().filter(|t| t.starts_with("table ")) {
            const NAMES: [(&str, &str); 9] = [
                ("Container", "CONTAINER"),
                ("ID", "CONTAINER ID"),
                ("Name", "NAME"),
                ("CPUPerc", "CPU %"),
                ("MemUsage", "MEM USAGE / LIMIT"),
                ("MemPerc", "MEM %"),
                ("NetIO", "NET I/O"),
                ("BlockIO", "BLOCK I/O"),
                ("PIDs", "PIDS"),
            ];
            if !a.no_stream {
                write!(out, "\x1b[2J\x1b[H")?;
            }
            let text = render_table(t, &std::mem::take(&mut table_rows), &NAMES)
                .map_err(|e| anyhow::anyhow!(e))?;
            write!(out, "{text}")?;
        }
        out.flush()?;
        if a.no_stream {
            return Ok(ExitCode::SUCCESS);
        }
    }
}

/// Docker prints binary units for memory (`12.5MiB`).
fn mib(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= (1u64 << 30) as f64 {
        format!("{:.2}GiB", b / (1u64 << 30) as f64)
    } else if b >= (1u64 << 20) as f64 {
        format!("{:.2}MiB", b / (1u64 << 20) as f64)
    } else {
        format!("{:.2}KiB", b / 1024.0)
    }
}
