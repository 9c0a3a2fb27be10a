//! `execute(project, plan, backend)`: runs a [`Plan`] against a [`Backend`] (the binary
//! implements it over the engine and networking crates). Networks and volumes first, then the
//! services level by level — the services of one level in parallel, bounded by a concurrency
//! limit — each waiting for its `depends_on` conditions before it starts. When something
//! fails, what this run created is removed again (containers and networks; volumes never,
//! since they may already hold data) and the error names the service and the cause.

use std::collections::BTreeMap;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::model::{
    CONDITION_COMPLETED, CONDITION_HEALTHY, CONDITION_STARTED, Dependency, Project, Service,
};
use crate::observe::RunState;
use crate::plan::{ContainerAction, ContainerOp, ObjectAction, ObjectOp, Plan, ServicePlan};

pub use backend::{Backend, BackendError, Event};

#[derive(Debug, Clone)]
pub struct ExecuteOptions {
    /// Services (or containers) worked on at once.
    pub concurrency: usize,
    /// Stop timeout for recreate / scale down / orphans (`-t`).
    pub stop_timeout: Option<u32>,
    /// Upper bound on waiting for one dependency condition; `None` waits until it is met or
    /// can no longer be (unhealthy, exited).
    pub dependency_timeout: Option<Duration>,
    /// Poll interval for dependency conditions.
    pub poll: Duration,
    /// Containers created at once. Creates are admitted in start order (the first level's
    /// first), so the head of a depends_on chain is ready soonest; the engine serialises most
    /// of a create on its state locks, so a few at a time are as fast as many.
    pub create_concurrency: usize,
    /// `up -V`: a recreated container gets fresh anonymous volumes instead of the previous
    /// container's. The old ones are kept, dangling, as compose v2 does: their data is never
    /// deleted unless asked for (`volume prune`).
    pub renew_anon_volumes: bool,
}

impl Default for ExecuteOptions {
    fn default() -> Self {
        Self {
            concurrency: 8,
            stop_timeout: None,
            dependency_timeout: None,
            poll: Duration::from_millis(20),
            create_concurrency: 2,
            renew_anon_volumes: false,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ExecuteError {
    #[error(
        "network {name} declared as external, but could not be found; create it with `rcompose network create {name}`"
    )]
    ExternalNetworkMissing { name: String },
    #[error("external volume \"{name}\" not found; create it with `rcompose volume create {name}`")]
    ExternalVolumeMissing { name: String },
    #[error("{what}: {source}")]
    Backend {
        what: String,
        #[source]
        source: BackendError,
    },
    #[error("dependency failed to start: {message}")]
    Dependency { message: String },
}

/// What a successful run did: container ids per service (for `--wait`, attach, logs).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExecuteReport {
    pub containers: BTreeMap<String, Vec<(String, String)>>,
}

/// Everything this run created, for rollback.
#[derive(Default)]
struct Created {
    networks: Vec<String>,
    containers: Vec<(String, String)>,
}

/// Runs the plan. On error, removes the containers and networks this run created.
pub fn execute(
    project: &Project,
    plan: &Plan,
    backend: &dyn Backend,
    opts: &ExecuteOptions,
    on_event: &(dyn Fn(Event) + Sync),
) -> Result<ExecuteReport, ExecuteError> {
    let created = Mutex::new(Created::default());
    let result = run(project, plan, backend, opts, on_event, &created);
    if result.is_err() {
        let created = created.into_inner().unwrap_or_else(|e| e.into_inner());
        rollback(backend, &created, on_event);
    }
    result
}

