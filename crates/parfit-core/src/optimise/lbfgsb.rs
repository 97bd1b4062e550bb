//! L-BFGS-B: limited-memory BFGS over a box, after R. H. Byrd, P. Lu, J. Nocedal and C. Zhu,
//! "A limited memory algorithm for bound constrained optimization" (SIAM J. Sci. Comput. 16,
//! 1995), with the subspace-step projection of J. L. Morales and J. Nocedal (ACM TOMS 38, 2011).
//!
//! Each iteration
//! 1. finds the generalised Cauchy point: the first local minimiser of the quadratic model
//!    `gᵀ(z − x) + ½ (z − x)ᵀB(z − x)` along the projected steepest-descent path `P(x − t g)`,
//!    walking its breakpoints with the compact form `B = θI − W M Wᵀ`;
//! 2. minimises the model over the variables still free at that point (the direct primal method,
//!    by the Sherman–Morrison–Woodbury formula on a 2m × 2m system), projecting the result onto the
//!    box — or, if the projection is not a descent direction, shortening it to stay feasible;
//! 3. searches the line from `x` towards that point for the strong Wolfe conditions
//!    (Nocedal & Wright, Algorithms 3.5/3.6, with safeguarded cubic interpolation), never past
//!    the box.
//!
//! Ask–tell: the line search is a state machine, and each of its trial points is asked together
//! with every finite-difference point of the gradient there, as one batch (n + 1 points with
//! forward differences, 2n + 1 with central ones), so a whole gradient is evaluated in parallel.
//!
//! No crate fitted: the Rust L-BFGS-B implementations (`lbfgsb-sys`, `lbfgsb`, `rustimization`,
//! `lbfgsb-rs-pure`, `rcompat-lbfgsb`) call a user closure for `f` and `g` (several through C or
//! Fortran), and argmin's L-BFGS has no bounds; none can hand out batches of points.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::finite_diff::{Differences, FiniteDifferences, check_step};
use super::linalg::{lu_solve, lu_solve_many};
use super::{Bounds, Optimiser, Stopping, Termination};
use crate::check::{OptionError, at_least, require, require_memory};

/// Sufficient-decrease (Armijo) constant of the line search, as in L-BFGS-B.
const C1: f64 = 1e-3;
/// Curvature constant of the strong Wolfe condition.
const C2: f64 = 0.9;
/// Longest step tried on a line without bounds.
const MAX_STEP: f64 = 1e10;
/// Iterations compared by the function-tolerance test: one, as in L-BFGS-B itself (Zhu, Byrd, Lu
/// and Nocedal, ACM TOMS 23, 1997: stop when (f_k − f_{k+1}) / max(|f_k|, |f_{k+1}|, 1) ≤ factr·ε,
/// scipy's `ftol`). A window of five kept iterating at the finite-difference noise floor.
const FTOL_WINDOW: usize = 1;

/// Options of [`LBfgsB`], as read from the user's configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LBfgsBOptions {
    /// Correction pairs kept for the limited-memory Hessian approximation. Default `10`.
    pub memory: usize,
    /// Finite differences for the gradient: `"forward"` or `"central"`. Default `"forward"`.
    pub differences: Differences,
    /// Relative finite-difference step: `h_j = diff_step · max(|x_j|, 1)`. Default `√ε ≈ 1.5e-8`
    /// (forward) or `ε^(1/3) ≈ 6e-6` (central). Values with noise (an ODE solved to a loose
    /// tolerance) need a larger step, roughly the square root (forward) or cube root (central) of
    /// their relative noise.
    pub diff_step: Option<f64>,
    /// Stop with [`Termination::GradientTolerance`] when the projected gradient is at most this in
    /// every coordinate. Default `1e-10`.
    pub gtol: f64,
    /// Trial points per line search before it gives up. Default `20`.
    pub max_line_search: usize,
}

impl LBfgsBOptions {
    /// Check every option against its allowed range, for `n` parameters: `memory` pairs of n-vectors and the
    /// 2m × 2m middle matrices must fit in memory.
    pub fn check(&self, n: usize) -> Result<(), OptionError> {
        let m = self.memory;
        at_least("memory", m, 1)?;
        require_memory("memory", m, m as f64 * (2.0 * n as f64 + 8.0 * m as f64), 8.0)?;
        at_least("max_line_search", self.max_line_search, 1)?;
        check_step(self.diff_step)?;
        require(self.gtol >= 0.0 && self.gtol.is_finite(), "gtol", "a finite number ≥ 0", self.gtol)
    }
}

impl Default for LBfgsBOptions {
    fn default() -> Self {
        LBfgsBOptions {
            memory: 10,
            differences: Differences::Forward,
            diff_step: None,
            gtol: 1e-10,
            max_line_search: 20,
        }
    }
}

/// One evaluated point of the line `x + α d`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct LinePoint {
    alpha: f64,
    value: f64,
    /// Directional derivative `g(x + α d)ᵀ d`.
    slope: f64,
}

/// What the line search wants next.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Next {
    Trial(f64),
    /// Accept this point, which was evaluated (the latest trial or the bracket's low end).
    Accept(LinePoint),
    Fail,
}

/// The strong Wolfe line search of Nocedal & Wright (Algorithms 3.5 and 3.6) as a state machine.
#[derive(Debug, Clone)]
struct LineSearch {
    start: LinePoint,
    max_alpha: f64,
    /// The previous trial while bracketing.
    previous: LinePoint,
    /// Once bracketed: the best point satisfying sufficient decrease so far, and the other end.
    bracket: Option<(LinePoint, LinePoint)>,
    trials: usize,
    max_trials: usize,
}

impl LineSearch {
    fn new(value: f64, slope: f64, max_alpha: f64, max_trials: usize) -> Self {
        let start = LinePoint { alpha: 0.0, value, slope };
        LineSearch { start, max_alpha, previous: start, bracket: None, trials: 0, max_trials }
    }

    fn armijo(&self, p: &LinePoint) -> bool {
        p.value <= self.start.value + C1 * p.alpha * self.start.slope
    }

    fn curvature(&self, p: &LinePoint) -> bool {
        p.slope.abs() <= -C2 * self.start.slope
    }

