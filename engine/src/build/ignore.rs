//! `.dockerignore`: docker's pattern rules (its `patternmatcher`). One pattern a line, `#`
//! comments, blank lines skipped, paths cleaned and relative to the context root; `*`, `?`
//! and `[…]` within one path element, `**` across any number of them; `!` re-includes. The
//! last matching pattern decides, and a pattern that matches a directory matches everything
//! under it.

use regex::Regex;

#[derive(Debug)]
struct Pattern {
    re: Regex,
    exclusion: bool,
}

/// The compiled `.dockerignore` of one context.
#[derive(Debug, Default)]
pub struct Ignore {
    patterns: Vec<Pattern>,
}

/// Lexically cleans a slash path (Go's `filepath.Clean`) and drops a leading `/`.
pub fn clean(p: &str) -> String {
    let mut out: Vec<&str> = vec![];
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if out.last().is_some_and(|l| *l != "..") {
                    out.pop();
                } else if !p.starts_with('/') {
                    out.push("..");
                }
            }
            c => out.push(c),
        }
    }
    if out.is_empty() {
        ".".into()
    } else {
        out.join("/")
    }
}

pub(crate) fn to_regex(pattern: &str) -> Result<Regex, String> {
    let mut re = String::from("^");
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '*' if chars.get(i + 1) == Some(&'*') => {
                i += 1;
                if chars.get(i + 1) == Some(&'/') {
                    i += 1;
                    re.push_str("(.*/)?");
                } else {
                    re.push_str(".*");
                }
            }
            '*' => re.push_str("[^/]*"),
            '?' => re.push_str("[^/]"),
            '[' => {
                let close = chars[i..].iter().position(|&x| x == ']');
                let Some(close) = close else {
                    return Err(format!("{pattern:?}: unterminated character class"));
                };
                let class: String = chars[i + 1..i + close].iter().collect();
                let class = class
                    .strip_prefix('!')
                    .map_or(class.clone(), |c| format!("^{c}"));
                re.push('[');
                re.push_str(&class.replace('\\', "\\\\"));
                re.push(']');
                i += close;
            }
            '\\' if i + 1 < chars.len() => {
                i += 1;
                re.push_str(&regex::escape(&chars[i].to_string()));
            }
            c => re.push_str(&regex::escape(&c.to_string())),
        }
        i += 1;
    }
    re.push('$');
    Regex::new(&re).map_err(|e| format!("{pattern:?}: {e}"))
}

impl Ignore {
    /// Parses the text of a `.dockerignore`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut patterns = vec![];
        for line in text.lines() {
            let mut p = line.trim();
            if p.is_empty() || p.starts_with('#') {
                continue;
            }
            let exclusion = p.starts_with('!');
            if exclusion {
                p = p[1..].trim();
                if p.is_empty() {
                    return Err("illegal exclusion pattern: \"!\"".into());
                }
            }
            let cleaned = clean(p);
            patterns.push(Pattern {
                re: to_regex(&cleaned)?,
                exclusion,
            });
        }
        Ok(Self { patterns })
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether `rel` (a path relative to the context root) is excluded.
    pub fn excluded(&self, rel: &str) -> bool {
        let rel = clean(rel);
        let parents: Vec<&str> = rel
            .match_indices('/')
            .map(|(i, _)| &rel[..i])
            .chain(std::iter::once(rel.as_str()))
            .collect();
        let mut excluded = false;
        for p in &self.patterns {
            if p.exclusion != excluded {
                continue;
            }
            if parents.iter().any(|x| p.re.is_match(x)) {
                excluded = !p.exclusion;
            }
        }
        excluded
    }

    /// Whether a directory must still be walked because an exclusion pattern may
    /// re-include something below it.
    pub fn has_exclusions(&self) -> bool {
        self.patterns.iter().any(|p| p.exclusion)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_rules() {
        let ig = Ignore::parse(
            "# comment\n*.log\n!keep.log\nnode_modules\n**/*.tmp\n/secret/\ndocs/*.md\n!docs/README.md\n",
        )
        .unwrap();
        assert!(ig.excluded("a.log"));
        assert!(!ig.excluded("keep.log"));
        assert!(!ig.excluded("sub/a.log"), "* does not cross /");
        assert!(
            ig.excluded("node_modules/x/y.js"),
            "a matched dir excludes its content"
        );
        assert!(ig.excluded("a/b/c.tmp") && ig.excluded("c.tmp"));
        assert!(ig.excluded("secret/key"));
        assert!(ig.excluded("docs/a.md") && !ig.excluded("docs/README.md"));
        assert!(!ig.excluded("src/main.rs"));
    }

    #[test]
    fn cleans_paths() {
        assert_eq!(clean("./a//b/../c/"), "a/c");
        assert_eq!(clean("/x"), "x");
        assert_eq!(clean("../x"), "../x");
        assert!(Ignore::parse("!").is_err());
    }
}
