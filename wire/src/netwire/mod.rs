//! A container's networking as decided at create time, and the calls into the networking crate
//! that apply it around every start and undo it on stop/rm. Shared by plain containers
//! (`container run/create` flags) and the compose orchestration (`backend/netplan.rs` builds
//! the plan from a service).
//!
//! The plan is kept as JSON in the label [`LABEL`] on the container, so that every later start
//! (`container start`, `compose up`, `network connect` edits) attaches the same way.

/// `return Err(NetwireError::Invalid(format!(…)))`.
macro_rules! invalid {
    ($($arg:tt)*) => {
        return Err($crate::netwire::NetwireError::Invalid(format!($($arg)*)))
    };
}
pub(crate) use invalid;

pub mod flags;
pub mod live;

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::OwnedFd;
use std::path::Path;

use rcompose_engine::container::model::Status;
use rcompose_engine::container::{ContainerConfig, ContainerError, ContainerStore, Containers};
use rcompose_engine::store::StoreError;
use rcompose_net::{AttachRequest, Attachment, HostsRequest, NetError, Networks, PortSpec};
use serde::{Deserialize, Serialize};

/// Why a container's networking could not be planned (from `run` flags here, from a service
/// in `backend/netplan.rs`), set up or changed. The texts are the ones docker gives, or say
/// what was being done.
#[derive(Debug, thiserror::Error)]
pub enum NetwireError {
    /// A request that cannot be honoured; the text says why and what to do instead.
    #[error("{0}")]
    Invalid(String),
    /// What was being done, and the error it met.
    #[error("{what}")]
    Context {
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error(transparent)]
    Net(Box<NetError>),
    #[error(transparent)]
    Container(Box<ContainerError>),
    #[error(transparent)]
    Store(Box<StoreError>),
    #[error(transparent)]
    Mode(#[from] rcompose_net::mode::ModeError),
    #[error(transparent)]
    Attachment(#[from] rcompose_net::mode::AttachmentError),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

// Boxed: the other crates' errors are large, and these are returned on every start.
impl From<NetError> for NetwireError {
    fn from(e: NetError) -> Self {
        Self::Net(Box::new(e))
    }
}

impl From<ContainerError> for NetwireError {
    fn from(e: ContainerError) -> Self {
        Self::Container(Box::new(e))
    }
}

impl From<StoreError> for NetwireError {
    fn from(e: StoreError) -> Self {
        Self::Store(Box::new(e))
    }
}

pub type Result<T, E = NetwireError> = std::result::Result<T, E>;

/// Adds what was being done to an error (or names what is missing), as a [`NetwireError`].
pub(crate) trait Ctx<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T, E: std::error::Error + Send + Sync + 'static> Ctx<T> for std::result::Result<T, E> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| NetwireError::Context {
            what: what(),
            source: Box::new(e),
        })
    }
}

impl<T> Ctx<T> for Option<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T> {
        self.ok_or_else(|| NetwireError::Invalid(what()))
    }
}

/// Label holding the container's [`NetPlan`] as JSON.
pub const LABEL: &str = "io.rcompose.network-plan";

/// Marker in the container's run dir: /etc/hosts and /etc/resolv.conf there are written by
/// us, so the engine keeps them when it prepares a (re)start instead of regenerating them.
pub const ETC_MARKER: &str = "etc-by-network";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NetPlan {
    /// In attach order; the first one carries the published ports.
    pub networks: Vec<Endpoint>,
    /// docker `-p` syntax, one entry per port.
    pub ports: Vec<String>,
    pub dns: Vec<String>,
    pub dns_search: Vec<String>,
    /// resolv.conf `options` (`--dns-option`, compose `dns_opt`).
    #[serde(default)]
    pub dns_options: Vec<String>,
    /// `(name, ip)`.
    pub extra_hosts: Vec<(String, String)>,
    /// `--link`: (container id, alias) written to /etc/hosts.
    #[serde(default)]
    pub links: Vec<(String, String)>,
    /// `--expose` / compose `expose` (`80`, `8000-8010/udp`): what links to this container
    /// announce in their variables.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exposed: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Endpoint {
    pub network: String,
    pub aliases: Vec<String>,
    pub ipv4: Option<String>,
    /// `--ip6` / compose `ipv6_address`, on a dual-stack network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<String>,
    /// `--mac-address` (lower case); the address is derived from the IP when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
}

