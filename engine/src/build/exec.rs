//! Running the stages a target needs, step by step, with the cache.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use serde_json::json;

use super::dockerfile::{Cmd, Dockerfile, Instr, Stage, Step, parse_trigger};
use super::expand::{self, Vars};
use super::ignore::Ignore;
use super::state::{LayerRef, State, join_workdir};
use super::{BuildError, BuildEvent, BuildOptions, PullFn};
use crate::container::Containers;
use crate::store::digest::digest_of;
use crate::store::manifest::OCI_LAYER_GZIP;
use crate::store::{Lease, Store};

/// ARGs docker predefines: usable without an `ARG`, never recorded in history.
pub const PROXY_ARGS: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

pub struct Builder<'a> {
    pub containers: &'a Containers,
    pub store: Store,
    /// See [`Builder::lease`].
    pub lease: std::sync::OnceLock<Lease>,
    pub opts: &'a BuildOptions,
    pub df: Dockerfile,
    pub file: String,
    pub ignore: Ignore,
    pub pull: Option<PullFn<'a>>,
    pub network: Option<&'a dyn super::RunNetwork>,
    pub events: &'a mut dyn FnMut(BuildEvent),
    pub done: BTreeMap<usize, State>,
    /// The cache key of each built stage's last step.
    pub keys: BTreeMap<usize, String>,
    pub global: Vars,
    pub used_args: BTreeSet<String>,
    pub steps_cached: usize,
    pub cacheable: usize,
    pub tmp: PathBuf,
}

pub(super) struct Ctx {
    pub(super) state: State,
    pub(super) key: String,
    pub(super) args: Vars,
    pub(super) stage: String,
    pub(super) cmd_set: bool,
}

pub(super) fn step_err(file: &str, step: &Step, message: impl Into<String>) -> BuildError {
    BuildError::Step {
        file: file.to_string(),
        line: step.line,
        instruction: step.text.clone(),
        message: message.into(),
    }
}

