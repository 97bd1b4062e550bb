//! CMA-ES: the (μ/μ_w, λ) evolution strategy with covariance matrix adaptation, as set out in
//! N. Hansen, "The CMA Evolution Strategy: A Tutorial" (2016), with optional IPOP restarts
//! (Auger & Hansen 2005) or BIPOP restarts (Hansen 2009, "Benchmarking a BI-population CMA-ES on
//! the BBOB-2009 function testbed").
//!
//! Rank-one and rank-μ covariance updates, the latter *active* (the tutorial's default since 2016,
//! after Jastrebski & Arnold 2006): the μ best steps are recombined with positive weights and the
//! λ − μ worst enter the covariance update with negative weights, shrinking C along directions that
//! did badly. Cumulative
//! step-size adaptation with the `h_σ` stall of the evolution path, and a lazy eigendecomposition
//! of `C`. Every generation is one batch of λ candidates.

use crate::math;
use std::cell::Cell;
use std::collections::VecDeque;
use std::fmt;

use crate::ziggurat::standard_normal;
use nalgebra::{DMatrix, SymmetricEigen};
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

use super::{Bounds, Optimiser, Stopping, Termination};
use crate::check::{OptionError, at_least, positive, require, require_memory};

/// Attempts at drawing a feasible candidate before projecting the last one onto the box.
const MAX_DRAWS: usize = 10;
/// Largest tolerated condition number of `C` (Hansen's `ConditionCov`).
const MAX_CONDITION: f64 = 1e14;
/// Longest history of generation best/median values kept for the stagnation test.
const MAX_HISTORY: usize = 20_000;

/// What CMA-ES does when a run meets one of its own stopping criteria.
///
/// In TOML either a bare name, `restarts = "none"`, `"ipop"` or `"bipop"` (with the defaults
/// below), or a table:
///
/// ```toml
/// [restarts]
/// kind = "ipop"      # or "bipop"
/// max_restarts = 5   # default 9
/// factor = 2.0       # default 2.0
/// ```
///
/// It serialises as the table form (`{"kind": "none"}` in JSON).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Restarts {
    /// Stop at the first run's convergence.
    None,
    /// IPOP: restart with a population `factor` times larger, up to `max_restarts` times. Each
    /// restart starts from a uniformly random point of the box (coordinates without finite
    /// bounds keep `x0`) with the original `sigma0`.
    Ipop { max_restarts: usize, factor: f64 },
    /// BIPOP: two interleaved restart regimes sharing the evaluations evenly. The *large* regime is
    /// IPOP: its k-th run has population `factor^k · λ₀` (λ₀ the configured or default population)
    /// and step size `sigma0`. A *small* run draws `u, v` uniform in [0, 1) and uses population
    /// `⌊λ₀ · (λ_L / (2 λ₀))^(u²)⌋` (λ_L: the latest large population) and step size
    /// `sigma0 · 10^(−2v)`, and may spend at most half the evaluations of the latest large run.
    /// After a run ends, the next is small while the small runs have used fewer evaluations than
    /// the large ones (the first run included), else large; the first restart is always large.
    /// `max_restarts` counts large restarts: the search ends when the last large run does. Every
    /// run starts from a uniformly random point of the box, like IPOP.
    ///
    /// Small runs with small steps are local searches that find narrow basins a large population
    /// steps over; large runs find the global structure of multimodal functions like Rastrigin.
    Bipop { max_restarts: usize, factor: f64 },
}

impl Restarts {
    /// IPOP with the usual settings (as in Auger & Hansen 2005): up to 9 restarts, doubling the
    /// population each time.
    pub const IPOP: Restarts = Restarts::Ipop { max_restarts: 9, factor: 2.0 };

    /// BIPOP with up to 9 large-population restarts, doubling the population each time (Hansen
    /// 2009).
    pub const BIPOP: Restarts = Restarts::Bipop { max_restarts: 9, factor: 2.0 };
}

/// The table form of [`Restarts`], with per-field defaults.
#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum RestartsTable {
    None,
    Ipop {
        #[serde(default = "default_max_restarts")]
        max_restarts: usize,
        #[serde(default = "default_factor")]
        factor: f64,
    },
    Bipop {
        #[serde(default = "default_max_restarts")]
        max_restarts: usize,
        #[serde(default = "default_factor")]
        factor: f64,
    },
}

fn default_max_restarts() -> usize {
    9
}

fn default_factor() -> f64 {
    2.0
}

impl<'de> Deserialize<'de> for Restarts {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RestartsVisitor;
        impl<'de> Visitor<'de> for RestartsVisitor {
            type Value = Restarts;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(r#""none", "ipop", "bipop" or a table with kind = "none" | "ipop" | "bipop""#)
            }

            fn visit_str<E: de::Error>(self, name: &str) -> Result<Restarts, E> {
                match name {
                    "none" => Ok(Restarts::None),
                    "ipop" => Ok(Restarts::IPOP),
                    "bipop" => Ok(Restarts::BIPOP),
                    other => Err(E::unknown_variant(other, &["none", "ipop", "bipop"])),
                }
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Restarts, A::Error> {
                let table = RestartsTable::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(match table {
                    RestartsTable::None => Restarts::None,
                    RestartsTable::Ipop { max_restarts, factor } => Restarts::Ipop { max_restarts, factor },
                    RestartsTable::Bipop { max_restarts, factor } => Restarts::Bipop { max_restarts, factor },
                })
            }
        }
        deserializer.deserialize_any(RestartsVisitor)
    }
}

/// Options of [`Cmaes`], as read from the user's configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CmaesOptions {
    /// Initial step size σ₀, in parameter units, the same in every coordinate. Roughly a third of
    /// the distance to the optimum is a good choice. Default `0.3`.
    pub sigma0: f64,
    /// Population size λ (candidates per generation, at least 2). Default `4 + floor(3 ln n)`.
    pub population: Option<usize>,
    /// Seed of the random number generator; the same seed gives the same run. Default `0`.
    pub seed: u64,
    /// Restart strategy. Default `"none"`.
    pub restarts: Restarts,
}

impl Default for CmaesOptions {
    fn default() -> Self {
        CmaesOptions { sigma0: 0.3, population: None, seed: 0, restarts: Restarts::None }
    }
}

/// Largest `sigma0` as a multiple of the box's widest finite side. Measured on 2- to 10-D spheres in the unit box
/// (20 seeds each), the step size shrinks back to the box's scale within the stagnation window from up to 1e15
/// sides; from 1e16 on the box lies below a step's double-precision resolution, the candidates pile onto its
/// corners and the run stagnates there (`sigma0 = 1e308` returned a corner as the fit). 1e6 keeps far from that
/// edge and above any useful setting.
const MAX_SIGMA0_PER_SIDE: f64 = 1e6;
/// Largest `sigma0` on a box without a finite side: a step times the largest normal draw (under 10) times the
/// largest axis scale `C` reaches before its condition limit (√1e14 = 1e7) stays finite.
const MAX_FREE_SIGMA0: f64 = 1e300;

