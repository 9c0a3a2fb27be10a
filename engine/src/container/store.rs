//! Container state on disk: `<root>/containers/<id>/{config.json,state.json}`, runtime files
//! under `<run_root>/containers/<id>/`. Writes are atomic (temp + fsync + rename); a global
//! flock serialises name reservation and removal, so two commands never claim one name.

use std::fs::{self, File};
use std::io::{ErrorKind, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::ContainerError;
use super::model::{ContainerConfig, ContainerState};

/// Paths and persistence for containers under one state root.
#[derive(Debug, Clone)]
pub struct ContainerStore {
    pub root: PathBuf,
    pub run_root: PathBuf,
}

/// A held flock; released on drop.
pub struct Lock(#[allow(dead_code)] File);

impl ContainerStore {
    pub fn new(root: impl Into<PathBuf>, run_root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            run_root: run_root.into(),
        }
    }

    pub fn containers_dir(&self) -> PathBuf {
        self.root.join("containers")
    }
    pub fn dir(&self, id: &str) -> PathBuf {
        self.containers_dir().join(id)
    }
    pub fn run_dir(&self, id: &str) -> PathBuf {
        self.run_root.join("containers").join(id)
    }
    /// Where the overlay (upper, work, merged) lives: with the container, or for `--rm`
    /// containers in the run root (a tmpfs on most hosts: nothing of theirs needs to survive
    /// a reboot, and it spares the disk the metadata work of every short run).
    pub fn rootfs_dir(&self, cfg: &ContainerConfig) -> PathBuf {
        if cfg.host.auto_remove {
            self.run_dir(&cfg.id).join("fs")
        } else {
            self.dir(&cfg.id)
        }
    }
    pub fn log_path(&self, id: &str) -> PathBuf {
        self.dir(id).join(format!("{id}-json.log"))
    }
    pub fn bundle_dir(&self, id: &str) -> PathBuf {
        self.run_dir(id).join("bundle")
    }
    /// Directory of libcontainer's per-container state.
    pub fn runtime_root(&self) -> PathBuf {
        self.run_root.join("runtime")
    }
    pub fn attach_socket(&self, id: &str) -> PathBuf {
        self.run_dir(id).join("attach.sock")
    }
    pub fn netns_path(&self, id: &str) -> PathBuf {
        self.run_root.join("netns").join(id)
    }

    /// Exclusive lock over the whole container set (names, creation, removal).
    pub fn lock_all(&self) -> Result<Lock, ContainerError> {
        let dir = self.containers_dir();
        create_private_dir(&dir)?;
        crate::store::fsutil::spread_subdirs(&dir);
        flock(&self.root.join("containers.lock"))
    }

    /// Exclusive lock over one container's state transitions.
    pub fn lock(&self, id: &str) -> Result<Lock, ContainerError> {
        flock(&self.dir(id).join("lock"))
    }

    pub fn load_config(&self, id: &str) -> Result<ContainerConfig, ContainerError> {
        read_json(&self.dir(id).join("config.json"))
    }
    pub fn save_config(&self, cfg: &ContainerConfig) -> Result<(), ContainerError> {
        let path = self.dir(&cfg.id).join("config.json");
        if cfg.host.auto_remove {
            // Removed when it stops anyway: a crash may lose it, not corrupt it (rename).
            return write_json_fast(&path, cfg);
        }
        write_json_atomic(&path, cfg)
    }
    /// The state, or the default (created) state when none was written yet.
    pub fn load_state(&self, id: &str) -> Result<ContainerState, ContainerError> {
        let p = self.dir(id).join("state.json");
        let data = match fs::read(&p) {
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(ContainerState::default()),
            r => r.map_err(|e| ContainerError::io(&p, e))?,
        };
        match serde_json::from_slice(&data) {
            Ok(st) => Ok(st),
            // Saved without fsync (see `save_state`): a power loss can leave it empty or
            // torn. Nothing runs after a reboot, so it is repaired as exited; the exit code
            // and times of that last run are lost.
            Err(e) if data.is_empty() || e.is_syntax() || e.is_eof() => Ok(ContainerState {
                status: super::Status::Exited,
                error: "state lost in a crash (repaired)".into(),
                ..Default::default()
            }),
            Err(e) => Err(ContainerError::Corrupt {
                path: p,
                reason: e.to_string(),
            }),
        }
    }
    pub fn save_state(&self, id: &str, st: &ContainerState) -> Result<(), ContainerError> {
        // Rename keeps it atomic; no fsync: the state is rewritten on every transition and
        // a lost last write is repaired from the process table (see `observe`).
        write_json_fast(&self.dir(id).join("state.json"), st)
    }

    /// Every container with a readable config, oldest first. Unreadable directories (a crash
    /// between mkdir and the first write) are skipped, and removed by `prune`.
    pub fn list(&self) -> Result<Vec<ContainerConfig>, ContainerError> {
        let dir = self.containers_dir();
        let rd = match fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(vec![]),
            Err(e) => return Err(ContainerError::io(&dir, e)),
        };
        let mut out = vec![];
        for ent in rd.flatten() {
            let name = ent.file_name();
            let Some(id) = name.to_str() else { continue };
            // Only ids: not a removal's tombstone (`.rm-<id>`) or a temporary file.
            if id.starts_with('.') {
                continue;
            }
            if let Ok(cfg) = self.load_config(id) {
                out.push(cfg);
            }
        }
        out.sort_by(|a, b| a.created.cmp(&b.created));
        Ok(out)
    }

    /// Resolves a name, full id or unique id prefix, as docker does.
    pub fn resolve(&self, key: &str) -> Result<ContainerConfig, ContainerError> {
        let key = key.strip_prefix('/').unwrap_or(key);
        // A full id or a name: no need to read every config.
        if key.len() == 64
            && key.bytes().all(|b| b.is_ascii_hexdigit())
            && let Ok(c) = self.load_config(key)
        {
            return Ok(c);
        }
        if let Some(c) = self.by_name(key)? {
            return Ok(c);
        }
        let all = self.list()?;
        if let Some(c) = all.iter().find(|c| c.id == key || c.name == key) {
            return Ok(c.clone());
        }
        let by_prefix: Vec<_> = all.iter().filter(|c| c.id.starts_with(key)).collect();
        match by_prefix.len() {
            1 => return Ok(by_prefix[0].clone()),
            n if n > 1 => {
                return Err(ContainerError::Ambiguous {
                    key: key.into(),
                    count: n,
                });
            }
            _ => {}
        }
        let suggestion = all
            .iter()
            .map(|c| (strsim::damerau_levenshtein(key, &c.name), &c.name))
            .filter(|(d, n)| *d <= (n.len() / 3).max(1))
            .min_by_key(|(d, _)| *d)
            .map(|(_, n)| n.clone());
        Err(ContainerError::NotFound {
            key: key.into(),
            suggestion,
        })
    }
}

