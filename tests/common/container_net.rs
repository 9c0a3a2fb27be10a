//! The fixture of the container networking tests (`container_network*.rs`): a state root
//! with the busybox test image, containers and networks made through the CLI and removed
//! by a Drop guard even when a test fails, and shell snippets for a web server and clients.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use rcompose_net::Networks;

use super::{BIN, Roots, assert_ok, busybox, unique};

pub const IMAGE: &str = "busybox:nettest";

/// Serves "hello" over HTTP on `addr` (e.g. `80` or `127.0.0.1:80`).
pub fn httpd(addr: &str) -> String {
    format!("mkdir -p /www && echo hello > /www/index.html && exec httpd -f -p {addr} -h /www")
}

/// Shell that fetches `url` (retrying while the server starts) and prints the body.
pub fn fetch(url: &str) -> String {
    format!("for i in $(seq 50); do timeout 5 wget -qO- {url} && exit 0; sleep 0.2; done; exit 1")
}

/// Shell that fetches `url` once (for names that must not resolve or hosts that must not
/// answer). Not the last command of the script: `sh -c` would exec it as the container's
/// PID 1, which ignores timeout's SIGTERM, and a dropped connection would wait the kernel's
/// full connect timeout.
pub fn fetch_once(url: &str) -> String {
    format!("timeout -s KILL 5 wget -qO- {url}; exit $?")
}

pub struct Env {
    pub roots: Roots,
    pub containers: Vec<String>,
    pub networks: Vec<String>,
}

impl Env {
    pub fn new() -> Env {
        let env = Env {
            roots: Roots::new("rc-cnet-"),
            containers: vec![],
            networks: vec![],
        };
        busybox::busybox_image(BIN.as_ref(), &env.root(), IMAGE);
        env
    }
    pub fn root(&self) -> PathBuf {
        self.roots.root()
    }
    pub fn run_root(&self) -> PathBuf {
        self.roots.run_root()
    }
    pub fn cli(&self, args: &[&str]) -> Output {
        let mut cmd = self.roots.cmd();
        cmd.args(args).stdin(Stdio::null());
        cmd.output().expect("run rcompose")
    }
    pub fn ok(&self, args: &[&str]) -> String {
        assert_ok(args, &self.cli(args))
    }
    pub fn network(&mut self, subnet: &str) -> String {
        let name = unique("cn");
        self.networks.push(name.clone());
        self.ok(&["network", "create", "--subnet", subnet, &name]);
        name
    }
    pub fn network_with(&mut self, flags: &[&str], subnet: &str) -> String {
        let name = unique("cn");
        self.networks.push(name.clone());
        let mut args = vec!["network", "create", "--subnet", subnet];
        args.extend_from_slice(flags);
        args.push(&name);
        self.ok(&args);
        name
    }
    /// `run -d --name <unique> <flags> IMAGE sh -c <script>`; returns the name.
    pub fn daemon(&mut self, flags: &[&str], script: &str) -> String {
        let name = unique("cc");
        self.containers.push(name.clone());
        let mut args = vec!["container", "run", "-d", "--name", &name];
        args.extend_from_slice(flags);
        args.extend_from_slice(&[IMAGE, "sh", "-c", script]);
        self.ok(&args);
        name
    }
    /// `run --rm <flags> IMAGE sh -c <script>` in the foreground.
    pub fn client(&self, flags: &[&str], script: &str) -> Output {
        let mut args = vec!["container", "run", "--rm"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&[IMAGE, "sh", "-c", script]);
        self.cli(&args)
    }
    pub fn nets(&self) -> Networks {
        Networks::open(&self.root(), &self.run_root()).expect("open networks")
    }
    /// Host-side names this root's networks use now: bridges and veth ends.
    pub fn host_links(&self) -> Vec<String> {
        let mut out = vec![];
        for n in self.nets().list().unwrap_or_default() {
            out.push(n.bridge.clone());
            out.extend(n.endpoints.values().map(|e| e.host_ifname.clone()));
        }
        out
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        for c in &self.containers {
            let _ = self.cli(&["container", "rm", "-f", c]);
        }
        for n in &self.networks {
            let _ = self.cli(&["network", "rm", n]);
        }
        let _ = Command::new("nft")
            .args([
                "delete",
                "table",
                "inet",
                &rcompose_net::api::table_name(&self.root()),
            ])
            .stderr(Stdio::null())
            .status();
    }
}
