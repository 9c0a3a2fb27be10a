//! Attaching containers to networks and detaching them: addresses (IPv4, and IPv6 on
//! dual-stack networks), the veth pair, the firewall and the DNS server, undone on failure.

use std::path::Path;

use super::{
    AttachRequest, Attachment, DNS_READY_TIMEOUT, NetError, Networks, host_ipam_lock, netns_ino,
};
use crate::bridge::{self, VethPlan};
use crate::dns::control::bump_generation;
use crate::ipam;
use crate::network::{DEFAULT_NETWORK, Endpoint, random_id};

impl Networks {
    /// Connects a container's namespace to a network.
    pub fn attach(&self, network: &str, req: AttachRequest) -> Result<Attachment, NetError> {
        let (att, generation) = {
            let lock = self.store.lock()?;
            let mut net = self.find(&lock, network)?;
            // The default bridge is created by its first container (and stays, as docker0
            // does): re-checking its subnet and creating it is a choice other roots must not
            // make at the same time.
            let creating_default =
                net.name == DEFAULT_NETWORK && !bridge::link_exists(&net.bridge)?;
            let host_lock = creating_default.then(host_ipam_lock);
            if creating_default {
                // Orphans of removed roots first: their subnets may be the ones to take.
                super::release::collect_orphan_default_bridges();
                self.refresh_default_subnet(&mut net)?;
            }
            let mut req = req;
            let mut rules_change = creating_default;
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
                req.ip6 = req.ip6.or(old.ip6);
                rules_change |= !old.ports.is_empty();
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
            let ip6 = match (net.ipv6, req.ip6) {
                (Some(plan), requested) => Some(crate::ipam6::allocate6(
                    &net.name,
                    &plan,
                    &net.used_addresses6(),
                    |ip| net.holder_of6(ip),
                    requested,
                )?),
                (None, Some(_)) => {
                    return Err(crate::ipam6::Ipam6Error::NotEnabled {
                        network: net.name.clone(),
                    }
                    .into());
                }
                (None, None) => None,
            };
            let mac = req.mac.clone().unwrap_or_else(|| ipam::mac_for(ip));
            let mac_bytes = bridge::parse_mac(&mac).ok_or_else(|| NetError::BadMac(mac.clone()))?;
            bridge::ensure_bridge(
                &net.bridge,
                net.gateway,
                net.subnet.prefix_len(),
                net.gateway6(),
            )?;
            if creating_default {
                self.mark_default_bridge(&net.bridge);
            }
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
                ip6: ip6
                    .zip(net.gateway6())
                    .map(|(ip, (_, prefix))| (ip, prefix)),
                default_gateway6: net.gateway6().filter(|_| !net.internal).map(|(gw, _)| gw),
            })?;
            net.endpoints.insert(
                req.container_id.clone(),
                Endpoint {
                    container_id: req.container_id.clone(),
                    container_name: req.container_name.clone(),
                    endpoint_id: random_id(),
                    ip,
                    ip6,
                    mac: mac.clone(),
                    host_ifname: host_ifname.clone(),
                    ifname: ifname.clone(),
                    netns_path: req.netns_path.to_string_lossy().into_owned(),
                    netns_ino: netns_ino(&req.netns_path).unwrap_or(0),
                    aliases: req.aliases.clone(),
                    ports: Vec::new(),
                },
            );
            // The rules follow the live networks and the published ports. An endpoint comes
            // without ports (they are published after), so it changes them only when it
            // brings the default bridge to life or replaces a dead endpoint that had ports.
            // Checking anyway read every network's state to find nothing changed: time per
            // start that grew with the stack. Re-checking the whole ruleset on every start
            // would also run `nft` and `iptables` whenever another tool touched its rules
            // since (Docker does on each of its starts): repairs happen at network create/rm
            // and `doctor --fix`.
            let committed = self
                .store
                .save_endpoints(&net)
                .map_err(NetError::from)
                .and_then(|_| {
                    if rules_change {
                        self.apply_firewall_with(&lock, true)
                    } else {
                        Ok(())
                    }
                });
            if let Err(e) = committed {
                let _ = bridge::detach_veth(&host_ifname);
                net.endpoints.remove(&req.container_id);
                let _ = self.store.save_endpoints(&net);
                return Err(e);
            }
            let generation = bump_generation(&self.dns.paths.dir)?;
            if net.dns {
                self.dns.notify(true)?;
            }
            let att = Attachment {
                network: net.name.clone(),
                ifname,
                ip,
                prefix: net.subnet.prefix_len(),
                gateway: net.gateway,
                ipv6: ip6
                    .zip(net.ipv6)
                    .map(|(ip, p)| (ip, p.subnet.prefix_len(), p.gateway)),
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
            let generation = bump_generation(&self.dns.paths.dir)?;
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
            (bump_generation(&self.dns.paths.dir)?, dns)
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
}
