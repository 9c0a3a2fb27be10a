//! `rcompose up` and `rcompose create`: flags → load → `compose::ops::up::prepare` (images,
//! observe, reconcile; printed with --dry-run) → `execute` with progress lines; then `--wait`,
//! or attach to the logs (Ctrl-C stops, a second Ctrl-C kills).

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use rcompose_compose::execute::{ExecuteOptions, alongside, execute};
use rcompose_compose::model::Project;
use rcompose_compose::ops;
use rcompose_compose::plan::Plan;
use rcompose_compose::reconcile::{ReconcileOptions, RecreatePolicy};
use rcompose_engine::logs::ReadOptions;

use super::compose_common::{Progress, backend, check_services, containers, load_project};
use super::compose_logs::{INTERRUPTS, Multiplexer, Style, catch_interrupts};
use super::{ExitStatus, GlobalOpts};
use rcompose_wire::backend::{EngineBackend, lock::lock_project};

#[derive(Debug, Clone, Args, Default)]
pub struct UpArgs {
    /// Detached mode: run containers in the background
    #[arg(short, long)]
    pub detach: bool,
    /// Build images before starting containers
    #[arg(long)]
    pub build: bool,
    /// Don't build an image, even if it's policy
    #[arg(long)]
    pub no_build: bool,
    /// Pull image before running ("always"|"missing"|"never"|"build")
    #[arg(long, value_name = "POLICY")]
    pub pull: Option<String>,
    /// Recreate containers even if their configuration and image haven't changed
    #[arg(long, conflicts_with = "no_recreate")]
    pub force_recreate: bool,
    /// If containers already exist, don't recreate them
    #[arg(long)]
    pub no_recreate: bool,
    /// Don't start the services after creating them
    #[arg(long)]
    pub no_start: bool,
    /// Don't start linked services
    #[arg(long)]
    pub no_deps: bool,
    /// Remove containers for services not defined in the Compose file
    #[arg(long, env = "COMPOSE_REMOVE_ORPHANS", value_parser = super::env_flag)]
    pub remove_orphans: bool,
    /// Scale SERVICE to NUM instances (SERVICE=NUM)
    #[arg(long, value_name = "SERVICE=NUM")]
    pub scale: Vec<String>,
    /// Wait for services to be running|healthy. Implies detached mode
    #[arg(long)]
    pub wait: bool,
    /// Maximum duration in seconds to wait for the project to be running|healthy
    #[arg(long, value_name = "SECONDS")]
    pub wait_timeout: Option<u64>,
    /// Stops all containers if any container was stopped. Incompatible with -d
    #[arg(long, conflicts_with = "detach")]
    pub abort_on_container_exit: bool,
    /// Return the exit code of the selected service container. Implies --abort-on-container-exit
    #[arg(long, value_name = "SERVICE", conflicts_with = "detach")]
    pub exit_code_from: Option<String>,
    /// Restrict attaching to the specified services
    #[arg(long, value_name = "SERVICE")]
    pub attach: Vec<String>,
    /// Do not attach (stream logs) to the specified services
    #[arg(long, value_name = "SERVICE")]
    pub no_attach: Vec<String>,
    /// Show timestamps
    #[arg(long)]
    pub timestamps: bool,
    /// Produce monochrome output
    #[arg(long)]
    pub no_color: bool,
    /// Don't print prefix in logs
    #[arg(long)]
    pub no_log_prefix: bool,
    /// Use this timeout in seconds for container shutdown
    #[arg(short = 't', long, value_name = "SECONDS")]
    pub timeout: Option<u32>,
    /// Recreate anonymous volumes instead of retrieving data from the previous containers
    #[arg(short = 'V', long)]
    pub renew_anon_volumes: bool,
    /// Watch source code and rebuild/refresh containers when files are updated
    #[arg(short = 'w', long)]
    pub watch: bool,
    /// Don't print anything to stdout
    #[arg(long)]
    pub quiet_pull: bool,
    pub services: Vec<String>,
}

/// `COMPOSE_IGNORE_ORPHANS`, read as compose v2 reads its booleans; refused together with
/// `--remove-orphans`, as compose v2 does.
fn ignore_orphans(remove_orphans: bool) -> Result<bool> {
    let ignore = std::env::var("COMPOSE_IGNORE_ORPHANS")
        .ok()
        .is_some_and(|v| super::env_flag(&v).unwrap_or(false));
    if ignore && remove_orphans {
        anyhow::bail!("COMPOSE_IGNORE_ORPHANS and --remove-orphans cannot be combined");
    }
    Ok(ignore)
}

