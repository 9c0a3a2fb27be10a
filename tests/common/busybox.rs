//! The project's busybox test image: a FROM-scratch rootfs around Debian's static busybox.
//!
//! `common::busybox::busybox_image(&common::bin(), root, "busybox:test")` from any e2e test.
//! Needs `/bin/busybox` from the `busybox-static` package.

use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::process::Command;

/// Where Debian's busybox-static installs the binary.
pub const HOST_BUSYBOX: &str = "/bin/busybox";

/// Applets linked when `busybox --list` is unavailable.
const FALLBACK_APPLETS: &[&str] = &[
    "sh", "ash", "ls", "cat", "echo", "sleep", "httpd", "wget", "nc", "nslookup", "id", "env",
    "true", "false", "ps", "mkdir", "rm", "cp", "mv", "ln", "chmod", "chown", "touch", "grep",
    "sed", "awk", "head", "tail", "wc", "hostname", "ip", "ping", "kill", "date", "printf", "test",
    "uname", "whoami", "mount", "df", "du", "find", "xargs", "tee", "sort", "cut", "tr", "stat",
    "readlink", "pwd", "seq", "timeout", "nohup", "expr", "top", "ifconfig", "route",
];

/// Build the busybox rootfs in a temporary directory and import it into the store at
/// `root` as `tag` with `CMD ["sh"]` and a standard PATH. Returns the image id
/// (`sha256:…`). Panics with a clear message when anything fails (it is test setup).
pub fn busybox_image(bin: &Path, root: &Path, tag: &str) -> String {
    let tmp = tempfile::tempdir().expect("tempdir for the busybox rootfs");
    let fs = tmp.path().join("rootfs");
    build_rootfs(&fs);
    let out = Command::new(bin)
        .arg("--root")
        .arg(root)
        .args(["image", "import"])
        .arg(&fs)
        .arg(tag)
        .args(["-c", r#"CMD ["sh"]"#])
        .args([
            "-c",
            "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        ])
        .output()
        .expect("running rcompose image import");
    assert!(
        out.status.success(),
        "importing the busybox image failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Write the rootfs: bin/busybox, one symlink per applet, /etc/passwd and /etc/group with
/// root and nobody, and the usual empty directories.
pub fn build_rootfs(fs: &Path) {
    assert!(
        Path::new(HOST_BUSYBOX).exists(),
        "{HOST_BUSYBOX} is missing: install Debian's busybox-static"
    );
    for d in [
        "bin", "sbin", "usr/bin", "usr/sbin", "etc", "root", "tmp", "proc", "sys", "dev",
        "var/www", "var/run", "home",
    ] {
        std::fs::create_dir_all(fs.join(d)).unwrap();
    }
    std::fs::set_permissions(fs.join("tmp"), std::fs::Permissions::from_mode(0o1777)).unwrap();
    std::fs::set_permissions(fs.join("root"), std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::copy(HOST_BUSYBOX, fs.join("bin/busybox")).unwrap();
    std::fs::set_permissions(
        fs.join("bin/busybox"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let listed = Command::new(HOST_BUSYBOX)
        .arg("--list")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
    let applets: Vec<String> = match &listed {
        Some(text) => text.lines().map(str::to_string).collect(),
        None => FALLBACK_APPLETS.iter().map(|s| s.to_string()).collect(),
    };
    for applet in applets {
        if applet.is_empty() || applet.contains('/') || applet == "busybox" {
            continue;
        }
        let _ = symlink("busybox", fs.join("bin").join(&applet));
    }
    std::fs::write(
        fs.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )
    .unwrap();
    std::fs::write(fs.join("etc/group"), "root:x:0:\nnobody:x:65534:\n").unwrap();
}
