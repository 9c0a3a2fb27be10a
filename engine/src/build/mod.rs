//! The image builder (`rcompose image build`, compose `build:`): a Dockerfile is parsed
//! (`dockerfile`), its stages resolved and run step by step (`exec`): metadata steps change
//! the image config, `COPY`/`ADD` produce a layer from the context (`context`, `.dockerignore`
//! rules in `ignore`), `RUN` runs in a container of the engine and its filesystem diff
//! becomes a layer. Every step is cached (`cache`) by its parent, its expanded instruction
//! and the content of the files it reads. Progress goes out as [`BuildEvent`]s.

pub mod copy;
pub mod dockerfile;
mod exec;
pub mod expand;
mod heredoc;
pub mod ignore;
pub mod run;
pub mod state;
mod steps;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::container::Containers;

/// Why a build failed. Errors in a step name the Dockerfile and the line.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("{file}:{line}: {message}")]
    Parse {
        file: String,
        line: usize,
        message: String,
    },
    #[error("{file}:{line}: {instruction}: {message}")]
    Step {
        file: String,
        line: usize,
        instruction: String,
        message: String,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Container(#[from] crate::container::ContainerError),
}

pub(crate) fn io_err(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> BuildError + '_ {
    move |source| BuildError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What to build (docker build's flags).
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// The context directory.
    pub context: PathBuf,
    /// `-f`: the Dockerfile (default `<context>/Dockerfile`); may lie outside the context.
    pub dockerfile: Option<PathBuf>,
    /// The Dockerfile's text itself (`-f -`, compose's `dockerfile_inline`).
    pub dockerfile_text: Option<String>,
    pub build_args: BTreeMap<String, String>,
    pub target: Option<String>,
    /// Full or short tags (`app`, `app:1`, `reg/app:x`).
    pub tags: Vec<String>,
    pub labels: BTreeMap<String, String>,
    /// `--build-context name=path|docker-image://ref`.
    pub contexts: BTreeMap<String, String>,
    /// `--secret id=…,src=…`.
    pub secrets: BTreeMap<String, PathBuf>,
    pub no_cache: bool,
    /// Pull every base image again.
    pub pull: bool,
    /// The default network of RUN steps (`default`, `none`, `host`).
    pub network: Option<String>,
    /// Bytes of /dev/shm in RUN steps (0: the engine's default, 64 MiB as docker).
    pub shm_size: i64,
}

/// Progress of a build, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum BuildEvent {
    /// A step starts (`FROM` too).
    Step {
        stage: String,
        line: usize,
        text: String,
    },
    /// The step just announced came from the cache.
    Cached,
    /// A line of `RUN` output.
    Output(String),
    Warning(String),
}

/// How a build ended.
#[derive(Debug, Clone)]
pub struct BuildResult {
    pub id: String,
    pub tags: Vec<String>,
    /// Steps that produce layers (RUN, COPY, ADD) and how many came from the cache.
    pub cacheable_steps: usize,
    pub cached_steps: usize,
}

/// Pulls an image reference into the store (the CLI's registry client).
pub type PullFn<'a> = &'a dyn Fn(&str) -> Result<(), String>;

/// The network of `RUN --network=default`: a container's normal path (the default bridge,
/// with NAT and DNS, as docker gives RUN). The engine wires no networks, so the caller's
/// network code comes in through this; without it, `default` is the host's network.
pub trait RunNetwork {
    /// Sets up the create options of a RUN container for the default network.
    fn prepare(&self, opts: &mut crate::container::CreateOptions) -> Result<(), String>;
    /// Starts the created container with its networking.
    fn start(&self, containers: &Containers, id: &str) -> Result<(), String>;
    /// Gives back what the container held (after it is gone; errors are only logged).
    fn release(&self, id: &str);
}

/// What the builder asks of its caller: pulling base images, and RUN's default network.
#[derive(Default, Clone, Copy)]
pub struct Hooks<'a> {
    pub pull: Option<PullFn<'a>>,
    pub network: Option<&'a dyn RunNetwork>,
}

fn read_dockerfile(opts: &BuildOptions) -> Result<(String, String), BuildError> {
    if let Some(t) = &opts.dockerfile_text {
        return Ok((t.clone(), "Dockerfile".into()));
    }
    let path = match &opts.dockerfile {
        Some(p) if p.is_absolute() => p.clone(),
        Some(p) => opts.context.join(p),
        None => opts.context.join("Dockerfile"),
    };
    let text = std::fs::read_to_string(&path).map_err(|e| {
        BuildError::Invalid(format!("reading the Dockerfile {}: {e}", path.display()))
    })?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "Dockerfile".into());
    Ok((text, name))
}

