//! Solver options and statistics, and adaptive Dormand–Prince 5(4) with FSAL, PI step-size control,
//! Hairer's initial-step heuristic, the 4th-order continuous extension for output between steps, and
//! Hairer's stiffness detection (which hands a stiff problem over to BDF in `auto` mode).

use parfit_core::math;
use parfit_core::{ComponentError, SimError};
use serde::{Deserialize, Serialize};

use crate::events::{Event, RootFinder};

/// Which integrator runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// Explicit Dormand–Prince 5(4). Stops with an error when the problem turns out to be stiff.
    Dopri5,
    /// Implicit variable-order BDF (NDF) with the model's exact Jacobian: for stiff problems.
    Bdf,
    /// Dormand–Prince while the problem is not stiff, switching to BDF (for the rest of the solve) when
    /// stiffness is detected.
    #[default]
    Auto,
}

/// Integrator settings. Deserialises from JSON with every field optional; unknown fields are an error.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SolverOptions {
    /// Relative tolerance.
    pub rtol: f64,
    /// Absolute tolerance.
    pub atol: f64,
    /// Attempted steps (accepted + rejected) allowed per simulation before `SimError::TooManySteps`.
    pub max_steps: usize,
    /// First step size; `None` picks one automatically.
    pub h0: Option<f64>,
    /// Largest step size; `None` means unlimited.
    pub max_step: Option<f64>,
    /// Time at which the initial state `u_i` is given; `None` means the first requested time.
    /// Must not be after the first requested time.
    pub t0: Option<f64>,
    /// Interpolate outputs between steps (`true`), or shorten steps to land exactly on every requested
    /// time (`false`: more steps when times are dense, but no interpolation error).
    pub dense_output: bool,
    /// `"dopri5"`, `"bdf"` or `"auto"`.
    pub solver: Method,
    /// Offer exact parameter sensitivities (forward sensitivity equations) to gradient-based fitters.
    /// `false` makes them fall back to finite differences (worth it only for models with many parameters
    /// and few states, where the sensitivity system is large).
    pub sensitivities: bool,
    /// Compile the model's right-hand side, Jacobian and outputs to native code (native targets; the
    /// results are bit-identical to the interpreter's). `false` forces the interpreter, for diagnosis.
    pub jit: bool,
}

impl Default for SolverOptions {
    fn default() -> Self {
        SolverOptions {
            rtol: 1e-6,
            atol: 1e-6,
            max_steps: 100_000,
            h0: None,
            max_step: None,
            t0: None,
            dense_output: true,
            solver: Method::Auto,
            sensitivities: true,
            jit: true,
        }
    }
}

/// `rtol` and `atol` are targets for the *global* error (the error of the solution at the requested times),
/// which is what users compare against. Each integrator controls its local (per-step) error at tolerances
/// this much tighter, calibrated on the reference problems of `tests/data/ode_problems` so that their
/// global errors stay within a few tolerances: Dormand–Prince's global error there is up to ~25× its local
/// tolerance (long oscillating runs), BDF's up to ~2000× (Van der Pol's slow phases, where errors in the
/// phase accumulate, right before a jump).
pub(crate) const DOPRI5_LOCAL_TOL: f64 = 0.1;
pub(crate) const BDF_LOCAL_TOL: f64 = 1e-3;

impl SolverOptions {
    /// These options with the tolerances an integrator controls its local error with (see
    /// [`DOPRI5_LOCAL_TOL`]); `rtol` stays above `100 ε`, where steps still resolve relative changes.
    pub(crate) fn local(&self, factor: f64) -> SolverOptions {
        let rtol = if self.rtol > 0.0 { (self.rtol * factor).max(100.0 * f64::EPSILON) } else { 0.0 };
        SolverOptions { rtol, atol: self.atol * factor, ..*self }
    }

    /// Reject settings the integrator cannot work with, naming the option, its allowed range and its value.
    pub fn validate(&self) -> Result<(), String> {
        for (name, v) in [("rtol", self.rtol), ("atol", self.atol)] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(format!("{name} = {v:?}: must be a finite number ≥ 0"));
            }
        }
        if self.rtol == 0.0 && self.atol == 0.0 {
            return Err("rtol = 0 and atol = 0: at least one must be positive".into());
        }
        if self.max_steps == 0 {
            return Err("max_steps = 0: must be at least 1".into());
        }
        for (name, v) in [("h0", self.h0), ("max_step", self.max_step)] {
            if let Some(v) = v
                && !(v.is_finite() && v > 0.0)
            {
                return Err(format!("{name} = {v:?}: must be a finite number > 0"));
            }
        }
        if let Some(t0) = self.t0
            && !t0.is_finite()
        {
            return Err(format!("t0 = {t0:?}: must be a finite number"));
        }
        Ok(())
    }
}

