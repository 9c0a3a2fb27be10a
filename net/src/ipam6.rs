//! IPv6 address management for dual-stack networks: the IPv6 subnet (given with `--subnet`, or
//! a unique local /64 derived from the network's id when only `--ipv6` is asked, as newer
//! Docker does), the gateway (first address unless given), and endpoint addresses (the lowest
//! free one from `::2` up, or a requested one, checked). Pure, like `ipam`.

use std::collections::BTreeSet;
use std::net::Ipv6Addr;

use ipnet::Ipv6Net;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Ipam6Error {
    #[error("IPv6 subnet {0} is too small: use a /64 (or at most a /120)")]
    TooSmall(Ipv6Net),
    #[error("IPv6 gateway {gateway} is outside subnet {subnet}")]
    GatewayOutside { gateway: Ipv6Addr, subnet: Ipv6Net },
    #[error("IPv6 gateway {0} is the network address of its subnet")]
    GatewayReserved(Ipv6Addr),
    #[error(
        "IPv6 subnet {subnet} overlaps subnet {other} of network {network}: choose another --subnet"
    )]
    Overlap {
        subnet: Ipv6Net,
        other: Ipv6Net,
        network: String,
    },
    #[error(
        "network {network} has no IPv6: create it with --ipv6 (compose: enable_ipv6: true) to give containers an IPv6 address"
    )]
    NotEnabled { network: String },
    #[error("address {ip} is outside IPv6 subnet {subnet} of network {network}")]
    AddressOutside {
        ip: Ipv6Addr,
        subnet: Ipv6Net,
        network: String,
    },
    #[error("address {ip} is reserved on network {network} (network address or gateway)")]
    AddressReserved { ip: Ipv6Addr, network: String },
    #[error("address {ip} is already in use on network {network}{}", holder.as_ref().map(|h| format!(" (by {h})")).unwrap_or_default())]
    AddressInUse {
        ip: Ipv6Addr,
        network: String,
        holder: Option<String>,
    },
    #[error("no free IPv6 address left in {subnet} on network {network}")]
    Exhausted { subnet: Ipv6Net, network: String },
}

/// A network's IPv6 side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Plan6 {
    pub subnet: Ipv6Net,
    pub gateway: Ipv6Addr,
}

/// A unique local /64 (fd00::/8, RFC 4193) derived from `seed` (the network id), so that each
/// network gets its own and the same id always gets the same one.
pub fn ula_for(seed: &str) -> Ipv6Net {
    let hash = seed.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    });
    let mut octets = [0u8; 16];
    octets[0] = 0xfd;
    octets[1..8].copy_from_slice(&hash.to_be_bytes()[..7]);
    Ipv6Net::new(Ipv6Addr::from(octets), 64).expect("64 is a valid prefix")
}

/// Checks subnet and gateway together; picks a ULA /64 when no subnet is given. `others`: the
/// IPv6 subnets of the other networks, by name.
pub fn plan6(
    subnet: Option<Ipv6Net>,
    gateway: Option<Ipv6Addr>,
    seed: &str,
    others: &[(String, Ipv6Net)],
) -> Result<Plan6, Ipam6Error> {
    let subnet = subnet.map(|s| s.trunc()).unwrap_or_else(|| ula_for(seed));
    if subnet.prefix_len() > 120 {
        return Err(Ipam6Error::TooSmall(subnet));
    }
    if let Some((network, other)) = others
        .iter()
        .find(|(_, o)| o.contains(&subnet.network()) || subnet.contains(&o.network()))
    {
        return Err(Ipam6Error::Overlap {
            subnet,
            other: *other,
            network: network.clone(),
        });
    }
    let gateway = match gateway {
        Some(g) if !subnet.contains(&g) => {
            return Err(Ipam6Error::GatewayOutside { gateway: g, subnet });
        }
        Some(g) if g == subnet.network() => return Err(Ipam6Error::GatewayReserved(g)),
        Some(g) => g,
        None => offset(subnet.network(), 1),
    };
    Ok(Plan6 { subnet, gateway })
}

fn offset(ip: Ipv6Addr, by: u128) -> Ipv6Addr {
    Ipv6Addr::from(u128::from(ip).wrapping_add(by))
}

