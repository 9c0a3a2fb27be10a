//! What a container's recorded state means once its process or its monitor is gone.

use super::super::model::{ContainerState, Status, now_rfc3339};

/// Whether the record says the container runs (or is being started) while neither it nor its
/// monitor is left: see [`repair`].
pub(super) fn needs_repair(st: &ContainerState, pid_alive: bool, monitor_alive: bool) -> bool {
    let active = matches!(
        st.status,
        Status::Running | Status::Paused | Status::Restarting
    );
    let abandoned = st.status == Status::Created && st.monitor_pid > 0;
    (active || abandoned) && !pid_alive && !monitor_alive
}

/// What a recorded state means given who is still alive. Running, paused or restarting with
/// neither the container nor its monitor left: exited. Created with a monitor recorded that
/// is gone: the monitor was killed while starting the container (a monitor that fails a start
/// clears its pid before it leaves), so no start is coming any more; without this, `wait` and
/// `logs -f` waited for it forever.
pub(crate) fn repair(
    mut st: ContainerState,
    pid_alive: bool,
    monitor_alive: bool,
) -> ContainerState {
    if needs_repair(&st, pid_alive, monitor_alive) {
        let abandoned = st.status == Status::Created;
        if abandoned {
            st.error = "the container's monitor died while starting it".into();
            st.exit_code = 128;
        }
        st.status = Status::Exited;
        st.pid = 0;
        if st.finished_at.is_empty() {
            st.finished_at = now_rfc3339();
        }
    }
    st
}