fn flock(path: &Path) -> Result<Lock, ContainerError> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = File::options()
        .mode(0o600)
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| ContainerError::io(path, e))?;
    // SAFETY: plain flock on an fd we own.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(ContainerError::io(path, std::io::Error::last_os_error()));
    }
    Ok(Lock(f))
}

/// `create_dir_all` with 0700 for what it creates: a container's directories hold its
/// environment and logs.
pub(crate) fn create_private_dir(dir: &Path) -> Result<(), ContainerError> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| ContainerError::io(dir, e))
}

pub(crate) fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T, ContainerError> {
    let data = fs::read(path).map_err(|e| ContainerError::io(path, e))?;
    serde_json::from_slice(&data).map_err(|e| ContainerError::Corrupt {
        path: path.into(),
        reason: e.to_string(),
    })
}

/// temp file + fsync + rename + fsync(dir): a crash leaves the old or the new file, never half.
pub(crate) fn write_json_atomic<T: Serialize>(path: &Path, v: &T) -> Result<(), ContainerError> {
    let data = serde_json::to_vec_pretty(v).map_err(|e| ContainerError::Corrupt {
        path: path.into(),
        reason: e.to_string(),
    })?;
    write_atomic(path, &data)
}

/// Like `write_json_atomic` without fsync: for files rewritten often or regenerated at every
/// start (runtime files, state).
pub(crate) fn write_json_fast<T: Serialize>(path: &Path, v: &T) -> Result<(), ContainerError> {
    let data = serde_json::to_vec_pretty(v).map_err(|e| ContainerError::Corrupt {
        path: path.into(),
        reason: e.to_string(),
    })?;
    write_file(path, &data, false)
}

