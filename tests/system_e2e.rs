//! `rcompose system df|info|prune`, and a full disk: an import or load that runs out of space
//! fails with a clear error and leaves the store exactly as it was.

mod common;

use common::bin;
use common::busybox;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// A state root and run root; Drop removes the containers the tests make.
struct Roots(common::Roots);

impl Roots {
    fn new() -> Self {
        Roots(common::Roots::new("rc-sys-"))
    }
    fn root(&self) -> PathBuf {
        self.0.root()
    }
    fn rc(&self, args: &[&str]) -> Output {
        self.0.run(args)
    }
    fn ok(&self, args: &[&str]) -> String {
        self.0.ok(args)
    }
}

impl Drop for Roots {
    fn drop(&mut self) {
        // Containers first (their overlay mounts live under the roots).
        let _ = self.rc(&["container", "rm", "-f", "sys-e2e-a", "sys-e2e-b"]);
        // A bridge is host-wide: never leave one behind.
        let _ = self.rc(&["network", "rm", "sys-e2e-net"]);
    }
}

/// `system df --format json` as TYPE → object.
fn df(r: &Roots) -> std::collections::BTreeMap<String, Value> {
    r.ok(&["system", "df", "--format", "json"])
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (v["Type"].as_str().unwrap().to_string(), v)
        })
        .collect()
}

#[test]
fn df_counts_shared_layers_once_and_prune_frees_what_is_unused() {
    let r = Roots::new();
    let fs = tempfile::tempdir().unwrap();
    busybox::build_rootfs(fs.path());
    let dir = fs.path().to_str().unwrap();
    r.ok(&["image", "import", dir, "one", "-c", "CMD [\"sh\"]"]);
    r.ok(&["image", "import", dir, "two", "-c", "ENV A=1"]);
    let one: Value = serde_json::from_str(&r.ok(&["image", "inspect", "one"])).unwrap();
    let layer_size = one[0]["Size"].as_u64().unwrap();
    assert!(layer_size > 1_000_000, "busybox is about 2 MB: {one}");

    let d = df(&r);
    assert_eq!(d["Images"]["TotalCount"], "2");
    assert_eq!(d["Images"]["Active"], "0");
    // Two images, one shared layer: the total is one layer's size, not two.
    let one_size = r.ok(&["image", "ls", "--format", "{{.Size}}", "one"]);
    assert_eq!(d["Images"]["Size"].as_str().unwrap(), one_size.trim());

    // A stopped container makes "one" active; a named volume with 1000 bytes in it.
    r.ok(&[
        "container",
        "create",
        "--name",
        "sys-e2e-a",
        "--network",
        "none",
        "one",
        "true",
    ]);
    r.ok(&["volume", "create", "sys-e2e-vol"]);
    let mp = r
        .ok(&["volume", "inspect", "-f", "{{.Mountpoint}}", "sys-e2e-vol"])
        .trim()
        .to_string();
    std::fs::write(Path::new(&mp).join("data"), vec![7u8; 1000]).unwrap();
    let d = df(&r);
    assert_eq!(d["Images"]["Active"], "1");
    assert_eq!(d["Containers"]["TotalCount"], "1");
    assert_eq!(d["Containers"]["Active"], "0");
    assert_eq!(d["Local Volumes"]["TotalCount"], "1");
    assert_eq!(d["Local Volumes"]["Size"], "1kB");
    assert_eq!(d["Local Volumes"]["Reclaimable"], "1kB (100%)");
    // -v: both images share their only layer, so all of each is SHARED SIZE.
    let verbose = r.ok(&["system", "df", "-v"]);
    let row = verbose
        .lines()
        .find(|l| l.starts_with("one "))
        .unwrap_or_else(|| panic!("{verbose}"));
    let cols: Vec<&str> = row.split_whitespace().collect();
    let [size, shared, unique, users] = cols[cols.len() - 4..] else {
        panic!("{row}")
    };
    assert_eq!((shared, unique, users), (size, "0B", "1"), "{verbose}");
    let table = r.ok(&["system", "df"]);
    assert!(table.starts_with("TYPE"), "{table}");
    assert!(table.contains("Local Volumes"), "{table}");

    // prune: the stopped container goes, the tagged images and the named volume stay.
    let out = r.ok(&["system", "prune", "-f"]);
    assert!(out.contains("Deleted Containers:"), "{out}");
    assert!(r.rc(&["container", "inspect", "sys-e2e-a"]).status.code() != Some(0));
    let d = df(&r);
    assert_eq!(d["Containers"]["TotalCount"], "0");
    assert_eq!(d["Images"]["TotalCount"], "2");
    assert_eq!(d["Local Volumes"]["TotalCount"], "1");
    // --volumes takes anonymous volumes only; -a takes unused images.
    r.ok(&["system", "prune", "-f", "-a", "--volumes"]);
    let d = df(&r);
    assert_eq!(d["Images"]["TotalCount"], "0");
    assert_eq!(d["Images"]["Size"], "0B");
    assert_eq!(d["Local Volumes"]["TotalCount"], "1", "named volumes stay");
    assert!(Path::new(&mp).join("data").exists());
}

