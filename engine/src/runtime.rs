//! The OCI runtime behind one trait. The only implementation drives youki's `libcontainer` in
//! process. libcontainer forks (clone3), so every call must come from a single-threaded
//! process: the monitor or the (tokio-free) CLI, never from inside an async runtime.
//!
//! The container's init is created with CLONE_PARENT by libcontainer's intermediate process,
//! so it is a child of the caller with no exit signal: wait for it with `__WALL`.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use libcontainer::container::builder::ContainerBuilder;
use libcontainer::container::{Container, ContainerStatus};
use libcontainer::syscall::syscall::SyscallType;

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("runtime: {op} container {id}: {source}")]
    Libcontainer {
        op: &'static str,
        id: String,
        #[source]
        source: Box<libcontainer::error::LibcontainerError>,
    },
}

/// Standard streams for the container's process: explicit fds (pipes, /dev/null), or a
/// terminal whose master is sent on the unix socket at `console_socket`.
pub enum Stdio {
    Fds {
        stdin: Option<OwnedFd>,
        stdout: OwnedFd,
        stderr: OwnedFd,
    },
    Console(PathBuf),
}

/// What `exec` runs inside a running container: an OCI `process` object in a JSON file
/// (args, env, cwd, user, capabilities, terminal), and its stdio.
pub struct ExecRequest {
    pub process_json: PathBuf,
    pub stdio: Stdio,
}

pub trait Runtime {
    /// Creates and starts the container described by `<bundle>/config.json`; returns the
    /// host pid of its init.
    fn run(&self, id: &str, bundle: &Path, stdio: Stdio) -> Result<i32, RuntimeError>;
    /// Starts a new process inside the running container; returns its host pid.
    fn exec(&self, id: &str, req: ExecRequest) -> Result<i32, RuntimeError>;
    /// Kills what is left and removes the cgroup and the runtime's state.
    fn delete(&self, id: &str) -> Result<(), RuntimeError>;
    fn pause(&self, id: &str) -> Result<(), RuntimeError>;
    fn resume(&self, id: &str) -> Result<(), RuntimeError>;
    /// Whether the runtime still has state for `id`.
    fn exists(&self, id: &str) -> bool;
}

/// libcontainer with its per-container state under `state_root/<id>`.
pub struct Libcontainer {
    pub state_root: PathBuf,
}

impl Libcontainer {
    pub fn new(state_root: impl Into<PathBuf>) -> Self {
        Self {
            state_root: state_root.into(),
        }
    }

    fn load(&self, id: &str, op: &'static str) -> Result<Container, RuntimeError> {
        Container::load(self.state_root.join(id)).map_err(|e| lc(op, id, e))
    }

    fn builder(&self, id: &str, op: &'static str) -> Result<ContainerBuilder, RuntimeError> {
        // libcontainer keeps a copy of the spec (the environment) here: 0700 before it
        // creates the directory with the umask's mode. An error shows up in its own mkdir.
        {
            use std::os::unix::fs::DirBuilderExt;
            let _ = std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&self.state_root);
        }
        ContainerBuilder::new(id.to_string(), SyscallType::default())
            .with_root_path(&self.state_root)
            .map_err(|e| lc(op, id, e))
    }
}

/// The directories of the cgroup `path` (`/rcompose/<id>`) in every cgroup hierarchy mounted;
/// `None` for a hierarchy's root or a path with anything but plain names.
fn cgroup_dirs(path: &Path) -> Option<Vec<PathBuf>> {
    let rel = match path.strip_prefix("/") {
        Ok(r) if r.components().count() >= 2 => r,
        // Never a hierarchy's root or a relative path we did not make.
        _ => return None,
    };
    if rel
        .components()
        .any(|c| !matches!(c, std::path::Component::Normal(_)))
    {
        return None;
    }
    Some(
        cgroup_mount_points()?
            .into_iter()
            .map(|mp| mp.join(rel))
            .collect(),
    )
}

