//! compose v2's interpolation of a whole file (every string value, with the key path in
//! errors), case by case.
//!
//! Source of the expected values: compose-go `interpolation/interpolation_test.go`
//! (TestInterpolate, TestInvalidInterpolation, TestInterpolateWithDefaults,
//! TestValidUnexistentInterpolation, TestValidExistentInterpolation, TestInterpolateWithCast).

mod common;

use common::{Pairs, env, run_table};
use rcompose_compose::load::interpolate::Interpolator;
use rcompose_compose::load::{LoadOptions, load};
use yaml_serde::Value;

const DEFAULTS: Pairs = &[
    ("USER", "jenny"),
    ("FOO", "bar"),
    ("count", "5"),
    ("REQUIRED", "true"),
];

fn yaml(text: &str) -> Value {
    yaml_serde::from_str(text).unwrap()
}

/// Interpolates `input` (YAML) with `environ`; the result as YAML text, or the error.
fn interpolate(input: &str, environ: Pairs) -> Result<Value, String> {
    let vars = env(environ);
    let mut value = yaml(input);
    let mut interp = Interpolator::new(&vars);
    interp
        .interpolate("compose.yaml", &mut value)
        .map_err(|e| e.to_string())?;
    Ok(value)
}

#[test]
fn interpolate_tree_3_cases() {
    // (input, environment, expected output or an error fragment)
    let table: [(&str, Pairs, Result<&str, &str>); 3] = [
        (
            "servicea:\n  image: example:${USER}\n  volumes: ['$FOO:/target']\n  logging:\n    driver: ${FOO}\n    options:\n      user: $USER\n",
            DEFAULTS,
            Ok(
                "servicea:\n  image: example:jenny\n  volumes: ['bar:/target']\n  logging:\n    driver: bar\n    options:\n      user: jenny\n",
            ),
        ),
        (
            "servicea:\n  image: '${'\n",
            DEFAULTS,
            Err("servicea.image: invalid interpolation format in \"${\""),
        ),
        (
            "networks:\n  foo: thing_${FOO}\n",
            &[("FOO", "BARZ")],
            Ok("networks:\n  foo: thing_BARZ\n"),
        ),
    ];
    run_table(
        "TestInterpolate/TestInvalidInterpolation/TestInterpolateWithDefaults",
        3,
        &table,
        |(input, environ, want)| match (interpolate(input, environ), want) {
            (Ok(got), Ok(want)) if got == yaml(want) => Ok(()),
            (Err(e), Err(fragment)) if e.contains(fragment) => Ok(()),
            (got, _) => Err(format!("{input:?}: got {got:?}")),
        },
    );
}

