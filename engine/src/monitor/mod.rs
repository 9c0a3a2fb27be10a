//! The per-container monitor (like podman's conmon): the `rcompose` binary re-executed with a
//! hidden subcommand, or forked by the fork server a command starts for its second and later
//! monitors (`forkserver.rs`), detached from the caller (own session, stdio on /dev/null).
//! It prepares the container, starts it through the runtime, holds its stdio (pipes, or the
//! PTY master with `-t`), writes the json-file log, serves attach clients on
//! `<run_root>/containers/<id>/attach.sock`, records the exit, applies the restart policy and
//! exits when the container is gone for good.
//!
//! It never runs an async runtime: libcontainer forks, so the process stays single-threaded.
//! If the monitor is killed the container keeps running; short-lived commands then find the
//! process by (pid, start time) and clean up themselves.

pub mod client;
pub mod forkserver;
mod health;
mod io_loop;
mod launch;
pub mod protocol;
mod warmth;

pub use io_loop::{bind_unix, connect_unix, recv_fd, wait_code};

/// Starts warming the cgroup lock for a container start to come (see `warmth.rs`); drop the
/// guard once the start is reported (it stops by itself after a second).
pub fn warm_cgroups() -> warmth::CgroupWarmth {
    warmth::CgroupWarmth::start()
}

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use std::time::{Duration, Instant};

use crate::container::model::{ContainerState, Status, now_rfc3339};
use crate::container::{ContainerError, ContainerStore, prepare, proc};
use crate::logs::LogWriter;
use crate::runtime::{Libcontainer, Runtime};

/// How long a container runs before its monitor gives back its start-up memory.
const SHRINK_AFTER: Duration = Duration::from_millis(50);
/// The hidden subcommand's name.
pub const SUBCOMMAND: &str = "container-monitor";
/// Fixed fd numbers in the monitor for the start handshake and the first attach client.
const SYNC_FD: RawFd = 3;
const ATTACH_FD: RawFd = 4;

/// Starts a monitor for `id` and waits until the container runs (or failed to start).
pub fn spawn(
    exe: &Path,
    store: &ContainerStore,
    id: &str,
    attach: Option<OwnedFd>,
) -> Result<(), ContainerError> {
    let (sync_r, sync_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| ContainerError::Other(format!("pipe: {e}")))?;
    // Move both fds above the fixed slots so the dup2 below cannot clobber one with the other.
    let high = |fd: RawFd| -> Result<OwnedFd, ContainerError> {
        // SAFETY: F_DUPFD_CLOEXEC returns a new fd we own.
        let n = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 10) };
        if n < 0 {
            return Err(ContainerError::Other(format!(
                "dup: {}",
                std::io::Error::last_os_error()
            )));
        }
        Ok(unsafe { OwnedFd::from_raw_fd(n) })
    };
    // Shadowing would keep the originals open (and the handshake would never see EOF).
    let sync_w = {
        let moved = high(sync_w.as_raw_fd())?;
        drop(sync_w);
        moved
    };
    let attach = match attach {
        Some(a) => {
            let moved = high(a.as_raw_fd())?;
            drop(a);
            Some(moved)
        }
        None => None,
    };
    let sync_raw = sync_w.as_raw_fd();
    let attach_raw = attach.as_ref().map(|a| a.as_raw_fd());

    let mut args: Vec<&std::ffi::OsStr> = vec![
        "--root".as_ref(),
        store.root.as_os_str(),
        "--run-root".as_ref(),
        store.run_root.as_os_str(),
        SUBCOMMAND.as_ref(),
        id.as_ref(),
    ];
    let mut fds = vec![(sync_raw, SYNC_FD)];
    if let Some(a) = attach_raw {
        args.push("--attach".as_ref());
        fds.push((a, ATTACH_FD));
    }
    proc::trace_phase("spawn");
    let _warm = warmth::CgroupWarmth::start();
    let sources: Vec<RawFd> = fds.iter().map(|(src, _)| *src).collect();
    if !forkserver::request(exe, &store.root, &store.run_root, id, &sources) {
        launch::spawn_detached(exe, &args, &fds)?;
    }
    drop(sync_w);
    drop(attach);
    proc::trace_phase("spawn.spawned");
    let mut msg = String::new();
    let _ = File::from(sync_r).read_to_string(&mut msg);
    proc::trace_phase("spawn.handshake");
    match msg.strip_prefix("ok") {
        Some(_) => Ok(()),
        None if msg.is_empty() => Err(ContainerError::Start {
            id: id.into(),
            message: "the monitor exited before the container started".into(),
        }),
        None => Err(ContainerError::Start {
            id: id.into(),
            message: msg.trim_start_matches("err ").trim().to_string(),
        }),
    }
}

