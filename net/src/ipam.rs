//! IPv4 address management: default pools like Docker's, subnet/gateway/ip-range validation,
//! overlap detection against other networks and host routes, and address allocation.
//!
//! Everything here is pure: callers pass in what is taken (other networks, host routes,
//! allocated addresses) and persist the result themselves (see `store`).

use std::collections::BTreeSet;
use std::fmt;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IpamError {
    #[error("invalid subnet {0:?}: expected an IPv4 CIDR such as 10.1.2.0/24")]
    BadSubnet(String),
    #[error("invalid IPv4 address {0:?}")]
    BadAddress(String),
    #[error("subnet {subnet} overlaps with {with}: choose another --subnet")]
    Overlap { subnet: Ipv4Net, with: Taken },
    #[error("gateway {gateway} is outside subnet {subnet}")]
    GatewayOutside { gateway: Ipv4Addr, subnet: Ipv4Net },
    #[error("gateway {0} is the network or broadcast address of its subnet")]
    GatewayReserved(Ipv4Addr),
    #[error("ip-range {range} is outside subnet {subnet}")]
    RangeOutside { range: Ipv4Net, subnet: Ipv4Net },
    #[error("subnet {0} is too small: at least a /30 is needed for a gateway and one container")]
    TooSmall(Ipv4Net),
    #[error(
        "no free address pool: every default pool overlaps an existing network or host route; \
         pass --subnet"
    )]
    PoolsExhausted,
    #[error("address {ip} is outside subnet {subnet} of network {network}")]
    AddressOutside {
        ip: Ipv4Addr,
        subnet: Ipv4Net,
        network: String,
    },
    #[error("address {ip} is already in use on network {network}{}", holder_suffix(.holder))]
    AddressInUse {
        ip: Ipv4Addr,
        network: String,
        holder: Option<String>,
    },
    #[error("address {ip} is reserved on network {network} (network, broadcast or gateway)")]
    AddressReserved { ip: Ipv4Addr, network: String },
    #[error("no free address left in {range} on network {network}")]
    Exhausted { range: Ipv4Net, network: String },
}

fn holder_suffix(holder: &Option<String>) -> String {
    holder
        .as_ref()
        .map(|h| format!(" (by {h})"))
        .unwrap_or_default()
}

/// Something that already occupies address space: another network or a host route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Taken {
    Network { name: String, subnet: Ipv4Net },
    HostRoute { subnet: Ipv4Net, device: String },
}

impl Taken {
    pub fn subnet(&self) -> Ipv4Net {
        match self {
            Taken::Network { subnet, .. } | Taken::HostRoute { subnet, .. } => *subnet,
        }
    }
}

impl fmt::Display for Taken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Taken::Network { name, subnet } => write!(f, "network {name:?} ({subnet})"),
            Taken::HostRoute { subnet, device } => {
                write!(f, "the host route {subnet} on device {device}")
            }
        }
    }
}

pub fn parse_subnet(s: &str) -> Result<Ipv4Net, IpamError> {
    let net: Ipv4Net = s
        .trim()
        .parse()
        .map_err(|_| IpamError::BadSubnet(s.to_string()))?;
    // Docker normalises 10.1.2.3/24 to 10.1.2.0/24.
    Ok(net.trunc())
}

pub fn parse_addr(s: &str) -> Result<Ipv4Addr, IpamError> {
    s.trim()
        .parse()
        .map_err(|_| IpamError::BadAddress(s.to_string()))
}

/// Docker's default local pools: 172.17.0.0/16 … 172.31.0.0/16, then 192.168.0.0/16 in /20s.
pub fn default_pools() -> Vec<Ipv4Net> {
    let mut pools: Vec<Ipv4Net> = (17u8..=31)
        .map(|b| Ipv4Net::new(Ipv4Addr::new(172, b, 0, 0), 16).expect("valid /16"))
        .collect();
    pools.extend(
        (0u8..16).map(|i| Ipv4Net::new(Ipv4Addr::new(192, 168, i * 16, 0), 20).expect("valid /20")),
    );
    pools
}