impl CmaesOptions {
    /// The first run's population λ₀ for `n` parameters.
    pub fn population(&self, n: usize) -> usize {
        self.population.unwrap_or_else(|| 4 + (3.0 * math::ln(n.max(1) as f64)) as usize)
    }

    /// Check every option against its allowed range on `bounds`.
    ///
    /// `sigma0` is at most 1e6 times the box's widest finite side (see [`MAX_SIGMA0_PER_SIDE`]), or 1e300 on a box
    /// without one. The largest population (after the restarts' growth) must fit in memory.
    pub fn check(&self, bounds: &Bounds) -> Result<(), OptionError> {
        let n = bounds.dim();
        positive("sigma0", self.sigma0)?;
        let sides = bounds.lower.iter().zip(&bounds.upper).map(|(lo, hi)| hi - lo);
        match sides.filter(|w| w.is_finite() && *w > 0.0).reduce(f64::max) {
            Some(widest) => {
                let allowed = format!("at most 1e6 × the widest side of the box, {widest:?}");
                require(self.sigma0 <= MAX_SIGMA0_PER_SIDE * widest, "sigma0", &allowed, self.sigma0)?;
            }
            None => require(self.sigma0 <= MAX_FREE_SIGMA0, "sigma0", "at most 1e300", self.sigma0)?,
        }
        let lambda = self.population(n);
        at_least("population", lambda, 2)?;
        let bytes_each = ((2 * n + 4) * 8 + 48) as f64;
        require_memory("population", lambda, lambda as f64, bytes_each)?;
        if let Restarts::Ipop { max_restarts, factor } | Restarts::Bipop { max_restarts, factor } = self.restarts {
            let key = "restarts.factor";
            require(factor >= 1.0 && factor.is_finite(), key, "a finite number ≥ 1", factor)?;
            let largest = lambda as f64 * math::powi(factor, max_restarts.min(i32::MAX as usize) as i32);
            let value = format!("{factor:?} (a population of {largest:.3e} after {max_restarts} restarts)");
            require_memory(key, value, largest, bytes_each)?;
        }
        Ok(())
    }
}

/// Strategy parameters of one run, fixed by n and λ (Hansen 2016, Table 1).
#[derive(Debug, Clone)]
struct Params {
    lambda: usize,
    /// Positive recombination weights of the μ best, summing to one.
    weights: Vec<f64>,
    /// Negative covariance weights of ranks μ+1 … λ (the active update; zero or negative).
    negative_weights: Vec<f64>,
    /// The sum of all λ weights, positive and negative: the rank-μ update's share of decay.
    weight_sum: f64,
    mueff: f64,
    cs: f64,
    ds: f64,
    cc: f64,
    c1: f64,
    cmu: f64,
    /// E‖N(0, I)‖.
    chi_n: f64,
    /// Generations between eigendecompositions of `C`.
    eigen_interval: usize,
    /// Generations of best values that must agree within `ftol` (TolFun).
    tolfun_window: usize,
    /// Shortest history for the stagnation test.
    stagnation_window: usize,
}

impl Params {
    fn new(n: usize, lambda: usize) -> Self {
        let nf = n.max(1) as f64;
        let lambda = lambda.max(2);
        let lf = lambda as f64;
        let mu = lambda / 2;
        let raw: Vec<f64> = (1..=lambda).map(|i| math::ln((lf + 1.0) / 2.0) - math::ln(i as f64)).collect();
        let sum: f64 = raw[..mu].iter().sum();
        let weights: Vec<f64> = raw[..mu].iter().map(|w| w / sum).collect();
        let mueff = 1.0 / weights.iter().map(|w| w * w).sum::<f64>();
        // c_σ and the offset ¼ in c_μ are those of Hansen's reference implementation (pycma 4.x:
        // `CMAAdaptSigmaCSA.compute_cs`, `GaussSampler.parameters`), retuned after the tutorial's
        // Table 1 (n + μ_eff + 5, and μ_eff − 2 + 1/μ_eff): with the tutorial's values the 10-D
        // ellipsoid and Rosenbrock took 5 % more evaluations than pycma (medians over 40 seeds).
        let cs = (mueff + 2.0) / (nf + mueff + 3.0);
        let ds = 1.0 + 2.0 * (((mueff - 1.0) / (nf + 1.0)).sqrt() - 1.0).max(0.0) + cs;
        let cc = (4.0 + mueff / nf) / (nf + 4.0 + 2.0 * mueff / nf);
        let c1 = 2.0 / (math::powi(nf + 1.3, 2) + mueff);
        let cmu = (1.0 - c1).min(2.0 * (0.25 + mueff - 2.0 + 1.0 / mueff) / (math::powi(nf + 2.0, 2) + mueff));
        // Negative weights (Hansen 2016, eq. 53): scaled so they sum to −min(α_μ⁻, α_μeff⁻, α_posdef⁻),
        // which keeps C positive definite and the decay of C no faster than without them.
        let negative = &raw[mu..];
        let negative_sum: f64 = negative.iter().sum();
        let negative_weights: Vec<f64> = if negative_sum < 0.0 && cmu > 0.0 {
            let mueff_neg = negative_sum * negative_sum / negative.iter().map(|w| w * w).sum::<f64>();
            let alpha_mu = 1.0 + c1 / cmu;
            let alpha_mueff = 1.0 + 2.0 * mueff_neg / (mueff + 2.0);
            let alpha_posdef = (1.0 - c1 - cmu) / (nf * cmu);
            let scale = alpha_mu.min(alpha_mueff).min(alpha_posdef);
            negative.iter().map(|w| scale * w / -negative_sum).collect()
        } else {
            vec![0.0; negative.len()]
        };
        let weight_sum = 1.0 + negative_weights.iter().sum::<f64>();
        let chi_n = nf.sqrt() * (1.0 - 1.0 / (4.0 * nf) + 1.0 / (21.0 * nf * nf));
        // Decomposing more often than this costs O(n³) without changing the search noticeably.
        let eigen_interval = ((lf / (c1 + cmu) / nf / 10.0) as usize).max(1);
        let per_lambda = (30.0 * nf / lf).ceil() as usize;
        Params {
            lambda,
            weights,
            negative_weights,
            weight_sum,
            mueff,
            cs,
            ds,
            cc,
            c1,
            cmu,
            chi_n,
            eigen_interval,
            tolfun_window: 10 + per_lambda,
            stagnation_window: 120 + per_lambda,
        }
    }
}

