//! What `fit` and `fit-many` build from a configuration: the model's plugin configuration, the objective with
//! the configured parameter settings, the cost, the stopping rules, and the optimiser runs themselves — one
//! problem in horizon stages with an optional polish, or one case of a table. Front ends supply the model,
//! the data (through a [`Loader`]) and a [`Monitor`]; they own files, clocks and display.

use parfit_core::math;
use std::path::Path;
use std::sync::Arc;

use parfit_core::check::{OptionError, positive};
use parfit_core::objective::SetupError;
use parfit_core::optimise::{
    Bounds, Cmaes, CmaesOptions, DifferentialEvolution, DifferentialEvolutionOptions, LBfgsB, LevenbergMarquardt,
    Monitor, NelderMead, NelderMeadOptions, Optimiser, Progress, Silent, Stopping, minimise, minimise_least_squares,
};
use parfit_core::runner::case_seed;
use parfit_core::{Case, Cost, Model, Objective, OptimResult, Termination};
use serde::{Deserialize, Serialize};

use crate::config::{Algorithm, CostName, DataSection, FitSection, LoadedConfig, Polish, locate};
use crate::data::read_observations;
use crate::{Loader, Result, input};

/// `[model.options]` as the JSON object a plugin receives.
pub fn model_options(table: &toml::Table, origin: &str) -> Result<serde_json::Map<String, serde_json::Value>> {
    match serde_json::to_value(table) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        _ => Err(input(format!("{origin}: [model.options] must be a table of plain values"))),
    }
}

/// A plugin's JSON configuration: the options plus, for a model file, its text and name (for error messages).
pub fn model_config(mut options: serde_json::Map<String, serde_json::Value>, source: Option<(&Path, &str)>) -> String {
    if let Some((path, text)) = source {
        options.insert("source".into(), text.into());
        options.insert("source_name".into(), path.display().to_string().into());
    }
    serde_json::Value::Object(options).to_string()
}

/// Where a plugin's error about the model's options or kind is placed: at `[model.options]` when the
/// configuration has that table, else at `[model] kind` (a plugin's messages name the key, not the line).
pub fn model_origin(loaded: &LoadedConfig) -> String {
    let blame = if loaded.has_table(&["model", "options"]) { ["model", "options"] } else { ["model", "kind"] };
    loaded.locate(&blame)
}

/// The `[data]` section's observations (model outputs read from their CSV columns) as one case, with each of the
/// model's `inputs` NaN — the model's own value (a Vensim stock's initial value), as for an input `[cases]` does
/// not list; `what` names the job in the error when the section is missing ("a fit", "sampling").
pub fn data_case<'a>(
    loaded: &'a LoadedConfig,
    loader: &dyn Loader,
    what: &str,
    inputs: usize,
) -> Result<(&'a DataSection, Case)> {
    let origin = loaded.path.display();
    let data = loaded.config.data.as_ref().ok_or_else(|| input(format!("{origin}: {what} needs a [data] section")))?;
    if data.outputs.is_empty() {
        let place = crate::config::locate(&loaded.path, &loaded.text, &["data", "outputs"]);
        return Err(input(format!("{place}: [data] outputs is empty: {what} needs at least one observed output")));
    }
    let columns: Vec<String> =
        data.outputs.iter().map(|o| data.columns.get(o).cloned().unwrap_or_else(|| o.clone())).collect();
    let mut case = read_observations(loader, &loaded.resolve(&data.path), &data.time, &columns)?;
    case.inputs = vec![f64::NAN; inputs];
    Ok((data, case))
}

