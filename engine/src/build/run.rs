//! `RUN`: the command in a container of the engine on the stage's layers; the container's
//! upper dir becomes the step's layer tar. Output is read from the container's log.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::container::model::{HostConfig, MountSpec};
use crate::container::{Containers, CreateOptions, ImageInfo};

/// Resolves a bind mount's `from=` and `source=` to a host path.
pub type BindRoot<'a> = &'a dyn Fn(Option<&str>, &str) -> Result<PathBuf, String>;

/// A RUN step, expanded.
pub struct RunSpec {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub workdir: String,
    pub user: String,
    /// `default` (the caller's [`super::RunNetwork`], else the host's), `none`, `host`.
    pub network: String,
    pub mounts: Vec<MountSpec>,
    pub tmpfs: Vec<String>,
    /// Bytes of /dev/shm (0: the default).
    pub shm_size: i64,
}

pub struct RunOutcome {
    pub exit_code: i32,
    /// The last lines of output (for the error of a failed step).
    pub tail: Vec<String>,
}

/// Label of RUN containers: the pid of the build that runs them.
pub const BUILD_LABEL: &str = "com.rcompose.build.pid";

/// Removes RUN containers left by builds that are gone (interrupted or killed).
pub fn remove_orphans(containers: &Containers) {
    let Ok(list) = containers.store.list() else {
        return;
    };
    for c in list {
        let Some(pid) = c.labels.get(BUILD_LABEL) else {
            continue;
        };
        let alive = pid
            .parse::<u32>()
            .is_ok_and(|p| Path::new(&format!("/proc/{p}")).exists());
        if !alive {
            let _ = containers.remove(&c.id, true, false);
        }
    }
}

/// Lines of output kept for the error message of a failing step.
const TAIL: usize = 10;

/// Waits for the container to exit, passing its output to `on_line` as it is logged.
fn follow(
    containers: &Containers,
    id: &str,
    on_line: &mut dyn FnMut(&str),
) -> Result<RunOutcome, crate::container::ContainerError> {
    use crate::container::Status;
    use crate::logs::{Position, read_from};
    let path = containers.store.log_path(id);
    let mut pos = Position::default();
    let mut tail = std::collections::VecDeque::new();
    let mut orphaned_since = None;
    let mut poll = std::time::Duration::from_millis(1);
    loop {
        let st = containers.observe(id)?;
        let done = !matches!(
            st.status,
            Status::Created | Status::Running | Status::Paused | Status::Restarting
        );
        // A container still "created" with no monitor left will never change state: its
        // monitor died before recording one. Waiting for it would never end.
        let orphaned = st.status == Status::Created && !containers.monitor_alive(&st);
        if gave_up(&mut orphaned_since, orphaned, std::time::Instant::now()) {
            return Err(crate::container::ContainerError::Start {
                id: id.to_string(),
                message: "the container's monitor exited before it recorded the container's state"
                    .into(),
            });
        }
        // Read after the state: once it says exited, the log is complete.
        if let Ok((entries, p)) = read_from(&path, pos, &Default::default()) {
            pos = p;
            for e in entries {
                let line = e.log.trim_end_matches('\n');
                on_line(line);
                tail.push_back(line.to_string());
                if tail.len() > TAIL {
                    tail.pop_front();
                }
            }
        }
        if done {
            return Ok(RunOutcome {
                exit_code: st.exit_code,
                tail: tail.into(),
            });
        }
        // Most RUN steps end within milliseconds: look again soon, then less often.
        std::thread::sleep(poll);
        poll = (poll * 2).min(std::time::Duration::from_millis(50));
    }
}

/// How long a RUN container may stay "created" without a monitor: the monitor records the
/// running state before it answers the start, so this is only a margin for a slow disk.
const ORPHAN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Whether to stop waiting for a container that has been orphaned (see [`follow`]) since
/// `since`, which this keeps: set when it becomes orphaned, cleared when it is not.
fn gave_up(
    since: &mut Option<std::time::Instant>,
    orphaned: bool,
    now: std::time::Instant,
) -> bool {
    if !orphaned {
        *since = None;
        return false;
    }
    now.duration_since(*since.get_or_insert(now)) >= ORPHAN_GRACE
}

