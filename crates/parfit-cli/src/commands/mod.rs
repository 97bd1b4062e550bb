//! One module per subcommand.

pub mod fit;
pub mod fit_many;
pub mod plugins;
pub mod run;
pub mod sample;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use parfit_app::fitting::cost_from_config;
use parfit_core::Model;

use crate::Common;
use crate::config::LoadedConfig;
use crate::error::{CliResult, input};
use crate::inputs::FsLoader;
use crate::plugins::{choose, create_model, find_plugins};

/// A model made from a configuration, and the plugin it came from.
pub struct ConfiguredModel {
    pub model: Arc<dyn Model>,
    pub plugin: String,
    pub kind: String,
}

/// Plugin options from a TOML table, with command-line tolerance overrides applied.
pub fn plugin_options(
    table: &toml::Table,
    common: &Common,
    origin: &str,
) -> CliResult<serde_json::Map<String, serde_json::Value>> {
    let mut options = parfit_app::fitting::model_options(table, origin)?;
    if let Some(rtol) = common.rtol {
        options.insert("rtol".into(), rtol.into());
    }
    if let Some(atol) = common.atol {
        options.insert("atol".into(), atol.into());
    }
    Ok(options)
}

/// Find the configured plugin and create the configured model.
pub fn model_from_config(explicit: &[PathBuf], loaded: &LoadedConfig, common: &Common) -> CliResult<ConfiguredModel> {
    let section = &loaded.config.model;
    let found = find_plugins(explicit)?;
    let plugin = choose(&found, section.plugin.as_deref(), &section.kind)?;
    if plugin.entry(&section.kind) == Some(parfit_abi::Entry::Paths) {
        let place = loaded.locate(&["model", "kind"]);
        return Err(input(parfit_app::montecarlo::paths_not_a_model(&place, &section.kind)));
    }
    let origin = loaded.path.display().to_string();
    let options = plugin_options(&section.options, common, &origin)?;
    let source = section.source.as_ref().map(|s| loaded.resolve(s));
    let blame = parfit_app::fitting::model_origin(loaded);
    let model = create_model(plugin, &section.kind, source.as_deref(), options, &blame)?;
    Ok(ConfiguredModel { model, plugin: plugin.info().name.clone(), kind: section.kind.clone() })
}

/// Load a configuration with the command line's overrides applied, size the thread pool, and settle the seed:
/// the preamble every fitting command shares. Returns the configuration, its name for messages, the thread
/// count and the seed.
pub fn load_for_run(config_path: &Path, common: &Common) -> CliResult<(LoadedConfig, String, usize, u64)> {
    let mut loaded = LoadedConfig::load(config_path, &FsLoader)?;
    if let Some(algorithm) = common.algorithm {
        loaded.config.fit.algorithm = algorithm;
    }
    let threads = crate::init_threads(common.threads, loaded.config.threads, config_path)?;
    let seed = common.seed.or(loaded.config.seed).unwrap_or(0);
    Ok((loaded, config_path.display().to_string(), threads, seed))
}

/// Format a float for CSV: the shortest text that reads back as the same number (exponent form for very
/// large or small magnitudes, so a tiny SSE does not print 25 zeros).
pub fn cell(v: f64) -> String {
    format!("{v:?}")
}

/// Format a float for tables: compact but exact enough to compare by eye.
pub fn show(v: f64) -> String {
    if v == 0.0 || (1e-4..1e6).contains(&v.abs()) { format!("{v:.6}") } else { format!("{v:.6e}") }
}
