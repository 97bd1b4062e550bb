//! End-to-end tests of the samplers on problems with known answers.

use super::*;
use crate::math;
use crate::optimise::Silent;
use crate::parallel;
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

/// Evaluate a batch one point at a time, in order.
fn sequential(f: impl Fn(&[f64]) -> f64) -> impl FnMut(&[Vec<f64>], &mut [f64]) {
    move |batch: &[Vec<f64>], out: &mut [f64]| {
        for (x, o) in batch.iter().zip(out.iter_mut()) {
            *o = f(x);
        }
    }
}

/// Evaluate a batch back to front, in chunks of three: a different schedule, the same values.
fn reversed(f: impl Fn(&[f64]) -> f64) -> impl FnMut(&[Vec<f64>], &mut [f64]) {
    move |batch: &[Vec<f64>], out: &mut [f64]| {
        let n = batch.len();
        for start in (0..n).step_by(3).collect::<Vec<_>>().into_iter().rev() {
            for i in (start..(start + 3).min(n)).rev() {
                out[i] = f(&batch[i]);
            }
        }
    }
}

/// Evaluate a batch on rayon's pool (sequentially without the `parallel` feature).
fn threaded(f: impl Fn(&[f64]) -> f64 + Sync + Send) -> impl FnMut(&[Vec<f64>], &mut [f64]) {
    move |batch: &[Vec<f64>], out: &mut [f64]| {
        parallel::fill_with(true, out, &parallel::Pool::default(), || (), |_, i| f(&batch[i]))
    }
}

fn run(sampler: &mut dyn Sampler, f: impl Fn(&[f64]) -> f64) -> SampleResult {
    sample(sampler, &mut sequential(f), &SampleLimits::default(), &mut Silent)
}

/// Independent Gaussians `N(μ_i, σ_i²)` as the likelihood, uniform prior on `[-5, 5]^d`.
struct GaussianProblem {
    mu: Vec<f64>,
    sigma: Vec<f64>,
}

const HALF_WIDTH: f64 = 5.0;

impl GaussianProblem {
    fn new(d: usize) -> Self {
        GaussianProblem {
            mu: (0..d).map(|i| 0.4 * (i % 5) as f64 - 0.8).collect(),
            sigma: (0..d).map(|i| 0.5 + 0.1 * (i % 4) as f64).collect(),
        }
    }

    fn prior(&self) -> Prior {
        let d = self.mu.len();
        Prior::uniform(&vec![-HALF_WIDTH; d], &vec![HALF_WIDTH; d]).unwrap()
    }

    fn log_likelihood(&self, x: &[f64]) -> f64 {
        let mut sum = 0.0;
        for ((xi, m), s) in x.iter().zip(&self.mu).zip(&self.sigma) {
            let z = (xi - m) / s;
            sum += -0.5 * z * z - math::ln(*s) - 0.5 * math::ln(2.0 * std::f64::consts::PI);
        }
        sum
    }

    /// Exact ln Z: the Gaussian's mass inside the box over the box volume.
    fn log_z(&self) -> f64 {
        self.mu
            .iter()
            .zip(&self.sigma)
            .map(|(m, s)| {
                let mass = normal_cdf((HALF_WIDTH - m) / s) - normal_cdf((-HALF_WIDTH - m) / s);
                math::ln(mass) - math::ln(2.0 * HALF_WIDTH)
            })
            .sum()
    }

    /// Exact posterior means: those of the Gaussians truncated to the box.
    fn means(&self) -> Vec<f64> {
        let phi = |z: f64| math::exp(-0.5 * z * z) / (2.0 * std::f64::consts::PI).sqrt();
        self.mu
            .iter()
            .zip(&self.sigma)
            .map(|(m, s)| {
                let (a, b) = ((-HALF_WIDTH - m) / s, (HALF_WIDTH - m) / s);
                m + s * (phi(a) - phi(b)) / (normal_cdf(b) - normal_cdf(a))
            })
            .collect()
    }
}

