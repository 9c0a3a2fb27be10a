//! `Networks`: the high-level API the engine and the compose orchestration call.
//!
//! Every mutation runs under the state lock and follows one pattern: validate everything,
//! make the kernel change (bridge, veth), persist, then bring the derived state in line (the
//! firewall is rebuilt from all networks, the DNS server is woken). A failure undoes the steps
//! already done, so no half-created network or endpoint is left behind.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::{Ipv4Net, Ipv6Net};
use serde_json::Value;

use crate::bridge::{self, BridgeError};
use crate::dns::control::{DnsControl, DnsError, bump_generation};
use crate::files::{self, HostsRequest};
use crate::firewall::iptables::{HostChains, chain_prefix};
use crate::firewall::nftables::Nftables;
use crate::firewall::{Desired, Firewall, FirewallError, FwNetwork, FwPort, HostFirewall};
use crate::ipam::{self, IpamError, Taken};
use crate::network::{
    DEFAULT_BRIDGE_IFNAME, DEFAULT_NETWORK, Network, PREDEFINED, inspect_predefined, now_rfc3339,
    random_id,
};
use crate::ports::{PortBinding, PortError};
use crate::proxy::ProxySpec;
use crate::store::{Lock, Store, StoreError};

mod attach;
mod publish;
mod release;

pub use release::{Released, collect_orphan_default_bridges, orphan_default_bridges};

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Ipam(#[from] IpamError),
    #[error(transparent)]
    Ipam6(#[from] crate::ipam6::Ipam6Error),
    #[error(
        "an IPv6 subnet or gateway was given for network {0} without --ipv6 (compose: enable_ipv6: true)"
    )]
    Ipv6NotRequested(String),
    #[error(transparent)]
    Bridge(#[from] BridgeError),
    #[error(transparent)]
    Firewall(#[from] FirewallError),
    #[error(transparent)]
    Dns(#[from] DnsError),
    #[error(transparent)]
    Port(#[from] PortError),
    #[error(transparent)]
    Proxy(#[from] crate::proxy::ProxyError),
    #[error(
        "cannot publish UDP on {0}: only TCP is proxied there (IPv6 cannot DNAT from [::1] or to a container without IPv6); publish on 127.0.0.1, or put the container on an IPv6 network"
    )]
    UdpNeedsProxy(std::net::SocketAddr),
    #[error("network {0} not found")]
    NotFound(String),
    #[error("network with name {0} already exists")]
    Exists(String),
    #[error("network {name} is ambiguous: the id prefix matches {count} networks")]
    Ambiguous { name: String, count: usize },
    #[error(
        "error while removing network: network {network} has active endpoints ({containers}); stop or disconnect them first"
    )]
    InUse { network: String, containers: String },
    #[error("{0} is a pre-defined network and cannot be {1}")]
    Predefined(String, &'static str),
    #[error("unsupported driver {0:?}: only \"bridge\" can be created")]
    Driver(String),
    #[error("invalid bridge name {0:?}: 1-15 characters, letters, digits, '-', '_', '.'")]
    BridgeName(String),
    #[error("bridge name {0} is already used by network {1}")]
    BridgeTaken(String, String),
    #[error(
        "bridge name {0} is an interface that already exists on this host and was not made by this rcompose root; \
         choose another com.docker.network.bridge.name (rcompose would delete the interface with the network)"
    )]
    BridgeForeign(String),
    #[error("endpoint with name {container} already exists in network {network}")]
    AlreadyAttached { container: String, network: String },
    #[error("MAC address {mac} is already in use on network {network} (by {holder})")]
    MacInUse {
        mac: String,
        network: String,
        holder: String,
    },
    #[error("container {container} is not connected to network {network}")]
    NotAttached { container: String, network: String },
    #[error("invalid MAC address {0:?}")]
    BadMac(String),
}

