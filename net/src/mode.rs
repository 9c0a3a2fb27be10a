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
    }
}
