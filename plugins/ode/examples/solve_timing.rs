//! Time one solve of a DiffSL model at its default parameters, for `cargo xtask bench`.
//!
//! `cargo run --release -p parfit-ode --example solve_timing -- MODEL.ds RTOL ATOL START:STOP:COUNT`
//! prints one JSON object: the best (over 5 rounds) and median wall time per solve in microseconds.

use std::hint::black_box;
use std::time::Instant;

use parfit_core::Model;
use parfit_ode::{OdeModel, SolverOptions};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [path, rtol, atol, times] = &args[..] else {
        eprintln!("usage: solve_timing MODEL.ds RTOL ATOL START:STOP:COUNT");
        std::process::exit(2);
    };
    let source = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let (rtol, atol): (f64, f64) = (rtol.parse().expect("RTOL"), atol.parse().expect("ATOL"));
    let grid: Vec<f64> = times.split(':').map(|s| s.parse().expect("START:STOP:COUNT")).collect();
    let count = grid[2] as usize;
    // numpy.linspace spacing, so the grid matches the tutorial data's times.
    let times: Vec<f64> = (0..count)
        .map(|i| if i + 1 == count { grid[1] } else { grid[0] + i as f64 * (grid[1] - grid[0]) / (count - 1) as f64 })
        .collect();

    let options = SolverOptions { rtol, atol, ..Default::default() };
    let model = OdeModel::compile(&source, path, options).unwrap_or_else(|e| panic!("{e}"));
    let params = model.spec().defaults();
    let mut ws = model.workspace();
    let mut out = vec![0.0; model.spec().output_len(times.len())];
    let mut round = |n: usize| {
        let start = Instant::now();
        for _ in 0..n {
            model.simulate(&mut ws, black_box(&params), &[], &times, &mut out).expect("the solve succeeds");
            black_box(&out);
        }
        start.elapsed().as_secs_f64() / n as f64
    };
    round(20); // warm up
    let n = (0.2 / round(10)).ceil().max(1.0) as usize;
    let mut rounds: Vec<f64> = (0..5).map(|_| round(n)).collect();
    rounds.sort_by(f64::total_cmp);
    println!(
        "{{\"model\": \"{path}\", \"rtol\": {rtol:e}, \"atol\": {atol:e}, \"outputs\": {count}, \"solves_per_round\": {n}, \
         \"best_us\": {:.3}, \"median_us\": {:.3}}}",
        rounds[0] * 1e6,
        rounds[2] * 1e6
    );
}