/// Check the `[fit]` settings a fit over `bounds` will use against the core's allowed ranges, at their places in
/// the configuration: the stopping rules, the algorithm's options, and the polish's when there is one. Runs before
/// any work (and before `fit-many` hands cases to workers), the same on every MPI rank.
pub fn check_fit(loaded: &LoadedConfig, bounds: &Bounds) -> Result<()> {
    let fit = &loaded.config.fit;
    let n = bounds.dim();
    stopping(fit).check().map_err(|e| loaded.option_error(&["fit"], e))?;
    let at = |algorithm: Algorithm| move |e: OptionError| loaded.option_error(&["fit", algorithm.name()], e);
    let check = |algorithm: Algorithm| match algorithm {
        Algorithm::Cmaes => fit.cmaes.check(bounds).map_err(at(algorithm)),
        Algorithm::NelderMead => fit.nelder_mead.check().map_err(at(algorithm)),
        Algorithm::DifferentialEvolution => fit.differential_evolution.check(n).map_err(at(algorithm)),
        Algorithm::Lbfgsb => fit.lbfgsb.check(n).map_err(at(algorithm)),
        Algorithm::LevenbergMarquardt => fit.levenberg_marquardt.check().map_err(at(algorithm)),
    };
    // A section written in the file is checked even when this run does not use it: its values were read.
    let polishes =
        |a: Algorithm| fit.polish != Polish::Off && matches!(a, Algorithm::NelderMead | Algorithm::LevenbergMarquardt);
    for algorithm in Algorithm::ALL {
        if algorithm == fit.algorithm || polishes(algorithm) || loaded.has_table(&["fit", algorithm.name()]) {
            check(algorithm)?;
        }
    }
    Ok(())
}

/// An optimiser's refusal of its options as an input error under the options' table (after [`check_fit`] only a
/// setting changed on the way, such as a stage's step, can reach it).
fn refused(algorithm: Algorithm) -> impl Fn(OptionError) -> crate::InputError {
    move |e| input(format!("[fit.{}] {e}", algorithm.name()))
}

/// The configured stopping rules.
pub fn stopping(fit: &FitSection) -> Stopping {
    let defaults = Stopping::default();
    Stopping {
        max_iterations: fit.max_iterations,
        max_evaluations: fit.max_evaluations,
        target_value: fit.target_value,
        max_seconds: fit.max_seconds,
        ftol: fit.ftol.unwrap_or(defaults.ftol),
        xtol: fit.xtol.unwrap_or(defaults.xtol),
    }
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
) -> Result<OptimResult> {
    if fit.algorithm == Algorithm::LevenbergMarquardt {
        return levenberg_marquardt(fit, objective, x0, bounds, stop, monitor, record_history);
    }
    let mut optimiser = value_optimiser(fit, x0, bounds, seed, step_scale)?;
    Ok(minimise(optimiser.as_mut(), objective, stop, monitor, record_history))
}

/// The configured algorithm as an optimiser of values over `bounds` from `x0`, with `seed` for the random ones
/// and its initial step scaled by `step_scale` (the step-based ones). Levenberg–Marquardt minimises residuals,
/// not values, so it is refused here: a fit runs it through [`run_algorithm`]. Shared by `parfit fit`,
/// `fit-many` and the Python package's `minimise` of a Python function, so the same settings build the same
/// optimiser everywhere.
pub fn value_optimiser(
    fit: &FitSection,
    x0: Vec<f64>,
    bounds: &Bounds,
    seed: u64,
    step_scale: f64,
) -> Result<Box<dyn Optimiser>> {
    let algorithm = fit.algorithm;
    Ok(match algorithm {
        Algorithm::Cmaes => {
            let options = CmaesOptions { seed, sigma0: fit.cmaes.sigma0 * step_scale, ..fit.cmaes.clone() };
            Box::new(Cmaes::new(x0, bounds.clone(), options).map_err(refused(algorithm))?)
        }
        Algorithm::NelderMead => {
            let nm = &fit.nelder_mead;
            let options = NelderMeadOptions { initial_step: nm.initial_step * step_scale, ..nm.clone() };
            Box::new(NelderMead::new(x0, bounds.clone(), options).map_err(refused(algorithm))?)
        }
        Algorithm::DifferentialEvolution => {
            let options = DifferentialEvolutionOptions { seed, ..fit.differential_evolution.clone() };
            Box::new(DifferentialEvolution::new(x0, bounds.clone(), options).map_err(refused(algorithm))?)
        }
        Algorithm::Lbfgsb => Box::new(LBfgsB::new(x0, bounds.clone(), fit.lbfgsb.clone()).map_err(refused(algorithm))?),
        Algorithm::LevenbergMarquardt => {
            return Err(input(
                "levenberg_marquardt minimises a sum of squared residuals, not a value: choose cmaes, nelder_mead, \
                 differential_evolution or lbfgsb",
            ));
        }
    })
}

