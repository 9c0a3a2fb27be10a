//! Packet filtering and NAT for our networks, behind one trait so another backend (iptables,
//! a recording fake in tests) can follow.
//!
//! The firewall is declarative: callers hand over the complete desired state (every network and
//! every published port of one state root) and the backend makes the kernel match it in one
//! atomic step. Adding or removing a network or a port is "compute the new state, apply". With
//! nothing left to describe, the backend removes everything it owns.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use crate::ports::PortBinding;

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
}

/// One bridge network as the firewall sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FwNetwork {
    pub name: String,
    pub bridge: String,
    pub subnet: Ipv4Net,
    /// No traffic in or out of the bridge except to the host itself (DNS on the gateway).
    pub internal: bool,
}

/// One published port: traffic to `binding.host_ip:host_port` goes to `container_ip`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FwPort {
    pub binding: PortBinding,
    pub container_ip: Ipv4Addr,
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
}
