//! `parfit fit-many`: one independent fit per case (CSV row), cases spread over threads, results in input
//! order, checkpointed as they finish so an interrupted run resumes where it stopped.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use parfit_config::cases::{CaseTable, read_cases};
use parfit_config::fitting::CaseFitter;
use serde_json::json;

use crate::checkpoint::{CaseRecord, Checkpoint, fingerprint};
use crate::commands::{ConfiguredModel, cell, load_for_run, model_from_config, show};
use crate::console;
use crate::error::{CliError, CliResult, failed, input};
use crate::inputs::FsLoader;
use crate::outputs::OutputDir;
use crate::plot::histograms;
use crate::{Common, Format, parse_sets};
use crate::{ranks, signals};

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
        let print = fingerprint(&[
            &read(config_path)?,
            &read(&cases_path)?,
            &source,
            format!("{seed} {:?} {:?} {:?}", common.set, common.rtol, common.atol).as_bytes(),
        ]);
        let (c, done) =
            Checkpoint::open(&output_dir.join("checkpoint.jsonl"), &print, resume, table.cases.len(), names.len())?;
        (Some(c), done)
    } else {
        (None, Default::default())
    };

    let n = table.cases.len();
    let resumed = done.len();
    let todo: Vec<usize> = (0..n).filter(|i| !done.contains_key(i)).collect();

    let bar = progress_bar(if root { n as u64 } else { 0 }, resumed as u64);
    let records: Mutex<Vec<Option<CaseRecord>>> = Mutex::new((0..n).map(|i| done.get(&i).cloned()).collect());
    let write_error: Mutex<Option<CliError>> = Mutex::new(None);
    let fitted = AtomicUsize::new(0);
    let start = Instant::now();
    // Chunks of ~1/16 of a rank's share: small enough to balance cases of uneven cost, large enough that a
    // request per chunk costs nothing next to its fits.
    let chunk = (todo.len() / (ranks::rank_and_size().1 * 16)).clamp(1, 256);
    ranks::for_each_case(&todo, chunk, &signals::STOP, &|i| job.fit(i), &|i, record| {
        if let Some(Err(e)) = checkpoint.as_ref().map(|c| c.append(&record)) {
            // Without a checkpoint, finished work could be lost: stop starting cases.
            write_error.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(e);
            signals::STOP.store(true, Ordering::Relaxed);
        }
        records.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(record);
        fitted.fetch_add(1, Ordering::Relaxed);
        bar.inc(1);
    })?;
    bar.finish_and_clear();
    if !root {
        return Ok(());
    }
    let seconds = start.elapsed().as_secs_f64();
    if let Some(e) = write_error.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    let records: Vec<CaseRecord> =
        records.into_inner().unwrap_or_else(|p| p.into_inner()).into_iter().flatten().collect();
    let fitted = fitted.into_inner();
    if records.len() < n {
        return Err(CliError::Interrupted(format!(
            "interrupted: {} of {n} cases are done and saved in {}; run again with --resume to finish",
            records.len(),
            output_dir.join("checkpoint.jsonl").display()
        )));
    }

    if records.iter().all(|r| r.error.is_some())
        && let Some(first) = records.first()
    {
        return Err(failed(format!(
            "every one of the {n} cases failed (case {}: {}); each case's error is in {}; nothing else was written",
            first.index,
            first.error.as_deref().unwrap_or(""),
            output_dir.join("checkpoint.jsonl").display()
        )));
    }

    let Some(mut outputs) = outputs else { return Ok(()) };
    let (header, rows) = results_table(&table, &names, cost.name(), &records);
    outputs.write_csv("results.csv", &header.iter().map(String::as_str).collect::<Vec<_>>(), rows)?;
    let summary = summary_json(&names, &records, cost.name());
    outputs.write("summary.json", (serde_json::to_string_pretty(&summary).unwrap_or_default() + "\n").as_bytes())?;
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

/// results.csv: the header, then one row per case in input order (a failed case's parameters left empty).
fn results_table(
    table: &CaseTable,
    names: &[String],
    cost: &str,
    records: &[CaseRecord],
) -> (Vec<String>, Vec<Vec<String>>) {
    let mut header: Vec<String> = table.id_columns.clone();
    header.extend(names.iter().cloned());
    header.extend([cost, "evaluations", "iterations", "termination", "error"].map(String::from));
    let rows = records
        .iter()
        .map(|r| {
            let mut row: Vec<String> = table.ids[r.index].clone();
            if r.error.is_none() {
                row.extend(r.x.iter().map(|v| cell(*v)));
            } else {
                row.extend(names.iter().map(|_| String::new()));
            }
            row.push(r.value.map_or(String::new(), cell));
            row.push(r.evaluations.to_string());
            row.push(r.iterations.to_string());
            row.push(r.termination.map_or(String::new(), |t| {
                serde_json::to_value(t).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default()
            }));
            row.push(r.error.clone().unwrap_or_default());
            row
        })
        .collect();
    (header, rows)
}

fn summary_json(names: &[String], records: &[CaseRecord], cost: &str) -> serde_json::Value {
    let ok: Vec<&CaseRecord> = records.iter().filter(|r| r.error.is_none()).collect();
    let stats = |mut v: Vec<f64>| {
        let mut q = |p| parfit_core::statistics::quantile(&mut v, p);
        let (q05, q25, median, q75, q95) = (q(0.05), q(0.25), q(0.5), q(0.75), q(0.95));
        json!({
            "q05": q05, "q25": q25, "median": median, "q75": q75, "q95": q95,
            "min": v.iter().copied().min_by(f64::total_cmp), "max": v.iter().copied().max_by(f64::total_cmp),
        })
    };
    let parameters: serde_json::Map<String, serde_json::Value> =
        names.iter().enumerate().map(|(k, name)| (name.clone(), stats(ok.iter().map(|r| r.x[k]).collect()))).collect();
    let failures: Vec<serde_json::Value> =
        records.iter().filter_map(|r| r.error.as_ref().map(|e| json!({ "index": r.index, "error": e }))).collect();
    json!({
        "cases": records.len(),
        "failed": failures.len(),
        "failures": failures,
        "parameters": parameters,
        cost: stats(ok.iter().filter_map(|r| r.value).collect()),
        "evaluations": stats(ok.iter().map(|r| r.evaluations as f64).collect()),
    })
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