pub fn from_labels(labels: &BTreeMap<String, String>) -> Option<NetPlan> {
    labels.get(LABEL).and_then(|s| serde_json::from_str(s).ok())
}

/// The plan's ports as specs (each `-p` entry may be a range).
pub fn port_specs(plan: &NetPlan) -> Result<Vec<PortSpec>> {
    let mut specs = vec![];
    for p in &plan.ports {
        specs.extend(
            rcompose_net::ports::parse(p)
                .map_err(|e| NetwireError::Invalid(format!("port {p}: {e}")))?,
        );
    }
    Ok(specs)
}

/// Fails when a requested host port is taken (by one of our containers or a host process);
/// call it before creating the container so a conflict creates nothing.
pub fn check_ports(nets: &Networks, plan: &NetPlan) -> Result<()> {
    let specs = port_specs(plan)?;
    if !specs.is_empty() {
        nets.check_ports(&specs)?;
    }
    Ok(())
}

/// Creates the container's network namespace and attaches it to every network of the plan,
/// then publishes the ports on the first one. Undoes the attachments on failure.
pub fn attach(
    nets: &Networks,
    store: &ContainerStore,
    cfg: &ContainerConfig,
    plan: &NetPlan,
) -> Result<Vec<Attachment>> {
    let ns = store.netns_path(&cfg.id);
    rcompose_engine::container::netns::ensure(&ns)
        .ctx(|| format!("container {}: network namespace", cfg.name))?;
    let res = (|| {
        let mut out = vec![];
        for ep in &plan.networks {
            out.push(attach_one(nets, store, cfg, ep)?);
        }
        if !plan.ports.is_empty()
            && let Some(first) = plan.networks.first()
        {
            let specs = port_specs(plan).ctx(|| format!("container {}", cfg.name))?;
            nets.publish_ports(&first.network, &cfg.id, &specs)
                .ctx(|| format!("container {}: publishing ports", cfg.name))?;
        }
        Ok(out)
    })();
    if res.is_err() {
        teardown(nets, &cfg.id);
    }
    res
}

/// Attaches the container's (existing) namespace to one network.
pub fn attach_one(
    nets: &Networks,
    store: &ContainerStore,
    cfg: &ContainerConfig,
    ep: &Endpoint,
) -> Result<Attachment> {
    let ip = ep
        .ipv4
        .as_ref()
        .map(|s| {
            s.parse::<Ipv4Addr>()
                .ctx(|| format!("ipv4_address {s:?} is not an IPv4 address"))
        })
        .transpose()?;
    let ip6 = ep
        .ipv6
        .as_ref()
        .map(|s| {
            s.parse::<std::net::Ipv6Addr>()
                .ctx(|| format!("ipv6_address {s:?} is not an IPv6 address"))
        })
        .transpose()?;
    nets.attach(
        &ep.network,
        AttachRequest {
            container_id: cfg.id.clone(),
            container_name: cfg.name.clone(),
            netns_path: store.netns_path(&cfg.id),
            aliases: ep.aliases.clone(),
            ip,
            ip6,
            mac: ep.mac.clone(),
        },
    )
    .ctx(|| {
        format!(
            "container {}: attaching to network {}",
            cfg.name, ep.network
        )
    })
}

/// Unpublishes the container's ports and detaches it from every network (stop, rm, failed
/// start). Errors are logged: the container is going away either way.
pub fn teardown(nets: &Networks, id: &str) {
    if let Err(e) = nets.unpublish(id) {
        tracing::warn!("unpublishing the ports of container {id}: {e}");
    }
    if let Err(e) = nets.detach_all(id) {
        tracing::warn!("detaching container {id} from its networks: {e}");
    }
}