#[test]
fn prune_without_force_asks_and_a_no_keeps_everything() {
    let r = Roots::new();
    busybox::busybox_image(&bin(), &r.root(), "busybox:sys");
    r.ok(&[
        "container",
        "create",
        "--name",
        "sys-e2e-b",
        "--network",
        "none",
        "busybox:sys",
        "true",
    ]);
    let out =
        r.0.cmd()
            .args(["system", "prune"])
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("WARNING! This will remove:"));
    r.ok(&["container", "inspect", "sys-e2e-b"]);
}

#[test]
fn info_reports_the_roots_and_counts() {
    let r = Roots::new();
    let v: Value = serde_json::from_str(&r.ok(&["system", "info", "--format", "json"])).unwrap();
    assert_eq!(v["Containers"], 0);
    assert_eq!(v["Images"], 0);
    assert_eq!(v["DockerRootDir"], r.root().display().to_string());
    assert_eq!(v["Driver"], "overlay2");
    let expected_cgroup = if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        "2"
    } else {
        "1"
    };
    assert_eq!(v["CgroupVersion"], expected_cgroup);
    let text = r.ok(&["system", "info"]);
    assert!(text.contains(" Images: 0"), "{text}");
}

/// A small tmpfs mounted as the state root, unmounted even when the test fails.
struct TinyRoot {
    dir: tempfile::TempDir,
}

impl TinyRoot {
    fn new(size: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("root")).unwrap();
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path().join("root"))
            .status()
            .unwrap();
        assert!(st.success(), "mounting a tmpfs for the full-disk test");
        TinyRoot { dir }
    }
    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }
    /// Every regular file in the store (the lock file is expected).
    fn files(&self) -> Vec<String> {
        let mut out = vec![];
        let mut stack = vec![self.root()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap().flatten() {
                let md = e.metadata().unwrap();
                if md.is_dir() {
                    stack.push(e.path());
                } else {
                    out.push(
                        e.path()
                            .strip_prefix(self.root())
                            .unwrap()
                            .display()
                            .to_string(),
                    );
                }
            }
        }
        out.sort();
        out
    }
}

impl Drop for TinyRoot {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path().join("root"))
            .status();
    }
}