fn overlaps(a: &Ipv4Net, b: &Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// The first thing in `taken` that overlaps `subnet`, as an error.
pub fn check_overlap(subnet: Ipv4Net, taken: &[Taken]) -> Result<(), IpamError> {
    match taken.iter().find(|t| overlaps(&subnet, &t.subnet())) {
        Some(t) => Err(IpamError::Overlap {
            subnet,
            with: t.clone(),
        }),
        None => Ok(()),
    }
}

/// The first default pool that overlaps nothing in `taken`.
pub fn pick_subnet(taken: &[Taken]) -> Result<Ipv4Net, IpamError> {
    default_pools()
        .into_iter()
        .find(|p| check_overlap(*p, taken).is_ok())
        .ok_or(IpamError::PoolsExhausted)
}

/// Validated address plan of one network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub subnet: Ipv4Net,
    pub gateway: Ipv4Addr,
    pub ip_range: Option<Ipv4Net>,
}

/// Checks subnet, gateway and ip-range together; the gateway defaults to the first host address.
pub fn plan(
    subnet: Ipv4Net,
    gateway: Option<Ipv4Addr>,
    ip_range: Option<Ipv4Net>,
) -> Result<Plan, IpamError> {
    if subnet.prefix_len() > 30 {
        return Err(IpamError::TooSmall(subnet));
    }
    let gateway = match gateway {
        Some(g) if !subnet.contains(&g) => {
            return Err(IpamError::GatewayOutside { gateway: g, subnet });
        }
        Some(g) if g == subnet.network() || g == subnet.broadcast() => {
            return Err(IpamError::GatewayReserved(g));
        }
        Some(g) => g,
        None => next(subnet.network()),
    };
    if let Some(r) = ip_range
        && !(subnet.contains(&r.network()) && subnet.contains(&r.broadcast()))
    {
        return Err(IpamError::RangeOutside { range: r, subnet });
    }
    Ok(Plan {
        subnet,
        gateway,
        ip_range,
    })
}

fn next(ip: Ipv4Addr) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(ip).wrapping_add(1))
}

/// Picks an address for a new endpoint: the requested one (checked) or the first free one in
/// the ip-range (or the subnet). `used` maps every allocated address; `holder` names its user.
pub fn allocate(
    network: &str,
    plan: &Plan,
    used: &BTreeSet<Ipv4Addr>,
    holder: impl Fn(Ipv4Addr) -> Option<String>,
    requested: Option<Ipv4Addr>,
) -> Result<Ipv4Addr, IpamError> {
    let reserved = |ip: Ipv4Addr| {
        ip == plan.subnet.network() || ip == plan.subnet.broadcast() || ip == plan.gateway
    };
    if let Some(ip) = requested {
        if !plan.subnet.contains(&ip) {
            return Err(IpamError::AddressOutside {
                ip,
                subnet: plan.subnet,
                network: network.to_string(),
            });
        }
        if reserved(ip) {
            return Err(IpamError::AddressReserved {
                ip,
                network: network.to_string(),
            });
        }
        if used.contains(&ip) {
            return Err(IpamError::AddressInUse {
                ip,
                network: network.to_string(),
                holder: holder(ip),
            });
        }
        return Ok(ip);
    }
    let range = plan.ip_range.unwrap_or(plan.subnet);
    let (first, last) = (u32::from(range.network()), u32::from(range.broadcast()));
    (first..=last)
        .map(Ipv4Addr::from)
        .find(|ip| !reserved(*ip) && !used.contains(ip))
        .ok_or(IpamError::Exhausted {
            range,
            network: network.to_string(),
        })
}

/// IPv4 routes of the host (from /proc/net/route), without the default route.
pub fn host_routes() -> Vec<Taken> {
    std::fs::read_to_string("/proc/net/route")
        .map(|text| parse_proc_route(&text))
        .unwrap_or_default()
}

fn parse_proc_route(text: &str) -> Vec<Taken> {
    let hex = |s: &str| {
        u32::from_str_radix(s, 16)
            .ok()
            .map(|v| Ipv4Addr::from(v.swap_bytes()))
    };
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let (dev, dest, mask) = (cols.first()?, hex(cols.get(1)?)?, hex(cols.get(7)?)?);
            let prefix = u32::from(mask).leading_ones() as u8;
            if prefix == 0 {
                return None;
            }
            Some(Taken::HostRoute {
                subnet: Ipv4Net::new(dest, prefix).ok()?.trunc(),
                device: dev.to_string(),
            })
        })
        .collect()
}