/// An endpoint's IPv6 address: `requested` (checked) or the lowest free one after the
/// network address, skipping the gateway.
pub fn allocate6(
    network: &str,
    plan: &Plan6,
    used: &BTreeSet<Ipv6Addr>,
    holder: impl Fn(Ipv6Addr) -> Option<String>,
    requested: Option<Ipv6Addr>,
) -> Result<Ipv6Addr, Ipam6Error> {
    if let Some(ip) = requested {
        if !plan.subnet.contains(&ip) {
            return Err(Ipam6Error::AddressOutside {
                ip,
                subnet: plan.subnet,
                network: network.into(),
            });
        }
        if ip == plan.subnet.network() || ip == plan.gateway {
            return Err(Ipam6Error::AddressReserved {
                ip,
                network: network.into(),
            });
        }
        if used.contains(&ip) {
            return Err(Ipam6Error::AddressInUse {
                ip,
                network: network.into(),
                holder: holder(ip),
            });
        }
        return Ok(ip);
    }
    // At most used.len() + 2 candidates are ever looked at.
    let size = 1u128 << (128 - u32::from(plan.subnet.prefix_len()));
    (1..size.min(used.len() as u128 + 3))
        .map(|i| offset(plan.subnet.network(), i))
        .find(|ip| *ip != plan.gateway && !used.contains(ip))
        .ok_or(Ipam6Error::Exhausted {
            subnet: plan.subnet,
            network: network.into(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv6Net {
        s.parse().unwrap()
    }

    #[test]
    fn ula_subnets_are_stable_unique_local_64s() {
        let a = ula_for("abc");
        assert_eq!(a, ula_for("abc"));
        assert_ne!(a, ula_for("abd"));
        assert_eq!(a.prefix_len(), 64);
        assert_eq!(a.network().octets()[0], 0xfd);
    }

    #[test]
    fn plans_check_gateway_size_and_overlap() {
        let p = plan6(Some(net("fd00:1::/64")), None, "x", &[]).unwrap();
        assert_eq!(p.gateway, "fd00:1::1".parse::<Ipv6Addr>().unwrap());
        let given = plan6(
            Some(net("fd00:1::/64")),
            Some("fd00:1::fe".parse().unwrap()),
            "x",
            &[],
        );
        assert_eq!(
            given.unwrap().gateway,
            "fd00:1::fe".parse::<Ipv6Addr>().unwrap()
        );
        assert!(matches!(
            plan6(
                Some(net("fd00:1::/64")),
                Some("fd00:2::1".parse().unwrap()),
                "x",
                &[]
            ),
            Err(Ipam6Error::GatewayOutside { .. })
        ));
        assert!(matches!(
            plan6(Some(net("fd00:1::/126")), None, "x", &[]),
            Err(Ipam6Error::TooSmall(_))
        ));
        let others = vec![("other".to_string(), net("fd00:1::/48"))];
        let err = plan6(Some(net("fd00:1:0:5::/64")), None, "x", &others).unwrap_err();
        assert!(err.to_string().contains("network other"), "{err}");
    }

    #[test]
    fn allocation_skips_the_gateway_and_used_and_checks_requests() {
        let p = plan6(Some(net("fd00:1::/64")), None, "x", &[]).unwrap();
        let ip = |s: &str| s.parse::<Ipv6Addr>().unwrap();
        let mut used = BTreeSet::new();
        assert_eq!(
            allocate6("n", &p, &used, |_| None, None).unwrap(),
            ip("fd00:1::2")
        );
        used.insert(ip("fd00:1::2"));
        assert_eq!(
            allocate6("n", &p, &used, |_| None, None).unwrap(),
            ip("fd00:1::3")
        );
        let in_use = allocate6(
            "n",
            &p,
            &used,
            |_| Some("web".into()),
            Some(ip("fd00:1::2")),
        );
        assert_eq!(
            in_use.unwrap_err().to_string(),
            "address fd00:1::2 is already in use on network n (by web)"
        );
        assert!(matches!(
            allocate6("n", &p, &used, |_| None, Some(ip("fd00:1::1"))),
            Err(Ipam6Error::AddressReserved { .. })
        ));
        assert!(matches!(
            allocate6("n", &p, &used, |_| None, Some(ip("fd00:9::1"))),
            Err(Ipam6Error::AddressOutside { .. })
        ));
        let tiny = plan6(Some(net("fd00:1::/120")), None, "x", &[]).unwrap();
        let full: BTreeSet<Ipv6Addr> = (2..256u128)
            .map(|i| offset(tiny.subnet.network(), i))
            .collect();
        assert!(matches!(
            allocate6("n", &tiny, &full, |_| None, None),
            Err(Ipam6Error::Exhausted { .. })
        ));
    }
}
