//! Who may use the dashboard: the checks every request passes before it is routed. Pure (a
//! request in, a verdict out), so each rule is unit-tested without a socket.
//!
//! - `Host` must name the address we listen on (or `localhost` on loopback): a page whose
//!   name was re-bound to our address (DNS rebinding) is refused.
//! - An `Origin`, when the browser sends one, must be this server's own: another site's
//!   page cannot drive the dashboard with the user's browser.
//! - State changes only by `POST` carrying the token in the `X-Rcompose-Token` header; a
//!   form or image on another site can send neither the header nor a same-origin `Origin`.
//! - Listening beyond loopback, every request carries the token: the header, or
//!   `?token=` on a `GET` (the first page load, where a browser cannot add headers).
//! - On loopback reads are open, but the page learns the token only from the address
//!   printed at start (`?token=`), so only who saw it can change anything.

use std::net::SocketAddr;

use rcompose_api::http::Request;

/// The header the page sends the token in.
pub const TOKEN_HEADER: &str = "X-Rcompose-Token";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error(
        "Host {0:?} is not this dashboard's address: open the address `rcompose dashboard` printed"
    )]
    Host(String),
    #[error("requests from origin {0:?} are refused: use the dashboard's own page")]
    Origin(String),
    #[error(
        "this dashboard requires its token: open the address with ?token= that `rcompose dashboard` printed, or send the {TOKEN_HEADER} header"
    )]
    MissingToken,
    #[error("wrong token: use the one `rcompose dashboard` printed at start")]
    WrongToken,
    #[error("method {0} is not allowed: the dashboard reads with GET and changes state with POST")]
    Method(String),
}

