//! Store behaviour: sharing, refcounted removal, digest checks leave no trace.

use super::*;
use crate::image::import::{ImportOptions, ImportSource, import};

fn rootfs(dir: &Path, marker: &str) {
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    std::fs::write(dir.join("bin/marker"), marker).unwrap();
    std::os::unix::fs::symlink("marker", dir.join("bin/link")).unwrap();
}

fn import_dir(store: &Store, dir: &Path, tag: &str) -> String {
    import(
        store,
        ImportSource::Dir(dir.to_path_buf()),
        Some(tag),
        &ImportOptions {
            changes: vec![r#"CMD ["sh"]"#.into()],
            ..Default::default()
        },
    )
    .unwrap()
}

fn count(dir: &Path) -> usize {
    std::fs::read_dir(dir).unwrap().count()
}

#[test]
fn import_resolve_tag_remove() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(&tmp.path().join("root")).unwrap();
    let fs = tmp.path().join("fs");
    rootfs(&fs, "one");
    let id = import_dir(&store, &fs, "demo:1");
    let img = store.resolve("demo:1").unwrap();
    assert_eq!(img.id, id);
    assert_eq!(img.repo_tags, vec!["docker.io/library/demo:1"]);
    assert_eq!(img.layer_dirs.len(), 1);
    assert_eq!(
        std::fs::read(img.layer_dirs[0].join("bin/marker")).unwrap(),
        b"one"
    );
    assert_eq!(
        img.config
            .config()
            .as_ref()
            .unwrap()
            .cmd()
            .as_ref()
            .unwrap(),
        &["sh"]
    );
    assert_eq!(store.resolve(&id[7..19]).unwrap().id, id);
    assert!(matches!(
        store.resolve("demo"),
        Err(StoreError::NoSuchImage(_))
    ));

    let locked = store.lock().unwrap();
    locked.tag(&id, "docker.io/library/other:latest").unwrap();
    assert_eq!(
        locked.remove_image("other", false).unwrap(),
        vec![RemoveEvent::Untagged("other:latest".into())]
    );
    let events = locked.remove_image("demo:1", false).unwrap();
    assert!(events.contains(&RemoveEvent::Deleted(id.clone())));
    drop(locked);
    let root = tmp.path().join("root");
    assert_eq!(count(&root.join("blobs/sha256")), 0);
    assert_eq!(count(&root.join("layers")), 0);
}

#[test]
fn shared_layer_is_stored_once_and_freed_last() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(&tmp.path().join("root")).unwrap();
    let fs = tmp.path().join("fs");
    rootfs(&fs, "same");
    let a = import_dir(&store, &fs, "a");
    // Different config (another CMD) but the same layer content.
    let b = import(
        &store,
        ImportSource::Dir(fs.clone()),
        Some("b"),
        &ImportOptions {
            changes: vec![r#"CMD ["other"]"#.into()],
            ..Default::default()
        },
    )
    .unwrap();
    assert_ne!(a, b);
    let root = tmp.path().join("root");
    assert_eq!(count(&root.join("layers")), 1);
    let (ia, ib) = (store.resolve("a").unwrap(), store.resolve("b").unwrap());
    assert_eq!(ia.layer_dirs, ib.layer_dirs);
    store.lock().unwrap().remove_image("a", false).unwrap();
    assert_eq!(count(&root.join("layers")), 1);
    assert!(ib.layer_dirs[0].join("bin/marker").exists());
    store.lock().unwrap().remove_image("b", false).unwrap();
    assert_eq!(count(&root.join("layers")), 0);
}

#[test]
fn users_block_removal_unless_forced() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(&tmp.path().join("root")).unwrap();
    let fs = tmp.path().join("fs");
    rootfs(&fs, "x");
    let id = import_dir(&store, &fs, "used");
    // A container's config naming the image makes it a user (store/users.rs).
    let cdir = tmp.path().join("root/containers/c0ffee");
    std::fs::create_dir_all(&cdir).unwrap();
    std::fs::write(
        cdir.join("config.json"),
        format!(r#"{{"id":"c0ffee","image_id":"{id}","name":"x"}}"#),
    )
    .unwrap();
    store.confirm_image_user(&id).unwrap();
    let err = store
        .lock()
        .unwrap()
        .remove_image("used", false)
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    assert!(
        store
            .lock()
            .unwrap()
            .prune_candidates(true)
            .unwrap()
            .is_empty()
    );
    let ev = store.lock().unwrap().remove_image("used", true).unwrap();
    assert_eq!(ev, vec![RemoveEvent::Untagged("used:latest".into())]);
    let img = store.resolve(&id).unwrap();
    assert!(
        img.layer_dirs[0].exists(),
        "content stays while a container uses it"
    );
    std::fs::remove_dir_all(&cdir).unwrap();
    assert_eq!(
        store.lock().unwrap().prune_candidates(false).unwrap(),
        vec![id]
    );
}

