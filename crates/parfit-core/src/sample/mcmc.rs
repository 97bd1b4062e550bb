//! The affine-invariant ensemble sampler: J. Goodman & J. Weare, "Ensemble samplers with affine
//! invariance", Comm. App. Math. Comp. Sci. 5 (2010), in the parallel form of D. Foreman-Mackey et al.,
//! "emcee: the MCMC hammer", PASP 125 (2013).
//!
//! The walkers are split into two halves. A step moves every walker `j` of one half along the line
//! through a random walker `c` of the other half: `y = x_c + z (x_j − x_c)`, `z` drawn from
//! `g(z) ∝ 1/√z` on `[1/a, a]`, accepted with probability `min(1, z^(d−1) p(y)/p(x_j))`. The other
//! half stays fixed meanwhile, so one half's proposals are independent of each other: one parallel
//! batch. The stretch move is invariant under affine maps, so strongly correlated or badly scaled
//! posteriors cost no tuning.

use crate::math;
use crate::ziggurat::standard_normal;
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::{Deserialize, Serialize};

use super::diagnostics::{ess, ess_bulk, split_rhat};
use super::prior::Prior;
use super::summary::summarise;
use super::{OptionError, SampleResult, SampleTermination, Sampler};
use crate::check::{at_least, positive, require, require_memory};

/// Redraws of a starting walker whose log-likelihood is not finite, before it starts anyway.
const MAX_INIT_ATTEMPTS: usize = 100;

/// Options of [`EnsembleSampler`], as read from the user's configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EnsembleOptions {
    /// Walkers (even, at least twice the dimension). Default `max(4d, 16)`, rounded up to even.
    pub walkers: Option<usize>,
    /// Ensemble steps in all, burn-in included. Default `2000`.
    pub steps: usize,
    /// Steps discarded at the start. Default `500`.
    pub burn_in: usize,
    /// Keep every `thin`-th step after burn-in. Default `1`.
    pub thin: usize,
    /// Stretch scale `a > 1` of the move. Default `2.0`.
    pub stretch: f64,
    /// Seed of the random number generator. Default `0`.
    pub seed: u64,
}

impl Default for EnsembleOptions {
    fn default() -> Self {
        EnsembleOptions { walkers: None, steps: 2000, burn_in: 500, thin: 1, stretch: 2.0, seed: 0 }
    }
}

impl EnsembleOptions {
    /// The number of walkers for `d` parameters.
    pub fn walkers(&self, d: usize) -> usize {
        self.walkers.unwrap_or((4 * d).max(16).next_multiple_of(2))
    }

    /// Check every option against its allowed range, for `d` parameters. The stretch move pairs each walker with
    /// one of the other half, so the walkers split into two halves that each span the space; the kept draws of
    /// every walker must fit in memory.
    pub fn check(&self, d: usize) -> Result<(), OptionError> {
        let walkers = self.walkers(d);
        let least = (2 * d).max(4);
        let allowed = format!("even and at least max(2 × dimension, 4) = {least}");
        require(walkers >= least && walkers.is_multiple_of(2), "walkers", &allowed, walkers)?;
        require_memory("walkers", walkers, walkers as f64, (2 * d * 8 + 160) as f64)?;
        at_least("steps", self.steps, 1)?;
        let below_steps = format!("below steps = {}", self.steps);
        require(self.burn_in < self.steps, "burn_in", &below_steps, self.burn_in)?;
        let after_burn_in = self.steps - self.burn_in;
        let allowed = format!("in 1..=steps − burn_in = {after_burn_in}, so that every walker keeps a draw");
        require((1..=after_burn_in).contains(&self.thin), "thin", &allowed, self.thin)?;
        let stretch = self.stretch;
        require(stretch > 1.0 && stretch.is_finite(), "stretch", "a finite number above 1", stretch)?;
        let kept = (after_burn_in / self.thin) as f64 * walkers as f64;
        let value = format!("{} ({kept} kept draws of {walkers} walkers)", self.steps);
        require_memory("steps", value, kept, (d * 8 + 32) as f64)
    }
}

/// Diagnostics of an ensemble run. Each walker's kept draws count as one chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct McmcInfo {
    pub walkers: usize,
    /// Completed ensemble steps, burn-in included.
    pub steps: usize,
    /// Kept draws per walker. [`SampleResult::points`] holds walker 0's draws first, then walker 1's, ….
    pub draws_per_walker: usize,
    /// Accepted moves per proposed move (after burn-in too).
    pub acceptance: f64,
    /// Rank-normalised split-R̂ per parameter.
    pub r_hat: Vec<f64>,
    /// Effective sample size of the mean per parameter (Geyer's initial monotone sequence).
    pub ess: Vec<f64>,
    /// Bulk (rank-normalised) effective sample size per parameter.
    pub ess_bulk: Vec<f64>,
}

#[derive(Debug, Clone)]
struct Proposal {
    walker: usize,
    ln_z_term: f64,
    ln_u: f64,
    ln_prior: f64,
}

