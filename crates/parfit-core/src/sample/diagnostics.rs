//! Convergence diagnostics of several chains: rank-normalised split-R̂ and the effective sample size,
//! after A. Vehtari, A. Gelman, D. Simpson, B. Carpenter & P.-C. Bürkner, "Rank-normalization, folding,
//! and localization: an improved R̂ for assessing convergence of MCMC", Bayesian Analysis 16 (2021),
//! with Geyer's initial monotone sequence for the autocorrelation sum.
//!
//! Every function takes `chains[m][i]`: draw `i` of chain `m`, all chains of one length.

use super::prior::normal_quantile;
use crate::math;

/// Rank-normalised split-R̂: the larger of the bulk R̂ (split chains, rank-normalised draws) and the
/// tail R̂ (the same for |draw − median|). Near 1 when the chains agree; NaN with fewer than 4 draws.
pub fn split_rhat(chains: &[Vec<f64>]) -> f64 {
    let split = split_chains(chains);
    if split.is_empty() || split[0].len() < 2 {
        return f64::NAN;
    }
    let bulk = basic_rhat(&rank_normalise(&split));
    let median = median(split.iter().flatten().copied().collect());
    let folded: Vec<Vec<f64>> = split.iter().map(|c| c.iter().map(|x| (x - median).abs()).collect()).collect();
    let tail = basic_rhat(&rank_normalise(&folded));
    if bulk.is_nan() || tail.is_nan() { f64::NAN } else { bulk.max(tail) }
}

/// Effective sample size of the mean: split chains, Geyer's initial monotone sequence over the
/// multi-chain autocorrelation (Vehtari et al. 2021, eq. 10–11). `sd/√ess` is the Monte Carlo
/// standard error of the mean.
pub fn ess(chains: &[Vec<f64>]) -> f64 {
    geyer_ess(&split_chains(chains))
}

/// Bulk effective sample size: [`ess`] of the rank-normalised split chains, robust to heavy tails.
pub fn ess_bulk(chains: &[Vec<f64>]) -> f64 {
    geyer_ess(&rank_normalise(&split_chains(chains)))
}

/// Each chain cut into its first and second half (the middle draw dropped for odd lengths), so that
/// drift within a chain shows up as disagreement between chains.
fn split_chains(chains: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let half = chains.first().map_or(0, |c| c.len() / 2);
    if half == 0 {
        return Vec::new();
    }
    chains.iter().flat_map(|c| [c[..half].to_vec(), c[c.len() - half..].to_vec()]).collect()
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        values[n / 2]
    } else {
        0.5 * (values[n / 2 - 1] + values[n / 2])
    }
}

/// Replace every draw by `Φ⁻¹((r − 3/8)/(S + 1/4))`, `r` its rank among all `S` draws (ties averaged).
fn rank_normalise(chains: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let n = chains.first().map_or(0, Vec::len);
    let all: Vec<f64> = chains.iter().flatten().copied().collect();
    let s = all.len();
    let mut order: Vec<usize> = (0..s).collect();
    order.sort_by(|&a, &b| all[a].total_cmp(&all[b]));
    let mut z = vec![0.0; s];
    let mut start = 0;
    while start < s {
        let mut end = start + 1;
        while end < s && all[order[end]] == all[order[start]] {
            end += 1;
        }
        // 1-based ranks start+1 ..= end share their average.
        let rank = 0.5 * ((start + 1) + end) as f64;
        let value = normal_quantile((rank - 0.375) / (s as f64 + 0.25));
        for &k in &order[start..end] {
            z[k] = value;
        }
        start = end;
    }
    z.chunks(n.max(1)).map(<[f64]>::to_vec).collect()
}

