//! Secrets and configs: each is written (from `file`, `environment` or `content`) to
//! `<root>/compose/<project>/<secrets|configs>/<service>/<name>` with the requested mode and
//! owner, then bind-mounted read-only at `/run/secrets/<target>` or the config's target.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use rcompose_compose::model::{FileObject, FileRef, Project, Service};
use rcompose_engine::container::model::MountSpec;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// A reference or definition that cannot be used (the text names service and object).
    #[error("{0}")]
    Invalid(String),
    /// A `mode`, `uid` or `gid` that does not parse.
    #[error("{what}")]
    Number {
        what: String,
        #[source]
        source: std::num::ParseIntError,
    },
    /// Reading the source, or writing, chmod-ing or chown-ing the materialised file.
    #[error("{what}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

type Result<T> = std::result::Result<T, SecretError>;

/// Wraps an I/O error with what was being done.
fn io(what: String) -> impl FnOnce(std::io::Error) -> SecretError {
    move |source| SecretError::Io { what, source }
}

pub fn mounts(project: &Project, svc: &Service, root: &Path) -> Result<Vec<MountSpec>> {
    let mut out = vec![];
    for (kind, refs, defs) in [
        ("secrets", &svc.secrets, &project.secrets),
        ("configs", &svc.configs, &project.configs),
    ] {
        for r in refs {
            let def = defs.get(&r.source).ok_or_else(|| {
                SecretError::Invalid(format!(
                    "service \"{}\" refers to undefined {} \"{}\"",
                    svc.name,
                    &kind[..kind.len() - 1],
                    r.source
                ))
            })?;
            let path = materialize(project, svc, root, kind, r, def)?;
            out.push(MountSpec {
                kind: "bind".into(),
                source: path.display().to_string(),
                target: target(kind, r),
                read_only: true,
                anonymous: false,
            });
        }
    }
    Ok(out)
}

fn target(kind: &str, r: &FileRef) -> String {
    let t = r.target.clone().unwrap_or_else(|| r.source.clone());
    if t.starts_with('/') {
        t
    } else if kind == "secrets" {
        format!("/run/secrets/{t}")
    } else {
        format!("/{t}")
    }
}

/// The directory holding a project's materialised secrets/configs (removed by `down`).
pub fn project_dir(root: &Path, project: &str) -> PathBuf {
    root.join("compose").join(project)
}

fn materialize(
    project: &Project,
    svc: &Service,
    root: &Path,
    kind: &str,
    r: &FileRef,
    def: &FileObject,
) -> Result<PathBuf> {
    if def.external {
        return Err(SecretError::Invalid(format!(
            "service \"{}\": external {kind} \"{}\" are a swarm feature and not supported",
            svc.name, r.source
        )));
    }
    let data: Vec<u8> = if let Some(file) = &def.file {
        std::fs::read(file).map_err(io(format!("{kind} \"{}\": reading {file}", r.source)))?
    } else if let Some(var) = &def.environment {
        match project.environment.get(var) {
            Some(v) => v.clone().into_bytes(),
            None => {
                return Err(SecretError::Invalid(format!(
                    "{kind} \"{}\": environment variable {var} is not set",
                    r.source
                )));
            }
        }
    } else if let Some(content) = &def.content {
        content.clone().into_bytes()
    } else {
        return Err(SecretError::Invalid(format!(
            "{kind} \"{}\" has no file, environment or content",
            r.source
        )));
    };
    // The project's directory is 0700: the files keep the mode the container's user needs
    // (they are bind-mounted), so it is the directory that shuts other host users out.
    let pdir = project_dir(root, &project.name);
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&pdir)
            .map_err(io(format!("creating {}", pdir.display())))?;
    }
    let dir = pdir.join(kind).join(&svc.name);
    std::fs::create_dir_all(&dir).map_err(io(format!("creating {}", dir.display())))?;
    // Source names are validated by the loader as identifiers; keep the file name plain.
    let file_name: String = r
        .source
        .chars()
        .map(|c| if c == '/' { '_' } else { c })
        .collect();
    let path = dir.join(file_name);
    // Written 0600 and only then given its mode: never readable by others half-written.
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let _ = std::fs::remove_file(&path);
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .and_then(|mut f| f.write_all(&data))
            .map_err(io(format!("writing {}", path.display())))?;
    }
    let default_mode = 0o444;
    let mode = match &r.mode {
        Some(m) => u32::from_str_radix(m.trim_start_matches("0o"), 8).map_err(|source| {
            SecretError::Number {
                what: format!(
                    "service \"{}\": {kind} \"{}\": mode {m} is not octal",
                    svc.name, r.source
                ),
                source,
            }
        })?,
        None => default_mode,
    };
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
        .map_err(io(format!("chmod {}", path.display())))?;
    let id = |v: &Option<String>, what: &str| -> Result<Option<u32>> {
        v.as_ref()
            .map(|s| {
                s.parse::<u32>().map_err(|source| SecretError::Number {
                    what: format!(
                        "service \"{}\": {kind} \"{}\": {what} {s} is not a number",
                        svc.name, r.source
                    ),
                    source,
                })
            })
            .transpose()
    };
    let (uid, gid) = (id(&r.uid, "uid")?, id(&r.gid, "gid")?);
    if uid.is_some() || gid.is_some() {
        std::os::unix::fs::chown(&path, uid, gid)
            .map_err(io(format!("chown {}", path.display())))?;
    }
    Ok(path)
}
