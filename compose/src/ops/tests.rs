//! The compose verbs against the executor's recording fake backend.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use super::down::{self, DownOptions};
use super::up::{self, PrepareError, WaitError};
use super::*;
use crate::execute::tests::{Fake, project};
use crate::model::{CONDITION_HEALTHY, CONDITION_STARTED, Service};
use crate::observe::ObjectSummary;
use crate::reconcile::ReconcileOptions;

/// A labelled container of `service` in project `demo`, as the backend lists it.
fn container(service: &str, number: u32, status: RunState) -> ContainerSummary {
    let name = format!("demo-{service}-{number}");
    ContainerSummary {
        id: format!("id-{name}"),
        name,
        status,
        labels: [
            (labels::PROJECT.to_string(), "demo".to_string()),
            (labels::SERVICE.to_string(), service.to_string()),
            (labels::CONTAINER_NUMBER.to_string(), number.to_string()),
        ]
        .into(),
        ..Default::default()
    }
}

fn object(label: &str, key: &str, name: &str) -> ObjectSummary {
    ObjectSummary {
        name: name.into(),
        labels: [
            (labels::PROJECT.to_string(), "demo".to_string()),
            (label.to_string(), key.to_string()),
        ]
        .into(),
    }
}

fn pos(calls: &[String], s: &str) -> usize {
    calls
        .iter()
        .position(|c| c == s)
        .unwrap_or_else(|| panic!("{s} not in {calls:?}"))
}

/// Collects events as `Kind name Status` lines.
#[derive(Default)]
struct Events(Mutex<Vec<String>>);

impl Events {
    fn record(&self) -> impl Fn(Event) + Sync + '_ {
        |e: Event| {
            self.0
                .lock()
                .unwrap()
                .push(format!("{} {} {}", e.kind, e.name, e.status))
        }
    }
    fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

#[test]
fn stop_runs_in_parallel_and_reports_each() {
    let fake = Fake {
        slow_stop: Some("demo-db-1".into()),
        ..Default::default()
    };
    let list = [
        container("db", 1, RunState::Running),
        container("web", 1, RunState::Running),
    ];
    let events = Events::default();
    stop(&fake, &list, Some(3), &events.record()).unwrap();
    let calls = fake.calls();
    // web's stop does not wait for db's slow one.
    assert!(
        pos(&calls, "stop demo-web-1") < pos(&calls, "stopped demo-db-1"),
        "{calls:?}"
    );
    let mut lines = events.lines();
    lines.sort();
    assert_eq!(
        lines,
        [
            "Container demo-db-1 Stopped",
            "Container demo-web-1 Stopped"
        ]
    );
}

#[test]
fn every_failure_is_reported_and_the_others_still_run() {
    let fake = Fake {
        fail_stop: Some("demo-db-1".into()),
        ..Default::default()
    };
    let list = [
        container("db", 1, RunState::Running),
        container("web", 1, RunState::Running),
    ];
    let err = stop(&fake, &list, None, &|_| {}).unwrap_err();
    assert_eq!(err.to_string(), "container demo-db-1: device busy");
    assert!(fake.calls().contains(&"stop demo-web-1".to_string()));
}

#[test]
fn start_and_restart_follow_dependency_order() {
    let p = project(&[
        ("db", &[]),
        ("api", &[("db", CONDITION_HEALTHY, true)]),
        ("web", &[("api", CONDITION_STARTED, true)]),
    ]);
    let graph = DependencyGraph::new(&p).unwrap();
    let list = [
        container("web", 1, RunState::Exited),
        container("api", 1, RunState::Exited),
        container("db", 1, RunState::Running),
    ];
    let fake = Fake::default();
    start(&fake, &list, Some(&graph), &|_| {}).unwrap();
    // db runs already: only the stopped ones start, dependencies first.
    assert_eq!(fake.calls(), ["start demo-api-1", "start demo-web-1"]);

    let fake = Fake {
        listed: list.to_vec(),
        ..Default::default()
    };
    restart(&fake, &list, Some(&graph), None, &|_| {}).unwrap();
    let calls = fake.calls();
    let stops: Vec<&String> = calls.iter().filter(|c| c.starts_with("stop ")).collect();
    assert_eq!(stops.len(), 3, "{calls:?}");
    assert_eq!(
        &calls[3..],
        ["start demo-db-1", "start demo-api-1", "start demo-web-1"]
    );
}