/// The work one simulation did. Counts cover every method that ran (`auto` may run both).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct SolverStats {
    /// Accepted steps.
    pub steps: usize,
    /// Rejected steps: failed error tests, and (BDF) Newton iterations that did not converge.
    pub rejected_steps: usize,
    /// Right-hand-side evaluations (including those inside Newton iterations).
    pub rhs_evals: usize,
    /// Jacobian evaluations (BDF).
    pub jac_evals: usize,
    /// LU factorisations of the Newton matrix (BDF).
    pub lu_factorizations: usize,
    /// Newton iterations (BDF).
    pub newton_iterations: usize,
    /// In `auto` mode: the time at which stiffness was detected and BDF took over.
    pub switched_to_bdf_at: Option<f64>,
    /// Resets applied (events of a model with `reset`).
    pub resets: usize,
    /// A model with `stop` and no `reset`: the time of the event that ended the solve (outputs after it are
    /// NaN) and the index of the stop element that fired.
    pub stopped_at: Option<f64>,
    pub stop_index: Option<usize>,
}

/// The ODE as the integrators see it.
pub(crate) trait System {
    fn rhs(&mut self, t: f64, y: &[f64], dy: &mut [f64]);
    /// `rhs` at the state `values` yields, which is stored into `y` first. A system that keeps its own copy
    /// of the state may store each value there too, as it comes (see `Program::rhs_from`).
    #[inline]
    fn rhs_from(&mut self, t: f64, y: &mut [f64], values: impl Iterator<Item = f64>, dy: &mut [f64]) {
        y.iter_mut().zip(values).for_each(|(y, v)| *y = v);
        self.rhs(t, y, dy);
    }
    /// The non-zero entries of ∂F/∂u at `(t, y)` for the model's `n` states, in the order of its sparsity
    /// pattern (with sensitivities, the diagonal block of the augmented system's Jacobian, which reads only
    /// the first `n` values of `y`).
    fn jacobian(&mut self, t: f64, y: &[f64], jac: &mut [f64]);
    /// The entries of the mass matrix `M` of `M du/dt = F` in the order of its pattern (constant within a
    /// solve; read after the initial state). Only called for models with a mass matrix.
    fn mass(&mut self, _values: &mut [f64]) {}
    /// The solution at the requested time `times[i]`.
    fn output(&mut self, i: usize, t: f64, y: &[f64]);
    /// The number of stop functions (events are their zeros).
    fn n_stops(&self) -> usize {
        0
    }
    /// The stop functions at `(t, y)` into `g`.
    fn stop(&mut self, _t: f64, _y: &[f64], _g: &mut [f64]) {}
    /// Where the integrators count their work.
    fn stats(&mut self) -> &mut SolverStats;
    /// The name of component `i` of the state, for error messages.
    fn component_name(&self, i: usize) -> String {
        format!("component {i}")
    }
}

/// How many components a step-size failure names.
const WORST_NAMED: usize = 3;

/// `SimError::StepTooSmall` at `(t, h)` naming the components with the largest `errors` (in units of their
/// tolerance; non-finite ones are left out, as they cannot cross the ABI's JSON) with their values `y`.
pub(crate) fn step_too_small_error<S: System>(sys: &S, t: f64, h: f64, y: &[f64], errors: &[f64]) -> SimError {
    let mut order: Vec<usize> = (0..errors.len()).filter(|&i| errors[i].is_finite() && y[i].is_finite()).collect();
    order.sort_by(|&a, &b| errors[b].abs().total_cmp(&errors[a].abs()));
    let worst = order
        .into_iter()
        .take(WORST_NAMED)
        .map(|i| ComponentError { name: sys.component_name(i), value: y[i], error: errors[i].abs() })
        .collect();
    SimError::StepTooSmall { t, h, worst }
}

/// How a Dormand–Prince run ended.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Dopri5End {
    /// All requested times were reported.
    Done,
    /// (`auto` only) The problem is stiff: the state at `t` is in `y`; `times[next..]` are still due.
    Stiff { t: f64, next: usize },
    /// A stop function's zero: the state there is in `y`.
    Event(Event),
}

