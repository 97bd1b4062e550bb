//! `parfit sample`: the posterior of a model's parameters given its data — nested sampling (with the
//! log-evidence) or ensemble MCMC — under the Gaussian likelihood with known or fitted noise sigma.
//! Likelihood batches are evaluated in parallel through the [`Objective`].

use std::path::{Path, PathBuf};

use parfit_core::check::{OptionError, positive};
use parfit_core::sample::{
    EnsembleOptions, EnsembleSampler, GaussianLikelihood, NestedOptions, NestedSampler, NestedStop, NoiseSigma,
    ParamPrior, Prior, QUANTILE_LEVELS, SampleLimits, SampleResult, Sampler, sample as run_sampler,
};
use parfit_core::{Cost, Objective};
use serde_json::{Map, Value, json};

use crate::commands::{ConfiguredModel, cell, configure_objective, load_for_run, model_from_config, show};
use crate::config::{LoadedConfig, McmcStart, SampleAlgorithm, SampleSection};
use crate::console;
use crate::error::{CliError, CliResult, failed, input};
use crate::inputs::FsLoader;
use crate::outputs::OutputDir;
use crate::plot::corner_plot;
use crate::progress::CliMonitor;
use crate::{Common, Format, parse_sets};
use parfit_config::fitting::data_case;

/// Default width of the MCMC starting cloud, in prior standard deviations.
const START_SPREAD: f64 = 0.01;

