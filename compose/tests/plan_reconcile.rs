//! Plan tests: load a real compose file, fake the observed state from the labels `execute`
//! would have written, and compare the printed plan as text.

use std::collections::BTreeMap;

use rcompose_compose::labels::{container_labels, container_name, object_labels};
use rcompose_compose::load::{LoadOptions, load};
use rcompose_compose::model::Project;
use rcompose_compose::observe::{ContainerSummary, ObjectSummary, ObservedState, RunState};
use rcompose_compose::reconcile::{ReconcileError, ReconcileOptions, RecreatePolicy, reconcile};

fn project(yaml: &str) -> Project {
    let opts = LoadOptions {
        files: vec!["-".into()],
        project_name: Some("demo".into()),
        working_dir: std::env::temp_dir(),
        interpolate: true,
        stdin: Some(yaml.into()),
        ..Default::default()
    };
    load(&opts).expect("test compose file loads").project
}

/// What exists after a successful `up` of `p` (every service at its replica count, running),
/// plus any extra containers.
fn observed_after_up(p: &Project, extra: &[ContainerSummary]) -> ObservedState {
    let mut containers: Vec<ContainerSummary> = vec![];
    for svc in p.services.values() {
        for n in 1..=svc.replicas() {
            containers.push(container(p, svc.name.as_str(), n, RunState::Running));
        }
    }
    containers.extend(extra.iter().cloned());
    let nets: Vec<ObjectSummary> = p
        .networks
        .keys()
        .map(|k| ObjectSummary {
            name: format!("demo_{k}"),
            labels: object_labels(p, rcompose_compose::labels::NETWORK, k, &BTreeMap::new()),
        })
        .collect();
    let vols: Vec<ObjectSummary> = p
        .volumes
        .keys()
        .map(|k| ObjectSummary {
            name: format!("demo_{k}"),
            labels: object_labels(p, rcompose_compose::labels::VOLUME, k, &BTreeMap::new()),
        })
        .collect();
    ObservedState::from_objects("demo", &containers, &nets, &vols)
}

fn container(p: &Project, service: &str, n: u32, status: RunState) -> ContainerSummary {
    let svc = &p.services[service];
    let name = container_name(&p.name, svc, n);
    ContainerSummary {
        id: format!("id-{name}"),
        name,
        image_id: "sha256:aaa".into(),
        status,
        labels: container_labels(p, svc, n, false),
        ..Default::default()
    }
}

fn plan_text(p: &Project, o: &ObservedState, opts: &ReconcileOptions) -> String {
    let plan = reconcile(p, o, opts).expect("reconcile");
    let mut text = plan.to_string();
    for w in &plan.warnings {
        text.push_str(&format!("WARN {w}\n"));
    }
    text
}

const STACK: &str = r#"
services:
  web:
    image: busybox
    depends_on:
      api: {condition: service_started}
  api:
    image: busybox
    environment: {FOO: one}
    depends_on:
      db: {condition: service_healthy}
  db:
    image: busybox
    volumes: [data:/data]
    healthcheck: {test: ["CMD", "true"]}
volumes:
  data: {}
"#;

#[test]
fn fresh_project_creates_everything_in_dependency_order() {
    let p = project(STACK);
    let text = plan_text(&p, &ObservedState::default(), &ReconcileOptions::default());
    assert_eq!(
        text,
        "project demo
network demo_default: create (not found)
volume demo_data: create (not found)
level 0:
  service db:
    container demo-db-1: create, start (not found)
level 1:
  service api after db service_healthy:
    container demo-api-1: create, start (not found)
level 2:
  service web after api service_started:
    container demo-web-1: create, start (not found)
"
    );
}

#[test]
fn unchanged_project_is_a_noop() {
    let p = project(STACK);
    let o = observed_after_up(&p, &[]);
    let plan = reconcile(&p, &o, &ReconcileOptions::default()).unwrap();
    assert!(plan.is_noop(), "{plan}");
    assert!(
        plan.to_string()
            .contains("container demo-db-1: keep (running)")
    );
}

#[test]
fn environment_change_recreates_only_that_service_and_names_the_key() {
    let before = project(STACK);
    let o = observed_after_up(&before, &[]);
    let after = project(&STACK.replace("FOO: one", "FOO: two"));
    let text = plan_text(&after, &o, &ReconcileOptions::default());
    assert_eq!(
        text,
        "project demo
level 0:
  service db:
    container demo-db-1: keep (running)
level 1:
  service api after db service_healthy:
    container demo-api-1: recreate, start (config hash changed: environment.FOO)
level 2:
  service web after api service_started:
    container demo-web-1: keep (running)
"
    );
}

