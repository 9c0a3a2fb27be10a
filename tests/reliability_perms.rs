//! Issue 15, permissions at the file level: even with the state root and run root opened to
//! everyone (by hand, or by an older version), an unprivileged user reads nothing of a
//! container's environment, logs, exec specs, secrets or configs; `doctor` reports files a
//! root made before this had open, and `system migrate-perms` (or the next command on a root
//! that had to be closed again) closes them. The container's own unprivileged user still
//! reads its secret and /etc/hosts.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use common::compose::Project;

const SECRET: &str = "PASSWORD=hunter2-rel-perm";

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// What `grep -r SECRET` finds under `dir` as nobody (uid and gid 65534, no groups).
fn grep_as_nobody(dir: &Path) -> String {
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "grep",
            "-r",
            "-l",
            "hunter2-rel-perm",
        ])
        .arg(dir)
        .output()
        .expect("setpriv (util-linux)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn open_everything(p: &Project) {
    for d in [p.tmp.path(), &p.root, &p.run_root] {
        chmod(d, 0o755);
    }
}

fn assert_nobody_reads_nothing(p: &Project, when: &str) {
    for dir in [&p.root, &p.run_root] {
        let seen = grep_as_nobody(dir);
        assert!(seen.is_empty(), "{when}: nobody read the secret in {seen}");
    }
}

#[test]
fn nobody_reads_environment_logs_exec_specs_or_secrets_even_from_an_open_root() {
    let p = Project::new("perm");
    std::fs::write(p.dir.join("pw.txt"), SECRET).unwrap();
    p.write(&format!(
        r#"
services:
  app:
    image: "{{IMAGE}}"
    user: "65534:65534"
    network_mode: none
    environment: ["{SECRET}"]
    command: ["sh", "-c", "echo {SECRET}; sleep 300"]
    secrets: [pw]
    configs: [cf]
secrets:
  pw: {{file: ./pw.txt}}
configs:
  cf: {{content: "{SECRET}"}}
"#
    ));
    p.ok(&["up", "-d"]);
    // The container's unprivileged user reads what is mounted for it.
    let inside = p.exec_ok(
        "app",
        "cat /run/secrets/pw; echo; cat /cf; echo; cat /etc/hosts >/dev/null && echo hosts-readable",
    );
    assert!(inside.contains(SECRET), "{inside}");
    assert!(inside.contains("hosts-readable"), "{inside}");
    // An exec's spec carries its environment too: keep one around while we look.
    let mut exec = p
        .cmd()
        .args(["exec", "-T", "-e", SECRET, "app", "sleep", "30"])
        .spawn()
        .unwrap();
    p.wait_until(10, "the log holds the secret", || {
        p.ok(&["logs", "app"]).contains(SECRET)
    });

    // Roots opened by hand: the files themselves are closed.
    open_everything(&p);
    assert_nobody_reads_nothing(&p, "fresh files in open roots");
    let doctor = p.run(&["doctor"]);
    let text = String::from_utf8_lossy(&doctor.stdout).into_owned();
    assert!(
        text.contains("container configs, logs and secrets are private to root"),
        "{text}"
    );

    // A root made by an older version: files 0644 in 0755 directories.
    let loosen = |p: &Project| {
        for base in [p.root.join("containers"), p.run_root.join("containers")] {
            for c in std::fs::read_dir(&base).unwrap().flatten() {
                chmod(&c.path(), 0o755);
                for f in std::fs::read_dir(c.path()).unwrap().flatten() {
                    if f.file_type().unwrap().is_file() {
                        chmod(&f.path(), 0o644);
                    }
                }
            }
        }
        chmod(&p.root.join("compose").join(&p.name), 0o755);
        open_everything(p);
    };
    loosen(&p);
    assert!(
        !grep_as_nobody(&p.root).is_empty(),
        "the loosened root must be readable, or this test proves nothing"
    );
    let doctor = p.run(&["doctor"]);
    let text = String::from_utf8_lossy(&doctor.stdout).into_owned();
    assert!(text.contains("open to other users"), "{text}");
    assert!(text.contains("rcompose system migrate-perms"), "{text}");
    p.ok(&["system", "migrate-perms"]);
    open_everything(&p);
    assert_nobody_reads_nothing(&p, "after migrate-perms");

    // Or simply the next command on the root (which closes the root and what is in it).
    loosen(&p);
    p.ok(&["ps"]);
    open_everything(&p);
    assert_nobody_reads_nothing(&p, "after the next command");

    let _ = exec.kill();
    let _ = exec.wait();
    common::reliability::report(
        "permissions: nobody greps opened roots (new, migrated, next command)",
        3,
        3,
        0,
        "env, logs, exec specs, secrets, configs",
    );
}
