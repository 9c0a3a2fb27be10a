//! `rcompose config`: load the project and print it in canonical form, or one aspect of it.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, anyhow};
use clap::{Args, ValueEnum};
use rcompose_compose::graph::DependencyGraph;
use rcompose_compose::load::{LoadOptions, LoadedProject, load};
use rcompose_compose::model::Project;
use rcompose_compose::{hash, render};
use rcompose_engine::image::reference::Reference;
use rcompose_engine::store::{Store, StoreError};

use super::GlobalOpts;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Yaml,
    Json,
}

#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// Format the output
    #[arg(long, value_enum, default_value_t = Format::Yaml)]
    pub format: Format,
    /// Only validate the configuration, don't print anything
    #[arg(short, long)]
    pub quiet: bool,
    /// Print the service names, one per line
    #[arg(long)]
    pub services: bool,
    /// Print the volume names, one per line
    #[arg(long)]
    pub volumes: bool,
    /// Print the network names, one per line
    #[arg(long)]
    pub networks: bool,
    /// Print the image names, one per line
    #[arg(long)]
    pub images: bool,
    /// Print the profile names, one per line
    #[arg(long)]
    pub profiles: bool,
    /// Don't interpolate environment variables
    #[arg(long)]
    pub no_interpolate: bool,
    /// Don't normalize compose model
    #[arg(long)]
    pub no_normalize: bool,
    /// Don't resolve file paths
    #[arg(long)]
    pub no_path_resolution: bool,
    /// Don't check model consistency - warning: may produce invalid Compose output
    #[arg(long)]
    pub no_consistency: bool,
    /// Don't resolve service env files
    #[arg(long)]
    pub no_env_resolution: bool,
    /// Pin image tags to digests (from the local image store; no registry is asked)
    #[arg(long)]
    pub resolve_image_digests: bool,
    /// Produces an override file with image digests
    #[arg(long)]
    pub lock_image_digests: bool,
    /// Print the service config hash, one per line (`*` for all services)
    #[arg(long, value_name = "SERVICES")]
    pub hash: Option<String>,
    /// Print the environment used for interpolation
    #[arg(long)]
    pub environment: bool,
    /// Print the model variables and their default values
    #[arg(long)]
    pub variables: bool,
    /// Save to a file instead of standard output
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Services to render (and the services they depend on)
    pub service: Vec<String>,
}

/// Load options from the global flags (shared by every project command).
pub fn load_options(global: &GlobalOpts) -> LoadOptions {
    let mut opts = LoadOptions::from_process();
    opts.files = global.files.clone();
    opts.project_name = global.project_name.clone();
    opts.project_directory = global.project_directory.clone();
    opts.env_files = global.env_files.clone();
    opts.profiles = global.profiles.clone();
    opts
}

/// Prints load warnings the way docker compose does.
pub fn print_warnings(loaded: &LoadedProject) {
    for w in &loaded.warnings {
        eprintln!("WARN[0000] {w}");
    }
}

