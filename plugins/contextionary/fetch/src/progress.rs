//! Progress of the long steps of `weft contextionary fetch` (reading the wheel, building the
//! index): a bar (indicatif) when stderr is a terminal, plain lines otherwise — one every five
//! seconds and one at the end — so that logs and CI output stay readable.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// What a step counts.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Unit {
    /// Bytes (shown as KiB, MiB).
    Bytes,
    /// Words.
    Words,
}

/// Between two plain lines.
const EVERY: Duration = Duration::from_secs(5);

/// One step with a known total.
pub(crate) struct Step {
    what: String,
    unit: Unit,
    total: u64,
    bar: Option<ProgressBar>,
    last: Mutex<Instant>,
}

impl Step {
    /// A step `what` (e.g. `reading the wheel`) of `total` units: a bar on a terminal.
    pub(crate) fn new(what: impl Into<String>, total: u64, unit: Unit) -> Step {
        let what = what.into();
        let bar = std::io::stderr().is_terminal().then(|| {
            // The bar takes what the terminal's width leaves.
            let counts = match unit {
                Unit::Bytes => "{bytes}/{total_bytes}, {eta} left",
                Unit::Words => "{human_pos}/{human_len} words, {eta} left",
            };
            let style = ProgressStyle::with_template(&format!(
                "weft contextionary fetch: {{msg}} [{{wide_bar}}] {counts}"
            ))
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            bar.set_style(style);
            bar.set_message(what.clone());
            bar
        });
        Step {
            what,
            unit,
            total,
            bar,
            last: Mutex::new(Instant::now()),
        }
    }

    /// `done` units of the total are done.
    pub(crate) fn set(&self, done: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(done);
            return;
        }
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if done < self.total && last.elapsed() >= EVERY {
            *last = Instant::now();
            self.line(done);
        }
    }

    /// The step is done: the bar is cleared, or the last plain line printed.
    pub(crate) fn finish(&self) {
        match &self.bar {
            Some(bar) => bar.finish_and_clear(),
            None => self.line(self.total),
        }
    }

    fn line(&self, done: u64) {
        let pct = done.saturating_mul(100) / self.total.max(1);
        match self.unit {
            Unit::Bytes => eprintln!(
                "weft contextionary fetch: {}: {:.1}/{:.1} MiB ({pct}%)",
                self.what,
                done as f64 / (1 << 20) as f64,
                self.total as f64 / (1 << 20) as f64
            ),
            Unit::Words => eprintln!(
                "weft contextionary fetch: {}: {done}/{} words ({pct}%)",
                self.what, self.total
            ),
        }
    }
}
