//! `rcompose image build`: docker build's flags → `engine::build::build` → progress lines.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use rcompose_engine::build::{BuildOptions, Hooks, build};
use rcompose_engine::store::Store;

use super::build_progress::{Mode, Progress};
use crate::cli::GlobalOpts;

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The build context directory
    pub context: PathBuf,
    /// Name and optionally a tag (name:tag); may be given several times
    #[arg(short = 't', long = "tag")]
    pub tags: Vec<String>,
    /// Name of the Dockerfile (default: PATH/Dockerfile; `-` reads it from stdin)
    #[arg(short = 'f', long = "file")]
    pub file: Option<PathBuf>,
    /// Set build-time variables (KEY=VALUE, or KEY to take it from the environment)
    #[arg(long = "build-arg")]
    pub build_args: Vec<String>,
    /// Set the target build stage to build
    #[arg(long)]
    pub target: Option<String>,
    /// Do not use cache when building the image
    #[arg(long)]
    pub no_cache: bool,
    /// Always attempt to pull all referenced images
    #[arg(long)]
    pub pull: bool,
    /// Suppress the build output and print the image ID on success
    #[arg(short, long)]
    pub quiet: bool,
    /// Write the image ID to the file
    #[arg(long)]
    pub iidfile: Option<PathBuf>,
    /// Set metadata for an image (KEY=VALUE)
    #[arg(long = "label")]
    pub labels: Vec<String>,
    /// Additional build contexts (NAME=PATH or NAME=docker-image://REF)
    #[arg(long = "build-context")]
    pub contexts: Vec<String>,
    /// Secret to expose to the build (id=ID,src=PATH)
    #[arg(long = "secret")]
    pub secrets: Vec<String>,
    /// Set the networking mode for the RUN instructions during build (default, none, host)
    #[arg(long)]
    pub network: Option<String>,
    /// Size of /dev/shm in RUN steps (e.g. 128m)
    #[arg(long = "shm-size")]
    pub shm_size: Option<String>,
    /// Set type of progress output (auto, plain, tty); auto is tty on a terminal
    #[arg(long)]
    pub progress: Option<String>,
}

fn pairs(
    list: &[String],
    what: &str,
    env_fallback: bool,
) -> anyhow::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for s in list {
        match s.split_once('=') {
            Some((k, v)) => {
                out.insert(k.to_string(), v.to_string());
            }
            None if env_fallback => {
                if let Ok(v) = std::env::var(s) {
                    out.insert(s.clone(), v);
                }
            }
            None => bail!("{what} {s:?}: use NAME=VALUE"),
        }
    }
    Ok(out)
}

/// The engine call shared by `image build` and the compose verbs.
pub fn options(a: &BuildArgs) -> anyhow::Result<BuildOptions> {
    let mut opts = BuildOptions {
        context: a.context.clone(),
        build_args: pairs(&a.build_args, "--build-arg", true)?,
        target: a.target.clone(),
        tags: a.tags.clone(),
        labels: pairs(&a.labels, "--label", false)?,
        contexts: pairs(&a.contexts, "--build-context", false)?,
        no_cache: a.no_cache,
        pull: a.pull,
        network: a.network.clone(),
        shm_size: match &a.shm_size {
            Some(s) => rcompose_engine::units::parse_size(s)
                .and_then(|n| i64::try_from(n).ok())
                .with_context(|| format!("--shm-size {s:?}: use a size such as 64m or 1g"))?,
            None => 0,
        },
        ..Default::default()
    };
    for s in &a.secrets {
        let kv = pairs(
            &s.split(',').map(str::to_string).collect::<Vec<_>>(),
            "--secret",
            false,
        )?;
        let id = kv.get("id").context("--secret needs id=")?;
        let src = kv
            .get("src")
            .or_else(|| kv.get("source"))
            .context("--secret needs src=")?;
        opts.secrets.insert(id.clone(), PathBuf::from(src));
    }
    match a.file.as_deref() {
        Some(p) if p.as_os_str() == "-" => {
            let mut t = String::new();
            std::io::stdin()
                .read_to_string(&mut t)
                .context("reading the Dockerfile from stdin")?;
            opts.dockerfile_text = Some(t);
        }
        Some(p) => {
            opts.dockerfile = Some(if p.is_absolute() {
                p.to_path_buf()
            } else {
                std::env::current_dir()?.join(p)
            })
        }
        None => {}
    }
    Ok(opts)
}

pub fn build_cmd(g: &GlobalOpts, store: &Store, a: BuildArgs) -> anyhow::Result<ExitCode> {
    let mode = Mode::pick(
        a.progress.as_deref(),
        a.quiet,
        std::io::stderr().is_terminal(),
    )?;
    let opts = options(&a)?;
    let containers = crate::cli::container::engine(g)?;
    let mut progress = Progress::new(mode);
    let pull = rcompose_wire::backend::build::puller(store);
    let started = std::time::Instant::now();
    let net = rcompose_wire::backend::build::BridgeNetwork::open(&containers)
        .map_err(anyhow::Error::msg)?;
    let hooks = Hooks {
        pull: Some(&pull),
        network: Some(&net),
    };
    let res = build(&containers, &opts, hooks, &mut |e| progress.event(e));
    progress.finish();
    let res = res?;
    if let Some(p) = &a.iidfile {
        std::fs::write(p, &res.id).with_context(|| format!("writing {}", p.display()))?;
    }
    if a.quiet {
        println!("{}", res.id);
    } else {
        let all = res.cacheable_steps > 0 && res.cached_steps == res.cacheable_steps;
        eprintln!(
            "built {} in {:.2}s ({} of {} steps cached{})",
            res.id,
            started.elapsed().as_secs_f64(),
            res.cached_steps,
            res.cacheable_steps,
            if all { ": all cache hits" } else { "" }
        );
        for t in &res.tags {
            eprintln!("naming to {t}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
