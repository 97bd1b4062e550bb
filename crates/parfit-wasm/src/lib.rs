//! parfit in the browser. The plugins are linked in statically (a browser cannot load shared libraries), the
//! configurations are the CLI's TOML read through [`parfit_app`], and the fitting code is the CLI's own, so
//! a configuration and seed give the CLI's numbers.
//!
//! This module is the plain Rust façade (natively testable); `js.rs` (wasm32 only) exposes it to JavaScript
//! with wasm-bindgen and re-exports wasm-bindgen-rayon's `initThreadPool`.
//!
//! Threads: a fit evaluates each batch of candidates on rayon's pool; a many-case fit runs one case per task
//! on it. The calling thread (a dedicated web worker in the demo) only drives: it runs the optimiser's
//! ask–tell loop, or waits for finished cases, and calls the progress callback — JavaScript values live on
//! one thread, so callbacks never run on a pool worker.

#[cfg(target_arch = "wasm32")]
mod js;
pub mod throttle;

/// `initThreadPool(n)` for JavaScript: starts `n` web workers as rayon's pool.
#[cfg(target_arch = "wasm32")]
pub use wasm_bindgen_rayon::init_thread_pool;

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use parfit_abi::Plugin;
use parfit_app::cases::read_cases;
use parfit_app::config::{LoadedConfig, ModelSection};
use parfit_app::dispatch::Local;
use parfit_app::fitting::{
    CaseFitter, CaseRecord, FitOutcome, cost_from_config, data_case, fit_staged, model_config, model_options,
    plot_times,
};
use parfit_app::montecarlo::{
    McConfig, Plan, not_monte_carlo, paths_not_a_model, simulate_all, summarise_points, summary_table,
};
use parfit_app::projection::{ProjectConfig, Projection};
use parfit_app::{Loader, RunError};
use parfit_core::model::{SimError, SimStats, Workspace};
use parfit_core::optimise::{Monitor, Progress};
use parfit_core::paths::{PathRunner, PathsSpec};
use parfit_core::projection::{ProjectionSpec, Projector};
use parfit_core::runner::for_each_case;
use parfit_core::{Model, ModelSpec};
use serde::Serialize;

pub use parfit_app::MemoryLoader as Files;

/// `path` with its `.` dropped and each `..` taking away the name before it (text only: a file map has no links),
/// so `dynamic_lapse/../savings/mort_table.csv`, a configuration's table beside another example, is
/// `savings/mort_table.csv`. A `..` with nothing before it stays.
pub fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir if matches!(out.components().next_back(), Some(Component::Normal(_))) => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out
}

/// A loader reading every path by its [`lexical`] form (the browser's file map is keyed by those).
struct Lexical<'a>(&'a dyn Loader);

impl Loader for Lexical<'_> {
    fn read(&self, path: &Path) -> parfit_app::Result<String> {
        self.0.read(&lexical(path))
    }
}

type Factory = fn(&str, &str) -> Result<Box<dyn Model>, String>;
type ProjectionFactory = fn(&str, &str) -> Result<Box<dyn Projector>, String>;
type PathsFactory = fn(&str, &str) -> Result<Box<dyn PathRunner>, String>;

/// A built-in plugin: what it says about itself and its model, projection and paths entry points.
type BuiltIn = (parfit_abi::PluginInfo, Factory, ProjectionFactory, PathsFactory);

/// The plugins compiled into this build, with their model, projection and paths entry points.
fn plugins() -> Vec<BuiltIn> {
    fn entries<P: Plugin>() -> BuiltIn {
        (P::info(), P::create as Factory, P::create_projection as ProjectionFactory, P::create_paths as PathsFactory)
    }
    vec![
        entries::<parfit_ode::OdePlugin>(),
        #[cfg(target_arch = "wasm32")]
        entries::<parfit_vensim::VensimPlugin>(),
        #[cfg(target_arch = "wasm32")]
        entries::<parfit_montecarlo::MonteCarloPlugin>(),
        #[cfg(target_arch = "wasm32")]
        entries::<parfit_actuarial::ActuarialPlugin>(),
    ]
}

/// One model kind a plugin offers.
#[derive(Debug, Clone, Serialize)]
pub struct ModelInfo {
    pub plugin: String,
    pub version: String,
    pub kind: String,
    pub extensions: Vec<String>,
    pub description: String,
}

