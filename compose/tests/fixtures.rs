//! Fixture-driven snapshot tests of the load pipeline.
//!
//! Each directory under `tests/fixtures/` is one case:
//! - the compose files (default discovery applies unless `args` names some);
//! - `args` (optional): one flag per line, like the CLI: `-f FILE`, `-p NAME`,
//!   `--project-directory DIR`, `--env-file FILE`, `--profile NAME`, `--no-interpolate`,
//!   `--service NAME` (a service named on the command line), `--cwd SUBDIR`, `--format json`,
//!   `--no-path-resolution`, `--no-normalize`, `--no-consistency`;
//! - `environ` (optional): `KEY=VALUE` lines, the process environment the loader sees;
//! - `expected.txt`: warnings (`WARN ...` lines), then the canonical YAML, or `ERROR <message>`.
//!
//! `env_file` stays in the output (unlike `rcompose config`, which drops it once read, as
//! compose does) so that its canonical form is covered; tests/config_cli.rs checks the drop.
//!
//! Paths under the fixture directory print as `<DIR>`. Run with `UPDATE_FIXTURES=1` to rewrite
//! the expected files after checking the differences by hand.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rcompose_compose::graph::DependencyGraph;
use rcompose_compose::load::{LoadOptions, load};
use rcompose_compose::render;

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn run_case(dir: &Path) -> String {
    let mut opts = LoadOptions {
        interpolate: true,
        working_dir: dir.to_path_buf(),
        ..Default::default()
    };
    let mut env = BTreeMap::from([("HOME".to_string(), "/home/user".to_string())]);
    if let Ok(text) = std::fs::read_to_string(dir.join("environ")) {
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let (k, v) = line.split_once('=').unwrap_or((line, ""));
            env.insert(k.to_string(), v.to_string());
        }
    }
    opts.environment = env;
    let mut json = false;
    if let Ok(text) = std::fs::read_to_string(dir.join("args")) {
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let (flag, value) = line
                .split_once(' ')
                .map(|(a, b)| (a, b.trim().to_string()))
                .unwrap_or((line, String::new()));
            match flag {
                "-f" => opts.files.push(value),
                "-p" => opts.project_name = Some(value),
                "--project-directory" => opts.project_directory = Some(PathBuf::from(value)),
                "--env-file" => opts.env_files.push(PathBuf::from(value)),
                "--profile" => opts.profiles.push(value),
                "--no-interpolate" => opts.interpolate = false,
                "--service" => opts.services.push(value),
                "--cwd" => opts.working_dir = dir.join(value),
                "--format" => json = value == "json",
                "--no-path-resolution" => opts.resolve_paths = false,
                "--no-normalize" => opts.normalize = false,
                "--no-consistency" => opts.consistency = false,
                other => panic!("{}: unknown flag {other} in args", dir.display()),
            }
        }
    }
    let mut out = String::new();
    match load(&opts) {
        Ok(loaded) => {
            for w in &loaded.warnings {
                out.push_str(&format!("WARN {w}\n"));
            }
            // Like `config --no-consistency`, which builds no dependency graph.
            let graph = match opts.consistency {
                true => DependencyGraph::new(&loaded.project).map(|_| ()),
                false => Ok(()),
            };
            match graph {
                Ok(()) => {
                    let text = if json {
                        render::project_to_json(&loaded.project).unwrap()
                    } else {
                        render::to_yaml(&loaded.project).unwrap()
                    };
                    out.push_str(&text);
                }
                Err(e) => out.push_str(&format!("ERROR {e}\n")),
            }
        }
        Err(e) => out.push_str(&format!("ERROR {e}\n")),
    }
    out.replace(&dir.display().to_string(), "<DIR>")
}

#[test]
fn fixtures() {
    let update = std::env::var_os("UPDATE_FIXTURES").is_some();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(fixtures_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert!(
        dirs.len() >= 80,
        "expected at least 80 fixtures, found {}",
        dirs.len()
    );
    let mut failures = Vec::new();
    for dir in &dirs {
        let got = run_case(dir);
        let expected_path = dir.join("expected.txt");
        if update {
            std::fs::write(&expected_path, &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if got != want {
            failures.push(format!(
                "--- {}\n=== expected\n{want}=== got\n{got}",
                dir.file_name().unwrap().to_string_lossy()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} fixture(s) differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
