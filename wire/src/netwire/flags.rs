//! The networking flags of `container run/create` (docker's) turned into the container's
//! network plan, checked against the current state so that a bad request creates nothing;
//! the legacy link variables; `EXPOSE`/`--expose` ports for `-P`.

use std::path::Path;

use super::{Ctx, NetwireError, Result};
use rcompose_engine::container::{Containers, CreateOptions};
use rcompose_engine::store::Store;
use rcompose_net::mode::NetworkAttachment;
use rcompose_net::{NetworkMode, Networks, Proto};

use super::{Endpoint, NetPlan};

/// docker run's networking flags as plain data (the CLI's clap flags convert into it);
/// `--network` itself is passed beside them.
#[derive(Debug, Clone, Default)]
pub struct RunNetworkFlags {
    pub publish: Vec<String>,
    pub publish_all: bool,
    pub expose: Vec<String>,
    pub network_alias: Vec<String>,
    pub ip: Option<String>,
    pub ip6: Option<String>,
    pub add_host: Vec<String>,
    pub dns: Vec<String>,
    pub dns_search: Vec<String>,
    pub dns_option: Vec<String>,
    pub link: Vec<String>,
    pub mac_address: Option<String>,
}

/// The `--network` values with the single-network flags (`--network-alias`, `--ip`,
/// `--mac-address`) applied to the first, as docker does; refuses a network named twice and
/// a mix of user-defined networks with bridge/host/none/container: modes.
fn attachments(networks: &[String], f: &RunNetworkFlags) -> Result<Vec<NetworkAttachment>> {
    let mut out: Vec<NetworkAttachment> = networks
        .iter()
        .map(|n| n.parse::<NetworkAttachment>())
        .collect::<Result<_, _>>()?;
    if out.is_empty() {
        out.push(NetworkAttachment {
            target: "bridge".into(),
            ..Default::default()
        });
    }
    let first = &mut out[0];
    if !f.network_alias.is_empty() {
        if !first.aliases.is_empty() {
            invalid!(
                "conflicting options: cannot specify both --network-alias and per-network alias"
            );
        }
        first.aliases = f.network_alias.clone();
    }
    if let Some(ip) = &f.ip {
        if first.ip.is_some() {
            invalid!("conflicting options: cannot specify both --ip and per-network IPv4 address");
        }
        first.ip = Some(
            ip.parse()
                .ctx(|| format!("invalid --ip {ip:?}: use an IPv4 address"))?,
        );
    }
    if let Some(ip) = &f.ip6 {
        if first.ip6.is_some() {
            invalid!("conflicting options: cannot specify both --ip6 and per-network IPv6 address");
        }
        first.ip6 = Some(
            ip.parse()
                .ctx(|| format!("invalid --ip6 {ip:?}: use an IPv6 address"))?,
        );
    }
    if let Some(mac) = &f.mac_address {
        if first.mac.is_some() {
            invalid!(
                "conflicting options: cannot specify both --mac-address and per-network MAC address"
            );
        }
        first.mac = Some(rcompose_net::mode::parse_mac_address(mac)?);
    }
    let mut seen = std::collections::BTreeSet::new();
    let (mut user, mut other) = (false, false);
    for a in &out {
        let mode: NetworkMode = a.target.parse()?;
        if !seen.insert(mode.to_string()) {
            invalid!("network {:?} is specified multiple times", a.target);
        }
        if mode.is_user_defined() {
            user = true;
        } else {
            other = true;
        }
    }
    if out.len() > 1 && other {
        if user {
            invalid!(
                "conflicting options: cannot attach both user-defined and non-user-defined network-modes"
            );
        }
        invalid!(
            "conflicting options: only one of bridge, host, none or container:<name|id> can be given with --network"
        );
    }
    Ok(out)
}