/// Docker-style MAC for an IPv4 address: 02:42 followed by the address bytes.
pub fn mac_for(ip: Ipv4Addr) -> String {
    let o = ip.octets();
    format!("02:42:{:02x}:{:02x}:{:02x}:{:02x}", o[0], o[1], o[2], o[3])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        parse_subnet(s).unwrap()
    }

    #[test]
    fn default_bridge_pool_skips_an_overlapping_host_route() {
        assert_eq!(pick_subnet(&[]).unwrap(), net("172.17.0.0/16"));
        let docker0 = Taken::HostRoute {
            subnet: net("172.17.0.0/16"),
            device: "docker0".into(),
        };
        let other = Taken::Network {
            name: "a".into(),
            subnet: net("172.18.0.0/24"),
        };
        assert_eq!(
            pick_subnet(&[docker0, other]).unwrap(),
            net("172.19.0.0/16")
        );
    }

    #[test]
    fn pools_continue_into_192_168() {
        let taken: Vec<Taken> = (17..=31)
            .map(|b| Taken::Network {
                name: format!("n{b}"),
                subnet: Ipv4Net::new(Ipv4Addr::new(172, b, 0, 0), 16).unwrap(),
            })
            .collect();
        assert_eq!(pick_subnet(&taken).unwrap(), net("192.168.0.0/20"));
    }

    #[test]
    fn overlap_names_the_culprit() {
        let taken = [Taken::Network {
            name: "front".into(),
            subnet: net("10.1.0.0/16"),
        }];
        let err = check_overlap(net("10.1.2.0/24"), &taken).unwrap_err();
        assert!(err.to_string().contains("network \"front\""), "{err}");
        assert!(check_overlap(net("10.2.0.0/24"), &taken).is_ok());
    }

    #[test]
    fn gateway_and_range_are_validated() {
        let s = net("10.9.0.0/24");
        assert_eq!(
            plan(s, None, None).unwrap().gateway,
            Ipv4Addr::new(10, 9, 0, 1)
        );
        assert!(matches!(
            plan(s, Some(Ipv4Addr::new(10, 8, 0, 1)), None),
            Err(IpamError::GatewayOutside { .. })
        ));
        assert!(matches!(
            plan(s, Some(Ipv4Addr::new(10, 9, 0, 255)), None),
            Err(IpamError::GatewayReserved(_))
        ));
        assert!(matches!(
            plan(s, None, Some(net("10.9.1.0/28"))),
            Err(IpamError::RangeOutside { .. })
        ));
        assert!(matches!(
            plan(net("10.9.0.0/31"), None, None),
            Err(IpamError::TooSmall(_))
        ));
    }

    #[test]
    fn allocation_skips_reserved_and_used_and_honours_range() {
        let p = plan(net("10.9.0.0/24"), None, None).unwrap();
        let mut used = BTreeSet::new();
        let a = allocate("n", &p, &used, |_| None, None).unwrap();
        assert_eq!(a, Ipv4Addr::new(10, 9, 0, 2));
        used.insert(a);
        assert_eq!(
            allocate("n", &p, &used, |_| None, None).unwrap(),
            Ipv4Addr::new(10, 9, 0, 3)
        );
        let err = allocate("n", &p, &used, |_| Some("web".into()), Some(a)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "address 10.9.0.2 is already in use on network n (by web)"
        );
        assert!(matches!(
            allocate("n", &p, &used, |_| None, Some(p.gateway)),
            Err(IpamError::AddressReserved { .. })
        ));
        let ranged = plan(net("10.9.0.0/24"), None, Some(net("10.9.0.128/25"))).unwrap();
        assert_eq!(
            allocate("n", &ranged, &used, |_| None, None).unwrap(),
            Ipv4Addr::new(10, 9, 0, 128)
        );
        let tiny = plan(net("10.9.0.0/30"), None, None).unwrap();
        let used: BTreeSet<_> = [Ipv4Addr::new(10, 9, 0, 2)].into();
        assert!(matches!(
            allocate("n", &tiny, &used, |_| None, None),
            Err(IpamError::Exhausted { .. })
        ));
    }

    #[test]
    fn proc_route_is_parsed() {
        let text = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
                    eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
                    docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n";
        assert_eq!(
            parse_proc_route(text),
            vec![Taken::HostRoute {
                subnet: net("172.17.0.0/16"),
                device: "docker0".into()
            }]
        );
    }

    #[test]
    fn subnet_is_normalised_and_mac_is_docker_shaped() {
        assert_eq!(parse_subnet("10.1.2.3/24").unwrap(), net("10.1.2.0/24"));
        assert!(parse_subnet("nope").is_err());
        assert_eq!(mac_for(Ipv4Addr::new(172, 17, 0, 2)), "02:42:ac:11:00:02");
    }
}
