//! `container run/create/start/stop/restart/kill/rm/exec/wait/pause/unpause/rename/prune`.

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use rcompose_engine::container::exec::{ExecOptions, ExecStdio, wait_exec};
use rcompose_engine::container::model::{HealthConfig, RestartPolicy, Status};
use rcompose_engine::container::{Containers, CreateOptions, HostConfig, ImageInfo};

use super::GlobalOpts;
use super::container::{
    ExecArgs, KillArgs, NamesArgs, PruneArgs, RenameArgs, RmArgs, RunArgs, StartArgs, StopArgs,
    engine,
};
use super::container_attach::{AttachMode, attach_stream, proxy_pty};
use rcompose_engine::units::{parse_duration_ms, parse_size};
use rcompose_wire::docker::{
    Syntax, env_entry, log_driver, log_opts, namespace_mode, parse_mount, parse_ulimit,
    parse_volume,
};
use rcompose_wire::netwire;

use super::container_run_flags::{check_cidfile, write_cidfile};
use rcompose_engine::container::resources;

/// `run` (start = true) and `create`.
pub fn run(g: &GlobalOpts, a: RunArgs, start: bool) -> Result<ExitCode> {
    match run_inner(g, a, start) {
        Ok(code) => Ok(code),
        Err(e) => {
            // docker: 125 when the engine fails, 126 when the command cannot be invoked,
            // 127 when it is not found.
            let text = format!("{e:#}");
            let code = if text.contains("exec process failed") || text.contains("failed to execute")
            {
                if text.contains("not found") || text.contains("No such file") {
                    127
                } else {
                    126
                }
            } else {
                125
            };
            super::render_error(&e);
            Ok(ExitCode::from(code))
        }
    }
}

fn run_inner(g: &GlobalOpts, a: RunArgs, start: bool) -> Result<ExitCode> {
    // The kernel's wait for the first cgroup move of a start (5-20 ms) then overlaps the
    // work below instead of following the monitor's spawn.
    let warm = start.then(rcompose_engine::monitor::warm_cgroups);
    a.extra.refuse_unsupported()?;
    a.extra.check_platform()?;
    if a.detach && !a.extra.attach.is_empty() {
        bail!("conflicting options: -a and -d (a detached container has nothing attached)");
    }
    let (att_in, att_out, att_err) = a.extra.streams(a.interactive)?;
    let detach_keys = match &a.extra.detach_keys {
        Some(k) => super::container_attach::parse_detach_keys(k)?,
        None => vec![0x10, 0x11],
    };
    check_cidfile(&a.extra.cidfile)?;
    let eng = engine(g)?;
    let image = image_info(g, &a)?;
    let detach = a.detach || !start;
    let tty = a.tty;
    let interactive = a.interactive;
    let mut opts = create_options(&eng, &a)?;
    let nets = rcompose_net::Networks::open(&g.root, &g.run_root)?;
    super::container_net::apply(g, &eng, &nets, &a, &mut opts)?;
    // docker records the streams a foreground run (or a create without -d) would attach.
    if !a.detach {
        let x = &mut opts.host.extra;
        (x.attach_stdin, x.attach_stdout, x.attach_stderr) =
            (interactive && att_in, att_out, att_err);
    }
    for w in resources::discard_unsupported(&mut opts.host, resources::CgroupVersion::host()) {
        eprintln!("WARNING: {w}");
    }
    let cfg = eng.create(&image, opts)?;
    if let Err(e) = write_cidfile(&a.extra.cidfile, &cfg.id) {
        let _ = eng.remove(&cfg.id, true, true);
        return Err(e);
    }
    if !start {
        println!("{}", cfg.id);
        return Ok(ExitCode::SUCCESS);
    }
    if detach {
        if let Err(e) = netwire::start(&eng, &nets, &cfg.id, None) {
            let _ = eng.remove(&cfg.id, true, true);
            return Err(e.into());
        }
        drop(warm);
        println!("{}", cfg.id);
        return Ok(ExitCode::SUCCESS);
    }
    let (ours, theirs) = UnixStream::pair().context("creating the attach socket pair")?;
    if let Err(e) = netwire::start(&eng, &nets, &cfg.id, Some(OwnedFd::from(theirs))) {
        let _ = eng.remove(&cfg.id, true, true);
        return Err(e.into());
    }
    drop(warm);
    let mode = AttachMode {
        stdin: interactive && att_in,
        drop_stdout: !att_out,
        drop_stderr: !att_err,
        tty,
        detach_keys,
        sig_proxy: a.extra.sig_proxy.unwrap_or(true) && !tty,
    };
    let res = finish_attach(&eng, &cfg.id, ours, &mode);
    if cfg.host.auto_remove {
        // The monitor removed the container and released its networks (a killed monitor
        // could not: then it is done here).
        netwire::after_auto_remove(&nets, &cfg);
    }
    res
}

