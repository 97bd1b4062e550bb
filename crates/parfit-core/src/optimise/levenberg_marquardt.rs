//! Bounded Levenberg–Marquardt for `min Σ r_i(x)²` over a box.
//!
//! Each iteration solves the damped Gauss–Newton system `(JᵀJ + λ D²) d = −Jᵀr` with Moré's
//! (1978) scaling `D² = diag(JᵀJ)` (kept at its running maximum, so the scaling never shrinks),
//! and projects `x + d` onto the box. Variables sitting on a bound with the gradient pushing them
//! out are held (an active set, as in projected Newton methods), so the step works in the face
//! of the box the solution lies on. The damping follows Nielsen's (1999) rule: after a step with
//! gain ratio ρ = actual / predicted reduction, `λ ← λ·max(1/3, 1 − (2ρ − 1)³)` when accepted,
//! `λ ← λ·ν, ν ← 2ν` when rejected. As λ grows the step turns into a short, diagonally scaled
//! projected gradient step, which always decreases the model, so the loop cannot stall on a
//! projected step that goes uphill.
//!
//! Batches: the start point; then, per iteration, one trial point and — after an accepted step —
//! one batch with every finite-difference point of the Jacobian. With exact Jacobians (see
//! [`least_squares`](super::least_squares)) the Jacobian comes with each trial point instead, so
//! every batch is a single point.

use crate::math;
use serde::{Deserialize, Serialize};

use super::finite_diff::{Differences, FiniteDifferences, check_step};
use super::least_squares::{LeastSquaresOptimiser, ResidualBatch, ResidualRequest};
use super::linalg::cholesky_solve;
use super::{Bounds, Stopping, Termination};
use crate::check::{OptionError, positive, require};

/// Smallest gain ratio at which a step is accepted.
const MIN_GAIN: f64 = 1e-4;
/// Damping beyond which the step cannot be meaningful any more.
const MAX_DAMPING: f64 = 1e50;

/// Options of [`LevenbergMarquardt`], as read from the user's configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LevenbergMarquardtOptions {
    /// Initial damping λ₀, relative to `diag(JᵀJ)`: small values start close to Gauss–Newton.
    /// Default `1e-3`.
    pub initial_damping: f64,
    /// Finite differences for the Jacobian when the evaluator supplies none: `"forward"` or
    /// `"central"`. Default `"forward"`.
    pub differences: Differences,
    /// Relative finite-difference step: `h_j = diff_step · max(|x_j|, 1)`. Default `√ε ≈ 1.5e-8`
    /// (forward) or `ε^(1/3) ≈ 6e-6` (central). Residuals with noise (an ODE solved to a loose
    /// tolerance) need a larger step, roughly the square root (forward) or cube root (central) of
    /// their relative noise.
    pub diff_step: Option<f64>,
    /// Stop with [`Termination::GradientTolerance`] when the projected gradient of `Σ r²` is at
    /// most this in every coordinate. Default `1e-10`.
    pub gtol: f64,
}

impl LevenbergMarquardtOptions {
    /// Check every option against its allowed range.
    pub fn check(&self) -> Result<(), OptionError> {
        positive("initial_damping", self.initial_damping)?;
        check_step(self.diff_step)?;
        require(self.gtol >= 0.0 && self.gtol.is_finite(), "gtol", "a finite number ≥ 0", self.gtol)
    }
}

impl Default for LevenbergMarquardtOptions {
    fn default() -> Self {
        LevenbergMarquardtOptions {
            initial_damping: 1e-3,
            differences: Differences::Forward,
            diff_step: None,
            gtol: 1e-10,
        }
    }
}

/// What the batch out for evaluation is.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    /// The start point.
    Start,
    /// The finite-difference points of the Jacobian at `x`.
    Jacobian,
    /// A trial point `x + step`.
    Trial,
}

