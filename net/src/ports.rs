//! Published ports: parsing `-p [ip:][host[-host]:]container[-container][/proto]`, `-P`,
//! and checking that a host port is free before anything is created.
//!
//! Traffic reaches the container through nftables DNAT only (see `firewall`), for every host
//! address including 127.0.0.1 (the bridge gets `route_localnet=1` and loopback sources are
//! masqueraded, as Docker does with `--userland-proxy=false`). We chose this over a userland
//! proxy because nothing would hold the proxy yet (there is no daemon, and the per-container
//! monitor lives in the engine), DNAT keeps full throughput, and it preserves the client source
//! address for non-loopback clients. The price: nothing binds the host port, so conflicts are
//! found by checking our own bindings and by trying to bind the port before publishing it.
//!
//! IPv6: `-p 8080:80` (0.0.0.0) also publishes on every IPv6 address of the host for a
//! container that has one, as Docker publishes on 0.0.0.0 and [::] together; `[::]:8080:80`
//! publishes on IPv6 only. IPv6 has no `route_localnet`, so no DNAT can carry a connection from
//! [::1] into a bridge: a binding on `[::1]` is served by a small userland proxy instead
//! (`proxy`), which the network layer starts and stops with the binding.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, UdpSocket};

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PortError {
    #[error(
        "invalid port specification {spec:?}: {why} (expected [ip:][hostPort:]containerPort[/tcp|udp])"
    )]
    Invalid { spec: String, why: String },
    #[error("port {port}/{proto} on {ip} is already published by container {holder}")]
    PublishedBy {
        ip: IpAddr,
        port: u16,
        proto: Proto,
        holder: String,
    },
    #[error("port {port}/{proto} on {ip} is already in use on the host{}", by(.holder))]
    InUse {
        ip: IpAddr,
        port: u16,
        proto: Proto,
        holder: Option<String>,
    },
    #[error("cannot publish on {0}: it is not an address of this host")]
    NotLocal(IpAddr),
    #[error("no free host port for {container_port}/{proto}")]
    NoFreePort { container_port: u16, proto: Proto },
}

fn by(holder: &Option<String>) -> String {
    holder
        .as_ref()
        .map(|h| format!(" (by {h})"))
        .unwrap_or_default()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        })
    }
}

/// One requested mapping; `host_port == None` means "pick a free one".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortSpec {
    pub host_ip: IpAddr,
    pub host_port: Option<u16>,
    pub container_port: u16,
    pub proto: Proto,
}

/// One published port as it is in effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PortBinding {
    pub host_ip: IpAddr,
    pub host_port: u16,
    pub container_port: u16,
    pub proto: Proto,
}

impl fmt::Display for PortBinding {
    /// As `docker port` prints it: `80/tcp -> 0.0.0.0:8080`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{} -> {}",
            self.container_port,
            self.proto,
            SocketAddr::new(self.host_ip, self.host_port)
        )
    }
}

impl PortBinding {
    /// Whether this binding reaches a container over IPv6: `[::]` or an IPv6 address, and
    /// 0.0.0.0, which stands for both families (see the module comment).
    pub fn covers_ipv6(&self) -> bool {
        self.host_ip.is_ipv6() || self.host_ip.is_unspecified()
    }

    /// Whether it reaches the container over IPv4.
    pub fn covers_ipv4(&self) -> bool {
        self.host_ip.is_ipv4()
    }

    /// A binding on [::1], which only the userland proxy can serve.
    pub fn needs_proxy(&self) -> bool {
        self.host_ip == IpAddr::V6(std::net::Ipv6Addr::LOCALHOST)
    }
}

