//! Registry settings: insecure (plain HTTP) registries and Docker Hub mirrors, read from a
//! JSON file with Docker's daemon.json keys:
//! `{"insecure-registries": ["myhost:5000"], "registry-mirrors": ["http://mirror:5000"]}`.
//! Path: `$RCOMPOSE_REGISTRY_CONFIG`, else `/etc/rcompose/daemon.json` (missing = defaults).
//! Loopback registries (localhost, 127.0.0.0/8, ::1) are always insecure, as in Docker.

use std::path::PathBuf;

use serde::Deserialize;

use super::RegistryError;

pub const DEFAULT_CONFIG: &str = "/etc/rcompose/daemon.json";

#[derive(Debug, Clone, Default, Deserialize)]
pub struct RegistryConfig {
    #[serde(rename = "insecure-registries", default)]
    pub insecure: Vec<String>,
    #[serde(rename = "registry-mirrors", default)]
    pub mirrors: Vec<String>,
}

impl RegistryConfig {
    pub fn path() -> PathBuf {
        std::env::var_os("RCOMPOSE_REGISTRY_CONFIG")
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG))
    }

    pub fn load() -> Result<RegistryConfig, RegistryError> {
        let p = Self::path();
        match std::fs::read(&p) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                RegistryError::Config(format!(
                    "{}: {e} (expected {{\"insecure-registries\": [...], \"registry-mirrors\": [...]}})",
                    p.display()
                ))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(RegistryError::Config(format!("{}: {e}", p.display()))),
        }
    }

    /// Whether `host` (`name[:port]`) is spoken to over plain HTTP.
    pub fn is_insecure(&self, host: &str) -> bool {
        is_loopback(host)
            || self.insecure.iter().any(|i| {
                let i = i
                    .trim_start_matches("http://")
                    .trim_start_matches("https://")
                    .trim_end_matches('/');
                i == host || cidr_contains(i, host_only(host))
            })
    }
}

fn host_only(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host)
}

pub fn is_loopback(host: &str) -> bool {
    let h = host_only(host);
    h == "localhost"
        || h == "::1"
        || h.parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn cidr_contains(cidr: &str, host: &str) -> bool {
    let Some((net, bits)) = cidr.split_once('/') else {
        return false;
    };
    let (Ok(net), Ok(bits), Ok(ip)) = (
        net.parse::<std::net::Ipv4Addr>(),
        bits.parse::<u32>(),
        host.parse::<std::net::Ipv4Addr>(),
    ) else {
        return false;
    };
    if bits > 32 {
        return false;
    }
    let mask = if bits == 0 {
        0
    } else {
        u32::MAX << (32 - bits)
    };
    u32::from(net) & mask == u32::from(ip) & mask
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insecure_rules() {
        let c = RegistryConfig {
            insecure: vec!["myhost:5000".into(), "10.0.0.0/8".into()],
            mirrors: vec![],
        };
        assert!(c.is_insecure("localhost:5000"));
        assert!(c.is_insecure("127.0.0.1:41234"));
        assert!(c.is_insecure("[::1]:5000"));
        assert!(c.is_insecure("myhost:5000"));
        assert!(c.is_insecure("10.1.2.3:5000"));
        assert!(!c.is_insecure("docker.io"));
        assert!(!c.is_insecure("myhost:5001"));
    }
}
