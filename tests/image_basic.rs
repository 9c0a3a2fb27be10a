//! End-to-end: import → ls → inspect → tag → rm, layer sharing, bad input leaves no trace.

mod common;

use common::busybox;
use common::{bin, rc, rc_ok as ok};

use std::path::Path;
use std::process::Command;

fn entries(dir: &Path) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

#[test]
fn import_ls_inspect_tag_rm() {
    let root = tempfile::tempdir().unwrap();
    let id = busybox::busybox_image(&bin(), root.path(), "busybox:test");
    assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");

    let ls = ok(root.path(), &["image", "ls"]);
    let mut lines = ls.lines();
    let header = lines.next().unwrap();
    for col in ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"] {
        assert!(header.contains(col), "{header}");
    }
    let row: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(&row[..3], &["busybox", "test", &id[7..19]]);

    let json: serde_json::Value =
        serde_json::from_str(&ok(root.path(), &["image", "inspect", "busybox:test"])).unwrap();
    let img = &json[0];
    assert_eq!(img["Id"], id.as_str());
    assert_eq!(img["RepoTags"], serde_json::json!(["busybox:test"]));
    assert_eq!(img["Config"]["Cmd"], serde_json::json!(["sh"]));
    assert_eq!(img["Os"], "linux");
    let lower = img["GraphDriver"]["Data"]["LowerDir"].as_str().unwrap();
    let layer = Path::new(lower);
    assert!(layer.join("bin/busybox").is_file());
    assert_eq!(
        std::fs::read_link(layer.join("bin/sh")).unwrap(),
        Path::new("busybox")
    );
    assert!(
        std::fs::read_to_string(layer.join("etc/passwd"))
            .unwrap()
            .contains("nobody")
    );
    let fmt = ok(
        root.path(),
        &[
            "image",
            "inspect",
            "-f",
            "{{.Id}} {{json .Config.Cmd}}",
            &id[7..19],
        ],
    );
    assert_eq!(fmt.trim(), format!("{id} [\"sh\"]"));

    ok(
        root.path(),
        &["image", "tag", "busybox:test", "localhost:5000/other:1"],
    );
    let q = ok(root.path(), &["image", "ls", "-q"]);
    assert_eq!(q.trim(), &id[7..19], "two tags, one image id");
    let ls = ok(
        root.path(),
        &["image", "ls", "--format", "{{.Repository}}:{{.Tag}}"],
    );
    let mut names: Vec<&str> = ls.lines().collect();
    names.sort();
    assert_eq!(names, vec!["busybox:test", "localhost:5000/other:1"]);
    // As docker: a repository argument lists that repository's tags, not the image's others.
    let one = ok(
        root.path(),
        &[
            "image",
            "ls",
            "--format",
            "{{.Repository}}:{{.Tag}}",
            "localhost:5000/other",
        ],
    );
    assert_eq!(one.trim(), "localhost:5000/other:1");

    // By id with two tags: docker refuses without -f.
    let out = rc(root.path(), &["image", "rm", &id[7..19]]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("must be forced"));

    let out = ok(root.path(), &["image", "rm", "localhost:5000/other:1"]);
    assert_eq!(out.trim(), "Untagged: localhost:5000/other:1");
    let out = ok(root.path(), &["image", "rm", "busybox:test"]);
    assert!(out.contains("Untagged: busybox:test"), "{out}");
    assert!(out.contains(&format!("Deleted: {id}")), "{out}");
    assert_eq!(entries(&root.path().join("layers")), 0);
    assert_eq!(entries(&root.path().join("blobs/sha256")), 0);
    assert_eq!(ok(root.path(), &["image", "ls", "-q"]), "");

    let out = rc(root.path(), &["image", "rm", "busybox:test"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("No such image: busybox:test"));
}

