//! Configurations from Python: a path to a TOML file, or the same structure as a dict (which is written out as
//! TOML and read by the very same parser, so its errors are the same ones, placed in that text under the name
//! `<config>`). Relative file names in a dict resolve against the working directory.
//!
//! Data given from Python (a DataFrame, a dict of arrays) arrives as CSV text under a name the package chose
//! (`<data>`, `<cases>`); [`load_with_tables`] points the configuration's `[data]` or `[cases]` path at it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use parfit_app::Loader;
use parfit_app::config::LoadedConfig;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

use crate::errors::{self, ConfigError};
use crate::inputs::Files;

/// The name a configuration given as a dict goes by in messages.
pub const DICT_NAME: &str = "<config>";

/// The configuration's path (for messages and resolving the files it names) and its TOML text.
pub fn text(config: &Bound<'_, PyAny>, files: &Files) -> PyResult<(PathBuf, String)> {
    if let Ok(dict) = config.cast::<PyDict>() {
        let table = match to_toml(dict.as_any(), "")? {
            toml::Value::Table(table) => table,
            _ => return Err(ConfigError::new_err("the configuration must be a dict")),
        };
        let text = toml::to_string(&table).map_err(|e| ConfigError::new_err(format!("{DICT_NAME}: {e}")))?;
        return Ok((PathBuf::from(DICT_NAME), text));
    }
    let path: PathBuf = config.extract().map_err(|_| {
        ConfigError::new_err(format!(
            "the configuration must be a path to a TOML file or a dict (got {})",
            config.get_type().name().map(|n| n.to_string()).unwrap_or_default()
        ))
    })?;
    let text = files.read(&path).map_err(errors::config)?;
    Ok((path, text))
}

/// A fitting configuration (`[model]`, `[data]`/`[cases]`, `[parameters]`, `[fit]`, `[sample]`…), loaded.
pub fn load(config: &Bound<'_, PyAny>, files: &Files) -> PyResult<LoadedConfig> {
    let (path, text) = text(config, files)?;
    LoadedConfig::parse(&path, &text).map_err(errors::config)
}

/// Point `[data] path` and `[cases] path` at texts given from Python, when given.
fn replace_tables(loaded: &mut LoadedConfig, data: Option<&Path>, cases: Option<&Path>) -> PyResult<()> {
    let origin = loaded.path.display().to_string();
    if let Some(path) = data {
        let section = loaded.config.data.as_mut().ok_or_else(|| {
            ConfigError::new_err(format!(
                "{origin}: data= replaces the [data] table's file, but there is no [data] table (it says which \
                 outputs the columns observe: [data] outputs = [\"x\", \"y\"], time = \"t\")"
            ))
        })?;
        section.path = path.to_path_buf();
    }
    if let Some(path) = cases {
        let section = loaded.config.cases.as_mut().ok_or_else(|| {
            ConfigError::new_err(format!(
                "{origin}: cases= replaces the [cases] table's file, but there is no [cases] table (it maps the \
                 columns to inputs and observations)"
            ))
        })?;
        section.path = path.to_path_buf();
    }
    Ok(())
}

