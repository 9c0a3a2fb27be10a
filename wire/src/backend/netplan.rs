//! A service's networking as decided at create time (networks with aliases and addresses,
//! published ports, DNS settings, extra hosts), kept in a label on the container so that every
//! later start attaches the same way; and the calls into the networking crate that apply it.

//! The plan type and its application live in `crate::netwire`, shared with plain containers.

use std::net::Ipv4Addr;

use crate::netwire::{Ctx, NetwireError, Result, invalid};
use rcompose_compose::labels::{network_name, object_labels};
use rcompose_compose::model::{Network, Project, Service};
use rcompose_net::CreateRequest;

pub use crate::netwire::{Endpoint, LABEL, NetPlan, attach, from_labels};

/// The plan for a new container of `svc`.
pub fn plan(project: &Project, svc: &Service, _container: &str) -> Result<NetPlan> {
    let mut out = NetPlan {
        dns: svc.dns.clone(),
        dns_search: svc.dns_search.clone(),
        dns_options: svc.dns_opt.clone(),
        exposed: svc.expose.clone(),
        ..Default::default()
    };
    for h in &svc.extra_hosts {
        let (name, ip) = h.split_once('=').or_else(|| h.split_once(':')).ctx(|| {
            format!(
                "service \"{}\": extra_hosts entry {h:?} is not host=ip",
                svc.name
            )
        })?;
        out.extra_hosts
            .push((name.to_string(), ip.trim_matches(['[', ']']).to_string()));
    }
    match svc.network_mode.as_deref() {
        Some("host") => {
            if !svc.ports.is_empty() {
                // docker discards them with this warning; compose passes it on.
                tracing::warn!(
                    "service \"{}\": published ports are discarded when using host network mode",
                    svc.name
                );
            }
            return Ok(out);
        }
        Some("none") => {
            if !svc.ports.is_empty() {
                invalid!(
                    "service \"{}\": ports cannot be published with network_mode none; remove ports or the network_mode",
                    svc.name
                );
            }
            return Ok(out);
        }
        // Joins another container's namespace: nothing to attach (the backend resolves the
        // container at create time; the loader refused ports, dns and the like for it).
        Some(m) if m.starts_with("service:") || m.starts_with("container:") => return Ok(out),
        Some(m) if m != "bridge" && m != "default" => invalid!(
            "service \"{}\": network_mode {m} is not supported; use networks: instead",
            svc.name
        ),
        _ => {}
    }
    let mut nets: Vec<(&String, i64)> = svc
        .networks
        .iter()
        .map(|(k, v)| {
            let prio = v
                .as_ref()
                .and_then(|n| n.priority.or(n.gw_priority))
                .unwrap_or(0);
            (k, prio)
        })
        .collect();
    // Higher priority first (compose connects in that order); ties by name.
    nets.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    for (i, (key, _)) in nets.into_iter().enumerate() {
        let cfg = svc.networks[key].clone().unwrap_or_default();
        let mut aliases = vec![svc.name.clone()];
        aliases.extend(cfg.aliases.iter().cloned());
        // The service's mac_address goes to its primary (first) network, as compose does.
        let mac = cfg
            .mac_address
            .clone()
            .or_else(|| (i == 0).then(|| svc.mac_address.clone()).flatten());
        out.networks.push(Endpoint {
            network: network_name(project, key),
            aliases,
            ipv4: cfg.ipv4_address.clone(),
            ipv6: cfg.ipv6_address.clone(),
            mac: checked_mac(svc, mac)?,
        });
    }
    // docker's default bridge (no names there, as in docker: aliases would be refused).
    if matches!(svc.network_mode.as_deref(), Some("bridge" | "default")) && out.networks.is_empty()
    {
        out.networks.push(Endpoint {
            network: "bridge".into(),
            aliases: vec![],
            ipv4: None,
            ipv6: None,
            mac: checked_mac(svc, svc.mac_address.clone())?,
        });
    }
    for p in &svc.ports {
        let mut spec = String::new();
        match &p.host_ip {
            // An IPv6 host address goes in brackets, as docker's -p writes it.
            Some(ip) if ip.contains(':') => spec.push_str(&format!(
                "[{}]:",
                ip.trim_start_matches('[').trim_end_matches(']')
            )),
            Some(ip) => spec.push_str(&format!("{ip}:")),
            None => {}
        }
        match &p.published {
            Some(pubd) => spec.push_str(&format!("{pubd}:")),
            None if p.host_ip.is_some() => spec.push(':'),
            None => {}
        }
        spec.push_str(&format!("{}/{}", p.target, p.protocol));
        out.ports.push(spec);
    }
    if !out.ports.is_empty() && out.networks.is_empty() {
        invalid!(
            "service \"{}\": ports need a network; add the service to one",
            svc.name
        );
    }
    Ok(out)
}

/// A valid unicast MAC, in lower case, or an error naming the service.
fn checked_mac(svc: &Service, mac: Option<String>) -> Result<Option<String>> {
    mac.map(|m| {
        rcompose_net::mode::parse_mac_address(&m).map_err(|e| {
            NetwireError::Invalid(format!("service \"{}\": mac_address: {e}", svc.name))
        })
    })
    .transpose()
}

/// The first container (lowest number, not a one-off) of `service` in `project`.
pub fn first_container(
    store: &rcompose_engine::container::ContainerStore,
    project: &str,
    service: &str,
) -> Result<
    Option<rcompose_engine::container::ContainerConfig>,
    rcompose_engine::container::ContainerError,
