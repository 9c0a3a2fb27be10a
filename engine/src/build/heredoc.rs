//! Here-documents that `parse-dockerfile` does not take: the ones after the command in a
//! `RUN` (`RUN cat <<EOF > /f`, `RUN python3 <<EOF`, several on one line), which BuildKit
//! accepts. Before parsing, their bodies are cut out of the text handed to the parser (each
//! body line becomes an empty line, so every later instruction keeps its line number) and
//! kept here by the line of the `RUN`; the converter then gives the shell the command with
//! its bodies and terminators, as BuildKit does, and the shell does the rest (`<<-` tab
//! stripping, quoted delimiters without expansion).
//!
//! Heredocs at the start of the arguments (`RUN <<EOF`, `COPY <<EOF /f`) are left to the
//! parser, which handles them; their bodies are only skipped here, so that a body line is
//! never taken for an instruction.

use std::collections::BTreeMap;

/// The text for the parser and the lifted bodies by 1-based instruction line.
#[derive(Debug, Default)]
pub struct Lifted {
    pub text: String,
    /// Line of the `RUN` → its heredoc bodies with their terminator lines, as written.
    pub bodies: BTreeMap<usize, String>,
}

/// A heredoc opened on an instruction line: its delimiter and whether tabs are stripped
/// from the lines compared with it (`<<-`).
#[derive(Debug, PartialEq)]
struct Open {
    delim: String,
    strip_tabs: bool,
}

/// The words of a shell line, split on blanks outside quotes, quotes kept.
fn words(line: &str) -> Vec<&str> {
    let mut out = vec![];
    let mut start = None;
    let mut quote = None;
    for (i, c) in line.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => {
                quote = Some(c);
                start.get_or_insert(i);
            }
            (None, c) if c.is_whitespace() => {
                if let Some(s) = start.take() {
                    out.push(&line[s..i]);
                }
            }
            (None, _) => {
                start.get_or_insert(i);
            }
        }
    }
    if let Some(s) = start {
        out.push(&line[s..]);
    }
    out
}

/// A word that opens a heredoc (BuildKit's rule: optional fd digits, `<<`, optional `-`, a
/// delimiter without `<`, which may be quoted).
fn heredoc_of(word: &str) -> Option<Open> {
    let rest = word.trim_start_matches(|c: char| c.is_ascii_digit());
    let rest = rest.strip_prefix("<<")?;
    let (strip_tabs, rest) = match rest.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    if rest.is_empty() || rest.contains('<') {
        return None;
    }
    let delim: String = rest.chars().filter(|c| !matches!(c, '\'' | '"')).collect();
    (!delim.is_empty()).then_some(Open { delim, strip_tabs })
}

/// The keyword and the arguments after the `--flags` of an instruction line.
fn split_instruction(line: &str) -> (String, Vec<&str>) {
    let w = words(line);
    let kw = w
        .first()
        .map(|k| k.to_ascii_uppercase())
        .unwrap_or_default();
    let args = w
        .into_iter()
        .skip(1)
        .skip_while(|a| a.starts_with("--"))
        .collect();
    (kw, args)
}

/// Lifts the heredocs `parse-dockerfile` cannot read out of `text`. Errors (a heredoc never
/// terminated) name the line of the instruction.
pub fn lift(text: &str) -> Result<Lifted, (usize, String)> {
    lift_with(text, escape_directive(text))
}

/// The `# escape=` parser directive (a backslash without one): directives are the comment lines
/// at the very top of the file.
fn escape_directive(text: &str) -> char {
    for l in text.lines() {
        let Some(d) = l.trim().strip_prefix('#') else {
            break;
        };
        if let Some((k, v)) = d.split_once('=')
            && k.trim().eq_ignore_ascii_case("escape")
            && let Some(c) = v.trim().chars().next()
        {
            return c;
        }
    }
    '\\'
}

