//! `parfit fit-many`: one independent fit per case (CSV row), cases spread over threads, results in input
//! order, checkpointed as they finish so an interrupted run resumes where it stopped.

use std::path::{Path, PathBuf};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use parfit_app::RunError;
use parfit_app::cases::read_cases;
use parfit_app::checkpoint::{Checkpoint, Overrides, run_fingerprint};
use parfit_app::fit_many::{FitManyError, every_case_failed, fit_cases, results_table, summary_file, summary_json};
use parfit_app::fitting::{CaseFitter, CaseRecord};
use serde_json::json;

use crate::commands::{ConfiguredModel, load_for_run, model_from_config, show};
use crate::console;
use crate::error::{CliError, CliResult, failed, input};
use crate::inputs::FsLoader;
use crate::outputs::OutputDir;
use crate::plot::histograms;
use crate::{Common, Format, parse_sets};
use crate::{ranks, signals};

/// How to start afresh, in the checkpoint's messages.
const AGAIN: &str = "run without --resume";

pub fn fit_many(explicit: &[PathBuf], config_path: &Path, common: &Common, resume: bool) -> CliResult<()> {
    let (loaded, origin, threads, seed) = load_for_run(config_path, common)?;
    let config = &loaded.config;
    let section = config.cases.as_ref().ok_or_else(|| input(format!("{origin}: fit-many needs a [cases] section")))?;
    let output_dir = common
        .output
        .clone()
        .or_else(|| config.output.dir.as_ref().map(|d| loaded.resolve(d)))
        .ok_or_else(|| input(format!("{origin}: fit-many writes files: give --output DIR or [output] dir")))?;

    let ConfiguredModel { model, plugin, kind } = model_from_config(explicit, &loaded, common)?;
    let cases_path = loaded.resolve(&section.path);
    let table = read_cases(&FsLoader, &cases_path, section, model.spec(), &|keys| loaded.locate(keys))?;
    let sets = parse_sets(&common.set)?;
    let (job, names) = CaseFitter::new(&loaded, model, &table.cases, &table.observed, sets, seed)?;
    let cost = job.cost;

    // Rank 0 owns the checkpoint and decides which cases remain; other ranks fit what it hands them, so they
    // need neither the checkpoint nor its fingerprint (whose files rank 0 reads again here, off the shared path).
    // Rank 0 also locks the directory first, so a second run cannot truncate or interleave the checkpoint.
    let root = ranks::is_root();
    let outputs = if root { Some(OutputDir::open(&output_dir)?) } else { None };
    let (checkpoint, done) = if root {
        let read = |p: &Path| std::fs::read(p).map_err(|e| input(format!("{}: cannot read ({e})", p.display())));
        let source = config.model.source.as_ref().map(|s| read(&loaded.resolve(s))).transpose()?.unwrap_or_default();
        let overrides =
            Overrides { seed, sets: &common.set, rtol: common.rtol, atol: common.atol, algorithm: common.algorithm };
        let print = run_fingerprint(&read(config_path)?, &read(&cases_path)?, &source, &overrides);
        let path = output_dir.join("checkpoint.jsonl");
        let (c, done) = Checkpoint::open(&path, &print, resume, table.cases.len(), names.len(), AGAIN)?;
        (Some(c), done)
    } else {
        (None, Default::default())
    };

    let n = table.cases.len();
    let bar = progress_bar(if root { n as u64 } else { 0 }, done.len() as u64);
    let start = Instant::now();
    let save = |record: &CaseRecord| checkpoint.as_ref().map_or(Ok(()), |c| c.append(record));
    let gathered = match fit_cases(&job, &ranks::Ranks, done, &signals::STOP, &save, &|| bar.inc(1)) {
        Ok(gathered) => gathered,
        Err(FitManyError::Run(RunError::Interrupted(m))) => return Err(CliError::Interrupted(m)),
        Err(FitManyError::Run(RunError::Failed(m))) => return Err(failed(m)),
        Err(FitManyError::Save(e)) => return Err(e.into()),
    };
    bar.finish_and_clear();
    let Some(gathered) = gathered else { return Ok(()) };
    let seconds = start.elapsed().as_secs_f64();
    let (fitted, resumed, finished) = (gathered.fitted, gathered.resumed, gathered.done());
    let checkpoint_path = output_dir.join("checkpoint.jsonl").display().to_string();
    let Some(records) = gathered.complete() else {
        return Err(CliError::Interrupted(format!(
            "interrupted: {finished} of {n} cases are done and saved in {checkpoint_path}; run again with --resume \
             to finish"
        )));
    };
    if let Some(why) = every_case_failed(&records, &checkpoint_path) {
        return Err(failed(why));
    }

    let Some(mut outputs) = outputs else { return Ok(()) };
    let (header, rows) = results_table(&table, &names, cost.name(), &records);
    outputs.write_csv("results.csv", &header.iter().map(String::as_str).collect::<Vec<_>>(), rows)?;
    let summary = summary_json(&names, &records, cost.name());
    outputs.write("summary.json", summary_file(&summary).as_bytes())?;
    let columns: Vec<(String, Vec<f64>)> = names
        .iter()
        .enumerate()
        .map(|(k, name)| (name.clone(), records.iter().filter(|r| r.error.is_none()).map(|r| r.x[k]).collect()))
        .collect();
    histograms(&outputs.stage("histograms.svg"), &format!("fitted parameters over {n} cases"), &columns)?;

    let run = json!({
        "cases": n, "fitted": fitted, "resumed": resumed, "failed": summary["failed"], "seconds": seconds,
        "threads": threads, "ranks": ranks::rank_and_size().1, "seed": seed, "model": { "plugin": plugin, "kind": kind },
        "parameters": summary["parameters"], "output": output_dir.display().to_string(),
    });
    console::print(&match common.format.unwrap_or(Format::Table) {
        Format::Json => format!("{run}\n"),
        Format::Table | Format::Csv => summary_text(&run, &names, cost.name()),
    })?;
    outputs.commit()?;
    Ok(())
}

fn progress_bar(len: u64, done: u64) -> ProgressBar {
    use std::io::IsTerminal;
    let visible = std::io::stdout().is_terminal() && std::io::stderr().is_terminal();
    let target = if visible { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() };
    let bar = ProgressBar::with_draw_target(Some(len), target);
    let style = ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} cases, ETA {eta}")
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_position(done);
    bar
}

fn summary_text(run: &serde_json::Value, names: &[String], cost: &str) -> String {
    let f = |v: &serde_json::Value| v.as_f64().unwrap_or(f64::NAN);
    let mut text = format!(
        "fit-many   {} cases ({} fitted now, {} from the checkpoint), {} failed, {:.3} s on {} rank(s) × {} \
         threads\n",
        run["cases"],
        run["fitted"],
        run["resumed"],
        run["failed"],
        f(&run["seconds"]),
        run["ranks"],
        run["threads"]
    );
    text += &format!(
        "results    {}/results.csv, summary.json, histograms.svg ({cost} per case)\n\n",
        run["output"].as_str().unwrap_or("")
    );
    text += &format!("{:<20} {:>12} {:>12} {:>12} {:>12} {:>12}\n", "parameter", "q05", "q25", "median", "q75", "q95");
    for name in names {
        let p = &run["parameters"][name];
        text += &format!(
            "{name:<20} {:>12} {:>12} {:>12} {:>12} {:>12}\n",
            show(f(&p["q05"])),
            show(f(&p["q25"])),
            show(f(&p["median"])),
            show(f(&p["q75"])),
            show(f(&p["q95"]))
        );
    }
    text
}
