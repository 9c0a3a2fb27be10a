//! Executor tests against a recording fake backend.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::*;
use crate::model::Service;
use crate::observe::ObservedState;
use crate::observe::{ContainerSummary, ObjectSummary};
use crate::reconcile::{ReconcileOptions, reconcile};

#[derive(Default)]
pub(crate) struct Fake {
    pub(crate) calls: Mutex<Vec<String>>,
    /// Container name → health it reports.
    pub(crate) health: BTreeMap<String, &'static str>,
    /// Container name → exit code once "exited" (for service_completed_successfully).
    pub(crate) exits: BTreeMap<String, i32>,
    pub(crate) fail_create: Option<String>,
    /// Container name whose stop fails.
    pub(crate) fail_stop: Option<String>,
    pub(crate) ids: Mutex<BTreeMap<String, String>>,
    /// Container name whose start takes a while (logs `started <name>` when done).
    pub(crate) slow_start: Option<String>,
    /// Container name whose stop takes a while (logs `stopped <name>` when done).
    pub(crate) slow_stop: Option<String>,
    /// What `list_containers` returns.
    pub(crate) listed: Vec<ContainerSummary>,
    /// Containers stopped or killed and not started since (they inspect as exited).
    pub(crate) down: Mutex<std::collections::BTreeSet<String>>,
}

impl Fake {
    fn log(&self, s: String) {
        self.calls.lock().unwrap().push(s);
    }
    pub(crate) fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
    fn name_of(&self, id: &str) -> String {
        id.trim_start_matches("id-").to_string()
    }
}

impl Backend for Fake {
    fn list_containers(&self) -> Result<Vec<ContainerSummary>, BackendError> {
        Ok(self.listed.clone())
    }
    fn list_networks(&self) -> Result<Vec<ObjectSummary>, BackendError> {
        Ok(vec![])
    }
    fn list_volumes(&self) -> Result<Vec<ObjectSummary>, BackendError> {
        Ok(vec![])
    }
    fn network_exists(&self, name: &str) -> Result<bool, BackendError> {
        Ok(name == "present")
    }
    fn volume_exists(&self, _: &str) -> Result<bool, BackendError> {
        Ok(false)
    }
    fn create_network(&self, _: &Project, _: &str, name: &str) -> Result<(), BackendError> {
        self.log(format!("create network {name}"));
        Ok(())
    }
    fn remove_network(&self, name: &str) -> Result<(), BackendError> {
        self.log(format!("remove network {name}"));
        Ok(())
    }
    fn create_volume(&self, _: &Project, _: &str, name: &str) -> Result<(), BackendError> {
        self.log(format!("create volume {name}"));
        Ok(())
    }
    fn remove_volume(&self, name: &str) -> Result<(), BackendError> {
        self.log(format!("remove volume {name}"));
        Ok(())
    }
    fn image_id(&self, _: &str) -> Result<Option<String>, BackendError> {
        Ok(Some("sha256:x".into()))
    }
    fn create_container(
        &self,
        _: &Project,
        _: &Service,
        name: &str,
        _: u32,
    ) -> Result<String, BackendError> {
        if self.fail_create.as_deref() == Some(name) {
            return Err(BackendError::new("image not found"));
        }
        self.log(format!("create {name}"));
        let id = format!("id-{name}");
        self.ids.lock().unwrap().insert(name.into(), id.clone());
        Ok(id)
    }
    fn start_container(&self, id: &str) -> Result<(), BackendError> {
        let name = self.name_of(id);
        self.down.lock().unwrap().remove(&name);
        self.log(format!("start {name}"));
        if self.slow_start.as_deref() == Some(name.as_str()) {
            std::thread::sleep(Duration::from_millis(300));
            self.log(format!("started {name}"));
        }
        Ok(())
    }
    fn stop_container(&self, id: &str, _: Option<u32>) -> Result<(), BackendError> {
        let name = self.name_of(id);
        if self.fail_stop.as_deref() == Some(name.as_str()) {
            return Err(BackendError::new("device busy"));
        }
        self.log(format!("stop {name}"));
        if self.slow_stop.as_deref() == Some(name.as_str()) {
            std::thread::sleep(Duration::from_millis(300));
            self.log(format!("stopped {name}"));
        }
        self.down.lock().unwrap().insert(name);
        Ok(())
    }
    fn kill_container(&self, id: &str, signal: &str) -> Result<(), BackendError> {
        let name = self.name_of(id);
        self.log(format!("kill {name} {signal}"));
        self.down.lock().unwrap().insert(name);
        Ok(())
    }
    fn pause_container(&self, id: &str) -> Result<(), BackendError> {
        self.log(format!("pause {}", self.name_of(id)));
        Ok(())
    }
    fn unpause_container(&self, id: &str) -> Result<(), BackendError> {
        self.log(format!("unpause {}", self.name_of(id)));
        Ok(())
    }
    fn remove_container(&self, id: &str, _: bool) -> Result<(), BackendError> {
        self.log(format!("rm {}", self.name_of(id)));
        Ok(())
    }
    fn inspect_container(&self, id: &str) -> Result<ContainerSummary, BackendError> {
        let name = self.name_of(id);
        let mut c = ContainerSummary {
            id: id.into(),
            name: name.clone(),
            status: RunState::Running,
            health: self.health.get(&name).map(|h| h.to_string()),
            labels: (self.listed.iter().find(|l| l.id == id))
                .map(|l| l.labels.clone())
                .unwrap_or_default(),
            ..Default::default()
        };
        if let Some(code) = self.exits.get(&name) {
            c.status = RunState::Exited;
            c.exit_code = *code;
        } else if self.down.lock().unwrap().contains(&name) {
            c.status = RunState::Exited;
        }
        Ok(c)
    }
    fn log_tail(&self, _: &str, _: usize) -> Vec<String> {
        vec!["db: out of cheese".into()]
    }
    fn health_log(&self, _: &str) -> Vec<String> {
        vec!["connection refused".into()]
    }
    fn anonymous_volumes(&self, id: &str) -> Vec<(String, String)> {
        vec![("/data".into(), format!("anon-of-{}", self.name_of(id)))]
    }
    fn create_container_inheriting(
        &self,
        project: &Project,
        service: &Service,
        name: &str,
        number: u32,
        inherit: &[(String, String)],
    ) -> Result<String, BackendError> {
        for (target, volume) in inherit {
            self.log(format!("inherit {volume} at {target}"));
        }
        self.create_container(project, service, name, number)
    }
}

