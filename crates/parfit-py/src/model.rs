//! `parfit.Model`: a model a plugin makes from a model file (the plugin chosen by the file's extension, as
//! `parfit run FILE` chooses it) or from a kind and options, simulated from Python with the GIL released.
//!
//! Only conversions live here: names to positions, Python numbers to the engine's buffers and back (as bytes of
//! native `f64`s, which the Python side views as numpy arrays without a copy or a rounding). The checks on times
//! are the CLI's (`parfit_app::config::check_times` and `check_output_size`).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use parfit_abi::Entry;
use parfit_app::config::{check_output_size, check_plain_values, check_times};
use parfit_core::{Model, ModelSpec, OutputKind, ParamSpec, SimError, Workspace};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use crate::errors::{self, ConfigError};
use crate::inputs::Files;
use crate::{config, plugins};

/// The name options given as keywords go by in messages.
const OPTIONS: &str = "Model options";

/// A model made by a plugin; the Python class `parfit.Model` wraps it.
#[pyclass(frozen, module = "parfit._native", name = "NativeModel")]
pub struct NativeModel {
    model: Arc<dyn Model>,
    path: Option<PathBuf>,
    kind: String,
    plugin: String,
    /// Workspaces of finished calls, reused by the next (a plugin's solver caches live in them).
    workspaces: Mutex<Vec<Workspace>>,
}

#[pymethods]
impl NativeModel {
    /// Make the model of `path` (the plugin reading its extension) or of `kind` (the first plugin offering it,
    /// or the one named `plugin`), with the plugin `options` (`[model.options]` of a configuration).
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
        let (json, origin) = plugin_options(path.as_deref(), &kind, options)?;
        if chosen.entry(&kind) == Some(Entry::Paths) {
            let place =
                path.as_ref().map_or_else(|| format!("parfit.Model(kind={kind:?})"), |p| p.display().to_string());
            return Err(not_a_model(
                &place,
                &kind,
                "open it with parfit.MonteCarloModel (its simulate(paths=, periods=, seed=) gives every path's \
                 outputs), or run a configuration with a [montecarlo] section with parfit.run",
            ));
        }
        let model = plugins::create_model(chosen, &kind, path.as_deref(), &Files::default(), json, &origin)?;
        Ok(NativeModel { model, path, kind, plugin: chosen.info().name.clone(), workspaces: Mutex::new(Vec::new()) })
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

    #[getter]
    fn has_sensitivities(&self) -> bool {
        self.model.has_sensitivities()
    }

    /// The spec: `parameters` (each `name`, `default`, `lower`, `upper`), `inputs`, `outputs`, `output_kind`
    /// (`"time_series"` or `"scalar"`).
    #[getter]
    fn spec<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let spec = self.model.spec();
        let parameters = parameter_dicts(py, &spec.params)?;
        let d = PyDict::new(py);
        d.set_item("parameters", parameters)?;
        d.set_item("inputs", &spec.inputs)?;
        d.set_item("outputs", &spec.outputs)?;
        d.set_item("output_kind", kind_name(spec.output_kind))?;
        Ok(d)
    }

    /// Simulate at `times` (bytes of native f64s; None for a scalar model) with `params` and `inputs` (each a
    /// dict by name, the rest defaults, or a sequence in spec order). Returns the outputs as bytes of native f64s
    /// and their shape (rows, outputs): one row per time, or one row for a scalar model.
    #[pyo3(signature = (params=None, times=None, inputs=None))]
    fn simulate<'py>(
        &self,
        py: Python<'py>,
        params: Option<Bound<'py, PyAny>>,
        times: Option<&[u8]>,
        inputs: Option<Bound<'py, PyAny>>,
    ) -> PyResult<(Bound<'py, PyBytes>, usize, usize)> {
        let call = self.call(params, times, inputs)?;
        let spec = self.model.spec();
        let mut out = vec![0.0; spec.output_len(call.times.len())];
        let mut ws = self.workspace();
        let outcome = py.detach(|| self.model.simulate(&mut ws, &call.params, &call.inputs, &call.times, &mut out));
        self.keep(ws);
        outcome.map_err(|e| self.failed(e))?;
        let rows = rows(spec, call.times.len());
        Ok((bytes(py, &out), rows, spec.outputs.len()))
    }

    /// As [`simulate`](Self::simulate), with the derivatives of every output value with respect to every
    /// parameter: `(values, derivatives, rows, outputs, parameters)`, derivatives in (row, output, parameter)
    /// order. A model without sensitivities is a ModelError.
    #[pyo3(signature = (params=None, times=None, inputs=None))]
    #[allow(clippy::type_complexity)]
    fn sensitivities<'py>(
        &self,
        py: Python<'py>,
        params: Option<Bound<'py, PyAny>>,
        times: Option<&[u8]>,
        inputs: Option<Bound<'py, PyAny>>,
    ) -> PyResult<(Bound<'py, PyBytes>, Bound<'py, PyBytes>, usize, usize, usize)> {
        if !self.model.has_sensitivities() {
            return Err(errors::model(format!(
                "{}: this model ({} via plugin {}) has no sensitivities (exact output derivatives)",
                self.origin(),
                self.kind,
                self.plugin
            )));
        }
        let call = self.call(params, times, inputs)?;
        let spec = self.model.spec();
        let n_values = spec.output_len(call.times.len());
        let n_params = spec.params.len();
        // The derivatives are values × parameters: checked against the memory budget as the values were.
        parfit_core::limits::check_allocation(
            &format!("{}: sensitivities of {n_values} values × {n_params} parameters", self.origin()),
            n_values as f64 * n_params as f64,
            8.0,
        )
        .map_err(ConfigError::new_err)?;
        let mut out = vec![0.0; n_values];
        let mut sens = vec![0.0; n_values * n_params];
        let mut ws = self.workspace();
        let outcome = py.detach(|| {
            self.model.simulate_sensitivities(&mut ws, &call.params, &call.inputs, &call.times, &mut out, &mut sens)
        });
        self.keep(ws);
        outcome.map_err(|e| self.failed(e))?;
        let rows = rows(spec, call.times.len());
        Ok((bytes(py, &out), bytes(py, &sens), rows, spec.outputs.len(), n_params))
    }
}

