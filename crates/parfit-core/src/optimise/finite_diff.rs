//! Finite-difference derivatives planned as one batch: every point a gradient or Jacobian needs
//! is asked at once, so the driver evaluates them in parallel. Stencils stay inside the bounds.

use crate::check::{OptionError, require};
use crate::math;
use serde::{Deserialize, Serialize};

use super::Bounds;

/// How derivatives are approximated when the evaluator supplies none.
///
/// In TOML `differences = "forward"` or `"central"`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Differences {
    /// `(f(x + h) − f(x)) / h`: n extra evaluations per derivative, error O(h), h ≈ √ε·max(|x|, 1).
    #[default]
    Forward,
    /// `(f(x + h) − f(x − h)) / 2h`: 2n extra evaluations, error O(h²), h ≈ ε^(1/3)·max(|x|, 1).
    /// Next to a bound it switches to the one-sided second-order formula
    /// `(−3 f(x) + 4 f(x + h) − f(x + 2h)) / 2h` on the feasible side.
    Central,
}

/// Check a configured relative step (`None`: the scheme's default). Above 1 the step moves farther than the value
/// itself and the difference no longer approximates a derivative.
pub(crate) fn check_step(step: Option<f64>) -> Result<(), OptionError> {
    match step {
        Some(h) => require(h > 0.0 && h <= 1.0, "diff_step", "in (0, 1]", h),
        None => Ok(()),
    }
}

impl Differences {
    /// The default relative step of the scheme (balancing truncation and rounding error).
    fn default_step(self) -> f64 {
        match self {
            Differences::Forward => f64::EPSILON.sqrt(),
            Differences::Central => math::cbrt(f64::EPSILON),
        }
    }
}

/// The points and formula for one coordinate's derivative; `h` is signed.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Stencil {
    /// `(f(x + h) − f(x)) / h`; points `x + h`.
    Forward(f64),
    /// `(f(x + h) − f(x − h)) / 2h`; points `x + h`, `x − h`.
    Central(f64),
    /// `(−3 f(x) + 4 f(x + h) − f(x + 2h)) / 2h`; points `x + h`, `x + 2h`.
    OneSided(f64),
    /// The bounds leave no room: the derivative is taken as zero.
    Fixed,
}

impl Stencil {
    fn len(self) -> usize {
        match self {
            Stencil::Forward(_) => 1,
            Stencil::Central(_) | Stencil::OneSided(_) => 2,
            Stencil::Fixed => 0,
        }
    }
}

/// A finite-difference plan around one point: which points to evaluate for every coordinate.
#[derive(Debug, Clone)]
pub(crate) struct FiniteDifferences {
    scheme: Differences,
    relative_step: f64,
    stencils: Vec<Stencil>,
    /// Index of coordinate j's first point within the planned points.
    offsets: Vec<usize>,
}

impl FiniteDifferences {
    /// A plan for `n` coordinates; `relative_step` overrides the scheme's default step.
    pub(crate) fn new(n: usize, scheme: Differences, relative_step: Option<f64>) -> Self {
        let relative_step = relative_step.unwrap_or_else(|| scheme.default_step());
        debug_assert!(check_step(Some(relative_step)).is_ok(), "the options' check passes the step");
        FiniteDifferences { scheme, relative_step, stencils: vec![Stencil::Fixed; n], offsets: vec![0; n] }
    }

    /// The relative move below which the differenced gradient cannot tell directions apart: its
    /// error is O(h) for forward and O(h²) for central differences.
    pub(crate) fn resolution(&self) -> f64 {
        match self.scheme {
            Differences::Forward => self.relative_step,
            Differences::Central => self.relative_step * self.relative_step,
        }
    }

