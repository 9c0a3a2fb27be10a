//! Releasing a container that exited: the part a waiting user needs (its addresses, names and
//! ports free, the firewall and DNS server in line) at once, the kernel's part later.
//!
//! Deleting a veth or a bridge makes the kernel wait for RCU grace periods (tens of
//! milliseconds on a busy host). A monitor releases its container's endpoints with
//! [`Networks::release`] before it reports the exit, and does [`Networks::finish_release`]
//! afterwards, in the background, as Docker's daemon does. The host end of each veth is set
//! down in the first step, so it takes no part in its bridge any more and the next container
//! can take the same address at once.
//!
//! The default bridge exists only while it has containers: [`Networks::release`] deletes it
//! with its last container. (The linger machinery below, a token file under the run root and
//! [`DEFAULT_BRIDGE_LINGER`], is no longer armed: a root removed within the linger left the
//! bridge and its firewall table behind.) Commands that stop or remove containers delete an
//! idle default bridge at once ([`Networks::reap_idle_default`]).

use std::path::PathBuf;
use std::time::Duration;

use super::{DNS_READY_TIMEOUT, NetError, Networks};
use crate::bridge;
use crate::dns::control::bump_generation;
use crate::network::DEFAULT_NETWORK;

/// How long the idle default bridge stays for the next container.
pub const DEFAULT_BRIDGE_LINGER: Duration = Duration::from_secs(1);

/// What [`Networks::release`] left to [`Networks::finish_release`].
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Released {
    /// Host ends of the container's veth pairs, set down.
    pub veths: Vec<String>,
    /// The token of the default bridge's linger marker, when it became idle.
    pub idle_default: Option<String>,
}

impl Released {
    pub fn is_empty(&self) -> bool {
        self.veths.is_empty() && self.idle_default.is_none()
    }
}

impl Networks {
    fn linger_marker(&self) -> PathBuf {
        self.run_root.join("default-bridge.idle")
    }

    /// Whether the idle default bridge is lingering (its firewall rules stay meanwhile).
    pub(super) fn default_lingers(&self) -> bool {
        self.linger_marker().exists()
    }

    /// Forgets the linger marker (call with the state lock held): the default bridge is in use
    /// again or deleted.
    pub(super) fn clear_linger(&self) {
        let _ = std::fs::remove_file(self.linger_marker());
    }

    /// Releases a container's endpoints on every network: ports unpublished, addresses and
    /// DNS names free (the DNS server has reloaded when this returns), veths set down. The
    /// veths and an idle default bridge are left to [`Networks::finish_release`].
    pub fn release(&self, container_id: &str) -> Result<Released, NetError> {
        let (out, generation, dns) = {
            let lock = self.store.lock()?;
            let mut out = Released::default();
            let mut dns = false;
            let mut idle_default = None;
            for mut net in self.store.load_all()? {
                let Some(ep) = net.endpoints.remove(container_id) else {
                    continue;
                };
                bridge::set_down(&ep.host_ifname)?;
                self.store.save_endpoints(&net)?;
                if net.name == DEFAULT_NETWORK && net.endpoints.is_empty() {
                    // Deleted now rather than lingering in the background: a state root
                    // removed right after the command (tests, CI, a user's `rm -rf`) left the
                    // bridge, its subnet's route and its firewall table behind for good, and
                    // enough of those exhaust the default address pools.
                    idle_default = Some(net.bridge.clone());
                }
                dns |= net.dns;
                out.veths.push(ep.host_ifname);
            }
            if out.veths.is_empty() {
                return Ok(out);
            }
            self.apply_firewall_with(&lock, true)?;
            if let Some(br) = idle_default {
                self.delete_released_ports(&br)?;
                bridge::delete_link(&br)?;
            }
            let generation = bump_generation(self.store.dir())?;
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
    /// with the container's namespace), then, after [`DEFAULT_BRIDGE_LINGER`], the default
    /// bridge if it stayed idle all that time. Slow (RCU waits, the linger): run it where
    /// nobody waits for it.
    pub fn finish_release(&self, released: &Released) {
        for veth in &released.veths {
            if let Err(e) = bridge::delete_link(veth) {
                tracing::warn!("deleting {veth}: {e}");
            }
        }
        if let Some(token) = &released.idle_default {
            std::thread::sleep(DEFAULT_BRIDGE_LINGER);
            if let Err(e) = self.reap_default(Some(token)) {
                tracing::warn!("deleting the idle default bridge: {e}");
            }
        }
    }

    /// Deletes the default bridge now if it has no containers (stop, rm, down: nothing of an
    /// idle default network is left behind when they return).
    pub fn reap_idle_default(&self) -> Result<(), NetError> {
        self.reap_default(None)
    }

    /// With a token: only if the linger marker still holds it (no container attached since).
    fn reap_default(&self, token: Option<&str>) -> Result<(), NetError> {
        let lock = self.store.lock()?;
        let marker = std::fs::read_to_string(self.linger_marker()).ok();
        if marker.is_none() || token.is_some_and(|t| marker.as_deref() != Some(t)) {
            return Ok(());
        }
        let Some(net) = self.store.load(DEFAULT_NETWORK)? else {
            self.clear_linger();
            return Ok(());
        };
        if !net.endpoints.is_empty() {
            self.clear_linger();
            return Ok(());
        }
        self.clear_linger();
        self.apply_firewall(&lock)?;
        self.delete_released_ports(&net.bridge)?;
        bridge::delete_link(&net.bridge)?;
        Ok(())
    }

    /// Deletes what is still plugged into `bridge_name`: veths of released containers whose
    /// deletion is still on its way (call when no endpoint is left on the network).
    pub(super) fn delete_released_ports(&self, bridge_name: &str) -> Result<(), NetError> {
        for port in bridge::ports_of(bridge_name)? {
            bridge::delete_link(&port)?;
        }
        Ok(())
    }
}
