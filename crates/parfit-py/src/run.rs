//! `parfit.run`: one simulation of a model file or a model configuration (`parfit run`'s set-up,
//! `parfit_app::simulate`), or a Monte Carlo configuration's paths (`parfit_app::montecarlo` through the
//! `Local` dispatch). A projection configuration goes to [`crate::project`].

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use parfit_abi::Entry;
use parfit_app::config::{LoadedConfig, parse_times};
use parfit_app::dispatch::Local;
use parfit_app::montecarlo::{McConfig, Plan, not_monte_carlo, report, simulate_all, summarise_points, summary_table};
use parfit_app::simulate::{SimulateError, apply_sets, config_params, config_times, run_times, simulate};
use parfit_core::OutputKind;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::{self, ConfigError};
use crate::inputs::Files;
use crate::{config, engine, plugins};

/// What kind of run a configuration is: its path (for messages) and text when it is a TOML configuration;
/// `None` for a model file.
fn configuration(config: &Bound<'_, PyAny>, files: &Files) -> PyResult<Option<(PathBuf, String)>> {
    if config.cast::<PyDict>().is_err() {
        let path: PathBuf = config.extract().map_err(|_| {
            ConfigError::new_err("run() takes a model file, a configuration file (.toml) or a configuration dict")
        })?;
        if path.extension().is_none_or(|e| e != "toml") {
            return Ok(None);
        }
    }
    let (path, text) = config::text(config, files)?;
    // A syntax error is the parser's, at its line and column, whatever the configuration configures.
    let _: toml::Table =
        toml::from_str(&text).map_err(|e| ConfigError::new_err(parfit_app::config::toml_error(&path, &text, &e)))?;
    Ok(Some((path, text)))
}

/// Which run `run()` makes of `config`: "model" (a model file or model configuration), "montecarlo" or
/// "projection".
#[pyfunction]
#[pyo3(signature = (config, *, files=BTreeMap::new()))]
pub fn run_kind(config: &Bound<'_, PyAny>, files: BTreeMap<String, String>) -> PyResult<&'static str> {
    let files = Files::new(files);
    Ok(match configuration(config, &files)? {
        Some((_, text)) if parfit_app::projection::is_projection(&text) => "projection",
        Some((_, text)) if parfit_app::montecarlo::is_monte_carlo(&text) => "montecarlo",
        _ => "model",
    })
}

/// One simulation: `{"columns": [...], "times": [...] or None, "values": [rows × columns], "parameters": {...}}`.
#[pyfunction]
#[pyo3(signature = (config, *, times=None, set=None, plugins=Vec::new(), files=BTreeMap::new()))]
pub fn run_model<'py>(
    py: Python<'py>,
    config: &Bound<'py, PyAny>,
    times: Option<String>,
    set: Option<&Bound<'py, PyDict>>,
    plugins: Vec<PathBuf>,
    files: BTreeMap<String, String>,
) -> PyResult<Bound<'py, PyDict>> {
    let files = Files::new(files);
    let sets = crate::config::sets(set)?;
    let (model, mut params, configured, source) = match configuration(config, &files)? {
        Some((path, text)) => {
            let loaded = LoadedConfig::parse(&path, &text).map_err(errors::config)?;
            let model = crate::plugins::configured_model(py, &plugins, &loaded, &files)?.model;
            let params = config_params(&loaded, model.as_ref()).map_err(errors::config)?;
            let times = config_times(&loaded, &files).map_err(errors::config)?;
            (model, params, times, path.display().to_string())
        }
        None => {
            let path: PathBuf = config.extract()?;
            let found = plugins::find(py, &plugins)?;
            let (plugin, kind) = plugins::for_file(&found, &path)?;
            if plugin.entry(&kind) == Some(Entry::Paths) {
                let place = path.display().to_string();
                let instead = format!(
                    "run a configuration with [model] source = {place:?} and a [montecarlo] section, or open it \
                     with parfit.MonteCarloModel"
                );
                return Err(crate::model::not_a_model(&place, &kind, &instead));
            }
            let model = plugins::create_model(plugin, &kind, Some(&path), &files, Default::default(), "run()")?;
            let params = model.spec().defaults();
            (model, params, None, path.display().to_string())
        }
    };
    apply_sets(model.as_ref(), &mut params, &sets, "set").map_err(errors::config)?;
    let given = match times {
        Some(t) => Some((parse_times(&t).map_err(|e| ConfigError::new_err(format!("times: {e}")))?, "times".into())),
        None => None,
    };
    let times = run_times(model.as_ref(), given, configured, &source, "times=\"START:STOP:COUNT\" or an array")
        .map_err(errors::config)?;
    let simulated = py.detach(|| simulate(model.as_ref(), &params, &times, &source)).map_err(|e| match e {
        SimulateError::Input(e) => errors::config(e),
        SimulateError::Failed(m) => errors::failed(m),
    })?;
    let spec = model.spec();
    let out = PyDict::new(py);
    out.set_item("columns", &spec.outputs)?;
    out.set_item("times", (spec.output_kind == OutputKind::TimeSeries).then_some(&times))?;
    out.set_item("values", simulated.values)?;
    let parameters = PyDict::new(py);
    for (p, v) in spec.params.iter().zip(&params) {
        parameters.set_item(&p.name, v)?;
    }
    out.set_item("parameters", parameters)?;
    Ok(out)
}

