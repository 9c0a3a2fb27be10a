//! The container lifecycle as seen by short-lived commands: create, start (hand over to a
//! monitor), stop, kill, remove, wait, and the observed state (repaired when the monitor died).

use std::collections::BTreeMap;
use std::fs;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::model::{
    ContainerConfig, ContainerState, HealthConfig, HostConfig, MountSpec, Status, now_rfc3339,
};
use super::store::ContainerStore;
use super::{ContainerError, new_id, prepare, proc, random_name, spec, validate_name};
use crate::rootfs::Rootfs;
use crate::runtime::{Libcontainer, Runtime};

/// What the engine needs from an image (filled from the image store, or from a plain root
/// filesystem directory with `--rootfs`).
#[derive(Debug, Clone, Default)]
pub struct ImageInfo {
    pub reference: String,
    pub id: String,
    pub layer_dirs: Vec<PathBuf>,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: String,
    pub user: String,
    pub stop_signal: String,
    pub labels: BTreeMap<String, String>,
    pub volumes: Vec<String>,
    pub healthcheck: Option<HealthConfig>,
}

impl ImageInfo {
    /// What a container of `reference` needs from its image record: layers, and the config's
    /// Entrypoint, Cmd, Env, WorkingDir, User, StopSignal, Labels, Volumes and (Docker's own
    /// field) Healthcheck, with its durations from nanoseconds to milliseconds.
    pub fn from_record(reference: &str, rec: &crate::store::ImageRecord) -> Self {
        use serde_json::Value;
        let c = &rec.config_json["config"];
        let strs = |v: &Value| -> Vec<String> {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default()
        };
        let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
        let hc = &c["Healthcheck"];
        let nanos_to_ms = |v: &Value| v.as_u64().unwrap_or(0) / 1_000_000;
        Self {
            reference: reference.to_string(),
            id: rec.id.clone(),
            layer_dirs: rec.layer_dirs.clone(),
            entrypoint: strs(&c["Entrypoint"]),
            cmd: strs(&c["Cmd"]),
            env: strs(&c["Env"]),
            working_dir: s(&c["WorkingDir"]),
            user: s(&c["User"]),
            stop_signal: s(&c["StopSignal"]),
            labels: c["Labels"]
                .as_object()
                .map(|m| m.iter().map(|(k, v)| (k.clone(), s(v))).collect())
                .unwrap_or_default(),
            volumes: c["Volumes"]
                .as_object()
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default(),
            healthcheck: hc["Test"].as_array().map(|_| HealthConfig {
                test: strs(&hc["Test"]),
                interval_ms: nanos_to_ms(&hc["Interval"]),
                timeout_ms: nanos_to_ms(&hc["Timeout"]),
                start_period_ms: nanos_to_ms(&hc["StartPeriod"]),
                retries: hc["Retries"].as_u64().unwrap_or(0) as u32,
            }),
        }
    }
}

/// The user's options for `create`/`run`.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    pub name: Option<String>,
    pub cmd: Vec<String>,
    pub entrypoint: Option<Vec<String>>,
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
    pub hostname: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub tty: bool,
    pub open_stdin: bool,
    pub stop_signal: Option<String>,
    pub stop_timeout: Option<u32>,
    pub healthcheck: Option<HealthConfig>,
    pub host: HostConfig,
    /// Containers whose mounts are shared (`--volumes-from c[:ro]`).
    pub volumes_from: Vec<String>,
}

/// A container `boot` tried to start, and how that went.
pub type BootOutcome = (String, Result<(), ContainerError>);

/// Entry point for container operations under one state root.
pub struct Containers {
    pub store: ContainerStore,
    pub runtime: Libcontainer,
    /// The binary re-executed as the monitor (`rcompose`).
    pub exe: PathBuf,
}

impl Containers {
    pub fn new(root: &Path, run_root: &Path, exe: PathBuf) -> Self {
        let store = ContainerStore::new(root, run_root);
        let runtime = Libcontainer::new(store.runtime_root());
        Self {
            store,
            runtime,
            exe,
        }
    }