/// Levenberg–Marquardt from `x0`. It minimises the sum of squares, which has the same minimiser as every
/// configured cost, and its residuals may come from sensitivity solves, whose error control (and so last
/// digits) differ from a plain simulation's. The reported value is therefore the configured cost of a plain
/// simulation at its answer, as every other optimiser reports it, so that results compare.
fn levenberg_marquardt(
    fit: &FitSection,
    objective: &mut Objective,
    x0: Vec<f64>,
    bounds: &Bounds,
    stop: &Stopping,
    monitor: &mut dyn Monitor,
    record_history: bool,
) -> Result<OptimResult> {
    let options = fit.levenberg_marquardt.clone();
    let mut lm =
        LevenbergMarquardt::new(x0, bounds.clone(), options).map_err(refused(Algorithm::LevenbergMarquardt))?;
    let mut result = minimise_least_squares(&mut lm, objective, stop, monitor, record_history);
    if result.value.is_finite() {
        result.value = objective.value(&mut objective.scratch(), &result.x);
        result.evaluations += 1;
    }
    Ok(result)
}

/// Refine `result`, found on `objective`, as `[fit] polish` asks; the better of the two points stands.
fn polish(
    fit: &FitSection,
    objective: &mut Objective,
    result: OptimResult,
    bounds: &Bounds,
    stop: &Stopping,
    monitor: &mut dyn Monitor,
    record_history: bool,
) -> Result<OptimResult> {
    let method = match fit.polish {
        Polish::Off => return Ok(result),
        Polish::Auto if objective.model().has_sensitivities() => Polish::LevenbergMarquardt,
        Polish::Auto => Polish::NelderMead,
        chosen => chosen,
    };
    // The main run's budget is spent; the polish stops on its own tolerances.
    let stop = Stopping { max_iterations: None, max_evaluations: Some(20_000), ..stop.clone() };
    let x = result.x.clone();
    let polished = if method == Polish::LevenbergMarquardt {
        levenberg_marquardt(fit, objective, x, bounds, &stop, monitor, record_history)?
    } else {
        let options = fit.nelder_mead.clone();
        let mut nm = NelderMead::new(x, bounds.clone(), options).map_err(refused(Algorithm::NelderMead))?;
        minimise(&mut nm, objective, &stop, monitor, record_history)
    };
    Ok(chain(result, polished, true))
}

/// Why a fit found no finite cost: the simulation's error at the start `x0` (e.g. a time the model cannot reach),
/// or the cost there, so a failed fit says more than that every candidate failed.
pub fn no_finite_cost(objective: &Objective, x0: &[f64]) -> String {
    match objective.try_value(&mut objective.scratch(), x0) {
        Err(e) => format!("at the start: {e}"),
        Ok(value) => format!("the cost at the start is {value:?}"),
    }
}

/// The 1001 times a fitted model is drawn at over the data's span `[t0, t1]`: evenly spaced, or evenly in log t
/// when the data start after 0 and span three decades or more (kinetics sampled at log-spaced times), where an
/// even grid would skip all but the last decades.
pub fn plot_times(t0: f64, t1: f64) -> Vec<f64> {
    if t0 > 0.0 && t1 >= 1e3 * t0 {
        let ratio = t1 / t0;
        let mut times: Vec<f64> = (0..=1000).map(|i| t0 * math::powf(ratio, i as f64 / 1000.0)).collect();
        times[1000] = t1; // the data's last time itself, not its rounding through powf
        times
    } else {
        (0..=1000).map(|i| t0 + (t1 - t0) * i as f64 / 1000.0).collect()
    }
}

