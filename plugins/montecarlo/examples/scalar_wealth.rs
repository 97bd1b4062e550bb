//! The wealth workload as a plain scalar loop — one xoshiro256++ stream per household, rand_distr's ziggurat
//! normals, `f64::exp` — with no interpreter: the floor `cargo xtask bench` compares parfit's runner against
//! (issue 7's "plain C scalar loop" in Rust). Prints `{"seconds": …, "median": …}` for 50,000 households ×
//! 1,000 periods on one thread.
//!
//! A peer, not a result: it keeps the platform's `exp` (glibc here), the floor parfit's libm-based runner is
//! measured against.
#![allow(clippy::disallowed_methods)]

use parfit_core::random::Stream;
use parfit_core::statistics::{Statistic, summarise};

fn main() {
    let (r, s, v1, v2) = (0.1f64, 0.3, 0.1, 1.0);
    let start = std::time::Instant::now();
    let wealth: Vec<f64> = (0..50_000u64)
        .map(|household| {
            let mut stream = Stream::new(1, household, 0);
            let mut w = 1.0f64;
            for _ in 0..1000 {
                let big_r = (1.0 + r) * (v1 * stream.normal()).exp();
                let y = (v2 * stream.normal()).exp();
                w = big_r * s * w + y;
            }
            w
        })
        .collect();
    let seconds = start.elapsed().as_secs_f64();
    let median = summarise(&wealth, &[Statistic::Median], &mut Vec::new())[0];
    println!("{{\"seconds\": {seconds}, \"median\": {median}}}");
}