    /// Creates the container's directory and config; nothing is mounted or started yet.
    pub fn create(
        &self,
        image: &ImageInfo,
        opts: CreateOptions,
    ) -> Result<ContainerConfig, ContainerError> {
        if image.layer_dirs.is_empty() {
            return Err(ContainerError::Other(format!(
                "image {} has no layers to run",
                image.reference
            )));
        }
        let (entrypoint, cmd) = spec::resolve_args(
            &image.entrypoint,
            &image.cmd,
            opts.entrypoint.as_deref(),
            &opts.cmd,
        );
        let args: Vec<String> = entrypoint.iter().chain(cmd.iter()).cloned().collect();
        if args.is_empty() {
            return Err(ContainerError::Other(
                "no command specified: the image has no CMD or ENTRYPOINT; give a command after the image".into(),
            ));
        }
        let stop_signal = opts
            .stop_signal
            .clone()
            .or_else(|| (!image.stop_signal.is_empty()).then(|| image.stop_signal.clone()))
            .unwrap_or_else(|| "SIGTERM".into());
        if proc::parse_signal(&stop_signal).is_none() {
            return Err(ContainerError::InvalidOption {
                option: "--stop-signal".into(),
                value: stop_signal,
                hint: "use a signal name such as SIGTERM or a number".into(),
            });
        }
        spec::capabilities(&ContainerConfig {
            host: opts.host.clone(),
            ..empty_config()
        })?;
        // Bad log options fail the create, not the first start.
        opts.host.log_rotation()?;
        super::resources::check_modes(&opts.host, opts.hostname.as_deref())?;
        let mut env = image.env.clone();
        for e in &opts.env {
            let key = e.split('=').next().unwrap_or_default();
            env.retain(|x| x.split('=').next() != Some(key));
            env.push(e.clone());
        }
        let mut labels = image.labels.clone();
        labels.extend(opts.labels.clone());

        proc::trace_phase("create");
        let _lock = self.store.lock_all()?;
        self.store.ensure_name_index()?;
        let id = new_id()?;
        let name = match &opts.name {
            Some(n) => {
                let n = n.strip_prefix('/').unwrap_or(n);
                validate_name(n)?;
                if let Some(holder) = self.store.by_name(n)? {
                    return Err(ContainerError::NameInUse {
                        name: n.into(),
                        id: holder.id,
                    });
                }
                n.to_string()
            }
            None => {
                let base = random_name(&id);
                let mut n = base.clone();
                let mut i = 1;
                while self.store.by_name(&n)?.is_some() {
                    i += 1;
                    n = format!("{base}{i}");
                }
                n
            }
        };
        let mut host = opts.host.clone();
        host.extra.volumes_from = opts.volumes_from.clone();
        for from in &opts.volumes_from {
            let (key, ro) = match from.rsplit_once(':') {
                Some((k, "ro")) => (k, true),
                Some((k, "rw")) => (k, false),
                _ => (from.as_str(), false),
            };
            let other = self.store.resolve(key)?;
            for m in other.host.mounts.iter().filter(|m| m.kind != "tmpfs") {
                if !host.mounts.iter().any(|x| x.target == m.target) {
                    host.mounts.push(MountSpec {
                        read_only: m.read_only || ro,
                        anonymous: false,
                        ..m.clone()
                    });
                }
            }
        }
        // Image VOLUMEs without an explicit mount become anonymous volumes.
        for v in &image.volumes {
            if !host.mounts.iter().any(|m| m.target == *v) {
                host.mounts.push(MountSpec {
                    kind: "volume".into(),
                    source: String::new(),
                    target: v.clone(),
                    read_only: false,
                    anonymous: true,
                });
            }
        }
        let cfg = ContainerConfig {
            id: id.clone(),
            name,
            created: now_rfc3339(),
            image: image.reference.clone(),
            image_id: image.id.clone(),
            layer_dirs: image.layer_dirs.clone(),
            args,
            entrypoint,
            cmd,
            env,
            working_dir: opts
                .working_dir
                .clone()
                .unwrap_or_else(|| image.working_dir.clone()),
            user: opts.user.clone().unwrap_or_else(|| image.user.clone()),
            // With `--uts host` the process sees the host's name; docker still records
            // the generated one.
            hostname: opts
                .hostname
                .clone()
                .unwrap_or_else(|| id[..12].to_string()),
            labels,
            tty: opts.tty,
            open_stdin: opts.open_stdin,
            stop_signal,
            stop_timeout: opts.stop_timeout.unwrap_or(10),
            host,
            healthcheck: opts
                .healthcheck
                .clone()
                .or_else(|| image.healthcheck.clone()),
        };
        let dir = self.store.dir(&id);
        let res = (|| {
            self.store.index_name(&cfg.name, &cfg.id)?;
            super::store::create_private_dir(&dir)?;
            // Until its config is saved the directory is no container: the marker lets the
            // next removal sweep what a killed create left (with the overlay that
            // setup_volumes mounts; tests/reliability_crash.rs found them).
            // Not fsynced: it guards against a killed process, and a power loss takes the
            // overlay with it (two fsyncs here made every create wait on the disk, with the
            // container-set lock held).
            let creating = super::freeze::owner_marker();
            super::store::write_file(&dir.join(CREATING), creating.as_bytes(), false)?;
            self.setup_volumes(&cfg)
                .and_then(|cfg| self.store.save_config(&cfg).map(|()| cfg))
        })();
        match res {
            Ok(cfg) => {
                let _ = fs::remove_file(dir.join(CREATING));
                proc::trace_phase("create.config-saved");
                if !cfg.image_id.is_empty() {
                    let store = crate::store::Store::open(&self.store.root)
                        .map_err(|e| ContainerError::Other(e.to_string()))?;
                    if let Err(e) = store.confirm_image_user(&cfg.image_id) {
                        let _ = self.remove_dirs(&cfg.id);
                        self.store.unindex_name(&cfg.name, &cfg.id);
                        return Err(ContainerError::Other(e.to_string()));
                    }
                }
                proc::trace_phase("create.done");
                Ok(cfg)
            }
            Err(e) => {
                let _ = self.remove_dirs(&id);
                self.store.unindex_name(&cfg.name, &id);
                Err(e)
            }
        }
    }

