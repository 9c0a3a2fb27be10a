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
    let mut logs = String::new();
    let reached = (0..300).any(|_| {
        logs = run(&["logs", "--no-log-prefix", "client"]);
        let ok = logs.contains("web says: hello from rcompose");
        if !ok {
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        ok
    });
    assert!(
        reached,
        "the client did not reach web by name; its log:\n{logs}\n{}",
        run(&["ps", "-a"])
    );
    run(&["down", "-t", "0"]);
    assert!(run(&["ps", "-a", "-q"]).trim().is_empty());
}

/// The Debian base image for the examples that build from Debian's packages, made once with
/// `image bootstrap` and kept as an archive in a cache directory between runs (CI reuses it).
/// None, with the reason printed, when Debian's package archive cannot be reached.
fn debian_base(p: &Project) -> Option<()> {
    let cache = std::path::PathBuf::from(
        std::env::var("RCOMPOSE_TEST_CACHE").unwrap_or_else(|_| "/var/cache/rcompose-tests".into()),
    );
    let archive = cache.join("debian-bookworm-slim.tar");
    if archive.exists()
        && p.run(&["image", "load", "-i", archive.to_str()?])
            .status
            .success()
    {
        return Some(());
    }
    let made = p.run(&["image", "bootstrap", "-q", "debian:bookworm-slim"]);
    if !made.status.success() {
        let err = common::stderr(&made);
        assert!(
            err.contains("debootstrap of") || err.contains("not installed"),
            "image bootstrap failed for another reason than the network: {err}"
        );
        eprintln!("skipped: Debian's package archive is not reachable here: {err}");
        return None;
    }
    std::fs::create_dir_all(&cache).ok()?;
    // The three example tests may each make the base at once: each writes its own file.
    let tmp = archive.with_extension(common::unique("tmp"));
    if p.run(&["image", "save", "-o", tmp.to_str()?, "debian:bookworm-slim"])
        .status
        .success()
    {
        let _ = std::fs::rename(&tmp, &archive);
    }
    Some(())
}

/// One example stack, copied into a temporary directory (its files can be edited there) and
/// run in the fixture's own roots with its published port moved to a free one (`port_var`).
struct Example {
    p: Project,
    dir: tempfile::TempDir,
    port: String,
    port_var: &'static str,
}

impl Example {
    /// None (the test is skipped, with the reason printed) without Debian's package archive.
    fn new(name: &str, tag: &str, port_var: &'static str) -> Option<Example> {
        let p = Project::new(tag);
        debian_base(&p)?;
        let dir = tempfile::tempdir().unwrap();
        let src = format!("{}/examples/{name}/.", env!("CARGO_MANIFEST_DIR"));
        let copied = std::process::Command::new("cp")
            .args(["-a", &src, dir.path().to_str().unwrap()])
            .status()
            .unwrap();
        assert!(copied.success());
        let port = common::free_port().to_string();
        Some(Example {
            p,
            dir,
            port,
            port_var,
        })
    }

    fn run(&self, args: &[&str]) -> String {
        let o = self
            .p
            .cmd()
            .env(self.port_var, &self.port)
            .arg("--project-directory")
            .arg(self.dir.path())
            .arg("-f")
            .arg(self.dir.path().join("compose.yaml"))
            .args(args)
            .output()
            .unwrap();
        common::assert_ok(args, &o)
    }

    /// The body at `path` on the published port, or "" when nothing answers.
    fn get(&self, path: &str) -> String {
        let url = format!("http://127.0.0.1:{}{path}", self.port);
        let o = std::process::Command::new("busybox")
            .args(["wget", "-qO-", &url])
            .output()
            .unwrap();
        common::stdout(&o)
    }
}

/// examples/nginx: the study guide's nginx on a published port, built from Debian's packages,
/// serving the bind-mounted site; an edit on the host shows on the next request.
#[test]
fn nginx() {
    let Some(e) = Example::new("nginx", "ngx", "NGINX_PORT") else {
        return;
    };
    e.run(&["up", "-d", "--build", "--wait"]);
    assert!(
        e.get("/").contains("Hello from nginx, served by rcompose"),
        "{}",
        e.get("/")
    );
    std::fs::write(e.dir.path().join("html/index.html"), "edited on the host\n").unwrap();
    assert_eq!(e.get("/"), "edited on the host\n");
    assert!(
        e.run(&["logs", "nginx01"]).contains("GET / HTTP"),
        "nginx logs to stdout"
    );
    e.run(&["down", "-t", "0"]);
}

/// examples/tomcat: Tomcat from Debian's packages on a published port, serving the webapps
/// mounted from the host; an application copied in on the host gets deployed.
#[test]
fn tomcat() {
    let Some(e) = Example::new("tomcat", "tom", "TOMCAT_PORT") else {
        return;
    };
    e.run(&["up", "-d", "--build", "--wait"]);
    assert!(
        e.get("/").contains("Hello from Tomcat, served by rcompose"),
        "{}",
        e.get("/")
    );
    std::fs::create_dir_all(e.dir.path().join("webapps/hello")).unwrap();
    std::fs::write(
        e.dir.path().join("webapps/hello/index.html"),
        "deployed from the host\n",
    )
    .unwrap();
    e.p.wait_until(60, "Tomcat to deploy webapps/hello", || {
        e.get("/hello/") == "deployed from the host\n"
    });
    e.run(&["down", "-t", "0"]);
}

/// examples/mysql: set up by the official image's variables, healthy, answering SQL through the
/// client inside the container, and its data surviving `down` + `up` on the named volume.
#[test]
fn mysql() {
    let Some(e) = Example::new("mysql", "sql", "MYSQL_PORT") else {
        return;
    };
    let sql = |q: &str| {
        e.run(&[
            "exec", "-T", "db", "mariadb", "-ushop", "-pshoppw", "shop", "-N", "-e", q,
        ])
    };
    e.run(&["up", "-d", "--build", "--wait"]);
    sql("CREATE TABLE t (v TEXT); INSERT INTO t VALUES ('kept across down and up')");
    e.run(&["down", "-t", "5"]);
    e.run(&["up", "-d", "--wait"]);
    assert_eq!(sql("SELECT v FROM t").trim(), "kept across down and up");
    let root = e.run(&[
        "exec", "-T", "db", "mariadb", "-uroot", "-prootpw", "-N", "-e", "SELECT 1",
    ]);
    assert_eq!(root.trim(), "1");
    e.run(&["down", "-v", "-t", "5"]);
}