    /// The next step after evaluating trial `p`.
    fn next(&mut self, p: LinePoint) -> Next {
        self.trials += 1;
        let Some((lo, hi)) = self.bracket else {
            // Bracketing phase.
            if !self.armijo(&p) || (self.trials > 1 && p.value >= self.previous.value) {
                return self.zoom(self.previous, p);
            }
            if self.curvature(&p) {
                return Next::Accept(p);
            }
            if p.slope >= 0.0 {
                return self.zoom(p, self.previous);
            }
            if p.alpha >= self.max_alpha {
                // Still going down at the edge of the box: take the edge.
                return Next::Accept(p);
            }
            if self.trials >= self.max_trials {
                return Next::Accept(p);
            }
            self.previous = p;
            return Next::Trial((4.0 * p.alpha).min(self.max_alpha));
        };
        // Zoom phase: `lo` satisfies sufficient decrease and has the lower value.
        if !self.armijo(&p) || p.value >= lo.value {
            return self.zoom(lo, p);
        }
        if self.curvature(&p) {
            return Next::Accept(p);
        }
        if p.slope * (hi.alpha - lo.alpha) >= 0.0 { self.zoom(p, lo) } else { self.zoom(p, hi) }
    }

    /// Continue in the bracket between `lo` (sufficient decrease, lower value) and `hi`.
    fn zoom(&mut self, lo: LinePoint, hi: LinePoint) -> Next {
        self.bracket = Some((lo, hi));
        let width = (hi.alpha - lo.alpha).abs();
        if self.trials >= self.max_trials || width <= f64::EPSILON * lo.alpha.abs().max(hi.alpha.abs()) {
            // Out of trials or resolution: settle for `lo` if it made progress.
            return if lo.alpha > 0.0 { Next::Accept(lo) } else { Next::Fail };
        }
        Next::Trial(cubic_step(&lo, &hi))
    }
}

/// Minimiser of the cubic through two line points with their slopes (Nocedal & Wright eq. 3.59),
/// kept at least a tenth of the interval away from either end; bisection when the cubic fails.
fn cubic_step(a: &LinePoint, b: &LinePoint) -> f64 {
    let (lo, hi) = (a.alpha.min(b.alpha), a.alpha.max(b.alpha));
    let margin = 0.1 * (hi - lo);
    let d1 = a.slope + b.slope - 3.0 * (a.value - b.value) / (a.alpha - b.alpha);
    let disc = d1 * d1 - a.slope * b.slope;
    let t = if disc >= 0.0 {
        let d2 = (b.alpha - a.alpha).signum() * disc.sqrt();
        b.alpha - (b.alpha - a.alpha) * (b.slope + d2 - d1) / (b.slope - a.slope + 2.0 * d2)
    } else {
        f64::NAN
    };
    if t.is_finite() && lo + margin <= t && t <= hi - margin { t } else { 0.5 * (lo + hi) }
}

/// What the batch out for evaluation is.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    /// `x0` and its gradient stencil.
    Start,
    /// A line-search trial `x + α d` and its gradient stencil.
    Trial(f64),
}

/// Limited-memory BFGS with bounds (see the module documentation).
///
/// Stops by itself (see [`Optimiser::converged`]) with
/// * [`Termination::GradientTolerance`] when the projected gradient is at most `gtol` in every
///   coordinate (or the model finds no feasible descent direction);
/// * [`Termination::FunctionTolerance`] when an iteration reduced the value by at most
///   `ftol · max(|f_k|, |f_{k+1}|, 1)` (L-BFGS-B's and scipy's relative reduction);
/// * [`Termination::ParameterTolerance`] when an iteration moved no coordinate by more than `xtol`;
/// * [`Termination::Stagnation`] when a line search fails even from a fresh memory (typically
///   when finite-difference noise swamps the remaining decrease).
///
/// Failed evaluations (non-finite values) make the line search step back. A failed gradient
/// component is taken as zero for that point.
///
/// **Exact gradients** (the hook for model sensitivities): after
/// [`use_exact_gradients(true)`](Self::use_exact_gradients) each batch is the trial point alone,
/// and [`tell_with_gradients`](Self::tell_with_gradients) supplies its value and gradient.
#[derive(Debug, Clone)]
pub struct LBfgsB {
    bounds: Bounds,
    memory: usize,
    gtol: f64,
    max_line_search: usize,
    fd: FiniteDifferences,
    exact_gradients: bool,
    phase: Phase,
    /// Storage for the largest batch; `n_points` of them are out. Point 0 is the trial.
    points: Vec<Vec<f64>>,
    n_points: usize,

    x: Vec<f64>,
    f: f64,
    g: Vec<f64>,
    /// Correction pairs, oldest first.
    s: Vec<Vec<f64>>,
    y: Vec<Vec<f64>>,
    theta: f64,
    /// `W = [Y, θS]` (n × 2k, row-major) and `M` (2k × 2k) of the compact form `B = θI − W M Wᵀ`.
    w: Vec<f64>,
    mid: Vec<f64>,
    /// Search direction and the line search along it.
    d: Vec<f64>,
    search: Option<LineSearch>,
    /// Value and gradient at the line search's best accepted-so-far point (its bracket's low end).
    lo_gradient: Vec<f64>,
    lo_alpha: f64,
    /// The trial's gradient.
    trial_g: Vec<f64>,
    /// Values after the latest iterations, newest last, for the function-tolerance test.
    recent: VecDeque<f64>,
    /// The latest iteration's largest coordinate move.
    last_move: Option<f64>,

    /// Scratch.
    cauchy: Vec<f64>,
    breakpoints: Vec<(f64, usize)>,
    p: Vec<f64>,
    c: Vec<f64>,
    v: Vec<f64>,
    v2: Vec<f64>,
    small: Vec<f64>,
    system: Vec<f64>,
    free: Vec<usize>,
    du: Vec<f64>,
    s_new: Vec<f64>,
    y_new: Vec<f64>,

    best_x: Vec<f64>,
    best_value: f64,
    stop: Option<Termination>,
    iterations: usize,
}

