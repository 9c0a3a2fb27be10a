//! `rcompose dashboard` in a real browser: headless Chromium driven through chromedriver's
//! WebDriver HTTP protocol (a small client below, no crates). A compose project runs; the
//! dashboard listens on the project network's gateway (an address beyond loopback, so every
//! request must carry the token); the page lists the running containers, its logs view shows
//! a line written after it opened, and its Stop button (with the confirmation) stops the
//! container. With `RCOMPOSE_SCREENSHOT=1` it rewrites `docs/dashboard.png`, the README's
//! screenshot.
//!
//! Needs Debian's `chromium` and `chromium-driver`; skips with a message without them.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use common::compose::Project;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The W3C WebDriver key of an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

// ---- a minimal HTTP/1.1 client: one request per connection ------------------------------

struct Reply {
    status: u16,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "reply is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("connecting to {addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        head.push_str(&format!("Host: {addr}\r\n"));
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {line:?}"));
    let (mut length, mut chunked) = (None, false);
    loop {
        line.clear();
        r.read_line(&mut line).unwrap();
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let (k, v) = l.split_once(':').unwrap_or((l, ""));
        if k.eq_ignore_ascii_case("content-length") {
            length = v.trim().parse::<usize>().ok();
        }
        if k.eq_ignore_ascii_case("transfer-encoding") && v.trim() == "chunked" {
            chunked = true;
        }
    }
    let mut body = vec![];
    if chunked {
        loop {
            line.clear();
            r.read_line(&mut line).unwrap();
            let n = usize::from_str_radix(line.trim(), 16).unwrap_or(0);
            if n == 0 {
                break;
            }
            let start = body.len();
            body.resize(start + n, 0);
            r.read_exact(&mut body[start..]).unwrap();
            line.clear();
            r.read_line(&mut line).unwrap();
        }
    } else if let Some(n) = length {
        body.resize(n, 0);
        r.read_exact(&mut body).unwrap();
    } else {
        r.read_to_end(&mut body).unwrap();
    }
    Reply { status, body }
}

// ---- WebDriver ------------------------------------------------------------------------

/// A chromedriver process, killed on drop.
struct Driver {
    child: Child,
    addr: SocketAddr,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A browser session, closed on drop (which also ends its Chromium).
struct Session<'a> {
    driver: &'a Driver,
    id: String,
}

impl Driver {
    fn start() -> Self {
        let port = common::free_port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting chromedriver");
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let driver = Self {
            child,
            addr,
            _profile: tempfile::Builder::new()
                .prefix("rc-chromium-")
                .tempdir()
                .unwrap(),
        };
        wait_for("chromedriver to answer", || {
            TcpStream::connect(addr).is_ok()
                && http(addr, "GET", "/status", &[], b"").json()["value"]["ready"] == true
        });
        driver
    }

    /// A session whose browser reaches `host` (an address) and nothing else.
    fn session(&self, host: &str) -> Session<'_> {
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--window-size=1400,1000", "--hide-scrollbars",
                    format!("--user-data-dir={}", self._profile.path().display()),
                    // Nothing but the dashboard: no names resolved, no background traffic.
                    format!("--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE {host}"),
                    "--no-proxy-server",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--no-first-run", "--no-default-browser-check",
                    "--disable-features=Translate,OptimizationHints,MediaRouter",
                ],
            },
        }}});
        let r = http(
            self.addr,
            "POST",
            "/session",
            &[("Content-Type", "application/json")],
            caps.to_string().as_bytes(),
        );
        let v = r.json();
        let id = v["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("chromedriver did not open a session: {v}"))
            .to_string();
        Session { driver: self, id }
    }
}

