//! compose v2's `.env` files: the fixture files of its dotenv parser and how several files and
//! the process environment combine.
//!
//! Source of the expected values: compose-go `dotenv/godotenv_test.go` (TestReadPlainEnv,
//! TestLoadPlainEnv, TestLoadExportedEnv, TestLoadEqualsEnv, TestLoadQuotedEnv,
//! TestLoadUnquotedEnv, TestSubstitutions, TestSubstitutionsWithEnvFilePrecedence,
//! TestSubstitutionsWithEnvFileDefaultValuePrecedence,
//! TestSubstitutionsWithUnsetVarEnvFileDefaultValuePrecedence,
//! TestInheritedEnvVariableSameSize, TestInheritedEnvVariableSingleVar,
//! TestInheritedEnvVariableNotFound, TestInheritedEnvVariableNotFoundWithLookup, TestUTF8BOM,
//! TestDash, TestErrorParsing, TestLoadDoesNotOverride, TestActualEnvVarsAreLeftAlone,
//! TestMultipleFiles, TestGetEnvFromFile, TestLoadFileNotFound). The fixture texts below hold
//! the same data as the files under compose-go's `dotenv/fixtures/`.

mod common;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::{Pairs, env, run_table};
use rcompose_compose::load::{dotenv, env_with_files};

const PLAIN: &str = "OPTION_A=1\nOPTION_B=2\nOPTION_C= 3\nOPTION_D =4\nOPTION_E = 5\n456 = ABC\nOPTION_F = \nOPTION_G=\nOPTION_H = my string # Inline comment\n";
const EXPORTED: &str = "export OPTION_A=2\nexport OPTION_B='\\n'\n";
const EQUALS: &str = "export OPTION_A='postgres://localhost:5432/database?sslmode=disable'\n\n";
const QUOTED: &str = "OPTION_A='1'\nOPTION_B='2'\nOPTION_C=''\nOPTION_D='\\n'\nOPTION_E=\"1\"\nOPTION_F=\"2\"\nOPTION_G=\"\"\nOPTION_H=\"\\n\"\nOPTION_I = \"echo 'asd'\" # Inline comment\nOPTION_J = 'first line\nsecond line\nthird line\nand so on'\nOPTION_K='Let\\'s go!'\nOPTION_Z = \"last value\"\n";
const UNQUOTED: &str = "OPTION_A = \"some quoted phrase\"\nOPTION_B=first one with an unquoted phrase\nOPTION_C = then another one with an unquoted phrase\nOPTION_D = then another one with an unquoted phrase special \u{e8} char\nOPTION_E = \"then another one quoted phrase\"\n";
const SUBSTITUTIONS: &str = "OPTION_A=1\nOPTION_B=${OPTION_A}\nOPTION_C=$OPTION_B\nOPTION_D=${OPTION_A}_${OPTION_B}\nOPTION_E=${OPTION_NOT_DEFINED}\n";
const SUBSTITUTIONS_DEFAULT: &str = "OPTION_A=${OPTION_A:-1}\nOPTION_B=${OPTION_A}\nOPTION_C=$OPTION_B\nOPTION_D=${OPTION_A}_${OPTION_B}\nOPTION_E=${OPTION_NOT_DEFINED}\n";
const INHERITED_MULTI: &str = "foo=bar\nVAR_TO_BE_LOADED_FROM_OS_ENV\nbar=baz\n";
const INHERITED_SINGLE: &str = "VAR_TO_BE_LOADED_FROM_OS_ENV\n";
const INHERITED_NOT_FOUND: &str = "VARIABLE_NOT_FOUND\n";
const UTF8_BOM: &str = "\u{feff}OPTION_A=1\nOPTION_B=2\nOPTION_C= 3\nOPTION_D =4\nOPTION_E = 5\n456 = ABC\nOPTION_F =\nOPTION_G=\nOPTION_H = my string # Inline comment\n";
const SPECIAL: &str =
    "VAR.WITH.DOTS=dots\nVAR_WITH_UNDERSCORES=underscores\nVAR-WITH-DASHES=dashes\n";
