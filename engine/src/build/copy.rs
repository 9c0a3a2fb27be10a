//! `COPY`/`ADD`: the selected sources written as one layer tar, never by writing into a root
//! filesystem (the layer is unpacked by the store's safe extraction). Sources are resolved
//! inside their root with `openat2(RESOLVE_IN_ROOT)`, so a symlink or `..` cannot reach
//! outside the context or the stage; `.dockerignore` filters the main context. Alongside the
//! tar, a content hash (names, modes, owners, bytes; no mtimes) keys the step's cache.

use std::collections::BTreeSet;
use std::fs;
use std::io::{self, BufReader, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags, ResolveFlags};
use sha2::{Digest, Sha256};

use super::ignore::{Ignore, clean};

/// What one `COPY`/`ADD` copies.
pub struct CopySpec<'a> {
    /// Where sources are looked up (context dir, named context, mounted stage root).
    pub root: &'a Path,
    /// `.dockerignore` of the main context.
    pub ignore: Option<&'a Ignore>,
    pub srcs: Vec<String>,
    /// Inline files (`COPY <<EOF /dest`): (content).
    pub heredocs: Vec<String>,
    /// Absolute destination in the image (WORKDIR applied); a trailing `/` is kept.
    pub dest: String,
    pub chown: Option<(u32, u32)>,
    pub chmod: Option<u32>,
    /// `ADD`: local archives are extracted.
    pub add: bool,
    /// What the image has at a path: `Some(true)` a directory, `Some(false)` something else.
    pub image_kind: &'a dyn Fn(&str) -> Option<bool>,
}

struct Out<'a, 'w> {
    b: tar::Builder<&'w mut dyn Write>,
    hash: Sha256,
    dirs: BTreeSet<String>,
    spec: &'a CopySpec<'a>,
}

/// Opens `rel` inside `root` (symlinks resolved as if `root` were `/`) and returns the real
/// path of what it names, which is inside `root`.
pub fn resolve_in(root: &Path, rel: &str) -> io::Result<PathBuf> {
    let r = rustix::fs::open(
        root,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let rel = rel.trim_start_matches('/');
    let rel = if rel.is_empty() { "." } else { rel };
    let fd = rustix::fs::openat2(
        &r,
        rel,
        OFlags::PATH | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    )?;
    fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

fn glob_match(pattern: &str, name: &str) -> bool {
    super::ignore::to_regex(pattern).is_ok_and(|re| re.is_match(name))
}

fn has_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// A source path → the (relative path, real path) pairs it names; wildcards in the last
/// component are matched against the directory's entries.
fn expand_src(spec: &CopySpec<'_>, src: &str) -> Result<Vec<(String, PathBuf)>, String> {
    let rel = clean(src);
    if rel == ".." || rel.starts_with("../") {
        return Err(format!("{src}: the path is outside the build context"));
    }
    let excluded = |r: &str| spec.ignore.is_some_and(|i| r != "." && i.excluded(r));
    let (parent, last) = match rel.rsplit_once('/') {
        Some((p, l)) => (p.to_string(), l.to_string()),
        None => (".".to_string(), rel.clone()),
    };
    if has_glob(&last) && !has_glob(&parent) {
        let dir = resolve_in(spec.root, &parent).map_err(|e| format!("{parent}: {e}"))?;
        let mut names: Vec<String> = fs::read_dir(&dir)
            .map_err(|e| format!("{parent}: {e}"))?
            .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
            .filter(|n| glob_match(&last, n))
            .collect();
        names.sort();
        let out: Vec<(String, PathBuf)> = names
            .into_iter()
            .map(|n| {
                let r = if parent == "." {
                    n.clone()
                } else {
                    format!("{parent}/{n}")
                };
                (r, dir.join(&n))
            })
            .filter(|(r, _)| !excluded(r))
            .collect();
        if out.is_empty() {
            return Err(format!(
                "no source files were specified: {src} matches nothing"
            ));
        }
        return Ok(out);
    }
    if excluded(&rel) {
        return Err(format!("{src}: not found (excluded by .dockerignore)"));
    }
    let real = resolve_in(spec.root, &rel).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => format!("{src}: not found"),
        _ => format!("{src}: {e}"),
    })?;
    Ok(vec![(rel, real)])
}

impl Out<'_, '_> {
    fn owner(&self, md: &fs::Metadata) -> (u32, u32) {
        self.spec.chown.unwrap_or((md.uid(), md.gid()))
    }

    fn record(&mut self, name: &str, kind: &str, mode: u32, uid: u32, gid: u32, extra: &[u8]) {
        self.hash
            .update(format!("{name}\0{kind}\0{mode:o}\0{uid}\0{gid}\0").as_bytes());
        self.hash.update(extra);
        self.hash.update(b"\n");
    }

