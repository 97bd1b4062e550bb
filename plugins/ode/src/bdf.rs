//! Variable-order (1–5), variable-step BDF for stiff problems, in the quasi-constant step-size form of
//! Shampine & Reichelt ("The MATLAB ODE Suite", 1997) with their NDF modification at orders 1–4.
//!
//! The solution history is kept as backward differences `D_0 = y_n, D_1 = ∇y_n, …` on an equally spaced
//! grid of the current step `h`; a step-size change rescales them to the new grid, an order change just
//! uses more or fewer of them. Each step solves the implicit corrector with a simplified Newton iteration
//! on `I - c·J` (`c = h / α_k`), where `J = ∂F/∂u` comes from the symbolic derivative code of the model.
//! `J` is only re-evaluated when Newton fails to converge with the current one; the LU factorisation is
//! redone when `c` changed by more than 30% (order or step-size changes) or `J` is new. `J` is kept as its
//! structural non-zeros and `I - c·J` stored as its pattern suits (banded or dense, see `linear.rs`).
//!
//! With a mass matrix `M` (`M du/dt = F`, `M` constant, possibly singular: semi-explicit index-1 DAEs) the
//! corrector is `M·(corr + psi) = c·F` and Newton iterates with `M - c·J`; the solve starts from a
//! consistent state (see [`Bdf::consistent_start`]) and its derivative instead of `F`.
//!
//! With forward sensitivities the state is `[y, s_1, …, s_P]` and its Jacobian is block lower triangular
//! with `J` on the diagonal. Newton iterates with the block-diagonal part only (the simultaneous corrector
//! of CVODES): every block is solved with the same LU of `I - c·J`, of the model's size `n`. Since the
//! sensitivity equations are linear in `s`, the dropped coupling vanishes as `y` converges.

// Index loops read like the formulas here (several arrays indexed together).
#![allow(clippy::needless_range_loop)]

use parfit_core::SimError;
use parfit_core::math;

use crate::events::{Event, RootFinder};
use crate::linear::IterationMatrix;
use crate::solver::{SolverOptions, System, initial_step, step_too_small, step_too_small_error};

pub(crate) const MAX_ORDER: usize = 5;
const NEWTON_MAXITER: usize = 4;
const MIN_FACTOR: f64 = 0.2;
const MAX_FACTOR: f64 = 10.0;
/// With a mass matrix: a Newton iteration that stops contracting with increments at most this large (in the
/// weighted norm, in units of the tolerance) has reached rounding noise and is taken as converged.
const STALLED_NORM: f64 = 0.1;
/// Refactorise `I - c·J` when `c` changed by more than this fraction.
const MAX_C_CHANGE: f64 = 0.3;

/// NDF coefficients κ_k (Shampine & Reichelt, Table 1); κ_5 = 0 makes order 5 the plain BDF.
const KAPPA: [f64; MAX_ORDER + 1] = [0.0, -0.1850, -1.0 / 9.0, -0.0823, -0.0415, 0.0];

/// Method constants per order `k`: `γ_k = Σ_{j≤k} 1/j`, `α_k = (1 - κ_k) γ_k` (the corrector's leading
/// coefficient) and the local error constant `κ_k γ_k + 1/(k+1)`.
struct Coeffs {
    gamma: [f64; MAX_ORDER + 1],
    alpha: [f64; MAX_ORDER + 1],
    err_const: [f64; MAX_ORDER + 1],
}

impl Coeffs {
    fn new() -> Self {
        let mut c =
            Coeffs { gamma: [0.0; MAX_ORDER + 1], alpha: [0.0; MAX_ORDER + 1], err_const: [0.0; MAX_ORDER + 1] };
        for k in 1..=MAX_ORDER {
            c.gamma[k] = c.gamma[k - 1] + 1.0 / k as f64;
            c.alpha[k] = (1.0 - KAPPA[k]) * c.gamma[k];
        }
        for k in 0..=MAX_ORDER {
            c.err_const[k] = KAPPA[k] * c.gamma[k] + 1.0 / (k + 1) as f64;
        }
        c
    }
}

