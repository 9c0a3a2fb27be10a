//! The networking flags of `container run/create` (docker's) → `netwire::flags` (the
//! container's network plan), and `container port`.

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Args;
use rcompose_engine::container::{Containers, CreateOptions};
use rcompose_net::Networks;
use rcompose_wire::netwire::flags::{self, RunNetworkFlags};
use rcompose_wire::netwire::live;

use super::GlobalOpts;

/// `--network` itself is in `RunArgs` (it also sets the engine's network mode).
#[derive(Debug, Args, Default)]
pub struct NetworkFlags {
    /// Publish a container's port(s) to the host ([ip:]hostPort:containerPort[/proto], ranges)
    #[arg(short = 'p', long = "publish")]
    pub publish: Vec<String>,
    /// Publish all exposed ports to random ports
    #[arg(short = 'P', long = "publish-all")]
    pub publish_all: bool,
    /// Expose a port or a range of ports (published by -P)
    #[arg(long)]
    pub expose: Vec<String>,
    /// Add network-scoped alias for the container
    #[arg(long = "network-alias")]
    pub network_alias: Vec<String>,
    /// IPv4 address (e.g., 172.30.100.104)
    #[arg(long)]
    pub ip: Option<String>,
    /// IPv6 address (e.g., 2001:db8::33), on a network created with --ipv6
    #[arg(long)]
    pub ip6: Option<String>,
    /// Add a custom host-to-IP mapping (host:ip)
    #[arg(long = "add-host")]
    pub add_host: Vec<String>,
    /// Set custom DNS servers
    #[arg(long)]
    pub dns: Vec<String>,
    /// Set custom DNS search domains
    #[arg(long = "dns-search")]
    pub dns_search: Vec<String>,
    /// Set DNS options (resolv.conf `options`)
    #[arg(long = "dns-option", alias = "dns-opt")]
    pub dns_option: Vec<String>,
    /// Add link to another container (name[:alias])
    #[arg(long)]
    pub link: Vec<String>,
    /// Container MAC address (e.g., 92:d0:c6:0a:29:33), on the first network
    #[arg(long = "mac-address")]
    pub mac_address: Option<String>,
}

impl NetworkFlags {
    fn to_run_flags(&self) -> RunNetworkFlags {
        RunNetworkFlags {
            publish: self.publish.clone(),
            publish_all: self.publish_all,
            expose: self.expose.clone(),
            network_alias: self.network_alias.clone(),
            ip: self.ip.clone(),
            ip6: self.ip6.clone(),
            add_host: self.add_host.clone(),
            dns: self.dns.clone(),
            dns_search: self.dns_search.clone(),
            dns_option: self.dns_option.clone(),
            link: self.link.clone(),
            mac_address: self.mac_address.clone(),
        }
    }
}

/// Decides the networking of a container being created from `run`/`create` flags: sets the
/// engine's network mode and stores the plan label. Fails (creating nothing) on a bad flag,
/// an unknown network or a taken port.
pub fn apply(
    g: &GlobalOpts,
    eng: &Containers,
    nets: &Networks,
    a: &super::container::RunArgs,
    opts: &mut CreateOptions,
) -> Result<()> {
    let image = (!a.rootfs).then_some(a.image.as_str());
    let warn = |w: &str| eprintln!("WARNING: {w}");
    let f = a.net.to_run_flags();
    Ok(flags::apply(
        &g.root, eng, nets, image, &a.network, &f, opts, &warn,
    )?)
}

/// `container port CONTAINER [PRIVATE_PORT[/PROTO]]`.
#[derive(Debug, Args)]
pub struct PortArgs {
    pub container: String,
    /// Only this container port (e.g. 80 or 80/udp)
    pub private_port: Option<String>,
}

pub fn port(g: &GlobalOpts, a: PortArgs) -> Result<ExitCode> {
    let eng = super::container::engine(g)?;
    let cfg = eng.store.resolve(&a.container)?;
    let nets = Networks::open(&g.root, &g.run_root)?;
    let ports = live::ports(&nets, &cfg.id);
    let Some(want) = &a.private_port else {
        for p in &ports {
            println!("{p}");
        }
        return Ok(ExitCode::SUCCESS);
    };
    let (num, proto) = want.split_once('/').unwrap_or((want, "tcp"));
    let num: u16 = num
        .parse()
        .with_context(|| format!("invalid port {want:?}: use PORT or PORT/PROTO"))?;
    let hits: Vec<_> = ports
        .iter()
        .filter(|p| p.container_port == num && p.proto.to_string() == proto)
        .collect();
    if hits.is_empty() {
        bail!("no public port '{num}/{proto}' published for {}", cfg.name);
    }
    for p in hits {
        println!("{}:{}", p.host_ip, p.host_port);
    }
    Ok(ExitCode::SUCCESS)
}
