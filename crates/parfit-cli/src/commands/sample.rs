//! `parfit sample`: the posterior of a model's parameters given its data — nested sampling (with the
//! log-evidence) or ensemble MCMC — under the Gaussian likelihood with known or fitted noise sigma.
//! Likelihood batches are evaluated in parallel through the `parfit_core::Objective`. The set-up (priors, noise
//! sigma, MCMC start, sampler) and summary.json's content are `parfit_app::sampling`, which the Python package
//! shares; this module runs the sampler with a progress bar and writes samples.csv, summary.json and the plot.

use std::path::{Path, PathBuf};

use parfit_app::sampling::{self, RunInfo, Sampling, quantile_label, samples_header, summary_json, termination};
use parfit_core::sample::{QUANTILE_LEVELS, SampleResult, sample as run_sampler};
use serde_json::Value;

use crate::commands::{ConfiguredModel, cell, load_for_run, model_from_config, show};
use crate::console;
use crate::error::{CliError, CliResult, failed, input};
use crate::inputs::FsLoader;
use crate::outputs::OutputDir;
use crate::plot::corner_plot;
use crate::progress::CliMonitor;
use crate::{Common, Format, parse_sets};

pub fn sample(explicit: &[PathBuf], config_path: &Path, common: &Common) -> CliResult<()> {
    if common.algorithm.is_some() {
        return Err(input("--algorithm chooses an optimiser of `fit`; choose the sampler with [sample] algorithm"));
    }
    let (mut loaded, origin, threads, seed) = load_for_run(config_path, common)?;
    loaded.spread = crate::ranks::spread(loaded.config.sample.max_seconds, &origin, "[sample]")?;

    let ConfiguredModel { model, plugin, kind } = model_from_config(explicit, &loaded, common)?;
    let sets = parse_sets(&common.set)?;
    let Sampling { mut sampler, mut likelihood, limits, columns, sigma, algorithm } =
        sampling::setup(&loaded, &model, &FsLoader, &sets, seed)?;

    // Every rank runs the same sampler; rank 0 alone writes, so it alone locks the directory, before any work.
    let output_dir = common.output.clone().or_else(|| loaded.config.output.dir.as_ref().map(|d| loaded.resolve(d)));
    let mut outputs = match &output_dir {
        Some(dir) if crate::ranks::is_root() => Some(OutputDir::open(dir)?),
        _ => None,
    };
    let mut monitor = CliMonitor::new(None);
    let result = run_sampler(sampler.as_mut(), &mut likelihood, &limits, &mut monitor);
    monitor.finish();
    if crate::signals::stop_requested() {
        return Err(CliError::Interrupted("interrupted; nothing was written".into()));
    }
    if !crate::ranks::is_root() {
        return Ok(());
    }
    if let Some(why) = sampling::no_posterior(&result) {
        return Err(failed(format!("{why}; nothing was written")));
    }

    let run = RunInfo { config_path, plugin: &plugin, kind: &kind, algorithm, threads, seed, sigma };
    let summary = summary_json(&result, &columns, &run);
    if let Some(out) = &mut outputs {
        write_outputs(out, &result, &columns, &summary, &run)?;
    }
    console::print(&match common.format.unwrap_or(Format::Table) {
        Format::Json => format!("{summary}\n"),
        Format::Table | Format::Csv => table(&result, &columns, &run),
    })?;
    if let Some(out) = outputs {
        let dir = out.path().display().to_string();
        out.commit()?;
        console::note(&format!("wrote samples.csv, summary.json and corner.svg to {dir}"));
    }
    Ok(())
}

fn table(result: &SampleResult, columns: &[String], run: &RunInfo) -> String {
    let mut text = format!("sample     {} ({} via plugin {})\n", run.config_path.display(), run.kind, run.plugin);
    text += &format!("algorithm  {} (seed {}, {} threads)\n", run.algorithm.name(), run.seed, run.threads);
    text += &format!(
        "result     {} likelihood evaluations, {} iterations in {:.3} s ({}); {} samples, {:.1} effective\n",
        result.evaluations,
        result.iterations,
        result.seconds,
        termination(result),
        result.points.len(),
        result.effective_samples
    );
    if let Some(e) = &result.evidence {
        text += &format!(
            "evidence   ln Z = {} ± {} (information {} nats)\n",
            show(e.log_z),
            show(e.log_z_err),
            show(e.information)
        );
    }
    if let Some(m) = &result.mcmc {
        text += &format!("mcmc       {} walkers, {} steps, acceptance {:.3}\n", m.walkers, m.steps, m.acceptance);
    }
    text += "\n";
    text += &format!("{:<12} {:>12} {:>12}", "parameter", "mean", "sd");
    for l in QUANTILE_LEVELS {
        text += &format!(" {:>12}", quantile_label(l));
    }
    if result.mcmc.is_some() {
        text += &format!(" {:>8} {:>8}", "r_hat", "ess");
    }
    text += "\n";
    for (j, (name, s)) in columns.iter().zip(&result.summary).enumerate() {
        text += &format!("{name:<12} {:>12} {:>12}", show(s.mean), show(s.sd));
        for q in s.quantiles {
            text += &format!(" {:>12}", show(q));
        }
        if let Some(m) = &result.mcmc {
            text += &format!(
                " {:>8.4} {:>8.0}",
                m.r_hat.get(j).copied().unwrap_or(f64::NAN),
                m.ess.get(j).copied().unwrap_or(f64::NAN)
            );
        }
        text += "\n";
    }
    text
}

fn write_outputs(
    out: &mut OutputDir,
    result: &SampleResult,
    columns: &[String],
    summary: &Value,
    run: &RunInfo,
) -> CliResult<()> {
    let header = samples_header(columns);
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    let rows = result
        .points
        .iter()
        .zip(&result.weights)
        .zip(&result.log_likelihoods)
        .map(|((x, w), l)| x.iter().chain([w, l]).map(|v| cell(*v)).collect::<Vec<_>>());
    out.write_csv("samples.csv", &header, rows)?;

    let text = serde_json::to_string_pretty(summary).map_err(|e| failed(e.to_string()))?;
    out.write("summary.json", (text + "\n").as_bytes())?;

    let title = match &result.evidence {
        Some(e) => format!(
            "{} posterior ({}): ln Z = {} ± {}",
            run.config_path.display(),
            run.algorithm.name(),
            show(e.log_z),
            show(e.log_z_err)
        ),
        None => format!("{} posterior ({})", run.config_path.display(), run.algorithm.name()),
    };
    corner_plot(&out.stage("corner.svg"), &title, columns, &result.points, &result.weights)
}
