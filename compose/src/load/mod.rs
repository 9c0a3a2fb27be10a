//! The load pipeline, one file per stage:
//! discover → dotenv → parse → interpolate → validate → include → canonical → extends → merge
//! → normalize → typed [`Project`]. See ARCHITECTURE.md.

pub mod canonical;
pub mod discover;
pub mod dotenv;
pub mod extends;
pub mod include;
pub mod interpolate;
pub mod merge;
pub mod normalize;
pub mod parse;
pub mod schema;
pub mod short_syntax;
pub mod validate;

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};

use yaml_serde::Value;

use crate::model::Project;
pub use discover::Source;
pub use interpolate::VariableUse;

/// What to load; mirrors the global CLI flags. `Default` interpolates, with an empty
/// environment and `/` as working directory; the CLI uses [`LoadOptions::from_process`].
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// `-f` files in order; `-` reads standard input.
    pub files: Vec<String>,
    /// `-p`
    pub project_name: Option<String>,
    /// `--project-directory`
    pub project_directory: Option<PathBuf>,
    /// `--env-file` (repeatable); replaces the default `.env`. When empty, `COMPOSE_ENV_FILES`
    /// (comma-separated) from `environment` stands in for it, and `COMPOSE_DISABLE_ENV_FILE`
    /// there turns the default `.env` off.
    pub env_files: Vec<PathBuf>,
    /// `--profile` (repeatable); `COMPOSE_PROFILES` is used when empty.
    pub profiles: Vec<String>,
    /// The directory relative `-f` paths resolve against (the CLI passes its cwd).
    pub working_dir: PathBuf,
    /// The process environment (injected so tests need not touch the real one).
    pub environment: BTreeMap<String, String>,
    /// `false` for `--no-interpolate`.
    pub interpolate: bool,
    /// Services named on the command line: they are enabled whatever their profiles.
    pub services: Vec<String>,
    /// Content for `-` (tests); `None` reads the real standard input.
    pub stdin: Option<String>,
    /// `false` for `--no-path-resolution`: relative paths stay as written.
    pub resolve_paths: bool,
    /// `false` for `--no-normalize`: no implicit `default` network, no implied `depends_on`,
    /// no resolved resource names.
    pub normalize: bool,
    /// `false` for `--no-consistency`: references to undefined services, networks, volumes,
    /// secrets and configs (and services without image or build) are not errors.
    pub consistency: bool,
    /// Drop `env_file` from services once its contents are in `environment`, as
    /// `docker compose config` does (its output must not read the files a second time).
    pub discard_env_files: bool,
    /// `false` for `--no-env-resolution`: env files are not read into `environment` (and
    /// stay listed), bare variable names are not looked up.
    pub resolve_environment: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            files: Vec::new(),
            project_name: None,
            project_directory: None,
            env_files: Vec::new(),
            profiles: Vec::new(),
            working_dir: PathBuf::from("/"),
            environment: BTreeMap::new(),
            interpolate: true,
            services: Vec::new(),
            stdin: None,
            resolve_paths: true,
            normalize: true,
            consistency: true,
            discard_env_files: false,
            resolve_environment: true,
        }
    }
}

impl LoadOptions {
    /// Options with the process environment and current directory.
    pub fn from_process() -> Self {
        LoadOptions {
            working_dir: std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/")),
            environment: std::env::vars().collect(),
            ..Default::default()
        }
    }
}

