//! Ask–tell optimisers and the driver loop that evaluates their batches.
//!
//! An [`Optimiser`] never evaluates anything itself: it asks for a batch of candidates, the driver
//! evaluates the batch through a [`BatchEvaluator`] (rayon threads, MPI ranks or browser workers) and tells
//! the optimiser the values. Stopping rules shared by every algorithm live in [`Stopping`].
//!
//! Least-squares optimisers ([`LeastSquaresOptimiser`]) work the same way on residual vectors instead
//! of values, through [`minimise_least_squares`] and a [`ResidualEvaluator`].

mod cmaes;
mod de;
mod finite_diff;
mod lbfgsb;
mod least_squares;
mod levenberg_marquardt;
mod linalg;
mod nelder_mead;
#[cfg(test)]
mod test_functions;

pub use cmaes::{Cmaes, CmaesOptions, Restarts};
pub use de::{DeStrategy, DifferentialEvolution, DifferentialEvolutionOptions};
pub use finite_diff::Differences;
pub use lbfgsb::{LBfgsB, LBfgsBOptions};
pub use least_squares::{
    LeastSquaresOptimiser, ResidualBatch, ResidualEvaluator, ResidualFn, ResidualRequest, minimise_least_squares,
};
pub use levenberg_marquardt::{LevenbergMarquardt, LevenbergMarquardtOptions};
pub use nelder_mead::{NelderMead, NelderMeadOptions};

use serde::{Deserialize, Serialize};

pub use crate::check::OptionError;
use crate::check::{at_least, positive, require};

/// Box constraints of the search space. Infinite entries mean unbounded.
#[derive(Debug, Clone, PartialEq)]
pub struct Bounds {
    pub lower: Vec<f64>,
    pub upper: Vec<f64>,
}

impl Bounds {
    pub fn unbounded(dim: usize) -> Self {
        Bounds { lower: vec![f64::NEG_INFINITY; dim], upper: vec![f64::INFINITY; dim] }
    }

    pub fn dim(&self) -> usize {
        self.lower.len()
    }

    /// Project `x` onto the box.
    pub fn clamp(&self, x: &mut [f64]) {
        for ((xi, lo), hi) in x.iter_mut().zip(&self.lower).zip(&self.upper) {
            *xi = xi.clamp(*lo, *hi);
        }
    }

    pub fn contains(&self, x: &[f64]) -> bool {
        x.iter().zip(&self.lower).zip(&self.upper).all(|((xi, lo), hi)| *lo <= *xi && *xi <= *hi)
    }
}

/// Why an optimisation stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Termination {
    MaxIterations,
    MaxEvaluations,
    TargetReached,
    /// Function values of the population / simplex agree within `ftol`.
    FunctionTolerance,
    /// The search has contracted below `xtol` in every coordinate.
    ParameterTolerance,
    /// The projected gradient is below the optimiser's `gtol` in every coordinate.
    GradientTolerance,
    /// No improvement of the best value for many iterations.
    Stagnation,
    /// CMA-ES covariance matrix became too ill-conditioned to continue.
    ConditionNumber,
    /// Every candidate of a batch failed to evaluate (all values non-finite).
    AllFailed,
    TimeLimit,
    Cancelled,
}

impl Termination {
    /// Whether the algorithm stopped by its own convergence criteria (rather than a budget or the user).
    pub fn is_convergence(self) -> bool {
        matches!(
            self,
            Termination::FunctionTolerance
                | Termination::ParameterTolerance
                | Termination::GradientTolerance
                | Termination::TargetReached
        )
    }
}

impl std::fmt::Display for Termination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = match self {
            Termination::MaxIterations => "maximum iterations reached",
            Termination::MaxEvaluations => "maximum evaluations reached",
            Termination::TargetReached => "target value reached",
            Termination::FunctionTolerance => "function tolerance reached",
            Termination::ParameterTolerance => "parameter tolerance reached",
            Termination::GradientTolerance => "gradient tolerance reached",
            Termination::Stagnation => "no progress (stagnation)",
            Termination::ConditionNumber => "covariance condition number too large",
            Termination::AllFailed => "every candidate failed to evaluate",
            Termination::TimeLimit => "time limit reached",
            Termination::Cancelled => "cancelled",
        };
        f.write_str(text)
    }
}

/// Stopping rules shared by every optimiser.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Stopping {
    pub max_iterations: Option<usize>,
    pub max_evaluations: Option<usize>,
    /// Stop as soon as the best value is at or below this.
    pub target_value: Option<f64>,
    /// Wall-clock limit, checked between iterations (needs a [`Monitor`] with a clock).
    pub max_seconds: Option<f64>,
    /// Absolute tolerance on function values (spread of the simplex / population); for L-BFGS-B the
    /// relative decrease of one iteration, `(f_k − f_{k+1}) / max(|f_k|, |f_{k+1}|, 1)`, as in scipy.
    pub ftol: f64,
    /// Absolute tolerance on parameters (size of the simplex / search distribution).
    pub xtol: f64,
}

