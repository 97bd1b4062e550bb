//! Dynamic nested sampling (Skilling 2006; Higson, Handley, Hobson & Lasenby, "Dynamic nested
//! sampling: an improved algorithm for parameter estimation and evidence calculation", Statistics and
//! Computing 29, 2019), with multi-ellipsoid bounds as in MultiNest and dynesty.
//!
//! # The run
//!
//! 1. **Baseline.** A static run with `K` live points drawn from the prior. Each iteration removes the
//!    `B` worst live points at once (`replace`; ties with the last one too) and replaces them with `B`
//!    new points drawn from the prior restricted to `L > L*`, `L*` the highest removed likelihood. The
//!    survivors are uniform above `L*` as well, so the live set stays an i.i.d. sample of the
//!    constrained prior, and the `B` replacements form one parallel batch. It stops when the live
//!    points could add at most `dlogz` to `ln Z`: `ln(Z + L_max X) − ln Z < dlogz`.
//! 2. **Dynamic batches.** Each batch starts `K_b` new threads at a contour `L_low` and runs them up to
//!    `L_high`, where the importance of further samples is highest: Higson et al.'s weights
//!    `posterior_fraction · p_i + (1 − posterior_fraction) · Z_{>i}/n_i`, with the bounds set by the
//!    first and last samples whose weight exceeds `max_fraction` of the largest, padded by `pad` (the
//!    function dynesty uses). A batch's first points are drawn above `L_low` from a bound of the points
//!    that were live when the run crossed `L_low` (an i.i.d. sample above it). Batches continue until
//!    the posterior has `n_effective` effective samples (Kish), or `max_batches`.
//!
//! # Accounting
//!
//! Every point records its birth contour (the likelihood above which it was drawn). Over all points of
//! all batches sorted by likelihood, the number of live points at the death of point `i` is
//! `n_i = #{births < L_i} − #{deaths < L_i}`: `K` for single replacements, `K, K−1, …, K−B+1` within a
//! batch removal, decreasing to 1 for the last live points of a run, and the sum over threads where
//! batches overlap. Prior volumes shrink by the expected factor `n/(n+1)` per death (the unbiased
//! estimate of `X`), weights are `w_i = L_i (X_{i−1} − X_i)`.
//!
//! # Error of ln Z
//!
//! `log_z_err` linearises `ln Z` in the random shrinkage factors `t_k ~ Beta(n_k, 1)`
//! (`Var ln t_k = 1/n_k²`): `Var ln Z ≈ Σ_k (W_{>k} − n_k w_k)² / (n_k² Z²)`, which reduces to Skilling's
//! `H/K` for a static run but holds for any live-point history. With `bootstrap = R ≥ 2` the run's
//! threads are resampled with replacement `R` times instead (per batch; Higson, Handley, Hobson &
//! Lasenby, Bayesian Analysis 13, 2018) and the spread of the replicates gives both the `ln Z` error and
//! the Monte Carlo errors of the posterior means (otherwise `sd/√ESS` with Kish's ESS). Measured over
//! many seeds, `(ln Z − truth)/log_z_err` has a spread of ≈ 1.0 on Gaussians (d = 2, 5, 10) and
//! ≈ 1.2 on the two Gaussian shells (the multi-ellipsoid bound occasionally clips a thin arc); the
//! bootstrap gives the same.
//!
//! # Sampling within the contour
//!
//! Points are drawn from the unit cube (then mapped by the prior's quantiles) until the expected prior
//! volume falls below `first_update`; from then on from a bound of the live points (multi-ellipsoid by
//! default, enlarged by `enlarge` in volume and never smaller than the expected volume), rebuilt every
//! `update_interval · K` deaths. A draw is kept if its likelihood exceeds the contour (rejection
//! sampling, exact). When fewer than `1/(2·walks)` of the draws are kept — rejection would cost more
//! than twice a random walk — `sampling = "auto"` switches to random walks: each new point starts at a
//! random live point and takes `walks` Metropolis steps, uniform in the bounding ellipsoid's shape
//! scaled by an adapted factor (targeting half the steps accepted), accepted when inside the contour.
//! Each ask holds one step of every walker (or the rejection draws expected to yield the missing
//! points), so batches are evaluated in parallel. Surplus rejection draws above the contour are kept
//! and used by later iterations if they still lie above the then-current contour (valid: uniform above
//! `L₁` and above `L₂ > L₁` means uniform above `L₂`).

use crate::math;
use std::cmp::Ordering;
use std::collections::VecDeque;

use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::{Deserialize, Serialize};

use super::ellipsoid::{Bound, BoundSettings};
use super::prior::Prior;
use super::summary::{kish_ess, summarise};
use super::{Evidence, OptionError, SampleResult, SampleTermination, Sampler};
use crate::check::{at_least, positive, require, require_memory};

/// The region new points are drawn from before the likelihood test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Bounding {
    /// The whole unit cube (the prior): exact but slow once the posterior is small.
    None,
    /// One ellipsoid around the live points.
    Single,
    /// Several ellipsoids, split while that at least halves the volume: multimodal and curved posteriors.
    Multi,
}

/// How new points are drawn inside the bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sampling {
    /// Rejection sampling, switching to random walks where that costs less than half as much.
    Auto,
    /// Always rejection sampling from the bound: independent draws, exact.
    Rejection,
    /// Random walks from live points once the bound is in use.
    Walk,
}