/// Called by the monitor once the container's process exited for good (no restart coming),
/// before its network namespace goes. The binary passes the network teardown here (ports
/// unpublished, endpoints and DNS names released) to [`main`], since the engine does not
/// depend on the network crate. Arguments: root, run root, the container's config. It runs beside the
/// engine's own clean-up (unmount, namespace and, with `--rm`, the container's removal), in
/// a thread: it must not read the container's files. What it returns runs after the exit
/// was reported, in a child of the monitor, so neither the exit nor a `stop` waiting for the
/// monitor waits for it (the kernel's slow part of a network teardown).
pub type ExitHook = fn(&Path, &Path, &crate::container::ContainerConfig) -> Option<Deferred>;

/// Work left for after the exit was reported (see [`ExitHook`]).
pub type Deferred = Box<dyn FnOnce() + Send>;

/// Body of the hidden subcommand. Returns the process exit code. `on_exit` runs once the
/// container exited for good (see [`ExitHook`]).
pub fn main(
    root: &Path,
    run_root: &Path,
    id: &str,
    attached: bool,
    on_exit: Option<ExitHook>,
) -> i32 {
    proc::trace_phase("monitor.main");
    // `spawn` started us in a session of our own and not as its child (launch.rs): there is
    // no second fork to make. We lead that session but never open a terminal (a container's
    // console arrives as a descriptor), so none becomes ours.
    // SAFETY: fds handed over by `spawn` at fixed numbers.
    let sync = unsafe { File::from_raw_fd(SYNC_FD) };
    let attach = attached.then(|| unsafe { OwnedFd::from_raw_fd(ATTACH_FD) });
    let store = ContainerStore::new(root, run_root);
    let mut m = Monitor {
        runtime: Libcontainer::new(store.runtime_root()),
        store,
        id: id.to_string(),
        sync: Some(sync),
        on_exit,
    };
    m.run(attach)
}

struct Monitor {
    store: ContainerStore,
    runtime: Libcontainer,
    id: String,
    sync: Option<File>,
    on_exit: Option<ExitHook>,
}

impl Monitor {
    fn report_start(&mut self, result: Result<(), String>) {
        if let Some(mut s) = self.sync.take() {
            let msg = match result {
                Ok(()) => "ok".to_string(),
                Err(e) => format!("err {e}"),
            };
            let _ = s.write_all(msg.as_bytes());
        }
    }

    fn user_stopped(&self) -> bool {
        self.store.dir(&self.id).join("stopping").exists()
    }