/// A Monte Carlo configuration's run: `{"summary_columns", "summary_rows"` (summary.csv's cells: numbers in
/// shortest round-trip form, and the output's name), `"report"` (summary.json's text), `"paths"`: None, or
/// `{"columns", "swept" (each point's swept values), "values" (each point's paths × outputs), "outputs"}}`.
#[pyfunction]
#[pyo3(signature = (config, *, set=None, seed=None, threads=None, plugins=Vec::new(), progress=None, files=BTreeMap::new()))]
#[allow(clippy::too_many_arguments)]
pub fn run_montecarlo<'py>(
    py: Python<'py>,
    config: &Bound<'py, PyAny>,
    set: Option<&Bound<'py, PyDict>>,
    seed: Option<u64>,
    threads: Option<usize>,
    plugins: Vec<PathBuf>,
    progress: Option<Bound<'py, PyAny>>,
    files: BTreeMap<String, String>,
) -> PyResult<Bound<'py, PyDict>> {
    let files = Files::new(files);
    let (path, text) = config::text(config, &files)?;
    let mc = McConfig::parse(&path, &text).map_err(errors::config)?;
    let threads = config::threads_in(&path, &text, mc.threads, threads)?;
    let found = plugins::find(py, &plugins)?;
    let plugin = plugins::choose(&found, mc.model.plugin.as_deref(), &mc.model.kind)?;
    let origin = path.display().to_string();
    let options = parfit_app::fitting::model_options(&mc.model.options, &origin).map_err(errors::config)?;
    let source = mc.model.source.as_ref().map(|s| match path.parent() {
        Some(dir) if s.is_relative() => dir.join(s),
        _ => s.clone(),
    });
    if plugin.entry(&mc.model.kind) != Some(Entry::Paths) {
        return Err(errors::config(not_monte_carlo(&mc)));
    }
    // The model through the plugin's paths entry point: its options and source text as its JSON configuration.
    let model = plugins::create_paths(plugin, &mc.model.kind, source.as_deref(), &files, options, &origin)?;
    let spec = parfit_core::paths::PathRunner::spec(&model);
    let plan = Plan::new(&mc, spec, seed, &crate::config::sets(set)?, threads).map_err(errors::config)?;

    let start = Instant::now();
    let values = engine::run(py, threads, progress.as_ref(), |control| {
        control.set_total(plan.paths * plan.points.len() as u64);
        simulate_all(&Local, &model, &plan, control.stop_flag(), &|n| control.advance(n))
    })?
    .map_err(errors::run)?
    .ok_or_else(|| errors::failed("the run gathered no results"))?;
    let seconds = start.elapsed().as_secs_f64();

    let summary = summarise_points(&plan, spec.outputs.len(), &values);
    let report = report(&plan, spec, &summary, threads, seconds);
    let out = PyDict::new(py);
    // The table's numbers in shortest round-trip form, which Python reads back to the same floats.
    let (header, rows) = summary_table(&plan, spec, &summary, |v| format!("{v:?}"));
    out.set_item("summary_columns", header)?;
    out.set_item("summary_rows", rows)?;
    out.set_item("report", serde_json::to_string(&report).unwrap_or_default())?;
    if mc.montecarlo.per_path {
        let paths = PyDict::new(py);
        let columns: Vec<String> =
            plan.swept.iter().cloned().chain(["path".into()]).chain(spec.outputs.iter().cloned()).collect();
        paths.set_item("columns", columns)?;
        paths.set_item("swept", plan.points.iter().map(|p| p.swept.clone()).collect::<Vec<_>>())?;
        paths.set_item("values", values)?;
        paths.set_item("outputs", spec.outputs.len())?;
        out.set_item("paths", paths)?;
    } else {
        out.set_item("paths", py.None())?;
    }
    Ok(out)
}
