//! `parfit.fit`: one model fitted to one dataset as `parfit fit` fits it — the same configuration loading and
//! overrides, `parfit_config::fitting::fit_staged` (horizon stages, polish), and the report (`result.json`'s
//! document, the fitted curves of `fitted.csv`) from `parfit_config::fit_result`, which the CLI also calls.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parfit_config::config::{Algorithm, LoadedConfig};
use parfit_config::fit_result::{FitRun, failure, fitted_curves, fitted_values, iteration_budget, result_document};
use parfit_config::fitting::{FitOutcome, cost_from_config, data_case, fit_staged, model_options, model_origin};
use parfit_core::Model;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::{self, ConfigError};
use crate::inputs::Files;
use crate::{config, engine, plugins};

/// A model made from a configuration's `[model]`, and the plugin and kind it came from.
pub struct Configured {
    pub model: Arc<dyn Model>,
    pub plugin: String,
    pub kind: String,
}

/// The configured model, from the plugins found as the CLI finds them (then the wheel's own); errors placed as
/// the CLI places them.
pub fn configured_model(
    py: Python<'_>,
    explicit: &[PathBuf],
    loaded: &LoadedConfig,
    files: &Files,
) -> PyResult<Configured> {
    let section = &loaded.config.model;
    let found = plugins::find(py, explicit)?;
    let plugin = plugins::choose(&found, section.plugin.as_deref(), &section.kind)?;
    let options = model_options(&section.options, &loaded.path.display().to_string()).map_err(errors::config)?;
    let source = section.source.as_ref().map(|s| loaded.resolve(s));
    let model = plugins::create_model(plugin, &section.kind, source.as_deref(), files, options, &model_origin(loaded))?;
    Ok(Configured { model, plugin: plugin.info().name.clone(), kind: section.kind.clone() })
}

/// The configuration, and the files of the run: the disk, and the tables given from Python (`files`, keyed by
/// the names `data` and `cases` point `[data] path` and `[cases] path` at). A configuration resolves its paths
/// against its own directory, so each given table is filed under the path the configuration resolves its name to.
pub fn load_with_tables(
    config: &Bound<'_, PyAny>,
    mut files: BTreeMap<String, String>,
    data: Option<&Path>,
    cases: Option<&Path>,
) -> PyResult<(LoadedConfig, Files)> {
    let mut loaded = config::load(config, &Files::new(files.clone()))?;
    config::replace_tables(&mut loaded, data, cases)?;
    for name in data.into_iter().chain(cases) {
        if let Some(text) = files.remove(&name.display().to_string()) {
            files.insert(loaded.resolve(name).display().to_string(), text);
        }
    }
    Ok((loaded, Files::new(files)))
}

/// The `algorithm=` keyword as the configuration's algorithm.
pub fn algorithm(name: &str) -> PyResult<Algorithm> {
    Algorithm::ALL.into_iter().find(|a| a.name() == name).ok_or_else(|| {
        let names: Vec<&str> = Algorithm::ALL.iter().map(|a| a.name()).collect();
        ConfigError::new_err(format!("algorithm={name:?} is not one of {}", names.join(", ")))
    })
}

/// The `set=` keyword (the CLI's `--set`): parameter starts, each a finite number.
pub fn sets(given: Vec<(String, f64)>) -> PyResult<Vec<(String, f64)>> {
    if let Some((name, value)) = given.iter().find(|(_, v)| !v.is_finite()) {
        return Err(ConfigError::new_err(format!("set: {name} = {value} is not a finite number")));
    }
    Ok(given)
}

/// Fit as `parfit fit` does; returns the parts the Python `FitResult` is made of.
#[pyfunction]
#[pyo3(signature = (config, *, files, data=None, algorithm=None, sets=Vec::new(), seed=None, threads=None,
                    plugins=Vec::new(), progress=None, history=None))]
#[allow(clippy::too_many_arguments)]
pub fn fit<'py>(
    py: Python<'py>,
    config: &Bound<'py, PyAny>,
    files: BTreeMap<String, String>,
    data: Option<PathBuf>,
    algorithm: Option<String>,
    sets: Vec<(String, f64)>,
    seed: Option<u64>,
    threads: Option<usize>,
    plugins: Vec<PathBuf>,
    progress: Option<Bound<'py, PyAny>>,
    history: Option<bool>,
) -> PyResult<Bound<'py, PyDict>> {
    let (mut loaded, files) = load_with_tables(config, files, data.as_deref(), None)?;
    if let Some(name) = algorithm {
        loaded.config.fit.algorithm = self::algorithm(&name)?;
    }
    let configured =
        parfit_config::configured_threads(threads.is_some(), loaded.config.threads, || loaded.locate(&["threads"]))
            .map_err(errors::config)?;
    let threads = engine::threads(threads, configured)?;
    let seed = seed.or(loaded.config.seed).unwrap_or(0);
    let sets = self::sets(sets)?;
    let Configured { model, plugin, kind } = configured_model(py, &plugins, &loaded, &files)?;
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
