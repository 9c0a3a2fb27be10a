//! `rcompose exec` (into a service's running container) and `rcompose run` (a one-off
//! container `<project>-<service>-run-<slug>`, after bringing up its dependencies).

use std::io::IsTerminal;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Args;
use rcompose_compose::execute::Backend;
use rcompose_compose::labels;
use rcompose_compose::model::{Port, Service};
use rcompose_compose::ops;

use super::GlobalOpts;
use super::compose_common::{Progress, backend, check_services, containers, load_project};
use super::container::ExecArgs;
use super::container_attach::{AttachMode, attach_stream};
use rcompose_wire::backend::lock::lock_project;

fn stdin_is_tty() -> bool {
    std::io::stdin().is_terminal()
}

#[derive(Debug, Args)]
pub struct ComposeExecArgs {
    /// Detached mode: run command in the background
    #[arg(short, long)]
    pub detach: bool,
    /// Disable pseudo-TTY allocation (default: a TTY when stdin is one)
    #[arg(short = 'T', long = "no-tty")]
    pub no_tty: bool,
    /// Set environment variables
    #[arg(short, long = "env")]
    pub env: Vec<String>,
    /// Run the command as this user
    #[arg(short, long)]
    pub user: Option<String>,
    /// Path to workdir directory for this command
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// Index of the container if service has multiple replicas
    #[arg(long, default_value_t = 1)]
    pub index: u32,
    /// Give extended privileges to the process (not supported)
    #[arg(long)]
    pub privileged: bool,
    pub service: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    pub command: Vec<String>,
}

pub fn exec(g: &GlobalOpts, a: ComposeExecArgs) -> Result<ExitCode> {
    if a.privileged {
        bail!("not supported yet: exec --privileged");
    }
    let project = load_project(g, &[])?;
    check_services(&project, std::slice::from_ref(&a.service))?;
    let b = backend(g)?;
    let list = containers(
        &b,
        &project.name,
        std::slice::from_ref(&a.service),
        false,
        false,
    )?;
    let Some(c) = list.iter().find(|c| {
        c.labels.get(labels::CONTAINER_NUMBER).map(String::as_str) == Some(&a.index.to_string())
    }) else {
        bail!(
            "service \"{}\" is not running (no container with index {}); start it with `rcompose up -d {}`",
            a.service,
            a.index,
            a.service
        );
    };
    if g.dry_run {
        println!("container {}: exec {}", c.name, a.command.join(" "));
        return Ok(ExitCode::SUCCESS);
    }
    let tty = !a.no_tty && !a.detach && stdin_is_tty();
    super::container_run::exec(
        g,
        ExecArgs {
            detach: a.detach,
            interactive: !a.detach,
            tty,
            env: a.env,
            user: a.user,
            workdir: a.workdir,
            container: c.id.clone(),
            command: a.command,
        },
    )
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Run container in background and print container ID
    #[arg(short, long)]
    pub detach: bool,
    /// Automatically remove the container when it exits
    #[arg(long)]
    pub rm: bool,
    /// Set environment variables
    #[arg(short, long = "env")]
    pub env: Vec<String>,
    /// Bind mount a volume
    #[arg(short, long = "volume")]
    pub volumes: Vec<String>,
    /// Publish a container's port(s) to the host
    #[arg(short, long = "publish")]
    pub publish: Vec<String>,
    /// Run command with all service's ports enabled and mapped to the host
    #[arg(long)]
    pub service_ports: bool,
    /// Override the entrypoint of the image
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Don't start linked services
    #[arg(long)]
    pub no_deps: bool,
    /// Run as specified username or uid
    #[arg(short, long)]
    pub user: Option<String>,
    /// Working directory inside the container
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// Assign a name to the container
    #[arg(long)]
    pub name: Option<String>,
    /// Disable pseudo-TTY allocation (default: a TTY when stdin is one)
    #[arg(short = 'T', long = "no-TTY")]
    pub no_tty: bool,
    /// Keep STDIN open even if not attached
    #[arg(short, long)]
    pub interactive: bool,
    /// Pull image before running ("always"|"missing"|"never"|"build")
    #[arg(long, value_name = "POLICY")]
    pub pull: Option<String>,
    /// Build the image before starting the container
    #[arg(long)]
    pub build: bool,
    pub service: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// 12 hex characters, as compose's run slugs.
fn slug() -> Result<String> {
    let id = rcompose_engine::container::new_id()?;
    Ok(id[..12].to_string())
}

/// The service as the one-off container runs it.
fn one_off_service(svc: &Service, a: &RunArgs) -> Result<Service> {
    let mut s = svc.clone();
    if !a.command.is_empty() {
        s.command = Some(a.command.clone());
    }
    if let Some(e) = &a.entrypoint {
        s.entrypoint = Some(if e.is_empty() {
            vec![]
        } else {
            vec![e.clone()]
        });
    }
    for e in &a.env {
        let (k, v) = match e.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (e.clone(), std::env::var(e).ok()),
        };
        s.environment.insert(k, v);
    }
    if a.user.is_some() {
        s.user = a.user.clone();
    }
    if a.workdir.is_some() {
        s.working_dir = a.workdir.clone();
    }
    if !a.service_ports {
        s.ports.clear();
    }
    for p in &a.publish {
        s.ports.push(parse_publish(p)?);
    }
    for v in &a.volumes {
        let parts: Vec<&str> = v.split(':').collect();
        let (src, dst, ro) = match parts.as_slice() {
            [src, dst] => (*src, *dst, false),
            [src, dst, "ro"] => (*src, *dst, true),
            [src, dst, "rw"] => (*src, *dst, false),
            _ => bail!("invalid -v {v:?}: use SOURCE:TARGET[:ro]"),
        };
        let kind = if src.starts_with('/') || src.starts_with('.') {
            "bind"
        } else {
            "volume"
        };
        let source = if kind == "bind" {
            std::fs::canonicalize(src)
                .with_context(|| format!("-v {v}: {src} does not exist"))?
                .display()
                .to_string()
        } else {
            src.to_string()
        };
        s.volumes.push(rcompose_compose::model::ServiceVolume {
            kind: kind.into(),
            source: Some(source),
            target: dst.into(),
            read_only: ro,
            ..Default::default()
        });
    }
    s.restart = None;
    s.container_name = None;
    Ok(s)
}