#[test]
fn digest_mismatch_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(&tmp.path().join("root")).unwrap();
    let locked = store.lock().unwrap();
    let wrong = crate::store::digest::digest_of(b"something else");
    let err = locked
        .ingest_blob(&b"content"[..], Some(&wrong))
        .unwrap_err();
    assert!(matches!(err, StoreError::DigestMismatch { .. }));
    assert_eq!(count(&tmp.path().join("root/blobs/sha256")), 0);
    assert_eq!(count(&tmp.path().join("root/tmp")), 0);
}

#[test]
fn diff_id_mismatch_and_bad_tar_leave_no_layer() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(&tmp.path().join("root")).unwrap();
    let locked = store.lock().unwrap();
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_path("f").unwrap();
    h.set_size(1);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_cksum();
    b.append(&h, &b"x"[..]).unwrap();
    let tar = b.into_inner().unwrap();
    let blob = locked.put_blob(&tar).unwrap();
    let wrong = crate::store::digest::digest_of(b"nope");
    let err = locked.ensure_layer(&blob, Some(&wrong), None).unwrap_err();
    assert!(matches!(err, StoreError::DigestMismatch { .. }), "{err}");
    let bad = locked.put_blob(&tar[..700]).unwrap();
    assert!(locked.ensure_layer(&bad, None, None).is_err());
    assert_eq!(count(&tmp.path().join("root/layers")), 0);
    assert_eq!(count(&tmp.path().join("root/tmp")), 0);
}

#[test]
fn gzip_zstd_and_plain_layers_unpack_to_the_same_diff_id() {
    use std::io::Write;
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(&tmp.path().join("root")).unwrap();
    let locked = store.lock().unwrap();
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_path("etc/hello").unwrap();
    h.set_size(5);
    h.set_mode(0o644);
    h.set_cksum();
    b.append(&h, &b"hello"[..]).unwrap();
    let tar = b.into_inner().unwrap();
    let diff = crate::store::digest::digest_of(&tar);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar).unwrap();
    let gz = gz.finish().unwrap();
    let zst = zstd::encode_all(&tar[..], 3).unwrap();
    for blob in [&tar, &gz, &zst] {
        let d = locked.put_blob(blob).unwrap();
        let info = locked.ensure_layer(&d, Some(&diff), None).unwrap();
        assert_eq!(info.diff_id, diff);
        let dir = locked.layer_diff_dir(&info.chain_id).unwrap();
        assert_eq!(std::fs::read(dir.join("etc/hello")).unwrap(), b"hello");
    }
    assert_eq!(count(&tmp.path().join("root/layers")), 1);
}

#[test]
fn leases_protect_uncommitted_content_from_gc() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let store = Store::open(&root).unwrap();
    let blob = store.put_blob(b"in flight").unwrap();
    let lease = store.lease().unwrap();
    lease.add([blob.clone()]).unwrap();
    // A lease of a process that no longer exists is ignored and removed.
    let stale = root.join("leases/lease-2147483646-0-0");
    std::fs::write(&stale, format!("[\"{}\"]", digest::digest_of(b"x"))).unwrap();
    std::fs::write(root.join("tmp/blob-2147483646-0-0"), b"partial").unwrap();
    std::fs::write(
        root.join(format!("tmp/blob-{}-9-9", std::process::id())),
        b"mine",
    )
    .unwrap();

    let locked = store.lock().unwrap();
    assert!(
        !root.join("tmp/blob-2147483646-0-0").exists(),
        "dead writer's temp file cleared"
    );
    assert!(
        root.join(format!("tmp/blob-{}-9-9", std::process::id()))
            .exists()
    );
    locked.collect_garbage().unwrap();
    assert!(store.has_blob(&blob), "leased blob kept");
    assert!(!stale.exists());
    drop(lease);
    locked.collect_garbage().unwrap();
    assert!(!store.has_blob(&blob), "freed once the lease is gone");
}