/// `--mount=type=cache|bind|tmpfs|secret,…` → an engine mount. Cache mounts live under
/// `cache_root/<id>` and outlive the build; bind mounts are read-only from `bind_root`.
pub fn parse_mount(
    spec: &str,
    cache_root: &Path,
    bind_root: BindRoot<'_>,
    secrets: &BTreeMap<String, PathBuf>,
) -> Result<(Option<MountSpec>, Option<String>), String> {
    let mut kv = BTreeMap::new();
    for part in spec.split(',') {
        let (k, v) = part.split_once('=').unwrap_or((part, "true"));
        kv.insert(k.trim().to_string(), v.trim().to_string());
    }
    let kind = kv.get("type").map(String::as_str).unwrap_or("bind");
    let target = kv
        .get("target")
        .or_else(|| kv.get("dst"))
        .or_else(|| kv.get("destination"))
        .cloned();
    let ro = |d: bool| {
        kv.get("ro")
            .or_else(|| kv.get("readonly"))
            .map_or(d, |v| v != "false")
            || kv.get("rw").is_some_and(|v| v == "false")
    };
    match kind {
        "cache" => {
            let target = target.ok_or("a cache mount needs target=")?;
            let id = kv.get("id").cloned().unwrap_or_else(|| target.clone());
            let dir = cache_root
                .join(crate::store::digest::digest_of(id.as_bytes()).replace("sha256:", ""));
            std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            Ok((
                Some(MountSpec {
                    kind: "bind".into(),
                    source: dir.display().to_string(),
                    target,
                    read_only: ro(false),
                    anonymous: false,
                }),
                None,
            ))
        }
        "bind" => {
            let target = target.ok_or("a bind mount needs target=")?;
            let source = kv
                .get("source")
                .or_else(|| kv.get("src"))
                .cloned()
                .unwrap_or_default();
            // Docker discards writes to an rw bind mount; here they would reach the
            // context on the host, so only read-only bind mounts are offered.
            if kv.get("rw").is_some_and(|v| v != "false")
                || kv.get("readwrite").is_some_and(|v| v != "false")
            {
                return Err("read-write bind mounts are not supported (writes would reach the build context); copy the files instead".into());
            }
            let path = bind_root(kv.get("from").map(String::as_str), &source)?;
            Ok((
                Some(MountSpec {
                    kind: "bind".into(),
                    source: path.display().to_string(),
                    target,
                    read_only: true,
                    anonymous: false,
                }),
                None,
            ))
        }
        "tmpfs" => Ok((None, Some(target.ok_or("a tmpfs mount needs target=")?))),
        "secret" => {
            let id = kv
                .get("id")
                .cloned()
                .or_else(|| {
                    target
                        .as_ref()
                        .and_then(|t| t.rsplit('/').next().map(String::from))
                })
                .ok_or("a secret mount needs id=")?;
            let Some(src) = secrets.get(&id) else {
                if kv.get("required").is_some_and(|v| v == "true") {
                    return Err(format!(
                        "secret {id} is required but was not given (--secret id={id},src=…)"
                    ));
                }
                return Ok((None, None));
            };
            let target = target.unwrap_or_else(|| format!("/run/secrets/{id}"));
            Ok((
                Some(MountSpec {
                    kind: "bind".into(),
                    source: src.display().to_string(),
                    target,
                    read_only: true,
                    anonymous: false,
                }),
                None,
            ))
        }
        other => Err(format!(
            "unknown mount type {other:?} (cache, bind, tmpfs, secret)"
        )),
    }
}