/// Covariance matrix adaptation evolution strategy.
///
/// Candidates are always feasible: one falling outside the bounds is redrawn, up to 10 draws,
/// and the last draw is projected onto the box. The update uses the steps actually taken (after
/// projection), and the mean, a convex combination of feasible candidates, stays in the box.
///
/// A run ends (see [`Optimiser::converged`]) with
/// * [`Termination::FunctionTolerance`] when the best values of the last `10 + ⌈30n/λ⌉`
///   generations, and all values of the latest one, each span at most `ftol` (TolFun);
/// * [`Termination::ParameterTolerance`] when `σ·√C_ii` and `σ·|p_c,i|` are at most `xtol` in
///   every coordinate (TolX);
/// * [`Termination::ConditionNumber`] when the condition number of `C` exceeds 1e14 or `C`
///   stops being numerically positive definite;
/// * [`Termination::Stagnation`] when the median of the generation best and median values over
///   the last 30 % of a window (20 % of the run, at least `120 + ⌈30n/λ⌉` generations) is no
///   better than over its first 30 %, or when a step of 0.1 standard deviations along a principal
///   axis, or 0.2 along a coordinate, no longer changes the mean (NoEffectAxis/NoEffectCoord).
///
/// With [`Restarts::Ipop`] or [`Restarts::Bipop`] such an ending starts a new run instead, until
/// the restarts run out; the restart happens at the next `ask`, so it needs `converged` to be
/// called in between (the [`minimise`](super::minimise) driver does). A BIPOP small run also
/// ends when it has spent its evaluation budget.
#[derive(Debug, Clone)]
pub struct Cmaes {
    bounds: Bounds,
    x0: Vec<f64>,
    sigma0: f64,
    restarts: Restarts,
    params: Params,
    rng: Xoshiro256PlusPlus,

    mean: Vec<f64>,
    sigma: f64,
    cov: DMatrix<f64>,
    /// Eigenvectors of `C` (columns) and square roots of its eigenvalues, as of the last
    /// decomposition.
    basis: DMatrix<f64>,
    scales: Vec<f64>,
    ps: Vec<f64>,
    pc: Vec<f64>,
    /// Generations in the current run.
    generation: usize,
    last_decomposition: usize,

    /// The batch; `steps[k] = (candidates[k] − mean) / σ`.
    candidates: Vec<Vec<f64>>,
    steps: Vec<Vec<f64>>,
    /// Whether `candidates` is out for evaluation (so `ask` returns it again).
    asked: bool,
    /// Values of the latest generation (failures as `+inf`) and its ranking.
    fitness: Vec<f64>,
    order: Vec<usize>,
    /// Scratch vectors of length n.
    z: Vec<f64>,
    tmp: Vec<f64>,
    step_w: Vec<f64>,
    /// Covariance weight of each rank in the latest generation (w°).
    rank_weights: Vec<f64>,
    /// Whether the latest generation needed redraws or projections onto the box.
    truncated: bool,
    /// Generation best and median values of the current run, newest last.
    best_history: VecDeque<f64>,
    median_history: VecDeque<f64>,
    scratch: Vec<f64>,

    /// A stopping criterion that needs no tolerance has fired in this run.
    run_stop: Option<Termination>,
    /// Set by `converged` when the run is over and a restart remains; acted on by `ask`.
    restart_pending: Cell<bool>,
    restarts_done: usize,
    /// BIPOP's restart bookkeeping.
    regime: Regime,
    iterations: usize,
    best_x: Vec<f64>,
    best_value: f64,
}

impl Cmaes {
    /// Start a search around `x0` (projected onto `bounds`); an option out of its range is an error.
    ///
    /// # Panics
    /// If `x0` and `bounds` differ in dimension (a caller's mistake, not a setting).
    pub fn new(x0: Vec<f64>, bounds: Bounds, options: CmaesOptions) -> Result<Self, OptionError> {
        let n = x0.len();
        assert_eq!(n, bounds.dim(), "start point and bounds differ in dimension");
        options.check(&bounds)?;
        let lambda = options.population(n);
        let mut x0 = x0;
        bounds.clamp(&mut x0);
        let params = Params::new(n, lambda);
        let mut cmaes = Cmaes {
            bounds,
            best_x: x0.clone(),
            mean: x0.clone(),
            x0,
            sigma0: options.sigma0,
            restarts: options.restarts,
            regime: Regime::new(params.lambda),
            params,
            rng: Xoshiro256PlusPlus::seed_from_u64(options.seed),
            sigma: options.sigma0,
            cov: DMatrix::identity(n, n),
            basis: DMatrix::identity(n, n),
            scales: vec![1.0; n],
            ps: vec![0.0; n],
            pc: vec![0.0; n],
            generation: 0,
            last_decomposition: 0,
            candidates: Vec::new(),
            steps: Vec::new(),
            asked: false,
            fitness: Vec::new(),
            order: Vec::new(),
            z: vec![0.0; n],
            tmp: vec![0.0; n],
            step_w: vec![0.0; n],
            rank_weights: Vec::new(),
            truncated: false,
            best_history: VecDeque::new(),
            median_history: VecDeque::new(),
            scratch: Vec::new(),
            run_stop: None,
            restart_pending: Cell::new(false),
            restarts_done: 0,
            iterations: 0,
            best_value: f64::INFINITY,
        };
        cmaes.resize_population();
        Ok(cmaes)
    }

    fn dim(&self) -> usize {
        self.mean.len()
    }

    /// Size the per-candidate buffers for the current λ.
    fn resize_population(&mut self) {
        let (n, lambda) = (self.dim(), self.params.lambda);
        self.candidates.resize(lambda, vec![0.0; n]);
        self.steps.resize(lambda, vec![0.0; n]);
        self.fitness.resize(lambda, f64::INFINITY);
        self.order.resize(lambda, 0);
    }

    /// Start the next run: fresh distribution around a random point of the box, with the
    /// population and step size the restart strategy prescribes.
    fn restart(&mut self) {
        let n = self.dim();
        let (lambda, sigma) = match self.restarts {
            Restarts::None => return,
            Restarts::Ipop { factor, .. } => ((self.params.lambda as f64 * factor).round() as usize, self.sigma0),
            Restarts::Bipop { factor, .. } => {
                let regime = &mut self.regime;
                regime.close_run();
                if regime.next_is_small() {
                    // Two draws per small run, in a fixed order, before the start point's draws.
                    let (u, v): (f64, f64) = (self.rng.random(), self.rng.random());
                    let ratio = regime.large_lambda as f64 / (2.0 * regime.default_lambda as f64);
                    let lambda = (regime.default_lambda as f64 * math::powf(ratio, u * u)).floor() as usize;
                    regime.start_small();
                    (lambda, self.sigma0 * math::powf(10f64, -2.0 * v))
                } else {
                    regime.start_large(factor);
                    (regime.large_lambda, self.sigma0)
                }
            }
        };
        self.restarts_done += 1;
        self.params = Params::new(n, lambda);
        for i in 0..n {
            let (lo, hi) = (self.bounds.lower[i], self.bounds.upper[i]);
            let u: f64 = self.rng.random();
            let x = lo + u * (hi - lo);
            self.mean[i] = if x.is_finite() { x.clamp(lo, hi) } else { self.x0[i] };
        }
        self.sigma = sigma;
        self.cov.fill_with_identity();
        self.basis.fill_with_identity();
        self.scales.fill(1.0);
        self.ps.fill(0.0);
        self.pc.fill(0.0);
        self.generation = 0;
        self.last_decomposition = 0;
        self.best_history.clear();
        self.median_history.clear();
        self.run_stop = None;
        self.asked = false;
        self.resize_population();
    }