/// `network create` parameters (docker's flags).
#[derive(Debug, Clone, Default)]
pub struct CreateRequest {
    pub name: String,
    /// Only "bridge" (the default when None).
    pub driver: Option<String>,
    pub subnet: Option<Ipv4Net>,
    pub gateway: Option<Ipv4Addr>,
    pub ip_range: Option<Ipv4Net>,
    /// Dual stack (`--ipv6`): an IPv6 subnet too, `subnet6` or a unique local /64.
    pub ipv6: bool,
    pub subnet6: Option<Ipv6Net>,
    pub gateway6: Option<Ipv6Addr>,
    pub internal: bool,
    pub attachable: bool,
    pub labels: BTreeMap<String, String>,
    /// `-o key=value`; `com.docker.network.bridge.name` names the bridge.
    pub options: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default)]
pub struct AttachRequest {
    pub container_id: String,
    pub container_name: String,
    /// Path of the container's network namespace (e.g. /proc/<pid>/ns/net or a bind mount).
    pub netns_path: PathBuf,
    /// DNS aliases on this network (compose service name, `--network-alias`).
    pub aliases: Vec<String>,
    pub ip: Option<Ipv4Addr>,
    /// `--ip6` on a dual-stack network.
    pub ip6: Option<Ipv6Addr>,
    pub mac: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub network: String,
    pub ifname: String,
    pub ip: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Ipv4Addr,
    /// On a dual-stack network: the address, its prefix length, and the gateway.
    pub ipv6: Option<(Ipv6Addr, u8, Ipv6Addr)>,
    pub mac: String,
    /// Whether the embedded DNS answers for this network (its gateway is the nameserver).
    pub dns: bool,
}

const DEFAULT_ROOT: &str = "/var/lib/rcompose";
const DNS_READY_TIMEOUT: Duration = Duration::from_secs(5);

/// Host-wide lock held from choosing a subnet until its bridge has its address. Another state
/// root sees a subnet only through the bridge's host route, so without it two roots picking
/// a default pool at once (two `up`s, two tests) would take the same one.
pub const HOST_IPAM_LOCK: &str = "/run/rcompose-ipam.lock";

/// The held [`HOST_IPAM_LOCK`]; released on drop. `None` inside when the lock file cannot be
/// used (then we fall back to checking host routes alone, with a warning).
struct HostIpamLock(#[allow(dead_code)] Option<std::fs::File>);

fn host_ipam_lock() -> HostIpamLock {
    use std::os::fd::AsRawFd;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(HOST_IPAM_LOCK);
    let file = match file {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!("{HOST_IPAM_LOCK}: {e}; subnets are checked against host routes only");
            return HostIpamLock(None);
        }
    };
    // SAFETY: flock on a descriptor we own; blocks until the lock is ours.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
        let e = std::io::Error::last_os_error();
        tracing::warn!("{HOST_IPAM_LOCK}: {e}; subnets are checked against host routes only");
        return HostIpamLock(None);
    }
    HostIpamLock(Some(file))
}

pub struct Networks {
    root: PathBuf,
    run_root: PathBuf,
    store: Store,
    firewall: Box<dyn Firewall + Send + Sync>,
    dns: DnsControl,
    /// The binary that runs the helper processes (`__dns`, `__port-proxy`).
    helper_exe: PathBuf,
}

/// Our nftables table for a state root: `rcompose` for the default root; other roots (tests,
/// side-by-side installs) get `rcompose_<hash>` so that they never rewrite each other's rules.
pub fn table_name(root: &Path) -> String {
    match root_hash(root) {
        None => "rcompose".into(),
        Some(h) => format!("rcompose_{h:08x}"),
    }
}

/// The default network's bridge: `rcompose0` for the default root, `rc0_<hash>` for others,
/// since interface names are global to the host while state roots are not.
pub fn default_bridge_name(root: &Path) -> String {
    match root_hash(root) {
        None => DEFAULT_BRIDGE_IFNAME.into(),
        Some(h) => format!("rc0_{h:08x}"),
    }
}

/// None for the default root, else a stable FNV-1a hash of the canonical path.
fn root_hash(root: &Path) -> Option<u32> {
    let canon = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    if canon == Path::new(DEFAULT_ROOT) {
        return None;
    }
    let hash = canon
        .as_os_str()
        .as_encoded_bytes()
        .iter()
        .fold(0xcbf29ce484222325u64, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x100000001b3)
        });
    Some(hash as u32)
}