    fn run(&mut self, attach: Option<OwnedFd>) -> i32 {
        let cfg = match self.store.load_config(&self.id) {
            Ok(c) => c,
            Err(e) => {
                self.report_start(Err(e.to_string()));
                return 1;
            }
        };
        let mut st = self.store.load_state(&self.id).unwrap_or_default();
        st.monitor_pid = std::process::id() as i32;
        st.monitor_start_ticks = proc::start_ticks(st.monitor_pid);
        // Recorded before anything can fail or be killed: a created container whose monitor
        // is gone is then known to be abandoned (`lifecycle::repair`), not still starting.
        let _ = self.store.save_state(&self.id, &st);
        let mut clients = io_loop::Clients::new(attach);
        let log = if cfg.host.keeps_logs() {
            cfg.host
                .log_rotation()
                .and_then(|rotation| LogWriter::open(&self.store.log_path(&self.id), rotation))
        } else {
            Ok(LogWriter::discard())
        };
        let mut log = match log {
            Ok(l) => l,
            Err(e) => {
                self.report_start(Err(e.to_string()));
                return 1;
            }
        };
        let listener = io_loop::listen(&self.store.attach_socket(&self.id));
        proc::trace_phase("monitor.ready");
        let mut backoff = Duration::from_millis(100);
        let mut first = true;
        let exit_code = loop {
            let started = Instant::now();
            let outcome = self.start_once(&cfg, &mut st);
            let (pid, stdio) = match outcome {
                Ok(v) => v,
                Err(e) => {
                    let msg = e.to_string();
                    st.status = if first {
                        Status::Created
                    } else {
                        Status::Exited
                    };
                    st.error = msg.clone();
                    st.exit_code = if first { 0 } else { 128 };
                    st.pid = 0;
                    if first {
                        // Leaving on purpose: the start failed, it was not abandoned.
                        st.monitor_pid = 0;
                    }
                    let _ = self.store.save_state(&self.id, &st);
                    let _ = prepare::teardown(&self.store, &self.id);
                    let _ = self.runtime.delete(&self.id);
                    if first {
                        self.report_start(Err(msg));
                        return 1;
                    }
                    break 128;
                }
            };
            // Start-up pages are given back once the container has run for a moment: a
            // short-lived one (the common `run --rm`) exits first, without waiting for that.
            let mut shrink_at = first.then(|| Instant::now() + SHRINK_AFTER);
            if first {
                self.report_start(Ok(()));
                proc::trace_phase("monitor.reported-start");
                first = false;
            }
            let mut health = health::Health::new(cfg.healthcheck.as_ref());
            st.health = health.as_ref().map(|_| health::Health::initial_state());
            if health.is_some() {
                let _ = self.store.save_state(&self.id, &st);
            }
            let bundle = self.store.bundle_dir(&self.id);
            let run_dir = self.store.run_dir(&self.id);
            let mut tick = || -> io_loop::Wake {
                let mut wake = match health.as_mut() {
                    None => io_loop::Wake::idle(),
                    Some(h) => {
                        let hs = st.health.get_or_insert_with(health::Health::initial_state);
                        h.tick(&self.runtime, &self.store, &self.id, &bundle, &run_dir, hs);
                        h.wake()
                    }
                };
                if let Some(at) = shrink_at {
                    let left = at.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        shrink_resident_memory();
                        shrink_at = None;
                    } else {
                        wake.after = Some(wake.after.map_or(left, |a| a.min(left)));
                    }
                }
                wake
            };
            let code = io_loop::serve(
                pid,
                stdio,
                &mut log,
                &mut clients,
                listener.as_ref(),
                &mut tick,
            );
            proc::trace_phase("monitor.exited");
            let _ = log.flush_partial();
            st.oom_killed = oom_killed(&crate::container::resources::cgroups_path(&cfg));
            st.exit_code = code;
            st.pid = 0;
            st.finished_at = now_rfc3339();
            let stopped = self.user_stopped();
            if cfg
                .host
                .restart
                .should_restart(code, st.restart_count, stopped)
            {
                let _ = self.runtime.delete(&self.id);
                if started.elapsed() > Duration::from_secs(10) {
                    backoff = Duration::from_millis(100);
                }
                st.status = Status::Restarting;
                let _ = self.store.save_state(&self.id, &st);
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(60));
                if self.user_stopped() {
                    break code;
                }
                st.restart_count += 1;
                continue;
            }
            break code;
        };
        st.status = Status::Exited;
        st.pid = 0;
        // The network teardown (deleting a veth costs the kernel ~15 ms) runs beside the
        // engine's own; both are done before the exit is reported, so when a `run --rm`
        // returns its container is gone, its name, addresses and ports free. What only takes
        // time (deleting veths, and the trees of an `--rm` container's directories, already
        // renamed to tombstones) is done after, in a child. No container process is left to
        // fork for.
        // The runtime's state and cgroups go beside the unmounts too (they share nothing),
        // but before the state says "exited": a `start` that sees it must find them gone.
        let deferred = std::thread::scope(|scope| {
            let network = self.on_exit.map(|hook| {
                let (root, run_root, cfg) = (&self.store.root, &self.store.run_root, &cfg);
                scope.spawn(move || hook(root, run_root, cfg))
            });
            let (runtime, id) = (&self.runtime, &self.id);
            let deleted = scope.spawn(move || {
                let _ = runtime.delete(id);
                proc::trace_phase("monitor.runtime-deleted");
            });
            let _ = prepare::teardown(&self.store, &self.id);
            proc::trace_phase("monitor.teardown");
            // Joined (a panic there only means the runtime's leftovers stay, as on error).
            let _ = deleted.join();
            // Deleting the trees (the container's writable layer among them) is left for
            // after the exit is reported.
            let mut trees = None;
            if cfg.host.auto_remove {
                let containers = crate::container::Containers::new(
                    &self.store.root,
                    &self.store.run_root,
                    PathBuf::new(),
                );
                let _ = self.store.save_state(&self.id, &st);
                if let Ok(t) = containers.remove_leaving_trees(&self.id) {
                    trees = Some((containers, t));
                }
            } else {
                let _ = self.store.save_state(&self.id, &st);
            }
            let network = network.and_then(|t| t.join().ok().flatten());
            proc::trace_phase("monitor.exit-hook");
            match trees {
                None => network,
                Some((containers, trees)) => Some(Box::new(move || {
                    containers.delete_tombstones(&trees);
                    if let Some(work) = network {
                        work();
                    }
                }) as Deferred),
            }
        });
        let _ = std::fs::remove_file(self.store.attach_socket(&self.id));
        clients.send_exit(exit_code);
        proc::trace_phase("monitor.sent-exit");
        drop(clients);
        if let Some(work) = deferred {
            run_detached(work);
        }
        0
    }

    /// Prepares and starts the container once; records the running state.
    fn start_once(
        &self,
        cfg: &crate::container::ContainerConfig,
        st: &mut ContainerState,
    ) -> Result<(i32, io_loop::Stdio), ContainerError> {
        let bundle = prepare::prepare(&self.store, cfg)?;
        proc::trace_phase("monitor.prepared");
        let (stdio, rt_stdio) = io_loop::make_stdio(cfg, &self.store.run_dir(&self.id))?;
        let pid = self.runtime.run(&self.id, &bundle, rt_stdio)?;
        proc::trace_phase("monitor.runtime-started");
        let stdio = stdio.finish()?;
        st.status = Status::Running;
        st.pid = pid;
        st.pid_start_ticks = proc::start_ticks(pid);
        st.started_at = now_rfc3339();
        st.finished_at = String::new();
        st.error = String::new();
        st.oom_killed = false;
        self.store.save_state(&self.id, st)?;
        Ok((pid, stdio))
    }
}

