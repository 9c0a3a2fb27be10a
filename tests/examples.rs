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

/// One example stack, copied with the rest of examples/ (a stack may build from a sibling's
/// Dockerfile) into a temporary directory (its files can be edited there) and run in the
/// fixture's own roots with its published port moved to a free one (`port_var`).
struct Example {
    p: Project,
    _copy: tempfile::TempDir,
    dir: std::path::PathBuf,
    port: String,
    port_var: &'static str,
}

impl Example {
    /// None (the test is skipped, with the reason printed) without Debian's package archive.
    fn new(name: &str, tag: &str, port_var: &'static str) -> Option<Example> {
        let p = Project::new(tag);
        common::debian::debian_base(&p)?;
        let copy = tempfile::tempdir().unwrap();
        let src = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/.");
        let copied = std::process::Command::new("cp")
            .args(["-a", src, copy.path().to_str().unwrap()])
            .status()
            .unwrap();
        assert!(copied.success());
        let port = common::free_port().to_string();
        Some(Example {
            p,
            dir: copy.path().join(name),
            _copy: copy,
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
            .arg(&self.dir)
            .arg("-f")
            .arg(self.dir.join("compose.yaml"))
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
    std::fs::write(e.dir.join("html/index.html"), "edited on the host\n").unwrap();
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
    std::fs::create_dir_all(e.dir.join("webapps/hello")).unwrap();
    std::fs::write(
        e.dir.join("webapps/hello/index.html"),
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

/// examples/wordpress-like: nginx → PHP app → MariaDB on two networks, each tier started when
/// the one below is healthy, the passwords from secret files. The full chain answers from the
/// host, nginx cannot even resolve the database, the data survives `down` + `up`, and `down -v`
/// leaves no container, network or volume behind.
#[test]
fn wordpress_like() {
    let Some(e) = Example::new("wordpress-like", "wpl", "SITE_PORT") else {
        return;
    };
    e.run(&["up", "-d", "--build", "--wait"]);
    let page = e.get("/?note=written+before+down");
    assert!(page.contains(" via nginx\n"), "{page}");
    assert!(
        page.contains("database ") && page.contains("MariaDB"),
        "{page}"
    );
    assert!(page.contains("note: written before down\n"), "{page}");
    // The app reads the password from its secret; the environment only names the file.
    let env = e.run(&["exec", "-T", "app", "env"]);
    assert!(!env.contains("site-pw-change-me"), "{env}");
    assert_eq!(
        e.run(&["exec", "-T", "app", "cat", "/run/secrets/db_password"])
            .trim(),
        "site-pw-change-me"
    );
    // frontend and backend are apart: the web tier does not know the database's name.
    let o =
        e.p.cmd()
            .env(e.port_var, &e.port)
            .arg("--project-directory")
            .arg(&e.dir)
            .args(["exec", "-T", "web", "getent", "hosts", "db"])
            .output()
            .unwrap();
    assert!(
        !o.status.success(),
        "web resolved db: {}",
        common::stdout(&o)
    );
    assert!(
        !e.run(&["exec", "-T", "web", "getent", "hosts", "app"])
            .is_empty()
    );

    e.run(&["down", "-t", "5"]);
    e.run(&["up", "-d", "--wait"]);
    let page = e.get("/");
    assert!(page.contains("note: written before down\n"), "{page}");

    e.run(&["down", "-v", "-t", "5"]);
    assert!(e.run(&["ps", "-a", "-q"]).trim().is_empty());
    let volumes = e.p.ok(&["volume", "ls", "-q"]);
    assert!(!volumes.contains("dbdata"), "{volumes}");
    let networks = e.p.ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(
        !networks.contains("frontend") && !networks.contains("backend"),
        "{networks}"
    );
}

/// examples/ci/ci.sh as a CI job runs it (no TTY, plain progress), in the fixture's roots
/// through RCOMPOSE_ROOT/RCOMPOSE_RUN_ROOT. With `break_tests`, the suite gets a failing check.
/// Returns the script's output (stdout and stderr) and whether it succeeded.
fn run_ci_script(p: &Project, break_tests: bool) -> (String, bool) {
    p.ok(&["image", "tag", IMAGE, "busybox:local"]);
    let copy = tempfile::tempdir().unwrap();
    let src = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/ci/.");
    let copied = std::process::Command::new("cp")
        .args(["-a", src, copy.path().to_str().unwrap()])
        .status()
        .unwrap();
    assert!(copied.success());
    if break_tests {
        let smoke = copy.path().join("tests/smoke.sh");
        let text = std::fs::read_to_string(&smoke).unwrap().replace(
            "echo \"$fails failed\"",
            "check \"a check that fails\" false\necho \"$fails failed\"",
        );
        std::fs::write(&smoke, text).unwrap();
    }
    let o = std::process::Command::new("bash")
        .arg(copy.path().join("ci.sh"))
        .env("RCOMPOSE", common::BIN)
        .env("RCOMPOSE_ROOT", &p.root)
        .env("RCOMPOSE_RUN_ROOT", &p.run_root)
        .env("RCOMPOSE_DNS_UPSTREAM", "none")
        .env("CI_PROJECT", &p.name)
        .env("CI_WEB_PORT", common::free_port().to_string())
        .env_remove("BUILD_NUMBER")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let out = format!("{}{}", common::stdout(&o), common::stderr(&o));
    // Whatever happened, the trap took everything down.
    let filter = format!("label=com.docker.compose.project={}", p.name);
    let left = p.ok(&["container", "ps", "-a", "-q", "--filter", &filter]);
    assert!(left.trim().is_empty(), "left running: {left}\n{out}");
    let nets = p.ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(!nets.contains(&p.name), "networks left: {nets}\n{out}");
    (out, o.status.success())
}

/// examples/ci: build, up --wait, the suite through `run --rm` and `up --exit-code-from`, plain
/// progress lines, and the teardown.
#[test]
fn ci_script_passes() {
    let p = Project::new("ci");
    let (out, ok) = run_ci_script(&p, false);
    assert!(ok, "{out}");
    assert!(out.contains("ok   published port answers"), "{out}");
    assert_eq!(
        out.matches("ok   the home page has the title").count(),
        2,
        "{out}"
    );
    assert_eq!(out.matches("0 failed").count(), 2, "{out}");
    // --progress plain: outcome lines without the terminal's symbols.
    assert!(
        out.contains(&format!("Container {}-web-1  Healthy", p.name)),
        "{out}"
    );
    assert!(!out.contains('✔') && !out.contains('\u{1b}'), "{out}");
    assert!(out.contains("--- tear down (status 0)"), "{out}");
}

/// A failing check fails the job with the suite's status, and the trap still tears down.
#[test]
fn ci_script_fails_and_tears_down() {
    let p = Project::new("cif");
    let (out, ok) = run_ci_script(&p, true);
    assert!(!ok, "{out}");
    assert!(out.contains("FAIL a check that fails"), "{out}");
    assert!(out.contains("1 failed"), "{out}");
    assert!(out.contains("--- tear down (status 1)"), "{out}");
    assert!(!out.contains("--- all tests passed"), "{out}");
}

/// `image bootstrap` without debootstrap says what to install (RCOMPOSE_DEBOOTSTRAP names a
/// program that is not there, as on a host without the package).
#[test]
fn bootstrap_without_debootstrap_says_what_to_install() {
    let r = common::Roots::new("rc-boot-");
    let o = r
        .cmd()
        .env("RCOMPOSE_DEBOOTSTRAP", "/nonexistent/debootstrap")
        .args(["image", "bootstrap", "debian:bookworm-slim"])
        .output()
        .unwrap();
    let err = common::stderr(&o);
    assert!(!o.status.success(), "{err}");
    assert!(err.contains("debootstrap is not installed"), "{err}");
    assert!(err.contains("apt-get install debootstrap"), "{err}");
    assert!(r.ok(&["image", "ls", "-q"]).trim().is_empty());
}

/// Without Debian's package archive (here a mirror on a loopback port where nothing listens),
/// `image bootstrap` says that debootstrap failed, asks whether the archive is reachable, shows
/// debootstrap's own last lines, and leaves no image and no half-made tree.
#[test]
fn bootstrap_without_the_archive_says_what_failed() {
    if !["/usr/sbin/debootstrap", "/usr/bin/debootstrap"]
        .iter()
        .any(|p| std::path::Path::new(p).exists())
    {
        eprintln!("skipped: debootstrap is not installed (apt-get install debootstrap)");
        return;
    }
    let r = common::Roots::new("rc-boot-");
    let mirror = format!("http://127.0.0.1:{}/debian", common::free_port());
    let o = r
        .cmd()
        .args([
            "image",
            "bootstrap",
            "-q",
            "--mirror",
            &mirror,
            "debian:bookworm",
        ])
        .output()
        .unwrap();
    let err = common::stderr(&o);
    assert!(!o.status.success(), "{err}");
    assert!(err.contains("debootstrap of bookworm failed"), "{err}");
    assert!(
        err.contains("is Debian's package archive reachable"),
        "{err}"
    );
    assert!(
        err.contains(&mirror),
        "debootstrap's own lines name the URL: {err}"
    );
    assert!(r.ok(&["image", "ls", "-q"]).trim().is_empty());
    let tmp = r.root().join("tmp");
    let left: Vec<_> = std::fs::read_dir(&tmp)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left in {}: {left:?}", tmp.display());
}

/// An example started while a host process holds its port: `up` names the port and the
/// process, and rolls back what it had made.
#[test]
fn example_port_taken() {
    let p = Project::new("qsp");
    p.ok(&["image", "tag", IMAGE, "busybox:local"]);
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port().to_string();
    let file = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/quickstart/compose.yaml"
    );
    let o = p
        .cmd()
        .env("QUICKSTART_PORT", &port)
        .args(["-f", file, "up", "-d"])
        .output()
        .unwrap();
    let err = common::stderr(&o);
    assert!(!o.status.success(), "{err}");
    assert!(
        err.contains(&format!(
            "port {port}/tcp on 127.0.0.1 is already in use on the host"
        )),
        "{err}"
    );
    assert!(
        err.contains("web-1"),
        "the error names the container: {err}"
    );
    let filter = format!("label=com.docker.compose.project={}", p.name);
    let left = p.ok(&["container", "ps", "-a", "-q", "--filter", &filter]);
    assert!(left.trim().is_empty(), "left: {left}");
    let nets = p.ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(!nets.contains(&p.name), "networks left: {nets}");
    drop(holder);
}

/// examples/three-tier: web → api → db on busybox, started by health; the page from the host,
/// the api through its `backend` alias, the db volume's boot log growing across `down` + `up`,
/// and nothing left after `down -v`.
#[test]
fn three_tier() {
    let p = Project::new("ttr");
    p.ok(&["image", "tag", IMAGE, "busybox:local"]);
    let file = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/three-tier/compose.yaml"
    );
    let port = common::free_port().to_string();
    let run = |args: &[&str]| {
        let o = p
            .cmd()
            .env("THREE_TIER_PORT", &port)
            .arg("-f")
            .arg(file)
            .args(args)
            .output()
            .unwrap();
        common::assert_ok(args, &o)
    };
    run(&["up", "-d", "--wait"]);
    // web has no healthcheck: `--wait` returns once it started, maybe before httpd listens.
    let url = format!("http://127.0.0.1:{port}/");
    let mut page = String::new();
    p.wait_until(20, "web's page on the published port", || {
        let o = std::process::Command::new("busybox")
            .args(["wget", "-qO-", &url])
            .output()
            .unwrap();
        page = common::stdout(&o);
        o.status.success()
    });
    assert_eq!(page, "<a href=/api>api</a>\n");
    let uptime = run(&[
        "exec",
        "-T",
        "web",
        "wget",
        "-qO-",
        "http://backend/cgi-bin/uptime",
    ]);
    assert!(uptime.trim().split(' ').count() == 2, "{uptime}");
    assert_eq!(
        run(&["exec", "-T", "db", "cat", "/data/boots"])
            .lines()
            .count(),
        1
    );
    run(&["down", "-t", "1"]);
    run(&["up", "-d", "--wait"]);
    assert_eq!(
        run(&["exec", "-T", "db", "cat", "/data/boots"])
            .lines()
            .count(),
        2
    );
    run(&["down", "-v", "-t", "1"]);
    assert!(run(&["ps", "-a", "-q"]).trim().is_empty());
    assert!(!p.ok(&["volume", "ls", "-q"]).contains("dbdata"));
}