#[test]
fn restart_dependents_are_added_transitively() {
    let mut p = project(&[
        ("db", &[]),
        ("api", &[("db", CONDITION_STARTED, true)]),
        ("web", &[("api", CONDITION_STARTED, true)]),
        ("other", &[]),
    ]);
    for (svc, dep) in [("api", "db"), ("web", "api")] {
        p.services
            .get_mut(svc)
            .unwrap()
            .depends_on
            .get_mut(dep)
            .unwrap()
            .restart = true;
    }
    assert_eq!(
        with_restart_dependents(Some(&p), &["db".into()]),
        ["db", "api", "web"]
    );
    assert!(with_restart_dependents(Some(&p), &[]).is_empty());
    assert_eq!(with_restart_dependents(None, &["db".into()]), ["db"]);
}

#[test]
fn kill_pause_and_rm() {
    let fake = Fake::default();
    let list = [
        container("db", 1, RunState::Running),
        container("web", 1, RunState::Exited),
    ];
    kill(&fake, &list[..1], "SIGTERM", &|_| {}).unwrap();
    pause(&fake, &list[..1], true, &|_| {}).unwrap();
    pause(&fake, &list[..1], false, &|_| {}).unwrap();
    assert_eq!(
        fake.calls(),
        [
            "kill demo-db-1 SIGTERM",
            "pause demo-db-1",
            "unpause demo-db-1"
        ]
    );

    // rm --stop: stops what is up; then only stopped containers are removed.
    let fake = Fake::default();
    stop_running(&fake, &list, &|_| {}).unwrap();
    assert_eq!(fake.calls(), ["stop demo-db-1"]);
    let gone = removable(&fake, &list);
    assert_eq!(gone.len(), 1, "{gone:?}");
    remove(&fake, &gone, true, &|_| {}).unwrap();
    assert_eq!(fake.calls(), ["stop demo-db-1", "rm demo-db-1"]);
}

fn down_state(p_services: &[&str]) -> (ObservedState, crate::model::Project) {
    let p = project(
        &p_services
            .iter()
            .map(|s| (*s, &[][..]))
            .collect::<Vec<(&str, &[crate::execute::tests::Dep])>>(),
    );
    let mut oneoff = container("web", 2, RunState::Exited);
    oneoff.name = "demo-web-run-1".into();
    oneoff.id = "id-demo-web-run-1".into();
    oneoff.labels.insert(labels::ONEOFF.into(), "True".into());
    let observed = ObservedState::from_objects(
        "demo",
        &[
            container("web", 1, RunState::Running),
            container("db", 1, RunState::Running),
            container("old", 1, RunState::Exited),
            oneoff,
        ],
        &[object(labels::NETWORK, "default", "demo_default")],
        &[object(labels::VOLUME, "data", "demo_data")],
    );
    (observed, p)
}

#[test]
fn down_dry_run_prints_a_plan() {
    let (observed, p) = down_state(&["web", "db"]);
    let opts = DownOptions {
        volumes: true,
        ..Default::default()
    };
    let plan = down::plan(&observed, Some(&p), &opts);
    assert_eq!(
        plan.to_string(),
        "project demo
level 0:
  service db:
    container demo-db-1: remove
  service web:
    container demo-web-1: remove
    container demo-web-run-1: remove (one-off)
network demo_default: remove
volume demo_data: remove
"
    );
    assert_eq!(plan.warnings.len(), 1);
    assert!(
        plan.warnings[0].starts_with("Found orphan containers ([demo-old-1])"),
        "{:?}",
        plan.warnings
    );

    // --remove-orphans, one service: no networks, the orphan only if selected.
    let opts = DownOptions {
        services: vec!["old".into()],
        remove_orphans: true,
        ..Default::default()
    };
    let plan = down::plan(&observed, Some(&p), &opts);
    assert_eq!(
        plan.to_string(),
        "project demo\norphans:\n  container demo-old-1: remove (orphan)\n"
    );
    assert!(plan.warnings.is_empty());

    // Without a compose file every labelled container belongs to the project.
    let plan = down::plan(&observed, None, &DownOptions::default());
    assert_eq!(plan.services().count(), 3);
    assert!(plan.orphans.is_empty() && plan.warnings.is_empty());
}

