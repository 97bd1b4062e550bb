//! The ask–tell interface of least-squares optimisers, which need residual vectors rather than
//! values, and its driver.
//!
//! As with [`Optimiser`](super::Optimiser), the algorithm never evaluates: it asks for a batch of
//! points and is told their residuals. Derivatives are the algorithm's business: without exact
//! Jacobians it asks for the finite-difference points of a whole Jacobian (`x + h_j e_j` for every
//! j) as one batch, which the driver evaluates in parallel like any other.
//!
//! **Exact Jacobians** (the hook for model sensitivities): an evaluator whose
//! [`ResidualEvaluator::has_jacobian`] is true can return `∂r/∂x` with the residuals. The driver
//! tells the optimiser so once, through [`LeastSquaresOptimiser::use_exact_jacobians`], before
//! the first `ask`; from then on the optimiser sets [`ResidualRequest::jacobian`] on batches whose
//! Jacobians it wants and finds them in [`ResidualBatch::jacobians`].

use super::{Monitor, OptimResult, Stopping, Termination, drive};

/// A batch a least-squares optimiser wants evaluated.
#[derive(Debug, Clone, Copy)]
pub struct ResidualRequest<'a> {
    /// The points, inside the optimiser's bounds.
    pub points: &'a [Vec<f64>],
    /// Whether the Jacobian at every point is wanted as well. Only ever set after the optimiser
    /// was told exact Jacobians are available.
    pub jacobian: bool,
}

/// The residuals (and, when asked for, Jacobians) of a [`ResidualRequest`]'s points.
#[derive(Debug, Clone, Copy)]
pub struct ResidualBatch<'a> {
    /// Residuals per point (m of them, the same m for every batch).
    pub len: usize,
    /// Point k's residuals are `residuals[k·m .. (k+1)·m]`. A failed evaluation has non-finite
    /// residuals.
    pub residuals: &'a [f64],
    /// When the request wanted them: point k's Jacobian, column-major (one column of m
    /// derivatives per parameter, as sensitivities come): `∂r_i/∂x_j` at
    /// `jacobians[k·m·n + j·m + i]`.
    pub jacobians: Option<&'a [f64]>,
}

impl ResidualBatch<'_> {
    /// Point k's residuals.
    pub fn row(&self, k: usize) -> &[f64] {
        &self.residuals[k * self.len..(k + 1) * self.len]
    }
}

/// An ask–tell least-squares optimiser: minimises `Σ r_i(x)²` over a box.
pub trait LeastSquaresOptimiser: Send {
    fn name(&self) -> &'static str;

    /// Whether the evaluator supplies exact Jacobians; called by the driver once, before the first
    /// `ask`. Optimisers that cannot use them may ignore it (the default).
    fn use_exact_jacobians(&mut self, _available: bool) {}

    /// The next batch to evaluate (never empty).
    fn ask(&mut self) -> ResidualRequest<'_>;

    /// The residuals of the batch last returned by `ask`, in the same order.
    fn tell(&mut self, batch: &ResidualBatch<'_>);

    /// Best point seen so far and its sum of squared residuals (`+inf` before the first `tell`).
    fn best(&self) -> (&[f64], f64);

    /// Completed ask–tell rounds.
    fn iterations(&self) -> usize;

    /// The algorithm's own convergence test; `None` while it should go on.
    fn converged(&self, stop: &Stopping) -> Option<Termination>;
}

/// Evaluates the residual vectors of a batch of points. Like
/// [`BatchEvaluator`](super::BatchEvaluator), the place where parallelism happens.
pub trait ResidualEvaluator {
    /// The number m of residuals per point, fixed for the run.
    fn residual_count(&self) -> usize;

    /// Write the residuals of `batch[k]` into `out[k·m .. (k+1)·m]`. Failures are non-finite
    /// residuals, never panics.
    fn residuals(&mut self, batch: &[Vec<f64>], out: &mut [f64]);

