//! Bridges on the host and veth pairs into container namespaces, via rtnetlink.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use rtnetlink::packet_route::link::{
    AfSpecInet6, AfSpecUnspec, In6AddrGenMode, InfoData, InfoVeth, LinkAttribute,
};
use rtnetlink::{LinkBridge, LinkMessageBuilder, LinkUnspec, LinkVeth, RouteMessageBuilder};

use crate::netns::{NetnsError, is_exists, link_index, link_names, nl, run_in};

#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    #[error(transparent)]
    Netns(#[from] NetnsError),
    #[error("cannot set {path}: {source}")]
    Sysctl {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("interface {0} vanished while it was being configured")]
    Vanished(String),
}

/// Creates the bridge (if missing) with the gateway address (and the IPv6 gateway of a
/// dual-stack network), up, and lets DNAT from 127.0.0.1 reach it (`route_localnet`).
/// Idempotent, so it also repairs a bridge lost in a reboot.
pub fn ensure_bridge(
    name: &str,
    gateway: Ipv4Addr,
    prefix: u8,
    gateway6: Option<(Ipv6Addr, u8)>,
) -> Result<(), BridgeError> {
    if gateway6.is_none() && bridge_ready(name, gateway) {
        return Ok(());
    }
    let br = name.to_string();
    run_in(None, move |h| async move {
        let index = match link_index(&h, &br).await? {
            Some(i) => i,
            None => {
                // A fixed MAC: otherwise the bridge takes the lowest MAC of its ports and
                // changes it as containers come and go, and every container's ARP entry for
                // the gateway (DNS, default route) goes stale until it is re-resolved.
                let mac =
                    parse_mac(&crate::ipam::mac_for(gateway)).unwrap_or([2, 0x42, 0, 0, 0, 1]);
                let add = h
                    .link()
                    .add(LinkBridge::new(&br).address(mac.to_vec()).build())
                    .execute()
                    .await;
                match add {
                    Ok(()) => {}
                    Err(e) if is_exists(&e) => {}
                    Err(e) => return Err(nl(format!("create bridge {br}"))(e)),
                }
                link_index(&h, &br).await?.ok_or_else(|| {
                    NetnsError::Io(std::io::Error::other(format!("bridge {br} vanished")))
                })?
            }
        };
        match h
            .address()
            .add(index, IpAddr::V4(gateway), prefix)
            .execute()
            .await
        {
            Ok(()) => {}
            Err(e) if is_exists(&e) => {}
            Err(e) => return Err(nl(format!("add {gateway}/{prefix} to {br}"))(e)),
        }
        if let Some((gw6, prefix6)) = gateway6 {
            add_address6(&h, index, gw6, prefix6, &br).await?;
        }
        h.link()
            .set(LinkUnspec::new_with_index(index).up().build())
            .execute()
            .await
            .map_err(nl(format!("set {br} up")))
    })?;
    write_sysctl(
        &format!("/proc/sys/net/ipv4/conf/{name}/route_localnet"),
        "1",
    )
}

/// Whether the bridge is there, up, with `gateway` as its IPv4 address and `route_localnet`
/// on: the state `ensure_bridge` makes, read with three cheap calls instead of a netlink
/// worker thread (every container start asks).
fn bridge_ready(name: &str, gateway: Ipv4Addr) -> bool {
    let Ok((sock, mut ifr)) = ifreq(name) else {
        return false;
    };
    // SAFETY: SIOCGIFFLAGS/SIOCGIFADDR on our own socket with an ifreq naming the link; the
    // address is read as the sockaddr_in the kernel wrote for AF_INET.
    let (up, addr) = unsafe {
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut ifr) < 0 {
            return false;
        }
        let up = ifr.ifr_ifru.ifru_flags & (libc::IFF_UP as libc::c_short) != 0;
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFADDR, &mut ifr) < 0 {
            return false;
        }
        let sin = &*(&ifr.ifr_ifru.ifru_addr as *const libc::sockaddr as *const libc::sockaddr_in);
        (up, Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)))
    };
    up && addr == gateway
        && std::fs::read_to_string(format!("/proc/sys/net/ipv4/conf/{name}/route_localnet"))
            .is_ok_and(|v| v.trim() == "1")
}

