//! Nelder–Mead downhill simplex, with the dimension-adaptive coefficients of Gao & Han (2012).
//!
//! Each ask–tell round is one batch: the whole initial simplex (n + 1 points), a single trial point
//! (reflection, expansion or contraction), or the n new vertices of a shrink. Trial points are
//! projected onto the bounds, so every candidate is feasible; the price is that the simplex can
//! flatten against a face of the box.

use super::{Bounds, Optimiser, Stopping, Termination};
use crate::check::{OptionError, positive, require};
use serde::{Deserialize, Serialize};

/// Options of [`NelderMead`], as read from the user's configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NelderMeadOptions {
    /// Size of the initial simplex relative to the start point: vertex `i` is `x0` moved along
    /// coordinate `i` by `initial_step · |x0_i|`, but by at least `min_initial_step`. The move
    /// goes down instead of up when up would leave the box. Default `0.05`.
    pub initial_step: f64,
    /// Absolute floor of the initial move along each coordinate, used when `x0_i` is zero or tiny.
    /// Default `0.00025`.
    pub min_initial_step: f64,
    /// Use the dimension-dependent coefficients of Gao & Han (2012) (expansion `1 + 2/n`,
    /// contraction `0.75 − 1/(2n)`, shrink `1 − 1/n`) instead of the classic `2, 1/2, 1/2`.
    /// They help markedly above a handful of parameters. Only applied when n > 2: at n = 2 they
    /// equal the classic values and at n = 1 the shrink would collapse the simplex. Default `true`.
    pub adaptive: bool,
}

impl NelderMeadOptions {
    /// Check every option against its allowed range (a zero `initial_step` leaves every move at the floor).
    pub fn check(&self) -> Result<(), OptionError> {
        let step = self.initial_step;
        require(step >= 0.0 && step.is_finite(), "initial_step", "a finite number ≥ 0", step)?;
        positive("min_initial_step", self.min_initial_step)
    }
}

impl Default for NelderMeadOptions {
    fn default() -> Self {
        NelderMeadOptions { initial_step: 0.05, min_initial_step: 0.00025, adaptive: true }
    }
}

/// What the batch currently out for evaluation is.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Step {
    /// The n + 1 vertices of the initial simplex.
    Init,
    Reflect,
    /// Expansion after a reflection that beat the best vertex; the reflection (kept in
    /// `reflected`) had value `fr`.
    Expand {
        fr: f64,
    },
    /// Contraction towards the reflection, which had value `fr`.
    ContractOutside {
        fr: f64,
    },
    /// Contraction towards the worst vertex.
    ContractInside,
    /// Vertices 1..=n moved towards the best one.
    Shrink,
}

/// Nelder–Mead simplex search.
///
/// Stops by itself (see [`Optimiser::converged`]) with
/// * [`Termination::FunctionTolerance`] when every vertex value is within `ftol` of the best one
///   *and* every vertex is within `xtol` of the best vertex in every coordinate (scipy's
///   `fatol`/`xatol` rule);
/// * [`Termination::ParameterTolerance`] when the simplex has collapsed to floating-point
///   resolution, so no further step can change it.
#[derive(Debug, Clone)]
pub struct NelderMead {
    bounds: Bounds,
    expand: f64,
    contract: f64,
    shrink: f64,
    /// Vertices sorted by value, best first (ties keep the older vertex first).
    simplex: Vec<Vec<f64>>,
    values: Vec<f64>,
    centroid: Vec<f64>,
    /// The last reflection, kept while its expansion is evaluated.
    reflected: Vec<f64>,
    /// Storage for the largest batch (n + 1 points); `batch_len` of them are out.
    batch: Vec<Vec<f64>>,
    batch_len: usize,
    step: Step,
    iterations: usize,
}

