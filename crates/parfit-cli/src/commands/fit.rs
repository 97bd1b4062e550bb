//! `parfit fit`: fit one model to one dataset with a chosen optimiser; batches are evaluated in parallel.

use std::path::{Path, PathBuf};

use parfit_config::fitting::{FitOutcome, data_case, fit_staged};
use parfit_core::{Cost, Objective, OptimResult};
use serde_json::json;

use crate::commands::{ConfiguredModel, cell, cost_from_config, load_for_run, model_from_config, show};
use crate::config::Algorithm;
use crate::error::{CliResult, failed};
use crate::inputs::FsLoader;
use crate::plot::{Series, convergence_plot, fit_plot};
use crate::progress::CliMonitor;
use crate::ranks;
use crate::{Common, Format, parse_sets};

pub fn fit(explicit: &[PathBuf], config_path: &Path, common: &Common) -> CliResult<()> {
    let (mut loaded, origin, threads, seed) = load_for_run(config_path, common)?;
    loaded.spread = ranks::spread(loaded.config.fit.max_seconds, &origin, "[fit]")?;
    let config = &loaded.config;

    let ConfiguredModel { model, plugin, kind } = model_from_config(explicit, &loaded, common)?;
    let (data, case) = data_case(&loaded, &FsLoader, "a fit")?;
    let cost = cost_from_config(&config.fit, &origin)?;
    let sets = parse_sets(&common.set)?;
    let record_history = config.output.history.unwrap_or(true);
    let budget = config.fit.max_iterations.map(|n| n * (config.fit.horizons.len() + 1));
    let mut monitor = CliMonitor::new(budget);
    let FitOutcome { objective, x0, result } =
        fit_staged(&loaded, &model, case, &data.outputs, cost, &sets, seed, &mut monitor, record_history)?;
    monitor.finish();
    // Every rank ran the same fit; rank 0 reports it.
    if !ranks::is_root() {
        return Ok(());
    }

    let names = objective.free_names();
    let params = objective.params(&result.x);
    let fitted: Vec<(String, f64)> =
        names.iter().map(|n| (n.clone(), params[model.spec().param_index(n).unwrap_or(0)])).collect();
    let summary =
        Summary { config_path, plugin: &plugin, kind: &kind, algorithm: config.fit.algorithm, cost, threads, seed };

    let output_dir = common.output.clone().or_else(|| config.output.dir.as_ref().map(|d| loaded.resolve(d)));
    if let Some(dir) = &output_dir {
        write_outputs(dir, &objective, &result, &fitted, &summary)?;
    }
    match common.format.unwrap_or(Format::Table) {
        Format::Json => println!("{}", result_json(&result, &fitted, &summary)),
        Format::Table | Format::Csv => print_table(&objective, &result, &fitted, &summary, &x0),
    }
    if let Some(dir) = &output_dir {
        eprintln!("wrote result.json, fitted.csv, fit.svg and convergence.svg to {}", dir.display());
    }
    if !result.value.is_finite() {
        return Err(failed(format!("the fit failed: {} (no candidate could be simulated)", result.termination)));
    }
    Ok(())
}

struct Summary<'a> {
    config_path: &'a Path,
    plugin: &'a str,
    kind: &'a str,
    algorithm: Algorithm,
    cost: Cost,
    threads: usize,
    seed: u64,
}

fn result_json(result: &OptimResult, fitted: &[(String, f64)], s: &Summary) -> serde_json::Value {
    let x: serde_json::Map<String, serde_json::Value> = fitted.iter().map(|(n, v)| (n.clone(), json!(v))).collect();
    json!({
        "x": x,
        "value": result.value,
        "cost": s.cost.name(),
        "evaluations": result.evaluations,
        "iterations": result.iterations,
        "termination": result.termination,
        "seconds": result.seconds,
        "algorithm": s.algorithm.name(),
        "seed": s.seed,
        "threads": s.threads,
        "model": { "plugin": s.plugin, "kind": s.kind },
        "config": s.config_path.display().to_string(),
    })
}