/// One `myservice.environment.TESTVAR` value: the expected value, or the message of the
/// required-variable error on FOO.
type Row = (&'static str, Result<&'static str, &'static str>);

fn check_testvar(environ: Pairs) -> impl Fn(&Row) -> Result<(), String> {
    move |(template, want)| {
        let input = format!("myservice:\n  environment:\n    TESTVAR: {template:?}\n");
        match (interpolate(&input, environ), want) {
            (Ok(got), Ok(want)) => {
                let value = got["myservice"]["environment"]["TESTVAR"]
                    .as_str()
                    .map(str::to_string);
                match value.as_deref() == Some(*want) {
                    true => Ok(()),
                    false => Err(format!("{template:?}: got {value:?}, want {want:?}")),
                }
            }
            (Err(e), Err(msg)) => {
                let want = format!(
                    "myservice.environment.TESTVAR: required variable FOO is missing a value: {msg}"
                );
                match e.ends_with(&want) {
                    true => Ok(()),
                    false => Err(format!("{template:?}: error {e:?}, want …{want:?}")),
                }
            }
            (got, _) => Err(format!("{template:?}: got {got:?}")),
        }
    }
}

#[test]
fn interpolate_unset_variables_19_cases() {
    let table: [Row; 19] = [
        ("{{{ ${FOO:-foo_} }}}", Ok("{{{ foo_ }}}")),
        ("{{{ ${FOO:-foo-bar-value} }}}", Ok("{{{ foo-bar-value }}}")),
        ("{{{ ${FOO:-foo?bar?value} }}}", Ok("{{{ foo?bar?value }}}")),
        (
            "{{{ ${FOO:-foo:?bar:?value} }}}",
            Ok("{{{ foo:?bar:?value }}}"),
        ),
        (
            "{{{ ${FOO:-foo} ${BAR:-DEFAULT_VALUE} }}}",
            Ok("{{{ foo DEFAULT_VALUE }}}"),
        ),
        ("{{{ ${BAR} }}}", Ok("{{{  }}}")),
        ("${FOO:-baz} }}}", Ok("baz }}}")),
        ("${FOO-baz} }}}", Ok("baz }}}")),
        ("{{{ ${FOO:?foo_} }}}", Err("foo_")),
        ("{{{ ${FOO:?foo-bar-value} }}}", Err("foo-bar-value")),
        ("{{{ ${FOO:?foo} ${BAR:-DEFAULT_VALUE} }}}", Err("foo")),
        ("${FOO:?foo} ${BAR:?bar}", Err("foo")),
        ("{{{ ${BAR} }}}", Ok("{{{  }}}")),
        ("${FOO:?baz} }}}", Err("baz")),
        ("${FOO?baz} }}}", Err("baz")),
        ("${FOO:-${BAR:-${ZOT:-qix}}}", Ok("qix")),
        ("${FOO:-${BAR:-x}_test_${BAR:-y}}", Ok("x_test_y")),
        ("${FOO:-${BAR:-x}_test}", Ok("x_test")),
        ("${FOO:-${BAR:-${ZOT:-x}}_test}", Ok("x_test")),
    ];
    run_table(
        "TestValidUnexistentInterpolation",
        19,
        &table,
        check_testvar(&[]),
    );
}

#[test]
fn interpolate_set_variables_12_cases() {
    let table: [Row; 12] = [
        ("{{{ ${FOO:-foo_} }}}", Ok("{{{ bar }}}")),
        ("{{{ ${FOO:-foo-bar-value} }}}", Ok("{{{ bar }}}")),
        (
            "{{{ ${FOO:-foo} ${BAR:-DEFAULT_VALUE} }}}",
            Ok("{{{ bar DEFAULT_VALUE }}}"),
        ),
        ("{{{ ${BAR} }}}", Ok("{{{  }}}")),
        ("${FOO:-baz} }}}", Ok("bar }}}")),
        ("${FOO-baz} }}}", Ok("bar }}}")),
        ("{{{ ${FOO:-foo_} }}}", Ok("{{{ bar }}}")),
        ("{{{ ${FOO:-foo-bar-value} }}}", Ok("{{{ bar }}}")),
        ("{{{ ${FOO:-foo} ${USER:-bar} }}}", Ok("{{{ bar jenny }}}")),
        ("{{{ ${USER} }}}", Ok("{{{ jenny }}}")),
        ("${FOO:-baz} }}}", Ok("bar }}}")),
        ("${FOO-baz} }}}", Ok("bar }}}")),
    ];
    run_table(
        "TestValidExistentInterpolation",
        12,
        &table,
        check_testvar(DEFAULTS),
    );
}

/// TestInterpolateWithCast: an interpolated `replicas` becomes a number and a boolean field a
/// boolean. compose-go's test casts two made-up keys; here the same values go into real
/// fields of a loaded project.
#[test]
fn interpolate_with_cast_1_case() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("compose.yaml"),
        "services:\n  foo:\n    image: busybox\n    deploy:\n      replicas: $count\n    read_only: $REQUIRED\n",
    )
    .unwrap();
    let opts = LoadOptions {
        working_dir: tmp.path().to_path_buf(),
        environment: env(DEFAULTS),
        ..Default::default()
    };
    let cases = [()];
    run_table("TestInterpolateWithCast", 1, &cases, |_| {
        let loaded = load(&opts).map_err(|e| e.to_string())?;
        let out = rcompose_compose::render::to_yaml(&loaded.project).map_err(|e| e.to_string())?;
        match out.contains("replicas: 5\n") && out.contains("read_only: true\n") {
            true => Ok(()),
            false => Err(format!("replicas/read_only not typed:\n{out}")),
        }
    });
}