/// Every model kind of every built-in plugin.
pub fn models() -> Vec<ModelInfo> {
    plugins()
        .into_iter()
        .flat_map(|(info, ..)| {
            info.kinds.into_iter().map(move |k| ModelInfo {
                plugin: info.name.clone(),
                version: info.version.clone(),
                kind: k.kind,
                extensions: k.extensions,
                description: k.description,
            })
        })
        .collect()
}

/// The built-in plugin that offers `kind` (named `plugin`, if given), as `parfit` chooses among loaded plugins.
fn factory(kind: &str, plugin: Option<&str>, origin: &str) -> Result<(Factory, String), String> {
    entries(kind, plugin, origin).map(|(info, create, ..)| (create, info.name))
}

/// The built-in plugin that offers `kind` (named `plugin`, if given), with its entry points.
fn entries(kind: &str, plugin: Option<&str>, origin: &str) -> Result<BuiltIn, String> {
    let wanted = |info: &parfit_abi::PluginInfo| plugin.is_none_or(|n| n == info.name);
    plugins().into_iter().find(|(info, ..)| wanted(info) && info.kinds.iter().any(|k| k.kind == kind)).ok_or_else(
        || {
            let kinds: Vec<String> = models().iter().map(|m| format!("{} ({})", m.kind, m.plugin)).collect();
            format!("{origin}: no built-in plugin offers model kind '{kind}'; available kinds: {}", kinds.join(", "))
        },
    )
}

/// The model a `[model]` section of the configuration at `path` configures, with its plugin's name.
fn model_from_section(
    section: &ModelSection,
    path: &Path,
    files: &dyn Loader,
) -> Result<(Arc<dyn Model>, String), String> {
    let origin = path.display().to_string();
    let (create, plugin) = factory(&section.kind, section.plugin.as_deref(), &origin)?;
    let options = model_options(&section.options, &origin).map_err(|e| e.0)?;
    let source = section.source.as_ref().map(|s| match path.parent() {
        Some(dir) if s.is_relative() => dir.join(s),
        _ => s.clone(),
    });
    let text = source.as_ref().map(|p| files.read(p)).transpose().map_err(|e| e.0)?;
    let json = model_config(options, source.as_deref().zip(text.as_deref()));
    let model = create(&section.kind, &json)?;
    Ok((Arc::from(model), plugin))
}

/// The configured model, made by the built-in plugin that offers its kind. Returns the model with its plugin's
/// name.
fn model_from_config(loaded: &LoadedConfig, files: &dyn Loader) -> Result<(Arc<dyn Model>, String), String> {
    let section = &loaded.config.model;
    let (info, ..) = entries(&section.kind, section.plugin.as_deref(), &loaded.path.display().to_string())?;
    if info.kinds.iter().any(|k| k.kind == section.kind && k.entry == parfit_abi::Entry::Paths) {
        return Err(paths_not_a_model(&loaded.locate(&["model", "kind"]), &section.kind));
    }
    model_from_section(section, &loaded.path, files)
}

/// How much work each thread did: slot 0 is the calling thread, slot `i + 1` rayon worker `i`.
#[derive(Debug)]
struct WorkCounter {
    slots: Vec<AtomicU64>,
}

impl Default for WorkCounter {
    fn default() -> Self {
        WorkCounter { slots: (0..65).map(|_| AtomicU64::new(0)).collect() }
    }
}

impl WorkCounter {
    fn add(&self) {
        let slot = rayon::current_thread_index().map_or(0, |i| (i + 1).min(64));
        self.slots[slot].fetch_add(1, Ordering::Relaxed);
    }

    /// Work per rayon worker (the calling thread's share, if any, last).
    fn per_worker(&self, workers: usize) -> Vec<u64> {
        let mut counts: Vec<u64> = (1..=workers.min(64)).map(|i| self.slots[i].load(Ordering::Relaxed)).collect();
        let caller = self.slots[0].load(Ordering::Relaxed);
        if caller > 0 {
            counts.push(caller);
        }
        counts
    }
}

/// A model that counts its simulations per thread, so a page (and its test) can see that the workers shared
/// the work. Results are the wrapped model's, bit for bit.
struct Counted {
    inner: Arc<dyn Model>,
    counter: Arc<WorkCounter>,
}

