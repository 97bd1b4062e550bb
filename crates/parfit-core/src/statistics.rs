//! Summary statistics of a sample (Monte Carlo outputs over paths), computed in a fixed order so they are
//! bit-identical however the sample was produced.
//!
//! Quantiles follow numpy's default (`linear`, Hyndman–Fan type 7): with the sample sorted as
//! `x[0] ≤ … ≤ x[n-1]` and `h = (n − 1)·p`, `q(p) = x[⌊h⌋] + (h − ⌊h⌋)·(x[⌊h⌋+1] − x[⌊h⌋])`. The order
//! statistics are found exactly by selection (`select_nth_unstable`, linear time), not by sorting.

use serde::{Deserialize, Serialize};

/// A statistic of a sample.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Statistic {
    Mean,
    /// Sample standard deviation (divisor n − 1).
    Sd,
    Min,
    Max,
    Median,
    /// The quantile at a probability given in percent (0–100), as written (`q5` is 5).
    Quantile(f64),
}

impl Statistic {
    /// Parse `mean`, `sd`, `min`, `max`, `median` or `qP` / `pP` with P a probability in percent
    /// (`q5`, `q95`, `q99.5`).
    pub fn parse(text: &str) -> Result<Statistic, String> {
        let t = text.trim();
        Ok(match t {
            "mean" => Statistic::Mean,
            "sd" | "std" => Statistic::Sd,
            "min" => Statistic::Min,
            "max" => Statistic::Max,
            "median" => Statistic::Median,
            _ => {
                let pct = t
                    .strip_prefix('q')
                    .or_else(|| t.strip_prefix('p'))
                    .and_then(|p| p.parse::<f64>().ok())
                    .filter(|p| (0.0..=100.0).contains(p))
                    .ok_or_else(|| {
                        format!(
                            "unknown statistic '{t}' (use mean, sd, min, max, median, or a quantile as q followed by \
                             a percentage, e.g. q5 or q99.5)"
                        )
                    })?;
                Statistic::Quantile(pct)
            }
        })
    }

    /// The name [`Statistic::parse`] reads back.
    pub fn name(&self) -> String {
        match self {
            Statistic::Mean => "mean".into(),
            Statistic::Sd => "sd".into(),
            Statistic::Min => "min".into(),
            Statistic::Max => "max".into(),
            Statistic::Median => "median".into(),
            Statistic::Quantile(pct) => format!("q{pct}"),
        }
    }
}

/// The mean, summed in index order. Finite values whose sum overflows are summed again divided by the count
/// (only then, so other means keep their bits).
pub fn mean(x: &[f64]) -> f64 {
    let n = x.len() as f64;
    let sum = x.iter().sum::<f64>();
    if sum.is_infinite() && x.iter().all(|v| v.is_finite()) {
        return x.iter().map(|v| v / n).sum();
    }
    sum / n
}

/// The sample standard deviation (two passes, index order); NaN for fewer than two values. Deviations whose
/// squares overflow (beyond about 1e154) are scaled by the largest first (only then, so other values keep their
/// bits).
pub fn sd(x: &[f64]) -> f64 {
    if x.len() < 2 {
        return f64::NAN;
    }
    let m = mean(x);
    let ss: f64 = x.iter().map(|v| (v - m) * (v - m)).sum();
    let divisor = (x.len() - 1) as f64;
    if ss.is_infinite() {
        let scale = x.iter().map(|v| (v - m).abs()).fold(0.0, f64::max);
        if scale.is_finite() {
            let scaled: f64 = x.iter().map(|v| ((v - m) / scale) * ((v - m) / scale)).sum();
            return scale * (scaled / divisor).sqrt();
        }
    }
    (ss / divisor).sqrt()
}

