//! `parfit.fit_many`: one fit per case of a table as `parfit fit-many` runs it — `CaseFitter` per case, the cases
//! through `parfit_app::fit_many::fit_cases`, the checkpoint of `parfit_app::checkpoint` (the CLI's file,
//! fingerprinted the same way), and `results.csv`/`summary.json` from the shared code. Progress counts cases;
//! Ctrl-C stops starting cases and keeps the checkpoint.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use parfit_app::cases::read_cases;
use parfit_app::checkpoint::{Checkpoint, CheckpointError, Overrides, lock_directory, run_fingerprint, write_files};
use parfit_app::dispatch::Local;
use parfit_app::fit_many::{FitManyError, every_case_failed, fit_cases, results_csv, summary_file, summary_json};
use parfit_app::fitting::{CaseFitter, CaseRecord};
use pyo3::exceptions::PyKeyboardInterrupt;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::engine;
use crate::errors::{self, ConfigError};
use crate::fit::algorithm;
use crate::plugins::Configured;

/// How to start afresh, in the checkpoint's messages.
const AGAIN: &str = "call fit_many without resume=True";

fn checkpoint_error(e: CheckpointError) -> PyErr {
    match e {
        CheckpointError::Input(e) => errors::config(e),
        CheckpointError::Io(m) => errors::failed(m),
    }
}

/// Fit every case as `parfit fit-many` does; returns the parts the Python `FitManyResult` is made of.
#[pyfunction]
#[pyo3(signature = (config, *, files, cases=None, output=None, resume=false, algorithm=None, set=None,
                    seed=None, threads=None, plugins=Vec::new(), progress=None))]
