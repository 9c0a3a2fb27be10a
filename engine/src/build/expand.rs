//! Docker's variable expansion for Dockerfile instructions (its `shell_parser.go`):
//! `$VAR`, `${VAR}`, `${VAR:-word}`, `${VAR-word}`, `${VAR:+word}`, `${VAR+word}`,
//! `${VAR:?msg}`, `${VAR?msg}`; single quotes are literal, double quotes expand, the escape
//! character makes the next character literal; quotes are removed. Words split on unquoted
//! blanks, including blanks that come out of an unquoted expansion (as docker).

use std::collections::BTreeMap;

/// The variables visible to an instruction (ARGs with a value, then ENV on top).
pub type Vars = BTreeMap<String, String>;

/// A failed expansion (`${VAR:?msg}` with VAR unset, an unterminated `${`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpandError(pub String);

struct Lexer<'a> {
    chars: Vec<char>,
    pos: usize,
    escape: char,
    vars: &'a Vars,
}

#[derive(Default)]
struct Words {
    words: Vec<String>,
    cur: String,
    in_word: bool,
}

impl Words {
    fn push_char(&mut self, c: char) {
        if c.is_whitespace() {
            self.end();
        } else {
            self.cur.push(c);
            self.in_word = true;
        }
    }
    /// An unquoted expansion: its blanks split words.
    fn push_split(&mut self, s: &str) {
        for c in s.chars() {
            self.push_char(c);
        }
    }
    /// A quoted piece: one word part, even when empty (`""` is a word).
    fn push_raw(&mut self, s: &str) {
        self.cur.push_str(s);
        self.in_word = true;
    }
    fn end(&mut self) {
        if self.in_word {
            self.words.push(std::mem::take(&mut self.cur));
            self.in_word = false;
        }
    }
}

impl Lexer<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }
    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        self.pos += usize::from(c.is_some());
        c
    }

    /// Processes until `stop` (not consumed … consumed by the caller) or the end.
    fn process(&mut self, stop: Option<char>) -> Result<(String, Words), ExpandError> {
        let mut out = String::new();
        let mut words = Words::default();
        while let Some(c) = self.peek() {
            if Some(c) == stop {
                break;
            }
            match c {
                '\'' => {
                    let s = self.single_quoted()?;
                    out.push_str(&s);
                    words.push_raw(&s);
                }
                '"' => {
                    let s = self.double_quoted()?;
                    out.push_str(&s);
                    words.push_raw(&s);
                }
                '$' => {
                    let s = self.dollar()?;
                    out.push_str(&s);
                    words.push_split(&s);
                }
                c if c == self.escape => {
                    self.next();
                    match self.next() {
                        Some(n) => {
                            out.push(n);
                            words.push_raw(&n.to_string());
                        }
                        None => {
                            out.push(c);
                            words.push_raw(&c.to_string());
                        }
                    }
                }
                c => {
                    self.next();
                    out.push(c);
                    words.push_char(c);
                }
            }
        }
        words.end();
        Ok((out, words))
    }

    fn single_quoted(&mut self) -> Result<String, ExpandError> {
        self.next();
        let mut s = String::new();
        loop {
            match self.next() {
                Some('\'') => return Ok(s),
                Some(c) => s.push(c),
                None => return Err(ExpandError("unexpected end of text: missing '".into())),
            }
        }
    }

    fn double_quoted(&mut self) -> Result<String, ExpandError> {
        self.next();
        let mut s = String::new();
        loop {
            match self.peek() {
                None => return Err(ExpandError("unexpected end of text: missing \"".into())),
                Some('"') => {
                    self.next();
                    return Ok(s);
                }
                Some('$') => s.push_str(&self.dollar()?),
                Some(c) if c == self.escape => {
                    self.next();
                    match self.peek() {
                        Some(n) if n == '"' || n == '$' || n == self.escape => {
                            self.next();
                            s.push(n);
                        }
                        _ => s.push(c),
                    }
                }
                Some(c) => {
                    self.next();
                    s.push(c);
                }
            }
        }
    }

    fn name(&mut self) -> String {
        let mut n = String::new();
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || c == '_' {
                n.push(c);
                self.next();
            } else {
                break;
            }
        }
        n
    }

    fn dollar(&mut self) -> Result<String, ExpandError> {
        self.next();
        match self.peek() {
            Some('{') => {}
            Some(c) if c.is_ascii_alphanumeric() || c == '_' => {
                let n = self.name();
                return Ok(self.vars.get(&n).cloned().unwrap_or_default());
            }
            _ => return Ok("$".into()),
        }
        self.next();
        let n = self.name();
        if n.is_empty() {
            return Err(ExpandError(
                "bad substitution: missing variable name after ${".into(),
            ));
        }
        let value = self.vars.get(&n);
        let c = self.next();
        match c {
            Some('}') => Ok(value.cloned().unwrap_or_default()),
            Some(':') | Some('-') | Some('+') | Some('?') => {
                let colon = c == Some(':');
                let op = if colon { self.next() } else { c };
                let (word, _) = self.process(Some('}'))?;
                if self.next() != Some('}') {
                    return Err(ExpandError(format!(
                        "bad substitution: missing }} in ${{{n}"
                    )));
                }
                // With ':', an empty value counts as unset.
                let set = match value {
                    Some(v) => !(colon && v.is_empty()),
                    None => false,
                };
                match op {
                    Some('-') => Ok(if set {
                        value.cloned().unwrap_or_default()
                    } else {
                        word
                    }),
                    Some('+') => Ok(if set { word } else { String::new() }),
                    Some('?') if set => Ok(value.cloned().unwrap_or_default()),
                    Some('?') => Err(ExpandError(if word.is_empty() {
                        format!("{n}: is not allowed to be unset")
                    } else {
                        format!("{n}: {word}")
                    })),
                    _ => Err(ExpandError(format!(
                        "unsupported modifier in ${{{n}{}…}}",
                        if colon { ":" } else { "" }
                    ))),
                }
            }
            _ => Err(ExpandError(format!(
                "bad substitution: missing }} in ${{{n}"
            ))),
        }
    }
}

