//! rcompose-engine: the embedded, daemonless container engine.
//!
//! Module boundaries follow DESIGN.md: `store` (content-addressed blobs, layers, image index),
//! `image` (references, configs, registry client, archives), `unpack` (safe layer extraction),
//! and, as they land, `container`, `runtime`, `monitor`, `volume`, `logs`, `build`.
//! Library code never prints and never exits: it returns typed errors and emits events.

pub mod image;
pub mod store;
pub mod unpack;

pub mod container;
pub mod doctor;
pub mod logs;
pub mod monitor;
pub mod rootfs;
pub mod runtime;
pub mod volume;
