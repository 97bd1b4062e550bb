//! Ask–tell posterior samplers and the driver that evaluates their batches.
//!
//! Like an [`Optimiser`](crate::Optimiser), a [`Sampler`] never evaluates anything itself: it asks for a
//! batch of parameter points, the driver [`sample`] has a [`LogLikelihoodEvaluator`] compute their
//! log-likelihoods (on threads, MPI ranks or browser workers) and tells the sampler the values. Which
//! points a sampler asks for depends only on its seed and the values told, never on how a batch was
//! evaluated, so results are identical for any thread count.
//!
//! - [`NestedSampler`]: dynamic nested sampling — evidence with its error and weighted posterior samples.
//! - [`EnsembleSampler`]: the affine-invariant ensemble MCMC sampler (stretch move), with R̂ and ESS.
//! - [`Prior`]: per-parameter priors (uniform, normal, log-normal); [`summary`]: the shared posterior
//!   summaries.
//! - [`GaussianLikelihood`]: the Gaussian log-likelihood of a sum-of-squares evaluator, noise σ known
//!   or sampled; [`NegatedCost`]: any cost as `ln L = −cost`.

mod diagnostics;
mod ellipsoid;
mod likelihood;
mod mcmc;
mod nested;
mod prior;
pub mod summary;
#[cfg(test)]
mod tests;

pub use diagnostics::{ess, ess_bulk, split_rhat};
pub use likelihood::{Fitted, GaussianLikelihood, NoiseSigma};
pub use mcmc::{EnsembleOptions, EnsembleSampler, McmcInfo};
pub use nested::{Bounding, DynamicOptions, NestedInfo, NestedOptions, NestedSampler, NestedStop, Sampling};
pub use prior::{ParamPrior, Prior, PriorError, erfc, normal_cdf, normal_quantile};
pub use summary::{ParamSummary, QUANTILE_LEVELS, kish_ess, resample_equal, summarise};

use serde::{Deserialize, Serialize};

use crate::optimise::{BatchEvaluator, Monitor, Progress};

pub use crate::check::OptionError;

/// An ask–tell sampler of a posterior `prior(x) · L(x)`.
pub trait Sampler: Send {
    fn name(&self) -> &'static str;

    /// The next batch of parameter points whose log-likelihoods are wanted. Empty only once
    /// [`Sampler::done`] is true.
    fn ask(&mut self) -> &[Vec<f64>];

    /// The log-likelihoods of the batch last returned by `ask`, in the same order. Non-finite values
    /// (failed evaluations, NaN) count as `-inf`: a point the posterior rules out.
    fn tell(&mut self, log_likelihoods: &[f64]);

    /// Whether the sampler's own stopping rules have fired.
    fn done(&self) -> bool;

    /// Completed iterations (nested sampling: rounds of replacing live points; MCMC: ensemble steps).
    fn iterations(&self) -> usize;

    /// The largest log-likelihood seen so far (`-inf` before the first `tell`).
    fn max_log_likelihood(&self) -> f64;

    /// The posterior so far. Valid at any point — after cancellation too — and final once `done`.
    /// The driver fills in `evaluations`, `termination` and `seconds`.
    fn result(&self) -> SampleResult;
}

/// Evaluates the log-likelihood of a batch of parameter points: the only place sampling parallelism
/// happens.
pub trait LogLikelihoodEvaluator {
    /// Write `ln L(batch[i])` into `out[i]`. Failures are `-inf` (or any non-finite value), never panics.
    fn log_likelihoods(&mut self, batch: &[Vec<f64>], out: &mut [f64]);
}

impl<F: FnMut(&[Vec<f64>], &mut [f64])> LogLikelihoodEvaluator for F {
    fn log_likelihoods(&mut self, batch: &[Vec<f64>], out: &mut [f64]) {
        self(batch, out)
    }
}

/// A cost evaluator seen as a log-likelihood: `ln L = −cost`. With the `gaussian_nll` cost an
/// [`Objective`](crate::Objective) is exactly the Gaussian log-likelihood of its data; failed
/// simulations (cost `+inf`) become `-inf`.
pub struct NegatedCost<E>(pub E);

impl<E: BatchEvaluator> LogLikelihoodEvaluator for NegatedCost<E> {
    fn log_likelihoods(&mut self, batch: &[Vec<f64>], out: &mut [f64]) {
        self.0.evaluate(batch, out);
        for v in out.iter_mut() {
            *v = -*v;
        }
    }
}

/// Budgets the driver enforces on top of a sampler's own stopping rules.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SampleLimits {
    /// Stop before a batch would take the likelihood evaluations past this. Default: none.
    pub max_evaluations: Option<usize>,
    /// Wall-clock limit, checked between batches (needs a [`Monitor`] with a clock). Default: none.
    pub max_seconds: Option<f64>,
}

