//! `parfit run` on a Monte Carlo configuration (one with a `[montecarlo]` section): N paths × T periods of a
//! stochastic model, in parallel, summarised by chosen statistics; optionally a sweep over one or two
//! parameters (each grid point a case) and the per-path values as CSV.
//!
//! Work is split into tasks of (sweep point, chunk of paths); each task is one `simulate` call whose
//! evaluation points are the chunk's path indices (see the Monte Carlo plugin). Tasks run on rayon — and over
//! MPI ranks, under mpirun — through `ranks::for_each_case` (work stealing, cancellation), their rows land by
//! path index, and statistics are computed afterwards in path order — so every number is the same for any
//! thread count, rank count and chunk size.
//! Nothing is written until every task has finished: an interrupted run leaves no files, and result files are
//! written under a temporary name and renamed into place.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use parfit_core::statistics::{Statistic, summarise};
use parfit_core::{Model, SimError};
use serde::Deserialize;
use serde_json::json;

use crate::commands::fit_many::{STOP, install_signal_handler};
use crate::commands::{cell, plugin_options, show};
use crate::config::{ModelSection, Times, toml_error};
use crate::error::{CliError, CliResult, failed, input};
use crate::plugins::{choose, create_model, find_plugins};
use crate::ranks::{Wire, put_f64s, take_f64s, take_u64};
use crate::{Common, Format, init_threads, parse_sets};