/// A Python value as TOML: dicts as tables, lists and tuples as arrays, str, bool, int, float (numpy scalars
/// too, through `float()` and `int()`), paths as strings. `key` names the value in errors.
pub fn to_toml(value: &Bound<'_, PyAny>, key: &str) -> PyResult<toml::Value> {
    let at = |what: &str| ConfigError::new_err(format!("{DICT_NAME}: {key}: {what}"));
    if let Ok(dict) = value.cast::<PyDict>() {
        let mut table = toml::Table::new();
        for (k, v) in dict.iter() {
            let name: String = k.extract().map_err(|_| at("keys must be strings"))?;
            let inner = if key.is_empty() { name.clone() } else { format!("{key}.{name}") };
            if v.is_none() {
                continue; // an option left unset
            }
            table.insert(name, to_toml(&v, &inner)?);
        }
        return Ok(toml::Value::Table(table));
    }
    if value.is_instance_of::<PyBool>() {
        return Ok(toml::Value::Boolean(value.extract()?));
    }
    if value.is_instance_of::<PyInt>() {
        return value.extract::<i64>().map(toml::Value::Integer).map_err(|_| at("integer out of range"));
    }
    if value.is_instance_of::<PyFloat>() {
        return Ok(toml::Value::Float(value.extract()?));
    }
    if value.is_instance_of::<PyString>() {
        return Ok(toml::Value::String(value.extract()?));
    }
    if value.is_instance_of::<PyList>() || value.is_instance_of::<PyTuple>() {
        let items = value
            .try_iter()?
            .enumerate()
            .map(|(i, item)| to_toml(&item?, &format!("{key}[{i}]")))
            .collect::<PyResult<Vec<_>>>()?;
        return Ok(toml::Value::Array(items));
    }
    if let Ok(path) = value.extract::<PathBuf>() {
        return Ok(toml::Value::String(path.display().to_string()));
    }
    // numpy scalars and other number-likes.
    if value.hasattr("__index__")? {
        return value.extract::<i64>().map(toml::Value::Integer).map_err(|_| at("integer out of range"));
    }
    if value.hasattr("__float__")? {
        return Ok(toml::Value::Float(value.call_method0("__float__")?.extract()?));
    }
    Err(at(&format!(
        "a {} cannot be written in a configuration (use dicts, lists, strings, numbers and booleans)",
        value.get_type().name().map(|n| n.to_string()).unwrap_or_default()
    )))
}

/// `set=` as (name, value) pairs, each value finite (the CLI's `--set` rule).
pub fn sets(set: Option<&Bound<'_, PyDict>>) -> PyResult<Vec<(String, f64)>> {
    let Some(set) = set else { return Ok(Vec::new()) };
    set.iter()
        .map(|(k, v)| {
            let name: String = k.extract().map_err(|_| ConfigError::new_err("set: parameter names must be strings"))?;
            let value: f64 = v
                .extract()
                .ok()
                .filter(|v: &f64| v.is_finite())
                .ok_or_else(|| ConfigError::new_err(format!("set '{name}': {v} is not a finite number")))?;
            Ok((name, value))
        })
        .collect()
}

/// A table given from Python as text, to be named `name` in the configuration at `config`: stored in `files`
/// under the path the configuration resolves `name` to (so its loader finds the text there); returns `name`.
pub fn give(files: &mut BTreeMap<String, String>, config: &Path, name: &str, text: String) -> PathBuf {
    let resolved = match config.parent() {
        Some(dir) => dir.join(name),
        None => PathBuf::from(name),
    };
    files.insert(resolved.display().to_string(), text);
    PathBuf::from(name)
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
    let mut loaded = load(config, &Files::new(files.clone()))?;
    replace_tables(&mut loaded, data, cases)?;
    for name in data.into_iter().chain(cases) {
        if let Some(text) = files.remove(&name.display().to_string()) {
            files.insert(loaded.resolve(name).display().to_string(), text);
        }
    }
    Ok((loaded, Files::new(files)))
}

/// The thread count of a run: the call's, else the configuration's `threads` (refused at its `file:line:column`
/// when out of range, as the CLI refuses it), else every core.
pub fn threads(loaded: &LoadedConfig, given: Option<usize>) -> PyResult<usize> {
    let configured =
        parfit_app::configured_threads(given.is_some(), loaded.config.threads, || loaded.locate(&["threads"]))
            .map_err(errors::config)?;
    crate::engine::threads(given, configured)
}

/// The thread count of a Monte Carlo run or projection from the configuration `text` at `path`: as [`threads`],
/// its `threads` key (`configured`) refused at its `file:line:column` when out of range.
pub fn threads_in(path: &Path, text: &str, configured: Option<usize>, given: Option<usize>) -> PyResult<usize> {
    let configured = parfit_app::configured_threads(given.is_some(), configured, || {
        parfit_app::config::locate(path, text, &["threads"])
    })
    .map_err(errors::config)?;
    crate::engine::threads(given, configured)
}