/// Runs `work` in a child process, so the monitor can exit now: whoever waits for the
/// monitor to be gone (`stop`, `rm -f`) does not wait for it. The child holds none of the
/// monitor's descriptors (attach clients see their EOF now).
fn run_detached(work: Deferred) {
    // SAFETY: the monitor is single-threaded here (the exit hook's thread was joined).
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Child) => {
            // SAFETY: closing every descriptor above stdio (which is /dev/null) in the child.
            unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) };
            work();
            // SAFETY: leaves the child without running the monitor's exit path twice.
            unsafe { libc::_exit(0) }
        }
        Ok(nix::unistd::ForkResult::Parent { .. }) => {}
        // No child: do it here, late rather than never.
        Err(_) => work(),
    }
}

/// The monitor lives as long as its container, in one copy per container: once the
/// container runs, give back what start-up touched (most of the binary's file pages, which
/// come back on demand, and the allocator's free heap). Its steady-state loop is small.
/// Shared libraries' clean pages are treated the same way.
fn shrink_resident_memory() {
    // Everything is looked up first: code that runs after the pages are given back faults
    // its own pages in again (and their neighbours, by fault-around).
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    let segments = read_only_segments();
    trim_stack(&maps);
    for (start, end) in segments {
        // SAFETY: pages of a loaded object's segment without write permission, which nothing
        // writes (no text relocations): unmapping them only makes the next access fault them
        // back in from the page cache.
        unsafe {
            libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED);
        }
    }
    // SAFETY: glibc call without preconditions.
    unsafe { libc::malloc_trim(0) };
}

/// The whole pages of every loaded file's PT_LOAD segments that are not writable (text and
/// read-only data), from the program headers. Writable segments are left alone: they hold
/// the relocated RELRO data and .data, whose private copies must never be dropped. An earlier
/// version found the same pages in /proc/self/smaps, whose page-by-page accounting cost more
/// than the rest of the shrink.
fn read_only_segments() -> Vec<(usize, usize)> {
    unsafe extern "C" fn each(
        info: *mut libc::dl_phdr_info,
        _size: libc::size_t,
        data: *mut libc::c_void,
    ) -> libc::c_int {
        // SAFETY: dl_iterate_phdr hands a valid info for the call's duration, and `data` is
        // the vector passed below.
        let (info, out) = unsafe { (&*info, &mut *(data as *mut Vec<(usize, usize)>)) };
        // The program itself has an empty name; the vDSO ("linux-vdso.so.1") is no file.
        let name = if info.dlpi_name.is_null() {
            &b""[..]
        } else {
            // SAFETY: a NUL-terminated name owned by the dynamic linker.
            unsafe { std::ffi::CStr::from_ptr(info.dlpi_name) }.to_bytes()
        };
        if !name.is_empty() && !name.starts_with(b"/") {
            return 0;
        }
        const PAGE: usize = 4096;
        for i in 0..info.dlpi_phnum as usize {
            // SAFETY: dlpi_phdr points at dlpi_phnum program headers.
            let ph = unsafe { &*info.dlpi_phdr.add(i) };
            if ph.p_type != libc::PT_LOAD || ph.p_flags & libc::PF_W != 0 {
                continue;
            }
            let lo = info.dlpi_addr as usize + ph.p_vaddr as usize;
            let hi = lo + ph.p_memsz as usize;
            // Whole pages only: a page shared with a neighbouring segment is kept.
            let (lo, hi) = (lo.div_ceil(PAGE) * PAGE, hi / PAGE * PAGE);
            if hi > lo {
                out.push((lo, hi));
            }
        }
        0
    }
    let mut out: Vec<(usize, usize)> = Vec::new();
    // SAFETY: the callback only reads the headers and pushes to `out`, which outlives the call.
    unsafe { libc::dl_iterate_phdr(Some(each), &mut out as *mut _ as *mut libc::c_void) };
    out
}

