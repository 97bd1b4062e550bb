//! `parfit fit`: fit one model to one dataset with a chosen optimiser; batches are evaluated in parallel.

use std::path::{Path, PathBuf};

use parfit_core::optimise::{NelderMead, Stopping, minimise};
use parfit_core::{Case, Cost, Objective, OptimResult, Termination};
use serde_json::json;

use crate::commands::{
    ConfiguredModel, cell, configure_objective, cost_from_config, load_for_run, model_from_config, run_algorithm, show,
    validate_options,
};
use crate::config::Algorithm;
use crate::data::read_observations;
use crate::error::{CliResult, failed, input};
use crate::plot::{Series, convergence_plot, fit_plot};
use crate::progress::CliMonitor;
use crate::{Common, Format, parse_sets};

pub fn fit(explicit: &[PathBuf], config_path: &Path, common: &Common) -> CliResult<()> {
    let (loaded, origin, threads, seed) = load_for_run(config_path, common)?;
    let config = &loaded.config;

    let ConfiguredModel { model, plugin, kind } = model_from_config(explicit, &loaded, common)?;
    let data = config.data.as_ref().ok_or_else(|| input(format!("{origin}: a fit needs a [data] section")))?;
    let columns: Vec<String> =
        data.outputs.iter().map(|o| data.columns.get(o).cloned().unwrap_or_else(|| o.clone())).collect();
    let case = read_observations(&loaded.resolve(&data.path), &data.time, &columns)?;

    let cost = cost_from_config(&config.fit, &origin)?;
    let sets = parse_sets(&common.set)?;
    let build = |case: Case| configure_objective(&loaded, &model, case, &data.outputs, cost, &sets);
    let mut objective = build(case.clone())?;
    let x0 = objective.start().map_err(|e| input(format!("{origin}: {e}")))?;
    if x0.is_empty() {
        return Err(input(format!("{origin}: every parameter is fixed; nothing to fit")));
    }
    let bounds = objective.bounds();
    let horizons = &config.fit.horizons;
    if let Some(h) = horizons.windows(2).find(|w| w[1] <= w[0]) {
        return Err(input(format!("{origin}: [fit] horizons must increase ({} is followed by {})", h[0], h[1])));
    }
    if let Some(h) = horizons.iter().find(|h| case.times.iter().filter(|t| *t <= *h).count() < 2) {
        return Err(input(format!("{origin}: [fit] horizon {h} leaves fewer than two data rows")));
    }

    let defaults = Stopping::default();
    let stop = Stopping {
        max_iterations: config.fit.max_iterations,
        max_evaluations: config.fit.max_evaluations,
        target_value: config.fit.target_value,
        max_seconds: config.fit.max_seconds,
        ftol: config.fit.ftol.unwrap_or(defaults.ftol),
        xtol: config.fit.xtol.unwrap_or(defaults.xtol),
    };
    validate_options(&config.fit, &origin)?;
    let record_history = config.output.history.unwrap_or(true);
    let mut monitor = CliMonitor::new(stop.max_iterations.map(|n| n * (horizons.len() + 1)));
    let mut result: Option<OptimResult> = None;
    for (stage, horizon) in horizons.iter().map(Some).chain([None]).enumerate() {
        let mut stage_objective = match horizon {
            Some(&h) => build(truncate(&case, h))?,
            None => build(case.clone())?,
        };
        let start = result.as_ref().map_or_else(|| x0.clone(), |r| r.x.clone());
        // The basin around the optimum narrows as the horizon grows (a phase error grows with time), so later
        // stages search a proportionally smaller neighbourhood of the previous stage's answer.
        let span = |h: Option<&f64>| h.copied().unwrap_or(case.times[case.times.len() - 1]) - case.times[0];
        let scale = if stage == 0 { 1.0 } else { (span(horizons.first()) / span(horizon)).clamp(1e-3, 1.0) };
        // Each stage gets its own seed so stages do not replay the same random draws.
        let stage_seed = seed.wrapping_add(stage as u64);
        let r = run_algorithm(
            &config.fit,
            &mut stage_objective,
            start,
            &bounds,
            stage_seed,
            scale,
            &stop,
            &mut monitor,
            record_history,
        );
        let cancelled = r.termination == Termination::Cancelled;
        result = Some(match result {
            Some(previous) => chain(previous, r, false),
            None => r,
        });
        if cancelled {
            break;
        }
        if horizon.is_none() {
            objective = stage_objective;
        }
    }
    let mut result = result.expect("at least one stage runs");
    if config.fit.polish && result.termination != Termination::Cancelled {
        let mut nm = NelderMead::new(result.x.clone(), bounds.clone(), config.fit.nelder_mead.clone());
        let polish_stop = Stopping { max_iterations: None, max_evaluations: Some(20_000), ..stop.clone() };
        let r = minimise(&mut nm, &mut objective, &polish_stop, &mut monitor, record_history);
        result = chain(result, r, true);
    }
    monitor.finish();

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

/// The observations up to and including time `horizon`.
fn truncate(case: &Case, horizon: f64) -> Case {
    let rows = case.times.iter().take_while(|t| **t <= horizon).count();
    let width = case.observations.len() / case.times.len().max(1);
    Case {
        id: format!("{} (t ≤ {horizon})", case.id),
        inputs: case.inputs.clone(),
        times: case.times[..rows].to_vec(),
        observations: case.observations[..rows * width].to_vec(),
    }
}

/// Account for two consecutive optimisation runs as one. When both minimised the same objective the better
/// point wins; otherwise (a later horizon stage) the second run's result stands.
fn chain(first: OptimResult, second: OptimResult, same_objective: bool) -> OptimResult {
    let keep_first = same_objective && first.value <= second.value;
    let history = match (first.history.as_ref(), second.history) {
        (Some(a), Some(b)) => {
            let (evaluations, iterations) = a.last().map_or((0, 0), |h| (h.evaluations, h.iteration));
            let floor = if same_objective { a.last().map_or(f64::INFINITY, |h| h.best_value) } else { f64::INFINITY };
            let mut joined = a.clone();
            joined.extend(b.into_iter().map(|mut h| {
                h.evaluations += evaluations;
                h.iteration += iterations;
                h.best_value = h.best_value.min(floor);
                h
            }));
            Some(joined)
        }
        (a, _) => a.cloned(),
    };
    let (x, value) = if keep_first { (first.x, first.value) } else { (second.x, second.value) };
    OptimResult {
        x,
        value,
        evaluations: first.evaluations + second.evaluations,
        iterations: first.iterations + second.iterations,
        termination: second.termination,
        seconds: second.seconds,
        history,
    }
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