/// (dependency, condition, required)
pub(crate) type Dep<'a> = (&'a str, &'a str, bool);

pub(crate) fn project(edges: &[(&str, &[Dep])]) -> Project {
    let mut p = Project {
        name: "demo".into(),
        ..Default::default()
    };
    p.networks.insert("default".into(), Default::default());
    p.volumes.insert("data".into(), Default::default());
    for (name, deps) in edges {
        let mut svc = Service {
            name: name.to_string(),
            image: Some("busybox".into()),
            ..Default::default()
        };
        for (d, cond, required) in *deps {
            svc.depends_on.insert(
                d.to_string(),
                Dependency {
                    condition: cond.to_string(),
                    restart: false,
                    required: *required,
                    extensions: Default::default(),
                },
            );
        }
        p.services.insert(name.to_string(), svc);
    }
    p
}

fn run_plan(p: &Project, fake: &Fake) -> Result<ExecuteReport, ExecuteError> {
    let plan = reconcile(p, &ObservedState::default(), &ReconcileOptions::default()).unwrap();
    let opts = ExecuteOptions {
        dependency_timeout: Some(Duration::from_secs(5)),
        poll: Duration::from_millis(1),
        ..Default::default()
    };
    execute(p, &plan, fake, &opts, &|_| {})
}

fn pos(calls: &[String], s: &str) -> usize {
    calls
        .iter()
        .position(|c| c == s)
        .unwrap_or_else(|| panic!("{s} not in {calls:?}"))
}

