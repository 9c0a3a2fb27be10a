//! compose v2's interpolation of one string, case by case.
//!
//! Source of the expected values: compose-go `template/template_test.go` (TestEscaped,
//! TestSubstituteNoMatch, TestUnescaped, TestInvalid, TestNonBraced, TestNoValueNoDefault,
//! TestValueNoDefault, TestNoValueWithDefault, TestLazyDefaultDoesNotWarn,
//! TestLazyDefaultWarnsWhenUsed, TestLazyRequiredMessageDoesNotWarn, the nine
//! TestEmptyValue*/TestValueWith*/TestPresentValue* functions, TestNonAlphanumericDefault,
//! TestInterpolationExternalInterference, TestDefaultsWithNestedExpansion,
//! TestMandatoryVariableErrors, TestMandatoryVariableErrorsWithNestedExpansion,
//! TestDefaultsForMandatoryVariables, TestPrecedence, TestSubstitutionFunctionChoice,
//! TestNoValueWithCurlyBracesDefault, TestValueWithCurlyBracesDefault, and the default-function
//! cases of TestSubstituteWithReplacementFunc/TestSubstituteWithReplacementAppliedFunc) and
//! `template/variables_test.go` (TestExtractVariables).

mod common;

use std::cell::RefCell;
use std::collections::BTreeMap;

use common::{Pairs, env, run_table};
use rcompose_compose::load::interpolate::{TemplateError, VariableUse, substitute, variables_in};