    /// Parent directories the image lacks, created as docker does (0755, the --chown owner).
    fn parents(&mut self, name: &str) -> io::Result<()> {
        let mut cur = String::new();
        let comps: Vec<&str> = name.split('/').filter(|c| !c.is_empty()).collect();
        for c in comps.iter().take(comps.len().saturating_sub(1)) {
            cur = if cur.is_empty() {
                (*c).to_string()
            } else {
                format!("{cur}/{c}")
            };
            if self.dirs.contains(&cur) || (self.spec.image_kind)(&cur).is_some() {
                continue;
            }
            let (uid, gid) = self.spec.chown.unwrap_or((0, 0));
            self.dir_entry(&cur, 0o755, uid, gid, 0)?;
        }
        Ok(())
    }

    fn dir_entry(
        &mut self,
        name: &str,
        mode: u32,
        uid: u32,
        gid: u32,
        mtime: u64,
    ) -> io::Result<()> {
        if !self.dirs.insert(name.to_string()) {
            return Ok(());
        }
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(mode);
        h.set_uid(uid.into());
        h.set_gid(gid.into());
        h.set_mtime(mtime);
        h.set_size(0);
        self.record(name, "d", mode, uid, gid, b"");
        self.b.append_data(&mut h, format!("{name}/"), io::empty())
    }

    fn file_entry(&mut self, name: &str, md: &fs::Metadata, mut data: impl Read) -> io::Result<()> {
        self.parents(name)?;
        let (uid, gid) = self.owner(md);
        let mode = self.spec.chmod.unwrap_or(md.permissions().mode() & 0o7777);
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(mode);
        h.set_uid(uid.into());
        h.set_gid(gid.into());
        h.set_mtime(md.mtime().max(0) as u64);
        h.set_size(md.len());
        self.record(name, "f", mode, uid, gid, b"");
        let mut tee = Tee {
            inner: &mut data,
            hash: &mut self.hash,
        };
        self.b.append_data(&mut h, name, &mut tee)
    }

    /// One source (file, directory, symlink) at `name` in the image.
    fn path(&mut self, real: &Path, name: &str, rel: &str, top: bool) -> io::Result<()> {
        let md = fs::symlink_metadata(real)?;
        let ft = md.file_type();
        if ft.is_dir() {
            if !name.is_empty() {
                self.parents(name)?;
                let (uid, gid) = self.owner(&md);
                let mode = self.spec.chmod.unwrap_or(md.permissions().mode() & 0o7777);
                // An existing directory keeps its metadata unless this is a new one.
                if !top || (self.spec.image_kind)(name).is_none() {
                    self.dir_entry(name, mode, uid, gid, md.mtime().max(0) as u64)?;
                }
            }
            let mut entries: Vec<_> = fs::read_dir(real)?
                .filter_map(|e| e.ok().map(|e| e.file_name()))
                .collect();
            entries.sort();
            for e in entries {
                let n = e.to_string_lossy();
                let child_rel = if rel == "." {
                    n.to_string()
                } else {
                    format!("{rel}/{n}")
                };
                let child_name = if name.is_empty() {
                    n.to_string()
                } else {
                    format!("{name}/{n}")
                };
                if let Some(ig) = self.spec.ignore
                    && ig.excluded(&child_rel)
                {
                    // An excluded directory is still walked when a `!` pattern may
                    // re-include something below it.
                    let is_dir = fs::symlink_metadata(real.join(&e))?.is_dir();
                    if !(is_dir && ig.has_exclusions()) {
                        continue;
                    }
                }
                self.path(&real.join(&e), &child_name, &child_rel, false)?;
            }
        } else if ft.is_symlink() {
            self.parents(name)?;
            let target = fs::read_link(real)?;
            let (uid, gid) = self.owner(&md);
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_mode(0o777);
            h.set_uid(uid.into());
            h.set_gid(gid.into());
            h.set_mtime(md.mtime().max(0) as u64);
            h.set_size(0);
            self.record(
                name,
                "l",
                0o777,
                uid,
                gid,
                target.as_os_str().as_encoded_bytes(),
            );
            self.b.append_link(&mut h, name, &target)?;
        } else if ft.is_file() {
            if self.spec.add && top && self.try_extract(real, name)? {
                return Ok(());
            }
            self.file_entry(name, &md, fs::File::open(real)?)?;
        }
        Ok(())
    }

