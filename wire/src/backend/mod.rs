//! The compose orchestrator's [`Backend`] over the embedded engine (containers, volumes, image
//! store) and the networking crate. Compose networks are attached by this backend around the
//! engine's start: the container's namespace is made first, the networks attached into it, then
//! the engine starts the container in that namespace; `/etc/resolv.conf` and `/etc/hosts` are
//! rewritten in place afterwards so service names resolve through the embedded DNS.

pub mod build;
mod build_net;
pub mod extras;
pub mod health;
pub mod hooks;
pub mod image;
pub mod lock;
pub mod netplan;
pub mod pull;
pub mod pull_policy;
pub mod secrets;
pub mod timing;
pub mod translate;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::Ipv4Addr;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};

use rcompose_compose::execute::{Backend, BackendError};
use rcompose_compose::labels;
use rcompose_compose::labels::object_labels;
use rcompose_compose::model::{Project, Service};
use rcompose_compose::observe::{ContainerSummary, ObjectSummary, RunState};
use rcompose_engine::container::model::Status;
use rcompose_engine::container::{ContainerConfig, Containers};
use rcompose_engine::volume::Volumes;
use rcompose_net::Networks;

pub struct EngineBackend {
    root: PathBuf,
    run_root: PathBuf,
    containers: Containers,
    nets: OnceLock<Result<Networks, String>>,
    /// While set, `inspect_container` probes health itself for containers whose engine state
    /// has no health yet (see `health.rs`); `up` sets it around `execute`.
    probe_health: AtomicBool,
    prober: health::Prober,
    /// Containers this process attached to their networks at create time (id → addresses
    /// in plan order), with their /etc files already written: their start (moments later,
    /// under the project lock) need not ask the network layer again, whose lock the creates
    /// of later services keep busy.
    attached_here: Mutex<HashMap<String, Vec<Ipv4Addr>>>,
    /// Containers this process stopped whose monitor released their networks on exit.
    released: Mutex<HashSet<String>>,
}

/// The first 12 characters of a container id (for timing lines).
fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

fn err(e: impl std::fmt::Display) -> BackendError {
    BackendError::new(e)
}

/// The error and its causes as one message (`a: b: c`).
fn chain(e: impl std::error::Error) -> BackendError {
    let mut msg = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        msg.push_str(": ");
        msg.push_str(&c.to_string());
        cause = c.source();
    }
    BackendError::new(msg)
}

