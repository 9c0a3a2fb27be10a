//! compose v2's normalisation (default network, resource names, implied `depends_on`, build
//! defaults, environment resolution), case by case.
//!
//! Each directory under `tests/conformance/normalize/` is one test function of compose-go's
//! `loader/normalize_test.go`: `input.yaml` (with the environment in `environ`) must give what
//! `expected.yaml`, compose-go's normalised model, gives. Both go through the whole loader
//! (without consistency checks, as compose-go's `Normalize` has none), so the comparison is of
//! the `config` output; a case with `unresolved.txt` is not run, and the note says why. The
//! project name is written in lower case (`myproject`): the loader
//! lower-cases a `name:` from the file before normalising, as compose v2 does.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::run_table;
use rcompose_compose::load::{LoadOptions, load};
use rcompose_compose::render;

fn config(dir: &Path, file: &str, environment: BTreeMap<String, String>) -> Result<String, String> {
    let opts = LoadOptions {
        files: vec![file.to_string()],
        working_dir: dir.to_path_buf(),
        environment,
        consistency: false,
        ..Default::default()
    };
    let loaded = load(&opts).map_err(|e| e.to_string())?;
    render::to_yaml(&loaded.project).map_err(|e| e.to_string())
}

fn check(dir: &Path) -> Result<(), String> {
    let name = dir.file_name().unwrap().to_string_lossy().to_string();
    let environment: BTreeMap<String, String> = std::fs::read_to_string(dir.join("environ"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let got = config(dir, "input.yaml", environment.clone());
    let want = config(dir, "expected.yaml", BTreeMap::new());
    match (got, want) {
        (Ok(got), Ok(want)) if got == want => Ok(()),
        (got, want) => Err(format!(
            "{name}\n=== normalised\n{}\n=== expected\n{}",
            got.unwrap_or_else(|e| format!("ERROR {e}")),
            want.unwrap_or_else(|e| format!("ERROR {e}"))
        )),
    }
}

#[test]
fn normalize_8_cases() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/normalize");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    let (set_apart, run): (Vec<PathBuf>, Vec<PathBuf>) = dirs
        .into_iter()
        .partition(|d| d.join("unresolved.txt").exists());
    assert_eq!(
        set_apart.len(),
        1,
        "cases set apart (see their unresolved.txt)"
    );
    run_table("loader/normalize_test.go", 8, &run, |d| check(d));
}