/// Options of dynamic batches (after the baseline run). TOML: `[dynamic]` within the nested options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DynamicOptions {
    /// Most batches to add; `0` makes a static run. Default `100`.
    pub max_batches: usize,
    /// Live points of each batch. Default: the baseline's `live_points`.
    pub live_points: Option<usize>,
    /// Stop adding batches once the posterior sample has this many effective samples (Kish). Default `10000`.
    pub n_effective: f64,
    /// Share of the batch weight given to the posterior (the rest to the evidence). Default `0.8`.
    pub posterior_fraction: f64,
    /// Batches span the samples whose weight is at least this fraction of the largest. Default `0.8`.
    pub max_fraction: f64,
    /// Samples added on each side of that span. Default `1`.
    pub pad: usize,
}

impl Default for DynamicOptions {
    fn default() -> Self {
        DynamicOptions {
            max_batches: 100,
            live_points: None,
            n_effective: 10_000.0,
            posterior_fraction: 0.8,
            max_fraction: 0.8,
            pad: 1,
        }
    }
}

/// Options of [`NestedSampler`], as read from the user's configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NestedOptions {
    /// Live points `K` of the baseline run (at least the dimension + 2). Default `500`.
    pub live_points: usize,
    /// Worst points replaced per iteration `B` (at most `K/2`): the parallel batch. Default `⌈K/20⌉`.
    pub replace: Option<usize>,
    /// Stop a run when the live points could add at most this to `ln Z`. Default `0.01`.
    pub dlogz: f64,
    /// Default `"multi"`.
    pub bounding: Bounding,
    /// Default `"auto"`.
    pub sampling: Sampling,
    /// Volume enlargement of every bounding ellipsoid. Default `1.25`.
    pub enlarge: f64,
    /// Rebuild the bound after this many times `K` deaths. Default `0.2`.
    pub update_interval: f64,
    /// Start bounding once the expected prior volume is below this (sample the cube before). Default `0.1`.
    pub first_update: f64,
    /// Steps of each random walk. Default `25`.
    pub walks: usize,
    /// Stop after this many iterations in all. Default: none.
    pub max_iterations: Option<usize>,
    /// Stop after this many likelihood calls in all (checked between iterations). Default: none.
    pub max_calls: Option<usize>,
    /// Bootstrap replicates of the threads for the errors of `ln Z` and the posterior means; `0` uses
    /// the analytic `ln Z` error and `sd/√ESS` for the means. Default `0`.
    pub bootstrap: usize,
    /// Seed of the random number generator. Default `0`.
    pub seed: u64,
    pub dynamic: DynamicOptions,
}

impl Default for NestedOptions {
    fn default() -> Self {
        NestedOptions {
            live_points: 500,
            replace: None,
            dlogz: 0.01,
            bounding: Bounding::Multi,
            sampling: Sampling::Auto,
            enlarge: 1.25,
            update_interval: 0.2,
            first_update: 0.1,
            walks: 25,
            max_iterations: None,
            max_calls: None,
            bootstrap: 0,
            seed: 0,
            dynamic: DynamicOptions::default(),
        }
    }
}

impl NestedOptions {
    /// Check every option against its allowed range, for `d` parameters. A limit of zero would end the run before
    /// its first iteration and report an evidence of nothing; the live points (and the bootstrap replicates)
    /// must fit in memory.
    pub fn check(&self, d: usize) -> Result<(), OptionError> {
        let live = |key: &str, k: usize| {
            at_least(key, k, d + 2)?;
            require_memory(key, k, k as f64, (2 * d * 8 + 128) as f64)
        };
        live("live_points", self.live_points)?;
        if let Some(b) = self.replace {
            let half = (self.live_points / 2).max(1);
            require((1..=half).contains(&b), "replace", &format!("in 1..=live_points/2 = {half}"), b)?;
        }
        positive("dlogz", self.dlogz)?;
        require(self.enlarge >= 1.0 && self.enlarge.is_finite(), "enlarge", "a finite number ≥ 1", self.enlarge)?;
        positive("update_interval", self.update_interval)?;
        let first = self.first_update;
        require(first > 0.0 && first <= 1.0, "first_update", "in (0, 1]", first)?;
        at_least("walks", self.walks, 1)?;
        if let Some(max) = self.max_iterations {
            at_least("max_iterations", max, 1)?;
        }
        if let Some(max) = self.max_calls {
            at_least("max_calls", max, 1)?;
        }
        require_memory("bootstrap", self.bootstrap, self.bootstrap as f64, ((d + 1) * 8 + 48) as f64)?;
        let dy = &self.dynamic;
        if let Some(b) = dy.live_points {
            live("live_points", b).map_err(|e| e.within("dynamic"))?;
        }
        let n_eff = dy.n_effective;
        require(n_eff >= 0.0, "dynamic.n_effective", "a number ≥ 0", n_eff)?;
        for (key, share) in
            [("dynamic.posterior_fraction", dy.posterior_fraction), ("dynamic.max_fraction", dy.max_fraction)]
        {
            require((0.0..=1.0).contains(&share), key, "in [0, 1]", share)?;
        }
        Ok(())
    }
}

/// Why nested sampling stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NestedStop {
    /// Still running (a result taken before the end).
    Running,
    /// A static run (`max_batches = 0`) reached `dlogz`.
    Evidence,
    /// The posterior reached `n_effective` effective samples.
    EffectiveSamples,
    MaxBatches,
    MaxIterations,
    MaxCalls,
}

