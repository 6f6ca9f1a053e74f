//! The terminal side of `weft migrate` (the work is `weft-migrate`'s): a progress bar
//! (indicatif) when stderr is a terminal, otherwise a plain line every `--progress-every`.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use weft_migrate::MigrateReport;

/// The migration's progress on stderr.
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
    every: Duration,
    last: std::cell::Cell<Instant>,
}

impl Progress {
    /// A bar on a terminal, else a line every `every`.
    pub fn new(every: Duration) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar =
                indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "weft migrate: [{wide_bar}] {human_pos}/{human_len} objects, {msg}, {per_sec}, {eta} left",
            ) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Progress {
            bar,
            every,
            last: std::cell::Cell::new(Instant::now()),
        }
    }

    /// Clears the bar.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl weft_migrate::Progress for Progress {
    fn start(&self, objects: u64) {
        if let Some(bar) = &self.bar {
            bar.set_length(objects);
        }
    }

    fn moved(&self, r: &MigrateReport) {
        let done = r.things + r.actions;
        match &self.bar {
            Some(bar) => {
                if bar.length().is_some_and(|l| done > l) {
                    bar.set_length(done);
                }
                bar.set_position(done);
                bar.set_message(format!("{:.1} MiB", mib(r.bytes)));
            }
            None if self.last.get().elapsed() >= self.every => {
                self.last.set(Instant::now());
                eprintln!(
                    "weft migrate: {done} objects ({:.1} MiB) in {:.0} s, {:.0} objects/s",
                    mib(r.bytes),
                    r.took.as_secs_f64(),
                    r.rate()
                );
            }
            None => {}
        }
    }
}

/// Bytes as MiB.
pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1u64 << 20) as f64
}