/// Build the objective for `case` with the configuration's parameter settings and `--set` starts.
pub fn configure_objective(
    loaded: &LoadedConfig,
    model: &Arc<dyn Model>,
    case: Case,
    outputs: &[String],
    cost: Cost,
    sets: &[(String, f64)],
) -> Result<Objective> {
    let origin = loaded.path.display().to_string();
    if let Cost::GaussianNll { sigma } = cost {
        positive("sigma", sigma).map_err(|e| loaded.option_error(&["fit"], e))?;
    }
    let mut objective =
        Objective::new(model.clone(), case, outputs, cost).map_err(|e| input(format!("{origin}: {e}")))?;
    for (name, p) in &loaded.config.parameters {
        let place = locate(&loaded.path, &loaded.text, &["parameters", name]);
        let at = |e: SetupError| input(format!("{place}: [parameters] {name}: {e}"));
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
    // Starts against bounds, placed where the start was given: a --set flag, else the parameter's entry.
    if let Err(e) = objective.start() {
        let name = e.parameter().unwrap_or_default();
        let place = if sets.iter().any(|(set, _)| set == name) {
            format!("--set {name}")
        } else {
            locate(&loaded.path, &loaded.text, &["parameters", name])
        };
        return Err(input(format!("{place}: {e}")));
    }
    objective.set_spread(loaded.spread.clone());
    Ok(objective)
}

/// The configured cost.
pub fn cost_from_config(fit: &FitSection, origin: &str) -> Result<Cost> {
    Ok(match fit.cost {
        CostName::Sse => Cost::Sse,
        CostName::Rmse => Cost::Rmse,
        CostName::GaussianNll => Cost::GaussianNll {
            sigma: fit.sigma.ok_or_else(|| input(format!("{origin}: cost \"gaussian_nll\" needs [fit] sigma")))?,
        },
    })
}

/// One problem fitted as `parfit fit` does it: the objective on all the data, the start, and the result.
pub struct FitOutcome {
    pub objective: Objective,
    pub x0: Vec<f64>,
    pub result: OptimResult,
}

/// Fit `case` as configured: in `[fit] horizons` stages (each from the previous stage's answer, with its own
/// seed), then the optional polish. `monitor` sees every stage; its cancellation stops the fit.
#[allow(clippy::too_many_arguments)]
pub fn fit_staged(
    loaded: &LoadedConfig,
    model: &Arc<dyn Model>,
    case: Case,
    outputs: &[String],
    cost: Cost,
    sets: &[(String, f64)],
    seed: u64,
    monitor: &mut dyn Monitor,
    record_history: bool,
) -> Result<FitOutcome> {
    let config = &loaded.config;
    let origin = loaded.path.display().to_string();
    let build = |case: Case| configure_objective(loaded, model, case, outputs, cost, sets);
    let mut objective = build(case.clone())?;
    let x0 = objective.start().map_err(|e| input(format!("{origin}: {e}")))?;
    if x0.is_empty() {
        return Err(input(format!("{origin}: every parameter is fixed; nothing to fit")));
    }
    if objective.residual_count() == 0 {
        return Err(input(format!(
            "{origin}: no observation to fit: every observed value of case {} is empty",
            case.id
        )));
    }
    let bounds = objective.bounds();
    let horizons = &config.fit.horizons;
    let at = locate(&loaded.path, &loaded.text, &["fit", "horizons"]);
    if let Some(h) = horizons.iter().find(|h| !h.is_finite()) {
        return Err(input(format!("{at}: [fit] horizons must be finite numbers (got {h:?})")));
    }
    if let Some(h) = horizons.windows(2).find(|w| w[1] <= w[0]) {
        return Err(input(format!("{at}: [fit] horizons must increase ({} is followed by {})", h[0], h[1])));
    }
    if let Some(h) = horizons.iter().find(|h| case.times.iter().filter(|t| *t <= *h).count() < 2) {
        return Err(input(format!("{at}: [fit] horizon {h} leaves fewer than two data rows")));
    }
    check_fit(loaded, &bounds)?;
    let stop = stopping(&config.fit);

    let mut result: Option<OptimResult> = None;
    for (stage, horizon) in horizons.iter().map(Some).chain([None]).enumerate() {
        let mut stage_objective = match horizon {
            Some(&h) => build(truncate(&case, h))?,
            None => build(case.clone())?,
        };
        let start = result.as_ref().map_or_else(|| x0.clone(), |r| r.x.clone());
        // The basin around the optimum narrows as the horizon grows (a phase error grows with time), so later
        // stages search a proportionally smaller neighbourhood of the previous stage's answer.
        let span = |h: Option<&f64>| h.copied().unwrap_or(case.times[case.times.len() - 1]) - case.times[0];
        let scale = if stage == 0 { 1.0 } else { (span(horizons.first()) / span(horizon)).clamp(1e-3, 1.0) };
        // Each stage gets its own seed so stages do not replay the same random draws.
        let stage_seed = seed.wrapping_add(stage as u64);
        let mut continued = Continued::after(monitor, result.as_ref());
        let r = run_algorithm(
            &config.fit,
            &mut stage_objective,
            start,
            &bounds,
            stage_seed,
            scale,
            &stop,
            &mut continued,
            record_history,
        )?;
        let cancelled = r.termination == Termination::Cancelled;
        result = Some(match result {
            Some(previous) => chain(previous, r, false),
            None => r,
        });
        if cancelled {
            break;
        }
        if horizon.is_none() {
            objective = stage_objective;
        }
    }
    let mut result = result.expect("at least one stage runs");
    if result.termination != Termination::Cancelled {
        let mut continued = Continued::after(monitor, Some(&result));
        result = polish(&config.fit, &mut objective, result, &bounds, &stop, &mut continued, record_history)?;
    }
    Ok(FitOutcome { objective, x0, result })
}

/// A monitor for one of consecutive runs (horizon stages, then the polish) that reports progress counted from
/// the start of the first, so a progress display goes on where the last run ended instead of starting over.
struct Continued<'a> {
    monitor: &'a mut dyn Monitor,
    iterations: usize,
    evaluations: usize,
}