/// Runs the attach client and turns the outcome into our exit code.
fn finish_attach(
    eng: &Containers,
    id: &str,
    stream: UnixStream,
    mode: &AttachMode,
) -> Result<ExitCode> {
    let st = eng.store.load_state(id).unwrap_or_default();
    match attach_stream(stream, mode, st.pid)? {
        Some(code) => Ok(ExitCode::from(code.clamp(0, 255) as u8)),
        None => Ok(ExitCode::SUCCESS),
    }
}

fn image_info(g: &GlobalOpts, a: &RunArgs) -> Result<ImageInfo> {
    if a.rootfs {
        let dir = std::fs::canonicalize(&a.image)
            .with_context(|| format!("--rootfs {}: no such directory", a.image))?;
        return Ok(ImageInfo {
            reference: dir.display().to_string(),
            layer_dirs: vec![dir],
            ..Default::default()
        });
    }
    let store = rcompose_engine::store::Store::open(&g.root)?;
    if a.pull == "always" {
        super::image::remote::pull_for_run(&store, &a.image, false)?;
    }
    let rec = match store.resolve(&a.image) {
        Ok(rec) => rec,
        Err(e) if a.pull == "never" => {
            return Err(anyhow::Error::new(e).context(format!(
                "Unable to find image '{}' locally, and --pull never forbids pulling it; load or import it, or pull it (`rcompose image pull {}`)",
                a.image, a.image
            )));
        }
        Err(_) => {
            super::image::remote::pull_for_run(&store, &a.image, true)?;
            store.resolve(&a.image)?
        }
    };
    Ok(ImageInfo::from_record(&a.image, &rec))
}

fn create_options(eng: &Containers, a: &RunArgs) -> Result<CreateOptions> {
    let mut env = vec![];
    for f in &a.env_file {
        let text = std::fs::read_to_string(f)
            .with_context(|| format!("reading --env-file {}", f.display()))?;
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            env.push(env_entry(line));
        }
    }
    env.extend(a.env.iter().map(|e| env_entry(e)));
    let mut labels = a.extra.file_labels()?;
    for l in &a.labels {
        let (k, v) = l.split_once('=').unwrap_or((l, ""));
        labels.insert(k.to_string(), v.to_string());
    }
    let size = |flag: &str, v: &Option<String>| -> Result<i64> {
        match v {
            None => Ok(0),
            Some(s) => parse_size(s).map(|n| n as i64).ok_or_else(|| {
                anyhow!("invalid value \"{s}\" for {flag}: use a size such as 64m or 1g")
            }),
        }
    };
    let (extra, no_new_privileges) = a.extra.extras(&a.security_opt)?;
    let mut mounts = vec![];
    for v in &a.volumes {
        mounts.push(parse_volume(v)?);
    }
    for m in &a.mounts {
        mounts.push(parse_mount(m)?);
    }
    let mut ulimits = vec![];
    for u in &a.ulimit {
        ulimits.push(parse_ulimit(u)?);
    }
    let healthcheck = if a.no_healthcheck {
        Some(HealthConfig {
            test: vec!["NONE".into()],
            interval_ms: 0,
            timeout_ms: 0,
            start_period_ms: 0,
            retries: 0,
        })
    } else {
        a.health_cmd.as_ref().map(|cmd| HealthConfig {
            test: vec!["CMD-SHELL".into(), cmd.clone()],
            interval_ms: a
                .health_interval
                .as_deref()
                .and_then(parse_duration_ms)
                .unwrap_or(30_000),
            timeout_ms: a
                .health_timeout
                .as_deref()
                .and_then(parse_duration_ms)
                .unwrap_or(30_000),
            start_period_ms: a
                .health_start_period
                .as_deref()
                .and_then(parse_duration_ms)
                .unwrap_or(0),
            retries: a.health_retries.unwrap_or(3),
        })
    };
    if a.init && !Path::new(rcompose_engine::container::spec::HOST_INIT).exists() {
        bail!(
            "--init needs {} on the host (Debian package tini)",
            rcompose_engine::container::spec::HOST_INIT
        );
    }
    Ok(CreateOptions {
        name: a.name.clone(),
        cmd: a.command.clone(),
        entrypoint: a.entrypoint.as_ref().map(|e| {
            if e.is_empty() {
                vec![]
            } else {
                vec![e.clone()]
            }
        }),
        env,
        working_dir: a.workdir.clone(),
        user: a.user.clone(),
        hostname: a.hostname.clone(),
        labels,
        tty: a.tty,
        open_stdin: a.interactive,
        stop_signal: a.stop_signal.clone(),
        stop_timeout: a.stop_timeout,
        healthcheck,
        volumes_from: a.volumes_from.clone(),
        host: HostConfig {
            auto_remove: a.rm,
            restart: RestartPolicy::parse(&a.restart)?,
            // Decided by `container_net::apply` from the --network values.
            network_mode: "bridge".into(),
            cap_add: a.cap_add.clone(),
            cap_drop: a.cap_drop.clone(),
            privileged: a.privileged,
            read_only: a.read_only,
            no_new_privileges,
            memory: size("--memory", &a.memory)?,
            nano_cpus: a.cpus.map(|c| (c * 1e9) as i64).unwrap_or(0),
            pids_limit: a.pids_limit.filter(|p| *p > 0).unwrap_or(0),
            shm_size: size("--shm-size", &a.shm_size)?,
            ulimits,
            init: a.init,
            tmpfs: a.tmpfs.clone(),
            mounts,
            log_driver: log_driver(a.log_driver.as_deref())?,
            pid_mode: namespace_mode(&eng.store, Syntax::Flag("--pid"), a.pid.as_deref())?,
            ipc_mode: namespace_mode(&eng.store, Syntax::Flag("--ipc"), a.ipc.as_deref())?,
            log_opts: log_opts(a.log_driver.as_deref(), &a.log_opt)?,
            extra,
        },
    })
}