/// Bounded Levenberg–Marquardt (see the module documentation).
///
/// Stops by itself (see [`LeastSquaresOptimiser::converged`]) with
/// * [`Termination::GradientTolerance`] when the projected gradient of `Σ r²` is at most `gtol`
///   in every coordinate;
/// * [`Termination::FunctionTolerance`] when an accepted step reduced `Σ r²` by at most `ftol`
///   and the linear model predicted no more than `ftol` either;
/// * [`Termination::ParameterTolerance`] when an accepted step moved no coordinate by more than
///   `xtol`, or when the damped step no longer changes `x` in floating point;
/// * [`Termination::Stagnation`] when the damping has grown without bound (no downhill step
///   found) or every Jacobian column failed to evaluate.
///
/// A trial with failed (non-finite) residuals is rejected like an uphill step. A Jacobian column
/// whose evaluation failed is taken as zero, which holds that parameter for the iteration.
#[derive(Debug, Clone)]
pub struct LevenbergMarquardt {
    bounds: Bounds,
    gtol: f64,
    fd: FiniteDifferences,
    exact_jacobians: bool,
    phase: Phase,
    /// Storage for the largest batch; `n_points` of them are out.
    points: Vec<Vec<f64>>,
    n_points: usize,

    /// Residuals per point (known after the first `tell`).
    m: usize,
    x: Vec<f64>,
    r: Vec<f64>,
    /// `Σ r²` at `x`.
    f: f64,
    /// Jacobian at `x`, column-major (m × n).
    jac: Vec<f64>,
    /// `JᵀJ` (n × n, row-major) and `Jᵀr`.
    jtj: Vec<f64>,
    jtr: Vec<f64>,
    /// Moré's scaling `D²`, the running maximum of `diag(JᵀJ)`.
    scale: Vec<f64>,
    damping: f64,
    damping_growth: f64,
    /// The trial step and the reduction of `Σ r²` the linear model predicts for it.
    step: Vec<f64>,
    predicted: f64,
    /// The latest accepted step: (actual reduction, predicted reduction, largest coordinate move).
    last_accepted: Option<(f64, f64, f64)>,

    /// Scratch: free variables, the reduced system and its right-hand side.
    free: Vec<usize>,
    system: Vec<f64>,
    rhs: Vec<f64>,

    stop: Option<Termination>,
    iterations: usize,
}

impl LevenbergMarquardt {
    /// Start from `x0` (projected onto `bounds`); an option out of its range is an error.
    ///
    /// # Panics
    /// If `x0` and `bounds` differ in dimension (a caller's mistake, not a setting).
    pub fn new(x0: Vec<f64>, bounds: Bounds, options: LevenbergMarquardtOptions) -> Result<Self, OptionError> {
        let n = x0.len();
        assert_eq!(n, bounds.dim(), "start point and bounds differ in dimension");
        options.check()?;
        let mut x0 = x0;
        bounds.clamp(&mut x0);
        Ok(LevenbergMarquardt {
            fd: FiniteDifferences::new(n, options.differences, options.diff_step),
            bounds,
            gtol: options.gtol,
            exact_jacobians: false,
            phase: Phase::Start,
            points: vec![x0.clone()],
            n_points: 1,
            m: 0,
            r: Vec::new(),
            f: f64::INFINITY,
            jac: Vec::new(),
            jtj: vec![0.0; n * n],
            jtr: vec![0.0; n],
            scale: vec![0.0; n],
            damping: options.initial_damping,
            damping_growth: 2.0,
            step: vec![0.0; n],
            predicted: 0.0,
            last_accepted: None,
            free: Vec::with_capacity(n),
            system: vec![0.0; n * n],
            rhs: vec![0.0; n],
            x: x0,
            stop: None,
            iterations: 0,
        })
    }

    fn dim(&self) -> usize {
        self.x.len()
    }

    /// Take the Jacobian at `x` from the evaluated finite-difference points.
    fn jacobian_from_differences(&mut self, batch: &ResidualBatch<'_>) {
        let (n, m) = (self.dim(), self.m);
        for j in 0..n {
            for i in 0..m {
                self.jac[j * m + i] = self.fd.derivative(j, self.r[i], |k| batch.residuals[k * m + i]);
            }
        }
    }