/// Mount points of the cgroup hierarchies (v1 and v2) in this mount namespace, at least one
/// for each hierarchy this process is in. The cgroup mounts come first in mountinfo, which
/// grows by two mounts per running container: the read stops once every hierarchy listed
/// in /proc/self/cgroup has one (a full read cost ~1 ms at a hundred containers, on every
/// container removal).
fn cgroup_mount_points() -> Option<Vec<PathBuf>> {
    use std::io::BufRead;
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    // Per hierarchy: the controllers (or name=…) its mount's options must list; empty for v2.
    let mut wanted: Vec<Vec<&str>> = own
        .lines()
        .filter_map(|l| l.split(':').nth(1))
        .map(|c| c.split(',').filter(|c| !c.is_empty()).collect())
        .collect();
    let info = std::io::BufReader::new(std::fs::File::open("/proc/self/mountinfo").ok()?);
    let mut found = Vec::new();
    for line in info.lines() {
        let line = line.ok()?;
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let mut post = post.split(' ');
        let (Some(fstype), Some(mp)) = (post.next(), pre.split(' ').nth(4)) else {
            continue;
        };
        let options: Vec<&str> = post.nth(1).unwrap_or("").split(',').collect();
        let serves = |w: &Vec<&str>| match fstype {
            "cgroup2" => w.is_empty(),
            "cgroup" => !w.is_empty() && w.iter().all(|c| options.contains(c)),
            _ => false,
        };
        if !matches!(fstype, "cgroup" | "cgroup2") {
            continue;
        }
        found.push(PathBuf::from(crate::rootfs::unescape_mount_path(mp)));
        wanted.retain(|w| !serves(w));
        if wanted.is_empty() {
            break;
        }
    }
    Some(found)
}

/// Thaws one cgroup directory (v1 freezer or v2); a controller it lacks is no error.
fn thaw(dir: &Path) {
    let _ = std::fs::write(dir.join("freezer.state"), "THAWED");
    let _ = std::fs::write(dir.join("cgroup.freeze"), "0");
}

/// Thaws the cgroup `path` (`/rcompose/<id>`) in every hierarchy, whatever libcontainer's
/// state says (a command killed between its freeze and its thaw left both behind).
pub(crate) fn thaw_cgroups(path: &Path) {
    for dir in cgroup_dirs(path).unwrap_or_default() {
        if dir.is_dir() {
            thaw(&dir);
        }
    }
}

fn lc(op: &'static str, id: &str, e: libcontainer::error::LibcontainerError) -> RuntimeError {
    RuntimeError::Libcontainer {
        op,
        id: id.into(),
        source: Box::new(e),
    }
}

/// Removes the cgroups of a container the runtime has no state for: its run root was lost (a
/// reboot clears both; losing only the state leaves the cgroups behind, empty once the
/// processes are gone). Only `<parent>/<64-hex id>` paths; processes left in them are killed.
pub(crate) fn remove_stateless_cgroups(path: &str, id: &str) -> bool {
    let guarded = id.len() == 64
        && id.bytes().all(|b| b.is_ascii_hexdigit())
        && Path::new(path).file_name().and_then(|n| n.to_str()) == Some(id);
    guarded && remove_cgroups(Path::new(path))
}

/// Removes the cgroup `path` (as in the spec's `cgroupsPath`, e.g. `/rcompose/<id>`) from
/// every cgroup hierarchy mounted (v1 controllers, v2), after killing any process left in it
/// (none once the container's init is gone: its PID namespace died with it). False when one
/// cannot be removed (the caller then lets libcontainer try).
fn remove_cgroups(path: &Path) -> bool {
    let Some(dirs) = cgroup_dirs(path) else {
        return false;
    };
    let mut ok = true;
    for dir in dirs {
        let mut delay = std::time::Duration::from_millis(1);
        for attempt in 0..6 {
            match std::fs::remove_dir(&dir) {
                Ok(()) => break,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                Err(_) if attempt < 5 => {
                    // A command killed inside libcontainer's kill (freeze, signal, thaw) leaves
                    // the cgroup frozen, and SIGKILL waits for a thaw (seen after a crash run).
                    thaw(&dir);
                    if let Ok(pids) = std::fs::read_to_string(dir.join("cgroup.procs")) {
                        for pid in pids.lines().filter_map(|p| p.trim().parse::<i32>().ok()) {
                            // SAFETY: kill(2); these pids are in the container's own cgroup.
                            unsafe { libc::kill(pid, libc::SIGKILL) };
                        }
                    }
                    std::thread::sleep(delay);
                    delay *= 4;
                }
                Err(_) => ok = false,
            }
        }
    }
    ok
}

