//! `parfit run` on a projection configuration (a TOML file with a `[projection]` table): every model point of a
//! table projected by a plugin model (the actuarial plugin's `cashvalue` / `basicterm`). The projection itself
//! (tables, models, parallel waves of fixed blocks, totals) is `parfit_app::projection`, shared with the
//! browser; this module reads the files (gunzipping `.gz`), chooses the plugin, streams `pv.csv`, shows progress,
//! and writes the totals, monthly tables, audit and plot.
//!
//! Nothing is half-written: inputs are all read and checked before any work, outputs go to `*.partial` files
//! renamed into place only when everything succeeded.

use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use parfit_abi::host::Discovery;
use parfit_app::RunError;
use parfit_app::montecarlo::csv_text;
use parfit_app::projection::{ProjectConfig, Projection};
use parfit_core::projection::Projector;

use crate::commands::{cell, show};
use crate::console;
use crate::error::{CliError, CliResult, failed};
use crate::outputs::{FloatText, OutputDir, write_error};
use crate::plot;
use crate::plugins::{choose, find_plugins_until};
use crate::signals;
use crate::{Common, Format, init_threads};

/// Whether `path` is a projection configuration: a TOML file with a top-level `[projection]` table.
pub fn is_projection(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "toml")
        && crate::inputs::read_text(path).is_ok_and(|text| parfit_app::projection::is_projection(&text))
}

/// The input files (see [`crate::inputs`]), gunzipping those whose name ends in `.gz` after reading, so
/// under MPI the compressed bytes travel between ranks.
struct GzLoader;

impl parfit_app::Loader for GzLoader {
    fn read(&self, path: &Path) -> parfit_app::Result<String> {
        let bad = |m: String| parfit_app::input(format!("{}: {m}", path.display()));
        let bytes = crate::inputs::read_bytes(path).map_err(|e| bad(format!("cannot read ({e})")))?;
        if path.extension().is_some_and(|e| e == "gz") {
            let mut text = Vec::new();
            flate2::read::GzDecoder::new(&bytes[..])
                .read_to_end(&mut text)
                .map_err(|e| bad(format!("not gzip-compressed ({e})")))?;
            Ok(parfit_app::utf8(path, text)?)
        } else {
            Ok(parfit_app::utf8(path, bytes)?)
        }
    }
}

