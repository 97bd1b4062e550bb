//! `parfit._native`, the extension module under the Python package `parfit` (python/parfit). It converts
//! between Python and the engine and calls the application layer (`parfit-app`) the CLI and the browser
//! call, so one configuration gives the same numbers from all three; it holds no logic of its own beyond
//! conversions. The Python package wraps these functions in the documented API (numpy arrays, DataFrames,
//! result objects); `_native.pyi` types them.

use pyo3::prelude::*;

mod config;
mod engine;
mod errors;
mod fit;
mod fit_many;
mod inputs;
mod minimise;
mod model;
mod paths;
mod plugins;
mod project;
mod run;
mod sample;

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    errors::register(m)?;
    m.add_function(wrap_pyfunction!(plugins::plugins, m)?)?;
    m.add_function(wrap_pyfunction!(plugins::set_bundled_plugins, m)?)?;
    m.add_function(wrap_pyfunction!(engine::default_threads, m)?)?;
    m.add_class::<model::NativeModel>()?;
    m.add_class::<paths::NativeMonteCarloModel>()?;
    m.add_function(wrap_pyfunction!(minimise::minimise, m)?)?;
    m.add_function(wrap_pyfunction!(fit::fit, m)?)?;
    m.add_function(wrap_pyfunction!(fit_many::fit_many, m)?)?;
    m.add_function(wrap_pyfunction!(sample::sample, m)?)?;
    m.add_function(wrap_pyfunction!(run::run_kind, m)?)?;
    m.add_function(wrap_pyfunction!(run::run_model, m)?)?;
    m.add_function(wrap_pyfunction!(run::run_montecarlo, m)?)?;
    m.add_function(wrap_pyfunction!(project::project, m)?)?;
    Ok(())
}