impl LBfgsB {
    /// Start from `x0` (projected onto `bounds`); an option out of its range is an error.
    ///
    /// # Panics
    /// If `x0` and `bounds` differ in dimension (a caller's mistake, not a setting).
    pub fn new(x0: Vec<f64>, bounds: Bounds, options: LBfgsBOptions) -> Result<Self, OptionError> {
        let n = x0.len();
        assert_eq!(n, bounds.dim(), "start point and bounds differ in dimension");
        options.check(n)?;
        let mut x0 = x0;
        bounds.clamp(&mut x0);
        let m2 = 2 * options.memory;
        let mut lbfgsb = LBfgsB {
            fd: FiniteDifferences::new(n, options.differences, options.diff_step),
            bounds,
            memory: options.memory,
            gtol: options.gtol,
            max_line_search: options.max_line_search,
            exact_gradients: false,
            phase: Phase::Start,
            points: vec![x0.clone()],
            n_points: 1,
            f: f64::INFINITY,
            g: vec![0.0; n],
            s: Vec::with_capacity(options.memory),
            y: Vec::with_capacity(options.memory),
            theta: 1.0,
            w: Vec::with_capacity(n * m2),
            mid: Vec::with_capacity(m2 * m2),
            d: vec![0.0; n],
            search: None,
            lo_gradient: vec![0.0; n],
            lo_alpha: 0.0,
            trial_g: vec![0.0; n],
            recent: VecDeque::with_capacity(FTOL_WINDOW + 1),
            last_move: None,
            cauchy: vec![0.0; n],
            breakpoints: Vec::with_capacity(n),
            p: Vec::with_capacity(m2),
            c: Vec::with_capacity(m2),
            v: Vec::with_capacity(m2),
            v2: Vec::with_capacity(m2),
            small: Vec::with_capacity(m2 * m2),
            system: Vec::with_capacity(m2 * m2),
            free: Vec::with_capacity(n),
            du: vec![0.0; n],
            s_new: vec![0.0; n],
            y_new: vec![0.0; n],
            best_x: x0.clone(),
            best_value: f64::INFINITY,
            x: x0,
            stop: None,
            iterations: 0,
        };
        lbfgsb.ask_point(0.0);
        Ok(lbfgsb)
    }

    /// Ask for exact gradients instead of finite differences: from the next `ask` on, batches
    /// hold the trial point only, and must be answered with
    /// [`tell_with_gradients`](Self::tell_with_gradients).
    pub fn use_exact_gradients(&mut self, exact: bool) {
        self.exact_gradients = exact;
        let alpha = match self.phase {
            Phase::Start => 0.0,
            Phase::Trial(alpha) => alpha,
        };
        // Re-plan the batch out for evaluation, with or without its stencil.
        self.ask_point(alpha);
    }

    /// Tell the value and gradient of each point of the last batch (`gradients[k·n .. (k+1)·n]`
    /// for point k). With finite differences the gradient of point 0 replaces the estimate.
    pub fn tell_with_gradients(&mut self, values: &[f64], gradients: &[f64]) {
        let n = self.dim();
        let value = values.first().copied().filter(|v| v.is_finite()).unwrap_or(f64::INFINITY);
        for (t, &g) in self.trial_g.iter_mut().zip(gradients.iter().take(n)) {
            *t = if g.is_finite() { g } else { 0.0 };
        }
        self.absorb(value);
    }

    fn dim(&self) -> usize {
        self.x.len()
    }

    /// Put `x + α d` (and, without exact gradients, its difference stencil) out for evaluation.
    /// The caller sets the phase.
    fn ask_point(&mut self, alpha: f64) {
        let trial = &mut self.points[0];
        for ((t, x), d) in trial.iter_mut().zip(&self.x).zip(&self.d) {
            *t = x + alpha * d;
        }
        // Feasible by construction of the maximal step; clamp only against rounding.
        self.bounds.clamp(trial);
        self.n_points = 1;
        if !self.exact_gradients {
            let trial = std::mem::take(&mut self.points[0]);
            self.n_points += self.fd.plan(&trial, &self.bounds, &mut self.points, 1);
            self.points[0] = trial;
        }
    }

    /// Ask for the line-search trial `x + α d`.
    fn ask_trial(&mut self, alpha: f64) {
        self.phase = Phase::Trial(alpha);
        self.ask_point(alpha);
    }

    /// Take the value and gradient of the trial just evaluated (gradient in `trial_g`).
    fn absorb(&mut self, value: f64) {
        if self.stop.is_some() {
            return;
        }
        self.iterations += 1;
        if value < self.best_value {
            self.best_value = value;
            self.best_x.copy_from_slice(&self.points[0]);
        }
        match self.phase {
            Phase::Start => {
                if !value.is_finite() {
                    // Nothing to start from; the driver stops (every point failed).
                    return;
                }
                self.f = value;
                self.g.copy_from_slice(&self.trial_g);
                self.recent.push_back(value);
                self.new_iteration();
            }
            Phase::Trial(alpha) => {
                let slope = if value.is_finite() {
                    self.trial_g.iter().zip(&self.d).map(|(g, d)| g * d).sum()
                } else {
                    f64::NAN
                };
                let point = LinePoint { alpha, value, slope };
                let search = self.search.as_mut().expect("a line search is under way");
                let next = search.next(point);
                // Keep the gradient of the point the search may fall back on: the previous trial
                // while bracketing, the bracket's low end while zooming.
                let kept = match search.bracket {
                    Some((lo, _)) => lo.alpha,
                    None => search.previous.alpha,
                };
                if kept == alpha {
                    self.lo_gradient.copy_from_slice(&self.trial_g);
                    self.lo_alpha = alpha;
                }
                match next {
                    // No decrease is resolvable along d: the iteration gained nothing, which
                    // L-BFGS-B's relative-reduction test counts as converged (0 ≤ ftol); a fresh
                    // memory would search along the same differenced gradient.
                    Next::Trial(alpha) if self.unresolvable(alpha) => {
                        self.stop = Some(Termination::FunctionTolerance);
                    }
                    Next::Trial(alpha) => self.ask_trial(alpha),
                    Next::Accept(p) => {
                        if p.alpha != alpha {
                            debug_assert_eq!(p.alpha, self.lo_alpha);
                            self.trial_g.copy_from_slice(&self.lo_gradient);
                        }
                        self.accept(p);
                    }
                    Next::Fail => self.line_search_failed(),
                }
            }
        }
    }

