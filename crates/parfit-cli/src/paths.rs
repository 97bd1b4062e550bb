//! `parfit run` on a Monte Carlo configuration (one with a `[montecarlo]` section): N paths × T periods of a
//! stochastic model, in parallel, summarised by chosen statistics; optionally a sweep over one or two
//! parameters (each grid point a case) and the per-path values as CSV.
//!
//! The run itself (plan, parallel tasks, statistics, report) is `parfit_app::montecarlo`, shared with the
//! browser; this module finds the plugin, spreads the tasks over MPI ranks when under mpirun
//! ([`crate::ranks::Ranks`]), shows progress, handles Ctrl-C, prints and writes the results.
//! Nothing is written until every task has finished: an interrupted run leaves no files, and result files are
//! written under a temporary name and renamed into place.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use parfit_abi::Entry;
use parfit_abi::host::LoadedPlugin;
use parfit_app::Loader;
use parfit_app::RunError;
use parfit_app::montecarlo::{
    McConfig, Plan, not_monte_carlo, per_path_csv, report, simulate_all, summarise_points, summary_csv, summary_table,
};
use parfit_core::paths::PathRunner;

use crate::commands::{plugin_options, show};
use crate::console;
use crate::error::{CliError, CliResult, failed, input};
use crate::inputs::FsLoader;
use crate::outputs::OutputDir;
use crate::plugins::{choose, find_plugins};
use crate::signals;
use crate::{Common, Format, init_threads, parse_sets};

/// Whether the TOML file at `path` configures a Monte Carlo run.
pub fn is_monte_carlo(path: &Path) -> CliResult<bool> {
    let text = crate::inputs::read_text(path)?;
    let _: toml::Table = toml::from_str(&text).map_err(|e| input(parfit_app::config::toml_error(path, &text, &e)))?;
    Ok(parfit_app::montecarlo::is_monte_carlo(&text))
}

pub fn run(explicit: &[PathBuf], path: &Path, common: &Common) -> CliResult<()> {
    let origin = path.display().to_string();
    let text = crate::inputs::read_text(path)?;
    let config = McConfig::parse(path, &text)?;
    let resolve = |p: &Path| match path.parent() {
        Some(dir) if p.is_relative() => dir.join(p),
        _ => p.to_path_buf(),
    };
    let threads = init_threads(common.threads, config.threads, path)?;

    let found = find_plugins(explicit)?;
    let plugin = choose(&found, config.model.plugin.as_deref(), &config.model.kind)?;
    if plugin.entry(&config.model.kind) != Some(Entry::Paths) {
        return Err(not_monte_carlo(&config).into());
    }
    let options = plugin_options(&config.model.options, common, &origin)?;
    let source = config.model.source.as_ref().map(|s| resolve(s));
    let model = create_paths(plugin, &config.model.kind, source.as_deref(), options, &origin)?;
    let spec = model.spec();
    let plan = Plan::new(&config, spec, common.seed, &parse_sets(&common.set)?, threads)?;
    let mc = &config.montecarlo;
    let out_dir = common.output.clone().or_else(|| config.output.dir.as_ref().map(|d| resolve(d)));
    if mc.per_path && out_dir.is_none() {
        return Err(input(format!("{origin}: per_path = true writes paths.csv: give --output DIR or [output] dir")));
    }

    // Rank 0 alone writes, so it alone locks the directory, before any work.
    let mut outputs = match &out_dir {
        Some(dir) if crate::ranks::is_root() => Some(OutputDir::open(dir)?),
        _ => None,
    };

    let start = Instant::now();
    let progress = Progress::new(plan.paths * plan.points.len() as u64);
    let values = simulate_all(&crate::ranks::Ranks, model.as_ref(), &plan, &signals::STOP, &|n| progress.advance(n));
    progress.finish();
    let values = values.map_err(|e| match e {
        RunError::Failed(m) => failed(m),
        RunError::Interrupted(m) => CliError::Interrupted(format!("{m}; nothing was written")),
    })?;
    // Under MPI the other ranks only simulated their share; rank 0 has every path and writes.
    let Some(values) = values else { return Ok(()) };
    let seconds = start.elapsed().as_secs_f64();

    let summary = summarise_points(&plan, spec.outputs.len(), &values);
    let summary_csv = summary_csv(&plan, spec, &summary);
    let report = report(&plan, spec, &summary, threads, seconds);
    if let Some(out) = &mut outputs {
        out.write("summary.csv", summary_csv.as_bytes())?;
        out.write("summary.json", (serde_json::to_string_pretty(&report).unwrap_or_default() + "\n").as_bytes())?;
        if mc.per_path {
            out.write("paths.csv", per_path_csv(&plan, &spec.outputs, &values).as_bytes())?;
        }
    }
    console::print(&match common.format.unwrap_or(Format::Table) {
        Format::Json => format!("{report}\n"),
        Format::Csv => summary_csv,
        Format::Table => {
            let points = plan.points.len();
            let mut text = format!(
                "monte carlo  {} paths × {} periods, seed {}, {points} point{}, {seconds:.3} s on {threads} \
                 thread{}\n",
                plan.paths,
                plan.periods,
                plan.seeds.iter().map(u64::to_string).collect::<Vec<_>>().join(" "),
                if points == 1 { "" } else { "s" },
                if threads == 1 { "" } else { "s" }
            );
            if let Some(dir) = &out_dir {
                text += &format!(
                    "results      {}/summary.csv, summary.json{}\n",
                    dir.display(),
                    if mc.per_path { ", paths.csv" } else { "" }
                );
            }
            text += "\n";
            let (header, rows) = summary_table(&plan, spec, &summary, show);
            for row in std::iter::once(header).chain(rows) {
                text += &(row.iter().map(|c| format!("{c:>14}")).collect::<String>() + "\n");
            }
            text
        }
    })?;
    if let Some(out) = outputs {
        out.commit()?;
    }
    Ok(())
}

/// Make the Monte Carlo paths of `kind` through the plugin's paths entry point: `options` plus the source text
/// (if any) as its JSON configuration. An error about the source text names the source; any other is blamed
/// on `origin`, the configuration.
fn create_paths(
    plugin: &LoadedPlugin,
    kind: &str,
    source: Option<&Path>,
    options: serde_json::Map<String, serde_json::Value>,
    origin: &str,
) -> CliResult<Box<dyn PathRunner>> {
    let text = source.map(|path| FsLoader.read(path)).transpose()?;
    let json = parfit_app::fitting::model_config(options, source.zip(text.as_deref()));
    let paths = plugin.create_paths(kind, &json).map_err(|e| {
        let about_source = source.is_some_and(|path| e.starts_with(&format!("{}:", path.display())));
        input(if about_source { e } else { format!("{origin}: {e}") })
    })?;
    Ok(Box::new(paths))
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
