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

/// An `--rm` container's monitor removes it before reporting the exit but deletes its trees
/// after: once `remove_leaving_trees` returns, no command finds the container, its name is
/// free, and what is left are two tombstones, which `delete_tombstones` deletes. A path that
/// is no tombstone is left alone.
#[test]
fn a_removal_leaving_trees_hides_the_container_and_hands_back_its_tombstones() {
    let tmp = tempfile::tempdir().unwrap();
    let eng = Containers::new(
        &tmp.path().join("root"),
        &tmp.path().join("run"),
        "x".into(),
    );
    let id = "d".repeat(64);
    let mut cfg = super::empty_config();
    cfg.id = id.clone();
    cfg.name = "leaving".into();
    crate::container::store::create_private_dir(&eng.store.dir(&id)).unwrap();
    crate::container::store::create_private_dir(&eng.store.run_dir(&id)).unwrap();
    std::fs::create_dir_all(eng.store.dir(&id).join("upper/deep")).unwrap();
    std::fs::write(eng.store.dir(&id).join("upper/deep/file"), b"x").unwrap();
    eng.store.save_config(&cfg).unwrap();
    let mut st = created_by(0);
    st.status = Status::Exited;
    eng.store.save_state(&id, &st).unwrap();
    assert!(eng.store.list().unwrap().iter().any(|c| c.id == id));
    eng.store.ensure_name_index().unwrap();
    assert!(eng.store.by_name("leaving").unwrap().is_some());

    let trees = eng.remove_leaving_trees(&id).unwrap();
    let tomb = |base: PathBuf| base.join(format!(".rm-{id}"));
    let mut want = vec![
        tomb(eng.store.containers_dir()),
        tomb(eng.store.run_root.join("containers")),
    ];
    want.sort();
    let mut got = trees.clone();
    got.sort();
    assert_eq!(got, want);
    assert!(trees.iter().all(|t| t.is_dir()), "{trees:?}");
    assert!(!eng.store.dir(&id).exists());
    assert!(eng.store.list().unwrap().is_empty());
    assert!(eng.store.by_name("leaving").unwrap().is_none());

    // Only tombstones of container directories are deleted, with what a killed removal left.
    let other = tmp.path().join("keep");
    std::fs::create_dir_all(&other).unwrap();
    let left = eng
        .store
        .containers_dir()
        .join(format!(".rm-{}", "e".repeat(64)));
    std::fs::create_dir_all(left.join("upper")).unwrap();
    let mut handed = trees.clone();
    handed.push(other.clone());
    eng.delete_tombstones(&handed);
    assert!(trees.iter().all(|t| !t.exists()), "{trees:?}");
    assert!(!left.exists());
    assert!(other.is_dir());
}
