//! Renders pull/push progress: indicatif bars on a TTY, docker's plain lines otherwise.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use rcompose_engine::image::progress::{LayerStatus, Progress};

pub struct Renderer {
    quiet: bool,
    tty: Option<MultiProgress>,
    bars: Mutex<HashMap<String, ProgressBar>>,
    /// Last status printed per layer in plain mode (print changes only).
    last: Mutex<HashMap<String, &'static str>>,
    /// Trailing lines (`Digest: …`) held back on a TTY until the bars are done, as docker
    /// prints them below the layers.
    pending: Mutex<Vec<String>>,
    /// Layer ids in the order their bars appeared.
    order: Mutex<Vec<String>>,
}

impl Renderer {
    pub fn new(quiet: bool) -> Renderer {
        let is_tty = std::io::stdout().is_terminal();
        Renderer {
            quiet,
            tty: (is_tty && !quiet)
                .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stdout())),
            bars: Mutex::new(HashMap::new()),
            last: Mutex::new(HashMap::new()),
            pending: Mutex::new(Vec::new()),
            order: Mutex::new(Vec::new()),
        }
    }

    /// Print a line without disturbing the bars.
    pub fn println(&self, line: &str) {
        if self.quiet {
            return;
        }
        match &self.tty {
            Some(m) => {
                let _ = m.println(line);
            }
            None => println!("{line}"),
        }
    }

    pub fn event(&self, p: Progress) {
        if self.quiet {
            return;
        }
        match p {
            Progress::Start(line) => self.println(&line),
            Progress::Line(line) if self.tty.is_some() => self
                .pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(line),
            Progress::Line(line) => self.println(&line),
            Progress::Layer { id, status } => match &self.tty {
                Some(multi) => self.bar(multi, &id, &status),
                None => self.plain(&id, &status),
            },
        }
    }

    fn plain(&self, id: &str, status: &LayerStatus) {
        if matches!(
            status,
            LayerStatus::Downloading(..) | LayerStatus::Pushing(..)
        ) {
            // docker prints progress counters only on a terminal; record the state change.
            let label = if matches!(status, LayerStatus::Pushing(..)) {
                "Pushing"
            } else {
                "Downloading"
            };
            let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
            if last.get(id) != Some(&label) {
                last.insert(id.to_string(), label);
            }
            return;
        }
        let label = match status {
            LayerStatus::Waiting => "Pulling fs layer",
            other => other.label(),
        };
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if last.get(id) != Some(&label) {
            last.insert(id.to_string(), label);
            println!("{id}: {label}");
        }
    }

    fn bar(&self, multi: &MultiProgress, id: &str, status: &LayerStatus) {
        let mut bars = self.bars.lock().unwrap_or_else(|e| e.into_inner());
        let bar = bars.entry(id.to_string()).or_insert_with(|| {
            self.order
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(id.to_string());
            let b = multi.add(ProgressBar::new(0));
            b.set_style(
                ProgressStyle::with_template(
                    "{prefix}: {msg:<18} {wide_bar} {bytes}/{total_bytes}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            b.set_prefix(id.to_string());
            b
        });
        match status {
            LayerStatus::Downloading(done, total) | LayerStatus::Pushing(done, total) => {
                bar.set_style(
                    ProgressStyle::with_template(
                        "{prefix}: {msg:<18} {wide_bar} {bytes}/{total_bytes}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
                );
                bar.set_length(*total);
                bar.set_position(*done);
                bar.set_message(status.label());
            }
            other => {
                bar.set_message(other.label());
                bar.set_style(text_style());
                if other.is_final() {
                    bar.finish();
                }
            }
        }
    }

    /// Replace the bars by one line per layer with its final state (as docker leaves them),
    /// then print the held-back lines.
    pub fn finish(&self) {
        let Some(multi) = &self.tty else { return };
        let mut bars = self.bars.lock().unwrap_or_else(|e| e.into_inner());
        let mut order = self.order.lock().unwrap_or_else(|e| e.into_inner());
        let _ = multi.clear();
        for id in order.drain(..) {
            if let Some(bar) = bars.remove(&id) {
                bar.finish_and_clear();
                println!("{id}: {}", bar.message());
            }
        }
        let pending = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        for line in pending {
            println!("{line}");
        }
    }
}

fn text_style() -> ProgressStyle {
    ProgressStyle::with_template("{prefix}: {msg}").unwrap_or_else(|_| ProgressStyle::default_bar())
}
