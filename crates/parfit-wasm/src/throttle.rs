//! Progress at the display's pace. A report crosses from the module's worker to the page as a JavaScript object
//! and a message, and the page redraws for it; on a machine with as many cores as pool workers that work takes a
//! core from the pool, so reports more frequent than a person can read cost throughput (per case or per
//! generation they made 2 workers barely faster than 1). Only the timing of reports changes, never the results.

/// How often a page hears of progress at most, in seconds (ten times a second).
pub const PROGRESS_INTERVAL: f64 = 0.1;

/// Decides which progress events are reported: the first, then one at least `interval` seconds after the last
/// reported one, and always the final one.
pub struct Throttle<'a> {
    clock: &'a dyn Fn() -> f64,
    interval: f64,
    last: Option<f64>,
}

impl<'a> Throttle<'a> {
    /// `clock` returns seconds.
    pub fn new(clock: &'a dyn Fn() -> f64, interval: f64) -> Self {
        Throttle { clock, interval, last: None }
    }

    /// Whether to report this event; `last` marks the final one (reported whatever the time).
    pub fn due(&mut self, last: bool) -> bool {
        let now = (self.clock)();
        let due = last || self.last.is_none_or(|t| now - t >= self.interval);
        if due {
            self.last = Some(now);
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    #[test]
    fn reports_the_first_then_once_per_interval_and_always_the_last() {
        let now = Cell::new(0.0);
        let clock = || now.get();
        let mut throttle = Throttle::new(&clock, 0.1);
        let mut reported = vec![];
        for (i, t) in [0.0, 0.05, 0.09, 0.1, 0.15, 0.19, 0.21, 0.25].into_iter().enumerate() {
            now.set(t);
            if throttle.due(i == 7) {
                reported.push(t);
            }
        }
        assert_eq!(reported, [0.0, 0.1, 0.21, 0.25]);
    }
}