pub fn sample(explicit: &[PathBuf], config_path: &Path, common: &Common) -> CliResult<()> {
    if common.algorithm.is_some() {
        return Err(input("--algorithm chooses an optimiser of `fit`; choose the sampler with [sample] algorithm"));
    }
    let (mut loaded, origin, threads, seed) = load_for_run(config_path, common)?;
    loaded.spread = crate::ranks::spread(loaded.config.sample.max_seconds, &origin, "[sample]")?;
    let config = &loaded.config;
    let section = &config.sample;

    let ConfiguredModel { model, plugin, kind } = model_from_config(explicit, &loaded, common)?;
    let (data, case) = data_case(&loaded, &FsLoader, "sampling", model.spec().inputs.len())?;
    let sets = parse_sets(&common.set)?;
    let mut objective = configure_objective(&loaded, &model, case, &data.outputs, Cost::Sse, &sets)?;
    // Priors are in parameter units: the sampler sees the model's parameters themselves, never ln(value).
    let names = objective.free_names();
    if names.is_empty() {
        return Err(input(format!("{origin}: every parameter is fixed; nothing to sample")));
    }
    for name in &names {
        objective.set_log_scale(name, false).map_err(|e| input(format!("{origin}: [parameters] {name}: {e}")))?;
    }
    let sigma = noise_sigma(&loaded)?;
    let (prior, columns) = prior_from_config(&loaded, &objective, section, sigma, &origin)?;
    let limits = SampleLimits { max_evaluations: section.max_evaluations, max_seconds: section.max_seconds };
    let in_sample = |e: OptionError| loaded.option_error(&["sample"], e);
    limits.check().map_err(in_sample)?;

    let mut sampler: Box<dyn Sampler> = match section.algorithm {
        SampleAlgorithm::Nested => {
            let options = NestedOptions { seed, ..section.nested.clone() };
            let bad = |e: OptionError| loaded.option_error(&["sample", "nested"], e);
            Box::new(NestedSampler::new(prior.clone(), options).map_err(bad)?)
        }
        SampleAlgorithm::Mcmc => {
            let options = EnsembleOptions { seed, ..section.mcmc.clone() };
            let bad = |e: OptionError| loaded.option_error(&["sample", "mcmc"], e);
            match section.mcmc_start {
                McmcStart::Prior => Box::new(EnsembleSampler::new(prior.clone(), options).map_err(bad)?),
                McmcStart::Start => {
                    let spread = section.start_spread.unwrap_or(START_SPREAD);
                    positive("start_spread", spread).map_err(in_sample)?;
                    let start = mcmc_start(&objective, &prior, &columns, &origin)?;
                    Box::new(EnsembleSampler::with_start(prior.clone(), options, &start, spread).map_err(bad)?)
                }
            }
        }
    };

    // Every rank runs the same sampler; rank 0 alone writes, so it alone locks the directory, before any work.
    let output_dir = common.output.clone().or_else(|| config.output.dir.as_ref().map(|d| loaded.resolve(d)));
    let mut outputs = match &output_dir {
        Some(dir) if crate::ranks::is_root() => Some(OutputDir::open(dir)?),
        _ => None,
    };
    let observations = objective.residual_count();
    let mut likelihood = GaussianLikelihood::new(objective, observations, sigma);
    let mut monitor = CliMonitor::new(None);
    let result = run_sampler(sampler.as_mut(), &mut likelihood, &limits, &mut monitor);
    monitor.finish();
    if crate::signals::stop_requested() {
        return Err(CliError::Interrupted("interrupted; nothing was written".into()));
    }
    if !crate::ranks::is_root() {
        return Ok(());
    }
    if !result.log_likelihoods.iter().any(|l| l.is_finite()) {
        return Err(failed(
            "sampling failed: no point could be simulated (every log-likelihood is -inf); nothing was written",
        ));
    }

    let run = Run { config_path, plugin: &plugin, kind: &kind, algorithm: section.algorithm, threads, seed, sigma };
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

/// The configured noise sigma, checked.
fn noise_sigma(loaded: &LoadedConfig) -> CliResult<NoiseSigma> {
    let section = &loaded.config.sample;
    let sigma = section.sigma.ok_or_else(|| {
        input(format!(
            "{}: [sample] needs sigma, the noise standard deviation: a number, or \"fitted\" with [sample] \
             sigma_prior",
            loaded.locate(&["sample"])
        ))
    })?;
    if let NoiseSigma::Known(s) = sigma {
        positive("sigma", s).map_err(|e| loaded.option_error(&["sample"], e))?;
    }
    match sigma {
        NoiseSigma::Known(_) if section.sigma_prior.is_some() => Err(input(format!(
            "{}: [sample] sigma_prior needs sigma = \"fitted\"",
            loaded.locate(&["sample", "sigma"])
        ))),
        NoiseSigma::Fitted(_) if section.sigma_prior.is_none() => Err(input(format!(
            "{}: [sample] sigma = \"fitted\" needs a prior, e.g. sigma_prior = {{ kind = \"uniform\", lower = \
             0.01, upper = 2.0 }}",
            loaded.locate(&["sample", "sigma"])
        ))),
        _ => Ok(sigma),
    }
}

/// The joint prior in free-parameter order (then sigma, when fitted) and the column names.
fn prior_from_config(
    loaded: &LoadedConfig,
    objective: &Objective,
    section: &SampleSection,
    sigma: NoiseSigma,
    origin: &str,
) -> CliResult<(Prior, Vec<String>)> {
    let mut names = objective.free_names();
    let mut priors = Vec::with_capacity(names.len() + 1);
    for (name, free) in names.iter().zip(objective.free_parameters()) {
        let configured = loaded.config.parameters.get(name).and_then(|p| p.prior);
        let prior = match configured {
            Some(p) => p,
            None if free.lower.is_finite() && free.upper.is_finite() && free.lower < free.upper => {
                ParamPrior::Uniform { lower: free.lower, upper: free.upper }
            }
            None => {
                return Err(input(format!(
                    "{}: [parameters] {name}: the default uniform prior needs finite bounds (got lower {}, \
                     upper {}); give lower and upper, or a prior such as prior = {{ kind = \"normal\", mu = 1.0, \
                     sigma = 0.1 }}",
                    loaded.locate(&["parameters", name]),
                    free.lower,
                    free.upper
                )));
            }
        };
        if configured.is_some() {
            prior.check().map_err(|e| loaded.option_error(&["parameters", name, "prior"], e))?;
        }
        priors.push(prior);
    }
    for (name, p) in &loaded.config.parameters {
        if p.fixed.is_some() && p.prior.is_some() {
            let at = loaded.locate(&["parameters", name, "prior"]);
            return Err(input(format!("{at}: [parameters] {name}: a fixed parameter takes no prior")));
        }
    }
    if let (NoiseSigma::Fitted(_), Some(p)) = (sigma, section.sigma_prior) {
        if names.iter().any(|n| n == "sigma") {
            return Err(input(format!(
                "{origin}: the model has a parameter named sigma; a fitted noise sigma would clash with it"
            )));
        }
        p.check().map_err(|e| loaded.option_error(&["sample", "sigma_prior"], e))?;
        match p {
            ParamPrior::Uniform { lower, .. } if lower < 0.0 => {
                let at = loaded.locate(&["sample", "sigma_prior"]);
                return Err(input(format!("{at}: [sample] sigma_prior must not reach below zero (lower {lower})")));
            }
            ParamPrior::Normal { .. } => {
                return Err(input(format!(
                    "{}: [sample] sigma_prior must keep sigma positive: use \"log_normal\" or \"uniform\"",
                    loaded.locate(&["sample", "sigma_prior"])
                )));
            }
            _ => {}
        }
        priors.push(p);
        names.push("sigma".into());
    }
    let prior = Prior::new(priors).map_err(|e| input(format!("{origin}: {e}")))?;
    Ok((prior, names))
}

/// Where MCMC walkers start: the parameters' starts (and a fitted sigma's prior mean).
fn mcmc_start(objective: &Objective, prior: &Prior, columns: &[String], origin: &str) -> CliResult<Vec<f64>> {
    let mut start = objective.start().map_err(|e| input(format!("{origin}: {e}")))?;
    if let Some(p) = prior.params().get(start.len()) {
        start.push(p.mean_sd().0);
    }
    for ((x, p), name) in start.iter().zip(prior.params()).zip(columns) {
        if !p.contains(*x) {
            return Err(input(format!(
                "{origin}: [parameters] {name}: the MCMC start {x} lies outside its prior ({}); set start inside it, \
                 or [sample] mcmc_start = \"prior\"",
                p.name()
            )));
        }
    }
    Ok(start)
}

struct Run<'a> {
    config_path: &'a Path,
    plugin: &'a str,
    kind: &'a str,
    algorithm: SampleAlgorithm,
    threads: usize,
    seed: u64,
    sigma: NoiseSigma,
}