/// The inputs a Monte Carlo model takes (the plugin's `INPUTS`).
const MC_INPUTS: [&str; 2] = ["seed", "periods"];
/// Largest seed an `f64` input carries exactly.
const MAX_SEED: u64 = 1 << 53;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct McConfig {
    model: ModelSection,
    montecarlo: McSection,
    /// Parameter values (default: the model's).
    #[serde(default)]
    parameters: BTreeMap<String, f64>,
    /// One or two parameters to vary over a grid: a list of values or "start:stop:count".
    #[serde(default)]
    sweep: BTreeMap<String, Times>,
    #[serde(default)]
    output: McOutput,
    seed: Option<u64>,
    threads: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct McSection {
    paths: u64,
    periods: u64,
    /// Outputs to summarise (default: all).
    outputs: Option<Vec<String>>,
    /// Statistics: mean, sd, min, max, median, qP (P in percent).
    #[serde(default = "default_statistics")]
    statistics: Vec<String>,
    /// Write every path's outputs to paths.csv in the output directory.
    #[serde(default)]
    per_path: bool,
    /// Several seeds, each a case of its own (a list, or "start:stop:count"); `--seed` overrides them.
    seeds: Option<Times>,
    /// Paths per task (default: about 16 tasks per thread, at least 64 paths). Never changes the results.
    chunk: Option<u64>,
}

fn default_statistics() -> Vec<String> {
    ["mean", "sd", "min", "median", "max"].map(String::from).to_vec()
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct McOutput {
    dir: Option<PathBuf>,
}

/// Whether the TOML file at `path` configures a Monte Carlo run.
pub fn is_monte_carlo(path: &Path) -> CliResult<bool> {
    let text = std::fs::read_to_string(path).map_err(|e| input(format!("{}: cannot read ({e})", path.display())))?;
    let table: toml::Table = toml::from_str(&text).map_err(|e| input(toml_error(path, &text, &e)))?;
    Ok(table.contains_key("montecarlo"))
}

/// One sweep point: its seed, its parameter vector and the swept values for the report.
struct Point {
    seed: u64,
    params: Vec<f64>,
    swept: Vec<f64>,
}

pub fn run(explicit: &[PathBuf], path: &Path, common: &Common) -> CliResult<()> {
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| input(format!("{origin}: cannot read ({e})")))?;
    let config: McConfig = toml::from_str(&text).map_err(|e| input(toml_error(path, &text, &e)))?;
    let resolve = |p: &Path| match path.parent() {
        Some(dir) if p.is_relative() => dir.join(p),
        _ => p.to_path_buf(),
    };
    let threads = init_threads(common.threads.or(config.threads))?;
    let seed = common.seed.or(config.seed).unwrap_or(0);
    if seed > MAX_SEED {
        return Err(input(format!("{origin}: the seed must be at most 2^53 = {MAX_SEED} (got {seed})")));
    }
    let mc = &config.montecarlo;
    if mc.paths == 0 || mc.paths > MAX_SEED || mc.periods > MAX_SEED {
        return Err(input(format!("{origin}: [montecarlo] needs 1 ≤ paths ≤ 2^53 and periods ≤ 2^53")));
    }

    let found = find_plugins(explicit)?;
    let plugin = choose(&found, config.model.plugin.as_deref(), &config.model.kind)?;
    let options = plugin_options(&config.model.options, common, &origin)?;
    let source = config.model.source.as_ref().map(|s| resolve(s));
    let model = create_model(plugin, &config.model.kind, source.as_deref(), options)?;
    let spec = model.spec();
    if spec.inputs != MC_INPUTS {
        return Err(input(format!(
            "{origin}: [montecarlo] needs a Monte Carlo model, but model kind '{}' is not one (its per-case inputs \
             are {:?}, not {MC_INPUTS:?})",
            config.model.kind, spec.inputs
        )));
    }
    let param = |name: &str, what: &str| {
        spec.param_index(name).ok_or_else(|| {
            let names: Vec<&str> = spec.params.iter().map(|p| p.name.as_str()).collect();
            input(format!("{origin}: {what}: the model has no parameter '{name}' (it has: {})", names.join(", ")))
        })
    };
    let mut base = spec.defaults();
    for (name, v) in &config.parameters {
        base[param(name, "[parameters]")?] = *v;
    }
    for (name, v) in parse_sets(&common.set)? {
        base[param(&name, "--set")?] = v;
    }
    if config.sweep.len() > 2 {
        return Err(input(format!("{origin}: [sweep] varies at most two parameters (got {})", config.sweep.len())));
    }
    let mut axes = Vec::new();
    for (name, values) in &config.sweep {
        let values = values.values().map_err(|e| input(format!("{origin}: [sweep] {name}: {e}")))?;
        axes.push((param(name, "[sweep]")?, name.clone(), values));
    }
    let seeds: Vec<u64> = match (common.seed, &mc.seeds) {
        (None, Some(list)) => list
            .values()
            .map_err(|e| input(format!("{origin}: [montecarlo] seeds: {e}")))?
            .into_iter()
            .map(|v| {
                if v >= 0.0 && v.fract() == 0.0 && v <= MAX_SEED as f64 {
                    Ok(v as u64)
                } else {
                    Err(input(format!("{origin}: [montecarlo] seeds: {v} is not a whole number from 0 to 2^53")))
                }
            })
            .collect::<CliResult<_>>()?,
        _ => vec![seed],
    };
    let mut swept: Vec<&str> = axes.iter().map(|(_, n, _)| n.as_str()).collect();
    let mut points = grid(seed, &base, &axes);
    if seeds.len() > 1 {
        swept.insert(0, "seed");
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
                    input(format!(
                        "{origin}: [montecarlo] outputs: no output '{n}' (the model has: {})",
                        spec.outputs.join(", ")
                    ))
                })
            })
            .collect::<CliResult<_>>()?,
    };
    let stats: Vec<Statistic> = mc
        .statistics
        .iter()
        .map(|s| Statistic::parse(s).map_err(|e| input(format!("{origin}: [montecarlo] statistics: {e}"))))
        .collect::<CliResult<_>>()?;
    let out_dir = common.output.clone().or_else(|| config.output.dir.as_ref().map(|d| resolve(d)));
    if mc.per_path && out_dir.is_none() {
        return Err(input(format!("{origin}: per_path = true writes paths.csv: give --output DIR or [output] dir")));
    }

    let chunk = match mc.chunk {
        Some(0) => return Err(input(format!("{origin}: [montecarlo] chunk must be at least 1"))),
        Some(c) => c,
        None => mc.paths.div_ceil(16 * threads as u64).max(64),
    };
    let start = Instant::now();
    let values = simulate_all(model.as_ref(), &points, mc.periods, mc.paths, chunk)?;
    // Under MPI the other ranks only simulated their share; rank 0 has every path and writes.
    if !crate::ranks::is_root() {
        return Ok(());
    }
    let seconds = start.elapsed().as_secs_f64();

    let n_out = spec.outputs.len();
    let mut scratch = Vec::new();
    let mut column = Vec::with_capacity(mc.paths as usize);
    let summary: Vec<Vec<Vec<f64>>> = values
        .iter()
        .map(|v| {
            outputs
                .iter()
                .map(|&j| {
                    column.clear();
                    column.extend(v.chunks_exact(n_out).map(|row| row[j]));
                    summarise(&column, &stats, &mut scratch)
                })
                .collect()
        })
        .collect();

    let stat_names: Vec<String> = stats.iter().map(Statistic::name).collect();
    let out_names: Vec<&str> = outputs.iter().map(|&j| spec.outputs[j].as_str()).collect();
    let mut table =
        vec![[swept.clone(), vec!["output"], stat_names.iter().map(String::as_str).collect()].concat().join(",")];
    for (point, per_output) in points.iter().zip(&summary) {
        for (name, row) in out_names.iter().zip(per_output) {
            let cells: Vec<String> = point
                .swept
                .iter()
                .map(|v| cell(*v))
                .chain([name.to_string()])
                .chain(row.iter().map(|v| cell(*v)))
                .collect();
            table.push(cells.join(","));
        }
    }
    let summary_csv = table.join("\n") + "\n";
    let report = json!({
        "paths": mc.paths, "periods": mc.periods, "seeds": seeds, "threads": threads, "chunk": chunk,
        "seconds": seconds, "model": spec.name,
        "points": points.iter().zip(&summary).map(|(p, per_output)| json!({
            "seed": p.seed,
            "parameters": spec.params.iter().zip(&p.params).map(|(s, v)| (s.name.clone(), json!(v))).collect::<serde_json::Map<_, _>>(),
            "statistics": out_names.iter().zip(per_output).map(|(o, row)| (o.to_string(),
                json!(stat_names.iter().zip(row).map(|(s, v)| (s.clone(), json!(v))).collect::<serde_json::Map<_, _>>()))).collect::<serde_json::Map<_, _>>(),
        })).collect::<Vec<_>>(),
    });

    if let Some(dir) = &out_dir {
        std::fs::create_dir_all(dir).map_err(|e| failed(format!("{}: cannot create ({e})", dir.display())))?;
        write_atomic(&dir.join("summary.csv"), summary_csv.as_bytes())?;
        write_atomic(
            &dir.join("summary.json"),
            (serde_json::to_string_pretty(&report).unwrap_or_default() + "\n").as_bytes(),
        )?;
        if mc.per_path {
            write_atomic(&dir.join("paths.csv"), per_path_csv(&swept, &spec.outputs, &points, &values).as_bytes())?;
        }
    }
    match common.format.unwrap_or(Format::Table) {
        Format::Json => println!("{report}"),
        Format::Csv => print!("{summary_csv}"),
        Format::Table => {
            println!(
                "monte carlo  {} paths × {} periods, seed {}, {} point{}, {seconds:.3} s on {threads} thread{}",
                mc.paths,
                mc.periods,
                seeds.iter().map(u64::to_string).collect::<Vec<_>>().join(" "),
                points.len(),
                if points.len() == 1 { "" } else { "s" },
                if threads == 1 { "" } else { "s" }
            );
            if let Some(dir) = &out_dir {
                println!(
                    "results      {}/summary.csv, summary.json{}",
                    dir.display(),
                    if mc.per_path { ", paths.csv" } else { "" }
                );
            }
            println!();
            let header: Vec<String> =
                swept.iter().map(|s| s.to_string()).chain(["output".into()]).chain(stat_names.clone()).collect();
            println!("{}", header.iter().map(|h| format!("{h:>14}")).collect::<String>());
            for (point, per_output) in points.iter().zip(&summary) {
                for (name, row) in out_names.iter().zip(per_output) {
                    let cells: Vec<String> = point
                        .swept
                        .iter()
                        .map(|v| show(*v))
                        .chain([name.to_string()])
                        .chain(row.iter().map(|v| show(*v)))
                        .collect();
                    println!("{}", cells.iter().map(|c| format!("{c:>14}")).collect::<String>());
                }
            }
        }
    }
    Ok(())
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
/// (point, chunk) in parallel. A simulation failure reports the lowest failing path's task.
fn simulate_all(model: &dyn Model, points: &[Point], periods: u64, paths: u64, chunk: u64) -> CliResult<Vec<Vec<f64>>> {
    let n_out = model.spec().outputs.len();
    let chunks = paths.div_ceil(chunk) as usize;
    let n_tasks = points.len() * chunks;
    // Only rank 0 (or the only process) receives rows.
    let root = crate::ranks::is_root();
    let results: Mutex<Vec<Vec<f64>>> =
        Mutex::new(points.iter().filter(|_| root).map(|_| vec![0.0; paths as usize * n_out]).collect());
    let errors: Mutex<BTreeMap<usize, SimError>> = Mutex::new(BTreeMap::new());
    let progress = Progress::new(paths * points.len() as u64);
    install_signal_handler();
    STOP.store(false, Ordering::Relaxed);
    let workspaces = thread_local_workspaces(model);
    let ran = AtomicUsize::new(0);
    let tasks: Vec<usize> = (0..n_tasks).collect();
    // Under MPI each request takes about an eighth of a rank's share of tasks.
    let per_request = (n_tasks / (crate::ranks::rank_and_size().1 * 8)).max(1);
    crate::ranks::for_each_case(
        &tasks,
        per_request,
        &STOP,
        &|task| {
            let (point, c) = (task / chunks, (task % chunks) as u64);
            let first = c * chunk;
            let ids: Vec<f64> = (first..(first + chunk).min(paths)).map(|p| p as f64).collect();
            let mut rows = vec![0.0; ids.len() * n_out];
            let outcome = workspaces.with(|ws| {
                model.simulate(ws, &points[point].params, &[points[point].seed as f64, periods as f64], &ids, &mut rows)
            });
            (outcome.map(|()| rows), ids.len() as u64)
        },
        &|task, (outcome, n): (Result<Vec<f64>, SimError>, u64)| {
            match outcome {
                Ok(rows) => {
                    let (point, c) = (task / chunks, task % chunks);
                    let at = c * chunk as usize * n_out;
                    let mut all = results.lock().unwrap_or_else(|p| p.into_inner());
                    all[point][at..at + rows.len()].copy_from_slice(&rows);
                }
                Err(e) => {
                    errors.lock().unwrap_or_else(|p| p.into_inner()).insert(task, e);
                    STOP.store(true, Ordering::Relaxed);
                }
            }
            ran.fetch_add(1, Ordering::Relaxed);
            progress.advance(n);
        },
    )?;
    progress.finish();
    // Other ranks simulated their share for rank 0, which alone holds the results and the errors.
    if !root {
        return Ok(Vec::new());
    }
    let ran = ran.into_inner();
    if let Some((task, e)) = errors.into_inner().unwrap_or_else(|p| p.into_inner()).into_iter().next() {
        let first = (task % chunks) as u64 * chunk;
        return Err(failed(format!(
            "simulation failed (sweep point {}, paths {first}–{}): {e}",
            task / chunks + 1,
            (first + chunk).min(paths) - 1
        )));
    }
    if ran < n_tasks {
        return Err(CliError::Interrupted(format!("interrupted after {ran} of {n_tasks} tasks; nothing was written")));
    }
    Ok(results.into_inner().unwrap_or_else(|p| p.into_inner()))
}

