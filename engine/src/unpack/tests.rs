//! Crafted tarballs for every escape class and every whiteout form.

use super::*;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};

/// A tar entry with a raw name (the `tar` crate's setters refuse `..` and absolute paths,
/// which is exactly what these tests need to produce).
struct E<'a> {
    name: &'a str,
    kind: EntryType,
    link: Option<&'a str>,
    data: &'a [u8],
    mode: u32,
}

fn entry(name: &str, kind: EntryType) -> E<'_> {
    E {
        name,
        kind,
        link: None,
        data: b"",
        mode: 0o644,
    }
}

fn file<'a>(name: &'a str, data: &'a [u8]) -> E<'a> {
    E {
        data,
        ..entry(name, EntryType::Regular)
    }
}

fn dir(name: &str) -> E<'_> {
    E {
        mode: 0o755,
        ..entry(name, EntryType::Directory)
    }
}

fn link<'a>(name: &'a str, kind: EntryType, target: &'a str) -> E<'a> {
    E {
        link: Some(target),
        ..entry(name, kind)
    }
}

fn build(entries: &[E<'_>]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        {
            let old = h.as_old_mut();
            old.name[..e.name.len()].copy_from_slice(e.name.as_bytes());
            if let Some(l) = e.link {
                old.linkname[..l.len()].copy_from_slice(l.as_bytes());
            }
        }
        h.set_entry_type(e.kind);
        h.set_mode(e.mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_600_000_000);
        h.set_size(e.data.len() as u64);
        h.set_cksum();
        b.append(&h, e.data).unwrap();
    }
    b.into_inner().unwrap()
}

struct Sandbox {
    _tmp: tempfile::TempDir,
    layer: std::path::PathBuf,
    outside: std::path::PathBuf,
}

fn sandbox() -> Sandbox {
    let tmp = tempfile::tempdir().unwrap();
    let layer = tmp.path().join("layer");
    let outside = tmp.path().join("outside");
    std::fs::create_dir(&layer).unwrap();
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("victim"), b"original").unwrap();
    Sandbox {
        _tmp: tmp,
        layer,
        outside,
    }
}

fn assert_outside_untouched(s: &Sandbox) {
    let names: Vec<_> = std::fs::read_dir(&s.outside)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("victim")]);
    assert_eq!(
        std::fs::read(s.outside.join("victim")).unwrap(),
        b"original"
    );
}