    /// Draw λ feasible candidates from N(m, σ² C).
    fn sample(&mut self) {
        self.truncated = false;
        for (x, y) in self.candidates.iter_mut().zip(&mut self.steps) {
            for draw in 0..MAX_DRAWS {
                self.truncated |= draw > 0;
                for zi in &mut self.z {
                    *zi = standard_normal(&mut self.rng);
                }
                // y = B · (D ∘ z), x = m + σ y
                for (i, (yi, xi)) in y.iter_mut().zip(x.iter_mut()).enumerate() {
                    let row = self.basis.row(i);
                    *yi = row.iter().zip(&self.scales).zip(&self.z).map(|((b, d), z)| b * d * z).sum();
                    *xi = self.mean[i] + self.sigma * *yi;
                }
                if self.bounds.contains(x) {
                    break;
                }
            }
            if !self.bounds.contains(x) {
                self.truncated = true;
                self.bounds.clamp(x);
                // Learn from the step actually taken.
                for ((yi, xi), mi) in y.iter_mut().zip(x.iter()).zip(&self.mean) {
                    *yi = (xi - mi) / self.sigma;
                }
            }
        }
    }

    /// Eigendecomposition of `C` into `basis` and `scales`; flags a numerically broken `C`.
    fn decompose(&mut self) {
        self.last_decomposition = self.generation;
        let n = self.dim();
        if n == 0 {
            return;
        }
        for j in 0..n {
            for i in 0..j {
                self.cov[(i, j)] = self.cov[(j, i)];
            }
        }
        let Some(eigen) = SymmetricEigen::try_new(self.cov.clone(), f64::EPSILON, 0) else {
            self.run_stop = Some(Termination::ConditionNumber);
            return;
        };
        let (lo, hi) = eigen.eigenvalues.iter().fold((f64::INFINITY, 0.0_f64), |(lo, hi), &e| (lo.min(e), hi.max(e)));
        if !(lo > 0.0 && hi.is_finite()) || hi > MAX_CONDITION * lo {
            self.run_stop = Some(Termination::ConditionNumber);
            if !(lo > 0.0 && hi.is_finite()) {
                // Keep the previous decomposition: sampling must stay well defined.
                return;
            }
        }
        self.basis = eigen.eigenvectors;
        for (s, e) in self.scales.iter_mut().zip(eigen.eigenvalues.iter()) {
            *s = e.sqrt();
        }
    }

    /// Tolerance-free stopping tests after a generation (NoEffect*, Stagnation, numerics).
    fn check_run(&mut self) {
        if !(self.sigma.is_finite() && self.sigma > 0.0) {
            self.run_stop = Some(Termination::ConditionNumber);
            return;
        }
        let n = self.dim();
        if n == 0 {
            return;
        }
        let m = &self.mean;
        let axis = self.generation % n;
        let shift = 0.1 * self.sigma * self.scales[axis];
        let no_effect_axis = (0..n).all(|i| m[i] + shift * self.basis[(i, axis)] == m[i]);
        let no_effect_coord = (0..n).any(|i| m[i] + 0.2 * self.sigma * self.cov[(i, i)].sqrt() == m[i]);
        if no_effect_axis || no_effect_coord {
            self.run_stop = Some(Termination::Stagnation);
            return;
        }

        let g = self.generation;
        let window = (g / 5).max(self.params.stagnation_window).min(MAX_HISTORY);
        if g >= window && self.best_history.len() >= window {
            let k = (3 * window).div_ceil(10);
            let scratch = &mut self.scratch;
            let stalled = |h: &VecDeque<f64>, scratch: &mut Vec<f64>| {
                let start = h.len() - window;
                let first = median(h.range(start..start + k), scratch);
                let last = median(h.range(h.len() - k..), scratch);
                last >= first
            };
            if stalled(&self.best_history, scratch) && stalled(&self.median_history, scratch) {
                self.run_stop = Some(Termination::Stagnation);
            }
        }
    }

    /// Whether a restart remains after the current run.
    fn can_restart(&self) -> bool {
        match self.restarts {
            Restarts::None => false,
            Restarts::Ipop { max_restarts, .. } => self.restarts_done < max_restarts,
            // Small runs between large ones are free; the search ends with its last large run.
            Restarts::Bipop { max_restarts, .. } => self.regime.small || self.regime.large_restarts < max_restarts,
        }
    }
}

/// BIPOP's budget accounting: which regime the current run belongs to and how many evaluations
/// each regime has used.
#[derive(Debug, Clone)]
struct Regime {
    /// λ₀: the first run's population.
    default_lambda: usize,
    /// Population of the latest large run (the first run counts as large).
    large_lambda: usize,
    large_restarts: usize,
    /// Whether the current run is a small one.
    small: bool,
    /// Evaluations of the current run, of finished large runs and of finished small runs.
    run_evaluations: usize,
    large_evaluations: usize,
    small_evaluations: usize,
    /// Evaluations of the latest finished large run; a small run may use half of them.
    last_large_evaluations: usize,
}

impl Regime {
    fn new(lambda: usize) -> Self {
        Regime {
            default_lambda: lambda,
            large_lambda: lambda,
            large_restarts: 0,
            small: false,
            run_evaluations: 0,
            large_evaluations: 0,
            small_evaluations: 0,
            last_large_evaluations: 0,
        }
    }

    /// Book the finished run's evaluations to its regime.
    fn close_run(&mut self) {
        let used = std::mem::take(&mut self.run_evaluations);
        if self.small {
            self.small_evaluations += used;
        } else {
            self.large_evaluations += used;
            self.last_large_evaluations = used;
        }
    }

    /// The regime that has used fewer evaluations goes next; the first restart is large so that
    /// small populations range from λ₀ upwards.
    fn next_is_small(&self) -> bool {
        self.large_restarts > 0 && self.small_evaluations < self.large_evaluations
    }

    fn start_small(&mut self) {
        self.small = true;
    }

