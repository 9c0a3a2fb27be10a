//! Shared helpers for the network end-to-end tests: a state root per test, namespaces that
//! stand in for containers, and Drop guards that clean up even when a test fails.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Once;
use std::time::Duration;

use rcompose_net::{AttachRequest, Attachment, Networks};

pub use super::{BIN, unique};

/// A state root and run root of our own; Drop removes every network, bridge, DNS server and
/// nft table made through it.
pub struct Root {
    pub dir: tempfile::TempDir,
}

impl Root {
    pub fn new() -> Root {
        Root {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }
    pub fn run_root(&self) -> PathBuf {
        self.dir.path().join("run")
    }
    pub fn nets(&self) -> Networks {
        Networks::open(&self.root(), &self.run_root())
            .expect("open networks")
            .with_helper_exe(BIN)
    }
    /// Runs the CLI against this root with RCOMPOSE_DNS_UPSTREAM=none.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .arg("--root")
            .arg(self.root())
            .arg("--run-root")
            .arg(self.run_root())
            .args(args)
            .env("RCOMPOSE_DNS_UPSTREAM", "none")
            .output()
            .expect("run rcompose")
    }
    pub fn table(&self) -> String {
        rcompose_net::api::table_name(&self.root())
    }
    pub fn dns_pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.run_root().join("dns/pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        if let Ok(nets) = Networks::open(&self.root(), &self.run_root()) {
            if let Ok(list) = nets.list() {
                for n in list {
                    for id in n.endpoints.keys() {
                        let _ = nets.detach(&n.name, id);
                    }
                    let _ = nets.remove(&n.name);
                }
            }
            // The default network stays; this takes its idle bridge with the rules (the
            // iptables chains too, which deleting the bridge by hand would leave).
            let _ = nets.prune(&[]);
            if let Ok(list) = nets.list() {
                for n in list {
                    let _ = Command::new("ip")
                        .args(["link", "del", &n.bridge])
                        .stderr(Stdio::null())
                        .status();
                }
            }
        }
        let _ = Command::new("nft")
            .args(["delete", "table", "inet", &self.table()])
            .stderr(Stdio::null())
            .status();
        if let Some(pid) = self.dns_pid() {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            if cmdline
                .split(|b| *b == 0)
                .any(|a| a == rcompose_net::dns::control::SUBCOMMAND.as_bytes())
            {
                unsafe { libc::kill(pid, libc::SIGTERM) };
            }
        }
    }
}

/// A named network namespace standing in for a container. Drop kills its processes and
/// deletes it (which also deletes its veth ends).
pub struct Ns {
    pub name: String,
    pub procs: Vec<Child>,
}

impl Ns {
    pub fn new() -> Ns {
        let name = unique("rctest-");
        let ok = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .expect("ip netns add");
        assert!(ok.success(), "ip netns add {name} failed");
        Ns {
            name,
            procs: Vec::new(),
        }
    }
    pub fn path(&self) -> PathBuf {
        PathBuf::from(format!("/run/netns/{}", self.name))
    }
    /// Writes /etc/netns/<name>/resolv.conf, which `ip netns exec` mounts over /etc/resolv.conf.
    pub fn set_resolv_conf(&self, text: &str) {
        let dir = PathBuf::from(format!("/etc/netns/{}", self.name));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("resolv.conf"), text).unwrap();
    }
    pub fn exec(&self, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(args)
            .output()
            .expect("ip netns exec")
    }
    /// `timeout 5 busybox <args>` inside the namespace.
    pub fn busybox(&self, args: &[&str]) -> Output {
        let mut full = vec!["timeout", "5", "busybox"];
        full.extend_from_slice(args);
        self.exec(&full)
    }
    pub fn spawn(&mut self, args: &[&str]) {
        let child = Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn in netns");
        self.procs.push(child);
    }
    /// Starts busybox httpd on `port` serving `body` as /index.html.
    pub fn httpd(&mut self, port: u16, body: &str, dir: &Path) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("index.html"), body).unwrap();
        let p = format!("{port}");
        self.spawn(&[
            "busybox",
            "httpd",
            "-f",
            "-p",
            &p,
            "-h",
            dir.to_str().unwrap(),
        ]);
        // Wait until it listens.
        for _ in 0..100 {
            let out = self.exec(&["busybox", "netstat", "-ltn"]);
            if String::from_utf8_lossy(&out.stdout).contains(&format!(":{port} ")) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("httpd on port {port} did not start in {}", self.name);
    }
    pub fn attach(
        &self,
        nets: &Networks,
        network: &str,
        name: &str,
        aliases: &[&str],
    ) -> Attachment {
        nets.attach(
            network,
            AttachRequest {
                container_id: format!("{name}-{}", self.name),
                container_name: name.to_string(),
                netns_path: self.path(),
                aliases: aliases.iter().map(|s| s.to_string()).collect(),
                ..Default::default()
            },
        )
        .expect("attach")
    }
    pub fn id_for(&self, name: &str) -> String {
        format!("{name}-{}", self.name)
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        for c in &mut self.procs {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
        let _ = std::fs::remove_dir_all(format!("/etc/netns/{}", self.name));
        // Only succeeds when no other namespace uses it.
        let _ = std::fs::remove_dir("/etc/netns");
    }
}