/// Gelman–Rubin R̂ of equal-length chains: √(var⁺/W).
fn basic_rhat(chains: &[Vec<f64>]) -> f64 {
    let m = chains.len();
    let n = chains.first().map_or(0, Vec::len);
    if m < 2 || n < 2 {
        return f64::NAN;
    }
    let nf = n as f64;
    let means: Vec<f64> = chains.iter().map(|c| c.iter().sum::<f64>() / nf).collect();
    let grand = means.iter().sum::<f64>() / m as f64;
    let b_over_n = means.iter().map(|x| (x - grand) * (x - grand)).sum::<f64>() / (m - 1) as f64;
    let w = chains
        .iter()
        .zip(&means)
        .map(|(c, mu)| c.iter().map(|x| (x - mu) * (x - mu)).sum::<f64>() / (nf - 1.0))
        .sum::<f64>()
        / m as f64;
    if w <= 0.0 {
        // Constant chains: they agree if their values do.
        return if b_over_n == 0.0 { 1.0 } else { f64::INFINITY };
    }
    ((nf - 1.0) / nf + b_over_n / w).sqrt()
}

fn geyer_ess(chains: &[Vec<f64>]) -> f64 {
    let m = chains.len();
    let n = chains.first().map_or(0, Vec::len);
    if m == 0 || n < 4 {
        return f64::NAN;
    }
    let nf = n as f64;
    let acov: Vec<Vec<f64>> = chains.iter().map(|c| autocovariance(c)).collect();
    let means: Vec<f64> = chains.iter().map(|c| c.iter().sum::<f64>() / nf).collect();
    let mean_var = acov.iter().map(|a| a[0]).sum::<f64>() / m as f64 * nf / (nf - 1.0);
    let mut var_plus = mean_var * (nf - 1.0) / nf;
    if m > 1 {
        let grand = means.iter().sum::<f64>() / m as f64;
        var_plus += means.iter().map(|x| (x - grand) * (x - grand)).sum::<f64>() / (m - 1) as f64;
    }
    if var_plus.is_nan() || var_plus <= 0.0 {
        return f64::NAN;
    }
    let rho = |t: usize| 1.0 - (mean_var - acov.iter().map(|a| a[t]).sum::<f64>() / m as f64) / var_plus;

    // Sums of adjacent pairs Γ_k = ρ_2k + ρ_2k+1 are positive and decreasing for a reversible chain:
    // stop at the first non-positive one and enforce monotonicity on the rest (Geyer 1992).
    let mut tau = -1.0;
    let mut previous = f64::INFINITY;
    let mut t = 0;
    while t + 1 < n {
        let pair = rho(t) + rho(t + 1);
        if pair <= 0.0 {
            break;
        }
        let pair = pair.min(previous);
        tau += 2.0 * pair;
        previous = pair;
        t += 2;
    }
    let total = (m * n) as f64;
    // Antithetic chains can have τ < 1; Stan caps the ESS at S·log10(S).
    (total / tau.max(1.0 / math::log10(total))).min(total * math::log10(total))
}

/// Biased autocovariance `(1/n) Σ (x_i − x̄)(x_{i+t} − x̄)` at every lag, by FFT.
fn autocovariance(x: &[f64]) -> Vec<f64> {
    let n = x.len();
    let mean = x.iter().sum::<f64>() / n as f64;
    let size = (2 * n).next_power_of_two();
    let mut re: Vec<f64> = x.iter().map(|v| v - mean).chain(std::iter::repeat(0.0)).take(size).collect();
    let mut im = vec![0.0; size];
    fft(&mut re, &mut im, false);
    for (r, i) in re.iter_mut().zip(im.iter_mut()) {
        *r = *r * *r + *i * *i;
        *i = 0.0;
    }
    fft(&mut re, &mut im, true);
    re.truncate(n);
    for v in &mut re {
        *v /= (size * n) as f64;
    }
    re
}

