//! `image build --progress auto|plain|tty`: the builder's events as docker's plain lines
//! (`#3 [stage] RUN …`, `#3 <output>`, `#3 CACHED`, `#3 DONE 0.4s`), or on a terminal as a
//! live display: finished steps stay as one line each with their time or `CACHED`, the
//! running step shows a spinner, its elapsed time and its last output lines, which go away
//! when it ends (a failing step's output is in the error). `auto` is `tty` when stderr is
//! a terminal. What each event means is worked out in [`Steps`], apart from the drawing.

use std::collections::VecDeque;
use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::bail;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use rcompose_engine::build::BuildEvent;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    Quiet,
    Plain,
    Tty,
}

impl Mode {
    /// The mode for `--progress` (docker's `BUILDKIT_PROGRESS` when the flag is not given).
    pub fn pick(flag: Option<&str>, quiet: bool, stderr_tty: bool) -> anyhow::Result<Mode> {
        let env = std::env::var("BUILDKIT_PROGRESS").ok();
        let want = flag.or(env.as_deref()).unwrap_or("auto");
        let mode = match want {
            "auto" if stderr_tty => Mode::Tty,
            "auto" | "plain" => Mode::Plain,
            "tty" => Mode::Tty,
            other => bail!("--progress {other:?}: use auto, plain or tty"),
        };
        Ok(if quiet { Mode::Quiet } else { mode })
    }
}

/// Output lines of the running step shown on a terminal.
const TAIL: usize = 5;

struct Current {
    n: usize,
    title: String,
    started: Instant,
    cached: bool,
    /// RUN, COPY and ADD end with `DONE <time>` in plain mode (docker's vertices).
    timed: bool,
    tail: VecDeque<String>,
}

/// The steps seen so far and the running one.
#[derive(Default)]
pub struct Steps {
    n: usize,
    cur: Option<Current>,
}

/// What an event changes on the screen.
#[derive(Debug, Default, PartialEq)]
pub struct Change {
    /// Lines printed for good.
    pub lines: Vec<String>,
    /// A new step started (its title), on a terminal.
    pub started: Option<String>,
    /// The running step's output lines changed (on a terminal).
    pub tail: bool,
}