impl<'a> Continued<'a> {
    fn after(monitor: &'a mut dyn Monitor, before: Option<&OptimResult>) -> Self {
        let (iterations, evaluations) = before.map_or((0, 0), |r| (r.iterations, r.evaluations));
        Continued { monitor, iterations, evaluations }
    }
}

impl Monitor for Continued<'_> {
    fn elapsed_seconds(&self) -> f64 {
        self.monitor.elapsed_seconds()
    }

    fn on_progress(&mut self, progress: &Progress) {
        self.monitor.on_progress(&Progress {
            iteration: self.iterations + progress.iteration,
            evaluations: self.evaluations + progress.evaluations,
            best_value: progress.best_value,
        });
    }

    fn cancelled(&self) -> bool {
        self.monitor.cancelled()
    }
}

/// The observations up to and including time `horizon`.
fn truncate(case: &Case, horizon: f64) -> Case {
    let rows = case.times.iter().take_while(|t| **t <= horizon).count();
    let width = case.observations.len() / case.times.len().max(1);
    Case {
        id: format!("{} (t ≤ {horizon})", case.id),
        inputs: case.inputs.clone(),
        times: case.times[..rows].to_vec(),
        observations: case.observations[..rows * width].to_vec(),
    }
}

/// Account for two consecutive optimisation runs as one. When both minimised the same objective the better
/// point wins; otherwise (a later horizon stage) the second run's result stands.
fn chain(first: OptimResult, second: OptimResult, same_objective: bool) -> OptimResult {
    // A second run that failed (NaN) never replaces the first.
    let keep_first = same_objective && (first.value <= second.value || second.value.is_nan());
    let history = match (first.history.as_ref(), second.history) {
        (Some(a), Some(b)) => {
            let (evaluations, iterations) = a.last().map_or((0, 0), |h| (h.evaluations, h.iteration));
            let floor = if same_objective { a.last().map_or(f64::INFINITY, |h| h.best_value) } else { f64::INFINITY };
            let mut joined = a.clone();
            joined.extend(b.into_iter().map(|mut h| {
                h.evaluations += evaluations;
                h.iteration += iterations;
                h.best_value = h.best_value.min(floor);
                h
            }));
            Some(joined)
        }
        (a, _) => a.cloned(),
    };
    let (x, value) = if keep_first { (first.x, first.value) } else { (second.x, second.value) };
    OptimResult {
        x,
        value,
        evaluations: first.evaluations + second.evaluations,
        iterations: first.iterations + second.iterations,
        termination: second.termination,
        seconds: second.seconds,
        history,
    }
}

/// The outcome of one case of a many-case fit, as checkpointed and as reported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseRecord {
    pub index: usize,
    /// Fitted values of the free parameters, in model units.
    pub x: Vec<f64>,
    /// The cost at `x`; `None` when the case failed.
    pub value: Option<f64>,
    pub evaluations: usize,
    pub iterations: usize,
    pub termination: Option<Termination>,
    /// Why the case failed, if it did.
    pub error: Option<String>,
}

