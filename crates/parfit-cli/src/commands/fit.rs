//! `parfit fit`: fit one model to one dataset with a chosen optimiser; batches are evaluated in parallel.

use std::path::{Path, PathBuf};

use parfit_app::fit_result::{
    FitRun, failure, fitted_curves, fitted_values, iteration_budget, result_document, result_json,
};
use parfit_app::fitting::{FitOutcome, data_case, fit_staged};
use parfit_core::{Objective, OptimResult};

use crate::commands::{ConfiguredModel, cost_from_config, load_for_run, model_from_config, show};
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
    let budget = iteration_budget(&config.fit);
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
    if let Some(why) = failure(&objective, &x0, &result) {
        return Err(failed(why));
    }

    let fitted = fitted_values(&objective, &result);
    let config_name = config_path.display().to_string();
    let summary = FitRun {
        config: &config_name,
        plugin: &plugin,
        kind: &kind,
        algorithm: config.fit.algorithm,
        cost,
        threads,
        seed,
    };

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

fn table(objective: &Objective, result: &OptimResult, fitted: &[(String, f64)], s: &FitRun, x0: &[f64]) -> String {
    let starts = objective.params(x0);
    let spec = objective.model().spec();
    let mut text = format!("fit        {} ({} via plugin {})\n", s.config, s.kind, s.plugin);
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
    s: &FitRun,
) -> CliResult<()> {
    let doc = result_document(result, fitted, s);
    let text = serde_json::to_string_pretty(&doc).map_err(|e| failed(e.to_string()))?;
    out.write("result.json", (text + "\n").as_bytes())?;

    let curves = fitted_curves(objective, result).map_err(failed)?;
    out.write_csv("fitted.csv", &curves.header(), curves.rows())?;

    let case = objective.case();
    let spec = objective.model().spec();
    let observed = objective.observed_names();
    let n_obs = case.observations.len() / case.times.len().max(1);
    let series: Vec<Series> = observed
        .iter()
        .enumerate()
        .map(|(k, name)| Series {
            name,
            data: case
                .times
                .iter()
                .enumerate()
                .map(|(i, &t)| (t, case.observations[i * n_obs + k]))
                .filter(|p| p.1.is_finite())
                .collect(),
            fitted: curves.curve(spec.output_index(name).unwrap_or(0)),
        })
        .collect();
    let title = format!("{}: {} = {}", s.config, s.cost.name().to_uppercase(), show(result.value));
    fit_plot(&out.stage("fit.svg"), &title, &series)?;
    let points: Vec<(f64, f64)> =
        result.history.iter().flatten().map(|h| (h.evaluations as f64, h.best_value)).collect();
    convergence_plot(&out.stage("convergence.svg"), &format!("{} convergence", s.algorithm.name()), &points)
}
