//! Removing containers: the runtime's leftovers, the mounts, the anonymous volumes, then the
//! directories, renamed to tombstones in one step each before they are deleted. What a
//! killed removal (or create) left is swept by the next removal.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::super::model::Status;
use super::super::{ContainerError, prepare, proc};
use super::{CREATING, Containers};
use crate::rootfs::Rootfs;
use crate::runtime::Runtime;

/// Prefix of a container directory being removed (`remove_dirs`); never a container id.
const TOMBSTONE: &str = ".rm-";

/// When the renamed directories of a removed container are deleted.
enum Trees<'a> {
    /// Before the removal returns.
    Now,
    /// By the caller, later: their paths are pushed here.
    Later(&'a mut Vec<PathBuf>),
}

impl Containers {
    /// Removes a container; `force` kills it first, `volumes` removes its anonymous volumes.
    pub fn remove(&self, id: &str, force: bool, volumes: bool) -> Result<(), ContainerError> {
        self.remove_with(id, force, volumes, Trees::Now)
    }

    /// [`Containers::remove`] (forced, with anonymous volumes: the monitor of an `--rm`
    /// container, once it exited) except for deleting its directories' trees: it returns them
    /// (renamed to tombstones), for the caller to delete after it reported the exit. Once this
    /// returns, the container is gone for every command (`ps -a`, `inspect`, its name free);
    /// a tombstone left by a caller that died first is swept by the next removal.
    pub fn remove_leaving_trees(&self, id: &str) -> Result<Vec<PathBuf>, ContainerError> {
        let mut trees = vec![];
        self.remove_with(id, true, true, Trees::Later(&mut trees))?;
        Ok(trees)
    }

    fn remove_with(
        &self,
        id: &str,
        force: bool,
        volumes: bool,
        mut trees: Trees,
    ) -> Result<(), ContainerError> {
        proc::trace_phase("remove");
        let cfg = self.store.load_config(id)?;
        let st = self.observe(id)?;
        if matches!(
            st.status,
            Status::Running | Status::Paused | Status::Restarting
        ) {
            if !force {
                return Err(ContainerError::Running(cfg.name));
            }
            let _ = fs::write(self.stopping_marker(id), b"");
            if st.status == Status::Paused {
                let _ = self.runtime.resume(id);
            }
            proc::signal(st.pid, st.pid_start_ticks, libc::SIGKILL);
            proc::wait_gone(st.pid, st.pid_start_ticks, Duration::from_secs(10));
            if self.monitor_alive(&st) {
                proc::wait_gone(
                    st.monitor_pid,
                    st.monitor_start_ticks,
                    Duration::from_secs(15),
                );
            }
        }
        let _lock = self.store.lock_all()?;
        let had_state = self.runtime.exists(id);
        self.runtime.delete(id)?;
        if !had_state {
            // Deleting the runtime's state deletes the cgroups; without it they may remain.
            let path = super::super::resources::cgroups_path(&cfg);
            crate::runtime::remove_stateless_cgroups(&path, id);
        }
        prepare::teardown(&self.store, id)?;
        proc::trace_phase("remove.teardown");
        // Anonymous volumes go before the container's directories: whoever sees the
        // container gone (`ps -a`) must not find its volumes still there.
        if volumes {
            let vols = crate::volume::Volumes::new(&self.store.root);
            for m in cfg.host.mounts.iter().filter(|m| m.anonymous) {
                let _ = vols.remove(&m.source, vec![]);
            }
        }
        // The image loses this user with the config removed here (store/users.rs).
        self.remove_dirs_to(id, &mut trees)?;
        self.store.unindex_name(&cfg.name, id);
        if let Trees::Now = trees {
            // Cheap (one directory read each): what an earlier killed removal left goes now.
            // Another command may be removing the same tombstone: its errors are not ours.
            // Not when deferring: it would delete the tombstones just handed back.
            let _ = self.sweep_tombstones();
        }
        proc::trace_phase("remove.dirs");
        Ok(())
    }

