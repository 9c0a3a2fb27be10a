//! End-to-end: save → load round trip, OCI layout load, corrupt and tampered archives.

mod common;

use common::busybox;
use common::{bin, rc, rc_ok as ok};

use std::path::{Path, PathBuf};
use std::process::Command;

fn sh(cmd: &str) {
    let st = Command::new("sh").arg("-c").arg(cmd).status().unwrap();
    assert!(st.success(), "{cmd}");
}

/// Sorted list of every entry under `dir` with its kind and content digest (files).
fn tree(dir: &Path) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg("find . -printf '%p %y %m %l\\n' | sort; find . -type f -exec sha256sum {} + | sort")
        .current_dir(dir)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn snapshot(root: &Path) -> (Vec<String>, Vec<String>, String) {
    let names = |d: &str| {
        let mut v: Vec<String> = std::fs::read_dir(root.join(d))
            .map(|r| {
                r.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    };
    let index = std::fs::read_to_string(root.join("images/index.json")).unwrap_or_default();
    (names("blobs/sha256"), names("layers"), index)
}

fn inspect(root: &Path, name: &str) -> serde_json::Value {
    let v: serde_json::Value =
        serde_json::from_str(&ok(root, &["image", "inspect", name])).unwrap();
    v[0].clone()
}

#[test]
fn save_load_round_trip_and_oci_layout() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let c = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let id = busybox::busybox_image(&bin(), a.path(), "busybox:saved");
    let archive = work.path().join("bb.tar");
    ok(
        a.path(),
        &[
            "image",
            "save",
            "-o",
            archive.to_str().unwrap(),
            "busybox:saved",
        ],
    );

    let out = ok(
        b.path(),
        &["image", "load", "-i", archive.to_str().unwrap()],
    );
    assert_eq!(out.trim(), "Loaded image: busybox:saved");
    let (ia, ib) = (
        inspect(a.path(), "busybox:saved"),
        inspect(b.path(), "busybox:saved"),
    );
    assert_eq!(ib["Id"], id.as_str());
    assert_eq!(ia["RootFS"], ib["RootFS"]);
    let la = PathBuf::from(ia["GraphDriver"]["Data"]["LowerDir"].as_str().unwrap());
    let lb = PathBuf::from(ib["GraphDriver"]["Data"]["LowerDir"].as_str().unwrap());
    assert_eq!(
        tree(&la),
        tree(&lb),
        "rootfs identical after the round trip"
    );

    // The same archive without manifest.json is a plain OCI image layout.
    let x = work.path().join("x");
    std::fs::create_dir(&x).unwrap();
    sh(&format!(
        "tar -xf {} -C {} && rm {}/manifest.json && tar -cf {}/oci.tar -C {} .",
        archive.display(),
        x.display(),
        x.display(),
        work.path().display(),
        x.display()
    ));
    let oci = work.path().join("oci.tar");
    let out = Command::new(bin())
        .arg("--root")
        .arg(c.path())
        .args(["image", "load"])
        .stdin(std::fs::File::open(&oci).unwrap())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "Loaded image: busybox:saved"
    );
    assert_eq!(inspect(c.path(), "busybox:saved")["Id"], id.as_str());
}

#[test]
fn corrupt_and_tampered_archives_leave_store_unchanged() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    busybox::busybox_image(&bin(), a.path(), "busybox:a");
    // The target store already holds an image: it must survive untouched.
    busybox::busybox_image(&bin(), b.path(), "busybox:b");
    let archive = work.path().join("a.tar");
    ok(
        a.path(),
        &[
            "image",
            "save",
            "-o",
            archive.to_str().unwrap(),
            "busybox:a",
        ],
    );
    let before = snapshot(b.path());

    // Truncated.
    let bytes = std::fs::read(&archive).unwrap();
    let cut = work.path().join("cut.tar");
    std::fs::write(&cut, &bytes[..bytes.len() / 3]).unwrap();
    let out = rc(b.path(), &["image", "load", "-i", cut.to_str().unwrap()]);
    assert!(!out.status.success());
    assert_eq!(snapshot(b.path()), before);

    // Tampered layer blob (digest no longer matches its name / the manifest).
    let x = work.path().join("x");
    std::fs::create_dir(&x).unwrap();
    sh(&format!("tar -xf {} -C {}", archive.display(), x.display()));
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(x.join("manifest.json")).unwrap()).unwrap();
    let layer = x.join(manifest[0]["Layers"][0].as_str().unwrap());
    let mut blob = std::fs::read(&layer).unwrap();
    let n = blob.len();
    blob[n - 20] ^= 0xff;
    std::fs::set_permissions(&layer, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    std::fs::write(&layer, blob).unwrap();
    let bad = work.path().join("bad.tar");
    sh(&format!("tar -cf {} -C {} .", bad.display(), x.display()));
    let out = rc(b.path(), &["image", "load", "-i", bad.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("digest mismatch"), "{err}");
    assert_eq!(snapshot(b.path()), before);

    // Not an image archive at all.
    let junk = work.path().join("junk.tar");
    sh(&format!(
        "tar -cf {} -C {} manifest.json",
        junk.display(),
        x.display()
    ));
    std::fs::remove_file(x.join("manifest.json")).unwrap();
    std::fs::remove_file(x.join("index.json")).unwrap();
    let empty = work.path().join("empty.tar");
    sh(&format!(
        "tar -cf {} -C {} oci-layout",
        empty.display(),
        x.display()
    ));
    let out = rc(b.path(), &["image", "load", "-i", empty.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("neither manifest.json"));
    assert_eq!(snapshot(b.path()), before);
}
