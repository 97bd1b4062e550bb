//! One simulation of a model, as `parfit run` does it on a model file or a model configuration (and the Python
//! package's `run`): the parameters (the model's defaults, then a configuration's `[parameters]` fixed values or
//! starts, then `--set` overrides), the times (given, else a configuration's `[run] times`, else its data's
//! times), checked against the memory budget, and the run itself with NaN inputs (the model's own defaults).

use parfit_core::{Model, OutputKind, SimError, SimStats};

use crate::config::{LoadedConfig, check_output_size};
use crate::data::read_observations;
use crate::{InputError, Loader, Result, input};

/// A configuration's parameter values: the model's defaults, with each `[parameters]` entry's `fixed` value (or
/// else its `start`) in place.
pub fn config_params(loaded: &LoadedConfig, model: &dyn Model) -> Result<Vec<f64>> {
    let mut params = model.spec().defaults();
    let origin = loaded.path.display().to_string();
    for (name, p) in &loaded.config.parameters {
        let i = param_index(model, name, &origin)?;
        if let (Some(v), Some(slot)) = (p.fixed.or(p.start), params.get_mut(i)) {
            *slot = v;
        }
    }
    Ok(params)
}

/// A configuration's output times: `[run] times`, else the times of its `[data]` table (read through `files`),
/// else none.
pub fn config_times(loaded: &LoadedConfig, files: &dyn Loader) -> Result<Option<Vec<f64>>> {
    match (&loaded.config.run.times, &loaded.config.data) {
        (Some(t), _) => Ok(Some(t.values().map_err(|e| {
            // A range's errors quote it ("times '0:1:0': …"); a list's say what is wrong with it.
            let what = if e.starts_with("times '") { e } else { format!("times: {e}") };
            input(format!("{}: [run] {what}", loaded.locate(&["run", "times"])))
        })?)),
        (None, Some(data)) => Ok(Some(read_observations(files, &loaded.resolve(&data.path), &data.time, &[])?.times)),
        (None, None) => Ok(None),
    }
}

/// Put `sets` (name, value) into `params` (the model's parameter vector); `origin` names where they came from in errors (`--set`).
pub fn apply_sets(model: &dyn Model, params: &mut [f64], sets: &[(String, f64)], origin: &str) -> Result<()> {
    for (name, value) in sets {
        let i = param_index(model, name, origin)?;
        if let Some(p) = params.get_mut(i) {
            *p = *value;
        }
    }
    Ok(())
}

/// The index of parameter `name`, or an error listing the model's parameters.
pub fn param_index(model: &dyn Model, name: &str, origin: &str) -> Result<usize> {
    let spec = model.spec();
    spec.param_index(name).ok_or_else(|| {
        let names: Vec<&str> = spec.params.iter().map(|p| p.name.as_str()).collect();
        input(format!("{origin}: the model has no parameter named '{name}' (it has: {})", names.join(", ")))
    })
}

/// The times to simulate at: `given` (times the caller parsed, and how to name them in errors, e.g.
/// `--times 0:1:11`), else `configured`, else none for a scalar model; a time-series model without times is an
/// error saying how to give them (`how`). The values simulated at them (times × outputs) are checked against the
/// memory budget; `source` names the run when the times were not given.
pub fn run_times(
    model: &dyn Model,
    given: Option<(Vec<f64>, String)>,
    configured: Option<Vec<f64>>,
    source: &str,
    how: &str,
) -> Result<Vec<f64>> {
    let spec = model.spec();
    let (times, what) = match (given, configured, spec.output_kind) {
        (Some((t, label)), _, _) => (t, label),
        (None, Some(t), _) => (t, source.to_string()),
        (None, None, OutputKind::Scalar) => (vec![], source.to_string()),
        (None, None, OutputKind::TimeSeries) => {
            return Err(input(format!("this model's outputs are time series: give {how}")));
        }
    };
    check_output_size(&what, spec, times.len()).map_err(input)?;
    Ok(times)
}

/// A simulation's outputs (`times × outputs` for a time series, one row for a scalar model) and the solver's work
/// counters, when the model keeps them.
#[derive(Debug, Clone)]
pub struct Simulated {
    pub values: Vec<f64>,
    pub stats: Option<SimStats>,
}

/// Why one simulation gave nothing.
#[derive(Debug, Clone)]
pub enum SimulateError {
    /// The model refused the times or parameters: bad input, since they are all this run was given.
    Input(InputError),
    /// The simulation itself failed.
    Failed(String),
}

/// Simulate `model` once at `params` and `times`, every input NaN (the model's own defaults, e.g. a stock's
/// initial value); `source` names the run in a refusal's message.
pub fn simulate(
    model: &dyn Model,
    params: &[f64],
    times: &[f64],
    source: &str,
) -> std::result::Result<Simulated, SimulateError> {
    let spec = model.spec();
    let mut ws = model.workspace();
    let mut values = vec![0.0; spec.output_len(times.len())];
    let inputs = vec![f64::NAN; spec.inputs.len()];
    model.simulate(&mut ws, params, &inputs, times, &mut values).map_err(|e| match e {
        SimError::BadInput(_) | SimError::BadParameter { .. } => SimulateError::Input(input(format!("{source}: {e}"))),
        _ => SimulateError::Failed(format!("simulation failed: {e}")),
    })?;
    Ok(Simulated { values, stats: model.stats(&ws) })
}

/// The rows `parfit run` shows: one per time (its time first) for a time series, even of no outputs; one row
/// without a time for a scalar model.
pub fn rows<'a>(model: &dyn Model, times: &[f64], values: &'a [f64]) -> Vec<(Option<f64>, &'a [f64])> {
    let spec = model.spec();
    let n = spec.outputs.len();
    match spec.output_kind {
        OutputKind::TimeSeries => {
            times.iter().enumerate().map(|(i, t)| (Some(*t), values.get(i * n..(i + 1) * n).unwrap_or(&[]))).collect()
        }
        OutputKind::Scalar => vec![(None, values)],
    }
}
