//! Host checks for networking (`rcompose doctor`): what other firewalls do to forwarded
//! traffic and who set it up, br_netfilter, forwarding sysctls, the DNS upstream, and published
//! ports that a local process also listens on. Each finding says what was seen and, when it
//! needs attention, what to do. Only reads: nothing here changes the host.
//!
//! The decisions are pure functions over what was read (`forward_findings`,
//! `foreign_drop_chains`), so they are unit-tested with listings from real hosts.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::firewall::iptables::{self, FilterTable, find_program};
use crate::store::Store;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// All is well.
    Ok,
    /// Worth knowing; nothing to do.
    Note,
    /// Something will break or is broken; `fix` says what to do.
    Problem,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    /// What was checked, e.g. `firewall`, `sysctl`.
    pub check: String,
    pub level: Level,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Finding {
    pub fn new(check: &str, level: Level, detail: impl Into<String>) -> Finding {
        Finding {
            check: check.into(),
            level,
            detail: detail.into(),
            fix: None,
        }
    }

    pub fn fix(mut self, fix: impl Into<String>) -> Finding {
        self.fix = Some(fix.into());
        self
    }
}

/// Who made an iptables filter table drop forwarded traffic, from the chains they leave.
pub fn who_set_forward(table: &FilterTable) -> &'static str {
    let has = |prefix: &str| table.chains.iter().any(|c| c.starts_with(prefix));
    if has("DOCKER-USER") || has("DOCKER") {
        "Docker"
    } else if has("ufw-") || has("ufw6-") {
        "ufw"
    } else if has("FORWARD_") || has("FWD_") || has("FWDI_") {
        "firewalld"
    } else {
        "a host firewall"
    }
}

/// Findings for one iptables backend's filter table: whether FORWARD (and INPUT, for the
/// embedded DNS) would drop our traffic, who set that up, and whether our accepts are there.
/// `bridges`: our live bridges; `prefix`: our chain prefix; `have_restore`: the program that
/// changes the table is installed.
pub fn forward_findings(
    backend: &str,
    table: &FilterTable,
    prefix: &str,
    bridges: &[String],
    have_restore: bool,
) -> Vec<Finding> {
    let mut out = Vec::new();
    for hook in ["FORWARD", "INPUT"] {
        let ours = format!("{prefix}-{hook}");
        if !table.may_drop(hook, &ours) {
            continue;
        }
        let policy = table.policies.get(hook).map(String::as_str).unwrap_or("?");
        let who = who_set_forward(table);
        let seen = format!("{backend} {hook} chain: policy {policy}, rules by {who}");
        if !have_restore {
            out.push(
                Finding::new("firewall", Level::Problem, format!(
                    "{seen}; rcompose cannot add its accept rules without iptables, so its containers' traffic is dropped"
                ))
                .fix("apt-get install iptables (then any network command re-applies the rules)"),
            );
        } else if bridges.is_empty() {
            out.push(Finding::new("firewall", Level::Ok, format!(
                "{seen}; rcompose adds accepts for its bridges in chain {ours} while it has networks"
            )));
        } else if iptables::plan(table, prefix, bridges).is_some() {
            out.push(
                Finding::new("firewall", Level::Problem, format!(
                    "{seen}; rcompose's accepts in chain {ours} are missing or stale (another tool reloaded the firewall?)"
                ))
                .fix("rcompose doctor --fix (or any network command) puts them back"),
            );
        } else {
            out.push(Finding::new(
                "firewall",
                Level::Ok,
                format!(
                    "{seen}; rcompose's accepts for {} bridge(s) are in chain {ours}",
                    bridges.len()
                ),
            ));
        }
    }
    out
}

/// Base chains of other nftables tables on the forward hook whose policy drops, which our
/// accepts cannot pass (an accept in one table does not bypass another table's drop).
/// iptables-nft's own tables (`ip filter`, `ip6 filter`) are left out: `iptables` handles them.
/// `ruleset`: `nft -j list chains`.
pub fn foreign_drop_chains(ruleset: &Value, our_tables: &[&str]) -> Vec<String> {
    let Some(items) = ruleset["nftables"].as_array() else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|i| {
            let c = &i["chain"];
            let (family, table, name) = (
                c["family"].as_str()?,
                c["table"].as_str()?,
                c["name"].as_str()?,
            );
            let drops = c["hook"] == "forward" && c["policy"].as_str().is_some_and(|p| p == "drop");
            let iptables_nft = table == "filter" && (family == "ip" || family == "ip6");
            (drops && !iptables_nft && !our_tables.contains(&table))
                .then(|| format!("{family} {table} {name}"))
        })
        .collect()
}

