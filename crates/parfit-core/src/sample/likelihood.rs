//! The Gaussian likelihood of a model's residuals, with the noise level known or sampled.

use crate::math;
use serde::{Deserialize, Serialize};

use super::LogLikelihoodEvaluator;
use crate::optimise::BatchEvaluator;

/// ln √(2π).
const LN_SQRT_2PI: f64 = 0.918_938_533_204_672_8;

/// The noise standard deviation of a [`GaussianLikelihood`]. TOML: `sigma = 0.3` or `sigma = "fitted"`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum NoiseSigma {
    /// A known value.
    Known(f64),
    /// Sampled as one more parameter: the last coordinate of every point (give it a prior, e.g.
    /// log-normal or uniform on a positive range).
    Fitted(Fitted),
}

/// The word `"fitted"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fitted {
    Fitted,
}

/// `ln L = −SSE/(2σ²) − n ln σ − n ln √(2π)` for `n` independent observations with Gaussian noise,
/// from an evaluator of the sum of squared residuals (e.g. an [`Objective`](crate::Objective) with the
/// `sse` cost). A failed evaluation (`+inf` or NaN) or `σ ≤ 0` gives `-inf`.
pub struct GaussianLikelihood<E> {
    /// Evaluates the sum of squared residuals of the model parameters.
    pub sse: E,
    /// Number of observed values in the sum.
    pub observations: usize,
    pub sigma: NoiseSigma,
    trimmed: Vec<Vec<f64>>,
}

impl<E: BatchEvaluator> GaussianLikelihood<E> {
    pub fn new(sse: E, observations: usize, sigma: NoiseSigma) -> Self {
        GaussianLikelihood { sse, observations, sigma, trimmed: Vec::new() }
    }

    fn log_likelihood(&self, sse: f64, sigma: f64) -> f64 {
        if !(sse.is_finite() && sigma > 0.0 && sigma.is_finite()) {
            return f64::NEG_INFINITY;
        }
        let n = self.observations as f64;
        -0.5 * sse / (sigma * sigma) - n * (math::ln(sigma) + LN_SQRT_2PI)
    }
}

impl<E: BatchEvaluator> LogLikelihoodEvaluator for GaussianLikelihood<E> {
    fn log_likelihoods(&mut self, batch: &[Vec<f64>], out: &mut [f64]) {
        match self.sigma {
            NoiseSigma::Known(sigma) => {
                self.sse.evaluate(batch, out);
                for v in out.iter_mut() {
                    *v = self.log_likelihood(*v, sigma);
                }
            }
            NoiseSigma::Fitted(_) => {
                // The model sees its own parameters only; σ stays behind.
                self.trimmed.resize_with(batch.len(), Vec::new);
                for (t, x) in self.trimmed.iter_mut().zip(batch) {
                    t.clear();
                    t.extend_from_slice(&x[..x.len().saturating_sub(1)]);
                }
                self.sse.evaluate(&self.trimmed, out);
                for (v, x) in out.iter_mut().zip(batch) {
                    *v = self.log_likelihood(*v, x.last().copied().unwrap_or(f64::NAN));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// SSE of residuals (1, −2) scaled by the first parameter: 5 a².
    fn sse(batch: &[Vec<f64>], out: &mut [f64]) {
        for (x, o) in batch.iter().zip(out.iter_mut()) {
            assert_eq!(x.len(), 1, "the model must not see sigma");
            *o = if x[0] < 0.0 { f64::INFINITY } else { 5.0 * x[0] * x[0] };
        }
    }

    #[test]
    fn known_and_fitted_sigma() {
        let expected = |a: f64, s: f64| {
            let r: f64 = [a, -2.0 * a].iter().map(|r| -0.5 * math::powi(r / s, 2) - math::ln(s) - LN_SQRT_2PI).sum();
            r
        };
        let mut known = GaussianLikelihood::new(sse, 2, NoiseSigma::Known(0.5));
        let mut out = [0.0; 2];
        known.log_likelihoods(&[vec![1.0], vec![-1.0]], &mut out);
        assert!((out[0] - expected(1.0, 0.5)).abs() < 1e-14);
        assert_eq!(out[1], f64::NEG_INFINITY);

        let mut fitted = GaussianLikelihood::new(sse, 2, NoiseSigma::Fitted(Fitted::Fitted));
        let mut out = [0.0; 3];
        fitted.log_likelihoods(&[vec![1.0, 2.0], vec![0.3, 0.7], vec![1.0, -1.0]], &mut out);
        assert!((out[0] - expected(1.0, 2.0)).abs() < 1e-14);
        assert!((out[1] - expected(0.3, 0.7)).abs() < 1e-14);
        assert_eq!(out[2], f64::NEG_INFINITY);
    }

    #[test]
    fn sigma_reads_as_a_number_or_fitted() {
        assert_eq!(serde_json::from_str::<NoiseSigma>("0.3").unwrap(), NoiseSigma::Known(0.3));
        assert_eq!(serde_json::from_str::<NoiseSigma>(r#""fitted""#).unwrap(), NoiseSigma::Fitted(Fitted::Fitted));
        assert!(serde_json::from_str::<NoiseSigma>(r#""fit""#).is_err());
    }
}