/// The environment of compose-go's template tables.
const DEFAULTS: Pairs = &[("FOO", "first"), ("BAR", ""), ("JSON", r#"{"json":2}"#)];

/// What substituting one template must give.
#[derive(Clone, Copy)]
enum Want {
    /// This text, and this many "variable is not set" warnings.
    Text(&'static str, usize),
    /// This text (warnings not counted by the source table).
    Same(&'static str),
    /// A template error (compose v2's "Invalid template").
    Invalid,
    /// A missing required variable: its name and the message.
    Required(&'static str, &'static str),
}

struct Case {
    template: &'static str,
    environ: Pairs,
    want: Want,
}

const fn case(template: &'static str, want: &'static str) -> Case {
    Case {
        template,
        environ: DEFAULTS,
        want: Want::Same(want),
    }
}

const fn required(template: &'static str, var: &'static str, msg: &'static str) -> Case {
    Case {
        template,
        environ: DEFAULTS,
        want: Want::Required(var, msg),
    }
}

fn run(
    template: &str,
    environ: &BTreeMap<String, String>,
) -> (Result<String, TemplateError>, usize) {
    let warned = RefCell::new(0);
    let got = substitute(template, &|k| environ.get(k).cloned(), &mut |_| {
        *warned.borrow_mut() += 1
    });
    (got, warned.into_inner())
}

fn check(c: &Case) -> Result<(), String> {
    let (got, warned) = run(c.template, &env(c.environ));
    let t = c.template;
    match (got, c.want) {
        (Ok(text), Want::Same(want)) if text == want => Ok(()),
        (Ok(text), Want::Text(want, n)) if text == want && warned == n => Ok(()),
        (Err(TemplateError::Invalid(_)), Want::Invalid) => Ok(()),
        (Err(TemplateError::Required { var, msg }), Want::Required(v, m))
            if var == v && msg == m =>
        {
            Ok(())
        }
        (got, _) => Err(format!("{t:?}: got {got:?} with {warned} warning(s)")),
    }
}

#[test]
fn template_basics_31_cases() {
    let mut cases = vec![
        // TestEscaped, TestSubstituteNoMatch
        case("$${foo}", "${foo}"),
        case("foo", "foo"),
        // TestUnescaped
        case("a $ string", "a $ string"),
        case("^REGEX$", "^REGEX$"),
        case("$}", "$}"),
        case("$", "$"),
        // TestNonBraced
        case("$FOO-bar", "first-bar"),
        // TestNoValueNoDefault, TestValueNoDefault, TestNoValueWithDefault
        case("This ${missing} var", "This  var"),
        case("This ${BAR} var", "This  var"),
        case("This $FOO var", "This first var"),
        case("This ${FOO} var", "This first var"),
        case("ok ${missing:-def}", "ok def"),
        case("ok ${missing-def}", "ok def"),
        // TestEmptyValueWithSoftDefault … TestNonAlphanumericDefault
        case("ok ${BAR:-def}", "ok def"),
        case("ok ${FOO:-def}", "ok first"),
        case("ok ${BAR-def}", "ok "),
        case("ok ${UNSET_VAR:+presence_value}", "ok "),
        case("ok ${UNSET_VAR+presence_value}", "ok "),
        case("ok ${FOO:+presence_value}", "ok presence_value"),
        case("ok ${FOO+presence_value}", "ok presence_value"),
        case("ok ${BAR+presence_value}", "ok presence_value"),
        case("ok ${BAR:+presence_value}", "ok "),
        case("ok ${BAR:-/non:-alphanumeric}", "ok /non:-alphanumeric"),
        // TestSubstituteWithReplacement(Applied)Func, with the default replacement
        case("ok ${SUBDOMAIN:-redis}.${FOO:?}", "ok redis.first"),
        case("ok ${BAR}", "ok "),
        // TestNoValueWithCurlyBracesDefault, TestValueWithCurlyBracesDefault
        case(r#"ok ${missing:-{"json":1}}"#, r#"ok {"json":1}"#),
        case(r#"ok ${missing-{"json":1}}"#, r#"ok {"json":1}"#),
        case(r#"ok ${JSON:-{"json":1}}"#, r#"ok {"json":2}"#),
        case(r#"ok ${JSON-{"json":1}}"#, r#"ok {"json":2}"#),
    ];
    // TestLazyDefaultDoesNotWarn, TestLazyDefaultWarnsWhenUsed
    cases.push(Case {
        template: "${A:+${A},}B",
        environ: DEFAULTS,
        want: Want::Text("B", 0),
    });
    cases.push(Case {
        template: "${A:-${B}}",
        environ: DEFAULTS,
        want: Want::Text("", 1),
    });
    run_table("template basics", 31, &cases, check);
}

#[test]
fn template_lazy_required_message_1_case() {
    let cases = [Case {
        template: "${A?${B}}",
        environ: &[("A", "value")],
        want: Want::Text("value", 0),
    }];
    run_table("TestLazyRequiredMessageDoesNotWarn", 1, &cases, check);
}

#[test]
fn template_invalid_6_cases() {
    let cases: Vec<Case> = ["${", "${}", "${ }", "${ foo}", "${foo }", "${foo!}"]
        .into_iter()
        .map(|template| Case {
            template,
            environ: DEFAULTS,
            want: Want::Invalid,
        })
        .collect();
    run_table("TestInvalid", 6, &cases, check);
}

#[test]
fn template_external_interference_10_cases() {
    let cases = [
        case("-ok ${BAR:-defaultValue}", "-ok defaultValue"),
        case("+ok ${UNSET:-${BAR-defaultValue}}", "+ok "),
        case("-ok ${FOO:-defaultValue}", "-ok first"),
        case(":-ok ${UNSET-defaultValue}", ":-ok defaultValue"),
        case(":-ok ${BAR-defaultValue}", ":-ok "),
        case(":?ok ${BAR-defaultValue}", ":?ok "),
        case(":?ok ${BAR:-defaultValue}", ":?ok defaultValue"),
        case(":+ok ${BAR:-defaultValue}", ":+ok defaultValue"),
        case("+ok ${BAR-defaultValue}", "+ok "),
        case("?ok ${BAR:-defaultValue}", "?ok defaultValue"),
    ];
    run_table("TestInterpolationExternalInterference", 10, &cases, check);
}

#[test]
fn template_nested_defaults_8_cases() {
    let cases = [
        case("ok ${UNSET_VAR-$FOO}", "ok first"),
        case("ok ${UNSET_VAR-${FOO}}", "ok first"),
        case("ok ${UNSET_VAR-${FOO} ${FOO}}", "ok first first"),
        case("ok ${BAR:-$FOO}", "ok first"),
        case("ok ${BAR:-${FOO}}", "ok first"),
        case("ok ${BAR:-${FOO} ${FOO}}", "ok first first"),
        case("ok ${BAR+$FOO}", "ok first"),
        case("ok ${BAR+$FOO ${FOO:+second}}", "ok first second"),
    ];
    run_table("TestDefaultsWithNestedExpansion", 8, &cases, check);
}

#[test]
fn template_mandatory_15_cases() {
    let cases = [
        // TestMandatoryVariableErrors
        required(
            "not ok ${UNSET_VAR:?Mandatory Variable Unset}",
            "UNSET_VAR",
            "Mandatory Variable Unset",
        ),
        required(
            "not ok ${BAR:?Mandatory Variable Empty}",
            "BAR",
            "Mandatory Variable Empty",
        ),
        required("not ok ${UNSET_VAR:?}", "UNSET_VAR", ""),
        required(
            "not ok ${UNSET_VAR?Mandatory Variable Unset}",
            "UNSET_VAR",
            "Mandatory Variable Unset",
        ),
        required("not ok ${UNSET_VAR?}", "UNSET_VAR", ""),
        // TestMandatoryVariableErrorsWithNestedExpansion
        required(
            "not ok ${UNSET_VAR:?Mandatory Variable ${FOO}}",
            "UNSET_VAR",
            "Mandatory Variable first",
        ),
        required(
            "not ok ${UNSET_VAR?Mandatory Variable ${FOO}}",
            "UNSET_VAR",
            "Mandatory Variable first",
        ),
        // TestDefaultsForMandatoryVariables
        case("ok ${FOO:?err}", "ok first"),
        case("ok ${FOO?err}", "ok first"),
        case("ok ${BAR?err}", "ok "),
        // TestPrecedence
        required("${UNSET_VAR?bar-baz}", "UNSET_VAR", "bar-baz"),
        case("${UNSET_VAR-myerror?msg}", "myerror?msg"),
        case("${FOO?bar-baz}", "first"),
        case(
            "${BAR:-default_value_for_empty_var}",
            "default_value_for_empty_var",
        ),
        case(
            "${UNSET_VAR-default_value_for_unset_var}",
            "default_value_for_unset_var",
        ),
    ];
    run_table(
        "TestMandatory*/TestDefaultsForMandatoryVariables/TestPrecedence",
        15,
        &cases,
        check,
    );
}

/// TestSubstitutionFunctionChoice checks which operator a body like `VARNAME?va-lu+e` uses;
/// here the choice is observed through what `${body}` gives with VARNAME unset, empty and set.
#[test]
fn template_operator_choice_12_cases() {
    let table: [(&str, &str); 12] = [
        ("VARNAME:?val?ue", ":?"),
        ("VARNAME?val:?ue", "?"),
        ("VARNAME?va-lu+e:?e", "?"),
        ("VARNAME?va+lu-e:?e", "?"),
        ("VARNAME:-value", ":-"),
        ("VARNAME-va:-lu:?e", "-"),
        ("VARNAME-va+lu?e", "-"),
        ("VARNAME-va?lu+e", "-"),
        ("VARNAME:+va:?lu:-e", ":+"),
        ("VARNAME+va:+lue", "+"),
        ("VARNAME+va?lu-e", "+"),
        ("VARNAME+va-lu?e", "+"),
    ];
    run_table(
        "TestSubstitutionFunctionChoice",
        12,
        &table,
        |(body, op)| {
            let arg = &body["VARNAME".len() + op.len()..];
            let template = format!("${{{body}}}");
            for (state, environ) in [
                ("unset", env(&[])),
                ("empty", env(&[("VARNAME", "")])),
                ("set", env(&[("VARNAME", "v")])),
            ] {
                let (got, _) = run(&template, &environ);
                let value = environ.get("VARNAME").cloned();
                let is_set = value.is_some();
                let non_empty = value.as_deref().is_some_and(|v| !v.is_empty());
                let value = value.unwrap_or_default();
                let want: Result<String, ()> = match *op {
                    ":?" if non_empty => Ok(value),
                    "?" if is_set => Ok(value),
                    ":?" | "?" => Err(()),
                    ":-" if non_empty => Ok(value),
                    "-" if is_set => Ok(value),
                    ":-" | "-" => Ok(arg.to_string()),
                    ":+" if non_empty => Ok(arg.to_string()),
                    "+" if is_set => Ok(arg.to_string()),
                    _ => Ok(value),
                };
                let agrees = match (&got, &want) {
                    (Ok(g), Ok(w)) => g == w,
                    (Err(TemplateError::Required { var, msg }), Err(())) => {
                        var == "VARNAME" && msg == arg
                    }
                    _ => false,
                };
                if !agrees {
                    return Err(format!(
                        "{template} with VARNAME {state}: got {got:?}, want {want:?}"
                    ));
                }
            }
            Ok(())
        },
    );
}

/// TestExtractVariables: the variables a file uses (`config --variables`). compose-go keys them
/// by name (a later use replaces an earlier one); each row lists the strings of one file and
/// the expected (name, required, default, presence value) per variable.
#[test]
fn template_extract_variables_17_cases() {
    type Var = (&'static str, bool, &'static str, &'static str);
    let table: [(&[&str], &[Var]); 17] = [
        (&[], &[]),
        (&["bar"], &[]),
        (&["$bar"], &[("bar", false, "", "")]),
        (&["$bar_1"], &[("bar_1", false, "", "")]),
        (&["${bar}"], &[("bar", false, "", "")]),
        (&["${bar?:foo}"], &[("bar", true, "", "")]),
        (&["${bar_1?:foo}"], &[("bar_1", true, "", "")]),
        (&["${bar?foo}"], &[("bar", true, "", "")]),
        (&["${bar:-foo}"], &[("bar", false, "foo", "")]),
        (&["${bar-foo}"], &[("bar", false, "foo", "")]),
        (&["${bar_1:-foo}"], &[("bar_1", false, "foo", "")]),
        (&["${bar_1-foo}"], &[("bar_1", false, "foo", "")]),
        (
            &[
                "${bar:-foo}",
                "${fruit:-banana}",
                "vegetable",
                "foo",
                "$docker:${project:-cli}",
                "$toto",
            ],
            &[
                ("bar", false, "foo", ""),
                ("fruit", false, "banana", ""),
                ("toto", false, "", ""),
                ("docker", false, "", ""),
                ("project", false, "cli", ""),
            ],
        ),
        (&["${bar:+foo}"], &[("bar", false, "", "foo")]),
        (&["${bar+foo}"], &[("bar", false, "", "foo")]),
        (
            &["${SUBDOMAIN:-redis}.${ROOTDOMAIN:?}"],
            &[
                ("ROOTDOMAIN", true, "", ""),
                ("SUBDOMAIN", false, "redis", ""),
            ],
        ),
        (
            &["${SUBDOMAIN:-$ROOTDOMAIN}"],
            &[
                ("ROOTDOMAIN", false, "", ""),
                ("SUBDOMAIN", false, "$ROOTDOMAIN", ""),
            ],
        ),
    ];
    run_table("TestExtractVariables", 17, &table, |(strings, want)| {
        let mut uses: Vec<VariableUse> = Vec::new();
        for s in strings.iter() {
            variables_in(s, &mut uses);
        }
        let got: BTreeMap<String, Var> = uses
            .iter()
            .map(|u| {
                let default: &'static str =
                    Box::leak(u.default.clone().unwrap_or_default().into_boxed_str());
                let alternate: &'static str =
                    Box::leak(u.alternate.clone().unwrap_or_default().into_boxed_str());
                let name: &'static str = Box::leak(u.name.clone().into_boxed_str());
                (u.name.clone(), (name, u.required, default, alternate))
            })
            .collect();
        let want: BTreeMap<String, Var> = want.iter().map(|v| (v.0.to_string(), *v)).collect();
        match got == want {
            true => Ok(()),
            false => Err(format!("{strings:?}: got {got:?}, want {want:?}")),
        }
    });
}