/// Builds the plan for a new container and checks it against the current state (networks
/// exist, linked containers run, ports free), so that a bad request creates nothing.
/// Returns the engine's network mode (`container:<full id>` for that mode, else the first
/// network) and the plan.
pub fn plan(
    eng: &Containers,
    nets: &Networks,
    networks: &[String],
    f: &RunNetworkFlags,
    exposed: &[(u16, Proto)],
    on_warning: &dyn Fn(&str),
) -> Result<(String, Option<NetPlan>)> {
    let wanted = attachments(networks, f)?;
    let network = wanted[0].target.as_str();
    let mode: NetworkMode = network.parse()?;
    let mut extra_hosts = vec![];
    for h in &f.add_host {
        let (name, ip) = h
            .split_once('=')
            .or_else(|| h.split_once(':'))
            .filter(|(n, ip)| !n.is_empty() && ip.parse::<std::net::IpAddr>().is_ok())
            .ctx(|| format!("invalid --add-host {h:?}: use name:ip, e.g. db:10.0.0.5"))?;
        extra_hosts.push((name.to_string(), ip.to_string()));
    }
    for d in &f.dns {
        d.parse::<std::net::IpAddr>()
            .ctx(|| format!("invalid --dns {d:?}: use an IP address"))?;
    }
    if mode.network_name().is_none() {
        let first = &wanted[0];
        let what = match &mode {
            NetworkMode::Host => "host",
            NetworkMode::None => "none",
            _ => "container",
        };
        let conflicting = [
            (!f.publish.is_empty() || f.publish_all, "-p/--publish"),
            (!first.aliases.is_empty(), "--network-alias"),
            (first.ip.is_some(), "--ip"),
            (first.ip6.is_some(), "--ip6"),
            (first.mac.is_some(), "--mac-address"),
            (!f.link.is_empty(), "--link"),
        ];
        for (set, flag) in conflicting {
            // docker ignores published ports in host mode with a warning; the rest are errors.
            if set && !(what == "host" && flag == "-p/--publish") {
                invalid!("conflicting options: {flag} and --network {network}");
            }
        }
        if what == "host" && (!f.publish.is_empty() || f.publish_all) {
            on_warning("Published ports are discarded when using host network mode");
        }
        if what == "container" && (!f.dns.is_empty() || !f.add_host.is_empty()) {
            invalid!("conflicting options: --dns/--add-host and --network {network}");
        }
        if let NetworkMode::Container(other) = &mode {
            let o = eng
                .store
                .resolve(other)
                .ctx(|| format!("--network {network}: no such container: {other}"))?;
            return Ok((format!("container:{}", o.id), None));
        }
        return Ok((network.to_string(), None));
    }
    let mut endpoints = vec![];
    for a in &wanted {
        let net = nets.get(&a.target)?;
        if !a.aliases.is_empty() && !net.dns {
            invalid!("network-scoped aliases are only supported for user-defined networks");
        }
        if (a.ip.is_some() || a.ip6.is_some()) && net.name == "bridge" {
            invalid!("user specified IP address is supported on user defined networks only");
        }
        if a.ip6.is_some() && net.ipv6.is_none() {
            invalid!(
                "--ip6: network {} has no IPv6: create it with --ipv6 (and an IPv6 --subnet)",
                net.name
            );
        }
        // Checked again when attaching; here so that a conflict creates nothing.
        if let Some(mac) = &a.mac
            && let Some(e) = net
                .endpoints
                .values()
                .find(|e| e.mac.eq_ignore_ascii_case(mac))
        {
            invalid!(
                "MAC address {mac} is already in use on network {} (by {})",
                net.name,
                e.container_name
            );
        }
        endpoints.push(Endpoint {
            network: net.name.clone(),
            aliases: a.aliases.clone(),
            ipv4: a.ip.map(|ip| ip.to_string()),
            ipv6: a.ip6.map(|ip| ip.to_string()),
            mac: a.mac.clone(),
        });
    }
    let mut links = vec![];
    for l in &f.link {
        let (name, alias) = l.split_once(':').unwrap_or((l, l));
        let o = eng
            .store
            .resolve(name)
            .ctx(|| format!("--link {l}: could not get container for {name}"))?;
        links.push((o.id, alias.to_string()));
    }
    let mut ports = f.publish.clone();
    if f.publish_all {
        for (p, proto) in exposed {
            let spec = format!("{p}/{proto}");
            let taken = ports.iter().any(|s| {
                rcompose_net::ports::parse(s).is_ok_and(|v| {
                    v.iter()
                        .any(|x| x.container_port == *p && x.proto == *proto)
                })
            });
            if !taken {
                ports.push(spec);
            }
        }
    }
    let mode = endpoints[0].network.clone();
    let plan = NetPlan {
        networks: endpoints,
        ports,
        dns: f.dns.clone(),
        dns_search: f.dns_search.clone(),
        dns_options: f.dns_option.clone(),
        extra_hosts,
        links,
        exposed: f.expose.clone(),
    };
    super::check_ports(nets, &plan)?;
    Ok((mode, Some(plan)))
}