/// Scratch for one BDF integration; sized once per model.
pub(crate) struct Bdf {
    pub y: Vec<f64>,
    /// Backward differences, `MAX_ORDER + 3` rows of `n` (two extra for the order-raising estimate).
    diff: Vec<f64>,
    diff_tmp: Vec<f64>,
    y_pred: Vec<f64>,
    psi: Vec<f64>,
    /// The Newton iterate's correction `y_new - y_pred`.
    corr: Vec<f64>,
    y_new: Vec<f64>,
    f: Vec<f64>,
    /// `1 / (atol + rtol·|y|)` of the norms: the predictor's for Newton, the new solution's for the error
    /// test (reciprocals, so the norms of every Newton iteration multiply instead of divide).
    weight: Vec<f64>,
    dy: Vec<f64>,
    /// Each component's error on the last rejected step, in units of its tolerance (the error estimate, or
    /// Newton's last correction when it failed), for the message of a failure.
    rejected_err: Vec<f64>,
    /// The size of `J` (the model's states); the state has `dim() / block` blocks of it.
    block: usize,
    /// The entries of `∂F/∂u` (`block × block`) in the order of its pattern.
    jac: Vec<f64>,
    /// The mass matrix's pattern `(row, column)` within a block and its entries (both empty: `M = I`).
    mass_pattern: Vec<(u32, u32)>,
    mass: Vec<f64>,
    /// `du/dt` at the start of a solve with a mass matrix (zero in the algebraic components).
    yp: Vec<f64>,
    /// Per state: whether it is algebraic (its column of `M` is zero); empty without a mass matrix.
    algebraic: Vec<bool>,
    /// `M - c·J` and its factorisation.
    matrix: IterationMatrix,
    coef: Coeffs,
    /// The event search (for models with stop functions).
    roots: RootFinder,
}

impl std::fmt::Debug for Bdf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bdf").field("n", &self.y.len()).finish_non_exhaustive()
    }
}

/// How one Newton solve ended.
enum Newton {
    Converged { iterations: usize },
    Failed { non_finite: bool },
}

impl Bdf {
    /// Scratch for a state of `n` values made of blocks of `block` (the model's states) that share `J`,
    /// whose non-zero entries are at `pattern` (row, column), and the mass matrix, whose non-zero entries
    /// are at `mass_pattern` (empty: the identity).
    pub fn new(
        n: usize,
        block: usize,
        pattern: impl IntoIterator<Item = (u32, u32)>,
        mass_pattern: &[(u32, u32)],
    ) -> Self {
        let matrix = IterationMatrix::new(block, pattern, mass_pattern);
        debug_assert!(block > 0 && n.is_multiple_of(block));
        let v = || vec![0.0; n];
        Bdf {
            y: v(),
            diff: vec![0.0; (MAX_ORDER + 3) * n],
            diff_tmp: vec![0.0; (MAX_ORDER + 1) * n],
            y_pred: v(),
            psi: v(),
            corr: v(),
            y_new: v(),
            f: v(),
            weight: v(),
            dy: v(),
            rejected_err: v(),
            block,
            jac: vec![0.0; matrix.entries()],
            mass_pattern: mass_pattern.to_vec(),
            mass: vec![0.0; mass_pattern.len()],
            yp: if mass_pattern.is_empty() { Vec::new() } else { v() },
            algebraic: Vec::new(),
            matrix,
            coef: Coeffs::new(),
            roots: RootFinder::default(),
        }
    }

    pub fn dim(&self) -> usize {
        self.y.len()
    }

    /// Whether this scratch fits a state of `n` values in blocks of `block` with `J`'s and `M`'s non-zeros at
    /// `pattern` and `mass_pattern`.
    pub fn fits(
        &self,
        n: usize,
        block: usize,
        pattern: impl IntoIterator<Item = (u32, u32)>,
        mass_pattern: &[(u32, u32)],
    ) -> bool {
        self.dim() == n && self.block == block && self.matrix.fits(block, pattern, mass_pattern)
    }