/// A step moves `t` by at least this many units in the last place of `t`; a shorter one is a failure.
const MIN_STEP_ULPS: f64 = 4.0;

/// Whether a step of `h` from `t` is too short to move the solution meaningfully: within a few ulps of `t`
/// (of the current time only, as in SUNDIALS and diffsol: a long span must not forbid the short steps a
/// fast transient at its start needs), or below the smallest normal number.
pub(crate) fn step_too_small(h: f64, t: f64) -> bool {
    h <= MIN_STEP_ULPS * f64::EPSILON * t.abs() || h < f64::MIN_POSITIVE
}

/// Hairer's starting step for a method of the given order: make the first Euler step's change and the
/// change of `f` over it both small against the tolerances. Costs one evaluation of `f`; `y1` and `f1`
/// are scratch.
#[allow(clippy::too_many_arguments)]
pub(crate) fn initial_step<S: System>(
    opts: &SolverOptions,
    sys: &mut S,
    t: f64,
    y: &[f64],
    f0: &[f64],
    order: usize,
    span: f64,
    max_step: f64,
    y1: &mut [f64],
    f1: &mut [f64],
) -> f64 {
    let n = y.len();
    let (mut d0, mut d1) = (0.0, 0.0);
    for i in 0..n {
        let sc = opts.atol + opts.rtol * y[i].abs();
        d0 += math::powi(y[i] / sc, 2);
        d1 += math::powi(f0[i] / sc, 2);
    }
    let (d0, d1) = ((d0 / n as f64).sqrt(), (d1 / n as f64).sqrt());
    let h0 = if d0 < 1e-5 || d1 < 1e-5 { 1e-6 } else { 0.01 * d0 / d1 }.min(max_step).min(span);
    for i in 0..n {
        y1[i] = y[i] + h0 * f0[i];
    }
    sys.rhs(t + h0, y1, f1);
    let mut d2 = 0.0;
    for i in 0..n {
        let sc = opts.atol + opts.rtol * y[i].abs();
        d2 += math::powi((f1[i] - f0[i]) / sc, 2);
    }
    let d2 = (d2 / n as f64).sqrt() / h0;
    let dmax = d1.max(d2);
    let h1 = if dmax <= 1e-15 { (h0 * 1e-3).max(1e-6) } else { math::powf(0.01 / dmax, 1.0 / (order + 1) as f64) };
    // NaN from a non-finite trial falls through `min` to the other candidates; the result stays clear of
    // the smallest step allowed at `t`.
    (100.0 * h0).min(h1).min(max_step).min(span).max(2.0 * MIN_STEP_ULPS * f64::EPSILON * t.abs())
}

// Dormand & Prince (1980) coefficients. Row i of `A` gives stage i+1 from stages 1..=i.
const C: [f64; 7] = [0.0, 1.0 / 5.0, 3.0 / 10.0, 4.0 / 5.0, 8.0 / 9.0, 1.0, 1.0];
const A2: [f64; 1] = [1.0 / 5.0];
const A3: [f64; 2] = [3.0 / 40.0, 9.0 / 40.0];
const A4: [f64; 3] = [44.0 / 45.0, -56.0 / 15.0, 32.0 / 9.0];
const A5: [f64; 4] = [19372.0 / 6561.0, -25360.0 / 2187.0, 64448.0 / 6561.0, -212.0 / 729.0];
const A6: [f64; 5] = [9017.0 / 3168.0, -355.0 / 33.0, 46732.0 / 5247.0, 49.0 / 176.0, -5103.0 / 18656.0];
/// 5th-order weights, which are also stage 7's row (the FSAL property): stage 7 is f at the new point.
const B: [f64; 6] = [35.0 / 384.0, 0.0, 500.0 / 1113.0, 125.0 / 192.0, -2187.0 / 6784.0, 11.0 / 84.0];
/// 5th- minus 4th-order weights over all seven stages: the local error estimate.
const E: [f64; 7] =
    [71.0 / 57600.0, 0.0, -71.0 / 16695.0, 71.0 / 1920.0, -17253.0 / 339200.0, 22.0 / 525.0, -1.0 / 40.0];