#[test]
fn starts_in_dependency_order_after_healthy() {
    let p = project(&[
        ("db", &[]),
        ("api", &[("db", CONDITION_HEALTHY, true)]),
        ("web", &[("api", CONDITION_STARTED, true)]),
    ]);
    let fake = Fake {
        health: [("demo-db-1".to_string(), "healthy")].into(),
        ..Default::default()
    };
    let report = run_plan(&p, &fake).unwrap();
    let calls = fake.calls();
    assert_eq!(calls[0], "create network demo_default");
    assert_eq!(calls[1], "create volume demo_data");
    // Each container is created before it starts; starts follow the dependencies.
    for n in ["demo-db-1", "demo-api-1", "demo-web-1"] {
        assert!(
            pos(&calls, &format!("create {n}")) < pos(&calls, &format!("start {n}")),
            "{calls:?}"
        );
    }
    assert!(pos(&calls, "start demo-db-1") < pos(&calls, "start demo-api-1"));
    assert!(pos(&calls, "start demo-api-1") < pos(&calls, "start demo-web-1"));
    assert_eq!(
        report.containers["web"],
        [("demo-web-1".into(), "id-demo-web-1".into())]
    );
}

#[test]
fn unhealthy_dependency_fails_with_its_logs_and_rolls_back_but_keeps_volumes() {
    let p = project(&[("db", &[]), ("api", &[("db", CONDITION_HEALTHY, true)])]);
    let fake = Fake {
        health: [("demo-db-1".to_string(), "unhealthy")].into(),
        ..Default::default()
    };
    let err = run_plan(&p, &fake).unwrap_err().to_string();
    assert!(
        err.starts_with("dependency failed to start: service \"db\" (demo-db-1) is unhealthy"),
        "{err}"
    );
    assert!(
        err.contains("connection refused") && err.contains("out of cheese"),
        "{err}"
    );
    let calls = fake.calls();
    assert!(calls.contains(&"rm demo-db-1".to_string()), "{calls:?}");
    assert!(
        calls.contains(&"remove network demo_default".to_string()),
        "{calls:?}"
    );
    assert!(
        !calls.iter().any(|c| c.starts_with("remove volume")),
        "{calls:?}"
    );
    assert!(!calls.contains(&"start demo-api-1".to_string()));
    assert!(
        calls.contains(&"rm demo-api-1".to_string()),
        "created ahead, rolled back"
    );
}

#[test]
fn missing_healthcheck_and_failed_completion_are_explained() {
    let p = project(&[("db", &[]), ("api", &[("db", CONDITION_HEALTHY, true)])]);
    let err = run_plan(&p, &Fake::default()).unwrap_err().to_string();
    assert!(err.contains("has no healthcheck configured"), "{err}");

    let p = project(&[
        ("init", &[]),
        ("api", &[("init", CONDITION_COMPLETED, true)]),
    ]);
    let fake = Fake {
        exits: [("demo-init-1".to_string(), 3)].into(),
        ..Default::default()
    };
    let err = run_plan(&p, &fake).unwrap_err().to_string();
    assert!(
        err.contains("didn't complete successfully: exit 3"),
        "{err}"
    );
}

#[test]
fn optional_dependency_failure_does_not_stop_up() {
    let p = project(&[
        ("init", &[]),
        ("api", &[("init", CONDITION_COMPLETED, false)]),
    ]);
    let fake = Fake {
        exits: [("demo-init-1".to_string(), 1)].into(),
        ..Default::default()
    };
    run_plan(&p, &fake).unwrap();
    assert!(fake.calls().contains(&"start demo-api-1".to_string()));
}

#[test]
fn completed_dependency_lets_dependents_start() {
    let p = project(&[
        ("init", &[]),
        ("api", &[("init", CONDITION_COMPLETED, true)]),
    ]);
    let fake = Fake {
        exits: [("demo-init-1".to_string(), 0)].into(),
        ..Default::default()
    };
    run_plan(&p, &fake).unwrap();
    assert!(fake.calls().contains(&"start demo-api-1".to_string()));
}

#[test]
fn failed_create_removes_what_this_run_created() {
    let p = project(&[
        ("a", &[]),
        ("b", &[]),
        ("c", &[("a", CONDITION_STARTED, true)]),
    ]);
    let fake = Fake {
        fail_create: Some("demo-c-1".into()),
        ..Default::default()
    };
    let err = run_plan(&p, &fake).unwrap_err().to_string();
    assert_eq!(err, "container demo-c-1: image not found");
    let calls = fake.calls();
    // Whatever the other tasks managed to create before the failure is removed again.
    for c in calls.iter().filter_map(|c| c.strip_prefix("create demo-")) {
        assert!(calls.contains(&format!("rm demo-{c}")), "{calls:?}");
    }
    assert!(!calls.contains(&"start demo-c-1".to_string()), "{calls:?}");
    assert!(calls.contains(&"remove network demo_default".to_string()));
}

