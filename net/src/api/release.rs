//! Releasing a container that exited: the part a waiting user needs (its addresses, names and
//! ports free, the firewall and DNS server in line) at once, the kernel's part later.
//!
//! Deleting a veth makes the kernel wait for RCU grace periods (tens of milliseconds on a
//! busy host). A monitor releases its container's endpoints with [`Networks::release`] before
//! it reports the exit, and does [`Networks::finish_release`] afterwards, in the background,
//! as Docker's daemon does. The host end of each veth is set down in the first step, so it
//! takes no part in its bridge any more and the next container can take the same address at
//! once.
//!
//! The default bridge stays when its last container goes, as docker0 does: creating it (and
//! its firewall rules) and deleting it again cost a bridged `run --rm` ~80 ms of its ~110.
//! `network prune` (and `system prune`) delete an idle one, and a default bridge whose state
//! root has been removed is collected by the next root that creates its own
//! ([`collect_orphan_default_bridges`]), so removing a root by hand leaks nothing for long.

use std::path::Path;

use super::{DNS_READY_TIMEOUT, NetError, Networks};
use crate::bridge;
use crate::dns::control::bump_generation;
use crate::firewall::iptables::{HostChains, chain_prefix};
use crate::firewall::nftables::Nftables;
use crate::firewall::{Desired, Firewall, HostFirewall};
use crate::network::{DEFAULT_BRIDGE_IFNAME, DEFAULT_NETWORK};

/// What [`Networks::release`] left to [`Networks::finish_release`].
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Released {
    /// Host ends of the container's veth pairs, set down.
    pub veths: Vec<String>,
}

impl Released {
    pub fn is_empty(&self) -> bool {
        self.veths.is_empty()
    }
}

/// The prefix of the interface alias that names a default bridge's state root.
const ROOT_ALIAS: &str = "rcompose-root:";

impl Networks {
    /// Releases a container's endpoints on every network: ports unpublished, addresses and
    /// DNS names free (the DNS server has reloaded when this returns), veths set down. The
    /// veths are left to [`Networks::finish_release`].
    pub fn release(&self, container_id: &str) -> Result<Released, NetError> {
        let (out, generation, dns) = {
            let lock = self.store.lock()?;
            let mut out = Released::default();
            let mut dns = false;
            for mut net in self.store.load_all()? {
                let Some(ep) = net.endpoints.remove(container_id) else {
                    continue;
                };
                bridge::set_down(&ep.host_ifname)?;
                self.store.save_endpoints(&net)?;
                dns |= net.dns;
                out.veths.push(ep.host_ifname);
            }
            if out.veths.is_empty() {
                return Ok(out);
            }
            self.apply_firewall_with(&lock, true)?;
            let generation = bump_generation(&self.dns.paths.dir)?;
            if dns {
                self.dns.notify(self.dns_needed()?)?;
            }
            (out, generation, dns)
        };
        if dns {
            // The name must stop resolving once the container is gone.
            if let Err(e) = self.dns.wait_loaded(generation, DNS_READY_TIMEOUT) {
                tracing::warn!("{e}");
            }
        }
        Ok(out)
    }

    /// The kernel's half of [`Networks::release`]: deletes the veths (usually gone already
    /// with the container's namespace). Slow (RCU waits): run it where nobody waits for it.
    pub fn finish_release(&self, released: &Released) {
        for veth in &released.veths {
            if let Err(e) = bridge::delete_link(veth) {
                tracing::warn!("deleting {veth}: {e}");
            }
        }
    }

    /// Deletes the default bridge and its firewall rules if no container is on it (`network
    /// prune`); the next container creates it again. Returns whether there was one to delete.
    pub fn remove_idle_default(&self) -> Result<bool, NetError> {
        let lock = self.store.lock()?;
        let Some(net) = self.store.load(DEFAULT_NETWORK)? else {
            return Ok(false);
        };
        if !net.endpoints.is_empty() || !bridge::link_exists(&net.bridge)? {
            return Ok(false);
        }
        self.delete_released_ports(&net.bridge)?;
        bridge::delete_link(&net.bridge)?;
        self.apply_firewall(&lock)?;
        Ok(true)
    }

    /// Marks a default bridge just created with the state root it belongs to, so that
    /// [`collect_orphan_default_bridges`] can tell when that root is gone.
    pub(super) fn mark_default_bridge(&self, bridge_name: &str) {
        let root = self
            .root
            .canonicalize()
            .unwrap_or_else(|_| self.root.clone());
        let alias = format!("{ROOT_ALIAS}{}", root.display());
        // Best effort: an unmarked bridge is only never collected as an orphan.
        if let Err(e) =
            bridge::write_sysctl(&format!("/sys/class/net/{bridge_name}/ifalias"), &alias)
        {
            tracing::debug!("marking {bridge_name}: {e}");
        }
    }

    /// Deletes what is still plugged into `bridge_name`: veths of released containers whose
    /// deletion is still on its way (call when no endpoint is left on the network).
    pub(super) fn delete_released_ports(&self, bridge_name: &str) -> Result<(), NetError> {
        delete_ports(bridge_name)
    }
}

fn delete_ports(bridge_name: &str) -> Result<(), NetError> {
    for port in bridge::ports_of(bridge_name)? {
        bridge::delete_link(&port)?;
    }
    Ok(())
}

/// Default bridges of state roots that no longer exist (their alias names a missing
/// directory): deleted with their ports, nftables table and iptables chains. Such a bridge is
/// what a root removed by hand (`rm -rf`, a test's temporary root) leaves, since the default
/// bridge outlives its containers; left there, it keeps its subnet out of every root's pool.
/// Returns the bridges deleted.
pub fn collect_orphan_default_bridges() -> Vec<String> {
    let mut collected = vec![];
    for (name, root) in orphan_default_bridges() {
        let hash = name.trim_start_matches("rc0_");
        if let Err(e) = delete_orphan(&name, hash) {
            tracing::warn!("collecting the orphaned default bridge {name} (root {root}): {e}");
            continue;
        }
        collected.push(name);
    }
    collected
}

/// Default bridges (`rc0_<hash>`) on the host whose state root, named in their alias, no
/// longer exists: (bridge, root).
pub fn orphan_default_bridges() -> Vec<(String, String)> {
    let Ok(links) = std::fs::read_dir("/sys/class/net") else {
        return vec![];
    };
    let mut out = vec![];
    for link in links.flatten() {
        let name = link.file_name().to_string_lossy().into_owned();
        if !name.starts_with("rc0_") {
            continue;
        }
        let alias = std::fs::read_to_string(link.path().join("ifalias")).unwrap_or_default();
        let Some(root) = alias.trim_end().strip_prefix(ROOT_ALIAS) else {
            continue;
        };
        if root.starts_with('/') && !Path::new(root).exists() {
            out.push((name, root.to_string()));
        }
    }
    out
}

fn delete_orphan(bridge_name: &str, hash: &str) -> Result<(), NetError> {
    debug_assert_ne!(bridge_name, DEFAULT_BRIDGE_IFNAME);
    delete_ports(bridge_name)?;
    bridge::delete_link(bridge_name)?;
    // The same names `Networks::open` gives that root's firewall (see `table_name`).
    let table = format!("rcompose_{hash}");
    let firewall = HostFirewall {
        nftables: Nftables::new(table.clone()),
        host_chains: HostChains::new(chain_prefix(&table)),
    };
    firewall.apply(&Desired::default())?;
    Ok(())
}