/// Weights of the extra term that lifts the cubic Hermite interpolant to 4th order (Hairer, Nørsett &
/// Wanner, Solving ODEs I, §II.6).
const D: [f64; 7] = [
    -12715105075.0 / 11282082432.0,
    0.0,
    87487479700.0 / 32700410799.0,
    -10690763975.0 / 1880347072.0,
    701980252875.0 / 199316789632.0,
    -1453857185.0 / 822651844.0,
    69997945.0 / 29380423.0,
];

// Hairer's stiffness test: `h·|λ|` estimated from the last two stages, against the stability boundary of
// Dormand–Prince on the negative real axis (≈ 3.3). Stiff after this many steps in a row near it; the
// count restarts after a few that are not. Hairer's code uses 3.25; 2.0 (within a factor 1.65 of the
// boundary) catches problems like Robertson's at tight absolute tolerances, where the steps hover below the
// boundary for thousands of steps, without firing on non-stiff problems.
const STIFF_HLAMBDA: f64 = 2.0;
const STIFF_STEPS: usize = 15;
const NONSTIFF_RESET: usize = 6;
/// With `solver = "dopri5"`, a stiff problem is an error only when finishing at the stability-limited step
/// size would take more than this many steps; shorter stiff stretches are just integrated.
const STIFF_REMAINING_STEPS: f64 = 1000.0;

// Step-size control.
const SAFETY: f64 = 0.9;
const FAC_MIN: f64 = 0.2;
const FAC_MAX: f64 = 10.0;
/// PI controller exponents: `h_new = h · safety · err^-ALPHA · err_prev^BETA`. With BETA = 0 this is the
/// classic `err^-1/5` controller; a small BETA damps oscillating step sizes.
const BETA: f64 = 0.04;
const ALPHA: f64 = 0.2 - 0.75 * BETA;

/// Scratch vectors for one integration; sized once per model.
///
/// The stage derivatives are stored by component, `k[i][s]` = component `i` of stage `s + 1`: every loop
/// over the components then zips slices of equal length and reads a component's stages from one
/// fixed-size array, with constant indices, so the hot loops carry no bounds checks.
#[derive(Debug, Clone)]
pub(crate) struct Dopri5 {
    pub y: Vec<f64>,
    y_new: Vec<f64>,
    y_stage: Vec<f64>,
    k: Vec<[f64; 7]>,
    /// The right-hand side of the stage being evaluated, before it is stored into `k`.
    f: Vec<f64>,
    /// The continuous extension's coefficients for the step just taken, per component (see `dense`).
    dense_coeffs: Vec<[f64; 4]>,
    /// Whether `dense_coeffs` belong to the step just taken.
    dense_ready: bool,
    y_dense: Vec<f64>,
    /// The event search (for models with stop functions).
    roots: RootFinder,
}

/// `y_i + h · Σ_j a_j k_i[j]` over the first `S` stages, for every component `i`.
#[inline(always)]
fn combine<'a, const S: usize>(
    y: &'a [f64],
    k: &'a [[f64; 7]],
    h: f64,
    a: &'a [f64; S],
) -> impl Iterator<Item = f64> + 'a {
    y.iter().zip(k).map(move |(&y, kr)| {
        let mut acc = a[0] * kr[0];
        for j in 1..S {
            acc += a[j] * kr[j];
        }
        y + h * acc
    })
}

/// Store a stage's right-hand side as stage `S + 1`.
#[inline(always)]
fn store<const S: usize>(k: &mut [[f64; 7]], f: &[f64]) {
    for (kr, &v) in k.iter_mut().zip(f) {
        kr[S] = v;
    }
}

impl Dopri5 {
    pub fn new(n: usize) -> Self {
        Dopri5 {
            y: vec![0.0; n],
            y_new: vec![0.0; n],
            y_stage: vec![0.0; n],
            k: vec![[0.0; 7]; n],
            f: vec![0.0; n],
            dense_coeffs: vec![[0.0; 4]; n],
            dense_ready: false,
            y_dense: vec![0.0; n],
            roots: RootFinder::default(),
        }
    }

    pub fn dim(&self) -> usize {
        self.y.len()
    }

