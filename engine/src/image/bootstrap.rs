//! `image bootstrap debian:<suite>[-slim]`: a Debian base image made from Debian's own packages
//! with `debootstrap --variant=minbase`, for machines that reach Debian's archive but no
//! container registry. The result carries what the official image does: `CMD ["bash"]`, the
//! usual PATH, apt's `docker-clean` rules (no package caches in layers), no apt lists; `-slim`
//! also drops documentation, man pages and locales and tells dpkg to keep them out.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::import::{ImportOptions, ImportSource, import};
use super::{ImageError, Result};
use crate::store::Store;

/// What to bootstrap, parsed from `debian:<suite or version>[-slim]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub suite: String,
    pub slim: bool,
    /// The tag the image gets (`debian:bookworm-slim`).
    pub tag: String,
}

/// Debian's version numbers, as the official image tags them.
const SUITES: &[(&str, &str)] = &[("11", "bullseye"), ("12", "bookworm"), ("13", "trixie")];

pub fn parse_target(reference: &str) -> Result<Target> {
    let bad = |why: &str| ImageError::Invalid(format!("image bootstrap {reference}: {why}"));
    let (repo, tag) = reference.split_once(':').unwrap_or((reference, "bookworm"));
    if repo != "debian" && repo != "library/debian" && repo != "docker.io/library/debian" {
        return Err(bad(
            "only debian:<suite>[-slim] can be made from packages (e.g. debian:bookworm-slim)",
        ));
    }
    let (name, slim) = match tag.strip_suffix("-slim") {
        Some(n) => (n, true),
        None => (tag, false),
    };
    let suite = SUITES
        .iter()
        .find(|(v, s)| *v == name || *s == name)
        .map(|(_, s)| s.to_string())
        .or_else(|| {
            (name.chars().all(|c| c.is_ascii_lowercase()) && !name.is_empty())
                .then(|| name.to_string())
        })
        .ok_or_else(|| bad("the tag must be a Debian suite (bookworm, trixie) or version (12), optionally -slim"))?;
    Ok(Target {
        suite,
        slim,
        tag: format!("debian:{tag}"),
    })
}

/// The debootstrap command line (the archive is debootstrap's default unless `mirror` is set).
pub fn debootstrap_args(t: &Target, dir: &Path, mirror: Option<&str>) -> Vec<String> {
    let mut a = vec![
        "--variant=minbase".to_string(),
        t.suite.clone(),
        dir.display().to_string(),
    ];
    if let Some(m) = mirror {
        a.push(m.to_string());
    }
    a
}

/// Files the official image adds or leaves out, applied to the bootstrapped tree.
fn finish_tree(dir: &Path, slim: bool) -> std::io::Result<()> {
    let apt = dir.join("etc/apt/apt.conf.d");
    std::fs::create_dir_all(&apt)?;
    std::fs::write(
        apt.join("docker-clean"),
        "DPkg::Post-Invoke { \"rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true\"; };\n\
         APT::Update::Post-Invoke { \"rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true\"; };\n\
         Dir::Cache::pkgcache \"\";\nDir::Cache::srcpkgcache \"\";\n",
    )?;
    std::fs::write(
        apt.join("docker-no-languages"),
        "Acquire::Languages \"none\";\n",
    )?;
    std::fs::write(
        apt.join("docker-autoremove-suggests"),
        "Apt::AutoRemove::SuggestsImportant \"false\";\n",
    )?;
    // A container gets these from the engine; the host's must not be baked in.
    for f in ["etc/resolv.conf", "etc/hostname"] {
        let _ = std::fs::remove_file(dir.join(f));
    }
    let mut emptied = vec!["var/lib/apt/lists", "var/cache/apt/archives", "var/log"];
    if slim {
        let dpkg = dir.join("etc/dpkg/dpkg.cfg.d");
        std::fs::create_dir_all(&dpkg)?;
        std::fs::write(
            dpkg.join("docker"),
            "path-exclude /usr/share/doc/*\npath-include /usr/share/doc/*/copyright\n\
             path-exclude /usr/share/man/*\npath-exclude /usr/share/groff/*\n\
             path-exclude /usr/share/info/*\npath-exclude /usr/share/locale/*\n",
        )?;
        emptied.extend([
            "usr/share/man",
            "usr/share/info",
            "usr/share/locale",
            "usr/share/groff",
        ]);
        // Documentation goes, its copyright notices stay (as in the official slim image).
        if let Ok(docs) = std::fs::read_dir(dir.join("usr/share/doc")) {
            for pkg in docs.flatten() {
                if let Ok(files) = std::fs::read_dir(pkg.path()) {
                    for f in files.flatten().filter(|f| f.file_name() != "copyright") {
                        let p = f.path();
                        let _ = if p.is_dir() {
                            std::fs::remove_dir_all(&p)
                        } else {
                            std::fs::remove_file(&p)
                        };
                    }
                }
            }
        }
    }
    for d in emptied {
        let path = dir.join(d);
        if let Ok(entries) = std::fs::read_dir(&path) {
            for e in entries.flatten() {
                let p = e.path();
                if e.file_name() == "partial" {
                    continue;
                }
                let _ = if p.is_dir() {
                    std::fs::remove_dir_all(&p)
                } else {
                    std::fs::remove_file(&p)
                };
            }
        }
    }
    Ok(())
}