fn secs(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

impl Steps {
    /// The line that stays for the step that just ended, if one was running.
    fn end(&mut self, now: Instant, tty: bool) -> Option<String> {
        let c = self.cur.take()?;
        let took = secs(now.saturating_duration_since(c.started));
        match (tty, c.cached) {
            (true, true) => Some(format!("{}  CACHED", c.title)),
            (true, false) => Some(format!("{}  {took}", c.title)),
            (false, false) if c.timed => Some(format!("#{} DONE {took}", c.n)),
            (false, _) => None,
        }
    }

    pub fn event(&mut self, e: BuildEvent, now: Instant, tty: bool) -> Change {
        let mut ch = Change::default();
        match e {
            BuildEvent::Step { stage, line, text } => {
                ch.lines.extend(self.end(now, tty));
                self.n += 1;
                let keyword = text.split_whitespace().next().unwrap_or_default();
                let title = format!("#{} [{stage}] {text}", self.n);
                if tty {
                    ch.started = Some(title.clone());
                } else {
                    ch.lines.push(format!("{title}  (line {line})"));
                }
                self.cur = Some(Current {
                    n: self.n,
                    title,
                    started: now,
                    cached: false,
                    timed: matches!(keyword, "RUN" | "COPY" | "ADD"),
                    tail: VecDeque::new(),
                });
            }
            BuildEvent::Cached => {
                if let Some(c) = &mut self.cur {
                    c.cached = true;
                }
                if !tty {
                    ch.lines.push(format!("#{} CACHED", self.n));
                }
            }
            BuildEvent::Output(l) => {
                if tty {
                    if let Some(c) = &mut self.cur {
                        c.tail.push_back(l);
                        if c.tail.len() > TAIL {
                            c.tail.pop_front();
                        }
                        ch.tail = true;
                    }
                } else {
                    ch.lines.push(format!("#{} {l}", self.n));
                }
            }
            BuildEvent::Warning(w) => ch.lines.push(format!("WARNING: {w}")),
        }
        ch
    }

    /// The build ended: the last step's line.
    pub fn finish(&mut self, now: Instant, tty: bool) -> Vec<String> {
        self.end(now, tty).into_iter().collect()
    }

    pub fn tail(&self) -> Vec<String> {
        self.cur
            .as_ref()
            .map(|c| c.tail.iter().cloned().collect())
            .unwrap_or_default()
    }
}

/// Draws [`Steps`] on stderr.
pub struct Progress {
    mode: Mode,
    steps: Steps,
    live: Option<Live>,
}

/// The terminal's live area: the running step's spinner and its output lines.
struct Live {
    multi: MultiProgress,
    step: Option<ProgressBar>,
    tail: Vec<ProgressBar>,
}

impl Live {
    fn clear(&mut self) {
        for b in self.tail.drain(..) {
            b.finish_and_clear();
            self.multi.remove(&b);
        }
        if let Some(b) = self.step.take() {
            b.finish_and_clear();
            self.multi.remove(&b);
        }
    }
}

impl Progress {
    pub fn new(mode: Mode) -> Progress {
        let live = (mode == Mode::Tty).then(|| Live {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            step: None,
            tail: vec![],
        });
        Progress {
            mode,
            steps: Steps::default(),
            live,
        }
    }

    fn print(&self, lines: &[String]) {
        match &self.live {
            Some(l) => {
                for line in lines {
                    let _ = l.multi.println(line);
                }
            }
            None => {
                let mut err = std::io::stderr().lock();
                for line in lines {
                    let _ = writeln!(err, "{line}");
                }
            }
        }
    }

    pub fn event(&mut self, e: BuildEvent) {
        if self.mode == Mode::Quiet {
            return;
        }
        let tty = self.live.is_some();
        let ch = self.steps.event(e, Instant::now(), tty);
        if ch.started.is_some()
            && let Some(l) = &mut self.live
        {
            l.clear();
        }
        self.print(&ch.lines);
        let Some(l) = &mut self.live else {
            return;
        };
        if let Some(title) = ch.started {
            let bar = l.multi.add(ProgressBar::new_spinner());
            bar.set_style(
                ProgressStyle::with_template("{spinner:.blue} {wide_msg} {elapsed:>4}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.set_message(title);
            bar.enable_steady_tick(Duration::from_millis(100));
            l.step = Some(bar);
        }
        if ch.tail {
            let lines = self.steps.tail();
            while l.tail.len() < lines.len() {
                let b = l.multi.add(ProgressBar::new_spinner());
                b.set_style(
                    ProgressStyle::with_template("  {wide_msg:.dim}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                l.tail.push(b);
            }
            for (b, text) in l.tail.iter().zip(lines) {
                b.set_message(text);
            }
        }
    }

    /// The build ended (or failed): the last step's line, and the live area cleared.
    pub fn finish(&mut self) {
        if self.mode == Mode::Quiet {
            return;
        }
        let lines = self.steps.finish(Instant::now(), self.live.is_some());
        if let Some(l) = &mut self.live {
            l.clear();
        }
        self.print(&lines);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(text: &str) -> BuildEvent {
        BuildEvent::Step {
            stage: "0".into(),
            line: 2,
            text: text.into(),
        }
    }

    #[test]
    fn modes() {
        assert_eq!(Mode::pick(Some("auto"), false, true).unwrap(), Mode::Tty);
        assert_eq!(Mode::pick(Some("auto"), false, false).unwrap(), Mode::Plain);
        assert_eq!(Mode::pick(Some("tty"), false, false).unwrap(), Mode::Tty);
        assert_eq!(Mode::pick(Some("plain"), true, true).unwrap(), Mode::Quiet);
        let e = Mode::pick(Some("fancy"), false, true).unwrap_err();
        assert!(e.to_string().contains("use auto, plain or tty"), "{e}");
    }

    #[test]
    fn plain_lines_as_docker() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let mut s = Steps::default();
        let mut lines = vec![];
        for (e, t) in [
            (step("RUN echo hi"), 0),
            (BuildEvent::Output("hi".into()), 100),
            (step("COPY a /a"), 1500),
            (BuildEvent::Cached, 1510),
            (step("ENV A=1"), 1520),
            (BuildEvent::Warning("w".into()), 1530),
        ] {
            lines.extend(s.event(e, at(t), false).lines);
        }
        lines.extend(s.finish(at(1600), false));
        assert_eq!(
            lines,
            [
                "#1 [0] RUN echo hi  (line 2)",
                "#1 hi",
                "#1 DONE 1.5s",
                "#2 [0] COPY a /a  (line 2)",
                "#2 CACHED",
                "#3 [0] ENV A=1  (line 2)",
                "WARNING: w",
            ]
        );
    }

    #[test]
    fn on_a_terminal_output_is_live_and_each_step_stays_as_one_line() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let mut s = Steps::default();
        let ch = s.event(step("RUN x"), at(0), true);
        assert_eq!(ch.started.as_deref(), Some("#1 [0] RUN x"));
        assert!(ch.lines.is_empty());
        for i in 0..7 {
            let ch = s.event(BuildEvent::Output(format!("l{i}")), at(10), true);
            assert!(ch.tail && ch.lines.is_empty());
        }
        assert_eq!(s.tail(), ["l2", "l3", "l4", "l5", "l6"]);
        let ch = s.event(step("COPY a /a"), at(2000), true);
        assert_eq!(ch.lines, ["#1 [0] RUN x  2.0s"]);
        assert!(s.tail().is_empty());
        assert!(s.event(BuildEvent::Cached, at(2001), true).lines.is_empty());
        assert_eq!(s.finish(at(2002), true), ["#2 [0] COPY a /a  CACHED"]);
    }
}