/// The addresses of a container on every network, in network-name order.
pub fn addresses_of(nets: &Networks, id: &str) -> Vec<(String, Ipv4Addr)> {
    nets.list()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|n| n.endpoints.get(id).map(|e| (n.name.clone(), e.ip)))
        .collect()
}

/// What a container's /etc files need from the networks it is on.
struct EtcInputs {
    /// Its addresses, one per network, in plan order.
    ips: Vec<Ipv4Addr>,
    ips6: Vec<Ipv6Addr>,
    /// The embedded DNS server: the gateway of the first network (in plan order) with DNS.
    dns_server: Option<Ipv4Addr>,
}

/// Writes the container's /etc/resolv.conf and /etc/hosts (and the marker that tells the
/// engine to keep them). Rewrites in place when they exist: a running container sees them
/// through bind mounts of these very files.
///
/// Everything comes from the attachments just made: reading the networks again parsed every
/// endpoint on them, under the state lock, twice per start (cost that grew with the stack).
pub fn write_etc_files(
    nets: &Networks,
    store: &ContainerStore,
    cfg: &ContainerConfig,
    plan: &NetPlan,
    attached: &[Attachment],
) -> Result<()> {
    let inputs = EtcInputs {
        ips: attached.iter().map(|a| a.ip).collect(),
        ips6: attached
            .iter()
            .filter_map(|a| a.ipv6.map(|(ip, _, _)| ip))
            .collect(),
        dns_server: attached.iter().find(|a| a.dns).map(|a| a.gateway),
    };
    write_etc(nets, store, cfg, plan, &inputs)
}

/// [`write_etc_files`] for a container attached elsewhere (another process, an earlier
/// start): its IPv4 addresses given, the rest read once per network of its plan.
pub fn write_etc_files_for(
    nets: &Networks,
    store: &ContainerStore,
    cfg: &ContainerConfig,
    plan: &NetPlan,
    ips: &[Ipv4Addr],
) -> Result<()> {
    let mut inputs = EtcInputs {
        ips: ips.to_vec(),
        ips6: vec![],
        dns_server: None,
    };
    for ep in &plan.networks {
        let n = match nets.get(&ep.network) {
            Ok(n) => n,
            // Needed to know where names resolve: say which network is missing.
            Err(e) if inputs.dns_server.is_none() => return Err(e.into()),
            Err(_) => continue,
        };
        if n.dns && inputs.dns_server.is_none() {
            inputs.dns_server = Some(n.gateway);
        }
        inputs
            .ips6
            .extend(n.endpoints.get(&cfg.id).and_then(|e| e.ip6));
    }
    write_etc(nets, store, cfg, plan, &inputs)
}

fn write_etc(
    nets: &Networks,
    store: &ContainerStore,
    cfg: &ContainerConfig,
    plan: &NetPlan,
    inputs: &EtcInputs,
) -> Result<()> {
    let run_dir = store.run_dir(&cfg.id);
    private_dir(&run_dir).ctx(|| format!("creating {}", run_dir.display()))?;
    let mut dns = vec![];
    for d in &plan.dns {
        dns.push(
            d.parse::<IpAddr>()
                .ctx(|| format!("--dns {d:?} is not an IP address"))?,
        );
    }
    let resolv = nets.resolv_conf(inputs.dns_server, &dns, &plan.dns_search, &plan.dns_options);
    rewrite_in_place(&run_dir.join("resolv.conf"), resolv.as_bytes())?;
    let mut links = vec![];
    for (id, alias) in &plan.links {
        let Ok(other) = store.load_config(id) else {
            continue;
        };
        if let Some((_, ip)) = addresses_of(nets, id).first() {
            let mut names = vec![alias.clone()];
            if alias != &other.name {
                names.push(other.name.clone());
            }
            names.push(other.id[..12].to_string());
            links.push((*ip, names));
        }
    }
    let hosts = nets.hosts_file_for(&HostsRequest {
        hostname: cfg.fqdn_names(),
        ips: inputs.ips.clone(),
        ips6: inputs.ips6.clone(),
        extra_hosts: plan
            .extra_hosts
            .iter()
            .filter_map(|(n, ip)| ip.parse().ok().map(|ip| (n.clone(), ip)))
            .collect(),
        links,
    });
    rewrite_in_place(&run_dir.join("hosts"), hosts.as_bytes())?;
    rewrite_in_place(&run_dir.join(ETC_MARKER), b"")?;
    Ok(())
}

