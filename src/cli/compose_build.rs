//! `rcompose build [SERVICE…]`: the project's `build:` services through
//! `compose::ops::build` (in parallel), progress lines prefixed with the service.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use rcompose_compose::ops::build::{BuildFlags, build, buildable};

use super::GlobalOpts;
use super::compose_common::load_project;

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Do not use cache when building the image
    #[arg(long)]
    pub no_cache: bool,
    /// Always attempt to pull a newer version of the image
    #[arg(long)]
    pub pull: bool,
    /// Don't print anything to STDOUT
    #[arg(short, long)]
    pub quiet: bool,
    /// Set build-time variables for services (KEY=VALUE)
    #[arg(long = "build-arg")]
    pub build_args: Vec<String>,
    pub services: Vec<String>,
}

/// `--build-arg` list → map (a bare KEY takes its value from the environment).
pub fn build_args(list: &[String]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for s in list {
        match s.split_once('=') {
            Some((k, v)) => {
                out.insert(k.to_string(), v.to_string());
            }
            None => {
                if let Ok(v) = std::env::var(s) {
                    out.insert(s.clone(), v);
                }
            }
        }
    }
    out
}

/// Prints a build progress line of `service`.
pub fn progress_line(service: &str, line: &str) {
    eprintln!("[{service}] {line}");
}

pub fn run(g: &GlobalOpts, a: BuildArgs) -> Result<ExitCode> {
    let project = load_project(g, &a.services)?;
    let services = buildable(&project, &a.services)?;
    let b = super::compose_common::backend(g)?;
    let flags = BuildFlags {
        no_cache: a.no_cache,
        pull: a.pull,
        quiet: a.quiet,
        build_args: build_args(&a.build_args),
    };
    let ids = build(&project, &b, &services, &flags, &progress_line)
        .context("building the project's images")?;
    if !a.quiet {
        for (svc, id) in ids {
            let image = project.services[&svc].image_name(&project.name);
            let short = &id[7..19.min(id.len())];
            super::compose_common::outcome_line(
                "Service",
                &svc,
                &format!("Built  {image} {short}"),
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