pub fn up(g: &GlobalOpts, a: UpArgs) -> Result<ExitCode> {
    if a.watch {
        return up_watch(g, a);
    }
    rcompose_wire::backend::timing::mark("up: begin");
    let project = load_project(g, &a.services)?;
    check_services(&project, &a.services)?;
    if let Some(s) = &a.exit_code_from {
        check_services(&project, std::slice::from_ref(s))?;
    }
    let scale = parse_scale(&a.scale)?;
    let opts = ReconcileOptions {
        services: a.services.clone(),
        no_deps: a.no_deps,
        recreate: if a.force_recreate {
            RecreatePolicy::Force
        } else if a.no_recreate {
            RecreatePolicy::Never
        } else {
            RecreatePolicy::Diverged
        },
        remove_orphans: a.remove_orphans,
        ignore_orphans: ignore_orphans(a.remove_orphans)?,
        no_start: a.no_start,
        scale,
        image_ids: BTreeMap::new(),
    };
    let b = backend(g)?;
    let mut project = project;
    rcompose_wire::backend::netplan::pin_joined_containers(&b.containers().store, &mut project);
    let _lock = if g.dry_run {
        None
    } else {
        Some(lock_project(&g.root, &project.name)?)
    };
    let (pull, quiet) = (a.pull.as_deref(), a.quiet_pull);
    super::compose_pull::pull_for_up(g, &project, &a.services, a.no_deps, pull, quiet)?;
    let (plan, opts) = rcompose_wire::backend::timing::time("plan ready", || {
        prepare_plan(&project, &b, opts, a.build, a.no_build)
    })?;
    if g.dry_run {
        print!("{plan}");
        return Ok(ExitCode::SUCCESS);
    }
    super::doctor::warn_traffic_blockers();
    let progress = Progress::new(false);
    let exec_opts = ExecuteOptions {
        stop_timeout: a.timeout,
        dependency_timeout: a.wait_timeout.map(Duration::from_secs),
        renew_anon_volumes: a.renew_anon_volumes,
        ..Default::default()
    };
    b.set_probe_health(true);
    execute(&project, &plan, &b, &exec_opts, &|e| progress.event(e))?;
    rcompose_wire::backend::timing::mark("up: executed");
    drop(_lock);
    if a.wait {
        let containers_ready = wait_ready(&b, &project, &opts.services, a.wait_timeout);
        b.set_probe_health(false);
        return containers_ready;
    }
    b.set_probe_health(false);
    if a.detach || a.no_start {
        return Ok(ExitCode::SUCCESS);
    }
    attached(g, &b, &project, &a)
}

/// `up --watch`: `up`, then the `develop.watch` rules applied beside the attached logs, as
/// compose v2 does (Ctrl-C stops both); with `-d` the watcher alone runs in the foreground.
fn up_watch(g: &GlobalOpts, a: UpArgs) -> Result<ExitCode> {
    // Rules first: a project without any fails before anything starts.
    let (project, rules) = super::compose_watch::prepare(g, &a.services)?;
    let a = UpArgs { watch: false, ..a };
    let code = up(
        g,
        UpArgs {
            detach: true,
            ..a.clone()
        },
    )?;
    if code != ExitCode::SUCCESS {
        return Ok(code);
    }
    catch_interrupts();
    let interrupted = || INTERRUPTS.load(Ordering::SeqCst) > 0;
    if a.detach || a.no_start {
        super::compose_watch::watch(g, &project, &rules, &interrupted)?;
        return Ok(ExitCode::SUCCESS);
    }
    let b = backend(g)?;
    let watcher = |attached_done: &(dyn Fn() -> bool + Sync)| {
        let stop = || attached_done() || interrupted();
        if let Err(e) = super::compose_watch::watch(g, &project, &rules, &stop) {
            eprintln!("WARN[0000] watch stopped: {e:#}");
        }
    };
    alongside(watcher, || attached(g, &b, &project, &a))
}

/// Checks images and builds, warns about unsupported keys, then reconciles.
fn prepare_plan(
    project: &Project,
    b: &EngineBackend,
    opts: ReconcileOptions,
    build: bool,
    no_build: bool,
) -> Result<(Plan, ReconcileOptions)> {
    let warn = |w: String| eprintln!("WARN[0000] {w}");
    let policy = ops::up::BuildPolicy {
        always: build,
        never: no_build,
        flags: Default::default(),
        progress: &super::compose_build::progress_line,
    };
    Ok(ops::up::prepare(project, b, opts, &policy, &warn)?)
}

fn parse_scale(items: &[String]) -> Result<BTreeMap<String, u32>> {
    let mut out = BTreeMap::new();
    for s in items {
        let (svc, n) = s
            .split_once('=')
            .with_context(|| format!("invalid --scale {s:?}: use SERVICE=NUM"))?;
        let n: u32 = n
            .parse()
            .with_context(|| format!("invalid --scale {s:?}: NUM must be a number"))?;
        out.insert(svc.to_string(), n);
    }
    Ok(out)
}

/// `--wait`: every selected container running, and healthy when it has a healthcheck.
fn wait_ready(
    b: &EngineBackend,
    project: &Project,
    services: &[String],
    timeout: Option<u64>,
) -> Result<ExitCode> {
    let timeout = timeout.map(Duration::from_secs);
    ops::up::wait_ready(b, project, services, timeout, Duration::from_millis(100))?;
    Ok(ExitCode::SUCCESS)
}

