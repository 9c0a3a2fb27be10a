//! Host checks for the engine (`rcompose doctor`): the kernel features containers need
//! (namespaces, overlayfs, cgroups and their controllers, on v1, hybrid and v2 hosts), who can
//! read the state root, and free disk. Only reads; each problem comes with what to do.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// The result of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Ok(String),
    Problem { detail: String, fix: String },
}

fn problem(detail: impl Into<String>, fix: impl Into<String>) -> Outcome {
    Outcome::Problem {
        detail: detail.into(),
        fix: fix.into(),
    }
}

/// Controllers a container's limits and `stats` use.
const WANTED_CONTROLLERS: &[&str] = &["cpu", "memory", "pids"];

/// Every engine check: `(what was checked, outcome)`.
pub fn check(root: &Path, run_root: &Path) -> Vec<(&'static str, Outcome)> {
    vec![
        ("namespaces", namespaces()),
        ("overlayfs", overlayfs(&read("/proc/filesystems"))),
        (
            "cgroups",
            cgroups(
                Path::new("/sys/fs/cgroup/cgroup.controllers").exists(),
                &read("/sys/fs/cgroup/cgroup.controllers"),
                &read("/proc/cgroups"),
            ),
        ),
        ("permissions", permissions(root)),
        ("permissions", permissions(run_root)),
        ("permissions", file_permissions(root, run_root)),
        ("disk", disk(root)),
    ]
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn namespaces() -> Outcome {
    let kinds = ["mnt", "uts", "ipc", "pid", "net", "user", "cgroup"];
    let missing: Vec<&str> = kinds
        .iter()
        .copied()
        .filter(|k| !Path::new(&format!("/proc/self/ns/{k}")).exists())
        .collect();
    if missing.is_empty() {
        Outcome::Ok(format!("{} namespaces available", kinds.join(", ")))
    } else {
        problem(
            format!("the kernel lacks {} namespaces", missing.join(", ")),
            "use a kernel built with CONFIG_NAMESPACES and each CONFIG_*_NS",
        )
    }
}

/// `filesystems`: /proc/filesystems.
pub fn overlayfs(filesystems: &str) -> Outcome {
    if filesystems
        .lines()
        .any(|l| l.split_whitespace().last() == Some("overlay"))
    {
        Outcome::Ok("overlay filesystem available".into())
    } else {
        problem(
            "the kernel has no overlay filesystem: container root filesystems cannot be mounted",
            "modprobe overlay (and add it to /etc/modules)",
        )
    }
}

/// `unified`: a pure v2 hierarchy is mounted at /sys/fs/cgroup; `v2_controllers`: its
/// cgroup.controllers; `proc_cgroups`: /proc/cgroups (v1 controllers, hierarchy ids).
pub fn cgroups(unified: bool, v2_controllers: &str, proc_cgroups: &str) -> Outcome {
    let (version, have): (&str, Vec<&str>) = if unified {
        ("v2", v2_controllers.split_whitespace().collect())
    } else {
        // name, hierarchy, num_cgroups, enabled; hierarchy 0 means not mounted on v1.
        let v1 = proc_cgroups
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f.len() == 4 && f[1] != "0" && f[3] == "1").then_some(f[0])
            })
            .collect();
        ("v1 (hybrid or legacy)", v1)
    };
    let missing: Vec<&str> = WANTED_CONTROLLERS
        .iter()
        .copied()
        .filter(|c| !have.contains(c))
        .collect();
    if missing.is_empty() {
        Outcome::Ok(format!(
            "cgroup {version} with controllers {}",
            have.join(" ")
        ))
    } else {
        problem(
            format!(
                "cgroup {version} lacks the {} controller(s): --memory, --cpus, --pids-limit and stats for them do not work",
                missing.join(", ")
            ),
            if unified {
                "enable them for the root cgroup: echo +cpu +memory +pids > /sys/fs/cgroup/cgroup.subtree_control"
            } else {
                "mount the v1 controllers (or boot with systemd.unified_cgroup_hierarchy=1)"
            },
        )
    }
}

