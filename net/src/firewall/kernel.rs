//! Facts the firewall backends read from the kernel to skip work that is already done.

/// This boot's id: ruleset generations restart from zero at boot.
pub fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// The kernel's nftables ruleset generation (NFT_MSG_GETGEN over netfilter netlink), which
/// every committed ruleset change increments. `None` when it cannot be read.
pub fn ruleset_generation() -> Option<u32> {
    const NFNL_SUBSYS_NFTABLES: u16 = 10;
    const NFT_MSG_NEWGEN: u16 = 15;
    const NFT_MSG_GETGEN: u16 = 16;
    const NFTA_GEN_ID: u16 = 1;
    // SAFETY: plain socket(2); the fd is owned right away.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_NETFILTER,
        )
    };
    if fd < 0 {
        return None;
    }
    // SAFETY: fresh fd we own.
    let sock = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    let raw = std::os::fd::AsRawFd::as_raw_fd(&sock);
    // nlmsghdr (16 bytes) + nfgenmsg (family AF_UNSPEC, version 0, res_id 0).
    let mut req = Vec::with_capacity(20);
    req.extend_from_slice(&20u32.to_ne_bytes());
    req.extend_from_slice(&((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETGEN).to_ne_bytes());
    req.extend_from_slice(&(libc::NLM_F_REQUEST as u16).to_ne_bytes());
    req.extend_from_slice(&1u32.to_ne_bytes());
    req.extend_from_slice(&0u32.to_ne_bytes());
    req.extend_from_slice(&[0, 0, 0, 0]);
    // SAFETY: send/recv on our socket with buffers of the given lengths.
    let sent = unsafe { libc::send(raw, req.as_ptr().cast(), req.len(), 0) };
    if sent != req.len() as isize {
        return None;
    }
    let mut buf = [0u8; 512];
    // SAFETY: as above.
    let n = unsafe { libc::recv(raw, buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n < 20 {
        return None;
    }
    let msg = &buf[..n as usize];
    let u16_at = |i: usize| u16::from_ne_bytes([msg[i], msg[i + 1]]);
    let len = (u32::from_ne_bytes([msg[0], msg[1], msg[2], msg[3]]) as usize).min(msg.len());
    if u16_at(4) != (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWGEN {
        return None;
    }
    // Attributes after the headers: (len u16, type u16, value), 4-byte aligned.
    let mut i = 20;
    while i + 4 <= len {
        let alen = u16_at(i) as usize;
        if alen < 4 || i + alen > len {
            return None;
        }
        if u16_at(i + 2) & 0x3fff == NFTA_GEN_ID && alen >= 8 {
            return Some(u32::from_be_bytes([
                msg[i + 4],
                msg[i + 5],
                msg[i + 6],
                msg[i + 7],
            ]));
        }
        i += (alen + 3) & !3;
    }
    None
}

/// A cheap fingerprint of an iptables-legacy `filter` table (IPv4, or IPv6 with `v6`): the
/// kernel's table info (hooks, entry count and size) through `IPT_SO_GET_INFO`, which changes
/// whenever a rule or chain is added or removed. `None` when the table cannot be read (callers
/// then read the table itself). Only call it for a table listed in `ip*_tables_names`: asking
/// for one that does not exist would load the module.
pub fn legacy_table_fingerprint(v6: bool) -> Option<String> {
    const SO_GET_INFO: libc::c_int = 64; // IPT_SO_GET_INFO and IP6T_SO_GET_INFO
    let (domain, level) = if v6 {
        (libc::AF_INET6, libc::IPPROTO_IPV6)
    } else {
        (libc::AF_INET, libc::IPPROTO_IP)
    };
    // SAFETY: plain socket(2); the fd is owned right away.
    let fd = unsafe {
        libc::socket(
            domain,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::IPPROTO_RAW,
        )
    };
    if fd < 0 {
        return None;
    }
    // SAFETY: fresh fd we own.
    let sock = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    // struct ipt_getinfo: name[32], valid_hooks, hook_entry[5], underflow[5], num_entries, size.
    let mut info = [0u8; 84];
    info[..6].copy_from_slice(b"filter");
    let mut len = info.len() as libc::socklen_t;
    // SAFETY: getsockopt into a buffer of the given length on our socket.
    let rc = unsafe {
        libc::getsockopt(
            std::os::fd::AsRawFd::as_raw_fd(&sock),
            level,
            SO_GET_INFO,
            info.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if rc != 0 || len as usize != info.len() {
        return None;
    }
    Some(info[32..].iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    /// Against the real kernel: in a fresh namespace with a legacy filter table made by
    /// iptables-legacy, the fingerprint exists and changes when a rule is added.
    #[test]
    fn legacy_fingerprint_follows_rule_changes() {
        let Some(program) = super::super::iptables::find_program("iptables-legacy") else {
            eprintln!("skipped: iptables-legacy is not installed");
            return;
        };
        let ns = format!("rcfpunit{}", std::process::id());
        let ip = |args: &[&str]| {
            std::process::Command::new("ip")
                .args(args)
                .status()
                .unwrap()
        };
        assert!(ip(&["netns", "add", &ns]).success());
        let result = std::thread::scope(|s| {
            s.spawn(|| {
                let f = std::fs::File::open(format!("/run/netns/{ns}")).unwrap();
                // SAFETY: setns on a valid fd; it affects only this scoped thread.
                let rc =
                    unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&f), libc::CLONE_NEWNET) };
                assert_eq!(rc, 0);
                let ipt = |args: &[&str]| {
                    std::process::Command::new(&program)
                        .args(args)
                        .status()
                        .unwrap()
                };
                assert!(ipt(&["-w", "-S"]).success());
                let before = super::legacy_table_fingerprint(false);
                assert!(ipt(&["-w", "-A", "FORWARD", "-i", "rcfp0", "-j", "ACCEPT"]).success());
                let after = super::legacy_table_fingerprint(false);
                (before, after)
            })
            .join()
        });
        ip(&["netns", "del", &ns]);
        let (before, after) = result.unwrap();
        assert!(before.is_some());
        assert_ne!(before, after);
    }
}
