//! Monte Carlo runs (a configuration with a `[montecarlo]` section): N paths × T periods of a stochastic model,
//! in parallel, summarised by chosen statistics; optionally a sweep over one or two parameters (each grid point
//! a case of its own) and several seeds. `parfit run` and the browser façade both run them through this module.
//!
//! Work is split into tasks of (sweep point, chunk of paths); each task is one block of the model's
//! [`PathRunner`] (plugin ABI v3's paths entry point): paths `first..first + chunk` under the point's parameters
//! and seed. Tasks run through a [`Dispatch`] (rayon
//! work stealing with cancellation, and MPI ranks in the CLI), their rows land by path index, and statistics are
//! computed afterwards in path order — so every number is the same for any thread count, process count and
//! chunk size.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use parfit_core::SimError;
use parfit_core::parallel::Pool;
use parfit_core::paths::{PathRunner, PathsSpec};
use parfit_core::statistics::{Statistic, summarise};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use parfit_core::check::OptionError;
use parfit_core::limits::check_allocation;

use crate::config::{ModelSection, Times, check_plain_values, locate, option_error, toml_error};
use crate::dispatch::{Dispatch, Wire, put_f64s, take_f64s, take_u64};
use crate::{Result, RunError, input};

/// Largest seed a configuration may give: what a report's JSON number (and a `seeds` range) carries exactly.
pub const MAX_SEED: u64 = 1 << 53;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McConfig {
    pub model: ModelSection,
    pub montecarlo: McSection,
    /// Parameter values (default: the model's).
    #[serde(default)]
    pub parameters: BTreeMap<String, f64>,
    /// One or two parameters to vary over a grid: a list of values or "start:stop:count".
    #[serde(default)]
    pub sweep: BTreeMap<String, Times>,
    #[serde(default)]
    pub output: McOutput,
    pub seed: Option<u64>,
    pub threads: Option<usize>,
    /// Where the configuration came from and its text, for errors at a setting's line and column.
    #[serde(skip)]
    pub path: PathBuf,
    #[serde(skip)]
    pub text: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McSection {
    pub paths: u64,
    pub periods: u64,
    /// Outputs to summarise (default: all).
    pub outputs: Option<Vec<String>>,
    /// Statistics: mean, sd, min, max, median, qP (P in percent).
    #[serde(default = "default_statistics")]
    pub statistics: Vec<String>,
    /// Write every path's outputs to paths.csv in the output directory.
    #[serde(default)]
    pub per_path: bool,
    /// Several seeds, each a case of its own (a list, or "start:stop:count"); a seed override replaces them.
    pub seeds: Option<Times>,
    /// Paths per task (default: about 16 tasks per thread, at least 64 paths). Never changes the results.
    pub chunk: Option<u64>,
}

fn default_statistics() -> Vec<String> {
    ["mean", "sd", "min", "median", "max"].map(String::from).to_vec()
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McOutput {
    pub dir: Option<PathBuf>,
}

impl McConfig {
    /// Parse `text` as the Monte Carlo configuration at `path` (named in errors).
    pub fn parse(path: &Path, text: &str) -> Result<McConfig> {
        let config: McConfig = toml::from_str(text).map_err(|e| input(toml_error(path, text, &e)))?;
        check_plain_values(path, text, &config.model.options, &["model", "options"])?;
        Ok(McConfig { path: path.to_path_buf(), text: text.to_string(), ..config })
    }

    /// `key` of `table` out of its range, at its place in the configuration.
    fn refuse(&self, table: &[&str], key: &str, message: String) -> crate::InputError {
        option_error(&self.path, &self.text, table, OptionError::new(key, message))
    }
}

/// The error for a `[model]` kind that its plugin does not make through the paths entry point (a kind for
/// fits, or a projection), at the configuration's `[model] kind`.
pub fn not_monte_carlo(config: &McConfig) -> crate::InputError {
    input(format!(
        "{}: [montecarlo] needs a Monte Carlo model, but model kind '{}' is not one (its plugin does not run it \
         as paths)",
        locate(&config.path, &config.text, &["model", "kind"]),
        config.model.kind
    ))
}

/// What a host says when asked to make a Monte Carlo model (a kind its plugin makes through the paths entry
/// point) as a model to simulate at times, fit or sample: `place` is where the kind was named (a
/// configuration's `[model] kind`, or a model file).
pub fn paths_not_a_model(place: &str, kind: &str) -> String {
    format!(
        "{place}: model kind '{kind}' is a Monte Carlo model: it runs as paths, from a configuration with a \
         [montecarlo] section (paths, periods), not as a model simulated at times, fitted or sampled"
    )
}

/// Whether a configuration's text has a `[montecarlo]` section.
pub fn is_monte_carlo(text: &str) -> bool {
    text.parse::<toml::Table>().is_ok_and(|t| t.contains_key("montecarlo"))
}

/// One sweep point: its seed, its parameter vector and the swept values for the report.
#[derive(Debug, Clone)]
pub struct Point {
    pub seed: u64,
    pub params: Vec<f64>,
    pub swept: Vec<f64>,
}

/// What a configuration asks of a model, checked against its spec: the points (sweep × seeds), the outputs and
/// statistics to report, and the task size.
#[derive(Debug)]
pub struct Plan {
    pub paths: u64,
    pub periods: u64,
    pub seeds: Vec<u64>,
    /// The swept names (with "seed" first when there are several seeds), the columns before each point's rows.
    pub swept: Vec<String>,
    pub points: Vec<Point>,
    /// Indices of the summarised outputs in the model's outputs.
    pub outputs: Vec<usize>,
    pub stats: Vec<Statistic>,
    pub chunk: u64,
}

impl Plan {
    /// Check `config` against the model's `spec`. `seed` overrides the configuration's seed and
    /// seeds, `sets` the parameter values; `threads` only sizes the default chunk.
    pub fn new(
        config: &McConfig,
        spec: &PathsSpec,
        seed: Option<u64>,
        sets: &[(String, f64)],
        threads: usize,
    ) -> Result<Plan> {
        let mc = &config.montecarlo;
        let base_seed = seed.or(config.seed).unwrap_or(0);
        if base_seed > MAX_SEED {
            let at = if seed.is_some() { "--seed".to_string() } else { locate(&config.path, &config.text, &["seed"]) };
            return Err(input(format!("{at}: the seed must be at most 2^53 = {MAX_SEED} (got {base_seed})")));
        }
        let at_most_2_53 = |key: &str, value: u64, least: u64| {
            if (least..=MAX_SEED).contains(&value) {
                Ok(())
            } else {
                Err(config.refuse(&["montecarlo"], key, format!("must be in {least}..=2^53 (got {value})")))
            }
        };
        at_most_2_53("paths", mc.paths, 1)?;
        at_most_2_53("periods", mc.periods, 0)?;
        // `table` is where the name was written: "parameters", "sweep", or "" for --set.
        let param = |name: &str, table: &str| {
            spec.param_index(name).ok_or_else(|| {
                let names: Vec<&str> = spec.params.iter().map(|p| p.name.as_str()).collect();
                let message = format!("the model has no parameter '{name}' (it has: {})", names.join(", "));
                match table {
                    "" => input(format!("--set {name}: {message}")),
                    _ => input(format!("{}: [{table}] {message}", locate(&config.path, &config.text, &[table, name]))),
                }
            })
        };
        let mut base = spec.defaults();
        for (name, v) in &config.parameters {
            base[param(name, "parameters")?] = *v;
        }
        for (name, v) in sets {
            base[param(name, "")?] = *v;
        }
        if config.sweep.len() > 2 {
            let at = locate(&config.path, &config.text, &["sweep"]);
            return Err(input(format!("{at}: [sweep] varies at most two parameters (got {})", config.sweep.len())));
        }
        let mut axes = Vec::new();
        for (name, values) in &config.sweep {
            let values = values.values().map_err(|e| config.refuse(&["sweep"], name, e))?;
            axes.push((param(name, "sweep")?, name.clone(), values));
        }
        let seeds: Vec<u64> = match (seed, &mc.seeds) {
            (None, Some(list)) => list
                .values()
                .map_err(|e| config.refuse(&["montecarlo"], "seeds", e))?
                .into_iter()
                .map(|v| {
                    if v >= 0.0 && v.fract() == 0.0 && v <= MAX_SEED as f64 {
                        Ok(v as u64)
                    } else {
                        let message = format!("must hold whole numbers from 0 to 2^53 (got {v})");
                        Err(config.refuse(&["montecarlo"], "seeds", message))
                    }
                })
                .collect::<Result<_>>()?,
            _ => vec![base_seed],
        };
        // Every point's paths × outputs are gathered before the statistics: refuse what would not fit in memory
        // before building the grid.
        let n_points = axes.iter().fold(seeds.len() as f64, |n, (_, _, values)| n * values.len() as f64);
        let n_out = spec.outputs.len() as f64;
        let point_bytes = (std::mem::size_of::<Point>() + 8 * (base.len() + axes.len() + 1)) as f64;
        let what = format!("{} paths × {n_points} sweep point(s) × {n_out} output(s)", mc.paths);
        check_allocation(&what, n_points, point_bytes + mc.paths as f64 * n_out * 8.0)
            .map_err(|e| config.refuse(&["montecarlo"], "paths", e))?;
        let mut swept: Vec<String> = axes.iter().map(|(_, n, _)| n.clone()).collect();
        let mut points = grid(base_seed, &base, &axes);
        if seeds.len() > 1 {
            swept.insert(0, "seed".into());
            points = seeds
                .iter()
                .flat_map(|&sd| {
                    points.iter().map(move |p| Point {
                        seed: sd,
                        params: p.params.clone(),
                        swept: [vec![sd as f64], p.swept.clone()].concat(),
                    })
                })
                .collect();
        } else {
            points.iter_mut().for_each(|p| p.seed = seeds[0]);
        }
        let outputs: Vec<usize> = match &mc.outputs {
            None => (0..spec.outputs.len()).collect(),
            Some(names) => names
                .iter()
                .map(|n| {
                    spec.output_index(n).ok_or_else(|| {
                        let message = format!("names no output '{n}' (the model has: {})", spec.outputs.join(", "));
                        config.refuse(&["montecarlo"], "outputs", message)
                    })
                })
                .collect::<Result<_>>()?,
        };
        let stats: Vec<Statistic> = mc
            .statistics
            .iter()
            .map(|s| Statistic::parse(s).map_err(|e| config.refuse(&["montecarlo"], "statistics", e)))
            .collect::<Result<_>>()?;
        let chunk = match mc.chunk {
            Some(0) => return Err(config.refuse(&["montecarlo"], "chunk", "must be at least 1 (got 0)".into())),
            Some(c) => c,
            None => mc.paths.div_ceil(16 * threads.max(1) as u64).max(64),
        };
        Ok(Plan { paths: mc.paths, periods: mc.periods, seeds, swept, points, outputs, stats, chunk })
    }
}

impl Plan {
    /// The plan of one point outside a configuration (Python's `MonteCarloModel.simulate`): paths `0..paths`
    /// of `params` under `seed`, every output kept, no statistics; the arguments checked as a configuration's
    /// are, each named as `name` spells it.
    pub fn one_point(
        paths: u64,
        periods: u64,
        seed: u64,
        params: Vec<f64>,
        n_outputs: usize,
        threads: usize,
        name: &dyn Fn(&str) -> String,
    ) -> Result<Plan> {
        for (key, value, least) in [("paths", paths, 1), ("periods", periods, 0), ("seed", seed, 0)] {
            if !(least..=MAX_SEED).contains(&value) {
                return Err(input(format!("{} must be in {least}..=2^53 (got {value})", name(key))));
            }
        }
        let what = format!("{paths} paths × {n_outputs} output(s)");
        check_allocation(&what, paths as f64, (n_outputs * 8) as f64)
            .map_err(|e| input(format!("{}: {e}", name("paths"))))?;
        Ok(Plan {
            paths,
            periods,
            seeds: vec![seed],
            swept: Vec::new(),
            points: vec![Point { seed, params, swept: Vec::new() }],
            outputs: (0..n_outputs).collect(),
            stats: Vec::new(),
            chunk: paths.div_ceil(16 * threads.max(1) as u64).max(64),
        })
    }
}

/// The grid of sweep points (first axis outermost); one point without a sweep.
fn grid(seed: u64, base: &[f64], axes: &[(usize, String, Vec<f64>)]) -> Vec<Point> {
    let mut points = vec![Point { seed, params: base.to_vec(), swept: vec![] }];
    for (index, _, values) in axes {
        points = points
            .iter()
            .flat_map(|p| {
                values.iter().map(move |v| {
                    let mut params = p.params.clone();
                    params[*index] = *v;
                    Point { seed, params, swept: [p.swept.clone(), vec![*v]].concat() }
                })
            })
            .collect();
    }
    points
}

/// Every path's outputs at every point (`paths × n_outputs` per point, by path index), running the tasks
/// (point, chunk) through `dispatch`; `None` where results are not gathered (an MPI job's other ranks).
/// `done(paths)` is called, from the thread that received it, as each task's result arrives; setting `stop`
/// leaves the tasks not yet started undone (a failure sets it too).
pub fn simulate_all(
    dispatch: &impl Dispatch,
    model: &dyn PathRunner,
    plan: &Plan,
    stop: &AtomicBool,
    done: &(dyn Fn(u64) + Sync),
) -> std::result::Result<Option<Vec<Vec<f64>>>, RunError> {
    let (paths, chunk, points) = (plan.paths, plan.chunk, &plan.points);
    let n_out = model.spec().outputs.len();
    let chunks = paths.div_ceil(chunk) as usize;
    let n_tasks = points.len() * chunks;
    let here = dispatch.gathers_here();
    let results: Mutex<Vec<Vec<f64>>> =
        Mutex::new(points.iter().filter(|_| here).map(|_| vec![0.0; paths as usize * n_out]).collect());
    let errors: Mutex<BTreeMap<usize, SimError>> = Mutex::new(BTreeMap::new());
    // Kept across tasks: a workspace per worker that ran at once.
    let workspaces = Pool::default();
    let periods = plan.periods;
    let ran = AtomicUsize::new(0);
    let tasks: Vec<usize> = (0..n_tasks).collect();
    // Another process takes about an eighth of its share of the tasks at a time.
    let per_request = (n_tasks / (dispatch.processes() * 8)).max(1);
    dispatch.for_each(
        &tasks,
        per_request,
        stop,
        &|task| {
            let (point, c) = (task / chunks, (task % chunks) as u64);
            let first = c * chunk;
            let count = ((first + chunk).min(paths) - first) as usize;
            let mut rows = vec![0.0; count * n_out];
            let (params, seed) = (&points[point].params, points[point].seed);
            let outcome = workspaces
                .with(|| model.workspace(), |ws| model.run(ws, params, seed, periods, first, count, &mut rows));
            TaskOutcome { rows: outcome.map(|()| rows), paths: count as u64 }
        },
        &|task, outcome: TaskOutcome| {
            match outcome.rows {
                Ok(rows) => {
                    let (point, c) = (task / chunks, task % chunks);
                    let at = c * chunk as usize * n_out;
                    let mut all = results.lock().unwrap_or_else(|p| p.into_inner());
                    all[point][at..at + rows.len()].copy_from_slice(&rows);
                }
                Err(e) => {
                    errors.lock().unwrap_or_else(|p| p.into_inner()).insert(task, e);
                    stop.store(true, Ordering::Relaxed);
                }
            }
            ran.fetch_add(1, Ordering::Relaxed);
            done(outcome.paths);
        },
    )?;
    if !here {
        return Ok(None);
    }
    if let Some((task, e)) = errors.into_inner().unwrap_or_else(|p| p.into_inner()).into_iter().next() {
        let first = (task % chunks) as u64 * chunk;
        return Err(RunError::Failed(format!(
            "simulation failed (sweep point {}, paths {first}–{}): {e}",
            task / chunks + 1,
            (first + chunk).min(paths) - 1
        )));
    }
    let ran = ran.into_inner();
    if ran < n_tasks {
        return Err(RunError::Interrupted(format!("interrupted after {ran} of {n_tasks} tasks")));
    }
    Ok(Some(results.into_inner().unwrap_or_else(|p| p.into_inner())))
}

/// One task's rows (or why its simulation failed) and its number of paths.
struct TaskOutcome {
    rows: std::result::Result<Vec<f64>, SimError>,
    paths: u64,
}

/// A task's outcome crosses between processes as exact bits (an error as its JSON).
impl Wire for TaskOutcome {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend(self.paths.to_le_bytes());
        match &self.rows {
            Ok(rows) => {
                out.push(0);
                put_f64s(out, rows);
            }
            Err(e) => {
                out.push(1);
                let _ = serde_json::to_writer(out, e);
            }
        }
    }

    fn decode(mut bytes: &[u8]) -> std::result::Result<Self, String> {
        let paths = take_u64(&mut bytes)?;
        match bytes.split_first() {
            Some((0, mut rest)) => {
                let len = take_u64(&mut rest)? as usize;
                Ok(TaskOutcome { rows: Ok(take_f64s(&mut rest, len)?), paths })
            }
            Some((1, rest)) => {
                let e: SimError = serde_json::from_slice(rest).map_err(|e| format!("a simulation error: {e}"))?;
                Ok(TaskOutcome { rows: Err(e), paths })
            }
            _ => Err("a task result of unknown form".into()),
        }
    }
}

/// The statistics of every point: `[point][summarised output][statistic]`, each over the paths in path order.
pub fn summarise_points(plan: &Plan, n_outputs: usize, values: &[Vec<f64>]) -> Vec<Vec<Vec<f64>>> {
    let mut scratch = Vec::new();
    let mut column = Vec::with_capacity(plan.paths as usize);
    values
        .iter()
        .map(|v| {
            plan.outputs
                .iter()
                .map(|&j| {
                    column.clear();
                    column.extend(v.chunks_exact(n_outputs).map(|row| row[j]));
                    summarise(&column, &plan.stats, &mut scratch)
                })
                .collect()
        })
        .collect()
}

/// A float as the CSV files write it: shortest round-trip form.
fn cell(v: f64) -> String {
    format!("{v:?}")
}

/// The summary as a table: the header (swept names, "output", one column per statistic) and one row per point
/// and summarised output, numbers written by `number`.
pub fn summary_table(
    plan: &Plan,
    spec: &PathsSpec,
    summary: &[Vec<Vec<f64>>],
    number: impl Fn(f64) -> String,
) -> (Vec<String>, Vec<Vec<String>>) {
    let header =
        plan.swept.iter().cloned().chain(["output".into()]).chain(plan.stats.iter().map(Statistic::name)).collect();
    let mut rows = Vec::new();
    for (point, per_output) in plan.points.iter().zip(summary) {
        for (&j, row) in plan.outputs.iter().zip(per_output) {
            let cells = point
                .swept
                .iter()
                .map(|v| number(*v))
                .chain([spec.outputs[j].clone()])
                .chain(row.iter().map(|v| number(*v)));
            rows.push(cells.collect());
        }
    }
    (header, rows)
}

/// Records as CSV text, each cell quoted where it needs to be (a name with a comma or a quote).
pub fn csv_text<R: AsRef<[u8]>>(records: impl IntoIterator<Item = impl IntoIterator<Item = R>>) -> String {
    let mut out = csv::Writer::from_writer(Vec::new());
    for record in records {
        // Writing to memory cannot fail.
        let _ = out.write_record(record);
    }
    out.into_inner().ok().and_then(|bytes| String::from_utf8(bytes).ok()).unwrap_or_default()
}

/// The summary table as CSV (`summary.csv`), numbers in shortest round-trip form.
pub fn summary_csv(plan: &Plan, spec: &PathsSpec, summary: &[Vec<Vec<f64>>]) -> String {
    let (header, rows) = summary_table(plan, spec, summary, cell);
    csv_text(std::iter::once(header).chain(rows))
}

/// The run's report (`summary.json`, `parfit run --format json`): sizes, seeds, and each point's parameters and
/// statistics by output.
pub fn report(
    plan: &Plan,
    spec: &PathsSpec,
    summary: &[Vec<Vec<f64>>],
    threads: usize,
    seconds: f64,
) -> serde_json::Value {
    let stat_names: Vec<String> = plan.stats.iter().map(Statistic::name).collect();
    let points: Vec<Value> = plan
        .points
        .iter()
        .zip(summary)
        .map(|(p, per_output)| {
            let parameters: Map<String, Value> =
                spec.params.iter().zip(&p.params).map(|(s, v)| (s.name.clone(), json!(v))).collect();
            let statistics: Map<String, Value> = plan
                .outputs
                .iter()
                .zip(per_output)
                .map(|(&j, row)| {
                    let by_stat: Map<String, Value> =
                        stat_names.iter().zip(row).map(|(s, v)| (s.clone(), json!(v))).collect();
                    (spec.outputs[j].clone(), Value::Object(by_stat))
                })
                .collect();
            json!({ "seed": p.seed, "parameters": parameters, "statistics": statistics })
        })
        .collect();
    json!({
        "paths": plan.paths, "periods": plan.periods, "seeds": plan.seeds, "threads": threads, "chunk": plan.chunk,
        "seconds": seconds, "model": spec.name, "points": points,
    })
}

/// Every path's outputs as CSV (`paths.csv`): swept values, path index, outputs.
pub fn per_path_csv(plan: &Plan, outputs: &[String], values: &[Vec<f64>]) -> String {
    let n_out = outputs.len().max(1);
    let header: Vec<String> =
        plan.swept.iter().cloned().chain(["path".into()]).chain(outputs.iter().cloned()).collect();
    let rows = plan.points.iter().zip(values).flat_map(|(point, v)| {
        v.chunks_exact(n_out).enumerate().map(|(p, row)| {
            point.swept.iter().map(|s| cell(*s)).chain([p.to_string()]).chain(row.iter().map(|x| cell(*x))).collect()
        })
    });
    csv_text(std::iter::once(header).chain(rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_puts_the_first_axis_outermost() {
        let axes = vec![(0, "a".to_string(), vec![1.0, 2.0]), (2, "c".to_string(), vec![5.0, 6.0, 7.0])];
        let points = grid(4, &[0.0, 9.0, 0.0], &axes);
        assert_eq!(points.len(), 6);
        assert_eq!(points[0].params, vec![1.0, 9.0, 5.0]);
        assert_eq!(points[2].swept, vec![1.0, 7.0]);
        assert_eq!(points[3].params, vec![2.0, 9.0, 5.0]);
        assert_eq!(grid(4, &[3.0], &[]).len(), 1);
        assert!(points.iter().all(|p| p.seed == 4));
    }

    fn spec() -> PathsSpec {
        serde_json::from_value::<PathsSpec>(serde_json::json!({
            "name": "wealth",
            "params": [{ "name": "s", "default": 0.3 }, { "name": "v2", "default": 1.0 }],
            "outputs": ["w"],
        }))
        .unwrap()
        .normalise()
    }

    fn config(text: &str) -> McConfig {
        McConfig::parse(Path::new("mc.toml"), &format!("[model]\nkind = \"montecarlo\"\n{text}")).unwrap()
    }

    #[test]
    fn a_plan_crosses_seeds_with_the_sweep_grid() {
        let c = config(
            "[montecarlo]\npaths = 1000\nperiods = 10\nseeds = [3, 4]\nstatistics = [\"median\", \"q5\"]\n\
             [sweep]\ns = [0.2, 0.4]\nv2 = \"0.5:1.0:3\"\n",
        );
        let plan = Plan::new(&c, &spec(), None, &[], 2).unwrap();
        assert_eq!(plan.swept, ["seed", "s", "v2"]);
        assert_eq!(plan.points.len(), 2 * 2 * 3);
        assert_eq!((plan.points[0].seed, plan.points[6].seed), (3, 4));
        assert_eq!(plan.points[1].params, [0.2, 0.75]);
        assert_eq!(plan.points[1].swept, [3.0, 0.2, 0.75]);
        // About 16 tasks per thread, at least 64 paths each.
        assert_eq!(plan.chunk, 64);
        // A seed override replaces the seeds list.
        let one = Plan::new(&c, &spec(), Some(9), &[("v2".into(), 2.0)], 2).unwrap();
        assert_eq!((one.seeds.clone(), one.points.len(), one.swept.len()), (vec![9], 6, 2));
    }

    #[test]
    fn a_plan_of_one_point_checks_its_arguments() {
        let name = |k: &str| format!("{k}=");
        let plan = Plan::one_point(1000, 10, 7, vec![0.3, 1.0], 2, 2, &name).unwrap();
        assert_eq!((plan.points.len(), plan.points[0].seed, plan.outputs.clone(), plan.chunk), (1, 7, vec![0, 1], 64));
        assert!(plan.swept.is_empty() && plan.stats.is_empty());
        let e = Plan::one_point(0, 10, 7, vec![], 1, 1, &name).unwrap_err().0;
        assert_eq!(e, "paths= must be in 1..=2^53 (got 0)");
        let e = Plan::one_point(1, 10, MAX_SEED + 1, vec![], 1, 1, &name).unwrap_err().0;
        assert_eq!(e, format!("seed= must be in 0..=2^53 (got {})", MAX_SEED + 1));
        let e = Plan::one_point(1 << 50, 10, 1, vec![], 3, 1, &name).unwrap_err().0;
        assert!(e.starts_with("paths=: 1125899906842624 paths × 3 output(s) would need about"), "{e}");
    }

    #[test]
    fn bad_plans_are_refused_with_what_to_fix() {
        let err = |text: &str, seed: Option<u64>| Plan::new(&config(text), &spec(), seed, &[], 1).unwrap_err().0;
        let ok = "[montecarlo]\npaths = 10\nperiods = 5\n";
        let e = not_monte_carlo(&config(ok)).0;
        assert!(
            e.starts_with("mc.toml:2:8: [montecarlo] needs a Monte Carlo model, but model kind 'montecarlo'"),
            "{e}"
        );
        let e = paths_not_a_model("fit.toml:2:8", "montecarlo");
        assert!(e.starts_with("fit.toml:2:8: model kind 'montecarlo' is a Monte Carlo model: it runs as paths"), "{e}");
        let e = err(&format!("{ok}[parameters]\nr = 1.0\n"), None);
        assert_eq!(e, "mc.toml:7:5: [parameters] the model has no parameter 'r' (it has: s, v2)");
        let e = err(ok, Some(MAX_SEED + 1));
        assert!(e.contains("the seed must be at most 2^53"), "{e}");
        let e = err("[montecarlo]\npaths = 0\nperiods = 5\n", None);
        assert_eq!(e, "mc.toml:4:9: [montecarlo] paths must be in 1..=2^53 (got 0)");
        let e = err("[montecarlo]\npaths = 1000000000000\nperiods = 5\n", None);
        assert!(
            e.starts_with(
                "mc.toml:4:9: [montecarlo] paths 1000000000000 paths × 1 sweep point(s) × 1 output(s) \
                              would need about 7.3 TiB"
            ),
            "{e}"
        );
        let e = err("[montecarlo]\npaths = 100000\nperiods = 5\nseeds = \"0:999999:1000000\"\n", None);
        assert!(e.contains("1000000 sweep point(s)") && e.contains("would need about"), "{e}");
        let e = err(&format!("{ok}[sweep]\ns = \"0:1:100000000\"\n"), None);
        assert!(e.starts_with("mc.toml:4:9: [montecarlo] paths 10 paths × 100000000 sweep point(s)"), "{e}");
        let e = err(&format!("{ok}[sweep]\ns = [0.1, nan]\n"), None);
        assert!(e.starts_with("mc.toml:7:5: [sweep] s every value must be a finite number (got NaN)"), "{e}");
        let e = err(&format!("{ok}chunk = 0\n"), None);
        assert_eq!(e, "mc.toml:6:9: [montecarlo] chunk must be at least 1 (got 0)");
        let e = err(&format!("{ok}statistics = [\"mode\"]\n"), None);
        assert!(e.starts_with("mc.toml:6:14: [montecarlo] statistics unknown statistic 'mode'"), "{e}");
        let e = err(&format!("{ok}outputs = [\"x\"]\n"), None);
        assert!(e.starts_with("mc.toml:6:11: [montecarlo] outputs names no output 'x' (the model has: w)"), "{e}");
    }
}
