//! Packet filtering and NAT for our networks, behind one trait so another backend (iptables,
//! a recording fake in tests) can follow.
//!
//! The firewall is declarative: callers hand over the complete desired state (every network and
//! every published port of one state root) and the backend makes the kernel match it in one
//! atomic step. Adding or removing a network or a port is "compute the new state, apply". With
//! nothing left to describe, the backend removes everything it owns.

use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};

use crate::ports::PortBinding;

pub mod iptables;
mod kernel;
pub mod nftables;

#[derive(Debug, thiserror::Error)]
pub enum FirewallError {
    #[error("cannot run {program}: {source} (is nftables installed?)")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("nft rejected the ruleset for table {table}: {stderr}")]
    Rejected { table: String, stderr: String },
    #[error("{program} failed: {stderr}")]
    Iptables { program: String, stderr: String },
    #[error(
        "{program} is not installed, but {why}: install it (Debian/Ubuntu: apt-get install iptables), then run the command again; `rcompose doctor` checks the host"
    )]
    NoIptables { program: String, why: String },
}

/// One bridge network as the firewall sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FwNetwork {
    pub name: String,
    pub bridge: String,
    pub subnet: Ipv4Net,
    /// The IPv6 subnet of a dual-stack network.
    pub subnet6: Option<Ipv6Net>,
    /// No traffic in or out of the bridge except to the host itself (DNS on the gateway).
    pub internal: bool,
}

/// One published port: traffic to `binding.host_ip:host_port` goes to `container_ip`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FwPort {
    pub binding: PortBinding,
    pub container_ip: Ipv4Addr,
    /// The container's IPv6 address, where it has one: bindings on 0.0.0.0 and IPv6
    /// addresses reach it over IPv6 too.
    pub container_ip6: Option<Ipv6Addr>,
    pub bridge: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Desired {
    pub networks: Vec<FwNetwork>,
    pub ports: Vec<FwPort>,
}

pub trait Firewall {
    /// Makes the kernel's rules match `desired` exactly, atomically.
    fn apply(&self, desired: &Desired) -> Result<(), FirewallError>;

    /// As `apply`, but does nothing when `desired` is what this backend applied last, even if
    /// another tool changed the kernel's rulesets since: for changes that only take rules
    /// away or leave them as they are (a container leaving a network), where re-checking the
    /// whole ruleset (an `nft` and `iptables` run each) would be paid on every container stop
    /// on hosts where other tools keep changing their rules. Repairs happen on the next
    /// `apply`.
    fn apply_if_changed(&self, desired: &Desired) -> Result<(), FirewallError> {
        self.apply(desired)
    }
}

/// The firewall of a real host: our own nftables table, plus accepts in the host's iptables
/// where Docker, ufw or firewalld would otherwise drop our traffic (`iptables` module).
pub struct HostFirewall {
    pub nftables: nftables::Nftables,
    pub host_chains: iptables::HostChains,
}

impl Firewall for HostFirewall {
    fn apply(&self, desired: &Desired) -> Result<(), FirewallError> {
        let bridges: Vec<String> = desired.networks.iter().map(|n| n.bridge.clone()).collect();
        let bridges6: Vec<String> = desired
            .networks
            .iter()
            .filter(|n| n.subnet6.is_some())
            .map(|n| n.bridge.clone())
            .collect();
        if bridges.is_empty() {
            // Going away: the accepts first, so nothing is left open to a reused bridge name.
            self.host_chains.apply(&bridges, &bridges6)?;
            return self.nftables.apply(desired);
        }
        self.nftables.apply(desired)?;
        self.host_chains.apply(&bridges, &bridges6)
    }

    fn apply_if_changed(&self, desired: &Desired) -> Result<(), FirewallError> {
        let bridges: Vec<String> = desired.networks.iter().map(|n| n.bridge.clone()).collect();
        let bridges6: Vec<String> = desired
            .networks
            .iter()
            .filter(|n| n.subnet6.is_some())
            .map(|n| n.bridge.clone())
            .collect();
        if self.nftables.unchanged_since_last_apply(desired)
            && self
                .host_chains
                .unchanged_since_last_apply(&bridges, &bridges6)
        {
            return Ok(());
        }
        self.apply(desired)
    }
}
