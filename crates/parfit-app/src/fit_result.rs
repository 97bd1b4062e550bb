//! What `parfit fit` reports once a fit ran, shared by every front end that fits (the CLI, the Python package):
//! the fitted values, `result.json`'s document, a failed fit's message, and the fitted curves (`fitted.csv`)
//! on the grid the fit is drawn on. Front ends decide where these go (files, stdout, Python objects).

use parfit_core::{Cost, Objective, OptimResult, SimError};
use serde_json::{Value, json};

use crate::config::{Algorithm, FitSection};
use crate::fitting::{no_finite_cost, plot_times};

/// How a fit was run, as its report states it.
#[derive(Debug, Clone)]
pub struct FitRun<'a> {
    /// The configuration as the caller named it (a path, or `<config>` for one given as a structure).
    pub config: &'a str,
    pub plugin: &'a str,
    pub kind: &'a str,
    pub algorithm: Algorithm,
    pub cost: Cost,
    pub threads: usize,
    pub seed: u64,
}

/// The iterations a fit may take in all (each horizon stage and the last run have `max_iterations` each), for
/// a progress display; `None` without a limit.
pub fn iteration_budget(fit: &FitSection) -> Option<usize> {
    fit.max_iterations.map(|n| n * (fit.horizons.len() + 1))
}

/// The fitted value of each free parameter (in model units), in the objective's order.
pub fn fitted_values(objective: &Objective, result: &OptimResult) -> Vec<(String, f64)> {
    let spec = objective.model().spec();
    let params = objective.params(&result.x);
    objective.free_names().into_iter().map(|n| (n.clone(), params[spec.param_index(&n).unwrap_or(0)])).collect()
}

/// Why the fit gave no result, when it gave none: no candidate had a finite cost.
pub fn failure(objective: &Objective, x0: &[f64], result: &OptimResult) -> Option<String> {
    (!result.value.is_finite()).then(|| {
        format!(
            "the fit failed: {} (no candidate could be simulated; {}); nothing was written",
            result.termination,
            no_finite_cost(objective, x0)
        )
    })
}

/// The fit's summary (`parfit fit --format json`): fitted values, cost, counts, termination and how it ran.
pub fn result_json(result: &OptimResult, fitted: &[(String, f64)], run: &FitRun) -> Value {
    let x: serde_json::Map<String, Value> = fitted.iter().map(|(n, v)| (n.clone(), json!(v))).collect();
    json!({
        "x": x,
        "value": result.value,
        "cost": run.cost.name(),
        "evaluations": result.evaluations,
        "iterations": result.iterations,
        "termination": result.termination,
        "seconds": result.seconds,
        "algorithm": run.algorithm.name(),
        "seed": run.seed,
        "threads": run.threads,
        "model": { "plugin": run.plugin, "kind": run.kind },
        "config": run.config,
    })
}

/// `result.json`: the summary with the convergence history (`null` when it was not recorded).
pub fn result_document(result: &OptimResult, fitted: &[(String, f64)], run: &FitRun) -> Value {
    let mut doc = result_json(result, fitted, run);
    doc["history"] = serde_json::to_value(&result.history).unwrap_or_default();
    doc
}

/// The fitted model's outputs over the data's span: `values` holds one row of `outputs.len()` values per time.
#[derive(Debug, Clone, PartialEq)]
pub struct FittedCurves {
    pub outputs: Vec<String>,
    pub times: Vec<f64>,
    pub values: Vec<f64>,
}

impl FittedCurves {
    /// `fitted.csv`'s header: `t`, then the outputs.
    pub fn header(&self) -> Vec<&str> {
        std::iter::once("t").chain(self.outputs.iter().map(String::as_str)).collect()
    }

    /// `fitted.csv`'s rows: each time and the outputs there, in shortest round-trip form.
    pub fn rows(&self) -> impl Iterator<Item = Vec<String>> + '_ {
        let cell = |v: f64| format!("{v:?}");
        self.times
            .iter()
            .zip(self.values.chunks_exact(self.outputs.len().max(1)))
            .map(move |(t, row)| std::iter::once(cell(*t)).chain(row.iter().map(|v| cell(*v))).collect())
    }

    /// Output `j`'s curve as (t, value) points.
    pub fn curve(&self, j: usize) -> Vec<(f64, f64)> {
        let n = self.outputs.len();
        self.times.iter().enumerate().map(|(i, &t)| (t, self.values[i * n + j])).collect()
    }
}

/// The fitted model at `result` on a fine grid over the data's time span ([`plot_times`]). A model on a fixed
/// time step (Vensim) refuses times between its steps as bad input: its curves are drawn at the data's times.
pub fn fitted_curves(objective: &Objective, result: &OptimResult) -> std::result::Result<FittedCurves, String> {
    let case = objective.case();
    let outputs = objective.model().spec().outputs.clone();
    let params = objective.params(&result.x);
    let simulated = |e: SimError| format!("simulating the fitted model: {e}");
    let (Some(&t0), Some(&t1)) = (case.times.first(), case.times.last()) else {
        return Err(simulated(SimError::BadInput("the data have no times".into())));
    };
    let fine = plot_times(t0, t1);
    let (times, values) = match objective.predict(&params, &fine) {
        Ok(values) => (fine, values),
        Err(SimError::BadInput(_)) => (case.times.clone(), objective.predict(&params, &case.times).map_err(simulated)?),
        Err(e) => return Err(simulated(e)),
    };
    Ok(FittedCurves { outputs, times, values })
}