fn platform_vars() -> Vars {
    let arch = crate::image::host_arch().to_string();
    let p = format!("linux/{arch}");
    [
        ("TARGETPLATFORM", p.clone()),
        ("TARGETOS", "linux".into()),
        ("TARGETARCH", arch.clone()),
        ("BUILDPLATFORM", p),
        ("BUILDOS", "linux".into()),
        ("BUILDARCH", arch),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

impl Builder<'_> {
    pub(super) fn err(&self, step: &Step, message: impl Into<String>) -> BuildError {
        step_err(&self.file, step, message)
    }

    pub(super) fn emit(&mut self, e: BuildEvent) {
        (self.events)(e);
    }

    /// Global ARGs (before the first FROM) with their values.
    pub fn init_globals(&mut self) -> Result<(), BuildError> {
        let mut g = platform_vars();
        for step in self.df.global_args.clone() {
            let Instr::Arg(text) = &step.instr else {
                continue;
            };
            for (k, v) in expand::key_values(text, &g, self.df.escape, false)
                .map_err(|e| self.err(&step, e.0))?
            {
                self.used_args.insert(k.clone());
                if let Some(v) = self.opts.build_args.get(&k).cloned().or(v) {
                    g.insert(k, v);
                }
            }
        }
        self.global = g;
        Ok(())
    }

    fn stage_ref(&self, from: &Step) -> Result<String, BuildError> {
        let Instr::From { image, .. } = &from.instr else {
            unreachable!()
        };
        let r =
            expand::word(image, &self.global, self.df.escape).map_err(|e| self.err(from, e.0))?;
        if r.is_empty() {
            return Err(self.err(
                from,
                format!(
                    "base name ({image}) should not be blank: give the ARG a value (--build-arg)"
                ),
            ));
        }
        Ok(r)
    }

    /// The earlier stage a name refers to, if it is one.
    fn earlier_stage(&self, name: &str, before: usize) -> Option<usize> {
        self.df.stage(name).map(|s| s.index).filter(|&i| i < before)
    }

    /// Stages `target` needs, in order.
    pub fn needed(&self, target: usize) -> Result<Vec<usize>, BuildError> {
        let mut need = BTreeSet::new();
        let mut todo = vec![target];
        while let Some(i) = todo.pop() {
            if !need.insert(i) {
                continue;
            }
            let s = &self.df.stages[i];
            let base = self.stage_ref(&s.from)?;
            if let Some(j) = self.earlier_stage(&base, i) {
                todo.push(j);
            }
            for step in &s.steps {
                let froms = step.flags_named("from").map(str::to_string).chain(
                    step.flags_named("mount").filter_map(|m| {
                        m.split(',')
                            .find_map(|p| p.strip_prefix("from="))
                            .map(str::to_string)
                    }),
                );
                for f in froms.collect::<Vec<_>>() {
                    if let Some(j) = self.earlier_stage(&f, i) {
                        todo.push(j);
                    }
                }
            }
        }
        Ok(need.into_iter().collect())
    }

    pub(super) fn image_state(
        &mut self,
        from: &Step,
        reference: &str,
    ) -> Result<State, BuildError> {
        let reference = reference
            .strip_prefix("docker-image://")
            .unwrap_or(reference);
        let found = self.store.resolve(reference);
        if self.opts.pull || found.is_err() {
            match self.pull {
                Some(p) => {
                    p(reference).map_err(|e| self.err(from, format!("pulling {reference}: {e}")))?
                }
                None if found.is_err() => {
                    return Err(self.err(from, format!("image {reference} not found")));
                }
                None => {}
            }
        }
        let rec = self
            .store
            .resolve(reference)
            .map_err(|e| self.err(from, e.to_string()))?;
        let layers = rec
            .manifest
            .layers
            .iter()
            .zip(&rec.layers)
            .map(|(d, l)| LayerRef {
                blob: d.digest.clone(),
                blob_size: d.size,
                media_type: d.media_type.clone(),
                diff_id: l.diff_id.clone(),
                chain_id: l.chain_id.clone(),
            })
            .collect();
        Ok(State {
            layers,
            config: rec.config_json.clone(),
        })
    }

    /// Runs one stage to its final state.
    pub fn stage(&mut self, stage: &Stage) -> Result<(State, String), BuildError> {
        let from = &stage.from;
        let sname = stage
            .name
            .clone()
            .unwrap_or_else(|| stage.index.to_string());
        if let Some(p) = from.flag("platform") {
            let p =
                expand::word(p, &self.global, self.df.escape).map_err(|e| self.err(from, e.0))?;
            let want = crate::image::platform::PlatformSpec::parse(&p)
                .map_err(|e| self.err(from, e.to_string()))?;
            let host = crate::image::platform::PlatformSpec::host();
            if want.os != host.os || want.arch != host.arch {
                return Err(self.err(
                    from,
                    format!(
                        "--platform={p}: only the host platform linux/{} can be built",
                        host.arch
                    ),
                ));
            }
        }
        let base = self.stage_ref(from)?;
        self.emit(BuildEvent::Step {
            stage: sname.clone(),
            line: from.line,
            text: format!("FROM {base}"),
        });
        let mut key = None;
        let state = if let Some(i) = self.earlier_stage(&base, stage.index) {
            key = self.keys.get(&i).cloned();
            self.done
                .get(&i)
                .cloned()
                .ok_or_else(|| self.err(from, format!("stage {base} was not built")))?
        } else if base == "scratch" {
            key = Some("scratch".into());
            State::scratch()
        } else if let Some(c) = self.opts.contexts.get(&base).cloned() {
            if !c.starts_with("docker-image://") {
                return Err(self.err(from, format!("build context {base} is a directory: FROM needs an image (docker-image://…)")));
            }
            self.image_state(from, &c)?
        } else {
            self.image_state(from, &base)?
        };
        // An image is keyed by its config (its id), which fixes its layers too.
        let key = key.unwrap_or_else(|| {
            digest_of(
                serde_json::to_string(&state.config)
                    .unwrap_or_default()
                    .as_bytes(),
            )
        });
        let mut cx = Ctx {
            state,
            key,
            args: Vars::new(),
            stage: sname,
            cmd_set: false,
        };
        // ONBUILD triggers of the base run first, then are cleared (as docker).
        let triggers = cx.state.onbuild();
        if !triggers.is_empty() {
            cx.state.set("OnBuild", json!(null));
            for t in triggers {
                let step = parse_trigger(&t, from.line, &self.file)?;
                self.step(&mut cx, &step)?;
            }
        }
        for step in &stage.steps {
            self.step(&mut cx, step)?;
        }
        Ok((cx.state, cx.key))
    }

    fn vars(&self, cx: &Ctx) -> Vars {
        let mut v = cx.args.clone();
        for e in cx.state.env() {
            if let Some((k, val)) = e.split_once('=') {
                v.insert(k.into(), val.into());
            }
        }
        v
    }

    fn step(&mut self, cx: &mut Ctx, step: &Step) -> Result<(), BuildError> {
        // Flags docker knows that this builder does not implement: refused, never ignored.
        for f in ["parents", "exclude", "checksum", "keep-git-dir", "security"] {
            if step.flag(f).is_some() {
                return Err(self.err(step, format!("--{f} is not supported by this builder")));
            }
        }
        let esc = self.df.escape;
        let vars = self.vars(cx);
        let file = self.file.clone();
        let w = |s: &str| expand::word(s, &vars, esc).map_err(|e| step_err(&file, step, e.0));
        let now = crate::units::time::now_rfc3339();
        let kv = |t: &str, legacy| {
            expand::key_values(t, &vars, esc, legacy).map_err(|e| step_err(&file, step, e.0))
        };
        // Metadata steps: no cache needed, they are cheap and deterministic.
        let mut meta = true;
        let shown = step.text.clone();
        match &step.instr {
            Instr::Env(t) => {
                for (k, v) in kv(t, true)? {
                    let v = v.ok_or_else(|| {
                        self.err(step, format!("{k}: missing a value (ENV {k}=value)"))
                    })?;
                    cx.state.set_env(&k, &v);
                }
            }
            Instr::Arg(t) => {
                for (k, v) in kv(t, false)? {
                    self.used_args.insert(k.clone());
                    let v = self
                        .opts
                        .build_args
                        .get(&k)
                        .cloned()
                        .or(v)
                        .or_else(|| self.global.get(&k).cloned());
                    match v {
                        Some(v) => cx.args.insert(k, v),
                        None => cx.args.remove(&k),
                    };
                }
                self.emit(BuildEvent::Step {
                    stage: cx.stage.clone(),
                    line: step.line,
                    text: shown,
                });
                return Ok(());
            }
            Instr::Label(t) => {
                for (k, v) in kv(t, true)? {
                    cx.state.set_label(&k, &v.unwrap_or_default());
                }
            }
            Instr::Maintainer(m) => cx.state.config["author"] = json!(m),
            Instr::Expose(ports) => {
                for p in ports {
                    for p in expand::words(p, &vars, esc).map_err(|e| self.err(step, e.0))? {
                        let p = if p.contains('/') {
                            p
                        } else {
                            format!("{p}/tcp")
                        };
                        cx.state.add_to_set("ExposedPorts", &p);
                    }
                }
            }
            Instr::Volume(vols) => {
                for v in vols {
                    let v = w(v)?;
                    if v.is_empty() {
                        return Err(self.err(step, "VOLUME needs a path"));
                    }
                    cx.state.add_to_set("Volumes", &v);
                }
            }
            Instr::User(u) => cx.state.set("User", json!(w(u)?)),
            Instr::Workdir(d) => {
                let d = join_workdir(&cx.state.workdir(), &w(d)?);
                cx.state.set("WorkingDir", json!(d));
            }
            Instr::Cmd(c) => {
                cx.cmd_set = true;
                let c = cx.state.command(c);
                cx.state.set("Cmd", json!(c));
            }
            Instr::Entrypoint(c) => {
                let c = cx.state.command(c);
                cx.state.set("Entrypoint", json!(c));
                if !cx.cmd_set {
                    cx.state.set("Cmd", json!(null));
                }
            }
            Instr::Shell(s) => cx.state.set("Shell", json!(s)),
            Instr::Stopsignal(s) => cx.state.set("StopSignal", json!(w(s)?)),
            Instr::Onbuild(t) => {
                let mut o = cx.state.onbuild();
                o.push(t.clone());
                cx.state.set("OnBuild", json!(o));
            }
            Instr::Healthcheck(None) => cx.state.set("Healthcheck", json!({ "Test": ["NONE"] })),
            Instr::Healthcheck(Some(c)) => {
                let test = match c {
                    Cmd::Exec(v) => std::iter::once("CMD".to_string())
                        .chain(v.iter().cloned())
                        .collect::<Vec<_>>(),
                    Cmd::Shell(s) => vec!["CMD-SHELL".into(), s.clone()],
                };
                let mut hc = json!({ "Test": test });
                for (flag, field) in [
                    ("interval", "Interval"),
                    ("timeout", "Timeout"),
                    ("start-period", "StartPeriod"),
                    ("start-interval", "StartInterval"),
                ] {
                    if let Some(v) = step.flag(flag) {
                        let ms = crate::units::parse_duration_ms(v).ok_or_else(|| {
                            self.err(step, format!("--{flag}={v}: not a duration"))
                        })?;
                        hc[field] = json!(ms * 1_000_000);
                    }
                }
                if let Some(r) = step.flag("retries") {
                    hc["Retries"] = json!(
                        r.parse::<u64>()
                            .map_err(|_| self.err(step, format!("--retries={r}: not a number")))?
                    );
                }
                cx.state.set("Healthcheck", hc);
            }
            Instr::From { .. } => return Err(self.err(step, "FROM inside a stage")),
            Instr::Run { .. } | Instr::Copy { .. } => meta = false,
        }
        self.emit(BuildEvent::Step {
            stage: cx.stage.clone(),
            line: step.line,
            text: shown.clone(),
        });
        crate::container::proc::trace_phase("build.step");
        if meta {
            // Keyed by the resulting config, so expanded values count; a hit reuses the
            // earlier state and its timestamps, so a rebuild gives the same image id.
            let key = digest_of(
                format!("{}\n{}\n{}", cx.key, shown, cx.state.config["config"]).as_bytes(),
            );
            match self.cached(&key) {
                Some(s) => {
                    cx.state = s;
                    cx.key = key;
                }
                None => {
                    cx.state.history(&now, &shown, true);
                    self.save_cache(&key, &cx.state);
                    cx.key = key;
                }
            }
            return Ok(());
        }
        match &step.instr {
            Instr::Run { cmd, script } => self.run_step(cx, step, cmd, script.as_deref(), &vars),
            Instr::Copy { add, srcs, dest } => self.copy_step(cx, step, *add, srcs, dest, &vars),
            _ => unreachable!(),
        }
    }

    pub(super) fn cache_path(&self, key: &str) -> PathBuf {
        self.store
            .root()
            .join("builder/cache")
            .join(key.trim_start_matches("sha256:"))
    }

    /// A cached state for `key` whose layers are all still in the store.
    pub(super) fn cached(&self, key: &str) -> Option<State> {
        if self.opts.no_cache {
            return None;
        }
        let s: State = serde_json::from_slice(&fs::read(self.cache_path(key)).ok()?).ok()?;
        s.layers
            .iter()
            .all(|l| self.store.has_blob(&l.blob) && self.store.has_layer(&l.chain_id))
            .then_some(s)
    }

    pub(super) fn save_cache(&self, key: &str, s: &State) {
        let p = self.cache_path(key);
        if let Some(d) = p.parent() {
            let _ = fs::create_dir_all(d);
        }
        let _ = crate::store::fsutil::atomic_write(&p, &serde_json::to_vec(s).unwrap_or_default());
    }

    /// Turns a layer tar (uncompressed, at `tar`) into a layer of `cx.state`.
    pub(super) fn add_layer(
        &mut self,
        cx: &mut Ctx,
        tar: &Path,
        diff_id: &str,
    ) -> Result<(), BuildError> {
        let f = fs::File::open(tar).map_err(super::io_err(tar))?;
        let gz = flate2::read::GzEncoder::new(BufReader::new(f), flate2::Compression::fast());
        let (blob, size) = self.store.ingest_blob(gz, None)?;
        crate::container::proc::trace_phase("build.layer.stored");
        self.lease()?.add([blob.clone()])?;
        let info = self
            .store
            .ensure_layer(&blob, Some(diff_id), cx.state.top_chain())?;
        crate::container::proc::trace_phase("build.layer.unpacked");
        self.lease()?.add([info.chain_id.clone()])?;
        cx.state.push_layer(LayerRef {
            blob,
            blob_size: size,
            media_type: OCI_LAYER_GZIP.into(),
            diff_id: info.diff_id,
            chain_id: info.chain_id,
        });
        Ok(())
    }

    pub(super) fn new_tar(&self) -> Result<(PathBuf, fs::File), BuildError> {
        fs::create_dir_all(&self.tmp).map_err(super::io_err(&self.tmp))?;
        let p = self.tmp.join(crate::store::fsutil::unique_name("layer"));
        let f = fs::File::options()
            .create_new(true)
            .read(true)
            .write(true)
            .open(&p)
            .map_err(super::io_err(&p))?;
        Ok((p, f))
    }

    /// The layer directories to mount for `s` (lowest first).
    pub(super) fn layer_dirs(&self, s: &State) -> Result<Vec<PathBuf>, BuildError> {
        let mut dirs = self.image_dirs(s)?;
        if dirs.is_empty() {
            // The engine needs one lower dir: an empty layer, not recorded in the image.
            let empty = [0u8; 1024];
            let (blob, _) = self.store.ingest_blob(&empty[..], None)?;
            let info = self.store.ensure_layer(&blob, None, None)?;
            self.lease()?.add([blob, info.chain_id.clone()])?;
            dirs.push(self.store.layer_diff_dir(&info.chain_id)?);
        }
        Ok(dirs)
    }

    /// The directories of the layers of `s` (lowest first), to look paths up in.
    pub(super) fn image_dirs(&self, s: &State) -> Result<Vec<PathBuf>, BuildError> {
        s.layers
            .iter()
            .map(|l| Ok(self.store.layer_diff_dir(&l.chain_id)?))
            .collect()
    }

    /// The build's lease, taken when the first layer is written: an all-cached build
    /// writes nothing.
    pub(super) fn lease(&self) -> Result<&Lease, BuildError> {
        if let Some(l) = self.lease.get() {
            return Ok(l);
        }
        let l = self.store.lease()?;
        Ok(self.lease.get_or_init(|| l))
    }

    pub(super) fn finish_step(&mut self, cx: &mut Ctx, key: String, text: &str, empty: bool) {
        cx.state
            .history(&crate::units::time::now_rfc3339(), text, empty);
        self.save_cache(&key, &cx.state);
        crate::container::proc::trace_phase("build.cache.saved");
        cx.key = key;
    }

    pub(super) fn try_cache(&mut self, cx: &mut Ctx, key: &str) -> bool {
        let hit = self.cached(key);
        self.count_step(cx, key, hit)
    }

    /// Counts a cacheable step; a hit (`cached`) becomes the stage's state. Says whether
    /// it was one.
    pub(super) fn count_step(&mut self, cx: &mut Ctx, key: &str, cached: Option<State>) -> bool {
        self.cacheable += 1;
        let Some(s) = cached else {
            return false;
        };
        cx.state = s;
        cx.key = key.to_string();
        self.steps_cached += 1;
        self.emit(BuildEvent::Cached);
        true
    }
}
