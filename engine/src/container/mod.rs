//! Containers: the persisted model, spec generation and the lifecycle (create, start through
//! the per-container monitor, stop, kill, remove, wait). See `crate::monitor` for the process
//! that owns a running container.

pub mod commit;
pub mod exec;
pub mod files;
mod freeze;
pub mod inspect;
pub mod lifecycle;
pub mod model;
mod names;
pub mod netns;
pub mod prepare;
pub mod proc;
pub mod resources;
pub mod seccomp;
pub mod spec;
pub mod stats;
pub mod store;
pub mod user;

use std::path::{Path, PathBuf};

pub use lifecycle::{Containers, CreateOptions, ImageInfo};
pub use model::{ContainerConfig, ContainerState, HostConfig, MountSpec, RestartPolicy, Status};
pub use store::ContainerStore;

#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path} is unreadable ({reason}); remove the container with `rcompose container rm -f`"
    )]
    Corrupt { path: PathBuf, reason: String },
    #[error("No such container: {key}{}", suggestion.as_ref().map(|s| format!(" (did you mean \"{s}\"?)")).unwrap_or_default())]
    NotFound {
        key: String,
        suggestion: Option<String>,
    },
    #[error(
        "container id prefix \"{key}\" matches {count} containers; give more characters or the name"
    )]
    Ambiguous { key: String, count: usize },
    #[error(
        "the container name \"/{name}\" is already in use by container \"{id}\"; remove or rename that container to reuse the name"
    )]
    NameInUse { name: String, id: String },
    #[error("invalid container name \"{0}\": only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")]
    InvalidName(String),
    #[error("invalid value \"{value}\" for {option}: {hint}")]
    InvalidOption {
        option: String,
        value: String,
        hint: String,
    },
    #[error("unable to find user {user}: no matching entries in the image's /etc/passwd")]
    UnknownUser { user: String },
    #[error("unable to find group {group}: no matching entries in the image's /etc/group")]
    UnknownGroup { group: String },
    #[error("container {0} is not running")]
    NotRunning(String),
    #[error("container {0} is paused; unpause it first")]
    Paused(String),
    #[error(
        "cannot remove container \"{0}\": container is running; stop the container before removing or use -f"
    )]
    Running(String),
    #[error("bind mount source path does not exist: {0}")]
    BindSourceMissing(PathBuf),
    #[error(transparent)]
    Rootfs(#[from] crate::rootfs::RootfsError),
    #[error(transparent)]
    Runtime(#[from] crate::runtime::RuntimeError),
    #[error(transparent)]
    Netns(#[from] netns::NetnsError),
    #[error(transparent)]
    Log(#[from] crate::logs::LogError),
    #[error("starting container {id}: {message}")]
    Start { id: String, message: String },
    #[error("{0}")]
    Other(String),
}

impl ContainerError {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}

/// 64 hex characters from the kernel's random source.
pub fn new_id() -> Result<String, ContainerError> {
    let mut buf = [0u8; 32];
    let mut f = std::fs::File::open("/dev/urandom")
        .map_err(|e| ContainerError::io(Path::new("/dev/urandom"), e))?;
    std::io::Read::read_exact(&mut f, &mut buf)
        .map_err(|e| ContainerError::io(Path::new("/dev/urandom"), e))?;
    Ok(hex::encode(buf))
}

/// Docker's name rule.
pub fn validate_name(name: &str) -> Result<(), ContainerError> {
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(ContainerError::InvalidName(name.into()))
    }
}

/// A docker-style random name (`adjective_scientist`), derived from the id.
pub fn random_name(id: &str) -> String {
    const ADJ: [&str; 16] = [
        "admiring", "brave", "clever", "dazzling", "eager", "festive", "gifted", "happy", "jolly",
        "keen", "lucid", "modest", "nifty", "quirky", "serene", "vibrant",
    ];
    const NAMES: [&str; 16] = [
        "babbage", "curie", "darwin", "euler", "fermi", "gauss", "hopper", "kepler", "lovelace",
        "meitner", "newton", "noether", "pascal", "ritchie", "tesla", "turing",
    ];
    let b = hex::decode(&id[..4.min(id.len())]).unwrap_or_default();
    let a = b.first().copied().unwrap_or(0) as usize;
    let n = b.get(1).copied().unwrap_or(0) as usize;
    format!("{}_{}", ADJ[a % 16], NAMES[n % 16])
}
