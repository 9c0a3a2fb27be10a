//! `rcompose stack deploy|ls|services|ps|rm`: the compose project on a Docker Swarm, through
//! the manager's Engine API (`-H`/`DOCKER_HOST`), as `docker stack` does. Nothing here touches
//! rcompose's own state roots.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use rcompose_compose::convert::swarm;
use rcompose_compose::load::load;
use rcompose_engine::units::human_duration;
use rcompose_wire::stack::http::{DEFAULT_HOST, parse_host};
use rcompose_wire::stack::{self as st, Client, DeployOptions, Event};
use serde_json::{Value, json};

use super::GlobalOpts;
use super::config::{load_options, print_warnings};
use super::container_fmt::{render_table, render_template, since};

#[derive(Debug, Args)]
pub struct StackArgs {
    /// Daemon socket to connect to (a swarm manager)
    #[arg(short = 'H', long = "host", env = "DOCKER_HOST", default_value = DEFAULT_HOST, global = true)]
    pub host: String,
    #[command(subcommand)]
    pub command: StackCommand,
}

#[derive(Debug, Subcommand)]
pub enum StackCommand {
    /// Deploy a new stack or update an existing stack
    #[command(alias = "up")]
    Deploy(DeployArgs),
    /// List stacks
    #[command(alias = "list")]
    Ls(LsArgs),
    /// List the tasks in the stack
    Ps(PsArgs),
    /// List the services in the stack
    Services(ServicesArgs),
    /// Remove one or more stacks
    #[command(alias = "remove", alias = "down")]
    Rm(RmArgs),
}

#[derive(Debug, Args)]
pub struct DeployArgs {
    /// Path to a Compose file, or "-" to read from stdin (repeatable)
    #[arg(
        short = 'c',
        long = "compose-file",
        value_name = "FILE",
        required = true
    )]
    pub files: Vec<String>,
    /// Prune services that are no longer referenced
    #[arg(long)]
    pub prune: bool,
    /// Exit immediately instead of waiting for the stack services to converge
    /// (`--detach=false` waits, at most --timeout)
    #[arg(short = 'd', long, num_args = 0..=1, require_equals = true, default_value_t = true,
          default_missing_value = "true", action = clap::ArgAction::Set)]
    pub detach: bool,
    /// With --detach=false: how long to wait for convergence, in seconds
    #[arg(long, default_value_t = 600, value_name = "SECONDS")]
    pub timeout: u64,
    /// Suppress progress output
    #[arg(short, long)]
    pub quiet: bool,
    /// Query the registry to resolve image digest and supported platforms
    /// ("always", "changed", "never"); only "never" is implemented: nodes pull by tag
    #[arg(long, default_value = "never", value_parser = ["always", "changed", "never"])]
    pub resolve_image: String,
    /// Send registry authentication details to Swarm agents (not implemented: ignored)
    #[arg(long)]
    pub with_registry_auth: bool,
    /// Stack name
    pub name: String,
}

#[derive(Debug, Args)]
pub struct LsArgs {
    /// Format output: table, json, or a Go template
    #[arg(long, default_value = "table")]
    pub format: String,
}

#[derive(Debug, Args)]
pub struct PsArgs {
    /// Filter output based on conditions provided (key=value, repeatable)
    #[arg(short, long = "filter", value_name = "FILTER")]
    pub filter: Vec<String>,
    /// Do not truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Only display task IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Format output: table, json, or a Go template
    #[arg(long, default_value = "table")]
    pub format: String,
    /// Stack name
    pub name: String,
}

#[derive(Debug, Args)]
pub struct ServicesArgs {
    /// Filter output based on conditions provided (key=value, repeatable)
    #[arg(short, long = "filter", value_name = "FILTER")]
    pub filter: Vec<String>,
    /// Only display IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Format output: table, json, or a Go template
    #[arg(long, default_value = "table")]
    pub format: String,
    /// Stack name
    pub name: String,
}

#[derive(Debug, Args)]
pub struct RmArgs {
    /// Stack names
    #[arg(required = true)]
    pub names: Vec<String>,
}

pub fn run(g: &GlobalOpts, a: StackArgs) -> Result<ExitCode> {
    let ep = parse_host(&a.host).map_err(anyhow::Error::msg)?;
    // Never send to a daemon in clear what its user meant to reach over TLS.
    if std::env::var_os("DOCKER_TLS_VERIFY").is_some_and(|v| !v.is_empty())
        && a.host.starts_with("tcp://")
    {
        bail!(
            "DOCKER_TLS_VERIFY is set but rcompose stack speaks plain HTTP only: reach the manager over its unix socket (or an SSH tunnel to it)"
        );
    }
    let client = Client::new(ep);
    match a.command {
        StackCommand::Deploy(d) => deploy(g, &client, d),
        StackCommand::Ls(l) => ls(&client, l),
        StackCommand::Ps(p) => ps(&client, p),
        StackCommand::Services(s) => services(&client, s),
        StackCommand::Rm(r) => rm(&client, r),
    }
}

