//! `parfit run` on a projection configuration (a TOML file with a `[projection]` table): every model point of a
//! table projected by a plugin model (the actuarial plugin's `cashvalue` / `basicterm`), in parallel over
//! (point × scenario), with per-point present values, portfolio totals per scenario and their mean, optional
//! monthly portfolio cash flows and policy counts, one point's monthly audit vectors, and a plot.
//!
//! Memory stays bounded whatever the number of points: points are projected in waves of fixed-size blocks;
//! each block sums its points' monthly rows, blocks are folded in order and per-point rows are streamed to the
//! output file, so no points × months matrix is ever held. Block boundaries do not depend on the thread count,
//! and every sum runs in a fixed order, so outputs are bit-identical for any `--threads`.
//!
//! Nothing is half-written: inputs are all read and checked before any work, outputs go to `*.partial` files
//! renamed into place only when everything succeeded.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use parfit_core::Model;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::commands::fit_many::{STOP, install_signal_handler};
use crate::commands::{cell, show};
use crate::error::{CliError, CliResult, failed, input};
use crate::plugins::{choose, find_plugins};
use crate::ranks::{Wire, put_f64s, take_f64s, take_u64};
use crate::{Common, Format, init_threads};

/// Points per block: the unit of parallel work and of the fixed-order monthly sums.
const BLOCK: usize = 64;
/// Blocks per wave: what is held in memory at once.
const WAVE_BLOCKS: usize = 64;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProjectConfig {
    projection: ProjectionSection,
    #[serde(default)]
    output: OutputSection,
    threads: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProjectionSection {
    /// Model kind, e.g. "cashvalue" or "basicterm".
    kind: String,
    /// Plugin name, when several offer the kind.
    plugin: Option<String>,
    /// The model point table (CSV, or gzip-compressed CSV ending in `.gz`); its first column is the point id.
    model_points: PathBuf,
    /// Table role → file (see the plugin's README for the roles a kind needs).
    #[serde(default)]
    tables: BTreeMap<String, PathBuf>,
    /// Overrides of the model's named constants.
    #[serde(default)]
    constants: BTreeMap<String, f64>,
    /// "default" (the table's first scenario, lifelib's scen_id 1), "all", or a list of scenario ids.
    #[serde(default)]
    scenarios: Scenarios,
    /// Write the monthly portfolio cash flows and policy counts (result_cf.csv, result_pols.csv) and the plot.
    #[serde(default)]
    monthly: bool,
    /// Id (first-column value) of a point whose every monthly quantity goes to audit.csv.
    audit_point: Option<toml::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(untagged)]
enum Scenarios {
    #[default]
    #[serde(skip)]
    Default,
    Named(String),
    List(Vec<i64>),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct OutputSection {
    dir: Option<PathBuf>,
}

/// Whether `path` is a projection configuration: a TOML file with a top-level `[projection]` table.
pub fn is_projection(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "toml")
        && std::fs::read_to_string(path)
            .ok()
            .and_then(|text| text.parse::<toml::Table>().ok())
            .is_some_and(|t| t.contains_key("projection"))
}

/// Read a file's text, gunzipping it when its name ends in `.gz`.
fn read_text(path: &Path) -> CliResult<String> {
    let bytes = std::fs::read(path).map_err(|e| input(format!("{}: cannot read ({e})", path.display())))?;
    if path.extension().is_some_and(|e| e == "gz") {
        let mut text = String::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_string(&mut text)
            .map_err(|e| input(format!("{}: not gzip-compressed UTF-8 text ({e})", path.display())))?;
        Ok(text)
    } else {
        String::from_utf8(bytes).map_err(|_| input(format!("{}: the text is not valid UTF-8", path.display())))
    }
}

/// The first-column values (point ids) of the model point table's data rows.
fn point_ids(name: &str, text: &str) -> CliResult<Vec<String>> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(text.as_bytes());
    let mut ids = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| input(format!("{name}: {e}")))?;
        if record.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        ids.push(record.get(0).unwrap_or("").trim().to_string());
    }
    Ok(ids)
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

/// What one block of points produced: per (point, scenario) result rows, and the block's monthly sums.
struct BlockResult {
    rows: Vec<f64>,
    monthly: Vec<f64>,
}