    /// Names anonymous volumes, creates named ones and populates new ones from the image.
    fn setup_volumes(&self, cfg: &ContainerConfig) -> Result<ContainerConfig, ContainerError> {
        let mut cfg = cfg.clone();
        let vols = crate::volume::Volumes::new(&self.store.root);
        let needs_rootfs = cfg.host.mounts.iter().any(|m| m.kind == "volume");
        if !needs_rootfs {
            return Ok(cfg);
        }
        let rootfs = Rootfs::new(self.store.rootfs_dir(&cfg));
        rootfs.prepare(&cfg.layer_dirs)?;
        rootfs.mount(cfg.layer_dirs.len(), false)?;
        let res = (|| {
            for m in cfg.host.mounts.iter_mut().filter(|m| m.kind == "volume") {
                if m.source.is_empty() {
                    m.source = new_id()?;
                }
                let fresh = vols.get(&m.source).is_err();
                vols.create(&m.source, BTreeMap::new(), m.anonymous)
                    .map_err(|e| ContainerError::Other(e.to_string()))?;
                if fresh {
                    let inside = rootfs.merged().join(m.target.trim_start_matches('/'));
                    vols.populate(&m.source, &inside)
                        .map_err(|e| ContainerError::Other(e.to_string()))?;
                }
            }
            Ok(())
        })();
        rootfs.unmount()?;
        res.map(|()| cfg)
    }

    /// The state with liveness checked: a container recorded as running whose process is
    /// gone (its monitor was killed) is reported as exited.
    pub fn observe(&self, id: &str) -> Result<ContainerState, ContainerError> {
        let mut st = self.store.load_state(id)?;
        if st.status == Status::Running {
            self.thaw_abandoned(id);
        }
        let mut pid_alive = st.pid > 0 && proc::alive(st.pid, st.pid_start_ticks);
        let mut monitor_alive = self.monitor_alive(&st);
        if needs_repair(&st, pid_alive, monitor_alive) {
            // A monitor records the container's end before it exits, but it may have done
            // both between our read and the check: read again now that it is known gone.
            // Without this a build's RUN that exited 7 was taken as a success (the running
            // record, repaired as exited, kept its exit code 0) when the two crossed.
            st = self.store.load_state(id)?;
            pid_alive = st.pid > 0 && proc::alive(st.pid, st.pid_start_ticks);
            monitor_alive = self.monitor_alive(&st);
        }
        Ok(repair(st, pid_alive, monitor_alive))
    }
}

impl Containers {
    pub fn monitor_alive(&self, st: &ContainerState) -> bool {
        st.monitor_pid > 0 && proc::alive(st.monitor_pid, st.monitor_start_ticks)
    }

    /// Starts a created or exited container through a new monitor. `attach` is the client
    /// end handed to the monitor before the container starts (foreground `run`, `start -a`).
    pub fn start(&self, id: &str, attach: Option<OwnedFd>) -> Result<(), ContainerError> {
        let cfg = self.store.load_config(id)?;
        let _lock = self.store.lock(id)?;
        let st = self.observe(id)?;
        match st.status {
            Status::Running | Status::Restarting if self.monitor_alive(&st) || st.pid > 0 => {
                return Ok(());
            }
            Status::Paused => return Err(ContainerError::Paused(cfg.name)),
            _ => {}
        }
        // Leftovers of a container whose monitor died.
        self.runtime.delete(id)?;
        let _ = fs::remove_file(self.stopping_marker(id));
        crate::monitor::spawn(&self.exe, &self.store, id, attach)
    }