/// Two Gaussian shells (Feroz & Hobson 2008): radius 2, width 0.1, centres (±3.5, 0), uniform prior
/// on [-6, 6]².
fn shells_log_likelihood(x: &[f64]) -> f64 {
    let (r, w) = (2.0, 0.1);
    let shell = |cx: f64| {
        let rho = (math::powi(x[0] - cx, 2) + x[1] * x[1]).sqrt();
        -0.5 * math::powi((rho - r) / w, 2) - math::ln(w * (2.0 * std::f64::consts::PI).sqrt())
    };
    let (a, b) = (shell(-3.5), shell(3.5));
    let m = a.max(b);
    m + math::ln(math::exp(a - m) + math::exp(b - m))
}

/// ln Z of the shells: each shell integrates to 2π r over the plane (∫ρ N(ρ; r, w) dρ = r, the
/// truncation at ρ = 0 being 20 widths away), and both lie 5 widths inside the box, so
/// Z = 2 · 2π · 2 / 12² and ln Z = ln(π/18) = −1.7457. The test below checks this by quadrature.
const SHELLS_LOG_Z: f64 = -1.745_641_872_046_764_6;

fn shells_prior() -> Prior {
    Prior::uniform(&[-6.0, -6.0], &[6.0, 6.0]).unwrap()
}

#[test]
fn shells_reference_evidence_by_quadrature() {
    // Midpoint rule on a 3000² grid: the shells are 0.1 wide, so 12/3000 = 0.004 resolves them.
    let n = 3000;
    let h = 12.0 / n as f64;
    let mut sum = 0.0;
    for i in 0..n {
        let x = -6.0 + (i as f64 + 0.5) * h;
        let mut row = 0.0;
        for j in 0..n {
            let y = -6.0 + (j as f64 + 0.5) * h;
            row += math::exp(shells_log_likelihood(&[x, y]));
        }
        sum += row;
    }
    let log_z = math::ln(sum * h * h / 144.0);
    assert!((log_z - SHELLS_LOG_Z).abs() < 1e-6, "quadrature {log_z}, constant {SHELLS_LOG_Z}");
    assert!((SHELLS_LOG_Z - math::ln(std::f64::consts::PI / 18.0)).abs() < 1e-14);
}

fn static_options(live_points: usize, seed: u64) -> NestedOptions {
    NestedOptions {
        live_points,
        seed,
        dynamic: DynamicOptions { max_batches: 0, ..DynamicOptions::default() },
        ..NestedOptions::default()
    }
}

/// Run nested sampling on the Gaussian problem for each seed; count the seeds whose ln Z lies within
/// 3 reported standard errors and whose posterior means all lie within 3 standard errors.
fn gaussian_coverage(d: usize, seeds: std::ops::Range<u64>, options: impl Fn(u64) -> NestedOptions) -> (usize, usize) {
    let problem = GaussianProblem::new(d);
    let truth = problem.log_z();
    let means = problem.means();
    let (mut z_ok, mut mean_ok) = (0, 0);
    for seed in seeds {
        let mut sampler = NestedSampler::new(problem.prior(), options(seed)).unwrap();
        let r = run(&mut sampler, |x| problem.log_likelihood(x));
        let ev = r.evidence.clone().unwrap();
        let info = r.nested.clone().unwrap();
        let z_dev = (ev.log_z - truth) / ev.log_z_err;
        let mean_dev = r.summary.iter().zip(&means).map(|(s, m)| ((s.mean - m) / s.mean_se).abs()).fold(0.0, f64::max);
        eprintln!(
            "d={d} seed={seed}: lnZ {:.4} ± {:.4} (analytic {:.4}, truth {truth:.4}, dev {z_dev:+.2}σ), H {:.2}, \
             max mean dev {mean_dev:.2}σ, calls {}, iters {}, samples {}, ESS {:.0}, eff {:.3}, ellipsoids {}, walks {}, batches {}",
            ev.log_z,
            ev.log_z_err,
            info.log_z_err_analytic,
            ev.information,
            r.evaluations,
            r.iterations,
            info.samples,
            r.effective_samples,
            info.efficiency,
            info.ellipsoids,
            info.walks_used,
            info.batches,
        );
        z_ok += usize::from(z_dev.abs() < 3.0);
        mean_ok += usize::from(mean_dev < 3.0);
    }
    (z_ok, mean_ok)
}