    /// Integrate from `(t0, self.y)` and report the solution at `times[next..]` through `sys.output`. At a
    /// zero of a stop function the solve ends there, with the state in `self.y`, and returns the event.
    pub fn solve<S: System>(
        &mut self,
        opts: &SolverOptions,
        sys: &mut S,
        t0: f64,
        times: &[f64],
        mut next: usize,
        h0: Option<f64>,
    ) -> Result<Option<Event>, SimError> {
        let n = self.dim();
        let mut t = t0;
        if !self.mass.is_empty() && next < times.len() {
            sys.mass(&mut self.mass);
            self.consistent_start(opts, sys, t)?;
        }
        while next < times.len() && times[next] <= t {
            sys.output(next, times[next], &self.y);
            next += 1;
        }
        let Some(&t_end) = times.last() else { return Ok(None) };
        if next == times.len() {
            return Ok(None);
        }
        if !self.y.iter().all(|v| v.is_finite()) {
            return Err(SimError::Diverged { t });
        }
        sys.rhs(t, &self.y, &mut self.f);
        if !self.f.iter().all(|v| v.is_finite()) {
            return Err(SimError::Diverged { t });
        }
        let n_stops = sys.n_stops();
        if n_stops > 0 {
            let Bdf { roots, y, .. } = self;
            roots.start(n_stops, t, |t, g| sys.stop(t, y, g));
        }
        // The slope: F, or with a mass matrix the consistent du/dt.
        let slope = if self.mass.is_empty() { &self.f } else { &self.yp };
        let max_step = opts.max_step.unwrap_or(f64::INFINITY);
        let mut h = match h0 {
            Some(h) => h,
            None => initial_step(opts, sys, t, &self.y, slope, 1, t_end - t, max_step, &mut self.dy, &mut self.psi),
        }
        .min(max_step);

        // History for order 1: D_0 = y, D_1 = h du/dt.
        self.diff.fill(0.0);
        self.rejected_err.fill(0.0);
        self.diff[..n].copy_from_slice(&self.y);
        for i in 0..n {
            self.diff[n + i] = h * slope[i];
        }
        let mut order = 1;
        let mut equal_steps = 0; // steps taken with the current h and order
        sys.jacobian(t, &self.y, &mut self.jac);
        let mut jac_current = true;
        let mut lu_c = f64::NAN; // the c of the current factorisation; NaN: none
        let newton_tol = (10.0 * f64::EPSILON / opts.rtol).max(opts.rtol.sqrt().min(0.03));
        // `max_steps` covers the whole solve, including Dormand–Prince's steps before an `auto` switch.
        let mut attempts = {
            let s = sys.stats();
            s.steps + s.rejected_steps
        };
        let mut failed_non_finite = false;

        loop {
            let stop = if opts.dense_output { t_end } else { times[next] };
            // Keep within max_step and land exactly on `stop` (stretching a step that would fall just short).
            let mut h_new = h.min(max_step);
            let last = t + 1.01 * h_new >= stop;
            if last {
                h_new = stop - t;
            }
            if h_new != h {
                self.rescale(order, h_new / h);
                h = h_new;
            }
            // (A step cut short to land on a requested time may be as short as that time is away.)
            if !last && step_too_small(h, t) {
                if failed_non_finite {
                    return Err(SimError::Diverged { t });
                }
                return Err(step_too_small_error(sys, t, h, &self.y, &self.rejected_err));
            }
            if attempts >= opts.max_steps {
                return Err(SimError::TooManySteps { t, max_steps: opts.max_steps });
            }
            attempts += 1;
            let t_new = if last { stop } else { t + h };

            // Predictor and the corrector's constant part.
            let alpha = self.coef.alpha[order];
            self.predict(order, 1.0 / alpha);
            for (w, p) in self.weight.iter_mut().zip(&self.y_pred) {
                *w = 1.0 / (opts.atol + opts.rtol * p.abs());
            }
            let newton_weight = |scale: f64| 1.0 / (opts.atol + opts.rtol * scale);
            algebraic_weights(&mut self.weight, &self.y_pred, self.block, &self.algebraic, newton_weight);
            let c = h / alpha;

            let iterations = loop {
                // A factorisation for a nearby `c` still makes Newton converge (a little slower); redo it
                // only when `c` moved by more than 30% (CVODE's rule) or `J` is new.
                if lu_c.is_nan() || (c / lu_c - 1.0).abs() > MAX_C_CHANGE {
                    if !self.factor(c) {
                        // Singular iteration matrix: treat like a Newton failure.
                        lu_c = f64::NAN;
                        break None;
                    }
                    lu_c = c;
                    sys.stats().lu_factorizations += 1;
                }
                match self.newton(sys, t_new, c, newton_tol) {
                    Newton::Converged { iterations } => break Some(iterations),
                    Newton::Failed { non_finite } => {
                        // Retry with what is stale, cheapest first: the factorisation's `c`, then `J`.
                        failed_non_finite = non_finite;
                        if lu_c != c {
                            lu_c = f64::NAN;
                        } else if !jac_current {
                            sys.jacobian(t_new, &self.y_pred, &mut self.jac);
                            jac_current = true;
                            lu_c = f64::NAN;
                        } else {
                            break None;
                        }
                    }
                }
            };
            let Some(iterations) = iterations else {
                // Newton failed even with a fresh Jacobian: halve the step.
                sys.stats().rejected_steps += 1;
                self.note_rejection();
                self.rescale(order, 0.5);
                h *= 0.5;
                equal_steps = 0;
                continue;
            };

            // Local error estimate: the error constant times the correction.
            let err_c = self.coef.err_const[order];
            for i in 0..n {
                self.weight[i] = 1.0 / (opts.atol + opts.rtol * self.y_new[i].abs());
                self.dy[i] = err_c * self.corr[i];
            }
            // The algebraic components are left out of the error test (IDA's `suppressalg`): the algebraic
            // equations give them the differential components' accuracy.
            algebraic_weights(&mut self.weight, &self.y_new, self.block, &self.algebraic, |_| 0.0);
            let err = weighted_rms(&self.dy, &self.weight);
            let safety = 0.9 * (2 * NEWTON_MAXITER + 1) as f64 / (2 * NEWTON_MAXITER + iterations) as f64;
            // Also rejects a NaN error.
            if err.is_nan() || err > 1.0 {
                sys.stats().rejected_steps += 1;
                self.note_rejection();
                let factor = if err.is_finite() {
                    (safety * math::powf(err, -1.0 / (order + 1) as f64)).max(MIN_FACTOR)
                } else {
                    MIN_FACTOR
                };
                self.rescale(order, factor);
                h *= factor;
                equal_steps = 0;
                continue;
            }

            // Accept: update the differences with the correction.
            failed_non_finite = false;
            sys.stats().steps += 1;
            jac_current = false;
            {
                let (lo, hi) = self.diff.split_at_mut((order + 1) * n);
                let (d_k1, d_k2) = hi.split_at_mut(n);
                for i in 0..n {
                    d_k2[i] = self.corr[i] - d_k1[i];
                    d_k1[i] = self.corr[i];
                }
                for k in (0..=order).rev() {
                    for i in 0..n {
                        let above = if k == order { d_k1[i] } else { lo[(k + 1) * n + i] };
                        lo[k * n + i] += above;
                    }
                }
            }
            let event = if n_stops > 0 { self.find_event(sys, order, h, t_new) } else { None };
            let upto = event.map_or(t_new, |e| e.0);
            while next < times.len() && times[next] <= upto {
                let ti = times[next];
                if ti == t_new {
                    sys.output(next, ti, &self.y_new);
                } else {
                    self.interpolate(order, t_new, h, ti);
                    sys.output(next, ti, &self.dy);
                }
                next += 1;
            }
            if let Some((t_event, index)) = event {
                if t_event == t_new {
                    std::mem::swap(&mut self.y, &mut self.y_new);
                } else {
                    self.interpolate(order, t_new, h, t_event);
                    std::mem::swap(&mut self.y, &mut self.dy);
                }
                return Ok(Some(Event { t: t_event, index, next }));
            }
            std::mem::swap(&mut self.y, &mut self.y_new);
            t = t_new;
            if next == times.len() {
                return Ok(None);
            }

            equal_steps += 1;
            if equal_steps < order + 1 {
                continue;
            }
            // Choose the order (one down, same, one up) that allows the largest next step.
            let err_down =
                if order > 1 { self.scaled_norm(order, self.coef.err_const[order - 1]) } else { f64::INFINITY };
            let err_up = if order < MAX_ORDER {
                self.scaled_norm(order + 2, self.coef.err_const[order + 1])
            } else {
                f64::INFINITY
            };
            let factors = [
                math::powf(err_down, -1.0 / order as f64),
                math::powf(err, -1.0 / (order + 1) as f64),
                math::powf(err_up, -1.0 / (order + 2) as f64),
            ];
            let mut best = 0;
            for k in 1..3 {
                if factors[k] > factors[best] {
                    best = k;
                }
            }
            order = order + best - 1;
            let factor = (safety * factors[best]).min(MAX_FACTOR);
            self.rescale(order, factor);
            h *= factor;
            equal_steps = 0;
        }
    }