/// Builds the image `opts` describes and tags it. RUN steps run containers of
/// `containers` (whose `exe` must be the rcompose binary, for the monitor).
pub fn build(
    containers: &Containers,
    opts: &BuildOptions,
    hooks: Hooks<'_>,
    events: &mut dyn FnMut(BuildEvent),
) -> Result<BuildResult, BuildError> {
    let context = opts.context.canonicalize().map_err(|e| {
        BuildError::Invalid(format!("build context {}: {e}", opts.context.display()))
    })?;
    if !context.is_dir() {
        return Err(BuildError::Invalid(format!(
            "build context {} is not a directory",
            context.display()
        )));
    }
    let (text, file) = read_dockerfile(opts)?;
    let df = dockerfile::parse(&text, &file)?;
    let ignore_text = std::fs::read_to_string(context.join(".dockerignore")).unwrap_or_default();
    let ignore = ignore::Ignore::parse(&ignore_text)
        .map_err(|e| BuildError::Invalid(format!(".dockerignore: {e}")))?;
    let tags = opts
        .tags
        .iter()
        .map(|t| crate::image::full_tag(t).map_err(|e| BuildError::Invalid(format!("-t {t}: {e}"))))
        .collect::<Result<Vec<_>, _>>()?;
    run::remove_orphans(containers);
    let store = crate::store::Store::open(&containers.store.root)?;
    let tmp = store.root().join("builder/tmp");
    sweep_tmp(&tmp);
    let mut opts2 = opts.clone();
    opts2.context = context;
    for (k, v) in opts2.contexts.iter_mut() {
        if !v.starts_with("docker-image://") {
            let p = PathBuf::from(&*v);
            let c = p
                .canonicalize()
                .map_err(|e| BuildError::Invalid(format!("--build-context {k}={v}: {e}")))?;
            *v = c.display().to_string();
        }
    }
    let mut b = exec::Builder {
        containers,
        store: store.clone(),
        lease: Default::default(),
        opts: &opts2,
        df,
        file,
        ignore,
        pull: hooks.pull,
        network: hooks.network,
        events,
        done: BTreeMap::new(),
        keys: BTreeMap::new(),
        global: Default::default(),
        used_args: Default::default(),
        steps_cached: 0,
        cacheable: 0,
        tmp,
    };
    b.init_globals()?;
    let target =
        match &opts.target {
            Some(t) => b.df.stage(t).map(|s| s.index).ok_or_else(|| {
                BuildError::Invalid(format!("target stage {t:?} could not be found"))
            })?,
            None => b.df.stages.len() - 1,
        };
    let mut last = None;
    for i in b.needed(target)? {
        let stage = b.df.stages[i].clone();
        let (s, key) = b.stage(&stage)?;
        b.done.insert(i, s.clone());
        b.keys.insert(i, key);
        last = Some(s);
    }
    for k in opts.build_args.keys() {
        if !b.used_args.contains(k) && !exec::PROXY_ARGS.contains(&k.as_str()) {
            (b.events)(BuildEvent::Warning(format!(
                "build argument {k} was not consumed by any ARG"
            )));
        }
    }
    let mut state = last.expect("the target stage was built");
    for (k, v) in &opts.labels {
        state.set_label(k, v);
    }
    crate::container::proc::trace_phase("build.steps-done");
    let id = commit(&store, &state, &tags)?;
    crate::container::proc::trace_phase("build.committed");
    let cacheable = b.cacheable;
    Ok(BuildResult {
        id,
        tags,
        cacheable_steps: cacheable,
        cached_steps: b.steps_cached,
    })
}

/// Removes what builds that are gone (killed) left in `builder/tmp`: layer tars, scripts,
/// downloads, and the read-only overlay of a `COPY --from` with its mount. Every entry is a
/// `unique_name` carrying its builder's pid; entries of live builds (in parallel) are theirs.
fn sweep_tmp(tmp: &Path) {
    use crate::store::fsutil;
    for e in std::fs::read_dir(tmp).into_iter().flatten().flatten() {
        if fsutil::owner_alive(&e.file_name().to_string_lossy()) {
            continue;
        }
        let rootfs = crate::rootfs::Rootfs::new(e.path());
        if rootfs.is_mounted() {
            let _ = rootfs.unmount();
            // Never delete through a mount that would not go: it shows image layers.
            if rootfs.is_mounted() {
                continue;
            }
        }
        let _ = fsutil::remove_inside(tmp, &e.path());
    }
}

/// Writes the config and manifest of `state` and registers the image under `tags`.
fn commit(
    store: &crate::store::Store,
    state: &state::State,
    tags: &[String],
) -> Result<String, BuildError> {
    use crate::store::manifest::{Descriptor, Manifest};
    let config =
        serde_json::to_vec(&state.config).map_err(|e| BuildError::Invalid(e.to_string()))?;
    let config_digest = crate::store::digest::digest_of(&config);
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some("application/vnd.oci.image.manifest.v1+json".into()),
        config: Descriptor {
            media_type: "application/vnd.oci.image.config.v1+json".into(),
            digest: config_digest.clone(),
            size: config.len() as u64,
            platform: None,
            annotations: None,
        },
        layers: state
            .layers
            .iter()
            .map(|l| Descriptor {
                media_type: l.media_type.clone(),
                digest: l.blob.clone(),
                size: l.blob_size,
                platform: None,
                annotations: None,
            })
            .collect(),
    };
    let bytes = serde_json::to_vec(&manifest).map_err(|e| BuildError::Invalid(e.to_string()))?;
    // A rebuild that changed nothing finds its image and tags in place: no lock, no writes.
    let digest = crate::store::digest::digest_of(&bytes);
    if store.has_blob(&digest)
        && store.has_blob(&config_digest)
        && store
            .resolve_id(&config_digest)
            .is_ok_and(|id| id == config_digest)
        && tags
            .iter()
            .all(|t| store.resolve_id(t).is_ok_and(|id| id == config_digest))
    {
        return Ok(config_digest);
    }
    let locked = store.lock()?;
    locked.put_blob(&config)?;
    locked.put_blob(&bytes)?;
    Ok(locked.commit_image(&digest, tags, None)?)
}
