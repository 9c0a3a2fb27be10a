//! `rcompose convert --to kubernetes`: the project as Kubernetes manifests (as Kompose does),
//! on standard output as one YAML stream or one file per object with `-o DIR`. What Kubernetes
//! cannot express is listed on standard error, per service and key.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Args;
use rcompose_compose::convert::kubernetes::{self, Options};

use super::GlobalOpts;
use super::compose_common::load_project;

#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// Target format
    #[arg(long = "to", value_parser = ["kubernetes"], default_value = "kubernetes")]
    pub to: String,
    /// Write one file per object into this directory instead of standard output
    #[arg(short = 'o', long = "out", value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Make one-replica services with named volumes StatefulSets instead of Deployments
    #[arg(long)]
    pub statefulsets: bool,
    /// Image of the init containers that wait for a service's dependencies
    #[arg(long, default_value = "busybox:1.36")]
    pub wait_image: String,
    /// Services to convert (default: all)
    pub services: Vec<String>,
}

pub fn run(g: &GlobalOpts, a: ConvertArgs) -> Result<ExitCode> {
    let project = load_project(g, &a.services)?;
    let opts = Options {
        services: a.services.clone(),
        statefulsets: a.statefulsets,
        wait_image: a.wait_image.clone(),
    };
    let converted = kubernetes::convert(&project, &opts, &|p| std::fs::read(p))?;
    for u in &converted.unsupported {
        let who = if u.service.is_empty() {
            String::new()
        } else {
            format!("service {:?}: ", u.service)
        };
        eprintln!("warning: {who}{}: {}", u.key, u.why);
    }
    let docs: Vec<(String, String)> = converted
        .manifests
        .iter()
        .map(|m| {
            let file = format!(
                "{}-{}.yaml",
                m["metadata"]["name"].as_str().unwrap_or("object"),
                m["kind"].as_str().unwrap_or("object").to_ascii_lowercase()
            );
            Ok((file, yaml_serde::to_string(m)?))
        })
        .collect::<Result<_>>()?;
    match &a.out {
        None => {
            let stream: Vec<&str> = docs.iter().map(|(_, d)| d.as_str()).collect();
            print!("{}", stream.join("---\n"));
        }
        Some(dir) => {
            if dir.exists() && !dir.is_dir() {
                bail!("-o {}: not a directory", dir.display());
            }
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            for (file, doc) in &docs {
                let path = dir.join(file);
                std::fs::write(&path, doc)
                    .with_context(|| format!("writing {}", path.display()))?;
                println!("{}", path.display());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
