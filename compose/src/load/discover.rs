//! Stage: which compose files to read and which directory is the project directory.
//!
//! `-f` files (repeatable, `-` = standard input), else `COMPOSE_FILE` split by
//! `COMPOSE_PATH_SEPARATOR` (default `:`), else the first directory from the working directory
//! upward holding `compose.yaml`, `compose.yml`, `docker-compose.yml` or `docker-compose.yaml`,
//! together with its `*.override.*` file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::canonical::clean;

pub const DEFAULT_NAMES: [&str; 4] = [
    "compose.yaml",
    "compose.yml",
    "docker-compose.yml",
    "docker-compose.yaml",
];
const OVERRIDE_NAMES: [&str; 4] = [
    "compose.override.yaml",
    "compose.override.yml",
    "docker-compose.override.yml",
    "docker-compose.override.yaml",
];

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DiscoverError {
    #[error(
        "no configuration file provided: not found (looked for {} in {dir} and its parents; use -f to name one)",
        DEFAULT_NAMES.join(", ")
    )]
    NotFound { dir: String },
    #[error("compose file {path} not found")]
    Missing { path: String },
}

/// One compose file to read.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    File(PathBuf),
    Stdin,
}

impl Source {
    pub fn display(&self) -> String {
        match self {
            Source::File(p) => p.display().to_string(),
            Source::Stdin => "-".into(),
        }
    }
}

#[derive(Debug)]
pub struct Discovered {
    pub sources: Vec<Source>,
    /// Set when the files were found by the upward search (their directory is the default
    /// project directory).
    pub warnings: Vec<String>,
}

pub fn absolute(working_dir: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        clean(p)
    } else {
        clean(&working_dir.join(p))
    }
}

/// Decides which files to load.
pub fn discover(
    files: &[String],
    working_dir: &Path,
    project_directory: Option<&Path>,
    env: &BTreeMap<String, String>,
) -> Result<Discovered, DiscoverError> {
    let mut warnings = Vec::new();
    let named: Vec<String> = if !files.is_empty() {
        files.to_vec()
    } else if let Some(list) = env.get("COMPOSE_FILE").filter(|v| !v.is_empty()) {
        let sep = env
            .get("COMPOSE_PATH_SEPARATOR")
            .map(String::as_str)
            .unwrap_or(":");
        let sep = if sep.is_empty() { ":" } else { sep };
        list.split(sep)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    } else {
        Vec::new()
    };
    if !named.is_empty() {
        let mut sources = Vec::new();
        for f in named {
            if f == "-" {
                sources.push(Source::Stdin);
                continue;
            }
            let path = absolute(working_dir, Path::new(&f));
            if !path.is_file() {
                return Err(DiscoverError::Missing {
                    path: path.display().to_string(),
                });
            }
            sources.push(Source::File(path));
        }
        return Ok(Discovered { sources, warnings });
    }
    // Search from the project directory (if given) or the working directory upward.
    let start = project_directory
        .map(|p| absolute(working_dir, p))
        .unwrap_or_else(|| working_dir.to_path_buf());
    let mut dir = Some(start.as_path());
    while let Some(d) = dir {
        let found: Vec<PathBuf> = DEFAULT_NAMES
            .iter()
            .map(|n| d.join(n))
            .filter(|p| p.is_file())
            .collect();
        if let Some(first) = found.first() {
            if found.len() > 1 {
                warnings.push(format!(
                    "Found multiple config files with supported names: {}\nUsing {}",
                    found
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                    first.display()
                ));
            }
            let mut sources = vec![Source::File(first.clone())];
            if let Some(ov) = OVERRIDE_NAMES
                .iter()
                .map(|n| d.join(n))
                .find(|p| p.is_file())
            {
                sources.push(Source::File(ov));
            }
            return Ok(Discovered { sources, warnings });
        }
        dir = d.parent();
    }
    Err(DiscoverError::NotFound {
        dir: start.display().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upward_search_and_override() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        std::fs::write(root.join("compose.yaml"), "services: {}\n").unwrap();
        std::fs::write(root.join("compose.override.yml"), "services: {}\n").unwrap();
        let sub = root.join("a/b");
        std::fs::create_dir_all(&sub).unwrap();
        let d = discover(&[], &sub, None, &BTreeMap::new()).unwrap();
        assert_eq!(
            d.sources,
            vec![
                Source::File(root.join("compose.yaml")),
                Source::File(root.join("compose.override.yml"))
            ]
        );
    }

    #[test]
    fn compose_file_env() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("a.yml"), "").unwrap();
        std::fs::write(tmp.path().join("b.yml"), "").unwrap();
        let env = BTreeMap::from([
            ("COMPOSE_FILE".to_string(), "a.yml;b.yml".to_string()),
            ("COMPOSE_PATH_SEPARATOR".to_string(), ";".to_string()),
        ]);
        let d = discover(&[], tmp.path(), None, &env).unwrap();
        assert_eq!(d.sources.len(), 2);
        let err = discover(&["nope.yml".into()], tmp.path(), None, &env).unwrap_err();
        assert!(matches!(err, DiscoverError::Missing { .. }));
    }
}