fn assert_disk_full_error(out: &Output) {
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("No space left on device"), "{err}");
    assert!(err.contains("hint: the disk is full"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn a_full_disk_fails_import_and_load_cleanly() {
    let tiny = TinyRoot::new("512k");
    let fs = tempfile::tempdir().unwrap();
    busybox::build_rootfs(fs.path());
    let rc = |args: &[&str]| {
        Command::new(bin())
            .arg("--root")
            .arg(tiny.root())
            .args(args)
            .output()
            .unwrap()
    };

    let out = rc(&["image", "import", fs.path().to_str().unwrap(), "big:1"]);
    assert_disk_full_error(&out);
    let after_import = tiny.files();
    assert!(
        after_import.iter().all(|f| f == "store.lock"),
        "half-written files left: {after_import:?}"
    );

    // A docker-archive saved from a roomy root, loaded into the full one.
    let roomy = Roots::new();
    busybox::busybox_image(&bin(), &roomy.root(), "busybox:big");
    let archive = roomy.0.dir.path().join("bb.tar");
    roomy.ok(&[
        "image",
        "save",
        "-o",
        archive.to_str().unwrap(),
        "busybox:big",
    ]);
    let out = rc(&["image", "load", "-i", archive.to_str().unwrap()]);
    assert_disk_full_error(&out);
    let after_load = tiny.files();
    assert!(
        after_load.iter().all(|f| f == "store.lock"),
        "half-written files left: {after_load:?}"
    );
    let ls = rc(&["image", "ls", "-q"]);
    assert!(ls.status.success());
    assert!(String::from_utf8_lossy(&ls.stdout).trim().is_empty());
}

#[test]
fn an_image_a_container_uses_is_kept_until_the_container_goes() {
    let r = Roots::new();
    busybox::busybox_image(&bin(), &r.root(), "busybox:used");
    r.ok(&[
        "container",
        "create",
        "--name",
        "sys-e2e-a",
        "--network",
        "none",
        "busybox:used",
        "true",
    ]);
    let out = r.rc(&["image", "rm", "busybox:used"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("must force"), "{err}");
    let ls = r.ok(&["image", "ls", "--format", "{{.Containers}}", "busybox:used"]);
    assert_eq!(ls.trim(), "1");
    assert_eq!(
        r.ok(&["image", "prune", "-a", "-f"]).trim(),
        "Total reclaimed space: 0B"
    );
    // The container runs from it; once it is removed the image is free to go.
    r.ok(&["container", "start", "-a", "sys-e2e-a"]);
    r.ok(&["container", "rm", "sys-e2e-a"]);
    r.ok(&["image", "rm", "busybox:used"]);
    assert!(r.ok(&["image", "ls", "-q"]).trim().is_empty());
}

/// Issue 15, permissions: an unprivileged user reads nothing of a container's environment or
/// logs from the state root or the run root, even when the directory above them is open to
/// everyone; and a root left open by an older version is closed again by the next command.
#[test]
fn an_unprivileged_user_reads_nothing_of_a_containers_secrets() {
    use std::os::unix::fs::PermissionsExt;
    let r = Roots::new();
    // The temporary directory is 0700 by itself: open it, as /var/lib and /run are.
    std::fs::set_permissions(r.0.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    busybox::busybox_image(&bin(), &r.root(), "busybox:perm");
    let secret = "hunter2-perm-check";
    r.ok(&[
        "container",
        "run",
        "-d",
        "--name",
        "sys-e2e-a",
        "--network",
        "none",
        "-e",
        &format!("DB_PASSWORD={secret}"),
        "busybox:perm",
        "sh",
        "-c",
        &format!("echo {secret}; sleep 60"),
    ]);
    let logs = r.ok(&["container", "logs", "sys-e2e-a"]);
    assert!(logs.contains(secret), "the log holds the secret: {logs}");
    let as_nobody = |path: &Path| {
        Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "grep",
                "-r",
                secret,
            ])
            .arg(path)
            .output()
            .unwrap()
    };
    for dir in [r.root(), r.0.run_root()] {
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & 0o077, 0, "{} has mode {mode:o}", dir.display());
        let out = as_nobody(&dir);
        let seen = String::from_utf8_lossy(&out.stdout);
        assert!(
            !seen.contains(secret),
            "nobody read the secret under {}: {seen}",
            dir.display()
        );
    }
    // A root opened by hand (or by an older rcompose) is closed by the next command.
    std::fs::set_permissions(r.root(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let doctor = r.rc(&["doctor"]);
    assert!(String::from_utf8_lossy(&doctor.stdout).contains("other users can read"));
    r.ok(&["container", "ls"]);
    let mode = std::fs::metadata(r.root()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
}

/// Issue 13: docker's top-level `inspect` finds any object by name, in docker's order
/// (container, image, network, volume), or only the `--type` asked for.
#[test]
fn top_level_inspect_finds_every_kind_of_object() {
    let r = Roots::new();
    busybox::busybox_image(&bin(), &r.root(), "busybox:insp");
    r.ok(&[
        "container",
        "create",
        "--name",
        "sys-e2e-b",
        "--network",
        "none",
        "busybox:insp",
    ]);
    r.ok(&["volume", "create", "sys-e2e-vol"]);
    r.ok(&[
        "network",
        "create",
        "--subnet",
        "10.249.90.0/24",
        "sys-e2e-net",
    ]);
    let one = |args: &[&str]| -> Value {
        let mut full = vec!["inspect"];
        full.extend_from_slice(args);
        let v: Value = serde_json::from_str(&r.ok(&full)).unwrap();
        v[0].clone()
    };
    assert_eq!(one(&["sys-e2e-b"])["Name"], "/sys-e2e-b");
    assert!(one(&["busybox:insp"])["RepoTags"][0] == "busybox:insp");
    assert_eq!(one(&["sys-e2e-net"])["Name"], "sys-e2e-net");
    assert_eq!(one(&["sys-e2e-vol"])["Name"], "sys-e2e-vol");
    assert_eq!(
        r.ok(&[
            "inspect",
            "-f",
            "{{.Name}}",
            "--type",
            "volume",
            "sys-e2e-vol"
        ])
        .trim(),
        "sys-e2e-vol"
    );
    let wrong_type = r.rc(&["inspect", "--type", "image", "sys-e2e-vol"]);
    assert_eq!(wrong_type.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&wrong_type.stderr).contains("No such object: sys-e2e-vol"));
    r.ok(&["network", "rm", "sys-e2e-net"]);
    r.ok(&["volume", "rm", "sys-e2e-vol"]);
}