/// Expands one word: quotes removed, no splitting.
pub fn word(text: &str, vars: &Vars, escape: char) -> Result<String, ExpandError> {
    let mut l = Lexer {
        chars: text.chars().collect(),
        pos: 0,
        escape,
        vars,
    };
    l.process(None).map(|(s, _)| s)
}

/// Expands and splits into words (for `EXPOSE`, `VOLUME` strings, `COPY` sources).
pub fn words(text: &str, vars: &Vars, escape: char) -> Result<Vec<String>, ExpandError> {
    let mut l = Lexer {
        chars: text.chars().collect(),
        pos: 0,
        escape,
        vars,
    };
    l.process(None).map(|(_, w)| w.words)
}

/// Splits `text` into raw words on unquoted blanks, keeping quotes and escapes (docker's
/// first pass over `ENV`, `LABEL` and `ARG`).
pub fn raw_words(text: &str, escape: char) -> Vec<String> {
    let mut out = vec![];
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, c) if c.is_whitespace() => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            (None, '\'' | '"') => {
                quote = Some(c);
                cur.push(c);
            }
            (Some(q), c) if c == q => {
                quote = None;
                cur.push(c);
            }
            (q, c) if c == escape && q != Some('\'') => {
                cur.push(c);
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            (_, c) => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// `ENV`/`LABEL`/`ARG` arguments as `(key, value)` pairs, values expanded: `k=v k2="a b"`,
/// or the legacy `ENV k some value` (one pair, the rest of the line as the value).
/// `ARG name` without `=` gives `(name, None)`.
pub fn key_values(
    text: &str,
    vars: &Vars,
    escape: char,
    legacy: bool,
) -> Result<Vec<(String, Option<String>)>, ExpandError> {
    let raw = raw_words(text, escape);
    if legacy && raw.first().is_some_and(|w| !w.contains('=')) {
        let t = text.trim_start();
        let (k, rest) = t.split_once(char::is_whitespace).unwrap_or((t, ""));
        if rest.trim().is_empty() {
            return Err(ExpandError(format!("{k}: missing a value (use {k}=value)")));
        }
        return Ok(vec![(
            k.to_string(),
            Some(word(rest.trim(), vars, escape)?),
        )]);
    }
    raw.iter()
        .map(|w| match w.split_once('=') {
            Some((k, v)) => Ok((word(k, vars, escape)?, Some(word(v, vars, escape)?))),
            None => Ok((word(w, vars, escape)?, None)),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vars {
        [("A", "1"), ("E", ""), ("S", "x y")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn expands_docker_forms() {
        let v = vars();
        let w = |s| word(s, &v, '\\').unwrap();
        assert_eq!(w("$A ${A}"), "1 1");
        assert_eq!(w("${B:-dflt} ${E:-dflt} ${E-dflt}"), "dflt dflt ");
        assert_eq!(w("${A:+set} ${E:+set} ${E+set} ${B+set}"), "set  set ");
        assert_eq!(w("${B:-${A}x}"), "1x");
        assert_eq!(w("'$A' \"$A\" \\$A"), "$A 1 $A");
        assert_eq!(w("a$"), "a$");
        assert_eq!(w("\"a\\\"b\\n\""), "a\"b\\n");
        assert!(
            word("${B:?must be set}", &v, '\\')
                .unwrap_err()
                .0
                .contains("must be set")
        );
        assert!(word("${A", &v, '\\').is_err());
        assert_eq!(word("`$A", &v, '`').unwrap(), "$A");
    }

    #[test]
    fn splits_words_like_docker() {
        let v = vars();
        assert_eq!(
            words("a $S \"$S\" ''", &v, '\\').unwrap(),
            ["a", "x", "y", "x y", ""]
        );
        assert_eq!(
            words("  80/tcp   443 ", &v, '\\').unwrap(),
            ["80/tcp", "443"]
        );
    }

    #[test]
    fn key_values_new_and_legacy_forms() {
        let v = vars();
        let kv = key_values("X=$A Y=\"a b\" Z", &v, '\\', false).unwrap();
        assert_eq!(
            kv,
            [
                ("X".into(), Some("1".into())),
                ("Y".into(), Some("a b".into())),
                ("Z".into(), None)
            ]
        );
        let kv = key_values("PATH /a b $A", &v, '\\', true).unwrap();
        assert_eq!(kv, [("PATH".into(), Some("/a b 1".into()))]);
        assert!(key_values("K", &v, '\\', true).is_err());
    }
}
