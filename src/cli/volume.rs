//! `rcompose volume create|ls|inspect|rm|prune` (docker's `docker volume …`).

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::{Result, anyhow, bail};
use clap::{Args, Subcommand};
use rcompose_engine::volume::{Volume, Volumes};

use super::GlobalOpts;
use super::container::engine;
use super::container_fmt::render_template;

#[derive(Debug, Args)]
pub struct VolumeArgs {
    #[command(subcommand)]
    pub command: VolumeCommand,
}

#[derive(Debug, Subcommand)]
pub enum VolumeCommand {
    /// Create a volume
    Create(CreateArgs),
    /// List volumes
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Display detailed information on one or more volumes
    Inspect(InspectArgs),
    /// Remove one or more volumes
    #[command(alias = "remove")]
    Rm(RmArgs),
    /// Remove unused local volumes
    Prune(PruneArgs),
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Set metadata for a volume
    #[arg(short = 'l', long = "label")]
    pub labels: Vec<String>,
    /// Specify volume driver name (only "local")
    #[arg(short = 'd', long, default_value = "local")]
    pub driver: String,
    /// Volume name (a random one when omitted)
    pub name: Option<String>,
}

#[derive(Debug, Args)]
pub struct LsArgs {
    /// Only display volume names
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Provide filter values (name=, label=, dangling=)
    #[arg(short = 'f', long = "filter")]
    pub filter: Vec<String>,
    /// Format output: table, json or a Go template
    #[arg(long)]
    pub format: Option<String>,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Format output using a Go template subset or "json"
    #[arg(short = 'f', long)]
    pub format: Option<String>,
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RmArgs {
    /// Force the removal of one or more volumes (ignores missing ones)
    #[arg(short = 'f', long)]
    pub force: bool,
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Remove all unused volumes, not just anonymous ones
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Provide filter values (label=)
    #[arg(long = "filter")]
    pub filter: Vec<String>,
}

fn parse_labels(labels: &[String]) -> BTreeMap<String, String> {
    labels
        .iter()
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap_or((l, ""));
            (k.to_string(), v.to_string())
        })
        .collect()
}

fn label_match(v: &Volume, want: &str) -> bool {
    match want.split_once('=') {
        Some((k, val)) => v.labels.get(k).is_some_and(|x| x == val),
        None => v.labels.contains_key(want),
    }
}

pub fn run(g: &GlobalOpts, args: VolumeArgs) -> Result<ExitCode> {
    let vols = Volumes::new(&g.root);
    match args.command {
        VolumeCommand::Create(a) => {
            if a.driver != "local" {
                bail!(
                    "not supported yet: volume driver \"{}\" (only local)",
                    a.driver
                );
            }
            let name = match a.name {
                Some(n) => n,
                None => rcompose_engine::container::new_id()?,
            };
            let v = vols.create(&name, parse_labels(&a.labels), false)?;
            println!("{}", v.name);
        }
        VolumeCommand::Ls(a) => {
            let eng = engine(g)?;
            let mut rows = vec![];
            for v in vols.list()? {
                let mut keep = true;
                for f in &a.filter {
                    let (k, val) = f.split_once('=').ok_or_else(|| {
                        anyhow!("bad format of filter \"{f}\" (expected name=value)")
                    })?;
                    keep &= match k {
                        "name" => v.name.contains(val),
                        "label" => label_match(&v, val),
                        "driver" => v.driver == val,
                        "dangling" => {
                            let unused = eng.volume_users(&v.name)?.is_empty();
                            unused == matches!(val, "true" | "1")
                        }
                        other => {
                            bail!("invalid filter '{other}': use name, label, driver or dangling")
                        }
                    };
                }
                if keep {
                    rows.push(v);
                }
            }
            match a.format.as_deref() {
                _ if a.quiet => rows.iter().for_each(|v| println!("{}", v.name)),
                Some("json") => {
                    for v in &rows {
                        let j = serde_json::json!({"Driver": v.driver, "Labels": v.labels.iter().map(|(k, x)| format!("{k}={x}")).collect::<Vec<_>>().join(","), "Links": "N/A", "Mountpoint": v.mountpoint, "Name": v.name, "Scope": v.scope, "Size": "N/A"});
                        println!("{j}");
                    }
                }
                Some(t) if t != "table" => {
                    for v in &rows {
                        let j = serde_json::to_value(v)?;
                        println!("{}", render_template(t, &j).map_err(|e| anyhow!(e))?);
                    }
                }
                _ => {
                    println!("{:<10}VOLUME NAME", "DRIVER");
                    for v in &rows {
                        println!("{:<10}{}", v.driver, v.name);
                    }
                }
            }
        }
        VolumeCommand::Inspect(a) => {
            let mut out = vec![];
            let mut failed = false;
            for n in &a.names {
                match vols.get(n) {
                    Ok(v) => out.push(serde_json::to_value(&v)?),
                    Err(e) => {
                        super::render_error(&e.into());
                        failed = true;
                    }
                }
            }
            match a.format.as_deref() {
                None | Some("json") => println!("{}", serde_json::to_string_pretty(&out)?),
                Some(t) => {
                    for v in &out {
                        println!("{}", render_template(t, v).map_err(|e| anyhow!(e))?);
                    }
                }
            }
            if failed {
                return Ok(ExitCode::from(1));
            }
        }
        VolumeCommand::Rm(a) => {
            let eng = engine(g)?;
            let mut failed = false;
            for n in &a.names {
                let res = eng
                    .volume_users(n)
                    .map_err(anyhow::Error::from)
                    .and_then(|users| Ok(vols.remove(n, users)?));
                match res {
                    Ok(()) => println!("{n}"),
                    Err(e) if a.force && e.to_string().starts_with("no such volume") => {}
                    Err(e) => {
                        super::render_error(&e);
                        failed = true;
                    }
                }
            }
            if failed {
                return Ok(ExitCode::from(1));
            }
        }
        VolumeCommand::Prune(a) => {
            let eng = engine(g)?;
            println!("Deleted Volumes:");
            for v in vols.list()? {
                if !a.all && !v.anonymous {
                    continue;
                }
                if !a.filter.iter().all(|f| {
                    f.strip_prefix("label=")
                        .is_some_and(|want| label_match(&v, want))
                }) {
                    continue;
                }
                if eng.volume_users(&v.name)?.is_empty() {
                    vols.remove(&v.name, vec![])?;
                    println!("{}", v.name);
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
