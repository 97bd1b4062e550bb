//! `parfit run` on a projection configuration (a TOML file with a `[projection]` table): every model point of a
//! table projected by a plugin model (the actuarial plugin's `cashvalue` / `basicterm`). The projection itself
//! (tables, models, parallel waves of fixed blocks, totals) is `parfit_config::projection`, shared with the
//! browser; this module reads the files (gunzipping `.gz`), chooses the plugin, streams `pv.csv`, shows progress,
//! and writes the totals, monthly tables, audit and plot.
//!
//! Nothing is half-written: inputs are all read and checked before any work, outputs go to `*.partial` files
//! renamed into place only when everything succeeded.

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use parfit_config::RunError;
use parfit_config::projection::{ProjectConfig, Projection};
use parfit_core::Model;

use crate::commands::fit_many::{STOP, install_signal_handler};
use crate::commands::{cell, show};
use crate::error::{CliError, CliResult, failed};
use crate::plugins::{choose, find_plugins};
use crate::{Common, Format, init_threads};

/// Whether `path` is a projection configuration: a TOML file with a top-level `[projection]` table.
pub fn is_projection(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "toml")
        && crate::inputs::read_text(path).is_ok_and(|text| parfit_config::projection::is_projection(&text))
}

/// The input files (see [`crate::inputs`]), gunzipping those whose name ends in `.gz` after reading, so
/// under MPI the compressed bytes travel between ranks.
struct GzLoader;

impl parfit_config::Loader for GzLoader {
    fn read(&self, path: &Path) -> parfit_config::Result<String> {
        let bad = |m: String| parfit_config::input(format!("{}: {m}", path.display()));
        let bytes = crate::inputs::read_bytes(path).map_err(|e| bad(format!("cannot read ({e})")))?;
        if path.extension().is_some_and(|e| e == "gz") {
            let mut text = String::new();
            flate2::read::GzDecoder::new(&bytes[..])
                .read_to_string(&mut text)
                .map_err(|e| bad(format!("not gzip-compressed UTF-8 text ({e})")))?;
            Ok(text)
        } else {
            String::from_utf8(bytes).map_err(|_| bad("the text is not valid UTF-8".into()))
        }
    }
}

/// Files written to `name.partial` and renamed into place by [`Outputs::commit`]; dropped uncommitted, they are
/// removed.
struct Outputs {
    dir: PathBuf,
    files: Vec<(PathBuf, PathBuf)>,
    committed: bool,
}

impl Outputs {
    fn new(dir: &Path) -> CliResult<Outputs> {
        std::fs::create_dir_all(dir).map_err(|e| failed(format!("{}: cannot create ({e})", dir.display())))?;
        Ok(Outputs { dir: dir.to_path_buf(), files: vec![], committed: false })
    }

    /// A buffered writer for `name` (written as `name.partial` until committed).
    fn create(&mut self, name: &str) -> CliResult<std::io::BufWriter<std::fs::File>> {
        let (tmp, fin) = (self.dir.join(format!("{name}.partial")), self.dir.join(name));
        let file = std::fs::File::create(&tmp).map_err(|e| failed(format!("{}: cannot write ({e})", tmp.display())))?;
        self.files.push((tmp, fin));
        Ok(std::io::BufWriter::new(file))
    }

    fn partial(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.partial"))
    }

    fn commit(mut self) -> CliResult<Vec<PathBuf>> {
        for (tmp, fin) in &self.files {
            std::fs::rename(tmp, fin).map_err(|e| failed(format!("{}: cannot write ({e})", fin.display())))?;
        }
        self.committed = true;
        Ok(self.files.iter().map(|f| f.1.clone()).collect())
    }
}

impl Drop for Outputs {
    fn drop(&mut self) {
        if !self.committed {
            for (tmp, _) in &self.files {
                let _ = std::fs::remove_file(tmp);
            }
        }
    }
}

fn write_err(e: std::io::Error) -> crate::error::CliError {
    failed(format!("cannot write an output file ({e})"))
}