/// The conditions that will break a stack's traffic and that rcompose cannot repair by
/// itself: cheap enough for `up` to check once before it starts anything.
pub fn traffic_blockers() -> Vec<Finding> {
    let mut out = Vec::new();
    if let Some(ruleset) = nft_json(&["list", "chains"]) {
        for chain in foreign_drop_chains(&ruleset, &[]) {
            let firewalld = chain.contains("firewalld");
            let fix = if firewalld {
                "firewall-cmd --zone=trusted --add-interface=<bridge> for each rcompose bridge (`rcompose network inspect` names them), or --add-source=<subnet>"
            } else {
                "add an accept for rcompose's bridges (iifname/oifname \"rcompose0\", \"br-*\", \"rc0_*\") to that chain, or set its policy to accept"
            };
            out.push(
                Finding::new("firewall", Level::Problem, format!(
                    "nftables chain {chain} drops forwarded traffic by policy; rcompose's containers cannot reach each other or the outside through it"
                ))
                .fix(fix),
            );
        }
    }
    for (backend, exists) in [
        (
            "iptables-nft",
            nft_json(&["list", "chain", "ip", "filter", "FORWARD"]).is_some(),
        ),
        (
            "iptables-legacy",
            iptables::legacy_filter_exists(iptables::Family::V4),
        ),
    ] {
        if exists && find_program(&format!("{backend}-restore")).is_none() {
            out.push(
                Finding::new("firewall", Level::Problem, format!(
                    "the host has an {backend} filter table but no {backend} program: if its FORWARD chain drops (Docker, ufw, firewalld), rcompose cannot add its accepts"
                ))
                .fix("apt-get install iptables"),
            );
        }
    }
    out
}