/// Diagnostics of a nested sampling run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NestedInfo {
    pub stop: NestedStop,
    /// Baseline live points.
    pub live_points: usize,
    /// Dynamic batches added after the baseline.
    pub batches: usize,
    /// Sample points (dead points, the final live points included).
    pub samples: usize,
    /// Accepted new points per likelihood call.
    pub efficiency: f64,
    /// `ln Z` error from the linearised shrinkage variance (see the module documentation).
    pub log_z_err_analytic: f64,
    /// `ln Z` standard deviation over thread-bootstrap replicates (`bootstrap > 0`).
    pub log_z_err_bootstrap: Option<f64>,
    /// Ellipsoids in the last bound (0: the unit cube).
    pub ellipsoids: usize,
    /// Whether random walks were used.
    pub walks_used: bool,
}

/// A total order on points: likelihood, then creation order, so ties are resolved reproducibly.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Key {
    logl: f64,
    id: u64,
}

impl Key {
    fn cmp(&self, other: &Key) -> Ordering {
        self.logl.total_cmp(&other.logl).then(self.id.cmp(&other.id))
    }
}

/// The birth contour of points drawn from the whole prior (ids start at 1).
const PRIOR_BIRTH: Key = Key { logl: f64::NEG_INFINITY, id: 0 };

/// A point with its likelihood, before it joins the live set.
#[derive(Debug, Clone)]
struct Candidate {
    u: Vec<f64>,
    x: Vec<f64>,
    logl: f64,
}

#[derive(Debug, Clone)]
struct Point {
    u: Vec<f64>,
    x: Vec<f64>,
    key: Key,
    birth: Key,
    thread: u32,
}

#[derive(Debug, Clone)]
struct Walker {
    current: Candidate,
    steps: usize,
    accepted: usize,
}

/// Points wanted above a contour.
#[derive(Debug, Clone)]
struct Demand {
    /// `None`: fresh prior draws, every likelihood accepted (`-inf` included: zero-likelihood prior
    /// volume must be counted, not redrawn).
    contour: Option<Key>,
    /// The thread of each wanted point.
    threads: Vec<u32>,
    accepted: Vec<Candidate>,
    walkers: Vec<Walker>,
}

impl Demand {
    fn accepts(&self, logl: f64) -> bool {
        self.contour.is_none_or(|c| logl > c.logl)
    }

    fn missing(&self) -> usize {
        self.threads.len() - self.accepted.len() - self.walkers.len()
    }
}

/// One run: the baseline or a dynamic batch.
#[derive(Debug, Clone)]
struct Segment {
    live_points: usize,
    replace: usize,
    /// Stop once the worst live point reaches this (dynamic batches).
    ceiling: Option<Key>,
    live: Vec<Point>,
    /// Expected ln prior volume inside the current contour.
    ln_x: f64,
    /// ln Z accumulated by this segment's deaths.
    ln_z: f64,
    /// ln Z of the merged run when the batch began: the reference for a batch's evidence criterion.
    z_reference: Option<f64>,
    /// Drawing from a bound rather than the cube (the bound itself is `None` while it exceeds the cube).
    bounded: bool,
    bound: Option<Bound>,
    deaths_since_bound: usize,
    walking: bool,
    /// Expected rejection efficiency of the current bound, before any draws are counted.
    efficiency_prior: f64,
    trials: usize,
    hits: usize,
    spares: VecDeque<Candidate>,
    /// While filling a batch: the points that were live when the run crossed the batch's contour, an
    /// i.i.d. sample of the prior above it. The first bound and the walkers' starts come from them.
    pool: Vec<Candidate>,
}

/// Dynamic nested sampler. See the [module documentation](self) for the algorithm.
#[derive(Debug, Clone)]
pub struct NestedSampler {
    prior: Prior,
    options: NestedOptions,
    rng: Xoshiro256PlusPlus,
    dead: Vec<Point>,
    /// The segment (0 = baseline) each thread belongs to.
    thread_segment: Vec<u32>,
    segment: Segment,
    segment_index: u32,
    demand: Demand,
    walk_scale: f64,
    batches: usize,
    iterations: usize,
    evaluations: usize,
    accepted_points: usize,
    next_id: u64,
    stop: Option<NestedStop>,
    walks_used: bool,
    max_logl: f64,
    batch_u: Vec<Vec<f64>>,
    batch_x: Vec<Vec<f64>>,
    /// For walk batches: the walker of each proposal.
    owners: Vec<usize>,
    asked: bool,
}

/// A merged run integrated: sorted order, weights and evidence.
#[derive(Debug, Clone)]
struct Integral {
    /// Point indices by increasing key.
    order: Vec<usize>,
    /// ln weights by sorted position.
    ln_w: Vec<f64>,
    /// ln X after each death, by sorted position.
    ln_x: Vec<f64>,
    n_live: Vec<usize>,
    ln_z: f64,
    ln_z_err: f64,
    information: f64,
}

/// A point's key within a bootstrap replicate: `copy` tells repeated threads apart.
#[derive(Debug, Clone, Copy)]
struct RunKey {
    logl: f64,
    id: u64,
    copy: u32,
}

impl RunKey {
    fn cmp(&self, other: &RunKey) -> Ordering {
        self.logl.total_cmp(&other.logl).then(self.id.cmp(&other.id)).then(self.copy.cmp(&other.copy))
    }