impl Model for Counted {
    fn spec(&self) -> &ModelSpec {
        self.inner.spec()
    }

    fn workspace(&self) -> Workspace {
        self.inner.workspace()
    }

    fn simulate(
        &self,
        ws: &mut Workspace,
        params: &[f64],
        inputs: &[f64],
        times: &[f64],
        out: &mut [f64],
    ) -> Result<(), SimError> {
        self.counter.add();
        self.inner.simulate(ws, params, inputs, times, out)
    }

    fn has_sensitivities(&self) -> bool {
        self.inner.has_sensitivities()
    }

    fn simulate_sensitivities(
        &self,
        ws: &mut Workspace,
        params: &[f64],
        inputs: &[f64],
        times: &[f64],
        out: &mut [f64],
        sens: &mut [f64],
    ) -> Result<(), SimError> {
        self.counter.add();
        self.inner.simulate_sensitivities(ws, params, inputs, times, out, sens)
    }

    fn stats(&self, ws: &Workspace) -> Option<SimStats> {
        self.inner.stats(ws)
    }
}

/// A projection that counts its blocks per thread, so a page (and its test) can see that the workers shared the
/// work. Results are the wrapped projection's, bit for bit.
/// Monte Carlo paths whose blocks count towards the worker that ran them.
struct CountedPaths {
    inner: Box<dyn PathRunner>,
    counter: Arc<WorkCounter>,
}

impl PathRunner for CountedPaths {
    fn spec(&self) -> &PathsSpec {
        self.inner.spec()
    }

    fn workspace(&self) -> Workspace {
        self.inner.workspace()
    }

    fn run(
        &self,
        ws: &mut Workspace,
        params: &[f64],
        seed: u64,
        periods: u64,
        first: u64,
        count: usize,
        out: &mut [f64],
    ) -> Result<(), SimError> {
        self.counter.add();
        self.inner.run(ws, params, seed, periods, first, count, out)
    }
}

struct CountedBlocks {
    inner: Box<dyn Projector>,
    counter: Arc<WorkCounter>,
}

impl Projector for CountedBlocks {
    fn spec(&self) -> &ProjectionSpec {
        self.inner.spec()
    }

    fn workspace(&self) -> Workspace {
        self.inner.workspace()
    }

    fn project(
        &self,
        ws: &mut Workspace,
        first: usize,
        count: usize,
        scenarios: &[i64],
        mask: u64,
        out: &mut [f64],
    ) -> Result<(), SimError> {
        self.counter.add();
        self.inner.project(ws, first, count, scenarios, mask, out)
    }
}

/// Load the configuration at `config_path` from `files` and apply a seed override; returns it with its seed.
fn load(config_path: &str, files: &dyn Loader, seed: Option<u64>) -> Result<(LoadedConfig, u64), String> {
    let loaded = LoadedConfig::load(Path::new(config_path), files).map_err(|e| e.0)?;
    let seed = seed.or(loaded.config.seed).unwrap_or(0);
    Ok((loaded, seed))
}

/// The front end's clock and progress display for one fit; the callback returns `true` to cancel.
struct CallbackMonitor<'a> {
    clock: &'a dyn Fn() -> f64,
    start: f64,
    callback: &'a mut dyn FnMut(&Progress) -> bool,
    cancelled: bool,
}

impl Monitor for CallbackMonitor<'_> {
    fn elapsed_seconds(&self) -> f64 {
        (self.clock)() - self.start
    }

    fn on_progress(&mut self, progress: &Progress) {
        self.cancelled |= (self.callback)(progress);
    }

    fn cancelled(&self) -> bool {
        self.cancelled
    }
}

/// One observed or fitted series over time.
#[derive(Debug, Clone, Serialize)]
pub struct Curve {
    pub name: String,
    pub times: Vec<f64>,
    pub values: Vec<f64>,
}

/// One row of the convergence history.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryRow {
    pub iteration: usize,
    pub evaluations: usize,
    pub best_value: f64,
}

