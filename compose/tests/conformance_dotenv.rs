//! compose v2's `.env` parser, case by case.
//!
//! Source of the expected values: compose-go `dotenv/parser_test.go` (TestParseBytes,
//! TestParseVariable, TestMemoryExplosion), `dotenv/godotenv_test.go` (TestParse, TestParsing,
//! TestExpanding, TestVariableStringValueSeparator, TestUnterminatedQuotes, TestLinesToIgnore,
//! TestExpandingEnvironmentWithLookup) and `dotenv/godotenv_var_expansion_test.go`
//! (TestExpandIfEmptyOrUnset, TestExpandIfUnset, TestErrorIfEmptyOrUnset, TestErrorIfUnset).
//! The file-based tables (their `fixtures/*.env`) are in `conformance_dotenv_files.rs`.

mod common;

use common::{Pairs, env, run_table};
use rcompose_compose::load::dotenv::parse;

/// What parsing one text must give.
enum Want {
    /// These keys with these values (others may be there too).
    Has(Pairs),
    /// Exactly these keys and values.
    Exactly(Pairs),
    /// An error on this line whose message contains this text.
    Error(usize, &'static str),
}

struct Case {
    text: &'static str,
    environ: Pairs,
    want: Want,
}

const fn has(text: &'static str, want: Pairs) -> Case {
    Case {
        text,
        environ: &[],
        want: Want::Has(want),
    }
}

fn check(case: &Case) -> Result<(), String> {
    let environ = env(case.environ);
    let got = parse(case.text, &|k| environ.get(k).cloned());
    compare(case.text, got, &case.want)
}

fn compare(
    text: &str,
    got: Result<Vec<(String, String)>, (usize, String)>,
    want: &Want,
) -> Result<(), String> {
    match (got, want) {
        (Ok(pairs), Want::Has(expected)) => {
            for (k, v) in expected.iter() {
                let found = pairs.iter().find(|(name, _)| name == k).map(|(_, v)| v);
                if found.map(String::as_str) != Some(*v) {
                    return Err(format!("{text:?}: {k} = {found:?}, want {v:?}"));
                }
            }
            Ok(())
        }
        (Ok(pairs), Want::Exactly(expected)) => {
            let mut got: Vec<(&str, &str)> = pairs
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let mut expected = expected.to_vec();
            got.sort();
            expected.sort();
            if got == expected {
                Ok(())
            } else {
                Err(format!("{text:?}: got {got:?}, want {expected:?}"))
            }
        }
        (Err((line, msg)), Want::Error(want_line, fragment)) => {
            if line == *want_line && msg.contains(fragment) {
                Ok(())
            } else {
                Err(format!(
                    "{text:?}: error on line {line}: {msg}; want line {want_line} containing {fragment:?}"
                ))
            }
        }
        (Ok(pairs), Want::Error(..)) => {
            Err(format!("{text:?}: parsed as {pairs:?}, want an error"))
        }
        (Err((line, msg)), _) => Err(format!("{text:?}: unexpected error on line {line}: {msg}")),
    }
}

/// One `KEY=value` expectation per text (compose-go's `parseAndCompare`).
const PARSING: &[(&str, &str, &str)] = &[
    ("FOO=bar", "FOO", "bar"),
    ("FOO =bar", "FOO", "bar"),
    ("FOO= bar", "FOO", "bar"),
    (r#"FOO="bar""#, "FOO", "bar"),
    ("FOO='bar'", "FOO", "bar"),
    (r#"FOO="escaped\"bar""#, "FOO", r#"escaped"bar"#),
    (r#"FOO="\"quoted\"""#, "FOO", r#""quoted""#),
    (r#"FOO="'d'""#, "FOO", "'d'"),
    ("OPTION_A: 1", "OPTION_A", "1"),
    ("OPTION_A: Foo=bar", "OPTION_A", "Foo=bar"),
    ("OPTION_A=1:B", "OPTION_A", "1:B"),
    ("export OPTION_A=2", "OPTION_A", "2"),
    (r"export OPTION_B='\n'", "OPTION_B", r"\n"),
    ("export exportFoo=2", "exportFoo", "2"),
    ("exportFOO=2", "exportFOO", "2"),
    ("export_FOO =2", "export_FOO", "2"),
    ("export.FOO= 2", "export.FOO", "2"),
    ("export\tOPTION_A=2", "OPTION_A", "2"),
    ("  export OPTION_A=2", "OPTION_A", "2"),
    ("\texport OPTION_A=2", "OPTION_A", "2"),
    (r#"export OPTION_A="export A""#, "OPTION_A", "export A"),
    (r#"FOO="bar\nbaz""#, "FOO", "bar\nbaz"),
    (r"FOO=a\tb", "FOO", r"a\tb"),
    (r#"FOO="a\tb""#, "FOO", "a\tb"),
    (
        r#"KEY="Z\aZ\bZ\fZ\nZ\rZ\tZ\vZ\\Z\0123Z""#,
        "KEY",
        "Z\x07Z\x08Z\x0cZ\nZ\rZ\tZ\x0bZ\\ZSZ",
    ),
    ("FOO.BAR=foobar", "FOO.BAR", "foobar"),
    ("FOO=foobar=", "FOO", "foobar="),
    ("FOO=bar ", "FOO", "bar"),
    ("FOO=bar # this is foo", "FOO", "bar"),
    ("FOO=bar #this is foo", "FOO", "bar"),
    ("FOO=bar #", "FOO", "bar"),
    (
        "FOO=123#not-an-inline-comment",
        "FOO",
        "123#not-an-inline-comment",
    ),
    (r#"FOO="bar#baz""#, "FOO", "bar#baz"),
    (r##"FOO="bar#baz"#"##, "FOO", "bar#baz"),
    (r#"FOO="bar#baz" # comment"#, "FOO", "bar#baz"),
    ("FOO='bar#baz' # comment", "FOO", "bar#baz"),
    (r#"FOO="bar#baz#bang" # comment"#, "FOO", "bar#baz#bang"),
    (r#"FOO="ba#r""#, "FOO", "ba#r"),
    ("FOO='ba#r'", "FOO", "ba#r"),
    (r#"FOO="bar\n\ b\az""#, "FOO", "bar\n\\ b\x07z"),
    (r#"FOO="bar\\\n\ b\az""#, "FOO", "bar\\\n\\ b\x07z"),
    (r#"FOO="bar\\r\ b\az""#, "FOO", "bar\\r\\ b\x07z"),
    (r#"FOO="bar\nbaz\\""#, "FOO", "bar\nbaz\\"),
    (r#"="value""#, "", "value"),
    (" KEY =value", "KEY", "value"),
    ("   KEY=value", "KEY", "value"),
    ("\tKEY=value", "KEY", "value"),
    (r#"KEY="\0123""#, "KEY", "S"),
    (r#"KEY="\x07""#, "KEY", r"\x07"),
    (r#"KEY="\u12e4""#, "KEY", r"\u12e4"),
    (r#"KEY="\U00101234""#, "KEY", r"\U00101234"),
];

#[test]
fn godotenv_parsing_52_cases() {
    // The 51 `KEY=value` texts above, and one line that is not a statement at all.
    let mut cases: Vec<Case> = PARSING
        .iter()
        .map(|(text, key, value)| Case {
            text,
            environ: &[],
            want: Want::Has(Box::leak(Box::new([(*key, *value)]))),
        })
        .collect();
    cases.push(Case {
        text: "lol$wut",
        environ: &[],
        want: Want::Error(1, "unexpected character '$'"),
    });
    run_table("TestParsing", 52, &cases, check);
}

#[test]
fn parser_bytes_variable_and_size_3_cases() {
    let big: String = (0..1000).map(|i| format!("KEY{i}=VALUE{i}\n")).collect();
    let big: &'static str = Box::leak(big.into_boxed_str());
    let cases = [
        Case {
            text: "\na=b\na[1]=c\na.propertyKey=d\n\u{e1}rv\u{ed}zt\u{171}r\u{151}-T\u{dc}K\u{d6}RF\u{da}R\u{d3}G\u{c9}P=\u{c1}RV\u{cd}ZT\u{170}R\u{150}-t\u{fc}k\u{f6}rf\u{fa}r\u{f3}g\u{e9}p\n",
            environ: &[],
            want: Want::Exactly(&[
                ("a", "b"),
                ("a[1]", "c"),
                ("a.propertyKey", "d"),
                (
                    "\u{e1}rv\u{ed}zt\u{171}r\u{151}-T\u{dc}K\u{d6}RF\u{da}R\u{d3}G\u{c9}P",
                    "\u{c1}RV\u{cd}ZT\u{170}R\u{150}-t\u{fc}k\u{f6}rf\u{fa}r\u{f3}g\u{e9}p",
                ),
            ]),
        },
        Case {
            text: "%!(EXTRA string)=foo",
            environ: &[],
            want: Want::Error(1, "unexpected character '%'"),
        },
        Case {
            text: big,
            environ: &[],
            want: Want::Has(&[("KEY0", "VALUE0"), ("KEY999", "VALUE999")]),
        },
    ];
    run_table(
        "TestParseBytes/TestParseVariable/TestMemoryExplosion",
        3,
        &cases,
        |c| {
            check(c)?;
            if c.text.len() > 1000 {
                let n = parse(c.text, &|_| None)
                    .map(|p| p.len())
                    .unwrap_or_default();
                if n != 1000 {
                    return Err(format!("{n} keys, want 1000"));
                }
            }
            Ok(())
        },
    );
}

#[test]
fn godotenv_parse_and_separator_2_cases() {
    let cases = [
        Case {
            text: "ONE=1\nTWO='2'\nTHREE = \"3\"",
            environ: &[],
            want: Want::Exactly(&[("ONE", "1"), ("TWO", "2"), ("THREE", "3")]),
        },
        Case {
            text: "TEST_URLS=\"stratum+tcp://stratum.antpool.com:3333\nstratum+tcp://stratum.antpool.com:443\"",
            environ: &[],
            want: Want::Exactly(&[(
                "TEST_URLS",
                "stratum+tcp://stratum.antpool.com:3333\nstratum+tcp://stratum.antpool.com:443",
            )]),
        },
    ];
    run_table(
        "TestParse/TestVariableStringValueSeparator",
        2,
        &cases,
        check,
    );
}

#[test]
fn godotenv_expanding_9_cases() {
    let cases = [
        has("FOO=test\nBAR=$FOO", &[("FOO", "test"), ("BAR", "test")]),
        has(
            "FOO=test\nBAR=${FOO}bar",
            &[("FOO", "test"), ("BAR", "testbar")],
        ),
        has("BAR=$FOO", &[("BAR", "")]),
        has(
            "FOO=test\nBAR=\"quote $FOO\"",
            &[("FOO", "test"), ("BAR", "quote test")],
        ),
        has("BAR='quote $FOO'", &[("BAR", "quote $FOO")]),
        has(r#"FOO="foo\$BAR""#, &[("FOO", "foo$BAR")]),
        has(r#"FOO="foo\${BAR}""#, &[("FOO", "foo${BAR}")]),
        has(
            "FOO=test\nBAR=\"foo\\${FOO} ${FOO}\"",
            &[("FOO", "test"), ("BAR", "foo${FOO} test")],
        ),
        // TestExpandingEnvironmentWithLookup
        Case {
            text: "TEST=$ME",
            environ: &[("ME", "YES")],
            want: Want::Has(&[("TEST", "YES")]),
        },
    ];
    run_table("TestExpanding", 9, &cases, check);
}

#[test]
fn godotenv_unterminated_quotes_8_cases() {
    let texts = [
        r#"KEY=""#,
        r#"KEY="value"#,
        r#"KEY="value\""#,
        r#"KEY="value'"#,
        r"KEY='",
        r"KEY='value",
        r"KEY='value\'",
        r#"KEY='value""#,
    ];
    let cases: Vec<Case> = texts
        .iter()
        .map(|text| Case {
            text,
            environ: &[],
            want: Want::Error(1, "unterminated quoted value"),
        })
        .collect();
    run_table("TestUnterminatedQuotes", 8, &cases, check);
}

#[test]
fn godotenv_lines_to_ignore_6_cases() {
    let mut cases: Vec<Case> = ["\n", "\r\n", "\t\t ", "# Comment", "\t # comment"]
        .iter()
        .map(|text| Case {
            text,
            environ: &[],
            want: Want::Exactly(&[]),
        })
        .collect();
    cases.push(Case {
        text: r"export OPTION_B='\n'",
        environ: &[],
        want: Want::Exactly(&[("OPTION_B", r"\n")]),
    });
    run_table("TestLinesToIgnore", 6, &cases, check);
}

/// compose-go expands `RESULT=<template>` against a map holding these two values; here they
/// are earlier lines of the same file.
const EXPANSION_PRELUDE: &str = "EMPTY_VAR=\nTEST_VAR=\"Test Value\"\n";

#[test]
fn var_expansion_12_cases() {
    // (template, Ok(result) or Err(message))
    let table: [(&str, Result<&str, &str>); 12] = [
        ("${UNSET_VAR:-Default Value}", Ok("Default Value")),
        ("${EMPTY_VAR:-Default Value}", Ok("Default Value")),
        ("${TEST_VAR:-Default Value}", Ok("Test Value")),
        ("${UNSET_VAR-Default Value}", Ok("Default Value")),
        ("${EMPTY_VAR-Default Value}", Ok("")),
        ("${TEST_VAR-Default Value}", Ok("Test Value")),
        (
            "${UNSET_VAR:?Test error}",
            Err("required variable UNSET_VAR is missing a value: Test error"),
        ),
        (
            "${EMPTY_VAR:?Test error}",
            Err("required variable EMPTY_VAR is missing a value: Test error"),
        ),
        ("${TEST_VAR:?Default Value}", Ok("Test Value")),
        (
            "${UNSET_VAR?Test error}",
            Err("required variable UNSET_VAR is missing a value: Test error"),
        ),
        ("${EMPTY_VAR?Test error}", Ok("")),
        ("${TEST_VAR?Default Value}", Ok("Test Value")),
    ];
    run_table(
        "TestExpandIf*/TestErrorIf*",
        12,
        &table,
        |(template, want)| {
            let text = format!("{EXPANSION_PRELUDE}RESULT={template}\n");
            let got = parse(&text, &|_| None);
            let want = match want {
                Ok(v) => Want::Has(Box::leak(Box::new([("RESULT", *v)]))),
                Err(msg) => Want::Error(3, msg),
            };
            compare(&text, got, &want)
        },
    );
}
