//! `rcompose build` and the builds `up` needs: every selected service with a `build:`
//! section is built through [`Backend::build_image`], independent services in parallel (one
//! thread each: the work is the engine's). The image is the service's `image:`, else
//! `<project>-<service>`.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::execute::{Backend, BackendError};
use crate::model::Project;

/// `rcompose build`'s flags (also what `up --build` passes).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BuildFlags {
    pub no_cache: bool,
    pub pull: bool,
    /// No per-step progress.
    pub quiet: bool,
    /// `--build-arg`: override the services' `args`.
    pub build_args: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BuildError {
    #[error("no such service: {0}")]
    NoSuchService(String),
    #[error("building service \"{service}\": {source}")]
    Failed {
        service: String,
        source: BackendError,
    },
}

/// Services among `services` (all when empty) that have a `build:` section, in name order.
pub fn buildable(project: &Project, services: &[String]) -> Result<Vec<String>, BuildError> {
    for s in services {
        if !project.services.contains_key(s) {
            return Err(BuildError::NoSuchService(s.clone()));
        }
    }
    Ok(project
        .services
        .iter()
        .filter(|(name, svc)| {
            svc.build.is_some() && (services.is_empty() || services.contains(name))
        })
        .map(|(name, _)| name.clone())
        .collect())
}

/// Builds `services` in parallel; returns each service's image id. `progress(service, line)`
/// gets the build's progress lines. Every build runs to its end; the first failure (in
/// name order) is returned.
pub fn build(
    project: &Project,
    backend: &dyn Backend,
    services: &[String],
    flags: &BuildFlags,
    progress: &(dyn Fn(&str, &str) + Sync),
) -> Result<BTreeMap<String, String>, BuildError> {
    let results = Mutex::new(BTreeMap::new());
    std::thread::scope(|scope| {
        for name in services {
            let results = &results;
            scope.spawn(move || {
                let svc = &project.services[name];
                let res = backend.build_image(project, svc, flags, &|line| progress(name, line));
                results
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(name.clone(), res);
            });
        }
    });
    let mut ids = BTreeMap::new();
    for (service, res) in results.into_inner().unwrap_or_else(|e| e.into_inner()) {
        match res {
            Ok(id) => {
                ids.insert(service, id);
            }
            Err(source) => return Err(BuildError::Failed { service, source }),
        }
    }
    Ok(ids)
}

/// Builds those of `services` that have a `build:` section and whose image is missing (or
/// all of them with `always`), as `up` and `run` do before creating anything.
pub fn build_missing(
    project: &Project,
    backend: &dyn Backend,
    services: &[String],
    always: bool,
    flags: &BuildFlags,
    progress: &(dyn Fn(&str, &str) + Sync),
) -> Result<(), BuildError> {
    let mut todo = vec![];
    for name in buildable(project, services)?
        .into_iter()
        .filter(|n| services.contains(n))
    {
        let svc = &project.services[&name];
        let missing = backend
            .image_id(&svc.image_name(&project.name))
            .map_err(|source| BuildError::Failed {
                service: name.clone(),
                source,
            })?
            .is_none();
        if always || missing || svc.pull_policy.as_deref() == Some("build") {
            todo.push(name);
        }
    }
    if !todo.is_empty() {
        build(project, backend, &todo, flags, progress)?;
    }
    Ok(())
}