/// The result of [`fit`]: the fields of `parfit fit --format json`, plus the curves and history a page plots
/// and how many simulations each worker ran.
#[derive(Debug, Clone, Serialize)]
pub struct FitReport {
    pub x: BTreeMap<String, f64>,
    pub value: f64,
    pub cost: String,
    pub evaluations: usize,
    pub iterations: usize,
    pub termination: parfit_core::Termination,
    pub seconds: f64,
    pub algorithm: String,
    pub seed: u64,
    pub threads: usize,
    pub plugin: String,
    pub kind: String,
    pub history: Vec<HistoryRow>,
    pub data: Vec<Curve>,
    pub fitted: Vec<Curve>,
    /// Model simulations per rayon worker (the calling thread's, if any, last).
    pub work: Vec<u64>,
}

/// Fit the problem configured at `config_path` (a key of `files`, which also holds the files it names), as
/// `parfit fit` does. `clock` returns seconds; `progress` is called after every iteration and returns `true`
/// to stop the fit (which then reports the best point so far, terminated as cancelled).
pub fn fit(
    config_path: &str,
    files: &dyn Loader,
    seed: Option<u64>,
    clock: &dyn Fn() -> f64,
    progress: &mut dyn FnMut(&Progress) -> bool,
) -> Result<FitReport, String> {
    let (loaded, seed) = load(config_path, files, seed)?;
    let origin = loaded.path.display().to_string();
    let (inner, plugin) = model_from_config(&loaded, files)?;
    let counter = Arc::new(WorkCounter::default());
    let model: Arc<dyn Model> = Arc::new(Counted { inner, counter: counter.clone() });
    let (data, case) = data_case(&loaded, files, "a fit", model.spec().inputs.len()).map_err(|e| e.0)?;
    let cost = cost_from_config(&loaded.config.fit, &origin).map_err(|e| e.0)?;
    let record_history = loaded.config.output.history.unwrap_or(true);
    let mut monitor = CallbackMonitor { clock, start: clock(), callback: progress, cancelled: false };
    let FitOutcome { objective, result, .. } =
        fit_staged(&loaded, &model, case, &data.outputs, cost, &[], seed, &mut monitor, record_history)
            .map_err(|e| e.0)?;

    let spec = objective.model().spec();
    let params = objective.params(&result.x);
    let x = objective.free_names().into_iter().filter_map(|n| spec.param_index(&n).map(|i| (n, params[i]))).collect();
    // Data and the fitted curves on the CLI's plotting grid: 1001 points over the data's time span.
    let case = objective.case();
    let observed = objective.observed_names();
    let width = observed.len();
    let data: Vec<Curve> = observed
        .iter()
        .enumerate()
        .map(|(k, name)| {
            let points = case.times.iter().enumerate().map(|(i, &t)| (t, case.observations[i * width + k]));
            let (times, values) = points.filter(|p| p.1.is_finite()).unzip();
            Curve { name: name.clone(), times, values }
        })
        .collect();
    let (t0, t1) = (case.times[0], case.times[case.times.len() - 1]);
    let fine = plot_times(t0, t1);
    let fitted = match objective.predict(&params, &fine) {
        Ok(predicted) => {
            let n_out = spec.outputs.len();
            observed
                .iter()
                .filter_map(|name| spec.output_index(name).map(|j| (name, j)))
                .map(|(name, j)| Curve {
                    name: name.clone(),
                    times: fine.clone(),
                    values: (0..fine.len()).map(|i| predicted[i * n_out + j]).collect(),
                })
                .collect()
        }
        Err(_) => vec![],
    };
    let history = result
        .history
        .iter()
        .flatten()
        .map(|h| HistoryRow { iteration: h.iteration, evaluations: h.evaluations, best_value: h.best_value })
        .collect();
    let threads = rayon::current_num_threads();
    Ok(FitReport {
        x,
        value: result.value,
        cost: cost.name().to_string(),
        evaluations: result.evaluations,
        iterations: result.iterations,
        termination: result.termination,
        seconds: result.seconds,
        algorithm: loaded.config.fit.algorithm.name().to_string(),
        seed,
        threads,
        plugin,
        kind: loaded.config.model.kind.clone(),
        history,
        data,
        fitted,
        work: counter.per_worker(threads),
    })
}

/// One case of a many-case fit as reported: its id cells and its [`CaseRecord`].
#[derive(Debug, Clone, Serialize)]
pub struct CaseRow {
    pub ids: Vec<String>,
    #[serde(flatten)]
    pub record: CaseRecord,
}

