//! `image pull`: resolve the manifest (choosing a platform from a list), download config
//! and layers in parallel into the verified blob store, unpack layers in order (diff_ids
//! checked), then register the image. Until that last step nothing is visible; verified
//! blobs of an interrupted pull stay and are reused by the next one.

use std::collections::VecDeque;
use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, mpsc};

use super::{Client, Endpoint, MANIFEST_ACCEPT, RegistryError, error_message};
use crate::image::platform::{PlatformSpec, select};
use crate::image::progress::{LayerStatus, Progress, ProgressFn, short_blob};
use crate::image::reference::{Reference, familiar_name};
use crate::image::{ImageError, Result};
use crate::store::Store;
use crate::store::digest::{chain_ids, digest_of};
use crate::store::manifest::{AnyManifest, Descriptor, Manifest, parse_any};

#[derive(Debug, Clone)]
pub struct PullOptions {
    pub platform: Option<PlatformSpec>,
    /// Concurrent layer downloads (docker's default is 3).
    pub parallel: usize,
}

impl Default for PullOptions {
    fn default() -> Self {
        PullOptions {
            platform: None,
            parallel: 3,
        }
    }
}

#[derive(Debug, Clone)]
pub struct PullResult {
    pub image_id: String,
    /// The full reference pulled (`docker.io/library/busybox:latest`).
    pub reference: String,
    /// Digest of what the reference resolved to (the list's digest for multi-platform).
    pub digest: String,
    /// The tag already pointed at this content.
    pub up_to_date: bool,
}

/// Compose's `pull_policy` values that concern the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullPolicy {
    /// Always pull (a registry error is an error).
    Always,
    /// Pull only when the image is not in the store (compose's default).
    Missing,
    /// Never pull; a missing image is an error.
    Never,
}

/// Make sure `reference` is in the store according to `policy`, and return it.
pub fn ensure_image(
    store: &Store,
    reference: &str,
    policy: PullPolicy,
    opts: &PullOptions,
    progress: ProgressFn<'_>,
) -> Result<crate::store::ImageRecord> {
    let full = Reference::parse(reference)?.with_default_tag().to_string();
    let present = store.resolve(&full);
    match (policy, present) {
        (PullPolicy::Missing, Ok(img)) => return Ok(img),
        (PullPolicy::Never, Ok(img)) => return Ok(img),
        (PullPolicy::Never, Err(e)) => return Err(e.into()),
        _ => {}
    }
    let client = Client::new()?;
    let res = pull(store, &client, &full, opts, progress)?;
    Ok(store.resolve(&res.image_id)?)
}

const MAX_MANIFEST: u64 = 8 * 1024 * 1024;

/// Pull `reference` into `store`.
pub fn pull(
    store: &Store,
    client: &Client,
    reference: &str,
    opts: &PullOptions,
    progress: ProgressFn<'_>,
) -> Result<PullResult> {
    let r = Reference::parse(reference)?.with_default_tag();
    let mut last_err = None;
    for ep in client.endpoints(&r.domain) {
        match pull_from(store, client, &ep, &r, opts, progress) {
            Ok(res) => return Ok(res),
            // A mirror that fails is skipped; the origin's error is the one reported.
            Err(e) => last_err = Some(e),
        }
    }
    Err(last_err.unwrap_or_else(|| ImageError::Invalid("no registry endpoint".into())))
}