/// Others must not read containers' environments and logs under the state root. A directory
/// is open to them when its own mode lets others in and every directory above it lets them
/// pass (a 0700 parent, as a test's temporary directory, closes everything below it).
pub fn permissions(dir: &Path) -> Outcome {
    let mode_of = |d: &Path| std::fs::metadata(d).map(|m| m.permissions().mode() & 0o7777);
    let Ok(mode) = mode_of(dir) else {
        return Outcome::Ok(format!("{} does not exist yet", dir.display()));
    };
    let passable = dir
        .ancestors()
        .skip(1)
        .all(|a| mode_of(a).is_ok_and(|m| m & 0o001 != 0));
    if mode & 0o005 != 0 && passable {
        problem(
            format!(
                "{} has mode {mode:04o}: other users can read container configs (environment, passwords) and logs in it",
                dir.display()
            ),
            format!(
                "chmod 0700 {} (any rcompose command but doctor also does it)",
                dir.display()
            ),
        )
    } else {
        Outcome::Ok(format!(
            "{} is closed to other users (mode {mode:04o})",
            dir.display()
        ))
    }
}

/// The second wall: container files 0600 in 0700 directories, whatever the roots' modes.
pub fn file_permissions(root: &Path, run_root: &Path) -> Outcome {
    let loose = crate::store::perms::loose(root, run_root);
    match loose.first() {
        None => Outcome::Ok("container configs, logs and secrets are private to root".into()),
        Some(first) => problem(
            format!(
                "{} file(s) or directories of containers are open to other users (first: {} has mode {:04o}, wants {:04o})",
                loose.len(),
                first.path.display(),
                first.mode,
                first.want
            ),
            "rcompose system migrate-perms",
        ),
    }
}

fn disk(root: &Path) -> Outcome {
    // The root may not exist yet: its nearest existing ancestor holds it.
    let Some(dir) = root.ancestors().find(|d| d.exists()) else {
        return Outcome::Ok("no state root yet".into());
    };
    match rustix::fs::statvfs(dir) {
        Err(e) => problem(
            format!("cannot read free space of {}: {e}", dir.display()),
            "check the mount",
        ),
        Ok(s) => free_space(dir, s.f_bavail * s.f_frsize, s.f_blocks * s.f_frsize),
    }
}

/// At least 1 GiB and 5% free, or pulls and builds fail half way.
pub fn free_space(dir: &Path, free: u64, total: u64) -> Outcome {
    let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
    let text = format!(
        "{:.1} GiB free of {:.1} GiB on {}",
        gib(free),
        gib(total),
        dir.display()
    );
    if free < 1 << 30 || (total > 0 && free * 20 < total) {
        problem(
            format!("only {text}"),
            "free space: rcompose system df shows what the state root holds; rcompose image prune, rcompose system prune",
        )
    } else {
        Outcome::Ok(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_is_found_in_proc_filesystems() {
        assert!(matches!(
            overlayfs("nodev\tproc\nnodev\toverlay\n"),
            Outcome::Ok(_)
        ));
        assert!(matches!(
            overlayfs("nodev\tproc\n\text4\n"),
            Outcome::Problem { .. }
        ));
    }

    #[test]
    fn cgroup_controllers_on_v1_hybrid_and_v2() {
        let v1 = "#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpu\t3\t1\t1\nmemory\t5\t1\t1\npids\t7\t1\t1\n";
        assert!(matches!(cgroups(false, "", v1), Outcome::Ok(_)));
        let no_mem = "cpu\t3\t1\t1\nmemory\t0\t1\t1\npids\t7\t1\t1\n";
        match cgroups(false, "", no_mem) {
            Outcome::Problem { detail, .. } => assert!(detail.contains("memory"), "{detail}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            cgroups(true, "cpuset cpu io memory pids", ""),
            Outcome::Ok(_)
        ));
        match cgroups(true, "cpuset io", "") {
            Outcome::Problem { fix, .. } => assert!(fix.contains("subtree_control")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn readable_roots_and_full_disks_are_problems() {
        let dir = tempfile::tempdir().unwrap();
        let inner = dir.path().join("root");
        std::fs::create_dir(&inner).unwrap();
        let chmod =
            |p: &Path, m| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
        chmod(&inner, 0o755);
        chmod(dir.path(), 0o700);
        assert!(
            matches!(permissions(&inner), Outcome::Ok(_)),
            "a closed parent closes it"
        );
        chmod(dir.path(), 0o755);
        assert!(matches!(permissions(&inner), Outcome::Problem { .. }));
        chmod(&inner, 0o710);
        assert!(
            matches!(permissions(&inner), Outcome::Ok(_)),
            "docker's 0710"
        );
        let gib = 1u64 << 30;
        assert!(matches!(
            free_space(dir.path(), 50 * gib, 100 * gib),
            Outcome::Ok(_)
        ));
        assert!(matches!(
            free_space(dir.path(), gib / 2, 100 * gib),
            Outcome::Problem { .. }
        ));
        assert!(matches!(
            free_space(dir.path(), 3 * gib, 100 * gib),
            Outcome::Problem { .. }
        ));
    }
}