/// A case's record crosses between processes (MPI ranks) as its checkpoint line: JSON with shortest
/// round-trip floats.
impl crate::dispatch::Wire for CaseRecord {
    fn encode(&self, out: &mut Vec<u8>) {
        // A record is plain numbers and strings: serialising it cannot fail.
        let _ = serde_json::to_writer(out, self);
    }

    fn decode(bytes: &[u8]) -> std::result::Result<Self, String> {
        serde_json::from_slice(bytes).map_err(|e| format!("a case record: {e}"))
    }
}

/// Everything one case's fit in `fit-many` needs, shared read-only by the workers.
pub struct CaseFitter<'a> {
    pub loaded: &'a LoadedConfig,
    pub model: Arc<dyn Model>,
    pub cases: &'a [Case],
    /// The observed outputs, in the cases' observation column order.
    pub observed: &'a [String],
    pub cost: Cost,
    pub sets: Vec<(String, f64)>,
    pub stop: Stopping,
    pub seed: u64,
}

impl<'a> CaseFitter<'a> {
    /// A fitter for `cases` as configured; checks the options and the parameter settings once, on the first
    /// case, so a typo is one clear error rather than one per case. Returns it with the free parameters' names.
    pub fn new(
        loaded: &'a LoadedConfig,
        model: Arc<dyn Model>,
        cases: &'a [Case],
        observed: &'a [String],
        sets: Vec<(String, f64)>,
        seed: u64,
    ) -> Result<(Self, Vec<String>)> {
        let origin = loaded.path.display().to_string();
        let fit = &loaded.config.fit;
        if !fit.horizons.is_empty() {
            return Err(input(format!("{origin}: [fit] horizons apply to `parfit fit` only, not to fit-many")));
        }
        let cost = cost_from_config(fit, &origin)?;
        let first = cases.first().ok_or_else(|| input(format!("{origin}: no cases to fit")))?;
        let names = {
            let objective = configure_objective(loaded, &model, first.clone(), observed, cost, &sets)?;
            objective.start().map_err(|e| input(format!("{origin}: {e}")))?;
            check_fit(loaded, &objective.bounds())?;
            objective.free_names()
        };
        // Cases are independent: a wall-clock limit per case would make results depend on machine load.
        let stop = Stopping { max_seconds: None, ..stopping(fit) };
        Ok((CaseFitter { loaded, model, cases, observed, cost, sets, stop, seed }, names))
    }

