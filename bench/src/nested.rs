//! Nested sampling (against dynesty) on Gaussian likelihoods with analytic evidence.

use std::time::Instant;

use parfit_core::optimise::Silent;
use parfit_core::sample::{DynamicOptions, NestedOptions, NestedSampler, Prior, SampleLimits, normal_cdf, sample};
use serde_json::{Value, json};

use crate::timing::median;
use crate::{Result, f64_of, usize_of};

/// Independent Gaussians `N(μ_i, σ_i²)` as the likelihood and a uniform prior on `[−w, w]^d` (the problem of
/// parfit-core's sampler tests).
struct Gaussian {
    mu: Vec<f64>,
    sigma: Vec<f64>,
    half_width: f64,
}

impl Gaussian {
    fn new(d: usize, half_width: f64) -> Self {
        Gaussian {
            mu: (0..d).map(|i| 0.4 * (i % 5) as f64 - 0.8).collect(),
            sigma: (0..d).map(|i| 0.5 + 0.1 * (i % 4) as f64).collect(),
            half_width,
        }
    }

    fn log_likelihood(&self, x: &[f64]) -> f64 {
        let ln_sqrt_2pi = 0.5 * (2.0 * std::f64::consts::PI).ln();
        x.iter()
            .zip(&self.mu)
            .zip(&self.sigma)
            .map(|((x, m), s)| -0.5 * ((x - m) / s).powi(2) - s.ln() - ln_sqrt_2pi)
            .sum()
    }

    /// The Gaussian's mass inside the box over the box's volume.
    fn log_z(&self) -> f64 {
        let w = self.half_width;
        self.mu
            .iter()
            .zip(&self.sigma)
            .map(|(m, s)| ((normal_cdf((w - m) / s) - normal_cdf((-w - m) / s)) / (2.0 * w)).ln())
            .sum()
    }
}

pub fn gaussian(section: &Value) -> Result<Value> {
    let list = |key: &str| -> Result<Vec<u64>> {
        let v = section.get(key).and_then(Value::as_array).ok_or_else(|| format!("\"{key}\" must be a list"))?;
        v.iter().map(|s| s.as_u64().ok_or_else(|| format!("{key}: {s} is not a count"))).collect()
    };
    let half_width = f64_of(section, "half_width")?;
    let (mut out, mut order) = (serde_json::Map::new(), Vec::new());
    for d in list("dims")? {
        order.push(format!("d{d}"));
        let problem = Gaussian::new(d as usize, half_width);
        let truth = problem.log_z();
        let mut runs = Vec::new();
        for seed in list("seeds")? {
            let options = NestedOptions {
                live_points: usize_of(section, "live_points")?,
                dlogz: f64_of(section, "dlogz")?,
                seed,
                dynamic: DynamicOptions { max_batches: 0, ..DynamicOptions::default() },
                ..NestedOptions::default()
            };
            let d = d as usize;
            let prior = Prior::uniform(&vec![-half_width; d], &vec![half_width; d]).map_err(|e| e.to_string())?;
            let start = Instant::now();
            let mut sampler = NestedSampler::new(prior, options).map_err(|e| e.to_string())?;
            let mut evaluate = |batch: &[Vec<f64>], out: &mut [f64]| {
                for (x, o) in batch.iter().zip(out.iter_mut()) {
                    *o = problem.log_likelihood(x);
                }
            };
            let r = sample(&mut sampler, &mut evaluate, &SampleLimits::default(), &mut Silent);
            let seconds = start.elapsed().as_secs_f64();
            let evidence = r.evidence.ok_or("nested sampling gave no evidence")?;
            runs.push(json!({
                "seed": seed, "log_z": evidence.log_z, "log_z_err": evidence.log_z_err,
                "error": evidence.log_z - truth, "calls": r.evaluations, "seconds": seconds,
                "samples": r.points.len(),
            }));
        }
        out.insert(format!("d{d}"), json!({ "d": d, "truth": truth, "summary": summarise(&runs), "runs": runs }));
    }
    Ok(json!({ "tool": "parfit", "version": env!("CARGO_PKG_VERSION"), "order": order, "problems": out }))
}

/// Medians over seeds, and how many estimates lie within 3 reported standard errors of the truth.
fn summarise(runs: &[Value]) -> Value {
    let col = |key: &str| runs.iter().filter_map(|r| r[key].as_f64()).collect::<Vec<f64>>();
    let within = runs
        .iter()
        .filter(|r| r["error"].as_f64().unwrap_or(f64::NAN).abs() <= 3.0 * r["log_z_err"].as_f64().unwrap_or(0.0))
        .count();
    json!({
        "runs": runs.len(),
        "abs_error_median": median(col("error").iter().map(|e| e.abs()).collect()),
        "log_z_err_median": median(col("log_z_err")),
        "within_3_err": within,
        "calls_median": median(col("calls")),
        "seconds_median": median(col("seconds")),
    })
}
