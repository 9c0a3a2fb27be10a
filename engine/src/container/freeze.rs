//! Freezing a container's cgroup for a moment outside `pause` (`commit` freezes it while it
//! reads the upper dir) must survive the death of the freezing command: killed between the
//! freeze and the thaw, it left the container frozen but recorded as running, so an `exec`
//! hung and every later stop waited out its SIGKILLs (which a frozen cgroup v1 task does not
//! take), 10 s each (crash suite: a `down -t 0` after a killed `commit` took 50 s). The
//! freezer leaves a marker with its pid and start time; whoever observes the container after
//! that process has died thaws it.

use std::fs;
use std::path::PathBuf;

use super::lifecycle::Containers;
use super::{ContainerError, proc};
use crate::runtime::Runtime;

impl Containers {
    fn freeze_marker(&self, id: &str) -> PathBuf {
        self.store.dir(id).join("frozen-by")
    }

    /// Freezes `id` until [`Self::thaw_marked`], or until a command sees this process gone.
    pub(crate) fn freeze_marked(&self, id: &str) -> Result<(), ContainerError> {
        let marker = self.freeze_marker(id);
        super::store::write_atomic(&marker, owner_marker().as_bytes())?;
        if let Err(e) = self.runtime.pause(id) {
            let _ = fs::remove_file(&marker);
            return Err(e.into());
        }
        Ok(())
    }

    pub(crate) fn thaw_marked(&self, id: &str) {
        let _ = self.runtime.resume(id);
        let _ = fs::remove_file(self.freeze_marker(id));
    }

    /// [`Self::thaw_marked`] for a freezer that died: libcontainer's resume, and the cgroup
    /// itself, since the kill may have come between libcontainer's freeze and its record.
    fn thaw_for_the_dead(&self, id: &str) {
        let _ = self.runtime.resume(id);
        if let Ok(cfg) = self.store.load_config(id) {
            let path = super::resources::cgroups_path(&cfg);
            crate::runtime::thaw_cgroups(std::path::Path::new(&path));
        }
        let _ = fs::remove_file(self.freeze_marker(id));
    }

    /// Thaws `id` when a process that froze it with [`Self::freeze_marked`] died before it
    /// thawed it. One failed open when there is no marker.
    pub(crate) fn thaw_abandoned(&self, id: &str) {
        let marker = self.freeze_marker(id);
        let Ok(text) = fs::read_to_string(&marker) else {
            return;
        };
        if owner_alive(&text) {
            return;
        }
        tracing::warn!("container {id}: thawing it, the command that froze it was killed");
        self.thaw_for_the_dead(id);
    }
}

/// This process as a marker's content: `<pid> <start ticks>`.
pub(super) fn owner_marker() -> String {
    let me = std::process::id() as i32;
    format!("{me} {}", proc::start_ticks(me))
}

/// Whether the process named by a marker (`<pid> <start ticks>`) still runs. A torn marker
/// (its writer was killed while writing it, so before it did anything) names nobody.
pub(super) fn owner_alive(text: &str) -> bool {
    let mut it = text.split_whitespace().map(str::parse::<u64>);
    match (it.next(), it.next()) {
        (Some(Ok(pid)), Some(Ok(ticks))) => proc::alive(pid as i32, ticks),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_marker_names_its_live_owner_only() {
        let me = std::process::id() as i32;
        assert!(owner_alive(&format!("{me} {}", proc::start_ticks(me))));
        // Same pid, another start time: the pid was reused.
        assert!(!owner_alive(&format!("{me} {}", proc::start_ticks(me) + 1)));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id() as i32;
        let ticks = proc::start_ticks(pid);
        child.wait().unwrap();
        assert!(!owner_alive(&format!("{pid} {ticks}")));
        assert!(!owner_alive(""));
        assert!(!owner_alive("12"));
    }
}