    /// Keep the rejected step's errors (`dy` in the norm's weights) for the message of a failure.
    fn note_rejection(&mut self) {
        for ((e, &d), &w) in self.rejected_err.iter_mut().zip(&self.dy).zip(&self.weight) {
            *e = d * w;
        }
    }

    /// The first zero of a stop function on the step just accepted (ending at `t_new`), located on the
    /// interpolating polynomial (see `events.rs`).
    fn find_event<S: System>(&mut self, sys: &mut S, order: usize, h: f64, t_new: f64) -> Option<(f64, usize)> {
        let mut roots = std::mem::take(&mut self.roots);
        let found = roots.step(t_new, |tau, g| {
            if tau == t_new {
                sys.stop(tau, &self.y_new, g);
            } else {
                self.interpolate(order, t_new, h, tau);
                sys.stop(tau, &self.dy, g);
            }
        });
        self.roots = roots;
        found
    }

    /// The predictor `y_pred = Σ_{k≤order} D_k` and the corrector's constant part
    /// `psi = Σ_{k≤order} γ_k D_k / α_k`, row by row of the differences (so the loops vectorise).
    fn predict(&mut self, order: usize, inv_alpha: f64) {
        let n = self.dim();
        let (pred, psi) = (&mut self.y_pred, &mut self.psi);
        pred.copy_from_slice(&self.diff[..n]);
        psi.fill(0.0); // γ_0 = 0
        for k in 1..=order {
            let g = self.coef.gamma[k];
            for ((p, s), &d) in pred.iter_mut().zip(psi.iter_mut()).zip(&self.diff[k * n..(k + 1) * n]) {
                *p += d;
                *s += g * d;
            }
        }
        psi.iter_mut().for_each(|s| *s *= inv_alpha);
    }

