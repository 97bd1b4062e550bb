//! CMA-ES (against pycma) and L-BFGS-B (against scipy) on the suite's test functions.

use std::time::Instant;

use parfit_core::optimise::{
    Bounds, Cmaes, CmaesOptions, Differences, LBfgsB, LBfgsBOptions, Optimiser, Restarts, Silent, Stopping,
    Termination, minimise,
};
use parfit_core::statistics::quantile;
use serde_json::{Value, json};

use crate::functions::{by_name, rosenbrock, rosenbrock_gradient};
use crate::timing::{median, per_call};
use crate::{Result, f64_of, f64s_of, str_of, usize_of};

/// A box `[lo, hi]^dim` from the suite's `"bounds": [lo, hi]`, or no bounds.
fn bounds_of(problem: &Value, dim: usize) -> Result<Bounds> {
    match problem.get("bounds") {
        None | Some(Value::Null) => Ok(Bounds::unbounded(dim)),
        Some(_) => {
            let b = f64s_of(problem, "bounds")?;
            let [lo, hi] = b[..] else { return Err(format!("\"bounds\" must be [lower, upper] in {problem}")) };
            Ok(Bounds { lower: vec![lo; dim], upper: vec![hi; dim] })
        }
    }
}

/// A problem's own `"seeds"`, else the section's.
fn seeds_of(problem: &Value, section: &Value) -> Result<Vec<u64>> {
    let list =
        problem.get("seeds").or(section.get("seeds")).and_then(Value::as_array).ok_or("\"seeds\" must be a list")?;
    list.iter().map(|s| s.as_u64().ok_or_else(|| format!("seed {s} is not a count"))).collect()
}

/// Medians over the successful runs (evaluations and seconds to the target), the quartiles of the evaluations
/// (numpy's linear quantiles, as the peers report them), and the success count.
fn summarise(runs: &[Value]) -> Value {
    let ok: Vec<&Value> = runs.iter().filter(|r| r["success"].as_bool() == Some(true)).collect();
    let pick = |key: &str| median(ok.iter().filter_map(|r| r[key].as_f64()).collect());
    let mut evaluations: Vec<f64> = ok.iter().filter_map(|r| r["evaluations_to_target"].as_f64()).collect();
    json!({
        "successes": ok.len(),
        "runs": runs.len(),
        "evaluations_median": pick("evaluations_to_target"),
        "evaluations_q1": quantile(&mut evaluations, 0.25),
        "evaluations_q3": quantile(&mut evaluations, 0.75),
        "seconds_median": pick("seconds_to_target"),
    })
}

/// Every CMA-ES problem over every seed, stopping at the target value (as pycma's `ftarget` does).
pub fn cmaes(section: &Value) -> Result<Value> {
    let target = f64_of(section, "target")?;
    let problems = section.get("problems").and_then(Value::as_array).ok_or("cmaes: \"problems\" must be a list")?;
    let (mut out, mut order) = (serde_json::Map::new(), Vec::new());
    for problem in problems {
        let name = str_of(problem, "name")?;
        order.push(name);
        let f = by_name(str_of(problem, "function")?)?;
        let dim = usize_of(problem, "dim")?;
        let x0 = vec![f64_of(problem, "x0")?; dim];
        let bounds = bounds_of(problem, dim)?;
        let restarts: Restarts = serde_json::from_value(problem["restarts"].clone()).map_err(|e| e.to_string())?;
        let stop = Stopping {
            target_value: Some(target),
            max_evaluations: Some(usize_of(problem, "max_evaluations")?),
            ftol: f64_of(section, "ftol")?,
            xtol: f64_of(section, "xtol")?,
            ..Stopping::default()
        };
        let mut runs = Vec::new();
        for seed in seeds_of(problem, section)? {
            let options =
                CmaesOptions { sigma0: f64_of(problem, "sigma0")?, seed, restarts: restarts.clone(), population: None };
            let mut evaluate = |batch: &[Vec<f64>], values: &mut [f64]| {
                for (x, v) in batch.iter().zip(values.iter_mut()) {
                    *v = f(x);
                }
            };
            let mut r = None;
            // A run is deterministic: repeat it and take the median time, so a preemption on a busy machine
            // does not count.
            // Options are checked once here, so building the optimiser inside the timed call cannot fail.
            let cmaes = Cmaes::new(x0.clone(), bounds.clone(), options).map_err(|e| format!("cmaes: {e}"))?;
            let (seconds, _) = per_call(3, 0.1, || {
                let mut cmaes = cmaes.clone();
                r = Some(minimise(&mut cmaes, &mut evaluate, &stop, &mut Silent, false));
            });
            let r = r.expect("per_call runs at least once");
            let success = r.termination == Termination::TargetReached;
            runs.push(json!({
                "seed": seed, "success": success, "value": r.value, "evaluations": r.evaluations,
                "evaluations_to_target": if success { json!(r.evaluations) } else { Value::Null },
                "seconds": seconds, "seconds_to_target": if success { json!(seconds) } else { Value::Null },
                "termination": r.termination,
            }));
        }
        out.insert(name.into(), json!({ "summary": summarise(&runs), "runs": runs }));
    }
    Ok(
        json!({ "tool": "parfit", "version": env!("CARGO_PKG_VERSION"), "target": target, "order": order, "problems": out }),
    )
}

