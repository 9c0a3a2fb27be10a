//! The steps that produce layers: `RUN` (in a container of the engine) and `COPY`/`ADD`
//! (a layer tar written from the sources), both cached by content.

use std::fs;
use std::io::Seek;
use std::path::PathBuf;

use super::copy::{self, CopySpec};
use super::dockerfile::{Cmd, Step};
use super::exec::{Builder, Ctx, PROXY_ARGS, step_err};
use super::expand::{self, Vars};
use super::run::{self, RunSpec};
use super::state::copy_dest;
use super::{BuildError, BuildEvent};
use crate::rootfs::Rootfs;
use crate::store::digest::{HashingWriter, digest_of};

/// Where a `#!` heredoc script is mounted in its RUN container (/dev is a tmpfs there, so
/// the mount point never reaches the layer).
const SCRIPT_PATH: &str = "/dev/pipes/script";

static MOUNT_TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl Builder<'_> {
    pub(super) fn run_step(
        &mut self,
        cx: &mut Ctx,
        step: &Step,
        cmd: &Cmd,
        script: Option<&str>,
        vars: &Vars,
    ) -> Result<(), BuildError> {
        // A `RUN <<EOF` script starting with `#!` runs as a file with that interpreter, as
        // BuildKit does; any other goes to the shell.
        let shebang = script.filter(|s| s.starts_with("#!"));
        let args = match (cmd, script) {
            (_, Some(_)) if shebang.is_some() => vec![SCRIPT_PATH.to_string()],
            (_, Some(s)) => {
                let mut v = cx.state.shell();
                v.push(s.to_string());
                v
            }
            (c, None) => cx.state.command(c),
        };
        // Build args in scope reach the command's environment (ENV wins).
        let mut env = cx.state.env();
        for (k, v) in cx.args.iter().chain(
            self.opts
                .build_args
                .iter()
                .filter(|(k, _)| PROXY_ARGS.contains(&k.as_str())),
        ) {
            if !env.iter().any(|e| e.split('=').next() == Some(k)) {
                env.push(format!("{k}={v}"));
            }
        }
        let arg_env: Vec<String> = cx.args.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let key = digest_of(
            format!(
                "{}\nRUN {args:?}\n{arg_env:?}\n{:?}\n{shebang:?}",
                cx.key, step.flags
            )
            .as_bytes(),
        );
        if self.try_cache(cx, &key) {
            return Ok(());
        }
        let network = step
            .flag("network")
            .or(self.opts.network.as_deref())
            .unwrap_or("default")
            .to_string();
        if !["default", "none", "host"].contains(&network.as_str()) {
            return Err(self.err(
                step,
                format!("--network={network}: use default, none or host"),
            ));
        }
        let cache_root = self.store.root().join("builder/cache-mounts");
        let mut mounts = vec![];
        let mut tmpfs = vec![];
        let stage_dirs = |from: Option<&str>, src: &str| -> Result<PathBuf, String> {
            let root = match from {
                None => self.opts.context.clone(),
                Some(f) => match self.opts.contexts.get(f) {
                    Some(p) if !p.starts_with("docker-image://") => PathBuf::from(p),
                    _ => {
                        return Err(format!(
                            "from={f}: only the context or a named build context (directory) can be bind-mounted"
                        ));
                    }
                },
            };
            copy::resolve_in(&root, src).map_err(|e| format!("{src}: {e}"))
        };
        for m in step.flags_named("mount") {
            let m = expand::word(m, vars, self.df.escape).map_err(|e| self.err(step, e.0))?;
            let (spec, t) = run::parse_mount(&m, &cache_root, &stage_dirs, &self.opts.secrets)
                .map_err(|e| self.err(step, format!("--mount={m}: {e}")))?;
            mounts.extend(spec);
            tmpfs.extend(t);
        }
        let script_file = match shebang {
            Some(s) => {
                let f = self.script_file(s).map_err(|e| self.err(step, e))?;
                mounts.push(crate::container::model::MountSpec {
                    kind: "bind".into(),
                    source: f.display().to_string(),
                    target: SCRIPT_PATH.into(),
                    read_only: true,
                    anonymous: false,
                });
                Some(f)
            }
            None => None,
        };
        let dirs = self.layer_dirs(&cx.state)?;
        let (tar, file) = self.new_tar()?;
        let mut hw = HashingWriter::new(file);
        let spec = RunSpec {
            args,
            env,
            workdir: cx.state.workdir(),
            user: cx.state.user(),
            network,
            mounts,
            tmpfs,
            shm_size: self.opts.shm_size,
        };
        let events = &mut *self.events;
        let mut on_line = |l: &str| events(BuildEvent::Output(l.to_string()));
        let res = run::run(
            self.containers,
            self.network,
            dirs,
            spec,
            &mut hw,
            &mut on_line,
        );
        let (_, diff_id, _) = hw.finish();
        if let Some(f) = script_file {
            let _ = fs::remove_file(f);
        }
        let out = match res {
            Ok(o) => o,
            Err(e) => {
                let _ = fs::remove_file(&tar);
                return Err(self.err(step, e.to_string()));
            }
        };
        if out.exit_code != 0 {
            let _ = fs::remove_file(&tar);
            let tail: Vec<&str> = out.tail.iter().map(String::as_str).collect();
            return Err(self.err(
                step,
                format!(
                    "the command exited with code {}{}",
                    out.exit_code,
                    if tail.is_empty() {
                        String::new()
                    } else {
                        format!("; last output:\n  {}", tail.join("\n  "))
                    }
                ),
            ));
        }
        let r = self.add_layer(cx, &tar, &diff_id);
        let _ = fs::remove_file(&tar);
        r?;
        let text = format!(
            "RUN {}",
            match cmd {
                Cmd::Shell(s) if script.is_none() => format!("{} {s}", cx.state.shell().join(" ")),
                _ => step.text.trim_start_matches("RUN ").to_string(),
            }
        );
        self.finish_step(cx, key, &text, false);
        Ok(())
    }

    /// Writes a heredoc script to an executable file of the build's temporary directory.
    fn script_file(&self, text: &str) -> Result<PathBuf, String> {
        use std::os::unix::fs::PermissionsExt;
        fs::create_dir_all(&self.tmp).map_err(|e| format!("{}: {e}", self.tmp.display()))?;
        let p = self.tmp.join(crate::store::fsutil::unique_name("script"));
        fs::write(&p, text)
            .and_then(|()| fs::set_permissions(&p, fs::Permissions::from_mode(0o755)))
            .map_err(|e| format!("{}: {e}", p.display()))?;
        Ok(p)
    }

    fn parse_chown(&self, step: &Step, cx: &Ctx, s: &str) -> Result<(u32, u32), BuildError> {
        let (u, g) = s.split_once(':').map_or((s, None), |(u, g)| (u, Some(g)));
        let lookup = |file: &str, name: &str| -> Option<u32> {
            if let Ok(n) = name.parse() {
                return Some(n);
            }
            for l in cx.state.layers.iter().rev() {
                let dir = self.store.layer_diff_dir(&l.chain_id).ok()?;
                if let Ok(t) = fs::read_to_string(dir.join("etc").join(file)) {
                    return t.lines().find_map(|line| {
                        let f: Vec<&str> = line.split(':').collect();
                        (f.first() == Some(&name))
                            .then(|| f.get(2)?.parse().ok())
                            .flatten()
                    });
                }
            }
            None
        };
        let uid = lookup("passwd", u).ok_or_else(|| {
            self.err(
                step,
                format!("--chown={s}: no user {u} in /etc/passwd of the image"),
            )
        })?;
        let gid = match g {
            Some(g) => lookup("group", g).ok_or_else(|| {
                self.err(
                    step,
                    format!("--chown={s}: no group {g} in /etc/group of the image"),
                )
            })?,
            None => uid,
        };
        Ok((uid, gid))
    }

    pub(super) fn copy_step(
        &mut self,
        cx: &mut Ctx,
        step: &Step,
        add: bool,
        srcs: &[super::dockerfile::Src],
        dest: &str,
        vars: &Vars,
    ) -> Result<(), BuildError> {
        use super::dockerfile::Src;
        let esc = self.df.escape;
        let file = self.file.clone();
        let w = |s: &str| expand::word(s, vars, esc).map_err(|e| step_err(&file, step, e.0));
        let mut paths = vec![];
        let mut heredocs = vec![];
        for s in srcs {
            match s {
                Src::Path(p) => paths.push(w(p)?),
                Src::HereDoc { body, expand: true } => heredocs.push(w(body)?),
                Src::HereDoc { body, .. } => heredocs.push(body.clone()),
            }
        }
        // ADD <url>: fetched into a directory of its own, then copied as a plain file
        // (0600, never extracted, as docker).
        let mut download: Option<PathBuf> = None;
        if let Some(url) = paths.iter().find(|p| copy::is_url(p)).cloned() {
            if !add {
                return Err(self.err(step, format!("{url}: COPY takes no URLs (use ADD)")));
            }
            if paths.len() > 1 {
                return Err(self.err(step, "ADD of a URL takes exactly one source"));
            }
            let (dir, name) = self
                .fetch(&url)
                .map_err(|e| self.err(step, format!("cannot fetch {url}: {e}")))?;
            paths = vec![name];
            download = Some(dir);
        }
        let dest = w(dest)?;
        let abs = copy_dest(&cx.state.workdir(), &dest);
        let chown = step
            .flag("chown")
            .map(&w)
            .transpose()?
            .map(|c| self.parse_chown(step, cx, &c))
            .transpose()?;
        let chmod = step
            .flag("chmod")
            .map(|m| {
                u32::from_str_radix(m, 8)
                    .map_err(|_| self.err(step, format!("--chmod={m}: use an octal mode")))
            })
            .transpose()?;
        let from = step.flag("from").map(w).transpose()?;
        // The source root: the context, a named context, an earlier stage or an image.
        let mut mounted: Option<Rootfs> = None;
        let (root, ignore) = match (&from, &download) {
            (_, Some(dir)) => (dir.clone(), None),
            (None, None) => (self.opts.context.clone(), Some(&self.ignore)),
            (Some(f), None) => match self.opts.contexts.get(f).cloned() {
                Some(p) if !p.starts_with("docker-image://") => (PathBuf::from(p), None),
                other => {
                    let state = match (
                        other,
                        self.df
                            .stage(f)
                            .filter(|s| self.done.contains_key(&s.index)),
                    ) {
                        (None, Some(s)) => self.done[&s.index].clone(),
                        (Some(img), _) => self.image_state(step, &img)?,
                        (None, None) => self.image_state(step, f).map_err(|_| {
                            self.err(
                                step,
                                format!(
                                    "--from={f}: no stage, build context or image of that name"
                                ),
                            )
                        })?,
                    };
                    let dir = self.tmp.join(crate::store::fsutil::unique_name("from"));
                    let r = Rootfs::new(&dir);
                    let layers = self.layer_dirs(&state)?;
                    let res = {
                        // The overlay mount changes the process's working directory for a
                        // moment: builds running in parallel threads take turns.
                        let _turn = MOUNT_TURN.lock().unwrap_or_else(|e| e.into_inner());
                        r.prepare(&layers)
                            .and_then(|()| r.mount(layers.len(), true))
                    };
                    if let Err(e) = res {
                        let _ = r.unmount();
                        let _ = crate::store::fsutil::remove_inside(&self.tmp, &dir);
                        return Err(self.err(step, e.to_string()));
                    }
                    let m = r.merged();
                    mounted = Some(r);
                    (m, None)
                }
            },
        };
        let dirs = self.image_dirs(&cx.state)?;
        // Symlinked directories on the way (`/bin` → `usr/bin` in merged-/usr images) are
        // followed inside the image, as docker does, so the layer never shadows them.
        let abs = resolve_dest(&dirs, &abs);
        let kind = |p: &str| -> Option<bool> {
            dirs.iter()
                .rev()
                .find_map(|d| fs::symlink_metadata(d.join(p)).ok())
                .map(|m| m.is_dir())
        };
        let spec = CopySpec {
            root: &root,
            ignore,
            srcs: paths,
            heredocs,
            dest: abs,
            chown,
            chmod,
            add: add && download.is_none(),
            image_kind: &kind,
        };
        // The content hash first, without writing anything: a cached step needs no tar.
        let text = step.text.clone();
        let res = copy::write_tar(&spec, &mut std::io::sink()).and_then(|content| {
            let key =
                digest_of(format!("{}\n{text}\n{:?}\n{content}", cx.key, spec.dest).as_bytes());
            if let Some(hit) = self.cached(&key) {
                return Ok(Err((key, hit)));
            }
            let (tar, file) = self.new_tar().map_err(|e| e.to_string())?;
            let mut hw = HashingWriter::new(file);
            match copy::write_tar(&spec, &mut hw) {
                // The sources changed between the two passes: the key would not match.
                Ok(again) if again != content => {
                    let _ = fs::remove_file(&tar);
                    Err("the sources changed while they were copied; build again".into())
                }
                Ok(_) => {
                    let (mut file, diff_id, _) = hw.finish();
                    let _ = file.rewind();
                    Ok(Ok((key, tar, diff_id)))
                }
                Err(e) => {
                    let _ = fs::remove_file(&tar);
                    Err(e)
                }
            }
        });
        if let Some(r) = mounted {
            let _ = r.unmount();
            let _ = crate::store::fsutil::remove_inside(&self.tmp, &r.dir);
        }
        if let Some(dir) = &download {
            let _ = crate::store::fsutil::remove_inside(&self.tmp, dir);
        }
        let (key, tar, diff_id) = match res {
            Ok(Ok(new)) => new,
            Ok(Err((key, hit))) => {
                self.count_step(cx, &key, Some(hit));
                return Ok(());
            }
            Err(e) => {
                let where_ = from.as_deref().map_or(
                    format!("in the build context {}", self.opts.context.display()),
                    |f| format!("in {f}"),
                );
                return Err(self.err(step, format!("{e} ({where_})")));
            }
        };
        self.count_step(cx, &key, None);
        let r = self
            .add_layer(cx, &tar, &diff_id)
            .map(|()| self.finish_step(cx, key, &text, false));
        let _ = fs::remove_file(&tar);
        r
    }

    /// Downloads `url` into a new directory under the build's temporary directory; returns
    /// the directory and the file's name (the URL's last path segment).
    fn fetch(&self, url: &str) -> Result<(PathBuf, String), String> {
        use std::os::unix::fs::PermissionsExt;
        let name = url
            .split(['?', '#'])
            .next()
            .and_then(|u| u.rsplit('/').next())
            .filter(|n| !n.is_empty() && *n != "." && *n != "..")
            .unwrap_or("download")
            .to_string();
        let mut body = crate::image::import::open_url(url).map_err(|e| e.to_string())?;
        let dir = self.tmp.join(crate::store::fsutil::unique_name("url"));
        fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let file = dir.join(&name);
        let res = fs::File::create(&file)
            .and_then(|mut f| std::io::copy(&mut body, &mut f))
            .and_then(|_| fs::set_permissions(&file, fs::Permissions::from_mode(0o600)));
        if let Err(e) = res {
            let _ = crate::store::fsutil::remove_inside(&self.tmp, &dir);
            return Err(e.to_string());
        }
        Ok((dir, name))
    }
}