/// `[ip:][host:]container[/proto]`.
fn parse_publish(p: &str) -> Result<Port> {
    let (body, proto) = p.split_once('/').unwrap_or((p, "tcp"));
    let parts: Vec<&str> = body.split(':').collect();
    let (host_ip, published, target) = match parts.as_slice() {
        [t] => (None, None, *t),
        [h, t] => (None, Some(h.to_string()), *t),
        [ip, h, t] => (
            Some(ip.to_string()),
            (!h.is_empty()).then(|| h.to_string()),
            *t,
        ),
        _ => bail!("invalid -p {p:?}: use [IP:][HOST:]CONTAINER[/PROTO]"),
    };
    Ok(Port {
        mode: "ingress".into(),
        host_ip,
        target: target
            .parse()
            .with_context(|| format!("invalid -p {p:?}: container port must be a number"))?,
        published,
        protocol: proto.into(),
        ..Default::default()
    })
}

pub fn run(g: &GlobalOpts, a: RunArgs) -> Result<ExitCode> {
    let project = load_project(g, std::slice::from_ref(&a.service))?;
    check_services(&project, std::slice::from_ref(&a.service))?;
    if g.dry_run {
        println!(
            "container {}-{}-run-<slug>: create, start (one-off{})",
            project.name,
            a.service,
            if a.rm { ", removed when it exits" } else { "" }
        );
        return Ok(ExitCode::SUCCESS);
    }
    let b = backend(g)?;
    let service = std::slice::from_ref(&a.service);
    super::compose_pull::pull_for_up(g, &project, service, a.no_deps, a.pull.as_deref(), false)?;
    // The service's image, and its dependencies' unless --no-deps, built when missing.
    let with_deps = if a.no_deps {
        service.to_vec()
    } else {
        rcompose_compose::graph::DependencyGraph::new(&project)?
            .with_dependencies(service)
            .into_iter()
            .collect()
    };
    rcompose_compose::ops::build::build_missing(
        &project,
        &b,
        &with_deps,
        a.build,
        &Default::default(),
        &super::compose_build::progress_line,
    )?;
    {
        let _lock = lock_project(b.root(), &project.name)?;
        let progress = Progress::new(false);
        let on_event = |e| progress.event(e);
        ops::run::start_dependencies(&project, &b, &a.service, a.no_deps, &on_event)?;
    }
    let svc = one_off_service(&project.services[&a.service], &a)?;
    let name = match &a.name {
        Some(n) => n.clone(),
        None => format!("{}-{}-run-{}", project.name, a.service, slug()?),
    };
    let tty = !a.no_tty && !a.detach && stdin_is_tty();
    let stdin = !a.detach && (a.interactive || tty || svc.stdin_open);
    let id = b.create_one_off(&project, &svc, &name, tty, stdin, a.rm)?;
    if a.detach {
        b.start_with(&id, None)?;
        println!("{name}");
        return Ok(ExitCode::SUCCESS);
    }
    let (ours, theirs) = UnixStream::pair().context("creating the attach socket pair")?;
    if let Err(e) = b.start_with(&id, Some(OwnedFd::from(theirs))) {
        let _ = b.remove_container(&id, true);
        return Err(e.into());
    }
    let pid = b
        .containers()
        .store
        .load_state(&id)
        .map(|s| s.pid)
        .unwrap_or(0);
    let mode = AttachMode {
        stdin,
        tty,
        detach_keys: vec![0x10, 0x11],
        sig_proxy: !tty,
        ..Default::default()
    };
    let res = attach_stream(ours, &mode, pid);
    // With --rm the monitor removes the container (and its anonymous volumes) when it exits,
    // before it reports the exit code. Detaching (the detach keys) leaves it running, as
    // docker compose does.
    let code = res?.unwrap_or(0);
    Ok(ExitCode::from(code.clamp(0, 255) as u8))
}