> {
    use rcompose_compose::labels as l;
    Ok(store
        .list()?
        .into_iter()
        .filter(|c| {
            c.labels.get(l::PROJECT).map(String::as_str) == Some(project)
                && c.labels.get(l::SERVICE).map(String::as_str) == Some(service)
                && c.labels.get(l::ONEOFF).map(String::as_str) != Some("True")
        })
        .min_by_key(|c| {
            c.labels
                .get(l::CONTAINER_NUMBER)
                .and_then(|n| n.parse::<u32>().ok())
                .unwrap_or(u32::MAX)
        }))
}

/// `svc` ready to be created: `network_mode: service:x` becomes `container:<id>` of x's
/// first container (lowest number), so that the config hash written on the container names
/// what it joins (see `reconcile::with_joined_container`). Fails, naming the service, when x
/// has no container.
pub fn resolve_service(
    store: &rcompose_engine::container::ContainerStore,
    project: &Project,
    svc: &Service,
) -> Result<Service> {
    let Some(target) = rcompose_compose::reconcile::namespace_service(svc) else {
        return Ok(svc.clone());
    };
    if !project.services.contains_key(target) {
        invalid!(
            "service \"{}\": network_mode service:{target} refers to an undefined service",
            svc.name
        );
    }
    let first = first_container(store, &project.name, target)?.ctx(|| {
            format!(
                "service \"{}\": network_mode service:{target}: service {target} has no container; start it first",
                svc.name
            )
        })?;
    Ok(rcompose_compose::reconcile::with_joined_container(
        svc, &first.id,
    ))
}

/// `network_mode: container:<name>` pinned to that container's full id, in every service,
/// before planning: the config hash then names the container whose namespace is joined, so
/// the service is recreated when that container is replaced (as for `service:x`). A name
/// that matches no container is left as written; creating the service reports it.
pub fn pin_joined_containers(
    store: &rcompose_engine::container::ContainerStore,
    project: &mut Project,
) {
    for svc in project.services.values_mut() {
        let Some(target) = svc
            .network_mode
            .as_deref()
            .and_then(|m| m.strip_prefix("container:"))
        else {
            continue;
        };
        if let Ok(c) = store.resolve(target)
            && c.id != target
        {
            svc.network_mode = Some(format!("container:{}", c.id));
        }
    }
}

/// `network create` parameters for a compose network.
pub fn create_request(
    project: &Project,
    key: &str,
    name: &str,
    net: &Network,
) -> Result<CreateRequest> {
    if let Some(d) = net.driver.as_deref()
        && d != "bridge"
    {
        invalid!("network {key}: driver {d} is not supported (only bridge)");
    }
    // One IPv4 pool and, with enable_ipv6, one IPv6 pool, in either order.
    let is_v6 = |p: &&rcompose_compose::model::IpamPool| {
        p.subnet.as_deref().is_some_and(|s| s.contains(':'))
    };
    let pool = net.ipam.config.iter().find(|p| !is_v6(p));
    let pool6 = net.ipam.config.iter().find(is_v6);
    let cidr_err = |what: &str, s: &str| {
        NetwireError::Invalid(format!(
            "network {key}: ipam {what} {s:?} is not an IPv4 CIDR such as 172.28.0.0/16"
        ))
    };
    let ipv6 = net.enable_ipv6.unwrap_or(false);
    if pool6.is_some() && !ipv6 {
        invalid!("network {key}: an IPv6 ipam subnet needs enable_ipv6: true");
    }
    let mut req = CreateRequest {
        name: name.to_string(),
        ipv6,
        internal: net.internal,
        attachable: net.attachable,
        labels: object_labels(project, rcompose_compose::labels::NETWORK, key, &net.labels),
        options: net.driver_opts.clone(),
        ..Default::default()
    };
    if let Some(s) = pool.and_then(|p| p.subnet.as_ref()) {
        req.subnet = Some(s.parse().map_err(|_| cidr_err("subnet", s))?);
    }
    if let Some(s) = pool.and_then(|p| p.ip_range.as_ref()) {
        req.ip_range = Some(s.parse().map_err(|_| cidr_err("ip_range", s))?);
    }
    if let Some(p) = pool6 {
        let s = p.subnet.as_deref().unwrap_or_default();
        req.subnet6 = Some(s.parse().map_err(|_| {
            NetwireError::Invalid(format!(
                "network {key}: ipam subnet {s:?} is not an IPv6 CIDR such as fd00:1::/64"
            ))
        })?);
        if let Some(g) = &p.gateway {
            req.gateway6 = Some(
                g.parse::<std::net::Ipv6Addr>()
                    .ctx(|| format!("network {key}: gateway {g:?} is not an IPv6 address"))?,
            );
        }
    }
    if let Some(g) = pool.and_then(|p| p.gateway.as_ref()) {
        req.gateway = Some(
            g.parse::<Ipv4Addr>()
                .ctx(|| format!("network {key}: gateway {g:?} is not an IPv4 address"))?,
        );
    }
    Ok(req)
}

/// The container's addresses (in plan order) when it is still attached to every network of
/// the plan through its current namespace — attached at create time and not started yet — so
/// that the start need not attach again.
pub fn live_ips(
    nets: &rcompose_net::Networks,
    store: &rcompose_engine::container::ContainerStore,
    id: &str,
    plan: &NetPlan,
) -> Option<Vec<Ipv4Addr>> {
    use std::os::unix::fs::MetadataExt;
    let ns = store.netns_path(id);
    if !rcompose_engine::rootfs::is_mountpoint(&ns) {
        return None;
    }
    let ino = std::fs::metadata(&ns).ok()?.ino();
    let all = nets.list().ok()?;
    plan.networks
        .iter()
        .map(|ep| {
            let net = all.iter().find(|n| n.name == ep.network)?;
            let e = net.endpoints.get(id)?;
            (e.netns_ino == ino && e.netns_ino != 0).then_some(e.ip)
        })
        .collect()
}