pub(crate) fn write_atomic(path: &Path, data: &[u8]) -> Result<(), ContainerError> {
    write_file(path, data, true)
}

/// temp + rename (+ fsync of file and directory when `durable`). The file is 0600: configs,
/// states, specs and exec processes carry the container's environment (`perms.rs`).
pub(crate) fn write_file(path: &Path, data: &[u8], durable: bool) -> Result<(), ContainerError> {
    write_file_mode(path, data, durable, 0o600)
}

/// [`write_file`] with an explicit mode, for the files a container must read through a bind
/// mount (`/etc/hosts`, `/etc/resolv.conf`), which their 0700 directory protects.
pub(crate) fn write_file_mode(
    path: &Path,
    data: &[u8],
    durable: bool,
    mode: u32,
) -> Result<(), ContainerError> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("f"),
        std::process::id()
    ));
    let io = |e| ContainerError::io(path, e);
    // A temp file left by a crashed process may have an older mode: start afresh.
    let _ = fs::remove_file(&tmp);
    let mut f = File::options()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(io)?;
    f.write_all(data).map_err(io)?;
    if durable {
        f.sync_all().map_err(io)?;
    }
    if durable {
        fs::rename(&tmp, path).map_err(io)?;
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    } else {
        crate::store::fsutil::replace_unsynced(&tmp, path).map_err(io)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::model::HostConfig;

    fn cfg(id: &str, name: &str) -> ContainerConfig {
        ContainerConfig {
            id: id.into(),
            name: name.into(),
            created: crate::container::model::now_rfc3339(),
            image: "img".into(),
            image_id: String::new(),
            layer_dirs: vec![],
            args: vec![],
            entrypoint: vec![],
            cmd: vec![],
            env: vec![],
            working_dir: String::new(),
            user: String::new(),
            hostname: String::new(),
            labels: Default::default(),
            tty: false,
            open_stdin: false,
            stop_signal: "SIGTERM".into(),
            stop_timeout: 10,
            host: HostConfig::default(),
            healthcheck: None,
        }
    }

    #[test]
    fn torn_state_is_repaired_as_exited() {
        let tmp = tempfile::tempdir().unwrap();
        let s = ContainerStore::new(tmp.path().join("r"), tmp.path().join("rr"));
        fs::create_dir_all(s.dir("c1")).unwrap();
        for torn in [&b""[..], b"{\"status\":\"runn"] {
            fs::write(s.dir("c1").join("state.json"), torn).unwrap();
            assert_eq!(
                s.load_state("c1").unwrap().status,
                super::super::Status::Exited
            );
        }
        // Valid JSON of another shape is an error, not silently replaced.
        fs::write(s.dir("c1").join("state.json"), b"{\"status\": \"running\"}").unwrap();
        let r = s.load_state("c1");
        assert!(r.is_err(), "{r:?}");
    }

    #[test]
    fn resolves_by_name_id_prefix_and_suggests() {
        let tmp = tempfile::tempdir().unwrap();
        let s = ContainerStore::new(tmp.path().join("r"), tmp.path().join("rr"));
        for (id, name) in [("abc123", "web"), ("abd456", "worker")] {
            fs::create_dir_all(s.dir(id)).unwrap();
            s.save_config(&cfg(id, name)).unwrap();
        }
        assert_eq!(s.resolve("web").unwrap().id, "abc123");
        assert_eq!(s.resolve("abd").unwrap().name, "worker");
        assert!(matches!(
            s.resolve("ab"),
            Err(ContainerError::Ambiguous { count: 2, .. })
        ));
        match s.resolve("wbe") {
            Err(ContainerError::NotFound { suggestion, .. }) => {
                assert_eq!(suggestion.as_deref(), Some("web"))
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