/// Affine-invariant ensemble sampler (stretch move). See the [module documentation](self).
#[derive(Debug, Clone)]
pub struct EnsembleSampler {
    prior: Prior,
    options: EnsembleOptions,
    rng: Xoshiro256PlusPlus,
    n_walkers: usize,
    positions: Vec<Vec<f64>>,
    ln_post: Vec<f64>,
    ln_like: Vec<f64>,
    /// Walkers still waiting for their first finite log-likelihood, with their attempts so far.
    initialising: Vec<usize>,
    init_attempts: usize,
    start: Option<(Vec<f64>, f64)>,
    /// The half (0 or 1) moving in the current batch.
    half: usize,
    proposals: Vec<Proposal>,
    batch: Vec<Vec<f64>>,
    asked: bool,
    steps: usize,
    proposed: usize,
    accepted: usize,
    chains: Vec<Vec<Vec<f64>>>,
    chain_ln_like: Vec<Vec<f64>>,
    max_logl: f64,
}

impl EnsembleSampler {
    /// Walkers start from independent prior draws.
    pub fn new(prior: Prior, options: EnsembleOptions) -> Result<Self, OptionError> {
        let d = prior.dim();
        options.check(d)?;
        let n_walkers = options.walkers(d);
        let mut sampler = EnsembleSampler {
            rng: Xoshiro256PlusPlus::seed_from_u64(options.seed),
            n_walkers,
            positions: vec![vec![0.0; d]; n_walkers],
            ln_post: vec![f64::NEG_INFINITY; n_walkers],
            ln_like: vec![f64::NEG_INFINITY; n_walkers],
            initialising: (0..n_walkers).collect(),
            init_attempts: 0,
            start: None,
            half: 0,
            proposals: Vec::new(),
            batch: Vec::new(),
            asked: false,
            steps: 0,
            proposed: 0,
            accepted: 0,
            chains: vec![Vec::new(); n_walkers],
            chain_ln_like: vec![Vec::new(); n_walkers],
            max_logl: f64::NEG_INFINITY,
            prior,
            options,
        };
        for w in 0..n_walkers {
            sampler.draw_start(w);
        }
        Ok(sampler)
    }

    /// Walkers start in a small cloud around `start`: each coordinate `start_i + spread · sd_i · N(0, 1)`
    /// with `sd_i` the prior's standard deviation, redrawn while outside the prior's support.
    pub fn with_start(prior: Prior, options: EnsembleOptions, start: &[f64], spread: f64) -> Result<Self, OptionError> {
        if start.len() != prior.dim() || !prior.contains(start) {
            return Err(OptionError::new("start", format!("must lie in the prior's support (got {start:?})")));
        }
        positive("start_spread", spread)?;
        let mut sampler = Self::new(prior, options)?;
        sampler.start = Some((start.to_vec(), spread));
        for w in 0..sampler.n_walkers {
            sampler.draw_start(w);
        }
        Ok(sampler)
    }

    pub fn options(&self) -> &EnsembleOptions {
        &self.options
    }

    pub fn walkers(&self) -> usize {
        self.n_walkers
    }

    fn draw_start(&mut self, w: usize) {
        let d = self.prior.dim();
        match &self.start {
            None => {
                let u: Vec<f64> = (0..d).map(|_| self.rng.random()).collect();
                self.prior.transform(&u, &mut self.positions[w]);
            }
            Some((start, spread)) => {
                for attempt in 0..MAX_INIT_ATTEMPTS {
                    for (j, p) in self.prior.params().iter().enumerate() {
                        let z: f64 = standard_normal(&mut self.rng);
                        self.positions[w][j] = start[j] + spread * p.mean_sd().1 * z;
                    }
                    if self.prior.contains(&self.positions[w]) {
                        break;
                    }
                    if attempt + 1 == MAX_INIT_ATTEMPTS {
                        self.positions[w].copy_from_slice(start);
                    }
                }
            }
        }
    }

    /// Proposals for the moving half; those outside the prior's support are rejected on the spot.
    fn propose(&mut self) {
        self.proposals.clear();
        self.batch.clear();
        let half = self.n_walkers / 2;
        let (moving, other) =
            if self.half == 0 { (0..half, half..self.n_walkers) } else { (half..self.n_walkers, 0..half) };
        let a = self.options.stretch;
        let d = self.prior.dim() as f64;
        for j in moving {
            let c = other.start + self.rng.random_range(0..half);
            // Inverse CDF of g(z) ∝ 1/√z on [1/a, a].
            let u: f64 = self.rng.random();
            let z = math::powi((a - 1.0) * u + 1.0, 2) / a;
            let ln_u = math::ln(self.rng.random::<f64>());
            let y: Vec<f64> =
                self.positions[c].iter().zip(&self.positions[j]).map(|(xc, xj)| xc + z * (xj - xc)).collect();
            let ln_prior = self.prior.ln_pdf(&y);
            self.proposed += 1;
            if ln_prior == f64::NEG_INFINITY {
                continue;
            }
            self.proposals.push(Proposal { walker: j, ln_z_term: (d - 1.0) * math::ln(z), ln_u, ln_prior });
            self.batch.push(y);
        }
    }