    /// Integrate from `(t0, self.y)` and report the solution at each of `times[next..]` (non-decreasing, none
    /// before `t0`) through `sys.output`. When the stiffness test fires, `opts.solver` decides: `Auto` hands
    /// over (`Dopri5End::Stiff`, with the state at that time in `self.y`), `Dopri5` fails if much is left. At
    /// a zero of a stop function the solve ends with `Dopri5End::Event`.
    pub fn solve<S: System>(
        &mut self,
        opts: &SolverOptions,
        sys: &mut S,
        t0: f64,
        times: &[f64],
        next: usize,
    ) -> Result<Dopri5End, SimError> {
        // Small systems get a copy of the integrator for their size, whose loops over the components have a
        // known length and unroll into straight-line code; for two states the loop overhead was a large part
        // of a step.
        match self.dim() {
            1 => self.solve_sized::<S, 1>(opts, sys, t0, times, next),
            2 => self.solve_sized::<S, 2>(opts, sys, t0, times, next),
            3 => self.solve_sized::<S, 3>(opts, sys, t0, times, next),
            4 => self.solve_sized::<S, 4>(opts, sys, t0, times, next),
            _ => self.solve_sized::<S, 0>(opts, sys, t0, times, next),
        }
    }

    /// [`Dopri5::solve`] for `N` components (`N = 0`: any number).
    fn solve_sized<S: System, const N: usize>(
        &mut self,
        opts: &SolverOptions,
        sys: &mut S,
        t0: f64,
        times: &[f64],
        mut next: usize, // index of the next time to report
    ) -> Result<Dopri5End, SimError> {
        let mut t = t0;
        while next < times.len() && times[next] <= t {
            sys.output(next, times[next], &self.y);
            next += 1;
        }
        let Some(&t_end) = times.last() else { return Ok(Dopri5End::Done) };
        if next == times.len() {
            return Ok(Dopri5End::Done);
        }
        if !all_finite(&self.y) {
            return Err(SimError::Diverged { t });
        }
        sys.rhs(t, &self.y, &mut self.f);
        if !all_finite(&self.f) {
            return Err(SimError::Diverged { t });
        }
        store::<0>(&mut self.k, &self.f);
        let n_stops = sys.n_stops();
        if n_stops > 0 {
            let Dopri5 { roots, y, .. } = self;
            roots.start(n_stops, t, |t, g| sys.stop(t, y, g));
        }

        let max_step = opts.max_step.unwrap_or(f64::INFINITY);
        let mut h = match opts.h0 {
            Some(h0) => h0,
            None => {
                let Dopri5 { y, y_stage, y_new, f, .. } = self;
                initial_step(opts, sys, t, y, f, 4, t_end - t, max_step, y_stage, y_new)
            }
        }
        .min(max_step);
        let (mut stiff_steps, mut nonstiff_steps) = (0usize, 0usize);
        // `max_steps` covers the whole solve, across events.
        let mut steps = {
            let s = sys.stats();
            s.steps + s.rejected_steps
        };
        // ln(err_prev): the controller works with logarithms, one `ln` and one `exp` per step instead of
        // two `powf`.
        let mut ln_err_prev: f64 = math::ln(1e-4f64);
        let mut rejected = false;
        let mut failed_non_finite = false;

        loop {
            if steps >= opts.max_steps {
                return Err(SimError::TooManySteps { t, max_steps: opts.max_steps });
            }
            steps += 1;
            let stop = if opts.dense_output { t_end } else { times[next] };
            // Stretch a step that would stop just short of `stop` rather than leave a sliver behind.
            let last = t + 1.01 * h >= stop && stop - t <= max_step;
            let h_proposed = h;
            if last {
                h = stop - t;
            }
            let t_new = if last { stop } else { t + h };
            // Give up once the step no longer moves `t` meaningfully (a step cut short to land on `stop` may
            // be as short as `stop` is away).
            if !last && step_too_small(h, t) {
                if failed_non_finite {
                    return Err(SimError::Diverged { t });
                }
                // Name the components whose error is still too large at this step.
                self.stages::<S, N>(sys, t, h, t_new);
                let errors = self.scaled_errors(opts, h);
                return Err(step_too_small_error(sys, t, h, &self.y, &errors));
            }

            self.stages::<S, N>(sys, t, h, t_new);
            // The squared norm: the test against 1 and the controller's logarithm need no square root.
            let err2 = self.error_norm_squared::<N>(opts, h);

            if !err2.is_finite() {
                // Overflow or NaN inside the step: retry shorter; a genuine blow-up ends in `Diverged`.
                failed_non_finite = true;
                rejected = true;
                h *= FAC_MIN;
            } else if err2 <= 1.0 {
                failed_non_finite = false;
                sys.stats().steps += 1;
                if n_stops > 0
                    && let Some((t_event, index)) = self.find_event::<S, N>(sys, t, h, t_new)
                {
                    let next = self.report::<S, N>(sys, times, next, t, h, t_new, t_event);
                    if t_event == t_new {
                        std::mem::swap(&mut self.y, &mut self.y_new);
                    } else {
                        self.dense::<N>(h, (t_event - t) / h);
                        std::mem::swap(&mut self.y, &mut self.y_dense);
                    }
                    return Ok(Dopri5End::Event(Event { t: t_event, index, next }));
                }
                if self.stability_limited::<N>(h) {
                    nonstiff_steps = 0;
                    stiff_steps += 1;
                    if stiff_steps >= STIFF_STEPS {
                        stiff_steps = 0;
                        match opts.solver {
                            Method::Auto => {
                                let next = self.report::<S, N>(sys, times, next, t, h, t_new, t_new);
                                std::mem::swap(&mut self.y, &mut self.y_new);
                                return Ok(if next == times.len() {
                                    Dopri5End::Done
                                } else {
                                    Dopri5End::Stiff { t: t_new, next }
                                });
                            }
                            _ if (t_end - t_new) / h > STIFF_REMAINING_STEPS => {
                                return Err(SimError::Other(format!(
                                    "the problem is stiff: Dormand–Prince's step size is limited by stability \
                                     (h = {h:.3e} at t = {t_new}, about {:.0} more steps to t = {t_end}); \
                                     use solver = \"bdf\" or \"auto\"",
                                    (t_end - t_new) / h
                                )));
                            }
                            _ => {}
                        }
                    }
                } else {
                    nonstiff_steps += 1;
                    if nonstiff_steps >= NONSTIFF_RESET {
                        stiff_steps = 0;
                    }
                }
                next = self.report::<S, N>(sys, times, next, t, h, t_new, t_new);
                std::mem::swap(&mut self.y, &mut self.y_new);
                // FSAL: the last stage is f at the new point.
                for kr in &mut self.k[..width::<N>(self.y.len())] {
                    kr[0] = kr[6];
                }
                t = t_new;
                if next == times.len() {
                    return Ok(Dopri5End::Done);
                }
                let ln_err = 0.5 * math::ln(err2);
                let mut fac = (SAFETY * math::exp(BETA * ln_err_prev - ALPHA * ln_err)).clamp(FAC_MIN, FAC_MAX);
                if rejected {
                    fac = fac.min(1.0); // don't grow straight after a rejection
                }
                rejected = false;
                ln_err_prev = ln_err.max(math::ln(1e-4f64));
                h *= fac;
                if last {
                    // The step was cut to hit an output time; its error says little about the next one.
                    h = h.max(h_proposed);
                }
                h = h.min(max_step);
                continue;
            } else {
                rejected = true;
                sys.stats().rejected_steps += 1;
                h *= (SAFETY * math::powf(err2, -0.1)).max(FAC_MIN); // err^-0.2
            }
        }
    }

