//! Phase timing for the compose commands, on when `RCOMPOSE_TRACE_TIMING=1`: one stderr line
//! per mark, `[timing +123.4ms] what (took 5.6ms)`, measured from the first use in the
//! process. Off by default and then costs one relaxed load per mark.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

struct Clock {
    on: bool,
    start: Instant,
}

fn clock() -> &'static Clock {
    static CLOCK: OnceLock<Clock> = OnceLock::new();
    CLOCK.get_or_init(|| Clock {
        on: std::env::var("RCOMPOSE_TRACE_TIMING").is_ok_and(|v| !v.is_empty() && v != "0"),
        start: Instant::now(),
    })
}

/// Whether timing lines are printed.
pub fn enabled() -> bool {
    clock().on
}

/// Prints `what` with the time since the process's first mark.
pub fn mark(what: impl std::fmt::Display) {
    let c = clock();
    if c.on {
        eprintln!(
            "[timing +{:>7.1}ms] {what}",
            c.start.elapsed().as_secs_f64() * 1e3
        );
    }
}

/// Prints `what` with how long it took since `since`.
pub fn took(what: impl std::fmt::Display, since: Instant) {
    let c = clock();
    if c.on {
        mark(format_args!("{what} (took {})", ms(since.elapsed())));
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1}ms", d.as_secs_f64() * 1e3)
}

/// Runs `f`, then marks `what` with its duration.
pub fn time<T>(what: impl std::fmt::Display, f: impl FnOnce() -> T) -> T {
    if !enabled() {
        return f();
    }
    let t0 = Instant::now();
    let out = f();
    took(what, t0);
    out
}