    /// Whether the step `α d` is too short to learn from: it rounds away, or, with finite
    /// differences, it moves every coordinate by less than the gradient's resolution (relative to
    /// `max(|x_i|, 1)`, like the difference step). Below that scale the differenced slope no longer
    /// describes `f` — at the noise floor it calls an ascent direction descent — so shrinking the
    /// step further would spend a whole stencil per trial on nothing.
    fn unresolvable(&self, alpha: f64) -> bool {
        let resolution = if self.exact_gradients { 0.0 } else { self.fd.resolution() };
        self.x.iter().zip(&self.d).all(|(x, d)| {
            let step = alpha * d;
            x + step == *x || step.abs() < resolution * x.abs().max(1.0)
        })
    }

    fn line_search_failed(&mut self) {
        if self.s.is_empty() {
            self.stop = Some(Termination::Stagnation);
        } else {
            // A stale memory can point badly; start afresh once.
            self.s.clear();
            self.y.clear();
            self.theta = 1.0;
            self.new_iteration();
        }
    }

    /// Move to `x + α d` (gradient in `trial_g`), update the memory, and start the next iteration.
    fn accept(&mut self, p: LinePoint) {
        let n = self.dim();
        let mut moved = 0.0_f64;
        for i in 0..n {
            let x_new = (self.x[i] + p.alpha * self.d[i]).clamp(self.bounds.lower[i], self.bounds.upper[i]);
            // s = the step actually taken, y = the change of gradient.
            self.s_new[i] = x_new - self.x[i];
            self.y_new[i] = self.trial_g[i] - self.g[i];
            moved = moved.max(self.s_new[i].abs());
            self.x[i] = x_new;
        }
        self.last_move = Some(moved);
        if self.recent.len() > FTOL_WINDOW {
            self.recent.pop_front();
        }
        self.recent.push_back(p.value);
        self.f = p.value;
        self.g.copy_from_slice(&self.trial_g);
        let sy: f64 = self.s_new.iter().zip(&self.y_new).map(|(a, b)| a * b).sum();
        let yy: f64 = self.y_new.iter().map(|v| v * v).sum();
        // Keep B positive definite: skip pairs without enough curvature (as L-BFGS-B does).
        if sy > f64::EPSILON * yy && yy > 0.0 {
            if self.s.len() == self.memory {
                // Recycle the oldest pair's buffers.
                let (mut s_old, mut y_old) = (self.s.remove(0), self.y.remove(0));
                s_old.copy_from_slice(&self.s_new);
                y_old.copy_from_slice(&self.y_new);
                self.s.push(s_old);
                self.y.push(y_old);
            } else {
                self.s.push(self.s_new.clone());
                self.y.push(self.y_new.clone());
            }
            self.theta = yy / sy;
        }
        self.new_iteration();
    }

    /// Rebuild the compact form, test the gradient, find the search direction and start the line
    /// search.
    fn new_iteration(&mut self) {
        let n = self.dim();
        let projected_gradient = (0..n).fold(0.0_f64, |acc, i| {
            let moved = (self.x[i] - self.g[i]).clamp(self.bounds.lower[i], self.bounds.upper[i]);
            acc.max((moved - self.x[i]).abs())
        });
        if projected_gradient <= self.gtol {
            self.stop = Some(Termination::GradientTolerance);
            return;
        }
        loop {
            self.compact_form();
            self.cauchy_point();
            self.subspace_minimisation();
            let slope: f64 = self.g.iter().zip(&self.d).map(|(g, d)| g * d).sum();
            if slope < 0.0 {
                let max_alpha = self.max_step();
                // A unit step along −g is only a guess of scale on the very first iteration; after a
                // memory refresh g is small and step 1 is L-BFGS-B's own choice (Byrd et al. 1995,
                // Algorithm 778's `lnsrlb`: stp = 1/‖d‖ only when iter = 0).
                let alpha = if self.s.is_empty() && self.last_move.is_none() {
                    let norm = self.d.iter().map(|d| d * d).sum::<f64>().sqrt();
                    (1.0 / norm).min(max_alpha)
                } else {
                    max_alpha.min(1.0)
                };
                self.search = Some(LineSearch::new(self.f, slope, max_alpha, self.max_line_search));
                self.ask_trial(alpha);
                return;
            }
            if self.s.is_empty() {
                // The projected steepest-descent model finds no way down.
                self.stop = Some(Termination::GradientTolerance);
                return;
            }
            self.s.clear();
            self.y.clear();
            self.theta = 1.0;
        }
    }

    /// The largest α keeping `x + α d` in the box.
    fn max_step(&self) -> f64 {
        (0..self.dim()).fold(MAX_STEP, |acc, i| {
            let d = self.d[i];
            let room = if d > 0.0 {
                (self.bounds.upper[i] - self.x[i]) / d
            } else if d < 0.0 {
                (self.bounds.lower[i] - self.x[i]) / d
            } else {
                f64::INFINITY
            };
            acc.min(room)
        })
    }

    /// `W = [Y, θS]` and `M = [[−D, Lᵀ], [L, θSᵀS]]⁻¹` from the stored pairs.
    fn compact_form(&mut self) {
        let (n, k) = (self.dim(), self.s.len());
        let k2 = 2 * k;
        self.w.clear();
        for i in 0..n {
            self.w.extend(self.y.iter().map(|y| y[i]));
            self.w.extend(self.s.iter().map(|s| self.theta * s[i]));
        }
        let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
        let small = &mut self.small;
        small.clear();
        small.resize(k2 * k2, 0.0);
        for a in 0..k {
            for b in 0..k {
                // Upper left −D, upper right Lᵀ, lower left L, lower right θ SᵀS.
                if a == b {
                    small[a * k2 + b] = -dot(&self.s[a], &self.y[a]);
                }
                if a > b {
                    let l = dot(&self.s[a], &self.y[b]);
                    small[(k + a) * k2 + b] = l;
                    small[b * k2 + k + a] = l;
                }
                small[(k + a) * k2 + k + b] = self.theta * dot(&self.s[a], &self.s[b]);
            }
        }
        // Invert with one elimination over all columns of the identity (`v2` takes the matrix,
        // which the elimination destroys); the matrix is small, 2k ≤ 2·memory.
        self.mid.clear();
        self.mid.resize(k2 * k2, 0.0);
        for i in 0..k2 {
            self.mid[i * k2 + i] = 1.0;
        }
        self.v2.clear();
        self.v2.extend_from_slice(&self.small);
        let singular = !lu_solve_many(&mut self.v2, k2, &mut self.mid, k2);
        if singular {
            // Numerically dependent pairs: fall back to a scaled identity.
            self.s.clear();
            self.y.clear();
            self.theta = 1.0;
            self.w.clear();
            self.mid.clear();
        }
    }

