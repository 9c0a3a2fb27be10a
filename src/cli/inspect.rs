//! `rcompose inspect` (docker's top-level `inspect`): low-level JSON of any object by name or
//! id — a container, an image, a network or a volume, tried in docker's order, or only the
//! `--type` given.

use std::process::ExitCode;

use anyhow::{Result, anyhow};
use clap::Args;
use serde_json::{Value, json};

use super::container_fmt::render_template;
use super::{ExitStatus, GlobalOpts};

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Format output using a Go template subset, or "json"
    #[arg(short = 'f', long)]
    pub format: Option<String>,
    /// Only look for this type of object
    #[arg(long = "type", value_parser = ["container", "image", "network", "volume"])]
    pub kind: Option<String>,
    /// Display total file sizes if the type is container
    #[arg(short = 's', long)]
    pub size: bool,
    /// Names or ids of objects
    #[arg(required = true)]
    pub names: Vec<String>,
}

/// The object `name` of `kind`, as its own `inspect` shows it; None when there is none.
fn find(g: &GlobalOpts, kind: &str, name: &str, size: bool) -> Result<Option<Value>> {
    Ok(match kind {
        "container" => {
            let eng = super::container::engine(g)?;
            let Ok(c) = eng.store.resolve(name) else {
                return Ok(None);
            };
            let st = eng.observe(&c.id)?;
            let mut v = rcompose_engine::container::inspect::inspect_json(&eng.store, &c, &st);
            if let Ok(nets) = rcompose_net::Networks::open(&g.root, &g.run_root) {
                rcompose_wire::netwire::live::patch_inspect(&nets, &eng.store, &c, &mut v);
            }
            if size {
                v["SizeRw"] = json!(eng.size_rw(&c.id)?);
            }
            Some(v)
        }
        "image" => rcompose_engine::store::Store::open(&g.root)?
            .resolve(name)
            .ok()
            .map(|img| rcompose_engine::image::inspect::inspect_json(&img)),
        "network" => rcompose_net::Networks::open(&g.root, &g.run_root)?
            .inspect(name)
            .ok(),
        _ => rcompose_engine::volume::Volumes::new(&g.root)
            .get(name)
            .ok()
            .map(|v| serde_json::to_value(&v))
            .transpose()?,
    })
}

pub fn run(g: &GlobalOpts, a: InspectArgs) -> Result<ExitCode> {
    let kinds: Vec<&str> = match a.kind.as_deref() {
        Some(k) => vec![k],
        None => vec!["container", "image", "network", "volume"],
    };
    let mut found = Vec::new();
    let mut failed = false;
    for name in &a.names {
        let mut hit = None;
        for kind in &kinds {
            if let Some(v) = find(g, kind, name, a.size)? {
                hit = Some(v);
                break;
            }
        }
        match hit {
            Some(v) => found.push(v),
            None => {
                eprintln!("Error: No such object: {name}");
                failed = true;
            }
        }
    }
    match a.format.as_deref() {
        None | Some("json") => println!("{}", serde_json::to_string_pretty(&found)?),
        Some(t) => {
            for v in &found {
                println!("{}", render_template(t, v).map_err(|e| anyhow!(e))?);
            }
        }
    }
    if failed {
        return Err(ExitStatus(1).into());
    }
    Ok(ExitCode::SUCCESS)
}
