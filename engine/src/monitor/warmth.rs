//! Keeping the kernel's cgroup threadgroup lock warm while monitors start.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Moving a process into a cgroup (libcontainer moves the container's into its new cgroups)
/// takes the kernel's global cgroup threadgroup lock for writing, which first waits for an
/// RCU grace period unless the lock is already in writer mode: 5-20 ms on kernels built
/// without CONFIG_CGROUP_FAVOR_DYNMODS (most), the largest single cost of a start, spent
/// asleep. The lock stays in writer mode for about one grace period after a write, and
/// writers arriving meanwhile, or during a wait under way, do not wait again. So while a
/// monitor starts, a background thread "moves" this process into the cgroup it is already
/// in (a no-op for the host) every couple of milliseconds: the first move starts the wait
/// early, in parallel with the monitor's start-up, and the next ones keep the lock warm until
/// libcontainer's move is done. Stops when dropped (once the start is reported) or after a
/// second at most. Errors are ignored: libcontainer's move then just pays the wait itself.
///
/// One thread per process serves every start under way: `up` starts several monitors at
/// once, and a thread each multiplied the writes, each of which takes the cgroup mutex that
/// libcontainer's cgroup creation needs and stalls every fork on the host while it holds the
/// lock for writing.
///
/// A command that starts one container takes a guard as soon as it knows it will
/// ([`crate::monitor::warm_cgroups`]): the wait then runs beside its own work (reading the
/// image, writing the container's files, the monitor's exec) instead of after it.
pub struct CgroupWarmth(());

/// Starts under way (guards alive), whether the thread runs, and when the last start began.
static ACTIVE: AtomicUsize = AtomicUsize::new(0);
static RUNNING: AtomicBool = AtomicBool::new(false);
static LAST_START: Mutex<Option<Instant>> = Mutex::new(None);

impl CgroupWarmth {
    const EVERY: Duration = Duration::from_millis(2);
    const AT_MOST: Duration = Duration::from_secs(1);

    pub(super) fn start() -> Self {
        static PROCS: OnceLock<Option<PathBuf>> = OnceLock::new();
        ACTIVE.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut last) = LAST_START.lock() {
            *last = Some(Instant::now());
        }
        if let Some(procs) = PROCS.get_or_init(own_cgroup_procs)
            && !RUNNING.swap(true, Ordering::SeqCst)
        {
            let procs = procs.clone();
            let spawned = std::thread::Builder::new()
                .name("cgroup-warmth".into())
                .spawn(move || keep_warm(&procs));
            if spawned.is_err() {
                RUNNING.store(false, Ordering::SeqCst);
            }
        }
        Self(())
    }
}

impl Drop for CgroupWarmth {
    fn drop(&mut self) {
        ACTIVE.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Writes while a start is under way and the latest began less than `AT_MOST` ago.
fn keep_warm(procs: &Path) {
    loop {
        let fresh = || {
            LAST_START
                .lock()
                .ok()
                .and_then(|l| *l)
                .is_some_and(|t| t.elapsed() < CgroupWarmth::AT_MOST)
        };
        while ACTIVE.load(Ordering::SeqCst) > 0 && fresh() && std::fs::write(procs, b"0").is_ok() {
            std::thread::sleep(CgroupWarmth::EVERY);
        }
        RUNNING.store(false, Ordering::SeqCst);
        // A start that came in after the check above saw RUNNING still set and left the
        // writing to us: take it back unless another thread did.
        if ACTIVE.load(Ordering::SeqCst) == 0 || !fresh() || RUNNING.swap(true, Ordering::SeqCst) {
            return;
        }
    }
}

/// `cgroup.procs` of the cgroup this process is in: in the v2 hierarchy (pure v2, or the
/// unified one of a hybrid host) if mounted, else in a v1 hierarchy under /sys/fs/cgroup.
fn own_cgroup_procs() -> Option<PathBuf> {
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let candidate = |l: &str| -> Option<PathBuf> {
        let mut f = l.splitn(3, ':');
        let (_, ctrls, path) = (f.next()?, f.next()?, f.next()?);
        let base = if ctrls.is_empty() {
            ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"]
                .into_iter()
                .find(|b| Path::new(b).join("cgroup.controllers").exists())?
                .to_string()
        } else {
            format!("/sys/fs/cgroup/{}", ctrls.trim_start_matches("name="))
        };
        let p = Path::new(&base)
            .join(path.trim_start_matches('/'))
            .join("cgroup.procs");
        p.exists().then_some(p)
    };
    own.lines()
        .filter(|l| l.starts_with("0::"))
        .chain(own.lines().filter(|l| !l.starts_with("0::")))
        .find_map(candidate)
}