/// One call's arguments as the engine takes them.
struct Call {
    params: Vec<f64>,
    inputs: Vec<f64>,
    times: Vec<f64>,
}

impl NativeModel {
    /// The model file's name, or its kind, for messages.
    fn origin(&self) -> String {
        match &self.path {
            Some(path) => path.display().to_string(),
            None => format!("model of kind '{}'", self.kind),
        }
    }

    fn call(
        &self,
        params: Option<Bound<'_, PyAny>>,
        times: Option<&[u8]>,
        inputs: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Call> {
        let spec = self.model.spec();
        let names: Vec<&str> = spec.params.iter().map(|p| p.name.as_str()).collect();
        let params = by_name(params, &names, spec.defaults(), "params", "parameter")?;
        if let Some((name, value)) = names.iter().zip(&params).find(|(_, v)| !v.is_finite()) {
            return Err(ConfigError::new_err(format!("params: {name} must be a finite number (got {value:?})")));
        }
        // An input left out is NaN, which asks the model for its own value (as `parfit run` does for every input).
        let input_names: Vec<&str> = spec.inputs.iter().map(String::as_str).collect();
        let inputs = by_name(inputs, &input_names, vec![f64::NAN; input_names.len()], "inputs", "input")?;
        let times = match (times, spec.output_kind) {
            (Some(bytes), _) => floats(bytes)?,
            (None, OutputKind::Scalar) => Vec::new(),
            (None, OutputKind::TimeSeries) => {
                return Err(ConfigError::new_err(format!(
                    "{}: this model's outputs are time series: give times=[...]",
                    self.origin()
                )));
            }
        };
        check_times(&times).map_err(|e| ConfigError::new_err(format!("times: {e}")))?;
        check_output_size("times", spec, times.len()).map_err(ConfigError::new_err)?;
        Ok(Call { params, inputs, times })
    }

    fn workspace(&self) -> Workspace {
        let kept = self.workspaces.lock().unwrap_or_else(|p| p.into_inner()).pop();
        kept.unwrap_or_else(|| self.model.workspace())
    }

    fn keep(&self, ws: Workspace) {
        self.workspaces.lock().unwrap_or_else(|p| p.into_inner()).push(ws);
    }

    /// A simulation's failure, in the engine's words, placed at the model.
    fn failed(&self, e: SimError) -> PyErr {
        errors::model(format!("{}: simulation failed: {e}", self.origin()))
    }
}

/// A spec's parameters as Python dicts (`name`, `default`, `lower`, `upper`), for both kinds of model.
pub fn parameter_dicts<'py>(py: Python<'py>, params: &[ParamSpec]) -> PyResult<Vec<Bound<'py, PyDict>>> {
    params
        .iter()
        .map(|p| {
            let d = PyDict::new(py);
            d.set_item("name", &p.name)?;
            d.set_item("default", p.default)?;
            d.set_item("lower", p.lower)?;
            d.set_item("upper", p.upper)?;
            Ok(d)
        })
        .collect()
}