/// The result of [`fit_many`]: one row per case in input order, and how many cases each worker fitted.
#[derive(Debug, Clone, Serialize)]
pub struct ManyReport {
    pub id_columns: Vec<String>,
    /// The free parameters, in the order of each row's `x`.
    pub parameters: Vec<String>,
    pub cost: String,
    pub cases: usize,
    pub done: usize,
    pub failed: usize,
    pub cancelled: bool,
    pub seconds: f64,
    pub seed: u64,
    pub threads: usize,
    pub plugin: String,
    pub kind: String,
    pub rows: Vec<CaseRow>,
    /// Cases fitted per rayon worker (the calling thread's, if any, last).
    pub work: Vec<u64>,
}

/// Fit every case (row) of the `[cases]` table configured at `config_path`, as `parfit fit-many` does (without
/// its checkpoint: nothing is written). `limit` fits only the first rows. `progress(done, total, finished)`
/// is called on the calling thread as cases finish (`finished` in completion order) and returns `true` to
/// stop; cases already started still finish.
pub fn fit_many(
    config_path: &str,
    files: &dyn Loader,
    seed: Option<u64>,
    limit: Option<usize>,
    clock: &dyn Fn() -> f64,
    progress: &mut dyn FnMut(usize, usize, &[CaseRow]) -> bool,
) -> Result<ManyReport, String> {
    let (loaded, seed) = load(config_path, files, seed)?;
    let origin = loaded.path.display().to_string();
    let section = loaded.config.cases.as_ref().ok_or_else(|| format!("{origin}: fit-many needs a [cases] section"))?;
    let (model, plugin) = model_from_config(&loaded, files)?;
    let mut table =
        read_cases(files, &loaded.resolve(&section.path), section, model.spec(), &|keys| loaded.locate(keys))
            .map_err(|e| e.0)?;
    if let Some(limit) = limit {
        table.cases.truncate(limit.max(1));
        table.ids.truncate(limit.max(1));
    }
    let (fitter, names) =
        CaseFitter::new(&loaded, model, &table.cases, &table.observed, vec![], seed).map_err(|e| e.0)?;
    // Timed like the CLI's: the fits alone, not the reading of the table.
    let start = clock();
    let n = table.cases.len();
    let row = |record: CaseRecord| CaseRow { ids: table.ids[record.index].clone(), record };
    let mut rows: Vec<Option<CaseRow>> = vec![None; n];
    let counter = WorkCounter::default();
    let threads = rayon::current_num_threads();
    let mut cancelled = false;
    let mut done = 0;
    if threads > 1 {
        let cancel = AtomicBool::new(false);
        let (cancel_ref, fitter_ref, counter_ref) = (&cancel, &fitter, &counter);
        let (sender, receiver) = std::sync::mpsc::channel::<CaseRecord>();
        rayon::in_place_scope(|scope| {
            scope.spawn(move |_| {
                for_each_case(n, &|_| false, cancel_ref, &|i| fitter_ref.fit(i), &|_, record| {
                    counter_ref.add();
                    // The receiver lives until every case is reported.
                    let _ = sender.send(record);
                });
            });
            // Wait here (a web worker may block) and report batches of finished cases.
            while let Ok(first) = receiver.recv() {
                let batch: Vec<CaseRow> = std::iter::once(first).chain(receiver.try_iter()).map(&row).collect();
                done += batch.len();
                if !cancelled && progress(done, n, &batch) {
                    cancelled = true;
                    cancel.store(true, Ordering::Relaxed);
                }
                for r in batch {
                    let index = r.record.index;
                    rows[index] = Some(r);
                }
            }
        });
    } else {
        // No pool (a page that is not cross-origin isolated): one case after another on this thread.
        for (i, slot) in rows.iter_mut().enumerate() {
            let r = row(fitter.fit(i));
            counter.add();
            done += 1;
            let stop = progress(done, n, std::slice::from_ref(&r));
            *slot = Some(r);
            if stop {
                cancelled = true;
                break;
            }
        }
    }
    let rows: Vec<CaseRow> = rows.into_iter().flatten().collect();
    Ok(ManyReport {
        id_columns: table.id_columns.clone(),
        parameters: names,
        cost: fitter.cost.name().to_string(),
        cases: n,
        done: rows.len(),
        failed: rows.iter().filter(|r| r.record.error.is_some()).count(),
        cancelled,
        seconds: clock() - start,
        seed,
        threads,
        plugin,
        kind: loaded.config.model.kind.clone(),
        rows,
        work: counter.per_worker(threads),
    })
}

