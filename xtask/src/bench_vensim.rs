//! `cargo xtask bench`'s Vensim section: every sample model of the SDXorg test-models suite and every Vensim
//! model of `examples/` (the PySD cookbook's aging chain, …), one run each at the model's defaults on Vensim's saved times — parfit
//! (`plugins/vensim/examples/run_timing.rs`: native code and the interpreter) and, with `--peers`, PySD
//! 3.14.3 (`bench/peers/pysd_vensim.sh`) in the same run — and the per-run time ratios.

use std::process::Command;

use serde_json::{Value, json};

use crate::bench::output_of;
use crate::{Result, cargo, root, run, target_dir};

const SAMPLES: &str = "plugins/vensim/tests/test-models/samples";
const EXAMPLES: &str = "examples";

pub fn build() -> Result {
    run(cargo().args(["build", "--release", "-p", "parfit-vensim", "--example", "run_timing"]))
}

/// The models, relative to the repository: the `.mdl` files one directory below the samples, then below
/// `examples/`, each group sorted.
fn models() -> Result<Vec<String>> {
    let mut models = Vec::new();
    for group in [SAMPLES, EXAMPLES] {
        let mut found = Vec::new();
        let dirs = std::fs::read_dir(root().join(group)).map_err(|e| format!("{group}: {e}"))?;
        for dir in dirs.flatten() {
            for file in std::fs::read_dir(dir.path()).into_iter().flatten().flatten() {
                let name = file.file_name().to_string_lossy().into_owned();
                if name.to_lowercase().ends_with(".mdl") {
                    found.push(format!("{group}/{}/{name}", dir.file_name().to_string_lossy()));
                }
            }
        }
        found.sort();
        models.extend(found);
    }
    Ok(models)
}

/// The JSON array a tool printed last (an installer may print before it).
fn array(text: &str) -> Result<Vec<Value>> {
    let start = text.rfind("\n[").map_or(0, |i| i + 1);
    match serde_json::from_str::<Value>(text[start..].trim()) {
        Ok(Value::Array(items)) => Ok(items),
        _ => Err(format!("no JSON array in the output:\n{text}")),
    }
}

pub fn bench(peers: bool) -> Result<Value> {
    let models = models()?;
    let example = target_dir().join("release/examples/run_timing");
    let parfit = array(&output_of(Command::new(example).current_dir(root()).args(&models))?)?;
    let pysd = if peers {
        let script = root().join("bench/peers/pysd_vensim.sh");
        array(&output_of(Command::new("bash").arg(script).current_dir(root()).args(&models))?)?
    } else {
        Vec::new()
    };
    let us = |v: &Value| v["median_us"].as_f64().unwrap_or(f64::NAN);
    let rows: Vec<Value> = models
        .iter()
        .enumerate()
        .map(|(i, model)| {
            let ours = parfit.get(i).cloned().unwrap_or(Value::Null);
            let theirs = pysd.get(i).cloned().unwrap_or(Value::Null);
            let ratio = us(&theirs) / us(&ours);
            json!({ "model": model, "parfit": ours, "pysd": theirs, "pysd_over_parfit": ratio })
        })
        .collect();
    Ok(json!({ "models": rows }))
}

/// `cargo xtask bench vensim [--peers]`: this section alone, into target/bench/vensim.json.
pub fn standalone(peers: bool) -> Result {
    build()?;
    let report = bench(peers)?;
    let dir = target_dir().join("bench");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let text = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("vensim.json"), text).map_err(|e| format!("vensim.json: {e}"))?;
    print(&report);
    Ok(())
}

/// A tool's time for one model (`key`: its median), or why it has none (the message without the model's place).
fn cell(v: &Value, key: &str, model: &str) -> String {
    if let Some(us) = v[key].as_f64() {
        return format!("{us:.1}");
    }
    match v["refused"].as_str().or(v["error"].as_str()) {
        Some(why) => {
            let why = why.strip_prefix(model).and_then(|r| r.splitn(4, ':').nth(3)).unwrap_or(why);
            format!("refused: {}", why.trim().replace('|', "\\|"))
        }
        None => "—".to_string(),
    }
}

pub fn print(report: &Value) {
    println!(
        "\n| Vensim model (one run, defaults, saved times) | parfit native µs | parfit interpreter µs | PySD 3.14.3 µs | \
         PySD ÷ native | interpreter ÷ native |\n|---|---|---|---|---|---|"
    );
    for row in report["models"].as_array().into_iter().flatten() {
        let model = row["model"].as_str().unwrap_or("");
        let parfit = &row["parfit"];
        let times = |x: Option<f64>| x.filter(|r| r.is_finite()).map_or("—".into(), |r| format!("{r:.1}×"));
        let ab = parfit["interpreter_median_us"].as_f64().zip(parfit["median_us"].as_f64()).map(|(i, n)| i / n);
        let short = model.strip_prefix(SAMPLES).map_or(model.to_string(), |s| format!("samples{s}"));
        println!(
            "| {short} | {} | {} | {} | {} | {} |",
            cell(parfit, "median_us", model),
            cell(parfit, "interpreter_median_us", model),
            cell(&row["pysd"], "median_us", model),
            times(row["pysd_over_parfit"].as_f64()),
            times(ab)
        );
    }
}