/// `--expose 80`, `80/udp`, `8000-8010/tcp`.
fn parse_expose(e: &str) -> Result<Vec<(u16, Proto)>> {
    let bad = || NetwireError::Invalid(format!("invalid --expose {e:?}: use PORT[-END][/tcp|udp]"));
    let (range, proto) = e.split_once('/').unwrap_or((e, "tcp"));
    let proto = match proto {
        "tcp" => Proto::Tcp,
        "udp" => Proto::Udp,
        _ => return Err(bad()),
    };
    let (lo, hi) = range.split_once('-').unwrap_or((range, range));
    let (lo, hi): (u16, u16) = (
        lo.parse().map_err(|_| bad())?,
        hi.parse().map_err(|_| bad())?,
    );
    if lo == 0 || hi < lo {
        return Err(bad());
    }
    Ok((lo..=hi).map(|p| (p, proto)).collect())
}

/// `EXPOSE`d ports of an image config (`"80/tcp": {}`), for `-P`.
pub fn exposed_ports(config: &serde_json::Value) -> Vec<(u16, Proto)> {
    let Some(m) = config["ExposedPorts"].as_object() else {
        return vec![];
    };
    m.keys()
        .filter_map(|k| {
            let (p, proto) = k.split_once('/').unwrap_or((k, "tcp"));
            let proto = match proto {
                "tcp" => Proto::Tcp,
                "udp" => Proto::Udp,
                _ => return None,
            };
            Some((p.parse().ok()?, proto))
        })
        .collect()
}

/// Decides the networking of a container being created from `run`/`create` flags: sets the
/// engine's network mode and stores the plan label. Fails (creating nothing) on a bad flag,
/// an unknown network or a taken port.
/// `image` is the image's reference (`None` for `--rootfs`), whose `EXPOSE`d ports `-P`
/// publishes; `networks` are the `--network` values.
#[allow(clippy::too_many_arguments)]
pub fn apply(
    root: &Path,
    eng: &Containers,
    nets: &Networks,
    image: Option<&str>,
    networks: &[String],
    f: &RunNetworkFlags,
    opts: &mut CreateOptions,
    on_warning: &dyn Fn(&str),
) -> Result<()> {
    let mut exposed = match image {
        Some(image) if f.publish_all => Store::open(root)
            .ok()
            .and_then(|s| s.resolve(image).ok())
            .map(|rec| exposed_ports(&rec.config_json["config"]))
            .unwrap_or_default(),
        _ => vec![],
    };
    for e in &f.expose {
        exposed.extend(parse_expose(e)?);
    }
    let (mode, plan) = plan(eng, nets, networks, f, &exposed, on_warning)?;
    opts.host.network_mode = mode;
    // Link variables exist on the default bridge only (on user-defined networks docker's
    // links are just names).
    if let Some(plan) = &plan
        && !plan.links.is_empty()
        && opts.host.network_mode == "bridge"
    {
        // Docker names the link `/<this container>/<alias>`: the name is needed now.
        let parent = match &opts.name {
            Some(n) => n.clone(),
            None => {
                let n =
                    rcompose_engine::container::random_name(&rcompose_engine::container::new_id()?);
                opts.name = Some(n.clone());
                n
            }
        };
        let mut vars = vec![];
        for (id, alias) in &plan.links {
            vars.extend(linked_env(root, eng, nets, &parent, id, alias)?);
        }
        // Before the user's -e: those win over link variables, as in docker.
        opts.env.splice(0..0, vars);
    }
    if let Some(plan) = plan {
        opts.labels
            .insert(super::LABEL.to_string(), serde_json::to_string(&plan)?);
    }
    Ok(())
}