    /// RMS of `err_const · D_row` in the error test's weights.
    fn scaled_norm(&mut self, row: usize, err_const: f64) -> f64 {
        let n = self.dim();
        for i in 0..n {
            self.f[i] = err_const * self.diff[row * n + i];
        }
        weighted_rms(&self.f, &self.weight)
    }

    /// Before the first step of a solve with a mass matrix: make the state consistent with the algebraic
    /// equations and find `du/dt` (Brown, Hindmarsh & Petzold 1998, as diffsol does). The algebraic
    /// components `v` (the columns of `M` that are zero) and the derivatives `du` of the others solve
    /// `M·du = F(t, u, v)` with the differential components `u` held, by Newton with `J` re-evaluated at every
    /// iterate and the matrix `[M_u | -J_v]`: `M - J` with `J`'s differential columns left out. The
    /// algebraic components' derivatives stay zero (the first step finds them), as in diffsol.
    fn consistent_start<S: System>(&mut self, opts: &SolverOptions, sys: &mut S, t: f64) -> Result<(), SimError> {
        const MAX_ITERATIONS: usize = 20;
        let (n, block) = (self.dim(), self.block);
        self.algebraic.clear();
        self.algebraic.resize(block, true);
        for (&(_, j), &m) in self.mass_pattern.iter().zip(&self.mass) {
            self.algebraic[j as usize] &= m == 0.0;
        }
        // Weighed as in the steps' Newton iterations (see `algebraic_weights`).
        algebraic_weights(&mut self.weight, &self.y, block, &self.algebraic, |scale| {
            1.0 / (opts.atol + opts.rtol * scale)
        });
        // Newton's attainable accuracy is a few ε relative to y: do not ask for more. Ill-conditioned
        // algebraic equations (the DFN battery model's) stall above that at rounding noise: a stalled
        // iteration within a tenth of the (local) tolerance is converged too.
        let tol = if opts.rtol > 0.0 { (10.0 * f64::EPSILON / opts.rtol).max(1e-3) } else { 1e-3 };
        let mut norm_old = f64::INFINITY;
        self.yp.fill(0.0);
        for _ in 0..MAX_ITERATIONS {
            sys.rhs(t, &self.y, &mut self.f);
            sys.stats().newton_iterations += 1;
            if !self.f.iter().all(|v| v.is_finite()) {
                return Err(SimError::Diverged { t });
            }
            // The residual F - M·du.
            self.dy.copy_from_slice(&self.f);
            subtract_mass_times(&mut self.dy, (&self.mass_pattern, &self.mass), block, |j| self.yp[j]);
            sys.jacobian(t, &self.y, &mut self.jac);
            for (v, &(_, j)) in self.jac.iter_mut().zip(self.matrix.pattern()) {
                if !self.algebraic[j as usize] {
                    *v = 0.0;
                }
            }
            sys.stats().lu_factorizations += 1;
            if !self.matrix.factor(1.0, &self.jac, &self.mass) {
                return Err(SimError::Other(format!(
                    "the algebraic equations (the rows of M_i that are 0) cannot be solved for the algebraic states at \
                     t = {t}: their Jacobian is singular, so the model is no semi-explicit index-1 DAE"
                )));
            }
            let mut sum = 0.0;
            for o in (0..n).step_by(block) {
                let d = &mut self.dy[o..o + block];
                self.matrix.solve(d);
                for (j, &algebraic) in self.algebraic.iter().enumerate() {
                    if algebraic {
                        self.y[o + j] += d[j];
                        sum += math::powi(d[j] * self.weight[o + j], 2);
                    } else {
                        self.yp[o + j] += d[j];
                    }
                }
            }
            let norm = (sum / n as f64).sqrt();
            if !norm.is_finite() {
                return Err(SimError::Diverged { t });
            }
            if norm <= tol || (norm <= STALLED_NORM && norm > 0.5 * norm_old) {
                return Ok(());
            }
            norm_old = norm;
        }
        Err(SimError::Other(format!(
            "no consistent initial values for the algebraic states at t = {t}: Newton on the algebraic equations \
             (the rows of M_i that are 0) did not converge in {MAX_ITERATIONS} iterations"
        )))
    }

