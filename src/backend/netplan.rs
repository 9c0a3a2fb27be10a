//! A service's networking as decided at create time (networks with aliases and addresses,
//! published ports, DNS settings, extra hosts), kept in a label on the container so that every
//! later start attaches the same way; and the calls into the networking crate that apply it.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use anyhow::{Context, Result, bail};
use rcompose_compose::model::{Network, Project, Service};
use rcompose_compose::reconcile::{network_name, object_labels};
use rcompose_engine::container::{ContainerConfig, ContainerStore};
use rcompose_net::{AttachRequest, Attachment, CreateRequest, HostsRequest, Networks};
use serde::{Deserialize, Serialize};

/// Label holding the container's [`NetPlan`] as JSON.
pub const LABEL: &str = "io.rcompose.network-plan";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NetPlan {
    pub networks: Vec<Endpoint>,
    /// docker `-p` syntax, one entry per port.
    pub ports: Vec<String>,
    pub dns: Vec<String>,
    pub dns_search: Vec<String>,
    /// `(name, ip)`.
    pub extra_hosts: Vec<(String, String)>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Endpoint {
    pub network: String,
    pub aliases: Vec<String>,
    pub ipv4: Option<String>,
}

/// The plan for a new container of `svc`.
pub fn plan(project: &Project, svc: &Service, _container: &str) -> Result<NetPlan> {
    let mut out = NetPlan {
        dns: svc.dns.clone(),
        dns_search: svc.dns_search.clone(),
        ..Default::default()
    };
    for h in &svc.extra_hosts {
        let (name, ip) = h
            .split_once('=')
            .or_else(|| h.split_once(':'))
            .with_context(|| {
                format!(
                    "service \"{}\": extra_hosts entry {h:?} is not host=ip",
                    svc.name
                )
            })?;
        out.extra_hosts
            .push((name.to_string(), ip.trim_matches(['[', ']']).to_string()));
    }
    match svc.network_mode.as_deref() {
        Some("none") | Some("host") => return Ok(out),
        Some(m) if m.starts_with("service:") || m.starts_with("container:") => bail!(
            "service \"{}\": network_mode {m} is not supported yet (joining another container's network namespace)",
            svc.name
        ),
        Some(m) if m != "bridge" && m != "default" => bail!(
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
    for (key, _) in nets {
        let cfg = svc.networks[key].clone().unwrap_or_default();
        let mut aliases = vec![svc.name.clone()];
        aliases.extend(cfg.aliases.iter().cloned());
        out.networks.push(Endpoint {
            network: network_name(project, key),
            aliases,
            ipv4: cfg.ipv4_address.clone(),
        });
    }
    for p in &svc.ports {
        if p.host_ip.as_deref().is_some_and(|ip| ip.contains(':')) {
            tracing::warn!(
                "service \"{}\": IPv6 published port {} ignored",
                svc.name,
                p.target
            );
            continue;
        }
        let mut spec = String::new();
        if let Some(ip) = &p.host_ip {
            spec.push_str(&format!("{ip}:"));
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
        bail!(
            "service \"{}\": ports need a network (network_mode none/host publishes nothing)",
            svc.name
        );
    }
    Ok(out)
}

pub fn from_labels(labels: &BTreeMap<String, String>) -> Option<NetPlan> {
    labels.get(LABEL).and_then(|s| serde_json::from_str(s).ok())
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
        bail!("network {key}: driver {d} is not supported (only bridge)");
    }
    let pool = net.ipam.config.first();
    let cidr_err = |what: &str, s: &str| {
        anyhow::anyhow!(
            "network {key}: ipam {what} {s:?} is not an IPv4 CIDR such as 172.28.0.0/16"
        )
    };
    let mut req = CreateRequest {
        name: name.to_string(),
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
    if let Some(g) = pool.and_then(|p| p.gateway.as_ref()) {
        req.gateway = Some(
            g.parse::<Ipv4Addr>()
                .with_context(|| format!("network {key}: gateway {g:?} is not an IPv4 address"))?,
        );
    }
    Ok(req)
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
        .with_context(|| format!("container {}: network namespace", cfg.name))?;
    let res = (|| {
        let mut out = vec![];
        for ep in &plan.networks {
            let ip = ep
                .ipv4
                .as_ref()
                .map(|s| {
                    s.parse::<Ipv4Addr>()
                        .with_context(|| format!("ipv4_address {s:?}"))
                })
                .transpose()?;
            let att = nets
                .attach(
                    &ep.network,
                    AttachRequest {
                        container_id: cfg.id.clone(),
                        container_name: cfg.name.clone(),
                        netns_path: ns.clone(),
                        aliases: ep.aliases.clone(),
                        ip,
                        mac: None,
                    },
                )
                .with_context(|| {
                    format!(
                        "container {}: attaching to network {}",
                        cfg.name, ep.network
                    )
                })?;
            out.push(att);
        }
        if !plan.ports.is_empty()
            && let Some(first) = plan.networks.first()
        {
            let mut specs = vec![];
            for p in &plan.ports {
                specs.extend(
                    rcompose_net::ports::parse(p)
                        .map_err(|e| anyhow::anyhow!("container {}: port {p}: {e}", cfg.name))?,
                );
            }
            nets.publish_ports(&first.network, &cfg.id, &specs)
                .with_context(|| format!("container {}: publishing ports", cfg.name))?;
        }
        Ok(out)
    })();
    if res.is_err() {
        let _ = nets.unpublish(&cfg.id);
        let _ = nets.detach_all(&cfg.id);
    }
    res
}

/// Rewrites the started container's /etc/resolv.conf and /etc/hosts in place (they are bind
/// mounts of these files, so the container sees the new content).
pub fn write_etc_files(
    nets: &Networks,
    store: &ContainerStore,
    cfg: &ContainerConfig,
    plan: &NetPlan,
    attached: &[Attachment],
) -> Result<()> {
    let run_dir = store.run_dir(&cfg.id);
    let names: Vec<String> = plan.networks.iter().map(|e| e.network.clone()).collect();
    let dns: Vec<IpAddr> = plan.dns.iter().filter_map(|d| d.parse().ok()).collect();
    let resolv = nets.resolv_conf_for(&names, &dns, &plan.dns_search, &[])?;
    rewrite_in_place(&run_dir.join("resolv.conf"), resolv.as_bytes())?;
    let hosts = nets.hosts_file_for(&HostsRequest {
        hostname: cfg.hostname.clone(),
        ips: attached.iter().map(|a| a.ip).collect(),
        extra_hosts: plan
            .extra_hosts
            .iter()
            .filter_map(|(n, ip)| ip.parse().ok().map(|ip| (n.clone(), ip)))
            .collect(),
        links: vec![],
    });
    rewrite_in_place(&run_dir.join("hosts"), hosts.as_bytes())?;
    Ok(())
}

fn rewrite_in_place(path: &Path, data: &[u8]) -> Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    f.write_all(data)
        .with_context(|| format!("writing {}", path.display()))
}