#[derive(Debug, Clone)]
pub struct LoadedProject {
    pub project: Project,
    /// Non-fatal problems, one line each (the CLI prints them to stderr).
    pub warnings: Vec<String>,
    /// Variables the files use, with their default and whether they are required.
    pub variables: Vec<VariableUse>,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Discover(#[from] discover::DiscoverError),
    #[error(transparent)]
    Dotenv(#[from] dotenv::DotenvError),
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Parse(#[from] parse::ParseError),
    #[error(transparent)]
    Interpolate(#[from] interpolate::InterpolateError),
    #[error(transparent)]
    Validate(#[from] validate::ValidateError),
    #[error(transparent)]
    Canonical(#[from] canonical::CanonicalError),
    #[error(transparent)]
    Include(#[from] include::IncludeError),
    #[error(transparent)]
    Extends(#[from] extends::ExtendsError),
    #[error("{file}: {source}")]
    Merge {
        file: String,
        source: merge::MergeError,
    },
    #[error(transparent)]
    Normalize(#[from] normalize::NormalizeError),
    #[error(
        "invalid project name {name:?} (from {origin}): must consist only of lowercase alphanumeric characters, hyphens, and underscores as well as start with a letter or number"
    )]
    ProjectName { name: String, origin: &'static str },
    #[error("{name}={value:?}: {reason}")]
    EnvironmentVariable {
        name: &'static str,
        value: String,
        reason: String,
    },
    #[error("the compose model does not fit the typed project: {0} (please report this)")]
    Model(String),
}

/// Loads a project: the whole pipeline.
pub fn load(opts: &LoadOptions) -> Result<LoadedProject, LoadError> {
    let mut loader = Loader {
        opts,
        warnings: Vec::new(),
        variables: Vec::new(),
        cache: HashMap::new(),
        texts: HashMap::new(),
    };
    loader.run()
}

/// Shared state of one load: options, accumulated warnings and variables, parsed-file cache.
pub struct Loader<'a> {
    pub opts: &'a LoadOptions,
    pub warnings: Vec<String>,
    pub variables: Vec<VariableUse>,
    /// Canonical contents of files read for `extends`, by path.
    pub cache: HashMap<PathBuf, Value>,
    /// The text of every file read, by its display name, to point errors found later (on the
    /// value tree, which has no positions) at a line.
    pub texts: HashMap<String, String>,
}

/// The environment of one project (the main one or an included one).
pub struct ProjectEnv {
    pub vars: BTreeMap<String, String>,
    pub base_dir: PathBuf,
    /// Without path resolution, an included project's relative paths are still rebased onto
    /// the including project's directory (compose v2): the relative way there.
    pub rebase: Option<PathBuf>,
}

impl Loader<'_> {
    fn run(&mut self) -> Result<LoadedProject, LoadError> {
        let opts = self.opts;
        let wd = &opts.working_dir;
        let explicit_dir = opts
            .project_directory
            .as_ref()
            .map(|d| discover::absolute(wd, d));
        // .env may set COMPOSE_FILE, so it is read before discovery: from the project
        // directory, else the directory of the first -f file, else the working directory.
        let first_file_dir = opts.files.iter().find(|f| f.as_str() != "-").and_then(|f| {
            discover::absolute(wd, Path::new(f))
                .parent()
                .map(Path::to_path_buf)
        });
        let env_dir = explicit_dir
            .clone()
            .or(first_file_dir)
            .unwrap_or_else(|| wd.clone());
        let mut env = self.environment_from(&env_dir, &opts.environment)?;
        let found = discover::discover(&opts.files, wd, explicit_dir.as_deref(), &env)?;
        self.warnings.extend(found.warnings);
        let project_dir = match &explicit_dir {
            Some(d) => d.clone(),
            None => match found.sources.first() {
                Some(Source::File(p)) => p
                    .parent()
                    .map(Path::to_path_buf)
                    .unwrap_or_else(|| wd.clone()),
                _ => wd.clone(),
            },
        };
        if project_dir != env_dir && explicit_env_files(opts).is_empty() {
            // As compose v2: the project directory's `.env` only adds what is not set yet
            // (by the process or the first `.env`), and sees those values while expanding.
            env = self.environment_from(&project_dir, &env)?;
        }
        let penv = ProjectEnv {
            vars: env,
            base_dir: project_dir.clone(),
            rebase: None,
        };
        let mut merged = self.load_files(&found.sources, &penv, &mut Vec::new())?;
        parse::strip_tags(&mut merged);
        let compose_files: Vec<String> = found.sources.iter().map(Source::display).collect();
        let name = self.project_name(&merged, &penv, &project_dir)?;
        if let Some(map) = merged.as_mapping_mut() {
            map.insert(Value::String("name".into()), Value::String(name));
            if map.shift_remove("version").is_some() {
                self.warnings.push(
                    "the attribute `version` is obsolete, it will be ignored, please remove it to avoid potential confusion"
                        .into(),
                );
            }
            map.shift_remove("include");
        }
        let mut project: Project =
            yaml_serde::from_value(merged).map_err(|e| LoadError::Model(e.to_string()))?;
        project.working_dir = project_dir;
        project.compose_files = compose_files;
        project.environment = penv.vars.clone();
        let profiles = if !opts.profiles.is_empty() {
            opts.profiles.clone()
        } else {
            penv.vars
                .get("COMPOSE_PROFILES")
                .map(|p| {
                    p.split(',')
                        .map(str::trim)
                        .filter(|p| !p.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default()
        };
        // Env and label files are read during normalisation, from their resolved location even
        // when the output keeps paths as written.
        let base = project.working_dir.clone();
        let written = (!opts.resolve_paths).then(|| absolutize_files(&mut project, &base));
        normalize::normalize(
            &mut project,
            &profiles,
            &opts.services,
            &penv.vars,
            &mut self.warnings,
            normalize::Options {
                normalize: opts.normalize,
                consistency: opts.consistency,
                resolve_environment: opts.resolve_environment,
            },
        )?;
        if let Some(written) = written {
            restore_written_paths(&mut project, &written);
        }
        if opts.discard_env_files {
            for svc in project.services.values_mut() {
                svc.env_file.clear();
            }
        }
        self.variables.sort();
        self.variables.dedup();
        Ok(LoadedProject {
            project,
            warnings: std::mem::take(&mut self.warnings),
            variables: std::mem::take(&mut self.variables),
        })
    }

    /// The interpolation environment: env files (or `<dir>/.env`) under `base` (the process
    /// environment, which wins).
    fn environment_from(
        &self,
        dir: &Path,
        base: &BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>, LoadError> {
        let opts = self.opts;
        let explicit = explicit_env_files(opts);
        let files: Vec<(PathBuf, bool)> = if !explicit.is_empty() {
            explicit
                .iter()
                .map(|f| (discover::absolute(&opts.working_dir, f), true))
                .collect()
        } else if default_env_file_disabled(&opts.environment)? {
            Vec::new()
        } else {
            vec![(dir.join(".env"), false)]
        };
        env_with_files(base, &files)
    }

    /// Reads one file's text.
    fn read(&self, source: &Source) -> Result<String, LoadError> {
        match source {
            Source::Stdin => match &self.opts.stdin {
                Some(text) => Ok(text.clone()),
                None => {
                    let mut text = String::new();
                    std::io::stdin()
                        .read_to_string(&mut text)
                        .map_err(|source| LoadError::Read {
                            path: "-".into(),
                            source,
                        })?;
                    Ok(text)
                }
            },
            Source::File(p) => std::fs::read_to_string(p).map_err(|source| LoadError::Read {
                path: p.display().to_string(),
                source,
            }),
        }
    }

    /// Loads several files of one project and merges them in order.
    pub fn load_files(
        &mut self,
        sources: &[Source],
        penv: &ProjectEnv,
        include_stack: &mut Vec<PathBuf>,
    ) -> Result<Value, LoadError> {
        let mut merged: Option<Value> = None;
        for source in sources {
            let value = self.load_one(source, penv, include_stack)?;
            merged = Some(match merged {
                None => value,
                Some(base) => {
                    merge::merge(base, value, &[]).map_err(|source_err| LoadError::Merge {
                        file: source.display(),
                        source: source_err,
                    })?
                }
            });
        }
        let mut merged = merged.unwrap_or_else(|| Value::Mapping(Default::default()));
        if self.opts.normalize {
            match &penv.rebase {
                Some(rel) => canonical::build_defaults(&mut merged, rel, true),
                None => {
                    canonical::build_defaults(&mut merged, &penv.base_dir, self.opts.resolve_paths)
                }
            }
        }
        Ok(merged)
    }

    /// Parse, interpolate, validate, include, canonicalise and resolve `extends` for one file.
    fn load_one(
        &mut self,
        source: &Source,
        penv: &ProjectEnv,
        include_stack: &mut Vec<PathBuf>,
    ) -> Result<Value, LoadError> {
        let mut value = self.parse_checked(source, &penv.vars)?;
        let file = source.display();
        let file_dir = match source {
            Source::File(p) => p
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| penv.base_dir.clone()),
            Source::Stdin => penv.base_dir.clone(),
        };
        // `extends.file` in a project's own files is relative to the project directory, as
        // compose v2 resolves it (nested ones, in extended files, to their file's directory).
        let ctx = canonical::PathContext {
            base_dir: penv.rebase.as_deref().unwrap_or(&penv.base_dir),
            file_dir: &penv.base_dir,
            home: penv.vars.get("HOME").map(String::as_str),
            file: &file,
            resolve_paths: penv.rebase.is_some() || self.opts.resolve_paths,
        };
        canonical::canonicalize(&mut value, &ctx)?;
        merge::enforce_unicity(&mut value);
        // After canonicalisation, so that a resource defined identically here and in an
        // included file compares equal (both in long form) and is not a conflict.
        include::apply(self, &mut value, &file, &file_dir, penv, include_stack)?;
        extends::apply(self, &mut value, source, penv)?;
        Ok(value)
    }

    /// Parse, interpolate and validate one file.
    pub fn parse_checked(
        &mut self,
        source: &Source,
        vars: &BTreeMap<String, String>,
    ) -> Result<Value, LoadError> {
        self.parse_checked_with(source, vars, |_| {})
    }

    /// [`Loader::parse_checked`], with `prepare` applied to the parsed value before it is
    /// validated.
    pub fn parse_checked_with(
        &mut self,
        source: &Source,
        vars: &BTreeMap<String, String>,
        prepare: impl FnOnce(&mut Value),
    ) -> Result<Value, LoadError> {
        let text = self.read(source)?;
        let file = source.display();
        let mut value = parse::parse(&file, &text)?;
        interpolate::collect_variables(&value, &mut self.variables);
        if self.opts.interpolate {
            let mut interp = interpolate::Interpolator::new(vars).with_source(&text);
            interp.interpolate(&file, &mut value)?;
            for w in interp.warnings {
                if !self.warnings.contains(&w) {
                    self.warnings.push(w);
                }
            }
        }
        self.texts.insert(file.clone(), text);
        prepare(&mut value);
        validate::Validator { file: &file }.validate_file(&mut value)?;
        Ok(value)
    }

    /// The 1-based line of `file` where the first of `needles` (tried in order) appears.
    pub fn line_of(&self, file: &str, needles: &[&str]) -> Option<usize> {
        let text = self.texts.get(file)?;
        needles.iter().find_map(|needle| {
            text.lines()
                .position(|line| line.contains(needle))
                .map(|i| i + 1)
        })
    }

    fn project_name(
        &self,
        merged: &Value,
        penv: &ProjectEnv,
        project_dir: &Path,
    ) -> Result<String, LoadError> {
        let checked = |name: &str, origin: &'static str| {
            if is_valid_project_name(name) {
                Ok(name.to_string())
            } else {
                Err(LoadError::ProjectName {
                    name: name.into(),
                    origin,
                })
            }
        };
        if let Some(name) = self.opts.project_name.as_deref().filter(|n| !n.is_empty()) {
            return checked(name, "-p");
        }
        if let Some(name) = penv
            .vars
            .get("COMPOSE_PROJECT_NAME")
            .filter(|n| !n.is_empty())
        {
            return checked(name, "COMPOSE_PROJECT_NAME");
        }
        // Like compose, a `name:` from the file is normalised rather than rejected (only names
        // given imperatively, with -p or COMPOSE_PROJECT_NAME, must already be valid).
        if let Some(name) = merged
            .get("name")
            .and_then(Value::as_str)
            .map(normalize_project_name)
            .filter(|n| !n.is_empty())
        {
            return Ok(name);
        }
        let dir_name = project_dir
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let name = normalize_project_name(&dir_name);
        if name.is_empty() {
            return Err(LoadError::ProjectName {
                name: dir_name,
                origin: "the project directory name",
            });
        }
        Ok(name)
    }
}

/// Makes relative `env_file` and `label_file` paths absolute (against the project directory);
/// returns absolute → as written.
fn absolutize_files(project: &mut Project, project_dir: &Path) -> HashMap<String, String> {
    let mut written = HashMap::new();
    let mut fix = |p: &mut String| {
        if Path::new(p.as_str()).is_relative() {
            let abs = canonical::clean(&project_dir.join(p.as_str()))
                .display()
                .to_string();
            written.insert(abs.clone(), std::mem::replace(p, abs));
        }
    };
    for svc in project.services.values_mut() {
        svc.env_file.iter_mut().for_each(|f| fix(&mut f.path));
        svc.label_file.iter_mut().for_each(&mut fix);
    }
    written
}

fn restore_written_paths(project: &mut Project, written: &HashMap<String, String>) {
    let restore = |p: &mut String| {
        if let Some(w) = written.get(p.as_str()) {
            *p = w.clone();
        }
    };
    for svc in project
        .services
        .values_mut()
        .chain(project.disabled_services.values_mut())
    {
        svc.env_file.iter_mut().for_each(|f| restore(&mut f.path));
        svc.label_file.iter_mut().for_each(restore);
    }
}

/// `file:line` when the line is known, else `file`.
pub(crate) fn location(file: &str, line: Option<usize>) -> String {
    match line {
        Some(line) => format!("{file}:{line}"),
        None => file.to_string(),
    }
}

/// `--env-file`, else `COMPOSE_ENV_FILES` from the process environment (comma-separated, as
/// compose v2 takes it for the flag's default).
fn explicit_env_files(opts: &LoadOptions) -> Vec<PathBuf> {
    if !opts.env_files.is_empty() {
        return opts.env_files.clone();
    }
    opts.environment
        .get("COMPOSE_ENV_FILES")
        .map(|v| {
            v.split(',')
                .filter(|f| !f.is_empty())
                .map(PathBuf::from)
                .collect()
        })
        .unwrap_or_default()
}

/// `COMPOSE_DISABLE_ENV_FILE` from the process environment: when true, no default `.env` is
/// read (explicit env files still are). compose v2 refuses a value that is not a boolean.
fn default_env_file_disabled(process: &BTreeMap<String, String>) -> Result<bool, LoadError> {
    const VAR: &str = "COMPOSE_DISABLE_ENV_FILE";
    match process.get(VAR) {
        None => Ok(false),
        Some(v) => parse_go_bool(v).ok_or_else(|| LoadError::EnvironmentVariable {
            name: VAR,
            value: v.clone(),
            reason: "not a boolean (use true/false, 1/0, t/f)".into(),
        }),
    }
}

/// Go's `strconv.ParseBool`: the spellings compose v2 accepts for a boolean variable.
pub fn parse_go_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// Merges env files (later files win) under the process environment (which wins over files).
pub fn env_with_files(
    process: &BTreeMap<String, String>,
    files: &[(PathBuf, bool)],
) -> Result<BTreeMap<String, String>, LoadError> {
    let mut from_files: BTreeMap<String, String> = BTreeMap::new();
    for (path, required) in files {
        if !path.exists() {
            if *required {
                let path = path.display().to_string();
                return Err(dotenv::DotenvError::Missing { path }.into());
            }
            continue;
        }
        // As compose v2: the process environment wins over values the files define.
        let known = from_files.clone();
        let lookup = |k: &str| process.get(k).cloned();
        let fallback = |k: &str| known.get(k).cloned();
        for (k, v) in dotenv::read_file(path, &lookup, &fallback)? {
            from_files.insert(k, v);
        }
    }
    let mut env = from_files;
    for (k, v) in process {
        env.insert(k.clone(), v.clone());
    }
    Ok(env)
}

/// compose v2 rule: lowercase letters, digits, `-` and `_`, starting with a letter or digit.
pub fn is_valid_project_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// How compose turns a directory name into a project name: lowercase, drop other characters,
/// drop leading `-`/`_`.
pub fn normalize_project_name(name: &str) -> String {
    let lowered: String = name
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '_')
        .collect();
    lowered.trim_start_matches(['-', '_']).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_names() {
        assert!(is_valid_project_name("my-app_1"));
        assert!(!is_valid_project_name("My App"));
        assert!(!is_valid_project_name("_x"));
        assert_eq!(normalize_project_name("My.App-2"), "myapp-2");
        assert_eq!(normalize_project_name("__Proj"), "proj");
    }
}
