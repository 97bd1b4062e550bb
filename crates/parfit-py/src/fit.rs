//! `parfit.fit`: one model fitted to one dataset as `parfit fit` fits it — the same configuration loading and
//! overrides, `parfit_app::fitting::fit_staged` (horizon stages, polish), and the report (`result.json`'s
//! document, the fitted curves of `fitted.csv`) from `parfit_app::fit_result`, which the CLI also calls.

use std::collections::BTreeMap;
use std::path::PathBuf;

use parfit_app::config::Algorithm;
use parfit_app::fit_result::{FitRun, failure, fitted_curves, fitted_values, iteration_budget, result_document};
use parfit_app::fitting::{FitOutcome, cost_from_config, data_case, fit_staged};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::engine;
use crate::errors::{self, ConfigError};
use crate::plugins::Configured;

/// The `algorithm=` keyword as the configuration's algorithm.
pub fn algorithm(name: &str) -> PyResult<Algorithm> {
    Algorithm::ALL.into_iter().find(|a| a.name() == name).ok_or_else(|| {
        let names: Vec<&str> = Algorithm::ALL.iter().map(|a| a.name()).collect();
        ConfigError::new_err(format!("algorithm={name:?} is not one of {}", names.join(", ")))
    })
}

/// Fit as `parfit fit` does; returns the parts the Python `FitResult` is made of.
#[pyfunction]
#[pyo3(signature = (config, *, files, data=None, algorithm=None, set=None, seed=None, threads=None,
                    plugins=Vec::new(), progress=None, history=None))]
#[allow(clippy::too_many_arguments)]
pub fn fit<'py>(
    py: Python<'py>,
    config: &Bound<'py, PyAny>,
    files: BTreeMap<String, String>,
    data: Option<PathBuf>,
    algorithm: Option<String>,
    set: Option<Bound<'py, PyDict>>,
    seed: Option<u64>,
    threads: Option<usize>,
    plugins: Vec<PathBuf>,
    progress: Option<Bound<'py, PyAny>>,
    history: Option<bool>,
) -> PyResult<Bound<'py, PyDict>> {
    let (mut loaded, files) = crate::config::load_with_tables(config, files, data.as_deref(), None)?;
    if let Some(name) = algorithm {
        loaded.config.fit.algorithm = self::algorithm(&name)?;
    }
    let threads = crate::config::threads(&loaded, threads)?;
    let seed = seed.or(loaded.config.seed).unwrap_or(0);
    let sets = crate::config::sets(set.as_ref())?;
    let Configured { model, plugin, kind } = crate::plugins::configured_model(py, &plugins, &loaded, &files)?;
    let (data, case) = data_case(&loaded, &files, "a fit", model.spec().inputs.len()).map_err(errors::config)?;
    let outputs = data.outputs.clone();
    let origin = loaded.path.display().to_string();
    let cost = cost_from_config(&loaded.config.fit, &origin).map_err(errors::config)?;
    let record_history = history.unwrap_or(loaded.config.output.history.unwrap_or(true));
    let budget = iteration_budget(&loaded.config.fit);

    let outcome = engine::run(py, threads, progress.as_ref(), |control| {
        let mut monitor = engine::Monitor::new(control, budget);
        fit_staged(&loaded, &model, case, &outputs, cost, &sets, seed, &mut monitor, record_history)
    })?;
    let FitOutcome { objective, x0, result } = outcome.map_err(errors::config)?;
    if let Some(why) = failure(&objective, &x0, &result) {
        return Err(errors::failed(why));
    }
    let fitted = fitted_values(&objective, &result);
    let run = FitRun {
        config: &origin,
        plugin: &plugin,
        kind: &kind,
        algorithm: loaded.config.fit.algorithm,
        cost,
        threads,
        seed,
    };
    let document = result_document(&result, &fitted, &run);
    let curves = fitted_curves(&objective, &result).map_err(errors::failed)?;

    let out = PyDict::new(py);
    out.set_item("x", fitted)?;
    out.set_item("document", document.to_string())?;
    out.set_item("free", objective.free_names())?;
    let fitted = PyDict::new(py);
    fitted.set_item("outputs", &curves.outputs)?;
    fitted.set_item("times", &curves.times)?;
    fitted.set_item("values", &curves.values)?;
    out.set_item("fitted", fitted)?;
    // The observations fitted, for plotting: each observed output's column, NaN where missing.
    let case = objective.case();
    let observed = PyDict::new(py);
    observed.set_item("outputs", objective.observed_names())?;
    observed.set_item("times", &case.times)?;
    observed.set_item("values", &case.observations)?;
    out.set_item("data", observed)?;
    Ok(out)
}