#[test]
fn nested_gaussian_2d_evidence_and_means() {
    let (z_ok, mean_ok) = gaussian_coverage(2, 0..10, |seed| static_options(200, seed));
    assert!(z_ok >= 9 && mean_ok >= 9, "ln Z ok on {z_ok}/10 seeds, means on {mean_ok}/10");
}

#[test]
fn nested_gaussian_5d_evidence_and_means() {
    let (z_ok, mean_ok) = gaussian_coverage(5, 0..10, |seed| static_options(200, seed));
    assert!(z_ok >= 9 && mean_ok >= 9, "ln Z ok on {z_ok}/10 seeds, means on {mean_ok}/10");
}

#[test]
fn nested_gaussian_10d_evidence_and_means() {
    let (z_ok, mean_ok) = gaussian_coverage(10, 0..10, |seed| static_options(200, seed));
    assert!(z_ok >= 9 && mean_ok >= 9, "ln Z ok on {z_ok}/10 seeds, means on {mean_ok}/10");
}

#[test]
fn nested_gaussian_shells_evidence_and_means() {
    let (mut z_ok, mut mean_ok) = (0, 0);
    for seed in 0..10 {
        let mut sampler = NestedSampler::new(shells_prior(), static_options(200, seed)).unwrap();
        let r = run(&mut sampler, shells_log_likelihood);
        let ev = r.evidence.clone().unwrap();
        let z_dev = (ev.log_z - SHELLS_LOG_Z) / ev.log_z_err;
        let mean_dev = r.summary.iter().map(|s| (s.mean / s.mean_se).abs()).fold(0.0, f64::max);
        let info = r.nested.clone().unwrap();
        eprintln!(
            "shells seed={seed}: lnZ {:.4} ± {:.4} (dev {z_dev:+.2}σ), means ({:.3}, {:.3}) ± ({:.3}, {:.3}), \
             calls {}, eff {:.3}, ellipsoids {}",
            ev.log_z,
            ev.log_z_err,
            r.summary[0].mean,
            r.summary[1].mean,
            r.summary[0].mean_se,
            r.summary[1].mean_se,
            r.evaluations,
            info.efficiency,
            info.ellipsoids
        );
        z_ok += usize::from(z_dev.abs() < 3.0);
        mean_ok += usize::from(mean_dev < 3.0);
    }
    assert!(z_ok >= 9 && mean_ok >= 9, "ln Z ok on {z_ok}/10 seeds, means on {mean_ok}/10");
}

fn dynamic_options(live_points: usize, n_effective: f64, seed: u64) -> NestedOptions {
    NestedOptions {
        live_points,
        seed,
        dynamic: DynamicOptions { n_effective, ..DynamicOptions::default() },
        ..NestedOptions::default()
    }
}

