//! docs/tutorial.md, run: every ```console block's `$ ` commands in document order, in one
//! private state root, each output compared with the lines the document shows under it.
//!
//! How the document is read (also said at its top):
//! - a command is the text after `$ `; a line ending in `\` continues it, and a here-document
//!   (`<<'EOF'`) takes the lines up to its end marker;
//! - the lines after a command, up to the next command or the end of the block, are its output
//!   (standard output and standard error together); runs of spaces count as one space;
//! - `<id>`, `<ip>`, `<time>`, `<size>`, `<path>` and `<any>` stand for any text within a line,
//!   and a line `...` for any number of lines;
//! - `cd DIR` and `export NAME=VALUE` carry over to the following commands;
//! - every command must succeed.
//!
//! The document's host ports and the `mynet` subnet are moved to free ones (the table in
//! [`substitutions`]), in the commands and in the outputs alike, so that the test runs next to
//! others. `TUTORIAL_RECORD=FILE` writes every command with its real output to FILE instead of
//! comparing (to refresh the document), and
//! `TUTORIAL_DOC=FILE` runs another file (a part of the tutorial being written).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::compose::Project;

const DOC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/tutorial.md");

/// Stands for any text within a line.
const PLACEHOLDERS: &[&str] = &["<id>", "<ip>", "<time>", "<size>", "<path>", "<any>"];

#[derive(Debug)]
struct Step {
    /// 1-based line of the `$ ` in the document.
    line: usize,
    command: String,
    expected: Vec<String>,
}

/// The here-document end marker a command line opens, if any (`<<'EOF'`, `<<"EOF"`, `<<EOF`).
fn heredoc_marker(line: &str) -> Option<String> {
    let rest = &line[line.find("<<")? + 2..];
    let rest = rest.strip_prefix('-').unwrap_or(rest).trim_start();
    let word: String = rest
        .trim_start_matches(['\'', '"'])
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    (!word.is_empty()).then_some(word)
}

fn parse(doc: &str) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    let mut lines = doc.lines().enumerate();
    let mut in_console = false;
    while let Some((i, line)) = lines.next() {
        if !in_console {
            in_console = line.trim() == "```console";
            continue;
        }
        if line.trim() == "```" {
            in_console = false;
            continue;
        }
        let Some(cmd) = line.strip_prefix("$ ") else {
            let step = steps
                .last_mut()
                .unwrap_or_else(|| panic!("docs/tutorial.md:{}: output before any command", i + 1));
            step.expected.push(line.to_string());
            continue;
        };
        let mut command = cmd.to_string();
        let mut last = cmd.to_string();
        while last.ends_with('\\') {
            let (_, next) = lines.next().expect("a continued command at the end");
            command.push('\n');
            command.push_str(next);
            last = next.to_string();
        }
        if let Some(marker) = heredoc_marker(&command) {
            for (_, next) in lines.by_ref() {
                command.push('\n');
                command.push_str(next);
                if next.trim() == marker {
                    break;
                }
            }
        }
        steps.push(Step {
            line: i + 1,
            command,
            expected: Vec::new(),
        });
    }
    steps
}

