//! `parfit`: fit and run models from loadable plugins, in parallel.

mod commands;
mod console;
mod error;
mod inputs;
mod outputs;
mod paths;
mod plot;
mod plugins;
mod progress;
mod project;
mod ranks;
mod signals;

use std::error::Error;
use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand, ValueEnum};
use parfit_app::config;

use crate::error::{CliResult, failed, input};

#[derive(Parser)]
#[command(name = "parfit", version, about = "Fit and run many models in parallel.", propagate_version = true)]
struct Cli {
    /// A plugin library or a directory of plugins to load (repeatable). Searched before PARFIT_PLUGIN_PATH and
    /// the directory of the parfit executable.
    #[arg(long = "plugin", value_name = "PATH", global = true)]
    plugins: Vec<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the plugins found, their model kinds and file extensions.
    Plugins(PluginsArgs),
    /// Fit a model's parameters to data, as configured in a TOML file.
    Fit(FitArgs),
    /// Fit a model to every case (CSV row) of a table independently, cases in parallel; resumable.
    FitMany(FitManyArgs),
    /// Sample the posterior of a model's parameters given data (nested sampling or MCMC), as configured.
    Sample(SampleArgs),
    /// Simulate a model once: from a TOML configuration, or directly from a model file (e.g. model.ds).
    Run(RunArgs),
}

#[derive(Args)]
struct PluginsArgs {
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

/// Flags shared by the commands that do work.
#[derive(Args, Clone, Default)]
pub struct Common {
    /// Worker threads, 1 to 1024 (default: the configuration's `threads`, else one per core).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=MAX_THREADS as i64))]
    pub threads: Option<u16>,
    /// Random seed (overrides the configuration's `seed`).
    #[arg(long, value_name = "S")]
    pub seed: Option<u64>,
    /// Directory for result files and plots (overrides the configuration's [output] dir).
    #[arg(long, value_name = "DIR")]
    pub output: Option<PathBuf>,
    /// How to print the result on stdout.
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// ODE relative tolerance (overrides [model.options] rtol).
    #[arg(long)]
    pub rtol: Option<f64>,
    /// ODE absolute tolerance (overrides [model.options] atol).
    #[arg(long)]
    pub atol: Option<f64>,
    /// The optimiser (overrides [fit] algorithm).
    #[arg(long, value_enum)]
    pub algorithm: Option<config::Algorithm>,
    /// Set a parameter: NAME=VALUE (repeatable). In `fit` it sets the start value.
    #[arg(long = "set", value_name = "NAME=VALUE")]
    pub set: Vec<String>,
}

#[derive(Args)]
struct FitArgs {
    /// The fit configuration (TOML).
    config: PathBuf,
    #[command(flatten)]
    common: Common,
}

#[derive(Args)]
struct SampleArgs {
    /// The configuration (TOML) with [model], [data], [parameters] and [sample] sections.
    config: PathBuf,
    #[command(flatten)]
    common: Common,
}

#[derive(Args)]
struct FitManyArgs {
    /// The configuration (TOML) with a [cases] section.
    config: PathBuf,
    /// Skip the cases already saved in the output directory's checkpoint (after an interruption or crash).
    #[arg(long)]
    resume: bool,
    #[command(flatten)]
    common: Common,
}

#[derive(Args)]
struct RunArgs {
    /// A TOML configuration, or a model file whose extension selects the plugin (e.g. `.ds` for DiffSL).
    input: PathBuf,
    /// Output times: start:stop:count (evenly spaced, ends included) or a comma-separated list.
    #[arg(long, value_name = "TIMES", allow_hyphen_values = true)]
    times: Option<String>,
    #[command(flatten)]
    common: Common,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Json,
}

fn main() {
    let cli = Cli::parse();
    signals::install();
    // Under an MPI launcher every rank runs the same command; see crate::ranks.
    #[cfg(feature = "mpi")]
    let universe = ranks::mpi::start();
    if let Err(e) = run(cli) {
        #[cfg(feature = "mpi")]
        if let Some(universe) = universe {
            ranks::mpi::fail(universe, &e);
        }
        if !matches!(e, error::CliError::StdoutClosed) {
            console::note(&format!("error: {e}"));
        }
        std::process::exit(e.exit_code());
    }
}

fn run(cli: Cli) -> CliResult<()> {
    // Every size check reads the budget from here, in the plugins too: a bad value stops the run now.
    parfit_core::limits::limit_from_environment().map_err(input)?;
    match cli.command {
        Command::Plugins(args) => commands::plugins::list(&cli.plugins, args.format),
        Command::Fit(args) => commands::fit::fit(&cli.plugins, &args.config, &args.common),
        Command::FitMany(args) => commands::fit_many::fit_many(&cli.plugins, &args.config, &args.common, args.resume),
        Command::Sample(args) => commands::sample::sample(&cli.plugins, &args.config, &args.common),
        Command::Run(args) => commands::run::run(&cli.plugins, &args.input, args.times.as_deref(), &args.common),
    }
}

pub use parfit_app::MAX_THREADS;

/// Size rayon's global pool once, before any parallel work: `--threads` (already checked by clap), else the
/// `threads` key of the configuration at `config`, else one per core.
pub fn init_threads(flag: Option<u16>, key: Option<usize>, config: &Path) -> CliResult<usize> {
    let key = parfit_app::configured_threads(flag.is_some(), key, || inputs::locate_key(config, "threads"))?;
    let mut builder = rayon::ThreadPoolBuilder::new();
    if let Some(n) = flag.map(usize::from).or(key) {
        builder = builder.num_threads(n);
    }
    // A second call finds the pool built (tests may run several commands in one process): keep it. Any other
    // failure (the system refused a thread) ends the run.
    if let Err(e) = builder.build_global()
        && e.source().is_some()
    {
        return Err(failed(format!("cannot start the worker threads ({e})")));
    }
    Ok(rayon::current_num_threads())
}

/// Parse `--set NAME=VALUE` flags.
pub fn parse_sets(sets: &[String]) -> CliResult<Vec<(String, f64)>> {
    sets.iter()
        .map(|s| {
            let (name, value) =
                s.split_once('=').ok_or_else(|| input(format!("--set '{s}': expected NAME=VALUE, e.g. alpha=1.1")))?;
            let value: f64 = value
                .trim()
                .parse()
                .ok()
                .filter(|v: &f64| v.is_finite())
                .ok_or_else(|| input(format!("--set '{s}': '{}' is not a finite number", value.trim())))?;
            Ok((name.trim().to_string(), value))
        })
        .collect()
}