/// Counts evaluations and notes when the target was first reached.
struct Tally {
    start: Instant,
    target: f64,
    evaluations: usize,
    hit: Option<(usize, f64)>,
    /// The whole run.
    seconds: f64,
}

impl Tally {
    fn new(target: f64) -> Self {
        Tally { start: Instant::now(), target, evaluations: 0, hit: None, seconds: 0.0 }
    }

    fn count(&mut self, value: f64) {
        self.evaluations += 1;
        if self.hit.is_none() && value <= self.target {
            self.hit = Some((self.evaluations, self.start.elapsed().as_secs_f64()));
        }
    }
}

/// L-BFGS-B on Rosenbrock from every start, with forward-difference and with exact gradients. Counts every
/// function evaluation (finite-difference points included), as scipy's `nfev` does.
pub fn lbfgsb(section: &Value) -> Result<Value> {
    if str_of(section, "function")? != "rosenbrock" {
        return Err("lbfgsb: only \"rosenbrock\" has a gradient here".into());
    }
    let target = f64_of(section, "target")?;
    let starts = section.get("starts").and_then(Value::as_array).ok_or("lbfgsb: \"starts\" must be a list")?;
    let options = LBfgsBOptions {
        memory: usize_of(section, "memory")?,
        gtol: f64_of(section, "gtol")?,
        differences: Differences::Forward,
        ..LBfgsBOptions::default()
    };
    let stop = Stopping {
        ftol: f64_of(section, "ftol")?,
        max_evaluations: Some(usize_of(section, "max_evaluations")?),
        ..Stopping::default()
    };
    let (mut out, mut order) = (serde_json::Map::new(), Vec::new());
    for gradient in section.get("gradients").and_then(Value::as_array).ok_or("lbfgsb: \"gradients\" must be a list")? {
        let gradient = gradient.as_str().ok_or("lbfgsb: gradients are \"forward\" or \"exact\"")?;
        order.push(gradient);
        let mut runs = Vec::new();
        for (k, start) in starts.iter().enumerate() {
            let x0: Vec<f64> = serde_json::from_value(start.clone()).map_err(|e| format!("start {k}: {e}"))?;
            let dim = x0.len();
            let bounds = bounds_of(section, dim)?;
            let once = || -> Result<(Tally, Termination, f64)> {
                let mut tally = Tally::new(target);
                let mut opt =
                    LBfgsB::new(x0.clone(), bounds.clone(), options.clone()).map_err(|e| format!("lbfgsb: {e}"))?;
                let termination = match gradient {
                    "forward" => {
                        let mut evaluate = |batch: &[Vec<f64>], values: &mut [f64]| {
                            for (x, v) in batch.iter().zip(values.iter_mut()) {
                                *v = rosenbrock(x);
                                tally.count(*v);
                            }
                        };
                        minimise(&mut opt, &mut evaluate, &stop, &mut Silent, false).termination
                    }
                    "exact" => exact_gradient_run(&mut opt, &stop, &mut tally),
                    other => return Err(format!("lbfgsb: unknown gradient '{other}'")),
                };
                tally.seconds = tally.start.elapsed().as_secs_f64();
                Ok((tally, termination, opt.best().1))
            };
            // Deterministic: repeat and take median times (a preemption on a busy machine must not count).
            let mut repeats = Vec::new();
            per_call(3, 0.1, || repeats.push(once()));
            let repeats = repeats.into_iter().collect::<Result<Vec<_>>>()?;
            let seconds = median(repeats.iter().map(|r| r.0.seconds).collect());
            let (tally, termination, value) = &repeats[0];
            let to_target = tally.hit.map(|h| h.0);
            let seconds_to_target =
                tally.hit.map(|_| median(repeats.iter().filter_map(|r| r.0.hit.map(|h| h.1)).collect()));
            runs.push(json!({
                "start": k, "success": tally.hit.is_some(), "value": value, "evaluations": tally.evaluations,
                "evaluations_to_target": to_target, "seconds_to_target": seconds_to_target,
                "seconds": seconds, "termination": termination,
            }));
        }
        let finals = median(runs.iter().filter_map(|r| r["value"].as_f64()).collect());
        let totals = median(runs.iter().filter_map(|r| r["evaluations"].as_f64()).collect());
        let mut summary = summarise(&runs);
        summary["final_value_median"] = json!(finals);
        summary["evaluations_total_median"] = json!(totals);
        out.insert(gradient.into(), json!({ "summary": summary, "runs": runs }));
    }
    Ok(
        json!({ "tool": "parfit", "version": env!("CARGO_PKG_VERSION"), "target": target, "order": order, "gradients": out }),
    )
}

/// The ask–tell loop with exact gradients (one point per batch), under the shared stopping rules.
fn exact_gradient_run(opt: &mut LBfgsB, stop: &Stopping, tally: &mut Tally) -> Termination {
    opt.use_exact_gradients(true);
    let max = stop.max_evaluations.unwrap_or(usize::MAX);
    let mut g = Vec::new();
    loop {
        let x = opt.ask()[0].clone();
        let value = rosenbrock(&x);
        g.resize(x.len(), 0.0);
        rosenbrock_gradient(&x, &mut g);
        tally.count(value);
        opt.tell_with_gradients(&[value], &g);
        if let Some(t) = opt.converged(stop) {
            return t;
        }
        if tally.evaluations >= max {
            return Termination::MaxEvaluations;
        }
    }
}