/// The legacy link variables for the linked container `id`, known here as `alias`; it must
/// be running (docker refuses a link to a stopped container).
fn linked_env(
    root: &Path,
    eng: &Containers,
    nets: &Networks,
    parent: &str,
    id: &str,
    alias: &str,
) -> Result<Vec<String>> {
    let other = eng.store.load_config(id)?;
    if eng.observe(id)?.status != rcompose_engine::container::Status::Running {
        invalid!(
            "cannot link to a non running container: /{} AS /{parent}/{alias}",
            other.name
        );
    }
    let Some((_, ip)) = super::addresses_of(nets, id).into_iter().next() else {
        invalid!(
            "cannot link to /{}: it has no address on a network (--network none or host?)",
            other.name
        );
    };
    let mut ports = Store::open(root)
        .ok()
        .and_then(|s| s.resolve(&other.image_id).ok())
        .map(|rec| exposed_ports(&rec.config_json["config"]))
        .unwrap_or_default();
    if let Some(plan) = other
        .labels
        .get(super::LABEL)
        .and_then(|l| serde_json::from_str::<NetPlan>(l).ok())
    {
        for spec in &plan.ports {
            for b in rcompose_net::ports::parse(spec).unwrap_or_default() {
                ports.push((b.container_port, b.proto));
            }
        }
        for e in &plan.exposed {
            ports.extend(parse_expose(e).unwrap_or_default());
        }
    }
    Ok(link_env(parent, alias, ip, &ports, &other.env))
}