/// A scratch directory under the state root, removed again on drop.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        // Only ever a directory we made under <root>/tmp (never empty, never /).
        if self
            .0
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("bootstrap-"))
        {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Names the debootstrap program to run instead of the installed one.
pub const DEBOOTSTRAP_ENV: &str = "RCOMPOSE_DEBOOTSTRAP";

/// Where Debian's debootstrap package installs the program.
const DEBOOTSTRAP_PATHS: &[&str] = &[
    "/usr/sbin/debootstrap",
    "/usr/bin/debootstrap",
    "/sbin/debootstrap",
];

/// The debootstrap to run: `chosen` (from RCOMPOSE_DEBOOTSTRAP) or the installed one; an error
/// that says what to install when there is none.
fn find_debootstrap(chosen: Option<PathBuf>) -> Result<PathBuf> {
    let not_installed = |what: String| {
        ImageError::Invalid(format!(
            "debootstrap is not installed{what}: apt-get install debootstrap (image bootstrap builds the Debian base from Debian's packages with it)"
        ))
    };
    match chosen {
        Some(p) if p.is_file() => Ok(p),
        Some(p) => Err(not_installed(format!(
            " ({DEBOOTSTRAP_ENV}={} does not exist)",
            p.display()
        ))),
        None => DEBOOTSTRAP_PATHS
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
            .ok_or_else(|| not_installed(format!(" (none of {})", DEBOOTSTRAP_PATHS.join(", ")))),
    }
}

/// Bootstraps `reference` into `store` (state root `root`) and tags it; returns the image id.
/// `progress` gets debootstrap's output lines.
pub fn bootstrap(
    store: &Store,
    root: &Path,
    reference: &str,
    mirror: Option<&str>,
    progress: &dyn Fn(&str),
) -> Result<String> {
    let t = parse_target(reference)?;
    let program = find_debootstrap(std::env::var_os(DEBOOTSTRAP_ENV).map(PathBuf::from))?;
    let program = program.as_path();
    let tmp = root.join("tmp");
    std::fs::create_dir_all(&tmp).map_err(super::io_err(&tmp))?;
    let scratch = Scratch(tmp.join(format!("bootstrap-{}", std::process::id())));
    let _ = std::fs::remove_dir_all(&scratch.0);
    let mut child = Command::new(program)
        .args(debootstrap_args(&t, &scratch.0, mirror))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(super::io_err(Path::new(program)))?;
    let mut err_text = String::new();
    let stderr = child.stderr.take();
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(mut e) = stderr {
            let _ = e.read_to_string(&mut s);
        }
        s
    });
    let mut tail: Vec<String> = Vec::new();
    if let Some(out) = child.stdout.take() {
        use std::io::BufRead;
        for line in std::io::BufReader::new(out).lines().map_while(|l| l.ok()) {
            progress(&line);
            tail.push(line);
            if tail.len() > 15 {
                tail.remove(0);
            }
        }
    }
    let status = child.wait().map_err(super::io_err(Path::new(program)))?;
    err_text.push_str(&err_reader.join().unwrap_or_default());
    if !status.success() {
        let mut lines = tail;
        lines.extend(err_text.lines().map(str::to_string));
        let start = lines.len().saturating_sub(15);
        return Err(ImageError::Invalid(format!(
            "debootstrap of {} failed ({status}); is Debian's package archive reachable (or give --mirror)? Its last lines:\n{}",
            t.suite,
            lines[start..].join("\n")
        )));
    }
    finish_tree(&scratch.0, t.slim).map_err(super::io_err(&scratch.0))?;
    let opts = ImportOptions {
        changes: vec![
            "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
            r#"CMD ["bash"]"#.into(),
        ],
        message: Some(format!("debootstrap --variant=minbase {}", t.suite)),
        source_name: format!("debootstrap {}", t.suite),
    };
    import(
        store,
        ImportSource::Dir(scratch.0.clone()),
        Some(&t.tag),
        &opts,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_from_suites_versions_and_slim() {
        let t = parse_target("debian:bookworm-slim").unwrap();
        assert_eq!(
            (t.suite.as_str(), t.slim, t.tag.as_str()),
            ("bookworm", true, "debian:bookworm-slim")
        );
        assert_eq!(parse_target("debian:12").unwrap().suite, "bookworm");
        assert_eq!(parse_target("debian").unwrap().suite, "bookworm");
        let e = parse_target("ubuntu:22.04").unwrap_err().to_string();
        assert!(e.contains("only debian"), "{e}");
        assert!(parse_target("debian:12.5").is_err());
        let args = debootstrap_args(&t, Path::new("/x"), None);
        assert_eq!(args, ["--variant=minbase", "bookworm", "/x"]);
    }

    #[test]
    fn the_tree_is_finished_as_the_official_image_is() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        for p in [
            "etc",
            "var/lib/apt/lists",
            "usr/share/doc/bash",
            "usr/share/man/man1",
            "var/cache/apt/archives/partial",
        ] {
            std::fs::create_dir_all(root.join(p)).unwrap();
        }
        std::fs::write(root.join("etc/resolv.conf"), "nameserver 10.0.0.1\n").unwrap();
        std::fs::write(root.join("var/lib/apt/lists/x_Packages"), "x").unwrap();
        std::fs::write(root.join("usr/share/doc/bash/copyright"), "c").unwrap();
        std::fs::write(root.join("usr/share/doc/bash/README"), "r").unwrap();
        std::fs::write(root.join("usr/share/man/man1/bash.1"), "m").unwrap();
        finish_tree(root, true).unwrap();
        assert!(!root.join("etc/resolv.conf").exists());
        assert!(!root.join("var/lib/apt/lists/x_Packages").exists());
        assert!(root.join("usr/share/doc/bash/copyright").exists());
        assert!(!root.join("usr/share/doc/bash/README").exists());
        assert!(!root.join("usr/share/man/man1").exists());
        assert!(root.join("var/cache/apt/archives/partial").exists());
        assert!(root.join("etc/apt/apt.conf.d/docker-clean").exists());
        assert!(root.join("etc/dpkg/dpkg.cfg.d/docker").exists());
    }
}