pub fn run(explicit: &[PathBuf], path: &Path, common: &Common) -> CliResult<()> {
    let text = crate::inputs::read_text(path)?;
    let config = ProjectConfig::parse(path, &text)?;
    let threads = init_threads(common.threads.or(config.threads))?;
    let p = &config.projection;
    let found = find_plugins(explicit)?;
    let plugin = choose(&found, p.plugin.as_deref(), &p.kind)?;
    // Read every input before any work: the plugin checks each table cell by cell.
    let projection = Projection::new(&config, path, &GzLoader, &|json| {
        plugin.create(&p.kind, json).map(|m| Box::new(m) as Box<dyn Model>).map_err(|e| e.to_string())
    })?;
    let out_dir = common.output.clone().or(config.output.dir.as_ref().map(|d| match path.parent() {
        Some(dir) if d.is_relative() => dir.join(d),
        _ => d.clone(),
    }));

    // Under MPI every rank projects its share of the blocks; rank 0 alone folds them and writes.
    let mut outputs = match &out_dir {
        Some(dir) if crate::ranks::is_root() => Some(Outputs::new(dir)?),
        _ => None,
    };
    let mut pv_writer = match outputs.as_mut() {
        Some(o) => {
            let mut w = o.create("pv.csv")?;
            let header: Vec<&str> =
                std::iter::once("point_id").chain(projection.columns.iter().map(String::as_str)).collect();
            writeln!(w, "{}", header.join(",")).map_err(write_err)?;
            Some(w)
        }
        None => None,
    };

    let start = Instant::now();
    let bar = ProgressBar::with_draw_target(Some(projection.ids.len() as u64), ProgressDrawTarget::hidden());
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} points")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let show_bar = std::io::stdout().is_terminal() && std::io::stderr().is_terminal();
    let mut bar_shown = false;
    install_signal_handler();
    let totals = projection.run(
        &crate::ranks::Ranks,
        &STOP,
        &mut |done| {
            bar.set_position(done as u64);
            if show_bar && !bar_shown && start.elapsed().as_secs_f64() > 1.0 {
                bar.set_draw_target(ProgressDrawTarget::stderr());
                bar_shown = true;
            }
            STOP.load(std::sync::atomic::Ordering::Relaxed)
        },
        &mut |id, pv| match pv_writer.as_mut() {
            Some(w) => {
                let cells: Vec<String> = pv.iter().map(|v| cell(*v)).collect();
                writeln!(w, "{id},{}", cells.join(",")).map_err(|e| format!("cannot write an output file ({e})"))
            }
            None => Ok(()),
        },
    );
    bar.finish_and_clear();
    let totals = totals.map_err(|e| match e {
        RunError::Failed(m) => failed(m),
        RunError::Interrupted(m) => CliError::Interrupted(format!("{m}; nothing was written")),
    })?;
    let Some(totals) = totals else { return Ok(()) };
    let seconds = start.elapsed().as_secs_f64();
    let ranks = crate::ranks::rank_and_size().1;
    let mut report = projection.report(&totals, &plugin.info().name, threads, seconds);
    report["ranks"] = ranks.into();
    let (columns, monthly_columns) = (&projection.columns, &projection.monthly_columns);
    let (n_cols, n_mcols, n_scen) = (columns.len(), monthly_columns.len(), projection.scenarios.len());

    if let Some(mut o) = outputs {
        if let Some(mut w) = pv_writer.take() {
            w.flush().map_err(write_err)?;
        }
        let mut w = o.create("totals.json")?;
        writeln!(w, "{}", serde_json::to_string_pretty(&report).unwrap_or_default()).map_err(write_err)?;
        w.flush().map_err(write_err)?;
        if !totals.monthly.is_empty() {
            for (name, range) in [("result_cf.csv", 0..5), ("result_pols.csv", 5..n_mcols)] {
                let mut w = o.create(name)?;
                let header: Vec<&str> =
                    std::iter::once("t").chain(monthly_columns[range.clone()].iter().map(String::as_str)).collect();
                writeln!(w, "{}", header.join(",")).map_err(write_err)?;
                for (t, row) in totals.monthly.chunks_exact(n_mcols).enumerate() {
                    let cells: Vec<String> = row[range.clone()].iter().map(|v| cell(*v)).collect();
                    writeln!(w, "{t},{}", cells.join(",")).map_err(write_err)?;
                }
                w.flush().map_err(write_err)?;
            }
            let net = monthly_columns.iter().position(|c| c == "Net Cashflow").unwrap_or(4);
            let pols = monthly_columns.iter().position(|c| c == "pols_if").unwrap_or(5);
            let series = |c: usize| -> Vec<(f64, f64)> {
                totals.monthly.chunks_exact(n_mcols).enumerate().map(|(t, r)| (t as f64, r[c])).collect()
            };
            o.create("projection.svg")?;
            let title = format!("{} — {} model points", projection.kind, projection.ids.len());
            projection_plot(&o.partial("projection.svg"), &title, &series(net), &series(pols))?;
        }
        if let Some(audit) = projection.audit().map_err(|e| match e {
            RunError::Failed(m) | RunError::Interrupted(m) => failed(m),
        })? {
            let mut w = o.create("audit.csv")?;
            writeln!(w, "{}", audit.columns.join(",")).map_err(write_err)?;
            for row in audit.rows.chunks_exact(audit.columns.len()) {
                let cells: Vec<String> = row.iter().map(|v| cell(*v)).collect();
                writeln!(w, "{}", cells.join(",")).map_err(write_err)?;
            }
            w.flush().map_err(write_err)?;
        }
        for f in o.commit()? {
            eprintln!("wrote {}", f.display());
        }
    }

    let scenarios = &projection.scenarios;
    match common.format.unwrap_or(Format::Table) {
        Format::Json => println!("{report}"),
        Format::Csv => {
            println!(
                "column,{}",
                scenarios.iter().map(|s| format!("scenario_{s}")).collect::<Vec<_>>().join(",") + ",mean"
            );
            for (c, name) in columns.iter().enumerate() {
                let cells: Vec<String> = (0..n_scen).map(|k| cell(totals.scenario_totals[k * n_cols + c])).collect();
                println!("{name},{},{}", cells.join(","), cell(totals.mean[c]));
            }
        }
        Format::Table => {
            println!(
                "{} model points × {} scenario(s), {} months, {ranks} rank(s) × {threads} thread(s): {seconds:.3} s",
                projection.ids.len(),
                n_scen,
                projection.horizon
            );
            let label = if n_scen > 1 { "total (mean over scenarios)" } else { "total" };
            println!("{:<20} {label}", "present value");
            for (name, v) in columns.iter().zip(&totals.mean) {
                println!("{name:<20} {}", show(*v));
            }
        }
    }
    Ok(())
}

