//! A service's `build:` section → the engine's builder: context, dockerfile or
//! dockerfile_inline, args (a key without a value takes it from the environment), target,
//! additional_contexts, labels, tags, no_cache, pull, secrets, network. The image is tagged
//! with the service's image name and `build.tags`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use rcompose_compose::execute::BackendError;
use rcompose_compose::model::{Project, Service};
use rcompose_compose::ops::build::BuildFlags;
use rcompose_engine::build::{BuildEvent, BuildOptions, Hooks, build};
use rcompose_engine::container::Containers;

pub use super::build_net::BridgeNetwork;
use rcompose_engine::image::registry::Client;
use rcompose_engine::image::registry::pull::{PullOptions, pull};
use rcompose_engine::store::Store;

/// Pulls a base image through the registry client (a FROM image that is missing, or every
/// one with `--pull`), for the builder.
pub fn puller(store: &Store) -> impl Fn(&str) -> Result<(), String> + '_ {
    move |r: &str| {
        let client = Client::new().map_err(|e| e.to_string())?;
        pull(store, &client, r, &PullOptions::default(), &|_| {})
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

/// The engine's build options for `svc`.
pub fn options(
    project: &Project,
    svc: &Service,
    flags: &BuildFlags,
) -> Result<BuildOptions, String> {
    let b = svc
        .build
        .as_ref()
        .ok_or_else(|| format!("service \"{}\" has no build section", svc.name))?;
    let context = PathBuf::from(b.context.as_deref().unwrap_or("."));
    let mut build_args = BTreeMap::new();
    for (k, v) in &b.args {
        match v.clone().or_else(|| std::env::var(k).ok()) {
            Some(v) => {
                build_args.insert(k.clone(), v);
            }
            None => continue,
        }
    }
    build_args.extend(flags.build_args.clone());
    let mut tags = vec![svc.image_name(&project.name)];
    tags.extend(b.tags.iter().cloned());
    let mut secrets = BTreeMap::new();
    for s in &b.secrets {
        let def = project
            .secrets
            .get(&s.source)
            .ok_or_else(|| format!("build secret {} is not defined under secrets:", s.source))?;
        let file = def.file.as_ref().ok_or_else(|| {
            format!(
                "build secret {}: only file secrets can be used in builds",
                s.source
            )
        })?;
        secrets.insert(s.source.clone(), PathBuf::from(file));
    }
    Ok(BuildOptions {
        dockerfile: (b.dockerfile_inline.is_none())
            .then(|| b.dockerfile.as_ref().map(|d| context.join(d)))
            .flatten(),
        dockerfile_text: b.dockerfile_inline.clone(),
        context,
        build_args,
        target: b.target.clone(),
        tags,
        labels: b.labels.clone(),
        contexts: b.additional_contexts.clone(),
        secrets,
        no_cache: b.no_cache || flags.no_cache,
        pull: b.pull || flags.pull,
        network: b.network.clone(),
        shm_size: b.shm_size.map_or(0, |s| s.0),
    })
}

/// Builds the service's image; returns its id.
pub fn build_service(
    containers: &Containers,
    project: &Project,
    svc: &Service,
    flags: &BuildFlags,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<String, BackendError> {
    let opts = options(project, svc, flags).map_err(BackendError)?;
    let mut n = 0;
    let quiet = flags.quiet;
    let mut on_event = |e: BuildEvent| {
        if quiet {
            return;
        }
        match e {
            BuildEvent::Step { stage, text, .. } => {
                n += 1;
                progress(&format!("#{n} [{stage}] {text}"));
            }
            BuildEvent::Cached => progress(&format!("#{n} CACHED")),
            BuildEvent::Output(l) => progress(&format!("#{n} {l}")),
            BuildEvent::Warning(w) => progress(&format!("WARNING: {w}")),
        }
    };
    let store = Store::open(&containers.store.root).map_err(BackendError::new)?;
    let pull = puller(&store);
    let net = BridgeNetwork::open(containers).map_err(BackendError)?;
    let hooks = Hooks {
        pull: Some(&pull),
        network: Some(&net),
    };
    let res = build(containers, &opts, hooks, &mut on_event).map_err(BackendError::new)?;
    Ok(res.id)
}