fn print_table(objective: &Objective, result: &OptimResult, fitted: &[(String, f64)], s: &Summary, x0: &[f64]) {
    let starts = objective.params(x0);
    let spec = objective.model().spec();
    println!("fit        {} ({} via plugin {})", s.config_path.display(), s.kind, s.plugin);
    println!("algorithm  {} (seed {}, {} threads)", s.algorithm.name(), s.seed, s.threads);
    println!(
        "result     {} = {} after {} evaluations, {} iterations in {:.3} s ({})",
        s.cost.name().to_uppercase(),
        show(result.value),
        result.evaluations,
        result.iterations,
        result.seconds,
        result.termination
    );
    println!();
    println!("{:<14} {:>14} {:>14}", "parameter", "start", "fitted");
    for (name, value) in fitted {
        let start = spec.param_index(name).map_or(f64::NAN, |i| starts[i]);
        println!("{name:<14} {:>14} {:>14}", show(start), show(*value));
    }
}

fn write_outputs(
    dir: &Path,
    objective: &Objective,
    result: &OptimResult,
    fitted: &[(String, f64)],
    s: &Summary,
) -> CliResult<()> {
    let io = |what: &Path, e: std::io::Error| failed(format!("{}: cannot write ({e})", what.display()));
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let mut doc = result_json(result, fitted, s);
    doc["history"] = serde_json::to_value(&result.history).unwrap_or_default();
    let path = dir.join("result.json");
    let text = serde_json::to_string_pretty(&doc).map_err(|e| failed(e.to_string()))?;
    std::fs::write(&path, text + "\n").map_err(|e| io(&path, e))?;

    // Fitted curves on a fine grid over the data's time span, plus the data themselves.
    let case = objective.case();
    let spec = objective.model().spec();
    let params = objective.params(&result.x);
    let (t0, t1) = (case.times[0], case.times[case.times.len() - 1]);
    let fine: Vec<f64> = (0..=1000).map(|i| t0 + (t1 - t0) * i as f64 / 1000.0).collect();
    let predicted =
        objective.predict(&params, &fine).map_err(|e| failed(format!("simulating the fitted model: {e}")))?;
    let n_out = spec.outputs.len();
    let path = dir.join("fitted.csv");
    let mut csv = format!("t,{}\n", spec.outputs.join(","));
    for (i, t) in fine.iter().enumerate() {
        let row: Vec<String> = predicted[i * n_out..(i + 1) * n_out].iter().map(|v| cell(*v)).collect();
        csv.push_str(&format!("{},{}\n", cell(*t), row.join(",")));
    }
    std::fs::write(&path, csv).map_err(|e| io(&path, e))?;

    let observed = objective.observed_names();
    let n_obs = case.observations.len() / case.times.len().max(1);
    let series: Vec<Series> = observed
        .iter()
        .enumerate()
        .map(|(k, name)| {
            let j = spec.output_index(name).unwrap_or(0);
            Series {
                name,
                data: case
                    .times
                    .iter()
                    .enumerate()
                    .map(|(i, &t)| (t, case.observations[i * n_obs + k]))
                    .filter(|p| p.1.is_finite())
                    .collect(),
                fitted: fine.iter().enumerate().map(|(i, &t)| (t, predicted[i * n_out + j])).collect(),
            }
        })
        .collect();
    let title = format!("{}: {} = {}", s.config_path.display(), s.cost.name().to_uppercase(), show(result.value));
    fit_plot(&dir.join("fit.svg"), &title, &series)?;
    let points: Vec<(f64, f64)> =
        result.history.iter().flatten().map(|h| (h.evaluations as f64, h.best_value)).collect();
    convergence_plot(&dir.join("convergence.svg"), &format!("{} convergence", s.algorithm.name()), &points)
}
