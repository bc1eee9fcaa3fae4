//! The progress line of long preallocations, and their cancellation when
//! `qom` is told to stop.
//!
//! One [`PreallocControl`] is the process default for the whole run, so it
//! covers the `-object` backends and those a QMP client adds. When stderr
//! is a terminal, a preallocation still running after half a second gets a
//! line (size, percentage, rate, time left) that is cleared when it ends;
//! several at once get a line each. When stderr is not a terminal nothing
//! is drawn, so scripts see exactly what they saw before. A shutdown
//! signal cancels every preallocation, running or to come: the object-add
//! fails, and what it made is removed.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use memory_backend::host::{size_to_str, DEFAULT_REPORT_INTERVAL};
use memory_backend::{PreallocControl, PreallocProgress};
use std::collections::HashMap;
use std::io::IsTerminal;
use std::ops::ControlFlow;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A preallocation gets a line once it has run this long, unless
/// [`DELAY_VAR`] says otherwise.
const SHOW_AFTER: Duration = Duration::from_millis(500);

/// The environment variable that sets [`SHOW_AFTER`], in milliseconds.
pub const DELAY_VAR: &str = "QOM_PROGRESS_DELAY_MS";

/// The lines being drawn, by backend name.
struct Lines {
    multi: MultiProgress,
    bars: Mutex<HashMap<String, ProgressBar>>,
    show_after: Duration,
}

/// Makes the process's preallocations report to a progress line on stderr
/// (when it is a terminal) and cancellable by [`cancel`].
pub fn install() {
    let lines = std::io::stderr().is_terminal().then(|| {
        let show_after = std::env::var(DELAY_VAR)
            .ok()
            .and_then(|v| v.parse().ok())
            .map_or(SHOW_AFTER, Duration::from_millis);
        Arc::new(Lines {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            bars: Mutex::new(HashMap::new()),
            show_after,
        })
    });
    let control = match lines {
        // A line that shows at once follows every report.
        Some(lines) => PreallocControl::with_interval(
            lines.show_after.min(DEFAULT_REPORT_INTERVAL),
            move |p| {
                lines.update(p);
                ControlFlow::Continue(())
            },
        ),
        None => PreallocControl::new(),
    };
    PreallocControl::set_process_default(Some(control));
}

/// Cancels every preallocation of the process, running or to come.
pub fn cancel() {
    if let Some(control) = PreallocControl::current() {
        control.cancel();
    }
}

impl Lines {
    fn update(&self, p: &PreallocProgress<'_>) {
        let mut bars = self.bars.lock().unwrap_or_else(|e| e.into_inner());
        if p.ended {
            if let Some(bar) = bars.remove(p.name) {
                bar.finish_and_clear();
                self.multi.remove(&bar);
            }
            return;
        }
        if p.elapsed < self.show_after {
            return;
        }
        let bar = bars.entry(p.name.to_owned()).or_insert_with(|| {
            // Dressed while hidden, so that its first frame is complete.
            let bar = ProgressBar::with_draw_target(Some(p.total), ProgressDrawTarget::hidden());
            bar.set_style(style());
            bar.set_prefix(format!("preallocating {}", p.name));
            bar.set_message(describe(p));
            bar.set_position(p.done);
            self.multi.add(bar)
        });
        bar.set_message(describe(p));
        bar.set_position(p.done);
    }
}

fn style() -> ProgressStyle {
    ProgressStyle::with_template("{prefix} [{bar:24}] {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

/// "1.5 GiB of 4 GiB (37%), 2.1 GiB/s, 1 s left": the rate over the whole
/// preallocation so far, which the population keeps steady.
fn describe(p: &PreallocProgress<'_>) -> String {
    let percent = p.done.saturating_mul(100) / p.total.max(1);
    let secs = p.elapsed.as_secs_f64();
    let rate = if secs > 0.0 {
        p.done as f64 / secs
    } else {
        0.0
    };
    let left = if rate > 0.0 {
        format!(", {} left", duration_text((p.total - p.done) as f64 / rate))
    } else {
        String::new()
    };
    format!(
        "{} of {} ({percent}%), {}/s{left}",
        size_to_str(p.done),
        size_to_str(p.total),
        size_to_str(rate as u64)
    )
}

fn duration_text(secs: f64) -> String {
    let s = secs.ceil() as u64;
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, s % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_says_size_share_rate_and_time_left() {
        let p = PreallocProgress {
            name: "mem0",
            done: 1 << 30,
            total: 4 << 30,
            elapsed: Duration::from_millis(500),
            ended: false,
        };
        assert_eq!(describe(&p), "1 GiB of 4 GiB (25%), 2 GiB/s, 2 s left");
        let start = PreallocProgress {
            done: 0,
            elapsed: Duration::ZERO,
            ..p
        };
        assert_eq!(describe(&start), "0 B of 4 GiB (0%), 0 B/s");
    }

    #[test]
    fn long_waits_read_in_minutes_and_hours() {
        assert_eq!(duration_text(0.2), "1 s");
        assert_eq!(duration_text(61.0), "1 min 1 s");
        assert_eq!(duration_text(7320.0), "2 h 2 min");
    }
}
