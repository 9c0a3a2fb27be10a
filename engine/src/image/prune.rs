//! `image prune`: remove dangling images (with `all`, every image no container uses).

use std::collections::HashMap;

use super::Result;
use crate::store::{RemoveEvent, Store};

#[derive(Debug, Default)]
pub struct PruneReport {
    pub events: Vec<RemoveEvent>,
    /// Bytes of unpacked layers freed.
    pub reclaimed: u64,
}

pub fn prune(store: &Store, all: bool) -> Result<PruneReport> {
    let locked = store.lock()?;
    let sizes: HashMap<String, u64> = locked
        .list()?
        .iter()
        .flat_map(|i| i.layers.iter().map(|l| (l.chain_id.clone(), l.size)))
        .collect();
    let mut report = PruneReport::default();
    for id in locked.prune_candidates(all)? {
        for e in locked.remove_image(&id, true)? {
            if let RemoveEvent::Deleted(d) = &e {
                report.reclaimed += sizes.get(d).copied().unwrap_or(0);
            }
            report.events.push(e);
        }
    }
    Ok(report)
}