/// What a run (Monte Carlo paths or a projection) reports: the CLI's JSON report (`parfit run --format json`),
/// extended with what a page plots.
pub type RunReport = serde_json::Value;

fn run_error(e: RunError) -> String {
    match e {
        RunError::Failed(m) | RunError::Interrupted(m) => m,
    }
}

/// Run the Monte Carlo configuration at `config_path` (with a `[montecarlo]` section) as `parfit run` does,
/// without writing anything: the report of `parfit run --format json`, plus `summary` (the rows of summary.csv:
/// `columns` and `rows`) and `work` (tasks per worker). `seed` overrides the configuration's seed (and seeds).
/// `progress(paths done, total)` is called on the calling thread as tasks finish and returns `true` to stop
/// (the run then fails as interrupted).
pub fn run_paths(
    config_path: &str,
    files: &dyn Loader,
    seed: Option<u64>,
    clock: &dyn Fn() -> f64,
    progress: &mut dyn FnMut(u64, u64) -> bool,
) -> Result<RunReport, String> {
    let path = Path::new(config_path);
    let config = McConfig::parse(path, &files.read(path).map_err(|e| e.0)?).map_err(|e| e.0)?;
    let section = &config.model;
    let (info, _, _, create) = entries(&section.kind, section.plugin.as_deref(), config_path)?;
    if info.kinds.iter().any(|k| k.kind == section.kind && k.entry != parfit_abi::Entry::Paths) {
        return Err(not_monte_carlo(&config).0);
    }
    let options = model_options(&section.options, config_path).map_err(|e| e.0)?;
    let source = section.source.as_ref().map(|s| match path.parent() {
        Some(dir) if s.is_relative() => dir.join(s),
        _ => s.clone(),
    });
    let text = source.as_ref().map(|p| files.read(p)).transpose().map_err(|e| e.0)?;
    let inner = create(&section.kind, &model_config(options, source.as_deref().zip(text.as_deref())))?;
    let counter = Arc::new(WorkCounter::default());
    let model = CountedPaths { inner, counter: counter.clone() };
    let spec = model.spec();
    let plugin = info.name;
    let threads = rayon::current_num_threads();
    let plan = Plan::new(&config, spec, seed, &[], threads).map_err(|e| e.0)?;
    let total = plan.paths * plan.points.len() as u64;
    let start = clock();
    let stop = AtomicBool::new(false);
    let values = if threads > 1 {
        let mut values = None;
        let (sender, receiver) = std::sync::mpsc::channel::<u64>();
        let (model_ref, plan_ref, stop_ref, values_ref) = (&model, &plan, &stop, &mut values);
        rayon::in_place_scope(|scope| {
            scope.spawn(move |_| {
                // The receiver lives until the sender is dropped at the end of this task.
                *values_ref = Some(simulate_all(&Local, model_ref, plan_ref, stop_ref, &|n| {
                    let _ = sender.send(n);
                }));
            });
            // Wait here (a web worker may block) and report batches of finished tasks.
            let mut done = 0;
            while let Ok(first) = receiver.recv() {
                done += first + receiver.try_iter().sum::<u64>();
                if progress(done, total) {
                    stop.store(true, Ordering::Relaxed);
                }
            }
        });
        values.ok_or("the run did not finish")?
    } else {
        // No pool (a page that is not cross-origin isolated): the tasks run on this thread, progress at the end.
        let values = simulate_all(&Local, &model, &plan, &stop, &|_| {});
        progress(total, total);
        values
    }
    .map_err(run_error)?
    .ok_or("the run gathered no results")?;
    let seconds = clock() - start;
    let summary = summarise_points(&plan, spec.outputs.len(), &values);
    let (columns, rows) = summary_table(&plan, spec, &summary, |v| format!("{v:?}"));
    let mut report = parfit_app::montecarlo::report(&plan, spec, &summary, threads, seconds);
    report["plugin"] = plugin.into();
    report["summary"] = serde_json::json!({ "columns": columns, "rows": rows });
    report["work"] = counter.per_worker(threads).into();
    Ok(report)
}