/// Gives back the main thread's stack pages below the current frame: start-up went deep
/// (argument handling, libcontainer), the monitor's loop stays shallow. Pages below the stack
/// pointer hold nothing live; touched again, they come back zero-filled.
fn trim_stack(maps: &str) {
    const MARGIN: usize = 32 * 1024;
    let here = 0u8;
    let sp = std::hint::black_box(&here) as *const u8 as usize;
    let Some((start, end)) = maps.lines().find_map(|l| {
        let range = l.strip_suffix("[stack]")?.split(' ').next()?;
        let (a, b) = range.split_once('-')?;
        Some((
            usize::from_str_radix(a, 16).ok()?,
            usize::from_str_radix(b, 16).ok()?,
        ))
    }) else {
        return;
    };
    // Only when this frame is on that stack (the main thread's).
    if !(start..end).contains(&sp) {
        return;
    }
    let top = (sp.saturating_sub(MARGIN)) & !4095;
    if top > start {
        // SAFETY: anonymous private stack pages strictly below the live frames (with a
        // margin): their contents are dead, and a later touch faults in a zero page.
        unsafe {
            libc::madvise(start as *mut libc::c_void, top - start, libc::MADV_DONTNEED);
        }
    }
}

/// Whether the kernel OOM killer fired in the container's memory cgroup (v1 or v2).
fn oom_killed(cgroup: &str) -> bool {
    let v1 = format!("/sys/fs/cgroup/memory{cgroup}/memory.oom_control");
    let v2 = format!("/sys/fs/cgroup{cgroup}/memory.events");
    [v1, v2].iter().any(|p| {
        std::fs::read_to_string(p)
            .map(|s| {
                s.lines().any(|l| {
                    l.strip_prefix("oom_kill ")
                        .and_then(|n| n.trim().parse::<u64>().ok())
                        .is_some_and(|n| n > 0)
                })
            })
            .unwrap_or(false)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Relocated at load time (a pointer to a string): lives in RELRO, which must survive.
    static RELOCATED: &[&str] = &["kept", "after", "shrink"];
    static WRITTEN: std::sync::Mutex<[u8; 8192]> = std::sync::Mutex::new([0; 8192]);

    #[test]
    fn only_read_only_segments_are_given_back() {
        let segments = read_only_segments();
        let inside = |addr: usize| segments.iter().any(|&(lo, hi)| (lo..hi).contains(&addr));
        let code = only_read_only_segments_are_given_back as *const () as usize;
        assert!(inside(code), "our own code is a read-only segment");
        assert!(
            !inside(&raw const RELOCATED as usize),
            "RELRO is never dropped"
        );
        assert!(
            !inside(&raw const WRITTEN as usize),
            ".data/.bss are never dropped"
        );
        assert!(
            segments
                .iter()
                .all(|&(lo, hi)| lo < hi && lo % 4096 == 0 && hi % 4096 == 0)
        );
    }

    #[test]
    fn the_process_works_on_after_a_shrink() {
        WRITTEN.lock().unwrap()[4000] = 7;
        shrink_resident_memory();
        assert_eq!(RELOCATED.join(" "), "kept after shrink");
        assert_eq!(WRITTEN.lock().unwrap()[4000], 7);
        assert_eq!(format!("{:?}", std::path::Path::new("/x")), "\"/x\"");
    }
}