/// What the backend's own calls (besides the `Backend` trait) can fail with.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("locating the rcompose binary for monitors")]
    Exe(#[source] std::io::Error),
    #[error("network_mode {mode}: no such service {service:?}")]
    NoSuchService { mode: String, service: String },
    #[error("network_mode {mode}: container {name} not found")]
    NoSuchContainer {
        mode: String,
        name: String,
        #[source]
        source: Box<rcompose_engine::container::ContainerError>,
    },
    #[error(transparent)]
    Net(#[from] crate::netwire::NetwireError),
    #[error(transparent)]
    Image(#[from] image::ImageError),
    #[error(transparent)]
    Translate(#[from] translate::TranslateError),
    #[error(transparent)]
    Container(Box<rcompose_engine::container::ContainerError>),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

impl From<rcompose_engine::container::ContainerError> for WireError {
    fn from(e: rcompose_engine::container::ContainerError) -> Self {
        Self::Container(Box::new(e))
    }
}

impl EngineBackend {
    pub fn new(root: &Path, run_root: &Path) -> Result<Self, WireError> {
        let exe = std::env::current_exe().map_err(WireError::Exe)?;
        Ok(Self {
            root: root.to_path_buf(),
            run_root: run_root.to_path_buf(),
            containers: Containers::new(root, run_root, exe),
            nets: OnceLock::new(),
            probe_health: AtomicBool::new(false),
            prober: health::Prober::default(),
            attached_here: Mutex::new(HashMap::new()),
            released: Mutex::new(HashSet::new()),
        })
    }

    /// The networking layer, opened on first use (commands that never touch a network do
    /// not need it).
    /// The state root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The run root.
    pub fn run_root(&self) -> &Path {
        &self.run_root
    }

    /// The engine's containers of this state root.
    pub fn containers(&self) -> &Containers {
        &self.containers
    }

    /// While on, `inspect_container` probes health itself for containers whose engine state
    /// has no health yet; `up` turns it on around `execute` and `--wait`.
    pub fn set_probe_health(&self, on: bool) {
        self.probe_health.store(on, Ordering::SeqCst);
    }

    /// Creates the one-off container `name` of `svc` (`run`): labelled as compose does
    /// (`oneoff`, the slug), with its network plan, a TTY and stdin as asked; `auto_remove`
    /// is `--rm`. Returns its id.
    pub fn create_one_off(
        &self,
        project: &Project,
        svc: &Service,
        name: &str,
        tty: bool,
        stdin: bool,
        auto_remove: bool,
    ) -> Result<String, WireError> {
        // `network_mode: service:x` joins x's first container, as for service containers.
        let svc = &netplan::resolve_service(&self.containers.store, project, svc)?;
        let img = image::image_info(&self.root, &svc.image_name(&project.name), &svc.name)?;
        let number = 1;
        let mut opts = translate::create_options(project, svc, name, number, &self.root)?;
        opts.labels = labels::container_labels(project, svc, number, true);
        opts.labels.insert(
            labels::SLUG.into(),
            name.rsplit('-').next().unwrap_or_default().to_string(),
        );
        let plan = netplan::plan(project, svc, name)?;
        opts.labels
            .insert(netplan::LABEL.into(), serde_json::to_string(&plan)?);
        opts.tty = tty;
        opts.open_stdin = stdin;
        opts.host.auto_remove = auto_remove;
        Ok(self.containers.create(&img, opts)?.id)
    }

    pub fn nets(&self) -> Result<&Networks, BackendError> {
        self.nets
            .get_or_init(|| Networks::open(&self.root, &self.run_root).map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|e| BackendError::new(e.clone()))
    }

    pub fn summary(&self, cfg: &ContainerConfig) -> ContainerSummary {
        self.summary_with(cfg, true)
    }

    /// [`Self::summary`]; without `ports` it skips the published ports (which need the
    /// network lock), for polls that only look at the state.
    fn summary_with(&self, cfg: &ContainerConfig, ports: bool) -> ContainerSummary {
        let st = self.containers.observe(&cfg.id).unwrap_or_default();
        let status = match st.status {
            Status::Created => RunState::Created,
            Status::Running => RunState::Running,
            Status::Paused => RunState::Paused,
            Status::Restarting => RunState::Restarting,
            Status::Removing | Status::Exited => RunState::Exited,
            Status::Dead => RunState::Dead,
        };
        let has_check = cfg
            .healthcheck
            .as_ref()
            .is_some_and(|h| h.test.first().map(String::as_str) != Some("NONE"));
        let health = match &st.health {
            Some(h) => Some(h.status.clone()),
            None if has_check && status == RunState::Running => Some("starting".into()),
            None => None,
        };
        let ports = if ports && status.is_up() {
            self.nets()
                .ok()
                .and_then(|n| n.ports_of(&cfg.id).ok())
                .unwrap_or_default()
                .iter()
                .map(|p| {
                    format!(
                        "{}:{}->{}/{}",
                        p.host_ip, p.host_port, p.container_port, p.proto
                    )
                })
                .collect()
        } else {
            vec![]
        };
        ContainerSummary {
            id: cfg.id.clone(),
            name: cfg.name.clone(),
            image: cfg.image.clone(),
            image_id: cfg.image_id.clone(),
            command: cfg.args.join(" "),
            created: cfg.created.clone(),
            status,
            exit_code: st.exit_code,
            health,
            labels: cfg.labels.clone(),
            ports,
            started_at: st.started_at.clone(),
            finished_at: st.finished_at.clone(),
            restart_count: st.restart_count,
        }
    }

    /// Starts a container with its compose networks; `attach` is handed to the monitor
    /// (foreground `run`).
    pub fn start_with(&self, id: &str, attach: Option<OwnedFd>) -> Result<(), BackendError> {
        let cfg = self.containers.store.load_config(id).map_err(err)?;
        let st = self.containers.observe(id).map_err(err)?;
        if st.status.eq(&Status::Running) {
            return Ok(());
        }
        let t0 = std::time::Instant::now();
        let plan = netplan::from_labels(&cfg.labels).filter(|p| !p.networks.is_empty());
        let store = &self.containers.store;
        let live = match (&plan, self.attached_here_ips(id)) {
            (Some(_), Some(ips)) => Some(ips),
            (Some(p), None) => {
                let n = self.nets()?;
                let ips = netplan::live_ips(n, store, id, p);
                // Attached at create time by another process: its /etc files as of now.
                if let Some(ips) = &ips {
                    crate::netwire::write_etc_files_for(n, store, &cfg, p, ips).map_err(chain)?;
                }
                ips
            }
            _ => None,
        };
        match (&plan, live) {
            // Attached at create time, /etc files written (the engine keeps them): only the
            // process to start. Links name other containers' current addresses: refresh.
            (Some(p), Some(ips)) => {
                if !p.links.is_empty() {
                    let n = self.nets()?;
                    crate::netwire::write_etc_files_for(n, store, &cfg, p, &ips).map_err(chain)?;
                }
                timing::took(format_args!("start {}: etc files ready", cfg.name), t0);
                if let Err(e) = self.containers.start(id, attach) {
                    self.detach(id);
                    return Err(err(e));
                }
                timing::took(format_args!("start {}: engine started", cfg.name), t0);
            }
            (Some(_), None) => {
                let n = self.nets()?;
                crate::netwire::start(&self.containers, n, id, attach).map_err(chain)?;
            }
            _ => {
                // Joining another container: it must run, and its /etc files are copied.
                crate::netwire::check_container_mode(&self.containers, &cfg).map_err(chain)?;
                self.containers.start(id, attach).map_err(err)?
            }
        }
        timing::took(format_args!("start {}: done", cfg.name), t0);
        Ok(())
    }

    /// `service:x` → `container:<id of x's first container>`, `container:name` →
    /// `container:<id>`; other modes unchanged. The joined container must be running.
    fn resolve_network_mode(&self, project: &Project, mode: &str) -> Result<String, WireError> {
        let name = if let Some(svc) = mode.strip_prefix("service:") {
            let Some(s) = project.services.get(svc) else {
                return Err(WireError::NoSuchService {
                    mode: mode.to_string(),
                    service: svc.to_string(),
                });
            };
            rcompose_compose::labels::container_name(&project.name, s, 1)
        } else if let Some(c) = mode.strip_prefix("container:") {
            c.to_string()
        } else {
            return Ok(mode.to_string());
        };
        let cfg =
            self.containers
                .store
                .resolve(&name)
                .map_err(|source| WireError::NoSuchContainer {
                    mode: mode.to_string(),
                    name: name.clone(),
                    source: Box::new(source),
                })?;
        Ok(format!("container:{}", cfg.id))
    }

    /// The addresses of a container this process attached at create time, while its network
    /// namespace (which holds the attachment) is still there.
    fn attached_here_ips(&self, id: &str) -> Option<Vec<Ipv4Addr>> {
        let ips = self
            .attached_here
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()?;
        let ns = self.containers.store.netns_path(id);
        rcompose_engine::rootfs::is_mountpoint(&ns).then_some(ips)
    }

    pub fn detach(&self, id: &str) {
        self.attached_here
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
        if let Ok(n) = self.nets() {
            let _ = n.unpublish(id);
            if let Err(e) = n.detach_all(id) {
                tracing::warn!("detaching container {id} from its networks: {e}");
            }
        }
    }
}

impl Backend for EngineBackend {
    fn list_containers(&self) -> Result<Vec<ContainerSummary>, BackendError> {
        let list = self.containers.store.list().map_err(err)?;
        Ok(list.iter().map(|c| self.summary(c)).collect())
    }

    fn list_networks(&self) -> Result<Vec<ObjectSummary>, BackendError> {
        Ok(self
            .nets()?
            .list()
            .map_err(err)?
            .into_iter()
            .map(|n| ObjectSummary {
                name: n.name.clone(),
                labels: n.labels.clone(),
            })
            .collect())
    }

    fn list_volumes(&self) -> Result<Vec<ObjectSummary>, BackendError> {
        Ok(Volumes::new(&self.root)
            .list()
            .map_err(err)?
            .into_iter()
            .map(|v| ObjectSummary {
                name: v.name,
                labels: v.labels,
            })
            .collect())
    }

    fn network_exists(&self, name: &str) -> Result<bool, BackendError> {
        Ok(self.nets()?.get(name).is_ok())
    }

    fn volume_exists(&self, name: &str) -> Result<bool, BackendError> {
        Ok(Volumes::new(&self.root).get(name).is_ok())
    }

    fn create_network(&self, project: &Project, key: &str, name: &str) -> Result<(), BackendError> {
        let net = project.networks.get(key).cloned().unwrap_or_default();
        let req = netplan::create_request(project, key, name, &net).map_err(chain)?;
        self.nets()?.create(req).map_err(err)?;
        Ok(())
    }

    fn remove_network(&self, name: &str) -> Result<(), BackendError> {
        self.nets()?.remove(name).map_err(err)?;
        Ok(())
    }

    fn create_volume(&self, project: &Project, key: &str, name: &str) -> Result<(), BackendError> {
        let own = project
            .volumes
            .get(key)
            .map(|v| v.labels.clone())
            .unwrap_or_default();
        let labels = object_labels(project, labels::VOLUME, key, &own);
        Volumes::new(&self.root)
            .create(name, labels, false)
            .map_err(err)?;
        Ok(())
    }

    fn remove_volume(&self, name: &str) -> Result<(), BackendError> {
        let users = self.containers.volume_users(name).map_err(err)?;
        Volumes::new(&self.root).remove(name, users).map_err(err)
    }

    fn image_id(&self, reference: &str) -> Result<Option<String>, BackendError> {
        image::image_id(&self.root, reference).map_err(chain)
    }

    fn anonymous_volumes(&self, id: &str) -> Vec<(String, String)> {
        self.containers
            .store
            .load_config(id)
            .map(|c| {
                c.host
                    .mounts
                    .iter()
                    .filter(|m| m.anonymous && m.kind == "volume" && !m.source.is_empty())
                    .map(|m| (m.target.clone(), m.source.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn create_container(
        &self,
        project: &Project,
        service: &Service,
        name: &str,
        number: u32,
    ) -> Result<String, BackendError> {
        self.create_container_inheriting(project, service, name, number, &[])
    }

    fn create_container_inheriting(
        &self,
        project: &Project,
        service: &Service,
        name: &str,
        number: u32,
        inherit: &[(String, String)],
    ) -> Result<String, BackendError> {
        // `network_mode: service:x` → the id of x's first container, hashed into the labels.
        let resolved =
            netplan::resolve_service(&self.containers.store, project, service).map_err(chain)?;
        let service = &resolved;
        let t0 = std::time::Instant::now();
        let img = image::image_info(
            &self.root,
            &service.image_name(&project.name),
            &service.name,
        )
        .map_err(chain)?;
        timing::took(format_args!("create {name}: image info"), t0);
        let mut opts =
            translate::create_options(project, service, name, number, &self.root).map_err(chain)?;
        opts.host.network_mode = self
            .resolve_network_mode(project, &opts.host.network_mode)
            .map_err(chain)?;
        for (target, volume) in inherit {
            let spec = rcompose_engine::container::MountSpec {
                kind: "volume".into(),
                source: volume.clone(),
                target: target.clone(),
                read_only: false,
                anonymous: true,
            };
            match opts.host.mounts.iter_mut().find(|m| &m.target == target) {
                Some(m) if m.anonymous => *m = spec,
                Some(_) => {}
                None => opts.host.mounts.push(spec),
            }
        }
        let mut plan = netplan::plan(project, service, name).map_err(chain)?;
        // external_links: containers outside the project, by name, known here under the
        // alias (as a link: a hosts entry with its address on a shared network).
        for l in &service.external_links {
            let (target, alias) = l.split_once(':').unwrap_or((l, l));
            let other = self.containers.store.resolve(target).map_err(|e| {
                err(format!(
                    "service {:?}: external_links: {e}; start that container first",
                    service.name
                ))
            })?;
            plan.links.push((other.id, alias.to_string()));
        }
        opts.labels.insert(
            netplan::LABEL.into(),
            serde_json::to_string(&plan).map_err(err)?,
        );
        timing::took(format_args!("create {name}: options"), t0);
        let cfg = self.containers.create(&img, opts).map_err(err)?;
        timing::took(format_args!("create {name}: engine created"), t0);
        // Networks are plumbed at create time (compose creates every container before
        // starting any), so starts along a depends_on chain only start processes.
        if !plan.networks.is_empty() {
            // The /etc files too (the engine keeps them), so the start only starts.
            let store = &self.containers.store;
            let attached = self.nets().and_then(|n| {
                let a = netplan::attach(n, store, &cfg, &plan).map_err(chain)?;
                crate::netwire::write_etc_files(n, store, &cfg, &plan, &a)
                    .map_err(chain)
                    .inspect_err(|_| crate::netwire::teardown(n, &cfg.id))?;
                Ok(a)
            });
            match attached {
                Ok(a) => {
                    let ips = a.iter().map(|a| a.ip).collect();
                    self.attached_here
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(cfg.id.clone(), ips);
                }
                Err(e) => {
                    let _ = self.containers.remove(&cfg.id, true, true);
                    return Err(e);
                }
            }
            timing::took(format_args!("create {name}: networks attached"), t0);
        }
        Ok(cfg.id)
    }

    fn start_container(&self, id: &str) -> Result<(), BackendError> {
        self.start_with(id, None)?;
        let cfg = self.containers.store.load_config(id).map_err(err)?;
        hooks::run(
            &self.containers,
            id,
            "post_start",
            &cfg.host.extra.post_start,
        )
        .map_err(err)
    }

    fn stop_container(&self, id: &str, timeout: Option<u32>) -> Result<(), BackendError> {
        let t0 = std::time::Instant::now();
        // pre_stop runs while the container still runs; its failure does not keep the
        // container from stopping (the stop was asked for), it is reported after.
        let hook = match self.containers.store.load_config(id) {
            Ok(cfg) if !cfg.host.extra.pre_stop.is_empty() => {
                let running = self
                    .containers
                    .observe(id)
                    .is_ok_and(|st| st.status == Status::Running);
                if running {
                    hooks::run(&self.containers, id, "pre_stop", &cfg.host.extra.pre_stop)
                } else {
                    Ok(())
                }
            }
            _ => Ok(()),
        };
        let before = self.containers.observe(id).ok();
        // Only a monitor alive before the stop runs the exit hook: one that died earlier
        // (OOM, kill -9) left the endpoints in place, and the stop records the exit itself.
        let monitor_was_alive = before.as_ref().is_some_and(|st| {
            matches!(
                st.status,
                Status::Running | Status::Paused | Status::Restarting
            ) && st.monitor_pid > 0
                && self.containers.monitor_alive(st)
        });
        self.containers.stop(id, timeout, None).map_err(err)?;
        timing::took(format_args!("stop {}: engine stopped", short(id)), t0);
        // A monitor that was alive and is gone now ran its exit hook, which released the
        // container's endpoints and ports: detaching again would only queue on the network
        // lock behind the other containers' hooks (a `down` stops them all at once).
        let hook_ran =
            monitor_was_alive && before.is_some_and(|st| !self.containers.monitor_alive(&st));
        if hook_ran {
            self.attached_here
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(id);
            self.released
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(id.to_string());
        } else {
            self.detach(id);
        }
        timing::took(format_args!("stop {}: detached", short(id)), t0);
        hook.map_err(err)
    }

    fn remove_container(&self, id: &str, volumes: bool) -> Result<(), BackendError> {
        let t0 = std::time::Instant::now();
        self.containers.remove(id, true, volumes).map_err(err)?;
        timing::took(format_args!("remove {}: engine removed", short(id)), t0);
        let released = self
            .released
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
        if !released {
            self.detach(id);
        }
        timing::took(format_args!("remove {}: detached", short(id)), t0);
        Ok(())
    }

    fn inspect_container(&self, id: &str) -> Result<ContainerSummary, BackendError> {
        self.inspect_with(id, true)
    }

    fn poll_container(&self, id: &str) -> Result<ContainerSummary, BackendError> {
        self.inspect_with(id, false)
    }

    fn log_tail(&self, id: &str, lines: usize) -> Vec<String> {
        let opts = rcompose_engine::logs::ReadOptions {
            tail: Some(lines),
            ..Default::default()
        };
        rcompose_engine::logs::read(&self.containers.store.log_path(id), &opts)
            .map(|(entries, _)| entries.into_iter().map(|e| e.log).collect())
            .unwrap_or_default()
    }

    fn health_log(&self, id: &str) -> Vec<String> {
        let probed = self.prober.outputs(id);
        if !probed.is_empty() {
            return probed;
        }
        self.containers
            .observe(id)
            .ok()
            .and_then(|s| s.health)
            .map(|h| h.log.into_iter().map(|l| l.output).collect())
            .unwrap_or_default()
    }
    // The engine's error chain in full, as the CLI printed it when it called the engine.
    fn kill_container(&self, id: &str, signal: &str) -> Result<(), BackendError> {
        self.containers.kill(id, signal).map_err(chain)
    }
    fn pause_container(&self, id: &str) -> Result<(), BackendError> {
        self.containers.pause(id).map_err(chain)
    }
    fn unpause_container(&self, id: &str) -> Result<(), BackendError> {
        self.containers.unpause(id).map_err(chain)
    }
    fn unsupported_keys(&self, service: &Service) -> Vec<&'static str> {
        translate::unsupported_keys(service)
    }
    fn build_image(
        &self,
        project: &Project,
        service: &Service,
        flags: &rcompose_compose::ops::build::BuildFlags,
        progress: &(dyn Fn(&str) + Sync),
    ) -> Result<String, BackendError> {
        build::build_service(&self.containers, project, service, flags, progress)
    }
}

impl EngineBackend {
    /// The container's summary, probing health itself while `probe_health` is set and the
    /// engine has none yet; `ports` as in [`Self::summary_with`].
    fn inspect_with(&self, id: &str, ports: bool) -> Result<ContainerSummary, BackendError> {
        let cfg = self.containers.store.load_config(id).map_err(err)?;
        let mut summary = self.summary_with(&cfg, ports);
        let engine_has_health = self
            .containers
            .observe(id)
            .map(|s| s.health.is_some())
            .unwrap_or(false);
        if self.probe_health.load(Ordering::SeqCst)
            && summary.health.as_deref() == Some("starting")
            && !engine_has_health
            && let Some(check) = &cfg.healthcheck
        {
            summary.health = Some(self.prober.status(&health::ProbeTarget {
                exe: &self.containers.exe,
                root: &self.root,
                run_root: &self.run_root,
                id,
                check,
            }));
        }
        Ok(summary)
    }
}

/// Every project that has containers: name → (running count, total, config files).
pub fn projects(
    b: &EngineBackend,
) -> Result<BTreeMap<String, (usize, usize, String)>, BackendError> {
    let mut out: BTreeMap<String, (usize, usize, String)> = BTreeMap::new();
    for c in b.list_containers()? {
        let Some(p) = c.labels.get(labels::PROJECT) else {
            continue;
        };
        let e = out.entry(p.clone()).or_default();
        e.1 += 1;
        if c.status == RunState::Running {
            e.0 += 1;
        }
        if let Some(f) = c.labels.get(labels::CONFIG_FILES) {
            e.2 = f.clone();
        }
    }
    Ok(out)
}