fn with_stdio(b: ContainerBuilder, stdio: Stdio) -> (ContainerBuilder, bool) {
    match stdio {
        Stdio::Fds {
            stdin,
            stdout,
            stderr,
        } => {
            let b = b.with_stdout(stdout).with_stderr(stderr);
            let b = match stdin {
                Some(i) => b.with_stdin(i),
                None => b,
            };
            (b, false)
        }
        Stdio::Console(p) => (b.with_console_socket(Some(p)), true),
    }
}

impl Runtime for Libcontainer {
    fn run(&self, id: &str, bundle: &Path, stdio: Stdio) -> Result<i32, RuntimeError> {
        // A stale state dir (crash, monitor killed) would make the build fail.
        if self.exists(id) {
            self.delete(id)?;
        }
        let (b, tty) = with_stdio(self.builder(id, "create")?, stdio);
        let mut c = b
            .as_init(bundle)
            .with_systemd(false)
            .with_detach(tty)
            .build()
            .map_err(|e| lc("create", id, e))?;
        crate::container::proc::trace_phase("runtime.created");
        // libcgroups always writes oom_kill_disable 0: set what the spec asks between create
        // and start, while the init still waits.
        if let Err(e) = crate::container::resources::apply_oom_kill_disable(bundle) {
            let _ = c.delete(true);
            return Err(lc(
                "create",
                id,
                libcontainer::error::LibcontainerError::OtherIO(e),
            ));
        }
        if let Err(e) = c.start() {
            let _ = c.delete(true);
            return Err(lc("start", id, e));
        }
        Ok(c.pid().map(|p| p.as_raw()).unwrap_or(0))
    }

    fn exec(&self, id: &str, req: ExecRequest) -> Result<i32, RuntimeError> {
        let (b, tty) = with_stdio(self.builder(id, "exec")?, req.stdio);
        let pid = b
            .as_tenant()
            .with_process(Some(req.process_json))
            .with_detach(tty)
            .build()
            .map_err(|e| lc("exec", id, e))?;
        Ok(pid.as_raw())
    }

    fn delete(&self, id: &str) -> Result<(), RuntimeError> {
        if !self.exists(id) {
            return Ok(());
        }
        let mut c = match self.load(id, "delete") {
            Ok(c) => c,
            // libcontainer rewrites its state file in place: a process killed meanwhile
            // leaves it empty or torn, and every later delete (so `rm` and `down`) failed on
            // it (tests/reliability_crash.rs). Delete by hand what it would have: the
            // container's cgroups (killing what is left in them) and the state directory.
            Err(e) if self.state_unreadable(id) => {
                let root = self.state_root.join(id);
                let guarded = id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit());
                if !guarded || !remove_cgroups(Path::new(&format!("/rcompose/{id}"))) {
                    return Err(e);
                }
                return match std::fs::remove_dir_all(&root) {
                    Err(io) if io.kind() != std::io::ErrorKind::NotFound => Err(lc(
                        "delete",
                        id,
                        libcontainer::error::LibcontainerError::OtherIO(io),
                    )),
                    _ => Ok(()),
                };
            }
            Err(e) => return Err(e),
        };
        // Nothing left to kill: remove the cgroups and the state ourselves. libcontainer's
        // delete does the same, but first probes every cgroup controller through
        // /proc/self/mountinfo (two dozen reads): a few ms on every stop and `run --rm`.
        // Anything unexpected (hooks to run, a cgroup that stays busy) falls back to it.
        if c.status() == ContainerStatus::Stopped
            && let Ok(cfg) = c.spec()
            && cfg.hooks.is_none()
            && remove_cgroups(&cfg.cgroup_path)
        {
            let root = self.state_root.join(id);
            return match std::fs::remove_dir_all(&root) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(lc(
                    "delete",
                    id,
                    libcontainer::error::LibcontainerError::OtherIO(e),
                )),
                _ => Ok(()),
            };
        }
        c.delete(true).map_err(|e| lc("delete", id, e))
    }

    fn pause(&self, id: &str) -> Result<(), RuntimeError> {
        self.load(id, "pause")?
            .pause()
            .map_err(|e| lc("pause", id, e))
    }

    fn resume(&self, id: &str) -> Result<(), RuntimeError> {
        self.load(id, "unpause")?
            .resume()
            .map_err(|e| lc("unpause", id, e))
    }

    fn exists(&self, id: &str) -> bool {
        self.state_root.join(id).join("state.json").exists()
    }
}