#[test]
fn down_removes_containers_in_parallel_then_networks_and_volumes() {
    let (observed, p) = down_state(&["web", "db", "old"]);
    let opts = DownOptions {
        volumes: true,
        ..Default::default()
    };
    let plan = down::plan(&observed, Some(&p), &opts);
    let fake = Fake {
        slow_stop: Some("demo-db-1".into()),
        fail_stop: Some("demo-old-1".into()),
        ..Default::default()
    };
    let events = Events::default();
    let err = down::execute(&fake, &plan, &opts, &events.record()).unwrap_err();
    assert_eq!(err.to_string(), "container demo-old-1: device busy");
    let calls = fake.calls();
    assert!(
        pos(&calls, "stop demo-web-1") < pos(&calls, "stopped demo-db-1"),
        "{calls:?}"
    );
    let n = calls.len();
    assert_eq!(
        &calls[n - 2..],
        ["remove network demo_default", "remove volume demo_data"]
    );
    assert!(
        events
            .lines()
            .contains(&"Container demo-db-1 Removed".into())
    );
    assert!(events.lines().contains(&"Volume demo_data Removed".into()));
}

#[test]
fn prepare_checks_images_warns_and_plans() {
    let p = project(&[("db", &[]), ("web", &[("db", CONDITION_STARTED, true)])]);
    let fake = Fake::default();
    let warnings = Mutex::new(vec![]);
    let (plan, opts) = up::prepare(
        &p,
        &fake,
        ReconcileOptions::default(),
        &up::BuildPolicy::missing(),
        &|w| warnings.lock().unwrap().push(w),
    )
    .unwrap();
    assert_eq!(opts.image_ids.len(), 2);
    assert_eq!(plan.services().count(), 2);
    assert!(warnings.lock().unwrap().is_empty());

    let mut p = p;
    p.services.get_mut("web").unwrap().build = Some(Default::default());
    let always = up::BuildPolicy {
        always: true,
        ..up::BuildPolicy::missing()
    };
    let err = up::prepare(&p, &fake, ReconcileOptions::default(), &always, &|_| {}).unwrap_err();
    assert!(
        matches!(&err, PrepareError::Build(super::build::BuildError::Failed { service, .. }) if service == "web"),
        "{err}"
    );
    // Without --build, a present image is used as it is.
    up::prepare(
        &p,
        &fake,
        ReconcileOptions::default(),
        &up::BuildPolicy::missing(),
        &|_| {},
    )
    .unwrap();
}

#[test]
fn wait_ready_fails_on_unhealthy_and_times_out_on_starting() {
    let p = project(&[("db", &[])]);
    let fake = Fake {
        listed: vec![container("db", 1, RunState::Running)],
        health: [("demo-db-1".to_string(), "unhealthy")].into(),
        ..Default::default()
    };
    let poll = Duration::from_millis(1);
    let err = up::wait_ready(&fake, &p, &[], None, poll).unwrap_err();
    assert_eq!(
        err,
        WaitError::Unhealthy {
            name: "demo-db-1".into()
        }
    );

    let fake = Fake {
        listed: vec![container("db", 1, RunState::Running)],
        health: [("demo-db-1".to_string(), "starting")].into(),
        ..Default::default()
    };
    let err = up::wait_ready(&fake, &p, &[], Some(Duration::from_millis(5)), poll).unwrap_err();
    assert_eq!(
        err.to_string(),
        "timeout waiting for demo-db-1 to be running and healthy"
    );

    let fake = Fake {
        listed: vec![container("db", 1, RunState::Running)],
        health: BTreeMap::from([("demo-db-1".to_string(), "healthy")]),
        ..Default::default()
    };
    up::wait_ready(&fake, &p, &[], None, poll).unwrap();
}

