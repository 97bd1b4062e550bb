//! Posterior summaries shared by every sampler: weighted mean, standard deviation and quantiles per
//! parameter, the effective sample size of a weighted sample, and equal-weight resampling.

use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::{Deserialize, Serialize};

/// The probabilities of [`ParamSummary::quantiles`]: the median and the central 68 % and 95 %
/// intervals.
pub const QUANTILE_LEVELS: [f64; 5] = [0.025, 0.16, 0.5, 0.84, 0.975];

/// The posterior of one parameter in numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParamSummary {
    pub mean: f64,
    pub sd: f64,
    /// Standard error of `mean` as an estimate of the posterior mean (Monte Carlo error). MCMC: `sd/√ESS`
    /// with the parameter's autocorrelation ESS; nested sampling: see
    /// [`NestedOptions::bootstrap`](super::NestedOptions::bootstrap).
    pub mean_se: f64,
    /// Quantiles at [`QUANTILE_LEVELS`] (2.5, 16, 50, 84, 97.5 %).
    pub quantiles: [f64; 5],
}

/// Summarise a weighted sample. `weights` need not be normalised; `mean_se` is `sd/√ESS` with the
/// Kish effective sample size until a sampler sets something better.
pub fn summarise(points: &[Vec<f64>], weights: &[f64]) -> Vec<ParamSummary> {
    let dim = points.first().map_or(0, Vec::len);
    let ess = kish_ess(weights);
    (0..dim)
        .map(|j| {
            let values: Vec<f64> = points.iter().map(|p| p[j]).collect();
            let (mean, sd) = weighted_mean_sd(&values, weights);
            let quantiles = weighted_quantiles(&values, weights, &QUANTILE_LEVELS);
            ParamSummary { mean, sd, mean_se: sd / ess.sqrt(), quantiles: [0, 1, 2, 3, 4].map(|k| quantiles[k]) }
        })
        .collect()
}

/// Weighted mean and standard deviation (the population form Σw(x−m)²/Σw, the posterior's own spread).
pub fn weighted_mean_sd(values: &[f64], weights: &[f64]) -> (f64, f64) {
    let total: f64 = weights.iter().sum();
    if values.is_empty() || total.is_nan() || total <= 0.0 {
        return (f64::NAN, f64::NAN);
    }
    let mean = values.iter().zip(weights).map(|(x, w)| w * x).sum::<f64>() / total;
    let var = values.iter().zip(weights).map(|(x, w)| w * (x - mean) * (x - mean)).sum::<f64>() / total;
    (mean, var.max(0.0).sqrt())
}

/// Weighted quantiles at probabilities `levels`.
///
/// Each sorted value sits at the midpoint of its weight's share of the cumulative distribution,
/// `(W_{<i} + w_i/2) / W`, and quantiles interpolate linearly between those positions (with equal
/// weights this is Hazen's definition); beyond the first and last positions they are the extreme values.
pub fn weighted_quantiles(values: &[f64], weights: &[f64], levels: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).filter(|&i| weights[i] > 0.0).collect();
    if order.is_empty() {
        return vec![f64::NAN; levels.len()];
    }
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]).then(a.cmp(&b)));
    let total: f64 = order.iter().map(|&i| weights[i]).sum();
    let mut positions = Vec::with_capacity(order.len());
    let mut below = 0.0;
    for &i in &order {
        positions.push((below + 0.5 * weights[i]) / total);
        below += weights[i];
    }
    levels
        .iter()
        .map(|&q| {
            let k = positions.partition_point(|&p| p < q);
            if k == 0 {
                values[order[0]]
            } else if k == order.len() {
                values[order[k - 1]]
            } else {
                let (p0, p1) = (positions[k - 1], positions[k]);
                let (v0, v1) = (values[order[k - 1]], values[order[k]]);
                let t = if p1 > p0 { (q - p0) / (p1 - p0) } else { 0.0 };
                v0 + t * (v1 - v0)
            }
        })
        .collect()
}

/// Kish's effective sample size `(Σw)²/Σw²` of a weighted sample.
pub fn kish_ess(weights: &[f64]) -> f64 {
    let sum: f64 = weights.iter().sum();
    let sum_sq: f64 = weights.iter().map(|w| w * w).sum();
    if sum_sq > 0.0 { sum * sum / sum_sq } else { 0.0 }
}