#[test]
fn dynamic_nested_gaussian_5d_reaches_its_effective_sample_size() {
    let problem = GaussianProblem::new(5);
    let (z_ok, mean_ok) = gaussian_coverage(5, 0..10, |seed| dynamic_options(100, 2000.0, seed));
    assert!(z_ok >= 9 && mean_ok >= 9, "ln Z ok on {z_ok}/10 seeds, means on {mean_ok}/10");
    let mut sampler = NestedSampler::new(problem.prior(), dynamic_options(100, 2000.0, 0)).unwrap();
    let r = run(&mut sampler, |x| problem.log_likelihood(x));
    let info = r.nested.clone().unwrap();
    assert_eq!(info.stop, NestedStop::EffectiveSamples);
    assert!(info.batches >= 1);
    assert!(r.effective_samples >= 2000.0);
    assert!((r.weights.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    // Equal-weight draws reproduce the posterior mean.
    let draws = r.resample_equal(4000, 1);
    let mean0 = draws.iter().map(|p| p[0]).sum::<f64>() / draws.len() as f64;
    assert!((mean0 - r.summary[0].mean).abs() < 0.05, "{mean0} vs {}", r.summary[0].mean);
}

#[test]
fn dynamic_nested_gaussian_shells_evidence_and_means() {
    let (mut z_ok, mut mean_ok) = (0, 0);
    for seed in 0..10 {
        let mut sampler = NestedSampler::new(shells_prior(), dynamic_options(100, 1500.0, seed)).unwrap();
        let r = run(&mut sampler, shells_log_likelihood);
        let ev = r.evidence.clone().unwrap();
        let z_dev = (ev.log_z - SHELLS_LOG_Z) / ev.log_z_err;
        let mean_dev = r.summary.iter().map(|s| (s.mean / s.mean_se).abs()).fold(0.0, f64::max);
        eprintln!(
            "dynamic shells seed={seed}: lnZ {:.4} ± {:.4} (dev {z_dev:+.2}σ), max mean dev {mean_dev:.2}σ, calls {}, \
             batches {}, ESS {:.0}",
            ev.log_z,
            ev.log_z_err,
            r.evaluations,
            r.nested.as_ref().unwrap().batches,
            r.effective_samples
        );
        z_ok += usize::from(z_dev.abs() < 3.0);
        mean_ok += usize::from(mean_dev < 3.0);
    }
    assert!(z_ok >= 9 && mean_ok >= 9, "ln Z ok on {z_ok}/10 seeds, means on {mean_ok}/10");
}

/// Every sampling path at once: dynamic batches, forced random walks, several replacements per
/// iteration, bootstrap errors.
fn busy_options(seed: u64) -> NestedOptions {
    NestedOptions {
        live_points: 60,
        replace: Some(4),
        sampling: Sampling::Walk,
        walks: 10,
        bootstrap: 8,
        seed,
        dynamic: DynamicOptions { n_effective: 600.0, max_batches: 3, ..DynamicOptions::default() },
        ..NestedOptions::default()
    }
}

#[test]
fn nested_results_do_not_depend_on_how_batches_are_evaluated() {
    let problem = GaussianProblem::new(3);
    let f = |x: &[f64]| problem.log_likelihood(x);
    let limits = SampleLimits::default();
    let mut results = Vec::new();
    for evaluator in 0..3 {
        let mut sampler = NestedSampler::new(problem.prior(), busy_options(11)).unwrap();
        let r = match evaluator {
            0 => sample(&mut sampler, &mut sequential(f), &limits, &mut Silent),
            1 => sample(&mut sampler, &mut reversed(f), &limits, &mut Silent),
            _ => sample(&mut sampler, &mut threaded(f), &limits, &mut Silent),
        };
        results.push(r);
    }
    assert!(results[0].nested.as_ref().unwrap().walks_used);
    assert!(results[0].nested.as_ref().unwrap().batches >= 1);
    assert_eq!(results[0], results[1]);
    assert_eq!(results[0], results[2]);
    // The same seed twice gives the same run; another seed another.
    let mut again = NestedSampler::new(problem.prior(), busy_options(11)).unwrap();
    assert_eq!(run(&mut again, f), results[0]);
    let mut other = NestedSampler::new(problem.prior(), busy_options(12)).unwrap();
    assert_ne!(run(&mut other, f).evidence, results[0].evidence);
}

#[test]
fn failed_and_zero_likelihoods_are_rejected_points_not_panics() {
    // L = 1 on x₀ > 0.5; NaN, +inf or -inf elsewhere: Z = 1/2 exactly, a likelihood plateau.
    let prior = Prior::uniform(&[0.0, 0.0], &[1.0, 1.0]).unwrap();
    let f = |x: &[f64]| {
        if x[0] > 0.5 {
            0.0
        } else if x[1] < 0.3 {
            f64::NAN
        } else if x[1] < 0.6 {
            f64::INFINITY
        } else {
            f64::NEG_INFINITY
        }
    };
    let mut sampler = NestedSampler::new(prior.clone(), dynamic_options(400, 1000.0, 3)).unwrap();
    let r = run(&mut sampler, f);
    let ev = r.evidence.clone().unwrap();
    assert!((ev.log_z - math::ln(0.5f64)).abs() < 0.15, "ln Z {} ± {}", ev.log_z, ev.log_z_err);
    assert!(r.points.iter().zip(&r.weights).all(|(p, &w)| w == 0.0 || p[0] > 0.5));
    assert!((r.summary[0].mean - 0.75).abs() < 0.03);

    // A flat top (L = 1 within 0.2 of the centre) makes a plateau at the likelihood's maximum, where
    // dynamic batches must not start: nothing lies above it.
    let flat_top = |x: &[f64]| {
        let r = (math::powi(x[0] - 0.5, 2) + math::powi(x[1] - 0.5, 2)).sqrt();
        if r < 0.2 { 0.0 } else { -50.0 * math::powi(r - 0.2, 2) }
    };
    let mut sampler = NestedSampler::new(prior.clone(), dynamic_options(100, 2000.0, 4)).unwrap();
    let r = run(&mut sampler, flat_top);
    assert!(r.nested.unwrap().batches >= 1);
    assert!(r.evidence.unwrap().log_z.is_finite());

    // Nowhere finite: ln Z = -inf, a result all the same.
    let mut sampler = NestedSampler::new(prior, static_options(20, 0)).unwrap();
    let r = run(&mut sampler, |_| f64::NAN);
    assert_eq!(r.evidence.unwrap().log_z, f64::NEG_INFINITY);
    assert!(r.weights.iter().all(|&w| w == 0.0));
}

/// Cancels after a number of progress reports.
struct CancelAfter(usize);

impl crate::optimise::Monitor for CancelAfter {
    fn on_progress(&mut self, _: &crate::optimise::Progress) {
        self.0 = self.0.saturating_sub(1);
    }
    fn cancelled(&self) -> bool {
        self.0 == 0
    }
}

#[test]
fn the_driver_stops_on_cancellation_and_budgets() {
    let problem = GaussianProblem::new(2);
    let f = |x: &[f64]| problem.log_likelihood(x);
    let mut sampler = NestedSampler::new(problem.prior(), static_options(50, 0)).unwrap();
    let r = sample(&mut sampler, &mut sequential(f), &SampleLimits::default(), &mut CancelAfter(5));
    assert_eq!(r.termination, SampleTermination::Cancelled);
    assert_eq!(r.nested.unwrap().stop, NestedStop::Running);
    assert!(r.evidence.unwrap().log_z.is_finite());

    let limits = SampleLimits { max_evaluations: Some(300), max_seconds: None };
    let mut sampler = NestedSampler::new(problem.prior(), static_options(50, 0)).unwrap();
    let r = sample(&mut sampler, &mut sequential(f), &limits, &mut Silent);
    assert_eq!(r.termination, SampleTermination::MaxEvaluations);
    assert!(r.evaluations <= 300);

    let options = NestedOptions { max_calls: Some(500), ..static_options(50, 0) };
    let mut sampler = NestedSampler::new(problem.prior(), options).unwrap();
    let r = run(&mut sampler, f);
    assert_eq!(r.termination, SampleTermination::Completed);
    assert_eq!(r.nested.unwrap().stop, NestedStop::MaxCalls);

    let mut mcmc =
        EnsembleSampler::new(problem.prior(), EnsembleOptions { steps: 100, burn_in: 10, ..Default::default() })
            .unwrap();
    let r = sample(&mut mcmc, &mut sequential(f), &SampleLimits::default(), &mut CancelAfter(7));
    assert_eq!(r.termination, SampleTermination::Cancelled);
}

#[test]
fn options_are_checked_and_read_from_their_configuration_form() {
    let prior = GaussianProblem::new(3).prior();
    assert!(NestedSampler::new(prior.clone(), NestedOptions { live_points: 4, ..Default::default() }).is_err());
    assert!(NestedSampler::new(prior.clone(), NestedOptions { enlarge: 0.5, ..Default::default() }).is_err());
    assert!(EnsembleSampler::new(prior.clone(), EnsembleOptions { walkers: Some(5), ..Default::default() }).is_err());
    assert!(EnsembleSampler::new(prior, EnsembleOptions { burn_in: 5000, ..Default::default() }).is_err());

    let nested: NestedOptions = serde_json::from_str(
        r#"{"live_points": 100, "bounding": "single", "sampling": "walk", "dynamic": {"max_batches": 0}}"#,
    )
    .unwrap();
    assert_eq!(nested.live_points, 100);
    assert_eq!(nested.bounding, Bounding::Single);
    assert_eq!(nested.dynamic.max_batches, 0);
    assert_eq!(nested.dynamic.n_effective, 10_000.0);
    assert!(serde_json::from_str::<NestedOptions>(r#"{"live": 100}"#).is_err());
    let mcmc: EnsembleOptions = serde_json::from_str(r#"{"walkers": 20, "thin": 2}"#).unwrap();
    assert_eq!((mcmc.walkers, mcmc.thin, mcmc.steps), (Some(20), 2, 2000));
    assert!(serde_json::from_str::<EnsembleOptions>(r#"{"walker": 20}"#).is_err());
}

/// A correlated 2-D Gaussian: means (1, −1), sds (1, 2), correlation 0.9.
fn correlated_gaussian(x: &[f64]) -> f64 {
    let (rho, s0, s1) = (0.9, 1.0, 2.0);
    let (a, b) = ((x[0] - 1.0) / s0, (x[1] + 1.0) / s1);
    -(a * a - 2.0 * rho * a * b + b * b) / (2.0 * (1.0 - rho * rho))
}

fn mcmc_options(seed: u64) -> EnsembleOptions {
    // R̂ < 1.01 needs every split chain (half a walker's draws) to hold ~100 effective draws; the
    // stretch move's autocorrelation time here is ~30 steps.
    EnsembleOptions { walkers: Some(16), steps: 8000, burn_in: 1000, thin: 1, seed, ..Default::default() }
}

#[test]
fn ensemble_mcmc_on_a_correlated_gaussian() {
    let prior = Prior::uniform(&[-20.0, -20.0], &[20.0, 20.0]).unwrap();
    let mut sampler = EnsembleSampler::new(prior, mcmc_options(1)).unwrap();
    let r = run(&mut sampler, correlated_gaussian);
    let info = r.mcmc.clone().unwrap();
    eprintln!(
        "mcmc: means ({:.3}, {:.3}) ± ({:.3}, {:.3}), sds ({:.3}, {:.3}), R-hat {:?}, ESS {:?}, bulk ESS {:?}, \
         acceptance {:.3}",
        r.summary[0].mean,
        r.summary[1].mean,
        r.summary[0].mean_se,
        r.summary[1].mean_se,
        r.summary[0].sd,
        r.summary[1].sd,
        info.r_hat,
        info.ess,
        info.ess_bulk,
        info.acceptance
    );
    assert_eq!(info.draws_per_walker, 7000);
    assert_eq!(r.points.len(), 16 * 7000);
    for (j, (mean, sd)) in [(1.0, 1.0), (-1.0, 2.0)].into_iter().enumerate() {
        let s = &r.summary[j];
        assert!((s.mean - mean).abs() < 4.0 * s.mean_se, "parameter {j}: mean {} ± {}", s.mean, s.mean_se);
        assert!((s.sd / sd - 1.0).abs() < 0.05, "parameter {j}: sd {}", s.sd);
        assert!(s.mean_se < 0.05 * sd);
        // The 2.5 % and 97.5 % quantiles of a normal are μ ∓ 1.96σ.
        assert!((s.quantiles[0] - (mean - 1.96 * sd)).abs() < 0.15 * sd);
        assert!((s.quantiles[4] - (mean + 1.96 * sd)).abs() < 0.15 * sd);
        assert!(info.r_hat[j] < 1.01, "R-hat {:?}", info.r_hat);
        assert!(info.ess[j] > 500.0);
    }
    assert!((0.3..0.9).contains(&info.acceptance));
}

#[test]
fn ensemble_mcmc_is_deterministic_for_any_batch_evaluation() {
    let prior = Prior::uniform(&[-20.0, -20.0], &[20.0, 20.0]).unwrap();
    let options = EnsembleOptions { steps: 300, burn_in: 100, thin: 3, ..mcmc_options(5) };
    let limits = SampleLimits::default();
    let mut a = EnsembleSampler::new(prior.clone(), options.clone()).unwrap();
    let ra = sample(&mut a, &mut sequential(correlated_gaussian), &limits, &mut Silent);
    let mut b = EnsembleSampler::new(prior.clone(), options.clone()).unwrap();
    let rb = sample(&mut b, &mut reversed(correlated_gaussian), &limits, &mut Silent);
    let mut c = EnsembleSampler::with_start(prior.clone(), options.clone(), &[0.0, 0.0], 0.01).unwrap();
    let rc = sample(&mut c, &mut threaded(correlated_gaussian), &limits, &mut Silent);
    let mut d = EnsembleSampler::with_start(prior, options, &[0.0, 0.0], 0.01).unwrap();
    let rd = sample(&mut d, &mut sequential(correlated_gaussian), &limits, &mut Silent);
    assert_eq!(ra, rb);
    assert_eq!(rc, rd);
    assert_ne!(ra.points, rc.points);
    assert_eq!(ra.mcmc.unwrap().draws_per_walker, 200 / 3);
    // Evaluations: the first ensemble, then one per in-support proposal.
    assert!(ra.evaluations <= 16 + 16 * 300);
}

#[test]
fn negated_costs_are_log_likelihoods() {
    let mut cost = |batch: &[Vec<f64>], out: &mut [f64]| {
        for (x, o) in batch.iter().zip(out.iter_mut()) {
            *o = if x[0] < 0.0 { f64::INFINITY } else { x[0] * x[0] };
        }
    };
    let mut ll = NegatedCost(&mut cost);
    let mut out = [0.0; 2];
    ll.log_likelihoods(&[vec![2.0], vec![-1.0]], &mut out);
    assert_eq!(out, [-4.0, f64::NEG_INFINITY]);
}

#[test]
fn nested_options_are_checked_at_their_boundaries() {
    let check = |o: NestedOptions| o.check(3).map_err(|e| e.to_string());
    let base = NestedOptions::default();
    let ok = |o: NestedOptions| assert_eq!(check(o.clone()), Ok(()), "{o:?}");
    let refused = |o: NestedOptions, key: &str| {
        let e = check(o).unwrap_err();
        assert!(e.starts_with(&format!("{key} ")), "expected {key}: {e}");
    };
    ok(NestedOptions { live_points: 5, replace: Some(2), ..base.clone() });
    assert_eq!(
        check(NestedOptions { live_points: 4, ..base.clone() }),
        Err("live_points must be at least 5 (got 4)".into())
    );
    refused(NestedOptions { live_points: usize::MAX, ..base.clone() }, "live_points");
    ok(NestedOptions { replace: Some(1), ..base.clone() });
    ok(NestedOptions { replace: Some(250), ..base.clone() });
    refused(NestedOptions { replace: Some(0), ..base.clone() }, "replace");
    refused(NestedOptions { replace: Some(251), ..base.clone() }, "replace");
    for dlogz in [0.0, f64::NAN, f64::INFINITY] {
        refused(NestedOptions { dlogz, ..base.clone() }, "dlogz");
    }
    ok(NestedOptions { enlarge: 1.0, ..base.clone() });
    refused(NestedOptions { enlarge: 0.999, ..base.clone() }, "enlarge");
    refused(NestedOptions { enlarge: f64::INFINITY, ..base.clone() }, "enlarge");
    refused(NestedOptions { update_interval: 0.0, ..base.clone() }, "update_interval");
    ok(NestedOptions { first_update: 1.0, ..base.clone() });
    refused(NestedOptions { first_update: 0.0, ..base.clone() }, "first_update");
    refused(NestedOptions { first_update: 1.01, ..base.clone() }, "first_update");
    ok(NestedOptions { walks: 1, max_iterations: Some(1), max_calls: Some(1), ..base.clone() });
    refused(NestedOptions { walks: 0, ..base.clone() }, "walks");
    refused(NestedOptions { max_iterations: Some(0), ..base.clone() }, "max_iterations");
    refused(NestedOptions { max_calls: Some(0), ..base.clone() }, "max_calls");
    ok(NestedOptions { bootstrap: 0, ..base.clone() });
    refused(NestedOptions { bootstrap: usize::MAX, ..base.clone() }, "bootstrap");
    let dynamic = |d: DynamicOptions| NestedOptions { dynamic: d, ..base.clone() };
    ok(dynamic(DynamicOptions { live_points: Some(5), n_effective: 0.0, ..Default::default() }));
    refused(dynamic(DynamicOptions { live_points: Some(4), ..Default::default() }), "dynamic.live_points");
    refused(dynamic(DynamicOptions { n_effective: f64::NAN, ..Default::default() }), "dynamic.n_effective");
    refused(dynamic(DynamicOptions { n_effective: -1.0, ..Default::default() }), "dynamic.n_effective");
    ok(dynamic(DynamicOptions { posterior_fraction: 0.0, max_fraction: 1.0, ..Default::default() }));
    refused(dynamic(DynamicOptions { posterior_fraction: 1.1, ..Default::default() }), "dynamic.posterior_fraction");
    refused(dynamic(DynamicOptions { max_fraction: f64::NAN, ..Default::default() }), "dynamic.max_fraction");
}

#[test]
fn ensemble_options_and_limits_are_checked_at_their_boundaries() {
    let check = |o: EnsembleOptions| o.check(3).map_err(|e| e.to_string());
    let base = EnsembleOptions::default();
    assert_eq!(check(EnsembleOptions { walkers: Some(6), steps: 1, burn_in: 0, thin: 1, ..base.clone() }), Ok(()));
    assert_eq!(
        check(EnsembleOptions { walkers: Some(4), ..base.clone() }),
        Err("walkers must be even and at least max(2 × dimension, 4) = 6 (got 4)".into())
    );
    assert!(check(EnsembleOptions { walkers: Some(7), ..base.clone() }).unwrap_err().starts_with("walkers"));
    let huge = check(EnsembleOptions { walkers: Some(1_000_000_000), ..base.clone() }).unwrap_err();
    assert!(huge.contains("would need about"), "{huge}");
    assert!(check(EnsembleOptions { steps: 0, burn_in: 0, ..base.clone() }).unwrap_err().starts_with("steps"));
    assert_eq!(
        check(EnsembleOptions { steps: 100, burn_in: 100, ..base.clone() }),
        Err("burn_in must be below steps = 100 (got 100)".into())
    );
    assert!(check(EnsembleOptions { thin: 0, ..base.clone() }).unwrap_err().starts_with("thin"));
    assert!(check(EnsembleOptions { steps: 10, burn_in: 5, thin: 5, ..base.clone() }).is_ok());
    assert_eq!(
        check(EnsembleOptions { steps: 10, burn_in: 5, thin: 6, ..base.clone() }),
        Err("thin must be in 1..=steps − burn_in = 5, so that every walker keeps a draw (got 6)".into())
    );
    // usize::MAX: too large on 32-bit wasm as on 64-bit targets.
    let long = check(EnsembleOptions { steps: usize::MAX, ..base.clone() }).unwrap_err();
    assert!(long.starts_with(&format!("steps {} (", usize::MAX)) && long.contains("would need about"), "{long}");
    assert!(check(EnsembleOptions { stretch: 1.0 + 1e-9, ..base.clone() }).is_ok());
    for stretch in [1.0, f64::NAN, f64::INFINITY] {
        assert!(check(EnsembleOptions { stretch, ..base.clone() }).unwrap_err().starts_with("stretch"));
    }
    let prior = GaussianProblem::new(3).prior();
    let spread = EnsembleSampler::with_start(prior, base, &[0.0; 3], 0.0);
    assert_eq!(spread.unwrap_err().key, "start_spread");

    let limits = |max_evaluations, max_seconds| SampleLimits { max_evaluations, max_seconds }.check();
    assert!(limits(Some(1), Some(1e-9)).is_ok() && limits(None, None).is_ok());
    assert_eq!(limits(Some(0), None).unwrap_err().key, "max_evaluations");
    for seconds in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        assert_eq!(limits(None, Some(seconds)).unwrap_err().key, "max_seconds");
    }
}