fn lift_with(text: &str, escape: char) -> Result<Lifted, (usize, String)> {
    let lines: Vec<&str> = text.split('\n').collect();
    let mut out: Vec<String> = Vec::with_capacity(lines.len());
    let mut bodies = BTreeMap::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let t = line.trim_start();
        // Parser directives and comments are never instructions.
        if t.is_empty() || t.starts_with('#') {
            out.push(line.to_string());
            i += 1;
            continue;
        }
        // The logical line: continuations followed (comment and empty lines inside skipped).
        let first = i;
        let mut logical = String::new();
        loop {
            let l = lines[i];
            let tt = l.trim();
            if i > first && (tt.is_empty() || tt.starts_with('#')) {
                out.push(l.to_string());
                i += 1;
                if i >= lines.len() {
                    break;
                }
                continue;
            }
            out.push(l.to_string());
            i += 1;
            let trimmed = l.trim_end();
            if trimmed.ends_with(escape) && i < lines.len() {
                logical.push_str(&trimmed[..trimmed.len() - escape.len_utf8()]);
                logical.push(' ');
            } else {
                logical.push_str(l);
                break;
            }
        }
        let (kw, args) = split_instruction(&logical);
        if !matches!(kw.as_str(), "RUN" | "COPY" | "ADD") {
            continue;
        }
        let opens: Vec<Open> = args.iter().filter_map(|w| heredoc_of(w)).collect();
        if opens.is_empty() {
            continue;
        }
        // The parser reads heredocs that start the arguments; any other is ours (RUN only:
        // a COPY/ADD source heredoc is always among the leading arguments).
        let ours = kw == "RUN" && args.first().and_then(|w| heredoc_of(w)).is_none();
        let body_start = i;
        for open in &opens {
            loop {
                let Some(l) = lines.get(i) else {
                    return Err((
                        first + 1,
                        format!(
                            "the heredoc <<{} is never terminated (a line {} is missing)",
                            open.delim, open.delim
                        ),
                    ));
                };
                i += 1;
                let cmp = if open.strip_tabs {
                    l.trim_start_matches('\t')
                } else {
                    l
                };
                if cmp == open.delim {
                    break;
                }
            }
        }
        if ours {
            bodies.insert(first + 1, lines[body_start..i].join("\n"));
            out.extend(std::iter::repeat_n(String::new(), i - body_start));
        } else {
            out.extend(lines[body_start..i].iter().map(|l| l.to_string()));
        }
    }
    Ok(Lifted {
        text: out.join("\n"),
        bodies,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_and_heredoc_openers() {
        assert_eq!(
            words(r#"RUN cat <<"EOF" > "/a b" 'x y'"#),
            ["RUN", "cat", "<<\"EOF\"", ">", "\"/a b\"", "'x y'"]
        );
        let o = |d: &str, s| {
            Some(Open {
                delim: d.into(),
                strip_tabs: s,
            })
        };
        assert_eq!(heredoc_of("<<EOF"), o("EOF", false));
        assert_eq!(heredoc_of("<<-'END'"), o("END", true));
        assert_eq!(heredoc_of("3<<X"), o("X", false));
        assert_eq!(heredoc_of("cat<<EOF"), None);
        assert_eq!(heredoc_of("$((1<<2))"), None);
        assert_eq!(heredoc_of("<<<word"), None);
        assert_eq!(heredoc_of("<<"), None);
    }

    #[test]
    fn run_heredocs_after_the_command_are_lifted_with_lines_kept() {
        let text = "FROM scratch\nRUN cat <<A > /a && cat <<-B > /b\naa\nA\n\tbb\n\tB\nRUN <<EOF\necho kept\nEOF\nUSER 1";
        let l = lift(text).unwrap();
        assert_eq!(l.bodies.len(), 1);
        assert_eq!(l.bodies[&2], "aa\nA\n\tbb\n\tB");
        assert_eq!(
            l.text,
            "FROM scratch\nRUN cat <<A > /a && cat <<-B > /b\n\n\n\n\nRUN <<EOF\necho kept\nEOF\nUSER 1"
        );
        assert_eq!(l.text.lines().count(), text.lines().count());
    }

    #[test]
    fn quoted_or_continued_lines() {
        // `<<` inside quotes is no heredoc; a continued RUN line is one instruction.
        let l = lift_with("RUN echo '<<EOF'\nRUN x \\\n  && cat <<E\nbody\nE\n", '\\').unwrap();
        assert_eq!(l.bodies.len(), 1);
        assert_eq!(l.bodies[&2], "body\nE");
        // A body line that looks like an instruction is never taken for one.
        let l = lift("COPY <<EOF /f\nRUN cat <<X\nEOF\n").unwrap();
        assert!(l.bodies.is_empty());
    }

    #[test]
    fn the_escape_directive_changes_continuations() {
        let l = lift("# escape=`\nFROM scratch\nRUN a `\n  && cat <<E\nbody\nE\n").unwrap();
        assert_eq!(l.bodies[&3], "body\nE");
    }

    #[test]
    fn an_unterminated_heredoc_names_its_line() {
        let e = lift("FROM scratch\n\nRUN cat <<EOF > /f\nhello\n").unwrap_err();
        assert_eq!(e.0, 3);
        assert!(e.1.contains("<<EOF is never terminated"), "{}", e.1);
    }
}
