//! `rcompose pull` and `rcompose push`: the project's service images through the engine's
//! registry client, in parallel, with compose v2's skip rules; and the pulls that
//! `up`/`create`/`run` do before their plan runs (`--pull`, `pull_policy`).

use std::collections::{BTreeMap, HashMap};
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Result, anyhow, bail};
use clap::Args;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use rcompose_compose::graph::DependencyGraph;
use rcompose_compose::model::Project;
use rcompose_engine::image::progress::{LayerStatus, Progress};
use rcompose_engine::store::Store;

use super::GlobalOpts;
use super::compose_common::{check_services, load_project};
use rcompose_wire::backend::pull::{Event, Job, Policy, pull_jobs, push_jobs};
use rcompose_wire::backend::pull_policy::{buildable, pull_cmd_jobs, push_cmd_jobs, up_jobs};

#[derive(Debug, Args)]
pub struct PullArgs {
    /// Ignore images that can be built
    #[arg(long)]
    pub ignore_buildable: bool,
    /// Pull what it can and ignores images with pull failures
    #[arg(long)]
    pub ignore_pull_failures: bool,
    /// Also pull services declared as dependencies
    #[arg(long)]
    pub include_deps: bool,
    /// Apply pull policy ("missing"|"always")
    #[arg(long, value_name = "POLICY")]
    pub policy: Option<String>,
    /// Pull without printing progress information
    #[arg(short, long)]
    pub quiet: bool,
    pub services: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PushArgs {
    /// Push what it can and ignores images with push failures
    #[arg(long)]
    pub ignore_push_failures: bool,
    /// Also push images of services declared as dependencies
    #[arg(long)]
    pub include_deps: bool,
    /// Push without printing progress information
    #[arg(short, long)]
    pub quiet: bool,
    pub services: Vec<String>,
}

/// The services a command acts on: all when none are named; else the named ones, with what
/// they depend on when `deps`.
fn selected(project: &Project, services: &[String], deps: bool) -> Result<Vec<String>> {
    check_services(project, services)?;
    if services.is_empty() {
        return Ok(project.service_names());
    }
    if !deps {
        return Ok(services.to_vec());
    }
    let graph = DependencyGraph::new(project)?;
    Ok(graph.with_dependencies(services).into_iter().collect())
}

pub fn pull(g: &GlobalOpts, a: PullArgs) -> Result<ExitCode> {
    let over = match a.policy.as_deref() {
        None => None,
        Some(p @ ("missing" | "always")) => Some(Policy::parse(p).map_err(|e| anyhow!(e))?),
        Some(p) => bail!("invalid --policy {p:?}: use missing or always"),
    };
    let project = load_project(g, &a.services)?;
    let names = selected(&project, &a.services, a.include_deps)?;
    let store = Store::open(&g.root)?;
    let out = Renderer::new(a.quiet, "Pulling", "Pulled");
    let skip = |service: &str, why: &str| out.skipped(service, why);
    let jobs = pull_cmd_jobs(&store, &project, &names, over, a.ignore_buildable, &skip)?;
    if g.dry_run {
        for j in &jobs {
            println!("service {}: would pull {}", j.service, j.image);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let results = pull_jobs(&g.root, &jobs, !a.ignore_pull_failures, &|j, e| {
        out.event(j, e)
    })?;
    out.finish();
    let mut must_build = vec![];
    let mut errors = vec![];
    for (job, res) in jobs.iter().zip(results) {
        if let Some(Err(e)) = res {
            if project.services[&job.service].build.is_some() {
                must_build.push(job.service.clone());
            }
            errors.push(anyhow::Error::from(e));
        }
    }
    if !must_build.is_empty() {
        eprintln!(
            "WARNING: Some service image(s) must be built from source: {}",
            must_build.join(" ")
        );
    }
    finish_errors(errors, a.ignore_pull_failures, "pull")
}

pub fn push(g: &GlobalOpts, a: PushArgs) -> Result<ExitCode> {
    let project = load_project(g, &a.services)?;
    let names = selected(&project, &a.services, a.include_deps)?;
    let out = Renderer::new(a.quiet, "Pushing", "Pushed");
    let jobs = push_cmd_jobs(&project, &names, &|service| out.skipped(service, ""))?;
    if g.dry_run {
        for j in &jobs {
            println!("service {}: would push {}", j.service, j.image);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let results = push_jobs(&g.root, &jobs, !a.ignore_push_failures, &|j, e| {
        out.event(j, e)
    })?;
    out.finish();
    let errors = results
        .into_iter()
        .filter_map(|r| r.and_then(Result::err))
        .map(anyhow::Error::from)
        .collect();
    finish_errors(errors, a.ignore_push_failures, "push")
}

/// Failures are an error (all of them named) unless they are to be ignored.
fn finish_errors(errors: Vec<anyhow::Error>, ignore: bool, verb: &str) -> Result<ExitCode> {
    if errors.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    if ignore {
        for e in &errors {
            eprintln!("WARNING: {e:#} (ignored: --ignore-{verb}-failures)");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut errors = errors;
    if errors.len() == 1 {
        return Err(errors.remove(0));
    }
    let text: Vec<String> = errors.iter().map(|e| format!("{e:#}")).collect();
    Err(anyhow!("{}", text.join("\n")))
}

/// `up`/`create`/`run`: before the plan runs, pull the images the policies ask for (`flag`
/// is `--pull`, which overrides every service's `pull_policy`). A missing image with policy
/// `never` is an error naming the service.
pub fn pull_for_up(
    g: &GlobalOpts,
    project: &Project,
    services: &[String],
    no_deps: bool,
    flag: Option<&str>,
    quiet: bool,
) -> Result<()> {
    // A bad --pull is reported before a bad service name, as before.
    if let Some(f) = flag {
        Policy::parse_flag(f).map_err(|e| anyhow!(e))?;
    }
    let names = selected(project, services, !no_deps)?;
    let jobs = up_jobs(&g.root, project, &names, flag)?;
    if jobs.is_empty() {
        return Ok(());
    }
    if g.dry_run {
        for j in &jobs {
            eprintln!(
                " ⠿ {} Pulling (dry run: {} is not pulled)",
                j.service, j.image
            );
        }
        return Ok(());
    }
    let out = Renderer::new(quiet, "Pulling", "Pulled");
    let results = pull_jobs(&g.root, &jobs, true, &|j, e| out.event(j, e))?;
    out.finish();
    for (job, res) in jobs.iter().zip(results) {
        let Some(Err(e)) = res else { continue };
        let e = anyhow::Error::from(e);
        // As compose: an image the project can build is built when its pull fails (the plan
        // then says whether it can be).
        if buildable(project, &job.image) {
            tracing::warn!("{e:#}; the image will be built");
            continue;
        }
        return Err(e);
    }
    Ok(())
}

/// Compose-style progress on stderr: one line per service (`✔ web Pulled`), with a spinner
/// and the layer count/bytes on a terminal; plain lines otherwise (final layer states too).
struct Renderer {
    quiet: bool,
    working: &'static str,
    done: &'static str,
    multi: Option<MultiProgress>,
    bars: Mutex<HashMap<String, ProgressBar>>,
    layers: Mutex<HashMap<String, BTreeMap<String, LayerState>>>,
    out: Mutex<()>,
}

impl Renderer {
    fn new(quiet: bool, working: &'static str, done: &'static str) -> Renderer {
        let tty = std::io::stderr().is_terminal();
        Renderer {
            quiet,
            working,
            done,
            multi: (tty && !quiet)
                .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr())),
            bars: Mutex::new(HashMap::new()),
            layers: Mutex::new(HashMap::new()),
            out: Mutex::new(()),
        }
    }

    fn line(&self, text: &str) {
        if self.quiet {
            return;
        }
        match &self.multi {
            Some(m) => {
                let _ = m.println(text);
            }
            None => {
                let _g = self.out.lock().unwrap_or_else(|e| e.into_inner());
                let _ = writeln!(std::io::stderr(), "{text}");
            }
        }
    }

    fn skipped(&self, service: &str, why: &str) {
        if why.is_empty() {
            self.line(&format!(" ✔ {service} Skipped"));
        } else {
            self.line(&format!(" ✔ {service} Skipped - {why}"));
        }
    }

    fn event(&self, job: &Job, e: Event) {
        if self.quiet {
            return;
        }
        let svc = &job.service;
        match e {
            Event::Started => match &self.multi {
                Some(m) => {
                    let bar = m.add(ProgressBar::new_spinner());
                    bar.set_style(
                        ProgressStyle::with_template(" {spinner} {wide_msg}")
                            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                    );
                    bar.set_message(format!("{svc} {}", self.working));
                    bar.enable_steady_tick(Duration::from_millis(100));
                    self.bars
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(svc.clone(), bar);
                }
                None => self.line(&format!(" ⠿ {svc} {}", self.working)),
            },
            Event::Progress(Progress::Layer { id, status }) => self.layer(svc, &id, &status),
            Event::Progress(_) => {}
            Event::Done => self.end(svc, &format!("✔ {svc} {}", self.done)),
            Event::Failed(msg) => self.end(svc, &format!("✘ {svc} Error {msg}")),
        }
    }

    fn layer(&self, svc: &str, id: &str, status: &LayerStatus) {
        let summary = {
            let mut all = self.layers.lock().unwrap_or_else(|e| e.into_inner());
            let layers = all.entry(svc.to_string()).or_default();
            let entry = layers.entry(id.to_string()).or_default();
            match status {
                LayerStatus::Downloading(d, t) | LayerStatus::Pushing(d, t) => {
                    *entry = (*d, *t, false)
                }
                s if s.is_final() => entry.2 = true,
                _ => {}
            }
            let finished = layers.values().filter(|l| l.2).count();
            let (done, total) = layers.values().fold((0, 0), |(d, t), l| (d + l.0, t + l.1));
            format!(
                "{svc} {} [{finished}/{} layers] {}/{}",
                self.working,
                layers.len(),
                mb(done),
                mb(total)
            )
        };
        let bars = self.bars.lock().unwrap_or_else(|e| e.into_inner());
        match bars.get(svc) {
            Some(bar) => bar.set_message(summary),
            None if status.is_final() => {
                drop(bars);
                self.line(&format!("   ✔ {svc} {id} {}", status.label()));
            }
            None => {}
        }
    }

    fn end(&self, svc: &str, text: &str) {
        let bar = self
            .bars
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(svc);
        match bar {
            Some(bar) => {
                bar.set_style(
                    ProgressStyle::with_template(" {wide_msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                bar.finish_with_message(text.to_string());
            }
            None => self.line(&format!(" {text}")),
        }
    }

    fn finish(&self) {
        for (_, bar) in self.bars.lock().unwrap_or_else(|e| e.into_inner()).drain() {
            bar.finish();
        }
    }
}

/// One layer of a service's pull: bytes done, total, finished.
type LayerState = (u64, u64, bool);

fn mb(bytes: u64) -> String {
    format!("{:.1}MB", bytes as f64 / 1_000_000.0)
}