#[allow(clippy::too_many_arguments)]
pub fn fit_many<'py>(
    py: Python<'py>,
    config: &Bound<'py, PyAny>,
    files: BTreeMap<String, String>,
    cases: Option<PathBuf>,
    output: Option<PathBuf>,
    resume: bool,
    algorithm: Option<String>,
    set: Option<Bound<'py, PyDict>>,
    seed: Option<u64>,
    threads: Option<usize>,
    plugins: Vec<PathBuf>,
    progress: Option<Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let (mut loaded, files) = crate::config::load_with_tables(config, files, None, cases.as_deref())?;
    let chosen = algorithm.as_deref().map(self::algorithm).transpose()?;
    if let Some(algorithm) = chosen {
        loaded.config.fit.algorithm = algorithm;
    }
    let threads = crate::config::threads(&loaded, threads)?;
    let seed = seed.or(loaded.config.seed).unwrap_or(0);
    let sets = crate::config::sets(set.as_ref())?;
    let origin = loaded.path.display().to_string();
    let Some(section) = loaded.config.cases.as_ref() else {
        return Err(ConfigError::new_err(format!("{origin}: fit-many needs a [cases] section")));
    };
    let output_dir = output.or_else(|| loaded.config.output.dir.as_ref().map(|d| loaded.resolve(d)));
    if resume && output_dir.is_none() {
        return Err(ConfigError::new_err(format!(
            "{origin}: resume=True continues from the checkpoint in the output directory, but there is none: give \
             output=DIR or [output] dir"
        )));
    }

    let Configured { model, plugin, kind } = crate::plugins::configured_model(py, &plugins, &loaded, &files)?;
    let cases_path = loaded.resolve(&section.path);
    let table =
        read_cases(&files, &cases_path, section, model.spec(), &|keys| loaded.locate(keys)).map_err(errors::config)?;
    // The fingerprint records the starts as the CLI's --set flags would.
    let set_flags: Vec<String> = sets.iter().map(|(name, value)| format!("{name}={value}")).collect();
    let (job, names) =
        CaseFitter::new(&loaded, model, &table.cases, &table.observed, sets, seed).map_err(errors::config)?;
    let n = table.cases.len();

    if output_dir.as_ref().is_some_and(|d| d.as_os_str().is_empty()) {
        return Err(ConfigError::new_err("the output directory is an empty path: give output=DIR or [output] dir"));
    }
    // Held until the results are written: a second run into the directory is refused, not interleaved.
    let _lock = output_dir.as_ref().map(|d| lock_directory(d, "output=")).transpose().map_err(checkpoint_error)?;
    let checkpoint_path = output_dir.as_ref().map(|d| d.join("checkpoint.jsonl"));
    let (checkpoint, done) = match &checkpoint_path {
        Some(path) => {
            let source = match &loaded.config.model.source {
                Some(s) => files.bytes(&loaded.resolve(s)).map_err(errors::config)?,
                None => Vec::new(),
            };
            let overrides = Overrides { seed, sets: &set_flags, rtol: None, atol: None, algorithm: chosen };
            let cases_bytes = files.bytes(&cases_path).map_err(errors::config)?;
            let print = run_fingerprint(loaded.text.as_bytes(), &cases_bytes, &source, &overrides);
            let (c, done) = Checkpoint::open(path, &print, resume, n, names.len(), AGAIN).map_err(checkpoint_error)?;
            (Some(c), done)
        }
        None => (None, BTreeMap::new()),
    };

    let resumed = done.len();
    let finished = AtomicUsize::new(resumed);
    let start = Instant::now();
    let ran = engine::run(py, threads, progress.as_ref(), |control| {
        control.set_total(n as u64);
        control.set_done(resumed as u64);
        let save = |record: &CaseRecord| checkpoint.as_ref().map_or(Ok(()), |c| c.append(record));
        let counted = || {
            finished.fetch_add(1, Ordering::Relaxed);
            control.advance(1);
        };
        fit_cases(&job, &Local, done, control.stop_flag(), &save, &counted)
    });
    let seconds = start.elapsed().as_secs_f64();
    let interrupted = |cause: Option<PyErr>| {
        let k = finished.load(Ordering::Relaxed);
        let message = match &checkpoint_path {
            Some(path) => format!(
                "interrupted: {k} of {n} cases are done and saved in {}; call fit_many again with resume=True to \
                 finish",
                path.display()
            ),
            None => format!(
                "interrupted: {k} of {n} cases were done and none is saved (no output directory: give output=DIR \
                 or [output] dir to keep a checkpoint)"
            ),
        };
        let e = PyKeyboardInterrupt::new_err(message);
        if let Some(cause) = cause.filter(|c| !c.is_instance_of::<PyKeyboardInterrupt>(py)) {
            e.set_cause(py, Some(cause));
        }
        e
    };
    let gathered = match ran {
        Err(raised) => return Err(interrupted(Some(raised))),
        Ok(Err(FitManyError::Save(e))) => return Err(checkpoint_error(e)),
        Ok(Err(FitManyError::Run(e))) => return Err(errors::run(e)),
        Ok(Ok(gathered)) => gathered.ok_or_else(|| errors::failed("the cases' results were not gathered"))?,
    };
    let (fitted, resumed) = (gathered.fitted, gathered.resumed);
    let Some(records) = gathered.complete() else { return Err(interrupted(None)) };
    let where_errors = checkpoint_path.as_ref().map_or("the results".into(), |p| p.display().to_string());
    if let Some(why) = every_case_failed(&records, &where_errors) {
        return Err(errors::failed(why));
    }

    let cost = job.cost.name();
    let csv = results_csv(&table, &names, cost, &records);
    let summary = summary_file(&summary_json(&names, &records, cost));
    if let Some(dir) = &output_dir {
        write_files(dir, &[("results.csv", csv.as_bytes()), ("summary.json", summary.as_bytes())])
            .map_err(checkpoint_error)?;
    }

    let out = PyDict::new(py);
    out.set_item("csv", csv)?;
    out.set_item("summary", summary)?;
    out.set_item("parameters", names)?;
    out.set_item("cost", cost)?;
    out.set_item("cases", n)?;
    out.set_item("fitted", fitted)?;
    out.set_item("resumed", resumed)?;
    out.set_item("seconds", seconds)?;
    out.set_item("threads", threads)?;
    out.set_item("seed", seed)?;
    out.set_item("plugin", plugin)?;
    out.set_item("kind", kind)?;
    out.set_item("output", output_dir)?;
    Ok(out)
}