#[test]
fn images_sharing_a_layer_store_it_once() {
    let root = tempfile::tempdir().unwrap();
    let fs = tempfile::tempdir().unwrap();
    busybox::build_rootfs(fs.path());
    let dir = fs.path().to_str().unwrap();
    ok(
        root.path(),
        &["image", "import", dir, "one", "-c", "CMD [\"sh\"]"],
    );
    ok(
        root.path(),
        &["image", "import", dir, "two", "-c", "ENV A=1"],
    );
    assert_eq!(entries(&root.path().join("layers")), 1);
    let a: serde_json::Value =
        serde_json::from_str(&ok(root.path(), &["image", "inspect", "one", "two"])).unwrap();
    assert_ne!(a[0]["Id"], a[1]["Id"]);
    assert_eq!(a[0]["RootFS"]["Layers"], a[1]["RootFS"]["Layers"]);
    assert_eq!(a[1]["Config"]["Env"], serde_json::json!(["A=1"]));
    ok(root.path(), &["image", "rm", "one"]);
    assert_eq!(entries(&root.path().join("layers")), 1, "still used by two");
    ok(root.path(), &["image", "rm", "two"]);
    assert_eq!(entries(&root.path().join("layers")), 0);
}

#[test]
fn corrupt_or_escaping_import_leaves_store_unchanged() {
    let root = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    // A truncated gzip of a valid tar.
    let fs = work.path().join("fs");
    std::fs::create_dir(&fs).unwrap();
    std::fs::write(fs.join("big"), vec![42u8; 100_000]).unwrap();
    let tarball = work.path().join("rootfs.tar.gz");
    let status = Command::new("tar")
        .arg("-czf")
        .arg(&tarball)
        .arg("-C")
        .arg(&fs)
        .arg(".")
        .status()
        .unwrap();
    assert!(status.success());
    let bytes = std::fs::read(&tarball).unwrap();
    let cut = work.path().join("cut.tar.gz");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let out = rc(
        root.path(),
        &["image", "import", cut.to_str().unwrap(), "broken"],
    );
    assert!(!out.status.success());

    // A tar whose entry escapes with `..`.
    let mut h = [0u8; 512];
    let name = b"../escaped";
    h[..name.len()].copy_from_slice(name);
    h[100..108].copy_from_slice(b"0000644\0");
    h[108..116].copy_from_slice(b"0000000\0");
    h[116..124].copy_from_slice(b"0000000\0");
    h[124..136].copy_from_slice(b"00000000001\0");
    h[136..148].copy_from_slice(b"00000000000\0");
    h[156] = b'0';
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|b| *b as u32).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    let mut evil = h.to_vec();
    let mut block = [0u8; 512];
    block[0] = b'x';
    evil.extend_from_slice(&block);
    evil.extend_from_slice(&[0u8; 1024]);
    let evil_path = work.path().join("evil.tar");
    std::fs::write(&evil_path, evil).unwrap();
    let out = rc(
        root.path(),
        &["image", "import", evil_path.to_str().unwrap(), "evil"],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("../escaped") && err.contains(".."), "{err}");
    assert!(!root.path().join("escaped").exists());
    assert!(!root.path().join("tmp/escaped").exists());

    assert_eq!(entries(&root.path().join("layers")), 0);
    assert_eq!(entries(&root.path().join("blobs/sha256")), 0);
    assert_eq!(entries(&root.path().join("tmp")), 0);
    assert_eq!(ok(root.path(), &["image", "ls", "-q"]), "");
}

