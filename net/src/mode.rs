//! `--network` values: the four Docker modes plus named networks.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ModeError {
    #[error("invalid --network {0:?}: container mode needs a container, as in container:<name|id>")]
    EmptyContainer(String),
    #[error(
        "invalid --network {0:?}: expected none, host, bridge, container:<name|id> or a network name"
    )]
    Invalid(String),
}

/// Errors of docker's advanced `--network name=NET,alias=A,ip=IP,mac-address=MAC` syntax.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AttachmentError {
    #[error(
        "invalid --network {0:?}: expected key=value pairs separated by commas (name=, alias=, ip=, mac-address=)"
    )]
    Syntax(String),
    #[error("invalid --network {0:?}: the name= field is required")]
    NoName(String),
    #[error("invalid --network {value:?}: unknown field {key:?} (name, alias, ip, mac-address)")]
    UnknownKey { value: String, key: String },
    #[error("invalid --network {value:?}: {key} is not supported yet")]
    Unsupported { value: String, key: String },
    #[error("invalid --network {value:?}: {ip:?} is not an IP address of that family")]
    BadIp { value: String, ip: String },
    #[error("invalid MAC address {0:?}: use six hex bytes such as 02:42:ac:11:00:02")]
    BadMac(String),
    #[error(
        "invalid MAC address {0:?}: the first byte must be even (a unicast address) and the address not all zeros"
    )]
    NotUnicast(String),
}

/// One `--network` value: a mode or network name (`mynet`, `host`, `container:web`), or
/// docker's advanced form `name=mynet,alias=web,alias=www,ip=10.1.0.5,mac-address=02:…`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkAttachment {
    /// The mode or network name.
    pub target: String,
    pub aliases: Vec<String>,
    pub ip: Option<std::net::Ipv4Addr>,
    pub ip6: Option<std::net::Ipv6Addr>,
    /// Canonical lower-case form.
    pub mac: Option<String>,
}

impl FromStr for NetworkAttachment {
    type Err = AttachmentError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if !s.contains('=') {
            return Ok(NetworkAttachment {
                target: s.to_string(),
                ..Default::default()
            });
        }
        let mut out = NetworkAttachment::default();
        for field in s.split(',') {
            let (key, value) = field
                .split_once('=')
                .ok_or_else(|| AttachmentError::Syntax(s.to_string()))?;
            match key.trim().to_ascii_lowercase().as_str() {
                "name" => out.target = value.to_string(),
                "alias" => out.aliases.push(value.to_string()),
                "ip" => {
                    out.ip = Some(value.parse().map_err(|_| AttachmentError::BadIp {
                        value: s.to_string(),
                        ip: value.to_string(),
                    })?)
                }
                "ip6" => {
                    out.ip6 = Some(value.parse().map_err(|_| AttachmentError::BadIp {
                        value: s.to_string(),
                        ip: value.to_string(),
                    })?)
                }
                "mac-address" => out.mac = Some(parse_mac_address(value)?),
                k @ ("link-local-ip" | "driver-opt" | "gw-priority") => {
                    return Err(AttachmentError::Unsupported {
                        value: s.to_string(),
                        key: k.to_string(),
                    });
                }
                k => {
                    return Err(AttachmentError::UnknownKey {
                        value: s.to_string(),
                        key: k.to_string(),
                    });
                }
            }
        }
        if out.target.is_empty() {
            return Err(AttachmentError::NoName(s.to_string()));
        }
        Ok(out)
    }
}

