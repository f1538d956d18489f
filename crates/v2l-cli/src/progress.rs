//! Progress on stderr: indicatif bars and spinners, hidden when stderr is
//! not a terminal (pipes, logs, tests), so stdout stays the results.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

const BAR: &str = "{bar:40} {pos}/{len} {msg} [{elapsed_precise}, {eta} left] {per_sec}";
const SPINNER: &str = "{spinner} [{pos}/{len}] {msg}";

fn target() -> ProgressDrawTarget {
    if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    }
}

/// A bar of `total` steps labelled `what` (its message; `set_message`
/// replaces it). A total of 0 can be set later with `set_length`.
pub fn bar(total: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(Some(total), target());
    pb.set_style(
        ProgressStyle::with_template(BAR).unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    pb.set_message(what.to_string());
    pb
}

/// A ticking spinner for work of `total` items whose steps take long.
pub fn spinner(total: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(Some(total), target());
    pb.set_style(
        ProgressStyle::with_template(SPINNER).unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    pb.set_message(what.to_string());
    pb.enable_steady_tick(Duration::from_millis(120));
    pb
}

/// Run `work` on `log` with a bar labelled `what` that follows the run's
/// `(done, total)` reports; the bar is cleared when `work` returns.
pub fn logged<T>(
    log: &mut v2l::prompt::eval::JsonlLog,
    what: &str,
    work: impl FnOnce(v2l::prompt::eval::Run<'_>) -> T,
) -> T {
    let pb = bar(0, what);
    let mut progress = |done: usize, total: usize| {
        pb.set_length(total as u64);
        pb.set_position(done as u64);
    };
    let out = work(v2l::prompt::eval::Run {
        log,
        progress: &mut progress,
    });
    pb.finish_and_clear();
    out
}
