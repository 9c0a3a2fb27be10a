//! The example stacks under examples/, run as their READMEs say, each in its own state root.

mod common;

use common::compose::{IMAGE, Project};

/// examples/quickstart: the web answers on the published port, and the client reaches it by
/// service name through the embedded DNS.
#[test]
fn quickstart() {
    let p = Project::new("qs");
    p.ok(&["image", "tag", IMAGE, "busybox:local"]);
    let file = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/quickstart/compose.yaml"
    );
    let port = common::free_port().to_string();
    let run = |args: &[&str]| {
        let o = p
            .cmd()
            .env("QUICKSTART_PORT", &port)
            .arg("-f")
            .arg(file)
            .args(args)
            .output()
            .unwrap();
        common::assert_ok(args, &o)
    };
    run(&["up", "-d", "--wait"]);
    let body = (0..50).find_map(|_| {
        let o = std::process::Command::new("busybox")
            .args(["wget", "-qO-", &format!("http://127.0.0.1:{port}/")])
            .output()
            .unwrap();
        if o.status.success() {
            return Some(common::stdout(&o));
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        None
    });
    assert_eq!(body.as_deref(), Some("hello from rcompose\n"));
    p.wait_until(20, "the client to reach web by name", || {
        run(&["logs", "--no-log-prefix", "client"]).contains("web says: hello from rcompose")
    });
    run(&["down", "-t", "0"]);
    assert!(run(&["ps", "-a", "-q"]).trim().is_empty());
}
