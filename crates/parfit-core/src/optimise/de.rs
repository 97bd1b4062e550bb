//! Differential evolution (Storn & Price 1997) with the rand/1/bin and current-to-best/1/bin
//! strategies.
//!
//! Every generation is one batch: the trial vectors of the whole population, evaluated together,
//! then each trial replaces its target when it is at least as good (synchronous selection, so
//! the result does not depend on the order in which a batch is evaluated).

use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::{Deserialize, Serialize};

use super::{Bounds, Optimiser, Stopping, Termination};
use crate::check::{OptionError, at_least, positive, require, require_memory};

/// How a mutant vector is built (the crossover is binomial for both).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeStrategy {
    /// `v = x_r0 + F (x_r1 − x_r2)` with distinct random members, none the target: explores
    /// well and is the robust choice for multimodal problems.
    #[serde(rename = "rand/1/bin", alias = "rand1bin")]
    Rand1Bin,
    /// `v = x_i + F (x_best − x_i) + F (x_r1 − x_r2)`: pulls every target towards the best
    /// member, converging faster on unimodal problems at the risk of premature convergence.
    #[serde(rename = "current-to-best/1/bin", alias = "currenttobest1bin")]
    CurrentToBest1Bin,
}

/// Options of [`DifferentialEvolution`], as read from the user's configuration.
///
/// In TOML, for example:
///
/// ```toml
/// population = 40
/// strategy = "current-to-best/1/bin"   # or "rand/1/bin"
/// mutation = 0.5
/// dither = [0.5, 1.0]
/// crossover = 0.9
/// seed = 1
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DifferentialEvolutionOptions {
    /// Population size NP (at least 4). Default `max(10 n, 20)`.
    pub population: Option<usize>,
    /// Mutation strategy. Default `"rand/1/bin"`.
    pub strategy: DeStrategy,
    /// Differential weight F in (0, 2]. Ignored when `dither` is set. Default `0.7` (at 0.5 the
    /// population of rand/1/bin tends to collapse early on Rosenbrock-like valleys).
    pub mutation: f64,
    /// Draw F uniformly from `[lo, hi]` afresh every generation instead of using `mutation`
    /// ("dither"); often speeds up convergence and makes it less sensitive to the choice of F.
    /// Default none.
    pub dither: Option<[f64; 2]>,
    /// Crossover probability CR in [0, 1]: the chance that a coordinate of the trial comes from
    /// the mutant rather than the target (one coordinate always does). High values suit
    /// non-separable problems. Default `0.9`.
    pub crossover: f64,
    /// Seed of the random number generator; the same seed gives the same run. Default `0`.
    pub seed: u64,
    /// Half-width of the initial population around `x0` in coordinates whose bounds are not both
    /// finite. Coordinates with finite bounds start spread over the whole interval. Default `1.0`.
    pub init_spread: f64,
}

impl Default for DifferentialEvolutionOptions {
    fn default() -> Self {
        DifferentialEvolutionOptions {
            population: None,
            strategy: DeStrategy::Rand1Bin,
            mutation: 0.7,
            dither: None,
            crossover: 0.9,
            seed: 0,
            init_spread: 1.0,
        }
    }
}

impl DifferentialEvolutionOptions {
    /// The population size for `n` parameters.
    pub fn population(&self, n: usize) -> usize {
        self.population.unwrap_or((10 * n).max(20))
    }

    /// Check every option against its allowed range, for `n` parameters. F above 2 makes the mutant step longer
    /// than twice the difference it scales (Storn & Price's range); the population's members, its trials and their
    /// values must fit in memory.
    pub fn check(&self, n: usize) -> Result<(), OptionError> {
        let weight = |f: f64| f > 0.0 && f <= 2.0;
        require(weight(self.mutation), "mutation", "in (0, 2]", self.mutation)?;
        if let Some([lo, hi]) = self.dither {
            require(weight(lo) && weight(hi) && lo <= hi, "dither", "[lo, hi] with 0 < lo ≤ hi ≤ 2", [lo, hi])?;
        }
        require((0.0..=1.0).contains(&self.crossover), "crossover", "in [0, 1]", self.crossover)?;
        positive("init_spread", self.init_spread)?;
        let np = self.population(n);
        at_least("population", np, 4)?;
        require_memory("population", np, np as f64, ((2 * n + 1) * 8 + 48) as f64)
    }
}