const INVALID1: &str =
    "# some comments\nfoo=\"\n  a\n  multine\n  value\n\"\nINVALID LINE\nzot=qix";

const FROM_OS: Pairs = &[("VAR_TO_BE_LOADED_FROM_OS_ENV", "SOME_RANDOM_VALUE")];

enum Want {
    Has(Pairs),
    Exactly(Pairs),
    Error(usize, &'static str),
}

struct Case {
    table: &'static str,
    text: &'static str,
    environ: Pairs,
    want: Want,
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Keys starting with a digit: compose-go's `Read` helper (used by some of these tables)
/// drops them after parsing; the parser itself keeps them, and so do we.
fn starts_with_digit(k: &str) -> bool {
    k.trim_start().starts_with(|c: char| c.is_ascii_digit())
}

#[test]
fn fixture_files_17_cases() {
    let tmp = tempfile::tempdir().unwrap();
    let cases = [
        Case {
            table: "TestReadPlainEnv",
            text: PLAIN,
            environ: &[],
            want: Want::Exactly(&[
                ("OPTION_A", "1"),
                ("OPTION_B", "2"),
                ("OPTION_C", "3"),
                ("OPTION_D", "4"),
                ("OPTION_E", "5"),
                ("OPTION_F", ""),
                ("OPTION_G", ""),
                ("OPTION_H", "my string"),
            ]),
        },
        Case {
            table: "TestLoadPlainEnv",
            text: PLAIN,
            environ: &[],
            want: Want::Has(&[
                ("OPTION_A", "1"),
                ("OPTION_B", "2"),
                ("OPTION_C", "3"),
                ("OPTION_D", "4"),
                ("OPTION_E", "5"),
            ]),
        },
        Case {
            table: "TestLoadExportedEnv",
            text: EXPORTED,
            environ: &[],
            want: Want::Has(&[("OPTION_A", "2"), ("OPTION_B", "\\n")]),
        },
        Case {
            table: "TestLoadEqualsEnv",
            text: EQUALS,
            environ: &[],
            want: Want::Has(&[(
                "OPTION_A",
                "postgres://localhost:5432/database?sslmode=disable",
            )]),
        },
        Case {
            table: "TestLoadQuotedEnv",
            text: QUOTED,
            environ: &[],
            want: Want::Has(&[
                ("OPTION_A", "1"),
                ("OPTION_B", "2"),
                ("OPTION_C", ""),
                ("OPTION_D", "\\n"),
                ("OPTION_E", "1"),
                ("OPTION_F", "2"),
                ("OPTION_G", ""),
                ("OPTION_H", "\n"),
                ("OPTION_I", "echo 'asd'"),
                ("OPTION_J", "first line\nsecond line\nthird line\nand so on"),
                ("OPTION_K", "Let's go!"),
                ("OPTION_Z", "last value"),
            ]),
        },
        Case {
            table: "TestLoadUnquotedEnv",
            text: UNQUOTED,
            environ: &[],
            want: Want::Has(&[
                ("OPTION_A", "some quoted phrase"),
                ("OPTION_B", "first one with an unquoted phrase"),
                ("OPTION_C", "then another one with an unquoted phrase"),
                (
                    "OPTION_D",
                    "then another one with an unquoted phrase special \u{e8} char",
                ),
                ("OPTION_E", "then another one quoted phrase"),
            ]),
        },
        Case {
            table: "TestSubstitutions",
            text: SUBSTITUTIONS,
            environ: &[],
            want: Want::Has(&[
                ("OPTION_A", "1"),
                ("OPTION_B", "1"),
                ("OPTION_C", "1"),
                ("OPTION_D", "1_1"),
                ("OPTION_E", ""),
            ]),
        },
        Case {
            table: "TestSubstitutionsWithEnvFilePrecedence",
            text: SUBSTITUTIONS,
            environ: &[("OPTION_A", "5")],
            want: Want::Exactly(&[
                ("OPTION_A", "1"),
                ("OPTION_B", "5"),
                ("OPTION_C", "5"),
                ("OPTION_D", "5_5"),
                ("OPTION_E", ""),
            ]),
        },
        Case {
            table: "TestSubstitutionsWithEnvFileDefaultValuePrecedence",
            text: SUBSTITUTIONS_DEFAULT,
            environ: &[("OPTION_A", "5")],
            want: Want::Exactly(&[
                ("OPTION_A", "5"),
                ("OPTION_B", "5"),
                ("OPTION_C", "5"),
                ("OPTION_D", "5_5"),
                ("OPTION_E", ""),
            ]),
        },
        Case {
            table: "TestSubstitutionsWithUnsetVarEnvFileDefaultValuePrecedence",
            text: SUBSTITUTIONS_DEFAULT,
            environ: &[],
            want: Want::Exactly(&[
                ("OPTION_A", "1"),
                ("OPTION_B", "1"),
                ("OPTION_C", "1"),
                ("OPTION_D", "1_1"),
                ("OPTION_E", ""),
            ]),
        },
        Case {
            table: "TestInheritedEnvVariableSameSize",
            text: INHERITED_MULTI,
            environ: FROM_OS,
            want: Want::Exactly(&[
                ("VAR_TO_BE_LOADED_FROM_OS_ENV", "SOME_RANDOM_VALUE"),
                ("foo", "bar"),
                ("bar", "baz"),
            ]),
        },
        Case {
            table: "TestInheritedEnvVariableSingleVar",
            text: INHERITED_SINGLE,
            environ: FROM_OS,
            want: Want::Exactly(&[("VAR_TO_BE_LOADED_FROM_OS_ENV", "SOME_RANDOM_VALUE")]),
        },
        Case {
            table: "TestInheritedEnvVariableNotFound",
            text: INHERITED_NOT_FOUND,
            environ: &[],
            want: Want::Exactly(&[]),
        },
        Case {
            table: "TestUTF8BOM",
            text: UTF8_BOM,
            environ: &[],
            want: Want::Has(&[
                ("OPTION_A", "1"),
                ("OPTION_B", "2"),
                ("OPTION_C", "3"),
                ("OPTION_D", "4"),
                ("OPTION_E", "5"),
            ]),
        },
        Case {
            table: "TestDash",
            text: SPECIAL,
            environ: &[],
            want: Want::Has(&[
                ("VAR-WITH-DASHES", "dashes"),
                ("VAR.WITH.DOTS", "dots"),
                ("VAR_WITH_UNDERSCORES", "underscores"),
            ]),
        },
        Case {
            table: "TestErrorParsing",
            text: INVALID1,
            environ: &[],
            want: Want::Error(7, "contains a blank"),
        },
        Case {
            table: "TestInheritedEnvVariableNotFoundWithLookup",
            text: INHERITED_NOT_FOUND,
            environ: &[],
            want: Want::Exactly(&[]),
        },
    ];
    run_table("dotenv fixtures", 17, &cases, |case| {
        let path = write(tmp.path(), "case.env", case.text);
        let environ = env(case.environ);
        let asked = RefCell::new(Vec::new());
        let lookup = |k: &str| {
            asked.borrow_mut().push(k.to_string());
            environ.get(k).cloned()
        };
        let got = dotenv::read_file(&path, &lookup, &|_| None);
        let table = case.table;
        if table.ends_with("WithLookup")
            && !asked.borrow().iter().any(|k| k == "VARIABLE_NOT_FOUND")
        {
            return Err(format!(
                "{table}: the lookup was not asked for VARIABLE_NOT_FOUND"
            ));
        }
        match (got, &case.want) {
            (Ok(pairs), Want::Has(want)) => {
                for (k, v) in want.iter() {
                    let found = pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
                    if found != Some(*v) {
                        return Err(format!("{table}: {k} = {found:?}, want {v:?}"));
                    }
                }
                Ok(())
            }
            (Ok(pairs), Want::Exactly(want)) => {
                let got: BTreeMap<&str, &str> = pairs
                    .iter()
                    .filter(|(k, _)| !starts_with_digit(k))
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                let want: BTreeMap<&str, &str> = want.iter().copied().collect();
                match got == want {
                    true => Ok(()),
                    false => Err(format!("{table}: got {got:?}, want {want:?}")),
                }
            }
            (Err(e), Want::Error(line, fragment)) => {
                let msg = e.to_string();
                let at = format!("{}:{line}: ", path.display());
                match msg.starts_with(&at) && msg.contains(fragment) {
                    true => Ok(()),
                    false => Err(format!("{table}: {msg}; want {at}…{fragment}")),
                }
            }
            (Ok(pairs), Want::Error(..)) => Err(format!("{table}: parsed {pairs:?}")),
            (Err(e), _) => Err(format!("{table}: {e}")),
        }
    });
}

/// How `.env` files combine with the process environment (compose-go's `GetEnvFromFile`, which
/// `docker compose` uses for `.env` and `--env-file`).
#[test]
fn env_files_and_process_env_6_cases() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let plain = write(dir, "plain.env", PLAIN);
    let base = write(
        dir,
        "base.env",
        "\nENV_HOSTNAME=localhost\nENV_MY_URL=\"http://${ENV_HOSTNAME}\"\n",
    );
    let over = write(
        dir,
        "override.env",
        "\nENV_HOSTNAME=dev.my-company.com\nENV_MY_URL=\"http://${ENV_HOSTNAME}\"\n",
    );
    let as_dir = dir.join("dir.env");
    std::fs::create_dir(&as_dir).unwrap();
    let missing = dir.join("somefilethatwillneverexistever.env");