impl Networks {
    pub fn open(root: &Path, run_root: &Path) -> Result<Networks, NetError> {
        let store = Store::open(root)?;
        let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("rcompose"));
        Ok(Networks {
            root: root.to_path_buf(),
            run_root: run_root.to_path_buf(),
            firewall: Box::new(HostFirewall {
                nftables: Nftables::new(table_name(root)).remembering_in(run_root.join("firewall")),
                host_chains: HostChains::new(chain_prefix(&table_name(root)))
                    .remembering_in(run_root.join("firewall")),
            }),
            dns: DnsControl::new(root, run_root, exe.clone()),
            helper_exe: exe,
            store,
        })
    }

    /// The binary that runs `__dns` (default: the current executable).
    pub fn with_helper_exe(mut self, exe: impl Into<PathBuf>) -> Networks {
        // The DNS server is started from another working directory: a relative path given
        // here (`target/release/rcompose`) would name nothing there.
        let exe = exe.into();
        let exe = std::path::absolute(&exe).unwrap_or(exe);
        self.dns = DnsControl::new(&self.root, &self.run_root, exe.clone());
        self.helper_exe = exe;
        self
    }

    /// Replaces the firewall backend (another backend, or a fake in tests).
    pub fn with_firewall(mut self, fw: Box<dyn Firewall + Send + Sync>) -> Networks {
        self.firewall = fw;
        self
    }

    fn taken(&self, nets: &[Network], except: Option<&str>) -> Vec<Taken> {
        let ours: Vec<Taken> = nets
            .iter()
            .filter(|n| Some(n.name.as_str()) != except)
            .map(|n| Taken::Network {
                name: n.name.clone(),
                subnet: n.subnet,
            })
            .collect();
        let own_bridges: Vec<&str> = nets.iter().map(|n| n.bridge.as_str()).collect();
        let routes = ipam::host_routes()
            .into_iter()
            .filter(|t| !matches!(t, Taken::HostRoute { device, .. } if own_bridges.contains(&device.as_str())));
        ours.into_iter().chain(routes).collect()
    }

    /// The default `bridge` network's definition, created on first use.
    fn default_network(&self, _lock: &Lock) -> Result<Network, NetError> {
        if let Some(n) = self.store.load(DEFAULT_NETWORK)? {
            return Ok(n);
        }
        let all = self.store.load_all()?;
        let subnet = ipam::pick_subnet(&self.taken(&all, None))?;
        let plan = ipam::plan(subnet, None, None)?;
        let net = Network {
            name: DEFAULT_NETWORK.into(),
            id: random_id(),
            created: now_rfc3339(),
            driver: "bridge".into(),
            bridge: default_bridge_name(&self.root),
            subnet: plan.subnet,
            gateway: plan.gateway,
            ip_range: None,
            ipv6: None,
            internal: false,
            attachable: false,
            dns: false,
            labels: BTreeMap::new(),
            options: [(
                "com.docker.network.bridge.default_bridge".to_string(),
                "true".to_string(),
            )]
            .into(),
            endpoints: BTreeMap::new(),
        };
        self.store.save(&net)?;
        Ok(net)
    }

    /// Finds a network by name, full id or unique id prefix.
    fn find(&self, lock: &Lock, name_or_id: &str) -> Result<Network, NetError> {
        if name_or_id == DEFAULT_NETWORK {
            return self.default_network(lock);
        }
        if let Ok(Some(n)) = self.store.load(name_or_id) {
            return Ok(n);
        }
        let all = self.store.load_all()?;
        let matches: Vec<&Network> = all
            .iter()
            .filter(|n| n.id.starts_with(name_or_id))
            .collect();
        match matches.as_slice() {
            [one] if !name_or_id.is_empty() => Ok((*one).clone()),
            [] | [_] => Err(NetError::NotFound(name_or_id.to_string())),
            many => Err(NetError::Ambiguous {
                name: name_or_id.to_string(),
                count: many.len(),
            }),
        }
    }

    pub fn create(&self, req: CreateRequest) -> Result<Network, NetError> {
        if PREDEFINED.contains(&req.name.as_str()) {
            return Err(NetError::Predefined(req.name, "created"));
        }
        if !crate::network::valid_name(&req.name) {
            return Err(StoreError::BadName(req.name).into());
        }
        let driver = req.driver.clone().unwrap_or_else(|| "bridge".into());
        if driver != "bridge" {
            return Err(NetError::Driver(driver));
        }
        let lock = self.store.lock()?;
        let all = self.store.load_all()?;
        if all.iter().any(|n| n.name == req.name) {
            return Err(NetError::Exists(req.name));
        }
        let id = loop {
            let id = random_id();
            if !all.iter().any(|n| n.id[..12] == id[..12]) {
                break id;
            }
        };
        let bridge = match req.options.get("com.docker.network.bridge.name") {
            Some(b) => {
                let ok = !b.is_empty()
                    && b.len() <= 15
                    && b.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
                if !ok {
                    return Err(NetError::BridgeName(b.clone()));
                }
                b.clone()
            }
            None => format!("br-{}", &id[..12]),
        };
        if let Some(other) = all.iter().find(|n| n.bridge == bridge) {
            return Err(NetError::BridgeTaken(bridge, other.name.clone()));
        }
        // A named bridge that exists already belongs to someone else (Docker's docker0, another
        // root's network): adopting it would mean deleting it with this network.
        if req.options.contains_key("com.docker.network.bridge.name")
            && bridge::link_exists(&bridge)?
        {
            return Err(NetError::BridgeForeign(bridge));
        }
        let host_lock = host_ipam_lock();
        let taken = self.taken(&all, None);
        let subnet = match req.subnet {
            Some(s) => {
                ipam::check_overlap(s, &taken)?;
                s
            }
            None => ipam::pick_subnet(&taken)?,
        };
        let plan = ipam::plan(subnet, req.gateway, req.ip_range)?;
        if !req.ipv6 && (req.subnet6.is_some() || req.gateway6.is_some()) {
            return Err(NetError::Ipv6NotRequested(req.name));
        }
        let ipv6 = if req.ipv6 {
            let others: Vec<(String, Ipv6Net)> = all
                .iter()
                .filter_map(|n| n.ipv6.map(|p| (n.name.clone(), p.subnet)))
                .collect();
            Some(crate::ipam6::plan6(
                req.subnet6,
                req.gateway6,
                &id,
                &others,
            )?)
        } else {
            None
        };
        let net = Network {
            name: req.name,
            id,
            created: now_rfc3339(),
            driver,
            bridge,
            subnet: plan.subnet,
            gateway: plan.gateway,
            ip_range: plan.ip_range,
            ipv6,
            internal: req.internal,
            attachable: req.attachable,
            dns: true,
            labels: req.labels,
            options: req.options,
            endpoints: BTreeMap::new(),
        };
        let undo = |e: NetError| {
            let _ = bridge::delete_link(&net.bridge);
            let _ = self.store.remove(&net.name);
            let _ = self.apply_firewall(&lock);
            e
        };
        // The file before the bridge: a command killed in between leaves a network whose
        // bridge the next attach creates, never a bridge no file names (whose route would
        // then block its subnet for good; found by tests/reliability_crash.rs).
        self.store.save(&net)?;
        bridge::ensure_bridge(
            &net.bridge,
            net.gateway,
            net.subnet.prefix_len(),
            net.gateway6(),
        )
        .map_err(|e| undo(e.into()))?;
        // The subnet is visible to other roots now (the bridge's route).
        drop(host_lock);
        if !net.internal {
            // Masquerading out of the host needs forwarding, as with Docker.
            bridge::write_sysctl("/proc/sys/net/ipv4/ip_forward", "1")
                .map_err(|e| undo(e.into()))?;
            if net.ipv6.is_some() {
                // As Docker does for IPv6 networks. Note for hosts that take their own IPv6
                // route from router advertisements: with forwarding on, the kernel only keeps
                // doing so where accept_ra=2 (`rcompose doctor` says so).
                bridge::write_sysctl("/proc/sys/net/ipv6/conf/all/forwarding", "1")
                    .map_err(|e| undo(e.into()))?;
            }
        }
        self.apply_firewall(&lock).map_err(undo)?;
        bump_generation(&self.dns.paths.dir)?;
        Ok(net)
    }

    /// Removes a network; refuses one with containers attached.
    pub fn remove(&self, name_or_id: &str) -> Result<Network, NetError> {
        if PREDEFINED.contains(&name_or_id) {
            return Err(NetError::Predefined(name_or_id.to_string(), "removed"));
        }
        let lock = self.store.lock()?;
        let net = self.find(&lock, name_or_id)?;
        if !net.endpoints.is_empty() {
            let names: Vec<&str> = net
                .endpoints
                .values()
                .map(|e| e.container_name.as_str())
                .collect();
            return Err(NetError::InUse {
                network: net.name.clone(),
                containers: names.join(", "),
            });
        }
        // Nothing of the network may be left when this returns (`ip link` after `rm`); the
        // bridge before the file, for the same reason as in `create`: killed in between, the
        // network is still listed and the next `rm` (or `down`) finishes the job.
        self.delete_released_ports(&net.bridge)?;
        bridge::delete_link(&net.bridge)?;
        self.store.remove(&net.name)?;
        self.apply_firewall(&lock)?;
        bump_generation(&self.dns.paths.dir)?;
        Ok(net)
    }

    /// All networks of this root (the default `bridge` included), sorted by name.
    pub fn list(&self) -> Result<Vec<Network>, NetError> {
        let lock = self.store.lock()?;
        self.default_network(&lock)?;
        Ok(self.store.load_all()?)
    }

    pub fn get(&self, name_or_id: &str) -> Result<Network, NetError> {
        let lock = self.store.lock()?;
        self.find(&lock, name_or_id)
    }

    /// Docker-shaped inspect JSON; `host` and `none` included.
    pub fn inspect(&self, name_or_id: &str) -> Result<Value, NetError> {
        if name_or_id == "host" || name_or_id == "none" {
            return Ok(inspect_predefined(name_or_id));
        }
        Ok(self.get(name_or_id)?.inspect())
    }

    /// Removes every custom network without containers whose labels match all `labels`
    /// (`key` or `key=value`), and without filters an idle default bridge too (the default
    /// network itself stays). Returns the removed networks' names.
    pub fn prune(&self, labels: &[String]) -> Result<Vec<String>, NetError> {
        let candidates: Vec<Network> = {
            let _lock = self.store.lock()?;
            self.store.load_all()?
        };
        let mut removed = Vec::new();
        for n in candidates {
            let matches = labels.iter().all(|f| match f.split_once('=') {
                Some((k, v)) => n.labels.get(k).is_some_and(|x| x == v),
                None => n.labels.contains_key(f),
            });
            if n.name == DEFAULT_NETWORK || !n.endpoints.is_empty() || !matches {
                continue;
            }
            match self.remove(&n.name) {
                Ok(_) => removed.push(n.name),
                // Someone attached a container meanwhile: not ours to prune any more.
                Err(NetError::InUse { .. } | NetError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        if labels.is_empty() {
            // The default network stays (as docker's `bridge`), but an idle bridge of its own
            // goes: the next container creates it again.
            self.remove_idle_default()?;
        }
        Ok(removed)
    }

    /// The default network's bridge is created by its first container, and its subnet may
    /// have been chosen when it was not on the host: pick again if a host route took it
    /// meanwhile (say another tool's bridge came up).
    fn refresh_default_subnet(&self, net: &mut Network) -> Result<(), NetError> {
        if bridge::link_exists(&net.bridge)? {
            return Ok(());
        }
        let all = self.store.load_all()?;
        let taken = self.taken(&all, Some(DEFAULT_NETWORK));
        if ipam::check_overlap(net.subnet, &taken).is_ok() {
            return Ok(());
        }
        let plan = ipam::plan(ipam::pick_subnet(&taken)?, None, None)?;
        net.subnet = plan.subnet;
        net.gateway = plan.gateway;
        self.store.save(net)?;
        Ok(())
    }

    fn dns_needed(&self) -> Result<bool, NetError> {
        Ok(self
            .store
            .load_all()?
            .iter()
            .any(|n| n.dns && !n.endpoints.is_empty()))
    }

    /// /etc/resolv.conf for a container on `networks` (in attach order).
    pub fn resolv_conf_for(
        &self,
        networks: &[String],
        dns: &[IpAddr],
        search: &[String],
        options: &[String],
    ) -> Result<String, NetError> {
        let lock = self.store.lock()?;
        let mut embedded = None;
        for name in networks {
            let n = self.find(&lock, name)?;
            if n.dns {
                embedded = Some(n.gateway);
                break;
            }
        }
        Ok(self.resolv_conf(embedded, dns, search, options))
    }

    /// [`Networks::resolv_conf_for`] when the caller knows the embedded DNS server's address
    /// (the gateway of the first network with DNS, from its attachments): no state is read.
    pub fn resolv_conf(
        &self,
        embedded: Option<Ipv4Addr>,
        dns: &[IpAddr],
        search: &[String],
        options: &[String],
    ) -> String {
        let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        files::resolv_conf(&host, embedded, dns, search, options)
    }

    /// /etc/hosts for a container.
    pub fn hosts_file_for(&self, req: &HostsRequest) -> String {
        files::hosts_file(req)
    }

    /// Re-applies the derived state (firewall, DNS server) from the persisted state, e.g.
    /// after a reboot cleared the kernel's rules.
    pub fn sync(&self) -> Result<(), NetError> {
        let lock = self.store.lock()?;
        self.apply_firewall(&lock)?;
        self.dns.notify(self.dns_needed()?)?;
        Ok(())
    }

    fn apply_firewall(&self, lock: &Lock) -> Result<(), NetError> {
        self.apply_firewall_with(lock, false)
    }

    /// `only_if_changed`: see [`Firewall::apply_if_changed`] (releasing endpoints).
    fn apply_firewall_with(&self, _lock: &Lock, only_if_changed: bool) -> Result<(), NetError> {
        let nets = self.store.load_all()?;
        let mut desired = Desired::default();
        for n in &nets {
            if !n.is_live() {
                continue;
            }
            desired.networks.push(FwNetwork {
                name: n.name.clone(),
                bridge: n.bridge.clone(),
                subnet: n.subnet,
                subnet6: n.ipv6.map(|p| p.subnet),
                internal: n.internal,
            });
            for e in n.endpoints.values() {
                desired.ports.extend(e.ports.iter().map(|b| FwPort {
                    binding: *b,
                    container_ip: e.ip,
                    container_ip6: e.ip6,
                    bridge: n.bridge.clone(),
                }));
            }
        }
        if only_if_changed {
            self.firewall.apply_if_changed(&desired)?;
        } else {
            self.firewall.apply(&desired)?;
        }
        let proxies: Vec<ProxySpec> = nets
            .iter()
            .flat_map(|n| n.endpoints.values())
            .flat_map(|e| e.ports.iter().filter_map(|b| proxy_spec(b, e.ip, e.ip6)))
            .collect();
        crate::proxy::reconcile(&self.run_root.join("proxies"), &self.helper_exe, &proxies)?;
        Ok(())
    }
}

/// The proxy a binding needs, if DNAT cannot serve it (see `ports`): one on [::1], and one on
/// an IPv6 address for a container that has no IPv6 address (the proxy crosses families).
pub(crate) fn proxy_spec(
    b: &PortBinding,
    ip: Ipv4Addr,
    ip6: Option<Ipv6Addr>,
) -> Option<ProxySpec> {
    let needed = b.needs_proxy() || (b.host_ip.is_ipv6() && ip6.is_none());
    needed.then(|| ProxySpec {
        listen: SocketAddr::new(b.host_ip, b.host_port),
        target: match ip6 {
            Some(v6) => SocketAddr::new(IpAddr::V6(v6), b.container_port),
            None => SocketAddr::new(IpAddr::V4(ip), b.container_port),
        },
    })
}

fn netns_ino(path: &Path) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| m.ino())
}
