//! Time one run of each Vensim model given, for `cargo xtask bench`'s Vensim section.
//!
//! `cargo run --release -p parfit-vensim --example run_timing -- MODEL.mdl…` prints a JSON array, one object
//! per model: its compile time and, per run at its defaults on Vensim's saved times (every output, as
//! PySD's `run()` returns every variable), the best and median over 5 rounds in microseconds — or the
//! reader's refusal.

use std::hint::black_box;
use std::time::Instant;

use parfit_core::Model;
use parfit_vensim::VensimModel;
use serde_json::{Value, json};

fn time_model(path: &str) -> Value {
    let source = match std::fs::read_to_string(path) {
        Ok(s) => s,
        Err(e) => return json!({ "model": path, "refused": format!("{path}: {e}") }),
    };
    let start = Instant::now();
    let model = match VensimModel::compile(&source, path, None) {
        Ok(m) => m,
        Err(e) => return json!({ "model": path, "refused": e.to_string() }),
    };
    let compile_us = start.elapsed().as_secs_f64() * 1e6;
    let spec = model.spec();
    let (params, inputs, times) = (spec.defaults(), vec![f64::NAN; spec.inputs.len()], model.save_times());
    let mut ws = model.workspace();
    let mut out = vec![0.0; spec.output_len(times.len())];
    if let Err(e) = model.simulate(&mut ws, &params, &inputs, &times, &mut out) {
        return json!({ "model": path, "refused": format!("the run fails: {e}") });
    }
    let mut round = |n: usize| {
        let start = Instant::now();
        for _ in 0..n {
            let _ = model.simulate(&mut ws, black_box(&params), &inputs, &times, &mut out);
            black_box(&out);
        }
        start.elapsed().as_secs_f64() / n as f64
    };
    round(3); // warm up
    let n = (0.1 / round(3).max(1e-9)).ceil().clamp(1.0, 1e6) as usize;
    let mut rounds: Vec<f64> = (0..5).map(|_| round(n)).collect();
    rounds.sort_by(f64::total_cmp);
    json!({
        "model": path, "compile_us": compile_us, "outputs": spec.outputs.len(), "times": times.len(),
        "runs_per_round": n, "best_us": rounds[0] * 1e6, "median_us": rounds[2] * 1e6,
    })
}

fn main() {
    let models: Vec<Value> = std::env::args().skip(1).map(|path| time_model(&path)).collect();
    println!("{}", serde_json::to_string_pretty(&Value::Array(models)).unwrap_or_default());
}
