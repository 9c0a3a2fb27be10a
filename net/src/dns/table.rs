//! The pure lookup core of the embedded DNS server: a table of networks and their names, and
//! the answer to one question. No I/O, so every rule is unit-tested.
//!
//! Scoping, as in Docker and aardvark-dns: the server listens on each network's gateway. The
//! asker is identified by the network it reached (listen address) and its source address; a
//! container sees the names of every network it is attached to, and nothing else.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::Ipv4Net;

use crate::network::Network;

/// One container's presence on one network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsEntry {
    pub container_id: String,
    /// Lower-case names: container name, aliases (service name…), short id. First is canonical.
    pub names: Vec<String>,
    pub ip: Ipv4Addr,
    /// On a dual-stack network, answered to AAAA questions.
    pub ip6: Option<Ipv6Addr>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsNetwork {
    pub name: String,
    pub gateway: Ipv4Addr,
    pub subnet: Ipv4Net,
    pub internal: bool,
    pub entries: Vec<DnsEntry>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DnsTable {
    pub networks: Vec<DnsNetwork>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryType {
    A,
    Aaaa,
    Ptr,
    /// MX, TXT…: no data for our names (NOERROR, empty), forwarded for others.
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    A(Vec<Ipv4Addr>),
    Aaaa(Vec<Ipv6Addr>),
    Ptr(String),
    /// The name exists here but has no record of that type.
    NoData,
    NxDomain,
    /// Not ours: ask the upstream resolvers.
    Forward,
    Refused,
}

impl DnsTable {
    /// Builds the table from persisted networks (those with DNS enabled).
    pub fn from_networks(networks: &[Network]) -> DnsTable {
        let networks = networks
            .iter()
            .filter(|n| n.dns)
            .map(|n| DnsNetwork {
                name: n.name.clone(),
                gateway: n.gateway,
                subnet: n.subnet,
                internal: n.internal,
                entries: n
                    .endpoints
                    .values()
                    .map(|e| {
                        let mut names = vec![e.container_name.to_ascii_lowercase()];
                        names.extend(e.aliases.iter().map(|a| a.to_ascii_lowercase()));
                        names.push(e.container_id.chars().take(12).collect());
                        names.dedup();
                        DnsEntry {
                            container_id: e.container_id.clone(),
                            names,
                            ip: e.ip,
                            ip6: e.ip6,
                        }
                    })
                    .collect(),
            })
            .collect();
        DnsTable { networks }
    }

    /// Addresses the server must listen on.
    pub fn listen_addresses(&self) -> BTreeSet<Ipv4Addr> {
        self.networks.iter().map(|n| n.gateway).collect()
    }

    /// The networks whose names the asker may see.
    fn scope(&self, listen: Ipv4Addr, source: Ipv4Addr) -> Vec<&DnsNetwork> {
        let Some(home) = self.networks.iter().find(|n| n.gateway == listen) else {
            return Vec::new();
        };
        let Some(asker) = home.entries.iter().find(|e| e.ip == source) else {
            return vec![home];
        };
        let others = self.networks.iter().filter(|n| {
            n.name != home.name
                && n.entries
                    .iter()
                    .any(|e| e.container_id == asker.container_id)
        });
        std::iter::once(home).chain(others).collect()
    }

    /// Answers one question. `rotate` picks the rotation of multi-address answers (a counter
    /// kept by the server), `can_forward` says whether upstream resolvers exist.
    pub fn lookup(
        &self,
        listen: Ipv4Addr,
        source: Ipv4Addr,
        qname: &str,
        qtype: QueryType,
        rotate: usize,
        can_forward: bool,
    ) -> Answer {
        let scope = self.scope(listen, source);
        let Some(home) = scope.first() else {
            return Answer::Refused;
        };
        let name = qname.trim_end_matches('.').to_ascii_lowercase();
        let outside = if home.internal {
            Answer::Refused
        } else if can_forward {
            Answer::Forward
        } else {
            Answer::NxDomain
        };
        if let Some(ip) = parse_reverse(&name) {
            if qtype != QueryType::Ptr {
                return outside;
            }
            let found = scope
                .iter()
                .flat_map(|n| n.entries.iter())
                .find(|e| e.ip == ip)
                .and_then(|e| e.names.first().cloned());
            return match found {
                Some(n) => Answer::Ptr(n),
                None if scope.iter().any(|n| n.subnet.contains(&ip)) => Answer::NxDomain,
                None => outside,
            };
        }
        // As Docker does: the addresses on the first network (the asker's home network first)
        // that knows the name, so the answer is reachable through the network the query came in.
        let mut found: Vec<&DnsEntry> = Vec::new();
        for net in &scope {
            for e in net.entries.iter().filter(|e| e.names.contains(&name)) {
                if !found.iter().any(|f| f.ip == e.ip) {
                    found.push(e);
                }
            }
            if !found.is_empty() {
                break;
            }
        }
        if found.is_empty() {
            return outside;
        }
        match qtype {
            QueryType::A => {
                let mut ips: Vec<Ipv4Addr> = found.iter().map(|e| e.ip).collect();
                let len = ips.len();
                ips.rotate_left(rotate % len);
                Answer::A(ips)
            }
            QueryType::Aaaa => {
                let mut ips: Vec<Ipv6Addr> = found.iter().filter_map(|e| e.ip6).collect();
                if ips.is_empty() {
                    return Answer::NoData;
                }
                let len = ips.len();
                ips.rotate_left(rotate % len);
                Answer::Aaaa(ips)
            }
            _ => Answer::NoData,
        }
    }
}

/// `4.3.2.1.in-addr.arpa` → 1.2.3.4
fn parse_reverse(name: &str) -> Option<Ipv4Addr> {
    let rest = name.strip_suffix(".in-addr.arpa")?;
    let mut octets: Vec<u8> = rest
        .split('.')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    if octets.len() != 4 {
        return None;
    }
    octets.reverse();
    Some(Ipv4Addr::new(octets[0], octets[1], octets[2], octets[3]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, names: &[&str], ip: [u8; 4]) -> DnsEntry {
        DnsEntry {
            container_id: id.into(),
            names: names.iter().map(|s| s.to_string()).collect(),
            ip: ip.into(),
            ip6: None,
        }
    }

    fn table() -> DnsTable {
        DnsTable {
            networks: vec![
                DnsNetwork {
                    name: "front".into(),
                    gateway: [10, 0, 1, 1].into(),
                    subnet: "10.0.1.0/24".parse().unwrap(),
                    internal: false,
                    entries: vec![
                        entry("c1", &["web-1", "web", "www"], [10, 0, 1, 2]),
                        entry("c2", &["web-2", "web"], [10, 0, 1, 3]),
                        entry("c3", &["proxy"], [10, 0, 1, 4]),
                    ],
                },
                DnsNetwork {
                    name: "back".into(),
                    gateway: [10, 0, 2, 1].into(),
                    subnet: "10.0.2.0/24".parse().unwrap(),
                    internal: true,
                    entries: vec![
                        entry("c3", &["proxy"], [10, 0, 2, 2]),
                        entry("c4", &["db"], [10, 0, 2, 3]),
                    ],
                },
            ],
        }
    }

    const FRONT: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 1);
    const BACK: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 1);

    fn a(t: &DnsTable, listen: Ipv4Addr, src: [u8; 4], q: &str) -> Answer {
        t.lookup(listen, src.into(), q, QueryType::A, 0, true)
    }

    #[test]
    fn names_aliases_and_replicas_resolve_with_rotation() {
        let t = table();
        assert_eq!(
            a(&t, FRONT, [10, 0, 1, 4], "www."),
            Answer::A(vec![[10, 0, 1, 2].into()])
        );
        assert_eq!(
            a(&t, FRONT, [10, 0, 1, 4], "WEB-2"),
            Answer::A(vec![[10, 0, 1, 3].into()])
        );
        let first = t.lookup(FRONT, [10, 0, 1, 4].into(), "web", QueryType::A, 0, true);
        let second = t.lookup(FRONT, [10, 0, 1, 4].into(), "web", QueryType::A, 1, true);
        assert_eq!(
            first,
            Answer::A(vec![[10, 0, 1, 2].into(), [10, 0, 1, 3].into()])
        );
        assert_eq!(
            second,
            Answer::A(vec![[10, 0, 1, 3].into(), [10, 0, 1, 2].into()])
        );
    }

    #[test]
    fn names_are_scoped_to_the_askers_networks() {
        let t = table();
        // web-1 is only on front: it cannot see db.
        assert_eq!(a(&t, FRONT, [10, 0, 1, 2], "db"), Answer::Forward);
        // proxy is on both: it sees db through front's gateway too.
        assert_eq!(
            a(&t, FRONT, [10, 0, 1, 4], "db"),
            Answer::A(vec![[10, 0, 2, 3].into()])
        );
        // db (internal back) cannot see web, and outside names are refused.
        assert_eq!(a(&t, BACK, [10, 0, 2, 3], "web"), Answer::Refused);
        assert_eq!(a(&t, BACK, [10, 0, 2, 3], "example.org"), Answer::Refused);
        // A listen address that is not ours.
        assert_eq!(
            a(&t, [10, 9, 9, 1].into(), [10, 9, 9, 2], "web"),
            Answer::Refused
        );
    }

    #[test]
    fn a_name_on_several_networks_answers_from_the_home_network_first() {
        let t = table();
        // proxy is on both networks; asked through back, back's address comes back.
        assert_eq!(
            a(&t, BACK, [10, 0, 2, 2], "proxy"),
            Answer::A(vec![[10, 0, 2, 2].into()])
        );
        assert_eq!(
            a(&t, FRONT, [10, 0, 1, 4], "proxy"),
            Answer::A(vec![[10, 0, 1, 4].into()])
        );
    }

    #[test]
    fn unknown_names_forward_or_nxdomain_without_upstreams() {
        let t = table();
        assert_eq!(a(&t, FRONT, [10, 0, 1, 2], "example.org"), Answer::Forward);
        let none = t.lookup(
            FRONT,
            [10, 0, 1, 2].into(),
            "nosuch",
            QueryType::A,
            0,
            false,
        );
        assert_eq!(none, Answer::NxDomain);
        let aaaa = t.lookup(
            FRONT,
            [10, 0, 1, 2].into(),
            "web",
            QueryType::Other,
            0,
            false,
        );
        assert_eq!(aaaa, Answer::NoData);
    }

    #[test]
    fn reverse_lookups() {
        let t = table();
        let ptr = |q: &str| t.lookup(FRONT, [10, 0, 1, 4].into(), q, QueryType::Ptr, 0, false);
        assert_eq!(ptr("2.1.0.10.in-addr.arpa."), Answer::Ptr("web-1".into()));
        assert_eq!(ptr("3.2.0.10.in-addr.arpa"), Answer::Ptr("db".into()));
        assert_eq!(ptr("99.1.0.10.in-addr.arpa"), Answer::NxDomain);
        assert_eq!(ptr("1.1.1.1.in-addr.arpa"), Answer::NxDomain);
        let fwd = t.lookup(
            FRONT,
            [10, 0, 1, 4].into(),
            "1.1.1.1.in-addr.arpa",
            QueryType::Ptr,
            0,
            true,
        );
        assert_eq!(fwd, Answer::Forward);
        assert_eq!(parse_reverse("1.2.3.in-addr.arpa"), None);
    }

    #[test]
    fn built_from_networks_with_dns_only() {
        use crate::network::{Endpoint, Network};
        let mut n = Network {
            name: "x".into(),
            id: "i".into(),
            created: String::new(),
            driver: "bridge".into(),
            bridge: "br-x".into(),
            subnet: "10.0.3.0/24".parse().unwrap(),
            gateway: [10, 0, 3, 1].into(),
            ip_range: None,
            ipv6: None,
            internal: false,
            attachable: false,
            dns: true,
            labels: Default::default(),
            options: Default::default(),
            endpoints: Default::default(),
        };
        n.endpoints.insert(
            "abcdef0123456789".into(),
            Endpoint {
                container_id: "abcdef0123456789".into(),
                container_name: "App".into(),
                endpoint_id: String::new(),
                ip: [10, 0, 3, 2].into(),
                ip6: Some("fd00:3::2".parse().unwrap()),
                mac: String::new(),
                host_ifname: String::new(),
                ifname: String::new(),
                netns_path: String::new(),
                netns_ino: 0,
                aliases: vec!["svc".into()],
                ports: vec![],
            },
        );
        let mut default_bridge = n.clone();
        default_bridge.name = "bridge".into();
        default_bridge.dns = false;
        let t = DnsTable::from_networks(&[n, default_bridge]);
        assert_eq!(t.networks.len(), 1);
        assert_eq!(
            t.networks[0].entries[0].names,
            vec!["app", "svc", "abcdef012345"]
        );
        assert_eq!(
            t.networks[0].entries[0].ip6,
            Some("fd00:3::2".parse().unwrap())
        );
        let asker = [10, 0, 3, 9].into();
        let gw = [10, 0, 3, 1].into();
        assert_eq!(
            t.lookup(gw, asker, "svc.", QueryType::Aaaa, 0, false),
            Answer::Aaaa(vec!["fd00:3::2".parse().unwrap()])
        );
        assert_eq!(
            t.lookup(gw, asker, "app", QueryType::A, 0, false),
            Answer::A(vec![[10, 0, 3, 2].into()])
        );
    }
}