/// The quantile at `p` (numpy's `linear` method), exact by selection. `scratch` is reordered. NaN for an
/// empty sample; NaNs in the sample order after every number (as in `f64::total_cmp`).
pub fn quantile(scratch: &mut [f64], p: f64) -> f64 {
    let n = scratch.len();
    if n == 0 {
        return f64::NAN;
    }
    let h = (n - 1) as f64 * p.clamp(0.0, 1.0);
    let k = h.floor() as usize;
    let (_, lo, upper) = scratch.select_nth_unstable_by(k, f64::total_cmp);
    let lo = *lo;
    let frac = h - k as f64;
    if k + 1 >= n || frac == 0.0 {
        return lo;
    }
    // The next order statistic is the least of the upper part.
    let hi = upper.iter().copied().min_by(f64::total_cmp).unwrap_or(lo);
    lo + frac * (hi - lo)
}

/// Each of `stats` of the sample `x`, in order. `scratch` is reused for the selections.
pub fn summarise(x: &[f64], stats: &[Statistic], scratch: &mut Vec<f64>) -> Vec<f64> {
    stats
        .iter()
        .map(|s| match s {
            Statistic::Mean => mean(x),
            Statistic::Sd => sd(x),
            Statistic::Min => x.iter().copied().fold(f64::INFINITY, f64::min),
            Statistic::Max => x.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            Statistic::Median | Statistic::Quantile(_) => {
                let p = if let Statistic::Quantile(pct) = s { pct / 100.0 } else { 0.5 };
                scratch.clear();
                scratch.extend_from_slice(x);
                quantile(scratch, p)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn quantiles_match_numpy_linear() {
        // numpy.quantile([3, 1, 4, 1, 5, 9, 2, 6], [0, .1, .5, .9, 1]) = [1, 1, 3.5, 6.9, 9]
        let x = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0];
        let stats: Vec<Statistic> =
            ["min", "q10", "median", "q90", "max", "mean"].iter().map(|s| Statistic::parse(s).unwrap()).collect();
        let got = summarise(&x, &stats, &mut Vec::new());
        let want = [1.0, 1.0, 3.5, 6.9, 9.0, 31.0 / 8.0];
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-12, "{got:?}");
        }
        // numpy.std(x, ddof=1)
        assert!((sd(&x) - 2.748376).abs() < 1e-6);
    }

    #[test]
    fn selection_agrees_with_sorting() {
        let x: Vec<f64> = (0..1001).map(|i| ((i * 7919) % 1009) as f64 * 0.37).collect();
        let mut sorted = x.clone();
        sorted.sort_by(f64::total_cmp);
        for p in [0.0, 0.013, 0.25, 0.5, 0.77, 1.0] {
            let h: f64 = 1000.0 * p;
            let k = h.floor() as usize;
            let want = if k == 1000 { sorted[k] } else { sorted[k] + (h - k as f64) * (sorted[k + 1] - sorted[k]) };
            assert_eq!(quantile(&mut x.clone(), p), want);
        }
    }

    #[test]
    fn means_and_sds_of_huge_values_do_not_overflow() {
        // Sums of squares beyond f64 once gave sd = inf (and sums beyond it mean = inf) for finite samples.
        assert_eq!(mean(&[1e308, 1e308]), 1e308);
        let s = sd(&[1e300, -1e300, 1e300, -1e300]);
        assert!((s / (1e300 * (4.0f64 / 3.0).sqrt()) - 1.0).abs() < 1e-15, "{s}");
        // Ordinary samples take the plain two-pass formula, bit for bit.
        let m = (1.0 + 2.0 + 4.0) / 3.0;
        let plain = (((1.0 - m) * (1.0 - m) + (2.0 - m) * (2.0 - m) + (4.0 - m) * (4.0 - m)) / 2.0f64).sqrt();
        assert_eq!(sd(&[1.0, 2.0, 4.0]), plain);
    }

    #[test]
    fn names_round_trip_and_bad_names_are_explained() {
        for s in ["mean", "sd", "min", "max", "median", "q5", "q99.5"] {
            assert_eq!(Statistic::parse(s).unwrap().name(), s);
        }
        assert!(Statistic::parse("q101").unwrap_err().contains("unknown statistic 'q101'"));
        assert!(Statistic::parse("average").is_err());
    }
}