impl Default for Stopping {
    fn default() -> Self {
        Stopping {
            max_iterations: None,
            max_evaluations: None,
            target_value: None,
            max_seconds: None,
            ftol: 1e-12,
            xtol: 1e-12,
        }
    }
}

impl Stopping {
    /// Check every rule against its allowed range. A limit of zero would stop before the first batch and report
    /// its start as a result; NaN would never compare true, so the rule would be silently off.
    pub fn check(&self) -> Result<(), OptionError> {
        if let Some(max) = self.max_iterations {
            at_least("max_iterations", max, 1)?;
        }
        if let Some(max) = self.max_evaluations {
            at_least("max_evaluations", max, 1)?;
        }
        if let Some(target) = self.target_value {
            require(!target.is_nan(), "target_value", "a number", target)?;
        }
        if let Some(seconds) = self.max_seconds {
            positive("max_seconds", seconds)?;
        }
        require(self.ftol >= 0.0 && self.ftol.is_finite(), "ftol", "a finite number ≥ 0", self.ftol)?;
        require(self.xtol >= 0.0 && self.xtol.is_finite(), "xtol", "a finite number ≥ 0", self.xtol)
    }
}

/// An ask–tell optimiser over a box-bounded search space.
pub trait Optimiser: Send {
    fn name(&self) -> &'static str;

    /// The next batch of candidates to evaluate (never empty). Candidates lie within the bounds.
    fn ask(&mut self) -> &[Vec<f64>];

    /// The values of the batch last returned by `ask`, in the same order. Non-finite values mean the
    /// evaluation failed; algorithms treat them as worse than any finite value.
    fn tell(&mut self, values: &[f64]);

    /// Best point seen so far and its value (`+inf` before the first `tell`).
    fn best(&self) -> (&[f64], f64);

    /// Completed ask–tell rounds.
    fn iterations(&self) -> usize;

    /// The algorithm's own convergence test against the shared tolerances; `None` while it should go on.
    fn converged(&self, stop: &Stopping) -> Option<Termination>;
}

/// Evaluates a batch of candidates. The only place fitting parallelism happens.
pub trait BatchEvaluator {
    /// Write the value of `batch[i]` into `values[i]`. Failures are `+inf`, never panics.
    fn evaluate(&mut self, batch: &[Vec<f64>], values: &mut [f64]);
}

impl<F: FnMut(&[Vec<f64>], &mut [f64])> BatchEvaluator for F {
    fn evaluate(&mut self, batch: &[Vec<f64>], values: &mut [f64]) {
        self(batch, values)
    }
}

/// What the driver reports after every iteration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    pub iteration: usize,
    pub evaluations: usize,
    pub best_value: f64,
}

/// The driver's window on the outside world: a clock, progress reports, cancellation.
/// The core has no clock of its own (it must build for wasm32, where `std::time::Instant` panics).
pub trait Monitor {
    /// Seconds since the run started; `0.0` when there is no clock.
    fn elapsed_seconds(&self) -> f64 {
        0.0
    }
    fn on_progress(&mut self, _progress: &Progress) {}
    fn cancelled(&self) -> bool {
        false
    }
}

/// A monitor that reports nothing and never cancels.
#[derive(Debug, Default)]
pub struct Silent;

impl Monitor for Silent {}

/// One row of the optimisation history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryPoint {
    pub iteration: usize,
    pub evaluations: usize,
    pub best_value: f64,
    pub best_x: Vec<f64>,
}

/// The outcome of an optimisation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OptimResult {
    pub x: Vec<f64>,
    pub value: f64,
    pub evaluations: usize,
    pub iterations: usize,
    pub termination: Termination,
    pub seconds: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<HistoryPoint>>,
}

/// Run `optimiser` until a stopping rule fires.
///
/// Every batch goes through `evaluator` whole, so a parallel evaluator sees the full population.
/// The result depends only on the optimiser's state and the values, never on how the batch was evaluated.
pub fn minimise(
    optimiser: &mut dyn Optimiser,
    evaluator: &mut dyn BatchEvaluator,
    stop: &Stopping,
    monitor: &mut dyn Monitor,
    record_history: bool,
) -> OptimResult {
    let mut stepper = ValueStepper { optimiser, evaluator, values: Vec::new() };
    drive(&mut stepper, stop, monitor, record_history)
}

/// One ask–evaluate–tell round of some kind of optimiser, for [`drive`].
trait Stepper {
    /// Ask for the next batch and, if `affordable(batch size)`, evaluate it and tell the optimiser.
    /// Returns the batch size and whether every point of it failed, or `None` when it was not
    /// affordable.
    fn step(&mut self, affordable: &dyn Fn(usize) -> bool) -> Option<(usize, bool)>;
    fn best(&self) -> (&[f64], f64);
    fn iterations(&self) -> usize;
    fn converged(&self, stop: &Stopping) -> Option<Termination>;
}