/// Differential evolution over a box.
///
/// The initial population is a Latin hypercube sample of the box (of `x0 ± init_spread` where a
/// bound is infinite), with `x0` itself as its first member, so the result is never worse than
/// the start. A trial coordinate that leaves the box is put halfway between its target's
/// coordinate and the violated bound, so every candidate is feasible without biasing the search
/// onto the faces. Failed evaluations (non-finite values) never replace a finite member.
///
/// Stops by itself (see [`Optimiser::converged`]) with
/// * [`Termination::FunctionTolerance`] when the population's values span at most `ftol`;
/// * [`Termination::ParameterTolerance`] when the population spans at most `xtol` in every
///   coordinate.
#[derive(Debug, Clone)]
pub struct DifferentialEvolution {
    bounds: Bounds,
    strategy: DeStrategy,
    mutation: f64,
    dither: Option<[f64; 2]>,
    crossover: f64,
    rng: Xoshiro256PlusPlus,
    population: Vec<Vec<f64>>,
    values: Vec<f64>,
    /// The batch out for evaluation: the initial population, then each generation's trials.
    trials: Vec<Vec<f64>>,
    /// Whether the initial population has been told.
    initialised: bool,
    best: usize,
    iterations: usize,
}

impl DifferentialEvolution {
    /// Start from `x0` (projected onto `bounds`); an option out of its range is an error.
    ///
    /// # Panics
    /// If `x0` and `bounds` differ in dimension (a caller's mistake, not a setting).
    pub fn new(x0: Vec<f64>, bounds: Bounds, options: DifferentialEvolutionOptions) -> Result<Self, OptionError> {
        let n = x0.len();
        assert_eq!(n, bounds.dim(), "start point and bounds differ in dimension");
        options.check(n)?;
        let np = options.population(n);
        let mut x0 = x0;
        bounds.clamp(&mut x0);
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(options.seed);
        let mut trials = vec![x0.clone(); np];
        // Latin hypercube: each coordinate's range cut into NP strata, one member per stratum in a
        // random order. Member 0 stays x0.
        let mut strata: Vec<usize> = (0..np).collect();
        for i in 0..n {
            let (lo, hi) = (bounds.lower[i], bounds.upper[i]);
            let (lo, hi) = if lo.is_finite() && hi.is_finite() {
                (lo, hi)
            } else {
                (lo.max(x0[i] - options.init_spread), hi.min(x0[i] + options.init_spread))
            };
            shuffle(&mut strata, &mut rng);
            for (member, &stratum) in trials.iter_mut().zip(&strata).skip(1) {
                let u: f64 = rng.random();
                member[i] = (lo + (stratum as f64 + u) / np as f64 * (hi - lo)).clamp(lo, hi);
            }
        }
        Ok(DifferentialEvolution {
            bounds,
            strategy: options.strategy,
            mutation: options.mutation,
            dither: options.dither,
            crossover: options.crossover,
            rng,
            population: trials.clone(),
            values: vec![f64::INFINITY; np],
            trials,
            initialised: false,
            best: 0,
            iterations: 0,
        })
    }