    fn point(key: Key, copy: u32) -> Self {
        RunKey { logl: key.logl, id: key.id, copy }
    }

    /// A birth contour lies above every copy of the point that defines it.
    fn birth(key: Key) -> Self {
        RunKey { logl: key.logl, id: key.id, copy: u32::MAX }
    }
}

fn log_add(a: f64, b: f64) -> f64 {
    let m = a.max(b);
    if m == f64::NEG_INFINITY { m } else { m + math::ln(math::exp(a - m) + math::exp(b - m)) }
}

/// Integrate a run given each point's key and birth (any order).
fn integrate(keys: &[RunKey], births: &[RunKey]) -> Integral {
    let n = keys.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_unstable_by(|&a, &b| keys[a].cmp(&keys[b]));
    let mut sorted_births = births.to_vec();
    sorted_births.sort_unstable_by(RunKey::cmp);

    let mut ln_w = Vec::with_capacity(n);
    let mut ln_x = Vec::with_capacity(n);
    let mut n_live = Vec::with_capacity(n);
    let mut x_prev = 0.0;
    let mut ln_z = f64::NEG_INFINITY;
    for (i, &k) in order.iter().enumerate() {
        let key = keys[k];
        let born = sorted_births.partition_point(|b| b.cmp(&key) == Ordering::Less);
        // Every point counted as dead is one whose own birth is counted too, so this is at least 1.
        let live = born.saturating_sub(i).max(1);
        let nf = live as f64;
        let w = if key.logl == f64::NEG_INFINITY { f64::NEG_INFINITY } else { key.logl + x_prev - math::ln(nf + 1.0) };
        x_prev += math::ln(nf / (nf + 1.0));
        ln_w.push(w);
        ln_x.push(x_prev);
        n_live.push(live);
        ln_z = log_add(ln_z, w);
    }

    let (mut ln_z_err, mut information) = (f64::NAN, f64::NAN);
    if ln_z.is_finite() {
        let p: Vec<f64> = ln_w.iter().map(|w| math::exp(w - ln_z)).collect();
        information =
            p.iter().zip(&order).filter(|(pi, _)| **pi > 0.0).map(|(pi, &k)| pi * keys[k].logl).sum::<f64>() - ln_z;
        // Var ln Z ≈ Σ_k (P_{>k} − n_k p_k)² / n_k², P_{>k} the posterior mass after k.
        let mut after = 0.0;
        let mut var = 0.0;
        for i in (0..n).rev() {
            let nf = n_live[i] as f64;
            let d = after - nf * p[i];
            var += d * d / (nf * nf);
            after += p[i];
        }
        ln_z_err = var.sqrt();
    }
    Integral { order, ln_w, ln_x, n_live, ln_z, ln_z_err, information }
}

impl NestedSampler {
    pub fn new(prior: Prior, options: NestedOptions) -> Result<Self, OptionError> {
        options.check(prior.dim())?;
        let k = options.live_points;
        let segment = Self::empty_segment(&options, k, None, 0.0, None);
        let mut sampler = NestedSampler {
            rng: Xoshiro256PlusPlus::seed_from_u64(options.seed),
            prior,
            dead: Vec::new(),
            thread_segment: Vec::new(),
            segment,
            segment_index: 0,
            demand: Demand { contour: None, threads: Vec::new(), accepted: Vec::new(), walkers: Vec::new() },
            walk_scale: 0.5,
            batches: 0,
            iterations: 0,
            evaluations: 0,
            accepted_points: 0,
            next_id: 1,
            stop: None,
            walks_used: false,
            max_logl: f64::NEG_INFINITY,
            batch_u: Vec::new(),
            batch_x: Vec::new(),
            owners: Vec::new(),
            asked: false,
            options,
        };
        sampler.demand.threads = sampler.new_threads(k);
        Ok(sampler)
    }

    fn empty_segment(
        options: &NestedOptions,
        live_points: usize,
        ceiling: Option<Key>,
        ln_x: f64,
        z_reference: Option<f64>,
    ) -> Segment {
        let replace = options.replace.unwrap_or(live_points.div_ceil(20)).clamp(1, (live_points / 2).max(1));
        Segment {
            live_points,
            replace,
            ceiling,
            live: Vec::with_capacity(live_points),
            ln_x,
            ln_z: f64::NEG_INFINITY,
            z_reference,
            bounded: false,
            bound: None,
            deaths_since_bound: 0,
            walking: false,
            efficiency_prior: math::exp(ln_x).clamp(1e-4, 1.0),
            trials: 0,
            hits: 0,
            spares: VecDeque::new(),
            pool: Vec::new(),
        }
    }

    fn new_threads(&mut self, count: usize) -> Vec<u32> {
        let first = self.thread_segment.len() as u32;
        self.thread_segment.extend(std::iter::repeat_n(self.segment_index, count));
        (first..first + count as u32).collect()
    }

    pub fn options(&self) -> &NestedOptions {
        &self.options
    }

    fn dim(&self) -> usize {
        self.prior.dim()
    }

    /// Expected efficiency of rejection draws from the current bound: the measured share, smoothed
    /// towards the volume ratio while few draws have been counted.
    fn efficiency(&self) -> f64 {
        let s = &self.segment;
        const PSEUDO: f64 = 20.0;
        ((s.hits as f64 + PSEUDO * s.efficiency_prior) / (s.trials as f64 + PSEUDO)).clamp(1e-4, 1.0)
    }