impl NelderMead {
    /// Start from `x0` (projected onto `bounds`); an option out of its range is an error.
    ///
    /// # Panics
    /// If `x0` and `bounds` differ in dimension (a caller's mistake, not a setting).
    pub fn new(x0: Vec<f64>, bounds: Bounds, options: NelderMeadOptions) -> Result<Self, OptionError> {
        let n = x0.len();
        assert_eq!(n, bounds.dim(), "start point and bounds differ in dimension");
        options.check()?;
        let nf = n as f64;
        let (expand, contract, shrink) =
            if options.adaptive && n > 2 { (1.0 + 2.0 / nf, 0.75 - 0.5 / nf, 1.0 - 1.0 / nf) } else { (2.0, 0.5, 0.5) };

        let mut start = x0;
        bounds.clamp(&mut start);
        let mut batch = vec![start.clone(); n + 1];
        for (i, vertex) in batch.iter_mut().skip(1).enumerate() {
            let h = (options.initial_step * start[i].abs()).max(options.min_initial_step);
            let (lo, hi) = (bounds.lower[i], bounds.upper[i]);
            // Step away from whichever side of the box leaves room; clamp if neither fits.
            vertex[i] = if start[i] + h <= hi {
                start[i] + h
            } else if start[i] - h >= lo {
                start[i] - h
            } else if hi - start[i] >= start[i] - lo {
                hi
            } else {
                lo
            };
        }
        Ok(NelderMead {
            bounds,
            expand,
            contract,
            shrink,
            simplex: batch.clone(),
            values: vec![f64::INFINITY; n + 1],
            centroid: vec![0.0; n],
            reflected: vec![0.0; n],
            batch,
            batch_len: n + 1,
            step: Step::Init,
            iterations: 0,
        })
    }

    fn dim(&self) -> usize {
        self.centroid.len()
    }

    /// Put `x = centroid + t · (centroid − worst)`, projected onto the box, into the batch as its
    /// only point.
    fn ask_along(&mut self, t: f64) {
        let n = self.dim();
        let worst = &self.simplex[n];
        let x = &mut self.batch[0];
        for ((xi, ci), wi) in x.iter_mut().zip(&self.centroid).zip(worst) {
            *xi = ci + t * (ci - wi);
        }
        self.bounds.clamp(x);
        self.batch_len = 1;
    }

    /// Compute the centroid of all but the worst vertex and ask for the reflection.
    fn ask_reflection(&mut self) {
        let n = self.dim();
        self.centroid.fill(0.0);
        for v in &self.simplex[..n] {
            for (c, x) in self.centroid.iter_mut().zip(v) {
                *c += x;
            }
        }
        let inv = 1.0 / n.max(1) as f64;
        self.centroid.iter_mut().for_each(|c| *c *= inv);
        self.ask_along(1.0);
        if self.stopped_at_centroid() {
            self.ask_contract_inside();
            return;
        }
        self.reflected.copy_from_slice(&self.batch[0]);
        self.step = Step::Reflect;
    }

    /// Whether the box projected the trial point onto the centroid. The simplex then lies against a face
    /// the step points out of; accepting that point (a copy of the face-side vertices' mean) would collapse
    /// the simplex onto the face for good, so the caller contracts inside, away from the face, instead.
    fn stopped_at_centroid(&self) -> bool {
        self.batch[0] == self.centroid
    }

    fn ask_contract_inside(&mut self) {
        self.ask_along(-self.contract);
        self.step = Step::ContractInside;
    }

    fn ask_shrink(&mut self) {
        let n = self.dim();
        let (best, rest) = self.simplex.split_first().expect("simplex has n + 1 >= 1 vertices");
        for (x, v) in self.batch.iter_mut().zip(rest) {
            for ((xi, vi), bi) in x.iter_mut().zip(v).zip(best) {
                *xi = bi + self.shrink * (vi - bi);
            }
            // A convex combination of feasible points is feasible; clamp only against rounding.
            self.bounds.clamp(x);
        }
        self.batch_len = n;
        self.step = Step::Shrink;
    }

    /// Replace the worst vertex by the batch's first point (or the kept reflection) and re-sort.
    fn accept(&mut self, from_reflected: bool, value: f64) {
        let n = self.dim();
        let source = if from_reflected { &self.reflected } else { &self.batch[0] };
        self.simplex[n].copy_from_slice(source);
        self.values[n] = value;
        // Insert after vertices of equal value, so ties favour the older vertex.
        let k = self.values[..n].partition_point(|&v| v <= value);
        self.simplex[k..].rotate_right(1);
        self.values[k..].rotate_right(1);
        self.ask_reflection();
    }