    /// `M v` for a 2k vector.
    fn mid_times(&self, v: &[f64], out: &mut [f64]) {
        let k2 = v.len();
        for (row, o) in out.iter_mut().enumerate() {
            *o = self.mid[row * k2..(row + 1) * k2].iter().zip(v).map(|(m, v)| m * v).sum();
        }
    }

    /// The generalised Cauchy point into `cauchy`, and `c = Wᵀ(cauchy − x)`.
    fn cauchy_point(&mut self) {
        let n = self.dim();
        let k2 = 2 * self.s.len();
        let theta = self.theta;
        self.breakpoints.clear();
        for i in 0..n {
            let (g, x) = (self.g[i], self.x[i]);
            let t = if g < 0.0 {
                (x - self.bounds.upper[i]) / g
            } else if g > 0.0 {
                (x - self.bounds.lower[i]) / g
            } else {
                f64::INFINITY
            };
            // d_i = −g_i, except for variables already stopped by a bound.
            self.d[i] = if t > 0.0 { -g } else { 0.0 };
            if t > 0.0 && t.is_finite() {
                self.breakpoints.push((t, i));
            }
        }
        self.breakpoints.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        self.cauchy.copy_from_slice(&self.x);

        // p = Wᵀd, c = 0.
        let mut p = std::mem::take(&mut self.p);
        let mut c = std::mem::take(&mut self.c);
        let mut mp = std::mem::take(&mut self.v);
        p.clear();
        p.resize(k2, 0.0);
        c.clear();
        c.resize(k2, 0.0);
        mp.clear();
        mp.resize(k2, 0.0);
        for i in 0..n {
            if self.d[i] != 0.0 {
                for (pa, wa) in p.iter_mut().zip(&self.w[i * k2..(i + 1) * k2]) {
                    *pa += wa * self.d[i];
                }
            }
        }
        let mut slope: f64 = -self.d.iter().map(|d| d * d).sum::<f64>();
        self.mid_times(&p, &mut mp);
        let mut curvature = -theta * slope - p.iter().zip(&mp).map(|(a, b)| a * b).sum::<f64>();
        let curvature_floor = f64::EPSILON * curvature.abs();
        curvature = curvature.max(curvature_floor);
        let mut dt_min = -slope / curvature;
        let mut t_old = 0.0;
        let mut mc = std::mem::take(&mut self.v2);
        mc.clear();
        mc.resize(k2, 0.0);
        for &(t, b) in &self.breakpoints {
            let dt = t - t_old;
            if dt_min < dt {
                break;
            }
            // Step to breakpoint t, where variable b reaches its bound and stops.
            let x_b = if self.d[b] > 0.0 { self.bounds.upper[b] } else { self.bounds.lower[b] };
            let z_b = x_b - self.x[b];
            self.cauchy[b] = x_b;
            for (ca, pa) in c.iter_mut().zip(&p) {
                *ca += dt * pa;
            }
            let g_b = self.g[b];
            let w_b = &self.w[b * k2..(b + 1) * k2];
            self.mid_times(&c, &mut mc);
            self.mid_times(&p, &mut mp);
            let wmc: f64 = w_b.iter().zip(&mc).map(|(a, b)| a * b).sum();
            let wmp: f64 = w_b.iter().zip(&mp).map(|(a, b)| a * b).sum();
            // M w_b, reusing `mc` (c's product is no longer needed).
            self.mid_times(w_b, &mut mc);
            let wmw: f64 = w_b.iter().zip(&mc).map(|(a, b)| a * b).sum();
            slope += dt * curvature + g_b * g_b + theta * g_b * z_b - g_b * wmc;
            curvature -= theta * g_b * g_b + 2.0 * g_b * wmp + g_b * g_b * wmw;
            curvature = curvature.max(curvature_floor);
            for (pa, wa) in p.iter_mut().zip(w_b) {
                *pa += g_b * wa;
            }
            self.d[b] = 0.0;
            dt_min = -slope / curvature;
            t_old = t;
        }
        let dt_min = dt_min.max(0.0);
        let t_final = t_old + dt_min;
        for i in 0..n {
            if self.d[i] != 0.0 {
                self.cauchy[i] = (self.x[i] + t_final * self.d[i]).clamp(self.bounds.lower[i], self.bounds.upper[i]);
            }
        }
        for (ca, pa) in c.iter_mut().zip(&p) {
            *ca += dt_min * pa;
        }
        self.p = p;
        self.c = c;
        self.v = mp;
        self.v2 = mc;
    }

