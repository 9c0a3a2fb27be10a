//! Embedded DNS: a pure lookup core (`table`) and a thin UDP/TCP server (`server`).

pub mod control;
pub mod message;
pub mod server;
pub mod table;
