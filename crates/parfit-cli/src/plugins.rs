//! Finding plugins and making models from them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use parfit_abi::host::{Discovery, LoadedPlugin, discover_until, search_path};
use parfit_core::Model;

use parfit_app::Loader;

use crate::error::{CliResult, input};
use crate::inputs::FsLoader;

/// The plugins on the search path: `--plugin` paths, then `PARFIT_PLUGIN_PATH`, then the executable's directory.
pub fn find_plugins(explicit: &[PathBuf]) -> CliResult<Discovery> {
    find_plugins_until(explicit, &|_| false)
}

/// [`find_plugins`], loading no more of the libraries found along `PARFIT_PLUGIN_PATH` or beside the executable
/// once `enough` says the plugins so far answer the caller's question (`discover_until`).
pub fn find_plugins_until(explicit: &[PathBuf], enough: &dyn Fn(&Discovery) -> bool) -> CliResult<Discovery> {
    let env = std::env::var_os("PARFIT_PLUGIN_PATH");
    let exe = std::env::current_exe().ok();
    let search = search_path(explicit, env.as_deref(), exe.as_deref());
    let found = discover_until(explicit, &search, enough).map_err(|e| input(e.to_string()))?;
    // Broken plugin files found along PARFIT_PLUGIN_PATH or beside the executable: said once, not fatal.
    if crate::ranks::is_root() {
        for problem in &found.problems {
            crate::console::note(&format!("warning: {problem}; skipped"));
        }
    }
    Ok(found)
}

/// The plugin to use for `kind`, optionally restricted to the plugin named `name`.
pub fn choose<'a>(found: &'a Discovery, name: Option<&str>, kind: &str) -> CliResult<&'a LoadedPlugin> {
    found.choose(name, kind).map_err(|e| input(format!("{e}. Pass --plugin PATH or set PARFIT_PLUGIN_PATH")))
}

/// The kind whose file extension matches `path`.
pub fn kind_for_file<'a>(found: &'a Discovery, path: &Path) -> CliResult<(&'a LoadedPlugin, String)> {
    found.for_file(path).map_err(|e| input(format!("{e}; pass a .toml configuration or --plugin PATH")))
}

/// Create a model: `options` plus the source text (if any) as the plugin's JSON configuration. A plugin's
/// error about the source text names the source; any other (the kind, an option) is about what `origin`
/// names — the configuration the kind and options came from — and is blamed on it.
pub fn create_model(
    plugin: &LoadedPlugin,
    kind: &str,
    source: Option<&Path>,
    options: serde_json::Map<String, serde_json::Value>,
    origin: &str,
) -> CliResult<Arc<dyn Model>> {
    let text = source.map(|path| FsLoader.read(path)).transpose()?;
    let json = parfit_app::fitting::model_config(options, source.zip(text.as_deref()));
    let model = plugin.create(kind, &json).map_err(|e| {
        let about_source = source.is_some_and(|path| e.starts_with(&format!("{}:", path.display())));
        input(if about_source { e } else { format!("{origin}: {e}") })
    })?;
    Ok(Arc::new(model))
}