    pub(super) fn remove_dirs(&self, id: &str) -> Result<(), ContainerError> {
        self.remove_dirs_to(id, &mut Trees::Now)
    }

    fn remove_dirs_to(&self, id: &str, trees: &mut Trees) -> Result<(), ContainerError> {
        for dir in [self.store.dir(id), self.store.run_dir(id)] {
            // Guard: only a 64-hex child of our own containers directories.
            let ok = id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit());
            if !ok || dir.file_name().and_then(|n| n.to_str()) != Some(id) {
                return Err(ContainerError::Other(format!(
                    "refusing to remove {}",
                    dir.display()
                )));
            }
            Rootfs::new(&dir).unmount()?;
            Rootfs::new(dir.join("fs")).unmount()?;
            // Renamed away first, in one step: a removal killed half-way must not leave a
            // container whose config survived its upper or work directory (the next start
            // failed with ENOENT, and `up` could not converge; tests/reliability_crash.rs).
            let tomb = dir.with_file_name(format!("{TOMBSTONE}{id}"));
            match fs::rename(&dir, &tomb) {
                Ok(()) => {}
                // Gone already; a tombstone a killed removal left may still be there.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(ContainerError::io(&dir, e)),
            }
            match trees {
                Trees::Now => remove_tree(&tomb)?,
                Trees::Later(out) if tomb.exists() => out.push(tomb),
                Trees::Later(_) => {}
            }
        }
        Ok(())
    }

    /// Deletes the trees [`Containers::remove_leaving_trees`] handed back, then what killed
    /// removals left, as a removal does. Only tombstones of container directories are
    /// deleted: any other path is left alone.
    pub fn delete_tombstones(&self, trees: &[PathBuf]) {
        for t in trees {
            let named_so = t
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_prefix(TOMBSTONE))
                .is_some_and(|id| id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()));
            if named_so {
                let _ = remove_tree(t);
            }
        }
        // Another command may be removing the same tombstones: its errors are not ours.
        let _ = self.sweep_tombstones();
    }

    /// Finishes removals a killed command left (`.rm-<id>` directories).
    pub(super) fn sweep_tombstones(&self) -> Result<(), ContainerError> {
        for base in [
            self.store.containers_dir(),
            self.store.run_root.join("containers"),
        ] {
            let Ok(rd) = fs::read_dir(&base) else {
                continue;
            };
            for ent in rd.flatten() {
                let name = ent.file_name();
                let Some(id) = name.to_str().and_then(|n| n.strip_prefix(TOMBSTONE)) else {
                    continue;
                };
                if id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
                    Rootfs::new(ent.path()).unmount()?;
                    Rootfs::new(ent.path().join("fs")).unmount()?;
                    remove_tree(&ent.path())?;
                }
            }
        }
        self.sweep_abandoned_creations()
    }

    /// Removes the directories of creates that were killed before they saved the config:
    /// no `config.json`, and a creation marker naming a dead process.
    fn sweep_abandoned_creations(&self) -> Result<(), ContainerError> {
        let base = self.store.containers_dir();
        for ent in fs::read_dir(&base).into_iter().flatten().flatten() {
            let dir = ent.path();
            let is_id = ent
                .file_name()
                .to_str()
                .is_some_and(|n| n.len() == 64 && n.bytes().all(|b| b.is_ascii_hexdigit()));
            if !is_id || dir.join("config.json").exists() {
                continue;
            }
            let Ok(marker) = fs::read_to_string(dir.join(CREATING)) else {
                continue;
            };
            if super::super::freeze::owner_alive(&marker) {
                continue;
            }
            Rootfs::new(&dir).unmount()?;
            remove_tree(&dir)?;
        }
        Ok(())
    }
}

pub(super) fn remove_tree(dir: &Path) -> Result<(), ContainerError> {
    match fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(ContainerError::io(dir, e)),
    }
}
