//! Tar streams for `cp`, built from open descriptors: a directory is walked with `openat`
//! relative to its parent's descriptor and `O_NOFOLLOW`, never by path, so a running
//! container that swaps a directory for a symlink mid-copy cannot send the walk outside it.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{FileType, Mode, OFlags, Stat};

/// How entries are written.
#[derive(Debug, Clone, Copy, Default)]
pub struct TarOptions {
    /// Every entry owned by 0:0 (docker's cp without `-a`); otherwise the files' own ids.
    pub owner_root: bool,
}

/// Re-opens an `O_PATH` descriptor for reading (the very inode it names, no lookup).
fn reopen(fd: &OwnedFd, flags: OFlags) -> io::Result<OwnedFd> {
    let p = format!("/proc/self/fd/{}", fd.as_raw_fd());
    Ok(rustix::fs::open(
        p.as_str(),
        flags | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

struct Walker<'a, W: Write> {
    b: &'a mut tar::Builder<W>,
    opts: TarOptions,
    /// First archived name of each multiply-linked file, so later names become hardlinks.
    seen: HashMap<(u64, u64), String>,
}

/// Appends the file, directory (recursively) or symlink open as `fd` (`O_PATH`) under
/// `name`. Sockets are skipped, as tar cannot hold them.
pub fn append_tree<W: Write>(
    b: &mut tar::Builder<W>,
    fd: OwnedFd,
    name: &str,
    opts: TarOptions,
) -> io::Result<()> {
    let mut w = Walker {
        b,
        opts,
        seen: HashMap::new(),
    };
    let st = rustix::fs::fstat(&fd)?;
    w.entry(fd, &st, name)
}

impl<W: Write> Walker<'_, W> {
    fn header(&self, st: &Stat, kind: tar::EntryType) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(st.st_mode & 0o7777);
        h.set_mtime(st.st_mtime.max(0) as u64);
        h.set_size(0);
        if self.opts.owner_root {
            h.set_uid(0);
            h.set_gid(0);
        } else {
            h.set_uid(u64::from(st.st_uid));
            h.set_gid(u64::from(st.st_gid));
        }
        h
    }

    fn entry(&mut self, fd: OwnedFd, st: &Stat, name: &str) -> io::Result<()> {
        match FileType::from_raw_mode(st.st_mode) {
            FileType::Directory => {
                let mut h = self.header(st, tar::EntryType::Directory);
                self.b.append_data(&mut h, name, io::empty())?;
                let dir = reopen(&fd, OFlags::RDONLY | OFlags::DIRECTORY)?;
                let mut names = vec![];
                for ent in rustix::fs::Dir::read_from(&dir)? {
                    let ent = ent?;
                    let n = ent.file_name().to_bytes();
                    if n != b"." && n != b".." {
                        names.push(n.to_vec());
                    }
                }
                names.sort();
                for n in names {
                    let child = rustix::fs::openat(
                        &dir,
                        OsStr::from_bytes(&n),
                        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                        Mode::empty(),
                    )?;
                    let cst = rustix::fs::fstat(&child)?;
                    let child_name = if name == "." {
                        String::from_utf8_lossy(&n).into_owned()
                    } else {
                        format!(
                            "{}/{}",
                            name.trim_end_matches('/'),
                            String::from_utf8_lossy(&n)
                        )
                    };
                    self.entry(child, &cst, &child_name)?;
                }
                Ok(())
            }
            FileType::RegularFile => {
                let key = (st.st_dev, st.st_ino);
                if st.st_nlink > 1 {
                    if let Some(first) = self.seen.get(&key) {
                        let mut h = self.header(st, tar::EntryType::Link);
                        let first = first.clone();
                        return self.b.append_link(&mut h, name, first);
                    }
                    self.seen.insert(key, name.to_string());
                }
                let mut h = self.header(st, tar::EntryType::Regular);
                let size = st.st_size.max(0) as u64;
                h.set_size(size);
                let file = std::fs::File::from(reopen(&fd, OFlags::RDONLY)?);
                // Exactly `size` bytes even if the file changes meanwhile (a running
                // container writing it): a short read is padded, a longer file cut.
                let data = file.take(size).chain(io::repeat(0)).take(size);
                self.b.append_data(&mut h, name, data)
            }
            FileType::Symlink => {
                let target = rustix::fs::readlinkat(&fd, "", Vec::new())?;
                let mut h = self.header(st, tar::EntryType::Symlink);
                h.set_mode(0o777);
                let target = OsStr::from_bytes(target.as_bytes());
                self.b.append_link(&mut h, name, Path::new(target))
            }
            kind @ (FileType::CharacterDevice | FileType::BlockDevice | FileType::Fifo) => {
                let t = match kind {
                    FileType::CharacterDevice => tar::EntryType::Char,
                    FileType::BlockDevice => tar::EntryType::Block,
                    _ => tar::EntryType::Fifo,
                };
                let mut h = self.header(st, t);
                if t != tar::EntryType::Fifo {
                    h.set_device_major(rustix::fs::major(st.st_rdev))?;
                    h.set_device_minor(rustix::fs::minor(st.st_rdev))?;
                }
                self.b.append_data(&mut h, name, io::empty())
            }
            _ => Ok(()),
        }
    }
}

