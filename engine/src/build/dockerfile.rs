//! A Dockerfile as the builder uses it: the `parse-dockerfile` syntax tree (parser directives,
//! line continuations, heredocs, exec and shell forms, spans) turned into owned instructions
//! that carry their line number, their flags checked against what each instruction accepts.
//! Variable expansion happens later, per step, in `expand`.

use parse_dockerfile as pd;

use super::BuildError;

/// An instruction's command: exec form (JSON array) or shell form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cmd {
    Exec(Vec<String>),
    Shell(String),
}

/// A `COPY`/`ADD` source: a path (or URL) or an inline here-document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Src {
    Path(String),
    HereDoc { body: String, expand: bool },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Instr {
    From {
        image: String,
        name: Option<String>,
    },
    Run {
        cmd: Cmd,
        /// A `RUN <<EOF` whose heredoc is the whole script.
        script: Option<String>,
    },
    Copy {
        add: bool,
        srcs: Vec<Src>,
        dest: String,
    },
    Workdir(String),
    Env(String),
    Arg(String),
    Label(String),
    Maintainer(String),
    Expose(Vec<String>),
    Volume(Vec<String>),
    User(String),
    Cmd(Cmd),
    Entrypoint(Cmd),
    Shell(Vec<String>),
    Stopsignal(String),
    /// `None` is `HEALTHCHECK NONE`.
    Healthcheck(Option<Cmd>),
    /// The trigger's source text (`ONBUILD <text>`).
    Onbuild(String),
}

/// One instruction with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// 1-based line of the instruction keyword.
    pub line: usize,
    /// The instruction as written, continuations joined (for history and messages).
    pub text: String,
    /// `--name[=value]` flags, in order.
    pub flags: Vec<(String, Option<String>)>,
    pub instr: Instr,
}

impl Step {
    pub fn flag(&self, name: &str) -> Option<&str> {
        self.flags
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_deref().unwrap_or("true"))
    }
    pub fn flags_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.flags
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_deref().unwrap_or(""))
    }
    /// The instruction keyword (`RUN`, `COPY`, …).
    pub fn keyword(&self) -> &str {
        self.text.split_whitespace().next().unwrap_or_default()
    }
}

#[derive(Debug, Clone)]
pub struct Stage {
    pub index: usize,
    pub name: Option<String>,
    pub from: Step,
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone)]
pub struct Dockerfile {
    /// `# syntax=` (noted; the builder is always this one).
    pub syntax: Option<String>,
    pub escape: char,
    /// `ARG`s before the first `FROM`.
    pub global_args: Vec<Step>,
    pub stages: Vec<Stage>,
}

impl Dockerfile {
    /// A stage by name (case-insensitive, as docker) or by index.
    pub fn stage(&self, key: &str) -> Option<&Stage> {
        self.stages
            .iter()
            .find(|s| {
                s.name
                    .as_deref()
                    .is_some_and(|n| n.eq_ignore_ascii_case(key))
            })
            .or_else(|| key.parse::<usize>().ok().and_then(|i| self.stages.get(i)))
    }
}

/// Flags each instruction accepts (docker's, buildkit's).
fn allowed_flags(keyword: &str) -> &'static [&'static str] {
    match keyword {
        "FROM" => &["platform"],
        "RUN" => &["network", "mount", "security"],
        "COPY" => &["from", "chown", "chmod", "link", "parents", "exclude"],
        "ADD" => &[
            "chown",
            "chmod",
            "link",
            "checksum",
            "keep-git-dir",
            "exclude",
        ],
        "HEALTHCHECK" => &[
            "interval",
            "timeout",
            "start-period",
            "start-interval",
            "retries",
        ],
        _ => &[],
    }
}

/// Parses `text` (the Dockerfile at `name`, for messages).
pub fn parse(text: &str, name: &str) -> Result<Dockerfile, BuildError> {
    let lifted = super::heredoc::lift(text).map_err(|(line, message)| BuildError::Parse {
        file: name.to_string(),
        line,
        message,
    })?;
    let text = lifted.text.as_str();
    let df = pd::parse(text).map_err(|e| BuildError::Parse {
        file: name.to_string(),
        line: e.line(),
        message: format!("{e:#}"),
    })?;
    let escape = df
        .parser_directives
        .escape
        .as_ref()
        .map(|d| d.value.value)
        .unwrap_or('\\');
    let syntax = df
        .parser_directives
        .syntax
        .as_ref()
        .map(|d| d.value.value.to_string());
    let mut global_args = vec![];
    let mut stages: Vec<Stage> = vec![];
    for ins in &df.instructions {
        let step = convert(text, ins, escape, name, &lifted.bodies)?;
        match (&step.instr, stages.last_mut()) {
            (Instr::From { name: n, .. }, _) => stages.push(Stage {
                index: stages.len(),
                name: n.clone(),
                from: step,
                steps: vec![],
            }),
            (_, Some(stage)) => stage.steps.push(step),
            (_, None) => global_args.push(step),
        }
    }
    Ok(Dockerfile {
        syntax,
        escape,
        global_args,
        stages,
    })
}

