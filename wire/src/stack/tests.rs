//! Deploy, rollback and removal against a fake daemon on a unix socket that answers from a
//! route table and records every request.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixListener;
use std::sync::{Arc, Mutex};

use rcompose_compose::convert::swarm::{self, Stack};
use serde_json::{Value, json};

use super::http::Endpoint;
use super::*;

type Route = Box<dyn Fn(&str, &str) -> Option<(u16, Value)> + Send>;

struct Fake {
    _dir: tempfile::TempDir,
    client: Client,
    log: Arc<Mutex<Vec<String>>>,
}

/// Serves `route` (method, path without the version prefix → status and body; `None` is a
/// 404) until the test ends.
fn fake(route: Route) -> Fake {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("d.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let rec = log.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let mut r = BufReader::new(conn.try_clone().unwrap());
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            let mut parts = line.split_whitespace();
            let method = parts.next().unwrap_or_default().to_string();
            let path = parts.next().unwrap_or_default().to_string();
            let mut length = 0;
            loop {
                let mut h = String::new();
                r.read_line(&mut h).unwrap();
                if h.trim().is_empty() {
                    break;
                }
                if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; length];
            r.read_exact(&mut body).unwrap();
            let path = path.trim_start_matches("/v1.41").to_string();
            rec.lock()
                .unwrap()
                .push(format!("{method} {}", path.split('?').next().unwrap()));
            let (status, answer) = route(&method, &path)
                .unwrap_or((404, json!({"message": format!("no such object: {path}")})));
            let text = answer.to_string();
            let _ = write!(
                conn,
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{text}",
                text.len()
            );
        }
    });
    Fake {
        client: Client::new(Endpoint::Unix(sock)),
        _dir: dir,
        log,
    }
}

fn manager(method: &str, path: &str) -> Option<(u16, Value)> {
    match (method, path.split('?').next().unwrap()) {
        ("GET", "/info") => Some((200, json!({"Swarm": {"ControlAvailable": true}}))),
        ("GET", "/services" | "/networks" | "/secrets" | "/configs" | "/tasks") => {
            Some((200, json!([])))
        }
        _ => None,
    }
}

fn stack() -> Stack {
    let yaml = "services:\n  web:\n    image: nginx\n    secrets: [s]\n  db:\n    image: db\nsecrets:\n  s: {content: x}\n";
    let opts = rcompose_compose::load::LoadOptions {
        files: vec!["-".into()],
        project_name: Some("shop".into()),
        working_dir: std::env::temp_dir(),
        interpolate: true,
        stdin: Some(yaml.into()),
        ..Default::default()
    };
    let project = rcompose_compose::load::load(&opts).unwrap().project;
    swarm::convert(&project, "shop", &|p| std::fs::read(p)).unwrap()
}

fn log(f: &Fake) -> Vec<String> {
    f.log.lock().unwrap().clone()
}

#[test]
fn deploy_creates_what_is_missing_and_updates_with_the_version_index() {
    let f = fake(Box::new(|m, p| match (m, p.split('?').next().unwrap()) {
        ("GET", "/services") => Some((
            200,
            json!([{"ID": "svc1", "Version": {"Index": 7},
                        "Spec": {"Name": "shop_web", "TaskTemplate": {"ForceUpdate": 2}}}]),
        )),
        ("POST", "/secrets/create") => Some((201, json!({"ID": "sec1"}))),
        ("POST", "/networks/create") => Some((201, json!({"Id": "net1"}))),
        ("POST", "/services/create") => Some((201, json!({"ID": "svc2"}))),
        ("POST", "/services/svc1/update") => {
            assert!(p.ends_with("?version=7"), "{p}");
            Some((
                200,
                json!({"Warnings": ["image nginx could not be accessed"]}),
            ))
        }
        _ => manager(m, p),
    }));
    let mut events = Vec::new();
    deploy(&f.client, &stack(), &DeployOptions::default(), &mut |e| {
        events.push(e)
    })
    .unwrap();
    assert_eq!(
        events,
        [
            Event::Creating {
                kind: "secret",
                name: "shop_s".into()
            },
            Event::Creating {
                kind: "network",
                name: "shop_default".into()
            },
            Event::Creating {
                kind: "service",
                name: "shop_db".into()
            },
            Event::Updating {
                kind: "service",
                name: "shop_web".into(),
                id: "svc1".into()
            },
            Event::Warning("image nginx could not be accessed".into()),
        ]
    );
    assert_eq!(
        log(&f),
        [
            "GET /info",
            "GET /services",
            "GET /secrets",
            "POST /secrets/create",
            "GET /networks",
            "POST /networks/create",
            "POST /services/create",
            "POST /services/svc1/update",
        ]
    );
}