/// Parses one `-p` value; ranges expand to one spec per port.
pub fn parse(spec: &str) -> Result<Vec<PortSpec>, PortError> {
    let bad = |why: &str| PortError::Invalid {
        spec: spec.to_string(),
        why: why.to_string(),
    };
    let (rest, proto) = match spec.rsplit_once('/') {
        Some((r, "tcp")) => (r, Proto::Tcp),
        Some((r, "udp")) => (r, Proto::Udp),
        Some((_, p)) => return Err(bad(&format!("unsupported protocol {p:?}"))),
        None => (spec, Proto::Tcp),
    };
    // An IPv6 host address comes in brackets: `[::1]:8080:80`.
    let (bracketed, rest) = match rest.strip_prefix('[') {
        Some(r) => {
            let (ip, after) = r
                .split_once(']')
                .ok_or_else(|| bad("'[' without ']' around the IPv6 address"))?;
            let after = after
                .strip_prefix(':')
                .ok_or_else(|| bad("expected ':' after the ']' of the IPv6 address"))?;
            (Some(ip), after)
        }
        None => (None, rest),
    };
    let parts: Vec<&str> = rest.split(':').collect();
    let (ip, host, container) = match (bracketed, parts.as_slice()) {
        (None, [c]) => ("", "", *c),
        (None, [h, c]) => ("", *h, *c),
        (None, [ip, h, c]) => (*ip, *h, *c),
        (Some(ip), [h, c]) => (ip, *h, *c),
        (Some(_), _) => return Err(bad("expected [ipv6]:hostPort:containerPort")),
        _ => {
            return Err(bad(
                "too many ':' (write an IPv6 host address in brackets: [::1]:8080:80)",
            ));
        }
    };
    let host_ip: IpAddr = if ip.is_empty() {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    } else {
        let parsed: IpAddr = ip
            .parse()
            .map_err(|_| bad(&format!("{ip:?} is not an IP address")))?;
        if parsed.is_ipv6() && bracketed.is_none() {
            return Err(bad("write an IPv6 host address in brackets: [::1]:8080:80"));
        }
        parsed
    };
    let (c_lo, c_hi) = range(container).map_err(|w| bad(&w))?;
    let host_range = if host.is_empty() {
        None
    } else {
        Some(range(host).map_err(|w| bad(&w))?)
    };
    let count = c_hi - c_lo;
    if let Some((h_lo, h_hi)) = host_range
        && h_hi - h_lo != count
        && count != 0
    {
        return Err(bad("host and container port ranges differ in size"));
    }
    let mut out = Vec::new();
    match host_range {
        // `8000-8010:80` means "one free port of 8000..8010 for 80"; we take the first free.
        Some((h_lo, h_hi)) if count == 0 && h_hi > h_lo => {
            let free = (h_lo..=h_hi).find(|p| host_port_free(host_ip, *p, proto).is_ok());
            out.push(PortSpec {
                host_ip,
                host_port: Some(free.unwrap_or(h_lo)),
                container_port: c_lo,
                proto,
            });
        }
        _ => {
            for i in 0..=count {
                out.push(PortSpec {
                    host_ip,
                    host_port: host_range.map(|(h, _)| h + i),
                    container_port: c_lo + i,
                    proto,
                });
            }
        }
    }
    Ok(out)
}

fn range(s: &str) -> Result<(u16, u16), String> {
    let port = |p: &str| match p.parse::<u16>() {
        Ok(0) | Err(_) => Err(format!("{p:?} is not a port number (1-65535)")),
        Ok(v) => Ok(v),
    };
    match s.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (port(a)?, port(b)?);
            if b < a {
                return Err(format!("range {s:?} ends before it starts"));
            }
            Ok((a, b))
        }
        None => port(s).map(|p| (p, p)),
    }
}

/// `-P`: every exposed port gets a random free host port on all addresses.
pub fn publish_all(exposed: &[(u16, Proto)]) -> Vec<PortSpec> {
    exposed
        .iter()
        .map(|(p, proto)| PortSpec {
            host_ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            host_port: None,
            container_port: *p,
            proto: *proto,
        })
        .collect()
}

/// Whether two bindings of one port number and protocol would take the same traffic: 0.0.0.0
/// takes every address of both families, [::] every IPv6 address.
fn clash(a_ip: IpAddr, b_ip: IpAddr) -> bool {
    let covers = |x: IpAddr, y: IpAddr| {
        x == y
            || x == IpAddr::V4(Ipv4Addr::UNSPECIFIED)
            || (x.is_unspecified() && x.is_ipv6() && y.is_ipv6())
    };
    covers(a_ip, b_ip) || covers(b_ip, a_ip)
}