/// Adds an IPv6 address without duplicate address detection: the address is ours by
/// allocation, and DAD would keep it "tentative", unusable, for a second or two after every
/// container start.
async fn add_address6(
    h: &rtnetlink::Handle,
    index: u32,
    ip: Ipv6Addr,
    prefix: u8,
    ifname: &str,
) -> Result<(), NetnsError> {
    use rtnetlink::packet_route::address::{AddressAttribute, AddressFlags};
    let mut req = h.address().add(index, IpAddr::V6(ip), prefix);
    req.message_mut()
        .attributes
        .push(AddressAttribute::Flags(AddressFlags::Nodad));
    match req.execute().await {
        Ok(()) => Ok(()),
        Err(e) if is_exists(&e) => Ok(()),
        Err(e) => Err(nl(format!("add {ip}/{prefix} to {ifname}"))(e)),
    }
}

/// Deletes a link on the host; a missing link is fine (already gone).
pub fn delete_link(name: &str) -> Result<(), BridgeError> {
    let n = name.to_string();
    run_in(None, move |h| async move {
        let Some(index) = link_index(&h, &n).await? else {
            return Ok(());
        };
        match h.link().del(index).execute().await {
            Err(rtnetlink::Error::NetlinkError(m)) if m.raw_code().abs() == libc::ENODEV => Ok(()),
            other => other.map_err(nl(format!("delete {n}"))),
        }
    })?;
    Ok(())
}

/// Sets a host link down; a missing link is fine. A veth end that is down takes no part in
/// its bridge any more (no forwarding, its learnt addresses flushed) and answers no ARP, so
/// the address of a released endpoint can go to the next container at once, while the
/// deletion itself (which waits for RCU grace periods in the kernel) happens later.
/// Through ioctl on the calling thread (which must be in the host's namespace): no netlink
/// worker thread for one flag.
pub fn set_down(name: &str) -> Result<(), BridgeError> {
    let res = (|| -> std::io::Result<()> {
        let (sock, mut ifr) = ifreq(name)?;
        // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS on our own socket with an ifreq naming the link.
        unsafe {
            if libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut ifr) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            ifr.ifr_ifru.ifru_flags &= !(libc::IFF_UP as libc::c_short);
            if libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &ifr) < 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok(())
    })();
    match res {
        Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(()),
        other => other.map_err(|e| {
            NetnsError::Io(std::io::Error::other(format!("set {name} down: {e}"))).into()
        }),
    }
}

/// A datagram socket in the calling thread's namespace and an ifreq naming `name`.
fn ifreq(name: &str) -> std::io::Result<(std::os::fd::OwnedFd, libc::ifreq)> {
    use std::os::fd::FromRawFd;
    if name.is_empty() || name.len() >= libc::IFNAMSIZ {
        return Err(std::io::Error::from_raw_os_error(libc::ENODEV));
    }
    // SAFETY: plain socket(2); the fd is owned right away.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let sock = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
    // SAFETY: ifreq is plain data; all zeroes is a valid value.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    for (i, b) in name.bytes().enumerate() {
        ifr.ifr_name[i] = b as libc::c_char;
    }
    Ok((sock, ifr))
}

/// Names of the links plugged into bridge `name` (none when it does not exist).
pub fn ports_of(name: &str) -> Result<Vec<String>, BridgeError> {
    use futures::TryStreamExt;
    use rtnetlink::packet_route::link::LinkAttribute;
    let n = name.to_string();
    Ok(run_in(None, move |h| async move {
        let Some(index) = link_index(&h, &n).await? else {
            return Ok(vec![]);
        };
        let mut out = vec![];
        let mut links = h.link().get().execute();
        while let Some(msg) = links.try_next().await.map_err(nl("list links"))? {
            let attrs = &msg.attributes;
            if attrs.contains(&LinkAttribute::Controller(index))
                && let Some(LinkAttribute::IfName(name)) =
                    attrs.iter().find(|a| matches!(a, LinkAttribute::IfName(_)))
            {
                out.push(name.clone());
            }
        }
        Ok(out)
    })?)
}