    /// Factorise `M - c·J`. False when it is singular.
    fn factor(&mut self, c: f64) -> bool {
        self.matrix.factor(c, &self.jac, &self.mass)
    }

    /// Simplified Newton iteration for the corrector `corr = c·F(t_new, y_pred + corr) - psi`, leaving the
    /// solution in `y_new` and `corr`. Stops early when the contraction rate says it will not converge
    /// within `NEWTON_MAXITER` iterations.
    fn newton<S: System>(&mut self, sys: &mut S, t_new: f64, c: f64, tol: f64) -> Newton {
        let n = self.dim();
        self.corr.fill(0.0);
        self.y_new.copy_from_slice(&self.y_pred);
        let mut norm_old: Option<f64> = None;
        for it in 0..NEWTON_MAXITER {
            sys.rhs(t_new, &self.y_new, &mut self.f);
            sys.stats().newton_iterations += 1;
            if !self.f.iter().all(|v| v.is_finite()) {
                return Newton::Failed { non_finite: true };
            }
            if self.mass.is_empty() {
                for i in 0..n {
                    self.dy[i] = c * self.f[i] - self.psi[i] - self.corr[i];
                }
            } else {
                for i in 0..n {
                    self.dy[i] = c * self.f[i];
                }
                let (psi, corr) = (&self.psi, &self.corr);
                subtract_mass_times(&mut self.dy, (&self.mass_pattern, &self.mass), self.block, |j| psi[j] + corr[j]);
            }
            for block in self.dy.chunks_exact_mut(self.block) {
                self.matrix.solve(block);
            }
            let norm = weighted_rms(&self.dy, &self.weight);
            let rate = norm_old.map(|old| norm / old);
            // With a mass matrix, ill-conditioned algebraic equations (the DFN battery model's electrolyte
            // potential, fixed only up to a near-null direction) leave increments of rounding noise that need
            // not contract: after the first iteration, an increment within a tenth of the tolerance is converged.
            let stalled = !self.mass.is_empty() && it > 0 && norm <= STALLED_NORM;
            if let Some(rate) = rate
                && !stalled
                && (rate >= 1.0 || math::powi(rate, (NEWTON_MAXITER - it) as i32) / (1.0 - rate) * norm > tol)
            {
                return Newton::Failed { non_finite: !norm.is_finite() };
            }
            for i in 0..n {
                self.y_new[i] += self.dy[i];
                self.corr[i] += self.dy[i];
            }
            if norm == 0.0 || stalled || rate.is_some_and(|rate| rate / (1.0 - rate) * norm < tol) {
                return Newton::Converged { iterations: it + 1 };
            }
            if !norm.is_finite() {
                return Newton::Failed { non_finite: true };
            }
            norm_old = Some(norm);
        }
        Newton::Failed { non_finite: false }
    }