#[test]
fn a_service_waits_only_for_its_own_dependencies() {
    // a is slow to start; b depends only on c, so it starts before a is done (levels would
    // have made it wait for the whole first level).
    let p = project(&[
        ("a", &[]),
        ("c", &[]),
        ("b", &[("c", CONDITION_STARTED, true)]),
        ("d", &[("a", CONDITION_STARTED, true)]),
    ]);
    let fake = Fake {
        slow_start: Some("demo-a-1".into()),
        ..Default::default()
    };
    run_plan(&p, &fake).unwrap();
    let calls = fake.calls();
    assert!(pos(&calls, "start demo-c-1") < pos(&calls, "start demo-b-1"));
    assert!(
        pos(&calls, "start demo-b-1") < pos(&calls, "started demo-a-1"),
        "{calls:?}"
    );
    assert!(pos(&calls, "started demo-a-1") < pos(&calls, "start demo-d-1"));
}

#[test]
fn a_failure_stops_the_services_still_waiting() {
    // db never becomes healthy: api fails, and web (after api) is never started.
    let p = project(&[
        ("db", &[]),
        ("api", &[("db", CONDITION_HEALTHY, true)]),
        ("web", &[("api", CONDITION_STARTED, true)]),
    ]);
    let fake = Fake {
        health: [("demo-db-1".to_string(), "unhealthy")].into(),
        ..Default::default()
    };
    let err = run_plan(&p, &fake).unwrap_err().to_string();
    assert!(err.contains("\"db\" (demo-db-1) is unhealthy"), "{err}");
    let calls = fake.calls();
    assert!(
        !calls
            .iter()
            .any(|c| c == "start demo-web-1" || c == "start demo-api-1")
    );
    for c in calls.iter().filter_map(|c| c.strip_prefix("create demo-")) {
        assert!(calls.contains(&format!("rm demo-{c}")), "{calls:?}");
    }
}

#[test]
fn external_network_must_exist_before_anything_is_created() {
    let mut p = project(&[("a", &[])]);
    p.networks.insert(
        "front".into(),
        crate::model::Network {
            external: true,
            name: Some("missing".into()),
            ..Default::default()
        },
    );
    let err = run_plan(&p, &Fake::default()).unwrap_err();
    assert!(matches!(err, ExecuteError::ExternalNetworkMissing { .. }));
}

#[test]
fn semaphore_bounds_parallelism() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let sem = Semaphore::new(2);
    let now = AtomicUsize::new(0);
    let max = AtomicUsize::new(0);
    let items: Vec<u32> = (0..8).collect();
    parallel(&items, &sem, |_| -> Result<(), ()> {
        let n = now.fetch_add(1, Ordering::SeqCst) + 1;
        max.fetch_max(n, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(5));
        now.fetch_sub(1, Ordering::SeqCst);
        Ok(())
    })
    .unwrap();
    assert!(max.load(Ordering::SeqCst) <= 2);
}

/// Tickets sent through a turnstile that admits one at a time, arriving in reverse: the
/// order inside is the order of admission.
fn turnstile_order(tickets: usize) -> Vec<usize> {
    let gate = Turnstile::new(1);
    let order = Mutex::new(vec![]);
    std::thread::scope(|s| {
        for t in (0..tickets).rev() {
            let (gate, order) = (&gate, &order);
            s.spawn(move || {
                let _turn = gate.enter(t);
                order.lock().unwrap().push(t);
            });
        }
    });
    order.into_inner().unwrap()
}