    /// Minimise the model over the variables free at the Cauchy point; the direction `d` from `x`
    /// to the result.
    fn subspace_minimisation(&mut self) {
        let n = self.dim();
        let k2 = 2 * self.s.len();
        let theta = self.theta;
        let (lower, upper) = (&self.bounds.lower, &self.bounds.upper);
        self.free.clear();
        self.free.extend((0..n).filter(|&i| lower[i] < self.cauchy[i] && self.cauchy[i] < upper[i]));

        // Reduced gradient of the model at the Cauchy point, r = g + θ(x_c − x) − W M c, into du.
        let mut mc = std::mem::take(&mut self.v2);
        mc.resize(k2, 0.0);
        self.mid_times(&self.c, &mut mc);
        for &i in &self.free {
            let wmc: f64 = self.w[i * k2..(i + 1) * k2].iter().zip(&mc).map(|(a, b)| a * b).sum();
            self.du[i] = self.g[i] + theta * (self.cauchy[i] - self.x[i]) - wmc;
        }
        self.v2 = mc;

        // du = −r/θ − (1/θ²) ZᵀW (I − (1/θ) M WᵀZ ZᵀW)⁻¹ M WᵀZ r  (Sherman–Morrison–Woodbury).
        let mut corrected = false;
        if k2 > 0 && !self.free.is_empty() {
            let (mut wzr, mut wzzw) = (std::mem::take(&mut self.p), std::mem::take(&mut self.small));
            wzr.clear();
            wzr.resize(k2, 0.0);
            wzzw.clear();
            wzzw.resize(k2 * k2, 0.0);
            for &i in &self.free {
                let w_i = &self.w[i * k2..(i + 1) * k2];
                for a in 0..k2 {
                    wzr[a] += w_i[a] * self.du[i];
                    for b in 0..k2 {
                        wzzw[a * k2 + b] += w_i[a] * w_i[b];
                    }
                }
            }
            let mut v = std::mem::take(&mut self.v);
            v.resize(k2, 0.0);
            self.mid_times(&wzr, &mut v);
            let mut system = std::mem::take(&mut self.system);
            // I − (1/θ) M·WᵀZZᵀW, row by row: each row of M scales rows of WᵀZZᵀW (contiguous, so
            // the loop vectorises; the sums run over e in the same order as a dot product would).
            system.clear();
            system.resize(k2 * k2, 0.0);
            for (a, row) in system.chunks_exact_mut(k2).enumerate() {
                for (&m, wzzw_e) in self.mid[a * k2..(a + 1) * k2].iter().zip(wzzw.chunks_exact(k2)) {
                    row.iter_mut().zip(wzzw_e).for_each(|(s, w)| *s += m * w);
                }
                for (b, s) in row.iter_mut().enumerate() {
                    *s = f64::from(u8::from(a == b)) - *s / theta;
                }
            }
            if lu_solve(&mut system, k2, &mut v) {
                corrected = true;
                for &i in &self.free {
                    let wv: f64 = self.w[i * k2..(i + 1) * k2].iter().zip(&v).map(|(a, b)| a * b).sum();
                    self.du[i] = -self.du[i] / theta - wv / (theta * theta);
                }
            }
            self.p = wzr;
            self.small = wzzw;
            self.v = v;
            self.system = system;
        }
        if !corrected {
            for &i in &self.free {
                self.du[i] /= -theta;
            }
        }

        // Morales–Nocedal: project the subspace minimiser onto the box; if that is not a descent
        // direction from x, shorten the step from the Cauchy point to stay feasible instead.
        self.d.iter_mut().zip(&self.cauchy).zip(&self.x).for_each(|((d, c), x)| *d = c - x);
        for &i in &self.free {
            self.d[i] = (self.cauchy[i] + self.du[i]).clamp(self.bounds.lower[i], self.bounds.upper[i]) - self.x[i];
        }
        let slope: f64 = self.g.iter().zip(&self.d).map(|(g, d)| g * d).sum();
        if slope >= 0.0 {
            let mut alpha = 1.0_f64;
            for &i in &self.free {
                let (du, xc) = (self.du[i], self.cauchy[i]);
                if du > 0.0 {
                    alpha = alpha.min((self.bounds.upper[i] - xc) / du);
                } else if du < 0.0 {
                    alpha = alpha.min((self.bounds.lower[i] - xc) / du);
                }
            }
            for &i in &self.free {
                self.d[i] = self.cauchy[i] + alpha * self.du[i] - self.x[i];
            }
        }
    }
}

/// Failed evaluations rank below every finite value.
fn sanitise(v: Option<&f64>) -> f64 {
    v.copied().filter(|v| v.is_finite()).unwrap_or(f64::INFINITY)
}