fn kind_name(kind: OutputKind) -> &'static str {
    match kind {
        OutputKind::TimeSeries => "time_series",
        OutputKind::Scalar => "scalar",
    }
}

/// Rows of a simulation's output table: one per time, or one for a scalar model.
fn rows(spec: &ModelSpec, n_times: usize) -> usize {
    match spec.output_kind {
        OutputKind::TimeSeries => n_times,
        OutputKind::Scalar => 1,
    }
}

/// The refusal of a Monte Carlo kind (made by its plugin's paths entry point) where a model to simulate at times
/// was asked for, at `place`, with what to do `instead`.
pub fn not_a_model(place: &str, kind: &str, instead: &str) -> PyErr {
    ConfigError::new_err(format!(
        "{place}: model kind '{kind}' is a Monte Carlo model, which runs as paths, not at times: {instead}"
    ))
}

/// A model's keyword options as its plugin's JSON configuration, refused as a configuration's `[model.options]`
/// are (JSON has no NaN or infinities); with the name errors about them go by.
pub fn plugin_options(
    path: Option<&std::path::Path>,
    kind: &str,
    options: Option<Bound<'_, PyDict>>,
) -> PyResult<(serde_json::Map<String, serde_json::Value>, String)> {
    let table = match options {
        Some(dict) => match config::to_toml(dict.as_any(), "options")? {
            toml::Value::Table(table) => table,
            _ => toml::Table::new(),
        },
        None => toml::Table::new(),
    };
    let origin = match path {
        Some(path) => format!("{} ({OPTIONS})", path.display()),
        None => format!("kind '{kind}' ({OPTIONS})"),
    };
    check_plain_values(&PathBuf::from(&origin), "", &table, &["model", "options"]).map_err(errors::config)?;
    let json = parfit_app::fitting::model_options(&table, &origin).map_err(errors::config)?;
    Ok((json, origin))
}

/// Values for `names` from a dict by name (the rest as in `defaults`) or a sequence in order.
pub fn by_name(
    given: Option<Bound<'_, PyAny>>,
    names: &[&str],
    mut values: Vec<f64>,
    what: &str,
    singular: &str,
) -> PyResult<Vec<f64>> {
    let Some(given) = given.filter(|g| !g.is_none()) else { return Ok(values) };
    if let Ok(dict) = given.cast::<PyDict>() {
        for (key, value) in dict.iter() {
            let name: String =
                key.extract().map_err(|_| ConfigError::new_err(format!("{what}: keys must be names")))?;
            let i = names.iter().position(|n| *n == name).ok_or_else(|| {
                ConfigError::new_err(format!(
                    "{what}: the model has no {singular} named '{name}' (it has: {})",
                    names.join(", ")
                ))
            })?;
            values[i] = value
                .extract()
                .map_err(|_| ConfigError::new_err(format!("{what}: {name} must be a number (got {value})")))?;
        }
        return Ok(values);
    }
    let sequence: Vec<f64> = given.extract().map_err(|_| {
        ConfigError::new_err(format!(
            "{what}: give a dict of {singular} name -> value or a sequence of numbers in the spec's order (got {})",
            given.get_type().name().map(|n| n.to_string()).unwrap_or_default()
        ))
    })?;
    if sequence.len() != names.len() {
        return Err(ConfigError::new_err(format!(
            "{what}: {} values given for the model's {} {singular}s ({})",
            sequence.len(),
            names.len(),
            names.join(", ")
        )));
    }
    Ok(sequence)
}

/// Native-endian `f64`s from their bytes (as numpy's `tobytes()` writes a float64 array).
pub fn floats(bytes: &[u8]) -> PyResult<Vec<f64>> {
    if !bytes.len().is_multiple_of(8) {
        return Err(ConfigError::new_err(format!("{} bytes are no whole number of float64 values", bytes.len())));
    }
    Ok(bytes.chunks_exact(8).filter_map(|c| c.try_into().ok()).map(f64::from_ne_bytes).collect())
}

/// `values` as bytes of native-endian `f64`s, which numpy reads back bit for bit (`frombuffer`).
pub fn bytes<'py>(py: Python<'py>, values: &[f64]) -> Bound<'py, PyBytes> {
    let raw: Vec<u8> = values.iter().flat_map(|v| v.to_ne_bytes()).collect();
    PyBytes::new(py, &raw)
}