    /// Build the next generation's trial vectors.
    fn make_trials(&mut self) {
        let np = self.population.len();
        let n = self.bounds.dim();
        let f = match self.dither {
            Some([lo, hi]) => lo + (hi - lo) * self.rng.random::<f64>(),
            None => self.mutation,
        };
        for i in 0..np {
            let [r0, r1, r2] = distinct_others(i, np, &mut self.rng);
            let j_rand = self.rng.random_range(0..n.max(1));
            let (target, trial) = (&self.population[i], &mut self.trials[i]);
            let (x1, x2) = (&self.population[r1], &self.population[r2]);
            for j in 0..n {
                let from_mutant = j == j_rand || self.rng.random::<f64>() < self.crossover;
                if !from_mutant {
                    trial[j] = target[j];
                    continue;
                }
                let v = match self.strategy {
                    DeStrategy::Rand1Bin => self.population[r0][j] + f * (x1[j] - x2[j]),
                    DeStrategy::CurrentToBest1Bin => {
                        target[j] + f * (self.population[self.best][j] - target[j]) + f * (x1[j] - x2[j])
                    }
                };
                let (lo, hi) = (self.bounds.lower[j], self.bounds.upper[j]);
                // Halfway to the violated bound from the (feasible) target.
                trial[j] = if v < lo {
                    0.5 * (lo + target[j])
                } else if v > hi {
                    0.5 * (hi + target[j])
                } else {
                    v
                };
            }
        }
    }

    fn update_best(&mut self) {
        // First of the minimal values: a total order, so reproducible.
        self.best = (0..self.values.len()).fold(0, |b, k| if self.values[k] < self.values[b] { k } else { b });
    }
}

/// Fisher–Yates shuffle.
fn shuffle(items: &mut [usize], rng: &mut Xoshiro256PlusPlus) {
    for k in (1..items.len()).rev() {
        items.swap(k, rng.random_range(0..=k));
    }
}

/// Three distinct indices in `0..np`, all different from `i` (`np >= 4`).
fn distinct_others(i: usize, np: usize, rng: &mut Xoshiro256PlusPlus) -> [usize; 3] {
    let mut picked = [usize::MAX; 3];
    for k in 0..3 {
        picked[k] = loop {
            let r = rng.random_range(0..np);
            if r != i && !picked[..k].contains(&r) {
                break r;
            }
        };
    }
    picked
}

fn sanitise(v: Option<&f64>) -> f64 {
    v.copied().filter(|v| v.is_finite()).unwrap_or(f64::INFINITY)
}

