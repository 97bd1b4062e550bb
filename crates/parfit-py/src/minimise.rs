//! `parfit.minimise`: a Python function minimised by the engine's optimisers — the same ask–tell driver
//! (`parfit_core::optimise::minimise`) and the same optimisers, built from the same `[fit]` settings by the same
//! code (`parfit_app::fitting::value_optimiser`), as `parfit fit` uses on a model file.
//!
//! The driver runs under [`engine::run`] (off the calling thread, GIL released while it waits); each batch the
//! optimiser asks for goes to the Python side in one call (`evaluate(bytes, rows)`, the package's adaptor, which
//! calls the user's function once per candidate in batch order or once per batch), with the GIL attached on the
//! work thread. Values that are not finite are failures, `+inf`, as the engine's objective counts them. An
//! exception from the function stops the run at once and is raised from `minimise`.

use parfit_app::config::{Algorithm, FitSection};
use parfit_app::fitting::{stopping, value_optimiser};
use parfit_core::optimise::{BatchEvaluator, Bounds, minimise as drive};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::engine::{self, Control};
use crate::errors::{self, ConfigError};
use crate::{config, model};

/// The `[fit]` stopping rules `options` may set beside the algorithm's own `[fit.<algorithm>]` keys.
const STOPPING: [&str; 6] = ["max_iterations", "max_evaluations", "target_value", "max_seconds", "ftol", "xtol"];

/// Minimise `evaluate` (the package's adaptor around the user's function) from `x0` within `lower`..`upper`.
/// Returns the result as a dict: `x`, `value`, `evaluations`, `iterations`, `termination`, `seconds`, `history`
/// (rows of iteration, evaluations, best value and best point).
#[pyfunction]
#[pyo3(signature = (evaluate, x0, lower, upper, *, algorithm, seed, threads=None, options=None, max_evaluations=None, progress=None))]
#[allow(clippy::too_many_arguments)]
pub fn minimise<'py>(
    py: Python<'py>,
    evaluate: Py<PyAny>,
    x0: Vec<f64>,
    lower: Vec<f64>,
    upper: Vec<f64>,
    algorithm: String,
    seed: u64,
    threads: Option<usize>,
    options: Option<Bound<'py, PyDict>>,
    max_evaluations: Option<usize>,
    progress: Option<Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let bounds = check_start(&x0, lower, upper)?;
    let fit = fit_section(&algorithm, options, max_evaluations)?;
    let stop = stopping(&fit);
    stop.check().map_err(|e| ConfigError::new_err(format!("options: {e}")))?;
    let mut optimiser = value_optimiser(&fit, x0.clone(), &bounds, seed, 1.0).map_err(errors::config)?;
    let threads = engine::threads(threads, None)?;
    let n = x0.len();
    let (result, raised) = engine::run(py, threads, progress.as_ref(), |control| {
        let mut monitor = engine::Monitor::new(control, stop.max_iterations);
        let mut evaluator = PyEvaluator { evaluate: &evaluate, n, control, raised: None };
        let result = drive(optimiser.as_mut(), &mut evaluator, &stop, &mut monitor, true);
        (result, evaluator.raised)
    })?;
    if let Some(e) = raised {
        return Err(e);
    }
    if !result.value.is_finite() {
        return Err(errors::failed(format!(
            "minimise failed: {} (the function gave no finite value at any point tried, from x0 = {x0:?} on)",
            result.termination
        )));
    }
    let termination = serde_json::to_value(result.termination)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| result.termination.to_string());
    let history = PyList::empty(py);
    for h in result.history.iter().flatten() {
        let row = PyDict::new(py);
        row.set_item("iteration", h.iteration)?;
        row.set_item("evaluations", h.evaluations)?;
        row.set_item("best_value", h.best_value)?;
        row.set_item("best_x", &h.best_x)?;
        history.append(row)?;
    }
    let out = PyDict::new(py);
    out.set_item("x", model::bytes(py, &result.x))?;
    out.set_item("value", result.value)?;
    out.set_item("evaluations", result.evaluations)?;
    out.set_item("iterations", result.iterations)?;
    out.set_item("termination", termination)?;
    out.set_item("seconds", result.seconds)?;
    out.set_item("history", history)?;
    Ok(out)
}