    /// Stages 2..=7 of one step from `(t, y)` with `k[0] = f(t, y)`; leaves the 5th-order solution in
    /// `y_new` and `k[6] = f(t_new, y_new)`.
    fn stages<S: System, const N: usize>(&mut self, sys: &mut S, t: f64, h: f64, t_new: f64) {
        self.dense_ready = false;
        let n = width::<N>(self.dim());
        let Dopri5 { y, y_new, y_stage, k, f, .. } = self;
        let (y, y_new, y_stage, k, f) = (&y[..n], &mut y_new[..n], &mut y_stage[..n], &mut k[..n], &mut f[..n]);
        // Stage s + 1 from the stages before it, with the combination's weights `a`.
        macro_rules! stage {
            ($s:literal, $a:expr) => {
                sys.rhs_from(t + C[$s] * h, y_stage, combine(y, k, h, &$a), f);
                store::<$s>(k, f);
            };
        }
        stage!(1, A2);
        stage!(2, A3);
        stage!(3, A4);
        stage!(4, A5);
        stage!(5, A6);
        // B[1] = 0.
        let new = y
            .iter()
            .zip(k.iter())
            .map(|(&y, kr)| y + h * (B[0] * kr[0] + B[2] * kr[2] + B[3] * kr[3] + B[4] * kr[4] + B[5] * kr[5]));
        sys.rhs_from(t_new, y_new, new, f);
        store::<6>(k, f);
    }