/// Resolves specs to bindings, refusing clashes with `existing` (held by the named containers),
/// with each other, and with ports bound on the host. Nothing is reserved: the caller installs
/// the bindings while holding the state lock.
pub fn resolve(
    specs: &[PortSpec],
    existing: &[(String, PortBinding)],
) -> Result<Vec<PortBinding>, PortError> {
    let mut out: Vec<PortBinding> = Vec::new();
    for s in specs {
        let taken_by_us = |port: u16, out: &[PortBinding]| -> Option<String> {
            existing
                .iter()
                .find(|(_, b)| {
                    b.proto == s.proto && b.host_port == port && clash(b.host_ip, s.host_ip)
                })
                .map(|(h, _)| h.clone())
                .or_else(|| {
                    out.iter()
                        .any(|b| {
                            b.proto == s.proto && b.host_port == port && clash(b.host_ip, s.host_ip)
                        })
                        .then(|| "this same request".to_string())
                })
        };
        let host_port = match s.host_port {
            Some(p) => {
                if let Some(holder) = taken_by_us(p, &out) {
                    return Err(PortError::PublishedBy {
                        ip: s.host_ip,
                        port: p,
                        proto: s.proto,
                        holder,
                    });
                }
                host_port_free(s.host_ip, p, s.proto)?;
                p
            }
            None => {
                // Port 0 binds on any local address: this only checks the address.
                host_port_free(s.host_ip, 0, s.proto)?;
                (0..64)
                    .filter_map(|_| ephemeral_port(s.host_ip, s.proto))
                    .find(|p| taken_by_us(*p, &out).is_none())
                    .ok_or(PortError::NoFreePort {
                        container_port: s.container_port,
                        proto: s.proto,
                    })?
            }
        };
        out.push(PortBinding {
            host_ip: s.host_ip,
            host_port,
            container_port: s.container_port,
            proto: s.proto,
        });
    }
    Ok(out)
}

fn ephemeral_port(ip: IpAddr, proto: Proto) -> Option<u16> {
    let addr = SocketAddr::new(ip, 0);
    match proto {
        Proto::Tcp => TcpListener::bind(addr)
            .ok()?
            .local_addr()
            .ok()
            .map(|a| a.port()),
        Proto::Udp => UdpSocket::bind(addr)
            .ok()?
            .local_addr()
            .ok()
            .map(|a| a.port()),
    }
}