impl AuthError {
    /// The HTTP status of the refusal.
    pub fn status(&self) -> u16 {
        match self {
            Self::MissingToken | Self::WrongToken => 401,
            Self::Host(_) | Self::Origin(_) => 403,
            Self::Method(_) => 405,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Guard {
    token: String,
    /// Reads need the token too (the listen address is not loopback).
    token_for_reads: bool,
    /// `Host` values we answer to; empty: any (listening on every address, where the
    /// token guards every request).
    hosts: Vec<String>,
}

impl Guard {
    /// The rules for a server bound to `addr` with `token`.
    pub fn new(addr: SocketAddr, token: String) -> Self {
        let ip = addr.ip();
        let port = addr.port();
        let host = match addr {
            SocketAddr::V4(a) => format!("{}:{port}", a.ip()),
            SocketAddr::V6(a) => format!("[{}]:{port}", a.ip()),
        };
        let mut hosts = vec![];
        if !ip.is_unspecified() {
            hosts.push(host);
            if ip.is_loopback() {
                hosts.push(format!("localhost:{port}"));
            }
            // Browsers leave out the default port.
            if port == 80 {
                let bare: Vec<String> = hosts
                    .iter()
                    .map(|h| h.trim_end_matches(":80").to_string())
                    .collect();
                hosts.extend(bare);
            }
        }
        Self {
            token,
            token_for_reads: !ip.is_loopback(),
            hosts,
        }
    }

    pub fn token(&self) -> &str {
        &self.token
    }

    /// Whether every request must carry the token.
    pub fn token_required(&self) -> bool {
        self.token_for_reads
    }

    fn host_ok(&self, host: &str) -> bool {
        self.hosts.is_empty() || self.hosts.iter().any(|h| h.eq_ignore_ascii_case(host))
    }

    /// Whether `req` carries the right token (header, or `?token=`). The page gets the
    /// token only from a request that had it, so on loopback, where reads are open, a local
    /// user who never saw the printed address can look but not act.
    pub fn carries_token(&self, req: &Request) -> bool {
        req.header(TOKEN_HEADER)
            .or_else(|| req.param("token"))
            .is_some_and(|t| constant_time_eq(t.as_bytes(), self.token.as_bytes()))
    }

    /// Admits `req` or says why not.
    pub fn check(&self, req: &Request) -> Result<(), AuthError> {
        let write = match req.method.as_str() {
            "GET" | "HEAD" => false,
            "POST" => true,
            m => return Err(AuthError::Method(m.to_string())),
        };
        let host = req.header("Host").unwrap_or_default();
        if !self.host_ok(host) {
            return Err(AuthError::Host(host.to_string()));
        }
        if let Some(origin) = req.header("Origin") {
            // Our own origin is `http://` + the Host the browser used.
            if origin.strip_prefix("http://") != Some(host) {
                return Err(AuthError::Origin(origin.to_string()));
            }
        }
        let given = match req.header(TOKEN_HEADER) {
            Some(t) => Some(t),
            None if !write => req.param("token"),
            None => None,
        };
        if !write && !self.token_for_reads {
            return Ok(());
        }
        match given {
            None | Some("") => Err(AuthError::MissingToken),
            Some(t) if constant_time_eq(t.as_bytes(), self.token.as_bytes()) => Ok(()),
            Some(_) => Err(AuthError::WrongToken),
        }
    }
}

/// Compares without returning early, so the time taken tells nothing about the token.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A fresh token: 32 bytes from the kernel's random source, as hex.
pub fn new_token() -> std::io::Result<String> {
    use std::io::Read;
    let mut buf = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut buf)?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: &str, headers: &[(&str, &str)], query: &str) -> Request {
        Request {
            method: method.into(),
            path: "/api/containers".into(),
            query: rcompose_api::http::parse_query(query),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        }
    }

    fn loopback() -> Guard {
        Guard::new("127.0.0.1:9900".parse().unwrap(), "secret".into())
    }

    #[test]
    fn loopback_reads_need_no_token_but_writes_do() {
        let g = loopback();
        assert!(!g.token_required());
        assert_eq!(
            g.check(&req("GET", &[("Host", "127.0.0.1:9900")], "")),
            Ok(())
        );
        assert_eq!(
            g.check(&req("GET", &[("Host", "localhost:9900")], "")),
            Ok(())
        );
        let post = |h: &[(&str, &str)]| g.check(&req("POST", h, ""));
        assert_eq!(
            post(&[("Host", "127.0.0.1:9900")]),
            Err(AuthError::MissingToken)
        );
        assert_eq!(
            post(&[("Host", "127.0.0.1:9900"), (TOKEN_HEADER, "nope!!")]),
            Err(AuthError::WrongToken)
        );
        assert_eq!(
            post(&[
                ("Host", "127.0.0.1:9900"),
                (TOKEN_HEADER, "secret"),
                ("Origin", "http://127.0.0.1:9900")
            ]),
            Ok(())
        );
        // The token in the query is for page loads, never for a state change.
        assert_eq!(
            g.check(&req("POST", &[("Host", "127.0.0.1:9900")], "token=secret")),
            Err(AuthError::MissingToken)
        );
    }

    #[test]
    fn foreign_hosts_origins_and_methods_are_refused() {
        let g = loopback();
        assert_eq!(
            g.check(&req("GET", &[("Host", "evil.example:9900")], "")),
            Err(AuthError::Host("evil.example:9900".into()))
        );
        assert!(matches!(
            g.check(&req("GET", &[], "")),
            Err(AuthError::Host(_))
        ));
        let e = g
            .check(&req(
                "POST",
                &[
                    ("Host", "127.0.0.1:9900"),
                    ("Origin", "http://evil.example"),
                    (TOKEN_HEADER, "secret"),
                ],
                "",
            ))
            .unwrap_err();
        assert_eq!(
            (e.status(), e),
            (403, AuthError::Origin("http://evil.example".into()))
        );
        let e = g
            .check(&req("DELETE", &[("Host", "127.0.0.1:9900")], ""))
            .unwrap_err();
        assert_eq!(e.status(), 405);
    }

    #[test]
    fn elsewhere_every_request_carries_the_token() {
        let g = Guard::new("10.217.0.1:8080".parse().unwrap(), "secret".into());
        assert!(g.token_required());
        let host = ("Host", "10.217.0.1:8080");
        assert_eq!(
            g.check(&req("GET", &[host], "")),
            Err(AuthError::MissingToken)
        );
        assert_eq!(g.check(&req("GET", &[host], "token=secret")), Ok(()));
        assert_eq!(
            g.check(&req("GET", &[host, (TOKEN_HEADER, "secret")], "")),
            Ok(())
        );
        assert_eq!(
            g.check(&req("GET", &[host], "token=secres")),
            Err(AuthError::WrongToken)
        );
        // localhost is not an address this server listens on.
        assert!(matches!(
            g.check(&req("GET", &[("Host", "localhost:8080")], "token=secret")),
            Err(AuthError::Host(_))
        ));
    }

    #[test]
    fn every_address_accepts_any_host_with_the_token() {
        let g = Guard::new("0.0.0.0:8080".parse().unwrap(), "secret".into());
        assert_eq!(
            g.check(&req("GET", &[("Host", "myhost:8080")], "token=secret")),
            Ok(())
        );
        assert_eq!(
            g.check(&req("GET", &[("Host", "myhost:8080")], "")),
            Err(AuthError::MissingToken)
        );
    }

    #[test]
    fn the_token_is_carried_in_the_header_or_the_query() {
        let g = loopback();
        let h = ("Host", "127.0.0.1:9900");
        assert!(g.carries_token(&req("GET", &[h], "token=secret")));
        assert!(g.carries_token(&req("GET", &[h, (TOKEN_HEADER, "secret")], "")));
        assert!(!g.carries_token(&req("GET", &[h], "")));
        assert!(!g.carries_token(&req("GET", &[h], "token=secreT")));
    }

    #[test]
    fn tokens_are_fresh_hex() {
        let (a, b) = (new_token().unwrap(), new_token().unwrap());
        assert_eq!(a.len(), 64);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
