//! Wall-clock cost of one Lotka–Volterra solve over t in [0, 100] with 500 output times.
//!
//! `cargo run --release -p parfit-ode --example lv_timing`

use std::hint::black_box;
use std::time::Instant;

use parfit_core::Model;
use parfit_ode::{OdeModel, SolverOptions};

const LV: &str = "\
in_i { alpha = 1.1, beta = 0.4, delta = 0.1, gamma = 0.4 }
x0 { 10.0 }
y0 { 5.0 }
u_i {
  prey = x0,
  predator = y0,
}
F_i {
  alpha * prey - beta * prey * predator,
  delta * prey * predator - gamma * predator,
}
out_i { prey, predator }
";

fn main() {
    let times: Vec<f64> = (0..500).map(|i| 100.0 * i as f64 / 499.0).collect();
    let params = [1.1, 0.4, 0.1, 0.4];
    for tol in [1e-6, 1e-9] {
        // Native code and the interpreter, timed in interleaved rounds (an A/B at the same load).
        let models = [true, false].map(|jit| {
            let opts = SolverOptions { rtol: tol, atol: tol, jit, ..Default::default() };
            OdeModel::compile(LV, "lv.ds", opts).expect("the example model compiles")
        });
        let mut wss = models.each_ref().map(|m| m.workspace());
        let mut out = vec![0.0; models[0].spec().output_len(times.len())];
        let mut run = |k: usize, n: usize| {
            let start = Instant::now();
            for _ in 0..n {
                models[k].simulate(&mut wss[k], black_box(&params), &[], &times, &mut out).expect("the solve succeeds");
                black_box(&out);
            }
            start.elapsed().as_secs_f64() / n as f64
        };
        run(0, 20); // warm up
        run(1, 20);
        // Repeat for about a tenth of a second per round and report the best of five rounds.
        let n = (0.1 / run(0, 10)).ceil().max(1.0) as usize;
        let mut best = [f64::INFINITY; 2];
        for _ in 0..5 {
            for (k, b) in best.iter_mut().enumerate() {
                *b = b.min(run(k, n));
            }
        }
        println!(
            "rtol = atol = {tol:e}: {:.1} µs per solve native, {:.1} interpreted ({n} solves per round)",
            best[0] * 1e6,
            best[1] * 1e6
        );
    }
}