/// Whether a host process holds `ip:port`; if so, names it when /proc tells us.
pub fn host_port_free(ip: IpAddr, port: u16, proto: Proto) -> Result<(), PortError> {
    let addr = SocketAddr::new(ip, port);
    let res = match proto {
        Proto::Tcp => TcpListener::bind(addr).map(drop),
        Proto::Udp => UdpSocket::bind(addr).map(drop),
    };
    match res {
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => Err(PortError::InUse {
            ip,
            port,
            proto,
            holder: socket_holder(port, proto),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::AddrNotAvailable => Err(PortError::NotLocal(ip)),
        // Anything else (e.g. a privileged port for an unprivileged caller) does not mean the
        // port is taken; DNAT does not need the bind.
        _ => Ok(()),
    }
}

/// Finds the process holding a socket on `port` via /proc/net/{tcp,udp} and /proc/*/fd.
fn socket_holder(port: u16, proto: Proto) -> Option<String> {
    let tables: &[&str] = match proto {
        Proto::Tcp => &["/proc/net/tcp", "/proc/net/tcp6"],
        Proto::Udp => &["/proc/net/udp", "/proc/net/udp6"],
    };
    let text: String = tables
        .iter()
        .filter_map(|t| std::fs::read_to_string(t).ok())
        .map(|t| {
            t.lines()
                .skip(1)
                .map(|l| format!("{l}\n"))
                .collect::<String>()
        })
        .collect();
    let text = format!("header\n{text}");
    let inode = text.lines().skip(1).find_map(|l| {
        let cols: Vec<&str> = l.split_whitespace().collect();
        let local = cols.get(1)?;
        let p = u16::from_str_radix(local.rsplit(':').next()?, 16).ok()?;
        // State 0A is LISTEN for TCP; any bound UDP socket counts.
        let listening = proto == Proto::Udp || cols.get(3) == Some(&"0A");
        (p == port && listening).then(|| cols.get(9).map(|s| s.to_string()))?
    })?;
    let target = format!("socket:[{inode}]");
    for proc_entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let pid = proc_entry.file_name().to_string_lossy().to_string();
        if !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(proc_entry.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if std::fs::read_link(fd.path()).is_ok_and(|l| l.to_string_lossy() == target) {
                let comm =
                    std::fs::read_to_string(proc_entry.path().join("comm")).unwrap_or_default();
                return Some(format!("process {pid} ({})", comm.trim()));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(ip: [u8; 4], h: u16, c: u16) -> PortBinding {
        PortBinding {
            host_ip: IpAddr::V4(Ipv4Addr::from(ip)),
            host_port: h,
            container_port: c,
            proto: Proto::Tcp,
        }
    }

    #[test]
    fn parses_docker_forms() {
        let one = parse("127.0.0.1:8080:80").unwrap();
        assert_eq!(
            one,
            vec![PortSpec {
                host_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
                host_port: Some(8080),
                container_port: 80,
                proto: Proto::Tcp
            }]
        );
        assert_eq!(parse("80").unwrap()[0].host_port, None);
        assert_eq!(parse("127.0.0.1::80").unwrap()[0].host_port, None);
        assert_eq!(parse("53:53/udp").unwrap()[0].proto, Proto::Udp);
        let r = parse("8000-8002:80-82").unwrap();
        assert_eq!(r.len(), 3);
        assert_eq!((r[2].host_port, r[2].container_port), (Some(8002), 82));
    }

    #[test]
    fn ipv6_host_addresses_in_brackets() {
        let v6 = parse("[::1]:8080:80/udp").unwrap();
        assert_eq!(v6[0].host_ip, "::1".parse::<IpAddr>().unwrap());
        assert_eq!((v6[0].host_port, v6[0].proto), (Some(8080), Proto::Udp));
        assert_eq!(parse("[::]::80").unwrap()[0].host_port, None);
        let bind = PortBinding {
            host_ip: "::1".parse().unwrap(),
            host_port: 8080,
            container_port: 80,
            proto: Proto::Tcp,
        };
        assert_eq!(bind.to_string(), "80/tcp -> [::1]:8080");
        assert!(bind.needs_proxy() && bind.covers_ipv6() && !bind.covers_ipv4());
        let any4 = b([0, 0, 0, 0], 8080, 80);
        assert!(any4.covers_ipv4() && any4.covers_ipv6() && !any4.needs_proxy());
    }

    #[test]
    fn all_addresses_of_both_families_clash_as_docker_publishes_them() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(clash(ip("0.0.0.0"), ip("::1")));
        assert!(clash(ip("::"), ip("::1")));
        assert!(!clash(ip("::"), ip("127.0.0.1")));
        assert!(!clash(ip("::1"), ip("127.0.0.1")));
        assert!(clash(ip("127.0.0.1"), ip("127.0.0.1")));
    }

    #[test]
    fn rejects_bad_specs_with_the_reason() {
        for (spec, why) in [
            ("80/sctp", "unsupported protocol"),
            ("0:80", "not a port number"),
            ("a:b:c:d", "too many"),
            ("x.y:80:80", "not an IP address"),
            ("::1:80:80", "brackets"),
            ("[::1:80:80", "without ']'"),
            ("[::1]80:80", "expected ':'"),
            ("8000-8001:80-82", "differ in size"),
            ("90-80:80-90", "ends before"),
        ] {
            let err = parse(spec).unwrap_err().to_string();
            assert!(err.contains(why) && err.contains(spec), "{spec}: {err}");
        }
    }

    #[test]
    fn clashes_with_our_own_bindings_are_named() {
        let existing = vec![("web".to_string(), b([0, 0, 0, 0], 18080, 80))];
        let spec = parse("127.0.0.1:18080:80").unwrap();
        let err = resolve(&spec, &existing).unwrap_err();
        assert_eq!(
            err.to_string(),
            "port 18080/tcp on 127.0.0.1 is already published by container web"
        );
        let twice = [spec[0], spec[0]];
        assert!(
            resolve(&twice, &[])
                .unwrap_err()
                .to_string()
                .contains("this same request")
        );
        // UDP on the same number is a different port.
        assert!(resolve(&parse("127.0.0.1:18080:80/udp").unwrap(), &existing).is_ok());
    }

    #[test]
    fn a_port_bound_on_the_host_is_reported_with_its_holder() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let err = host_port_free(IpAddr::V4(Ipv4Addr::LOCALHOST), port, Proto::Tcp).unwrap_err();
        let text = err.to_string();
        assert!(text.contains(&format!("port {port}/tcp")), "{text}");
        assert!(text.contains(&std::process::id().to_string()), "{text}");
        let far = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 254));
        let foreign = host_port_free(far, 8080, Proto::Tcp);
        assert_eq!(foreign, Err(PortError::NotLocal(far)));
        let random = resolve(&parse("127.0.0.1::80").unwrap(), &[]).unwrap();
        assert_ne!(random[0].host_port, 0);
    }
}