/// Copies a `cp` tar stream on its way into a container: with `owner_root` every entry is
/// owned by 0:0 (docker's cp without `-a`); extended attributes carried as PAX records are
/// kept, GNU sparse files become plain ones. Names starting with `.wh.` are refused: the
/// extraction turns them into overlay whiteouts, which would hide files instead of copying.
pub fn restream<R: Read, W: Write>(input: R, out: W, owner_root: bool) -> io::Result<()> {
    let mut ar = tar::Archive::new(input);
    let mut b = tar::Builder::new(out);
    for entry in ar.entries()? {
        let mut entry = entry?;
        let kind = entry.header().entry_type();
        if kind == tar::EntryType::XGlobalHeader {
            continue;
        }
        let path = entry.path_bytes().into_owned();
        if path
            .split(|c| *c == b'/')
            .any(|c| c.starts_with(crate::unpack::WHITEOUT_PREFIX.as_bytes()))
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "not supported yet: copying {:?} (names starting with {} are overlay whiteouts)",
                    String::from_utf8_lossy(&path),
                    crate::unpack::WHITEOUT_PREFIX
                ),
            ));
        }
        if let Some(ext) = entry.pax_extensions()? {
            let xattrs: Vec<(String, Vec<u8>)> = ext
                .filter_map(Result::ok)
                .filter_map(|e| {
                    let k = e.key().ok()?;
                    k.starts_with("SCHILY.xattr.")
                        .then(|| (k.to_string(), e.value_bytes().to_vec()))
                })
                .collect();
            if !xattrs.is_empty() {
                b.append_pax_extensions(xattrs.iter().map(|(k, v)| (k.as_str(), v.as_slice())))?;
            }
        }
        let path = Path::new(OsStr::from_bytes(&path));
        let mut h = entry.header().clone();
        if owner_root {
            h.set_uid(0);
            h.set_gid(0);
            let _ = h.set_username("root");
            let _ = h.set_groupname("root");
        }
        match kind {
            tar::EntryType::Symlink | tar::EntryType::Link => {
                let link = entry
                    .link_name_bytes()
                    .map(|l| l.into_owned())
                    .unwrap_or_default();
                b.append_link(&mut h, path, Path::new(OsStr::from_bytes(&link)))?;
            }
            tar::EntryType::GNUSparse => {
                // The reader yields the expanded content: store it as a plain file.
                let real = entry
                    .header()
                    .as_gnu()
                    .map(|g| g.real_size())
                    .transpose()?
                    .unwrap_or(entry.size());
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(real);
                b.append_data(&mut h, path, &mut entry)?;
            }
            _ => {
                // The size may have come from a PAX record the copy does not carry.
                h.set_size(entry.size());
                b.append_data(&mut h, path, &mut entry)?;
            }
        }
    }
    b.into_inner()?.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_from_descriptors_keeps_links_and_hardlinks() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("d");
        std::fs::create_dir_all(d.join("sub")).unwrap();
        std::fs::write(d.join("sub/f"), "data").unwrap();
        std::fs::hard_link(d.join("sub/f"), d.join("h")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", d.join("l")).unwrap();
        let fd = rustix::fs::open(&d, OFlags::PATH | OFlags::CLOEXEC, Mode::empty()).unwrap();
        let mut buf = vec![];
        {
            let mut b = tar::Builder::new(&mut buf);
            append_tree(&mut b, fd, "top", TarOptions { owner_root: true }).unwrap();
            b.finish().unwrap();
        }
        let mut names = vec![];
        for e in tar::Archive::new(&buf[..]).entries().unwrap() {
            let e = e.unwrap();
            let h = e.header();
            assert_eq!((h.uid().unwrap(), h.gid().unwrap()), (0, 0));
            names.push((
                e.path().unwrap().to_string_lossy().into_owned(),
                h.entry_type(),
                e.link_name()
                    .unwrap()
                    .map(|l| l.to_string_lossy().into_owned()),
            ));
        }
        assert_eq!(names[0], ("top".into(), tar::EntryType::Directory, None));
        assert!(names.contains(&(
            "top/l".into(),
            tar::EntryType::Symlink,
            Some("/etc/passwd".into())
        )));
        assert!(names.contains(&(
            "top/sub/f".into(),
            tar::EntryType::Link,
            Some("top/h".into())
        )));
    }

    #[test]
    fn restream_sets_root_owner() {
        let mut src = vec![];
        {
            let mut b = tar::Builder::new(&mut src);
            let mut h = tar::Header::new_gnu();
            h.set_uid(1000);
            h.set_gid(1000);
            h.set_size(2);
            h.set_mode(0o640);
            b.append_data(&mut h, "a/b.txt", &b"hi"[..]).unwrap();
            b.finish().unwrap();
        }
        let mut out = vec![];
        restream(&src[..], &mut out, true).unwrap();
        let mut ar = tar::Archive::new(&out[..]);
        let mut e = ar.entries().unwrap().next().unwrap().unwrap();
        assert_eq!(e.header().uid().unwrap(), 0);
        assert_eq!(e.header().mode().unwrap(), 0o640);
        let mut s = String::new();
        e.read_to_string(&mut s).unwrap();
        assert_eq!(
            (e.path().unwrap().to_str().unwrap(), s.as_str()),
            ("a/b.txt", "hi")
        );
    }

    #[test]
    fn restream_refuses_whiteout_names() {
        let mut src = vec![];
        {
            let mut b = tar::Builder::new(&mut src);
            let mut h = tar::Header::new_gnu();
            h.set_size(0);
            b.append_data(&mut h, "dir/.wh.passwd", io::empty())
                .unwrap();
            b.finish().unwrap();
        }
        let err = restream(&src[..], io::sink(), false).unwrap_err();
        assert!(err.to_string().contains("not supported yet"), "{err}");
    }
}