/// Whether a link exists in the calling thread's namespace (the host's). if_nametoindex is
/// one ioctl: no netlink worker thread.
pub fn link_exists(name: &str) -> Result<bool, BridgeError> {
    let Ok(c) = std::ffi::CString::new(name) else {
        return Ok(false);
    };
    // SAFETY: if_nametoindex reads the NUL-terminated name.
    if unsafe { libc::if_nametoindex(c.as_ptr()) } != 0 {
        return Ok(true);
    }
    match std::io::Error::last_os_error().raw_os_error() {
        Some(libc::ENODEV) | Some(libc::ENXIO) | None => Ok(false),
        Some(e) => Err(NetnsError::Io(std::io::Error::from_raw_os_error(e)).into()),
    }
}

/// What to configure inside the container for one attachment.
#[derive(Debug, Clone)]
pub struct VethPlan {
    pub bridge: String,
    pub host_ifname: String,
    pub netns: PathBuf,
    pub ip: Ipv4Addr,
    pub prefix: u8,
    pub mac: [u8; 6],
    /// Set a default route via this gateway (unless the namespace already has one).
    pub default_gateway: Option<Ipv4Addr>,
    /// The IPv6 address and prefix on a dual-stack network.
    pub ip6: Option<(Ipv6Addr, u8)>,
    /// Set an IPv6 default route via this gateway (unless there is one).
    pub default_gateway6: Option<Ipv6Addr>,
}

/// Creates the veth pair with the host end plugged into the bridge and up and the other end
/// born inside the namespace as the next free `ethN`, with its MAC address, then configures
/// it. Returns the name inside. On failure the pair is deleted again.
///
/// One request creates it all: moving an existing interface into another namespace costs the
/// kernel an unregister/register cycle with RCU waits (~15 ms, on every container start),
/// while creating the peer in its namespace directly costs nothing extra. Naming it there at
/// once spares a rename, which waits for an RCU grace period with the kernel's rtnl lock
/// held, stalling every other start's netlink work meanwhile.
pub fn attach_veth(plan: &VethPlan) -> Result<String, BridgeError> {
    let ns_file = std::fs::File::open(&plan.netns).map_err(|source| NetnsError::Open {
        path: plan.netns.clone(),
        source,
    })?;
    let plan_inside = plan.clone();
    let res = crate::netns::run_host_and_in(&plan.netns, move |host, inside| async move {
        let plan = plan_inside;
        let names = link_names(&inside).await?;
        let ifname = (0..)
            .map(|i| format!("eth{i}"))
            .find(|n| !names.contains(n))
            .expect("an unused ethN exists");
        let bridge = &plan.bridge;
        let br_index = link_index(&host, bridge).await?.ok_or_else(|| {
            NetnsError::Io(std::io::Error::other(format!("bridge {bridge} is missing")))
        })?;
        let peer_msg = LinkUnspec::new_with_name(&ifname)
            .address(plan.mac.to_vec())
            .setns_by_fd(ns_file.as_raw_fd())
            .build();
        let host_if = &plan.host_ifname;
        let veth = LinkVeth::new(host_if, &ifname)
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer_msg)))
            .controller(br_index)
            .up()
            .build();
        host.link().add(veth).execute().await.map_err(nl(format!(
            "create veth pair {host_if}/{ifname} on {bridge} into the container's namespace"
        )))?;
        // A bridge port needs no address of its own (bridged IPv6 flows all the same);
        // before its peer comes up, so that it never makes one.
        no_ipv6_addresses(&host, LinkUnspec::new_with_name(host_if)).await;
        configure_inside(inside, &plan, &ifname).await?;
        Ok(ifname)
    });
    match res {
        Ok(name) => Ok(name),
        Err(e) => {
            // Whichever half failed: the pair goes (deleting the host end deletes both).
            let _ = delete_link(&plan.host_ifname);
            Err(e.into())
        }
    }
}