fn quantile_label(level: f64) -> String {
    format!("{}%", level * 100.0)
}

/// Everything summary.json holds; `--format json` prints the same object.
fn summary_json(result: &SampleResult, columns: &[String], run: &Run) -> Value {
    let mut parameters = Map::new();
    for (j, (name, s)) in columns.iter().zip(&result.summary).enumerate() {
        let quantiles: Map<String, Value> =
            QUANTILE_LEVELS.iter().zip(&s.quantiles).map(|(l, q)| (quantile_label(*l), json!(q))).collect();
        let mut entry = json!({ "mean": s.mean, "sd": s.sd, "mean_se": s.mean_se, "quantiles": quantiles });
        if let Some(m) = &result.mcmc {
            entry["r_hat"] = json!(m.r_hat.get(j));
            entry["ess"] = json!(m.ess.get(j));
            entry["ess_bulk"] = json!(m.ess_bulk.get(j));
        }
        parameters.insert(name.clone(), entry);
    }
    let mut doc = json!({
        "algorithm": run.algorithm.name(),
        "parameters": parameters,
        "evaluations": result.evaluations,
        "iterations": result.iterations,
        "termination": result.termination,
        "seconds": result.seconds,
        "samples": result.points.len(),
        "effective_samples": result.effective_samples,
        "max_log_likelihood": result.log_likelihoods.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        "sigma": match run.sigma { NoiseSigma::Known(s) => json!(s), NoiseSigma::Fitted(_) => json!("fitted") },
        "seed": run.seed,
        "threads": run.threads,
        "model": { "plugin": run.plugin, "kind": run.kind },
        "config": run.config_path.display().to_string(),
    });
    if let Some(e) = &result.evidence {
        doc["log_z"] = json!(e.log_z);
        doc["log_z_err"] = json!(e.log_z_err);
        doc["information"] = json!(e.information);
    }
    if let Some(n) = &result.nested {
        doc["nested"] = serde_json::to_value(n).unwrap_or_default();
    }
    if let Some(m) = &result.mcmc {
        doc["mcmc"] = json!({
            "walkers": m.walkers,
            "steps": m.steps,
            "draws_per_walker": m.draws_per_walker,
            "acceptance": m.acceptance,
        });
    }
    doc
}

/// How the run ended, as the table shows it: nested sampling that stopped on its own `max_iterations` or
/// `max_calls` has "completed" by its rules but not converged, which the table says (summary.json's `nested.stop`).
fn termination(result: &SampleResult) -> String {
    match result.nested.as_ref().map(|n| n.stop) {
        Some(NestedStop::MaxIterations) => format!("{}: max_iterations reached, not converged", result.termination),
        Some(NestedStop::MaxCalls) => format!("{}: max_calls reached, not converged", result.termination),
        _ => result.termination.to_string(),
    }
}

fn table(result: &SampleResult, columns: &[String], run: &Run) -> String {
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
    run: &Run,
) -> CliResult<()> {
    let header: Vec<&str> = columns.iter().map(String::as_str).chain(["weight", "log_likelihood"]).collect();
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
