//! Standard test functions for the optimiser unit tests.

use crate::math;
/// `Σ x_i²`, minimum 0 at the origin.
pub fn sphere(x: &[f64]) -> f64 {
    x.iter().map(|x| x * x).sum()
}

/// `Σ 100 (x_{i+1} − x_i²)² + (1 − x_i)²`, minimum 0 at all ones.
pub fn rosenbrock(x: &[f64]) -> f64 {
    x.windows(2).map(|w| 100.0 * math::powi(w[1] - w[0] * w[0], 2) + math::powi(1.0 - w[0], 2)).sum()
}

/// Axis-parallel ellipsoid `Σ 10^(6 i/(n−1)) x_i²` with condition number 1e6, minimum 0 at the origin.
pub fn ellipsoid(x: &[f64]) -> f64 {
    let n = x.len();
    let denom = (n.max(2) - 1) as f64;
    x.iter().enumerate().map(|(i, x)| math::powf(10f64, 6.0 * i as f64 / denom) * x * x).sum()
}

/// `10 n + Σ x_i² − 10 cos(2π x_i)`: highly multimodal, minimum 0 at the origin.
pub fn rastrigin(x: &[f64]) -> f64 {
    10.0 * x.len() as f64 + x.iter().map(|x| x * x - 10.0 * math::cos(2.0 * std::f64::consts::PI * x)).sum::<f64>()
}

/// A batch evaluator applying `f` to every candidate.
pub fn evaluator(f: fn(&[f64]) -> f64) -> impl FnMut(&[Vec<f64>], &mut [f64]) {
    move |batch: &[Vec<f64>], out: &mut [f64]| {
        for (x, o) in batch.iter().zip(out.iter_mut()) {
            *o = f(x);
        }
    }
}