    /// After a reboot (or when monitors were lost): starts every container whose restart
    /// policy asks for it, as docker's daemon does when it starts: `always`, and
    /// `unless-stopped` unless the user stopped it. Returns (name, outcome) per container.
    pub fn boot(&self) -> Result<Vec<BootOutcome>, ContainerError> {
        let mut out = vec![];
        for c in self.store.list()? {
            let wanted = match c.host.restart {
                super::model::RestartPolicy::Always => true,
                super::model::RestartPolicy::UnlessStopped => !self.stopping_marker(&c.id).exists(),
                _ => false,
            };
            if !wanted {
                continue;
            }
            let st = self.observe(&c.id)?;
            if matches!(
                st.status,
                Status::Running | Status::Paused | Status::Restarting
            ) {
                continue;
            }
            let res = self.start(&c.id, None);
            out.push((c.name, res));
        }
        Ok(out)
    }

    fn stopping_marker(&self, id: &str) -> PathBuf {
        self.store.dir(id).join("stopping")
    }

    /// Stops with the container's stop signal, then SIGKILL after `timeout` seconds.
    pub fn stop(
        &self,
        id: &str,
        timeout: Option<u32>,
        signal: Option<&str>,
    ) -> Result<(), ContainerError> {
        let cfg = self.store.load_config(id)?;
        let st = self.observe(id)?;
        if !matches!(
            st.status,
            Status::Running | Status::Paused | Status::Restarting
        ) {
            return Ok(());
        }
        // Durable: after a power loss it is the only record that the user stopped it (an
        // `unless-stopped` container must then stay down at boot).
        super::store::write_atomic(&self.stopping_marker(id), b"")?;
        let sig = proc::parse_signal(signal.unwrap_or(&cfg.stop_signal)).unwrap_or(libc::SIGTERM);
        if st.status == Status::Paused {
            let _ = self.runtime.resume(id);
        }
        let grace = Duration::from_secs(timeout.unwrap_or(cfg.stop_timeout) as u64);
        let mut code = 128 + sig;
        if st.pid > 0 {
            proc::signal(st.pid, st.pid_start_ticks, sig);
            if !proc::wait_gone(st.pid, st.pid_start_ticks, grace) {
                proc::signal(st.pid, st.pid_start_ticks, libc::SIGKILL);
                proc::wait_gone(st.pid, st.pid_start_ticks, Duration::from_secs(10));
                code = 137;
            }
        }
        self.after_exit(id, &st, code)
    }

    /// Sends a signal (docker `kill`, default SIGKILL).
    pub fn kill(&self, id: &str, signal: &str) -> Result<(), ContainerError> {
        let cfg = self.store.load_config(id)?;
        let st = self.observe(id)?;
        if !matches!(st.status, Status::Running | Status::Paused) {
            return Err(ContainerError::NotRunning(cfg.name));
        }
        let sig = proc::parse_signal(signal).ok_or_else(|| ContainerError::InvalidOption {
            option: "--signal".into(),
            value: signal.into(),
            hint: "use a signal name such as SIGKILL or a number".into(),
        })?;
        if sig == libc::SIGKILL {
            let _ = fs::write(self.stopping_marker(id), b"");
        }
        proc::signal(st.pid, st.pid_start_ticks, sig);
        if sig == libc::SIGKILL {
            proc::wait_gone(st.pid, st.pid_start_ticks, Duration::from_secs(10));
            return self.after_exit(id, &st, 137);
        }
        Ok(())
    }

    /// After the process is gone: wait for the monitor to record the exit, or record it
    /// ourselves (and clean up) when the monitor is dead.
    fn after_exit(&self, id: &str, st: &ContainerState, code: i32) -> Result<(), ContainerError> {
        if self.monitor_alive(st) {
            proc::wait_gone(
                st.monitor_pid,
                st.monitor_start_ticks,
                Duration::from_secs(15),
            );
        }
        let now = self.store.load_state(id)?;
        if matches!(
            now.status,
            Status::Running | Status::Paused | Status::Restarting
        ) && !self.monitor_alive(&now)
        {
            self.runtime.delete(id)?;
            prepare::teardown(&self.store, id)?;
            let mut done = now;
            done.status = Status::Exited;
            done.exit_code = code;
            done.pid = 0;
            done.finished_at = now_rfc3339();
            self.store.save_state(id, &done)?;
        }
        Ok(())
    }