/// A container's run directory is 0700 (its bundle holds the environment); the engine makes
/// it so too, whichever of the two comes first.
fn private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

fn rewrite_in_place(path: &Path, data: &[u8]) -> Result<()> {
    // A running container may be reading the file: truncating it to write the same bytes
    // again (the rewrite after the engine's start) would show it an empty file.
    if std::fs::read(path).is_ok_and(|old| old == data) {
        return Ok(());
    }
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .ctx(|| format!("opening {}", path.display()))?;
    f.write_all(data)
        .ctx(|| format!("writing {}", path.display()))
}

/// Starts a container with its networks: attach (after clearing what a crashed run left),
/// write /etc files, start through the engine; everything undone when the start fails.
/// `attach_fd` is handed to the monitor (foreground `run`, `start -a`).
pub fn start(
    eng: &Containers,
    nets: &Networks,
    id: &str,
    attach_fd: Option<OwnedFd>,
) -> Result<()> {
    rcompose_engine::container::proc::trace_phase("netwire.start");
    let cfg = eng.store.load_config(id)?;
    let st = eng.observe(id)?;
    if matches!(
        st.status,
        Status::Running | Status::Restarting | Status::Paused
    ) {
        // Its networks are live: leave them; the engine answers (paused: an error).
        eng.start(id, attach_fd)?;
        return Ok(());
    }
    check_container_mode(eng, &cfg)?;
    let plan = from_labels(&cfg.labels).filter(|p| !p.networks.is_empty());
    let Some(plan) = plan else {
        eng.start(id, attach_fd)?;
        return Ok(());
    };
    teardown(nets, id);
    rcompose_engine::container::proc::trace_phase("netwire.cleared");
    let attached = attach(nets, &eng.store, &cfg, &plan)?;
    rcompose_engine::container::proc::trace_phase("netwire.attached");
    let res = write_etc_files(nets, &eng.store, &cfg, &plan, &attached)
        .and_then(|()| Ok(eng.start(id, attach_fd)?));
    if let Err(e) = res {
        teardown(nets, id);
        return Err(e);
    }
    // No second write after the start: the engine keeps files marked with ETC_MARKER, and a
    // short-lived `--rm` container may already be gone (its directory removed) by now.
    Ok(())
}

/// `--network container:<id>` needs the other container running (its namespace must exist);
/// the joiner gets copies of its /etc/hosts and /etc/resolv.conf.
pub fn check_container_mode(eng: &Containers, cfg: &ContainerConfig) -> Result<()> {
    let Some(other) = cfg.host.network_mode.strip_prefix("container:") else {
        return Ok(());
    };
    let o = eng.store.resolve(other).ctx(|| {
        format!(
            "container {}: --network container:{other}: no such container",
            cfg.name
        )
    })?;
    let st = eng.observe(&o.id)?;
    if st.status != Status::Running || !eng.store.netns_path(&o.id).exists() {
        invalid!(
            "cannot join network namespace of a non running container: {} (start it first)",
            o.name
        );
    }
    // As docker: the joiner resolves names like the container it joins.
    let (from, to) = (eng.store.run_dir(&o.id), eng.store.run_dir(&cfg.id));
    if from.join(ETC_MARKER).exists() {
        private_dir(&to).ctx(|| format!("creating {}", to.display()))?;
        for f in ["hosts", "resolv.conf"] {
            let data = std::fs::read(from.join(f))
                .ctx(|| format!("reading {}", from.join(f).display()))?;
            rewrite_in_place(&to.join(f), &data)?;
        }
        rewrite_in_place(&to.join(ETC_MARKER), b"")?;
    }
    Ok(())
}

