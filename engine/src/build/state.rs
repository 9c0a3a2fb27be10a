//! The image being built by one stage: its layers and its config (docker's image config
//! JSON, kept as a JSON value so Docker's own fields — Healthcheck, OnBuild, Shell — survive),
//! and how metadata instructions change that config.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::dockerfile::Cmd;

/// One layer of the image being built.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LayerRef {
    /// The compressed blob.
    pub blob: String,
    pub blob_size: u64,
    pub media_type: String,
    pub diff_id: String,
    pub chain_id: String,
}

/// A stage's image so far. Also what a cache entry stores.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub layers: Vec<LayerRef>,
    pub config: Value,
}

pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

impl State {
    pub fn scratch() -> Self {
        State {
            layers: vec![],
            config: json!({
                "architecture": crate::image::host_arch(),
                "os": "linux",
                "config": { "Env": [DEFAULT_PATH] },
                "rootfs": { "type": "layers", "diff_ids": [] },
                "history": [],
            }),
        }
    }

    fn inner(&mut self) -> &mut serde_json::Map<String, Value> {
        if !self.config["config"].is_object() {
            self.config["config"] = json!({});
        }
        self.config["config"].as_object_mut().expect("set above")
    }

    pub fn env(&self) -> Vec<String> {
        strs(&self.config["config"]["Env"])
    }
    pub fn get(&self, key: &str) -> Value {
        self.config["config"][key].clone()
    }
    pub fn set(&mut self, key: &str, v: Value) {
        self.inner().insert(key.to_string(), v);
    }
    pub fn workdir(&self) -> String {
        self.config["config"]["WorkingDir"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
    pub fn user(&self) -> String {
        self.config["config"]["User"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
    /// The SHELL for shell forms (docker's default `/bin/sh -c`).
    pub fn shell(&self) -> Vec<String> {
        let s = strs(&self.config["config"]["Shell"]);
        if s.is_empty() {
            vec!["/bin/sh".into(), "-c".into()]
        } else {
            s
        }
    }
    pub fn onbuild(&self) -> Vec<String> {
        strs(&self.config["config"]["OnBuild"])
    }

    pub fn set_env(&mut self, key: &str, value: &str) {
        let mut env = self.env();
        env.retain(|e| e.split('=').next() != Some(key));
        env.push(format!("{key}={value}"));
        self.set("Env", json!(env));
    }

    /// Adds `key` to a set-like object field (`ExposedPorts`, `Volumes`).
    pub fn add_to_set(&mut self, field: &str, key: &str) {
        let inner = self.inner();
        let e = inner.entry(field).or_insert_with(|| json!({}));
        if !e.is_object() {
            *e = json!({});
        }
        e[key] = json!({});
    }

    pub fn set_label(&mut self, key: &str, value: &str) {
        let inner = self.inner();
        let e = inner.entry("Labels").or_insert_with(|| json!({}));
        if !e.is_object() {
            *e = json!({});
        }
        e[key] = json!(value);
    }

    /// A command in the config's form: the shell form goes through SHELL.
    pub fn command(&self, c: &Cmd) -> Vec<String> {
        match c {
            Cmd::Exec(v) => v.clone(),
            Cmd::Shell(s) => {
                let mut v = self.shell();
                v.push(s.clone());
                v
            }
        }
    }

    /// Appends a history entry (docker's `created_by`, `empty_layer` for metadata steps).
    pub fn history(&mut self, created: &str, created_by: &str, empty_layer: bool) {
        let mut h =
            json!({ "created": created, "created_by": created_by, "comment": "rcompose build" });
        if empty_layer {
            h["empty_layer"] = json!(true);
        }
        if !self.config["history"].is_array() {
            self.config["history"] = json!([]);
        }
        if let Some(a) = self.config["history"].as_array_mut() {
            a.push(h);
        }
        self.config["created"] = json!(created);
    }

    pub fn push_layer(&mut self, layer: LayerRef) {
        if !self.config["rootfs"]["diff_ids"].is_array() {
            self.config["rootfs"] = json!({ "type": "layers", "diff_ids": [] });
        }
        if let Some(a) = self.config["rootfs"]["diff_ids"].as_array_mut() {
            a.push(json!(layer.diff_id));
        }
        self.layers.push(layer);
    }

    pub fn top_chain(&self) -> Option<&str> {
        self.layers.last().map(|l| l.chain_id.as_str())
    }
}

pub fn strs(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// `WORKDIR`: relative paths build on the previous one.
pub fn join_workdir(prev: &str, dir: &str) -> String {
    let joined = if dir.starts_with('/') {
        dir.to_string()
    } else {
        format!("{}/{dir}", if prev.is_empty() { "" } else { prev })
    };
    match super::ignore::clean(&joined).as_str() {
        "." => "/".into(),
        c => format!("/{c}"),
    }
}

/// A `COPY`/`ADD` destination made absolute against `WORKDIR`. A trailing `/` marks a
/// directory, and so does a last component `.` (`COPY f .`, `COPY f /app/.`), as in Docker:
/// the file goes into that directory rather than replacing it.
pub fn copy_dest(workdir: &str, dest: &str) -> String {
    let is_dir = dest.ends_with('/') || dest == "." || dest.ends_with("/.");
    let abs = if dest.starts_with('/') && !is_dir {
        dest.to_string()
    } else {
        join_workdir(workdir, dest)
    };
    if is_dir && !abs.ends_with('/') {
        format!("{abs}/")
    } else {
        abs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_destinations() {
        assert_eq!(copy_dest("/app", "."), "/app/");
        assert_eq!(copy_dest("", "."), "/");
        assert_eq!(copy_dest("/app", "./"), "/app/");
        assert_eq!(copy_dest("/app", "x"), "/app/x");
        assert_eq!(copy_dest("/app", "x/"), "/app/x/");
        assert_eq!(copy_dest("/app", "/srv/."), "/srv/");
        assert_eq!(copy_dest("/app", "/srv/f"), "/srv/f");
        assert_eq!(copy_dest("/app", "/srv/"), "/srv/");
    }

    #[test]
    fn workdirs_and_env() {
        assert_eq!(join_workdir("", "app"), "/app");
        assert_eq!(join_workdir("/app", "src/../lib"), "/app/lib");
        assert_eq!(join_workdir("/app", "/x"), "/x");
        let mut s = State::scratch();
        s.set_env("A", "1");
        s.set_env("A", "2");
        assert_eq!(s.env(), [DEFAULT_PATH, "A=2"]);
        assert_eq!(
            s.command(&Cmd::Shell("echo".into())),
            ["/bin/sh", "-c", "echo"]
        );
    }
}