    /// Stable insertion sort of vertices by value; only after the initial simplex and shrinks.
    fn sort_simplex(&mut self) {
        for i in 1..self.values.len() {
            let mut j = i;
            while j > 0 && self.values[j - 1] > self.values[j] {
                self.values.swap(j - 1, j);
                self.simplex.swap(j - 1, j);
                j -= 1;
            }
        }
    }
}

/// Failed evaluations rank below every finite value.
fn sanitise(v: Option<&f64>) -> f64 {
    match v {
        Some(v) if v.is_finite() => *v,
        _ => f64::INFINITY,
    }
}

impl Optimiser for NelderMead {
    fn name(&self) -> &'static str {
        "nelder-mead"
    }

    fn ask(&mut self) -> &[Vec<f64>] {
        &self.batch[..self.batch_len]
    }

    fn tell(&mut self, values: &[f64]) {
        let n = self.dim();
        self.iterations += 1;
        match self.step {
            Step::Init => {
                for i in 0..=n {
                    self.simplex[i].copy_from_slice(&self.batch[i]);
                    self.values[i] = sanitise(values.get(i));
                }
                self.sort_simplex();
                self.ask_reflection();
            }
            // A zero-dimensional problem has nothing to move.
            _ if n == 0 => {}
            Step::Reflect => {
                let fr = sanitise(values.first());
                if fr < self.values[0] {
                    self.ask_along(self.expand);
                    self.step = Step::Expand { fr };
                } else if fr < self.values[n - 1] {
                    self.accept(true, fr);
                } else if fr < self.values[n] {
                    self.ask_along(self.contract);
                    self.step = Step::ContractOutside { fr };
                    if self.stopped_at_centroid() {
                        self.ask_contract_inside();
                    }
                } else {
                    self.ask_contract_inside();
                }
            }
            Step::Expand { fr } => {
                let fe = sanitise(values.first());
                if fe < fr { self.accept(false, fe) } else { self.accept(true, fr) }
            }
            Step::ContractOutside { fr } => {
                let fc = sanitise(values.first());
                if fc <= fr { self.accept(false, fc) } else { self.ask_shrink() }
            }
            Step::ContractInside => {
                let fc = sanitise(values.first());
                if fc < self.values[n] { self.accept(false, fc) } else { self.ask_shrink() }
            }
            Step::Shrink => {
                for i in 0..n {
                    self.simplex[i + 1].copy_from_slice(&self.batch[i]);
                    self.values[i + 1] = sanitise(values.get(i));
                }
                self.sort_simplex();
                self.ask_reflection();
            }
        }
    }

    fn best(&self) -> (&[f64], f64) {
        // The best vertex never gets worse, so it is the best point seen.
        (&self.simplex[0], self.values[0])
    }

    fn iterations(&self) -> usize {
        self.iterations
    }

    fn converged(&self, stop: &Stopping) -> Option<Termination> {
        if self.step == Step::Init {
            return None;
        }
        let best = &self.simplex[0];
        let f_spread = self.values.iter().map(|v| (v - self.values[0]).abs()).fold(0.0, f64::max);
        let diameter =
            self.simplex[1..].iter().flat_map(|v| v.iter().zip(best).map(|(a, b)| (a - b).abs())).fold(0.0, f64::max);
        if f_spread <= stop.ftol && diameter <= stop.xtol {
            return Some(Termination::FunctionTolerance);
        }
        // Vertices a few ulps apart: reflections can no longer move the simplex.
        let scale = best.iter().fold(1.0_f64, |m, x| m.max(x.abs()));
        (diameter <= 4.0 * f64::EPSILON * scale).then_some(Termination::ParameterTolerance)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::math;
    use crate::optimise::test_functions::{evaluator, rosenbrock, sphere};
    use crate::optimise::{Silent, minimise};
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn run(
        x0: Vec<f64>,
        options: NelderMeadOptions,
        stop: &Stopping,
        f: fn(&[f64]) -> f64,
    ) -> crate::optimise::OptimResult {
        let bounds = Bounds::unbounded(x0.len());
        let mut nm = NelderMead::new(x0, bounds, options).unwrap();
        minimise(&mut nm, &mut evaluator(f), stop, &mut Silent, false)
    }

    fn tight() -> Stopping {
        Stopping { ftol: 1e-14, xtol: 1e-10, max_evaluations: Some(200_000), ..Stopping::default() }
    }

    #[test]
    fn sphere_2d_and_5d() {
        for x0 in [vec![1.0, -2.0], vec![1.0, -2.0, 0.5, 3.0, 0.0]] {
            let r = run(x0, NelderMeadOptions::default(), &tight(), sphere);
            assert!(r.termination.is_convergence(), "{:?}", r.termination);
            assert!(r.value < 1e-12, "{}", r.value);
            assert!(r.x.iter().all(|x| x.abs() < 1e-5), "{:?}", r.x);
        }
    }

    #[test]
    fn rosenbrock_2d() {
        let r = run(vec![-1.2, 1.0], NelderMeadOptions::default(), &tight(), rosenbrock);
        assert!(r.termination.is_convergence(), "{:?}", r.termination);
        assert!(r.value < 1e-12, "{}", r.value);
        assert!(r.x.iter().all(|x| (x - 1.0).abs() < 1e-5), "{:?}", r.x);
    }

    #[test]
    fn rosenbrock_10d_adaptive() {
        // The classic coefficients crawl in 10-D; the adaptive ones solve it in one run.
        let r = run(vec![0.0; 10], NelderMeadOptions::default(), &tight(), rosenbrock);
        assert!(r.termination.is_convergence(), "{:?}", r.termination);
        assert!(r.value < 1e-6, "{}", r.value);
        assert!(r.x.iter().all(|x| (x - 1.0).abs() < 1e-6), "{:?}", r.x);
    }

    #[test]
    fn a_bound_does_not_collapse_the_simplex_onto_it() {
        // From 1.0 the expanding steps overshoot the optimum 0.1 and are projected onto the bound 0, which is
        // better than the other vertex: the simplex must still contract back inside to 0.1, not end at 0.
        let bounds = Bounds { lower: vec![0.0], upper: vec![5.0] };
        let mut nm = NelderMead::new(vec![1.0], bounds, NelderMeadOptions::default()).unwrap();
        let mut eval = |batch: &[Vec<f64>], out: &mut [f64]| {
            for (x, o) in batch.iter().zip(out.iter_mut()) {
                *o = math::powi(x[0] - 0.1, 2);
            }
        };
        let r = minimise(&mut nm, &mut eval, &tight(), &mut Silent, false);
        assert!((r.x[0] - 0.1).abs() < 1e-6, "{:?}", r.x);
    }

    #[test]
    fn candidates_stay_in_bounds() {
        // The minimum (0, 0) of the shifted sphere lies outside the box, so the search presses on
        // the lower face.
        let bounds = Bounds { lower: vec![0.5, -1.0, 0.2], upper: vec![2.0, 1.0, 3.0] };
        let mut nm = NelderMead::new(vec![2.0, 1.0, 3.5], bounds.clone(), NelderMeadOptions::default()).unwrap();
        let mut eval = |batch: &[Vec<f64>], out: &mut [f64]| {
            for (x, o) in batch.iter().zip(out.iter_mut()) {
                assert!(bounds.contains(x), "{x:?} outside the box");
                *o = sphere(x);
            }
        };
        let r = minimise(&mut nm, &mut eval, &tight(), &mut Silent, false);
        assert!((r.x[0] - 0.5).abs() < 1e-6 && r.x[1].abs() < 1e-5 && (r.x[2] - 0.2).abs() < 1e-6, "{:?}", r.x);
    }

    #[test]
    fn failed_evaluations_rank_worst() {
        // The sphere, but evaluation fails (NaN) outside the unit disc around (2, 2): the simplex
        // must crawl to the disc's point nearest the origin, never accepting a failure.
        let mut nm = NelderMead::new(vec![2.5, 2.5], Bounds::unbounded(2), NelderMeadOptions::default()).unwrap();
        let mut failures = 0;
        let mut eval = |batch: &[Vec<f64>], out: &mut [f64]| {
            for (x, o) in batch.iter().zip(out.iter_mut()) {
                let outside = math::powi(x[0] - 2.0, 2) + math::powi(x[1] - 2.0, 2) > 1.0;
                failures += usize::from(outside);
                *o = if outside { f64::NAN } else { sphere(x) };
            }
        };
        let r = minimise(&mut nm, &mut eval, &tight(), &mut Silent, false);
        let constrained_min = math::powi(2.0 * 2f64.sqrt() - 1.0, 2);
        assert!(failures > 0);
        assert!((r.value - constrained_min).abs() < 1e-3, "{} vs {constrained_min}", r.value);
        assert!(nm.values.iter().all(|v| v.is_finite()), "{:?}", nm.values);

        // A simplex whose every vertex fails stops as AllFailed rather than looping.
        let mut nm = NelderMead::new(vec![0.0; 3], Bounds::unbounded(3), NelderMeadOptions::default()).unwrap();
        let mut eval = |_: &[Vec<f64>], out: &mut [f64]| out.fill(f64::NAN);
        let r = minimise(&mut nm, &mut eval, &Stopping::default(), &mut Silent, false);
        assert_eq!(r.termination, Termination::AllFailed);
    }

    #[test]
    fn batches_have_the_documented_sizes() {
        let mut nm = NelderMead::new(vec![1.0; 4], Bounds::unbounded(4), NelderMeadOptions::default()).unwrap();
        assert_eq!(nm.ask().len(), 5);
        let mut sizes = Vec::new();
        let mut values = Vec::new();
        for _ in 0..200 {
            let batch = nm.ask();
            sizes.push(batch.len());
            values.clear();
            values.extend(batch.iter().map(|x| sphere(x)));
            nm.tell(&values);
        }
        assert!(sizes[1..].iter().all(|&s| s == 1 || s == 4), "{sizes:?}");
    }

    #[test]
    fn initial_simplex_respects_bounds_and_scale() {
        let bounds = Bounds { lower: vec![0.0, -1.0, 0.0], upper: vec![1.0, 1.0, 10.0] };
        let mut nm = NelderMead::new(vec![1.0, 0.0, 4.0], bounds.clone(), NelderMeadOptions::default()).unwrap();
        let batch = nm.ask();
        assert_eq!(batch[0], vec![1.0, 0.0, 4.0]);
        assert_eq!(batch[1], vec![0.95, 0.0, 4.0]); // up would leave the box: step down
        assert_eq!(batch[2], vec![1.0, 0.00025, 4.0]); // floor for a zero coordinate
        assert_eq!(batch[3], vec![1.0, 0.0, 4.2]);
        assert!(batch.iter().all(|x| bounds.contains(x)));
    }

    #[test]
    fn options_serde() {
        let o: NelderMeadOptions = serde_json::from_str(r#"{"adaptive": false}"#).unwrap();
        assert_eq!(o, NelderMeadOptions { adaptive: false, ..NelderMeadOptions::default() });
        assert!(serde_json::from_str::<NelderMeadOptions>(r#"{"step": 1}"#).is_err());
    }

    #[test]
    fn options_are_checked_at_their_boundaries_and_refused_without_a_panic() {
        let check = |o: NelderMeadOptions| o.check().map_err(|e| e.to_string());
        let base = NelderMeadOptions::default();
        assert!(
            check(NelderMeadOptions { initial_step: 0.0, min_initial_step: f64::MIN_POSITIVE, ..base.clone() }).is_ok()
        );
        for step in [-1e-9, f64::NAN, f64::INFINITY] {
            assert!(
                check(NelderMeadOptions { initial_step: step, ..base.clone() })
                    .unwrap_err()
                    .starts_with("initial_step")
            );
        }
        for step in [0.0, f64::NAN, f64::INFINITY] {
            let e = check(NelderMeadOptions { min_initial_step: step, ..base.clone() }).unwrap_err();
            assert!(e.starts_with("min_initial_step"), "{e}");
        }
        let refused =
            NelderMead::new(vec![0.0], Bounds::unbounded(1), NelderMeadOptions { initial_step: -1.0, ..base });
        assert_eq!(refused.unwrap_err().key, "initial_step");
    }
}