/// Stop/kill/rm of a container: undo its networking once its process is gone. Containers in
/// none/host/container: mode have nothing to undo.
pub fn after_stop(nets: &Networks, cfg: &ContainerConfig) {
    if from_labels(&cfg.labels).is_some_and(|p| !p.networks.is_empty()) {
        teardown(nets, &cfg.id);
    }
}

/// After a foreground `run --rm`: undoes what the monitor could not (it was killed).
pub fn after_auto_remove(nets: &Networks, cfg: &ContainerConfig) {
    if from_labels(&cfg.labels).is_some_and(|p| !p.networks.is_empty()) {
        teardown(nets, &cfg.id);
    }
}

/// The monitor's exit hook: a container whose process ended for good (not restarting) gives
/// back its ports, addresses and DNS names, as docker does; its plan stays, so a later start
/// attaches again. Runs while the engine removes the container (`--rm`): uses only `cfg`.
/// Addresses, names and ports are free when it returns; deleting the veths is returned as
/// deferred work, which the monitor runs after reporting the exit: the kernel's RCU waits are
/// not on the path of the command that waits for it.
pub fn on_container_exit(
    root: &Path,
    run_root: &Path,
    cfg: &ContainerConfig,
) -> Option<rcompose_engine::monitor::Deferred> {
    if from_labels(&cfg.labels).is_none_or(|p| p.networks.is_empty()) {
        return None;
    }
    let nets = match Networks::open(root, run_root) {
        Ok(nets) => nets,
        Err(e) => {
            tracing::warn!("container {}: releasing its networks: {e}", cfg.id);
            return None;
        }
    };
    // The endpoints go with their published ports.
    match nets.release(&cfg.id) {
        Ok(released) if released.is_empty() => None,
        Ok(released) => Some(Box::new(move || nets.finish_release(&released))),
        Err(e) => {
            // Fall back to the synchronous detach, which also deletes the veths.
            tracing::warn!("container {}: releasing its networks: {e}", cfg.id);
            teardown(&nets, &cfg.id);
            None
        }
    }
}

/// After a reboot, `container boot` starts restart-policy containers through the engine alone;
/// this attaches such a started container to its plan's networks (endpoints left from before
/// the reboot are reclaimed with their addresses) and rewrites its /etc files. Its process
/// runs without those networks for the moment in between.
pub fn reattach(eng: &Containers, nets: &Networks, key: &str) -> Result<()> {
    let cfg = eng.store.resolve(key)?;
    let Some(plan) = from_labels(&cfg.labels).filter(|p| !p.networks.is_empty()) else {
        return Ok(());
    };
    let attached = attach(nets, &eng.store, &cfg, &plan)?;
    write_etc_files(nets, &eng.store, &cfg, &plan, &attached)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_stored_before_links_and_dns_options_still_load() {
        let old = r#"{"networks":[{"network":"p_default","aliases":["web"],"ipv4":null}],
            "ports":["8080:80/tcp"],"dns":[],"dns_search":[],"extra_hosts":[]}"#;
        let labels = BTreeMap::from([(LABEL.to_string(), old.to_string())]);
        let plan = from_labels(&labels).expect("old plan parses");
        assert_eq!(plan.networks[0].aliases, ["web"]);
        assert!(plan.links.is_empty() && plan.dns_options.is_empty());
    }

    #[test]
    fn port_specs_expand_ranges_and_name_the_bad_entry() {
        let plan = NetPlan {
            ports: vec!["127.0.0.1:8000-8001:80-81/udp".into()],
            ..Default::default()
        };
        let specs = port_specs(&plan).unwrap();
        assert_eq!(specs.len(), 2);
        assert_eq!(specs[1].container_port, 81);
        assert_eq!(specs[1].host_port, Some(8001));
        let bad = NetPlan {
            ports: vec!["80:x".into()],
            ..Default::default()
        };
        let err = port_specs(&bad).unwrap_err().to_string();
        assert!(err.contains("80:x"), "{err}");
    }
}
