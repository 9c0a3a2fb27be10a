//! `rcompose network create|ls|inspect|rm|prune|connect|disconnect` (docker network …), and
//! the hidden `__dns` server process.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use rcompose_net::network::{Network, predefined_id};
use rcompose_net::{CreateRequest, Networks, ipam};
use serde_json::{Value, json};

use super::GlobalOpts;

#[derive(Debug, Args)]
pub struct NetworkArgs {
    #[command(subcommand)]
    pub command: NetworkCommand,
}

#[derive(Debug, Subcommand)]
pub enum NetworkCommand {
    /// Create a network
    Create(CreateArgs),
    /// List networks
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Display detailed information on one or more networks
    Inspect(InspectArgs),
    /// Remove one or more networks
    #[command(alias = "remove")]
    Rm(RmArgs),
    /// Remove all unused networks
    Prune(PruneArgs),
    /// Connect a container to a network
    Connect(ConnectArgs),
    /// Disconnect a container from a network
    Disconnect(DisconnectArgs),
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Network name
    pub name: String,
    /// Driver to manage the network
    #[arg(short = 'd', long, default_value = "bridge")]
    pub driver: String,
    /// Subnet in CIDR format (one IPv4 and, with --ipv6, one IPv6)
    #[arg(long)]
    pub subnet: Vec<String>,
    /// Gateway for the subnet of its family
    #[arg(long)]
    pub gateway: Vec<String>,
    /// Allocate container addresses from a sub-range
    #[arg(long = "ip-range")]
    pub ip_range: Option<String>,
    /// Restrict external access to the network
    #[arg(long)]
    pub internal: bool,
    /// Enable manual container attachment
    #[arg(long)]
    pub attachable: bool,
    /// Set metadata on the network (key=value)
    #[arg(long = "label")]
    pub labels: Vec<String>,
    /// Set driver specific options (key=value)
    #[arg(short = 'o', long = "opt")]
    pub opts: Vec<String>,
    /// Enable IPv6 networking: dual stack, with an IPv6 --subnet or a unique local /64
    #[arg(long)]
    pub ipv6: bool,
}

#[derive(Debug, Args)]
pub struct LsArgs {
    /// Filter output (name=, id=, driver=, label=, type=custom|builtin)
    #[arg(short = 'f', long = "filter")]
    pub filters: Vec<String>,
    /// Format output: table, json, or a template such as '{{.Name}}'
    #[arg(long)]
    pub format: Option<String>,
    /// Only display network IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Do not truncate the output
    #[arg(long)]
    pub no_trunc: bool,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Networks (names or ids)
    #[arg(required = true)]
    pub networks: Vec<String>,
    /// Format output: json (default) or a template such as '{{.Name}}'
    #[arg(short = 'f', long)]
    pub format: Option<String>,
}