fn expect_unsafe(entries: &[E<'_>]) {
    let s = sandbox();
    let tar = build(entries);
    let err = unpack_layer(&tar[..], &s.layer).expect_err("must be rejected");
    assert!(
        matches!(err, UnpackError::Unsafe { .. }),
        "wrong error: {err}"
    );
    assert_outside_untouched(&s);
}

#[test]
fn regular_content_metadata_links_and_devices() {
    let s = sandbox();
    let mut exec = file("bin/tool", b"#!/bin/sh\n");
    exec.mode = 0o4755;
    let mut fifo = entry("run/fifo", EntryType::Fifo);
    fifo.mode = 0o600;
    let tar = build(&[
        dir("bin"),
        exec,
        link("bin/sh", EntryType::Symlink, "tool"),
        link("bin/abs", EntryType::Symlink, "/etc/passwd"),
        link("bin/hard", EntryType::Link, "bin/tool"),
        fifo,
        entry("dev/null", EntryType::Char),
        file("deep/a/b/c.txt", b"x"),
    ]);
    let stats = unpack_layer(&tar[..], &s.layer).unwrap();
    assert_eq!(stats.bytes, 11);
    let tool = std::fs::metadata(s.layer.join("bin/tool")).unwrap();
    assert_eq!(tool.permissions().mode() & 0o7777, 0o4755);
    assert_eq!(tool.mtime(), 1_600_000_000);
    assert_eq!(
        std::fs::read_link(s.layer.join("bin/sh")).unwrap().to_str(),
        Some("tool")
    );
    assert_eq!(
        std::fs::read_link(s.layer.join("bin/abs"))
            .unwrap()
            .to_str(),
        Some("/etc/passwd")
    );
    let hard = std::fs::metadata(s.layer.join("bin/hard")).unwrap();
    assert_eq!(hard.ino(), tool.ino());
    assert!(
        std::fs::symlink_metadata(s.layer.join("run/fifo"))
            .unwrap()
            .file_type()
            .is_fifo()
    );
    assert!(
        std::fs::symlink_metadata(s.layer.join("dev/null"))
            .unwrap()
            .file_type()
            .is_char_device()
    );
    assert_eq!(std::fs::read(s.layer.join("deep/a/b/c.txt")).unwrap(), b"x");
    let bin = std::fs::metadata(s.layer.join("bin")).unwrap();
    assert_eq!(
        bin.mtime(),
        1_600_000_000,
        "directory mtimes are applied last"
    );
}

#[test]
fn pax_xattrs_are_applied() {
    let s = sandbox();
    let mut b = tar::Builder::new(Vec::new());
    b.append_pax_extensions([("SCHILY.xattr.user.test", b"hello".as_slice())])
        .unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_path("f").unwrap();
    h.set_size(1);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_cksum();
    b.append(&h, &b"z"[..]).unwrap();
    let tar = b.into_inner().unwrap();
    unpack_layer(&tar[..], &s.layer).unwrap();
    let fd = rfs::open(s.layer.join("f").as_path(), OFlags::RDONLY, Mode::empty()).unwrap();
    let mut buf = [0u8; 16];
    let n = rfs::fgetxattr(&fd, "user.test", &mut buf).unwrap();
    assert_eq!(&buf[..n], b"hello");
}

#[test]
fn later_entry_replaces_symlink_instead_of_writing_through_it() {
    let s = sandbox();
    let target = s.outside.join("victim");
    let tar = build(&[
        link("evil", EntryType::Symlink, target.to_str().unwrap()),
        file("evil", b"overwritten?"),
    ]);
    unpack_layer(&tar[..], &s.layer).unwrap();
    assert_eq!(
        std::fs::read(s.layer.join("evil")).unwrap(),
        b"overwritten?"
    );
    assert!(
        !std::fs::symlink_metadata(s.layer.join("evil"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_outside_untouched(&s);
}

#[test]
fn rejects_absolute_path() {
    expect_unsafe(&[file("/abs/file", b"x")]);
}

#[test]
fn rejects_dotdot() {
    expect_unsafe(&[file("../escape", b"x")]);
    expect_unsafe(&[file("a/../../escape", b"x")]);
    expect_unsafe(&[file("a/..", b"x")]);
}

#[test]
fn rejects_write_through_absolute_symlink_dir() {
    let s = sandbox();
    let out = s.outside.to_str().unwrap().to_string();
    drop(s);
    expect_unsafe(&[
        link("d", EntryType::Symlink, &out),
        file("d/victim", b"pwned"),
    ]);
}

#[test]
fn rejects_write_through_relative_symlink_dir() {
    expect_unsafe(&[
        link("d", EntryType::Symlink, "../outside"),
        file("d/victim", b"pwned"),
    ]);
}

#[test]
fn rejects_symlink_dir_even_inside_layer() {
    expect_unsafe(&[
        dir("real"),
        link("d", EntryType::Symlink, "real"),
        file("d/x", b"x"),
    ]);
}

#[test]
fn rejects_hardlink_outside() {
    expect_unsafe(&[link("h", EntryType::Link, "../outside/victim")]);
    expect_unsafe(&[link("h", EntryType::Link, "/etc/passwd")]);
}

#[test]
fn rejects_hardlink_through_symlink() {
    expect_unsafe(&[
        link("d", EntryType::Symlink, "../outside"),
        link("h", EntryType::Link, "d/victim"),
    ]);
}

#[test]
fn rejects_hardlink_to_missing_target() {
    expect_unsafe(&[link("h", EntryType::Link, "nope")]);
}

#[test]
fn whiteout_becomes_char_device_0_0() {
    let s = sandbox();
    let tar = build(&[dir("etc"), entry("etc/.wh.passwd", EntryType::Regular)]);
    unpack_layer(&tar[..], &s.layer).unwrap();
    let md = std::fs::symlink_metadata(s.layer.join("etc/passwd")).unwrap();
    assert!(md.file_type().is_char_device());
    assert_eq!(md.rdev(), 0);
    assert!(!s.layer.join("etc/.wh.passwd").exists());
}

#[test]
fn whiteout_replaces_an_entry_of_the_same_layer() {
    let s = sandbox();
    let tar = build(&[file("x", b"1"), entry(".wh.x", EntryType::Regular)]);
    unpack_layer(&tar[..], &s.layer).unwrap();
    assert!(
        std::fs::symlink_metadata(s.layer.join("x"))
            .unwrap()
            .file_type()
            .is_char_device()
    );
}

#[test]
fn opaque_marker_sets_xattr_and_keeps_siblings() {
    let s = sandbox();
    let tar = build(&[
        dir("var"),
        dir("var/cache"),
        entry("var/cache/.wh..wh..opq", EntryType::Regular),
        file("var/cache/new", b"n"),
    ]);
    unpack_layer(&tar[..], &s.layer).unwrap();
    let fd = rfs::open(
        s.layer.join("var/cache").as_path(),
        OFlags::RDONLY | OFlags::DIRECTORY,
        Mode::empty(),
    )
    .unwrap();
    let mut buf = [0u8; 4];
    let n = rfs::fgetxattr(&fd, OPAQUE_XATTR, &mut buf).unwrap();
    assert_eq!(&buf[..n], b"y");
    assert!(s.layer.join("var/cache/new").exists());
    assert!(!s.layer.join("var/cache/.wh..wh..opq").exists());
}

#[test]
fn aufs_metadata_whiteouts_are_ignored() {
    let s = sandbox();
    let tar = build(&[
        dir(".wh..wh.plnk"),
        entry(".wh..wh.aufs", EntryType::Regular),
    ]);
    unpack_layer(&tar[..], &s.layer).unwrap();
    assert_eq!(std::fs::read_dir(&s.layer).unwrap().count(), 0);
}

#[test]
fn whiteout_without_name_is_rejected() {
    expect_unsafe(&[entry(".wh.", EntryType::Regular)]);
    expect_unsafe(&[entry("a/.wh...", EntryType::Regular)]);
}

#[test]
fn whiteout_cannot_escape() {
    expect_unsafe(&[entry("../.wh.victim", EntryType::Regular)]);
    expect_unsafe(&[
        link("d", EntryType::Symlink, "../outside"),
        entry("d/.wh.victim", EntryType::Regular),
    ]);
}

#[test]
fn truncated_archive_is_an_archive_error() {
    let s = sandbox();
    let tar = build(&[file("big", &[7u8; 4096])]);
    let cut = &tar[..1024];
    let err = unpack_layer(cut, &s.layer).unwrap_err();
    assert!(matches!(err, UnpackError::Archive(_)), "{err}");
}

#[test]
fn clean_path_normalises() {
    assert_eq!(clean_path(b"./a//b/").unwrap(), vec!["a", "b"]);
    assert!(clean_path(b"/a").is_err());
    assert!(clean_path(b"a/../b").is_err());
    assert!(clean_path(b"./").unwrap().is_empty());
}

#[test]
fn gnu_sparse_files_are_expanded() {
    let s = sandbox();
    let src = s.outside.join("src");
    std::fs::create_dir(&src).unwrap();
    let f = std::fs::File::create(src.join("sparse")).unwrap();
    f.set_len(3 * 1024 * 1024).unwrap();
    use std::os::unix::fs::FileExt;
    f.write_at(b"end", 3 * 1024 * 1024 - 3).unwrap();
    drop(f);
    let tarball = s.outside.join("sparse.tar");
    let st = std::process::Command::new("tar")
        .args(["--sparse", "--format=gnu", "-cf"])
        .arg(&tarball)
        .arg("-C")
        .arg(&src)
        .arg("sparse")
        .status()
        .unwrap();
    assert!(st.success());
    let tar = std::fs::read(&tarball).unwrap();
    assert!(tar.len() < 1024 * 1024, "the archive really is sparse");
    unpack_layer(&tar[..], &s.layer).unwrap();
    let out = std::fs::read(s.layer.join("sparse")).unwrap();
    assert_eq!(out.len(), 3 * 1024 * 1024);
    assert_eq!(&out[out.len() - 3..], b"end");
    assert!(out[..out.len() - 3].iter().all(|b| *b == 0));
}