fn print_event(e: Event) {
    match e {
        Event::Creating { kind, name } => println!("Creating {kind} {name}"),
        Event::Updating { kind, name, id } => println!("Updating {kind} {name} (id: {id})"),
        Event::Removing { kind, name } => println!("Removing {kind} {name}"),
        Event::Warning(w) => eprintln!("{w}"),
        Event::Progress {
            name,
            running,
            desired,
        } => eprintln!("{name}: {running}/{desired} tasks running"),
        Event::Converged { name } => eprintln!("{name}: converged"),
    }
}

fn deploy(g: &GlobalOpts, client: &Client, a: DeployArgs) -> Result<ExitCode> {
    swarm::check_stack_name(&a.name)?;
    let mut opts = load_options(g);
    opts.files = a.files.clone();
    opts.project_name = Some(a.name.clone());
    let loaded = load(&opts)?;
    print_warnings(&loaded);
    let stack = swarm::convert(&loaded.project, &a.name, &|p| std::fs::read(p))?;
    // docker's words, one line per service so each key can be traced to its service.
    let mut by_service: Vec<(String, Vec<String>)> = Vec::new();
    for u in &stack.unsupported {
        match by_service.iter_mut().find(|(s, _)| *s == u.service) {
            Some((_, keys)) => keys.push(u.key.clone()),
            None => by_service.push((u.service.clone(), vec![u.key.clone()])),
        }
    }
    for (service, keys) in &by_service {
        eprintln!(
            "Ignoring unsupported options: {} (service {service})",
            keys.join(", ")
        );
    }
    if g.verbose {
        for u in &stack.unsupported {
            eprintln!("  service {}: {}: {}", u.service, u.key, u.why);
        }
    }
    if a.resolve_image != "never" {
        eprintln!(
            "--resolve-image {}: not implemented, images are not resolved to digests (nodes pull by tag)",
            a.resolve_image
        );
    }
    if g.dry_run {
        let plan = json!({
            "secrets": stack.secrets.iter().map(|x| &x.spec).collect::<Vec<_>>(),
            "configs": stack.configs.iter().map(|x| &x.spec).collect::<Vec<_>>(),
            "networks": stack.networks.iter().map(|x| &x.spec).collect::<Vec<_>>(),
            "services": stack.services.iter().map(|x| &x.spec).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&plan)?);
        return Ok(ExitCode::SUCCESS);
    }
    st::deploy(
        client,
        &stack,
        &DeployOptions { prune: a.prune },
        &mut print_event,
    )
    .with_context(|| format!("deploying stack {}", a.name))?;
    if !a.detach {
        let mut on = |e: Event| {
            if !a.quiet {
                print_event(e)
            }
        };
        st::wait_converged(client, &a.name, Duration::from_secs(a.timeout), &mut on)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Rows as docker's `--format`: `table` (the default template), `json` (one object a line),
/// `table <template>` or a plain Go template.
fn print_rows(format: &str, default: &str, rows: &[Value], names: &[(&str, &str)]) -> Result<()> {
    match format {
        "json" => {
            for r in rows {
                println!("{r}");
            }
        }
        f if f == "table" || f.starts_with("table ") => {
            let tpl = if f == "table" { default } else { f };
            print!(
                "{}",
                render_table(tpl, rows, names).map_err(anyhow::Error::msg)?
            );
        }
        tpl => {
            for r in rows {
                println!("{}", render_template(tpl, r).map_err(anyhow::Error::msg)?);
            }
        }
    }
    Ok(())
}

fn ls(client: &Client, a: LsArgs) -> Result<ExitCode> {
    let rows: Vec<Value> = st::list(client)?
        .into_iter()
        .map(|s| json!({"Name": s.name, "Services": s.services.to_string()}))
        .collect();
    print_rows(&a.format, "table {{.Name}}\t{{.Services}}", &rows, &[])?;
    Ok(ExitCode::SUCCESS)
}

/// `-f key=value` flags as the API's filter pairs.
fn filter_pairs(flags: &[String]) -> Result<Vec<(String, String)>> {
    flags
        .iter()
        .map(|f| match f.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => bail!("bad format of filter {f:?} (expected name=value)"),
        })
        .collect()
}

/// `*:8080->80/tcp` for each published port of a service.
fn service_ports(svc: &Value) -> String {
    svc["Endpoint"]["Ports"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["PublishedPort"].as_u64().is_some())
        .map(|p| {
            format!(
                "*:{}->{}/{}",
                p["PublishedPort"],
                p["TargetPort"],
                p["Protocol"].as_str().unwrap_or("tcp")
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn services(client: &Client, a: ServicesArgs) -> Result<ExitCode> {
    let list = st::services(client, &a.name, &filter_pairs(&a.filter)?)?;
    if list.is_empty() {
        eprintln!("Nothing found in stack: {}", a.name);
        return Ok(ExitCode::SUCCESS);
    }
    if a.quiet {
        for s in &list {
            println!("{}", s["ID"].as_str().unwrap_or_default());
        }
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Value> = list
        .iter()
        .map(|s| {
            let mode = &s["Spec"]["Mode"];
            let (mode_name, desired) = if mode.get("Global").is_some() {
                ("global", None)
            } else if mode.get("ReplicatedJob").is_some() {
                ("replicated job", None)
            } else if mode.get("GlobalJob").is_some() {
                ("global job", None)
            } else {
                ("replicated", mode["Replicated"]["Replicas"].as_u64())
            };
            let running = s["ServiceStatus"]["RunningTasks"].as_u64().unwrap_or(0);
            let desired = desired
                .or_else(|| s["ServiceStatus"]["DesiredTasks"].as_u64())
                .unwrap_or(0);
            let image = s["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]
                .as_str()
                .unwrap_or_default();
            json!({
                "ID": short_id(s["ID"].as_str().unwrap_or_default(), false),
                "Name": s["Spec"]["Name"],
                "Mode": mode_name,
                "Replicas": format!("{running}/{desired}"),
                "Image": image.split('@').next().unwrap_or(image),
                "Ports": service_ports(s),
            })
        })
        .collect();
    print_rows(
        &a.format,
        "table {{.ID}}\t{{.Name}}\t{{.Mode}}\t{{.Replicas}}\t{{.Image}}\t{{.Ports}}",
        &rows,
        &[],
    )?;
    Ok(ExitCode::SUCCESS)
}

/// Swarm ids are 25 characters; docker shows 12.
fn short_id(id: &str, no_trunc: bool) -> String {
    if no_trunc {
        id.to_string()
    } else {
        id.chars().take(12).collect()
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

fn ps(client: &Client, a: PsArgs) -> Result<ExitCode> {
    let tasks = st::tasks(client, &a.name, &filter_pairs(&a.filter)?)?;
    if tasks.is_empty() {
        eprintln!("Nothing found in stack: {}", a.name);
        return Ok(ExitCode::SUCCESS);
    }
    if a.quiet {
        for t in &tasks {
            println!("{}", short_id(&t.id, a.no_trunc));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut last = String::new();
    let rows: Vec<Value> = tasks
        .iter()
        .map(|t| {
            // Older tasks of the same slot are indented under the newest, as docker shows them.
            let name = if t.name == last && a.format == "table" {
                format!(" \\_ {}", t.name)
            } else {
                t.name.clone()
            };
            last = t.name.clone();
            let image = if a.no_trunc {
                t.image.clone()
            } else {
                t.image.split('@').next().unwrap_or(&t.image).to_string()
            };
            json!({
                "ID": short_id(&t.id, a.no_trunc),
                "Name": name,
                "Image": image,
                "Node": t.node,
                "DesiredState": capitalise(&t.desired_state),
                "CurrentState": format!("{} {} ago", capitalise(&t.state), human_duration(since(&t.since))),
                "Error": t.error,
                "Ports": t.ports.join(", "),
            })
        })
        .collect();
    print_rows(
        &a.format,
        "table {{.ID}}\t{{.Name}}\t{{.Image}}\t{{.Node}}\t{{.DesiredState}}\t{{.CurrentState}}\t{{.Error}}\t{{.Ports}}",
        &rows,
        &[
            ("DesiredState", "DESIRED STATE"),
            ("CurrentState", "CURRENT STATE"),
        ],
    )?;
    Ok(ExitCode::SUCCESS)
}

fn rm(client: &Client, a: RmArgs) -> Result<ExitCode> {
    let mut failed = false;
    for name in &a.names {
        // Long enough for tasks to stop (their default grace period is 10 s).
        match st::remove(client, name, Duration::from_secs(60), &mut print_event) {
            Ok(true) => {}
            Ok(false) => eprintln!("Nothing found in stack: {name}"),
            Err(e) => {
                eprintln!("{e}");
                failed = true;
            }
        }
    }
    if failed {
        bail!("some stacks were not removed completely");
    }
    Ok(ExitCode::SUCCESS)
}