pub fn run(explicit: &[PathBuf], path: &Path, common: &Common) -> CliResult<()> {
    let text = crate::inputs::read_text(path)?;
    let config = ProjectConfig::parse(path, &text)?;
    let threads = init_threads(common.threads, config.threads, path)?;
    let p = &config.projection;
    let model = |m: &Path| match path.parent() {
        Some(dir) if m.is_relative() => dir.join(m),
        _ => m.to_path_buf(),
    };
    let resolve = |found: &Discovery| p.resolve_kind(path, |m| found.for_file(&model(m)).map(|(_, k)| k));
    // The plugins are loaded until one makes the projection (or all are, and the error lists them).
    let found = find_plugins_until(explicit, &|found| {
        resolve(found).is_ok_and(|kind| found.choose(p.plugin.as_deref(), &kind).is_ok())
    })?;
    let kind = resolve(&found)?;
    let plugin = choose(&found, p.plugin.as_deref(), &kind)?;
    // Read every input before any work: the plugin checks each table cell by cell.
    let projection = Projection::new(&config, path, &GzLoader, &kind, &|json| {
        plugin.create_projection(&kind, json).map(|m| Box::new(m) as Box<dyn Projector>)
    })?;
    let out_dir = common.output.clone().or(config.output.dir.as_ref().map(|d| match path.parent() {
        Some(dir) if d.is_relative() => dir.join(d),
        _ => d.clone(),
    }));

    // Under MPI every rank projects its share of the blocks; rank 0 alone folds them and writes.
    let mut outputs = match &out_dir {
        Some(dir) if crate::ranks::is_root() => Some(OutputDir::open(dir)?),
        _ => None,
    };
    let mut pv_writer = match outputs.as_mut() {
        Some(o) => {
            let mut w = csv::Writer::from_writer(o.create("pv.csv")?);
            let header = std::iter::once("point_id").chain(projection.columns.iter().map(String::as_str));
            w.write_record(header).map_err(|e| write_error(&o.join("pv.csv"), e))?;
            Some(w)
        }
        None => None,
    };

    let mut pv_text = FloatText::default();
    let start = Instant::now();
    let bar = ProgressBar::with_draw_target(Some(projection.ids.len() as u64), ProgressDrawTarget::hidden());
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} points")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let show_bar = std::io::stdout().is_terminal() && std::io::stderr().is_terminal();
    let mut bar_shown = false;
    let totals = projection.run(
        &crate::ranks::Ranks,
        &signals::STOP,
        &mut |done| {
            bar.set_position(done as u64);
            if show_bar && !bar_shown && start.elapsed().as_secs_f64() > 1.0 {
                bar.set_draw_target(ProgressDrawTarget::stderr());
                bar_shown = true;
            }
            signals::stop_requested()
        },
        &mut |id, pv| match pv_writer.as_mut() {
            Some(w) => {
                let mut row = || -> csv::Result<()> {
                    w.write_field(id)?;
                    for &v in pv {
                        w.write_field(pv_text.format(v))?;
                    }
                    w.write_record(None::<&[u8]>)
                };
                row().map_err(|e| format!("pv.csv: cannot write ({e})"))
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

    if let Some(o) = &mut outputs {
        if let Some(w) = pv_writer.take() {
            w.into_inner().map_err(|e| write_error(&o.join("pv.csv"), e.error()))?.finish()?;
        }
        o.write("totals.json", (serde_json::to_string_pretty(&report).unwrap_or_default() + "\n").as_bytes())?;
        if !totals.monthly.is_empty() {
            for table in projection.monthly_tables(&totals) {
                let header: Vec<&str> = std::iter::once("t").chain(table.columns.iter().map(String::as_str)).collect();
                let width = table.columns.len();
                let rows = (0..table.months).map(|t| table.rows.get(t * width..(t + 1) * width).unwrap_or(&[]));
                o.write_numbers(&table.name, &header, rows, true)?;
            }
            // The plot needs a net cash flow and a policy count among the monthly columns (lifelib's "Net
            // Cashflow" and "pols_if"; any spelling with spaces or underscores, in any case).
            let named = |name: &str| monthly_columns.iter().position(|c| c.to_lowercase().replace(' ', "_") == name);
            if let (Some(net), Some(pols)) = (named("net_cashflow"), named("pols_if")) {
                let series = |c: usize| -> Vec<(f64, f64)> {
                    totals.monthly.chunks_exact(n_mcols).enumerate().map(|(t, r)| (t as f64, r[c])).collect()
                };
                let title = format!("{} — {} model points", projection.kind, projection.ids.len());
                plot::projection_plot(&o.stage("projection.svg"), &title, &series(net), &series(pols))?;
            }
        }
        if let Some(audit) = projection.audit().map_err(|e| match e {
            RunError::Failed(m) | RunError::Interrupted(m) => failed(m),
        })? {
            let header: Vec<&str> = audit.columns.iter().map(String::as_str).collect();
            o.write_numbers("audit.csv", &header, audit.rows.chunks_exact(audit.columns.len().max(1)), false)?;
        }
    }

    let scenarios = &projection.scenarios;
    console::print(&match common.format.unwrap_or(Format::Table) {
        Format::Json => format!("{report}\n"),
        Format::Csv => {
            let header = std::iter::once("column".to_string())
                .chain(scenarios.iter().map(|s| format!("scenario_{s}")))
                .chain(["mean".to_string()]);
            let rows = columns.iter().enumerate().map(|(c, name)| {
                std::iter::once(name.clone())
                    .chain((0..n_scen).map(|k| cell(totals.scenario_totals[k * n_cols + c])))
                    .chain([cell(totals.mean[c])])
                    .collect::<Vec<_>>()
            });
            csv_text(std::iter::once(header.collect()).chain(rows))
        }
        Format::Table => {
            let mut text = format!(
                "{} model points × {} scenario(s), {} months, {ranks} rank(s) × {threads} thread(s): {seconds:.3} s\n",
                projection.ids.len(),
                n_scen,
                projection.horizon
            );
            let label = if n_scen > 1 { "total (mean over scenarios)" } else { "total" };
            text += &format!("{:<20} {label}\n", "present value");
            for (name, v) in columns.iter().zip(&totals.mean) {
                text += &format!("{name:<20} {}\n", show(*v));
            }
            text
        }
    })?;
    if let Some(o) = outputs {
        for f in o.commit()? {
            console::note(&format!("wrote {}", f.display()));
        }
    }
    Ok(())
}