    /// Fill `batch_u`/`batch_x` with the proposals of the current demand.
    fn propose(&mut self) {
        self.batch_u.clear();
        self.batch_x.clear();
        self.owners.clear();
        let d = self.dim();
        let mut v = vec![0.0; d];
        if !self.demand.walkers.is_empty() {
            self.ensure_bound();
            let Some(bound) = self.segment.bound.as_ref() else { return };
            for (w, walker) in self.demand.walkers.iter_mut().enumerate() {
                while walker.steps < self.options.walks {
                    let mut u = vec![0.0; d];
                    let shape = bound.ellipsoid_for(&walker.current.u);
                    shape.step(&mut self.rng, &walker.current.u, self.walk_scale, &mut v, &mut u);
                    if in_unit_cube(&u) {
                        self.batch_u.push(u);
                        self.owners.push(w);
                        break;
                    }
                    // A step out of the prior is a rejected step, taken without a likelihood call.
                    walker.steps += 1;
                }
            }
        } else {
            let missing = self.demand.missing();
            let count = if self.demand.contour.is_none() {
                missing
            } else {
                ((missing as f64 / self.efficiency()).ceil() as usize).clamp(missing, missing.saturating_mul(1000))
            };
            for _ in 0..count {
                let mut u = vec![0.0; d];
                loop {
                    match &self.segment.bound {
                        Some(bound) => bound.sample(&mut self.rng, &mut v, &mut u),
                        None => u.iter_mut().for_each(|x| *x = self.rng.random()),
                    }
                    if in_unit_cube(&u) {
                        break;
                    }
                }
                self.batch_u.push(u);
            }
        }
        for u in &self.batch_u {
            let mut x = vec![0.0; d];
            self.prior.transform(u, &mut x);
            self.batch_x.push(x);
        }
    }

    /// Whether every wanted point of the demand is in hand (walkers count once they have finished).
    fn demand_met(&self) -> bool {
        self.demand.missing() == 0 && self.demand.walkers.iter().all(|w| w.steps >= self.options.walks)
    }

    /// Move the demand's points into the live set.
    fn install_demand(&mut self) {
        let demand = std::mem::replace(
            &mut self.demand,
            Demand { contour: None, threads: Vec::new(), accepted: Vec::new(), walkers: Vec::new() },
        );
        if !demand.walkers.is_empty() {
            let steps: usize = demand.walkers.iter().map(|w| w.steps).sum();
            let accepted: usize = demand.walkers.iter().map(|w| w.accepted).sum();
            let rate = accepted as f64 / steps.max(1) as f64;
            // Multiplicative adaptation towards half the steps accepted.
            self.walk_scale = (self.walk_scale * math::exp(2.0 * (rate - 0.5))).clamp(1e-6, 4.0);
        }
        // The pool only serves the fill of a batch: later walkers start from live points.
        self.segment.pool = Vec::new();
        let birth = demand.contour.unwrap_or(PRIOR_BIRTH);
        let points = demand.accepted.into_iter().chain(demand.walkers.into_iter().map(|w| w.current));
        for (c, thread) in points.zip(demand.threads) {
            let key = Key { logl: c.logl, id: self.next_id };
            self.next_id += 1;
            self.accepted_points += 1;
            self.segment.live.push(Point { u: c.u, x: c.x, key, birth, thread });
        }
    }

    /// Start walkers for the missing points of the demand, from random points above its contour.
    fn start_walkers(&mut self) {
        self.ensure_bound();
        self.walks_used = true;
        let missing = self.demand.missing();
        for _ in 0..missing {
            let start = if !self.segment.pool.is_empty() {
                let i = self.rng.random_range(0..self.segment.pool.len());
                self.segment.pool[i].clone()
            } else {
                let i = self.rng.random_range(0..self.segment.live.len());
                let p = &self.segment.live[i];
                Candidate { u: p.u.clone(), x: p.x.clone(), logl: p.key.logl }
            };
            self.demand.walkers.push(Walker { current: start, steps: 0, accepted: 0 });
        }
    }

    /// Walks need an ellipsoid's shape even while the bound would be larger than the cube.
    fn ensure_bound(&mut self) {
        if self.segment.bound.is_none() {
            self.rebuild_bound(true);
        }
    }

    /// Bound the live points (or the pool, while filling a batch). `force` keeps a bound larger than
    /// the cube, for walk shapes.
    fn rebuild_bound(&mut self, force: bool) {
        let s = &mut self.segment;
        s.deaths_since_bound = 0;
        s.trials = 0;
        s.hits = 0;
        if self.options.bounding == Bounding::None && !force {
            s.bound = None;
            s.efficiency_prior = math::exp(s.ln_x).clamp(1e-4, 1.0);
            return;
        }
        let points: Vec<&[f64]> = if s.live.is_empty() {
            s.pool.iter().map(|c| c.u.as_slice()).collect()
        } else {
            s.live.iter().map(|p| p.u.as_slice()).collect()
        };
        let settings = BoundSettings {
            multi: self.options.bounding != Bounding::Single,
            enlarge: self.options.enlarge,
            log_volume_floor: s.ln_x,
        };
        s.bound = Bound::new(&points, settings).filter(|b| force || b.log_volume_sum() < 0.0);
        let log_volume = s.bound.as_ref().map_or(0.0, Bound::log_volume_sum);
        s.efficiency_prior = math::exp(s.ln_x - log_volume.max(s.ln_x)).clamp(1e-4, 1.0);
    }

