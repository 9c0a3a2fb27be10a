//! compose v2's merge of several compose files, case by case.
//!
//! Each directory under `tests/conformance/merge/` is one case named
//! `<compose-go file>.<test function>.<n>`: `base.yaml` merged with `override.yaml` must give
//! what `expected.yaml` gives alone. The inputs and expected results are those of compose-go's
//! `override/merge_*_test.go` tables (its `assertMergeYaml` calls, and Test_mergeOverrides in
//! `merge_test.go`). Both sides go through the whole loader (canonical forms, no implicit
//! default network, no consistency checks), so the comparison is of the `config` output. A case with `refused.txt` has an input the compose
//! schema refuses (checked to be refused); one with `unresolved.txt` is not run, and the note
//! says why.

mod common;

use std::path::{Path, PathBuf};

use common::run_table;
use rcompose_compose::load::{LoadOptions, load};
use rcompose_compose::render;

fn config(dir: &Path, files: &[&str]) -> Result<String, String> {
    let opts = LoadOptions {
        files: files.iter().map(|f| f.to_string()).collect(),
        working_dir: dir.to_path_buf(),
        normalize: false,
        consistency: false,
        ..Default::default()
    };
    let loaded = load(&opts).map_err(|e| e.to_string())?;
    render::to_yaml(&loaded.project).map_err(|e| e.to_string())
}

fn cases(table: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/conformance")
        .join(table);
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

fn check_merge(dir: &Path) -> Result<(), String> {
    let name = dir.file_name().unwrap().to_string_lossy().to_string();
    let got = config(dir, &["base.yaml", "override.yaml"]);
    let want = config(dir, &["expected.yaml"]);
    match (got, want) {
        (Ok(got), Ok(want)) if got == want => Ok(()),
        (got, want) => Err(format!(
            "{name}\n=== merged\n{}\n=== expected\n{}",
            got.unwrap_or_else(|e| format!("ERROR {e}")),
            want.unwrap_or_else(|e| format!("ERROR {e}"))
        )),
    }
}

/// The cases whose directory holds `name` (a note saying why they are set apart).
fn marked(dirs: &[PathBuf], name: &str) -> Vec<PathBuf> {
    dirs.iter()
        .filter(|d| d.join(name).exists())
        .cloned()
        .collect()
}

#[test]
fn override_merge_64_cases() {
    let all = cases("merge");
    let set_apart: Vec<PathBuf> = marked(&all, "refused.txt")
        .into_iter()
        .chain(marked(&all, "unresolved.txt"))
        .collect();
    let run: Vec<PathBuf> = all.into_iter().filter(|d| !set_apart.contains(d)).collect();
    run_table("override/merge_*_test.go", 64, &run, |d| check_merge(d));
}

/// Cases whose input the compose schema refuses (`refused.txt` says why): loading the two
/// files must fail, naming the file.
#[test]
fn override_merge_refused_inputs_3_cases() {
    let refused = marked(&cases("merge"), "refused.txt");
    run_table(
        "override/merge_*_test.go (refused)",
        3,
        &refused,
        |dir| match config(dir, &["base.yaml", "override.yaml"]) {
            Err(e) if e.contains(".yaml") => Ok(()),
            other => Err(format!("{}: got {other:?}", dir.display())),
        },
    );
}

/// compose-go `override/uncity_test.go` (its `assertUnicity` calls): one file whose lists
/// repeat an entry (`input.yaml`) gives what the list without the repetition gives
/// (`expected.yaml`).
#[test]
fn unicity_4_cases() {
    run_table("override/uncity_test.go", 4, &cases("unicity"), |dir| {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        match (
            config(dir, &["input.yaml"]),
            config(dir, &["expected.yaml"]),
        ) {
            (Ok(got), Ok(want)) if got == want => Ok(()),
            (got, want) => Err(format!(
                "{name}\n=== input\n{got:?}\n=== expected\n{want:?}"
            )),
        }
    });
}