/// A container MAC address (`--mac-address`): six hex bytes, unicast, not all zeros; returned
/// in lower case.
pub fn parse_mac_address(mac: &str) -> Result<String, AttachmentError> {
    let bytes =
        crate::bridge::parse_mac(mac).ok_or_else(|| AttachmentError::BadMac(mac.to_string()))?;
    if mac.split(':').any(|p| p.len() != 2) {
        return Err(AttachmentError::BadMac(mac.to_string()));
    }
    if bytes[0] & 1 == 1 || bytes == [0; 6] {
        return Err(AttachmentError::NotUnicast(mac.to_string()));
    }
    Ok(mac.to_ascii_lowercase())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetworkMode {
    /// Only `lo` inside the container.
    None,
    /// The host's namespace.
    Host,
    /// The default `bridge` network.
    Bridge,
    /// Share the namespace of another (running) container.
    Container(String),
    /// A user-defined network.
    Named(String),
}

impl NetworkMode {
    /// Whether the engine must create a namespace and attach it through `Networks::attach`.
    pub fn attaches(&self) -> bool {
        matches!(self, NetworkMode::Bridge | NetworkMode::Named(_))
    }

    /// A network the user created (docker's "user-defined"): only such networks can be
    /// combined in one `run` (`--network a --network b`).
    pub fn is_user_defined(&self) -> bool {
        matches!(self, NetworkMode::Named(_))
    }

    /// The network to attach to, for attaching modes.
    pub fn network_name(&self) -> Option<&str> {
        match self {
            NetworkMode::Bridge => Some(crate::network::DEFAULT_NETWORK),
            NetworkMode::Named(n) => Some(n),
            _ => None,
        }
    }
}

impl FromStr for NetworkMode {
    type Err = ModeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "none" => NetworkMode::None,
            "host" => NetworkMode::Host,
            "" | "bridge" | "default" => NetworkMode::Bridge,
            _ => match s.strip_prefix("container:") {
                Some("") => return Err(ModeError::EmptyContainer(s.to_string())),
                Some(c) => NetworkMode::Container(c.to_string()),
                None if crate::network::valid_name(s) => NetworkMode::Named(s.to_string()),
                None => return Err(ModeError::Invalid(s.to_string())),
            },
        })
    }
}

impl fmt::Display for NetworkMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetworkMode::None => f.write_str("none"),
            NetworkMode::Host => f.write_str("host"),
            NetworkMode::Bridge => f.write_str("bridge"),
            NetworkMode::Container(c) => write!(f, "container:{c}"),
            NetworkMode::Named(n) => f.write_str(n),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_mode() {
        assert_eq!("none".parse(), Ok(NetworkMode::None));
        assert_eq!("host".parse(), Ok(NetworkMode::Host));
        assert_eq!("default".parse(), Ok(NetworkMode::Bridge));
        assert_eq!(
            "container:web".parse(),
            Ok(NetworkMode::Container("web".into()))
        );
        assert_eq!("front_1".parse(), Ok(NetworkMode::Named("front_1".into())));
        assert!(matches!(
            "container:".parse::<NetworkMode>(),
            Err(ModeError::EmptyContainer(_))
        ));
        assert!(matches!(
            "a b".parse::<NetworkMode>(),
            Err(ModeError::Invalid(_))
        ));
        assert_eq!(
            NetworkMode::Container("x".into()).to_string(),
            "container:x"
        );
        assert_eq!(NetworkMode::Bridge.network_name(), Some("bridge"));
        assert!(!NetworkMode::Host.attaches());
        assert!(NetworkMode::Named("x".into()).is_user_defined());
        assert!(!NetworkMode::Bridge.is_user_defined());
    }

    #[test]
    fn attachments_plain_and_advanced() {
        let plain: NetworkAttachment = "container:web".parse().unwrap();
        assert_eq!(plain.target, "container:web");
        assert!(plain.aliases.is_empty() && plain.ip.is_none());
        let adv: NetworkAttachment =
            "name=front,alias=a,alias=b,ip=10.1.0.5,mac-address=02:42:AC:11:00:02"
                .parse()
                .unwrap();
        assert_eq!(
            adv,
            NetworkAttachment {
                target: "front".into(),
                aliases: vec!["a".into(), "b".into()],
                ip: Some([10, 1, 0, 5].into()),
                ip6: None,
                mac: Some("02:42:ac:11:00:02".into()),
            }
        );
        for (bad, want) in [
            ("alias=a", "name= field is required"),
            ("name=x,ip=nope", "not an IP address"),
            ("name=x,foo=1", "unknown field \"foo\""),
            (
                "name=x,link-local-ip=fe80::1",
                "link-local-ip is not supported yet",
            ),
            ("name=x,ip6=10.0.0.1", "not an IP address"),
            ("name=x,junk", "key=value pairs"),
            ("name=x,mac-address=01:00:00:00:00:01", "unicast"),
        ] {
            let err = bad.parse::<NetworkAttachment>().unwrap_err().to_string();
            assert!(err.contains(want), "{bad}: {err}");
        }
        assert!(parse_mac_address("2:42:ac:11:0:2").is_err());
        assert!(parse_mac_address("00:00:00:00:00:00").is_err());
    }
}
