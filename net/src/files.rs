//! Contents of a container's /etc/resolv.conf and /etc/hosts.

use std::net::{IpAddr, Ipv4Addr};

/// What goes into a container's /etc/hosts.
#[derive(Debug, Clone, Default)]
pub struct HostsRequest {
    pub hostname: String,
    /// The container's own addresses (one per network), each mapped to its hostname.
    pub ips: Vec<Ipv4Addr>,
    /// Its IPv6 addresses on dual-stack networks, mapped likewise.
    pub ips6: Vec<std::net::Ipv6Addr>,
    /// `--add-host name:ip`.
    pub extra_hosts: Vec<(String, IpAddr)>,
    /// `--link name:alias`: (ip, names).
    pub links: Vec<(Ipv4Addr, Vec<String>)>,
}

pub fn hosts_file(req: &HostsRequest) -> String {
    let mut out = String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\n\
         ff02::2\tip6-allrouters\n",
    );
    for (name, ip) in &req.extra_hosts {
        out.push_str(&format!("{ip}\t{name}\n"));
    }
    for (ip, names) in &req.links {
        out.push_str(&format!("{ip}\t{}\n", names.join(" ")));
    }
    for ip in &req.ips {
        out.push_str(&format!("{ip}\t{}\n", req.hostname));
    }
    for ip in &req.ips6 {
        out.push_str(&format!("{ip}\t{}\n", req.hostname));
    }
    out
}

/// resolv.conf: the embedded DNS server (a gateway address) when the container is on a
/// network with DNS, else `--dns` servers, else the host's usable nameservers. `search` and
/// `options` lines of the host are kept, as Docker does.
pub fn resolv_conf(
    host_resolv: &str,
    embedded: Option<Ipv4Addr>,
    dns: &[IpAddr],
    search: &[String],
    options: &[String],
) -> String {
    let mut servers: Vec<IpAddr> = if let Some(gw) = embedded {
        vec![IpAddr::V4(gw)]
    } else if !dns.is_empty() {
        dns.to_vec()
    } else {
        // Loopback resolvers of the host are unreachable from a container's namespace.
        crate::dns::control::resolv_conf_nameservers(host_resolv)
            .into_iter()
            .filter(|ip| !ip.is_loopback())
            .collect()
    };
    if embedded.is_some() && !dns.is_empty() {
        // With the embedded server, --dns servers become its upstreams in Docker; we list them
        // after it so that outside names still resolve if the embedded server forwards nothing.
        servers.extend_from_slice(dns);
    }
    let mut out = String::new();
    for s in servers {
        out.push_str(&format!("nameserver {s}\n"));
    }
    let host_lines = |key: &str| -> Vec<String> {
        host_resolv
            .lines()
            .filter_map(|l| l.trim().strip_prefix(key).map(|r| r.trim().to_string()))
            .filter(|r| !r.is_empty())
            .collect()
    };
    let search = if search.is_empty() {
        host_lines("search")
    } else {
        vec![search.join(" ")]
    };
    let options = if options.is_empty() {
        host_lines("options")
    } else {
        vec![options.join(" ")]
    };
    for s in search {
        out.push_str(&format!("search {s}\n"));
    }
    for o in options {
        out.push_str(&format!("options {o}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_has_localhost_extras_links_and_self() {
        let text = hosts_file(&HostsRequest {
            hostname: "web".into(),
            ips: vec![[10, 0, 0, 2].into()],
            ips6: vec!["fd00::2".parse().unwrap()],
            extra_hosts: vec![("db.local".into(), "10.9.9.9".parse().unwrap())],
            links: vec![([10, 0, 0, 3].into(), vec!["cache".into(), "redis".into()])],
        });
        assert!(text.starts_with("127.0.0.1\tlocalhost\n"));
        assert!(text.contains("10.9.9.9\tdb.local\n"));
        assert!(text.contains("10.0.0.3\tcache redis\n"));
        assert!(text.contains("fd00::2\tweb\n"));
        assert!(text.ends_with("10.0.0.2\tweb\nfd00::2\tweb\n"));
    }

    #[test]
    fn resolv_conf_prefers_embedded_then_dns_then_host() {
        let host = "nameserver 127.0.0.53\nnameserver 10.1.1.1\nsearch corp\noptions ndots:2\n";
        let embedded = resolv_conf(host, Some([10, 0, 0, 1].into()), &[], &[], &[]);
        assert_eq!(
            embedded,
            "nameserver 10.0.0.1\nsearch corp\noptions ndots:2\n"
        );
        let custom = resolv_conf(
            host,
            None,
            &["9.9.9.9".parse().unwrap()],
            &["x".into()],
            &[],
        );
        assert_eq!(custom, "nameserver 9.9.9.9\nsearch x\noptions ndots:2\n");
        let plain = resolv_conf(host, None, &[], &[], &[]);
        assert!(plain.starts_with("nameserver 10.1.1.1\n") && !plain.contains("127.0.0.53"));
    }
}