/// Docker's variables for a link (daemon/links): `ALIAS_NAME=/parent/alias`, `ALIAS_PORT`
/// for the lowest exposed port, `ALIAS_PORT_<port>_<proto>[_ADDR|_PORT|_PROTO]` for each,
/// and `ALIAS_ENV_<VAR>` for the linked container's environment (but HOME and PATH).
fn link_env(
    parent: &str,
    alias: &str,
    ip: std::net::Ipv4Addr,
    ports: &[(u16, Proto)],
    child_env: &[String],
) -> Vec<String> {
    let prefix = alias.to_uppercase().replace('-', "_");
    let mut ports = ports.to_vec();
    ports.sort();
    ports.dedup();
    let mut out = vec![format!("{prefix}_NAME=/{parent}/{alias}")];
    if let Some((port, proto)) = ports.first() {
        out.push(format!("{prefix}_PORT={proto}://{ip}:{port}"));
    }
    for (port, proto) in &ports {
        let key = format!("{prefix}_PORT_{port}_{}", proto.to_string().to_uppercase());
        out.push(format!("{key}={proto}://{ip}:{port}"));
        out.push(format!("{key}_ADDR={ip}"));
        out.push(format!("{key}_PORT={port}"));
        out.push(format!("{key}_PROTO={proto}"));
    }
    for e in child_env {
        if let Some((k, v)) = e.split_once('=')
            && k != "HOME"
            && k != "PATH"
        {
            out.push(format!("{prefix}_ENV_{k}={v}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_values_take_the_single_network_flags_on_the_first() {
        let f = RunNetworkFlags {
            network_alias: vec!["web".into()],
            ip: Some("10.1.0.9".into()),
            mac_address: Some("02:42:0A:01:00:09".into()),
            ..Default::default()
        };
        let got = attachments(&["a".into(), "name=b,alias=bee".into()], &f).unwrap();
        assert_eq!(got[0].aliases, ["web"]);
        assert_eq!(got[0].ip, Some([10, 1, 0, 9].into()));
        assert_eq!(got[0].mac.as_deref(), Some("02:42:0a:01:00:09"));
        assert_eq!((got[1].target.as_str(), got[1].ip), ("b", None));
        let none = attachments(&[], &RunNetworkFlags::default()).unwrap();
        assert_eq!(none[0].target, "bridge");
        for (nets, want) in [
            (vec!["a", "host"], "user-defined and non-user-defined"),
            (vec!["bridge", "none"], "only one of bridge"),
            (vec!["a", "a"], "specified multiple times"),
            (
                vec!["name=a,alias=x"],
                "--network-alias and per-network alias",
            ),
        ] {
            let nets: Vec<String> = nets.into_iter().map(String::from).collect();
            let err = attachments(&nets, &f).unwrap_err().to_string();
            assert!(err.contains(want), "{nets:?}: {err}");
        }
    }

    #[test]
    fn link_variables_are_dockers() {
        let env = link_env(
            "web",
            "my-db",
            [172, 17, 0, 3].into(),
            &[(5432, Proto::Tcp), (53, Proto::Udp), (5432, Proto::Tcp)],
            &["PATH=/bin".into(), "SECRET=s=1".into()],
        );
        assert_eq!(
            env,
            [
                "MY_DB_NAME=/web/my-db",
                "MY_DB_PORT=udp://172.17.0.3:53",
                "MY_DB_PORT_53_UDP=udp://172.17.0.3:53",
                "MY_DB_PORT_53_UDP_ADDR=172.17.0.3",
                "MY_DB_PORT_53_UDP_PORT=53",
                "MY_DB_PORT_53_UDP_PROTO=udp",
                "MY_DB_PORT_5432_TCP=tcp://172.17.0.3:5432",
                "MY_DB_PORT_5432_TCP_ADDR=172.17.0.3",
                "MY_DB_PORT_5432_TCP_PORT=5432",
                "MY_DB_PORT_5432_TCP_PROTO=tcp",
                "MY_DB_ENV_SECRET=s=1",
            ]
        );
    }

    #[test]
    fn exposed_ports_read_docker_keys() {
        let cfg = serde_json::json!({"ExposedPorts": {"80/tcp": {}, "53/udp": {}, "x/tcp": {}, "9/sctp": {}}});
        let mut got = exposed_ports(&cfg);
        got.sort();
        assert_eq!(got, vec![(53, Proto::Udp), (80, Proto::Tcp)]);
        assert!(exposed_ports(&serde_json::json!({})).is_empty());
    }

    #[test]
    fn expose_flag_ranges_and_errors() {
        assert_eq!(parse_expose("80").unwrap(), vec![(80, Proto::Tcp)]);
        assert_eq!(
            parse_expose("53-54/udp").unwrap(),
            vec![(53, Proto::Udp), (54, Proto::Udp)]
        );
        for bad in ["x", "80/sctp", "9-8", "0"] {
            assert!(parse_expose(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ps_cell_is_dockers() {
        let p = |ip: [u8; 4], h, c, proto| rcompose_net::PortBinding {
            host_ip: ip.into(),
            host_port: h,
            container_port: c,
            proto,
        };
        let cell = super::super::live::ports_cell(&[
            p([127, 0, 0, 1], 8080, 80, Proto::Tcp),
            p([0, 0, 0, 0], 53, 53, Proto::Udp),
        ]);
        assert_eq!(cell, "127.0.0.1:8080->80/tcp, 0.0.0.0:53->53/udp");
    }
}
