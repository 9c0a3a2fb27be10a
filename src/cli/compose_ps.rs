//! `rcompose ps`: docker compose's columns (NAME IMAGE COMMAND SERVICE CREATED STATUS PORTS),
//! `--format json` (one object per line, compose's field names), `-q`, `--services`,
//! `--status`, `--filter status=…`.

use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::Args;
use rcompose_compose::labels;
use rcompose_compose::observe::{ContainerSummary, RunState};
use serde_json::json;

use super::GlobalOpts;
use super::compose_common::{backend, check_services, containers, target};
use super::container_fmt::since;
use rcompose_engine::units::human_duration;

#[derive(Debug, Args)]
pub struct PsArgs {
    /// Show all stopped containers (including those created by the run command)
    #[arg(short, long)]
    pub all: bool,
    /// Only display IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Display services
    #[arg(long)]
    pub services: bool,
    /// Filter services by status (repeatable)
    #[arg(long, value_name = "STATUS")]
    pub status: Vec<String>,
    /// Filter services by a property (supported: status=…)
    #[arg(long, value_name = "FILTER")]
    pub filter: Vec<String>,
    /// Format the output: table or json
    #[arg(long, default_value = "table")]
    pub format: String,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Include orphaned services
    #[arg(long, default_value_t = true)]
    pub orphans: bool,
    pub service: Vec<String>,
}

/// docker's STATUS column text.
pub fn status_text(c: &ContainerSummary) -> String {
    let health = c
        .health
        .as_deref()
        .map(|h| {
            if h == "starting" {
                " (health: starting)".to_string()
            } else {
                format!(" ({h})")
            }
        })
        .unwrap_or_default();
    match c.status {
        RunState::Running => format!("Up {}{health}", human_duration(since(&c.started_at))),
        RunState::Paused => format!("Up {} (Paused)", human_duration(since(&c.started_at))),
        RunState::Restarting => format!(
            "Restarting ({}) {} ago",
            c.exit_code,
            human_duration(since(&c.finished_at))
        ),
        RunState::Exited => format!(
            "Exited ({}) {} ago",
            c.exit_code,
            human_duration(since(&c.finished_at))
        ),
        RunState::Created => "Created".into(),
        RunState::Dead => "Dead".into(),
    }
}

fn truncate_command(cmd: &str, no_trunc: bool) -> String {
    let chars: Vec<char> = cmd.chars().collect();
    if no_trunc || chars.len() <= 20 {
        format!("\"{cmd}\"")
    } else {
        format!("\"{}…\"", chars[..19].iter().collect::<String>())
    }
}

pub fn run(g: &GlobalOpts, a: PsArgs) -> Result<ExitCode> {
    let t = target(g)?;
    if let Some(p) = &t.project {
        check_services(p, &a.service)?;
    }
    let mut statuses = a.status.clone();
    for f in &a.filter {
        match f.split_once('=') {
            Some(("status", v)) => statuses.push(v.to_string()),
            _ => bail!("invalid filter {f:?}: only status=<state> is supported"),
        }
    }
    let b = backend(g)?;
    let mut list = containers(
        &b,
        &t.name,
        &a.service,
        a.all || !statuses.is_empty(),
        a.all,
    )?;
    if !statuses.is_empty() {
        list.retain(|c| statuses.iter().any(|s| s == c.status.as_str()));
    }
    if a.services {
        let mut names: Vec<&str> = list
            .iter()
            .filter_map(|c| c.labels.get(labels::SERVICE).map(String::as_str))
            .collect();
        names.dedup();
        for n in names {
            println!("{n}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    if a.quiet {
        for c in &list {
            println!("{}", c.id);
        }
        return Ok(ExitCode::SUCCESS);
    }
    match a.format.as_str() {
        "json" => {
            for c in &list {
                println!("{}", json_line(c));
            }
        }
        "table" => print_table(&list, a.no_trunc),
        other => bail!("unsupported --format {other:?}: use table or json"),
    }
    Ok(ExitCode::SUCCESS)
}

fn json_line(c: &ContainerSummary) -> serde_json::Value {
    let publishers: Vec<serde_json::Value> = c
        .ports
        .iter()
        .filter_map(|p| {
            let (host, target) = p.split_once("->")?;
            let (ip, port) = host.rsplit_once(':')?;
            let (tport, proto) = target.split_once('/')?;
            Some(json!({
                "URL": ip,
                "TargetPort": tport.parse::<u32>().unwrap_or(0),
                "PublishedPort": port.parse::<u32>().unwrap_or(0),
                "Protocol": proto,
            }))
        })
        .collect();
    let labels: Vec<String> = c.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    json!({
        "Command": format!("\"{}\"", c.command),
        "CreatedAt": c.created,
        "ExitCode": c.exit_code,
        "Health": c.health.clone().unwrap_or_default(),
        "ID": c.id,
        "Image": c.image,
        "Labels": labels.join(","),
        "Name": c.name,
        "Names": c.name,
        "Ports": c.ports.join(", "),
        "Project": c.labels.get(labels::PROJECT).cloned().unwrap_or_default(),
        "Publishers": publishers,
        "RunningFor": format!("{} ago", human_duration(since(&c.created))),
        "Service": c.labels.get(labels::SERVICE).cloned().unwrap_or_default(),
        "State": c.status.as_str(),
        "Status": status_text(c),
    })
}

fn print_table(list: &[ContainerSummary], no_trunc: bool) {
    let header = [
        "NAME", "IMAGE", "COMMAND", "SERVICE", "CREATED", "STATUS", "PORTS",
    ];
    let rows: Vec<[String; 7]> = list
        .iter()
        .map(|c| {
            [
                c.name.clone(),
                c.image.clone(),
                truncate_command(&c.command, no_trunc),
                c.labels.get(labels::SERVICE).cloned().unwrap_or_default(),
                format!("{} ago", human_duration(since(&c.created))),
                status_text(c),
                c.ports.join(", "),
            ]
        })
        .collect();
    let mut widths = header.map(|h| h.chars().count());
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(cell);
            } else {
                s.push_str(cell);
                s.push_str(&" ".repeat(w - cell.chars().count() + 3));
            }
        }
        println!("{}", s.trim_end());
    };
    line(header.to_vec());
    for r in &rows {
        line(r.iter().map(String::as_str).collect());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_quoted_and_truncated_like_docker() {
        assert_eq!(truncate_command("httpd -f", false), "\"httpd -f\"");
        assert_eq!(
            truncate_command("sh -c 'sleep 1000; echo done'", false),
            "\"sh -c 'sleep 1000; …\""
        );
    }

    #[test]
    fn status_column() {
        let mut c = ContainerSummary {
            status: RunState::Exited,
            exit_code: 3,
            ..Default::default()
        };
        assert!(status_text(&c).starts_with("Exited (3) "));
        c.status = RunState::Created;
        assert_eq!(status_text(&c), "Created");
    }
}
