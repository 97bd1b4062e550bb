//! `parfit.MonteCarloModel`: a Monte Carlo model (a kind its plugin makes through ABI v3's paths entry point, such
//! as a `.mc` file) whose paths are run from Python — every path's outputs at the end of its periods, computed in
//! parallel by the application layer's runner (`parfit_app::montecarlo`), so the numbers are `parfit run`'s
//! `paths.csv` for the same seed, bit for bit, whatever the thread count.

use std::path::PathBuf;
use std::sync::Arc;

use parfit_abi::Entry;
use parfit_abi::host::PluginPaths;
use parfit_app::dispatch::Local;
use parfit_app::montecarlo::{Plan, simulate_all};
use parfit_core::paths::PathRunner;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use crate::errors::{self, ConfigError};
use crate::inputs::Files;
use crate::model::{by_name, bytes, parameter_dicts, plugin_options};
use crate::{engine, plugins};

/// A Monte Carlo model made by a plugin; the Python class `parfit.MonteCarloModel` wraps it.
#[pyclass(frozen, module = "parfit._native", name = "NativeMonteCarloModel")]
pub struct NativeMonteCarloModel {
    model: Arc<PluginPaths>,
    path: Option<PathBuf>,
    kind: String,
    plugin: String,
}

/// A whole-number argument as the engine takes it, or what its range is.
fn whole(value: i128, name: &str, least: u64) -> PyResult<u64> {
    u64::try_from(value)
        .ok()
        .filter(|v| *v >= least)
        .ok_or_else(|| ConfigError::new_err(format!("{name}= must be in {least}..=2^53 (got {value})")))
}

#[pymethods]
impl NativeMonteCarloModel {
    /// Make the Monte Carlo model of `path` (the plugin reading its extension) or of `kind`, with the plugin
    /// `options` (`[model.options]` of a configuration).
    #[new]
    #[pyo3(signature = (path=None, *, kind=None, plugin=None, plugins=Vec::new(), options=None))]
    fn new(
        py: Python<'_>,
        path: Option<PathBuf>,
        kind: Option<String>,
        plugin: Option<String>,
        plugins: Vec<PathBuf>,
        options: Option<Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        let found = plugins::find(py, &plugins)?;
        let (chosen, kind) = plugins::for_model(&found, path.as_deref(), kind, plugin.as_deref())?;
        let place = path.as_ref().map_or_else(|| format!("kind '{kind}'"), |p| p.display().to_string());
        match chosen.entry(&kind) {
            Some(Entry::Paths) => {}
            Some(Entry::Projection) => {
                return Err(ConfigError::new_err(format!(
                    "{place}: model kind '{kind}' is a projection, not a Monte Carlo model: run it with parfit.project"
                )));
            }
            _ => {
                return Err(ConfigError::new_err(format!(
                    "{place}: model kind '{kind}' is not a Monte Carlo model (its plugin makes no paths of it): open \
                     it with parfit.Model"
                )));
            }
        }
        let (json, origin) = plugin_options(path.as_deref(), &kind, options)?;
        let model = plugins::create_paths(chosen, &kind, path.as_deref(), &Files::default(), json, &origin)?;
        Ok(NativeMonteCarloModel { model: Arc::new(model), path, kind, plugin: chosen.info().name.clone() })
    }

    /// The model file, or None for a model made from a kind alone.
    #[getter]
    fn path(&self) -> Option<PathBuf> {
        self.path.clone()
    }

    #[getter]
    fn kind(&self) -> String {
        self.kind.clone()
    }

    #[getter]
    fn plugin(&self) -> String {
        self.plugin.clone()
    }

    /// The description: `name`, `parameters` (each `name`, `default`, `lower`, `upper`) and `outputs` (each
    /// path's, in column order).
    #[getter]
    fn spec<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let spec = self.model.spec();
        let parameters = parameter_dicts(py, &spec.params)?;
        let d = PyDict::new(py);
        d.set_item("name", &spec.name)?;
        d.set_item("parameters", parameters)?;
        d.set_item("outputs", &spec.outputs)?;
        Ok(d)
    }

    /// Run paths `0..paths` over `periods` periods under `seed` with `params` (a dict by name, the rest defaults,
    /// or a sequence in spec order), on `threads` threads with the GIL released. Returns every path's outputs as
    /// bytes of native f64s (paths × outputs, by path index) and the shape.
    #[pyo3(signature = (params=None, *, paths, periods, seed=0, threads=None, progress=None))]
    #[allow(clippy::too_many_arguments)]
    fn simulate<'py>(
        &self,
        py: Python<'py>,
        params: Option<Bound<'py, PyAny>>,
        paths: i128,
        periods: i128,
        seed: i128,
        threads: Option<usize>,
        progress: Option<Bound<'py, PyAny>>,
    ) -> PyResult<(Bound<'py, PyBytes>, usize, usize)> {
        let spec = self.model.spec();
        let names: Vec<&str> = spec.params.iter().map(|p| p.name.as_str()).collect();
        let params = by_name(params, &names, spec.defaults(), "params", "parameter")?;
        if let Some((name, value)) = names.iter().zip(&params).find(|(_, v)| !v.is_finite()) {
            return Err(ConfigError::new_err(format!("params: {name} must be a finite number (got {value:?})")));
        }
        let (paths, periods, seed) =
            (whole(paths, "paths", 1)?, whole(periods, "periods", 0)?, whole(seed, "seed", 0)?);
        let threads = engine::threads(threads, None)?;
        let n_out = spec.outputs.len();
        let plan = Plan::one_point(paths, periods, seed, params, n_out, threads, &|key| format!("{key}="))
            .map_err(errors::config)?;
        let model: &dyn PathRunner = self.model.as_ref();
        let values = engine::run(py, threads, progress.as_ref(), |control| {
            control.set_total(paths);
            simulate_all(&Local, model, &plan, control.stop_flag(), &|n| control.advance(n))
        })?
        .map_err(|e| match e {
            // A path that failed is the model's failure, as a failed simulation of a Model is.
            parfit_app::RunError::Failed(m) => errors::model(format!("{}: {m}", self.origin())),
            other => errors::run(other),
        })?
        .and_then(|mut points| points.pop())
        .ok_or_else(|| errors::failed("the run gathered no paths"))?;
        Ok((bytes(py, &values), paths as usize, n_out))
    }
}

impl NativeMonteCarloModel {
    /// The model file's name, or its kind, for messages.
    fn origin(&self) -> String {
        match &self.path {
            Some(path) => path.display().to_string(),
            None => format!("model of kind '{}'", self.kind),
        }
    }
}