    /// Blocks until the container is no longer running; returns its exit code.
    pub fn wait(&self, id: &str) -> Result<i32, ContainerError> {
        loop {
            // A missing state file reads as `Created`: a container removed meanwhile (an
            // `--rm` one that already ran) would otherwise be waited for forever.
            if !self.store.dir(id).exists() {
                return Ok(0);
            }
            let st = match self.observe(id) {
                Ok(st) => st,
                // Removed meanwhile (--rm): docker reports the last code; we have none left.
                Err(ContainerError::Io { .. }) => return Ok(0),
                Err(e) => return Err(e),
            };
            match st.status {
                Status::Running | Status::Paused | Status::Restarting => {
                    if st.pid > 0 && proc::alive(st.pid, st.pid_start_ticks) {
                        proc::wait_gone(st.pid, st.pid_start_ticks, Duration::from_millis(500));
                    } else {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
                Status::Created => std::thread::sleep(Duration::from_millis(50)),
                _ => return Ok(st.exit_code),
            }
        }
    }

    pub fn pause(&self, id: &str) -> Result<(), ContainerError> {
        let cfg = self.store.load_config(id)?;
        let _lock = self.store.lock(id)?;
        let mut st = self.observe(id)?;
        if st.status != Status::Running {
            return Err(ContainerError::NotRunning(cfg.name));
        }
        self.runtime.pause(id)?;
        st.status = Status::Paused;
        self.store.save_state(id, &st)
    }

    pub fn unpause(&self, id: &str) -> Result<(), ContainerError> {
        let cfg = self.store.load_config(id)?;
        let _lock = self.store.lock(id)?;
        let mut st = self.observe(id)?;
        if st.status != Status::Paused {
            return Err(ContainerError::Other(format!(
                "container {} is not paused",
                cfg.name
            )));
        }
        self.runtime.resume(id)?;
        st.status = Status::Running;
        self.store.save_state(id, &st)
    }

    pub fn rename(&self, id: &str, new_name: &str) -> Result<(), ContainerError> {
        let new_name = new_name.strip_prefix('/').unwrap_or(new_name);
        validate_name(new_name)?;
        let _lock = self.store.lock_all()?;
        self.store.ensure_name_index()?;
        if let Some(holder) = self.store.by_name(new_name)? {
            return Err(ContainerError::NameInUse {
                name: new_name.into(),
                id: holder.id,
            });
        }
        let mut cfg = self.store.load_config(id)?;
        let old_name = std::mem::replace(&mut cfg.name, new_name.into());
        self.store.index_name(&cfg.name, &cfg.id)?;
        self.store.save_config(&cfg)?;
        self.store.unindex_name(&old_name, &cfg.id);
        Ok(())
    }

    /// Removes container directories left without a readable config by a crash between
    /// `mkdir` and the first write; returns their ids.
    pub fn remove_orphans(&self) -> Result<Vec<String>, ContainerError> {
        let _lock = self.store.lock_all()?;
        self.sweep_tombstones()?;
        let mut out = vec![];
        let Ok(rd) = fs::read_dir(self.store.containers_dir()) else {
            return Ok(out);
        };
        for ent in rd.flatten() {
            let Some(id) = ent.file_name().to_str().map(String::from) else {
                continue;
            };
            let hex = id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit());
            if hex && self.store.load_config(&id).is_err() && ent.path().is_dir() {
                let _ = prepare::teardown(&self.store, &id);
                self.remove_dirs(&id)?;
                out.push(id);
            }
        }
        Ok(out)
    }

    /// Names of containers using the volume `name`.
    pub fn volume_users(&self, name: &str) -> Result<Vec<String>, ContainerError> {
        Ok(self
            .store
            .list()?
            .into_iter()
            .filter(|c| {
                c.host
                    .mounts
                    .iter()
                    .any(|m| m.kind == "volume" && m.source == name)
            })
            .map(|c| c.name)
            .collect())
    }
}

/// Marker of a container directory whose create has not saved the config yet.
const CREATING: &str = "creating";

pub(crate) fn empty_config() -> ContainerConfig {
    ContainerConfig {
        id: String::new(),
        name: String::new(),
        created: String::new(),
        image: String::new(),
        image_id: String::new(),
        layer_dirs: vec![],
        args: vec![],
        entrypoint: vec![],
        cmd: vec![],
        env: vec![],
        working_dir: String::new(),
        user: String::new(),
        hostname: String::new(),
        labels: BTreeMap::new(),
        tty: false,
        open_stdin: false,
        stop_signal: String::new(),
        stop_timeout: 0,
        host: HostConfig::default(),
        healthcheck: None,
    }
}

mod removal;
mod repair;
use repair::needs_repair;
pub(crate) use repair::repair;

#[cfg(test)]
mod tests;
