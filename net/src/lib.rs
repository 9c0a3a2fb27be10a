//! rcompose-net: container networking without a daemon.
//!
//! Module boundaries follow DESIGN.md: `ipam`, `bridge`/`netns` (netlink), `firewall`
//! (trait + nftables backend), `ports`, `dns` (pure lookup core + server).

pub mod api;
pub mod bridge;
pub mod dns;
pub mod doctor;
pub mod files;
pub mod firewall;
pub mod ipam;
pub mod ipam6;
pub mod mode;
pub mod netns;
pub mod network;
pub mod ports;
pub mod proxy;
pub mod store;

pub use api::{AttachRequest, Attachment, CreateRequest, NetError, Networks};
pub use files::HostsRequest;
pub use mode::NetworkMode;
pub use ports::{PortBinding, PortSpec, Proto};
