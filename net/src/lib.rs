//! rcompose-net: container networking without a daemon.
//!
//! Module boundaries follow DESIGN.md: `ipam`, `bridge`/`netns` (netlink), `firewall`
//! (trait + nftables backend), `ports`, `dns` (pure lookup core + server).