/// The box and the start, checked: as many bounds as coordinates, no NaN, lower ≤ upper, a finite start inside.
fn check_start(x0: &[f64], lower: Vec<f64>, upper: Vec<f64>) -> PyResult<Bounds> {
    let bad = |message: String| Err(ConfigError::new_err(message));
    if x0.is_empty() {
        return bad("x0: give at least one coordinate".into());
    }
    if lower.len() != x0.len() || upper.len() != x0.len() {
        return bad(format!("bounds: {} pairs given for {} coordinates of x0", lower.len().min(upper.len()), x0.len()));
    }
    for (i, ((x, lo), hi)) in x0.iter().zip(&lower).zip(&upper).enumerate() {
        if !x.is_finite() {
            return bad(format!("x0[{i}] must be a finite number (got {x:?})"));
        }
        if lo.is_nan() || hi.is_nan() || lo > hi || *lo == f64::INFINITY || *hi == f64::NEG_INFINITY {
            return bad(format!(
                "bounds[{i}]: ({lo:?}, {hi:?}) is no interval (lower ≤ upper, lower < inf, upper > -inf)"
            ));
        }
        if x < lo || x > hi {
            return bad(format!("x0[{i}] = {x:?} lies outside its bounds ({lo:?}, {hi:?})"));
        }
    }
    Ok(Bounds { lower, upper })
}

/// The `[fit]` table these arguments stand for: `algorithm`, the stopping rules among `options` and
/// `max_evaluations`, and the rest of `options` as the `[fit.<algorithm>]` table — read as a configuration's.
fn fit_section(
    algorithm: &str,
    options: Option<Bound<'_, PyDict>>,
    max_evaluations: Option<usize>,
) -> PyResult<FitSection> {
    let algorithm = toml::Value::String(algorithm.to_string())
        .try_into::<Algorithm>()
        .map_err(|e| ConfigError::new_err(format!("algorithm: {e}")))?;
    let mut fit = toml::Table::new();
    fit.insert("algorithm".into(), algorithm.name().into());
    let mut own = toml::Table::new();
    if let Some(dict) = options {
        let toml::Value::Table(table) = config::to_toml(dict.as_any(), "options")? else {
            return Err(ConfigError::new_err("options must be a dict"));
        };
        for (key, value) in table {
            if STOPPING.contains(&key.as_str()) {
                fit.insert(key, value);
            } else {
                own.insert(key, value);
            }
        }
    }
    if let Some(max) = max_evaluations {
        if fit.contains_key("max_evaluations") {
            return Err(ConfigError::new_err("max_evaluations is given twice: as an argument and in options"));
        }
        fit.insert("max_evaluations".into(), toml::Value::Integer(i64::try_from(max).unwrap_or(i64::MAX)));
    }
    fit.insert(algorithm.name().into(), toml::Value::Table(own));
    toml::Value::Table(fit)
        .try_into::<FitSection>()
        .map_err(|e| ConfigError::new_err(format!("options of {}: {}", algorithm.name(), e.to_string().trim_end())))
}

/// The optimiser's batches through the Python adaptor, on the engine's work thread.
struct PyEvaluator<'a> {
    evaluate: &'a Py<PyAny>,
    n: usize,
    control: &'a Control,
    /// The exception the function raised; once set, nothing more is called and the run stops.
    raised: Option<PyErr>,
}

impl BatchEvaluator for PyEvaluator<'_> {
    fn evaluate(&mut self, batch: &[Vec<f64>], values: &mut [f64]) {
        values.fill(f64::INFINITY);
        if self.raised.is_some() {
            return;
        }
        let flat: Vec<f64> = batch.iter().flatten().copied().collect();
        let outcome = Python::attach(|py| -> PyResult<Vec<f64>> {
            let got = self.evaluate.call1(py, (model::bytes(py, &flat), batch.len(), self.n))?;
            let got: Vec<f64> = got.extract(py)?;
            if got.len() != batch.len() {
                return Err(ConfigError::new_err(format!(
                    "the function gave {} values for a batch of {} candidates",
                    got.len(),
                    batch.len()
                )));
            }
            Ok(got)
        });
        match outcome {
            // A value that is not finite is a failed evaluation, as the engine's objective counts it.
            Ok(got) => {
                for (slot, v) in values.iter_mut().zip(got) {
                    *slot = if v.is_finite() { v } else { f64::INFINITY };
                }
            }
            Err(e) => {
                self.raised = Some(e);
                self.control.stop_flag().store(true, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }
}
