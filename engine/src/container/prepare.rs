//! Everything a start needs on the host before the runtime is called: the overlay root
//! filesystem mounted, the network namespace, /etc/hostname, /etc/hosts, /etc/resolv.conf,
//! volume sources, and the OCI bundle. Idempotent, so a restart redoes only what is missing.

use std::fs;
use std::path::PathBuf;

use super::model::ContainerConfig;
use super::spec::{Join, SpecInput, build_spec};
use super::store::{ContainerStore, write_file, write_file_mode};
use super::{ContainerError, netns, user};
use crate::rootfs::Rootfs;

/// Prepares the container and returns the bundle directory.
pub fn prepare(store: &ContainerStore, cfg: &ContainerConfig) -> Result<PathBuf, ContainerError> {
    let rootfs = Rootfs::new(store.rootfs_dir(cfg));
    if !rootfs.merged().exists() {
        rootfs.prepare(&cfg.layer_dirs)?;
    }
    rootfs.mount(cfg.layer_dirs.len(), cfg.host.auto_remove)?;
    super::proc::trace_phase("prepare.rootfs-mounted");
    let merged = rootfs.merged();
    // docker creates a missing working directory.
    if !cfg.working_dir.is_empty() {
        mkdir_beneath(&merged, &cfg.working_dir)?;
    }

    let run_dir = store.run_dir(&cfg.id);
    super::store::create_private_dir(&run_dir)?;

    let netns_path = match cfg.host.network_mode.as_str() {
        "host" => None,
        // Joins another container's persistent namespace (the caller checked it runs).
        m if m.starts_with("container:") => {
            let p = store.netns_path(&m["container:".len()..]);
            if !crate::rootfs::is_mountpoint(&p) {
                return Err(ContainerError::Other(format!(
                    "cannot join the network namespace of {m}: it is not running"
                )));
            }
            Some(p)
        }
        _ => {
            let p = store.netns_path(&cfg.id);
            netns::ensure(&p)?;
            Some(p)
        }
    };

    super::proc::trace_phase("prepare.netns");
    let mut etc_files: Vec<(PathBuf, &'static str)> = vec![];
    // The network layer wrote hosts and resolv.conf for this start (names, DNS): keep them.
    let by_network = run_dir.join("etc-by-network").exists();
    if cfg.host.network_mode != "host" {
        let hostname = run_dir.join("hostname");
        write_file_mode(
            &hostname,
            format!("{}\n", cfg.hostname).as_bytes(),
            false,
            0o644,
        )?;
        let hosts = run_dir.join("hosts");
        let text = format!(
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.0.1\t{}\n",
            cfg.fqdn_names()
        );
        if !by_network {
            write_file_mode(&hosts, text.as_bytes(), false, 0o644)?;
        }
        etc_files.push((hostname, "/etc/hostname"));
        etc_files.push((hosts, "/etc/hosts"));
    } else {
        etc_files.push((PathBuf::from("/etc/hosts"), "/etc/hosts"));
    }
    let resolv = run_dir.join("resolv.conf");
    let host_resolv = fs::read("/etc/resolv.conf").unwrap_or_default();
    if !by_network {
        write_file_mode(&resolv, &host_resolv, false, 0o644)?;
    }
    etc_files.push((resolv, "/etc/resolv.conf"));

    let mut sources = Vec::with_capacity(cfg.host.mounts.len());
    for m in &cfg.host.mounts {
        let src = match m.kind.as_str() {
            "bind" => {
                let p = PathBuf::from(&m.source);
                if !p.exists() {
                    return Err(ContainerError::BindSourceMissing(p));
                }
                p
            }
            "volume" => crate::volume::Volumes::new(&store.root)
                .data_dir(&m.source)
                .map_err(|e| ContainerError::Other(e.to_string()))?,
            _ => PathBuf::new(),
        };
        sources.push(src);
    }

    super::proc::trace_phase("prepare.etc-files");
    let u = user::resolve_user(&merged, &cfg.user)?;
    let spec = build_spec(&SpecInput {
        cfg,
        rootfs: &merged,
        user: &u,
        netns: netns_path.as_deref(),
        mount_sources: &sources,
        etc_files: &etc_files,
        pid: join(store, &cfg.host.pid_mode, "pid")?,
        ipc: join(store, &cfg.host.ipc_mode, "ipc")?,
        group_add: &user::resolve_groups(&merged, &cfg.host.extra.group_add)?,
        cgroups: super::resources::CgroupVersion::host(),
    })?;
    super::proc::trace_phase("prepare.spec-built");
    let bundle = store.bundle_dir(&cfg.id);
    super::store::create_private_dir(&bundle)?;
    let data = serde_json::to_vec(&spec).map_err(|e| ContainerError::Other(e.to_string()))?;
    write_file(&bundle.join("config.json"), &data, false)?;
    Ok(bundle)
}

/// Undoes `prepare` after the container stopped: unmounts the root filesystem and removes the
/// network namespace. Never touches the upper dir (the container's changes are kept).
pub fn teardown(store: &ContainerStore, id: &str) -> Result<(), ContainerError> {
    Rootfs::new(store.dir(id)).unmount()?;
    Rootfs::new(store.run_dir(id).join("fs")).unmount()?;
    netns::remove(&store.netns_path(id))?;
    Ok(())
}

/// Creates `rel` under `root` one component at a time, refusing to go through a symlink or
/// `..` (a symlink in the image could otherwise point the mkdir at the host).
fn mkdir_beneath(root: &std::path::Path, rel: &str) -> Result<(), ContainerError> {
    let mut cur = root.to_path_buf();
    for comp in rel.split('/').filter(|c| !c.is_empty() && *c != ".") {
        if comp == ".." {
            return Ok(());
        }
        cur.push(comp);
        match fs::symlink_metadata(&cur) {
            Ok(md) if md.file_type().is_dir() => {}
            // A symlink or a file: leave it to the runtime (it resolves inside the root).
            Ok(_) => return Ok(()),
            Err(_) => fs::create_dir(&cur).map_err(|e| ContainerError::io(&cur, e))?,
        }
    }
    Ok(())
}

/// `--pid`/`--ipc` mode → the namespace to use. `container:<id>` needs that container's
/// process: its namespace is joined through `/proc/<pid>/ns/<kind>`.
fn join(store: &ContainerStore, mode: &str, kind: &str) -> Result<Join, ContainerError> {
    match mode {
        "" | "private" | "shareable" => Ok(Join::Own),
        "host" => Ok(Join::Host),
        m if m.starts_with("container:") => {
            let id = &m["container:".len()..];
            let st = store.load_state(id)?;
            if st.pid <= 0 || !super::proc::alive(st.pid, st.pid_start_ticks) {
                let name = store.load_config(id).map(|c| c.name).unwrap_or_default();
                return Err(ContainerError::Other(format!(
                    "cannot join the {kind} namespace of container {name} ({}): it is not running; start it first",
                    &id[..id.len().min(12)]
                )));
            }
            Ok(Join::Path(PathBuf::from(format!(
                "/proc/{}/ns/{kind}",
                st.pid
            ))))
        }
        other => Err(ContainerError::Other(format!(
            "invalid {kind} mode {other:?}: use host or container:<name|id>"
        ))),
    }
}
