//! One module per subcommand.

pub mod fit;
pub mod fit_many;
pub mod plugins;
pub mod run;
pub mod sample;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use parfit_core::objective::SetupError;
use parfit_core::optimise::{
    Bounds, Cmaes, CmaesOptions, DifferentialEvolution, DifferentialEvolutionOptions, LBfgsB, LevenbergMarquardt,
    Monitor, NelderMead, NelderMeadOptions, Optimiser, Stopping, minimise, minimise_least_squares,
};
use parfit_core::{Case, Cost, Model, Objective, OptimResult};

use crate::Common;
use crate::config::{Algorithm, CostName, FitSection, LoadedConfig};
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

/// Load a configuration with the command line's overrides applied, size the thread pool, and settle the seed:
/// the preamble every fitting command shares. Returns the configuration, its name for messages, the thread
/// count and the seed.
pub fn load_for_run(config_path: &Path, common: &Common) -> CliResult<(LoadedConfig, String, usize, u64)> {
    let mut loaded = LoadedConfig::load(config_path)?;
    if let Some(algorithm) = common.algorithm {
        loaded.config.fit.algorithm = algorithm;
    }
    let threads = crate::init_threads(common.threads.or(loaded.config.threads))?;
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

/// Check optimiser options the constructors would reject, as input errors naming the key.
pub fn validate_options(fit: &FitSection, origin: &str) -> CliResult<()> {
    let sigma0 = fit.cmaes.sigma0;
    if !(sigma0.is_finite() && sigma0 > 0.0) {
        return Err(input(format!("{origin}: [fit.cmaes] sigma0 must be a positive number (got {sigma0})")));
    }
    if fit.cmaes.population.is_some_and(|p| p < 2) {
        return Err(input(format!("{origin}: [fit.cmaes] population must be at least 2")));
    }
    let nm = &fit.nelder_mead;
    if !(nm.initial_step.is_finite()
        && nm.initial_step > 0.0
        && nm.min_initial_step.is_finite()
        && nm.min_initial_step > 0.0)
    {
        return Err(input(format!("{origin}: [fit.nelder_mead] initial_step and min_initial_step must be positive")));
    }
    Ok(())
}

/// Run the configured algorithm on `objective` from `x0`, its initial step scaled by `step_scale` (the
/// step-based algorithms; horizon stages narrow it).
#[allow(clippy::too_many_arguments)]
pub fn run_algorithm(
    fit: &FitSection,
    objective: &mut Objective,
    x0: Vec<f64>,
    bounds: &Bounds,
    seed: u64,
    step_scale: f64,
    stop: &Stopping,
    monitor: &mut dyn Monitor,
    record_history: bool,
) -> OptimResult {
    let mut optimiser: Box<dyn Optimiser> = match fit.algorithm {
        Algorithm::Cmaes => {
            let options = CmaesOptions { seed, sigma0: fit.cmaes.sigma0 * step_scale, ..fit.cmaes.clone() };
            Box::new(Cmaes::new(x0, bounds.clone(), options))
        }
        Algorithm::NelderMead => {
            let nm = &fit.nelder_mead;
            let options = NelderMeadOptions { initial_step: nm.initial_step * step_scale, ..nm.clone() };
            Box::new(NelderMead::new(x0, bounds.clone(), options))
        }
        Algorithm::DifferentialEvolution => {
            let options = DifferentialEvolutionOptions { seed, ..fit.differential_evolution.clone() };
            Box::new(DifferentialEvolution::new(x0, bounds.clone(), options))
        }
        Algorithm::Lbfgsb => Box::new(LBfgsB::new(x0, bounds.clone(), fit.lbfgsb.clone())),
        Algorithm::LevenbergMarquardt => {
            let mut lm = LevenbergMarquardt::new(x0, bounds.clone(), fit.levenberg_marquardt.clone());
            let mut result = minimise_least_squares(&mut lm, objective, stop, monitor, record_history);
            // Levenberg–Marquardt minimises the sum of squares, which has the same minimiser as every
            // configured cost; report the configured cost at its answer.
            if objective.cost() != Cost::Sse && result.value.is_finite() {
                result.value = objective.value(&mut objective.scratch(), &result.x);
            }
            return result;
        }
    };
    minimise(optimiser.as_mut(), objective, stop, monitor, record_history)
}

/// Build the objective for `case` with the configuration's parameter settings and `--set` starts.
pub fn configure_objective(
    loaded: &LoadedConfig,
    model: &Arc<dyn Model>,
    case: Case,
    outputs: &[String],
    cost: Cost,
    sets: &[(String, f64)],
) -> CliResult<Objective> {
    let origin = loaded.path.display().to_string();
    let mut objective =
        Objective::new(model.clone(), case, outputs, cost).map_err(|e| input(format!("{origin}: {e}")))?;
    for (name, p) in &loaded.config.parameters {
        let at = |e: SetupError| input(format!("{origin}: [parameters] {name}: {e}"));
        if let Some(value) = p.fixed {
            objective.fix(name, value).map_err(at)?;
            continue;
        }
        if let Some(start) = p.start {
            objective.set_start(name, start).map_err(at)?;
        }
        if p.lower.is_some() || p.upper.is_some() {
            let current = model.spec().params.iter().find(|q| &q.name == name);
            let lower = p.lower.or(current.map(|q| q.lower)).unwrap_or(f64::NEG_INFINITY);
            let upper = p.upper.or(current.map(|q| q.upper)).unwrap_or(f64::INFINITY);
            objective.set_bounds(name, lower, upper).map_err(at)?;
        }
        objective.set_log_scale(name, p.log_scale).map_err(at)?;
    }
    for (name, value) in sets {
        objective.set_start(name, *value).map_err(|e| input(format!("--set {name}: {e}")))?;
    }
    Ok(objective)
}

/// The configured cost.
pub fn cost_from_config(fit: &FitSection, origin: &str) -> CliResult<Cost> {
    Ok(match fit.cost {
        CostName::Sse => Cost::Sse,
        CostName::Rmse => Cost::Rmse,
        CostName::GaussianNll => Cost::GaussianNll {
            sigma: fit.sigma.ok_or_else(|| input(format!("{origin}: cost \"gaussian_nll\" needs [fit] sigma")))?,
        },
    })
}