    /// Plan the finite-difference batch around `x`.
    fn ask_jacobian(&mut self) {
        self.n_points = self.fd.plan(&self.x, &self.bounds, &mut self.points, 0);
        self.phase = Phase::Jacobian;
        if self.n_points == 0 {
            // Every coordinate is pinned by its bounds: nothing can move.
            self.jac.fill(0.0);
            self.stop = Some(Termination::ParameterTolerance);
            self.points[0].copy_from_slice(&self.x);
            self.n_points = 1;
        }
    }

    /// With a fresh Jacobian at `x`: form the normal equations, test the gradient, and propose a
    /// trial step.
    fn use_jacobian(&mut self) {
        let (n, m) = (self.dim(), self.m);
        // A failed column (non-finite derivatives) is zeroed: its parameter is held this iteration.
        let mut failed = 0;
        for column in self.jac.chunks_exact_mut(m.max(1)).take(n) {
            if column.iter().any(|v| !v.is_finite()) {
                column.fill(0.0);
                failed += 1;
            }
        }
        if m == 0 {
            self.jac.fill(0.0);
        }
        for j in 0..n {
            let cj = &self.jac[j * m..(j + 1) * m];
            self.jtr[j] = cj.iter().zip(&self.r).map(|(a, b)| a * b).sum();
            for k in 0..=j {
                let ck = &self.jac[k * m..(k + 1) * m];
                let v: f64 = cj.iter().zip(ck).map(|(a, b)| a * b).sum();
                self.jtj[j * n + k] = v;
                self.jtj[k * n + j] = v;
            }
            self.scale[j] = self.scale[j].max(self.jtj[j * n + j]);
        }
        if n > 0 && failed == n {
            self.stop = Some(Termination::Stagnation);
            return;
        }
        // Projected gradient of Σ r² (= 2 Jᵀr): how far a unit gradient step moves inside the box.
        let projected_gradient = (0..n).fold(0.0_f64, |acc, j| {
            let moved = (self.x[j] - 2.0 * self.jtr[j]).clamp(self.bounds.lower[j], self.bounds.upper[j]);
            acc.max((moved - self.x[j]).abs())
        });
        if projected_gradient <= self.gtol {
            self.stop = Some(Termination::GradientTolerance);
            return;
        }
        self.propose();
    }

    /// Solve for the damped step, raising the damping until the projected step is predicted to
    /// go downhill; put the trial point out for evaluation.
    fn propose(&mut self) {
        let n = self.dim();
        loop {
            // Hold variables on a bound whose gradient pushes them out of the box.
            self.free.clear();
            for j in 0..n {
                let (x, g) = (self.x[j], self.jtr[j]);
                let held = (x <= self.bounds.lower[j] && g > 0.0) || (x >= self.bounds.upper[j] && g < 0.0);
                if !held {
                    self.free.push(j);
                }
            }
            let nf = self.free.len();
            for (a, &i) in self.free.iter().enumerate() {
                for (b, &j) in self.free.iter().enumerate() {
                    self.system[a * nf + b] = self.jtj[i * n + j];
                }
                // A parameter without effect so far gets unit scaling, keeping the system definite.
                let d2 = if self.scale[i] > 0.0 { self.scale[i] } else { 1.0 };
                self.system[a * nf + a] += self.damping * d2;
                self.rhs[a] = -self.jtr[i];
            }
            if cholesky_solve(&mut self.system, nf, &mut self.rhs) {
                self.step.fill(0.0);
                for (a, &j) in self.free.iter().enumerate() {
                    self.step[j] = self.rhs[a];
                }
                let trial = &mut self.points[0];
                for ((t, x), s) in trial.iter_mut().zip(&self.x).zip(&self.step) {
                    *t = x + s;
                }
                self.bounds.clamp(trial);
                for ((s, t), x) in self.step.iter_mut().zip(trial.iter()).zip(&self.x) {
                    *s = t - x;
                }
                if self.step.iter().all(|&s| s == 0.0) {
                    self.stop = Some(Termination::ParameterTolerance);
                    return;
                }
                // ‖r + J s‖² − ‖r‖² = 2 sᵀJᵀr + sᵀJᵀJ s.
                let s = &self.step;
                let quadratic: f64 =
                    (0..n).map(|i| s[i] * (0..n).map(|j| self.jtj[i * n + j] * s[j]).sum::<f64>()).sum();
                let linear: f64 = s.iter().zip(&self.jtr).map(|(a, b)| a * b).sum();
                self.predicted = -(2.0 * linear + quadratic);
                if self.predicted > 0.0 {
                    self.n_points = 1;
                    self.phase = Phase::Trial;
                    return;
                }
            }
            self.damping = (self.damping * self.damping_growth).max(f64::EPSILON);
            self.damping_growth *= 2.0;
            if self.damping > MAX_DAMPING {
                self.stop = Some(Termination::Stagnation);
                return;
            }
        }
    }

