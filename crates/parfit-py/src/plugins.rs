//! Finding plugins as the CLI finds them — the paths a call names, then `PARFIT_PLUGIN_PATH` — and then the
//! plugins bundled in the wheel (`parfit/plugins`, set by the package at import), and making models from them.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use parfit_abi::Entry;
use parfit_abi::host::{Discovery, LoadedPlugin, PluginPaths, discover, search_path};
use parfit_app::Loader;
use parfit_app::config::LoadedConfig;
use parfit_app::fitting::{model_options, model_origin};
use parfit_app::montecarlo::paths_not_a_model;
use parfit_core::Model;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors;
use crate::inputs::Files;

static BUNDLED: OnceLock<PathBuf> = OnceLock::new();

/// Where the wheel's own plugins are; called once by the package at import.
#[pyfunction]
pub fn set_bundled_plugins(dir: PathBuf) {
    let _ = BUNDLED.set(dir);
}

/// The plugins on the search path. Broken plugin files found outside the paths named are skipped with a
/// Python warning, as the CLI warns of them.
pub fn find(py: Python<'_>, explicit: &[PathBuf]) -> PyResult<Discovery> {
    let env = std::env::var_os("PARFIT_PLUGIN_PATH");
    let mut search = search_path(explicit, env.as_deref(), None);
    search.extend(BUNDLED.get().cloned());
    let found = discover(explicit, &search).map_err(|e| errors::ConfigError::new_err(e.to_string()))?;
    for problem in &found.problems {
        // A message with a NUL byte (from a file name) loses everything from the NUL on.
        let text = format!("{problem}; skipped");
        let text = std::ffi::CString::new(text.split('\0').next().unwrap_or_default()).unwrap_or_default();
        PyErr::warn(py, &py.get_type::<pyo3::exceptions::PyRuntimeWarning>(), &text, 1)?;
    }
    Ok(found)
}

const HINT: &str = "pass plugins=[PATH] or set PARFIT_PLUGIN_PATH";

/// The plugin offering `kind` (optionally the one named `name`).
pub fn choose<'a>(found: &'a Discovery, name: Option<&str>, kind: &str) -> PyResult<&'a LoadedPlugin> {
    found.choose(name, kind).map_err(|e| errors::ConfigError::new_err(format!("{e}; {HINT}")))
}

/// The plugin and kind reading `path`'s extension.
pub fn for_file<'a>(found: &'a Discovery, path: &Path) -> PyResult<(&'a LoadedPlugin, String)> {
    found.for_file(path).map_err(|e| errors::ConfigError::new_err(format!("{e}; {HINT}")))
}

/// The plugin and kind of a model made from a file (the plugin reading its extension, unless `plugin` names
/// another) or from `kind` (the first plugin offering it, or the one named `plugin`).
pub fn for_model<'a>(
    found: &'a Discovery,
    path: Option<&Path>,
    kind: Option<String>,
    plugin: Option<&str>,
) -> PyResult<(&'a LoadedPlugin, String)> {
    match (kind, path) {
        (Some(kind), _) => Ok((choose(found, plugin, &kind)?, kind)),
        (None, Some(path)) => {
            let (by_extension, kind) = for_file(found, path)?;
            match plugin {
                Some(name) if name != by_extension.info().name => Ok((choose(found, Some(name), &kind)?, kind)),
                _ => Ok((by_extension, kind)),
            }
        }
        (None, None) => {
            Err(errors::ConfigError::new_err("Model needs a model file or kind= (a kind `parfit.plugins()` lists)"))
        }
    }
}

/// The plugin's JSON configuration of a model: `options` plus the source text (if any).
fn plugin_config(
    source: Option<&Path>,
    files: &Files,
    options: serde_json::Map<String, serde_json::Value>,
) -> PyResult<String> {
    let text = source.map(|path| files.read(path)).transpose().map_err(errors::config)?;
    Ok(parfit_app::fitting::model_config(options, source.zip(text.as_deref())))
}

/// A plugin's refusal to make a model: about the source text, the model's ([`errors::ModelError`], placed in
/// it); any other about the kind or options `origin` names ([`errors::ConfigError`]).
fn refused(source: Option<&Path>, origin: &str, e: String) -> PyErr {
    match source {
        Some(path) if e.starts_with(&format!("{}:", path.display())) => errors::model(e),
        _ => errors::ConfigError::new_err(format!("{origin}: {e}")),
    }
}

/// The Monte Carlo paths of `kind` from `plugin` (a kind its paths entry point makes), as [`create_model`]
/// makes a model.
pub fn create_paths(
    plugin: &LoadedPlugin,
    kind: &str,
    source: Option<&Path>,
    files: &Files,
    options: serde_json::Map<String, serde_json::Value>,
    origin: &str,
) -> PyResult<PluginPaths> {
    let json = plugin_config(source, files, options)?;
    plugin.create_paths(kind, &json).map_err(|e| refused(source, origin, e))
}

/// A model of `kind` from `plugin`: `options` plus the source text (if any) as the plugin's configuration. An
/// error about the source text is the model's ([`errors::ModelError`]), placed in it; any other is about the
/// kind or options `origin` names ([`errors::ConfigError`]).
pub fn create_model(
    plugin: &LoadedPlugin,
    kind: &str,
    source: Option<&Path>,
    files: &Files,
    options: serde_json::Map<String, serde_json::Value>,
    origin: &str,
) -> PyResult<Arc<dyn Model>> {
    let json = plugin_config(source, files, options)?;
    let model = plugin.create(kind, &json).map_err(|e| refused(source, origin, e))?;
    Ok(Arc::new(model))
}

/// The plugins found: name, version, library path and the model kinds each offers (with file extensions).
#[pyfunction]
#[pyo3(signature = (paths=Vec::new()))]
pub fn plugins(py: Python<'_>, paths: Vec<PathBuf>) -> PyResult<Vec<Bound<'_, PyDict>>> {
    let found = find(py, &paths)?;
    found
        .plugins
        .iter()
        .map(|p| {
            let d = PyDict::new(py);
            d.set_item("name", &p.info().name)?;
            d.set_item("version", &p.info().version)?;
            d.set_item("path", p.path())?;
            let kinds = p
                .info()
                .kinds
                .iter()
                .map(|k| {
                    let kd = PyDict::new(py);
                    kd.set_item("kind", &k.kind)?;
                    kd.set_item("extensions", &k.extensions)?;
                    kd.set_item("description", &k.description)?;
                    Ok(kd)
                })
                .collect::<PyResult<Vec<_>>>()?;
            d.set_item("kinds", kinds)?;
            Ok(d)
        })
        .collect()
}

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
    let found = find(py, explicit)?;
    let plugin = choose(&found, section.plugin.as_deref(), &section.kind)?;
    if plugin.entry(&section.kind) == Some(Entry::Paths) {
        let place = loaded.locate(&["model", "kind"]);
        return Err(errors::ConfigError::new_err(paths_not_a_model(&place, &section.kind)));
    }
    let options = model_options(&section.options, &loaded.path.display().to_string()).map_err(errors::config)?;
    let source = section.source.as_ref().map(|s| loaded.resolve(s));
    let model = create_model(plugin, &section.kind, source.as_deref(), files, options, &model_origin(loaded))?;
    Ok(Configured { model, plugin: plugin.info().name.clone(), kind: section.kind.clone() })
}
