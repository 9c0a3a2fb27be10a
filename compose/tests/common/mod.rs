//! Helpers shared by the `conformance_*` tests: each runs one of compose-go's test tables
//! (the expected values are theirs, the code and wording ours) and checks how many cases it
//! holds, so the count in the test's name is the count that runs.

#![allow(dead_code)]

use std::collections::BTreeMap;

/// A fixed environment for a table: `(name, value)` pairs.
pub type Pairs = &'static [(&'static str, &'static str)];

pub fn env(pairs: Pairs) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Runs every case of one table, then fails once listing every case that disagrees.
pub fn run_table<C>(
    table: &str,
    expected_cases: usize,
    cases: &[C],
    check: impl Fn(&C) -> Result<(), String>,
) {
    assert_eq!(
        cases.len(),
        expected_cases,
        "{table}: the test name promises {expected_cases} cases"
    );
    let failures: Vec<String> = cases
        .iter()
        .enumerate()
        .filter_map(|(i, c)| {
            check(c)
                .err()
                .map(|e| format!("{table} case {}: {e}", i + 1))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} case(s) disagree:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
