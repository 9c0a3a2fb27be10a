//! Networking of existing containers: `network connect/disconnect` (live on running ones, the
//! plan label updated either way), `container port`, and the NetworkSettings of inspect.

use std::net::Ipv4Addr;

use super::{NetwireError, Result};
use rcompose_engine::container::model::Status;
use rcompose_engine::container::{ContainerConfig, Containers};
use rcompose_net::{Networks, PortBinding};
use serde_json::{Map, Value, json};

use super::{Endpoint, LABEL, NetPlan, attach_one, from_labels, write_etc_files_for};

fn is_running(eng: &Containers, id: &str) -> bool {
    eng.observe(id).is_ok_and(|s| {
        matches!(
            s.status,
            Status::Running | Status::Paused | Status::Restarting
        )
    })
}

fn save_plan(eng: &Containers, cfg: &mut ContainerConfig, plan: &NetPlan) -> Result<()> {
    cfg.labels
        .insert(LABEL.to_string(), serde_json::to_string(plan)?);
    eng.store.save_config(cfg)?;
    Ok(())
}

fn refresh_etc(
    eng: &Containers,
    nets: &Networks,
    cfg: &ContainerConfig,
    plan: &NetPlan,
) -> Result<()> {
    let ips: Vec<Ipv4Addr> = plan
        .networks
        .iter()
        .filter_map(|ep| {
            nets.get(&ep.network)
                .ok()
                .and_then(|n| n.endpoints.get(&cfg.id).map(|e| e.ip))
        })
        .collect();
    write_etc_files_for(nets, &eng.store, cfg, plan, &ips)
}