    // (table, process env, files, Ok(expected subset) or Err(message fragment))
    type Row = (
        &'static str,
        Pairs,
        Vec<PathBuf>,
        Result<Pairs, &'static str>,
    );
    let rows: Vec<Row> = vec![
        (
            "TestLoadDoesNotOverride",
            &[("OPTION_A", "do_not_override"), ("OPTION_B", "")],
            vec![plain.clone()],
            Ok(&[
                ("OPTION_A", "do_not_override"),
                ("OPTION_B", ""),
                ("OPTION_C", "3"),
            ]),
        ),
        (
            "TestActualEnvVarsAreLeftAlone",
            &[("OPTION_A", "actualenv")],
            vec![plain.clone()],
            Ok(&[("OPTION_A", "actualenv")]),
        ),
        (
            "TestMultipleFiles (no process value)",
            &[],
            vec![base.clone(), over.clone()],
            Ok(&[
                ("ENV_HOSTNAME", "dev.my-company.com"),
                ("ENV_MY_URL", "http://dev.my-company.com"),
            ]),
        ),
        (
            "TestMultipleFiles (process value wins while expanding)",
            &[("ENV_HOSTNAME", "host.local")],
            vec![base, over],
            // compose-go returns the files' own value for ENV_HOSTNAME and merges it under
            // the process environment, where `host.local` stays.
            Ok(&[
                ("ENV_HOSTNAME", "host.local"),
                ("ENV_MY_URL", "http://host.local"),
            ]),
        ),
        ("TestGetEnvFromFile", &[], vec![as_dir], Err("dir.env")),
        (
            "TestLoadFileNotFound",
            &[],
            vec![missing],
            Err("somefilethatwillneverexistever.env"),
        ),
    ];
    run_table("env files", 6, &rows, |(table, process, files, want)| {
        let files: Vec<(PathBuf, bool)> = files.iter().map(|p| (p.clone(), true)).collect();
        let got = env_with_files(&env(process), &files);
        match (got, want) {
            (Ok(vars), Ok(want)) => {
                for (k, v) in want.iter() {
                    if vars.get(*k).map(String::as_str) != Some(*v) {
                        return Err(format!("{table}: {k} = {:?}, want {v:?}", vars.get(*k)));
                    }
                }
                Ok(())
            }
            (Err(e), Err(fragment)) if e.to_string().contains(fragment) => Ok(()),
            (got, _) => Err(format!("{table}: got {got:?}")),
        }
    });
}