    /// Rescale the differences `D_0..=D_order` from step `h` to step `factor · h`: `D ← (R·U)ᵀ D` with
    /// `R_ij = Π_{m=1..i} (m - 1 - factor·j) / m` and `U` the same at factor 1 (Shampine & Reichelt).
    fn rescale(&mut self, order: usize, factor: f64) {
        let n = self.dim();
        let r = r_matrix(order, factor);
        let u = r_matrix(order, 1.0);
        let mut ru = [[0.0; MAX_ORDER + 1]; MAX_ORDER + 1];
        for i in 0..=order {
            for j in 0..=order {
                ru[i][j] = (0..=order).map(|m| r[i][m] * u[m][j]).sum();
            }
        }
        for k in 0..=order {
            let dst = &mut self.diff_tmp[k * n..(k + 1) * n];
            dst.fill(0.0);
            for j in 0..=order {
                let w = ru[j][k];
                if w != 0.0 {
                    for (d, &s) in dst.iter_mut().zip(&self.diff[j * n..(j + 1) * n]) {
                        *d += w * s;
                    }
                }
            }
        }
        self.diff[..(order + 1) * n].copy_from_slice(&self.diff_tmp[..(order + 1) * n]);
    }

    /// The interpolating polynomial through the last `order + 1` solution points (Newton's backward
    /// difference form) at `ti`, into `dy`.
    fn interpolate(&mut self, order: usize, t_new: f64, h: f64, ti: f64) {
        let n = self.dim();
        self.dy.copy_from_slice(&self.diff[..n]);
        let mut p = 1.0;
        for j in 1..=order {
            let m = (j - 1) as f64;
            p *= (ti - (t_new - m * h)) / ((m + 1.0) * h);
            for i in 0..n {
                self.dy[i] += p * self.diff[j * n + i];
            }
        }
    }
}

/// `out -= M·x` block by block, for `M`'s `(pattern, entries)` within a block and `x(j)` the value at index
/// `j` of the whole state.
fn subtract_mass_times(
    out: &mut [f64],
    (pattern, mass): (&[(u32, u32)], &[f64]),
    block: usize,
    x: impl Fn(usize) -> f64,
) {
    for o in (0..out.len()).step_by(block) {
        for (&(i, j), &m) in pattern.iter().zip(mass) {
            out[o + i as usize] -= m * x(o + j as usize);
        }
    }
}

/// Set the weights of the algebraic components of every block of `y` to `weight(scale)`, with `scale` the
/// largest magnitude in their block. Newton weighs algebraic components against that scale rather than
/// their own value: they are often computed by cancellation (Robertson's z = 1 - x - y), so their increments
/// are exact only to a few ulps of it, and a small one (z near 0) would never pass the convergence test.
fn algebraic_weights(weights: &mut [f64], y: &[f64], block: usize, algebraic: &[bool], weight: impl Fn(f64) -> f64) {
    if algebraic.is_empty() {
        return;
    }
    for (w, y) in weights.chunks_exact_mut(block).zip(y.chunks_exact(block)) {
        let scale = y.iter().fold(0.0, |m: f64, v| m.max(v.abs()));
        for (w, &algebraic) in w.iter_mut().zip(algebraic) {
            if algebraic {
                *w = weight(scale);
            }
        }
    }
}

/// RMS over components of `x_i · w_i`.
fn weighted_rms(x: &[f64], w: &[f64]) -> f64 {
    let sum: f64 = x.iter().zip(w).map(|(x, w)| (x * w) * (x * w)).sum();
    (sum / x.len() as f64).sqrt()
}

fn r_matrix(order: usize, factor: f64) -> [[f64; MAX_ORDER + 1]; MAX_ORDER + 1] {
    let mut r = [[0.0; MAX_ORDER + 1]; MAX_ORDER + 1];
    r[0][..=order].fill(1.0);
    for i in 1..=order {
        for j in 1..=order {
            r[i][j] = r[i - 1][j] * (i as f64 - 1.0 - factor * j as f64) / i as f64;
        }
    }
    r
}