/// Sends `tickets` (in that arrival order) through a turnstile of `bound`, each staying
/// `pause` inside; the most ever inside at once, and how many passed.
fn turnstile_crowd(
    tickets: impl Iterator<Item = usize>,
    bound: usize,
    pause: Duration,
) -> (usize, usize) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let gate = Turnstile::new(bound);
    let (now, max, passed) = (
        AtomicUsize::new(0),
        AtomicUsize::new(0),
        AtomicUsize::new(0),
    );
    std::thread::scope(|s| {
        for t in tickets {
            let (gate, now, max, passed) = (&gate, &now, &max, &passed);
            s.spawn(move || {
                let _turn = gate.enter(t);
                let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                max.fetch_max(n, Ordering::SeqCst);
                std::thread::sleep(pause);
                now.fetch_sub(1, Ordering::SeqCst);
                passed.fetch_add(1, Ordering::SeqCst);
            });
        }
    });
    (max.into_inner(), passed.into_inner())
}

#[test]
fn turnstile_admits_in_ticket_order_within_its_bound() {
    // One at a time: the order inside is the ticket order, whatever order threads arrive in.
    assert_eq!(turnstile_order(6), vec![0, 1, 2, 3, 4, 5]);
    let (max, _) = turnstile_crowd(0..8, 2, Duration::from_millis(2));
    assert!(max <= 2);
}

/// More tickets than the turnstile has wake-up slots, arriving in reverse: tickets that share
/// a slot still all pass, in order, and never more than the bound inside.
#[test]
fn turnstile_with_tickets_sharing_slots_admits_them_all_in_order() {
    assert_eq!(turnstile_order(200), (0..200).collect::<Vec<_>>());
    let (max, passed) = turnstile_crowd((0..200).rev(), 3, Duration::ZERO);
    assert_eq!(passed, 200);
    assert!(max <= 3);
}

/// `up --force-recreate` of one running container, with or without `-V`.
fn recreate_one(fake: &Fake, renew: bool) -> ExecuteReport {
    let p = project(&[("db", &[])]);
    let svc = &p.services["db"];
    let name = crate::labels::container_name(&p.name, svc, 1);
    let summary = ContainerSummary {
        id: format!("id-{name}"),
        name,
        image_id: "sha256:x".into(),
        status: RunState::Running,
        labels: crate::labels::container_labels(&p, svc, 1, false),
        ..Default::default()
    };
    let observed = ObservedState::from_objects(&p.name, &[summary], &[], &[]);
    let ropts = ReconcileOptions {
        recreate: crate::reconcile::RecreatePolicy::Force,
        ..Default::default()
    };
    let plan = reconcile(&p, &observed, &ropts).unwrap();
    let opts = ExecuteOptions {
        poll: Duration::from_millis(1),
        renew_anon_volumes: renew,
        ..Default::default()
    };
    execute(&p, &plan, fake, &opts, &|_| {}).unwrap()
}

#[test]
fn a_recreated_container_keeps_its_anonymous_volumes_unless_renewed() {
    let fake = Fake::default();
    recreate_one(&fake, false);
    let calls = fake.calls();
    assert!(
        calls.contains(&"inherit anon-of-demo-db-1 at /data".to_string()),
        "{calls:?}"
    );

    // -V: a fresh volume; the old one is kept (its data is never deleted unasked).
    let fake = Fake::default();
    recreate_one(&fake, true);
    let calls = fake.calls();
    assert!(!calls.iter().any(|c| c.starts_with("inherit")), "{calls:?}");
    assert!(
        !calls.iter().any(|c| c.starts_with("remove volume")),
        "{calls:?}"
    );
}

#[test]
fn alongside_stops_the_background_when_the_foreground_returns() {
    let rounds = std::sync::atomic::AtomicUsize::new(0);
    let out = alongside(
        |stop| {
            while !stop() {
                rounds.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(1));
            }
        },
        || {
            std::thread::sleep(Duration::from_millis(20));
            42
        },
    );
    assert_eq!(out, 42);
    assert!(rounds.load(std::sync::atomic::Ordering::SeqCst) > 0);
}

#[test]
fn first_of_returns_the_first_result() {
    let slow: Box<dyn FnOnce() -> u32 + Send> = Box::new(|| {
        std::thread::sleep(Duration::from_millis(500));
        1
    });
    let fast: Box<dyn FnOnce() -> u32 + Send> = Box::new(|| 2);
    assert_eq!(first_of(vec![slow, fast]), Some(2));
    assert_eq!(first_of::<u32>(vec![]), None);
}