fn pull_from(
    store: &Store,
    client: &Client,
    ep: &Endpoint,
    r: &Reference,
    opts: &PullOptions,
    progress: ProgressFn<'_>,
) -> Result<PullResult> {
    let repo = &r.path;
    let scope = format!("repository:{repo}:pull");
    let shown_repo = familiar_name(&r.name());
    let (top_bytes, top_type) = fetch_manifest(client, ep, &scope, repo, r.tag_or_digest())?;
    progress(Progress::Start(format!(
        "{}: Pulling from {}",
        r.tag_or_digest(),
        shown_repo
            .split_once('/')
            .filter(|_| r.domain != "docker.io")
            .map(|(_, p)| p.to_string())
            .unwrap_or_else(|| r.path.clone())
    )));
    let top_digest = digest_of(&top_bytes);
    if let Some(want) = &r.digest
        && want != &top_digest
    {
        return Err(ImageError::Store(
            crate::store::StoreError::DigestMismatch {
                what: format!("manifest of {r}"),
                expected: want.clone(),
                actual: top_digest,
            },
        ));
    }
    let (manifest_bytes, manifest) =
        match parse_any(&top_bytes, top_type.as_deref()).map_err(|m| proto(ep, m))? {
            AnyManifest::Image(m) => (top_bytes.clone(), m),
            AnyManifest::Index(idx) => {
                let chosen = select(&idx.manifests, opts.platform.as_ref())?;
                let (bytes, ty) = fetch_manifest(client, ep, &scope, repo, &chosen.digest)?;
                let got = digest_of(&bytes);
                if got != chosen.digest {
                    return Err(ImageError::Store(
                        crate::store::StoreError::DigestMismatch {
                            what: format!("platform manifest of {r}"),
                            expected: chosen.digest.clone(),
                            actual: got,
                        },
                    ));
                }
                match parse_any(&bytes, ty.as_deref()).map_err(|m| proto(ep, m))? {
                    AnyManifest::Image(m) => (bytes, m),
                    AnyManifest::Index(_) => {
                        return Err(proto(ep, "a manifest list points at another list".into()));
                    }
                }
            }
        };
    let tag = r.tagged();
    let repo_digest = format!("{}@{top_digest}", r.name());

    // Already here? Then only the tag/digest bookkeeping is left.
    let up_to_date = match tag.as_deref().map(|t| store.resolve(t)) {
        Some(Ok(img)) => img.manifest.config.digest == manifest.config.digest,
        _ => false,
    };
    // Download and unpack without the store lock (other pulls and container creation go on);
    // the lease keeps garbage collection away from this content until it is committed.
    let lease = store.lease()?;
    let config_digest = manifest.config.digest.clone();
    lease.add([
        config_digest.clone(),
        top_digest.clone(),
        digest_of(&manifest_bytes),
    ])?;
    lease.add(manifest.layers.iter().map(|l| l.digest.clone()))?;
    if manifest.config.size > super::super::MAX_METADATA_BYTES {
        return Err(proto(
            ep,
            format!(
                "the manifest declares an image config of {} bytes (at most {} MiB is accepted)",
                manifest.config.size,
                super::super::MAX_METADATA_BYTES >> 20
            ),
        ));
    }
    if !store.has_blob(&config_digest) {
        download(
            client,
            ep,
            &scope,
            store,
            &manifest.config,
            &AtomicBool::new(false),
            &|_| {},
        )?;
    }
    let config: oci_spec::image::ImageConfiguration =
        serde_json::from_slice(&store.read_blob(&config_digest)?)
            .map_err(|e| proto(ep, format!("invalid image config {config_digest}: {e}")))?;
    let diff_ids = config.rootfs().diff_ids().clone();
    if diff_ids.len() != manifest.layers.len() {
        return Err(proto(
            ep,
            format!(
                "manifest lists {} layers but the config has {} diff_ids",
                manifest.layers.len(),
                diff_ids.len()
            ),
        ));
    }
    lease.add(chain_ids(&diff_ids))?;
    fetch_layers(
        client, ep, &scope, store, &manifest, &diff_ids, opts, progress,
    )?;
    let manifest_digest = store.put_blob(&manifest_bytes)?;
    let tags: Vec<String> = tag.iter().cloned().collect();
    let image_id = store
        .lock()?
        .commit_image(&manifest_digest, &tags, Some(repo_digest))?;
    drop(lease);
    progress(Progress::Line(format!("Digest: {top_digest}")));
    let shown = familiar_name(&r.to_string());
    progress(Progress::Line(if up_to_date {
        format!("Status: Image is up to date for {shown}")
    } else {
        format!("Status: Downloaded newer image for {shown}")
    }));
    Ok(PullResult {
        image_id,
        reference: r.to_string(),
        digest: top_digest,
        up_to_date,
    })
}

