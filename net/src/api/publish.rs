//! Published ports of a root's containers: checked before a create, DNAT rules kept in line
//! with every endpoint's ports (`rcompose port`, `-p`, `-P`).

use super::{NetError, Networks};
use crate::ports::{self, PortBinding, PortSpec};

impl Networks {
    /// Every published port of this root, with the container holding it.
    pub(super) fn published(&self) -> Result<Vec<(String, PortBinding)>, NetError> {
        Ok(self
            .store
            .load_all()?
            .iter()
            .flat_map(|n| n.endpoints.values())
            .flat_map(|e| e.ports.iter().map(|p| (e.container_name.clone(), *p)))
            .collect())
    }

    /// Checks requested ports against published ones and the host, without reserving anything:
    /// call it before creating a container so a conflict fails early and cleanly.
    pub fn check_ports(&self, specs: &[PortSpec]) -> Result<Vec<PortBinding>, NetError> {
        let _lock = self.store.lock()?;
        Ok(ports::resolve(specs, &self.published()?)?)
    }

    /// Publishes ports of a container attached to `network` (DNAT to its address there).
    pub fn publish_ports(
        &self,
        network: &str,
        container_id: &str,
        specs: &[PortSpec],
    ) -> Result<Vec<PortBinding>, NetError> {
        let lock = self.store.lock()?;
        let mut net = self.find(&lock, network)?;
        let bindings = ports::resolve(specs, &self.published()?)?;
        let Some(ep) = net.endpoints.get_mut(container_id) else {
            return Err(NetError::NotAttached {
                container: container_id.to_string(),
                network: net.name,
            });
        };
        if let Some(b) = bindings
            .iter()
            .find(|b| b.proto == ports::Proto::Udp && super::proxy_spec(b, ep.ip, ep.ip6).is_some())
        {
            return Err(NetError::UdpNeedsProxy(std::net::SocketAddr::new(
                b.host_ip,
                b.host_port,
            )));
        }
        let before = ep.ports.clone();
        ep.ports.extend(bindings.iter().copied());
        self.store.save_endpoints(&net)?;
        if let Err(e) = self.apply_firewall(&lock) {
            if let Some(ep) = net.endpoints.get_mut(container_id) {
                ep.ports = before;
            }
            let _ = self.store.save_endpoints(&net);
            return Err(e);
        }
        Ok(bindings)
    }

    /// Removes every published port of a container.
    pub fn unpublish(&self, container_id: &str) -> Result<(), NetError> {
        let lock = self.store.lock()?;
        let mut changed = false;
        for mut net in self.store.load_all()? {
            if let Some(ep) = net.endpoints.get_mut(container_id)
                && !ep.ports.is_empty()
            {
                ep.ports.clear();
                self.store.save_endpoints(&net)?;
                changed = true;
            }
        }
        if changed {
            self.apply_firewall(&lock)?;
        }
        Ok(())
    }

    /// `rcompose port`: the published ports of a container.
    pub fn ports_of(&self, container_id: &str) -> Result<Vec<PortBinding>, NetError> {
        let _lock = self.store.lock()?;
        let mut out: Vec<PortBinding> = self
            .store
            .load_all()?
            .iter()
            .filter_map(|n| n.endpoints.get(container_id))
            .flat_map(|e| e.ports.iter().copied())
            .collect();
        out.sort();
        Ok(out)
    }
}