    /// Whether the current segment should end now, and why.
    fn segment_end(&self) -> Option<SegmentEnd> {
        if self.options.max_iterations.is_some_and(|m| self.iterations >= m) {
            return Some(SegmentEnd::Budget(NestedStop::MaxIterations));
        }
        if self.options.max_calls.is_some_and(|m| self.evaluations >= m) {
            return Some(SegmentEnd::Budget(NestedStop::MaxCalls));
        }
        let s = &self.segment;
        let Some(worst) = s.live.iter().map(|p| p.key).min_by(Key::cmp) else {
            return Some(SegmentEnd::Converged);
        };
        if s.ceiling.is_some_and(|c| worst.cmp(&c) != Ordering::Less) {
            return Some(SegmentEnd::Converged);
        }
        let best = s.live.iter().map(|p| p.key.logl).fold(f64::NEG_INFINITY, f64::max);
        let reference = s.z_reference.unwrap_or(s.ln_z);
        if reference.is_finite() && log_add(reference, best + s.ln_x) - reference < self.options.dlogz {
            return Some(SegmentEnd::Converged);
        }
        // A likelihood constant on the whole contour: nothing left to learn by shrinking.
        if worst.logl == best {
            return Some(SegmentEnd::Converged);
        }
        None
    }

    /// Run iterations until one needs likelihood calls or the sampler ends.
    fn advance(&mut self) {
        loop {
            if self.stop.is_some() {
                return;
            }
            if let Some(end) = self.segment_end() {
                self.finish_segment(end);
                return;
            }
            self.iterate();
            if self.demand_met() {
                self.install_demand();
                continue;
            }
            if self.segment.walking && self.demand.walkers.is_empty() {
                self.start_walkers();
            }
            return;
        }
    }

    /// Remove the worst live points and demand their replacements.
    fn iterate(&mut self) {
        let s = &mut self.segment;
        s.live.sort_unstable_by(|a, b| b.key.cmp(&a.key));
        let mut remove = s.replace.min(s.live.len() - 1);
        let threshold = s.live[s.live.len() - remove].key.logl;
        // Ties with the last removed point go too: a plateau's order is arbitrary, so its points must
        // leave together (with the decreasing live counts of a batch removal).
        while remove < s.live.len() - 1 && s.live[s.live.len() - remove - 1].key.logl == threshold {
            remove += 1;
        }
        let mut threads = Vec::with_capacity(remove);
        let mut contour = PRIOR_BIRTH;
        for _ in 0..remove {
            let n = s.live.len() as f64;
            let p = s.live.pop().expect("more live points than removed");
            if p.key.logl > f64::NEG_INFINITY {
                s.ln_z = log_add(s.ln_z, p.key.logl + s.ln_x - math::ln(n + 1.0));
            }
            s.ln_x += math::ln(n / (n + 1.0));
            contour = p.key;
            threads.push(p.thread);
            self.dead.push(p);
        }
        s.deaths_since_bound += remove;
        self.iterations += 1;

        let due = if s.bounded {
            s.deaths_since_bound as f64 >= self.options.update_interval * s.live_points as f64
        } else {
            s.ln_x < math::ln(self.options.first_update)
        };
        if due {
            s.bounded = true;
            if self.options.sampling == Sampling::Walk {
                s.walking = true;
            }
            self.rebuild_bound(self.segment.walking);
        }
        self.demand = Demand { contour: Some(contour), threads, accepted: Vec::new(), walkers: Vec::new() };
        // Surplus draws from earlier iterations, oldest first, as long as they clear the new contour.
        let s = &mut self.segment;
        while self.demand.missing() > 0 {
            let Some(c) = s.spares.pop_front() else { break };
            if c.logl > contour.logl {
                self.demand.accepted.push(c);
            }
        }
    }

    fn finish_segment(&mut self, end: SegmentEnd) {
        let live = std::mem::take(&mut self.segment.live);
        self.dead.extend(live);
        if let SegmentEnd::Budget(stop) = end {
            self.stop = Some(stop);
            return;
        }
        let dynamic = &self.options.dynamic;
        if self.batches >= dynamic.max_batches {
            self.stop = Some(if dynamic.max_batches == 0 { NestedStop::Evidence } else { NestedStop::MaxBatches });
            return;
        }
        let (keys, births) = self.run_keys();
        let run = integrate(&keys, &births);
        let weights: Vec<f64> = run.ln_w.iter().map(|w| math::exp(w - run.ln_z)).collect();
        if !run.ln_z.is_finite() {
            // Nothing but zero likelihoods: no posterior to refine.
            self.stop = Some(NestedStop::Evidence);
            return;
        }
        if kish_ess(&weights) >= dynamic.n_effective {
            self.stop = Some(NestedStop::EffectiveSamples);
            return;
        }
        self.start_batch(&run, &weights);
    }