#[derive(Debug, Args)]
pub struct RmArgs {
    /// Networks (names or ids)
    #[arg(required = true)]
    pub networks: Vec<String>,
    /// Do not error if the network does not exist
    #[arg(short = 'f', long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Provide filter values (label=key or label=key=value)
    #[arg(long = "filter")]
    pub filters: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ConnectArgs {
    pub network: String,
    pub container: String,
    /// Add network-scoped alias for the container
    #[arg(long = "alias")]
    pub aliases: Vec<String>,
    /// IPv4 address
    #[arg(long)]
    pub ip: Option<String>,
    /// IPv6 address (on a network created with --ipv6)
    #[arg(long)]
    pub ip6: Option<String>,
}

#[derive(Debug, Args)]
pub struct DisconnectArgs {
    pub network: String,
    pub container: String,
    /// Force the container to disconnect from a network
    #[arg(short = 'f', long)]
    pub force: bool,
}

/// `rcompose __dns`: the embedded DNS server process (started on demand by rcompose itself).
#[derive(Debug, Args)]
pub struct DnsServerArgs {}

pub fn run_dns_server(global: &GlobalOpts, _args: DnsServerArgs) -> anyhow::Result<ExitCode> {
    rcompose_net::dns::server::run(&global.root, &global.run_root)?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct PortProxyArgs {
    pub listen: std::net::SocketAddr,
    pub target: std::net::SocketAddr,
    pub pidfile: std::path::PathBuf,
}

pub fn run_port_proxy(args: PortProxyArgs) -> anyhow::Result<ExitCode> {
    rcompose_net::proxy::serve(args.listen, args.target, &args.pidfile)?;
    Ok(ExitCode::SUCCESS)
}

pub fn run(global: &GlobalOpts, args: NetworkArgs) -> anyhow::Result<ExitCode> {
    let nets = Networks::open(&global.root, &global.run_root)?;
    match args.command {
        NetworkCommand::Create(a) => create(&nets, a),
        NetworkCommand::Ls(a) => ls(&nets, a),
        NetworkCommand::Inspect(a) => inspect(&nets, a),
        NetworkCommand::Rm(a) => rm(&nets, a),
        NetworkCommand::Prune(a) => prune(&nets, a),
        NetworkCommand::Connect(a) => {
            let eng = super::container::engine(global)?;
            rcompose_wire::netwire::live::connect(
                &eng,
                &nets,
                &a.container,
                &a.network,
                &a.aliases,
                a.ip.as_deref(),
                a.ip6.as_deref(),
            )?;
            Ok(ExitCode::SUCCESS)
        }
        NetworkCommand::Disconnect(a) => {
            let eng = super::container::engine(global)?;
            rcompose_wire::netwire::live::disconnect(&eng, &nets, &a.container, &a.network)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn key_values(items: &[String], what: &str) -> anyhow::Result<BTreeMap<String, String>> {
    items
        .iter()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            None if !kv.is_empty() && what == "--label" => Ok((kv.clone(), String::new())),
            _ => bail!("invalid {what} {kv:?}: expected key=value"),
        })
        .collect()
}

fn create(nets: &Networks, a: CreateArgs) -> anyhow::Result<ExitCode> {
    let one = |values: Vec<&String>, flag: &str, family: &str| -> anyhow::Result<Option<String>> {
        match values.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(one.to_string())),
            _ => bail!("{flag}: give at most one {family} value"),
        }
    };
    let (v6, v4): (Vec<&String>, Vec<&String>) = a.subnet.iter().partition(|s| s.contains(':'));
    let (subnet, subnet6) = (one(v4, "--subnet", "IPv4")?, one(v6, "--subnet", "IPv6")?);
    let (g6, g4): (Vec<&String>, Vec<&String>) = a.gateway.iter().partition(|s| s.contains(':'));
    let (gateway, gateway6) = (one(g4, "--gateway", "IPv4")?, one(g6, "--gateway", "IPv6")?);
    let req = CreateRequest {
        name: a.name,
        driver: Some(a.driver),
        subnet: subnet.as_deref().map(ipam::parse_subnet).transpose()?,
        gateway: gateway.as_deref().map(ipam::parse_addr).transpose()?,
        ip_range: a.ip_range.as_deref().map(ipam::parse_subnet).transpose()?,
        ipv6: a.ipv6,
        subnet6: subnet6
            .as_deref()
            .map(|s| {
                s.parse().map_err(|_| {
                    anyhow::anyhow!(
                        "invalid --subnet {s:?}: expected an IPv6 CIDR such as fd00:1::/64"
                    )
                })
            })
            .transpose()?,
        gateway6: gateway6
            .as_deref()
            .map(|s| {
                s.parse()
                    .with_context(|| format!("invalid --gateway {s:?}: not an IPv6 address"))
            })
            .transpose()?,
        internal: a.internal,
        attachable: a.attachable,
        labels: key_values(&a.labels, "--label")?,
        options: key_values(&a.opts, "--opt")?,
    };
    if req.gateway.is_some() && req.subnet.is_none() {
        bail!("--gateway needs --subnet");
    }
    if req.gateway6.is_some() && req.subnet6.is_none() {
        bail!("an IPv6 --gateway needs an IPv6 --subnet");
    }
    if req.ip_range.is_some() && req.subnet.is_none() {
        bail!("--ip-range needs --subnet");
    }
    let net = nets.create(req)?;
    println!("{}", net.id);
    Ok(ExitCode::SUCCESS)
}

/// One row of `network ls`, including the implicit host/none networks.
struct Row {
    id: String,
    name: String,
    driver: String,
    internal: bool,
    labels: BTreeMap<String, String>,
    created: String,
    builtin: bool,
}

fn rows(nets: &Networks) -> anyhow::Result<Vec<Row>> {
    let mut out: Vec<Row> = nets
        .list()?
        .into_iter()
        .map(|n: Network| Row {
            builtin: n.name == "bridge",
            id: n.id,
            name: n.name,
            driver: n.driver,
            internal: n.internal,
            labels: n.labels,
            created: n.created,
        })
        .collect();
    for (name, driver) in [("host", "host"), ("none", "null")] {
        out.push(Row {
            id: predefined_id(name),
            name: name.into(),
            driver: driver.into(),
            internal: false,
            labels: BTreeMap::new(),
            created: "0001-01-01T00:00:00Z".into(),
            builtin: true,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

fn matches(row: &Row, filter: &str) -> anyhow::Result<bool> {
    let Some((key, value)) = filter.split_once('=') else {
        bail!("invalid filter {filter:?}: expected key=value (name, id, driver, label, type)");
    };
    Ok(match key {
        "name" => row.name.contains(value),
        "id" => row.id.starts_with(value),
        "driver" => row.driver == value,
        "label" => match value.split_once('=') {
            Some((k, v)) => row.labels.get(k).is_some_and(|x| x == v),
            None => row.labels.contains_key(value),
        },
        "type" => match value {
            "custom" => !row.builtin,
            "builtin" => row.builtin,
            _ => bail!("invalid filter 'type={value}': use custom or builtin"),
        },
        _ => bail!("invalid filter {key:?}: use name, id, driver, label or type"),
    })
}

fn ls(nets: &Networks, a: LsArgs) -> anyhow::Result<ExitCode> {
    let mut shown = Vec::new();
    for row in rows(nets)? {
        let mut keep = true;
        for f in &a.filters {
            keep &= matches(&row, f)?;
        }
        if keep {
            shown.push(row);
        }
    }
    let short = |id: &str| {
        if a.no_trunc {
            id.to_string()
        } else {
            id.chars().take(12).collect()
        }
    };
    if a.quiet {
        for r in &shown {
            println!("{}", short(&r.id));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let labels = |r: &Row| {
        r.labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    match a.format.as_deref() {
        None | Some("table") => {
            let table: Vec<[String; 4]> = shown
                .iter()
                .map(|r| {
                    [
                        short(&r.id),
                        r.name.clone(),
                        r.driver.clone(),
                        "local".into(),
                    ]
                })
                .collect();
            print_columns(&["NETWORK ID", "NAME", "DRIVER", "SCOPE"], &table);
        }
        Some("json") => {
            for r in &shown {
                println!(
                    "{}",
                    json!({"CreatedAt": r.created, "Driver": r.driver, "ID": short(&r.id),
                        "IPv4": "true", "IPv6": "false", "Internal": r.internal.to_string(),
                        "Labels": labels(r), "Name": r.name, "Scope": "local"})
                );
            }
        }
        Some(template) => {
            let (header, body) = match template.strip_prefix("table") {
                Some(rest) => (true, rest.trim_start()),
                None => (false, template),
            };
            if header {
                println!("{}", render(body, &|f| f.to_uppercase()));
            }
            for r in &shown {
                println!(
                    "{}",
                    render(body, &|f| match f {
                        "ID" => short(&r.id),
                        "Name" => r.name.clone(),
                        "Driver" => r.driver.clone(),
                        "Scope" => "local".into(),
                        "Internal" => r.internal.to_string(),
                        "IPv4" => "true".into(),
                        "IPv6" => "false".into(),
                        "Labels" => labels(r),
                        "CreatedAt" => r.created.clone(),
                        other => format!("<no field {other}>"),
                    })
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Replaces `{{.Field}}` (and `{{json .}}` is not supported) with `field(Field)`; `\t` → tab.
fn render(template: &str, field: &dyn Fn(&str) -> String) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find("}}") else {
            out.push_str(&rest[start..]);
            rest = "";
            break;
        };
        let inner = rest[start + 2..start + end].trim();
        out.push_str(&field(inner.trim_start_matches('.')));
        rest = &rest[start + end + 2..];
    }
    out.push_str(rest);
    out.replace("\\t", "\t")
}

fn print_columns<const N: usize>(headers: &[&str; N], rows: &[[String; N]]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.len());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}   ", w = widths[i]));
            }
        }
        s
    };
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{}", line(headers.to_vec()));
    for r in rows {
        let _ = writeln!(stdout, "{}", line(r.iter().map(|s| s.as_str()).collect()));
    }
}

fn inspect(nets: &Networks, a: InspectArgs) -> anyhow::Result<ExitCode> {
    let mut found: Vec<Value> = Vec::new();
    let mut failed = false;
    for n in &a.networks {
        match nets.inspect(n) {
            Ok(v) => found.push(v),
            Err(e) => {
                eprintln!("error: {e}");
                failed = true;
            }
        }
    }
    match a.format.as_deref() {
        None | Some("json") => println!("{}", serde_json::to_string_pretty(&found)?),
        Some(template) => {
            for v in &found {
                println!(
                    "{}",
                    render(template, &|f| match v.get(f) {
                        Some(Value::String(s)) => s.clone(),
                        Some(other) => other.to_string(),
                        None => format!("<no field {f}>"),
                    })
                );
            }
        }
    }
    if failed {
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

fn rm(nets: &Networks, a: RmArgs) -> anyhow::Result<ExitCode> {
    let mut failed = false;
    for n in &a.networks {
        match nets.remove(n) {
            Ok(_) => println!("{n}"),
            Err(rcompose_net::NetError::NotFound(_)) if a.force => {}
            Err(e) => {
                eprintln!("error: {e}");
                failed = true;
            }
        }
    }
    if failed {
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

fn prune(nets: &Networks, a: PruneArgs) -> anyhow::Result<ExitCode> {
    let mut labels = Vec::new();
    for f in &a.filters {
        match f.split_once('=') {
            Some(("label", v)) => labels.push(v.to_string()),
            _ => {
                bail!("invalid filter {f:?}: only label=<key> or label=<key>=<value> is supported")
            }
        }
    }
    if !a.force {
        eprint!(
            "WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue? [y/N] "
        );
        let mut answer = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut answer)
            .context("reading the confirmation")?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            return Ok(ExitCode::SUCCESS);
        }
    }
    let removed = nets.prune(&labels)?;
    if !removed.is_empty() {
        println!("Deleted Networks:");
        for n in removed {
            println!("{n}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
