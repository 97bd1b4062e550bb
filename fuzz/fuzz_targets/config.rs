//! The TOML configuration of every command, through `parfit-app`'s public functions, as the CLI applies them:
//! `fit` (the `[data]` observations, cost, parameter settings, optimiser options, horizon stages and polish),
//! `sample` (the `[sample]` sampler's options, driven over a uniform prior on the unit box),
//! `fit-many` (the `[cases]` table and one case's fit), `[montecarlo]` (the plan against the model's names, the
//! paths run and summarised) and `[projection]` (parsed here; its tables are the `projection` target's).
//! The model is a stand-in with the names the configuration uses, so every configuration reaches its checks;
//! iteration and evaluation limits are capped so an execution stays short.
#![no_main]

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use libfuzzer_sys::fuzz_target;
use parfit_app::cases::read_cases;
use parfit_app::config::LoadedConfig;
use parfit_app::config::SampleAlgorithm;
use parfit_app::dispatch::Local;
use parfit_app::fitting::{CaseFitter, configure_objective, cost_from_config, data_case, fit_staged};
use parfit_app::montecarlo::{self, McConfig, Plan};
use parfit_app::projection::{self, ProjectConfig};
use parfit_core::optimise::Silent;
use parfit_core::paths::PathRunner;
use parfit_core::sample::{
    EnsembleOptions, EnsembleSampler, GaussianLikelihood, NestedOptions, NestedSampler, NoiseSigma, ParamPrior, Prior,
    SampleLimits, Sampler, sample,
};
use parfit_core::{Case, Cost, Model};
use parfit_fuzz::{Examples, StandIn, StandInPaths};

const CONFIG: &str = "fuzz/config.toml";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let path = Path::new(CONFIG);
    if projection::is_projection(text) {
        let _ = ProjectConfig::parse(path, text);
    } else if montecarlo::is_monte_carlo(text) {
        monte_carlo(path, text);
    } else if let Ok(mut loaded) = LoadedConfig::parse(path, text) {
        let fit = &mut loaded.config.fit;
        fit.max_iterations = Some(fit.max_iterations.map_or(3, |n| n.min(3)));
        fit.max_evaluations = Some(fit.max_evaluations.map_or(100, |n| n.min(100)));
        fit.max_seconds = None;
        let sample = &mut loaded.config.sample;
        sample.max_evaluations = Some(sample.max_evaluations.map_or(200, |n| n.min(200)));
        sample.max_seconds = None;
        if loaded.config.data.is_some() {
            fit_one(&loaded);
        }
        if loaded.config.cases.is_some() {
            fit_many(&loaded);
        }
    }
});

fn parameter_names(loaded: &LoadedConfig) -> Vec<String> {
    loaded.config.parameters.keys().cloned().collect()
}

/// `parfit fit` and `parfit sample` on the `[data]` observations, or, when the file or columns it names are not
/// among the examples' (the reference's `columns = { prey = "x" }`), on made-up observations of its outputs: the
/// CSV reader has targets of its own, and the options should not wait for a mutation that fixes the data.
fn fit_one(loaded: &LoadedConfig) -> Option<()> {
    let data = loaded.config.data.as_ref()?;
    let case = match data_case(loaded, &Examples::default(), "a fit", 0) {
        Ok((_, case)) => case,
        Err(_) => {
            let times: Vec<f64> = (0..20).map(f64::from).collect();
            Case {
                id: "made up".into(),
                inputs: vec![],
                observations: vec![1.0; times.len() * data.outputs.len()],
                times,
            }
        }
    };
    let model: Arc<dyn Model> = Arc::new(StandIn::new(parameter_names(loaded), vec![], data.outputs.clone()));
    let seed = loaded.config.seed.unwrap_or(0);
    if let Ok(cost) = cost_from_config(&loaded.config.fit, CONFIG) {
        let _ = fit_staged(loaded, &model, case.clone(), &data.outputs, cost, &[], seed, &mut Silent, true);
    }
    let objective = configure_objective(loaded, &model, case, &data.outputs, Cost::Sse, &[]).ok()?;
    let section = &loaded.config.sample;
    let prior = Prior::new(vec![ParamPrior::Uniform { lower: 0.0, upper: 1.0 }; objective.free_names().len()]).ok()?;
    let mut sampler: Box<dyn Sampler> = match section.algorithm {
        SampleAlgorithm::Nested => {
            Box::new(NestedSampler::new(prior, NestedOptions { seed, ..section.nested.clone() }).ok()?)
        }
        SampleAlgorithm::Mcmc => {
            Box::new(EnsembleSampler::new(prior, EnsembleOptions { seed, ..section.mcmc.clone() }).ok()?)
        }
    };
    let observations = objective.residual_count();
    let mut likelihood = GaussianLikelihood::new(objective, observations, NoiseSigma::Known(1.0));
    let limits = SampleLimits { max_evaluations: section.max_evaluations, max_seconds: None };
    sample(sampler.as_mut(), &mut likelihood, &limits, &mut Silent);
    Some(())
}

/// `parfit fit-many`: the case table, the fitter's checks and the first two cases' fits.
fn fit_many(loaded: &LoadedConfig) -> Option<()> {
    let section = loaded.config.cases.as_ref()?;
    let inputs = section.inputs.keys().cloned().collect();
    let outputs = section.observe.iter().flat_map(|o| o.columns.keys().cloned()).collect();
    let model = StandIn::new(parameter_names(loaded), inputs, outputs);
    let table = read_cases(&Examples::default(), &loaded.resolve(&section.path), section, model.spec(), &|keys| {
        loaded.locate(keys)
    })
    .ok()?;
    let seed = loaded.config.seed.unwrap_or(0);
    let (fitter, _) = CaseFitter::new(loaded, Arc::new(model), &table.cases, &table.observed, vec![], seed).ok()?;
    for index in 0..table.cases.len().min(2) {
        fitter.fit(index);
    }
    Some(())
}

/// `parfit run` on a `[montecarlo]` configuration: the plan, every task, the statistics and the tables.
fn monte_carlo(path: &Path, text: &str) -> Option<()> {
    let config = McConfig::parse(path, text).ok()?;
    let params = config.parameters.keys().chain(config.sweep.keys()).cloned().collect();
    let outputs = config.montecarlo.outputs.clone().unwrap_or_else(|| vec!["w".into()]);
    let model = StandInPaths::new(params, outputs);
    let plan = Plan::new(&config, model.spec(), None, &[], 2).ok()?;
    let values = montecarlo::simulate_all(&Local, &model, &plan, &AtomicBool::new(false), &|_| {}).ok()??;
    let spec = model.spec();
    let summary = montecarlo::summarise_points(&plan, spec.outputs.len(), &values);
    montecarlo::summary_csv(&plan, spec, &summary);
    montecarlo::report(&plan, spec, &summary, 1, 0.0);
    if config.montecarlo.per_path {
        montecarlo::per_path_csv(&plan, &spec.outputs, &values);
    }
    Some(())
}