    fn finish_half(&mut self) {
        self.half ^= 1;
        if self.half == 0 {
            self.steps += 1;
            if self.steps > self.options.burn_in
                && (self.steps - self.options.burn_in).is_multiple_of(self.options.thin)
            {
                for w in 0..self.n_walkers {
                    self.chains[w].push(self.positions[w].clone());
                    self.chain_ln_like[w].push(self.ln_like[w]);
                }
            }
        }
    }
}

impl Sampler for EnsembleSampler {
    fn name(&self) -> &'static str {
        "ensemble"
    }

    fn ask(&mut self) -> &[Vec<f64>] {
        if self.asked {
            return &self.batch;
        }
        if !self.initialising.is_empty() {
            self.batch = self.initialising.iter().map(|&w| self.positions[w].clone()).collect();
            self.asked = true;
            return &self.batch;
        }
        while !self.done() {
            self.propose();
            if !self.batch.is_empty() {
                self.asked = true;
                return &self.batch;
            }
            self.finish_half();
        }
        self.batch.clear();
        &self.batch
    }

    fn tell(&mut self, log_likelihoods: &[f64]) {
        if !self.asked {
            return;
        }
        self.asked = false;
        let value = |i: usize| log_likelihoods.get(i).copied().filter(|v| v.is_finite()).unwrap_or(f64::NEG_INFINITY);
        if !self.initialising.is_empty() {
            self.init_attempts += 1;
            let waiting = std::mem::take(&mut self.initialising);
            for (i, &w) in waiting.iter().enumerate() {
                let logl = value(i);
                self.max_logl = self.max_logl.max(logl);
                self.ln_like[w] = logl;
                self.ln_post[w] = self.prior.ln_pdf(&self.positions[w]) + logl;
                if !logl.is_finite() && self.init_attempts < MAX_INIT_ATTEMPTS {
                    self.initialising.push(w);
                }
            }
            let redraw = self.initialising.clone();
            for w in redraw {
                self.draw_start(w);
            }
            return;
        }
        let proposals = std::mem::take(&mut self.proposals);
        let batch = std::mem::take(&mut self.batch);
        for (i, (p, y)) in proposals.iter().zip(batch).enumerate() {
            let logl = value(i);
            self.max_logl = self.max_logl.max(logl);
            let ln_post = p.ln_prior + logl;
            // A walker stuck at zero posterior accepts any finite proposal (+inf ratio); −inf vs −inf is NaN: reject.
            let ln_ratio = p.ln_z_term + ln_post - self.ln_post[p.walker];
            if p.ln_u < ln_ratio {
                self.positions[p.walker] = y;
                self.ln_post[p.walker] = ln_post;
                self.ln_like[p.walker] = logl;
                self.accepted += 1;
            }
        }
        self.finish_half();
    }

    fn done(&self) -> bool {
        self.steps >= self.options.steps
    }

    fn iterations(&self) -> usize {
        self.steps
    }

    fn max_log_likelihood(&self) -> f64 {
        self.max_logl
    }

    fn result(&self) -> SampleResult {
        let d = self.prior.dim();
        let draws = self.chains.first().map_or(0, Vec::len);
        let points: Vec<Vec<f64>> = self.chains.iter().flatten().cloned().collect();
        let log_likelihoods: Vec<f64> = self.chain_ln_like.iter().flatten().copied().collect();
        let total = points.len();
        let weights = vec![if total > 0 { 1.0 / total as f64 } else { 0.0 }; total];
        let mut summary = summarise(&points, &weights);
        let (mut r_hat, mut ess_mean, mut ess_rank) = (Vec::new(), Vec::new(), Vec::new());
        for j in 0..d {
            let chains: Vec<Vec<f64>> = self.chains.iter().map(|c| c.iter().map(|x| x[j]).collect()).collect();
            r_hat.push(split_rhat(&chains));
            let e = ess(&chains);
            ess_mean.push(e);
            ess_rank.push(ess_bulk(&chains));
            if let Some(s) = summary.get_mut(j) {
                s.mean_se = s.sd / e.sqrt();
            }
        }
        SampleResult {
            algorithm: "ensemble".into(),
            effective_samples: total as f64,
            evidence: None,
            nested: None,
            mcmc: Some(McmcInfo {
                walkers: self.n_walkers,
                steps: self.steps,
                draws_per_walker: draws,
                acceptance: self.accepted as f64 / self.proposed.max(1) as f64,
                r_hat,
                ess: ess_mean,
                ess_bulk: ess_rank,
            }),
            points,
            weights,
            log_likelihoods,
            summary,
            evaluations: 0,
            iterations: self.steps,
            termination: SampleTermination::Completed,
            seconds: 0.0,
        }
    }
}