#[test]
fn image_and_added_keys_are_named() {
    let before = project(STACK);
    let o = observed_after_up(&before, &[]);
    let after = project(
        &STACK
            .replace("FOO: one", "FOO: one, BAR: x")
            .replace("  web:\n    image: busybox", "  web:\n    image: alpine"),
    );
    let plan = reconcile(&after, &o, &ReconcileOptions::default()).unwrap();
    let text = plan.to_string();
    assert!(
        text.contains(
            "container demo-api-1: recreate, start (config hash changed: environment.BAR)"
        ),
        "{text}"
    );
    assert!(
        text.contains("container demo-web-1: recreate, start (config hash changed: image)"),
        "{text}"
    );
}

#[test]
fn image_updated_recreates_when_the_hash_is_the_same() {
    let p = project(STACK);
    let o = observed_after_up(&p, &[]);
    let opts = ReconcileOptions {
        image_ids: [("db".to_string(), "sha256:bbb".to_string())].into(),
        ..Default::default()
    };
    let text = plan_text(&p, &o, &opts);
    assert!(
        text.contains("container demo-db-1: recreate, start (image updated)"),
        "{text}"
    );
    assert!(
        text.contains("container demo-api-1: keep (running)"),
        "{text}"
    );
}

#[test]
fn force_and_no_recreate() {
    let before = project(STACK);
    let o = observed_after_up(&before, &[]);
    let force = ReconcileOptions {
        recreate: RecreatePolicy::Force,
        ..Default::default()
    };
    let text = plan_text(&before, &o, &force);
    assert_eq!(text.matches("(--force-recreate)").count(), 3, "{text}");

    let after = project(&STACK.replace("FOO: one", "FOO: two"));
    let never = ReconcileOptions {
        recreate: RecreatePolicy::Never,
        ..Default::default()
    };
    let plan = reconcile(&after, &o, &never).unwrap();
    assert!(plan.is_noop(), "{plan}");
}

#[test]
fn stopped_containers_are_started_with_their_state_as_cause() {
    let p = project(STACK);
    let o = ObservedState::from_objects(
        "demo",
        &[
            container(&p, "db", 1, RunState::Exited),
            container(&p, "api", 1, RunState::Created),
            container(&p, "web", 1, RunState::Running),
        ],
        &[],
        &[],
    );
    let text = plan_text(&p, &o, &ReconcileOptions::default());
    assert!(
        text.contains("container demo-db-1: start (exited)"),
        "{text}"
    );
    assert!(
        text.contains("container demo-api-1: start (created)"),
        "{text}"
    );
    assert!(
        text.contains("container demo-web-1: keep (running)"),
        "{text}"
    );
    // Networks/volumes are planned from their labels: unlabelled ones are missing.
    assert!(
        text.contains("network demo_default: create (not found)"),
        "{text}"
    );
}

#[test]
fn scale_up_and_down() {
    let p = project(STACK);
    let o = observed_after_up(&p, &[container(&p, "web", 2, RunState::Running)]);
    let down = ReconcileOptions {
        scale: [("web".to_string(), 1)].into(),
        ..Default::default()
    };
    let text = plan_text(&p, &o, &down);
    assert!(
        text.contains("container demo-web-1: keep (running)\n"),
        "{text}"
    );
    assert!(
        text.contains("container demo-web-2: remove (scale down)\n"),
        "{text}"
    );

    let up = ReconcileOptions {
        scale: [("web".to_string(), 4)].into(),
        ..Default::default()
    };
    let text = plan_text(&p, &o, &up);
    assert!(
        text.ends_with(
            "  service web after api service_started:
    container demo-web-1: keep (running)
    container demo-web-2: keep (running)
    container demo-web-3: create, start (scale up)
    container demo-web-4: create, start (scale up)
"
        ),
        "{text}"
    );
}

