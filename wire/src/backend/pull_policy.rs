//! Which service images a command pulls or pushes, by compose v2's rules: `rcompose pull`
//! (`pull_policy` or `--policy`, its skip texts), `rcompose push` (only what the project
//! builds) and the pulls `up`/`create`/`run` do before their plan runs (`--pull`,
//! `pull_policy`, refreshed by age). The pulls themselves are [`super::pull::pull_jobs`].

use std::collections::BTreeSet;

use rcompose_compose::model::{Project, Service};
use rcompose_engine::image::platform::PlatformSpec;
use rcompose_engine::store::Store;

use super::pull::{
    Job, Policy, PullError, PullTimes, Result, full_reference, matches_platform, now, platform_of,
    pull_cmd_skip, up_needs_pull,
};

/// `rcompose pull`: the jobs for the services `names` (`over` is `--policy`, overriding the
/// files' `pull_policy`), one per reference. Each service left alone is reported through
/// `on_skip` with compose's reason, as it is decided.
pub fn pull_cmd_jobs(
    store: &Store,
    project: &Project,
    names: &[String],
    over: Option<Policy>,
    ignore_buildable: bool,
    on_skip: &dyn Fn(&str, &str),
) -> Result<Vec<Job>> {
    let mut jobs: Vec<Job> = vec![];
    let mut seen = BTreeSet::new();
    for name in names {
        let svc = &project.services[name];
        let explicit = match (over, svc.pull_policy.as_deref()) {
            (Some(p), _) => Some(p),
            (None, None | Some("")) => None,
            (None, Some(_)) => Some(Policy::of(svc, None)?),
        };
        let Some(image) = svc.image.as_deref() else {
            on_skip(name, "No image to be pulled");
            continue;
        };
        let reference = full_reference(svc, image)?;
        let platform = platform_of(svc)?;
        let present = store
            .resolve(&reference)
            .is_ok_and(|img| platform.as_ref().is_none_or(|p| matches_platform(&img, p)));
        if let Some(why) = pull_cmd_skip(svc, explicit, present, ignore_buildable) {
            on_skip(name, why);
            continue;
        }
        if !seen.insert(reference.clone()) {
            continue;
        }
        jobs.push(Job {
            service: name.clone(),
            image: image.to_string(),
            reference,
            platform,
        });
    }
    Ok(jobs)
}

/// `rcompose push`: as compose v2, only the images this project builds (`image:` and the
/// build's `tags`), each reference once; the other services go to `on_skip`.
pub fn push_cmd_jobs(
    project: &Project,
    names: &[String],
    on_skip: &dyn Fn(&str),
) -> Result<Vec<Job>> {
    let mut jobs = vec![];
    let mut seen = BTreeSet::new();
    for name in names {
        let svc = &project.services[name];
        let (Some(image), Some(build)) = (svc.image.as_deref(), svc.build.as_ref()) else {
            on_skip(name);
            continue;
        };
        for tag in std::iter::once(image).chain(build.tags.iter().map(String::as_str)) {
            let reference = full_reference(svc, tag)?;
            if seen.insert(reference.clone()) {
                jobs.push(Job {
                    service: name.clone(),
                    image: tag.to_string(),
                    reference,
                    platform: None,
                });
            }
        }
    }
    Ok(jobs)
}

/// `up`/`create`/`run`: the pulls the policies ask for (`flag` is `--pull`, which overrides
/// every service's `pull_policy`). A missing image with policy `never` (or `build`, which
/// cannot build yet) is an error naming the service.
pub fn up_jobs(
    root: &std::path::Path,
    project: &Project,
    names: &[String],
    flag: Option<&str>,
) -> Result<Vec<Job>> {
    let over = flag
        .map(Policy::parse_flag)
        .transpose()
        .map_err(PullError::Invalid)?;
    let store = Store::open(root)?;
    let times = PullTimes::new(root);
    let mut jobs: Vec<Job> = vec![];
    let mut seen = BTreeSet::new();
    for name in names {
        let svc = &project.services[name];
        let Some(image) = svc.image.as_deref() else {
            continue;
        };
        let policy = Policy::of(svc, over)?;
        let reference = full_reference(svc, image)?;
        let platform = platform_of(svc)?;
        let stored = store.resolve(&reference).ok();
        let present = stored
            .as_ref()
            .is_some_and(|img| platform.as_ref().is_none_or(|p| matches_platform(img, p)));
        // Built by `up` itself (compose::ops::up::prepare), never pulled.
        if matches!(policy, Policy::Build) && svc.build.is_some() {
            continue;
        }
        if !present && matches!(policy, Policy::Never | Policy::Build) {
            return Err(PullError::Invalid(never_message(
                svc,
                image,
                policy,
                flag,
                stored.is_some(),
                &platform,
            )));
        }
        // Only the refresh policies look at when the image was last pulled.
        let last = match policy {
            Policy::Refresh(_) if present => times.last_pulled(&reference, stored.as_ref()),
            _ => None,
        };
        if !up_needs_pull(policy, present, last, now()) || !seen.insert(reference.clone()) {
            continue;
        }
        jobs.push(Job {
            service: name.clone(),
            image: image.to_string(),
            reference,
            platform,
        });
    }
    Ok(jobs)
}

/// As compose: an image the project can build is built when its pull fails, so that pull's
/// failure is not an error of `up`.
pub fn buildable(project: &Project, image: &str) -> bool {
    project
        .services
        .values()
        .any(|s| s.build.is_some() && s.image.as_deref() == Some(image))
}

fn never_message(
    svc: &Service,
    image: &str,
    policy: Policy,
    flag: Option<&str>,
    other_platform: bool,
    platform: &Option<PlatformSpec>,
) -> String {
    let why = match flag {
        Some(f) => format!("--pull {f}"),
        None if policy == Policy::Build => "pull_policy is build".into(),
        None => "pull_policy is never".into(),
    };
    let found = match (other_platform, platform) {
        (true, Some(p)) => format!("image {image} is in the store but not for platform {p}"),
        _ => format!("image {image} is not in the local store"),
    };
    format!(
        "service \"{}\": {found} and {why} forbids pulling it; pull it first (`rcompose pull {}`, or `rcompose image pull {image}`), or change the pull policy",
        svc.name, svc.name
    )
}