/// One line against a pattern line: placeholders match any text, whitespace runs are one space.
fn line_matches(pattern: &str, actual: &str) -> bool {
    let norm = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let (mut pattern, actual) = (norm(pattern), norm(actual));
    for p in PLACEHOLDERS {
        pattern = pattern.replace(p, "\u{0}");
    }
    let parts: Vec<&str> = pattern.split('\u{0}').collect();
    if parts.len() == 1 {
        return pattern == actual;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !actual.starts_with(first) || actual.len() < first.len() + last.len() {
        return false;
    }
    let mut rest = &actual[first.len()..];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(at) => rest = &rest[at + mid.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

/// All lines against the pattern lines; a pattern line `...` takes any number of lines.
fn lines_match(pattern: &[String], actual: &[&str]) -> bool {
    match pattern.split_first() {
        None => actual.is_empty(),
        Some((p, rest)) if p.trim() == "..." => {
            (0..=actual.len()).any(|skip| lines_match(rest, &actual[skip..]))
        }
        Some((p, rest)) => {
            actual.first().is_some_and(|a| line_matches(p, a)) && lines_match(rest, &actual[1..])
        }
    }
}

/// The document's host ports and subnet, and what the test uses instead.
fn substitutions() -> Vec<(String, String)> {
    let mut subs: Vec<(String, String)> = ["3344", "3345", "3355", "3310", "3366"]
        .iter()
        .map(|p| (p.to_string(), common::free_port().to_string()))
        .collect();
    // mynet's 192.168.0.0/16 becomes a /24 of 10.254 (no other test's range: they use
    // 10.200–249) that no host route has taken; its addresses follow.
    let net = free_subnet();
    subs.push(("192.168.0.0/16".into(), format!("{net}.0/24")));
    subs.push(("192.168.0.".into(), format!("{net}.")));
    subs
}

/// `10.254.N`, for an N from the process id whose /24 is not on a host route.
fn free_subnet() -> String {
    let routes = Command::new("ip")
        .args(["-4", "route"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
        .unwrap_or_default();
    let start = std::process::id() as usize;
    (0..250)
        .map(|i| format!("10.254.{}", (start + i) % 250 + 1))
        .find(|n| !routes.contains(&format!("{n}.")))
        .expect("a free /24 in 10.254.0.0/16")
}

/// All substitutions at once: a port put in must not be rewritten by a later entry.
fn substitute(text: &str, subs: &[(String, String)]) -> String {
    let marked = subs
        .iter()
        .enumerate()
        .fold(text.to_string(), |t, (i, (from, _))| {
            t.replace(from, &format!("\u{1}{i}\u{1}"))
        });
    subs.iter().enumerate().fold(marked, |t, (i, (_, to))| {
        t.replace(&format!("\u{1}{i}\u{1}"), to)
    })
}

/// Removes what the tutorial made outside the state root's directory: containers (and so
/// their monitors) and networks (bridges on the host), even when the test failed half-way.
struct Cleanup<'a>(&'a Project);

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        let p = self.0;
        let ids = p.run(&["container", "ps", "-aq", "--no-trunc"]);
        for id in String::from_utf8_lossy(&ids.stdout).split_whitespace() {
            let _ = p.run(&["container", "rm", "-f", id]);
        }
        let nets = p.run(&["network", "ls", "--format", "{{.Name}}"]);
        for n in String::from_utf8_lossy(&nets.stdout).split_whitespace() {
            if !["bridge", "host", "none"].contains(&n) {
                let _ = p.run(&["network", "rm", n]);
            }
        }
    }
}

#[test]
fn tutorial_commands_print_what_the_document_shows() {
    let p = Project::new("tut");
    let _cleanup = Cleanup(&p);
    // The document bootstraps the Debian base with `image bootstrap` in a block it does not
    // run (a minute and a half); the test loads the cached one, or skips without Debian's
    // package archive, which the image builds need too.
    if common::debian::debian_base(&p).is_none() {
        return;
    }
    // The reader has busybox:local and the Debian base only; the fixture's own image goes.
    p.ok(&["image", "rm", common::compose::IMAGE]);
    // The tutorial's working directory: a copy of examples/, which it edits.
    let work = p.tmp.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let copied = Command::new("cp")
        .args(["-a", concat!(env!("CARGO_MANIFEST_DIR"), "/examples")])
        .arg(&work)
        .status()
        .unwrap();
    assert!(copied.success());
    // `rcompose` on PATH is the binary under test.
    let bin_dir = p.tmp.path().join("bin");
    std::fs::create_dir_all(&bin_dir).unwrap();
    std::os::unix::fs::symlink(common::BIN, bin_dir.join("rcompose")).unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );

    // TUTORIAL_DOC runs another file (a part of the tutorial being written).
    let doc_path = std::env::var("TUTORIAL_DOC").unwrap_or_else(|_| DOC.to_string());
    let doc = std::fs::read_to_string(&doc_path).unwrap();
    let subs = [
        ("3344".to_string(), "33445".to_string()),
        ("3345".to_string(), "1".to_string()),
    ];
    assert_eq!(
        substitute("-p 3344:80 -p 3345:80", &subs),
        "-p 33445:80 -p 1:80"
    );
    let steps = parse(&doc);
    assert!(steps.len() > 20, "{doc_path} has few commands");
    let subs = substitutions();
    let record = std::env::var_os("TUTORIAL_RECORD").map(PathBuf::from);
    let mut recorded = String::new();
    let mut cwd = work.clone();
    let mut exported: BTreeMap<String, String> = BTreeMap::new();
    for step in &steps {
        let command = substitute(&step.command, &subs);
        if let Some(dir) = command.strip_prefix("cd ") {
            cwd = cwd.join(dir.trim());
            cwd = cwd
                .canonicalize()
                .unwrap_or_else(|e| panic!("{doc_path}:{}: cd {}: {e}", step.line, cwd.display()));
            continue;
        }
        if let Some((k, v)) = command
            .strip_prefix("export ")
            .and_then(|kv| kv.split_once('='))
        {
            exported.insert(k.trim().to_string(), v.trim().to_string());
            continue;
        }
        let out = run(&p, &path, &cwd, &exported, &command);
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        if record.is_some() {
            recorded.push_str(&format!(
                "line {}: $ {}\n{}--- {:?}\n",
                step.line, step.command, text, out.status
            ));
            continue;
        }
        assert!(
            out.status.success(),
            "{doc_path}:{}: `{command}` failed ({:?}):\n{text}",
            step.line,
            out.status
        );
        let expected: Vec<String> = step.expected.iter().map(|l| substitute(l, &subs)).collect();
        let actual: Vec<&str> = text.lines().collect();
        assert!(
            lines_match(&expected, &actual),
            "{doc_path}:{}: `{command}` printed\n{text}\nbut the document shows\n{}",
            step.line,
            expected.join("\n")
        );
    }
    if let Some(file) = record {
        std::fs::write(file, recorded).unwrap();
    }
}

fn run(
    p: &Project,
    path: &str,
    cwd: &Path,
    exported: &BTreeMap<String, String>,
    command: &str,
) -> std::process::Output {
    Command::new("bash")
        .arg("-c")
        .arg(format!("exec 2>&1\n{command}"))
        .current_dir(cwd)
        .env("PATH", path)
        .env("RCOMPOSE_ROOT", &p.root)
        .env("RCOMPOSE_RUN_ROOT", &p.run_root)
        .env("RCOMPOSE_DNS_UPSTREAM", "none")
        .env("NO_COLOR", "1")
        .envs(exported)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn matching_rules() {
    assert!(line_matches("abc", "abc"));
    assert!(!line_matches("abc", "abcd"));
    assert!(line_matches(
        "<id>   busybox:local  \"sleep 1000\"",
        "0123abcd busybox:local \"sleep 1000\""
    ));
    assert!(line_matches("Up <time>", "Up 2 seconds"));
    assert!(!line_matches("Up <time>", "Exited (0) 2 seconds ago"));
    assert!(line_matches("a <any> b <any> c", "a x b y c"));
    assert!(!line_matches("a <any> b", "a x c"));
    let pat = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert!(lines_match(&pat(&["x", "...", "z"]), &["x", "1", "2", "z"]));
    assert!(lines_match(&pat(&["x", "...", "z"]), &["x", "z"]));
    assert!(!lines_match(&pat(&["x", "...", "z"]), &["x", "1"]));
    assert!(!lines_match(&pat(&["x"]), &["x", "extra"]));
    let subs = [
        ("3344".to_string(), "33445".to_string()),
        ("3345".to_string(), "1".to_string()),
    ];
    assert_eq!(
        substitute("-p 3344:80 -p 3345:80", &subs),
        "-p 33445:80 -p 1:80"
    );
    let steps = parse(
        "text\n```console\n$ echo a \\\n  b\na b\n$ cat <<'EOF' > f\nline\nEOF\n```\n```sh\n$ not run\n```\n",
    );
    assert_eq!(steps.len(), 2);
    assert_eq!(steps[0].command, "echo a \\\n  b");
    assert_eq!(steps[0].expected, vec!["a b"]);
    assert_eq!(steps[1].command, "cat <<'EOF' > f\nline\nEOF");
    assert!(steps[1].expected.is_empty());
}