/// Parses an `ONBUILD` trigger's text as one instruction (at `line` of the base image's
/// Dockerfile, which we do not have: the line is the child's `FROM`).
pub fn parse_trigger(trigger: &str, line: usize, name: &str) -> Result<Step, BuildError> {
    let text = format!("FROM scratch\n{trigger}\n");
    let df = parse(&text, name).map_err(|e| match e {
        BuildError::Parse { message, .. } => BuildError::Parse {
            file: name.to_string(),
            line,
            message: format!("ONBUILD trigger {trigger:?} of the base image: {message}"),
        },
        e => e,
    })?;
    let mut step = df.stages[0]
        .steps
        .first()
        .cloned()
        .ok_or(BuildError::Parse {
            file: name.to_string(),
            line,
            message: format!("empty ONBUILD trigger {trigger:?}"),
        })?;
    step.line = line;
    Ok(step)
}

fn line_of(text: &str, pos: usize) -> usize {
    text.as_bytes()[..pos.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Removes line continuations (escape, optional blanks, newline) and the comment lines
/// between continued lines, as docker does for shell-form text.
pub fn join_continuations(raw: &str, escape: char) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut lines = raw.split('\n').peekable();
    while let Some(line) = lines.next() {
        let trimmed = line.trim_end();
        if lines.peek().is_some() && trimmed.ends_with(escape) {
            out.push_str(&trimmed[..trimmed.len() - escape.len_utf8()]);
            // Comment and empty lines inside a continued instruction are dropped.
            while let Some(next) = lines.peek() {
                let t = next.trim_start();
                if t.starts_with('#') || t.is_empty() {
                    lines.next();
                } else {
                    break;
                }
            }
        } else {
            out.push_str(line);
            if lines.peek().is_some() {
                out.push('\n');
            }
        }
    }
    out
}

fn cmd(c: &pd::Command<'_>, escape: char) -> Cmd {
    match c {
        pd::Command::Exec(v) => Cmd::Exec(v.value.iter().map(|s| s.value.to_string()).collect()),
        pd::Command::Shell(s) => Cmd::Shell(join_continuations(s.value, escape).trim().to_string()),
        _ => Cmd::Exec(vec![]),
    }
}

fn strings<const N: usize>(a: &pd::JsonOrStringArray<'_, N>) -> Vec<String> {
    match a {
        pd::JsonOrStringArray::Json(v) => v.value.iter().map(|s| s.value.to_string()).collect(),
        pd::JsonOrStringArray::String(v) => v.iter().map(|s| s.value.to_string()).collect(),
    }
}

fn convert(
    text: &str,
    ins: &pd::Instruction<'_>,
    escape: char,
    name: &str,
    bodies: &std::collections::BTreeMap<usize, String>,
) -> Result<Step, BuildError> {
    use pd::Instruction as I;
    let (kw, flags): (&pd::Keyword, &[pd::Flag<'_>]) = match ins {
        I::Add(i) => (&i.add, &i.options),
        I::Arg(i) => (&i.arg, &[]),
        I::Cmd(i) => (&i.cmd, &[]),
        I::Copy(i) => (&i.copy, &i.options),
        I::Entrypoint(i) => (&i.entrypoint, &[]),
        I::Env(i) => (&i.env, &[]),
        I::Expose(i) => (&i.expose, &[]),
        I::From(i) => (&i.from, &i.options),
        I::Healthcheck(i) => (&i.healthcheck, &i.options),
        I::Label(i) => (&i.label, &[]),
        I::Maintainer(i) => (&i.maintainer, &[]),
        I::Onbuild(i) => (&i.onbuild, &[]),
        I::Run(i) => (&i.run, &i.options),
        I::Shell(i) => (&i.shell, &[]),
        I::Stopsignal(i) => (&i.stopsignal, &[]),
        I::User(i) => (&i.user, &[]),
        I::Volume(i) => (&i.volume, &[]),
        I::Workdir(i) => (&i.workdir, &[]),
        _ => {
            return Err(BuildError::Parse {
                file: name.into(),
                line: 0,
                message: "unsupported instruction".into(),
            });
        }
    };
    let line = line_of(text, kw.span.start);
    let keyword = text[kw.span.clone()].to_ascii_uppercase();
    let allowed = allowed_flags(&keyword);
    let mut fl = vec![];
    for f in flags {
        let n = f.name.value.to_string();
        if !allowed.contains(&n.as_str()) {
            return Err(BuildError::Parse {
                file: name.into(),
                line: line_of(text, f.flag_span().start),
                message: format!("unknown flag --{n} for {keyword}"),
            });
        }
        fl.push((n, f.value.as_ref().map(|v| v.value.to_string())));
    }
    // The instruction's source: from the keyword to the end of the logical line (heredoc
    // bodies excluded), continuations joined.
    let end = logical_end(text, kw.span.start, escape);
    let src = join_continuations(&text[kw.span.start..end], escape)
        .trim()
        .to_string();
    let instr = match ins {
        I::From(i) => Instr::From {
            image: i.image.value.to_string(),
            name: i.as_.as_ref().map(|(_, n)| n.value.to_string()),
        },
        I::Run(i) => match (cmd(&i.arguments, escape), i.here_docs.last()) {
            // `RUN cmd <<EOF …`: the command, its heredoc bodies and terminators go to the
            // shell whole (lifted out of the text before parsing, see `heredoc`).
            (Cmd::Shell(s), _) if bodies.contains_key(&line) => Instr::Run {
                cmd: Cmd::Shell(format!("{s}\n{}", bodies[&line])),
                script: None,
            },
            // `RUN <<EOF` alone: the heredoc is the script.
            (Cmd::Shell(s), Some(doc)) if s.is_empty() && i.here_docs.len() == 1 => Instr::Run {
                cmd: Cmd::Shell(String::new()),
                script: Some(doc.value.to_string()),
            },
            // `RUN <<EOF cmd …`: the shell sees the heredocs and their delimiters.
            (Cmd::Shell(_), Some(last)) => {
                let from = i.options.last().map_or(kw.span.end, |f| f.span().end);
                let to = text[last.span.end..]
                    .find('\n')
                    .map_or(text.len(), |n| last.span.end + n);
                Instr::Run {
                    cmd: Cmd::Shell(text[from..to].trim().to_string()),
                    script: None,
                }
            }
            (c, _) => Instr::Run {
                cmd: c,
                script: None,
            },
        },
        I::Copy(i) => Instr::Copy {
            add: false,
            srcs: i.src.iter().map(src_of).collect(),
            dest: i.dest.value.to_string(),
        },
        I::Add(i) => Instr::Copy {
            add: true,
            srcs: i.src.iter().map(src_of).collect(),
            dest: i.dest.value.to_string(),
        },
        I::Workdir(i) => Instr::Workdir(i.arguments.value.to_string()),
        I::Env(i) => Instr::Env(i.arguments.value.to_string()),
        I::Arg(i) => Instr::Arg(i.arguments.value.to_string()),
        I::Label(i) => Instr::Label(i.arguments.value.to_string()),
        I::Maintainer(i) => Instr::Maintainer(i.name.value.to_string()),
        I::Expose(i) => Instr::Expose(i.arguments.iter().map(|s| s.value.to_string()).collect()),
        I::Volume(i) => Instr::Volume(strings(&i.arguments)),
        I::User(i) => Instr::User(i.arguments.value.to_string()),
        I::Cmd(i) => Instr::Cmd(cmd(&i.arguments, escape)),
        I::Entrypoint(i) => Instr::Entrypoint(cmd(&i.arguments, escape)),
        I::Shell(i) => Instr::Shell(i.arguments.iter().map(|s| s.value.to_string()).collect()),
        I::Stopsignal(i) => Instr::Stopsignal(i.arguments.value.to_string()),
        I::Healthcheck(i) => Instr::Healthcheck(match &i.arguments {
            pd::HealthcheckArguments::Cmd { arguments, .. } => Some(cmd(arguments, escape)),
            _ => None,
        }),
        I::Onbuild(i) => {
            let inner = src
                .split_once(char::is_whitespace)
                .map(|(_, t)| t.trim().to_string())
                .unwrap_or_default();
            let _ = &i.instruction;
            Instr::Onbuild(inner)
        }
        _ => unreachable!("filtered above"),
    };
    Ok(Step {
        line,
        text: src,
        flags: fl,
        instr,
    })
}

/// The end of the logical line starting at `start` (continuations followed, comment and
/// empty lines inside a continued instruction skipped).
fn logical_end(text: &str, start: usize, escape: char) -> usize {
    let mut pos = start;
    let mut continued = false;
    loop {
        let rest = &text[pos..];
        let Some(nl) = rest.find('\n') else {
            return text.len();
        };
        let line = &rest[..nl];
        let t = line.trim();
        let skip = continued && (t.is_empty() || t.starts_with('#'));
        if skip || line.trim_end().ends_with(escape) {
            continued = true;
            pos += nl + 1;
        } else {
            return pos + nl;
        }
    }
}

fn src_of(s: &pd::Source<'_>) -> Src {
    match s {
        pd::Source::Path(p) => Src::Path(p.value.to_string()),
        pd::Source::HereDoc(d) => Src::HereDoc {
            body: d.value.to_string(),
            expand: d.expand,
        },
        _ => Src::Path(String::new()),
    }
}