fn run(
    project: &Project,
    plan: &Plan,
    backend: &dyn Backend,
    opts: &ExecuteOptions,
    on_event: &(dyn Fn(Event) + Sync),
    created: &Mutex<Created>,
) -> Result<ExecuteReport, ExecuteError> {
    check_external(plan, backend)?;
    for op in plan
        .networks
        .iter()
        .filter(|n| n.action == ObjectAction::Create)
    {
        create_object(project, op, "Network", backend, on_event)?;
        lock(created).networks.push(op.name.clone());
    }
    for op in plan
        .volumes
        .iter()
        .filter(|v| v.action == ObjectAction::Create)
    {
        create_object(project, op, "Volume", backend, on_event)?;
    }
    let sem = Semaphore::new(opts.concurrency.max(1));
    parallel(&plan.orphans, &sem, |op| {
        remove_container(op, backend, opts, on_event)
    })?;

    // Every service runs as its own task: it creates its missing containers at once (creating
    // runs nothing), waits only for the services it depends on to be done, then for their
    // depends_on conditions, and starts. So starts along a depends_on chain overlap the
    // creation of what comes later, and a service never waits for unrelated ones.
    let board = Board::default();
    let tickets: BTreeMap<&str, usize> = plan
        .services()
        .flat_map(|s| &s.ops)
        .filter(|o| matches!(o.action, ContainerAction::Create { .. }))
        .filter(|o| !refers_to_other_containers(&project.services[&o.service]))
        .enumerate()
        .map(|(i, o)| (o.name.as_str(), i))
        .collect();
    let ctx = OpContext {
        backend,
        opts,
        on_event,
        created,
        precreated: &Mutex::new(BTreeMap::new()),
        board: &board,
        sem: &sem,
        creates: &Turnstile::new(opts.create_concurrency.max(1)),
        tickets: &tickets,
    };
    std::thread::scope(|s| {
        for sp in plan.services() {
            let ctx = &ctx;
            s.spawn(move || match run_service(project, sp, ctx) {
                Ok(ids) => ctx.board.finish(&sp.service, ids),
                Err(Stop::Failed(e)) => ctx.board.fail(e),
                Err(Stop::Aborted) => {}
            });
        }
    });
    board.into_result()
}

/// Why a service task stopped early: its own error, or another task's.
enum Stop {
    Failed(ExecuteError),
    Aborted,
}

impl From<ExecuteError> for Stop {
    fn from(e: ExecuteError) -> Self {
        Stop::Failed(e)
    }
}

/// What the service tasks share: the services done so far (with their containers) and the
/// first error, which makes every other task give up at its next step.
#[derive(Default)]
struct Board {
    state: Mutex<BoardState>,
    changed: Condvar,
}

#[derive(Default)]
struct BoardState {
    report: ExecuteReport,
    error: Option<ExecuteError>,
}

impl Board {
    fn finish(&self, service: &str, ids: Vec<(String, String)>) {
        lock(&self.state)
            .report
            .containers
            .insert(service.to_string(), ids);
        self.changed.notify_all();
    }

    fn fail(&self, e: ExecuteError) {
        lock(&self.state).error.get_or_insert(e);
        self.changed.notify_all();
    }

    fn failed(&self) -> bool {
        lock(&self.state).error.is_some()
    }

    /// `Err(Aborted)` once another task failed.
    fn check(&self) -> Result<(), Stop> {
        if self.failed() {
            return Err(Stop::Aborted);
        }
        Ok(())
    }