    fn start_large(&mut self, factor: f64) {
        self.small = false;
        self.large_restarts += 1;
        let growth = math::powi(factor, self.large_restarts.min(i32::MAX as usize) as i32);
        self.large_lambda = (self.default_lambda as f64 * growth).round() as usize;
    }

    /// Whether the current small run has spent its budget.
    fn small_budget_spent(&self) -> bool {
        self.small && 2 * self.run_evaluations >= self.last_large_evaluations
    }
}

/// Median (upper middle for even counts) of finite-or-infinite values.
fn median<'a>(values: impl Iterator<Item = &'a f64>, scratch: &mut Vec<f64>) -> f64 {
    scratch.clear();
    scratch.extend(values);
    let mid = scratch.len() / 2;
    *scratch.select_nth_unstable_by(mid, f64::total_cmp).1
}

fn push_capped(history: &mut VecDeque<f64>, value: f64) {
    if history.len() == MAX_HISTORY {
        history.pop_front();
    }
    history.push_back(value);
}

impl Optimiser for Cmaes {
    fn name(&self) -> &'static str {
        "cmaes"
    }

    fn ask(&mut self) -> &[Vec<f64>] {
        if self.restart_pending.replace(false) {
            self.restart();
        }
        if !self.asked {
            self.sample();
            self.asked = true;
        }
        &self.candidates
    }

    fn tell(&mut self, values: &[f64]) {
        if !self.asked {
            return;
        }
        self.asked = false;
        self.iterations += 1;
        let n = self.dim();
        let p = &self.params;
        let p_lambda = p.lambda;

        for (k, f) in self.fitness.iter_mut().enumerate() {
            *f = values.get(k).copied().filter(|v| v.is_finite()).unwrap_or(f64::INFINITY);
        }
        for (i, o) in self.order.iter_mut().enumerate() {
            *o = i;
        }
        // Ties (failures included) rank by position: a total order, so the ranking is reproducible,
        // and the unstable sort needs no buffer.
        let fitness = &self.fitness;
        self.order.sort_unstable_by(|&a, &b| fitness[a].total_cmp(&fitness[b]).then(a.cmp(&b)));
        let best = self.order[0];
        if self.fitness[best] < self.best_value {
            self.best_value = self.fitness[best];
            self.best_x.copy_from_slice(&self.candidates[best]);
        }
        push_capped(&mut self.best_history, self.fitness[best]);
        push_capped(&mut self.median_history, self.fitness[self.order[p.lambda / 2]]);

        // Recombination: y_w = Σ w_i y_{i:λ}, m ← m + σ y_w.
        self.step_w.fill(0.0);
        for (w, &k) in p.weights.iter().zip(&self.order) {
            for (s, y) in self.step_w.iter_mut().zip(&self.steps[k]) {
                *s += w * y;
            }
        }
        for (m, s) in self.mean.iter_mut().zip(&self.step_w) {
            *m += self.sigma * s;
        }
        // Convex combination of feasible points; clamp only against rounding.
        self.bounds.clamp(&mut self.mean);

        // Step-size path: p_σ ← (1 − c_σ) p_σ + √(c_σ(2 − c_σ)μ_eff) C^(−1/2) y_w.
        for (j, t) in self.tmp.iter_mut().enumerate() {
            let col = self.basis.column(j);
            *t = col.iter().zip(&self.step_w).map(|(b, s)| b * s).sum::<f64>() / self.scales[j];
        }
        let cs_norm = (p.cs * (2.0 - p.cs) * p.mueff).sqrt();
        for (i, ps) in self.ps.iter_mut().enumerate() {
            let row = self.basis.row(i);
            let inv_sqrt: f64 = row.iter().zip(&self.tmp).map(|(b, t)| b * t).sum();
            *ps = (1.0 - p.cs) * *ps + cs_norm * inv_sqrt;
        }
        let ps_norm = self.ps.iter().map(|x| x * x).sum::<f64>().sqrt();

        // Stall the covariance path while σ is growing fast (h_σ = 0), so C does not overshoot.
        self.generation += 1;
        let bias = 1.0 - math::powi(1.0 - p.cs, 2 * self.generation.min(i32::MAX as usize / 2) as i32);
        let hsig = ps_norm / bias.sqrt() / p.chi_n < 1.4 + 2.0 / (n as f64 + 1.0);
        let cc_norm = (p.cc * (2.0 - p.cc) * p.mueff).sqrt();
        for (pc, s) in self.pc.iter_mut().zip(&self.step_w) {
            *pc = (1.0 - p.cc) * *pc + if hsig { cc_norm * s } else { 0.0 };
        }
        let delta_h = if hsig { 0.0 } else { p.cc * (2.0 - p.cc) };

        // C ← (1 − c1 − cμ Σw) C + c1 (p_c p_cᵀ + δ(h_σ) C) + cμ Σ w°_i y_i y_iᵀ, lower triangle only,
        // where w°_i = w_i for the μ best and w_i · n / ‖C^(−1/2) y_i‖² for the rest (negative): a bad
        // step counts by its length in C's own metric, so the active update cannot blow up (eq. 46–47).
        self.rank_weights.clear();
        self.rank_weights.extend_from_slice(&p.weights);
        // Redrawn or projected candidates are no sample of N(m, σ² C): ranking the bad ones of a
        // truncated generation against C would shrink it towards the walls, so it updates passively.
        let negative = if self.truncated { &p.negative_weights[..0] } else { &p.negative_weights[..] };
        for (w, &k) in negative.iter().zip(&self.order[p.weights.len()..]) {
            let y = &self.steps[k];
            let norm2: f64 = (0..n)
                .map(|j| {
                    let t = self.basis.column(j).iter().zip(y).map(|(b, y)| b * y).sum::<f64>() / self.scales[j];
                    t * t
                })
                .sum();
            self.rank_weights.push(if norm2 > 0.0 && norm2.is_finite() { w * n as f64 / norm2 } else { 0.0 });
        }
        let weight_sum = if self.truncated { 1.0 } else { p.weight_sum };
        let keep = 1.0 - p.c1 - p.cmu * weight_sum + p.c1 * delta_h;
        for j in 0..n {
            for i in j..n {
                let rank_mu: f64 = self
                    .rank_weights
                    .iter()
                    .zip(&self.order)
                    .map(|(w, &k)| w * self.steps[k][i] * self.steps[k][j])
                    .sum();
                let c = &mut self.cov[(i, j)];
                *c = keep * *c + p.c1 * self.pc[i] * self.pc[j] + p.cmu * rank_mu;
            }
        }

        // σ ← σ exp((c_σ/d_σ)(‖p_σ‖/E‖N(0,I)‖ − 1)), the exponent capped so one bad generation
        // cannot blow σ up.
        self.sigma *= math::exp(((p.cs / p.ds) * (ps_norm / p.chi_n - 1.0)).min(1.0));

        if self.generation - self.last_decomposition >= p.eigen_interval {
            self.decompose();
        }
        if self.run_stop.is_none() {
            self.check_run();
        }
        self.regime.run_evaluations += p_lambda;
        if self.run_stop.is_none() && self.regime.small_budget_spent() {
            self.run_stop = Some(Termination::MaxEvaluations);
        }
    }

    fn best(&self) -> (&[f64], f64) {
        (&self.best_x, self.best_value)
    }

    fn iterations(&self) -> usize {
        self.iterations
    }

    fn converged(&self, stop: &Stopping) -> Option<Termination> {
        if self.dim() == 0 {
            return Some(Termination::FunctionTolerance);
        }
        if self.generation == 0 {
            return None;
        }
        let reason = self.run_stop.or_else(|| {
            let window = self.params.tolfun_window;
            let history = &self.best_history;
            let range = |values: &mut dyn Iterator<Item = &f64>| {
                let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)));
                hi - lo
            };
            let tolfun = history.len() >= window
                && range(&mut history.range(history.len() - window..)) <= stop.ftol
                && range(&mut self.fitness.iter()) <= stop.ftol;
            if tolfun {
                return Some(Termination::FunctionTolerance);
            }
            let n = self.dim();
            let tolx = (0..n).all(|i| {
                self.sigma * self.cov[(i, i)].sqrt() <= stop.xtol && self.sigma * self.pc[i].abs() <= stop.xtol
            });
            tolx.then_some(Termination::ParameterTolerance)
        })?;
        if self.can_restart() {
            self.restart_pending.set(true);
            return None;
        }
        Some(reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optimise::test_functions::{ellipsoid, evaluator, rastrigin, rosenbrock, sphere};
    use crate::optimise::{OptimResult, Silent, minimise};
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn run(x0: Vec<f64>, bounds: Bounds, options: CmaesOptions, stop: &Stopping, f: fn(&[f64]) -> f64) -> OptimResult {
        let mut cmaes = Cmaes::new(x0, bounds, options).unwrap();
        minimise(&mut cmaes, &mut evaluator(f), stop, &mut Silent, false)
    }

    fn unbounded(x0: Vec<f64>, options: CmaesOptions, f: fn(&[f64]) -> f64) -> OptimResult {
        let stop = Stopping { max_evaluations: Some(100_000), ..Stopping::default() };
        run(x0.clone(), Bounds::unbounded(x0.len()), options, &stop, f)
    }

    #[test]
    fn sphere_10d() {
        let r = unbounded(vec![1.0; 10], CmaesOptions { sigma0: 0.5, ..CmaesOptions::default() }, sphere);
        assert!(r.termination.is_convergence(), "{:?}", r.termination);
        assert!(r.value < 1e-12, "{}", r.value);
    }

    #[test]
    fn rosenbrock_2d_and_10d() {
        for n in [2, 10] {
            let r = unbounded(vec![0.0; n], CmaesOptions { sigma0: 0.5, ..CmaesOptions::default() }, rosenbrock);
            assert!(r.value < 1e-8, "n = {n}: {} after {} evaluations ({:?})", r.value, r.evaluations, r.termination);
            assert!(r.x.iter().all(|x| (x - 1.0).abs() < 1e-4), "{:?}", r.x);
        }
    }

    #[test]
    fn ellipsoid_condition_1e6_10d() {
        let r = unbounded(vec![1.0; 10], CmaesOptions { sigma0: 0.5, ..CmaesOptions::default() }, ellipsoid);
        assert!(r.value < 1e-10, "{} after {} evaluations ({:?})", r.value, r.evaluations, r.termination);
    }

    #[test]
    fn active_update_speeds_up_the_ellipsoid() {
        // The negative weights shrink C along the steep axes: the passive update needs ≈ 5,800
        // evaluations to 1e-8 here (pycma's active default ≈ 4,000).
        let stop = Stopping { target_value: Some(1e-8), max_evaluations: Some(100_000), ..Stopping::default() };
        let mut evaluations: Vec<usize> = (1..=5)
            .map(|seed| {
                let options = CmaesOptions { sigma0: 0.5, seed, ..CmaesOptions::default() };
                let r = run(vec![1.0; 10], Bounds::unbounded(10), options, &stop, ellipsoid);
                assert_eq!(r.termination, Termination::TargetReached, "seed {seed}: {r:?}");
                r.evaluations
            })
            .collect();
        evaluations.sort_unstable();
        assert!(evaluations[2] < 4_800, "{evaluations:?}");
        let p = Params::new(10, 10);
        let negative: f64 = p.negative_weights.iter().sum();
        assert!(p.negative_weights.iter().all(|&w| w <= 0.0) && negative < -0.1, "{:?}", p.negative_weights);
        assert!((p.weights.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!((p.weight_sum - (1.0 + negative)).abs() < 1e-12);
    }

    fn rastrigin_10d_solved(restarts: Restarts) -> usize {
        let bounds = Bounds { lower: vec![-5.12; 10], upper: vec![5.12; 10] };
        let stop = Stopping { target_value: Some(1e-9), max_evaluations: Some(2_000_000), ..Stopping::default() };
        (0..10)
            .filter(|&seed| {
                let options = CmaesOptions { sigma0: 2.0, seed, restarts: restarts.clone(), ..CmaesOptions::default() };
                let r = run(vec![3.0; 10], bounds.clone(), options, &stop, rastrigin);
                r.value < 1e-8
            })
            .count()
    }

    #[test]
    fn rastrigin_10d_ipop() {
        let solved = rastrigin_10d_solved(Restarts::IPOP);
        assert!(solved >= 9, "solved {solved} of 10");
    }

    #[test]
    fn rastrigin_10d_bipop() {
        let solved = rastrigin_10d_solved(Restarts::BIPOP);
        assert!(solved >= 9, "solved {solved} of 10");
    }

    /// Every batch a run asks, in order.
    fn asked_batches(options: CmaesOptions, max_evaluations: usize) -> Vec<Vec<f64>> {
        let bounds = Bounds { lower: vec![-5.12; 5], upper: vec![5.12; 5] };
        let mut cmaes = Cmaes::new(vec![3.0; 5], bounds, options).unwrap();
        let mut asked = Vec::new();
        let mut eval = |batch: &[Vec<f64>], out: &mut [f64]| {
            asked.extend_from_slice(batch);
            evaluator(rastrigin)(batch, out);
        };
        let stop = Stopping { max_evaluations: Some(max_evaluations), ..Stopping::default() };
        minimise(&mut cmaes, &mut eval, &stop, &mut Silent, false);
        assert!(cmaes.restarts_done > 0);
        asked
    }

    #[test]
    fn same_seed_same_asks() {
        // The budget covers a few restarts, so the random restart points (and BIPOP's random
        // populations and step sizes) are checked too.
        for restarts in [Restarts::IPOP, Restarts::BIPOP] {
            let options =
                |seed| CmaesOptions { sigma0: 1.0, seed, restarts: restarts.clone(), ..CmaesOptions::default() };
            let bits = |batches: Vec<Vec<f64>>| -> Vec<u64> { batches.iter().flatten().map(|x| x.to_bits()).collect() };
            let a = bits(asked_batches(options(42), 20_000));
            assert_eq!(a, bits(asked_batches(options(42), 20_000)));
            let b = bits(asked_batches(options(43), 20_000));
            assert_ne!(a[..b.len().min(a.len())], b[..b.len().min(a.len())]);
        }
    }

    #[test]
    fn bipop_interleaves_regimes_with_balanced_budgets() {
        let options =
            CmaesOptions { restarts: Restarts::Bipop { max_restarts: 4, factor: 2.0 }, ..CmaesOptions::default() };
        let bounds = Bounds { lower: vec![-5.12; 5], upper: vec![5.12; 5] };
        let mut cmaes = Cmaes::new(vec![3.0; 5], bounds, options).unwrap();
        // (small, population, evaluations) of every run, in order.
        let mut runs: Vec<(bool, usize, usize)> = Vec::new();
        let mut values = Vec::new();
        loop {
            let restarts_before = cmaes.restarts_done;
            let batch = cmaes.ask();
            let lambda = batch.len();
            values.clear();
            values.extend(batch.iter().map(|x| rastrigin(x)));
            if runs.is_empty() || cmaes.restarts_done != restarts_before {
                runs.push((cmaes.regime.small, lambda, 0));
            }
            runs.last_mut().unwrap().2 += lambda;
            cmaes.tell(&values);
            if cmaes.converged(&Stopping::default()).is_some() {
                break;
            }
        }
        let large: Vec<usize> = runs.iter().filter(|r| !r.0).map(|r| r.1).collect();
        assert_eq!(large, [8, 16, 32, 64, 128], "{runs:?}");
        assert!(!runs[1].0, "the first restart is large: {runs:?}");
        assert!(!runs.last().unwrap().0, "the search ends with its last large run: {runs:?}");
        // Small runs take turns while they have used fewer evaluations than the large ones, with
        // populations from λ₀ to half the latest large one and at most half its evaluations.
        let (mut large_evals, mut small_evals, mut latest_large) = (0, 0, (0, 0));
        for (i, &(small, lambda, evals)) in runs.iter().enumerate() {
            if small {
                assert!(small_evals < large_evals, "run {i}: {runs:?}");
                assert!((8..=latest_large.0 / 2).contains(&lambda), "run {i}: {runs:?}");
                assert!(evals < latest_large.1 / 2 + lambda, "run {i}: {runs:?}");
                small_evals += evals;
            } else {
                assert!(i <= 1 || small_evals >= large_evals, "run {i}: {runs:?}");
                large_evals += evals;
                latest_large = (lambda, evals);
            }
        }
        assert!(runs.iter().filter(|r| r.0).count() >= 4, "{runs:?}");
    }

    #[test]
    fn ipop_restarts_grow_the_population() {
        let options =
            CmaesOptions { restarts: Restarts::Ipop { max_restarts: 3, factor: 2.0 }, ..CmaesOptions::default() };
        let mut cmaes =
            Cmaes::new(vec![3.0; 5], Bounds { lower: vec![-5.12; 5], upper: vec![5.12; 5] }, options).unwrap();
        let mut sizes = Vec::new();
        let mut eval = |batch: &[Vec<f64>], out: &mut [f64]| {
            sizes.push(batch.len());
            evaluator(rastrigin)(batch, out);
        };
        let r = minimise(&mut cmaes, &mut eval, &Stopping::default(), &mut Silent, false);
        sizes.dedup();
        assert_eq!(sizes, [8, 16, 32, 64]);
        assert_eq!(r.iterations, cmaes.iterations());
        // The best over all runs, not the last run's.
        let (x, value) = cmaes.best();
        assert_eq!((x, value), (&r.x[..], r.value));
        assert_eq!(rastrigin(x), value);
    }

    #[test]
    fn candidates_stay_in_bounds() {
        // The unconstrained minimum lies outside the box, so the search presses on its faces;
        // IPOP restarts from random points of the box add more draws near the walls.
        let bounds = Bounds { lower: vec![1.0, -1.0, 0.5, -3.0], upper: vec![2.0, 1.0, 0.6, 3.0] };
        let options = CmaesOptions {
            sigma0: 1.0,
            restarts: Restarts::Ipop { max_restarts: 2, factor: 2.0 },
            ..CmaesOptions::default()
        };
        let mut cmaes = Cmaes::new(vec![1.9, 0.9, 0.55, 2.0], bounds.clone(), options).unwrap();
        let mut eval = |batch: &[Vec<f64>], out: &mut [f64]| {
            for (x, o) in batch.iter().zip(out.iter_mut()) {
                assert!(bounds.contains(x), "{x:?} outside the box");
                *o = sphere(x);
            }
        };
        let r = minimise(&mut cmaes, &mut eval, &Stopping::default(), &mut Silent, false);
        let expected = [1.0, 0.0, 0.5, 0.0];
        assert!(r.x.iter().zip(expected).all(|(x, e)| (x - e).abs() < 1e-6), "{:?}", r.x);
        assert!(bounds.contains(&cmaes.mean));
    }

    #[test]
    fn failed_evaluations_rank_worst() {
        let mut cmaes = Cmaes::new(vec![0.0; 3], Bounds::unbounded(3), CmaesOptions::default()).unwrap();
        let lambda = cmaes.ask().len();
        let mut values: Vec<f64> = (0..lambda).map(|k| k as f64).collect();
        values[0] = f64::NAN;
        values[1] = f64::INFINITY;
        values[2] = f64::NEG_INFINITY;
        cmaes.tell(&values);
        assert_eq!(cmaes.order[..lambda - 3], (3..lambda).collect::<Vec<_>>()[..]);
        assert_eq!(cmaes.order[lambda - 3..], [0, 1, 2]);
        assert_eq!(cmaes.best().1, 3.0);

        // Whole generations of failures, then a sphere whose evaluation fails on half of space:
        // no panic, and the search still finds the feasible optimum x_0 = 0.5.
        let mut cmaes = Cmaes::new(vec![2.0; 5], Bounds::unbounded(5), CmaesOptions::default()).unwrap();
        for _ in 0..20 {
            let n = cmaes.ask().len();
            cmaes.tell(&vec![f64::NAN; n]);
        }
        assert_eq!(cmaes.best().1, f64::INFINITY);
        let mut eval = |batch: &[Vec<f64>], out: &mut [f64]| {
            for (x, o) in batch.iter().zip(out.iter_mut()) {
                *o = if x[0] < 0.5 { f64::NAN } else { sphere(x) };
            }
        };
        let r = minimise(&mut cmaes, &mut eval, &Stopping::default(), &mut Silent, false);
        assert!((r.value - 0.25).abs() < 1e-8, "{} ({:?})", r.value, r.termination);
    }

    #[test]
    fn degenerate_problems_stop() {
        let stop = Stopping { max_evaluations: Some(100_000), ..Stopping::default() };
        // A constant function and a function of one coordinate out of three.
        let constant = unbounded(vec![1.0; 3], CmaesOptions::default(), |_| 1.0);
        assert_eq!(constant.termination, Termination::FunctionTolerance);
        let flat = unbounded(vec![1.0; 3], CmaesOptions::default(), |x| x[0] * x[0]);
        assert!(flat.termination != Termination::MaxEvaluations, "{:?}", flat.termination);
        let one_d = run(vec![1.0], Bounds::unbounded(1), CmaesOptions::default(), &stop, |x| math::powi(x[0] - 3.0, 2));
        assert!((one_d.x[0] - 3.0).abs() < 1e-6);
        let zero_d = run(vec![], Bounds::unbounded(0), CmaesOptions::default(), &stop, |_| 2.0);
        assert_eq!((zero_d.value, zero_d.termination), (2.0, Termination::FunctionTolerance));
    }

    #[test]
    fn options_serde() {
        let parse = |s: &str| serde_json::from_str::<CmaesOptions>(s);
        assert_eq!(parse("{}").unwrap(), CmaesOptions::default());
        assert_eq!(parse(r#"{"restarts": "ipop"}"#).unwrap().restarts, Restarts::IPOP);
        assert_eq!(parse(r#"{"restarts": "none"}"#).unwrap().restarts, Restarts::None);
        assert_eq!(parse(r#"{"restarts": {"kind": "none"}}"#).unwrap().restarts, Restarts::None);
        assert_eq!(
            parse(r#"{"restarts": {"kind": "ipop", "factor": 3.0}}"#).unwrap().restarts,
            Restarts::Ipop { max_restarts: 9, factor: 3.0 }
        );
        assert_eq!(parse(r#"{"restarts": "bipop"}"#).unwrap().restarts, Restarts::BIPOP);
        assert_eq!(
            parse(r#"{"restarts": {"kind": "bipop", "max_restarts": 4}}"#).unwrap().restarts,
            Restarts::Bipop { max_restarts: 4, factor: 2.0 }
        );
        assert!(parse(r#"{"restarts": "popi"}"#).is_err());
        assert!(parse(r#"{"restarts": {"kind": "ipop", "restarts": 3}}"#).is_err());
        assert!(parse(r#"{"sigma": 1.0}"#).is_err());
        for restarts in [Restarts::None, Restarts::IPOP, Restarts::BIPOP] {
            let options = CmaesOptions { population: Some(20), seed: 7, restarts, ..CmaesOptions::default() };
            assert_eq!(parse(&serde_json::to_string(&options).unwrap()).unwrap(), options);
        }
    }

    #[test]
    fn options_are_checked_at_their_boundaries_and_refused_without_a_panic() {
        let boxed = Bounds { lower: vec![0.0, -1.0], upper: vec![1.0, f64::INFINITY] };
        let check = |o: CmaesOptions, b: &Bounds| o.check(b).map_err(|e| e.to_string());
        let base = CmaesOptions::default();
        // sigma0 up to 1e6 widest finite sides (here 1), or 1e300 on a box without one.
        assert!(check(CmaesOptions { sigma0: 1e6, ..base.clone() }, &boxed).is_ok());
        assert_eq!(
            check(CmaesOptions { sigma0: 1.5e6, ..base.clone() }, &boxed),
            Err("sigma0 must be at most 1e6 × the widest side of the box, 1.0 (got 1500000.0)".into())
        );
        assert!(check(CmaesOptions { sigma0: 1e300, ..base.clone() }, &Bounds::unbounded(2)).is_ok());
        assert!(check(CmaesOptions { sigma0: 1e308, ..base.clone() }, &Bounds::unbounded(2)).is_err());
        for sigma0 in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(check(CmaesOptions { sigma0, ..base.clone() }, &boxed).unwrap_err().starts_with("sigma0"));
        }
        assert!(check(CmaesOptions { population: Some(2), ..base.clone() }, &boxed).is_ok());
        assert_eq!(
            check(CmaesOptions { population: Some(1), ..base.clone() }, &boxed),
            Err("population must be at least 2 (got 1)".into())
        );
        let huge = check(CmaesOptions { population: Some(usize::MAX / 2), ..base.clone() }, &boxed).unwrap_err();
        assert!(huge.starts_with(&format!("population {} would need about", usize::MAX / 2)), "{huge}");
        let restarts =
            |factor, max_restarts| CmaesOptions { restarts: Restarts::Ipop { max_restarts, factor }, ..base.clone() };
        assert!(check(restarts(1.0, 1_000_000), &boxed).is_ok());
        assert!(check(restarts(2.0, 9), &boxed).is_ok());
        for factor in [0.999, f64::NAN, f64::INFINITY] {
            assert!(check(restarts(factor, 9), &boxed).unwrap_err().starts_with("restarts.factor must be"), "{factor}");
        }
        let grown = check(restarts(1e308, 9), &boxed).unwrap_err();
        assert!(
            grown.starts_with("restarts.factor 1e308 (a population of inf") && grown.contains("would need"),
            "{grown}"
        );
        let bipop = CmaesOptions { restarts: Restarts::Bipop { max_restarts: 100, factor: 2.0 }, ..base.clone() };
        assert!(check(bipop, &boxed).unwrap_err().contains("after 100 restarts"));
        assert_eq!(
            Cmaes::new(vec![0.5, 0.0], boxed, CmaesOptions { sigma0: 1e308, ..base }).unwrap_err().key,
            "sigma0"
        );
    }

    #[test]
    fn the_largest_allowed_sigma0_still_finds_the_optimum_inside_the_box() {
        let f = |x: &[f64]| x.iter().map(|v| math::powi(v - 0.3, 2)).sum::<f64>();
        for seed in 0..10 {
            let bounds = Bounds { lower: vec![0.0; 4], upper: vec![1.0; 4] };
            let options = CmaesOptions { sigma0: MAX_SIGMA0_PER_SIDE, seed, ..CmaesOptions::default() };
            let mut cmaes = Cmaes::new(vec![0.9; 4], bounds, options).unwrap();
            let stop = Stopping { max_evaluations: Some(20_000), ..Stopping::default() };
            let r = minimise(&mut cmaes, &mut evaluator(f), &stop, &mut Silent, false);
            assert!(r.value < 1e-10, "seed {seed}: {} ({:?})", r.value, r.termination);
        }
    }
}