/// A task's outcome (its rows, or the failure) and its path count cross between ranks as exact bits.
impl Wire for (Result<Vec<f64>, SimError>, u64) {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend(self.1.to_le_bytes());
        match &self.0 {
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

    fn decode(mut bytes: &[u8]) -> Result<Self, String> {
        let n = take_u64(&mut bytes)?;
        match bytes.split_first() {
            Some((0, mut rest)) => {
                let len = take_u64(&mut rest)? as usize;
                Ok((Ok(take_f64s(&mut rest, len)?), n))
            }
            Some((1, rest)) => {
                let e: SimError = serde_json::from_slice(rest).map_err(|e| format!("a simulation error: {e}"))?;
                Ok((Err(e), n))
            }
            _ => Err("a task result of unknown form".into()),
        }
    }
}

/// One model workspace per rayon thread, made on first use.
struct Workspaces<'a> {
    model: &'a dyn Model,
    slots: Vec<Mutex<Option<parfit_core::Workspace>>>,
}

fn thread_local_workspaces(model: &dyn Model) -> Workspaces<'_> {
    // One slot per pool thread plus one for a caller outside the pool; each is only ever locked by its thread.
    Workspaces { model, slots: (0..=rayon::current_num_threads()).map(|_| Mutex::new(None)).collect() }
}

