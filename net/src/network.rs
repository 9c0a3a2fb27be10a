//! The persisted network model (`<root>/networks/<name>.json`) and its Docker-shaped inspect
//! JSON.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::ipam;
use crate::ports::PortBinding;

/// The name of the default network, and of its bridge interface.
pub const DEFAULT_NETWORK: &str = "bridge";
pub const DEFAULT_BRIDGE_IFNAME: &str = "rcompose0";
/// Networks that exist implicitly (network modes), as `docker network ls` shows them.
pub const PREDEFINED: [&str; 3] = ["bridge", "host", "none"];

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Network {
    pub name: String,
    pub id: String,
    /// RFC 3339, UTC.
    pub created: String,
    pub driver: String,
    /// The bridge interface on the host.
    pub bridge: String,
    pub subnet: Ipv4Net,
    pub gateway: Ipv4Addr,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_range: Option<Ipv4Net>,
    /// The IPv6 side of a dual-stack network (`--ipv6`, compose `enable_ipv6`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<crate::ipam6::Plan6>,
    #[serde(default)]
    pub internal: bool,
    #[serde(default)]
    pub attachable: bool,
    /// Whether the embedded DNS answers on this network (false on the default bridge).
    #[serde(default)]
    pub dns: bool,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    /// Attached containers, by container id.
    #[serde(default)]
    pub endpoints: BTreeMap<String, Endpoint>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Endpoint {
    pub container_id: String,
    pub container_name: String,
    pub endpoint_id: String,
    pub ip: Ipv4Addr,
    /// The endpoint's address on a dual-stack network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip6: Option<Ipv6Addr>,
    pub mac: String,
    /// The veth end left on the host (attached to the bridge).
    pub host_ifname: String,
    /// The interface name inside the container (`eth0`, `eth1`, …).
    pub ifname: String,
    pub netns_path: String,
    /// Inode of the namespace at attach time: tells a live endpoint from one whose container
    /// died and whose namespace path now names another namespace (or nothing).
    #[serde(default)]
    pub netns_ino: u64,
    /// Extra DNS names on this network (compose service name, `--network-alias`).
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub ports: Vec<PortBinding>,
}

impl Network {
    /// Whether its bridge and firewall rules are live: a custom network always, the default
    /// one from its first container until `network prune` deletes its idle bridge.
    pub fn is_live(&self) -> bool {
        self.name != DEFAULT_NETWORK
            || !self.endpoints.is_empty()
            || crate::bridge::link_exists(&self.bridge).unwrap_or(false)
    }

    pub fn plan(&self) -> ipam::Plan {
        ipam::Plan {
            subnet: self.subnet,
            gateway: self.gateway,
            ip_range: self.ip_range,
        }
    }

    pub fn used_addresses(&self) -> BTreeSet<Ipv4Addr> {
        self.endpoints.values().map(|e| e.ip).collect()
    }

    /// The IPv6 gateway and prefix length of a dual-stack network.
    pub fn gateway6(&self) -> Option<(Ipv6Addr, u8)> {
        self.ipv6.map(|p| (p.gateway, p.subnet.prefix_len()))
    }

    pub fn used_addresses6(&self) -> BTreeSet<Ipv6Addr> {
        self.endpoints.values().filter_map(|e| e.ip6).collect()
    }

    pub fn holder_of6(&self, ip: Ipv6Addr) -> Option<String> {
        self.endpoints
            .values()
            .find(|e| e.ip6 == Some(ip))
            .map(|e| e.container_name.clone())
    }

    /// Who holds `ip` (a container name), for error messages.
    pub fn holder_of(&self, ip: Ipv4Addr) -> Option<String> {
        self.endpoints
            .values()
            .find(|e| e.ip == ip)
            .map(|e| e.container_name.clone())
    }

    /// `docker network inspect` JSON for this network.
    pub fn inspect(&self) -> Value {
        let mut ipam_config =
            json!({"Subnet": self.subnet.to_string(), "Gateway": self.gateway.to_string()});
        if let Some(r) = self.ip_range {
            ipam_config["IPRange"] = json!(r.to_string());
        }
        let mut configs = vec![ipam_config];
        if let Some(p) = self.ipv6 {
            configs.push(json!({"Subnet": p.subnet.to_string(), "Gateway": p.gateway.to_string()}));
        }
        let containers: serde_json::Map<String, Value> = self
            .endpoints
            .values()
            .map(|e| {
                (
                    e.container_id.clone(),
                    json!({
                        "Name": e.container_name,
                        "EndpointID": e.endpoint_id,
                        "MacAddress": e.mac,
                        "IPv4Address": format!("{}/{}", e.ip, self.subnet.prefix_len()),
                        "IPv6Address": match (e.ip6, self.ipv6) {
                            (Some(ip), Some(p)) => format!("{ip}/{}", p.subnet.prefix_len()),
                            _ => String::new(),
                        },
                    }),
                )
            })
            .collect();
        let mut options: serde_json::Map<String, Value> = self
            .options
            .iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect();
        options
            .entry("com.docker.network.bridge.name")
            .or_insert(json!(self.bridge));
        json!({
            "Name": self.name,
            "Id": self.id,
            "Created": self.created,
            "Scope": "local",
            "Driver": self.driver,
            "EnableIPv4": true,
            "EnableIPv6": self.ipv6.is_some(),
            "IPAM": {"Driver": "default", "Options": {}, "Config": configs},
            "Internal": self.internal,
            "Attachable": self.attachable,
            "Ingress": false,
            "ConfigFrom": {"Network": ""},
            "ConfigOnly": false,
            "Containers": containers,
            "Options": options,
            "Labels": self.labels,
        })
    }
}

/// `docker network inspect` JSON for the implicit `host` and `none` networks.
pub fn inspect_predefined(name: &str) -> Value {
    json!({
        "Name": name,
        "Id": predefined_id(name),
        "Created": "0001-01-01T00:00:00Z",
        "Scope": "local",
        "Driver": if name == "host" { "host" } else { "null" },
        "EnableIPv4": true,
        "EnableIPv6": false,
        "IPAM": {"Driver": "default", "Options": null, "Config": []},
        "Internal": false,
        "Attachable": false,
        "Ingress": false,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": false,
        "Containers": {},
        "Options": {},
        "Labels": {},
    })
}

/// Stable ids for `host`/`none` (they have no state file).
pub fn predefined_id(name: &str) -> String {
    let seed: u8 = if name == "host" { 0x11 } else { 0x22 };
    (0..32)
        .map(|i| format!("{:02x}", seed.wrapping_mul(i + 1)))
        .collect()
}

/// 64 random hex digits, like Docker ids.
pub fn random_id() -> String {
    let mut buf = [0u8; 32];
    let filled = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut buf));
    if filled.is_err() {
        // Fall back to time and pid: unique enough for an id that is also checked for clashes.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        for (i, b) in buf.iter_mut().enumerate() {
            *b = ((nanos >> ((i % 16) * 8)) as u8)
                ^ (std::process::id() as u8).wrapping_add(i as u8);
        }
    }
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// Now as RFC 3339 UTC with nanoseconds, the way Docker prints `Created`.
pub fn now_rfc3339() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60,
        d.subsec_nanos()
    )
}