/// Monthly net cash flow and policies in force of the portfolio, one panel each.
fn projection_plot(path: &Path, title: &str, net: &[(f64, f64)], pols: &[(f64, f64)]) -> CliResult<()> {
    use plotters::prelude::*;
    let err = |e: &dyn std::fmt::Display| failed(format!("{}: cannot draw the plot ({e})", path.display()));
    let root = SVGBackend::new(path, (900, 640)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let root = root.titled(title, ("sans-serif", 20)).map_err(|e| err(&e))?;
    let (top, bottom) = root.split_vertically(300);
    for (area, data, name, colour) in [
        (&top, net, "net cash flow", RGBColor(31, 119, 180)),
        (&bottom, pols, "policies in force", RGBColor(214, 39, 40)),
    ] {
        let x_max = data.last().map_or(1.0, |p| p.0.max(1.0));
        let (lo, hi) = data.iter().fold((0.0f64, 0.0f64), |(lo, hi), p| (lo.min(p.1), hi.max(p.1)));
        let pad = ((hi - lo) * 0.05).max(1e-9);
        let mut chart = ChartBuilder::on(area)
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(80)
            .build_cartesian_2d(0.0..x_max, (lo - pad)..(hi + pad))
            .map_err(|e| err(&e))?;
        chart.configure_mesh().x_desc("month").y_desc(name).draw().map_err(|e| err(&e))?;
        chart.draw_series(LineSeries::new(data.iter().copied(), colour.stroke_width(2))).map_err(|e| err(&e))?;
    }
    root.present().map_err(|e| err(&e))
}
