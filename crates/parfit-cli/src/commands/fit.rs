//! `parfit fit`: fit one model to one dataset with a chosen optimiser; batches are evaluated in parallel.

use std::path::{Path, PathBuf};

use parfit_config::fitting::{FitOutcome, data_case, fit_staged, no_finite_cost, plot_times};
use parfit_core::{Cost, Objective, OptimResult, SimError};
use serde_json::json;

use crate::commands::{ConfiguredModel, cell, cost_from_config, load_for_run, model_from_config, show};
use crate::config::Algorithm;
use crate::console;
use crate::error::{CliError, CliResult, failed};
use crate::inputs::FsLoader;
use crate::outputs::OutputDir;
use crate::plot::{Series, convergence_plot, fit_plot};
use crate::progress::CliMonitor;
use crate::ranks;
use crate::signals;
use crate::{Common, Format, parse_sets};

pub fn fit(explicit: &[PathBuf], config_path: &Path, common: &Common) -> CliResult<()> {
    let (mut loaded, origin, threads, seed) = load_for_run(config_path, common)?;
    loaded.spread = ranks::spread(loaded.config.fit.max_seconds, &origin, "[fit]")?;
    let config = &loaded.config;

    let ConfiguredModel { model, plugin, kind } = model_from_config(explicit, &loaded, common)?;
    let (data, case) = data_case(&loaded, &FsLoader, "a fit", model.spec().inputs.len())?;
    let cost = cost_from_config(&config.fit, &origin)?;
    let sets = parse_sets(&common.set)?;
    let record_history = config.output.history.unwrap_or(true);
    let budget = config.fit.max_iterations.map(|n| n * (config.fit.horizons.len() + 1));
    // Every rank runs the same fit; rank 0 alone writes, so it alone locks the directory, before any work.
    let output_dir = common.output.clone().or_else(|| config.output.dir.as_ref().map(|d| loaded.resolve(d)));
    let mut outputs = match &output_dir {
        Some(dir) if ranks::is_root() => Some(OutputDir::open(dir)?),
        _ => None,
    };
    let mut monitor = CliMonitor::new(budget);
    let FitOutcome { objective, x0, result } =
        fit_staged(&loaded, &model, case, &data.outputs, cost, &sets, seed, &mut monitor, record_history)?;
    monitor.finish();
    if signals::stop_requested() {
        return Err(CliError::Interrupted("interrupted; nothing was written".into()));
    }
    if !ranks::is_root() {
        return Ok(());
    }
    if !result.value.is_finite() {
        return Err(failed(format!(
            "the fit failed: {} (no candidate could be simulated; {}); nothing was written",
            result.termination,
            no_finite_cost(&objective, &x0)
        )));
    }

    let names = objective.free_names();
    let params = objective.params(&result.x);
    let fitted: Vec<(String, f64)> =
        names.iter().map(|n| (n.clone(), params[model.spec().param_index(n).unwrap_or(0)])).collect();
    let summary =
        Summary { config_path, plugin: &plugin, kind: &kind, algorithm: config.fit.algorithm, cost, threads, seed };

    if let Some(out) = &mut outputs {
        write_outputs(out, &objective, &result, &fitted, &summary)?;
    }
    console::print(&match common.format.unwrap_or(Format::Table) {
        Format::Json => format!("{}\n", result_json(&result, &fitted, &summary)),
        Format::Table | Format::Csv => table(&objective, &result, &fitted, &summary, &x0),
    })?;
    if let Some(out) = outputs {
        let dir = out.path().display().to_string();
        out.commit()?;
        console::note(&format!("wrote result.json, fitted.csv, fit.svg and convergence.svg to {dir}"));
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

fn table(objective: &Objective, result: &OptimResult, fitted: &[(String, f64)], s: &Summary, x0: &[f64]) -> String {
    let starts = objective.params(x0);
    let spec = objective.model().spec();
    let mut text = format!("fit        {} ({} via plugin {})\n", s.config_path.display(), s.kind, s.plugin);
    text += &format!("algorithm  {} (seed {}, {} threads)\n", s.algorithm.name(), s.seed, s.threads);
    text += &format!(
        "result     {} = {} after {} evaluations, {} iterations in {:.3} s ({})\n\n",
        s.cost.name().to_uppercase(),
        show(result.value),
        result.evaluations,
        result.iterations,
        result.seconds,
        result.termination
    );
    text += &format!("{:<14} {:>14} {:>14}\n", "parameter", "start", "fitted");
    for (name, value) in fitted {
        let start = spec.param_index(name).map_or(f64::NAN, |i| starts[i]);
        text += &format!("{name:<14} {:>14} {:>14}\n", show(start), show(*value));
    }
    text
}

fn write_outputs(
    out: &mut OutputDir,
    objective: &Objective,
    result: &OptimResult,
    fitted: &[(String, f64)],
    s: &Summary,
) -> CliResult<()> {
    let mut doc = result_json(result, fitted, s);
    doc["history"] = serde_json::to_value(&result.history).unwrap_or_default();
    let text = serde_json::to_string_pretty(&doc).map_err(|e| failed(e.to_string()))?;
    out.write("result.json", (text + "\n").as_bytes())?;

    // Fitted curves on a fine grid over the data's time span (`plot_times`), plus the data themselves. A model on a fixed time
    // step (Vensim) refuses times between its steps as bad input: its curves are drawn at the data's times.
    let case = objective.case();
    let spec = objective.model().spec();
    let params = objective.params(&result.x);
    let (t0, t1) = (case.times[0], case.times[case.times.len() - 1]);
    let fine = plot_times(t0, t1);
    let simulated = |e: SimError| failed(format!("simulating the fitted model: {e}"));
    let (fine, predicted) = match objective.predict(&params, &fine) {
        Ok(predicted) => (fine, predicted),
        Err(SimError::BadInput(_)) => (case.times.clone(), objective.predict(&params, &case.times).map_err(simulated)?),
        Err(e) => return Err(simulated(e)),
    };
    let n_out = spec.outputs.len();
    let header: Vec<&str> = std::iter::once("t").chain(spec.outputs.iter().map(String::as_str)).collect();
    let rows = fine
        .iter()
        .zip(predicted.chunks_exact(n_out.max(1)))
        .map(|(t, row)| std::iter::once(cell(*t)).chain(row.iter().map(|v| cell(*v))).collect::<Vec<_>>());
    out.write_csv("fitted.csv", &header, rows)?;

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
    fit_plot(&out.stage("fit.svg"), &title, &series)?;
    let points: Vec<(f64, f64)> =
        result.history.iter().flatten().map(|h| (h.evaluations as f64, h.best_value)).collect();
    convergence_plot(&out.stage("convergence.svg"), &format!("{} convergence", s.algorithm.name()), &points)
}