/// Names Docker accepts for networks.
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Network {
        Network {
            name: "front".into(),
            id: "ab".repeat(32),
            created: now_rfc3339(),
            driver: "bridge".into(),
            bridge: "br-abababababab".into(),
            subnet: "10.231.1.0/24".parse().unwrap(),
            gateway: "10.231.1.1".parse().unwrap(),
            ip_range: None,
            ipv6: None,
            internal: false,
            attachable: false,
            dns: true,
            labels: BTreeMap::new(),
            options: BTreeMap::new(),
            endpoints: BTreeMap::new(),
        }
    }

    #[test]
    fn inspect_is_docker_shaped() {
        let mut n = sample();
        n.endpoints.insert(
            "c1".into(),
            Endpoint {
                container_id: "c1".into(),
                container_name: "web".into(),
                endpoint_id: "e1".into(),
                ip: "10.231.1.2".parse().unwrap(),
                ip6: None,
                mac: "02:42:0a:e7:01:02".into(),
                host_ifname: "veth1".into(),
                ifname: "eth0".into(),
                netns_path: "/run/netns/x".into(),
                netns_ino: 0,
                aliases: vec![],
                ports: vec![],
            },
        );
        let v = n.inspect();
        assert_eq!(v["IPAM"]["Config"][0]["Subnet"], "10.231.1.0/24");
        assert_eq!(v["Containers"]["c1"]["IPv4Address"], "10.231.1.2/24");
        assert_eq!(
            v["Options"]["com.docker.network.bridge.name"],
            "br-abababababab"
        );
        let back: Network = serde_json::from_str(&serde_json::to_string(&n).unwrap()).unwrap();
        assert_eq!(back, n);
        assert_eq!(v["EnableIPv6"], false);
        n.ipv6 = Some(
            crate::ipam6::plan6(Some("fd00:7::/64".parse().unwrap()), None, "x", &[]).unwrap(),
        );
        n.endpoints.get_mut("c1").unwrap().ip6 = Some("fd00:7::2".parse().unwrap());
        let v = n.inspect();
        assert_eq!(v["EnableIPv6"], true);
        assert_eq!(v["IPAM"]["Config"][1]["Subnet"], "fd00:7::/64");
        assert_eq!(v["IPAM"]["Config"][1]["Gateway"], "fd00:7::1");
        assert_eq!(v["Containers"]["c1"]["IPv6Address"], "fd00:7::2/64");
        let back: Network = serde_json::from_str(&serde_json::to_string(&n).unwrap()).unwrap();
        assert_eq!(back, n);
    }

    #[test]
    fn names_and_time() {
        assert!(valid_name("my_net-1.x"));
        assert!(!valid_name("-x") && !valid_name("") && !valid_name("a b"));
        let t = now_rfc3339();
        assert_eq!(t.len(), 30, "{t}");
        assert!(t.starts_with("20"));
        assert_eq!(random_id().len(), 64);
    }
}