    /// Whether [`residuals_and_jacobians`](Self::residuals_and_jacobians) gives exact Jacobians
    /// (e.g. from model sensitivities). Default `false`.
    fn has_jacobian(&self) -> bool {
        false
    }

    /// Residuals as [`residuals`](Self::residuals), and the Jacobian of `batch[k]` into
    /// `jacobians[k·m·n .. (k+1)·m·n]`, column-major (see [`ResidualBatch::jacobians`]). Only
    /// called when [`has_jacobian`](Self::has_jacobian) is true; the default marks every
    /// Jacobian failed (NaN).
    fn residuals_and_jacobians(&mut self, batch: &[Vec<f64>], residuals: &mut [f64], jacobians: &mut [f64]) {
        self.residuals(batch, residuals);
        jacobians.fill(f64::NAN);
    }
}

/// A [`ResidualEvaluator`] from a closure that fills the residuals of a whole batch (point k's
/// at `out[k·m .. (k+1)·m]`), for m residuals per point.
#[derive(Debug, Clone)]
pub struct ResidualFn<F> {
    count: usize,
    f: F,
}

impl<F: FnMut(&[Vec<f64>], &mut [f64])> ResidualFn<F> {
    pub fn new(count: usize, f: F) -> Self {
        ResidualFn { count, f }
    }
}

impl<F: FnMut(&[Vec<f64>], &mut [f64])> ResidualEvaluator for ResidualFn<F> {
    fn residual_count(&self) -> usize {
        self.count
    }

    fn residuals(&mut self, batch: &[Vec<f64>], out: &mut [f64]) {
        (self.f)(batch, out)
    }
}

/// Run a least-squares optimiser until a stopping rule fires: the shared rules of [`Stopping`]
/// (evaluations count points, whether or not their Jacobians were asked for) and the optimiser's
/// own. `OptimResult::value` is the sum of squared residuals.
///
/// Every batch goes through `evaluator` whole, so a parallel evaluator sees every finite-difference
/// point of a Jacobian at once.
pub fn minimise_least_squares(
    optimiser: &mut dyn LeastSquaresOptimiser,
    evaluator: &mut dyn ResidualEvaluator,
    stop: &Stopping,
    monitor: &mut dyn Monitor,
    record_history: bool,
) -> OptimResult {
    optimiser.use_exact_jacobians(evaluator.has_jacobian());
    let mut stepper = ResidualStepper { optimiser, evaluator, residuals: Vec::new(), jacobians: Vec::new() };
    drive(&mut stepper, stop, monitor, record_history)
}

struct ResidualStepper<'a> {
    optimiser: &'a mut dyn LeastSquaresOptimiser,
    evaluator: &'a mut dyn ResidualEvaluator,
    residuals: Vec<f64>,
    jacobians: Vec<f64>,
}

impl super::Stepper for ResidualStepper<'_> {
    fn step(&mut self, affordable: &dyn Fn(usize) -> bool) -> Option<(usize, bool)> {
        let m = self.evaluator.residual_count();
        let request = self.optimiser.ask();
        let count = request.points.len();
        if !affordable(count) {
            return None;
        }
        self.residuals.clear();
        self.residuals.resize(count * m, f64::NAN);
        if request.jacobian {
            let n = request.points.first().map_or(0, Vec::len);
            self.jacobians.clear();
            self.jacobians.resize(count * m * n, f64::NAN);
            self.evaluator.residuals_and_jacobians(request.points, &mut self.residuals, &mut self.jacobians);
        } else {
            self.evaluator.residuals(request.points, &mut self.residuals);
        }
        let jacobians = request.jacobian.then_some(&self.jacobians[..]);
        let batch = ResidualBatch { len: m, residuals: &self.residuals, jacobians };
        let all_failed = (0..count).all(|k| batch.row(k).iter().any(|r| !r.is_finite()));
        self.optimiser.tell(&batch);
        Some((count, all_failed))
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
