//! Time one run of each Vensim model given, for `cargo xtask bench`'s Vensim section.
//!
//! `cargo run --release -p parfit-vensim --example run_timing -- MODEL.mdl…` prints a JSON array, one object
//! per model: its compile time and, per run at its defaults on Vensim's saved times (every output, as
//! PySD's `run()` returns every variable), the best and median over 5 rounds in microseconds, with the
//! model's code compiled to native code (`median_us`) and interpreted (`interpreter_median_us`) — or the
//! reader's refusal.

use std::hint::black_box;
use std::path::Path;
use std::time::Instant;

use parfit_core::Model;
use parfit_vensim::data::Files;
use parfit_vensim::{Options, VensimModel};
use serde_json::{Value, json};

/// Per-run times of a compiled model: (best, median) µs over 5 rounds of at least 0.1 s.
fn time_runs(model: &VensimModel) -> Result<(f64, f64), String> {
    let spec = model.spec();
    let (params, inputs, times) = (spec.defaults(), vec![f64::NAN; spec.inputs.len()], model.save_times());
    let mut ws = model.workspace();
    let mut out = vec![0.0; spec.output_len(times.len())];
    model.simulate(&mut ws, &params, &inputs, &times, &mut out).map_err(|e| format!("the run fails: {e}"))?;
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
    Ok((rounds[0] * 1e6, rounds[2] * 1e6))
}

fn time_model(path: &str) -> Value {
    let source = match std::fs::read_to_string(path) {
        Ok(s) => s,
        Err(e) => return json!({ "model": path, "refused": format!("{path}: {e}") }),
    };
    let files = Path::new(path).parent().map(|dir| Files::Dir(dir.to_path_buf()));
    let compile = |jit: bool| {
        let options = Options { jit, files: files.clone(), ..Options::default() };
        VensimModel::compile_with(&source, path, &options).map_err(|e| e.to_string())
    };
    let start = Instant::now();
    let native = match compile(true) {
        Ok(m) => m,
        Err(e) => return json!({ "model": path, "refused": e }),
    };
    let compile_us = start.elapsed().as_secs_f64() * 1e6;
    let timed = compile(false).and_then(|interpreted| Ok((time_runs(&native)?, time_runs(&interpreted)?)));
    let ((best, median), (interpreter_best, interpreter_median)) = match timed {
        Ok(t) => t,
        Err(e) => return json!({ "model": path, "refused": e }),
    };
    json!({
        "model": path, "compile_us": compile_us, "native": native.is_native(), "jit_fallback": native.jit_fallback(),
        "outputs": native.spec().outputs.len(), "times": native.save_times().len(),
        "best_us": best, "median_us": median,
        "interpreter_best_us": interpreter_best, "interpreter_median_us": interpreter_median,
    })
}

fn main() {
    let models: Vec<Value> = std::env::args().skip(1).map(|path| time_model(&path)).collect();
    println!("{}", serde_json::to_string_pretty(&Value::Array(models)).unwrap_or_default());
}
