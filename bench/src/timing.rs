//! Wall-clock timing of repeated calls, and the medians the reports use.

use std::time::Instant;

/// Time `call` repeatedly: one warm-up call, then at least `min_calls` and until `budget_s` seconds have passed
/// (at most 10,000 calls). Returns the median and the fastest seconds per call.
pub fn per_call(min_calls: usize, budget_s: f64, mut call: impl FnMut()) -> (f64, f64) {
    call();
    let mut times = Vec::new();
    let start = Instant::now();
    while times.len() < min_calls || (start.elapsed().as_secs_f64() < budget_s && times.len() < 10_000) {
        let t = Instant::now();
        call();
        times.push(t.elapsed().as_secs_f64());
    }
    let best = times.iter().copied().fold(f64::INFINITY, f64::min);
    (median(times), best)
}

/// The median (mean of the middle two for an even count); NaN for no values.
pub fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 { v[n / 2] } else { 0.5 * (v[n / 2 - 1] + v[n / 2]) }
}
