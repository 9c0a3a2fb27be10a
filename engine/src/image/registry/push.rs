//! `image push`: upload config and layer blobs the registry lacks (HEAD first), then the
//! manifest under the tag; record the resulting repo digest.

use std::io::{self, Read};

use super::{Client, Endpoint, RegistryError, error_message};
use crate::image::progress::{LayerStatus, Progress, ProgressFn, short_blob};
use crate::image::reference::Reference;
use crate::image::{ImageError, Result};
use crate::store::Store;
use crate::store::manifest::{Descriptor, OCI_MANIFEST};

#[derive(Debug, Clone)]
pub struct PushResult {
    pub tag: String,
    pub digest: String,
    pub size: u64,
}

/// Push the local image `name` (a tagged reference) to its registry.
pub fn push(
    store: &Store,
    client: &Client,
    name: &str,
    progress: ProgressFn<'_>,
) -> Result<PushResult> {
    let r = Reference::parse(name)?.with_default_tag();
    if r.digest.is_some() {
        return Err(ImageError::Invalid(format!(
            "cannot push a digest reference ({name}); push a tag"
        )));
    }
    let img = store.resolve(&r.tagged().unwrap_or_default())?;
    // Keep the blobs while uploading, even if the image is removed meanwhile.
    let lease = store.lease()?;
    lease.add(img.manifest.layers.iter().map(|l| l.digest.clone()))?;
    lease.add([
        img.manifest.config.digest.clone(),
        img.manifest_digest.clone(),
    ])?;
    let ep = client.endpoint(&r.domain);
    let repo = r.path.clone();
    let scope = format!("repository:{repo}:pull,push");
    progress(Progress::Start(format!(
        "The push refers to repository [{}]",
        r.name()
    )));
    for l in img.manifest.layers.iter().rev() {
        progress(Progress::Layer {
            id: short_blob(&l.digest),
            status: LayerStatus::Preparing,
        });
    }
    let mut blobs: Vec<&Descriptor> = img.manifest.layers.iter().collect();
    blobs.push(&img.manifest.config);
    for desc in blobs {
        let id = short_blob(&desc.digest);
        let is_layer = desc.digest != img.manifest.config.digest;
        if blob_exists(client, &ep, &scope, &repo, &desc.digest)? {
            if is_layer {
                progress(Progress::Layer {
                    id,
                    status: LayerStatus::Mounted,
                });
            }
            continue;
        }
        upload_blob(client, &ep, &scope, &repo, store, desc, &|done| {
            if is_layer {
                progress(Progress::Layer {
                    id: id.clone(),
                    status: LayerStatus::Pushing(done, desc.size),
                })
            }
        })?;
        if is_layer {
            progress(Progress::Layer {
                id,
                status: LayerStatus::Pushed,
            });
        }
    }
    let manifest_bytes = store.read_blob(&img.manifest_digest)?;
    let media = img
        .manifest
        .media_type
        .clone()
        .unwrap_or_else(|| OCI_MANIFEST.into());
    let tag = r.tag.clone().unwrap_or_else(|| "latest".into());
    let url = format!("{}/v2/{repo}/manifests/{tag}", ep.base);
    let resp = client.send(&ep, &scope, &format!("{repo}:{tag}"), &|a| {
        let mut req = client.agent().put(&url).header("Content-Type", &media);
        if let Some(a) = a {
            req = req.header("Authorization", a);
        }
        req.send(&manifest_bytes[..])
    })?;
    if !resp.status().is_success() {
        let status = resp.status().as_u16();
        return Err(RegistryError::Http {
            registry: ep.registry.clone(),
            status,
            what: format!("manifest {repo}:{tag}"),
            message: error_message(resp),
        }
        .into());
    }
    let digest = img.manifest_digest.clone();
    let locked = store.lock()?;
    // The image may have been removed while pushing; the registry has it all the same.
    match locked.add_repo_digest(&img.id, &format!("{}@{digest}", r.name())) {
        Ok(()) | Err(crate::store::StoreError::NoSuchImage(_)) => {}
        Err(e) => return Err(e.into()),
    }
    drop(locked);
    drop(lease);
    let size = manifest_bytes.len() as u64;
    progress(Progress::Line(format!(
        "{tag}: digest: {digest} size: {size}"
    )));
    Ok(PushResult { tag, digest, size })
}

fn blob_exists(
    client: &Client,
    ep: &Endpoint,
    scope: &str,
    repo: &str,
    digest: &str,
) -> Result<bool> {
    let url = format!("{}/v2/{repo}/blobs/{digest}", ep.base);
    let resp = client.send(ep, scope, digest, &|a| {
        let mut req = client.agent().head(&url);
        if let Some(a) = a {
            req = req.header("Authorization", a);
        }
        req.call()
    })?;
    Ok(resp.status().is_success())
}

struct Counting<'a, R> {
    inner: R,
    done: u64,
    reported: u64,
    report: &'a dyn Fn(u64),
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        if self.done - self.reported >= 512 * 1024 || n == 0 {
            self.reported = self.done;
            (self.report)(self.done);
        }
        Ok(n)
    }
}

fn upload_blob(
    client: &Client,
    ep: &Endpoint,
    scope: &str,
    repo: &str,
    store: &Store,
    desc: &Descriptor,
    report: &dyn Fn(u64),
) -> Result<()> {
    let start = format!("{}/v2/{repo}/blobs/uploads/", ep.base);
    let resp = client.send(ep, scope, "blob upload", &|a| {
        let mut req = client.agent().post(&start);
        if let Some(a) = a {
            req = req.header("Authorization", a);
        }
        req.send_empty()
    })?;
    if resp.status() != 202 {
        let status = resp.status().as_u16();
        return Err(RegistryError::Http {
            registry: ep.registry.clone(),
            status,
            what: format!("starting the upload of {}", desc.digest),
            message: error_message(resp),
        }
        .into());
    }
    let location = resp
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .ok_or_else(|| RegistryError::Protocol {
            registry: ep.registry.clone(),
            message: "upload started without a Location".into(),
        })?
        .to_string();
    let location = if location.starts_with('/') {
        format!("{}{location}", ep.base)
    } else {
        location
    };
    let sep = if location.contains('?') { '&' } else { '?' };
    let url = format!(
        "{location}{sep}digest={}",
        super::percent_encode(&desc.digest)
    );
    let resp = client.send(ep, scope, &desc.digest, &|a| {
        let file = store
            .open_blob(&desc.digest)
            .map_err(|e| ureq::Error::Io(io::Error::other(e.to_string())))?;
        let mut req = client
            .agent()
            .put(&url)
            .header("Content-Type", "application/octet-stream")
            .header("Content-Length", desc.size.to_string());
        if let Some(a) = a {
            req = req.header("Authorization", a);
        }
        let reader = Counting {
            inner: io::BufReader::new(file),
            done: 0,
            reported: 0,
            report,
        };
        let mut reader = reader;
        req.send(ureq::SendBody::from_reader(&mut reader))
    })?;
    if resp.status() != 201 {
        let status = resp.status().as_u16();
        return Err(RegistryError::Http {
            registry: ep.registry.clone(),
            status,
            what: format!("uploading {}", desc.digest),
            message: error_message(resp),
        }
        .into());
    }
    Ok(())
}