/// `network connect [--alias] [--ip] NET CTR`.
pub fn connect(
    eng: &Containers,
    nets: &Networks,
    container: &str,
    network: &str,
    aliases: &[String],
    ip: Option<&str>,
    ip6: Option<&str>,
) -> Result<()> {
    let mut cfg = eng.store.resolve(container)?;
    let mode = cfg.host.network_mode.as_str();
    if mode == "host" || mode == "none" || mode.starts_with("container:") {
        invalid!(
            "container {} uses --network {mode}: it cannot be connected to other networks",
            cfg.name
        );
    }
    let net = nets.get(network)?;
    let mut plan = from_labels(&cfg.labels).unwrap_or_default();
    if plan.networks.iter().any(|e| e.network == net.name) {
        invalid!(
            "endpoint with name {} already exists in network {}",
            cfg.name,
            net.name
        );
    }
    if !aliases.is_empty() && !net.dns {
        invalid!(
            "network-scoped aliases are only supported for user-defined networks ({} has no DNS)",
            net.name
        );
    }
    let ep = Endpoint {
        network: net.name.clone(),
        aliases: aliases.to_vec(),
        ipv4: ip.map(str::to_string),
        ipv6: ip6.map(str::to_string),
        mac: None,
    };
    if net.endpoints.contains_key(&cfg.id) {
        // A connect killed between attaching and saving the plan: the network holds an
        // endpoint the container does not know. Release it and attach afresh.
        match nets.detach(&net.name, &cfg.id) {
            Ok(()) | Err(rcompose_net::NetError::NotAttached { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    if is_running(eng, &cfg.id) {
        attach_one(nets, &eng.store, &cfg, &ep)?;
    }
    plan.networks.push(ep);
    if let Err(e) = save_plan(eng, &mut cfg, &plan) {
        let _ = nets.detach(&net.name, &cfg.id);
        return Err(e);
    }
    if is_running(eng, &cfg.id) {
        refresh_etc(eng, nets, &cfg, &plan)?;
    }
    Ok(())
}

/// `network disconnect NET CTR`.
pub fn disconnect(eng: &Containers, nets: &Networks, container: &str, network: &str) -> Result<()> {
    let mut cfg = eng.store.resolve(container)?;
    let net = nets.get(network).ok();
    let name = net
        .as_ref()
        .map(|n| n.name.clone())
        .unwrap_or_else(|| network.to_string());
    let mut plan = from_labels(&cfg.labels).unwrap_or_default();
    let before = plan.networks.len();
    plan.networks.retain(|e| e.network != name);
    if plan.networks.len() == before {
        // Only the network knows the endpoint (a connect killed half-way): release it.
        if net.is_some_and(|n| n.endpoints.contains_key(&cfg.id)) {
            match nets.detach(&name, &cfg.id) {
                Ok(()) | Err(rcompose_net::NetError::NotAttached { .. }) => return Ok(()),
                Err(e) => return Err(e.into()),
            }
        }
        invalid!("container {} is not connected to network {name}", cfg.name);
    }
    match nets.detach(&name, &cfg.id) {
        Ok(()) | Err(rcompose_net::NetError::NotAttached { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    save_plan(eng, &mut cfg, &plan)?;
    if plan.networks.is_empty() {
        // Nothing of ours left to write: the engine generates /etc files again.
        let _ = std::fs::remove_file(eng.store.run_dir(&cfg.id).join(super::ETC_MARKER));
    } else if is_running(eng, &cfg.id) {
        refresh_etc(eng, nets, &cfg, &plan)?;
    }
    Ok(())
}

/// The published ports of a container (only while it runs: they are torn down on stop).
pub fn ports(nets: &Networks, id: &str) -> Vec<PortBinding> {
    nets.ports_of(id).unwrap_or_default()
}

/// docker ps's PORTS cell: `127.0.0.1:8080->80/tcp, 0.0.0.0:9000->9000/udp`.
pub fn ports_cell(ports: &[PortBinding]) -> String {
    ports
        .iter()
        .map(|p| {
            format!(
                "{}:{}->{}/{}",
                p.host_ip, p.host_port, p.container_port, p.proto
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Fills the networking parts of a container's inspect JSON: NetworkSettings, and the
/// HostConfig fields docker reports from the create flags (PortBindings, Dns, ExtraHosts, …).
pub fn patch_inspect(
    nets: &Networks,
    store: &rcompose_engine::container::ContainerStore,
    cfg: &ContainerConfig,
    v: &mut Value,
) {
    v["NetworkSettings"] = network_settings(nets, cfg, &store.netns_path(&cfg.id));
    let plan = from_labels(&cfg.labels).unwrap_or_default();
    let mut bindings = Map::new();
    for spec in &plan.ports {
        for s in rcompose_net::ports::parse(spec).unwrap_or_default() {
            let host_ip = if s.host_ip.is_unspecified() {
                String::new()
            } else {
                s.host_ip.to_string()
            };
            let entry = bindings
                .entry(format!("{}/{}", s.container_port, s.proto))
                .or_insert_with(|| json!([]));
            if let Some(a) = entry.as_array_mut() {
                a.push(json!({
                    "HostIp": host_ip,
                    "HostPort": s.host_port.map(|p| p.to_string()).unwrap_or_default(),
                }));
            }
        }
    }
    // Config.ExposedPorts: the image's, --expose / compose `expose`, and what is published.
    let mut exposed: Map<String, Value> = rcompose_engine::store::Store::open(&store.root)
        .ok()
        .and_then(|s| s.resolve(&cfg.image_id).ok())
        .and_then(|rec| {
            rec.config_json["config"]["ExposedPorts"]
                .as_object()
                .cloned()
        })
        .unwrap_or_default();
    for spec in plan.exposed.iter().chain(&plan.ports) {
        for s in rcompose_net::ports::parse(spec).unwrap_or_default() {
            exposed.insert(format!("{}/{}", s.container_port, s.proto), json!({}));
        }
    }
    if !exposed.is_empty() && v["Config"].is_object() {
        v["Config"]["ExposedPorts"] = Value::Object(exposed);
    }
    let host = &mut v["HostConfig"];
    if host.is_object() {
        host["PortBindings"] = Value::Object(bindings);
        host["Dns"] = json!(plan.dns);
        host["DnsSearch"] = json!(plan.dns_search);
        host["DnsOptions"] = json!(plan.dns_options);
        host["ExtraHosts"] = json!(
            plan.extra_hosts
                .iter()
                .map(|(n, ip)| format!("{n}:{ip}"))
                .collect::<Vec<_>>()
        );
        host["Links"] = json!(
            plan.links
                .iter()
                .filter_map(|(id, alias)| store.load_config(id).ok().map(|o| (o.name, alias)))
                .map(|(other, alias)| format!("/{other}:/{}/{alias}", cfg.name))
                .collect::<Vec<_>>()
        );
    }
}

/// Fills ps's Ports and Networks cells of a row.
pub fn ps_columns(nets: &Networks, cfg: &ContainerConfig, row: &mut Value) {
    row["Ports"] = json!(ports_cell(&ports(nets, &cfg.id)));
    if let Some(plan) = from_labels(&cfg.labels).filter(|p| !p.networks.is_empty()) {
        let names: Vec<&str> = plan.networks.iter().map(|e| e.network.as_str()).collect();
        row["Networks"] = json!(names.join(","));
    }
}

/// docker inspect's NetworkSettings for a container.
pub fn network_settings(nets: &Networks, cfg: &ContainerConfig, netns: &std::path::Path) -> Value {
    let mut networks = Map::new();
    let (mut ip, mut gw, mut mac, mut prefix) = (String::new(), String::new(), String::new(), 0);
    let plan = from_labels(&cfg.labels).unwrap_or_default();
    for ep in &plan.networks {
        let Ok(n) = nets.get(&ep.network) else {
            continue;
        };
        let live = n.endpoints.get(&cfg.id);
        let (eip, emac, eid) = match live {
            Some(e) => (e.ip.to_string(), e.mac.clone(), e.endpoint_id.clone()),
            None => (String::new(), String::new(), String::new()),
        };
        let (egw, eprefix) = if live.is_some() {
            (n.gateway.to_string(), n.subnet.prefix_len())
        } else {
            (String::new(), 0)
        };
        let (eip6, egw6, eprefix6) = match (live.and_then(|e| e.ip6), n.ipv6) {
            (Some(a), Some(p)) => (a.to_string(), p.gateway.to_string(), p.subnet.prefix_len()),
            _ => (String::new(), String::new(), 0),
        };
        if n.name == "bridge" {
            (ip, gw, mac, prefix) = (eip.clone(), egw.clone(), emac.clone(), eprefix);
        }
        let aliases: Value = if n.dns {
            json!(ep.aliases)
        } else {
            Value::Null
        };
        networks.insert(
            n.name.clone(),
            json!({
                "IPAMConfig": match (&ep.ipv4, &ep.ipv6) {
                    (None, None) => Value::Null,
                    (v4, v6) => json!({"IPv4Address": v4.clone().unwrap_or_default(),
                        "IPv6Address": v6.clone().unwrap_or_default()}),
                },
                "Links": Value::Null,
                "Aliases": aliases,
                "MacAddress": emac,
                "NetworkID": n.id,
                "EndpointID": eid,
                "Gateway": egw,
                "IPAddress": eip,
                "IPPrefixLen": eprefix,
                "IPv6Gateway": egw6,
                "GlobalIPv6Address": eip6,
                "GlobalIPv6PrefixLen": eprefix6,
                "DriverOpts": Value::Null,
                "DNSNames": if n.dns && live.is_some() {
                    let mut d = vec![cfg.name.clone(), cfg.id[..12].to_string()];
                    d.extend(ep.aliases.iter().cloned());
                    json!(d)
                } else { Value::Null },
            }),
        );
    }
    let mode = cfg.host.network_mode.as_str();
    if mode == "host" || mode == "none" {
        // docker lists the pseudo network with every endpoint field, all empty.
        let id = nets.get(mode).map(|n| n.id).unwrap_or_default();
        networks.insert(
            mode.to_string(),
            json!({"IPAMConfig": Value::Null, "Links": Value::Null, "Aliases": Value::Null,
                   "NetworkID": id, "EndpointID": "", "Gateway": "", "IPAddress": "",
                   "IPPrefixLen": 0, "IPv6Gateway": "", "GlobalIPv6Address": "",
                   "GlobalIPv6PrefixLen": 0, "MacAddress": "", "DriverOpts": Value::Null}),
        );
    }
    let mut port_map = Map::new();
    for spec in &plan.ports {
        if let Ok(specs) = rcompose_net::ports::parse(spec) {
            for s in specs {
                port_map
                    .entry(format!("{}/{}", s.container_port, s.proto))
                    .or_insert(Value::Null);
            }
        }
    }
    for p in ports(nets, &cfg.id) {
        let key = format!("{}/{}", p.container_port, p.proto);
        let entry = port_map.entry(key).or_insert(Value::Null);
        if !entry.is_array() {
            *entry = json!([]);
        }
        if let Some(a) = entry.as_array_mut() {
            a.push(json!({"HostIp": p.host_ip.to_string(), "HostPort": p.host_port.to_string()}));
        }
    }
    json!({
        "Bridge": "",
        // Our sandbox is the container's own namespace, named by the container's id.
        "SandboxID": if mode == "host" { String::new() } else { cfg.id.clone() },
        "SecondaryIPAddresses": Value::Null,
        "SecondaryIPv6Addresses": Value::Null,
        "SandboxKey": if mode == "host" { String::new() } else { netns.display().to_string() },
        "Ports": port_map,
        "HairpinMode": false,
        "LinkLocalIPv6Address": "",
        "LinkLocalIPv6PrefixLen": 0,
        "EndpointID": "",
        "Gateway": gw,
        "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0,
        "IPAddress": ip,
        "IPPrefixLen": prefix,
        "IPv6Gateway": "",
        "MacAddress": mac,
        "Networks": networks,
    })
}

/// ps `--filter network=<name|id>` and `publish=<port>[-<end>][/<proto>]` (container ports, as
/// docker); None for filters that are not about networking.
pub fn ps_filter(nets: &Networks, cfg: &ContainerConfig, filter: &str) -> Option<Result<bool>> {
    let (k, v) = filter.split_once('=')?;
    let plan = from_labels(&cfg.labels).unwrap_or_default();
    match k {
        "network" => {
            let by_mode = cfg.host.network_mode == v;
            let wanted = nets
                .get(v)
                .map(|n| n.name)
                .unwrap_or_else(|_| v.to_string());
            Some(Ok(
                by_mode || plan.networks.iter().any(|e| e.network == wanted)
            ))
        }
        "publish" => {
            let (range, proto) = v.split_once('/').unwrap_or((v, ""));
            let (lo, hi) = range.split_once('-').unwrap_or((range, range));
            let (Ok(lo), Ok(hi)) = (lo.parse::<u16>(), hi.parse::<u16>()) else {
                return Some(Err(NetwireError::Invalid(format!(
                    "invalid filter publish={v}: use PORT[-END][/PROTO], e.g. 80/tcp"
                ))));
            };
            let hit = plan
                .ports
                .iter()
                .flat_map(|p| rcompose_net::ports::parse(p).unwrap_or_default())
                .any(|s| {
                    (lo..=hi).contains(&s.container_port)
                        && (proto.is_empty() || s.proto.to_string() == proto)
                });
            Some(Ok(hit))
        }
        _ => None,
    }
}
