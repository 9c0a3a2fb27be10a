use super::*;

fn created_by(monitor_pid: i32) -> ContainerState {
    ContainerState {
        status: Status::Created,
        monitor_pid,
        ..Default::default()
    }
}

#[test]
fn repair_ends_what_nobody_is_left_to_finish() {
    // A created container nobody started yet stays created.
    assert_eq!(repair(created_by(0), false, false).status, Status::Created);
    // Its monitor is still starting it.
    assert_eq!(repair(created_by(42), false, true).status, Status::Created);
    // The monitor was killed before it recorded the start.
    let st = repair(created_by(42), false, false);
    assert_eq!(st.status, Status::Exited);
    assert!(st.error.contains("monitor died"), "{}", st.error);
    let running = ContainerState {
        status: Status::Running,
        pid: 7,
        ..Default::default()
    };
    assert_eq!(repair(running.clone(), true, false).status, Status::Running);
    assert_eq!(repair(running.clone(), false, true).status, Status::Running);
    assert_eq!(repair(running, false, false).status, Status::Exited);
}

/// Regression (issue 15): `wait` looped forever on a container whose monitor was killed
/// before it recorded the container's start.
#[test]
fn wait_returns_when_the_monitor_died_before_recording_the_start() {
    let tmp = tempfile::tempdir().unwrap();
    let eng = Containers::new(
        &tmp.path().join("root"),
        &tmp.path().join("run"),
        "x".into(),
    );
    let id = "c".repeat(64);
    crate::container::store::create_private_dir(&eng.store.dir(&id)).unwrap();
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id() as i32;
    child.wait().unwrap();
    eng.store.save_state(&id, &created_by(dead)).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(eng.wait(&id)));
    let code = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("wait still waits for a container nobody will start")
        .unwrap();
    assert_eq!(code, 128);
}
