//! `parfit plugins`: what was found where, and what it offers.

use std::path::PathBuf;

use crate::error::{CliResult, failed};
use crate::plugins::find_plugins;
use crate::{Format, console};

pub fn list(explicit: &[PathBuf], format: Format) -> CliResult<()> {
    let found = find_plugins(explicit)?;
    if format == Format::Json {
        let plugins: Vec<serde_json::Value> = found
            .plugins
            .iter()
            .map(|p| {
                serde_json::json!({
                    "name": p.info().name, "version": p.info().version,
                    "path": p.path().display().to_string(), "kinds": p.info().kinds,
                })
            })
            .collect();
        let doc = serde_json::json!({ "plugins": plugins, "problems": found.problems, "shadowed": found.shadowed,
            "ignored": found.ignored,
        });
        return console::print(&(serde_json::to_string_pretty(&doc).map_err(|e| failed(e.to_string()))? + "\n"));
    }
    let mut text = String::new();
    if found.plugins.is_empty() {
        text += "no plugins found (pass --plugin PATH or set PARFIT_PLUGIN_PATH)\n";
    }
    for p in &found.plugins {
        let info = p.info();
        text += &format!("{} {}  ({})\n", info.name, info.version, p.path().display());
        for k in &info.kinds {
            let exts: Vec<String> = k.extensions.iter().map(|e| format!(".{e}")).collect();
            let exts = if exts.is_empty() { String::new() } else { format!(" [{}]", exts.join(" ")) };
            text += &format!("  kind {}{exts}: {}\n", k.kind, k.description);
        }
    }
    for skipped in found.shadowed.iter().chain(&found.ignored) {
        text += &format!("skipped: {skipped}\n");
    }
    console::print(&text)
}