    /// `ADD` of a local tar (plain, gzip, zstd): its entries go under the destination dir.
    fn try_extract(&mut self, real: &Path, _name: &str) -> io::Result<bool> {
        let f = fs::File::open(real)?;
        let mut r = crate::store::digest::decompress(BufReader::new(f))?;
        let mut head = [0u8; 512];
        let mut n = 0;
        while n < head.len() {
            match r.read(&mut head[n..])? {
                0 => break,
                k => n += k,
            }
        }
        if n < 512 || &head[257..262] != b"ustar" {
            return Ok(false);
        }
        let f = fs::File::open(real)?;
        let r = crate::store::digest::decompress(BufReader::new(f))?;
        let dest = self.spec.dest.trim_matches('/').to_string();
        let mut ar = tar::Archive::new(r);
        for e in ar.entries()? {
            let mut e = e?;
            let path = String::from_utf8_lossy(&e.path_bytes()).into_owned();
            let rel = clean(&path);
            if rel == "." {
                continue;
            }
            if rel.starts_with("..") {
                return Err(io::Error::other(format!(
                    "{}: entry {path} leaves the archive",
                    real.display()
                )));
            }
            let name = if dest.is_empty() {
                rel
            } else {
                format!("{dest}/{rel}")
            };
            self.parents(&name)?;
            let mut h = e.header().clone();
            if let Some((u, g)) = self.spec.chown {
                h.set_uid(u.into());
                h.set_gid(g.into());
            }
            let kind = format!("{:?}", h.entry_type());
            let link = e
                .link_name_bytes()
                .map(|l| l.into_owned())
                .unwrap_or_default();
            self.record(
                &name,
                &kind,
                h.mode().unwrap_or(0),
                h.uid().unwrap_or(0) as u32,
                h.gid().unwrap_or(0) as u32,
                &link,
            );
            if h.entry_type().is_dir() {
                self.dirs.insert(name.clone());
            }
            if !link.is_empty() {
                let target = String::from_utf8_lossy(&link).into_owned();
                let target = if h.entry_type().is_hard_link() {
                    let t = clean(&target);
                    if dest.is_empty() {
                        t
                    } else {
                        format!("{dest}/{t}")
                    }
                } else {
                    target
                };
                self.b.append_link(&mut h, &name, &target)?;
            } else {
                let mut tee = Tee {
                    inner: &mut e,
                    hash: &mut self.hash,
                };
                self.b.append_data(&mut h, &name, &mut tee)?;
            }
        }
        Ok(true)
    }
}

struct Tee<'a, R> {
    inner: R,
    hash: &'a mut Sha256,
}

impl<R: Read> Read for Tee<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
}

/// Writes the layer tar of `spec` to `w`; returns the content hash. Errors are messages for
/// the step ("a.txt: not found", "… outside the build context").
pub fn write_tar(spec: &CopySpec<'_>, w: &mut dyn Write) -> Result<String, String> {
    let mut sources = vec![];
    for s in &spec.srcs {
        sources.extend(expand_src(spec, s)?);
    }
    let count = sources.len() + spec.heredocs.len();
    let dest = spec.dest.trim_start_matches('/').to_string();
    let dest_is_dir = spec.dest.ends_with('/')
        || count > 1
        || (spec.image_kind)(dest.trim_end_matches('/')) == Some(true);
    if count > 1 && !spec.dest.ends_with('/') {
        return Err(format!(
            "when copying more than one source, the destination must be a directory and end with a /: {}",
            spec.dest
        ));
    }
    let dest = dest.trim_end_matches('/').to_string();
    let mut out = Out {
        b: tar::Builder::new(w),
        hash: Sha256::new(),
        dirs: BTreeSet::new(),
        spec,
    };
    out.b.mode(tar::HeaderMode::Complete);
    let err = |e: io::Error| e.to_string();
    for (rel, real) in &sources {
        let md = fs::metadata(real).map_err(|e| format!("{rel}: {e}"))?;
        let base = Path::new(rel)
            .file_name()
            .map(|b| b.to_string_lossy().into_owned())
            .unwrap_or_default();
        let name = if md.is_dir() {
            dest.clone()
        } else if dest_is_dir {
            if dest.is_empty() {
                base
            } else {
                format!("{dest}/{base}")
            }
        } else {
            dest.clone()
        };
        if name.is_empty() && !md.is_dir() {
            return Err(format!("{rel}: cannot copy a file to /"));
        }
        // A symlink given as a source is followed (resolved inside its root above).
        out.path(real, &name, rel, true)
            .map_err(|e| format!("{rel}: {e}"))?;
    }
    if !spec.heredocs.is_empty() && (dest_is_dir || dest.is_empty()) {
        return Err(format!(
            "an inline file (<<EOF) needs a file destination, not the directory {}",
            spec.dest
        ));
    }
    for body in &spec.heredocs {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        let mode = spec.chmod.unwrap_or(0o644);
        let (uid, gid) = spec.chown.unwrap_or((0, 0));
        h.set_mode(mode);
        h.set_uid(uid.into());
        h.set_gid(gid.into());
        h.set_size(body.len() as u64);
        out.parents(&dest).map_err(err)?;
        out.record(&dest, "f", mode, uid, gid, body.as_bytes());
        out.b
            .append_data(&mut h, &dest, body.as_bytes())
            .map_err(err)?;
    }
    out.b.finish().map_err(err)?;
    Ok(format!("sha256:{}", hex::encode(out.hash.finalize())))
}

/// Whether an `ADD` source is a URL to fetch.
pub fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}
