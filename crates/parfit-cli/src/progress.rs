//! The CLI's [`Monitor`]: a wall clock, cancellation by signal ([`crate::signals`]) and a progress bar that appears only when a run lasts over a second
//! and both stdout and stderr are terminals.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use parfit_core::optimise::{Monitor, Progress};

const SHOW_AFTER: Duration = Duration::from_secs(1);

pub struct CliMonitor {
    start: Instant,
    bar: ProgressBar,
    allowed: bool,
    shown: bool,
}

impl CliMonitor {
    /// `total` is the iteration budget, if known.
    pub fn new(total: Option<usize>) -> Self {
        let bar = ProgressBar::with_draw_target(total.map(|t| t as u64), ProgressDrawTarget::hidden());
        let template = if total.is_some() {
            "{elapsed_precise} [{bar:30}] {pos}/{len} iterations, {msg}"
        } else {
            "{elapsed_precise} {spinner} {pos} iterations, {msg}"
        };
        bar.set_style(ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()));
        let allowed = std::io::stdout().is_terminal() && std::io::stderr().is_terminal();
        CliMonitor { start: Instant::now(), bar, allowed, shown: false }
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Monitor for CliMonitor {
    fn elapsed_seconds(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    fn on_progress(&mut self, progress: &Progress) {
        if self.allowed && !self.shown && self.start.elapsed() >= SHOW_AFTER {
            self.bar.set_draw_target(ProgressDrawTarget::stderr());
            self.shown = true;
        }
        self.bar.set_position(progress.iteration as u64);
        self.bar.set_message(format!("best {:.6e} after {} evaluations", progress.best_value, progress.evaluations));
    }

    fn cancelled(&self) -> bool {
        crate::signals::stop_requested()
    }
}