#[test]
fn deploy_replicas_and_container_name() {
    let p = project(
        "services:\n  a:\n    image: busybox\n    deploy: {replicas: 2}\n  b:\n    image: busybox\n    container_name: bee\n",
    );
    let text = plan_text(&p, &ObservedState::default(), &ReconcileOptions::default());
    assert!(text.contains("container demo-a-1: create, start"), "{text}");
    assert!(text.contains("container demo-a-2: create, start"), "{text}");
    assert!(text.contains("container bee: create, start"), "{text}");
    let err = reconcile(
        &p,
        &ObservedState::default(),
        &ReconcileOptions {
            scale: [("b".to_string(), 2)].into(),
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(matches!(err, ReconcileError::ScaleWithContainerName { .. }));
    assert!(err.to_string().contains("\"bee\""));
}

#[test]
fn orphans_warned_or_removed() {
    let p = project(STACK);
    let old = project("services:\n  old:\n    image: busybox\n");
    let o = observed_after_up(&p, &[container(&old, "old", 1, RunState::Running)]);
    let text = plan_text(&p, &o, &ReconcileOptions::default());
    assert!(
        text.ends_with("WARN Found orphan containers ([demo-old-1]) for this project. If you removed or renamed this service in your compose file, you can run this command with the --remove-orphans flag to clean it up.\n"),
        "{text}"
    );
    let opts = ReconcileOptions {
        remove_orphans: true,
        ..Default::default()
    };
    let text = plan_text(&p, &o, &opts);
    assert!(
        text.ends_with("orphans:\n  container demo-old-1: remove (orphan)\n"),
        "{text}"
    );
}

#[test]
fn services_disabled_by_profile_are_not_orphans() {
    let yaml =
        "services:\n  a:\n    image: busybox\n  dbg:\n    image: busybox\n    profiles: [debug]\n";
    let with = {
        let opts = LoadOptions {
            files: vec!["-".into()],
            project_name: Some("demo".into()),
            working_dir: std::env::temp_dir(),
            interpolate: true,
            stdin: Some(yaml.into()),
            profiles: vec!["debug".into()],
            ..Default::default()
        };
        load(&opts).unwrap().project
    };
    let without = project(yaml);
    assert!(!without.services.contains_key("dbg"));
    let o = observed_after_up(&with, &[]);
    let plan = reconcile(&without, &o, &ReconcileOptions::default()).unwrap();
    assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);
    assert!(plan.orphans.is_empty());
}

#[test]
fn named_services_pull_in_dependencies_unless_no_deps() {
    let p = project(STACK);
    let opts = ReconcileOptions {
        services: vec!["api".into()],
        ..Default::default()
    };
    let text = plan_text(&p, &ObservedState::default(), &opts);
    assert!(
        text.contains("demo-db-1") && text.contains("demo-api-1"),
        "{text}"
    );
    assert!(!text.contains("demo-web-1"), "{text}");

    let opts = ReconcileOptions {
        services: vec!["api".into()],
        no_deps: true,
        ..Default::default()
    };
    let text = plan_text(&p, &ObservedState::default(), &opts);
    assert!(!text.contains("demo-db-1"), "{text}");
    // The dependency is outside this run: nothing to wait for.
    assert!(text.contains("  service api:\n"), "{text}");
}

#[test]
fn force_recreate_applies_to_named_services_only() {
    let p = project(STACK);
    let o = observed_after_up(&p, &[]);
    let opts = ReconcileOptions {
        services: vec!["web".into()],
        recreate: RecreatePolicy::Force,
        ..Default::default()
    };
    let text = plan_text(&p, &o, &opts);
    assert!(
        text.contains("container demo-web-1: recreate, start (--force-recreate)"),
        "{text}"
    );
    assert!(
        text.contains("container demo-api-1: keep (running)"),
        "{text}"
    );
}

#[test]
fn no_start_creates_without_starting() {
    let p = project(STACK);
    let opts = ReconcileOptions {
        no_start: true,
        ..Default::default()
    };
    let text = plan_text(&p, &ObservedState::default(), &opts);
    assert!(
        text.contains("container demo-db-1: create (not found)"),
        "{text}"
    );
    assert!(!text.contains("start ("), "{text}");
}

#[test]
fn unknown_service_is_named_with_a_suggestion() {
    let p = project(STACK);
    let opts = ReconcileOptions {
        services: vec!["wbe".into()],
        ..Default::default()
    };
    let err = reconcile(&p, &ObservedState::default(), &opts).unwrap_err();
    assert_eq!(
        err.to_string(),
        "no such service: wbe (did you mean \"web\"?)"
    );
}

#[test]
fn external_objects_must_exist_and_are_never_created() {
    let p = project(
        "services:\n  a:\n    image: busybox\n    networks: [front]\n    volumes: [v:/v]\nnetworks:\n  front: {external: true, name: shared}\nvolumes:\n  v: {external: true}\n",
    );
    let text = plan_text(&p, &ObservedState::default(), &ReconcileOptions::default());
    assert!(
        text.contains("network shared: external, must exist\n"),
        "{text}"
    );
    assert!(text.contains("volume v: external, must exist\n"), "{text}");
}

#[test]
fn parallel_levels_group_independent_services() {
    let p = project(
        "services:\n  a: {image: busybox}\n  b: {image: busybox}\n  c:\n    image: busybox\n    depends_on: [a, b]\n",
    );
    let plan = reconcile(&p, &ObservedState::default(), &ReconcileOptions::default()).unwrap();
    let levels: Vec<Vec<&str>> = plan
        .levels
        .iter()
        .map(|l| l.iter().map(|s| s.service.as_str()).collect())
        .collect();
    assert_eq!(levels, vec![vec!["a", "b"], vec!["c"]]);
}

#[test]
fn network_mode_service_and_volumes_from_imply_dependencies() {
    let p = project(
        "services:\n  a:\n    image: busybox\n    network_mode: service:b\n  b:\n    image: busybox\n    volumes_from: [c]\n  c:\n    image: busybox\n",
    );
    let plan = reconcile(&p, &ObservedState::default(), &ReconcileOptions::default()).unwrap();
    let levels: Vec<Vec<&str>> = plan
        .levels
        .iter()
        .map(|l| l.iter().map(|s| s.service.as_str()).collect())
        .collect();
    assert_eq!(levels, vec![vec!["c"], vec!["b"], vec!["a"]]);
}