fn proto(ep: &Endpoint, message: String) -> ImageError {
    ImageError::Registry(RegistryError::Protocol {
        registry: ep.registry.clone(),
        message,
    })
}

fn fetch_manifest(
    client: &Client,
    ep: &Endpoint,
    scope: &str,
    repo: &str,
    reference: &str,
) -> Result<(Vec<u8>, Option<String>)> {
    let url = format!("{}/v2/{repo}/manifests/{reference}", ep.base);
    let what = format!("{repo}:{reference}");
    let mut resp = client.send(ep, scope, &what, &|a| {
        let mut req = client.agent().get(&url).header("Accept", MANIFEST_ACCEPT);
        if let Some(a) = a {
            req = req.header("Authorization", a);
        }
        req.call()
    })?;
    match resp.status().as_u16() {
        200 => {}
        404 => {
            return Err(RegistryError::NotFound {
                registry: ep.registry.clone(),
                what: format!(
                    "manifest for {}",
                    familiar_name(&format!("{}/{what}", ep.registry))
                ),
                message: error_message(resp),
            }
            .into());
        }
        s => {
            return Err(RegistryError::Http {
                registry: ep.registry.clone(),
                status: s,
                what: format!("manifest {what}"),
                message: error_message(resp),
            }
            .into());
        }
    }
    let ty = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(|s| s.split(';').next().unwrap_or(s).trim().to_string());
    let bytes = resp
        .body_mut()
        .with_config()
        .limit(MAX_MANIFEST)
        .read_to_vec()
        .map_err(|e| proto(ep, format!("reading manifest {what}: {e}")))?;
    Ok((bytes, ty))
}

/// Counts bytes, reports progress, enforces the declared size and honours cancellation.
struct Metered<'a, R> {
    inner: R,
    done: u64,
    total: u64,
    reported: u64,
    cancel: &'a AtomicBool,
    report: &'a dyn Fn(u64),
}

impl<R: Read> Read for Metered<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.cancel.load(Ordering::Relaxed) {
            return Err(io::Error::other("cancelled"));
        }
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        if self.done > self.total {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "the registry sent more than the declared {} bytes",
                    self.total
                ),
            ));
        }
        if n == 0 && self.done < self.total {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("blob truncated: got {} of {} bytes", self.done, self.total),
            ));
        }
        if self.done - self.reported >= 512 * 1024 || self.done == self.total {
            self.reported = self.done;
            (self.report)(self.done);
        }
        Ok(n)
    }
}

/// Download one blob into the store, verified against its descriptor.
fn download(
    client: &Client,
    ep: &Endpoint,
    scope: &str,
    store: &Store,
    desc: &Descriptor,
    cancel: &AtomicBool,
    report: &dyn Fn(u64),
) -> Result<()> {
    let url = format!("{}/v2/{}/blobs/{}", ep.base, scope_repo(scope), desc.digest);
    let resp = client.send(ep, scope, &desc.digest, &|a| {
        let mut req = client.agent().get(&url);
        if let Some(a) = a {
            req = req.header("Authorization", a);
        }
        req.call()
    })?;
    match resp.status().as_u16() {
        200 => {}
        404 => {
            return Err(RegistryError::NotFound {
                registry: ep.registry.clone(),
                what: format!("blob {}", desc.digest),
                message: error_message(resp),
            }
            .into());
        }
        s => {
            return Err(RegistryError::Http {
                registry: ep.registry.clone(),
                status: s,
                what: format!("blob {}", desc.digest),
                message: error_message(resp),
            }
            .into());
        }
    }
    let reader = Metered {
        inner: resp.into_body().into_reader(),
        done: 0,
        total: desc.size,
        reported: 0,
        cancel,
        report,
    };
    store
        .ingest_blob(reader, Some(&desc.digest))
        .map_err(|e| match e {
            crate::store::StoreError::Io { source, .. } => proto(
                ep,
                format!(
                    "downloading blob {}: {source}; nothing was stored",
                    desc.digest
                ),
            ),
            other => other.into(),
        })?;
    Ok(())
}