pub fn start(g: &GlobalOpts, a: StartArgs) -> Result<ExitCode> {
    let eng = engine(g)?;
    if a.attach || a.interactive {
        let [key] = a.containers.as_slice() else {
            bail!("you cannot start and attach multiple containers at once");
        };
        let cfg = eng.store.resolve(key)?;
        let (ours, theirs) = UnixStream::pair()?;
        let nets = rcompose_net::Networks::open(&g.root, &g.run_root)?;
        netwire::start(&eng, &nets, &cfg.id, Some(OwnedFd::from(theirs)))?;
        let mode = AttachMode {
            stdin: a.interactive && cfg.open_stdin,
            tty: cfg.tty,
            detach_keys: vec![0x10, 0x11],
            sig_proxy: !cfg.tty,
            ..Default::default()
        };
        return finish_attach(&eng, &cfg.id, ours, &mode);
    }
    let nets = rcompose_net::Networks::open(&g.root, &g.run_root)?;
    for_each(&a.containers, |key| {
        let cfg = eng.store.resolve(key)?;
        Ok(netwire::start(&eng, &nets, &cfg.id, None)?)
    })
}

/// Applies `f` to every name, printing each name on success (docker's output) and every
/// error on stderr; exits 1 if any failed.
fn for_each(keys: &[String], mut f: impl FnMut(&str) -> Result<()>) -> Result<ExitCode> {
    let mut failed = false;
    for k in keys {
        match f(k) {
            Ok(()) => println!("{k}"),
            Err(e) => {
                super::render_error(&e);
                failed = true;
            }
        }
    }
    if failed {
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

pub fn stop(g: &GlobalOpts, a: StopArgs, restart: bool) -> Result<ExitCode> {
    let eng = engine(g)?;
    let nets = rcompose_net::Networks::open(&g.root, &g.run_root)?;
    for_each(&a.containers, |key| {
        let cfg = eng.store.resolve(key)?;
        eng.stop(&cfg.id, a.timeout, a.signal.as_deref())?;
        netwire::after_stop(&nets, &cfg);
        if restart {
            netwire::start(&eng, &nets, &cfg.id, None)?;
        }
        Ok(())
    })
}

pub fn kill(g: &GlobalOpts, a: KillArgs) -> Result<ExitCode> {
    let eng = engine(g)?;
    let nets = rcompose_net::Networks::open(&g.root, &g.run_root)?;
    for_each(&a.containers, |key| {
        let cfg = eng.store.resolve(key)?;
        eng.kill(&cfg.id, &a.signal)?;
        if matches!(a.signal.as_str(), "KILL" | "SIGKILL" | "9") {
            netwire::after_stop(&nets, &cfg);
        }
        Ok(())
    })
}

pub fn rm(g: &GlobalOpts, a: RmArgs) -> Result<ExitCode> {
    let eng = engine(g)?;
    let nets = rcompose_net::Networks::open(&g.root, &g.run_root)?;
    for_each(&a.containers, |key| {
        let cfg = eng.store.resolve(key)?;
        eng.remove(&cfg.id, a.force, a.volumes)?;
        netwire::after_stop(&nets, &cfg);
        Ok(())
    })
}

pub fn wait(g: &GlobalOpts, a: NamesArgs) -> Result<ExitCode> {
    let eng = engine(g)?;
    let mut failed = false;
    for key in &a.containers {
        match eng
            .store
            .resolve(key)
            .map_err(anyhow::Error::from)
            .and_then(|c| Ok(eng.wait(&c.id)?))
        {
            Ok(code) => println!("{code}"),
            Err(e) => {
                super::render_error(&e);
                failed = true;
            }
        }
    }
    if failed {
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

pub fn pause(g: &GlobalOpts, a: NamesArgs, pause: bool) -> Result<ExitCode> {
    let eng = engine(g)?;
    for_each(&a.containers, |key| {
        let cfg = eng.store.resolve(key)?;
        if pause {
            eng.pause(&cfg.id)?;
        } else {
            eng.unpause(&cfg.id)?;
        }
        Ok(())
    })
}

pub fn rename(g: &GlobalOpts, a: RenameArgs) -> Result<ExitCode> {
    let eng = engine(g)?;
    let cfg = eng.store.resolve(&a.container)?;
    eng.rename(&cfg.id, &a.new_name)?;
    // Live endpoints answer to the new name in DNS.
    let nets = rcompose_net::Networks::open(&g.root, &g.run_root)?;
    let new_name = a.new_name.strip_prefix('/').unwrap_or(&a.new_name);
    nets.rename_endpoint(&cfg.id, new_name)?;
    Ok(ExitCode::SUCCESS)
}

pub fn prune(g: &GlobalOpts, _a: PruneArgs) -> Result<ExitCode> {
    let eng = engine(g)?;
    // Endpoints a dead monitor could not release go with their containers.
    let nets = rcompose_net::Networks::open(&g.root, &g.run_root).ok();
    println!("Deleted Containers:");
    for id in eng.remove_orphans()? {
        println!("{id}");
    }
    for c in eng.store.list()? {
        let st = eng.observe(&c.id)?;
        if matches!(st.status, Status::Exited | Status::Created | Status::Dead) {
            eng.remove(&c.id, false, false)?;
            if let Some(nets) = &nets {
                netwire::after_stop(nets, &c);
            }
            println!("{}", c.id);
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn boot(g: &GlobalOpts) -> Result<ExitCode> {
    let eng = engine(g)?;
    let mut failed = false;
    let nets = rcompose_net::Networks::open(&g.root, &g.run_root)?;
    for (name, res) in eng.boot()? {
        let res = res
            .map_err(anyhow::Error::from)
            .and_then(|()| Ok(netwire::reattach(&eng, &nets, &name)?));
        match res {
            Ok(()) => println!("{name}"),
            Err(e) => {
                super::render_error(&e.context(format!("starting {name}")));
                failed = true;
            }
        }
    }
    if failed {
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

pub fn exec(g: &GlobalOpts, a: ExecArgs) -> Result<ExitCode> {
    let eng = engine(g)?;
    let opts = ExecOptions {
        cmd: a.command.clone(),
        env: a.env.iter().map(|e| env_entry(e)).collect(),
        user: a.user.clone(),
        working_dir: a.workdir.clone(),
        tty: a.tty && !a.detach,
    };
    let dup = |fd: std::os::fd::BorrowedFd<'_>| -> Result<OwnedFd> { Ok(fd.try_clone_to_owned()?) };
    let stdio = if a.detach {
        None
    } else if !a.tty {
        Some(ExecStdio {
            stdin: if a.interactive {
                Some(dup(std::io::stdin().as_fd())?)
            } else {
                None
            },
            stdout: dup(std::io::stdout().as_fd())?,
            stderr: dup(std::io::stderr().as_fd())?,
        })
    } else {
        None
    };
    let stdio = match (stdio, a.interactive, a.detach, a.tty) {
        // Without -i the process gets /dev/null as stdin.
        (Some(mut s), false, _, _) => {
            s.stdin = Some(OwnedFd::from(std::fs::File::open("/dev/null")?));
            Some(s)
        }
        (s, _, _, _) => s,
    };
    let p = eng.exec(&a.container, &opts, stdio)?;
    if a.detach {
        return Ok(ExitCode::SUCCESS);
    }
    let code = match p.master {
        Some(master) => proxy_pty(master, p.pid, a.interactive)?,
        None => wait_exec(p.pid),
    };
    Ok(ExitCode::from(code.clamp(0, 255) as u8))
}
