//! `parfit.sample`: the posterior of a configuration's parameters, set up by `parfit_app::sampling` (as
//! `parfit sample` is) and run by the core's `sample` driver off the GIL.

use std::collections::BTreeMap;
use std::path::PathBuf;

use parfit_app::sampling::{self, RunInfo, Sampling, samples_header, summary_json};
use parfit_core::sample::sample as run_sampler;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::plugins::Configured;
use crate::{engine, errors};

/// Sample a configuration's posterior: `{"columns": samples.csv's header, "values": its rows flattened,
/// "summary": summary.json's text}`. `data` is a CSV text replacing the `[data]` table's file.
#[pyfunction]
#[pyo3(signature = (config, *, data=None, set=None, seed=None, threads=None, plugins=Vec::new(), progress=None, files=BTreeMap::new()))]
#[allow(clippy::too_many_arguments)]
pub fn sample<'py>(
    py: Python<'py>,
    config: &Bound<'py, PyAny>,
    data: Option<String>,
    set: Option<&Bound<'py, PyDict>>,
    seed: Option<u64>,
    threads: Option<usize>,
    plugins: Vec<PathBuf>,
    progress: Option<Bound<'py, PyAny>>,
    files: BTreeMap<String, String>,
) -> PyResult<Bound<'py, PyDict>> {
    let mut given = files;
    let data = data.map(|text| {
        given.insert("<data>".into(), text);
        PathBuf::from("<data>")
    });
    let (loaded, files) = crate::config::load_with_tables(config, given, data.as_deref(), None)?;
    let threads = crate::config::threads(&loaded, threads)?;
    let seed = seed.or(loaded.config.seed).unwrap_or(0);
    let Configured { model, plugin, kind } = crate::plugins::configured_model(py, &plugins, &loaded, &files)?;
    let Sampling { mut sampler, mut likelihood, limits, columns, sigma, algorithm } =
        sampling::setup(&loaded, &model, &files, &crate::config::sets(set)?, seed).map_err(errors::config)?;

    let result = engine::run(py, threads, progress.as_ref(), |control| {
        let mut monitor = engine::Monitor::new(control, None);
        run_sampler(sampler.as_mut(), &mut likelihood, &limits, &mut monitor)
    })?;
    if let Some(why) = sampling::no_posterior(&result) {
        return Err(errors::failed(why));
    }
    let run = RunInfo { config_path: &loaded.path, plugin: &plugin, kind: &kind, algorithm, threads, seed, sigma };
    let summary = summary_json(&result, &columns, &run);
    let out = PyDict::new(py);
    out.set_item("columns", samples_header(&columns))?;
    let values: Vec<f64> = result
        .points
        .iter()
        .zip(&result.weights)
        .zip(&result.log_likelihoods)
        .flat_map(|((x, w), l)| x.iter().copied().chain([*w, *l]))
        .collect();
    out.set_item("values", values)?;
    out.set_item("summary", serde_json::to_string(&summary).unwrap_or_default())?;
    Ok(out)
}