pub fn run(global: &GlobalOpts, args: ConfigArgs) -> anyhow::Result<ExitCode> {
    let mut opts = load_options(global);
    opts.interpolate = !args.no_interpolate;
    opts.services = args.service.clone();
    opts.resolve_paths = !args.no_path_resolution;
    opts.normalize = !args.no_normalize;
    opts.consistency = !args.no_consistency;
    opts.resolve_environment = !args.no_env_resolution;
    // `--hash` must print the hash `up` labels containers with, which covers env_file.
    // Unread env files stay listed.
    opts.discard_env_files = args.hash.is_none() && !args.no_env_resolution;
    let mut loaded = load(&opts)?;
    print_warnings(&loaded);
    // Without consistency checks a dependency may name no service: the graph (still checked
    // for cycles) is built without those dangling edges.
    let graph = if args.no_consistency {
        DependencyGraph::new(&without_dangling_dependencies(&loaded.project))?
    } else {
        DependencyGraph::new(&loaded.project)?
    };
    if !args.service.is_empty() {
        let keep = graph.with_dependencies(&args.service);
        loaded
            .project
            .services
            .retain(|name, _| keep.contains(name));
    }
    if !args.no_consistency {
        check_container_names(&loaded.project)?;
    }
    if args.resolve_image_digests || args.lock_image_digests {
        pin_image_digests(&mut loaded.project, &global.root)?;
    }
    if args.quiet {
        return Ok(ExitCode::SUCCESS);
    }
    let project = &loaded.project;
    let text = if args.services {
        lines(project.services.keys().cloned())
    } else if args.volumes {
        lines(project.volumes.keys().cloned())
    } else if args.networks {
        lines(project.networks.keys().cloned())
    } else if args.images {
        lines(
            project
                .services
                .values()
                .map(|s| s.image_name(&project.name)),
        )
    } else if args.profiles {
        lines(project.all_profiles())
    } else if args.environment {
        lines(project.environment.iter().map(|(k, v)| format!("{k}={v}")))
    } else if args.variables {
        variables(&loaded, args.format)?
    } else if let Some(which) = &args.hash {
        let wanted: Vec<&str> = which
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        let mut out = Vec::new();
        for name in &wanted {
            if *name != "*" && !project.services.contains_key(*name) {
                anyhow::bail!("no such service: {name}");
            }
        }
        for (name, svc) in &project.services {
            if wanted.contains(&"*") || wanted.contains(&name.as_str()) {
                out.push(format!("{name} {}", hash::service_hash(svc)));
            }
        }
        lines(out)
    } else {
        let text = if args.lock_image_digests {
            let images = images_only(project);
            match args.format {
                Format::Yaml => render::to_yaml(&images)?,
                Format::Json => render::to_json(&images)?,
            }
        } else {
            match args.format {
                Format::Yaml => render::to_yaml(project)?,
                Format::Json => render::project_to_json(project)?,
            }
        };
        // Like compose: literal dollars in the interpolated model are printed as `$$`, so the
        // output is a valid compose file again.
        if args.no_interpolate || !text.contains('$') {
            text
        } else {
            text.replace('$', "$$")
        }
    };
    match &args.output {
        Some(path) => std::fs::write(path, &text)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => {
            let mut stdout = std::io::stdout().lock();
            // A closed pipe (`| head`) is not an error worth reporting.
            let _ = stdout.write_all(text.as_bytes());
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn without_dangling_dependencies(project: &Project) -> Project {
    let mut copy = project.clone();
    let names: std::collections::BTreeSet<String> = copy.services.keys().cloned().collect();
    for svc in copy.services.values_mut() {
        svc.depends_on.retain(|dep, _| names.contains(dep));
    }
    copy
}

/// Two services cannot share a `container_name` (compose checks this in `config` too).
fn check_container_names(project: &Project) -> anyhow::Result<()> {
    let mut seen: std::collections::BTreeMap<&str, &str> = Default::default();
    for (name, svc) in &project.services {
        if let Some(container) = svc.container_name.as_deref()
            && let Some(other) = seen.insert(container, name)
        {
            anyhow::bail!(
                "services.{name}: container name {container:?} is already in use by service {other}: give one of them another container_name"
            );
        }
    }
    Ok(())
}

/// `--resolve-image-digests`: every `image:` pinned to the repository digest recorded for it
/// in the local image store (`name:tag@sha256:…`, as compose prints it). No registry is
/// asked: an image that is not local, or was never pulled or pushed, is an error naming the
/// service.
fn pin_image_digests(project: &mut Project, root: &std::path::Path) -> anyhow::Result<()> {
    // Opening a store creates its directories: only open one that exists.
    let store = if root.join("images/index.json").is_file() {
        Some(
            Store::open(root)
                .with_context(|| format!("cannot open the image store {}", root.display()))?,
        )
    } else {
        None
    };
    for (name, svc) in project.services.iter_mut() {
        if let Some(image) = svc.image.as_deref().filter(|i| !i.is_empty()) {
            svc.image = Some(pinned(store.as_ref(), root, name, image)?);
        }
    }
    Ok(())
}

fn pinned(
    store: Option<&Store>,
    root: &std::path::Path,
    service: &str,
    image: &str,
) -> anyhow::Result<String> {
    let reference = Reference::parse(image)
        .with_context(|| format!("service {service:?}: invalid image {image:?}"))?;
    if reference.digest.is_some() {
        return Ok(reference.to_string());
    }
    let reference = reference.with_default_tag();
    let not_local = || {
        anyhow!(
            "service {service:?}: image {image} is not in the local image store ({}), so its digest cannot be resolved (rcompose pins digests from local images only and asks no registry): pull it first with `rcompose pull {service}`",
            root.display()
        )
    };
    let record = match store.map(|s| s.resolve(&reference.to_string())) {
        None | Some(Err(StoreError::NoSuchImage(_))) => return Err(not_local()),
        Some(Err(e)) => {
            return Err(e).with_context(|| format!("service {service:?}: image {image}"));
        }
        Some(Ok(record)) => record,
    };
    let prefix = format!("{}@", reference.name());
    let digest = record
        .repo_digests
        .iter()
        .find_map(|d| d.strip_prefix(prefix.as_str()))
        .ok_or_else(|| {
            anyhow!(
                "service {service:?}: image {image} is local but has no repository digest for {} (it was built, imported or loaded rather than pulled or pushed): push it or pull it from its registry first",
                reference.name()
            )
        })?;
    Ok(format!("{reference}@{digest}"))
}

/// `--lock-image-digests`: an override file holding only each service's pinned image.
fn images_only(project: &Project) -> serde_json::Value {
    let services: serde_json::Map<String, serde_json::Value> = project
        .services
        .iter()
        .map(|(name, svc)| {
            let body = match &svc.image {
                Some(image) => serde_json::json!({ "image": image }),
                None => serde_json::json!({}),
            };
            (name.clone(), body)
        })
        .collect();
    serde_json::json!({ "services": services })
}

fn lines(items: impl IntoIterator<Item = String>) -> String {
    let mut out = String::new();
    for item in items {
        out.push_str(&item);
        out.push('\n');
    }
    out
}

fn variables(loaded: &LoadedProject, format: Format) -> anyhow::Result<String> {
    let mut rows: Vec<(String, bool, String, String)> = Vec::new();
    for v in &loaded.variables {
        if let Some(row) = rows.iter_mut().find(|r| r.0 == v.name) {
            row.1 |= v.required;
            if row.2.is_empty() {
                row.2 = v.default.clone().unwrap_or_default();
            }
            if row.3.is_empty() {
                row.3 = v.alternate.clone().unwrap_or_default();
            }
            continue;
        }
        rows.push((
            v.name.clone(),
            v.required,
            v.default.clone().unwrap_or_default(),
            v.alternate.clone().unwrap_or_default(),
        ));
    }
    rows.sort();
    if format == Format::Json {
        let map: serde_json::Map<String, serde_json::Value> = rows
            .iter()
            .map(|(name, required, default, alt)| {
                (
                    name.clone(),
                    serde_json::json!({
                        "Name": name, "DefaultValue": default, "PresenceValue": alt, "Required": required
                    }),
                )
            })
            .collect();
        return Ok(serde_json::to_string_pretty(&map)? + "\n");
    }
    let header = (
        "NAME".to_string(),
        "REQUIRED".to_string(),
        "DEFAULT VALUE".to_string(),
        "ALTERNATE VALUE".to_string(),
    );
    let body: Vec<(String, String, String, String)> = rows
        .into_iter()
        .map(|(n, r, d, a)| (n, r.to_string(), d, a))
        .collect();
    let all: Vec<&(String, String, String, String)> =
        std::iter::once(&header).chain(body.iter()).collect();
    let w0 = all.iter().map(|r| r.0.len()).max().unwrap_or(0);
    let w1 = all.iter().map(|r| r.1.len()).max().unwrap_or(0);
    let w2 = all.iter().map(|r| r.2.len()).max().unwrap_or(0);
    let mut out = String::new();
    for r in all {
        let line = format!("{:w0$}   {:w1$}   {:w2$}   {}", r.0, r.1, r.2, r.3);
        out.push_str(line.trim_end());
        out.push('\n');
    }
    Ok(out)
}