/// Keeps an interface from making IPv6 addresses (addr_gen_mode none), before it comes up.
/// Otherwise each new port makes a link-local address and announces it (duplicate address
/// detection, MLD, router solicitations): multicast the bridge floods to every other port,
/// so the cost of a start grew with the number of containers on the network (a tenth of
/// the CPU of `up -d` at 300 services). Netlink, not /proc/sys/net/ipv6/conf/IF/disable_ipv6:
/// each network namespace has its own `ipv6` entry under the one `/proc/sys/net`, so a
/// lookup there walks past those of every other namespace. Best effort: a host booted
/// without IPv6 refuses the attribute, and has nothing to keep quiet.
async fn no_ipv6_addresses(h: &rtnetlink::Handle, link: LinkMessageBuilder<LinkUnspec>) {
    let msg = link
        .append_extra_attribute(LinkAttribute::AfSpecUnspec(vec![AfSpecUnspec::Inet6(
            vec![AfSpecInet6::AddrGenMode(In6AddrGenMode::None)],
        )]))
        .build();
    let _ = h.link().set(msg).execute().await;
}

async fn configure_inside(
    h: rtnetlink::Handle,
    plan: &VethPlan,
    ifname: &str,
) -> Result<(), NetnsError> {
    let index = link_index(&h, ifname)
        .await?
        .ok_or_else(|| NetnsError::Io(std::io::Error::other(format!("{ifname} vanished"))))?;
    if plan.ip6.is_none() {
        // As Docker: no IPv6 address on an interface whose network has none.
        no_ipv6_addresses(&h, LinkUnspec::new_with_index(index)).await;
    }
    h.address()
        .add(index, IpAddr::V4(plan.ip), plan.prefix)
        .execute()
        .await
        .map_err(nl(format!("add {}/{} to {ifname}", plan.ip, plan.prefix)))?;
    if let Some((ip6, prefix6)) = plan.ip6 {
        add_address6(&h, index, ip6, prefix6, ifname).await?;
    }
    h.link()
        .set(LinkUnspec::new_with_index(index).up().build())
        .execute()
        .await
        .map_err(nl(format!("set {ifname} up")))?;
    if let Some(lo) = link_index(&h, "lo").await? {
        h.link()
            .set(LinkUnspec::new_with_index(lo).up().build())
            .execute()
            .await
            .map_err(nl("set lo up"))?;
    }
    if let Some(gw) = plan.default_gateway {
        let route = RouteMessageBuilder::<Ipv4Addr>::new()
            .destination_prefix(Ipv4Addr::UNSPECIFIED, 0)
            .gateway(gw)
            .output_interface(index)
            .build();
        match h.route().add(route).execute().await {
            Ok(()) => {}
            // The container already has a default route through its first network.
            Err(e) if is_exists(&e) => {}
            Err(e) => return Err(nl(format!("default route via {gw}"))(e)),
        }
    }
    if let Some(gw6) = plan.default_gateway6 {
        let route = RouteMessageBuilder::<Ipv6Addr>::new()
            .destination_prefix(Ipv6Addr::UNSPECIFIED, 0)
            .gateway(gw6)
            .output_interface(index)
            .build();
        match h.route().add(route).execute().await {
            Ok(()) => {}
            Err(e) if is_exists(&e) => {}
            Err(e) => return Err(nl(format!("IPv6 default route via {gw6}"))(e)),
        }
    }
    Ok(())
}

/// Removes an attachment: deleting the host end removes both ends. If the namespace is gone the
/// pair is gone already.
pub fn detach_veth(host_ifname: &str) -> Result<(), BridgeError> {
    delete_link(host_ifname)
}

pub fn write_sysctl(path: &str, value: &str) -> Result<(), BridgeError> {
    let p = Path::new(path);
    if std::fs::read_to_string(p).is_ok_and(|v| v.trim() == value) {
        return Ok(());
    }
    std::fs::write(p, value).map_err(|source| BridgeError::Sysctl {
        path: p.to_path_buf(),
        source,
    })
}

/// MAC bytes from "02:42:…".
pub fn parse_mac(mac: &str) -> Option<[u8; 6]> {
    let parts: Vec<u8> = mac
        .split(':')
        .map(|p| u8::from_str_radix(p, 16).ok())
        .collect::<Option<_>>()?;
    parts.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_parse() {
        assert_eq!(parse_mac("02:42:0a:00:00:02"), Some([2, 0x42, 10, 0, 0, 2]));
        assert_eq!(parse_mac("02:42"), None);
        assert_eq!(parse_mac("zz:42:0a:00:00:02"), None);
    }
}
