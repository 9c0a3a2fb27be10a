//! `rcompose dashboard`: a single page (HTML, CSS and JavaScript embedded in the binary)
//! and the small JSON API it reads, served over TCP with the API server's HTTP code
//! (`rcompose_api::http`), one plain thread per connection (the engine forks monitors, so no
//! async runtime), over the same state roots and library calls as the CLI.
//!
//! Layers: `auth` (who may ask: Host, Origin, token; pure), `routes` (method + path →
//! handler), `views` (read-only JSON), `logs` (server-sent events), `assets` (the page),
//! `server` (the listener).

pub mod assets;
pub mod auth;
pub mod logs;
pub mod routes;
pub mod server;
pub mod views;

pub use auth::{Guard, TOKEN_HEADER, new_token};
pub use server::{ServeError, bind, serve};

/// Where the dashboard listens unless `--listen` says otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9900";