impl Workspaces<'_> {
    fn with<T>(&self, f: impl FnOnce(&mut parfit_core::Workspace) -> T) -> T {
        let slot = rayon::current_thread_index().unwrap_or(self.slots.len() - 1).min(self.slots.len() - 1);
        let mut guard = self.slots[slot].lock().unwrap_or_else(|p| p.into_inner());
        f(guard.get_or_insert_with(|| self.model.workspace()))
    }
}

/// A bar that appears once a run has lasted a second, on a terminal only.
struct Progress {
    bar: ProgressBar,
    start: Instant,
    allowed: bool,
    shown: AtomicBool,
    done: AtomicU64,
}

impl Progress {
    fn new(total: u64) -> Self {
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::hidden());
        let style = ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} paths, ETA {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        let allowed = std::io::stdout().is_terminal() && std::io::stderr().is_terminal();
        Progress { bar, start: Instant::now(), allowed, shown: AtomicBool::new(false), done: AtomicU64::new(0) }
    }

    fn advance(&self, n: u64) {
        let done = self.done.fetch_add(n, Ordering::Relaxed) + n;
        if self.allowed && self.start.elapsed() >= Duration::from_secs(1) && !self.shown.swap(true, Ordering::Relaxed) {
            self.bar.set_draw_target(ProgressDrawTarget::stderr());
        }
        self.bar.set_position(done);
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

fn per_path_csv(swept: &[&str], outputs: &[String], points: &[Point], values: &[Vec<f64>]) -> String {
    let n_out = outputs.len();
    let header: Vec<&str> = swept.iter().copied().chain(["path"]).chain(outputs.iter().map(String::as_str)).collect();
    let mut text = header.join(",") + "\n";
    for (point, v) in points.iter().zip(values) {
        let prefix: String = point.swept.iter().map(|s| cell(*s) + ",").collect();
        for (p, row) in v.chunks_exact(n_out).enumerate() {
            text += &prefix;
            text += &p.to_string();
            for x in row {
                text.push(',');
                text += &cell(*x);
            }
            text.push('\n');
        }
    }
    text
}

/// Write `bytes` to a temporary file beside `path` and rename it into place, so `path` is never half-written.
fn write_atomic(path: &Path, bytes: &[u8]) -> CliResult<()> {
    let tmp = path.with_extension(format!("{}.partial", path.extension().and_then(|e| e.to_str()).unwrap_or("tmp")));
    let io = |e: std::io::Error| failed(format!("{}: cannot write ({e})", path.display()));
    std::fs::write(&tmp, bytes).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
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
}
