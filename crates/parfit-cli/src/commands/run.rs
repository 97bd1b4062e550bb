//! `parfit run`: simulate a model once and print (or write) its outputs as CSV, time first.

use std::path::{Path, PathBuf};

use parfit_config::montecarlo::csv_text;
use parfit_core::{Model, OutputKind, SimError};

use crate::commands::{cell, model_from_config, plugin_options};
use crate::config::{LoadedConfig, check_output_size, parse_times};
use crate::console;
use crate::data::read_observations;
use crate::error::{CliResult, failed, input};
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
        let mut params = model.spec().defaults();
        for (name, p) in &loaded.config.parameters {
            let i = param_index(model.as_ref(), name, &path.display().to_string())?;
            if let Some(v) = p.fixed.or(p.start) {
                params[i] = v;
            }
        }
        let times = match (&loaded.config.run.times, &loaded.config.data) {
            (Some(t), _) => Some(t.values().map_err(|e| {
                // A range's errors quote it ("times '0:1:0': …"); a list's say what is wrong with it.
                let what = if e.starts_with("times '") { e } else { format!("times: {e}") };
                input(format!("{}: [run] {what}", loaded.locate(&["run", "times"])))
            })?),
            (None, Some(data)) => {
                Some(read_observations(&FsLoader, &loaded.resolve(&data.path), &data.time, &[])?.times)
            }
            (None, None) => None,
        };
        (model, params, times)
    } else {
        let found = find_plugins(explicit)?;
        let (plugin, kind) = kind_for_file(&found, path)?;
        let options = plugin_options(&toml::Table::new(), common, &path.display().to_string())?;
        let model = create_model(plugin, &kind, Some(path), options, "the command line (--rtol, --atol)")?;
        let params = model.spec().defaults();
        (model, params, None)
    };
    for (name, value) in parse_sets(&common.set)? {
        let i = param_index(model.as_ref(), &name, "--set")?;
        params[i] = value;
    }
    let spec = model.spec();
    let times = match times_flag {
        Some(t) => parse_times(t).map_err(|e| input(format!("--times: {e}")))?,
        None => match (config_times, spec.output_kind) {
            (Some(t), _) => t,
            (None, OutputKind::Scalar) => vec![],
            (None, OutputKind::TimeSeries) => {
                return Err(input("this model's outputs are time series: give --times START:STOP:COUNT".to_string()));
            }
        },
    };
    // The times were checked alone; the values simulated at them are times × outputs.
    let what = match times_flag {
        Some(t) => format!("--times {t}"),
        None => path.display().to_string(),
    };
    check_output_size(&what, spec, times.len()).map_err(input)?;

    // One simulation needs no ranks: under mpirun, rank 0 alone reports it.
    if !crate::ranks::is_root() {
        return Ok(());
    }
    // Lock the output directory before the simulation, so a second run into it is refused at once.
    let mut outputs = common.output.as_deref().map(OutputDir::open).transpose()?;

    let mut ws = model.workspace();
    let mut out = vec![0.0; spec.output_len(times.len())];
    // Per-case inputs are not given here: NaN asks the model for its own defaults (e.g. a stock's initial value).
    let inputs = vec![f64::NAN; spec.inputs.len()];
    model.simulate(&mut ws, &params, &inputs, &times, &mut out).map_err(|e| match e {
        // The times and parameters are all this run was given: a model refusing them is bad input.
        SimError::BadInput(_) | SimError::BadParameter { .. } => input(format!("{}: {e}", path.display())),
        _ => failed(format!("simulation failed: {e}")),
    })?;

    let n = spec.outputs.len();
    let rows: Vec<(Option<f64>, &[f64])> = match spec.output_kind {
        // One row per time, even of no outputs (a model of control values alone still prints its times).
        OutputKind::TimeSeries => {
            times.iter().enumerate().map(|(i, t)| (Some(*t), out.get(i * n..(i + 1) * n).unwrap_or(&[]))).collect()
        }
        OutputKind::Scalar => vec![(None, &out[..])],
    };
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
            let stats = model.stats(&ws);
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

fn param_index(model: &dyn Model, name: &str, origin: &str) -> CliResult<usize> {
    let spec = model.spec();
    spec.param_index(name).ok_or_else(|| {
        let names: Vec<&str> = spec.params.iter().map(|p| p.name.as_str()).collect();
        input(format!("{origin}: the model has no parameter named '{name}' (it has: {})", names.join(", ")))
    })
}