    /// Plan and begin a dynamic batch over the span where more samples matter most.
    fn start_batch(&mut self, run: &Integral, p: &[f64]) {
        let dy = &self.options.dynamic;
        let n = run.order.len();
        let k = dy.live_points.unwrap_or(self.options.live_points);
        // Evidence importance: the evidence still to come after a sample, per live point there.
        let mut after = 0.0;
        let mut z = vec![0.0; n];
        for i in (0..n).rev() {
            z[i] = after / run.n_live[i] as f64;
            after += p[i];
        }
        let z_total: f64 = z.iter().sum();
        let p_total: f64 = p.iter().sum();
        let importance: Vec<f64> = (0..n)
            .map(|i| {
                let zi = if z_total > 0.0 { z[i] / z_total } else { 0.0 };
                dy.posterior_fraction * p[i] / p_total + (1.0 - dy.posterior_fraction) * zi
            })
            .collect();
        let top = importance.iter().copied().fold(0.0, f64::max);
        let first = importance.iter().position(|&w| w >= dy.max_fraction * top).unwrap_or(0);
        let last = importance.iter().rposition(|&w| w >= dy.max_fraction * top).unwrap_or(n - 1);
        let mut lo = first as isize - dy.pad as isize;
        let mut hi = last + dy.pad;
        if hi > n - 1 {
            lo -= (hi - (n - 1)) as isize;
            hi = n - 1;
        }
        // Enough points alive at the lower contour to bound them (the last live points of a run die
        // with ever fewer companions), and enough strictly above it: on a likelihood plateau nothing
        // can be drawn above a contour at the plateau's level.
        let min_live = (2 * (self.dim() + 1)).max(k / 2);
        let sorted_logl: Vec<f64> = run.order.iter().map(|&i| self.dead[i].key.logl).collect();
        while lo > 0 {
            let level = sorted_logl[lo as usize];
            let above = n - sorted_logl.partition_point(|&l| l <= level);
            if run.n_live[lo as usize] >= min_live && above >= min_live {
                break;
            }
            lo -= 1;
        }
        let low = (lo > 0).then(|| self.dead[run.order[lo as usize]].key);
        let ceiling = (hi < n - 1).then(|| self.dead[run.order[hi]].key);
        let ln_x = if lo > 0 { run.ln_x[lo as usize] } else { 0.0 };

        self.batches += 1;
        self.segment_index += 1;
        self.segment = Self::empty_segment(&self.options, k, ceiling, ln_x, Some(run.ln_z));
        let threads = self.new_threads(k);
        self.demand = Demand { contour: low, threads, accepted: Vec::new(), walkers: Vec::new() };
        if let Some(low) = low {
            // The points alive when the run crossed `low` (born below it, dying above it). Each is
            // uniform above its own birth contour and lies above `low`, so together they are uniform
            // above `low` — unlike the dead points above it, which crowd towards the peak and would
            // give a bound that misses the contour's outer parts.
            let s = &mut self.segment;
            for p in &self.dead {
                if p.birth.cmp(&low) == Ordering::Less && p.key.logl > low.logl {
                    s.pool.push(Candidate { u: p.u.clone(), x: p.x.clone(), logl: p.key.logl });
                }
            }
            if ln_x < math::ln(self.options.first_update) {
                s.bounded = true;
                s.walking = self.options.sampling == Sampling::Walk;
                self.rebuild_bound(self.segment.walking);
                if self.segment.walking {
                    self.start_walkers();
                }
            }
        }
    }

    /// Keys and births of every point (dead, then live), for integration.
    fn run_keys(&self) -> (Vec<RunKey>, Vec<RunKey>) {
        let all = self.dead.iter().chain(self.segment.live.iter());
        all.map(|p| (RunKey::point(p.key, 0), RunKey::birth(p.birth))).unzip()
    }

    /// Thread-bootstrap replicates: ln Z and the posterior means of each.
    fn bootstrap(&self, points: &[&Point]) -> (Vec<f64>, Vec<Vec<f64>>) {
        let replicates = self.options.bootstrap;
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(self.options.seed ^ 0x6a09_e667_f3bc_c909);
        let mut by_thread: Vec<Vec<usize>> = vec![Vec::new(); self.thread_segment.len()];
        for (i, p) in points.iter().enumerate() {
            by_thread[p.thread as usize].push(i);
        }
        let mut groups: Vec<Vec<u32>> = Vec::new();
        for (t, &seg) in self.thread_segment.iter().enumerate() {
            if by_thread[t].is_empty() {
                continue;
            }
            if groups.len() <= seg as usize {
                groups.resize(seg as usize + 1, Vec::new());
            }
            groups[seg as usize].push(t as u32);
        }
        let mut log_zs = Vec::with_capacity(replicates);
        let mut means = Vec::with_capacity(replicates);
        let d = self.dim();
        for _ in 0..replicates {
            let mut copies = vec![0u32; self.thread_segment.len()];
            let (mut keys, mut births, mut index) = (Vec::new(), Vec::new(), Vec::new());
            for group in groups.iter().filter(|g| !g.is_empty()) {
                for _ in 0..group.len() {
                    let t = group[rng.random_range(0..group.len())] as usize;
                    let copy = copies[t];
                    copies[t] += 1;
                    for &i in &by_thread[t] {
                        keys.push(RunKey::point(points[i].key, copy));
                        births.push(RunKey::birth(points[i].birth));
                        index.push(i);
                    }
                }
            }
            let run = integrate(&keys, &births);
            let mut mean = vec![0.0; d];
            if run.ln_z.is_finite() {
                for (pos, &k) in run.order.iter().enumerate() {
                    let w = math::exp(run.ln_w[pos] - run.ln_z);
                    for (m, x) in mean.iter_mut().zip(&points[index[k]].x) {
                        *m += w * x;
                    }
                }
            }
            log_zs.push(run.ln_z);
            means.push(mean);
        }
        (log_zs, means)
    }
}

