//! Disk usage of a state root (`system df`): images with their shared and unique bytes (a
//! layer counts once however many images hold it), containers' writable layers, volumes.
//! Numbers only; the CLI renders them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::container::model::Status;
use crate::container::{ContainerConfig, ContainerError, Containers};
use crate::store::{Store, StoreError};
use crate::volume::{VolumeError, Volumes};

#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    #[error(transparent)]
    Store(#[from] Box<StoreError>),
    #[error(transparent)]
    Container(#[from] Box<ContainerError>),
    #[error(transparent)]
    Volume(#[from] Box<VolumeError>),
}

impl From<StoreError> for UsageError {
    fn from(e: StoreError) -> Self {
        Self::Store(Box::new(e))
    }
}

impl From<ContainerError> for UsageError {
    fn from(e: ContainerError) -> Self {
        Self::Container(Box::new(e))
    }
}

impl From<VolumeError> for UsageError {
    fn from(e: VolumeError) -> Self {
        Self::Volume(Box::new(e))
    }
}

/// One line of `system df`: TYPE TOTAL ACTIVE SIZE RECLAIMABLE.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Usage {
    pub total: usize,
    pub active: usize,
    pub size: u64,
    pub reclaimable: u64,
}

/// One image: its first tag (`<none>` without), size, the bytes of layers other images hold
/// too, and how many containers use it.
#[derive(Debug, Clone)]
pub struct ImageRow {
    pub repository: String,
    pub tag: String,
    pub short_id: String,
    pub created: Option<String>,
    pub size: u64,
    pub shared: u64,
    pub containers: usize,
}

/// One container and the size of its writable layer.
#[derive(Debug, Clone)]
pub struct ContainerRow {
    pub config: ContainerConfig,
    pub status: Status,
    pub size: u64,
}

/// One volume, how many containers use it and the bytes under it.
#[derive(Debug, Clone)]
pub struct VolumeRow {
    pub name: String,
    pub links: usize,
    pub size: u64,
}

#[derive(Debug, Clone, Default)]
pub struct DiskUsage {
    pub images: Usage,
    pub containers: Usage,
    pub volumes: Usage,
    pub image_rows: Vec<ImageRow>,
    pub container_rows: Vec<ContainerRow>,
    pub volume_rows: Vec<VolumeRow>,
}

/// Measures the images, containers and volumes of the state root `root`.
pub fn disk_usage(eng: &Containers, root: &Path) -> Result<DiskUsage, UsageError> {
    let store = Store::open(root)?;
    let records = store.list()?;
    let users = store.image_users()?;
    // How many images hold each layer: what more than one holds is their SHARED SIZE.
    let mut holders: BTreeMap<&str, usize> = BTreeMap::new();
    for rec in &records {
        for l in &rec.layers {
            *holders.entry(l.chain_id.as_str()).or_default() += 1;
        }
    }
    let mut out = DiskUsage::default();
    let mut images = vec![];
    for rec in &records {
        let containers = users.get(&rec.id).map_or(0, |u| u.len());
        let shared: u64 = rec
            .layers
            .iter()
            .filter(|l| holders.get(l.chain_id.as_str()).is_some_and(|n| *n > 1))
            .map(|l| l.size)
            .sum();
        let layers: Vec<(String, u64)> = rec
            .layers
            .iter()
            .map(|l| (l.chain_id.clone(), l.size))
            .collect();
        let tags = rec.familiar_tags();
        let (repository, tag) = tags
            .first()
            .and_then(|t| t.rsplit_once(':'))
            .map(|(r, t)| (r.to_string(), t.to_string()))
            .unwrap_or_else(|| ("<none>".into(), "<none>".into()));
        out.image_rows.push(ImageRow {
            repository,
            tag,
            short_id: rec.short_id().to_string(),
            created: rec.created().map(String::from),
            size: rec.size,
            shared,
            containers,
        });
        images.push((containers > 0, layers));
    }
    out.images = image_usage(&images);

    for c in eng.store.list()? {
        let st = eng.observe(&c.id)?;
        let size = eng.size_rw(&c.id).unwrap_or(0);
        let running = matches!(
            st.status,
            Status::Running | Status::Paused | Status::Restarting
        );
        out.containers.total += 1;
        out.containers.size += size;
        if running {
            out.containers.active += 1;
        } else {
            out.containers.reclaimable += size;
        }
        out.container_rows.push(ContainerRow {
            config: c,
            status: st.status,
            size,
        });
    }

    for v in Volumes::new(root).list()? {
        let links = eng.volume_users(&v.name)?.len();
        let size = dir_size(&v.mountpoint);
        out.volumes.total += 1;
        out.volumes.size += size;
        if links > 0 {
            out.volumes.active += 1;
        } else {
            out.volumes.reclaimable += size;
        }
        out.volume_rows.push(VolumeRow {
            name: v.name.clone(),
            links,
            size,
        });
    }
    Ok(out)
}

/// Image usage: layers are counted once however many images share them; what is reclaimable
/// is what only unused images hold.
fn image_usage(images: &[(bool, Vec<(String, u64)>)]) -> Usage {
    let mut all = BTreeMap::new();
    let mut held = BTreeSet::new();
    for (active, layers) in images {
        for (chain, size) in layers {
            all.insert(chain.clone(), *size);
            if *active {
                held.insert(chain.clone());
            }
        }
    }
    let size: u64 = all.values().sum();
    let kept: u64 = held.iter().filter_map(|c| all.get(c)).sum();
    Usage {
        total: images.len(),
        active: images.iter().filter(|(a, _)| *a).count(),
        size,
        reclaimable: size - kept,
    }
}

/// Bytes of regular files under `dir`, not following symlinks; a missing dir is empty.
fn dir_size(dir: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut total = 0;
    for e in rd.flatten() {
        let Ok(md) = e.metadata() else { continue };
        if md.is_dir() {
            total += dir_size(&e.path());
        } else if md.is_file() {
            total += md.len();
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layers(v: &[(&str, u64)]) -> Vec<(String, u64)> {
        v.iter().map(|(c, s)| (c.to_string(), *s)).collect()
    }

    #[test]
    fn shared_layers_count_once_and_stay_unreclaimable_while_used() {
        let imgs = vec![
            (true, layers(&[("base", 100), ("app", 10)])),
            (false, layers(&[("base", 100), ("other", 5)])),
        ];
        let u = image_usage(&imgs);
        assert_eq!(u.total, 2);
        assert_eq!(u.active, 1);
        assert_eq!(u.size, 115);
        assert_eq!(u.reclaimable, 5);
    }

    #[test]
    fn nothing_used_is_all_reclaimable() {
        let u = image_usage(&[(false, layers(&[("a", 1000)]))]);
        assert_eq!((u.size, u.reclaimable), (1000, 1000));
        assert_eq!(image_usage(&[]), Usage::default());
    }

    #[test]
    fn dir_size_counts_files_not_symlinks() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("sub")).unwrap();
        std::fs::write(d.path().join("a"), vec![0u8; 300]).unwrap();
        std::fs::write(d.path().join("sub/b"), vec![0u8; 20]).unwrap();
        std::os::unix::fs::symlink("/usr", d.path().join("link")).unwrap();
        assert_eq!(dir_size(d.path()), 320);
        assert_eq!(dir_size(&d.path().join("missing")), 0);
    }
}
