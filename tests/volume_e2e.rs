//! End-to-end: named, anonymous and bind volumes, `--volumes-from`, `:ro`, population from
//! the image, and `rcompose volume …`.

mod common;

use common::container::{Env, IMAGE};
use common::{stderr, stdout, unique};

#[test]
fn named_volume_is_shared_populated_and_survives_rm() {
    let env = Env::new();
    let vol = unique("shared");
    // First use populates the new volume from the image's /etc.
    env.ok(&[
        "container",
        "run",
        "--name",
        "writer",
        "-v",
        &format!("{vol}:/etc"),
        IMAGE,
        "sh",
        "-c",
        "echo from-writer > /etc/note; test -s /etc/passwd",
    ]);
    let out = env.ok(&[
        "container",
        "run",
        "--rm",
        "-v",
        &format!("{vol}:/data:ro"),
        IMAGE,
        "sh",
        "-c",
        "cat /data/note; grep -c root /data/passwd; touch /data/x 2>/dev/null || echo read-only",
    ]);
    assert_eq!(out, "from-writer\n1\nread-only\n");

    // In use: refused; after rm of the container: kept, then removable.
    let o = env.run(&["volume", "rm", &vol]);
    assert!(stderr(&o).contains("in use"), "{}", stderr(&o));
    env.ok(&["container", "rm", "-v", "writer"]);
    let ls = env.ok(&["volume", "ls", "-q"]);
    assert!(ls.lines().any(|l| l == vol), "{ls}");
    let mp = env.ok(&["volume", "inspect", "-f", "{{.Mountpoint}}", &vol]);
    assert_eq!(
        std::fs::read_to_string(format!("{}/note", mp.trim())).unwrap(),
        "from-writer\n"
    );
    env.ok(&["volume", "rm", &vol]);
    let o = env.run(&["volume", "inspect", &vol]);
    assert!(!o.status.success());
}

#[test]
fn anonymous_bind_and_volumes_from() {
    let env = Env::new();
    let host = env.tmp.path().join("hostdir");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("in.txt"), "from host\n").unwrap();
    env.ok(&[
        "container",
        "run",
        "-d",
        "--name",
        "src",
        "-v",
        "/cache",
        "-v",
        &format!("{}:/host", host.display()),
        IMAGE,
        "sh",
        "-c",
        "echo cached > /cache/c; cp /host/in.txt /host/out.txt; sleep 300",
    ]);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let out = env.ok(&[
        "container",
        "run",
        "--rm",
        "--volumes-from",
        "src:ro",
        IMAGE,
        "sh",
        "-c",
        "cat /cache/c /host/in.txt; echo no > /cache/c 2>/dev/null || echo ro-enforced",
    ]);
    assert_eq!(out, "cached\nfrom host\nro-enforced\n");
    assert_eq!(
        std::fs::read_to_string(host.join("out.txt")).unwrap(),
        "from host\n"
    );
    let mounts = env.inspect("src", "{{json .Mounts}}");
    let mounts: serde_json::Value = serde_json::from_str(&mounts).unwrap();
    let anon = mounts
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["Destination"] == "/cache")
        .unwrap()["Name"]
        .as_str()
        .unwrap()
        .to_string();
    let named = unique("keepme");
    env.ok(&["volume", "create", "--label", "k=v", &named]);
    let filtered = env.ok(&["volume", "ls", "-q", "--filter", "label=k=v"]);
    assert_eq!(filtered.trim(), named);
    // rm -v removes the anonymous volume only, never a named one or a bind source.
    env.ok(&["container", "rm", "-f", "-v", "src"]);
    let ls = stdout(&env.run(&["volume", "ls", "-q"]));
    assert!(!ls.contains(&anon), "anonymous volume kept: {ls}");
    assert!(ls.contains(&named));
    assert!(host.join("in.txt").exists());
}