#[derive(Debug, Clone, Copy)]
enum SegmentEnd {
    Converged,
    Budget(NestedStop),
}

fn in_unit_cube(u: &[f64]) -> bool {
    u.iter().all(|&x| (0.0..1.0).contains(&x))
}

fn sample_sd(values: impl Iterator<Item = f64> + Clone) -> f64 {
    let (n, sum) = values.clone().fold((0usize, 0.0), |(n, s), v| (n + 1, s + v));
    if n < 2 {
        return f64::NAN;
    }
    let mean = sum / n as f64;
    (values.map(|v| (v - mean) * (v - mean)).sum::<f64>() / (n - 1) as f64).sqrt()
}

impl Sampler for NestedSampler {
    fn name(&self) -> &'static str {
        "nested"
    }

    fn ask(&mut self) -> &[Vec<f64>] {
        if self.asked {
            return &self.batch_x;
        }
        loop {
            if self.stop.is_some() {
                self.batch_x.clear();
                return &self.batch_x;
            }
            self.propose();
            if !self.batch_x.is_empty() {
                self.asked = true;
                return &self.batch_x;
            }
            // Every walker finished with steps out of the cube: the points are in hand.
            if self.demand_met() {
                self.install_demand();
            }
            self.advance();
        }
    }

    fn tell(&mut self, log_likelihoods: &[f64]) {
        if !self.asked {
            return;
        }
        self.asked = false;
        let walking = !self.demand.walkers.is_empty();
        let batch_u = std::mem::take(&mut self.batch_u);
        let batch_x = std::mem::take(&mut self.batch_x);
        for (i, (u, x)) in batch_u.into_iter().zip(batch_x).enumerate() {
            let logl = log_likelihoods.get(i).copied().filter(|v| v.is_finite()).unwrap_or(f64::NEG_INFINITY);
            self.evaluations += 1;
            self.max_logl = self.max_logl.max(logl);
            let ok = self.demand.accepts(logl);
            if walking {
                let walker = &mut self.demand.walkers[self.owners[i]];
                walker.steps += 1;
                if ok {
                    walker.current = Candidate { u, x, logl };
                    walker.accepted += 1;
                }
            } else {
                self.segment.trials += 1;
                if ok {
                    self.segment.hits += 1;
                    let c = Candidate { u, x, logl };
                    if self.demand.missing() > 0 {
                        self.demand.accepted.push(c);
                    } else {
                        self.segment.spares.push_back(c);
                    }
                }
            }
        }
        if self.demand_met() {
            self.install_demand();
            self.advance();
        } else if !walking
            && self.options.sampling == Sampling::Auto
            && self.segment.bounded
            && self.demand.contour.is_some()
            && self.segment.trials >= 100
            && (self.segment.hits as f64) < self.segment.trials as f64 * 0.5 / self.options.walks as f64
        {
            self.segment.walking = true;
            self.start_walkers();
        }
    }

    fn done(&self) -> bool {
        self.stop.is_some()
    }

    fn iterations(&self) -> usize {
        self.iterations
    }

    fn max_log_likelihood(&self) -> f64 {
        self.max_logl
    }

    fn result(&self) -> SampleResult {
        let points: Vec<&Point> = self.dead.iter().chain(self.segment.live.iter()).collect();
        let (keys, births) = self.run_keys();
        let run = integrate(&keys, &births);
        let mut xs = Vec::with_capacity(points.len());
        let mut weights = Vec::with_capacity(points.len());
        let mut log_likelihoods = Vec::with_capacity(points.len());
        for (pos, &k) in run.order.iter().enumerate() {
            xs.push(points[k].x.clone());
            weights.push(if run.ln_z.is_finite() { math::exp(run.ln_w[pos] - run.ln_z) } else { 0.0 });
            log_likelihoods.push(points[k].key.logl);
        }
        let mut summary = summarise(&xs, &weights);
        let mut log_z_err = run.ln_z_err;
        let mut log_z_err_bootstrap = None;
        if self.options.bootstrap >= 2 && run.ln_z.is_finite() {
            let (log_zs, means) = self.bootstrap(&points);
            let sd = sample_sd(log_zs.iter().copied());
            log_z_err_bootstrap = Some(sd);
            log_z_err = sd;
            for (j, s) in summary.iter_mut().enumerate() {
                s.mean_se = sample_sd(means.iter().map(|m| m[j]));
            }
        }
        SampleResult {
            algorithm: "nested".into(),
            effective_samples: kish_ess(&weights),
            evidence: Some(Evidence { log_z: run.ln_z, log_z_err, information: run.information }),
            nested: Some(NestedInfo {
                stop: self.stop.unwrap_or(NestedStop::Running),
                live_points: self.options.live_points,
                batches: self.batches,
                samples: xs.len(),
                efficiency: self.accepted_points as f64 / self.evaluations.max(1) as f64,
                log_z_err_analytic: run.ln_z_err,
                log_z_err_bootstrap,
                ellipsoids: self.segment.bound.as_ref().map_or(0, Bound::len),
                walks_used: self.walks_used,
            }),
            mcmc: None,
            points: xs,
            weights,
            log_likelihoods,
            summary,
            evaluations: self.evaluations,
            iterations: self.iterations,
            termination: SampleTermination::Completed,
            seconds: 0.0,
        }
    }
}