#[test]
fn a_failed_deploy_removes_what_it_created() {
    let f = fake(Box::new(|m, p| match (m, p.split('?').next().unwrap()) {
        ("POST", "/secrets/create") => Some((201, json!({"ID": "sec1"}))),
        ("POST", "/networks/create") => Some((201, json!({"Id": "net1"}))),
        ("POST", "/services/create") => {
            Some((400, json!({"message": "rpc error: invalid mount config"})))
        }
        ("DELETE", _) => Some((200, Value::Null)),
        _ => manager(m, p),
    }));
    let e = deploy(&f.client, &stack(), &DeployOptions::default(), &mut |_| {}).unwrap_err();
    let text = e.to_string();
    assert!(text.contains("invalid mount config"), "{text}");
    assert!(text.contains("creating service shop_db"), "{text}");
    let l = log(&f);
    assert_eq!(
        &l[l.len() - 3..],
        [
            "POST /services/create",
            "DELETE /networks/net1",
            "DELETE /secrets/sec1"
        ]
    );
}

#[test]
fn a_daemon_that_is_no_manager_is_refused_before_anything_is_made() {
    let f = fake(Box::new(|m, p| match (m, p) {
        ("GET", "/info") => Some((200, json!({"Swarm": {"ControlAvailable": false}}))),
        _ => None,
    }));
    let e = deploy(&f.client, &stack(), &DeployOptions::default(), &mut |_| {}).unwrap_err();
    assert!(matches!(e, StackError::NotManager), "{e}");
    assert_eq!(log(&f), ["GET /info"]);
}

#[test]
fn remove_takes_services_first_and_networks_last() {
    let f = fake(Box::new(|m, p| match (m, p.split('?').next().unwrap()) {
        ("GET", "/services") => Some((200, json!([{"ID": "s1", "Spec": {"Name": "shop_web"}}]))),
        ("GET", "/secrets") => Some((200, json!([{"ID": "x1", "Spec": {"Name": "shop_s"}}]))),
        ("GET", "/networks") => Some((200, json!([{"Id": "n1", "Name": "shop_default"}]))),
        ("DELETE", _) => Some((200, Value::Null)),
        _ => manager(m, p),
    }));
    let mut events = Vec::new();
    assert!(
        remove(&f.client, "shop", Duration::from_secs(5), &mut |e| events
            .push(e))
        .unwrap()
    );
    let deletes: Vec<String> = log(&f)
        .into_iter()
        .filter(|l| l.starts_with("DELETE"))
        .collect();
    assert_eq!(
        deletes,
        [
            "DELETE /services/s1",
            "DELETE /secrets/x1",
            "DELETE /networks/n1"
        ]
    );
    assert_eq!(events.len(), 3);
    let empty = fake(Box::new(manager));
    assert!(!remove(&empty.client, "shop", Duration::from_secs(5), &mut |_| {}).unwrap());
}

#[test]
fn convergence_counts_running_tasks_of_the_current_spec_only() {
    let route = |new_tasks: usize| -> Route {
        Box::new(move |m, p| match (m, p.split('?').next().unwrap()) {
            ("GET", "/services") => Some((
                200,
                json!([{"ID": "s1", "Spec": {"Name": "shop_web",
                    "Mode": {"Replicated": {"Replicas": 2}},
                    "TaskTemplate": {"ContainerSpec": {"Image": "web:2"}}}}]),
            )),
            ("GET", "/tasks") => {
                let task = |image: &str| {
                    json!({"ServiceID": "s1", "DesiredState": "running",
                    "Status": {"State": "running"}, "Spec": {"ContainerSpec": {"Image": image}}})
                };
                let mut list = vec![task("web:1")];
                list.extend((0..new_tasks).map(|_| task("web:2")));
                Some((200, json!(list)))
            }
            _ => manager(m, p),
        })
    };
    let f = fake(route(1));
    let mut events = Vec::new();
    let e = wait_converged(&f.client, "shop", Duration::from_millis(10), &mut |e| {
        events.push(e)
    })
    .unwrap_err();
    assert!(e.to_string().contains("shop_web 1/2"), "{e}");
    assert_eq!(
        events,
        [Event::Progress {
            name: "shop_web".into(),
            running: 1,
            desired: 2
        }]
    );
    let f = fake(route(2));
    let mut events = Vec::new();
    wait_converged(&f.client, "shop", Duration::from_millis(10), &mut |e| {
        events.push(e)
    })
    .unwrap();
    assert_eq!(
        events,
        [Event::Converged {
            name: "shop_web".into()
        }]
    );
}