    /// The square of the RMS over components of the local error scaled by `atol + rtol · max(|y|, |y_new|)`.
    /// NaN or infinite when the step produced non-finite values.
    fn error_norm_squared<const N: usize>(&self, opts: &SolverOptions, h: f64) -> f64 {
        let n = width::<N>(self.dim());
        let mut sum = 0.0;
        for ((kr, &y), &y_new) in self.k[..n].iter().zip(&self.y[..n]).zip(&self.y_new[..n]) {
            let scale = opts.atol + opts.rtol * y.abs().max(y_new.abs());
            let r = h * local_error(kr) / scale;
            sum += r * r;
            if !y_new.is_finite() {
                return f64::NAN;
            }
        }
        sum / n as f64
    }

    /// Each component's local error of the step of size `h` just tried, in units of its tolerance (the terms of
    /// [`Dopri5::error_norm_squared`]); for the message of a failure.
    fn scaled_errors(&self, opts: &SolverOptions, h: f64) -> Vec<f64> {
        self.k
            .iter()
            .zip(&self.y)
            .zip(&self.y_new)
            .map(|((kr, &y), &y_new)| h * local_error(kr) / (opts.atol + opts.rtol * y.abs().max(y_new.abs())))
            .collect()
    }

    /// The continuous extension at `t + theta · h` of the step just taken, into `y_dense`.
    ///
    /// Written as a correction to cubic Hermite interpolation between `(y, k1)` and `(y_new, k7)`:
    /// `y + θ(Δ + (1-θ)(b + θ(c + (1-θ)d)))` with `Δ = y_new - y`, `b = h k1 - Δ`, `c = Δ - h k7 - b`, and
    /// `d = h Σ D_j k_j` the 4th-order term; it matches the end values and slopes exactly. The
    /// coefficients are worked out once per step, on its first output.
    fn dense<const N: usize>(&mut self, h: f64, theta: f64) {
        let n = width::<N>(self.dim());
        let (y, y_new, k) = (&self.y[..n], &self.y_new[..n], &self.k[..n]);
        if !self.dense_ready {
            for (((co, &y), &y_new), kr) in self.dense_coeffs[..n].iter_mut().zip(y).zip(y_new).zip(k) {
                let delta = y_new - y;
                let b = h * kr[0] - delta;
                let c = delta - h * kr[6] - b;
                // D[1] = 0.
                let d = D[0] * kr[0] + D[2] * kr[2] + D[3] * kr[3] + D[4] * kr[4] + D[5] * kr[5] + D[6] * kr[6];
                *co = [delta, b, c, h * d];
            }
            self.dense_ready = true;
        }
        let one_minus = 1.0 - theta;
        for ((o, &y), &[delta, b, c, d]) in self.y_dense[..n].iter_mut().zip(y).zip(&self.dense_coeffs[..n]) {
            *o = y + theta * (delta + one_minus * (b + theta * (c + one_minus * d)));
        }
    }

    /// Report every requested time in `(t, upto]` from the step just taken from `t` to `t_new` (before `y`
    /// and `y_new` swap); returns the index of the next time still due.
    #[allow(clippy::too_many_arguments)]
    fn report<S: System, const N: usize>(
        &mut self,
        sys: &mut S,
        times: &[f64],
        mut next: usize,
        t: f64,
        h: f64,
        t_new: f64,
        upto: f64,
    ) -> usize {
        while next < times.len() && times[next] <= upto {
            let ti = times[next];
            if ti == t_new {
                sys.output(next, ti, &self.y_new);
            } else {
                self.dense::<N>(h, (ti - t) / h);
                sys.output(next, ti, &self.y_dense);
            }
            next += 1;
        }
        next
    }

    /// The first zero of a stop function on the step just accepted from `t` to `t_new`, located on the
    /// continuous extension (see `events.rs`).
    fn find_event<S: System, const N: usize>(
        &mut self,
        sys: &mut S,
        t: f64,
        h: f64,
        t_new: f64,
    ) -> Option<(f64, usize)> {
        let mut roots = std::mem::take(&mut self.roots);
        let found = roots.step(t_new, |tau, g| {
            if tau == t_new {
                sys.stop(tau, &self.y_new, g);
            } else {
                self.dense::<N>(h, (tau - t) / h);
                sys.stop(tau, &self.y_dense, g);
            }
        });
        self.roots = roots;
        found
    }