/// Project the portfolio of the projection configuration at `config_path` (with a `[projection]` table) as
/// `parfit run` does, without writing anything: the report of `parfit run --format json` (totals.json), plus
/// `monthly` (column name → the portfolio's monthly values, lifelib's result_cf and result_pols, when the
/// configuration asks for them) and `work` (blocks of points per worker). `progress(points done, total)` is called on the
/// calling thread after every wave of blocks and returns `true` to stop.
pub fn project(
    config_path: &str,
    files: &dyn Loader,
    clock: &dyn Fn() -> f64,
    progress: &mut dyn FnMut(usize, usize) -> bool,
) -> Result<RunReport, String> {
    let files = &Lexical(files);
    let path = Path::new(config_path);
    let config = ProjectConfig::parse(path, &files.read(path).map_err(|e| e.0)?).map_err(|e| e.0)?;
    let p = &config.projection;
    let kind = p
        .resolve_kind(path, |m| {
            let ext = m.extension().and_then(|e| e.to_str()).unwrap_or("");
            models()
                .into_iter()
                .find(|k| k.extensions.iter().any(|e| e == ext))
                .map(|k| k.kind)
                .ok_or_else(|| format!("{}: no built-in plugin reads '.{ext}' files", m.display()))
        })
        .map_err(|e| e.0)?;
    let (info, _, create, _) = entries(&kind, p.plugin.as_deref(), config_path)?;
    let plugin = info.name;
    let counter = Arc::new(WorkCounter::default());
    let projection = Projection::new(&config, path, files, &kind, &|json| {
        let inner = create(&kind, json)?;
        Ok(Box::new(CountedBlocks { inner, counter: counter.clone() }) as Box<dyn Projector>)
    })
    .map_err(|e| e.0)?;
    let total = projection.ids.len();
    let start = clock();
    let stop = AtomicBool::new(false);
    let totals = projection
        .run(&Local, &stop, &mut |done| progress(done, total), &mut |_, _| Ok(()))
        .map_err(run_error)?
        .ok_or("the run gathered no results")?;
    let seconds = clock() - start;
    let threads = rayon::current_num_threads();
    let mut report = projection.report(&totals, &plugin, threads, seconds);
    let width = projection.monthly_columns.len();
    let monthly: serde_json::Map<String, serde_json::Value> = projection
        .monthly_columns
        .iter()
        .enumerate()
        .map(|(c, name)| (name.clone(), totals.monthly.chunks_exact(width).map(|row| row[c]).collect()))
        .collect();
    report["monthly"] = monthly.into();
    // Blocks of points per worker.
    report["work"] = counter.per_worker(threads).into();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use parfit_core::math;

    fn example(dir: &str, names: &[&str]) -> Files {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples").join(dir);
        let mut files = Files::new();
        for name in names {
            let text = std::fs::read_to_string(root.join(name)).unwrap();
            files.insert(format!("{dir}/{name}"), text);
        }
        files
    }

    fn clock() -> f64 {
        0.0
    }

    #[test]
    fn lexical_paths_drop_dots_and_climb_back() {
        assert_eq!(lexical(Path::new("dynamic_lapse/../savings/mort_table.csv")), Path::new("savings/mort_table.csv"));
        assert_eq!(lexical(Path::new("./a/./b.csv")), Path::new("a/b.csv"));
        assert_eq!(lexical(Path::new("../a.csv")), Path::new("../a.csv"));
        assert_eq!(lexical(Path::new("a/../../b.csv")), Path::new("../b.csv"));
    }

    /// The dynamic-lapse example names the savings tables `../savings/…`: a file map keyed by plain paths
    /// serves them (the projection itself runs on wasm only, where the actuarial plugin is linked: the browser
    /// test projects the example against the CLI).
    #[test]
    fn a_configuration_reads_files_beside_another_example() {
        let files = example("savings", &["mort_table.csv"]);
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/savings/mort_table.csv"),
        )
        .unwrap();
        let lexical = Lexical(&files);
        assert_eq!(lexical.read(Path::new("dynamic_lapse/../savings/mort_table.csv")).unwrap(), text);
        let e = lexical.read(Path::new("dynamic_lapse/../savings/nope.csv")).unwrap_err();
        assert!(e.0.starts_with("savings/nope.csv: no such file"), "{}", e.0);
        let config = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/dynamic_lapse/run.toml"),
        )
        .unwrap();
        assert!(config.contains("mort = \"../savings/mort_table.csv\""), "{config}");
    }

    #[test]
    fn lists_the_built_in_models() {
        let kinds: Vec<String> = models().into_iter().map(|m| m.kind).collect();
        assert!(kinds.contains(&"diffsl".to_string()), "{kinds:?}");
    }

    #[test]
    fn fits_and_cancels_from_the_progress_callback() {
        let files = example("lotka_volterra", &["tutorial.toml", "lotka_volterra.ds", "data.csv"]);
        let mut calls = 0;
        let report = fit("lotka_volterra/tutorial.toml", &files, Some(3), &clock, &mut |_| {
            calls += 1;
            calls == 5
        })
        .unwrap();
        assert_eq!(report.termination, parfit_core::Termination::Cancelled);
        assert_eq!(report.iterations, 5);
        assert_eq!(report.x.len(), 4);
        assert!(report.value.is_finite() && report.fitted.len() == 2 && report.data[0].times.len() == 500);
        assert!(report.work.iter().sum::<u64>() as usize >= report.evaluations);
    }

    #[test]
    fn errors_name_the_file() {
        let mut files = Files::new();
        files.insert("bad.toml", "[model]\nkind = \"nope\"\n");
        let e = fit("bad.toml", &files, None, &clock, &mut |_| false).unwrap_err();
        assert!(e.starts_with("bad.toml: no built-in plugin offers model kind 'nope'"), "{e}");
        let e = fit("missing.toml", &files, None, &clock, &mut |_| false).unwrap_err();
        assert!(e.starts_with("missing.toml: no such file"), "{e}");
    }

    /// Exponential decay from the state at t = 0 observed at t = 1 and 2 in each row; every case recovers its own rate.
    #[test]
    fn fits_cases_in_input_order_and_stops_when_asked() {
        let mut files = Files::new();
        files.insert("decay.ds", "in_i { k = 0.5 }\nu_i { y = 1.0 }\nF_i { -k * y }\nout_i { y }\n");
        let rows: Vec<String> = (1..=5)
            .map(|i| {
                let k = 0.1 * i as f64;
                format!("case{i},1,{},{}", math::exp(-k), math::exp(-2.0 * k))
            })
            .collect();
        files.insert("cases.csv", format!("id,y0,y1,y2\n{}\n", rows.join("\n")));
        files.insert(
            "many.toml",
            "[model]\nkind = \"diffsl\"\nsource = \"decay.ds\"\n[cases]\npath = \"cases.csv\"\nid = [\"id\"]\n\
             [[cases.observe]]\ntime = 0.0\ncolumns = { y = \"y0\" }\n[[cases.observe]]\ntime = 1.0\n\
             columns = { y = \"y1\" }\n[[cases.observe]]\ntime = 2.0\n\
             columns = { y = \"y2\" }\n[parameters]\nk = { start = 1.0, lower = 0.0, upper = 5.0 }\n\
             [fit]\nalgorithm = \"levenberg_marquardt\"\n",
        );
        let mut reported = 0;
        let report = fit_many("many.toml", &files, None, None, &clock, &mut |done, total, batch| {
            reported += batch.len();
            assert!(done <= total && total == 5);
            false
        })
        .unwrap();
        assert_eq!((report.cases, report.done, report.failed, reported), (5, 5, 0, 5));
        for (i, row) in report.rows.iter().enumerate() {
            assert_eq!((row.record.index, row.ids.clone()), (i, vec![format!("case{}", i + 1)]));
            assert!((row.record.x[0] - 0.1 * (i + 1) as f64).abs() < 1e-4, "{:?}", row.record);
        }
        assert_eq!(report.work.iter().sum::<u64>(), 5);
        let first_two = fit_many("many.toml", &files, None, Some(2), &clock, &mut |_, _, _| false).unwrap();
        assert_eq!(first_two.rows.len(), 2);
        assert_eq!(first_two.rows[1].record, report.rows[1].record);
    }
}