impl Optimiser for LBfgsB {
    fn name(&self) -> &'static str {
        "l-bfgs-b"
    }

    fn ask(&mut self) -> &[Vec<f64>] {
        &self.points[..self.n_points]
    }

    /// Values of the trial point (first) and its finite-difference stencil. With exact gradients
    /// switched on, use [`LBfgsB::tell_with_gradients`]: a plain `tell` has no gradient and
    /// counts as a failed evaluation.
    fn tell(&mut self, values: &[f64]) {
        let mut value = sanitise(values.first());
        if self.exact_gradients {
            value = f64::INFINITY;
        }
        for j in 0..self.dim() {
            let g = self.fd.derivative(j, value, |k| values.get(1 + k).copied().unwrap_or(f64::NAN));
            self.trial_g[j] = if g.is_finite() { g } else { 0.0 };
        }
        self.absorb(value);
    }

    fn best(&self) -> (&[f64], f64) {
        (&self.best_x, self.best_value)
    }

    fn iterations(&self) -> usize {
        self.iterations
    }

    fn converged(&self, stop: &Stopping) -> Option<Termination> {
        if self.stop.is_some() {
            return self.stop;
        }
        if self.recent.len() > FTOL_WINDOW
            && self.recent[0] - self.recent[FTOL_WINDOW]
                <= stop.ftol * self.recent[0].abs().max(self.recent[FTOL_WINDOW].abs()).max(1.0)
        {
            return Some(Termination::FunctionTolerance);
        }
        let moved = self.last_move?;
        (moved <= stop.xtol).then_some(Termination::ParameterTolerance)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optimise::test_functions::{ellipsoid, evaluator, rosenbrock, sphere};
    use crate::optimise::{OptimResult, Silent, minimise};
    use rand::{Rng, SeedableRng};
    use rand_xoshiro::Xoshiro256PlusPlus;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn random_start(n: usize, seed: u64, lo: f64, hi: f64) -> Vec<f64> {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        (0..n).map(|_| lo + (hi - lo) * rng.random::<f64>()).collect()
    }

    fn run(x0: Vec<f64>, bounds: Bounds, options: LBfgsBOptions, f: fn(&[f64]) -> f64) -> OptimResult {
        let stop = Stopping { max_evaluations: Some(50_000), ..Stopping::default() };
        let mut opt = LBfgsB::new(x0, bounds, options).unwrap();
        minimise(&mut opt, &mut evaluator(f), &stop, &mut Silent, false)
    }

    fn solved(f: fn(&[f64]) -> f64, lo: f64, hi: f64, differences: Differences) -> usize {
        let options = LBfgsBOptions { differences, ..Default::default() };
        (0..10)
            .filter(|&seed| run(random_start(10, seed, lo, hi), Bounds::unbounded(10), options.clone(), f).value < 1e-8)
            .count()
    }

    #[test]
    fn reaches_1e8_on_sphere_ellipsoid_and_rosenbrock() {
        for differences in [Differences::Forward, Differences::Central] {
            assert_eq!(solved(sphere, -5.0, 5.0, differences), 10, "{differences:?}");
            // L-BFGS needs several hundred iterations at condition 1e6; with forward differences
            // the gradient's O(h) bias on the stiff axes stalls one start at 7e-8.
            let count = solved(ellipsoid, -5.0, 5.0, differences);
            assert!(count >= 9, "ellipsoid, {differences:?}: {count} of 10");
            // One start in ten (seed 3) ends in 10-D Rosenbrock's local minimum near (−1, 1, …, 1).
            let count = solved(rosenbrock, -2.0, 2.0, differences);
            assert!(count >= 9, "rosenbrock, {differences:?}: {count} of 10");
        }
    }

    #[test]
    fn compact_form_direction_matches_the_two_loop_recursion() {
        // Without bounds the subspace step is the L-BFGS step −H g, which the classic two-loop
        // recursion computes independently.
        let n = 5;
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(11);
        let mut opt = LBfgsB::new(vec![0.0; n], Bounds::unbounded(n), LBfgsBOptions::default()).unwrap();
        for _ in 0..3 {
            let s: Vec<f64> = (0..n).map(|_| rng.random::<f64>() - 0.5).collect();
            let y: Vec<f64> =
                s.iter().enumerate().map(|(i, v)| (1.0 + i as f64) * v + 0.01 * rng.random::<f64>()).collect();
            opt.s.push(s);
            opt.y.push(y);
        }
        let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
        opt.theta = dot(&opt.y[2], &opt.y[2]) / dot(&opt.s[2], &opt.y[2]);
        opt.g = (0..n).map(|_| rng.random::<f64>() - 0.5).collect();
        opt.compact_form();
        opt.cauchy_point();
        opt.subspace_minimisation();

        let mut q = opt.g.clone();
        let mut alpha = [0.0; 3];
        for i in (0..3).rev() {
            alpha[i] = dot(&opt.s[i], &q) / dot(&opt.s[i], &opt.y[i]);
            q.iter_mut().zip(&opt.y[i]).for_each(|(q, y)| *q -= alpha[i] * y);
        }
        q.iter_mut().for_each(|q| *q /= opt.theta);
        for ((s, y), a) in opt.s.iter().zip(&opt.y).zip(alpha) {
            let beta = dot(y, &q) / dot(s, y);
            q.iter_mut().zip(s).for_each(|(q, s)| *q += (a - beta) * s);
        }
        for (d, q) in opt.d.iter().zip(&q) {
            assert!((d + q).abs() < 1e-12 * q.abs().max(1.0), "{:?} vs {q:?}", opt.d);
        }
    }

    #[test]
    fn bounds_hold_and_constrained_optima_are_found() {
        // Σ (x_i − t_i)² with half the targets outside the box: the answer is the projection.
        let n = 10;
        let bounds = Bounds { lower: vec![-1.0; n], upper: vec![1.0; n] };
        let target: Vec<f64> = (0..n).map(|i| 2.5 * ((i as f64) / 4.5 - 1.0)).collect();
        for differences in [Differences::Forward, Differences::Central] {
            let options = LBfgsBOptions { differences, ..Default::default() };
            let mut opt = LBfgsB::new(vec![0.3; n], bounds.clone(), options).unwrap();
            let mut eval = |batch: &[Vec<f64>], out: &mut [f64]| {
                for (x, o) in batch.iter().zip(out.iter_mut()) {
                    assert!(bounds.contains(x), "{x:?} outside the box");
                    *o = x.iter().zip(&target).map(|(x, t)| (x - t) * (x - t)).sum();
                }
            };
            let r = minimise(&mut opt, &mut eval, &Stopping::default(), &mut Silent, false);
            for (x, t) in r.x.iter().zip(&target) {
                assert!((x - t.clamp(-1.0, 1.0)).abs() < 1e-7, "{:?} ({:?})", r.x, r.termination);
            }
        }
        // 2-D Rosenbrock with x_0 ≤ 0.5: the constrained minimum is (0.5, 0.25) with value 0.25.
        let bounds = Bounds { lower: vec![-2.0, -1.0], upper: vec![0.5, 2.0] };
        let mut opt = LBfgsB::new(vec![-1.5, 2.0], bounds.clone(), LBfgsBOptions::default()).unwrap();
        let mut eval = |batch: &[Vec<f64>], out: &mut [f64]| {
            for (x, o) in batch.iter().zip(out.iter_mut()) {
                assert!(bounds.contains(x), "{x:?} outside the box");
                *o = rosenbrock(x);
            }
        };
        let r = minimise(&mut opt, &mut eval, &Stopping::default(), &mut Silent, false);
        assert!((r.value - 0.25).abs() < 1e-9 && r.x[0] == 0.5 && (r.x[1] - 0.25).abs() < 1e-5, "{r:?}");
    }

    #[test]
    fn every_batch_is_a_trial_with_its_whole_gradient() {
        for (differences, size) in [(Differences::Forward, 5), (Differences::Central, 9)] {
            let options = LBfgsBOptions { differences, ..Default::default() };
            let mut opt = LBfgsB::new(vec![-1.2, 1.0, -1.2, 1.0], Bounds::unbounded(4), options).unwrap();
            let mut sizes = Vec::new();
            let mut eval = |batch: &[Vec<f64>], out: &mut [f64]| {
                sizes.push(batch.len());
                evaluator(rosenbrock)(batch, out);
            };
            minimise(&mut opt, &mut eval, &Stopping::default(), &mut Silent, false);
            assert!(sizes.iter().all(|&s| s == size), "{sizes:?}");
        }
    }

    #[test]
    fn exact_gradients_replace_finite_differences() {
        let n = 10;
        let gradient = |x: &[f64]| {
            let mut g = vec![0.0; x.len()];
            for i in 0..x.len() - 1 {
                let t = x[i + 1] - x[i] * x[i];
                g[i] += -400.0 * x[i] * t - 2.0 * (1.0 - x[i]);
                g[i + 1] += 200.0 * t;
            }
            g
        };
        let mut opt =
            LBfgsB::new(random_start(n, 0, -2.0, 2.0), Bounds::unbounded(n), LBfgsBOptions::default()).unwrap();
        opt.use_exact_gradients(true);
        let mut evaluations = 0;
        let termination = loop {
            let batch = opt.ask();
            assert_eq!(batch.len(), 1);
            let x = batch[0].clone();
            evaluations += 1;
            opt.tell_with_gradients(&[rosenbrock(&x)], &gradient(&x));
            if let Some(t) = opt.converged(&Stopping::default()) {
                break t;
            }
            assert!(evaluations < 10_000);
        };
        // The relative-reduction rule stops where an iteration gains ≤ ftol, as scipy does (≈ 1e-13 here).
        assert!(opt.best().1 < 1e-12, "{} ({termination:?})", opt.best().1);
        let fd = run(random_start(n, 0, -2.0, 2.0), Bounds::unbounded(n), LBfgsBOptions::default(), rosenbrock);
        assert!(fd.evaluations > 5 * evaluations, "{} vs {evaluations}", fd.evaluations);
    }

    #[test]
    fn failed_evaluations_make_the_line_search_step_back() {
        // Rosenbrock failing (NaN) for x_0 > 0.5: the search ends on the failure boundary.
        let mut opt = LBfgsB::new(vec![-1.2, 1.0], Bounds::unbounded(2), LBfgsBOptions::default()).unwrap();
        let mut failures = 0;
        let mut eval = |batch: &[Vec<f64>], out: &mut [f64]| {
            for (x, o) in batch.iter().zip(out.iter_mut()) {
                failures += usize::from(x[0] > 0.5);
                *o = if x[0] > 0.5 { f64::NAN } else { rosenbrock(x) };
            }
        };
        let r = minimise(&mut opt, &mut eval, &Stopping::default(), &mut Silent, false);
        assert!(failures > 0);
        assert!(r.x[0] <= 0.5 && r.value < 0.3, "{r:?}");

        let mut opt = LBfgsB::new(vec![1.0; 3], Bounds::unbounded(3), LBfgsBOptions::default()).unwrap();
        let mut eval = |_: &[Vec<f64>], out: &mut [f64]| out.fill(f64::NAN);
        let r = minimise(&mut opt, &mut eval, &Stopping::default(), &mut Silent, false);
        assert_eq!(r.termination, Termination::AllFailed);
    }

    #[test]
    fn same_start_same_asks() {
        let asks = || {
            let mut asked: Vec<u64> = Vec::new();
            let mut eval = |batch: &[Vec<f64>], out: &mut [f64]| {
                asked.extend(batch.iter().flatten().map(|x| x.to_bits()));
                evaluator(rosenbrock)(batch, out);
            };
            let options = LBfgsBOptions { differences: Differences::Central, memory: 3, ..Default::default() };
            let bounds = Bounds { lower: vec![-2.0; 5], upper: vec![0.9; 5] };
            let mut opt = LBfgsB::new(random_start(5, 1, -2.0, 0.9), bounds, options).unwrap();
            minimise(&mut opt, &mut eval, &Stopping::default(), &mut Silent, false);
            asked
        };
        assert_eq!(asks(), asks());
    }

    #[test]
    fn degenerate_problems_stop() {
        let r = run(vec![], Bounds::unbounded(0), LBfgsBOptions::default(), |_| 2.0);
        assert_eq!((r.value, r.termination), (2.0, Termination::GradientTolerance));
        let pinned = Bounds { lower: vec![1.0, -5.0], upper: vec![1.0, 5.0] };
        let r = run(vec![1.0, 4.0], pinned, LBfgsBOptions::default(), sphere);
        assert!(r.x[0] == 1.0 && r.x[1].abs() < 1e-7, "{r:?}");
        let r = run(vec![1.0; 3], Bounds::unbounded(3), LBfgsBOptions::default(), |_| 1.0);
        assert_eq!(r.termination, Termination::GradientTolerance);
    }

    #[test]
    fn options_serde() {
        let parse = |s: &str| serde_json::from_str::<LBfgsBOptions>(s);
        assert_eq!(parse("{}").unwrap(), LBfgsBOptions::default());
        let o = parse(r#"{"memory": 5, "differences": "central", "diff_step": 1e-5, "gtol": 1e-6}"#).unwrap();
        assert_eq!((o.memory, o.differences, o.diff_step, o.gtol), (5, Differences::Central, Some(1e-5), 1e-6));
        assert!(parse(r#"{"m": 5}"#).is_err());
    }

    #[test]
    fn options_are_checked_at_their_boundaries_and_refused_without_a_panic() {
        let check = |o: LBfgsBOptions| o.check(4).map_err(|e| e.to_string());
        let base = LBfgsBOptions::default();
        assert!(check(LBfgsBOptions { memory: 1, max_line_search: 1, gtol: 0.0, ..base.clone() }).is_ok());
        assert_eq!(check(LBfgsBOptions { memory: 0, ..base.clone() }), Err("memory must be at least 1 (got 0)".into()));
        let huge = check(LBfgsBOptions { memory: usize::MAX, ..base.clone() }).unwrap_err();
        assert!(huge.starts_with(&format!("memory {} would need about", usize::MAX)), "{huge}");
        assert_eq!(
            check(LBfgsBOptions { max_line_search: 0, ..base.clone() }),
            Err("max_line_search must be at least 1 (got 0)".into())
        );
        assert!(check(LBfgsBOptions { diff_step: Some(1.0), ..base.clone() }).is_ok());
        for step in [0.0, -1e-8, 1.5, f64::NAN, f64::INFINITY] {
            assert!(
                check(LBfgsBOptions { diff_step: Some(step), ..base.clone() }).unwrap_err().starts_with("diff_step")
            );
        }
        for gtol in [-1.0, f64::NAN] {
            assert!(check(LBfgsBOptions { gtol, ..base.clone() }).unwrap_err().starts_with("gtol"));
        }
        let bounds = Bounds::unbounded(4);
        assert_eq!(LBfgsB::new(vec![0.0; 4], bounds, LBfgsBOptions { memory: 0, ..base }).unwrap_err().key, "memory");
    }
}