/// Draw `n` equally weighted points from a weighted sample by systematic resampling (one uniform
/// offset, `n` evenly spaced positions on the cumulative weights): every point appears `⌊n w_i⌋` or
/// `⌈n w_i⌉` times, the least noisy way to turn weights into copies. Deterministic for a seed.
pub fn resample_equal(points: &[Vec<f64>], weights: &[f64], n: usize, seed: u64) -> Vec<Vec<f64>> {
    let total: f64 = weights.iter().sum();
    if points.is_empty() || total.is_nan() || total <= 0.0 {
        return Vec::new();
    }
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let offset: f64 = rng.random();
    let mut out = Vec::with_capacity(n);
    let mut cumulative = 0.0;
    let mut i = 0;
    for k in 0..n {
        let position = (k as f64 + offset) / n as f64 * total;
        while i + 1 < points.len() && cumulative + weights[i] <= position {
            cumulative += weights[i];
            i += 1;
        }
        out.push(points[i].clone());
    }
    // Shuffle so that consecutive draws are not sorted by the input order (Fisher–Yates).
    for k in (1..out.len()).rev() {
        let j = rng.random_range(0..=k);
        out.swap(k, j);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn weighted_moments_and_quantiles() {
        let values = [1.0, 2.0, 3.0, 4.0];
        let (mean, sd) = weighted_mean_sd(&values, &[1.0; 4]);
        assert_eq!(mean, 2.5);
        assert!((sd - 1.25f64.sqrt()).abs() < 1e-15);
        // Doubling a weight is the same as repeating the value.
        let (m1, s1) = weighted_mean_sd(&[1.0, 2.0], &[2.0, 1.0]);
        let (m2, s2) = weighted_mean_sd(&[1.0, 1.0, 2.0], &[1.0; 3]);
        assert!((m1 - m2).abs() < 1e-15 && (s1 - s2).abs() < 1e-15);

        // Hazen positions of 4 equal weights: 1/8, 3/8, 5/8, 7/8.
        let q = weighted_quantiles(&values, &[1.0; 4], &[0.0, 0.125, 0.5, 0.75, 1.0]);
        assert_eq!(q, vec![1.0, 1.0, 2.5, 3.5, 4.0]);
        // Zero weights are ignored; order of input does not matter.
        let q = weighted_quantiles(&[4.0, 9.0, 3.0, 1.0, 2.0], &[1.0, 0.0, 1.0, 1.0, 1.0], &[0.5]);
        assert_eq!(q, vec![2.5]);
    }

    #[test]
    fn summaries_of_a_large_normal_sample() {
        // Deterministic normal quantiles at equal spacing: a "perfect" N(2, 3²) sample.
        let n = 20_000;
        let points: Vec<Vec<f64>> = (0..n)
            .map(|i| vec![2.0 + 3.0 * super::super::prior::normal_quantile((i as f64 + 0.5) / n as f64)])
            .collect();
        let s = &summarise(&points, &vec![1.0; n])[0];
        assert!((s.mean - 2.0).abs() < 1e-12);
        assert!((s.sd - 3.0).abs() < 2e-3);
        let expected = [-1.959_964, -0.994_458, 0.0, 0.994_458, 1.959_964].map(|z| 2.0 + 3.0 * z);
        for (q, e) in s.quantiles.iter().zip(expected) {
            assert!((q - e).abs() < 1e-3, "{q} vs {e}");
        }
        assert!((s.mean_se - s.sd / (n as f64).sqrt()).abs() < 1e-15);
    }

    #[test]
    fn kish_ess_of_equal_and_unequal_weights() {
        assert_eq!(kish_ess(&[0.5; 10]), 10.0);
        assert!((kish_ess(&[1.0, 0.0, 0.0]) - 1.0).abs() < 1e-15);
        assert_eq!(kish_ess(&[]), 0.0);
    }

    #[test]
    fn systematic_resampling_keeps_proportions() {
        let points: Vec<Vec<f64>> = (0..4).map(|i| vec![i as f64]).collect();
        let weights = [0.1, 0.2, 0.3, 0.4];
        let out = resample_equal(&points, &weights, 1000, 7);
        assert_eq!(out.len(), 1000);
        for (i, w) in weights.iter().enumerate() {
            let count = out.iter().filter(|p| p[0] == i as f64).count() as f64;
            assert!((count - 1000.0 * w).abs() <= 1.0, "point {i}: {count}");
        }
        assert_eq!(out, resample_equal(&points, &weights, 1000, 7));
    }
}
