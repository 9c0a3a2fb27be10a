//! `rcompose events`: container events of the project as they happen. There is no daemon to
//! publish events, so this command watches the project's containers (every 100 ms) and reports
//! the transitions it sees: create, start, die (with exitCode), pause, unpause, destroy,
//! health_status. Text lines like compose's, or `--json` objects.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use rcompose_compose::labels;
use rcompose_compose::observe::{ContainerSummary, RunState};
use serde_json::json;

use super::GlobalOpts;
use super::compose_common::{backend, check_services, containers, target};
use super::compose_logs::{INTERRUPTS, catch_interrupts};

#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Output events as a stream of json objects
    #[arg(long)]
    pub json: bool,
    pub services: Vec<String>,
}

/// The actions between two observations of one container (`None` before: it is new).
fn transitions(before: Option<&ContainerSummary>, now: &ContainerSummary) -> Vec<String> {
    let mut out = vec![];
    let (was, was_health) = match before {
        None => {
            out.push("create".to_string());
            (RunState::Created, None)
        }
        Some(b) => (b.status, b.health.as_deref()),
    };
    let restarted = before.is_some_and(|b| b.started_at != now.started_at && b.status.is_up());
    if restarted {
        out.push("die".into());
        out.push("start".into());
    }
    match (was, now.status) {
        (RunState::Paused, RunState::Running) => out.push("unpause".into()),
        (RunState::Running, RunState::Paused) => out.push("pause".into()),
        (a, b) if !a.is_up() && b.is_up() => out.push("start".into()),
        (a, b) if a.is_up() && !b.is_up() => out.push("die".into()),
        _ => {}
    }
    if let Some(h) = now.health.as_deref()
        && was_health != Some(h)
        && h != "starting"
    {
        out.push(format!("health_status: {h}"));
    }
    out
}

fn print_event(c: &ContainerSummary, action: &str, as_json: bool) {
    let now = chrono_now();
    let service = c.labels.get(labels::SERVICE).cloned().unwrap_or_default();
    if as_json {
        let mut attributes = BTreeMap::new();
        attributes.insert("name", c.name.clone());
        attributes.insert("image", c.image.clone());
        if action == "die" {
            attributes.insert("exitCode", c.exit_code.to_string());
        }
        println!(
            "{}",
            json!({"time": now, "type": "container", "action": action, "id": c.id,
                   "service": service, "attributes": attributes})
        );
    } else {
        let exit = if action == "die" {
            format!(", exitCode={}", c.exit_code)
        } else {
            String::new()
        };
        println!(
            "{now} container {action} {} (image={}, name={}{exit})",
            c.id, c.image, c.name
        );
    }
}

fn chrono_now() -> String {
    rcompose_engine::container::model::now_rfc3339()
}

pub fn run(g: &GlobalOpts, a: EventsArgs) -> Result<ExitCode> {
    let t = target(g)?;
    if let Some(p) = &t.project {
        check_services(p, &a.services)?;
    }
    let b = backend(g)?;
    catch_interrupts();
    let mut seen: BTreeMap<String, ContainerSummary> =
        containers(&b, &t.name, &a.services, true, true)?
            .into_iter()
            .map(|c| (c.id.clone(), c))
            .collect();
    while INTERRUPTS.load(Ordering::SeqCst) == 0 {
        std::thread::sleep(Duration::from_millis(100));
        let now = containers(&b, &t.name, &a.services, true, true)?;
        for c in &now {
            for action in transitions(seen.get(&c.id), c) {
                print_event(c, &action, a.json);
            }
        }
        for (id, c) in &seen {
            if !now.iter().any(|n| &n.id == id) {
                print_event(c, "destroy", a.json);
            }
        }
        seen = now.into_iter().map(|c| (c.id.clone(), c)).collect();
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transitions_between_observations() {
        let mut c = ContainerSummary {
            status: RunState::Created,
            ..Default::default()
        };
        assert_eq!(transitions(None, &c), ["create"]);
        let before = c.clone();
        c.status = RunState::Running;
        c.started_at = "t1".into();
        assert_eq!(transitions(Some(&before), &c), ["start"]);
        let before = c.clone();
        c.started_at = "t2".into();
        assert_eq!(transitions(Some(&before), &c), ["die", "start"]);
        let before = c.clone();
        c.status = RunState::Exited;
        assert_eq!(transitions(Some(&before), &c), ["die"]);
    }
}
