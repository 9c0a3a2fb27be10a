//! `RUN --network=default` on the default bridge, like a container started without
//! `--network`: a namespace of its own with an address, NAT to the outside and the host's
//! resolvers. As BuildKit does, the namespace is made once per build (a "sandbox" attached to
//! the bridge on the first RUN) and every RUN container of the build joins it: attaching a
//! namespace to the bridge and giving it back cost about 150 ms per RUN here (the default
//! bridge is created for its first container and deleted with its last, and a veth's deletion
//! waits for the kernel), while joining is free. The sandbox is detached when the build ends;
//! one left by a build that was killed is removed by the next build of the same root.

use std::sync::Mutex;

use rcompose_engine::build::RunNetwork;
use rcompose_engine::container::{Containers, CreateOptions, netns};
use rcompose_net::network::DEFAULT_NETWORK;
use rcompose_net::{AttachRequest, Networks};

/// Endpoint names of build sandboxes: `<prefix><pid>-<n>`.
const PREFIX: &str = "rcompose-build-";

/// Whether `id` names a build sandbox whose build process is gone.
fn owner_gone(id: &str) -> bool {
    id.strip_prefix(PREFIX)
        .and_then(|r| r.split('-').next())
        .and_then(|p| p.parse::<u32>().ok())
        .is_some_and(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists())
}

pub struct BridgeNetwork {
    nets: Networks,
    store: rcompose_engine::container::ContainerStore,
    /// The sandbox's id once it is attached.
    sandbox: Mutex<Option<String>>,
}

impl BridgeNetwork {
    pub fn open(containers: &Containers) -> Result<Self, String> {
        let nets = Networks::open(&containers.store.root, &containers.store.run_root)
            .map_err(|e| format!("opening the networks for RUN: {e}"))?;
        let me = BridgeNetwork {
            nets,
            store: containers.store.clone(),
            sandbox: Mutex::new(None),
        };
        me.remove_orphans();
        Ok(me)
    }

    /// Sandboxes of builds that are gone (killed before they could detach theirs): the
    /// endpoints on the bridge, and the namespaces of builds killed before they attached.
    fn remove_orphans(&self) {
        if let Ok(bridge) = self.nets.get(DEFAULT_NETWORK) {
            for id in bridge.endpoints.keys() {
                if owner_gone(id) {
                    self.detach(id);
                }
            }
        }
        // Where `ContainerStore::netns_path` puts namespaces.
        let dir = self.store.run_root.join("netns");
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if owner_gone(&name)
                && let Err(err) = netns::remove(&e.path())
            {
                tracing::warn!("build sandbox {name}: removing its namespace: {err}");
            }
        }
    }

    fn detach(&self, id: &str) {
        if let Err(e) = self.nets.detach_all(id) {
            tracing::warn!("build sandbox {id}: detaching it from the bridge: {e}");
        }
        if let Err(e) = netns::remove(&self.store.netns_path(id)) {
            tracing::warn!("build sandbox {id}: removing its namespace: {e}");
        }
    }

    /// The sandbox's id, attaching it to the default bridge the first time.
    fn sandbox(&self) -> Result<String, String> {
        let mut slot = self.sandbox.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(id) = &*slot {
            return Ok(id.clone());
        }
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let id = format!("{PREFIX}{}-{n}", std::process::id());
        let ns = self.store.netns_path(&id);
        netns::ensure(&ns).map_err(|e| format!("build sandbox {id}: {e}"))?;
        let attached = self.nets.attach(
            DEFAULT_NETWORK,
            AttachRequest {
                container_id: id.clone(),
                container_name: id.clone(),
                netns_path: ns.clone(),
                aliases: vec![],
                ip: None,
                ip6: None,
                mac: None,
            },
        );
        if let Err(e) = attached {
            let _ = netns::remove(&ns);
            return Err(format!(
                "attaching the build's network to the default bridge: {e}"
            ));
        }
        *slot = Some(id.clone());
        Ok(id)
    }
}

impl RunNetwork for BridgeNetwork {
    fn prepare(&self, opts: &mut CreateOptions) -> Result<(), String> {
        opts.host.network_mode = format!("container:{}", self.sandbox()?);
        Ok(())
    }

    fn start(&self, containers: &Containers, id: &str) -> Result<(), String> {
        containers.start(id, None).map_err(|e| e.to_string())
    }

    fn release(&self, _id: &str) {}
}

impl Drop for BridgeNetwork {
    fn drop(&mut self) {
        let slot = self.sandbox.get_mut().unwrap_or_else(|e| e.into_inner());
        if let Some(id) = slot.take() {
            self.detach(&id);
        }
    }
}