/// Every networking check, for the state root at `root` (our bridges and published ports).
pub fn check(root: &Path) -> Vec<Finding> {
    let mut out = Vec::new();
    let nft_ok = find_program("nft").is_some_and(|p| {
        Command::new(p)
            .args(["list", "tables"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    out.push(if nft_ok {
        Finding::new("nftables", Level::Ok, "nft works")
    } else {
        Finding::new("nftables", Level::Problem, "nft is missing or cannot list the ruleset (needs root and the nf_tables kernel module)")
            .fix("apt-get install nftables; run as root")
    });

    let nets = Store::open(root)
        .and_then(|s| s.load_all())
        .unwrap_or_default();
    let live: Vec<_> = nets.iter().filter(|n| n.is_live()).collect();
    let bridges: Vec<String> = live.iter().map(|n| n.bridge.clone()).collect();
    let prefix = iptables::chain_prefix(&crate::api::table_name(root));
    let mut any_table = false;
    for (backend, present) in [
        ("iptables-nft", true),
        (
            "iptables-legacy",
            iptables::legacy_filter_exists(iptables::Family::V4),
        ),
    ] {
        let Some(program) = present.then(|| find_program(backend)).flatten() else {
            continue;
        };
        let Ok(o) = Command::new(program)
            .args(["-w", "-t", "filter", "-S"])
            .output()
        else {
            continue;
        };
        let table = FilterTable::parse(&String::from_utf8_lossy(&o.stdout));
        let have_restore = find_program(&format!("{backend}-restore")).is_some();
        let found = forward_findings(backend, &table, &prefix, &bridges, have_restore);
        any_table |= !found.is_empty();
        out.extend(found);
    }
    for (bridge, gone) in crate::api::orphan_default_bridges() {
        out.push(
            Finding::new(
                "bridges",
                Level::Problem,
                format!(
                    "default bridge {bridge} belongs to the state root {gone}, which no longer exists: its subnet stays taken"
                ),
            )
            .fix("rcompose doctor --fix deletes it with its firewall rules (so does the next state root that creates its default bridge)"),
        );
    }
    let blockers = traffic_blockers();
    any_table |= !blockers.is_empty();
    out.extend(blockers);
    if !any_table {
        out.push(Finding::new(
            "firewall",
            Level::Ok,
            "no other firewall drops forwarded traffic",
        ));
    }

    out.push(match read_trim("/proc/sys/net/bridge/bridge-nf-call-iptables").as_deref() {
        Some("1") => Finding::new("br_netfilter", Level::Note,
            "bridge-nf-call-iptables=1: traffic inside a bridge also passes iptables (Docker turns this on); rcompose's accepts cover it"),
        Some(_) => Finding::new("br_netfilter", Level::Ok, "bridge-nf-call-iptables=0"),
        None => Finding::new("br_netfilter", Level::Ok, "br_netfilter is not loaded"),
    });
    let forwarding = read_trim("/proc/sys/net/ipv4/ip_forward");
    let needs_forwarding = live.iter().any(|n| !n.internal);
    out.push(match (forwarding.as_deref(), needs_forwarding) {
        (Some("1"), _) => Finding::new("sysctl", Level::Ok, "net.ipv4.ip_forward=1"),
        (_, false) => Finding::new("sysctl", Level::Ok, "net.ipv4.ip_forward=0 (rcompose turns it on when it creates a network)"),
        _ => Finding::new("sysctl", Level::Problem, "net.ipv4.ip_forward=0 although rcompose networks exist: containers cannot reach the outside or published ports")
            .fix("sysctl -w net.ipv4.ip_forward=1"),
    });
    if read_trim("/proc/sys/net/ipv6/conf/all/forwarding").as_deref() == Some("1") {
        let ra1: Vec<String> = std::fs::read_dir("/proc/sys/net/ipv6/conf")
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_else(|_| Vec::new())
            .into_iter()
            .filter(|i: &String| !["all", "default", "lo"].contains(&i.as_str()))
            .filter(|i| {
                read_trim(&format!("/proc/sys/net/ipv6/conf/{i}/accept_ra")).as_deref() == Some("1")
            })
            .collect();
        if !ra1.is_empty() {
            out.push(
                Finding::new("sysctl", Level::Note, format!(
                    "IPv6 forwarding is on (dual-stack networks need it): {} ignore router advertisements now (accept_ra=1)",
                    ra1.join(", ")
                ))
                .fix("only if the host takes its own IPv6 route from router advertisements: sysctl -w net.ipv6.conf.<interface>.accept_ra=2"),
            );
        }
    }
    for n in &live {
        let path = format!("/proc/sys/net/ipv4/conf/{}/route_localnet", n.bridge);
        if read_trim(&path).as_deref() == Some("0") {
            out.push(
                Finding::new("sysctl", Level::Problem, format!(
                    "route_localnet=0 on bridge {} (network {}): ports published on 127.0.0.1 do not answer",
                    n.bridge, n.name
                ))
                .fix(format!("sysctl -w net.ipv4.conf.{}.route_localnet=1", n.bridge)),
            );
        }
    }

    let upstream = crate::dns::control::upstreams();
    out.push(if upstream.is_empty() {
        Finding::new("dns", Level::Problem, "no upstream DNS server (/etc/resolv.conf has no nameserver, or RCOMPOSE_DNS_UPSTREAM=none): containers resolve each other's names but nothing outside")
            .fix("add a nameserver to /etc/resolv.conf, or set RCOMPOSE_DNS_UPSTREAM=ip[,ip]")
    } else {
        let list: Vec<String> = upstream.iter().map(SocketAddr::to_string).collect();
        Finding::new("dns", Level::Ok, format!("names outside the stack are forwarded to {}", list.join(", ")))
    });

    for n in &live {
        for e in n.endpoints.values() {
            for b in &e.ports {
                if b.proto != crate::ports::Proto::Tcp {
                    continue;
                }
                let addr = SocketAddr::new(b.host_ip, b.host_port);
                if TcpListener::bind(addr).is_err() {
                    out.push(
                        Finding::new("ports", Level::Problem, format!(
                            "{addr} is published for container {} but a local process listens on it too: connections from this host and from outside go to the container, the process never sees them",
                            e.container_name
                        ))
                        .fix("stop that process or publish the container on another port"),
                    );
                }
            }
        }
    }
    out
}

fn nft_json(args: &[&str]) -> Option<Value> {
    let out = Command::new(find_program("nft")?)
        .arg("-j")
        .args(args)
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}

fn read_trim(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const DOCKER_HOST: &str = "-P INPUT ACCEPT\n-P FORWARD DROP\n-P OUTPUT ACCEPT\n-N DOCKER\n-N DOCKER-USER\n-A FORWARD -j DOCKER-USER\n-A DOCKER-USER -j RETURN\n";

    #[test]
    fn names_who_set_the_forward_drop() {
        assert_eq!(who_set_forward(&FilterTable::parse(DOCKER_HOST)), "Docker");
        let ufw = FilterTable::parse("-P FORWARD DROP\n-N ufw-before-forward\n");
        assert_eq!(who_set_forward(&ufw), "ufw");
        assert_eq!(
            who_set_forward(&FilterTable::parse("-P FORWARD DROP\n")),
            "a host firewall"
        );
    }

    #[test]
    fn a_docker_host_is_a_problem_only_without_iptables_or_without_our_accepts() {
        let t = FilterTable::parse(DOCKER_HOST);
        let br = vec!["br-x".to_string()];
        let none = forward_findings("iptables-nft", &t, "RCOMPOSE", &[], true);
        assert_eq!(none.len(), 1);
        assert_eq!(none[0].level, Level::Ok);
        assert!(none[0].detail.contains("Docker"), "{}", none[0].detail);
        let missing = forward_findings("iptables-nft", &t, "RCOMPOSE", &br, true);
        assert_eq!(missing[0].level, Level::Problem);
        assert!(missing[0].fix.as_deref().unwrap().contains("--fix"));
        let no_program = forward_findings("iptables-nft", &t, "RCOMPOSE", &br, false);
        assert!(
            no_program[0]
                .fix
                .as_deref()
                .unwrap()
                .contains("apt-get install iptables")
        );
        let script = iptables::plan(&t, "RCOMPOSE", &br).unwrap();
        let mut applied = t.clone();
        for line in script.lines().filter(|l| l.starts_with("-A ")) {
            let chain = line.split_whitespace().nth(1).unwrap().to_string();
            applied.rules.push((chain, line.to_string()));
        }
        applied.chains.insert("RCOMPOSE-FORWARD".into());
        applied.rules.insert(
            0,
            (
                "DOCKER-USER".into(),
                "-A DOCKER-USER -j RCOMPOSE-FORWARD".into(),
            ),
        );
        let fine = forward_findings("iptables-nft", &applied, "RCOMPOSE", &br, true);
        assert_eq!(fine[0].level, Level::Ok, "{fine:?}");
    }

    #[test]
    fn a_clean_host_has_no_firewall_findings() {
        let t = FilterTable::parse("-P INPUT ACCEPT\n-P FORWARD ACCEPT\n-P OUTPUT ACCEPT\n");
        assert!(forward_findings("iptables-nft", &t, "RCOMPOSE", &["b".into()], true).is_empty());
    }

    #[test]
    fn foreign_nftables_drops_are_found_but_not_iptables_nft_or_ours() {
        let chain = |family: &str, table: &str, name: &str, hook: &str, policy: &str| json!({"chain": {"family": family, "table": table, "name": name, "hook": hook, "policy": policy}});
        let ruleset = json!({"nftables": [
            {"metainfo": {"version": "1.0.6"}},
            chain("inet", "firewalld", "filter_FORWARD", "forward", "drop"),
            chain("ip", "filter", "FORWARD", "forward", "drop"),
            chain("inet", "rcompose", "forward", "forward", "accept"),
            chain("inet", "filter", "input", "input", "drop"),
            {"chain": {"family": "inet", "table": "x", "name": "regular"}},
        ]});
        assert_eq!(
            foreign_drop_chains(&ruleset, &["rcompose"]),
            vec!["inet firewalld filter_FORWARD"]
        );
    }
}