    /// Copy point 0's Jacobian from an exact batch; `false` if there is none.
    fn exact_jacobian(&mut self, batch: &ResidualBatch<'_>) -> bool {
        let len = self.m * self.dim();
        match batch.jacobians {
            Some(jacobians) if self.exact_jacobians && jacobians.len() >= len => {
                self.jac.copy_from_slice(&jacobians[..len]);
                true
            }
            _ => false,
        }
    }

    /// After `x` moved (or at the start): get the Jacobian there.
    fn next_jacobian(&mut self, batch: &ResidualBatch<'_>) {
        if self.exact_jacobian(batch) {
            self.use_jacobian();
        } else {
            self.ask_jacobian();
        }
    }
}

/// `Σ r²`, or `+inf` when any residual failed.
fn sum_of_squares(r: &[f64]) -> f64 {
    let s: f64 = r.iter().map(|v| v * v).sum();
    if s.is_finite() { s } else { f64::INFINITY }
}

impl LeastSquaresOptimiser for LevenbergMarquardt {
    fn name(&self) -> &'static str {
        "levenberg-marquardt"
    }

    fn use_exact_jacobians(&mut self, available: bool) {
        self.exact_jacobians = available;
    }

    fn ask(&mut self) -> ResidualRequest<'_> {
        ResidualRequest {
            points: &self.points[..self.n_points],
            jacobian: self.exact_jacobians && self.phase != Phase::Jacobian,
        }
    }

    fn tell(&mut self, batch: &ResidualBatch<'_>) {
        if self.stop.is_some() {
            return;
        }
        self.iterations += 1;
        match self.phase {
            Phase::Start => {
                let f = sum_of_squares(batch.row(0));
                if !f.is_finite() {
                    // Nothing to linearise around; the driver stops (every point failed).
                    return;
                }
                self.m = batch.len;
                self.r = batch.row(0).to_vec();
                self.f = f;
                self.jac = vec![0.0; self.m * self.dim()];
                self.next_jacobian(batch);
            }
            Phase::Jacobian => {
                self.jacobian_from_differences(batch);
                self.use_jacobian();
            }
            Phase::Trial => {
                assert_eq!(batch.len, self.m, "the number of residuals changed during the run");
                let f_trial = sum_of_squares(batch.row(0));
                let gain = (self.f - f_trial) / self.predicted;
                if gain > MIN_GAIN {
                    let moved = self.step.iter().fold(0.0_f64, |m, s| m.max(s.abs()));
                    self.last_accepted = Some((self.f - f_trial, self.predicted, moved));
                    self.x.copy_from_slice(&self.points[0]);
                    self.r.copy_from_slice(batch.row(0));
                    self.f = f_trial;
                    self.damping *= (1.0 - math::powi(2.0 * gain - 1.0, 3)).max(1.0 / 3.0);
                    self.damping_growth = 2.0;
                    self.next_jacobian(batch);
                } else {
                    self.damping *= self.damping_growth;
                    self.damping_growth *= 2.0;
                    if self.damping > MAX_DAMPING {
                        self.stop = Some(Termination::Stagnation);
                    } else {
                        self.propose();
                    }
                }
            }
        }
    }

    fn best(&self) -> (&[f64], f64) {
        (&self.x, self.f)
    }

    fn iterations(&self) -> usize {
        self.iterations
    }

    fn converged(&self, stop: &Stopping) -> Option<Termination> {
        if self.stop.is_some() {
            return self.stop;
        }
        let (actual, predicted, moved) = self.last_accepted?;
        if actual <= stop.ftol && predicted <= stop.ftol {
            return Some(Termination::FunctionTolerance);
        }
        (moved <= stop.xtol).then_some(Termination::ParameterTolerance)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optimise::least_squares::{ResidualEvaluator, ResidualFn, minimise_least_squares};
    use crate::optimise::{OptimResult, Silent};
    use rand::{Rng, SeedableRng};
    use rand_xoshiro::Xoshiro256PlusPlus;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// Residuals of the extended Rosenbrock function: `10 (x_{i+1} − x_i²)` and `1 − x_i`.
    fn rosenbrock(x: &[f64], r: &mut [f64]) {
        for (i, w) in x.windows(2).enumerate() {
            r[2 * i] = 10.0 * (w[1] - w[0] * w[0]);
            r[2 * i + 1] = 1.0 - w[0];
        }
    }

    /// Residuals `√c_i x_i` of the ellipsoid with condition number 1e6.
    fn ellipsoid(x: &[f64], r: &mut [f64]) {
        let denom = (x.len().max(2) - 1) as f64;
        for (i, (ri, xi)) in r.iter_mut().zip(x).enumerate() {
            *ri = math::powf(10f64, 3.0 * i as f64 / denom) * xi;
        }
    }

    fn sphere(x: &[f64], r: &mut [f64]) {
        r.copy_from_slice(x);
    }

    /// A batch evaluator from a per-point residual function.
    fn residuals(m: usize, f: fn(&[f64], &mut [f64])) -> ResidualFn<impl FnMut(&[Vec<f64>], &mut [f64])> {
        ResidualFn::new(m, move |batch: &[Vec<f64>], out: &mut [f64]| {
            for (k, x) in batch.iter().enumerate() {
                f(x, &mut out[k * m..(k + 1) * m]);
            }
        })
    }

    fn run(
        x0: Vec<f64>,
        bounds: Bounds,
        options: LevenbergMarquardtOptions,
        evaluator: &mut dyn ResidualEvaluator,
    ) -> OptimResult {
        let stop = Stopping { max_evaluations: Some(20_000), ..Stopping::default() };
        let mut lm = LevenbergMarquardt::new(x0, bounds, options).unwrap();
        minimise_least_squares(&mut lm, evaluator, &stop, &mut Silent, false)
    }

    fn random_start(n: usize, seed: u64, lo: f64, hi: f64) -> Vec<f64> {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        (0..n).map(|_| lo + (hi - lo) * rng.random::<f64>()).collect()
    }

    fn solved(n: usize, m: usize, f: fn(&[f64], &mut [f64]), lo: f64, hi: f64, differences: Differences) -> usize {
        (0..10)
            .filter(|&seed| {
                let options = LevenbergMarquardtOptions { differences, ..Default::default() };
                let r = run(random_start(n, seed, lo, hi), Bounds::unbounded(n), options, &mut residuals(m, f));
                r.value < 1e-8
            })
            .count()
    }

    #[test]
    fn reaches_1e8_on_sphere_ellipsoid_and_rosenbrock() {
        for differences in [Differences::Forward, Differences::Central] {
            assert_eq!(solved(10, 10, sphere, -5.0, 5.0, differences), 10);
            assert_eq!(solved(10, 10, ellipsoid, -5.0, 5.0, differences), 10);
            // From [−2, 2]¹⁰ one start in ten (seed 3) ends in the local minimum near
            // (−1, 1, …, 1) that 10-D Rosenbrock has besides the global one.
            let count = solved(10, 18, rosenbrock, -2.0, 2.0, differences);
            assert!(count >= 9, "{differences:?}: {count} of 10");
        }
        let r = run(vec![-1.2, 1.0], Bounds::unbounded(2), Default::default(), &mut residuals(2, rosenbrock));
        assert!(r.value < 1e-16 && r.termination.is_convergence(), "{r:?}");
    }

    #[test]
    fn bounds_hold_and_the_constrained_optimum_is_found() {
        // 2-D Rosenbrock with x_0 ≤ 0.5: the constrained minimum is (0.5, 0.25) with value 0.25.
        // Coordinate 1 starts on its upper bound, where the gradient pushes it out of the box.
        let bounds = Bounds { lower: vec![-2.0, -1.0], upper: vec![0.5, 2.0] };
        for differences in [Differences::Forward, Differences::Central] {
            let options = LevenbergMarquardtOptions { differences, ..Default::default() };
            let mut lm = LevenbergMarquardt::new(vec![-1.5, 2.0], bounds.clone(), options).unwrap();
            let mut eval = ResidualFn::new(2, |batch: &[Vec<f64>], out: &mut [f64]| {
                for (x, row) in batch.iter().zip(out.chunks_exact_mut(2)) {
                    assert!(bounds.contains(x), "{x:?} outside the box");
                    rosenbrock(x, row);
                }
            });
            let r = minimise_least_squares(&mut lm, &mut eval, &Stopping::default(), &mut Silent, false);
            assert!((r.value - 0.25).abs() < 1e-12, "{r:?}");
            assert!((r.x[0] - 0.5).abs() < 1e-12 && (r.x[1] - 0.25).abs() < 1e-8, "{r:?}");
            assert!(r.termination.is_convergence(), "{:?}", r.termination);
        }
        // A start outside the box is projected; the sphere's minimum lies beyond a face.
        let bounds = Bounds { lower: vec![1.0, -3.0, 0.5], upper: vec![2.0, 3.0, 0.5] };
        let mut lm = LevenbergMarquardt::new(vec![5.0, 5.0, 5.0], bounds.clone(), Default::default()).unwrap();
        let mut eval = ResidualFn::new(3, |batch: &[Vec<f64>], out: &mut [f64]| {
            for (x, row) in batch.iter().zip(out.chunks_exact_mut(3)) {
                assert!(bounds.contains(x), "{x:?} outside the box");
                sphere(x, row);
            }
        });
        let r = minimise_least_squares(&mut lm, &mut eval, &Stopping::default(), &mut Silent, false);
        assert!((r.x[0] - 1.0).abs() < 1e-12 && r.x[1].abs() < 1e-8 && r.x[2] == 0.5, "{r:?}");
    }

    #[test]
    fn batches_are_the_start_trials_and_whole_jacobians() {
        let mut sizes = Vec::new();
        let mut lm = LevenbergMarquardt::new(vec![0.0; 4], Bounds::unbounded(4), Default::default()).unwrap();
        let mut eval = ResidualFn::new(6, |batch: &[Vec<f64>], out: &mut [f64]| {
            sizes.push(batch.len());
            for (x, row) in batch.iter().zip(out.chunks_exact_mut(6)) {
                rosenbrock(x, row);
            }
        });
        let r = minimise_least_squares(&mut lm, &mut eval, &Stopping::default(), &mut Silent, false);
        assert!(r.value < 1e-16, "{r:?}");
        assert_eq!(sizes[..2], [1, 4]);
        assert!(sizes.iter().all(|&s| s == 1 || s == 4), "{sizes:?}");
        // A Jacobian batch follows every accepted trial, and only those.
        assert_eq!(r.evaluations, sizes.iter().sum::<usize>());
    }

    /// Rosenbrock residuals with their exact Jacobian, counting the Jacobians asked for.
    struct ExactRosenbrock {
        n: usize,
        jacobians: usize,
    }

    impl ResidualEvaluator for ExactRosenbrock {
        fn residual_count(&self) -> usize {
            2 * (self.n - 1)
        }
        fn residuals(&mut self, batch: &[Vec<f64>], out: &mut [f64]) {
            for (x, row) in batch.iter().zip(out.chunks_exact_mut(self.residual_count())) {
                rosenbrock(x, row);
            }
        }
        fn has_jacobian(&self) -> bool {
            true
        }
        fn residuals_and_jacobians(&mut self, batch: &[Vec<f64>], residuals: &mut [f64], jacobians: &mut [f64]) {
            self.residuals(batch, residuals);
            let (n, m) = (self.n, self.residual_count());
            for (x, jac) in batch.iter().zip(jacobians.chunks_exact_mut(m * n)) {
                self.jacobians += 1;
                jac.fill(0.0);
                for i in 0..n - 1 {
                    // Column-major: ∂r_k/∂x_j at j·m + k.
                    jac[i * m + 2 * i] = -20.0 * x[i];
                    jac[(i + 1) * m + 2 * i] = 10.0;
                    jac[i * m + 2 * i + 1] = -1.0;
                }
            }
        }
    }

    #[test]
    fn exact_jacobians_replace_finite_differences() {
        let mut eval = ExactRosenbrock { n: 10, jacobians: 0 };
        let mut lm =
            LevenbergMarquardt::new(random_start(10, 0, -2.0, 2.0), Bounds::unbounded(10), Default::default()).unwrap();
        let r = minimise_least_squares(&mut lm, &mut eval, &Stopping::default(), &mut Silent, false);
        assert!(r.value < 1e-16, "{r:?}");
        // Every batch is one point with its Jacobian.
        assert_eq!((r.evaluations, eval.jacobians), (r.iterations, r.iterations));
        let fd = run(
            random_start(10, 0, -2.0, 2.0),
            Bounds::unbounded(10),
            Default::default(),
            &mut residuals(18, rosenbrock),
        );
        assert!(fd.evaluations > 5 * r.evaluations, "{} vs {}", fd.evaluations, r.evaluations);
    }

    #[test]
    fn failed_residuals_are_rejected_without_panics() {
        // Residuals fail (NaN) for x_0 > 0.5: the search must stop on the failure boundary.
        let mut failures = 0;
        let mut eval = ResidualFn::new(2, |batch: &[Vec<f64>], out: &mut [f64]| {
            for (x, row) in batch.iter().zip(out.chunks_exact_mut(2)) {
                rosenbrock(x, row);
                if x[0] > 0.5 {
                    failures += 1;
                    row[1] = f64::NAN;
                }
            }
        });
        let mut lm = LevenbergMarquardt::new(vec![-1.2, 1.0], Bounds::unbounded(2), Default::default()).unwrap();
        let r = minimise_least_squares(&mut lm, &mut eval, &Stopping::default(), &mut Silent, false);
        assert!(failures > 0);
        assert!(r.value.is_finite() && r.x[0] <= 0.5 && r.value < 0.3, "{r:?}");

        // A failing start point: AllFailed, no panic.
        let mut lm = LevenbergMarquardt::new(vec![1.0; 3], Bounds::unbounded(3), Default::default()).unwrap();
        let mut eval = ResidualFn::new(3, |_: &[Vec<f64>], out: &mut [f64]| out.fill(f64::NAN));
        let r = minimise_least_squares(&mut lm, &mut eval, &Stopping::default(), &mut Silent, false);
        assert_eq!(r.termination, Termination::AllFailed);

        // Jacobian columns failing for one parameter: it is held, the others still converge.
        let mut eval = ResidualFn::new(2, |batch: &[Vec<f64>], out: &mut [f64]| {
            for (x, row) in batch.iter().zip(out.chunks_exact_mut(2)) {
                sphere(x, row);
                if x[1] != 3.0 {
                    row.fill(f64::NAN);
                }
            }
        });
        let mut lm = LevenbergMarquardt::new(vec![1.0, 3.0], Bounds::unbounded(2), Default::default()).unwrap();
        let r = minimise_least_squares(&mut lm, &mut eval, &Stopping::default(), &mut Silent, false);
        assert!(r.x[0].abs() < 1e-8 && r.x[1] == 3.0, "{r:?}");
    }

    #[test]
    fn same_start_same_asks() {
        let asks = || {
            let mut asked: Vec<u64> = Vec::new();
            let mut eval = ResidualFn::new(8, |batch: &[Vec<f64>], out: &mut [f64]| {
                asked.extend(batch.iter().flatten().map(|x| x.to_bits()));
                for (x, row) in batch.iter().zip(out.chunks_exact_mut(8)) {
                    rosenbrock(x, row);
                }
            });
            let options = LevenbergMarquardtOptions { differences: Differences::Central, ..Default::default() };
            let mut lm = LevenbergMarquardt::new(random_start(5, 1, -2.0, 2.0), Bounds::unbounded(5), options).unwrap();
            minimise_least_squares(&mut lm, &mut eval, &Stopping::default(), &mut Silent, false);
            asked
        };
        assert_eq!(asks(), asks());
    }

    #[test]
    fn degenerate_problems_stop() {
        // No parameters, no residuals, a parameter pinned by its bounds.
        let mut lm = LevenbergMarquardt::new(vec![], Bounds::unbounded(0), Default::default()).unwrap();
        let r = minimise_least_squares(
            &mut lm,
            &mut residuals(1, |_, r| r[0] = 2.0),
            &Stopping::default(),
            &mut Silent,
            false,
        );
        assert_eq!(r.value, 4.0);
        assert!(r.termination.is_convergence(), "{r:?}");
        let mut lm = LevenbergMarquardt::new(vec![1.0], Bounds::unbounded(1), Default::default()).unwrap();
        let r = minimise_least_squares(&mut lm, &mut residuals(0, |_, _| {}), &Stopping::default(), &mut Silent, false);
        assert_eq!((r.value, r.evaluations), (0.0, 2));
        let pinned = Bounds { lower: vec![1.0, 0.0], upper: vec![1.0, 5.0] };
        let mut lm = LevenbergMarquardt::new(vec![1.0, 4.0], pinned, Default::default()).unwrap();
        let r = minimise_least_squares(&mut lm, &mut residuals(2, sphere), &Stopping::default(), &mut Silent, false);
        assert!(r.x[0] == 1.0 && r.x[1].abs() < 1e-8, "{r:?}");
    }

    #[test]
    fn options_serde() {
        let parse = |s: &str| serde_json::from_str::<LevenbergMarquardtOptions>(s);
        assert_eq!(parse("{}").unwrap(), LevenbergMarquardtOptions::default());
        let o = parse(r#"{"differences": "central", "diff_step": 1e-4, "gtol": 0.0}"#).unwrap();
        assert_eq!((o.differences, o.diff_step, o.gtol), (Differences::Central, Some(1e-4), 0.0));
        assert!(parse(r#"{"differences": "backward"}"#).is_err());
        assert!(parse(r#"{"damping": 1.0}"#).is_err());
    }

    #[test]
    fn options_are_checked_at_their_boundaries_and_refused_without_a_panic() {
        let check = |o: LevenbergMarquardtOptions| o.check().map_err(|e| e.to_string());
        let base = LevenbergMarquardtOptions::default();
        assert!(check(LevenbergMarquardtOptions { initial_damping: f64::MIN_POSITIVE, ..base.clone() }).is_ok());
        for damping in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let e = check(LevenbergMarquardtOptions { initial_damping: damping, ..base.clone() }).unwrap_err();
            assert!(e.starts_with("initial_damping must be a positive finite number"), "{e}");
        }
        assert!(check(LevenbergMarquardtOptions { diff_step: Some(1e-3), ..base.clone() }).is_ok());
        assert!(check(LevenbergMarquardtOptions { diff_step: Some(0.0), ..base.clone() }).is_err());
        assert!(check(LevenbergMarquardtOptions { gtol: f64::NAN, ..base.clone() }).is_err());
        let refused = LevenbergMarquardt::new(
            vec![0.0],
            Bounds::unbounded(1),
            LevenbergMarquardtOptions { diff_step: Some(f64::NAN), ..base },
        );
        assert_eq!(refused.unwrap_err().key, "diff_step");
    }
}