    /// Fit case `index`; failures are recorded, never raised.
    pub fn fit(&self, index: usize) -> CaseRecord {
        let fit = &self.loaded.config.fit;
        let case: Case = self.cases[index].clone();
        let failure = |error: String| CaseRecord {
            index,
            x: vec![],
            value: None,
            evaluations: 0,
            iterations: 0,
            termination: None,
            error: Some(error),
        };
        let mut objective =
            match configure_objective(self.loaded, &self.model, case, self.observed, self.cost, &self.sets) {
                Ok(o) => o,
                Err(e) => return failure(e.to_string()),
            };
        // Parallelism is across cases: each case's batches run on its own thread.
        objective.set_parallel(false);
        let x0 = match objective.start() {
            Ok(x) => x,
            Err(e) => return failure(e.to_string()),
        };
        if objective.residual_count() == 0 {
            return failure("no observation to fit: every observed value of the case is empty".into());
        }
        let bounds = objective.bounds();
        let seed = case_seed(self.seed, index);
        let run = |objective: &mut Objective| {
            let result = run_algorithm(fit, objective, x0.clone(), &bounds, seed, 1.0, &self.stop, &mut Silent, false)?;
            polish(fit, objective, result, &bounds, &self.stop, &mut Silent, false)
        };
        let result = match run(&mut objective) {
            Ok(result) => result,
            Err(e) => return failure(e.to_string()),
        };
        if !result.value.is_finite() {
            return CaseRecord {
                error: Some(format!("no finite cost: {}; {}", result.termination, no_finite_cost(&objective, &x0))),
                evaluations: result.evaluations,
                iterations: result.iterations,
                ..failure(String::new())
            };
        }
        let params = objective.params(&result.x);
        let x = objective.free_parameters().iter().map(|f| params[f.index]).collect();
        CaseRecord {
            index,
            x,
            value: Some(result.value),
            evaluations: result.evaluations,
            iterations: result.iterations,
            termination: Some(result.termination),
            error: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryLoader;

    #[test]
    fn value_optimisers_are_built_from_the_fit_settings() {
        let bounds = Bounds { lower: vec![-1.0, -1.0], upper: vec![1.0, 1.0] };
        for algorithm in Algorithm::ALL {
            let fit = FitSection { algorithm, ..FitSection::default() };
            match value_optimiser(&fit, vec![0.5, 0.5], &bounds, 7, 1.0) {
                Ok(mut optimiser) => {
                    assert_ne!(algorithm, Algorithm::LevenbergMarquardt);
                    assert_eq!(optimiser.ask()[0].len(), 2, "{algorithm:?}");
                }
                Err(e) => {
                    assert_eq!(algorithm, Algorithm::LevenbergMarquardt);
                    assert!(e.0.starts_with("levenberg_marquardt minimises a sum of squared residuals"), "{e}");
                }
            }
        }
        // A setting out of range is refused under its table and key; a seed and step scale reach CMA-ES.
        let bad =
            FitSection { cmaes: CmaesOptions { sigma0: -1.0, ..CmaesOptions::default() }, ..FitSection::default() };
        let e = value_optimiser(&bad, vec![0.5, 0.5], &bounds, 7, 1.0).err().map(|e| e.0).unwrap_or_default();
        assert!(e.starts_with("[fit.cmaes] sigma0 must be"), "{e}");
        let first = |seed, scale| {
            let mut optimiser = value_optimiser(&FitSection::default(), vec![0.5, 0.5], &bounds, seed, scale).unwrap();
            optimiser.ask()[0].clone()
        };
        assert_eq!(first(7, 1.0), first(7, 1.0));
        assert_ne!(first(7, 1.0), first(8, 1.0));
        assert_ne!(first(7, 1.0), first(7, 0.1));
    }

    #[test]
    fn the_plotting_grid_is_even_unless_the_data_span_decades() {
        let even = plot_times(0.0, 100.0);
        assert_eq!((even.len(), even[0], even[1], even[1000]), (1001, 0.0, 0.1, 100.0));
        let short = plot_times(0.25, 72.0);
        assert!(short.windows(2).all(|w| ((w[1] - w[0]) - (72.0 - 0.25) / 1000.0).abs() < 1e-12));
        // 1e-5 … 1e5: a hundred points a decade, ending on the data's last time.
        let kinetics = plot_times(1e-5, 1e5);
        assert_eq!((kinetics.len(), kinetics[0], kinetics[1000]), (1001, 1e-5, 1e5));
        assert!((kinetics[100] / 1e-4 - 1.0).abs() < 1e-12 && (kinetics[500] - 1.0).abs() < 1e-12);
        assert!(kinetics.windows(2).all(|w| w[1] > w[0]));
    }

    #[test]
    fn a_data_case_gives_every_model_input_its_own_value_and_reads_subscripted_columns() {
        let toml =
            "[model]\nkind = \"vensim\"\n[data]\npath = \"d.csv\"\noutputs = [\"total[r1]\", \"stock[r1,c2]\"]\n";
        let loaded = LoadedConfig::parse(Path::new("fit.toml"), toml).unwrap();
        let mut files = MemoryLoader::new();
        files.insert(loaded.resolve(Path::new("d.csv")), "t,\"stock[r1,c2]\",total[r1]\n0,1,2\n1,3,4\n");
        let (_, case) = data_case(&loaded, &files, "a fit", 3).unwrap();
        assert_eq!(case.inputs.len(), 3);
        assert!(case.inputs.iter().all(|x| x.is_nan()), "{:?}", case.inputs);
        // Observations in the order of `outputs`, each from the column of its name (quoted where it has a comma).
        assert_eq!((case.times, case.observations), (vec![0.0, 1.0], vec![2.0, 1.0, 4.0, 3.0]));
    }
}