pub fn link_exists(name: &str) -> bool {
    Command::new("ip")
        .args(["link", "show", name])
        .stderr(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

pub fn table_exists(table: &str) -> bool {
    Command::new("nft")
        .args(["list", "table", "inet", table])
        .stderr(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Runs `f` on a thread that has entered the namespace at `path`.
pub fn in_netns<T: Send + 'static>(path: &Path, f: impl FnOnce() -> T + Send + 'static) -> T {
    let file = std::fs::File::open(path).expect("open netns");
    std::thread::spawn(move || {
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
        f()
    })
    .join()
    .expect("netns thread")
}

/// A hand-built DNS query for `name` (type A, or PTR with `qtype = 12`).
pub fn dns_query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut q = id.to_be_bytes().to_vec();
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.trim_end_matches('.').split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.push(0);
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&[0, 1]);
    q
}

/// (rcode, answer count) of a reply to query `id`.
pub fn ask(sock: &UdpSocket, server: Ipv4Addr, id: u16, name: &str) -> Result<(u8, u16), String> {
    sock.send_to(&dns_query(id, name, 1), SocketAddrV4::new(server, 53))
        .map_err(|e| format!("send: {e}"))?;
    let mut buf = [0u8; 1500];
    loop {
        let (len, _) = sock.recv_from(&mut buf).map_err(|e| format!("recv: {e}"))?;
        if len < 12 {
            return Err("short reply".into());
        }
        if u16::from_be_bytes([buf[0], buf[1]]) != id {
            continue; // a late reply to an earlier query
        }
        return Ok((buf[3] & 0x0f, u16::from_be_bytes([buf[6], buf[7]])));
    }
}

/// The embedded DNS never forwards in these tests (set once for the in-process calls).
pub fn setup() {
    static ONCE: Once = Once::new();
    // SAFETY: set once, before any thread of ours reads the environment.
    ONCE.call_once(|| unsafe { std::env::set_var("RCOMPOSE_DNS_UPSTREAM", "none") });
}

/// `network create <args>`, asserting success.
pub fn create(root: &Root, args: &[&str]) {
    let mut full = vec!["network", "create"];
    full.extend_from_slice(args);
    let out = root.cli(&full);
    assert!(
        out.status.success(),
        "network create {args:?}: {}",
        text(&out)
    );
}

/// Waits until the root's DNS server has exited.
pub fn wait_dns_gone(root: &Root) {
    for _ in 0..100 {
        let alive = root
            .dns_pid()
            .is_some_and(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists());
        if !alive {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the DNS server did not stop after the last network went");
}

/// `GET /` on a loopback port; the body, or why not.
pub fn http_get(port: u16) -> Result<String, String> {
    let mut s = TcpStream::connect_timeout(
        &format!("127.0.0.1:{port}").parse().unwrap(),
        Duration::from_secs(3),
    )
    .map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).map_err(|e| e.to_string())?;
    resp.split("\r\n\r\n")
        .nth(1)
        .map(str::to_string)
        .ok_or(resp)
}