fn scope_repo(scope: &str) -> &str {
    scope
        .strip_prefix("repository:")
        .and_then(|s| s.rsplit_once(':'))
        .map(|(r, _)| r)
        .unwrap_or(scope)
}

/// Download missing layer blobs with `opts.parallel` threads and unpack them in order as
/// soon as each one and all below it are present.
#[allow(clippy::too_many_arguments)]
fn fetch_layers(
    client: &Client,
    ep: &Endpoint,
    scope: &str,
    store: &Store,
    manifest: &Manifest,
    diff_ids: &[String],
    opts: &PullOptions,
    progress: ProgressFn<'_>,
) -> Result<()> {
    let chains = chain_ids(diff_ids);
    let n = manifest.layers.len();
    let mut ready = vec![false; n];
    let mut queue = VecDeque::new();
    for (i, l) in manifest.layers.iter().enumerate() {
        let id = short_blob(&l.digest);
        if store.has_layer(&chains[i]) {
            progress(Progress::Layer {
                id,
                status: LayerStatus::AlreadyExists,
            });
            ready[i] = true;
        } else if store.has_blob(&l.digest) {
            ready[i] = true;
        } else {
            progress(Progress::Layer {
                id,
                status: LayerStatus::Waiting,
            });
            queue.push_back(i);
        }
    }
    let queue = Mutex::new(queue);
    let cancel = AtomicBool::new(false);
    let (tx, rx) = mpsc::channel::<(usize, Result<()>)>();
    let workers = opts.parallel.clamp(1, 8).min(n.max(1));
    std::thread::scope(|s| -> Result<()> {
        for _ in 0..workers {
            let tx = tx.clone();
            let (queue, cancel) = (&queue, &cancel);
            s.spawn(move || {
                loop {
                    let next = queue.lock().ok().and_then(|mut q| q.pop_front());
                    let Some(i) = next else { break };
                    if cancel.load(Ordering::Relaxed) {
                        break;
                    }
                    let desc = &manifest.layers[i];
                    let id = short_blob(&desc.digest);
                    let report = |done: u64| {
                        progress(Progress::Layer {
                            id: id.clone(),
                            status: LayerStatus::Downloading(done, desc.size),
                        })
                    };
                    let res = download(client, ep, scope, store, desc, cancel, &report);
                    if res.is_ok() {
                        progress(Progress::Layer {
                            id: id.clone(),
                            status: LayerStatus::DownloadComplete,
                        });
                    }
                    if tx.send((i, res)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        let mut next = 0;
        let fail = |e: ImageError| {
            cancel.store(true, Ordering::Relaxed);
            Err(e)
        };
        loop {
            while next < n && ready[next] {
                let desc = &manifest.layers[next];
                if !store.has_layer(&chains[next]) {
                    let id = short_blob(&desc.digest);
                    progress(Progress::Layer {
                        id: id.clone(),
                        status: LayerStatus::Extracting,
                    });
                    let parent = (next > 0).then(|| chains[next - 1].as_str());
                    if let Err(e) = store.ensure_layer(&desc.digest, Some(&diff_ids[next]), parent)
                    {
                        return fail(e.into());
                    }
                    progress(Progress::Layer {
                        id,
                        status: LayerStatus::PullComplete,
                    });
                }
                next += 1;
            }
            if next >= n {
                return Ok(());
            }
            match rx.recv() {
                Ok((i, Ok(()))) => ready[i] = true,
                Ok((_, Err(e))) => return fail(e),
                Err(_) => {
                    return fail(proto(ep, "download workers stopped unexpectedly".into()));
                }
            }
        }
    })
}