    /// Plan the stencils around `x` and write their points into `points[start..]`, growing it as
    /// needed (its vectors are reused). Returns the number of points written.
    pub(crate) fn plan(&mut self, x: &[f64], bounds: &Bounds, points: &mut Vec<Vec<f64>>, start: usize) -> usize {
        let mut k = start;
        for j in 0..x.len() {
            let (lo, hi) = (bounds.lower[j], bounds.upper[j]);
            let h = self.relative_step * x[j].abs().max(1.0);
            // Steps that are exact in floating point: (x + h) − x == h.
            let exact = |h: f64| (x[j] + h) - x[j];
            let fits = |h: f64| lo <= x[j] + h && x[j] + h <= hi;
            let forward = || {
                if fits(h) {
                    Stencil::Forward(exact(h))
                } else if fits(-h) {
                    Stencil::Forward(exact(-h))
                } else {
                    // A box narrower than the step: use the larger side, if there is one.
                    let (up, down) = (hi - x[j], x[j] - lo);
                    let room = if up >= down { exact(up) } else { exact(-down) };
                    if room != 0.0 { Stencil::Forward(room) } else { Stencil::Fixed }
                }
            };
            let stencil = match self.scheme {
                Differences::Forward => forward(),
                Differences::Central if fits(h) && fits(-h) => Stencil::Central(exact(h)),
                Differences::Central if fits(2.0 * h) => Stencil::OneSided(exact(h)),
                Differences::Central if fits(-2.0 * h) => Stencil::OneSided(exact(-h)),
                Differences::Central => forward(),
            };
            self.stencils[j] = stencil;
            self.offsets[j] = k - start;
            let steps: [f64; 2] = match stencil {
                Stencil::Forward(h) => [h, 0.0],
                Stencil::Central(h) => [h, -h],
                Stencil::OneSided(h) => [h, 2.0 * h],
                Stencil::Fixed => [0.0, 0.0],
            };
            for &step in &steps[..stencil.len()] {
                if points.len() <= k {
                    points.push(x.to_vec());
                }
                let p = &mut points[k];
                p.clear();
                p.extend_from_slice(x);
                // Clamp only against rounding: the stencil was chosen to fit.
                p[j] = (x[j] + step).clamp(lo, hi);
                k += 1;
            }
        }
        k - start
    }

    /// Coordinate j's derivative from `f0 = f(x)` and `value(k)`, the value at the k-th planned
    /// point (counted from `start`). Non-finite when a value it needs is.
    pub(crate) fn derivative(&self, j: usize, f0: f64, value: impl Fn(usize) -> f64) -> f64 {
        let k = self.offsets[j];
        match self.stencils[j] {
            Stencil::Forward(h) => (value(k) - f0) / h,
            Stencil::Central(h) => (value(k) - value(k + 1)) / (2.0 * h),
            Stencil::OneSided(h) => (-3.0 * f0 + 4.0 * value(k) - value(k + 1)) / (2.0 * h),
            Stencil::Fixed => 0.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn gradient(scheme: Differences, x: &[f64], bounds: &Bounds, f: impl Fn(&[f64]) -> f64) -> (Vec<f64>, usize) {
        let mut fd = FiniteDifferences::new(x.len(), scheme, None);
        let mut points = vec![vec![9.0; 1]];
        let count = fd.plan(x, bounds, &mut points, 1);
        assert!(points[1..=count].iter().all(|p| bounds.contains(p)), "{points:?}");
        let values: Vec<f64> = points[1..=count].iter().map(|p| f(p)).collect();
        let f0 = f(x);
        ((0..x.len()).map(|j| fd.derivative(j, f0, |k| values[k])).collect(), count)
    }

    #[test]
    fn derivatives_are_accurate_and_stencils_stay_in_the_box() {
        let f = |x: &[f64]| math::powi(x[0], 3) + math::sin(2.0 * x[1]) * x[2] + x[3];
        let exact = |x: &[f64]| [3.0 * x[0] * x[0], 2.0 * math::cos(2.0 * x[1]) * x[2], math::sin(2.0 * x[1]), 1.0];
        // Coordinate 0 at its upper bound, 1 at its lower, 2 free, 3 pinned (lower == upper).
        let bounds = Bounds { lower: vec![-1.0, 0.3, -5.0, 2.0], upper: vec![1.5, 1.0, 5.0, 2.0] };
        let x = [1.5, 0.3, 0.7, 2.0];
        let want = exact(&x);
        let (forward, n_forward) = gradient(Differences::Forward, &x, &bounds, f);
        let (central, n_central) = gradient(Differences::Central, &x, &bounds, f);
        assert_eq!((n_forward, n_central), (3, 6));
        for j in 0..3 {
            assert!((forward[j] - want[j]).abs() < 1e-6 * want[j].abs().max(1.0), "{forward:?} vs {want:?}");
            assert!((central[j] - want[j]).abs() < 1e-9 * want[j].abs().max(1.0), "{central:?} vs {want:?}");
        }
        assert_eq!((forward[3], central[3]), (0.0, 0.0));
        // A box narrower than the step uses what room there is.
        let tiny = Bounds { lower: vec![1.0], upper: vec![1.0 + 1e-12] };
        let (g, _) = gradient(Differences::Forward, &[1.0], &tiny, |x| 3.0 * x[0]);
        assert!((g[0] - 3.0).abs() < 1e-3, "{g:?}");
    }
}