struct ValueStepper<'a> {
    optimiser: &'a mut dyn Optimiser,
    evaluator: &'a mut dyn BatchEvaluator,
    values: Vec<f64>,
}

impl Stepper for ValueStepper<'_> {
    fn step(&mut self, affordable: &dyn Fn(usize) -> bool) -> Option<(usize, bool)> {
        let batch = self.optimiser.ask();
        if !affordable(batch.len()) {
            return None;
        }
        self.values.clear();
        self.values.resize(batch.len(), f64::NAN);
        self.evaluator.evaluate(batch, &mut self.values);
        let all_failed = self.values.iter().all(|v| !v.is_finite());
        self.optimiser.tell(&self.values);
        Some((self.values.len(), all_failed))
    }

    fn best(&self) -> (&[f64], f64) {
        self.optimiser.best()
    }

    fn iterations(&self) -> usize {
        self.optimiser.iterations()
    }

    fn converged(&self, stop: &Stopping) -> Option<Termination> {
        self.optimiser.converged(stop)
    }
}

/// The driver loop shared by [`minimise`] and [`minimise_least_squares`]: the shared stopping rules
/// in a fixed order, progress reports and history.
fn drive(stepper: &mut dyn Stepper, stop: &Stopping, monitor: &mut dyn Monitor, record_history: bool) -> OptimResult {
    let mut evaluations = 0usize;
    let mut history = record_history.then(Vec::new);
    let termination = loop {
        if monitor.cancelled() {
            break Termination::Cancelled;
        }
        let affordable =
            |batch_len| stop.max_evaluations.is_none_or(|max| evaluations + batch_len <= max || evaluations == 0);
        let Some((batch_len, all_failed)) = stepper.step(&affordable) else {
            break Termination::MaxEvaluations;
        };
        evaluations += batch_len;

        let (best_x, best_value) = stepper.best();
        let progress = Progress { iteration: stepper.iterations(), evaluations, best_value };
        if let Some(h) = history.as_mut() {
            h.push(HistoryPoint { iteration: progress.iteration, evaluations, best_value, best_x: best_x.to_vec() });
        }
        monitor.on_progress(&progress);

        if all_failed && !best_value.is_finite() {
            break Termination::AllFailed;
        }
        if stop.target_value.is_some_and(|target| best_value <= target) {
            break Termination::TargetReached;
        }
        if let Some(t) = stepper.converged(stop) {
            break t;
        }
        if stop.max_iterations.is_some_and(|max| stepper.iterations() >= max) {
            break Termination::MaxIterations;
        }
        if stop.max_evaluations.is_some_and(|max| evaluations >= max) {
            break Termination::MaxEvaluations;
        }
        if stop.max_seconds.is_some_and(|max| monitor.elapsed_seconds() >= max) {
            break Termination::TimeLimit;
        }
    };
    let (x, value) = stepper.best();
    OptimResult {
        x: x.to_vec(),
        value,
        evaluations,
        iterations: stepper.iterations(),
        termination,
        seconds: monitor.elapsed_seconds(),
        history,
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    #[test]
    fn stopping_rules_are_checked_at_their_boundaries() {
        let check = |stop: Stopping| stop.check().map_err(|e| e.to_string());
        let base = Stopping::default();
        assert!(check(base.clone()).is_ok());
        assert!(check(Stopping { max_iterations: Some(1), max_evaluations: Some(1), ..base.clone() }).is_ok());
        assert_eq!(
            check(Stopping { max_iterations: Some(0), ..base.clone() }),
            Err("max_iterations must be at least 1 (got 0)".into())
        );
        assert!(check(Stopping { max_evaluations: Some(0), ..base.clone() }).is_err());
        assert!(check(Stopping { target_value: Some(f64::NEG_INFINITY), ..base.clone() }).is_ok());
        assert_eq!(
            check(Stopping { target_value: Some(f64::NAN), ..base.clone() }),
            Err("target_value must be a number (got NaN)".into())
        );
        assert!(check(Stopping { max_seconds: Some(1e-3), ..base.clone() }).is_ok());
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(check(Stopping { max_seconds: Some(bad), ..base.clone() }).is_err(), "{bad}");
        }
        assert!(check(Stopping { ftol: 0.0, xtol: 0.0, ..base.clone() }).is_ok());
        for bad in [-1e-300, f64::NAN, f64::INFINITY] {
            assert!(check(Stopping { ftol: bad, ..base.clone() }).unwrap_err().starts_with("ftol"), "{bad}");
            assert!(check(Stopping { xtol: bad, ..base.clone() }).unwrap_err().starts_with("xtol"), "{bad}");
        }
    }
}