    /// Hairer's stiffness test on the step just accepted: stages 6 and 7 are both at `t + h`, so
    /// `|k7 - k6| / |y_new - y6|` estimates the largest `|λ|` along the step; stability limits the step when
    /// `h·|λ|` is near the method's stability boundary.
    fn stability_limited<const N: usize>(&self, h: f64) -> bool {
        let n = width::<N>(self.dim());
        let (mut num, mut den) = (0.0, 0.0);
        for ((kr, &y_new), &y_stage) in self.k[..n].iter().zip(&self.y_new[..n]).zip(&self.y_stage[..n]) {
            num += math::powi(kr[6] - kr[5], 2);
            den += math::powi(y_new - y_stage, 2);
        }
        // h·√(num/den) > STIFF_HLAMBDA, squared.
        den > 0.0 && (h * h) * num > STIFF_HLAMBDA * STIFF_HLAMBDA * den
    }
}

/// The 5th- minus the 4th-order solution's slope over a step: its local error divided by `h`.
#[inline(always)]
fn local_error(kr: &[f64; 7]) -> f64 {
    // E[1] = 0.
    E[0] * kr[0] + E[2] * kr[2] + E[3] * kr[3] + E[4] * kr[4] + E[5] * kr[5] + E[6] * kr[6]
}

/// The number of components a method sized for `N` works on: `N`, or with `N = 0` the system's `dim`.
#[inline(always)]
fn width<const N: usize>(dim: usize) -> usize {
    if N == 0 { dim } else { N }
}

fn all_finite(v: &[f64]) -> bool {
    v.iter().all(|x| x.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// y' = -y + sin(t): a non-autonomous problem with a known solution.
    #[derive(Default)]
    struct Forced(SolverStats);
    impl System for Forced {
        fn rhs(&mut self, t: f64, y: &[f64], dy: &mut [f64]) {
            dy[0] = -y[0] + math::sin(t);
        }
        fn jacobian(&mut self, _: f64, _: &[f64], jac: &mut [f64]) {
            jac[0] = -1.0;
        }
        fn output(&mut self, _: usize, _: f64, _: &[f64]) {}
        fn stats(&mut self) -> &mut SolverStats {
            &mut self.0
        }
    }
    fn exact(t: f64) -> f64 {
        // y(0) = 1
        1.5 * math::exp(-t) + 0.5 * (math::sin(t) - math::cos(t))
    }

    /// Local error of one step of size `h` from the exact solution at `t`: (at the end, in the middle).
    fn one_step(t: f64, h: f64) -> (f64, f64) {
        let mut s = Dopri5::new(1);
        s.y[0] = exact(t);
        Forced::default().rhs(t, &s.y.clone(), &mut s.f);
        store::<0>(&mut s.k, &s.f);
        s.stages::<_, 0>(&mut Forced::default(), t, h, t + h);
        s.dense::<0>(h, 0.4);
        ((s.y_new[0] - exact(t + h)).abs(), (s.y_dense[0] - exact(t + 0.4 * h)).abs())
    }

    #[test]
    fn local_errors_have_the_expected_order() {
        // Step error is O(h^6) and the continuous extension's O(h^5): halving h divides them by ~64 and ~32.
        let (e1, d1) = one_step(0.3, 0.2);
        let (e2, d2) = one_step(0.3, 0.1);
        let (e3, d3) = one_step(0.3, 0.05);
        for (a, b, lo, hi) in [(e1, e2, 40.0, 90.0), (e2, e3, 40.0, 90.0), (d1, d2, 24.0, 40.0), (d2, d3, 24.0, 40.0)] {
            assert!(a / b > lo && a / b < hi, "ratio {} ({a:e} / {b:e})", a / b);
        }
    }

    #[test]
    fn dense_output_matches_the_end_points() {
        let mut s = Dopri5::new(1);
        s.y[0] = 1.0;
        Forced::default().rhs(0.0, &s.y.clone(), &mut s.f);
        store::<0>(&mut s.k, &s.f);
        s.stages::<_, 1>(&mut Forced::default(), 0.0, 0.3, 0.3);
        s.dense::<1>(0.3, 0.0);
        assert_eq!(s.y_dense[0], s.y[0]);
        s.dense::<1>(0.3, 1.0);
        assert!((s.y_dense[0] - s.y_new[0]).abs() < 1e-15);
    }
}
