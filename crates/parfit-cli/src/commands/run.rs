//! `parfit run`: simulate a model once and print (or write) its outputs as CSV, time first.

use std::path::{Path, PathBuf};

use parfit_app::montecarlo::csv_text;
use parfit_app::simulate::{
    SimulateError, Simulated, apply_sets, config_params, config_times, rows, run_times, simulate,
};
use parfit_core::OutputKind;

use crate::commands::{cell, model_from_config, plugin_options};
use crate::config::{LoadedConfig, parse_times};
use crate::console;
use crate::error::{CliError, CliResult, failed, input};
use crate::inputs::FsLoader;
use crate::outputs::OutputDir;
use crate::plugins::{create_model, find_plugins, kind_for_file};
use crate::{Common, Format, init_threads, parse_sets};

pub fn run(explicit: &[PathBuf], path: &Path, times_flag: Option<&str>, common: &Common) -> CliResult<()> {
    if crate::project::is_projection(path) {
        return crate::project::run(explicit, path, common);
    }
    let is_config = path.extension().is_some_and(|e| e == "toml");
    // A Monte Carlo configuration (with a [montecarlo] section) runs paths: see crate::paths.
    if is_config && crate::paths::is_monte_carlo(path)? {
        return crate::paths::run(explicit, path, common);
    }
    init_threads(common.threads, None, path)?;
    let (model, mut params, config_times) = if is_config {
        let loaded = LoadedConfig::load(path, &FsLoader)?;
        let model = model_from_config(explicit, &loaded, common)?.model;
        let params = config_params(&loaded, model.as_ref())?;
        let times = config_times(&loaded, &FsLoader)?;
        (model, params, times)
    } else {
        let found = find_plugins(explicit)?;
        let (plugin, kind) = kind_for_file(&found, path)?;
        if plugin.entry(&kind) == Some(parfit_abi::Entry::Paths) {
            return Err(input(parfit_app::montecarlo::paths_not_a_model(&path.display().to_string(), &kind)));
        }
        let options = plugin_options(&toml::Table::new(), common, &path.display().to_string())?;
        let model = create_model(plugin, &kind, Some(path), options, "the command line (--rtol, --atol)")?;
        let params = model.spec().defaults();
        (model, params, None)
    };
    apply_sets(model.as_ref(), &mut params, &parse_sets(&common.set)?, "--set")?;
    let spec = model.spec();
    let given = match times_flag {
        Some(t) => Some((parse_times(t).map_err(|e| input(format!("--times: {e}")))?, format!("--times {t}"))),
        None => None,
    };
    // The times are checked alone; the values simulated at them (times × outputs) against the memory budget.
    let source = path.display().to_string();
    let times = run_times(model.as_ref(), given, config_times, &source, "--times START:STOP:COUNT")?;

    // One simulation needs no ranks: under mpirun, rank 0 alone reports it.
    if !crate::ranks::is_root() {
        return Ok(());
    }
    // Lock the output directory before the simulation, so a second run into it is refused at once.
    let mut outputs = common.output.as_deref().map(OutputDir::open).transpose()?;

    let Simulated { values, stats } = simulate(model.as_ref(), &params, &times, &source).map_err(|e| match e {
        SimulateError::Input(e) => CliError::from(e),
        SimulateError::Failed(m) => failed(m),
    })?;
    let rows = rows(model.as_ref(), &times, &values);
    let text = match common.format.unwrap_or(Format::Csv) {
        Format::Json => {
            let outputs: serde_json::Map<String, serde_json::Value> = spec
                .outputs
                .iter()
                .enumerate()
                .map(|(j, name)| (name.clone(), rows.iter().map(|r| r.1[j]).collect::<Vec<f64>>().into()))
                .collect();
            let params: serde_json::Map<String, serde_json::Value> =
                spec.params.iter().zip(&params).map(|(p, v)| (p.name.clone(), (*v).into())).collect();
            serde_json::json!({ "parameters": params, "times": times, "outputs": outputs, "stats": stats }).to_string()
                + "\n"
        }
        Format::Csv | Format::Table => {
            let mut header: Vec<String> = spec.outputs.clone();
            if spec.output_kind == OutputKind::TimeSeries {
                header.insert(0, "time".into());
            }
            let records = std::iter::once(header)
                .chain(rows.iter().map(|(t, row)| t.iter().chain(row.iter()).map(|v| cell(*v)).collect::<Vec<_>>()));
            if common.format == Some(Format::Table) {
                records.map(|r| r.join("\t") + "\n").collect()
            } else {
                csv_text(records)
            }
        }
    };
    match outputs.take() {
        Some(mut out) => {
            let name = if common.format == Some(Format::Json) { "run.json" } else { "run.csv" };
            out.write(name, text.as_bytes())?;
            for file in out.commit()? {
                console::note(&format!("wrote {}", file.display()));
            }
        }
        None => console::print(&text)?,
    }
    Ok(())
}