impl Session<'_> {
    fn cmd(&self, method: &str, path: &str, body: Value) -> Value {
        self.try_cmd(method, path, body)
            .unwrap_or_else(|v| panic!("WebDriver {method} {path}: {v}"))
    }

    /// The command's value, or the whole error answer.
    fn try_cmd(&self, method: &str, path: &str, body: Value) -> Result<Value, Value> {
        let body = if method == "GET" {
            String::new()
        } else {
            body.to_string()
        };
        let r = http(
            self.driver.addr,
            method,
            &format!("/session/{}{path}", self.id),
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        );
        let v = r.json();
        if r.status == 200 {
            Ok(v["value"].clone())
        } else {
            Err(v)
        }
    }

    fn goto(&self, url: &str) {
        self.cmd("POST", "/url", json!({ "url": url }));
    }

    /// Runs `script` in the page (`arguments[0]` … are `args`); returns its value.
    fn js(&self, script: &str, args: Value) -> Value {
        self.cmd(
            "POST",
            "/execute/sync",
            json!({ "script": script, "args": args }),
        )
    }

    /// The text of the first element matching `css`, or null.
    fn text(&self, css: &str) -> Option<String> {
        self.js(
            "const e = document.querySelector(arguments[0]); return e ? e.textContent : null;",
            json!([css]),
        )
        .as_str()
        .map(String::from)
    }

    /// Clicks the element matching `css` as a user would (WebDriver's element click). The
    /// page rebuilds its tables every few seconds: an element replaced between finding and
    /// clicking it is looked up again.
    fn click(&self, css: &str) {
        for _ in 0..10 {
            let e = self.cmd(
                "POST",
                "/element",
                json!({"using": "css selector", "value": css}),
            );
            let id = e[ELEMENT]
                .as_str()
                .unwrap_or_else(|| panic!("no element {css}: {e}"));
            match self.try_cmd("POST", &format!("/element/{id}/click"), json!({})) {
                Ok(_) => return,
                Err(v) if v["value"]["error"] == "stale element reference" => continue,
                Err(v) => panic!("clicking {css}: {v}"),
            }
        }
        panic!("{css} was replaced under every click");
    }

    fn screenshot(&self, to: &Path) {
        let b64 = self.cmd("GET", "/screenshot", Value::Null);
        let png = base64_decode(b64.as_str().expect("screenshot data"));
        assert!(png.starts_with(b"\x89PNG"), "screenshot is not a PNG");
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::write(to, png).unwrap();
    }
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        let _ = http(
            self.driver.addr,
            "DELETE",
            &format!("/session/{}", self.id),
            &[],
            b"",
        );
    }
}

fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {c:?}"),
    };
    let bytes: Vec<u8> = s
        .bytes()
        .filter(|c| !c.is_ascii_whitespace() && *c != b'=')
        .collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, c)| acc | (val(*c) as u32) << (18 - 6 * i));
        out.extend_from_slice(&n.to_be_bytes()[1..chunk.len()]);
    }
    out
}

/// Polls `f` until it holds; fails after a minute (a bound, not a timing assertion).
fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

// ---- the dashboard process ------------------------------------------------------------

/// `rcompose dashboard` over the project's roots, killed on drop.
struct Dashboard {
    child: Child,
    /// The address it printed, with `?token=`.
    url: String,
    token: String,
    addr: SocketAddr,
}