impl SampleLimits {
    /// Check both limits: a zero budget would report a sample of nothing, NaN would never stop.
    pub fn check(&self) -> Result<(), OptionError> {
        if let Some(max) = self.max_evaluations {
            crate::check::at_least("max_evaluations", max, 1)?;
        }
        match self.max_seconds {
            Some(seconds) => crate::check::positive("max_seconds", seconds),
            None => Ok(()),
        }
    }
}

/// Why sampling stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SampleTermination {
    /// The sampler finished by its own rules (see its info for which one).
    Completed,
    MaxEvaluations,
    TimeLimit,
    Cancelled,
}

impl std::fmt::Display for SampleTermination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SampleTermination::Completed => "completed",
            SampleTermination::MaxEvaluations => "maximum evaluations reached",
            SampleTermination::TimeLimit => "time limit reached",
            SampleTermination::Cancelled => "cancelled",
        })
    }
}

/// The log-evidence `ln Z = ln ∫ L(x) prior(x) dx` as nested sampling estimates it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    pub log_z: f64,
    /// Standard error of `log_z` (see [`NestedOptions::bootstrap`] for how it is estimated).
    pub log_z_err: f64,
    /// Information `H = ∫ P ln(P/π)`, in nats: how far the posterior `P` narrowed the prior `π`.
    pub information: f64,
}

/// A weighted posterior sample with its summary and the sampler's diagnostics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleResult {
    pub algorithm: String,
    /// Posterior sample points (parameters in prior order).
    pub points: Vec<Vec<f64>>,
    /// Weight of each point, summing to one (all equal for MCMC).
    pub weights: Vec<f64>,
    pub log_likelihoods: Vec<f64>,
    /// Per-parameter mean, sd, Monte Carlo error of the mean and quantiles.
    pub summary: Vec<ParamSummary>,
    /// Kish's effective sample size of the weights `(Σw)²/Σw²` (MCMC: the number of draws; see
    /// [`McmcInfo::ess`] for the autocorrelation-aware one).
    pub effective_samples: f64,
    /// Nested sampling only.
    pub evidence: Option<Evidence>,
    pub nested: Option<NestedInfo>,
    pub mcmc: Option<McmcInfo>,
    pub evaluations: usize,
    pub iterations: usize,
    pub termination: SampleTermination,
    pub seconds: f64,
}

impl SampleResult {
    /// `n` equally weighted draws from the weighted sample (systematic resampling).
    pub fn resample_equal(&self, n: usize, seed: u64) -> Vec<Vec<f64>> {
        resample_equal(&self.points, &self.weights, n, seed)
    }
}

/// Run `sampler` until it is done, a limit is reached or the monitor cancels.
///
/// Every batch goes through `evaluator` whole; non-finite log-likelihoods are passed on as `-inf`.
/// Progress reports use the optimiser's [`Progress`] with `best_value = −max ln L` (a cost: smaller is
/// better).
pub fn sample(
    sampler: &mut dyn Sampler,
    evaluator: &mut dyn LogLikelihoodEvaluator,
    limits: &SampleLimits,
    monitor: &mut dyn Monitor,
) -> SampleResult {
    let mut evaluations = 0usize;
    let mut values = Vec::new();
    let termination = loop {
        if sampler.done() {
            break SampleTermination::Completed;
        }
        if monitor.cancelled() {
            break SampleTermination::Cancelled;
        }
        if limits.max_seconds.is_some_and(|max| monitor.elapsed_seconds() >= max) {
            break SampleTermination::TimeLimit;
        }
        let batch = sampler.ask();
        if batch.is_empty() {
            // A sampler asks for nothing only when done; guard against looping forever regardless.
            break SampleTermination::Completed;
        }
        if limits.max_evaluations.is_some_and(|max| evaluations + batch.len() > max) {
            break SampleTermination::MaxEvaluations;
        }
        values.clear();
        values.resize(batch.len(), f64::NEG_INFINITY);
        evaluator.log_likelihoods(batch, &mut values);
        for v in &mut values {
            if !v.is_finite() {
                *v = f64::NEG_INFINITY;
            }
        }
        evaluations += values.len();
        sampler.tell(&values);
        monitor.on_progress(&Progress {
            iteration: sampler.iterations(),
            evaluations,
            best_value: -sampler.max_log_likelihood(),
        });
    };
    let mut result = sampler.result();
    result.evaluations = evaluations;
    result.termination = termination;
    result.seconds = monitor.elapsed_seconds();
    result
}
