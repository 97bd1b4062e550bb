//! One module per subcommand.

pub mod fit;
pub mod plugins;
pub mod run;

use std::path::PathBuf;
use std::sync::Arc;

use parfit_core::Model;

use crate::Common;
use crate::config::LoadedConfig;
use crate::error::{CliResult, input};
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
    let mut options = match serde_json::to_value(table) {
        Ok(serde_json::Value::Object(map)) => map,
        _ => return Err(input(format!("{origin}: [model.options] must be a table of plain values"))),
    };
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
    let origin = loaded.path.display().to_string();
    let options = plugin_options(&section.options, common, &origin)?;
    let source = section.source.as_ref().map(|s| loaded.resolve(s));
    let model = create_model(plugin, &section.kind, source.as_deref(), options)?;
    Ok(ConfiguredModel { model, plugin: plugin.info().name.clone(), kind: section.kind.clone() })
}

/// Format a float for tables: compact but exact enough to compare by eye.
pub fn show(v: f64) -> String {
    if v == 0.0 || (1e-4..1e6).contains(&v.abs()) { format!("{v:.6}") } else { format!("{v:.6e}") }
}