/// A block's result crosses between ranks as the exact bits of its numbers (or its error's text).
impl Wire for Result<BlockResult, String> {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Ok(b) => {
                out.push(0);
                put_f64s(out, &b.rows);
                put_f64s(out, &b.monthly);
            }
            Err(e) => {
                out.push(1);
                out.extend_from_slice(e.as_bytes());
            }
        }
    }

    fn decode(bytes: &[u8]) -> Result<Self, String> {
        match bytes.split_first() {
            Some((0, mut rest)) => {
                let n = take_u64(&mut rest)? as usize;
                let rows = take_f64s(&mut rest, n)?;
                let n = take_u64(&mut rest)? as usize;
                Ok(Ok(BlockResult { rows, monthly: take_f64s(&mut rest, n)? }))
            }
            Some((1, rest)) => Ok(Err(String::from_utf8_lossy(rest).into_owned())),
            _ => Err("a block result of unknown form".into()),
        }
    }
}

pub fn run(explicit: &[PathBuf], path: &Path, common: &Common) -> CliResult<()> {
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| input(format!("{origin}: cannot read ({e})")))?;
    let config: ProjectConfig = toml::from_str(&text).map_err(|e| input(crate::config::toml_error(path, &text, &e)))?;
    let threads = init_threads(common.threads.or(config.threads))?;
    let p = &config.projection;
    let resolve = |rel: &Path| match path.parent() {
        Some(dir) if rel.is_relative() => dir.join(rel),
        _ => rel.to_path_buf(),
    };

    // Read every input before any work: the plugin checks each table cell by cell.
    let points_path = resolve(&p.model_points);
    let points_name = points_path.display().to_string();
    let points_text = read_text(&points_path)?;
    let ids = point_ids(&points_name, &points_text)?;
    let mut tables = serde_json::Map::new();
    for (role, file) in &p.tables {
        let file = resolve(file);
        tables.insert(role.clone(), json!({ "name": file.display().to_string(), "text": read_text(&file)? }));
    }
    tables.insert("model_points".into(), json!({ "name": points_name, "text": points_text }));
    let found = find_plugins(explicit)?;
    let plugin = choose(&found, p.plugin.as_deref(), &p.kind)?;
    let make = |output: &str| -> CliResult<parfit_abi::host::PluginModel> {
        let config = json!({ "tables": tables, "constants": p.constants, "output": output });
        plugin.create(&p.kind, &config.to_string()).map_err(|e| input(format!("{origin}: {e}")))
    };
    let summary_model = make("summary")?;
    let mut summary = [0.0; 5];
    summary_model
        .simulate(&mut summary_model.workspace(), &[], &[0.0, 0.0], &[], &mut summary)
        .map_err(|e| failed(format!("{origin}: {e}")))?;
    let [n_points, horizon, n_scenarios, first_scenario, point_months] = summary.map(|v| v as i64);
    if n_points as usize != ids.len() {
        return Err(failed(format!(
            "{points_name}: the plugin read {n_points} points but the table has {} rows",
            ids.len()
        )));
    }
    let horizon = horizon as usize;
    let scenarios: Vec<i64> = match &p.scenarios {
        Scenarios::Default => vec![first_scenario],
        Scenarios::Named(s) if s == "default" => vec![first_scenario],
        Scenarios::Named(s) if s == "all" => (first_scenario..first_scenario + n_scenarios).collect(),
        Scenarios::Named(s) => {
            return Err(input(format!(
                "{origin}: [projection] scenarios = \"{s}\": use \"default\", \"all\" or a list of ids"
            )));
        }
        Scenarios::List(list) => {
            let last = first_scenario + n_scenarios - 1;
            if let Some(bad) = list.iter().find(|s| !(first_scenario..=last).contains(*s)) {
                return Err(input(format!(
                    "{origin}: [projection] scenarios: {bad} is not in the scenario table ({first_scenario}..={last})"
                )));
            }
            if list.is_empty() {
                return Err(input(format!("{origin}: [projection] scenarios: the list is empty")));
            }
            list.clone()
        }
    };
    let audit = match &p.audit_point {
        None => None,
        Some(v) => {
            let id = match v {
                toml::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let i = ids.iter().position(|x| *x == id).ok_or_else(|| {
                input(format!("{origin}: [projection] audit_point: no point has id '{id}' in {points_name}"))
            })?;
            Some((id, i))
        }
    };
    let pv_model = make("pv")?;
    let monthly_model = if p.monthly { Some(make("monthly")?) } else { None };
    let out_dir = common.output.clone().or(config.output.dir.as_ref().map(|d| resolve(d)));

    let columns: Vec<String> = pv_model.spec().outputs.clone();
    let monthly_columns: Vec<String> = monthly_model.as_ref().map(|m| m.spec().outputs.clone()).unwrap_or_default();
    let (n_cols, n_mcols, n_scen) = (columns.len(), monthly_columns.len(), scenarios.len());
    let times: Vec<f64> = (0..horizon).map(|t| t as f64).collect();

    // Under MPI every rank projects its share of the blocks; rank 0 alone folds them and writes.
    let root = crate::ranks::is_root();
    let mut outputs = match &out_dir {
        Some(dir) if root => Some(Outputs::new(dir)?),
        _ => None,
    };
    let mut pv_writer = match outputs.as_mut() {
        Some(o) => {
            let mut w = o.create("pv.csv")?;
            let header: Vec<&str> = std::iter::once("point_id").chain(columns.iter().map(String::as_str)).collect();
            writeln!(w, "{}", header.join(",")).map_err(write_err)?;
            Some(w)
        }
        None => None,
    };

    let start = Instant::now();
    let bar = ProgressBar::with_draw_target(Some(ids.len() as u64), ProgressDrawTarget::hidden());
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} points")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let show_bar = std::io::stdout().is_terminal() && std::io::stderr().is_terminal();
    let mut bar_shown = false;

    let mut scenario_totals = vec![0.0; n_scen * n_cols];
    let mut monthly_totals = vec![0.0; horizon * n_mcols];
    let n_blocks = ids.len().div_ceil(BLOCK);
    let project_block = |b: usize| -> Result<BlockResult, String> {
        let (lo, hi) = (b * BLOCK, ((b + 1) * BLOCK).min(ids.len()));
        let mut pv_ws = pv_model.workspace();
        let mut rows = vec![0.0; (hi - lo) * n_scen * n_cols];
        let mut monthly = vec![0.0; if monthly_model.is_some() { horizon * n_mcols } else { 0 }];
        let mut series = vec![0.0; monthly.len()];
        let mut m_ws = monthly_model.as_ref().map(|m| m.workspace());
        for (i, id) in ids.iter().enumerate().take(hi).skip(lo) {
            for (k, &s) in scenarios.iter().enumerate() {
                let inputs = [i as f64, s as f64];
                let at = ((i - lo) * n_scen + k) * n_cols;
                pv_model
                    .simulate(&mut pv_ws, &[], &inputs, &[], &mut rows[at..at + n_cols])
                    .map_err(|e| format!("point {id} (row {}), scenario {s}: {e}", i + 1))?;
                if let (Some(m), Some(ws)) = (&monthly_model, m_ws.as_mut()) {
                    m.simulate(ws, &[], &inputs, &times, &mut series)
                        .map_err(|e| format!("point {id} (row {}), scenario {s}: {e}", i + 1))?;
                    monthly.iter_mut().zip(&series).for_each(|(a, b)| *a += b);
                }
            }
        }
        Ok(BlockResult { rows, monthly })
    };
    let mut mean_row = vec![0.0; n_cols];
    install_signal_handler();
    let ranks = crate::ranks::rank_and_size().1;
    // Every rank gets several chunks of a wave; a wave is held in memory on rank 0, so it grows with the ranks.
    let wave_blocks = WAVE_BLOCKS * ranks;
    let chunk = (wave_blocks / (ranks * 8)).max(1);
    for wave in (0..n_blocks).step_by(wave_blocks) {
        let blocks = crate::ranks::map(wave..(wave + wave_blocks).min(n_blocks), chunk, &STOP, &project_block)
            .map_err(|e| match e {
                CliError::Interrupted(_) => CliError::Interrupted("interrupted: nothing was written".into()),
                e => e,
            })?;
        let Some(blocks) = blocks else { continue };
        for (b, block) in (wave..).zip(blocks) {
            let block = block.map_err(|e| failed(format!("{origin}: {e}")))?;
            for (j, point_rows) in block.rows.chunks_exact(n_scen * n_cols).enumerate() {
                mean_row.fill(0.0);
                for (k, row) in point_rows.chunks_exact(n_cols).enumerate() {
                    for c in 0..n_cols {
                        scenario_totals[k * n_cols + c] += row[c];
                        mean_row[c] += row[c];
                    }
                }
                if let Some(w) = pv_writer.as_mut() {
                    let cells: Vec<String> = mean_row.iter().map(|v| cell(v / n_scen as f64)).collect();
                    writeln!(w, "{},{}", ids[b * BLOCK + j], cells.join(",")).map_err(write_err)?;
                }
            }
            monthly_totals.iter_mut().zip(&block.monthly).for_each(|(a, b)| *a += b);
        }
        bar.set_position((((wave + wave_blocks) * BLOCK).min(ids.len())) as u64);
        if show_bar && !bar_shown && start.elapsed().as_secs_f64() > 1.0 {
            bar.set_draw_target(ProgressDrawTarget::stderr());
            bar_shown = true;
        }
    }
    bar.finish_and_clear();
    if !root {
        return Ok(());
    }
    if n_scen > 1 {
        monthly_totals.iter_mut().for_each(|v| *v /= n_scen as f64);
    }
    let seconds = start.elapsed().as_secs_f64();

    let totals_of = |k: usize| -> serde_json::Map<String, Value> {
        columns.iter().enumerate().map(|(c, name)| (name.clone(), json!(scenario_totals[k * n_cols + c]))).collect()
    };
    let mean: Vec<f64> = (0..n_cols)
        .map(|c| (0..n_scen).map(|k| scenario_totals[k * n_cols + c]).sum::<f64>() / n_scen as f64)
        .collect();
    let totals: serde_json::Map<String, Value> =
        columns.iter().zip(&mean).map(|(name, v)| (name.clone(), json!(v))).collect();
    let report = json!({
        "model": p.kind,
        "plugin": plugin.info().name,
        "config": origin,
        "model_points": points_name,
        "points": ids.len(),
        "horizon_months": horizon,
        "point_months": point_months as usize * n_scen,
        "scenarios": scenarios,
        "threads": threads,
        "ranks": ranks,
        "seconds": seconds,
        "totals": totals,
        "scenario_totals": scenarios.iter().enumerate().map(|(k, s)| json!({ "scenario": s, "totals": totals_of(k) })).collect::<Vec<_>>(),
    });

    if let Some(mut o) = outputs {
        if let Some(mut w) = pv_writer.take() {
            w.flush().map_err(write_err)?;
        }
        let mut w = o.create("totals.json")?;
        writeln!(w, "{}", serde_json::to_string_pretty(&report).unwrap_or_default()).map_err(write_err)?;
        w.flush().map_err(write_err)?;
        if monthly_model.is_some() {
            for (name, range) in [("result_cf.csv", 0..5), ("result_pols.csv", 5..n_mcols)] {
                let mut w = o.create(name)?;
                let header: Vec<&str> =
                    std::iter::once("t").chain(monthly_columns[range.clone()].iter().map(String::as_str)).collect();
                writeln!(w, "{}", header.join(",")).map_err(write_err)?;
                for (t, row) in monthly_totals.chunks_exact(n_mcols).enumerate() {
                    let cells: Vec<String> = row[range.clone()].iter().map(|v| cell(*v)).collect();
                    writeln!(w, "{t},{}", cells.join(",")).map_err(write_err)?;
                }
                w.flush().map_err(write_err)?;
            }
            let net = monthly_columns.iter().position(|c| c == "Net Cashflow").unwrap_or(4);
            let pols = monthly_columns.iter().position(|c| c == "pols_if").unwrap_or(5);
            let series = |c: usize| -> Vec<(f64, f64)> {
                monthly_totals.chunks_exact(n_mcols).enumerate().map(|(t, r)| (t as f64, r[c])).collect()
            };
            o.create("projection.svg")?;
            let title = format!("{} — {} model points", p.kind, ids.len());
            projection_plot(&o.partial("projection.svg"), &title, &series(net), &series(pols))?;
        }
        if let Some((id, i)) = &audit {
            let model = make("audit")?;
            let width = model.spec().outputs.len();
            let mut out = vec![0.0; horizon * width];
            model
                .simulate(&mut model.workspace(), &[], &[*i as f64, scenarios[0] as f64], &times, &mut out)
                .map_err(|e| failed(format!("{origin}: audit point {id}: {e}")))?;
            let mut w = o.create("audit.csv")?;
            writeln!(w, "{}", model.spec().outputs.join(",")).map_err(write_err)?;
            for row in out.chunks_exact(width) {
                let cells: Vec<String> = row.iter().map(|v| cell(*v)).collect();
                writeln!(w, "{}", cells.join(",")).map_err(write_err)?;
            }
            w.flush().map_err(write_err)?;
        }
        for f in o.commit()? {
            eprintln!("wrote {}", f.display());
        }
    }

    match common.format.unwrap_or(Format::Table) {
        Format::Json => println!("{report}"),
        Format::Csv => {
            println!(
                "column,{}",
                scenarios.iter().map(|s| format!("scenario_{s}")).collect::<Vec<_>>().join(",") + ",mean"
            );
            for (c, name) in columns.iter().enumerate() {
                let cells: Vec<String> = (0..n_scen).map(|k| cell(scenario_totals[k * n_cols + c])).collect();
                println!("{name},{},{}", cells.join(","), cell(mean[c]));
            }
        }
        Format::Table => {
            println!(
                "{} model points × {} scenario(s), {horizon} months, {ranks} rank(s) × {threads} thread(s): {seconds:.3} s",
                ids.len(),
                n_scen
            );
            let label = if n_scen > 1 { "total (mean over scenarios)" } else { "total" };
            println!("{:<20} {label}", "present value");
            for (name, v) in columns.iter().zip(&mean) {
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