#[test]
fn history_dangling_and_prune() {
    let root = tempfile::tempdir().unwrap();
    let fs = tempfile::tempdir().unwrap();
    let dir = fs.path().to_str().unwrap();
    std::fs::write(fs.path().join("v"), "1").unwrap();
    let old = ok(
        root.path(),
        &["image", "import", "-m", "first", dir, "app:latest"],
    );
    std::fs::write(fs.path().join("v"), "2").unwrap();
    let new = ok(root.path(), &["image", "import", dir, "app:latest"]);
    assert_ne!(old, new);

    let hist = ok(root.path(), &["image", "history", "--no-trunc", old.trim()]);
    let mut lines = hist.lines();
    let header = lines.next().unwrap();
    for col in ["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"] {
        assert!(header.contains(col), "{header}");
    }
    let row = lines.next().unwrap();
    assert!(row.starts_with(old.trim()), "{row}");
    assert!(
        row.contains(&format!("Imported from {dir}")) && row.ends_with("first"),
        "{row}"
    );

    // The re-tagged name left the first image dangling.
    let ls = ok(
        root.path(),
        &[
            "image",
            "ls",
            "--format",
            "{{.Repository}} {{.Tag}} {{.ID}}",
        ],
    );
    assert!(
        ls.contains(&format!("<none> <none> {}", &old.trim()[7..19])),
        "{ls}"
    );
    let dangling = ok(
        root.path(),
        &["image", "ls", "-q", "--filter", "dangling=true"],
    );
    assert_eq!(dangling.trim(), &old.trim()[7..19]);

    let out = ok(root.path(), &["image", "prune", "-f"]);
    assert!(out.contains(&format!("deleted: {}", old.trim())), "{out}");
    assert!(out.contains("Total reclaimed space: 1B"), "{out}");
    assert_eq!(entries(&root.path().join("layers")), 1);
    let out = ok(root.path(), &["image", "prune", "-a", "-f"]);
    assert!(out.contains("untagged: app:latest"), "{out}");
    assert_eq!(entries(&root.path().join("layers")), 0);
    assert_eq!(entries(&root.path().join("blobs/sha256")), 0);
}

/// A static file server on 127.0.0.1 (python3's http.server), stopped on drop.
struct FileServer {
    child: std::process::Child,
    port: u16,
}

impl FileServer {
    fn start(dir: &Path) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new("python3")
            .args([
                "-m",
                "http.server",
                "--bind",
                "127.0.0.1",
                &port.to_string(),
            ])
            .current_dir(dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("python3 (installed by scripts/setup.sh)");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "file server did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        FileServer { child, port }
    }
}

impl Drop for FileServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn import_from_a_url() {
    let root = tempfile::tempdir().unwrap();
    let served = tempfile::tempdir().unwrap();
    let fs = tempfile::tempdir().unwrap();
    busybox::build_rootfs(fs.path());
    let st = std::process::Command::new("tar")
        .arg("-czf")
        .arg(served.path().join("rootfs.tar.gz"))
        .arg("-C")
        .arg(fs.path())
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
    let server = FileServer::start(served.path());
    let url = format!("http://127.0.0.1:{}/rootfs.tar.gz", server.port);
    ok(
        root.path(),
        &["image", "import", &url, "fromurl:1", "-c", "CMD [\"sh\"]"],
    );
    let v: serde_json::Value =
        serde_json::from_str(&ok(root.path(), &["image", "inspect", "fromurl:1"])).unwrap();
    assert_eq!(v[0]["Config"]["Cmd"], serde_json::json!(["sh"]));
    assert!(v[0]["Size"].as_u64().unwrap() > 1_000_000, "{v}");

    let missing = format!("http://127.0.0.1:{}/nope.tar", server.port);
    let out = rc(root.path(), &["image", "import", &missing, "nope:1"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&missing) && err.contains("404"), "{err}");
}

#[test]
fn an_unreachable_registry_is_named_with_what_to_do_instead() {
    let root = tempfile::tempdir().unwrap();
    // A loopback port nothing listens on: connection refused, at once.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let image = format!("127.0.0.1:{port}/nothing:1");
    let out = rc(root.path(), &["image", "pull", &image]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("cannot reach registry 127.0.0.1:{port}")),
        "{err}"
    );
    assert!(err.contains("rcompose image load -i FILE"), "{err}");
}

#[test]
fn ls_table_format_has_dockers_headers() {
    let root = tempfile::tempdir().unwrap();
    busybox::busybox_image(&bin(), root.path(), "busybox:tbl");
    let out = ok(
        root.path(),
        &[
            "image",
            "ls",
            "--format",
            "table {{.Repository}}\\t{{.Tag}}\\t{{.Containers}}",
        ],
    );
    let mut lines = out.lines();
    assert_eq!(
        lines.next(),
        Some("REPOSITORY   TAG       CONTAINERS"),
        "{out}"
    );
    assert_eq!(lines.next(), Some("busybox      tbl       0"), "{out}");
}