/// `dest` with the symlinks of its directory part resolved inside the image whose layer dirs
/// are `dirs` (lowest first; the topmost entry of a path wins). At most 40 links.
pub(super) fn resolve_dest(dirs: &[PathBuf], dest: &str) -> String {
    let trailing = dest.ends_with('/');
    let mut todo: Vec<String> = dest
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .map(str::to_string)
        .collect();
    todo.reverse();
    // The last component of a file destination is not followed.
    let last = if trailing {
        None
    } else {
        todo.first().cloned()
    };
    if last.is_some() {
        todo.remove(0);
    }
    let mut out: Vec<String> = vec![];
    let mut hops = 0;
    while let Some(c) = todo.pop() {
        if c == ".." {
            out.pop();
            continue;
        }
        out.push(c);
        let rel = out.join("/");
        let link = dirs.iter().rev().find_map(|d| {
            let p = d.join(&rel);
            fs::symlink_metadata(&p).ok().map(|m| (m, p))
        });
        if let Some((m, p)) = link
            && m.file_type().is_symlink()
            && hops < 40
            && let Ok(target) = fs::read_link(&p)
        {
            hops += 1;
            out.pop();
            let t = target.to_string_lossy().into_owned();
            if t.starts_with('/') {
                out.clear();
            }
            let mut comps: Vec<String> = t
                .split('/')
                .filter(|c| !c.is_empty() && *c != ".")
                .map(str::to_string)
                .collect();
            comps.reverse();
            todo.extend(comps);
        }
    }
    out.extend(last);
    let mut r = format!("/{}", out.join("/"));
    if trailing && !r.ends_with('/') {
        r.push('/');
    }
    r
}