/// In-place iterative radix-2 FFT (length a power of two); `inverse` flips the sign of the exponent
/// and leaves the 1/N scaling to the caller.
fn fft(re: &mut [f64], im: &mut [f64], inverse: bool) {
    let n = re.len();
    let mut j = 0;
    for i in 1..n {
        let mut bit = n >> 1;
        while j & bit != 0 {
            j ^= bit;
            bit >>= 1;
        }
        j |= bit;
        if i < j {
            re.swap(i, j);
            im.swap(i, j);
        }
    }
    let sign = if inverse { 1.0 } else { -1.0 };
    let mut len = 2;
    while len <= n {
        let angle = sign * 2.0 * std::f64::consts::PI / len as f64;
        for start in (0..n).step_by(len) {
            for k in 0..len / 2 {
                // Twiddles from the angle directly, not by repeated multiplication, to keep rounding flat.
                let (s, c) = math::sin_cos(angle * k as f64);
                let (a, b) = (start + k, start + k + len / 2);
                let (tr, ti) = (re[b] * c - im[b] * s, re[b] * s + im[b] * c);
                re[b] = re[a] - tr;
                im[b] = im[a] - ti;
                re[a] += tr;
                im[a] += ti;
            }
        }
        len <<= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ziggurat::standard_normal;
    use rand::SeedableRng;
    use rand_xoshiro::Xoshiro256PlusPlus;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn ar1(rng: &mut Xoshiro256PlusPlus, n: usize, phi: f64, offset: f64) -> Vec<f64> {
        let mut x = 0.0;
        let scale = (1.0 - phi * phi).sqrt();
        (0..n)
            .map(|_| {
                let z: f64 = standard_normal(rng);
                x = phi * x + scale * z;
                x + offset
            })
            .collect()
    }

    #[test]
    fn autocovariance_matches_the_direct_sum() {
        let x = [1.0, 3.0, -2.0, 0.5, 4.0, -1.0, 2.0];
        let mean = x.iter().sum::<f64>() / 7.0;
        let a = autocovariance(&x);
        for (t, at) in a.iter().enumerate() {
            let direct = (0..7 - t).map(|i| (x[i] - mean) * (x[i + t] - mean)).sum::<f64>() / 7.0;
            assert!((at - direct).abs() < 1e-12, "lag {t}");
        }
    }

    #[test]
    fn iid_chains_have_rhat_one_and_full_ess() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
        let chains: Vec<Vec<f64>> = (0..4).map(|_| ar1(&mut rng, 1000, 0.0, 0.0)).collect();
        let r = split_rhat(&chains);
        assert!(r < 1.01, "R-hat {r}");
        let e = ess(&chains);
        assert!((3000.0..5500.0).contains(&e), "ESS {e}");
        let b = ess_bulk(&chains);
        assert!((3000.0..5500.0).contains(&b), "bulk ESS {b}");
    }

    #[test]
    fn autocorrelated_chains_have_the_ar1_ess() {
        // AR(1) with φ = 0.8: τ = (1 + φ)/(1 − φ) = 9.
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(2);
        let chains: Vec<Vec<f64>> = (0..8).map(|_| ar1(&mut rng, 5000, 0.8, 0.0)).collect();
        let e = ess(&chains);
        let expected = 40_000.0 / 9.0;
        assert!((e / expected - 1.0).abs() < 0.15, "ESS {e}, expected ≈ {expected}");
    }

    #[test]
    fn disagreeing_chains_have_large_rhat() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
        let mut chains: Vec<Vec<f64>> = (0..3).map(|_| ar1(&mut rng, 500, 0.5, 0.0)).collect();
        chains.push(ar1(&mut rng, 500, 0.5, 1.0));
        assert!(split_rhat(&chains) > 1.05);
        // A chain whose spread differs but not its location shows in the tail R-hat.
        let mut wide: Vec<Vec<f64>> = (0..3).map(|_| ar1(&mut rng, 500, 0.0, 0.0)).collect();
        wide.push(ar1(&mut rng, 500, 0.0, 0.0).iter().map(|x| 4.0 * x).collect());
        assert!(split_rhat(&wide) > 1.05);
    }
}
