use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;

use pathrs::flags::OpenFlags;
use pathrs::procfs::{ProcfsBase, ProcfsHandle};
use procfs::ProcError;
use procfs::process::MountInfo;

use super::ControllerType;
use super::controller_type::CONTROLLERS;

#[derive(thiserror::Error, Debug)]
pub enum V1MountPointError {
    #[error("io error: {0}")]
    Io(#[from] std::io::Error),
    #[error("failed to get mountinfo: {0}")]
    MountInfo(ProcError),
    #[error("could not find mountpoint for {subsystem}")]
    NotFound { subsystem: ControllerType },
    #[error(transparent)]
    Pathrs(#[from] pathrs::error::Error),
}

/// List all cgroup v1 subsystem mount points on the system. This can include unsupported
/// subsystems, comounted controllers and named hierarchies.
///
/// rcompose patch (third_party/README.md): stops reading mountinfo once every v1 hierarchy
/// this process is in (`/proc/self/cgroup`, named ones included) has a mount; the cgroup
/// mounts come first, and the rest of the table grows with the containers running.
pub fn list_subsystem_mount_points() -> Result<Vec<PathBuf>, V1MountPointError> {
    // Per v1 hierarchy, the options its mount must carry ("cpu", "name=systemd", ...).
    let mut wanted: Vec<Vec<String>> = own_hierarchies();
    let reader = BufReader::new(ProcfsHandle::new()?.open(
        ProcfsBase::ProcSelf,
        "mountinfo",
        OpenFlags::O_RDONLY | OpenFlags::O_CLOEXEC,
    )?);
    let mut mount_points = Vec::new();
    for line in reader.lines() {
        let line = line?;
        let m = MountInfo::from_line(&line).map_err(V1MountPointError::MountInfo)?;
        if m.fs_type != "cgroup" {
            continue;
        }
        let carries = |opt: &String| match opt.split_once('=') {
            Some((k, v)) => m.super_options.get(k) == Some(&Some(v.to_string())),
            None => m.super_options.contains_key(opt.as_str()),
        };
        let had_wanted = !wanted.is_empty();
        wanted.retain(|opts| !opts.iter().all(carries));
        mount_points.push(m.mount_point);
        if had_wanted && wanted.is_empty() {
            break;
        }
    }
    Ok(mount_points)
}

/// The v1 hierarchies of `/proc/self/cgroup`, each as the list of its controllers and name.
fn own_hierarchies() -> Vec<Vec<String>> {
    let Ok(f) = ProcfsHandle::new().and_then(|h| {
        h.open(
            ProcfsBase::ProcSelf,
            "cgroup",
            OpenFlags::O_RDONLY | OpenFlags::O_CLOEXEC,
        )
    }) else {
        return Vec::new();
    };
    BufReader::new(f)
        .lines()
        .map_while(Result::ok)
        .filter_map(|l| l.splitn(3, ':').nth(1).map(str::to_string))
        .filter(|c| !c.is_empty())
        .map(|c| c.split(',').map(str::to_string).collect())
        .collect()
}

/// List the mount points of all currently supported cgroup subsystems.
pub fn list_supported_mount_points() -> Result<HashMap<ControllerType, PathBuf>, V1MountPointError>
{
    let mut mount_paths = HashMap::with_capacity(CONTROLLERS.len());

    for controller in CONTROLLERS {
        if let Ok(mount_point) = get_subsystem_mount_point(controller) {
            mount_paths.insert(controller.to_owned(), mount_point);
        }
    }

    Ok(mount_paths)
}

pub fn get_subsystem_mount_point(subsystem: &ControllerType) -> Result<PathBuf, V1MountPointError> {
    find_subsystem_mount_point(subsystem, &cgroup_mount_points()?)
}

/// rcompose patch: the mount point of `subsystem` among `points` (from
/// [`cgroup_mount_points`]), for a caller that looks up several subsystems in one list.
pub(crate) fn find_subsystem_mount_point(
    subsystem: &ControllerType,
    points: &[PathBuf],
) -> Result<PathBuf, V1MountPointError> {
    let subsystem_name = subsystem.to_string();
    points
        .iter()
        .find(|p| mount_point_matches(&subsystem_name, p))
        .cloned()
        .ok_or(V1MountPointError::NotFound {
            subsystem: *subsystem,
        })
}

// rcompose patch (third_party/README.md): upstream read /proc/self/mountinfo for each
// subsystem, to the end for those not mounted (4 of 12 on a typical hybrid host), and the
// v1 manager asks for all 12, twice per container start. The file grows by two mounts per
// running container, so at a hundred containers each start spent ~8 ms of kernel time
// rendering it. Here one read per process (per mount namespace and root, at most once a
// second) serves every subsystem, and it stops as soon as every controller this process has
// a hierarchy for was found: the cgroup mounts come first in mountinfo.

/// Whether `mount_point` is where upstream looked for `subsystem_name`.
fn mount_point_matches(subsystem_name: &str, mount_point: &std::path::Path) -> bool {
    // Some systems mount net_prio and net_cls in the same directory
    // other systems mount them in their own directories. This
    // should handle both cases.
    match subsystem_name {
        "net_cls" => ["net_cls,net_prio", "net_prio,net_cls", "net_cls"]
            .iter()
            .any(|s| mount_point.ends_with(s)),
        "net_prio" => ["net_cls,net_prio", "net_prio,net_cls", "net_prio"]
            .iter()
            .any(|s| mount_point.ends_with(s)),
        "cpu" => ["cpu,cpuacct", "cpu"]
            .iter()
            .any(|s| mount_point.ends_with(s)),
        "cpuacct" => ["cpu,cpuacct", "cpuacct"]
            .iter()
            .any(|s| mount_point.ends_with(s)),
        _ => mount_point.ends_with(subsystem_name),
    }
}

struct MountPointCache {
    key: (u64, u64, u64),
    read_at: std::time::Instant,
    points: Vec<PathBuf>,
}

static MOUNT_POINT_CACHE: std::sync::Mutex<Option<MountPointCache>> =
    std::sync::Mutex::new(None);

/// What the cached list depends on: the mount namespace and the root directory.
fn mount_view_key() -> Option<(u64, u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let ns = std::fs::metadata("/proc/self/ns/mnt").ok()?;
    let root = std::fs::metadata("/").ok()?;
    Some((ns.ino(), root.dev(), root.ino()))
}

/// The v1 controllers this process has a hierarchy for (`/proc/self/cgroup`).
fn own_controllers() -> Vec<String> {
    own_hierarchies()
        .into_iter()
        .flatten()
        .filter(|c| !c.starts_with("name="))
        .collect()
}

/// Mount points of cgroup v1 filesystems, in mountinfo order: all of them, or at least a
/// prefix that holds a match for every controller of [`own_controllers`].
pub(crate) fn cgroup_mount_points() -> Result<Vec<PathBuf>, V1MountPointError> {
    const FRESH_FOR: std::time::Duration = std::time::Duration::from_secs(1);
    let key = mount_view_key();
    // try_lock: this runs in processes forked from multithreaded ones; never wait on a
    // lock another thread may have held at the fork.
    if let (Some(key), Ok(cache)) = (key, MOUNT_POINT_CACHE.try_lock()) {
        if let Some(c) = cache.as_ref() {
            if c.key == key && c.read_at.elapsed() < FRESH_FOR {
                return Ok(c.points.clone());
            }
        }
    }
    let wanted = own_controllers();
    let reader = BufReader::new(ProcfsHandle::new()?.open(
        ProcfsBase::ProcSelf,
        "mountinfo",
        OpenFlags::O_RDONLY | OpenFlags::O_CLOEXEC,
    )?);
    let mut points: Vec<PathBuf> = Vec::new();
    for line in reader.lines() {
        let line = line?;
        let m = MountInfo::from_line(&line).map_err(V1MountPointError::MountInfo)?;
        if m.fs_type != "cgroup" {
            continue;
        }
        points.push(m.mount_point);
        if !wanted.is_empty()
            && wanted
                .iter()
                .all(|c| points.iter().any(|p| mount_point_matches(c, p)))
        {
            break;
        }
    }
    if let (Some(key), Ok(mut cache)) = (key, MOUNT_POINT_CACHE.try_lock()) {
        *cache = Some(MountPointCache {
            key,
            read_at: std::time::Instant::now(),
            points: points.clone(),
        });
    }
    Ok(points)
}
