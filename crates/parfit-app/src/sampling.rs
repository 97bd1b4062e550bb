//! What `parfit sample` (and the Python package's `sample`) builds from a configuration: the objective over the
//! `[data]` case with every free parameter in its own units, the noise sigma (known or fitted), the joint prior
//! from `[parameters]` (uniform over the bounds by default) and `[sample] sigma_prior`, the MCMC start, the
//! sampler itself, and the run's summary (`summary.json`). Front ends supply the model, the files (through a
//! [`Loader`]) and a monitor; they run the core's `sample` driver and own files, clocks and display.

use std::path::Path;
use std::sync::Arc;

use parfit_core::check::{OptionError, positive};
use parfit_core::sample::{
    EnsembleOptions, EnsembleSampler, GaussianLikelihood, NestedOptions, NestedSampler, NestedStop, NoiseSigma,
    ParamPrior, Prior, QUANTILE_LEVELS, SampleLimits, SampleResult, Sampler,
};
use parfit_core::{Cost, Model, Objective};
use serde_json::{Map, Value, json};

use crate::config::{LoadedConfig, McmcStart, SampleAlgorithm, SampleSection};
use crate::fitting::{configure_objective, data_case};
use crate::{Loader, Result, input};

/// Default width of the MCMC starting cloud, in prior standard deviations.
pub const START_SPREAD: f64 = 0.01;

/// A sampling run set up and checked, nothing evaluated yet: hand `sampler`, `likelihood` and `limits` to the
/// core's `sample` driver.
pub struct Sampling {
    pub sampler: Box<dyn Sampler>,
    pub likelihood: GaussianLikelihood<Objective>,
    pub limits: SampleLimits,
    /// The sampled coordinates' names: the free parameters in order, then `sigma` when it is fitted.
    pub columns: Vec<String>,
    pub sigma: NoiseSigma,
    pub algorithm: SampleAlgorithm,
}

/// Set up the configured sampling of `model` under `seed`: the `[data]` case read through `files`, `sets` (the
/// command line's `--set NAME=VALUE`) as starts, every setting checked at its place in the configuration.
pub fn setup(
    loaded: &LoadedConfig,
    model: &Arc<dyn Model>,
    files: &dyn Loader,
    sets: &[(String, f64)],
    seed: u64,
) -> Result<Sampling> {
    let origin = loaded.path.display().to_string();
    let section = &loaded.config.sample;
    let (data, case) = data_case(loaded, files, "sampling", model.spec().inputs.len())?;
    let mut objective = configure_objective(loaded, model, case, &data.outputs, Cost::Sse, sets)?;
    // Priors are in parameter units: the sampler sees the model's parameters themselves, never ln(value).
    let names = objective.free_names();
    if names.is_empty() {
        return Err(input(format!("{origin}: every parameter is fixed; nothing to sample")));
    }
    for name in &names {
        objective.set_log_scale(name, false).map_err(|e| input(format!("{origin}: [parameters] {name}: {e}")))?;
    }
    let sigma = noise_sigma(loaded)?;
    let (prior, columns) = prior_from_config(loaded, &objective, section, sigma, &origin)?;
    let limits = SampleLimits { max_evaluations: section.max_evaluations, max_seconds: section.max_seconds };
    let in_sample = |e: OptionError| loaded.option_error(&["sample"], e);
    limits.check().map_err(in_sample)?;

    let sampler: Box<dyn Sampler> = match section.algorithm {
        SampleAlgorithm::Nested => {
            let options = NestedOptions { seed, ..section.nested.clone() };
            let bad = |e: OptionError| loaded.option_error(&["sample", "nested"], e);
            Box::new(NestedSampler::new(prior, options).map_err(bad)?)
        }
        SampleAlgorithm::Mcmc => {
            let options = EnsembleOptions { seed, ..section.mcmc.clone() };
            let bad = |e: OptionError| loaded.option_error(&["sample", "mcmc"], e);
            match section.mcmc_start {
                McmcStart::Prior => Box::new(EnsembleSampler::new(prior, options).map_err(bad)?),
                McmcStart::Start => {
                    let spread = section.start_spread.unwrap_or(START_SPREAD);
                    positive("start_spread", spread).map_err(in_sample)?;
                    let start = mcmc_start(&objective, &prior, &columns, &origin)?;
                    Box::new(EnsembleSampler::with_start(prior, options, &start, spread).map_err(bad)?)
                }
            }
        }
    };
    let observations = objective.residual_count();
    let likelihood = GaussianLikelihood::new(objective, observations, sigma);
    Ok(Sampling { sampler, likelihood, limits, columns, sigma, algorithm: section.algorithm })
}

/// The configured noise sigma, checked.
fn noise_sigma(loaded: &LoadedConfig) -> Result<NoiseSigma> {
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
) -> Result<(Prior, Vec<String>)> {
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
fn mcmc_start(objective: &Objective, prior: &Prior, columns: &[String], origin: &str) -> Result<Vec<f64>> {
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

/// Why a finished run has no posterior, if it has none: no point could be simulated.
pub fn no_posterior(result: &SampleResult) -> Option<&'static str> {
    if result.log_likelihoods.iter().any(|l| l.is_finite()) {
        None
    } else {
        Some("sampling failed: no point could be simulated (every log-likelihood is -inf)")
    }
}

/// What a run's summary records about where it came from.
pub struct RunInfo<'a> {
    pub config_path: &'a Path,
    pub plugin: &'a str,
    pub kind: &'a str,
    pub algorithm: SampleAlgorithm,
    pub threads: usize,
    pub seed: u64,
    pub sigma: NoiseSigma,
}

/// The label of a quantile level in the summary and the table: `2.5%`, `50%`.
pub fn quantile_label(level: f64) -> String {
    format!("{}%", level * 100.0)
}

/// The header of `samples.csv`: the sampled coordinates, then `weight` and `log_likelihood`.
pub fn samples_header(columns: &[String]) -> Vec<String> {
    columns.iter().cloned().chain(["weight".into(), "log_likelihood".into()]).collect()
}

/// Everything `summary.json` holds (`parfit sample --format json` prints the same object).
pub fn summary_json(result: &SampleResult, columns: &[String], run: &RunInfo) -> Value {
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

/// How the run ended, as a table shows it: nested sampling that stopped on its own `max_iterations` or
/// `max_calls` has "completed" by its rules but not converged, which this says (summary.json's `nested.stop`).
pub fn termination(result: &SampleResult) -> String {
    match result.nested.as_ref().map(|n| n.stop) {
        Some(NestedStop::MaxIterations) => format!("{}: max_iterations reached, not converged", result.termination),
        Some(NestedStop::MaxCalls) => format!("{}: max_calls reached, not converged", result.termination),
        _ => result.termination.to_string(),
    }
}