impl Optimiser for DifferentialEvolution {
    fn name(&self) -> &'static str {
        "differential-evolution"
    }

    fn ask(&mut self) -> &[Vec<f64>] {
        &self.trials
    }

    fn tell(&mut self, values: &[f64]) {
        self.iterations += 1;
        if !self.initialised {
            self.initialised = true;
            for (k, v) in self.values.iter_mut().enumerate() {
                *v = sanitise(values.get(k));
            }
        } else {
            for (k, (member, trial)) in self.population.iter_mut().zip(&self.trials).enumerate() {
                let v = sanitise(values.get(k));
                // `<=` lets the population drift across plateaus instead of freezing there.
                if v <= self.values[k] {
                    member.copy_from_slice(trial);
                    self.values[k] = v;
                }
            }
        }
        self.update_best();
        self.make_trials();
    }

    fn best(&self) -> (&[f64], f64) {
        (&self.population[self.best], self.values[self.best])
    }

    fn iterations(&self) -> usize {
        self.iterations
    }

    fn converged(&self, stop: &Stopping) -> Option<Termination> {
        if !self.initialised {
            return None;
        }
        let (lo, hi) = self.values.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &v| (l.min(v), h.max(v)));
        if hi.is_finite() && hi - lo <= stop.ftol {
            return Some(Termination::FunctionTolerance);
        }
        let n = self.bounds.dim();
        let spread = |j: usize| {
            let (lo, hi) =
                self.population.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), x| (l.min(x[j]), h.max(x[j])));
            hi - lo
        };
        (0..n).all(|j| spread(j) <= stop.xtol).then_some(Termination::ParameterTolerance)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::math;
    use crate::optimise::test_functions::{ellipsoid, evaluator, rosenbrock, sphere};
    use crate::optimise::{OptimResult, Silent, minimise};
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    const STRATEGIES: [DeStrategy; 2] = [DeStrategy::Rand1Bin, DeStrategy::CurrentToBest1Bin];

    fn cube(n: usize) -> Bounds {
        Bounds { lower: vec![-5.0; n], upper: vec![5.0; n] }
    }

    fn run(n: usize, options: DifferentialEvolutionOptions, f: fn(&[f64]) -> f64) -> OptimResult {
        // With the default options no run below needs more than 130 000 evaluations (rand/1/bin on
        // 10-D Rosenbrock; 5-D needs under 20 000).
        let stop = Stopping { target_value: Some(1e-9), max_evaluations: Some(400_000), ..Stopping::default() };
        let mut de = DifferentialEvolution::new(vec![3.0; n], cube(n), options).unwrap();
        minimise(&mut de, &mut evaluator(f), &stop, &mut Silent, false)
    }

    fn solved(n: usize, options: DifferentialEvolutionOptions, f: fn(&[f64]) -> f64) -> usize {
        (0..10).filter(|&seed| run(n, DifferentialEvolutionOptions { seed, ..options.clone() }, f).value < 1e-8).count()
    }

    #[test]
    fn reaches_1e8_on_sphere_ellipsoid_and_rosenbrock() {
        let problems = [
            ("sphere", 10, sphere as fn(&[f64]) -> f64),
            ("ellipsoid", 10, ellipsoid),
            ("rosenbrock", 2, rosenbrock),
            ("rosenbrock", 5, rosenbrock),
            ("rosenbrock", 10, rosenbrock),
        ];
        for strategy in STRATEGIES {
            for (name, n, f) in problems {
                let options = DifferentialEvolutionOptions { strategy, ..Default::default() };
                let count = solved(n, options, f);
                assert!(count >= 9, "{strategy:?} on {n}-D {name}: solved {count} of 10");
            }
        }
        // Dithering F over [0.5, 1] works as well.
        let dithered = DifferentialEvolutionOptions { dither: Some([0.5, 1.0]), ..Default::default() };
        assert!(solved(5, dithered, rosenbrock) >= 9);
    }

    #[test]
    fn stops_on_population_spread() {
        let stop = Stopping { ftol: 1e-10, ..Stopping::default() };
        let mut de =
            DifferentialEvolution::new(vec![1.0; 3], cube(3), DifferentialEvolutionOptions::default()).unwrap();
        let r = minimise(&mut de, &mut evaluator(sphere), &stop, &mut Silent, false);
        assert_eq!(r.termination, Termination::FunctionTolerance);
        assert!(de.values.iter().all(|v| v - r.value <= 1e-10));
        // A constant function stops on values at once; without a value test the spread in x decides.
        let mut de =
            DifferentialEvolution::new(vec![1.0; 3], cube(3), DifferentialEvolutionOptions::default()).unwrap();
        let r = minimise(&mut de, &mut evaluator(|_| 1.0), &Stopping::default(), &mut Silent, false);
        assert_eq!((r.termination, r.iterations), (Termination::FunctionTolerance, 1));
        let stop = Stopping { ftol: -1.0, xtol: 1e-6, ..Stopping::default() };
        let mut de =
            DifferentialEvolution::new(vec![1.0; 2], cube(2), DifferentialEvolutionOptions::default()).unwrap();
        let r = minimise(&mut de, &mut evaluator(sphere), &stop, &mut Silent, false);
        assert_eq!(r.termination, Termination::ParameterTolerance);
    }

    #[test]
    fn candidates_stay_in_bounds() {
        // The sphere's minimum lies outside the box, so trials keep pushing through the faces.
        let bounds = Bounds { lower: vec![1.0, -1.0, 0.5, f64::NEG_INFINITY], upper: vec![2.0, 1.0, 0.6, -2.0] };
        for strategy in STRATEGIES {
            let options = DifferentialEvolutionOptions { strategy, ..Default::default() };
            let mut de = DifferentialEvolution::new(vec![1.5, 0.0, 0.55, -3.0], bounds.clone(), options).unwrap();
            let mut eval = |batch: &[Vec<f64>], out: &mut [f64]| {
                for (x, o) in batch.iter().zip(out.iter_mut()) {
                    assert!(bounds.contains(x), "{x:?} outside the box");
                    *o = sphere(x);
                }
            };
            let r = minimise(&mut de, &mut eval, &Stopping::default(), &mut Silent, false);
            let expected = [1.0, 0.0, 0.5, -2.0];
            assert!(r.x.iter().zip(expected).all(|(x, e)| (x - e).abs() < 1e-6), "{:?}", r.x);
        }
    }

    #[test]
    fn first_batch_is_x0_and_a_latin_hypercube() {
        let bounds = Bounds { lower: vec![0.0, -1.0], upper: vec![10.0, f64::INFINITY] };
        let options = DifferentialEvolutionOptions { population: Some(10), init_spread: 0.5, ..Default::default() };
        let mut de = DifferentialEvolution::new(vec![2.0, -0.8], bounds, options).unwrap();
        let batch = de.ask().to_vec();
        assert_eq!(batch.len(), 10);
        assert_eq!(batch[0], [2.0, -0.8]);
        // Coordinate 0: one member in each of the ten unit strata of [0, 10] except x0's own.
        let mut strata: Vec<usize> = batch[1..].iter().map(|x| x[0] as usize).collect();
        strata.sort_unstable();
        strata.dedup();
        assert_eq!(strata.len(), 9);
        // Coordinate 1: within [max(−1, x0 − 0.5), x0 + 0.5].
        assert!(batch.iter().all(|x| (-1.0..=-0.3).contains(&x[1])), "{batch:?}");
    }

    #[test]
    fn same_seed_same_asks() {
        let asks = |seed, strategy| {
            let options =
                DifferentialEvolutionOptions { seed, strategy, dither: Some([0.4, 0.9]), ..Default::default() };
            let mut de = DifferentialEvolution::new(vec![3.0; 4], cube(4), options).unwrap();
            let mut asked: Vec<u64> = Vec::new();
            let mut eval = |batch: &[Vec<f64>], out: &mut [f64]| {
                asked.extend(batch.iter().flatten().map(|x| x.to_bits()));
                evaluator(rosenbrock)(batch, out);
            };
            let stop = Stopping { max_iterations: Some(50), ..Stopping::default() };
            minimise(&mut de, &mut eval, &stop, &mut Silent, false);
            asked
        };
        for strategy in STRATEGIES {
            let a = asks(5, strategy);
            assert_eq!(a, asks(5, strategy));
            assert_ne!(a, asks(6, strategy));
        }
    }

    #[test]
    fn failed_evaluations_never_replace_members() {
        // The sphere, failing (NaN) for x_0 < 0.5: the search ends on the feasible optimum.
        let mut de =
            DifferentialEvolution::new(vec![2.0; 3], cube(3), DifferentialEvolutionOptions::default()).unwrap();
        let mut eval = |batch: &[Vec<f64>], out: &mut [f64]| {
            for (x, o) in batch.iter().zip(out.iter_mut()) {
                *o = if x[0] < 0.5 { f64::NAN } else { sphere(x) };
            }
        };
        let r = minimise(&mut de, &mut eval, &Stopping::default(), &mut Silent, false);
        assert!((r.value - 0.25).abs() < 1e-8, "{} ({:?})", r.value, r.termination);

        // Everything fails: no panic, AllFailed.
        let mut de =
            DifferentialEvolution::new(vec![2.0; 3], cube(3), DifferentialEvolutionOptions::default()).unwrap();
        let mut eval = |_: &[Vec<f64>], out: &mut [f64]| out.fill(f64::NAN);
        let r = minimise(&mut de, &mut eval, &Stopping::default(), &mut Silent, false);
        assert_eq!(r.termination, Termination::AllFailed);
    }

    #[test]
    fn degenerate_problems_stop() {
        let mut de =
            DifferentialEvolution::new(vec![], Bounds::unbounded(0), DifferentialEvolutionOptions::default()).unwrap();
        let r = minimise(&mut de, &mut evaluator(|_| 2.0), &Stopping::default(), &mut Silent, false);
        assert_eq!((r.value, r.termination), (2.0, Termination::FunctionTolerance));
        let mut de =
            DifferentialEvolution::new(vec![0.0], Bounds::unbounded(1), DifferentialEvolutionOptions::default())
                .unwrap();
        let r =
            minimise(&mut de, &mut evaluator(|x| math::powi(x[0] - 3.0, 2)), &Stopping::default(), &mut Silent, false);
        assert!((r.x[0] - 3.0).abs() < 1e-5, "{:?} {:?}", r.x, r.termination);
    }

    #[test]
    fn options_serde() {
        let parse = |s: &str| serde_json::from_str::<DifferentialEvolutionOptions>(s);
        assert_eq!(parse("{}").unwrap(), DifferentialEvolutionOptions::default());
        let o = parse(r#"{"strategy": "current-to-best/1/bin", "dither": [0.5, 1.0], "population": 30}"#).unwrap();
        assert_eq!(o.strategy, DeStrategy::CurrentToBest1Bin);
        assert_eq!((o.dither, o.population), (Some([0.5, 1.0]), Some(30)));
        assert_eq!(parse(r#"{"strategy": "rand1bin"}"#).unwrap().strategy, DeStrategy::Rand1Bin);
        assert!(parse(r#"{"strategy": "best/1/bin"}"#).is_err());
        assert!(parse(r#"{"F": 0.5}"#).is_err());
        let o = DifferentialEvolutionOptions { seed: 3, dither: Some([0.3, 0.6]), ..Default::default() };
        assert_eq!(parse(&serde_json::to_string(&o).unwrap()).unwrap(), o);
    }

    #[test]
    fn options_are_checked_at_their_boundaries_and_refused_without_a_panic() {
        let check = |o: DifferentialEvolutionOptions| o.check(3).map_err(|e| e.to_string());
        let base = DifferentialEvolutionOptions::default();
        for mutation in [f64::MIN_POSITIVE, 2.0] {
            assert!(check(DifferentialEvolutionOptions { mutation, ..base.clone() }).is_ok());
        }
        for mutation in [0.0, 2.0000001, f64::NAN, -1.0] {
            let e = check(DifferentialEvolutionOptions { mutation, ..base.clone() }).unwrap_err();
            assert!(e.starts_with("mutation must be in (0, 2] (got"), "{e}");
        }
        assert!(check(DifferentialEvolutionOptions { dither: Some([0.5, 0.5]), ..base.clone() }).is_ok());
        for dither in [[0.6, 0.5], [0.0, 1.0], [0.5, 2.5], [f64::NAN, 1.0]] {
            assert!(
                check(DifferentialEvolutionOptions { dither: Some(dither), ..base.clone() })
                    .unwrap_err()
                    .starts_with("dither")
            );
        }
        for crossover in [0.0, 1.0] {
            assert!(check(DifferentialEvolutionOptions { crossover, ..base.clone() }).is_ok());
        }
        for crossover in [-1e-9, 1.0 + 1e-9, f64::NAN] {
            assert!(
                check(DifferentialEvolutionOptions { crossover, ..base.clone() }).unwrap_err().starts_with("crossover")
            );
        }
        for init_spread in [0.0, f64::INFINITY, f64::NAN] {
            assert!(
                check(DifferentialEvolutionOptions { init_spread, ..base.clone() })
                    .unwrap_err()
                    .starts_with("init_spread")
            );
        }
        assert!(check(DifferentialEvolutionOptions { population: Some(4), ..base.clone() }).is_ok());
        assert_eq!(
            check(DifferentialEvolutionOptions { population: Some(3), ..base.clone() }),
            Err("population must be at least 4 (got 3)".into())
        );
        let huge = check(DifferentialEvolutionOptions { population: Some(usize::MAX), ..base.clone() }).unwrap_err();
        assert!(huge.starts_with(&format!("population {} would need about", usize::MAX)), "{huge}");
        let refused =
            DifferentialEvolution::new(vec![0.0; 3], cube(3), DifferentialEvolutionOptions { mutation: 3.0, ..base });
        assert_eq!(refused.unwrap_err().key, "mutation");
    }
}
