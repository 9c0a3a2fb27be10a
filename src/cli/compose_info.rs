//! Read-only compose verbs: `ls`, `port`, `images`, `top`, `wait`.

use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::Args;
use rcompose_compose::execute::first_of;
use rcompose_compose::labels;
use rcompose_compose::observe::ContainerSummary;
use rcompose_engine::host::processes_in_pid_namespace_of;
use serde_json::json;

use super::GlobalOpts;
use super::compose_common::{backend, check_services, containers, target};
use rcompose_wire::backend::projects;

#[derive(Debug, Args)]
pub struct LsArgs {
    /// Show all stopped Compose projects
    #[arg(short, long)]
    pub all: bool,
    /// Only display project names
    #[arg(short, long)]
    pub quiet: bool,
    /// Format the output: table or json
    #[arg(long, default_value = "table")]
    pub format: String,
    /// Filter output based on conditions provided (name=…)
    #[arg(long)]
    pub filter: Vec<String>,
}

pub fn ls(g: &GlobalOpts, a: LsArgs) -> Result<ExitCode> {
    let b = backend(g)?;
    let mut rows = vec![];
    for (name, (running, total, files)) in projects(&b)? {
        if !a.all && running == 0 {
            continue;
        }
        let name_ok = a.filter.iter().all(|f| match f.split_once('=') {
            Some(("name", v)) => name.contains(v),
            _ => true,
        });
        if !name_ok {
            continue;
        }
        let status = if running == total {
            format!("running({running})")
        } else if running == 0 {
            format!("exited({total})")
        } else {
            format!("running({running}), exited({})", total - running)
        };
        rows.push((name, status, files));
    }
    if a.quiet {
        for (n, _, _) in &rows {
            println!("{n}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    match a.format.as_str() {
        "json" => {
            let v: Vec<_> = rows
                .iter()
                .map(|(n, s, f)| json!({"Name": n, "Status": s, "ConfigFiles": f}))
                .collect();
            println!("{}", serde_json::Value::Array(v));
        }
        "table" => {
            let w0 = rows.iter().map(|r| r.0.len()).max().unwrap_or(0).max(4) + 3;
            let w1 = rows.iter().map(|r| r.1.len()).max().unwrap_or(0).max(6) + 3;
            println!("{:<w0$}{:<w1$}CONFIG FILES", "NAME", "STATUS");
            for (n, s, f) in &rows {
                println!("{n:<w0$}{s:<w1$}{f}");
            }
        }
        other => bail!("unsupported --format {other:?}: use table or json"),
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct PortArgs {
    /// tcp or udp
    #[arg(long, default_value = "tcp")]
    pub protocol: String,
    /// Index of the container if service has multiple replicas
    #[arg(long, default_value_t = 1)]
    pub index: u32,
    pub service: String,
    pub private_port: u16,
}

fn by_index(list: &[ContainerSummary], index: u32) -> Option<&ContainerSummary> {
    list.iter().find(|c| {
        c.labels.get(labels::CONTAINER_NUMBER).map(String::as_str) == Some(&index.to_string())
    })
}

pub fn port(g: &GlobalOpts, a: PortArgs) -> Result<ExitCode> {
    let t = target(g)?;
    if let Some(p) = &t.project {
        check_services(p, std::slice::from_ref(&a.service))?;
    }
    let b = backend(g)?;
    let list = containers(&b, &t.name, std::slice::from_ref(&a.service), false, false)?;
    let Some(c) = by_index(&list, a.index) else {
        bail!(
            "service \"{}\" has no running container with index {}",
            a.service,
            a.index
        );
    };
    let suffix = format!("->{}/{}", a.private_port, a.protocol);
    match c.ports.iter().find(|p| p.ends_with(&suffix)) {
        Some(p) => {
            println!("{}", p.trim_end_matches(&suffix));
            Ok(ExitCode::SUCCESS)
        }
        None => bail!(
            "no port {}/{} published for service \"{}\"",
            a.private_port,
            a.protocol,
            a.service
        ),
    }
}

#[derive(Debug, Args)]
pub struct ImagesArgs {
    /// Only display IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Format the output: table or json
    #[arg(long, default_value = "table")]
    pub format: String,
    pub services: Vec<String>,
}

pub fn images(g: &GlobalOpts, a: ImagesArgs) -> Result<ExitCode> {
    let t = target(g)?;
    let b = backend(g)?;
    let list = containers(&b, &t.name, &a.services, true, false)?;
    let split = |image: &str| -> (String, String) {
        match image.rsplit_once(':') {
            Some((r, tag)) if !tag.contains('/') => (r.to_string(), tag.to_string()),
            _ => (image.to_string(), "latest".to_string()),
        }
    };
    if a.quiet {
        let mut ids: Vec<&str> = list.iter().map(|c| c.image_id.as_str()).collect();
        ids.dedup();
        for id in ids {
            println!("{}", id.trim_start_matches("sha256:"));
        }
        return Ok(ExitCode::SUCCESS);
    }
    if a.format == "json" {
        let v: Vec<_> = list
            .iter()
            .map(|c| {
                let (repo, tag) = split(&c.image);
                json!({"ContainerName": c.name, "Repository": repo, "Tag": tag, "ID": c.image_id})
            })
            .collect();
        println!("{}", serde_json::Value::Array(v));
        return Ok(ExitCode::SUCCESS);
    }
    let w = list.iter().map(|c| c.name.len()).max().unwrap_or(0).max(9) + 3;
    let wr = list
        .iter()
        .map(|c| split(&c.image).0.len())
        .max()
        .unwrap_or(0)
        .max(10)
        + 3;
    println!(
        "{:<w$}{:<wr$}{:<10}IMAGE ID",
        "CONTAINER", "REPOSITORY", "TAG"
    );
    for c in &list {
        let (repo, tag) = split(&c.image);
        let short: String = c
            .image_id
            .trim_start_matches("sha256:")
            .chars()
            .take(12)
            .collect();
        println!("{:<w$}{repo:<wr$}{tag:<10}{short}", c.name);
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct WaitArgs {
    /// Drops project when the first container stops
    #[arg(long)]
    pub down_project: bool,
    pub services: Vec<String>,
}

/// `wait`: blocks until the services' containers stop; prints each exit code. With
/// `--down-project`, the first container to stop ends the wait: its code is printed and
/// returned after the project is brought down (`down --remove-orphans`, volumes kept).
pub fn wait(g: &GlobalOpts, a: WaitArgs) -> Result<ExitCode> {
    let t = target(g)?;
    if let Some(p) = &t.project {
        check_services(p, &a.services)?;
    }
    let b = backend(g)?;
    // --down-project reacts to a stop: only containers still running can give one.
    let list = containers(&b, &t.name, &a.services, !a.down_project, false)?;
    if list.is_empty() {
        bail!(
            "no {}containers for project \"{}\"",
            if a.down_project { "running " } else { "" },
            t.name
        );
    }
    if a.down_project {
        type Wait = Box<dyn FnOnce() -> Result<i32> + Send>;
        let mut waits: Vec<Wait> = vec![];
        for c in &list {
            let (eng, id) = (backend(g)?, c.id.clone());
            waits.push(Box::new(move || Ok(eng.containers().wait(&id)?)));
        }
        // The first container to exit decides; the other waits end with the process.
        let code = first_of(waits)
            .ok_or_else(|| anyhow::anyhow!("waiting for the containers of {}", t.name))??;
        println!("{code}");
        super::compose_down::run(
            g,
            super::compose_down::DownArgs {
                volumes: false,
                rmi: None,
                remove_orphans: true,
                timeout: None,
                services: vec![],
            },
        )?;
        return Ok(ExitCode::from(code.clamp(0, 255) as u8));
    }
    let mut last = 0;
    for c in &list {
        last = b.containers().wait(&c.id)?;
        println!("{last}");
    }
    Ok(ExitCode::from(last.clamp(0, 255) as u8))
}

#[derive(Debug, Args)]
pub struct TopArgs {
    pub services: Vec<String>,
}

/// `top`: the processes of each running container (from /proc, by the container's pid
/// namespace).
pub fn top(g: &GlobalOpts, a: TopArgs) -> Result<ExitCode> {
    let t = target(g)?;
    let b = backend(g)?;
    for c in containers(&b, &t.name, &a.services, false, false)? {
        let st = b.containers().observe(&c.id)?;
        println!("{}", c.name);
        println!("{:<8}{:<8}{:<8}CMD", "UID", "PID", "PPID");
        let Some(processes) = processes_in_pid_namespace_of(st.pid)? else {
            continue;
        };
        for p in processes {
            println!("{:<8}{:<8}{:<8}{}", p.uid, p.pid, p.ppid, p.cmd);
        }
        println!();
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct CpArgs {
    /// Index of the container if service has multiple replicas
    #[arg(long, default_value_t = 1)]
    pub index: u32,
    /// Archive mode (copy all uid/gid information)
    #[arg(short, long)]
    pub archive: bool,
    /// Always follow symbol link in SRC_PATH
    #[arg(short = 'L', long)]
    pub follow_link: bool,
    /// SERVICE:SRC_PATH or a host path
    pub src: String,
    /// SERVICE:DEST_PATH or a host path
    pub dest: String,
}

/// `SERVICE:path` → `<container id>:path`; host paths unchanged.
fn container_path(
    b: &rcompose_wire::backend::EngineBackend,
    project: &str,
    services: &[String],
    arg: &str,
    index: u32,
) -> Result<String> {
    let Some((svc, path)) = arg.split_once(':') else {
        return Ok(arg.to_string());
    };
    if arg.starts_with('/') || arg.starts_with('.') || !services.iter().any(|s| s == svc) {
        return Ok(arg.to_string());
    }
    let list = containers(b, project, &[svc.to_string()], true, false)?;
    let Some(c) = by_index(&list, index) else {
        bail!("service \"{svc}\" has no container with index {index}");
    };
    Ok(format!("{}:{path}", c.id))
}

/// `cp`: `container cp` with `SERVICE:path` resolved to the service's container.
pub fn cp(g: &GlobalOpts, a: CpArgs) -> Result<ExitCode> {
    let t = target(g)?;
    let services: Vec<String> = match &t.project {
        Some(p) => p.service_names(),
        None => bail!("cp needs the compose file to know the services"),
    };
    let b = backend(g)?;
    let src = container_path(&b, &t.name, &services, &a.src, a.index)?;
    let dest = container_path(&b, &t.name, &services, &a.dest, a.index)?;
    if src == a.src && dest == a.dest {
        bail!(
            "one of SRC and DEST must be SERVICE:PATH (services: {})",
            services.join(", ")
        );
    }
    super::container_files::cp(
        g,
        super::container_files::CpArgs {
            follow_link: a.follow_link,
            archive: a.archive,
            src,
            dest,
        },
    )
}

#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    pub all: bool,
    /// Disable streaming stats and only pull the first result
    #[arg(long)]
    pub no_stream: bool,
    /// Format output: table or json
    #[arg(long)]
    pub format: Option<String>,
    pub services: Vec<String>,
}

/// `stats`: `container stats` for the project's containers.
pub fn stats(g: &GlobalOpts, a: StatsArgs) -> Result<ExitCode> {
    let t = target(g)?;
    if let Some(p) = &t.project {
        check_services(p, &a.services)?;
    }
    let b = backend(g)?;
    let list = containers(&b, &t.name, &a.services, a.all, false)?;
    if list.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    super::container_files::stats(
        g,
        super::container_files::StatsArgs {
            all: a.all,
            no_stream: a.no_stream,
            format: a.format,
            containers: list.into_iter().map(|c| c.name).collect(),
        },
    )
}

/// The id of container number `index` of `service` (any state when `all`).
fn service_container(g: &GlobalOpts, service: &str, index: u32, all: bool) -> Result<String> {
    let t = target(g)?;
    if let Some(p) = &t.project {
        check_services(p, &[service.to_string()])?;
    }
    let b = backend(g)?;
    let list = containers(&b, &t.name, &[service.to_string()], all, false)?;
    match by_index(&list, index) {
        Some(c) => Ok(c.id.clone()),
        None => bail!(
            "service \"{service}\" has no {}container with index {index}",
            if all { "" } else { "running " }
        ),
    }
}

#[derive(Debug, Args)]
pub struct AttachArgs {
    /// Override the key sequence for detaching from a container
    #[arg(long, default_value = "ctrl-p,ctrl-q")]
    pub detach_keys: String,
    /// Index of the container if service has multiple replicas
    #[arg(long, default_value_t = 1)]
    pub index: u32,
    /// Do not attach STDIN
    #[arg(long)]
    pub no_stdin: bool,
    /// Proxy all received signals to the process
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub sig_proxy: bool,
    pub service: String,
}

/// `attach`: `container attach` to the service's container.
pub fn attach(g: &GlobalOpts, a: AttachArgs) -> Result<ExitCode> {
    let id = service_container(g, &a.service, a.index, false)?;
    super::container_attach::attach(
        g,
        super::container_attach::AttachArgs {
            detach_keys: a.detach_keys,
            no_stdin: a.no_stdin,
            sig_proxy: a.sig_proxy,
            container: id,
        },
    )
}

#[derive(Debug, Args)]
pub struct CommitArgs {
    /// Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")
    #[arg(short, long)]
    pub author: Option<String>,
    /// Apply Dockerfile instruction to the created image
    #[arg(short, long = "change")]
    pub changes: Vec<String>,
    /// Index of the container if service has multiple replicas
    #[arg(long, default_value_t = 1)]
    pub index: u32,
    /// Commit message
    #[arg(short, long)]
    pub message: Option<String>,
    /// Pause container during commit
    #[arg(short, long, default_value_t = true, action = clap::ArgAction::Set)]
    pub pause: bool,
    pub service: String,
    pub reference: Option<String>,
}

/// `commit`: `container commit` of the service's container.
pub fn commit(g: &GlobalOpts, a: CommitArgs) -> Result<ExitCode> {
    let id = service_container(g, &a.service, a.index, true)?;
    super::container_files::commit(
        g,
        super::container_files::CommitArgs {
            author: a.author,
            changes: a.changes,
            message: a.message,
            pause: a.pause,
            container: id,
            reference: a.reference,
        },
    )
}