#[test]
fn stop_all_kills_when_forced() {
    let fake = Fake {
        slow_stop: Some("demo-db-1".into()),
        ..Default::default()
    };
    let list = [container("db", 1, RunState::Running)];
    up::stop_all(&fake, &list, None, &|| true);
    let calls = fake.calls();
    assert!(
        calls.contains(&"kill demo-db-1 SIGKILL".to_string()),
        "{calls:?}"
    );

    let fake = Fake::default();
    up::stop_all(&fake, &list, None, &|| false);
    assert_eq!(fake.calls(), ["stop demo-db-1"]);
}

#[test]
fn unsupported_keys_default_to_none() {
    let fake = Fake::default();
    assert!(fake.unsupported_keys(&Service::default()).is_empty());
}

#[test]
fn watch_applies_initial_sync_and_changes_then_stops() {
    use super::watch::{Rule, WatchEvent, watch};
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.txt"), "1").unwrap();
    std::fs::write(dir.path().join("skip.tmp"), "x").unwrap();
    let p = project(&[("web", &[])]);
    let fake = Fake {
        listed: vec![container("web", 1, RunState::Running)],
        ..Default::default()
    };
    let rules = [Rule {
        service: "web".into(),
        action: "sync".into(),
        path: dir.path().to_path_buf(),
        target: "/app".into(),
        ignore: vec!["*.tmp".into()],
        exec: vec![],
        initial_sync: true,
    }];
    let applied = Mutex::new(vec![]);
    let apply =
        |id: &str, _: &Rule, changed: &[std::path::PathBuf], deleted: &[std::path::PathBuf]| {
            applied
                .lock()
                .unwrap()
                .push((id.to_string(), changed.len(), deleted.len()));
            Ok(())
        };
    let events = Mutex::new(vec![]);
    let polls = std::sync::atomic::AtomicUsize::new(0);
    let stop = || {
        let n = polls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if n == 1 {
            std::fs::write(dir.path().join("b.txt"), "2").unwrap();
        }
        n >= 3
    };
    let poll = Duration::from_millis(1);
    watch(&fake, &p, &rules, poll, &apply, &stop, &|e| {
        events.lock().unwrap().push(e)
    })
    .unwrap();
    let applied = applied.into_inner().unwrap();
    // The initial sync copies a.txt (skip.tmp is ignored), then b.txt arrives.
    assert_eq!(applied[0], ("id-demo-web-1".to_string(), 1, 0));
    assert_eq!(applied[1], ("id-demo-web-1".to_string(), 1, 0));
    let events = events.into_inner().unwrap();
    assert_eq!(events[0], WatchEvent::Enabled);
    assert_eq!(
        events[1],
        WatchEvent::Synced {
            service: "web".into(),
            files: 1
        }
    );
}

#[test]
fn run_starts_the_dependencies_only() {
    let p = project(&[("db", &[]), ("web", &[("db", CONDITION_STARTED, true)])]);
    let fake = Fake::default();
    super::run::start_dependencies(&p, &fake, "web", false, &|_| {}).unwrap();
    let calls = fake.calls();
    assert!(calls.contains(&"start demo-db-1".to_string()), "{calls:?}");
    assert!(!calls.iter().any(|c| c.contains("web")), "{calls:?}");

    // --no-deps: the project's network and volume only.
    let fake = Fake::default();
    super::run::start_dependencies(&p, &fake, "web", true, &|_| {}).unwrap();
    assert_eq!(
        fake.calls(),
        ["create network demo_default", "create volume demo_data"]
    );
}
