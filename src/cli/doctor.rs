//! `rcompose doctor` (also `rcompose system doctor`): checks the host for what containers and
//! their networks need, and prints each finding with its fix. Exit 0 when all is well, 1 when
//! something needs attention. `--fix` re-applies what rcompose itself owns (its firewall rules
//! and DNS server) before checking.

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use rcompose_engine::doctor::Outcome;
use rcompose_net::doctor::{Finding, Level};

use super::GlobalOpts;

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Re-apply rcompose's own firewall rules and DNS server first
    #[arg(long)]
    pub fix: bool,
    /// Output format: json, or the default listing
    #[arg(long)]
    pub format: Option<String>,
}

/// Every finding: the engine's (kernel, cgroups, permissions, disk), then networking's.
pub fn findings(g: &GlobalOpts) -> Vec<Finding> {
    let mut out: Vec<Finding> = rcompose_engine::doctor::check(&g.root, &g.run_root)
        .into_iter()
        .map(|(check, outcome)| match outcome {
            Outcome::Ok(detail) => Finding::new(check, Level::Ok, detail),
            Outcome::Problem { detail, fix } => {
                Finding::new(check, Level::Problem, detail).fix(fix)
            }
        })
        .collect();
    out.extend(rcompose_net::doctor::check(&g.root));
    out
}

pub fn run(g: &GlobalOpts, a: DoctorArgs) -> Result<ExitCode> {
    if a.fix {
        rcompose_net::api::collect_orphan_default_bridges();
    }
    if a.fix && g.root.join("networks").is_dir() {
        rcompose_net::Networks::open(&g.root, &g.run_root)?.sync()?;
    }
    let found = findings(g);
    let problems = found.iter().filter(|f| f.level == Level::Problem).count();
    match a.format.as_deref() {
        Some("json") => println!("{}", serde_json::to_string_pretty(&found)?),
        None | Some("table") => {
            let colour = g.use_colour();
            for f in &found {
                let (label, paint) = match f.level {
                    Level::Ok => ("ok", "32"),
                    Level::Note => ("note", "36"),
                    Level::Problem => ("PROBLEM", "31"),
                };
                let label = if colour {
                    format!("\x1b[{paint}m{label:<7}\x1b[0m")
                } else {
                    format!("{label:<7}")
                };
                println!("{label} {:<12} {}", f.check, f.detail);
                if let Some(fix) = &f.fix {
                    println!("{:<20} fix: {fix}", "");
                }
            }
            match problems {
                0 => println!("\nno problems found"),
                1 => println!("\n1 problem needs attention"),
                n => println!("\n{n} problems need attention"),
            }
        }
        Some(other) => anyhow::bail!("unknown --format {other:?}: use json or table"),
    }
    Ok(if problems == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Before `up` starts anything: one warning, naming `doctor`, for each host condition that
/// will break the stack's traffic and that rcompose cannot repair by itself.
pub fn warn_traffic_blockers() {
    for f in rcompose_net::doctor::traffic_blockers() {
        eprintln!("warning: {}; run `rcompose doctor` for the fix", f.detail);
    }
}
