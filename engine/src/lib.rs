//! rcompose-engine: the embedded, daemonless container engine.
//!
//! Module boundaries follow DESIGN.md: `store` (content-addressed blobs, layers, image index),
//! `image` (references, configs, registry client, archives), `unpack` (safe layer extraction),
//! `container`, `runtime`, `monitor`, `rootfs`, `volume`, `logs`; `units` holds docker's size,
//! duration and time forms for the engine and the CLI alike.
//! Library code never prints and never exits: it returns typed errors and emits events.

pub mod build;
pub mod host;
pub mod image;
pub mod store;
pub mod unpack;

pub mod container;
pub mod doctor;
pub mod logs;
pub mod monitor;
pub mod rootfs;
pub mod runtime;
pub mod units;
pub mod usage;
pub mod volume;
