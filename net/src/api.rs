//! `Networks`: the high-level API the engine and the compose orchestration call.
//!
//! Every mutation runs under the state lock and follows one pattern: validate everything,
//! make the kernel change (bridge, veth), persist, then bring the derived state in line (the
//! firewall is rebuilt from all networks, the DNS server is woken). A failure undoes the steps
//! already done, so no half-created network or endpoint is left behind.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::Ipv4Net;
use serde_json::Value;

use crate::bridge::{self, BridgeError, VethPlan};
use crate::dns::control::{DnsControl, DnsError, bump_generation};
use crate::files::{self, HostsRequest};
use crate::firewall::iptables::{HostChains, chain_prefix};
use crate::firewall::nftables::Nftables;
use crate::firewall::{Desired, Firewall, FirewallError, FwNetwork, FwPort, HostFirewall};
use crate::ipam::{self, IpamError, Taken};
use crate::network::{
    DEFAULT_BRIDGE_IFNAME, DEFAULT_NETWORK, Endpoint, Network, PREDEFINED, inspect_predefined,
    now_rfc3339, random_id,
};
use crate::ports::PortError;
use crate::store::{Lock, Store, StoreError};

mod publish;

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Ipam(#[from] IpamError),
    #[error(transparent)]
    Bridge(#[from] BridgeError),
    #[error(transparent)]
    Firewall(#[from] FirewallError),
    #[error(transparent)]
    Dns(#[from] DnsError),
    #[error(transparent)]
    Port(#[from] PortError),
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
    pub mac: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub network: String,
    pub ifname: String,
    pub ip: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Ipv4Addr,
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
            dns: DnsControl::new(root, run_root, exe),
            store,
        })
    }

    /// The binary that runs `__dns` (default: the current executable).
    pub fn with_helper_exe(mut self, exe: impl Into<PathBuf>) -> Networks {
        // The DNS server is started from another working directory: a relative path given
        // here (`target/release/rcompose`) would name nothing there.
        let exe = exe.into();
        let exe = std::path::absolute(&exe).unwrap_or(exe);
        self.dns = DnsControl::new(&self.root, &self.run_root, exe);
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
        let net = Network {
            name: req.name,
            id,
            created: now_rfc3339(),
            driver,
            bridge,
            subnet: plan.subnet,
            gateway: plan.gateway,
            ip_range: plan.ip_range,
            internal: req.internal,
            attachable: req.attachable,
            dns: true,
            labels: req.labels,
            options: req.options,
            endpoints: BTreeMap::new(),
        };
        bridge::ensure_bridge(&net.bridge, net.gateway, net.subnet.prefix_len())?;
        // The subnet is visible to other roots now (the bridge's route).
        drop(host_lock);
        let undo = |e: NetError| {
            let _ = bridge::delete_link(&net.bridge);
            let _ = self.store.remove(&net.name);
            let _ = self.apply_firewall(&lock);
            e
        };
        self.store.save(&net).map_err(|e| undo(e.into()))?;
        if !net.internal {
            // Masquerading out of the host needs forwarding, as with Docker.
            bridge::write_sysctl("/proc/sys/net/ipv4/ip_forward", "1")
                .map_err(|e| undo(e.into()))?;
        }
        self.apply_firewall(&lock).map_err(undo)?;
        bump_generation(self.store.dir())?;
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
        self.store.remove(&net.name)?;
        self.apply_firewall(&lock)?;
        bridge::delete_link(&net.bridge)?;
        bump_generation(self.store.dir())?;
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
    /// (`key` or `key=value`). Returns the removed names.
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
        Ok(removed)
    }

    /// Connects a container's namespace to a network.
    pub fn attach(&self, network: &str, req: AttachRequest) -> Result<Attachment, NetError> {
        let (att, generation) = {
            let lock = self.store.lock()?;
            let mut net = self.find(&lock, network)?;
            // The default bridge exists only while it has containers: re-checking its subnet
            // and creating it again is a choice other roots must not make at the same time.
            let host_lock =
                (net.name == DEFAULT_NETWORK && net.endpoints.is_empty()).then(host_ipam_lock);
            if host_lock.is_some() {
                self.refresh_default_subnet(&mut net)?;
            }
            let mut req = req;
            if let Some(old) = net.endpoints.get(&req.container_id) {
                // A container that died without being detached (crash, reboot) left its
                // endpoint behind; its veth went with its namespace. Reclaim it, keeping the
                // address, so that a restart works.
                let same_ns = netns_ino(Path::new(&old.netns_path)) == Some(old.netns_ino);
                if same_ns && bridge::link_exists(&old.host_ifname)? {
                    return Err(NetError::AlreadyAttached {
                        container: req.container_name,
                        network: net.name,
                    });
                }
                // The kernel may still be tearing down the dead namespace's veth.
                bridge::detach_veth(&old.host_ifname)?;
                req.ip = req.ip.or(Some(old.ip));
                net.endpoints.remove(&req.container_id);
            }
            if let Some(mac) = &req.mac
                && let Some(other) = net
                    .endpoints
                    .values()
                    .find(|e| e.mac.eq_ignore_ascii_case(mac))
            {
                return Err(NetError::MacInUse {
                    mac: mac.clone(),
                    network: net.name.clone(),
                    holder: other.container_name.clone(),
                });
            }
            let ip = ipam::allocate(
                &net.name,
                &net.plan(),
                &net.used_addresses(),
                |ip| net.holder_of(ip),
                req.ip,
            )?;
            let mac = req.mac.clone().unwrap_or_else(|| ipam::mac_for(ip));
            let mac_bytes = bridge::parse_mac(&mac).ok_or_else(|| NetError::BadMac(mac.clone()))?;
            bridge::ensure_bridge(&net.bridge, net.gateway, net.subnet.prefix_len())?;
            drop(host_lock);
            let host_ifname = format!("veth{}", &random_id()[..7]);
            let ifname = bridge::attach_veth(&VethPlan {
                bridge: net.bridge.clone(),
                host_ifname: host_ifname.clone(),
                netns: req.netns_path.clone(),
                ip,
                prefix: net.subnet.prefix_len(),
                mac: mac_bytes,
                default_gateway: (!net.internal).then_some(net.gateway),
            })?;
            net.endpoints.insert(
                req.container_id.clone(),
                Endpoint {
                    container_id: req.container_id.clone(),
                    container_name: req.container_name.clone(),
                    endpoint_id: random_id(),
                    ip,
                    mac: mac.clone(),
                    host_ifname: host_ifname.clone(),
                    ifname: ifname.clone(),
                    netns_path: req.netns_path.to_string_lossy().into_owned(),
                    netns_ino: netns_ino(&req.netns_path).unwrap_or(0),
                    aliases: req.aliases.clone(),
                    ports: Vec::new(),
                },
            );
            let committed = self
                .store
                .save_endpoints(&net)
                .map_err(NetError::from)
                .and_then(|_| self.apply_firewall(&lock));
            if let Err(e) = committed {
                let _ = bridge::detach_veth(&host_ifname);
                net.endpoints.remove(&req.container_id);
                let _ = self.store.save_endpoints(&net);
                return Err(e);
            }
            let generation = bump_generation(self.store.dir())?;
            if net.dns {
                self.dns.notify(true)?;
            }
            let att = Attachment {
                network: net.name.clone(),
                ifname,
                ip,
                prefix: net.subnet.prefix_len(),
                gateway: net.gateway,
                mac,
                dns: net.dns,
            };
            (att, generation)
        };
        if att.dns {
            // Make the name resolvable before the container's process starts.
            if let Err(e) = self.dns.wait_loaded(generation, DNS_READY_TIMEOUT) {
                tracing::warn!("{e}");
            }
        }
        Ok(att)
    }

    /// Disconnects a container from a network (its published ports there go too).
    pub fn detach(&self, network: &str, container_id: &str) -> Result<(), NetError> {
        let (generation, dns) = {
            let lock = self.store.lock()?;
            let mut net = self.find(&lock, network)?;
            let Some(ep) = net.endpoints.remove(container_id) else {
                return Err(NetError::NotAttached {
                    container: container_id.to_string(),
                    network: net.name,
                });
            };
            bridge::detach_veth(&ep.host_ifname)?;
            self.store.save_endpoints(&net)?;
            self.apply_firewall(&lock)?;
            if net.name == DEFAULT_NETWORK && net.endpoints.is_empty() {
                // Nothing left behind: the default bridge comes back with the next container.
                bridge::delete_link(&net.bridge)?;
            }
            let generation = bump_generation(self.store.dir())?;
            if net.dns {
                self.dns.notify(self.dns_needed()?)?;
            }
            (generation, net.dns)
        };
        if dns {
            // The name must stop resolving once the container is gone.
            if let Err(e) = self.dns.wait_loaded(generation, DNS_READY_TIMEOUT) {
                tracing::warn!("{e}");
            }
        }
        Ok(())
    }

    /// A renamed container answers to its new name on every network it is on (docker
    /// `rename`); returns once the DNS server serves the change.
    pub fn rename_endpoint(&self, container_id: &str, new_name: &str) -> Result<(), NetError> {
        let (generation, dns) = {
            let _lock = self.store.lock()?;
            let mut dns = false;
            let mut changed = false;
            for mut net in self.store.load_all()? {
                if let Some(ep) = net.endpoints.get_mut(container_id) {
                    ep.container_name = new_name.to_string();
                    self.store.save(&net)?;
                    dns |= net.dns;
                    changed = true;
                }
            }
            if !changed {
                return Ok(());
            }
            (bump_generation(self.store.dir())?, dns)
        };
        if dns {
            self.dns.notify(true)?;
            if let Err(e) = self.dns.wait_loaded(generation, DNS_READY_TIMEOUT) {
                tracing::warn!("{e}");
            }
        }
        Ok(())
    }

    /// Disconnects a container from every network it is on (container removal, stop).
    pub fn detach_all(&self, container_id: &str) -> Result<(), NetError> {
        let nets: Vec<String> = {
            let _lock = self.store.lock()?;
            self.store
                .load_all()?
                .into_iter()
                .filter(|n| n.endpoints.contains_key(container_id))
                .map(|n| n.name)
                .collect()
        };
        for n in nets {
            match self.detach(&n, container_id) {
                Ok(()) | Err(NetError::NotAttached { .. } | NetError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// The default network's bridge only exists while it has containers, so its subnet was
    /// chosen when it was not on the host: pick again if a host route took it meanwhile (say
    /// another tool's bridge came up).
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
        let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        Ok(files::resolv_conf(&host, embedded, dns, search, options))
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

    fn apply_firewall(&self, _lock: &Lock) -> Result<(), NetError> {
        let nets = self.store.load_all()?;
        let mut desired = Desired::default();
        for n in &nets {
            // The default bridge is only live while it has containers.
            if n.name == DEFAULT_NETWORK && n.endpoints.is_empty() {
                continue;
            }
            desired.networks.push(FwNetwork {
                name: n.name.clone(),
                bridge: n.bridge.clone(),
                subnet: n.subnet,
                internal: n.internal,
            });
            for e in n.endpoints.values() {
                desired.ports.extend(e.ports.iter().map(|b| FwPort {
                    binding: *b,
                    container_ip: e.ip,
                    bridge: n.bridge.clone(),
                }));
            }
        }
        Ok(self.firewall.apply(&desired)?)
    }
}

fn netns_ino(path: &Path) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| m.ino())
}