/// Runs the step, its output going to `on_line` as it comes; on success writes the
/// container's changes as a tar to `layer`.
pub fn run(
    containers: &Containers,
    network: Option<&dyn super::RunNetwork>,
    layer_dirs: Vec<PathBuf>,
    spec: RunSpec,
    layer: &mut dyn Write,
    on_line: &mut dyn FnMut(&str),
) -> Result<RunOutcome, crate::container::ContainerError> {
    let targets: Vec<String> = spec
        .mounts
        .iter()
        .map(|m| m.target.clone())
        .chain(
            spec.tmpfs
                .iter()
                .map(|t| t.split(':').next().unwrap_or_default().to_string()),
        )
        .collect();
    let image = ImageInfo {
        reference: "rcompose-build".into(),
        layer_dirs,
        ..Default::default()
    };
    // `default` is the caller's network (the default bridge); the host's without one.
    let bridged = spec.network == "default" && network.is_some();
    let host = HostConfig {
        network_mode: match spec.network.as_str() {
            "none" => "none".into(),
            _ => "host".into(),
        },
        mounts: spec.mounts,
        tmpfs: spec.tmpfs,
        shm_size: spec.shm_size,
        ..Default::default()
    };
    let mut opts = CreateOptions {
        cmd: spec.args,
        entrypoint: Some(vec![]),
        env: spec.env,
        working_dir: Some(spec.workdir),
        user: Some(spec.user),
        labels: [(BUILD_LABEL.to_string(), std::process::id().to_string())].into(),
        host,
        ..Default::default()
    };
    if let Some(n) = network.filter(|_| bridged) {
        n.prepare(&mut opts)
            .map_err(crate::container::ContainerError::Other)?;
    }
    let cfg = containers.create(&image, opts)?;
    crate::container::proc::trace_phase("build.run.created");
    let res = (|| {
        match network.filter(|_| bridged) {
            Some(n) => n.start(containers, &cfg.id).map_err(|message| {
                crate::container::ContainerError::Start {
                    id: cfg.id.clone(),
                    message,
                }
            })?,
            None => containers.start(&cfg.id, None)?,
        }
        let out = follow(containers, &cfg.id, on_line)?;
        crate::container::proc::trace_phase("build.run.exited");
        if out.exit_code == 0 {
            let upper = crate::rootfs::Rootfs::new(containers.store.rootfs_dir(&cfg)).upper();
            for t in &targets {
                remove_stub(&upper, &cfg.layer_dirs, t);
            }
            containers.changes_tar(&cfg.id, layer)?;
            crate::container::proc::trace_phase("build.run.diffed");
        }
        Ok(out)
    })();
    let _ = containers.remove(&cfg.id, true, false);
    crate::container::proc::trace_phase("build.run.removed");
    if let Some(n) = network.filter(|_| bridged) {
        n.release(&cfg.id);
    }
    res
}

/// Removes from the upper dir the empty file or directory the runtime created as the mount
/// point `target` (and the empty parents it created), unless the image had them: a RUN
/// mount leaves no trace in the layer. Every component is checked to be a real directory
/// (never a symlink), so nothing outside `upper` is touched.
fn remove_stub(upper: &Path, lowers: &[PathBuf], target: &str) {
    let comps: Vec<&str> = target
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    if comps.is_empty() || comps.contains(&"..") {
        return;
    }
    for depth in (1..=comps.len()).rev() {
        let rel = comps[..depth].join("/");
        if lowers
            .iter()
            .any(|l| std::fs::symlink_metadata(l.join(&rel)).is_ok())
        {
            return;
        }
        let mut cur = upper.to_path_buf();
        for c in &comps[..depth - 1] {
            cur.push(c);
            match std::fs::symlink_metadata(&cur) {
                Ok(md) if md.file_type().is_dir() => {}
                _ => return,
            }
        }
        cur.push(comps[depth - 1]);
        let removed = match std::fs::symlink_metadata(&cur) {
            Ok(md) if md.file_type().is_dir() => std::fs::remove_dir(&cur).is_ok(),
            Ok(md) if md.file_type().is_file() && md.len() == 0 => {
                std::fs::remove_file(&cur).is_ok()
            }
            _ => false,
        };
        if !removed {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn an_orphaned_container_is_given_up_after_the_grace() {
        let t0 = Instant::now();
        let mut since = None;
        assert!(!gave_up(&mut since, true, t0));
        assert!(!gave_up(&mut since, true, t0 + Duration::from_secs(1)));
        // A monitor seen again starts the count afresh.
        assert!(!gave_up(&mut since, false, t0 + Duration::from_secs(2)));
        assert!(!gave_up(&mut since, true, t0 + Duration::from_secs(3)));
        assert!(!gave_up(&mut since, true, t0 + Duration::from_secs(7)));
        assert!(gave_up(&mut since, true, t0 + Duration::from_secs(8)));
    }
}
