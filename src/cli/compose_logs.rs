//! `rcompose logs` and the log multiplexer of attached `up`: one prefix per container
//! (`web-1  | `, coloured and aligned), following across restarts (same log file),
//! re-creations and new replicas (new containers are picked up as they appear).

use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use rcompose_compose::labels;
use rcompose_compose::observe::{ContainerSummary, RunState};
use rcompose_engine::logs::{LogEntry, Position, ReadOptions};
use rcompose_engine::units::time::{log_bound, now_secs};

use super::GlobalOpts;
use super::compose_common::{backend, check_services, containers, target};
use rcompose_wire::backend::EngineBackend;

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Follow log output
    #[arg(short, long)]
    pub follow: bool,
    /// Number of lines to show from the end of the logs for each container ("all" for all)
    #[arg(short = 'n', long, default_value = "all")]
    pub tail: String,
    /// Show timestamps
    #[arg(short, long)]
    pub timestamps: bool,
    /// Show logs since timestamp (RFC 3339) or relative (e.g. 42m)
    #[arg(long)]
    pub since: Option<String>,
    /// Show logs before a timestamp (RFC 3339) or relative (e.g. 42m)
    #[arg(long)]
    pub until: Option<String>,
    /// Produce monochrome output
    #[arg(long)]
    pub no_color: bool,
    /// Don't print prefix in logs
    #[arg(long)]
    pub no_log_prefix: bool,
    /// Index of the container if service has multiple replicas
    #[arg(long)]
    pub index: Option<u32>,
    pub services: Vec<String>,
}

/// How lines are printed.
#[derive(Debug, Clone, Default)]
pub struct Style {
    pub colour: bool,
    pub prefix: bool,
    pub timestamps: bool,
}

/// Set by the SIGINT handler: how many times Ctrl-C was pressed.
pub static INTERRUPTS: AtomicUsize = AtomicUsize::new(0);

extern "C" fn on_sigint(_: libc::c_int) {
    INTERRUPTS.fetch_add(1, Ordering::SeqCst);
}

/// Counts Ctrl-C instead of dying, so followers can stop cleanly.
pub fn catch_interrupts() {
    // SAFETY: the handler only touches an atomic.
    unsafe {
        libc::signal(libc::SIGINT, on_sigint as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_sigint as *const () as libc::sighandler_t);
    }
}

const COLOURS: [&str; 6] = ["36", "33", "32", "35", "34", "31"];

/// `web-1` for `demo-web-1`; the container name for `container_name` and one-offs.
pub fn display_name(c: &ContainerSummary) -> String {
    let project = c
        .labels
        .get(labels::PROJECT)
        .map(String::as_str)
        .unwrap_or("");
    c.name
        .strip_prefix(&format!("{project}-"))
        .unwrap_or(&c.name)
        .to_string()
}

struct Tracked {
    name: String,
    path: std::path::PathBuf,
    /// Where following continues; `None` until the first read (which honours `--tail`).
    pos: Option<Position>,
    colour: &'static str,
    status: RunState,
    gone: bool,
}

/// Follows the logs of the containers `select` returns, polling for new ones.
pub struct Multiplexer<'a> {
    backend: &'a EngineBackend,
    style: Style,
    tracked: BTreeMap<String, Tracked>,
    width: usize,
    next_colour: usize,
    /// Attached `up`: a container first seen already stopped counts as an exit.
    pub report_first_exit: bool,
}

/// A container that stopped while followed (for attached `up`).
pub struct Exit {
    pub service: String,
    pub name: String,
    pub code: i32,
}

impl<'a> Multiplexer<'a> {
    pub fn new(backend: &'a EngineBackend, style: Style) -> Self {
        Self {
            backend,
            style,
            tracked: BTreeMap::new(),
            width: 0,
            next_colour: 0,
            report_first_exit: false,
        }
    }

