//! The Monte Carlo part of `cargo xtask bench`: the QuantEcon wealth median and π with parfit on one and two
//! threads, the same workload as a plain scalar loop (the per-core floor), and with `--peers` numba serial and
//! with `prange` in the same run, so the ratios compare like with like on a noisy machine.

use std::process::Command;

use serde_json::{Value, json};

use crate::bench::{median, output_of, parse as last_json};
use crate::{Result, cargo, root, run, target_dir};

const REPS: usize = 3;

/// parfit's own timing of the paths (model compiled and plugin loaded before the clock starts, as numba's
/// timings exclude its JIT compilation), `REPS` runs.
fn parfit_runs(config: &str, threads: usize, output: &str, stat: &str) -> Result<Value> {
    let parfit = target_dir().join("release/parfit");
    let mut seconds = Vec::new();
    let mut result = f64::NAN;
    for _ in 0..REPS {
        let mut cmd = Command::new(&parfit);
        cmd.current_dir(root()).args(["run", config, "--format", "json", "--threads", &threads.to_string()]);
        let report = last_json(&output_of(&mut cmd)?)?;
        seconds.push(report["seconds"].as_f64().unwrap_or(f64::NAN));
        result = report["points"][0]["statistics"][output][stat].as_f64().unwrap_or(f64::NAN);
    }
    Ok(json!({ "threads": threads, "median_s": median(seconds.clone()), "all_s": seconds, "result": result }))
}

fn scalar_loop() -> Result<Value> {
    let example = target_dir().join("release/examples/scalar_wealth");
    let mut seconds = Vec::new();
    let mut result = f64::NAN;
    for _ in 0..REPS {
        let out = last_json(&output_of(&mut Command::new(&example))?)?;
        seconds.push(out["seconds"].as_f64().unwrap_or(f64::NAN));
        result = out["median"].as_f64().unwrap_or(f64::NAN);
    }
    Ok(json!({ "threads": 1, "median_s": median(seconds.clone()), "all_s": seconds, "result": result }))
}

/// Build what the Monte Carlo benchmarks run.
pub fn build() -> Result {
    run(cargo().args(["build", "--release", "-p", "parfit-montecarlo", "--examples", "--lib"]))
}

pub fn bench(peers: bool) -> Result<Value> {
    let wealth = "examples/wealth/run.toml";
    let pi = "examples/pi/run.toml";
    let mut report = json!({
        "wealth": {
            "parfit_threads_1": parfit_runs(wealth, 1, "w", "median")?,
            "parfit_threads_2": parfit_runs(wealth, 2, "w", "median")?,
            "scalar_loop": scalar_loop()?,
        },
        "pi": {
            "parfit_threads_1": parfit_runs(pi, 1, "pi", "mean")?,
            "parfit_threads_2": parfit_runs(pi, 2, "pi", "mean")?,
        },
    });
    if peers {
        let script = root().join("bench/peers/numba_mc.sh");
        let text = output_of(Command::new("bash").arg(script).current_dir(root()).args(["--reps", &REPS.to_string()]))?;
        let numba = last_json(&text)?;
        let s = |v: &Value| v["median_s"].as_f64().unwrap_or(f64::NAN);
        report["ratios"] = json!({
            "wealth_numba_serial_over_parfit_1": s(&numba["wealth_serial"]) / s(&report["wealth"]["parfit_threads_1"]),
            "wealth_numba_parallel_over_parfit_2":
                s(&numba["wealth_parallel"]) / s(&report["wealth"]["parfit_threads_2"]),
            "pi_numba_serial_over_parfit_1": s(&numba["pi_serial"]) / s(&report["pi"]["parfit_threads_1"]),
            "pi_numba_parallel_over_parfit_2": s(&numba["pi_parallel"]) / s(&report["pi"]["parfit_threads_2"]),
        });
        report["numba"] = numba;
    }
    report["ratios"]["wealth_parfit_1_over_scalar_loop"] = json!(
        report["wealth"]["parfit_threads_1"]["median_s"].as_f64().unwrap_or(f64::NAN)
            / report["wealth"]["scalar_loop"]["median_s"].as_f64().unwrap_or(f64::NAN)
    );
    Ok(report)
}

pub fn print(r: &Value) {
    let f = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
    println!("\n| Monte Carlo (median of {REPS}) | threads | wall s | result |\n|---|---|---|---|");
    for (work, label, what) in [("wealth", "wealth, 50,000 × 1,000", "median"), ("pi", "π, 10^8 points", "estimate")]
    {
        for key in ["parfit_threads_1", "parfit_threads_2", "scalar_loop"] {
            if let Some(v) = r[work].get(key) {
                let name = if key == "scalar_loop" { "scalar Rust loop" } else { "parfit" };
                println!(
                    "| {name} {label} | {} | {:.3} | {what} {:.6} |",
                    v["threads"],
                    f(&v["median_s"]),
                    f(&v["result"])
                );
            }
        }
        if let Some(n) = r.get("numba") {
            for (mode, threads) in [("serial", 1), ("parallel", n["threads"].as_u64().unwrap_or(0))] {
                let v = &n[format!("{work}_{mode}")];
                let results: Vec<String> = v["results"]
                    .as_array()
                    .map(|a| a.iter().map(|x| format!("{:.6}", f(x))).collect())
                    .unwrap_or_default();
                println!(
                    "| numba {} {label} | {threads} | {:.3} | {what} {} |",
                    n["numba_version"].as_str().unwrap_or(""),
                    f(&v["median_s"]),
                    results.join(", ")
                );
            }
        }
    }
    println!("\nMonte Carlo ratios: {}", r["ratios"]);
}
