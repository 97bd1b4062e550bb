//! Costs: how far predictions are from observations, as one number.

use crate::math;
use serde::{Deserialize, Serialize};

/// A cost over the residuals `predicted − observed` of every observed (non-NaN) point.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Cost {
    /// Sum of squared residuals.
    Sse,
    /// Root mean squared residual.
    Rmse,
    /// Negative log-likelihood of independent Gaussian noise with known standard deviation `sigma`:
    /// `Σ r²/(2σ²) + n·ln σ + n/2·ln 2π`.
    GaussianNll { sigma: f64 },
}

impl Cost {
    /// The cost from the sum of squared residuals and the number of observed points.
    pub fn from_sum_of_squares(self, sum_sq: f64, n: usize) -> f64 {
        let n_f = n as f64;
        match self {
            Cost::Sse => sum_sq,
            Cost::Rmse if n == 0 => 0.0,
            Cost::Rmse => (sum_sq / n_f).sqrt(),
            Cost::GaussianNll { sigma } => {
                0.5 * sum_sq / (sigma * sigma)
                    + n_f * math::ln(sigma)
                    + 0.5 * n_f * math::ln(2.0 * std::f64::consts::PI)
            }
        }
    }

    /// Check the cost's own settings.
    pub fn validate(self) -> Result<(), String> {
        match self {
            Cost::GaussianNll { sigma } if !(sigma > 0.0 && sigma.is_finite()) => {
                Err(format!("the Gaussian likelihood needs a positive, finite sigma (got {sigma})"))
            }
            _ => Ok(()),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Cost::Sse => "sse",
            Cost::Rmse => "rmse",
            Cost::GaussianNll { .. } => "gaussian_nll",
        }
    }
}

/// Sum of squared residuals between `predicted[map[k]]` and `observed[k]` over rows, skipping NaN observations.
///
/// `predicted` is rows × `n_outputs`, `observed` rows × `map.len()`. Summation runs in a fixed order, so the
/// result is reproducible bit for bit.
pub fn sum_of_squares(predicted: &[f64], n_outputs: usize, observed: &[f64], map: &[usize]) -> (f64, usize) {
    let mut sum = 0.0;
    let mut n = 0;
    if n_outputs == 0 || map.is_empty() {
        return (sum, n);
    }
    for (pred_row, obs_row) in predicted.chunks_exact(n_outputs).zip(observed.chunks_exact(map.len())) {
        for (&j, &obs) in map.iter().zip(obs_row) {
            if obs.is_nan() {
                continue;
            }
            let r = pred_row[j] - obs;
            sum += r * r;
            n += 1;
        }
    }
    (sum, n)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn costs_agree_with_their_definitions() {
        // residuals 1, -2 (and one missing observation)
        let predicted = [1.0, 10.0, 3.0, 20.0, 5.0, 30.0];
        let observed = [0.0, 5.0, f64::NAN];
        let (ss, n) = sum_of_squares(&predicted, 2, &observed, &[0]);
        assert_eq!((ss, n), (5.0, 2));
        assert_eq!(Cost::Sse.from_sum_of_squares(ss, n), 5.0);
        assert_eq!(Cost::Rmse.from_sum_of_squares(ss, n), 2.5f64.sqrt());
        let nll = Cost::GaussianNll { sigma: 2.0 }.from_sum_of_squares(ss, n);
        let expected: f64 = [1.0f64, -2.0]
            .iter()
            .map(|r| -(-0.5 * math::powi(r / 2.0, 2) - math::ln(2.0f64) - 0.5 * math::ln(2.0 * std::f64::consts::PI)))
            .sum();
        assert!((nll - expected).abs() < 1e-12, "{nll} vs {expected}");
    }

    #[test]
    fn bad_sigma_is_refused() {
        assert!(Cost::GaussianNll { sigma: 0.0 }.validate().is_err());
        assert!(Cost::GaussianNll { sigma: 0.3 }.validate().is_ok());
    }
}