    /// Prints what is new for `list`. Containers seen for the first time print from the start
    /// (or their last `tail` lines when `initial`). Returns containers that exited since.
    pub fn poll(
        &mut self,
        list: &[ContainerSummary],
        initial_opts: &ReadOptions,
        initial: bool,
    ) -> Vec<Exit> {
        for c in list {
            self.width = self.width.max(display_name(c).len());
        }
        let mut batch: Vec<(String, LogEntry)> = vec![];
        let mut exits = vec![];
        let assume_up = self.report_first_exit;
        for c in list {
            let t = self.tracked.entry(c.id.clone()).or_insert_with(|| {
                let colour = COLOURS[self.next_colour % COLOURS.len()];
                self.next_colour += 1;
                Tracked {
                    name: display_name(c),
                    path: self.backend.containers().store.log_path(&c.id),
                    pos: None,
                    colour,
                    status: if assume_up {
                        RunState::Running
                    } else {
                        c.status
                    },
                    gone: false,
                }
            });
            let fresh = t.pos.is_none();
            let opts = if fresh && initial {
                initial_opts.clone()
            } else {
                ReadOptions {
                    until: initial_opts.until.clone(),
                    ..Default::default()
                }
            };
            // Across the json-file log's rotations too: the position names the file.
            let res = match t.pos {
                None => rcompose_engine::logs::read(&t.path, &opts),
                Some(pos) => rcompose_engine::logs::read_from(&t.path, pos, &opts),
            };
            if let Ok((entries, pos)) = res {
                t.pos = Some(pos);
                batch.extend(entries.into_iter().map(|e| (c.id.clone(), e)));
            }
            if t.status.is_up() && !c.status.is_up() {
                exits.push(Exit {
                    service: c.labels.get(labels::SERVICE).cloned().unwrap_or_default(),
                    name: t.name.clone(),
                    code: c.exit_code,
                });
            }
            t.status = c.status;
        }
        for (id, t) in self.tracked.iter_mut() {
            t.gone = !list.iter().any(|c| &c.id == id);
        }
        self.tracked.retain(|_, t| !t.gone);
        batch.sort_by(|a, b| a.1.time.cmp(&b.1.time));
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        for (id, e) in batch {
            if let Some(t) = self.tracked.get(&id) {
                let _ = out.write_all(self.format(t, &e).as_bytes());
            }
        }
        let _ = out.flush();
        exits
    }

    fn format(&self, t: &Tracked, e: &LogEntry) -> String {
        let mut line = String::new();
        if self.style.prefix {
            let p = format!("{:<w$} | ", t.name, w = self.width);
            if self.style.colour {
                line.push_str(&format!("\x1b[{}m{p}\x1b[0m", t.colour));
            } else {
                line.push_str(&p);
            }
        }
        if self.style.timestamps {
            line.push_str(&e.time);
            line.push(' ');
        }
        line.push_str(&e.log);
        if !line.ends_with('\n') {
            line.push('\n');
        }
        line
    }

    /// Prints `web-1 exited with code 0` in the container's colour.
    pub fn print_exit(&self, x: &Exit) {
        let msg = format!("{} exited with code {}", x.name, x.code);
        let colour = self
            .tracked
            .values()
            .find(|t| t.name == x.name)
            .map(|t| t.colour)
            .unwrap_or("0");
        if self.style.colour {
            println!("\x1b[{colour}m{msg}\x1b[0m");
        } else {
            println!("{msg}");
        }
    }
}

pub fn run(g: &GlobalOpts, a: LogsArgs) -> Result<ExitCode> {
    let t = target(g)?;
    if let Some(p) = &t.project {
        check_services(p, &a.services)?;
    }
    let b = backend(g)?;
    let opts = ReadOptions {
        tail: match a.tail.as_str() {
            "all" | "-1" => None,
            n => Some(n.parse().map_err(|_| {
                anyhow::anyhow!("invalid --tail {n:?}: use a number of lines or \"all\"")
            })?),
        },
        since: a
            .since
            .as_deref()
            .map(|s| log_bound(s, now_secs()))
            .transpose()?,
        until: a
            .until
            .as_deref()
            .map(|s| log_bound(s, now_secs()))
            .transpose()?,
    };
    let style = Style {
        colour: !a.no_color && g.use_colour(),
        prefix: !a.no_log_prefix,
        timestamps: a.timestamps,
    };
    let select = |b: &EngineBackend| -> Result<Vec<ContainerSummary>> {
        let mut list = containers(b, &t.name, &a.services, true, false)?;
        if let Some(i) = a.index {
            list.retain(|c| {
                c.labels.get(labels::CONTAINER_NUMBER).map(String::as_str)
                    == Some(i.to_string().as_str())
            });
        }
        Ok(list)
    };
    let mut mux = Multiplexer::new(&b, style);
    mux.poll(&select(&b)?, &opts, true);
    if !a.follow {
        return Ok(ExitCode::SUCCESS);
    }
    catch_interrupts();
    while INTERRUPTS.load(Ordering::SeqCst) == 0 {
        std::thread::sleep(Duration::from_millis(100));
        mux.poll(&select(&b)?, &opts, false);
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_name_strips_the_project() {
        let mut c = ContainerSummary {
            name: "demo-web-1".into(),
            ..Default::default()
        };
        c.labels.insert(labels::PROJECT.into(), "demo".into());
        assert_eq!(display_name(&c), "web-1");
        c.name = "custom".into();
        assert_eq!(display_name(&c), "custom");
    }
}