impl Dashboard {
    /// `rcompose_with_roots dashboard --listen <listen>`.
    fn start(mut rcompose_with_roots: Command, listen: SocketAddr) -> Self {
        let mut child = rcompose_with_roots
            .args(["dashboard", "--listen", &listen.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting rcompose dashboard");
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let (mut url, mut token) = (String::new(), String::new());
        for _ in 0..4 {
            let mut line = String::new();
            if out.read_line(&mut line).unwrap_or(0) == 0 {
                break;
            }
            if let Some(u) = line.strip_prefix("Dashboard: ") {
                url = u.trim().to_string();
            }
            if let Some(t) = line.strip_prefix("Token: ") {
                token = t.trim().to_string();
            }
        }
        let d = Self {
            child,
            url,
            token,
            addr: listen,
        };
        assert!(
            d.url.contains("?token=") && d.token.len() == 64,
            "beyond loopback the dashboard prints an address with a token, got url {:?} token {:?}",
            d.url,
            d.token
        );
        d
    }

    fn get(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        http(self.addr, "GET", path, headers, b"")
    }
}

impl Drop for Dashboard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tools_present() -> bool {
    for tool in [CHROMIUM, CHROMEDRIVER] {
        if !Path::new(tool).exists() {
            eprintln!(
                "SKIP dashboard browser test: {tool} is missing (apt install chromium chromium-driver)"
            );
            return false;
        }
    }
    true
}

const COMPOSE: &str = r#"
services:
  db:
    image: {IMAGE}
    command: ["sh", "-c", "head -c 5000 /dev/zero > /data/blob; echo db ready; while true; do sleep 1; done"]
    stop_grace_period: 1s
    healthcheck:
      test: ["CMD", "true"]
      interval: 1s
    volumes: ["data:/data"]
  web:
    image: {IMAGE}
    command: ["sh", "-c", "echo hello > /var/www/index.html; exec httpd -f -p 80 -h /var/www"]
    ports: ["127.0.0.1:{PORT}:80"]
    stop_grace_period: 1s
    depends_on:
      db: {condition: service_healthy}
  worker:
    image: {IMAGE}
    command: ["sh", "-c", "echo worker started; while true; do sleep 1; done"]
    stop_grace_period: 1s
    depends_on: [web, db]
networks:
  default:
    ipam:
      config: [{subnet: "{SUBNET}"}]
volumes:
  data:
"#;

#[test]
fn dashboard_in_chromium_lists_follows_logs_and_stops_with_the_token() {
    if !tools_present() {
        return;
    }
    let p = Project::new("dash");
    let web_port = common::free_port();
    p.write(&COMPOSE.replace("{PORT}", &web_port.to_string()));
    p.ok(&["up", "-d"]);
    let worker = format!("{}-worker-1", p.name);

    // The network's gateway: an address of ours on the host, not loopback.
    let gateway = p.subnet.replace(".0/24", ".1");
    let listen: SocketAddr = format!("{gateway}:{}", common::free_port())
        .parse()
        .unwrap();
    let dash = Dashboard::start(p.cmd(), listen);

    // Without the token nothing is answered, reads included; with it, the list is there.
    let r = dash.get("/api/containers", &[]);
    assert_eq!(r.status, 401, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(dash.get("/", &[]).status, 401);
    assert_eq!(
        dash.get("/api/containers", &[("X-Rcompose-Token", "0000")])
            .status,
        401
    );
    let stop_path = format!("/api/containers/{worker}/stop");
    let r = http(dash.addr, "POST", &stop_path, &[], b"");
    assert_eq!(r.status, 401);
    // The token in the address is for page loads: a POST must carry the header.
    let r = http(
        dash.addr,
        "POST",
        &format!("{stop_path}?token={}", dash.token),
        &[],
        b"",
    );
    assert_eq!(r.status, 401);
    // A page of another origin is refused even with the token.
    let r = http(
        dash.addr,
        "POST",
        &stop_path,
        &[
            ("X-Rcompose-Token", &dash.token),
            ("Origin", "http://evil.example"),
        ],
        b"",
    );
    assert_eq!(r.status, 403);
    // No state changes by GET.
    let r = dash.get(&stop_path, &[("X-Rcompose-Token", &dash.token)]);
    assert_eq!(r.status, 404);
    let r = dash.get("/api/containers", &[("X-Rcompose-Token", &dash.token)]);
    assert_eq!(r.status, 200);
    let list = r.json();
    let state_of = |list: &Value, name: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .map(|c| c["state"].as_str().unwrap_or_default().to_string())
    };
    assert_eq!(
        state_of(&list, &worker).as_deref(),
        Some("running"),
        "{list}"
    );

    let driver = Driver::start();
    let s = driver.session(&gateway);

    // The containers view lists the running containers with their state.
    s.goto(&format!("{}#/containers", dash.url));
    let row = |name: &str| format!(r#"#containers tr[data-name="{name}"]"#);
    wait_for("the worker listed as running", || {
        s.text(&format!("{} .state", row(&worker))).as_deref() == Some("running")
    });
    let web = format!("{}-web-1", p.name);
    assert_eq!(
        s.text(&format!("{} .state", row(&web))).as_deref(),
        Some("running")
    );
    let ports = s.text(&format!("{} td:nth-child(5)", row(&web))).unwrap();
    assert!(
        ports.contains(&format!("127.0.0.1:{web_port}")),
        "ports cell: {ports}"
    );
    // The token left the address bar once the page had it.
    let href = s.js("return location.href", json!([]));
    assert!(!href.as_str().unwrap().contains("token="), "{href}");

    // The project view draws the dependency graph from depends_on.
    s.goto(&format!("{}#/project/{}", dash.url, p.name));
    wait_for("the dependency graph", || {
        s.js(
            "return document.querySelectorAll('svg.graph g[data-service]').length",
            json!([]),
        ) == json!(3)
            && s.text(&row(&worker)).is_some()
    });
    let edges = s.js(
        "return document.querySelectorAll('svg.graph path.edge').length",
        json!([]),
    );
    assert_eq!(edges, json!(3), "web→db, worker→web, worker→db");
    // Let the CPU column get its second sample before the picture.
    wait_for("CPU figures", || {
        [&web, &worker].iter().all(|n| {
            s.text(&format!("{} td:nth-child(7)", row(n)))
                .is_some_and(|t| t.contains('%'))
        })
    });
    // The README's picture is rewritten only when asked, so a test run leaves the tree clean;
    // otherwise the screenshot is still taken (a failure to take one fails the test).
    let shot = match std::env::var_os("RCOMPOSE_SCREENSHOT") {
        Some(_) => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/dashboard.png"),
        None => std::env::temp_dir().join(common::unique("dashboard-") + ".png"),
    };
    s.screenshot(&shot);
    assert!(
        std::fs::metadata(&shot).is_ok_and(|m| m.len() > 1000),
        "no screenshot"
    );
    if std::env::var_os("RCOMPOSE_SCREENSHOT").is_none() {
        let _ = std::fs::remove_file(&shot);
    }

    // Images with their users, networks with subnet and members, volumes with their users.
    let db = format!("{}-db-1", p.name);
    let shows = |view: &str, table: &str, want: &[&str]| {
        s.goto(&format!("{}#/{view}", dash.url));
        wait_for(&format!("the {view} view"), || {
            s.text(&format!("#{table}"))
                .is_some_and(|t| want.iter().all(|w| t.contains(w)))
        });
    };
    shows("images", "images", &["busybox:compose", &worker, &web, &db]);
    let network = format!("{}_default", p.name);
    shows(
        "networks",
        "networks",
        &[&network, &p.subnet, &gateway, &worker, &web, &db],
    );
    let volume = format!("{}_data", p.name);
    shows("volumes", "volumes", &[&volume, &db]);
    let vols = dash
        .get("/api/volumes", &[("X-Rcompose-Token", &dash.token)])
        .json();
    let v = vols
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == volume.as_str())
        .unwrap_or_else(|| panic!("{volume} missing: {vols}"));
    assert!(
        v["size"].as_u64().unwrap() >= 5000,
        "the 5000 bytes db wrote: {v}"
    );
    s.goto(&format!("{}#/containers", dash.url));
    wait_for("the containers view again", || {
        s.text(&row(&worker)).is_some()
    });

    // The logs view shows what was logged, then a line written after it opened.
    s.click(&format!("{} a.name", row(&worker)));
    wait_for("the worker's first log line", || {
        s.text("#log").is_some_and(|t| t.contains("worker started"))
    });
    let marker = common::unique("dashboard-marker-");
    assert!(!s.text("#log").unwrap().contains(&marker));
    p.exec_ok("worker", &format!("echo {marker} > /proc/1/fd/1"));
    wait_for("the new log line in the page", || {
        s.text("#log").is_some_and(|t| t.contains(&marker))
    });

    // Stop, confirmed in the page's dialog, stops the container.
    s.click(&format!("{} button[data-action=stop]", row(&worker)));
    wait_for("the confirmation dialog", || {
        s.js("return document.getElementById('confirm').open", json!([])) == json!(true)
    });
    s.click("#confirm-ok");
    wait_for("the worker shown as exited", || {
        s.text(&format!("{} .state", row(&worker))).as_deref() == Some("exited")
    });
    let ps = p.ps_json();
    let w = ps.iter().find(|c| c["Name"] == worker.as_str()).unwrap();
    assert_eq!(w["State"], "exited", "{w}");
    assert_eq!(
        state_of(
            &dash
                .get("/api/containers", &[("X-Rcompose-Token", &dash.token)])
                .json(),
            &web
        )
        .as_deref(),
        Some("running"),
        "only the worker stopped"
    );

    // Started again from the same view, its new output joins the log being followed.
    let started = || {
        s.text("#log")
            .map_or(0, |t| t.matches("worker started").count())
    };
    assert_eq!(started(), 1);
    s.click(&format!("{} button[data-action=start]", row(&worker)));
    wait_for("the confirmation dialog", || {
        s.js("return document.getElementById('confirm').open", json!([])) == json!(true)
    });
    s.click("#confirm-ok");
    wait_for("the restarted worker's line in the same log view", || {
        started() == 2
    });
    assert!(s.text("#log").unwrap().contains(&marker));
}

/// On loopback the page reads without the token, but acts only when opened with the printed
/// address; another site's name for our address (DNS rebinding) is refused.
#[test]
fn dashboard_on_loopback_reads_freely_and_acts_with_the_printed_token() {
    if !tools_present() {
        return;
    }
    let env = common::container::Env::new();
    let name = common::unique("dashlo");
    env.ok(&[
        "container",
        "run",
        "-d",
        "--name",
        &name,
        "--network",
        "none",
        "--stop-timeout",
        "1",
        common::container::IMAGE,
        "sh",
        "-c",
        "echo up; while true; do sleep 1; done",
    ]);
    let listen: SocketAddr = ([127, 0, 0, 1], common::free_port()).into();
    let dash = Dashboard::start(env.cmd(), listen);
    assert!(
        dash.url.starts_with(&format!("http://{listen}/?token=")),
        "{}",
        dash.url
    );

    let r = dash.get("/api/containers", &[]);
    assert_eq!(r.status, 200, "reads are open on loopback");
    assert!(r.json().to_string().contains(&name));
    let r = http(
        listen,
        "POST",
        &format!("/api/containers/{name}/stop"),
        &[],
        b"",
    );
    assert_eq!(r.status, 401, "{}", String::from_utf8_lossy(&r.body));
    let r = http(
        listen,
        "GET",
        "/api/containers",
        &[("Host", &format!("rebound.example:{}", listen.port()))],
        b"",
    );
    assert_eq!(r.status, 403);

    let driver = Driver::start();
    let s = driver.session("127.0.0.1");
    let row = format!(r#"#containers tr[data-name="{name}"]"#);
    let button = |action: &str| format!("{row} button[data-action={action}]");
    let disabled = |action: &str| {
        s.js(
            "const b = document.querySelector(arguments[0]); return b ? b.disabled : null;",
            json!([button(action)]),
        )
    };
    // Without the token: the list, but no button that could act.
    s.goto(&format!("http://{listen}/#/containers"));
    wait_for("the container listed as running", || {
        s.text(&format!("{row} .state")).as_deref() == Some("running")
    });
    assert_eq!(disabled("stop"), json!(true), "read-only without the token");

    // With the printed address the same page acts: stop, then start again.
    s.goto(&format!("{}#/containers", dash.url));
    wait_for("the Stop button enabled", || {
        disabled("stop") == json!(false)
    });
    for (action, state) in [("stop", "exited"), ("start", "running")] {
        wait_for(&format!("the {action} button enabled"), || {
            disabled(action) == json!(false)
        });
        s.click(&button(action));
        wait_for("the confirmation dialog", || {
            s.js("return document.getElementById('confirm').open", json!([])) == json!(true)
        });
        s.click("#confirm-ok");
        wait_for(&format!("the container shown as {state}"), || {
            s.text(&format!("{row} .state")).as_deref() == Some(state)
        });
        assert_eq!(env.inspect(&name, "{{.State.Status}}").trim(), state);
    }
}