    /// Blocks until every service in `deps` is done; their containers.
    fn wait_done(&self, deps: &[&str]) -> Result<BTreeMap<String, Vec<(String, String)>>, Stop> {
        let mut st = lock(&self.state);
        loop {
            if st.error.is_some() {
                return Err(Stop::Aborted);
            }
            if deps.iter().all(|d| st.report.containers.contains_key(*d)) {
                return Ok(deps
                    .iter()
                    .map(|d| (d.to_string(), st.report.containers[*d].clone()))
                    .collect());
            }
            st = self.changed.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn into_result(self) -> Result<ExecuteReport, ExecuteError> {
        let st = self.state.into_inner().unwrap_or_else(|e| e.into_inner());
        match st.error {
            Some(e) => Err(e),
            None => Ok(st.report),
        }
    }
}

/// One service: create its missing containers, wait for its dependencies, run its operations.
/// Returns the containers the service has afterwards.
fn run_service(
    project: &Project,
    sp: &ServicePlan,
    ctx: &OpContext,
) -> Result<Vec<(String, String)>, Stop> {
    let svc = &project.services[&sp.service];
    if !refers_to_other_containers(svc) {
        let creates: Vec<&ContainerOp> = sp
            .ops
            .iter()
            .filter(|o| matches!(o.action, ContainerAction::Create { .. }))
            .collect();
        let create = |op: &&ContainerOp| -> Result<(), Stop> {
            // Every ticket passes the turnstile, even after a failure, so later ones advance.
            let _turn = ctx.creates.enter(ctx.tickets[op.name.as_str()]);
            ctx.sem.acquire();
            let res = ctx
                .board
                .check()
                .and_then(|()| Ok(create_container(project, svc, op, ctx)?));
            ctx.sem.release();
            lock(ctx.precreated).insert(op.name.clone(), res?);
            Ok(())
        };
        if creates.len() == 1 {
            create(&creates[0])?;
        } else {
            std::thread::scope(|s| {
                let handles: Vec<_> = creates
                    .iter()
                    .map(|op| s.spawn(move || create(op)))
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                    .collect::<Result<Vec<()>, Stop>>()
            })?;
        }
    }
    let deps: Vec<&str> = sp.wait_for.iter().map(|(d, _)| d.as_str()).collect();
    let done = ctx.board.wait_done(&deps)?;
    if sp.starts_something() {
        for (dep, d) in &sp.wait_for {
            let containers = done.get(dep).map(Vec::as_slice).unwrap_or_default();
            wait_dependency(&sp.service, dep, d, containers, ctx)?;
        }
    }
    ctx.sem.acquire();
    let res = (|| {
        let mut ids = vec![];
        for op in &sp.ops {
            ctx.board.check()?;
            if let Some(id) = run_op(project, svc, op, ctx)? {
                ids.push((op.name.clone(), id));
            }
        }
        Ok(ids)
    })();
    ctx.sem.release();
    res
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn check_external(plan: &Plan, backend: &dyn Backend) -> Result<(), ExecuteError> {
    for op in plan
        .networks
        .iter()
        .filter(|o| o.action == ObjectAction::External)
    {
        let found = backend
            .network_exists(&op.name)
            .map_err(|e| ExecuteError::Backend {
                what: format!("network {}", op.name),
                source: e,
            })?;
        if !found {
            return Err(ExecuteError::ExternalNetworkMissing {
                name: op.name.clone(),
            });
        }
    }
    for op in plan
        .volumes
        .iter()
        .filter(|o| o.action == ObjectAction::External)
    {
        let found = backend
            .volume_exists(&op.name)
            .map_err(|e| ExecuteError::Backend {
                what: format!("volume {}", op.name),
                source: e,
            })?;
        if !found {
            return Err(ExecuteError::ExternalVolumeMissing {
                name: op.name.clone(),
            });
        }
    }
    Ok(())
}

fn create_object(
    project: &Project,
    op: &ObjectOp,
    kind: &'static str,
    backend: &dyn Backend,
    on_event: &(dyn Fn(Event) + Sync),
) -> Result<(), ExecuteError> {
    let ev = |status| {
        on_event(Event {
            kind,
            name: op.name.clone(),
            status,
        })
    };
    ev("Creating");
    let res = if kind == "Network" {
        backend.create_network(project, &op.key, &op.name)
    } else {
        backend.create_volume(project, &op.key, &op.name)
    };
    res.map_err(|e| ExecuteError::Backend {
        what: format!("{} {}", kind.to_lowercase(), op.name),
        source: e,
    })?;
    ev("Created");
    Ok(())
}

fn container_err(name: &str) -> impl FnOnce(BackendError) -> ExecuteError + '_ {
    move |e| ExecuteError::Backend {
        what: format!("container {name}"),
        source: e,
    }
}

/// Runs one container operation; returns the id of the container that exists afterwards.
/// Services whose creation needs another container to exist already (they are created at
/// their level, after what they refer to).
fn refers_to_other_containers(svc: &Service) -> bool {
    let joins = |m: &Option<String>| {
        m.as_deref()
            .is_some_and(|m| m.starts_with("service:") || m.starts_with("container:"))
    };
    !svc.volumes_from.is_empty() || joins(&svc.network_mode) || joins(&svc.pid) || joins(&svc.ipc)
}

/// What a container operation needs besides the operation itself.
struct OpContext<'a> {
    backend: &'a dyn Backend,
    opts: &'a ExecuteOptions,
    on_event: &'a (dyn Fn(Event) + Sync),
    created: &'a Mutex<Created>,
    /// Containers created ahead of their start: name → id.
    precreated: &'a Mutex<BTreeMap<String, String>>,
    board: &'a Board,
    /// Bounds the creates and operations running at once.
    sem: &'a Semaphore,
    /// Admits early creates in start order.
    creates: &'a Turnstile,
    /// Container name → its place in that order.
    tickets: &'a BTreeMap<&'a str, usize>,
}

fn create_container(
    project: &Project,
    svc: &Service,
    op: &ContainerOp,
    ctx: &OpContext,
) -> Result<String, ExecuteError> {
    let OpContext {
        backend,
        on_event,
        created,
        ..
    } = *ctx;
    let ev = |status| {
        on_event(Event {
            kind: "Container",
            name: op.name.clone(),
            status,
        })
    };
    ev("Creating");
    let id = backend
        .create_container(project, svc, &op.name, op.number)
        .map_err(container_err(&op.name))?;
    lock(created).containers.push((op.name.clone(), id.clone()));
    ev("Created");
    Ok(id)
}

fn run_op(
    project: &Project,
    svc: &Service,
    op: &ContainerOp,
    ctx: &OpContext,
) -> Result<Option<String>, ExecuteError> {
    let OpContext {
        backend,
        opts,
        on_event,
        created,
        precreated,
        ..
    } = *ctx;
    let ev = |status| {
        on_event(Event {
            kind: "Container",
            name: op.name.clone(),
            status,
        })
    };
    let create = |start: bool| -> Result<String, ExecuteError> {
        let ready = lock(precreated).remove(&op.name);
        let id = match ready {
            Some(id) => id,
            None => create_container(project, svc, op, ctx)?,
        };
        if start {
            ev("Starting");
            backend
                .start_container(&id)
                .map_err(container_err(&op.name))?;
            ev("Started");
        }
        Ok(id)
    };
    match &op.action {
        ContainerAction::Create { start } => create(*start).map(Some),
        ContainerAction::Recreate { start } => {
            let old = op.id.as_deref().unwrap_or_default();
            ev("Recreate");
            let inherit = if opts.renew_anon_volumes {
                vec![]
            } else {
                backend.anonymous_volumes(old)
            };
            backend
                .stop_container(old, opts.stop_timeout)
                .map_err(container_err(&op.name))?;
            backend
                .remove_container(old, false)
                .map_err(container_err(&op.name))?;
            ev("Creating");
            let id = backend
                .create_container_inheriting(project, svc, &op.name, op.number, &inherit)
                .map_err(container_err(&op.name))?;
            lock(created).containers.push((op.name.clone(), id.clone()));
            ev("Created");
            if *start {
                ev("Starting");
                backend
                    .start_container(&id)
                    .map_err(container_err(&op.name))?;
                ev("Started");
            }
            ev("Recreated");
            Ok(Some(id))
        }
        ContainerAction::Start => {
            let id = op.id.clone().unwrap_or_default();
            ev("Starting");
            backend
                .start_container(&id)
                .map_err(container_err(&op.name))?;
            ev("Started");
            Ok(Some(id))
        }
        ContainerAction::Keep => {
            ev("Running");
            Ok(op.id.clone())
        }
        ContainerAction::Remove => {
            remove_container(op, backend, opts, on_event)?;
            Ok(None)
        }
    }
}

fn remove_container(
    op: &ContainerOp,
    backend: &dyn Backend,
    opts: &ExecuteOptions,
    on_event: &(dyn Fn(Event) + Sync),
) -> Result<(), ExecuteError> {
    let id = op.id.as_deref().unwrap_or_default();
    let ev = |status| {
        on_event(Event {
            kind: "Container",
            name: op.name.clone(),
            status,
        })
    };
    ev("Stopping");
    backend
        .stop_container(id, opts.stop_timeout)
        .map_err(container_err(&op.name))?;
    ev("Stopped");
    ev("Removing");
    backend
        .remove_container(id, false)
        .map_err(container_err(&op.name))?;
    ev("Removed");
    Ok(())
}

/// Blocks until every container of `dep` meets `d.condition`. A dependency with
/// `required: false` that fails only produces a warning, as in compose.
fn wait_dependency(
    service: &str,
    dep: &str,
    d: &Dependency,
    containers: &[(String, String)],
    ctx: &OpContext,
) -> Result<(), Stop> {
    for (name, id) in containers {
        match wait_condition(name, id, dep, &d.condition, ctx) {
            Err(Stop::Failed(e)) if !d.required => {
                tracing::warn!("optional dependency {dep} of {service} failed: {e}");
            }
            other => other?,
        }
    }
    Ok(())
}

fn wait_condition(
    name: &str,
    id: &str,
    dep: &str,
    condition: &str,
    ctx: &OpContext,
) -> Result<(), Stop> {
    let OpContext {
        backend,
        opts,
        on_event,
        ..
    } = *ctx;
    let ev = |status| {
        on_event(Event {
            kind: "Container",
            name: name.to_string(),
            status,
        })
    };
    if condition == CONDITION_STARTED {
        return Ok(());
    }
    ev("Waiting");
    let started = Instant::now();
    let fail = |why: String| {
        let mut message = format!("service \"{dep}\" ({name}) {why}");
        let health = backend.health_log(id);
        if !health.is_empty() {
            message.push_str("\n  last health check output:");
            for l in health.iter().rev().take(3).rev() {
                message.push_str(&format!("\n    {}", l.trim_end()));
            }
        }
        let logs = backend.log_tail(id, 10);
        if !logs.is_empty() {
            message.push_str("\n  last log lines:");
            for l in &logs {
                message.push_str(&format!("\n    {}", l.trim_end()));
            }
        }
        ExecuteError::Dependency { message }
    };
    loop {
        let c = backend.poll_container(id).map_err(container_err(name))?;
        match condition {
            CONDITION_HEALTHY => match c.health.as_deref() {
                Some("healthy") => {
                    ev("Healthy");
                    return Ok(());
                }
                Some("unhealthy") => return Err(fail("is unhealthy".into()).into()),
                None => {
                    return Err(fail(
                        "has no healthcheck configured, so service_healthy can never be met".into(),
                    )
                    .into());
                }
                _ if !c.status.is_up() => {
                    return Err(fail(format!("exited with code {}", c.exit_code)).into());
                }
                _ => {}
            },
            CONDITION_COMPLETED => {
                if matches!(c.status, RunState::Exited | RunState::Dead) {
                    if c.exit_code == 0 {
                        ev("Exited");
                        return Ok(());
                    }
                    return Err(fail(format!(
                        "didn't complete successfully: exit {}",
                        c.exit_code
                    ))
                    .into());
                }
            }
            other => {
                return Err(ExecuteError::Dependency {
                    message: format!("unknown depends_on condition \"{other}\" for {dep}"),
                }
                .into());
            }
        }
        if let Some(t) = opts.dependency_timeout
            && started.elapsed() > t
        {
            return Err(fail(format!(
                "did not become {} within {}s",
                if condition == CONDITION_HEALTHY {
                    "healthy"
                } else {
                    "complete"
                },
                t.as_secs()
            ))
            .into());
        }
        ctx.board.check()?;
        std::thread::sleep(opts.poll);
    }
}

fn rollback(backend: &dyn Backend, created: &Created, on_event: &(dyn Fn(Event) + Sync)) {
    for (name, id) in created.containers.iter().rev() {
        let _ = backend.stop_container(id, Some(0));
        if backend.remove_container(id, true).is_ok() {
            on_event(Event {
                kind: "Container",
                name: name.clone(),
                status: "Removed",
            });
        }
    }
    for name in created.networks.iter().rev() {
        if backend.remove_network(name).is_ok() {
            on_event(Event {
                kind: "Network",
                name: name.clone(),
                status: "Removed",
            });
        }
    }
}

mod backend;
mod gate;
pub use gate::{Semaphore, Turn, Turnstile, alongside, each, first_of, parallel};

#[cfg(test)]
pub(crate) mod tests;