/// Attached `up`: multiplex the logs until every container has exited, Ctrl-C, or (with
/// `--abort-on-container-exit`) the first exit.
fn attached(g: &GlobalOpts, b: &EngineBackend, project: &Project, a: &UpArgs) -> Result<ExitCode> {
    catch_interrupts();
    let style = Style {
        colour: !a.no_color && g.use_colour(),
        prefix: !a.no_log_prefix,
        timestamps: a.timestamps,
    };
    let abort = a.abort_on_container_exit || a.exit_code_from.is_some();
    let attach: Vec<String> = if a.attach.is_empty() {
        project
            .services
            .values()
            .filter(|s| s.attach != Some(false) && !a.no_attach.contains(&s.name))
            .map(|s| s.name.clone())
            .collect()
    } else {
        a.attach.clone()
    };
    let mut mux = Multiplexer::new(b, style);
    mux.report_first_exit = true;
    let mut code: Option<i32> = None;
    loop {
        let list = containers(b, &project.name, &attach, true, false)?;
        for x in mux.poll(&list, &ReadOptions::default(), false) {
            mux.print_exit(&x);
            if abort && code.is_none() {
                code = Some(match &a.exit_code_from {
                    Some(s) if *s != x.service => exit_code_of(b, project, s)?,
                    _ => x.code,
                });
            }
        }
        if INTERRUPTS.load(Ordering::SeqCst) > 0 {
            eprintln!("Gracefully stopping... (press Ctrl+C again to force)");
            stop_all(b, project, a.timeout);
            return Err(ExitStatus(130).into());
        }
        if let Some(c) = code {
            if abort {
                eprintln!("Aborting on container exit...");
                stop_all(b, project, a.timeout);
            }
            if a.exit_code_from.is_some() {
                let c = exit_code_of(b, project, a.exit_code_from.as_deref().unwrap_or_default())
                    .unwrap_or(c);
                return Ok(ExitCode::from(c.clamp(0, 255) as u8));
            }
            return Ok(ExitCode::from(c.clamp(0, 255) as u8));
        }
        if !list.is_empty() && list.iter().all(|c| !c.status.is_up()) {
            mux.poll(&list, &ReadOptions::default(), false);
            return Ok(ExitCode::SUCCESS);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The exit code of the first container of `service` once it has stopped.
fn exit_code_of(b: &EngineBackend, project: &Project, service: &str) -> Result<i32> {
    let list = containers(b, &project.name, &[service.to_string()], true, false)?;
    Ok(list
        .iter()
        .find(|c| !c.status.is_up())
        .map(|c| c.exit_code)
        .unwrap_or(0))
}

/// Stops every running container of the project in parallel; a second Ctrl-C kills them.
pub fn stop_all(b: &EngineBackend, project: &Project, timeout: Option<u32>) {
    let Ok(list) = containers(b, &project.name, &[], false, false) else {
        return;
    };
    let first = INTERRUPTS.load(Ordering::SeqCst);
    let again = || INTERRUPTS.load(Ordering::SeqCst) > first.max(1);
    ops::up::stop_all(b, &list, timeout, &again);
    for c in &list {
        super::compose_common::outcome_line("Container", &c.name, "Stopped");
    }
}

/// `rcompose create`: `up --no-start`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Build images before starting containers
    #[arg(long)]
    pub build: bool,
    /// Don't build an image, even if it's policy
    #[arg(long)]
    pub no_build: bool,
    /// Recreate containers even if their configuration and image haven't changed
    #[arg(long, conflicts_with = "no_recreate")]
    pub force_recreate: bool,
    /// If containers already exist, don't recreate them
    #[arg(long)]
    pub no_recreate: bool,
    /// Remove containers for services not defined in the Compose file
    #[arg(long)]
    pub remove_orphans: bool,
    /// Scale SERVICE to NUM instances (overrides `scale` in the Compose file)
    #[arg(long, value_name = "SERVICE=NUM")]
    pub scale: Vec<String>,
    /// Pull image before running ("always"|"missing"|"never"|"build")
    #[arg(long, value_name = "POLICY")]
    pub pull: Option<String>,
    pub services: Vec<String>,
}

pub fn create(g: &GlobalOpts, a: CreateArgs) -> Result<ExitCode> {
    up(
        g,
        UpArgs {
            detach: true,
            no_start: true,
            build: a.build,
            no_build: a.no_build,
            force_recreate: a.force_recreate,
            no_recreate: a.no_recreate,
            remove_orphans: a.remove_orphans,
            scale: a.scale,
            pull: a.pull,
            services: a.services,
            ..Default::default()
        },
    )
}

/// `rcompose scale svc=n…`: `up -d --no-recreate --scale …` for the named services.
#[derive(Debug, Args)]
pub struct ScaleArgs {
    /// Don't start linked services
    #[arg(long)]
    pub no_deps: bool,
    #[arg(required = true, value_name = "SERVICE=REPLICAS")]
    pub scale: Vec<String>,
}

pub fn scale(g: &GlobalOpts, a: ScaleArgs) -> Result<ExitCode> {
    let services = parse_scale(&a.scale)?.into_keys().collect();
    up(
        g,
        UpArgs {
            detach: true,
            no_recreate: true,
            no_deps: a.no_deps,
            scale: a.scale,
            services,
            ..Default::default()
        },
    )
}