impl Libcontainer {
    /// Whether libcontainer's state file for `id` is there but not JSON (torn by a kill).
    fn state_unreadable(&self, id: &str) -> bool {
        std::fs::read(self.state_root.join(id).join("state.json"))
            .is_ok_and(|b| serde_json::from_slice::<serde_json::Value>(&b).is_err())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression (issue 15): a state file torn by a kill made every later delete fail.
    #[test]
    fn delete_gets_past_a_torn_state_file() {
        let tmp = tempfile::tempdir().unwrap();
        let rt = Libcontainer::new(tmp.path());
        let id = "e".repeat(64);
        std::fs::create_dir_all(tmp.path().join(&id)).unwrap();
        std::fs::write(tmp.path().join(&id).join("state.json"), b"").unwrap();
        rt.delete(&id).unwrap();
        assert!(!tmp.path().join(&id).exists());
        assert!(!rt.exists(&id));
    }

    #[test]
    fn cgroup_removal_refuses_paths_we_did_not_make() {
        for p in [
            "/",
            "/rcompose",
            "rcompose/x",
            "/rcompose/../x",
            "/rcompose/x/..",
        ] {
            assert!(!remove_cgroups(Path::new(p)), "{p}");
        }
        // A cgroup that does not exist anywhere is removed already.
        assert!(remove_cgroups(Path::new(
            "/rcompose-test-none/0000000000000000000000000000000000000000000000000000000000000000"
        )));
    }

    /// The early-stopping read finds a mount of every cgroup hierarchy a full read finds.
    #[test]
    fn cgroup_mount_points_cover_every_hierarchy() {
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let kind = |mp: &Path| -> Option<(String, String)> {
            info.lines().find_map(|l| {
                let (pre, post) = l.split_once(" - ")?;
                let f: Vec<&str> = post.split(' ').collect();
                (Path::new(pre.split(' ').nth(4)?) == mp && matches!(f[0], "cgroup" | "cgroup2"))
                    .then(|| (f[0].to_string(), f[2].to_string()))
            })
        };
        let all: std::collections::BTreeSet<(String, String)> = info
            .lines()
            .filter_map(|l| {
                let (_, post) = l.split_once(" - ")?;
                let f: Vec<&str> = post.split(' ').collect();
                matches!(f[0], "cgroup" | "cgroup2").then(|| (f[0].to_string(), f[2].to_string()))
            })
            .collect();
        let found = cgroup_mount_points().unwrap();
        let kinds: std::collections::BTreeSet<(String, String)> =
            found.iter().map(|mp| kind(mp).unwrap()).collect();
        assert!(!all.is_empty());
        assert_eq!(kinds, all, "{found:?}");
    }

    /// The patched libcgroups' list of v1 mounts (libcontainer bind-mounts them into a
    /// container) may stop early: it must still hold a mount of every v1 hierarchy.
    #[test]
    fn patched_cgroup_v1_mount_list_has_every_hierarchy() {
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let v1 = |l: &str| -> Option<(PathBuf, String)> {
            let (pre, post) = l.split_once(" - ")?;
            let f: Vec<&str> = post.split(' ').collect();
            let mp = PathBuf::from(pre.split(' ').nth(4)?);
            (f[0] == "cgroup").then(|| (mp, f[2].to_string()))
        };
        let all: Vec<(PathBuf, String)> = info.lines().filter_map(v1).collect();
        let listed = libcgroups::v1::util::list_subsystem_mount_points().unwrap();
        let kinds = |v: &mut dyn Iterator<Item = String>| -> std::collections::BTreeSet<String> {
            v.collect()
        };
        let want = kinds(&mut all.iter().map(|(_, o)| o.clone()));
        let got = kinds(
            &mut listed
                .iter()
                .filter_map(|p| all.iter().find(|(mp, _)| mp == p).map(|(_, o)| o.clone())),
        );
        assert_eq!(got, want, "{listed:?}");
    }

    /// The patched libcgroups (third_party/README.md) reads mountinfo once and may stop
    /// early: for every v1 controller it must give the answer of upstream's full scan.
    #[test]
    fn patched_cgroup_v1_mount_points_match_a_full_scan() {
        use libcgroups::v1::ControllerType;
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let cgroup_mounts: Vec<PathBuf> = mountinfo
            .lines()
            .filter_map(|l| {
                let (pre, post) = l.split_once(" - ")?;
                (post.split(' ').next() == Some("cgroup"))
                    .then(|| PathBuf::from(pre.split(' ').nth(4).unwrap()))
            })
            .collect();
        use ControllerType::*;
        for c in &[
            Cpu,
            CpuAcct,
            CpuSet,
            Devices,
            HugeTlb,
            Memory,
            Pids,
            PerfEvent,
            Blkio,
            NetworkPriority,
            NetworkClassifier,
            Freezer,
        ] {
            let names: Vec<String> = match c {
                ControllerType::NetworkClassifier => {
                    vec![
                        "net_cls,net_prio".into(),
                        "net_prio,net_cls".into(),
                        "net_cls".into(),
                    ]
                }
                ControllerType::NetworkPriority => {
                    vec![
                        "net_cls,net_prio".into(),
                        "net_prio,net_cls".into(),
                        "net_prio".into(),
                    ]
                }
                ControllerType::Cpu => vec!["cpu,cpuacct".into(), "cpu".into()],
                ControllerType::CpuAcct => vec!["cpu,cpuacct".into(), "cpuacct".into()],
                other => vec![other.to_string()],
            };
            let full_scan = cgroup_mounts
                .iter()
                .find(|p| names.iter().any(|n| p.ends_with(n)));
            // Twice: the second answer comes from the per-process list.
            for _ in 0..2 {
                let patched = libcgroups::v1::util::get_subsystem_mount_point(c).ok();
                assert_eq!(patched.as_ref(), full_scan, "{c}");
            }
        }
    }

    /// The patched v1 manager reads this process's cgroups and the mount points once for
    /// all subsystems: with an empty path, its devices cgroup must be this process's own.
    #[test]
    fn patched_cgroup_v1_manager_finds_its_own_cgroup() {
        use libcgroups::common::CgroupManager;
        let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
        let Some(devices) = own.lines().find_map(|l| {
            l.split(':')
                .nth(1)
                .filter(|c| c.split(',').any(|c| c == "devices"))
        }) else {
            return; // no v1 devices hierarchy (a pure cgroup v2 host)
        };
        let manager = libcgroups::v1::manager::Manager::new(Path::new("")).unwrap();
        let pids = manager.get_all_pids().unwrap();
        let me = std::process::id() as i32;
        assert!(
            pids.iter().any(|p| p.as_raw() == me),
            "{devices}: {pids:?} lacks {me}"
        );
    }

    /// Only a container's own cgroup path (`<parent>/<64-hex id>`) is ever removed; a valid
    /// path with nothing there is removed "successfully" (nothing to do).
    #[test]
    fn stateless_cgroup_removal_is_guarded() {
        let id = "f".repeat(64);
        assert!(!remove_stateless_cgroups("/rcompose", &id));
        assert!(!remove_stateless_cgroups("/rcompose/x", "x"));
        assert!(!remove_stateless_cgroups(
            &format!("/rcompose/{id}/.."),
            &id
        ));
        assert!(remove_stateless_cgroups(&format!("/rcompose/{id}"), &id));
    }
}
