//! The TOML configuration of `parfit fit`, `fit-many`, `sample` and `run`, parsed with file-named errors.
//!
//! Relative paths in a configuration are relative to the configuration file's directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use parfit_core::check::OptionError;
use parfit_core::limits::check_allocation;
use parfit_core::optimise::{
    CmaesOptions, DifferentialEvolutionOptions, LBfgsBOptions, LevenbergMarquardtOptions, NelderMeadOptions,
};
use parfit_core::sample::{EnsembleOptions, NestedOptions, NoiseSigma, ParamPrior};
use parfit_core::{ModelSpec, OutputKind};
use serde::Deserialize;
use toml::de::{DeTable, DeValue};

use crate::{InputError, Loader, Result as InputResult, input};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub model: ModelSection,
    pub data: Option<DataSection>,
    /// Many independent cases, one per CSV row (`parfit fit-many`).
    pub cases: Option<CasesSection>,
    /// Per-parameter settings, by model parameter name.
    #[serde(default)]
    pub parameters: BTreeMap<String, ParameterSection>,
    #[serde(default)]
    pub fit: FitSection,
    #[serde(default)]
    pub run: RunSection,
    #[serde(default)]
    pub sample: SampleSection,
    #[serde(default)]
    pub output: OutputSection,
    /// Seed of every random choice (optimiser sampling). Default 0.
    pub seed: Option<u64>,
    /// Worker threads; default: one per core.
    pub threads: Option<usize>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    /// Plugin name (as `parfit plugins` lists it); default: the first plugin offering `kind`.
    pub plugin: Option<String>,
    /// Model kind, e.g. "diffsl".
    pub kind: String,
    /// Model source file, given to the plugin as text.
    pub source: Option<PathBuf>,
    /// Further plugin options (for the ODE plugin: rtol, atol, max_steps, …).
    #[serde(default)]
    pub options: toml::Table,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSection {
    /// CSV file with a header row.
    pub path: PathBuf,
    /// Name of the time column. Default "t".
    #[serde(default = "default_time")]
    pub time: String,
    /// Observed model outputs; each is read from the CSV column of the same name unless `columns` maps it.
    pub outputs: Vec<String>,
    /// Model output → CSV column, where they differ.
    #[serde(default)]
    pub columns: BTreeMap<String, String>,
}

fn default_time() -> String {
    "t".into()
}

/// A table of cases: one per row, with id columns, model inputs and observations at given times.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CasesSection {
    /// CSV file.
    pub path: PathBuf,
    /// Header rows (default 1). With several, a column's name is its non-empty header cells joined by one
    /// space: "2000 dec_1" for a column under "2000" and "dec_1", "state" for a column headed only "state".
    #[serde(default = "one")]
    pub header_rows: usize,
    /// Columns that identify a case, copied to the results.
    #[serde(default)]
    pub id: Vec<String>,
    /// Model input → column. Inputs not listed are NaN, which a model reads as "use the model's own default".
    #[serde(default)]
    pub inputs: BTreeMap<String, String>,
    /// Observations: at each time, model output → column.
    #[serde(default)]
    pub observe: Vec<ObserveSection>,
}

fn one() -> usize {
    1
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObserveSection {
    pub time: f64,
    /// Model output → column.
    pub columns: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParameterSection {
    /// Starting value (default: the model's default).
    pub start: Option<f64>,
    pub lower: Option<f64>,
    pub upper: Option<f64>,
    /// Hold the parameter at this value instead of fitting it.
    pub fixed: Option<f64>,
    /// Search on a log scale.
    #[serde(default)]
    pub log_scale: bool,
    /// Prior of `parfit sample` (default: uniform over lower..upper, which must then be finite).
    pub prior: Option<ParamPrior>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "clap", clap(rename_all = "snake_case"))]
pub enum Algorithm {
    #[default]
    Cmaes,
    NelderMead,
    DifferentialEvolution,
    Lbfgsb,
    LevenbergMarquardt,
}

/// How `[fit] polish` refines the main algorithm's best point: `false` (the default), `true` (the best method the
/// model allows), or a method by name.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Polish {
    #[default]
    Off,
    /// Levenberg–Marquardt when the model has exact sensitivities (a few Jacobian solves instead of hundreds of
    /// simplex steps), Nelder–Mead otherwise.
    Auto,
    NelderMead,
    LevenbergMarquardt,
}

impl<'de> Deserialize<'de> for Polish {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Setting;
        impl serde::de::Visitor<'_> for Setting {
            type Value = Polish;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(r#"true, false, "nelder_mead" or "levenberg_marquardt""#)
            }
            fn visit_bool<E: serde::de::Error>(self, on: bool) -> Result<Polish, E> {
                Ok(if on { Polish::Auto } else { Polish::Off })
            }
            fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<Polish, E> {
                match name {
                    "nelder_mead" => Ok(Polish::NelderMead),
                    "levenberg_marquardt" => Ok(Polish::LevenbergMarquardt),
                    _ => Err(E::invalid_value(serde::de::Unexpected::Str(name), &self)),
                }
            }
        }
        deserializer.deserialize_any(Setting)
    }
}

impl Algorithm {
    pub const ALL: [Algorithm; 5] = [
        Algorithm::Cmaes,
        Algorithm::NelderMead,
        Algorithm::DifferentialEvolution,
        Algorithm::Lbfgsb,
        Algorithm::LevenbergMarquardt,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Cmaes => "cmaes",
            Algorithm::NelderMead => "nelder_mead",
            Algorithm::DifferentialEvolution => "differential_evolution",
            Algorithm::Lbfgsb => "lbfgsb",
            Algorithm::LevenbergMarquardt => "levenberg_marquardt",
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CostName {
    #[default]
    Sse,
    Rmse,
    GaussianNll,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FitSection {
    #[serde(default)]
    pub cost: CostName,
    /// Noise standard deviation for `cost = "gaussian_nll"`.
    pub sigma: Option<f64>,
    #[serde(default)]
    pub algorithm: Algorithm,
    pub max_iterations: Option<usize>,
    pub max_evaluations: Option<usize>,
    pub target_value: Option<f64>,
    pub max_seconds: Option<f64>,
    pub ftol: Option<f64>,
    pub xtol: Option<f64>,
    /// After the main algorithm, refine its best point: `true` picks the method (see [`Polish`]).
    #[serde(default)]
    pub polish: Polish,
    /// Fit in stages over growing time horizons: first to the data with t ≤ horizons[0], then t ≤ horizons[1],
    /// …, and last to all the data, each stage starting where the previous one ended. Long oscillating
    /// series have many local optima (a slightly wrong period fits late data badly); early data pin the
    /// period down first. Default: one stage on all the data.
    #[serde(default)]
    pub horizons: Vec<f64>,
    #[serde(default)]
    pub cmaes: CmaesOptions,
    #[serde(default)]
    pub nelder_mead: NelderMeadOptions,
    #[serde(default)]
    pub differential_evolution: DifferentialEvolutionOptions,
    #[serde(default)]
    pub lbfgsb: LBfgsBOptions,
    #[serde(default)]
    pub levenberg_marquardt: LevenbergMarquardtOptions,
}

/// The posterior sampler of `parfit sample`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SampleAlgorithm {
    /// Dynamic nested sampling: evidence and weighted posterior samples.
    #[default]
    Nested,
    /// The affine-invariant ensemble MCMC sampler.
    Mcmc,
}

impl SampleAlgorithm {
    pub fn name(self) -> &'static str {
        match self {
            SampleAlgorithm::Nested => "nested",
            SampleAlgorithm::Mcmc => "mcmc",
        }
    }
}

/// Where the MCMC walkers start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum McmcStart {
    /// In a small cloud around the parameters' `start` values (`start_spread` prior sds wide).
    #[default]
    Start,
    /// Independent draws from the prior.
    Prior,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SampleSection {
    #[serde(default)]
    pub algorithm: SampleAlgorithm,
    /// Noise standard deviation of the Gaussian likelihood: a number, or "fitted" (sampled with `sigma_prior`).
    pub sigma: Option<NoiseSigma>,
    /// Prior of a fitted sigma.
    pub sigma_prior: Option<ParamPrior>,
    /// Stop before the likelihood evaluations would pass this.
    pub max_evaluations: Option<usize>,
    /// Wall-clock limit in seconds, checked between batches.
    pub max_seconds: Option<f64>,
    /// MCMC: where the walkers start. Default "start".
    #[serde(default)]
    pub mcmc_start: McmcStart,
    /// MCMC with `mcmc_start = "start"`: the starting cloud's width in prior standard deviations. Default 0.01.
    pub start_spread: Option<f64>,
    #[serde(default)]
    pub nested: NestedOptions,
    #[serde(default)]
    pub mcmc: EnsembleOptions,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSection {
    /// Output times: a list, or "start:stop:count" (evenly spaced, both ends included).
    pub times: Option<Times>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Times {
    List(Vec<f64>),
    Range(String),
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSection {
    /// Directory for result files and plots (relative to the configuration file).
    pub dir: Option<PathBuf>,
    /// Record the best value after every iteration in result.json and plot it. Default true.
    pub history: Option<bool>,
}

/// A loaded configuration and where it came from.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    pub path: PathBuf,
    /// The file's text, kept so that a setting found out of range later is reported at its line and column.
    pub text: String,
    pub config: Config,
    /// How the objectives built from this configuration spread their batches over processes: set by a front
    /// end running under MPI (not part of the file); `None` evaluates batches in this process.
    pub spread: Option<std::sync::Arc<dyn parfit_core::parallel::Spread>>,
}

impl LoadedConfig {
    pub fn load(path: &Path, loader: &dyn Loader) -> InputResult<Self> {
        Self::parse(path, &loader.read(path)?)
    }

    /// Parse `text` as the configuration at `path` (which names it in errors and anchors relative paths).
    pub fn parse(path: &Path, text: &str) -> InputResult<Self> {
        let config: Config = toml::from_str(text).map_err(|e| input(toml_error(path, text, &e)))?;
        check_plain_values(path, text, &config.model.options, &["model", "options"])?;
        Ok(LoadedConfig { path: path.to_path_buf(), text: text.to_string(), config, spread: None })
    }

    /// Whether the configuration's text has the table `table` (e.g. `["fit", "cmaes"]`).
    pub fn has_table(&self, table: &[&str]) -> bool {
        let Ok(root) = DeTable::parse(&self.text) else { return false };
        let mut current = root.get_ref();
        for key in table {
            match current.iter().find(|(k, _)| k.get_ref().as_ref() == *key).map(|(_, v)| v.get_ref()) {
                Some(DeValue::Table(inner)) => current = inner,
                _ => return false,
            }
        }
        true
    }

    /// A setting of the table `table` (e.g. `["fit", "cmaes"]`) out of its range, as an input error at the
    /// setting's line and column: `fit.toml:41:10: [fit.cmaes] sigma0 must be …`.
    pub fn option_error(&self, table: &[&str], e: OptionError) -> InputError {
        option_error(&self.path, &self.text, table, e)
    }

    /// `file:line:column` of the value of `keys` in this configuration (see [`locate`]).
    pub fn locate(&self, keys: &[&str]) -> String {
        locate(&self.path, &self.text, keys)
    }

    /// Resolve a path written in the configuration.
    pub fn resolve(&self, relative: &Path) -> PathBuf {
        match self.path.parent() {
            Some(dir) if relative.is_relative() => dir.join(relative),
            _ => relative.to_path_buf(),
        }
    }
}

/// A TOML error as `file:line:column: message`.
pub fn toml_error(path: &Path, text: &str, e: &toml::de::Error) -> String {
    let message = e.message().trim_end();
    match e.span() {
        Some(span) => format!("{}: {message}", place(path, text, span.start)),
        None => format!("{}: {message}", path.display()),
    }
}

/// `file:line:column` of byte `offset` in `text` (columns count characters).
fn place(path: &Path, text: &str, offset: usize) -> String {
    let before = text.get(..offset.min(text.len())).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.chars().rev().take_while(|&c| c != '\n').count() + 1;
    format!("{}:{line}:{column}", path.display())
}

/// `file:line:column` of the value of `keys` (tables, then the key) in a configuration's `text`; where the key is
/// not written (a default), the place of the nearest table around it that is, else the file alone.
pub fn locate(path: &Path, text: &str, keys: &[&str]) -> String {
    let Ok(root) = DeTable::parse(text) else { return path.display().to_string() };
    let mut table = root.get_ref();
    let mut found = None;
    for key in keys {
        let Some((_, value)) = table.iter().find(|(k, _)| k.get_ref().as_ref() == *key) else { break };
        found = Some(value.span().start);
        match value.get_ref() {
            DeValue::Table(inner) => table = inner,
            _ => break,
        }
    }
    match found {
        Some(offset) => place(path, text, offset),
        None => path.display().to_string(),
    }
}

/// `[fit.cmaes]`, `[parameters."dec 1 loss rate".prior]`: a table path as TOML writes it.
fn table_name(table: &[&str]) -> String {
    let bare = |k: &&str| !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    let keys: Vec<String> = table.iter().map(|k| if bare(k) { k.to_string() } else { format!("{k:?}") }).collect();
    format!("[{}]", keys.join("."))
}

/// A setting of `table` out of its range, at its place in the configuration at `path`.
pub fn option_error(path: &Path, text: &str, table: &[&str], e: OptionError) -> InputError {
    let keys: Vec<&str> = table.iter().copied().chain(e.key.split('.')).collect();
    input(format!("{}: {} {e}", locate(path, text, &keys), table_name(table)))
}

/// Refuse NaN and infinities among a plugin's options (`table`, at `keys` in the configuration): JSON, which
/// carries them to the plugin, has no such numbers.
pub fn check_plain_values(path: &Path, text: &str, table: &toml::Table, keys: &[&str]) -> InputResult<()> {
    for (key, value) in table {
        let at: Vec<&str> = keys.iter().copied().chain([key.as_str()]).collect();
        match value {
            toml::Value::Float(v) if !v.is_finite() => {
                let e = OptionError::new(key, format!("must be a finite number (got {v:?})"));
                return Err(option_error(path, text, keys, e));
            }
            toml::Value::Table(inner) => check_plain_values(path, text, inner, &at)?,
            toml::Value::Array(items) => {
                if let Some(v) = items.iter().find_map(|i| i.as_float().filter(|v| !v.is_finite())) {
                    let e = OptionError::new(key, format!("must hold finite numbers (got {v:?})"));
                    return Err(option_error(path, text, keys, e));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Parse output times: "start:stop:count" or a comma-separated list.
pub fn parse_times(text: &str) -> Result<Vec<f64>, String> {
    let bad =
        |what: &str| format!("times '{text}': {what} (write start:stop:count, e.g. 0:100:501, or a list 0,1,2.5)");
    if text.contains(':') {
        let parts: Vec<&str> = text.split(':').collect();
        let [start, stop, count] = parts[..] else { return Err(bad("expected three fields")) };
        let start: f64 = start.trim().parse().map_err(|_| bad("the start is not a number"))?;
        let stop: f64 = stop.trim().parse().map_err(|_| bad("the stop is not a number"))?;
        let count: usize = count.trim().parse().map_err(|_| bad("the count is not a whole number"))?;
        if !(start.is_finite() && stop.is_finite()) {
            return Err(bad(&format!("start and stop must be finite numbers (got {start:?} and {stop:?})")));
        }
        if count == 0 || stop < start {
            return Err(bad("need a count of at least 1 and start ≤ stop"));
        }
        // e.g. -1e308:1e308: both ends finite, the span between them not, and every step with it.
        if !(stop - start).is_finite() {
            return Err(bad(&format!("the span stop − start overflows (got {start:?} to {stop:?})")));
        }
        // Each time is kept with at least one simulated value at it: 16 bytes.
        check_allocation(&format!("times '{text}': a count of {count}"), count as f64, 16.0)?;
        if count == 1 {
            return Ok(vec![start]);
        }
        // Same spacing rule as numpy.linspace: start + i·step, with the last point exactly `stop`.
        let step = (stop - start) / (count - 1) as f64;
        Ok((0..count).map(|i| if i + 1 == count { stop } else { start + i as f64 * step }).collect())
    } else {
        let times = text
            .split(',')
            .map(|s| s.trim().parse::<f64>().map_err(|_| bad(&format!("'{}' is not a number", s.trim()))))
            .collect::<Result<Vec<f64>, String>>()?;
        check_times(&times).map_err(|e| bad(&e))?;
        Ok(times)
    }
}

/// Output times as every model takes them: finite and non-decreasing.
pub fn check_times(times: &[f64]) -> Result<(), String> {
    if let Some(t) = times.iter().find(|t| !t.is_finite()) {
        return Err(format!("every time must be a finite number (got {t:?})"));
    }
    if times.windows(2).any(|w| w[1] < w[0]) {
        return Err("times must be non-decreasing".into());
    }
    Ok(())
}

/// The values one simulation of a model with `spec` at `n_times` times writes (times × outputs, or one value per
/// output for a scalar model), checked against the memory budget before the buffer is allocated; `what` names
/// the times in the message.
pub fn check_output_size(what: &str, spec: &ModelSpec, n_times: usize) -> Result<(), String> {
    let what = format!("{what}: {n_times} times × {} outputs", spec.outputs.len());
    let per_output = if spec.output_kind == OutputKind::TimeSeries { n_times as f64 } else { 1.0 };
    check_allocation(&what, per_output * spec.outputs.len() as f64, 8.0)
}

impl Times {
    pub fn values(&self) -> Result<Vec<f64>, String> {
        match self {
            // An empty list would run nothing and report success.
            Times::List(v) if v.is_empty() => Err("the list is empty: give at least one value".into()),
            Times::List(v) => match v.iter().find(|t| !t.is_finite()) {
                Some(t) => Err(format!("every value must be a finite number (got {t:?})")),
                None => Ok(v.clone()),
            },
            Times::Range(s) => parse_times(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_like_linspace() {
        let t = parse_times("0:100:500").unwrap();
        assert_eq!(t.len(), 500);
        assert_eq!(t[1], 100.0 / 499.0);
        assert_eq!(t[499], 100.0);
        assert_eq!(parse_times("0, 1,2.5").unwrap(), vec![0.0, 1.0, 2.5]);
        assert!(parse_times("0:1").is_err());
        assert!(parse_times("1,0").is_err());
    }

    #[test]
    fn times_however_given_are_finite_non_decreasing_and_within_the_budget() {
        assert_eq!(check_times(&[0.0, 0.0, 1.5]), Ok(()));
        assert_eq!(check_times(&[]), Ok(()));
        assert_eq!(check_times(&[0.0, f64::NAN]), Err("every time must be a finite number (got NaN)".into()));
        assert_eq!(check_times(&[f64::NEG_INFINITY]), Err("every time must be a finite number (got -inf)".into()));
        assert_eq!(check_times(&[1.0, 0.5]), Err("times must be non-decreasing".into()));
        // The list form of `--times` says the same, with the flag's text.
        assert!(parse_times("1, 0.5").unwrap_err().contains("times must be non-decreasing"));

        let spec = |output_kind| ModelSpec {
            name: "m".into(),
            params: vec![],
            inputs: vec![],
            outputs: vec!["a".into(), "b".into()],
            output_kind,
        };
        let series = spec(OutputKind::TimeSeries);
        assert_eq!(check_output_size("--times 0:1:3", &series, 3), Ok(()));
        // A quarter of the address space in times (16 GiB of values on 32 bits already).
        let many = usize::MAX / 4;
        let e = check_output_size("--times 0:1:N", &series, many).unwrap_err();
        assert!(e.starts_with(&format!("--times 0:1:N: {many} times × 2 outputs would need about")), "{e}");
        // A scalar model writes one value per output whatever the times.
        assert_eq!(check_output_size("t", &spec(OutputKind::Scalar), many), Ok(()));
    }

    #[test]
    fn times_must_be_finite_and_fit_in_memory() {
        for text in ["0:inf:10", "nan:1:10", "0:nan:2", "0,nan", "inf"] {
            let e = parse_times(text).unwrap_err();
            assert!(e.starts_with(&format!("times '{text}': ")) && e.contains("finite"), "{e}");
        }
        let e = parse_times("0:1e9:1000000000").unwrap_err();
        assert!(e.contains("a count of 1000000000 would need about 14.9 GiB"), "{e}");
        assert_eq!(parse_times("0:1:1").unwrap(), [0.0]);
        assert!(parse_times("-1e308:1e308:3").unwrap_err().contains("the span stop − start overflows"));
        let nan_list = Times::List(vec![0.0, f64::NAN]).values().unwrap_err();
        assert_eq!(nan_list, "every value must be a finite number (got NaN)");
    }

    #[test]
    fn settings_out_of_range_are_located_at_their_key() {
        let text = "[model]\nkind = \"x\"\n[parameters]\n\"dec 1\" = { prior = { kind = \"normal\", mu = 0.0, sigma \
                    = -1.0 } }\n[fit]\nmax_iterations = 0\n[fit.cmaes]\nsigma0 = 1e308\nrestarts = { kind = \"ipop\", \
                    factor = 1e308 }\n[sample.mcmc]\nsteps = 10\n";
        let loaded = LoadedConfig::parse(Path::new("fit.toml"), text).unwrap();
        let error = |table: &[&str], key: &str| loaded.option_error(table, OptionError::new(key, "is wrong")).0;
        assert_eq!(error(&["fit"], "max_iterations"), "fit.toml:6:18: [fit] max_iterations is wrong");
        assert_eq!(error(&["fit", "cmaes"], "sigma0"), "fit.toml:8:10: [fit.cmaes] sigma0 is wrong");
        assert_eq!(error(&["fit", "cmaes"], "restarts.factor"), "fit.toml:9:38: [fit.cmaes] restarts.factor is wrong");
        assert_eq!(
            error(&["parameters", "dec 1", "prior"], "sigma"),
            "fit.toml:4:58: [parameters.\"dec 1\".prior] sigma is wrong"
        );
        // A default (not written) is placed at its table, or the file when the table is not written either.
        assert!(error(&["sample", "mcmc"], "burn_in").starts_with("fit.toml:10:"));
        assert_eq!(error(&["sample", "nested"], "walks"), "fit.toml:10:2: [sample.nested] walks is wrong");
        assert_eq!(error(&["output"], "dir"), "fit.toml: [output] dir is wrong");
    }

    #[test]
    fn plugin_options_must_be_finite_numbers() {
        let parse = |options: &str| {
            let text = format!("[model]\nkind = \"x\"\n[model.options]\n{options}\n");
            LoadedConfig::parse(Path::new("fit.toml"), &text).map(|_| ()).map_err(|e| e.0)
        };
        assert!(parse("rtol = 1e-6\nnested = { a = 1.0 }").is_ok());
        assert_eq!(
            parse("rtol = 1e-6\natol = nan").unwrap_err(),
            "fit.toml:5:8: [model.options] atol must be a finite number (got NaN)"
        );
        assert_eq!(
            parse("solver = { tol = -inf }").unwrap_err(),
            "fit.toml:4:18: [model.options.solver] tol must be a finite number (got -inf)"
        );
        assert!(parse("list = [1.0, inf]").unwrap_err().contains("list must hold finite numbers (got inf)"));
    }

    #[test]
    fn sample_section_and_priors_parse() {
        let text = "[model]\nkind = \"diffsl\"\n[parameters]\nbeta = { prior = { kind = \"normal\", mu = 0.4, sigma =                     0.1 } }\n[sample]\nalgorithm = \"mcmc\"\nsigma = \"fitted\"\nsigma_prior = { kind = \"uniform\",                     lower = 0.0, upper = 1.0 }\n[sample.mcmc]\nsteps = 10\nburn_in = 2\n";
        let config = toml::from_str::<Config>(text).unwrap();
        assert_eq!(config.sample.algorithm, SampleAlgorithm::Mcmc);
        assert!(matches!(config.sample.sigma, Some(NoiseSigma::Fitted(_))));
        assert_eq!(config.parameters["beta"].prior, Some(ParamPrior::Normal { mu: 0.4, sigma: 0.1 }));
        assert_eq!(config.sample.mcmc.steps, 10);
        let known = toml::from_str::<Config>("[model]\nkind = \"x\"\n[sample]\nsigma = 1\n").unwrap();
        assert_eq!(known.sample.sigma, Some(NoiseSigma::Known(1.0)));
        assert_eq!(known.sample.algorithm, SampleAlgorithm::Nested);
    }

    #[test]
    fn polish_is_a_switch_or_a_method() {
        let polish = |value: &str| {
            let text = format!("[model]\nkind = \"x\"\n[fit]\npolish = {value}\n");
            toml::from_str::<Config>(&text)
                .map(|c| c.fit.polish)
                .map_err(|e| toml_error(Path::new("f.toml"), &text, &e))
        };
        assert_eq!(polish("true"), Ok(Polish::Auto));
        assert_eq!(polish("false"), Ok(Polish::Off));
        assert_eq!(polish("\"nelder_mead\""), Ok(Polish::NelderMead));
        assert_eq!(polish("\"levenberg_marquardt\""), Ok(Polish::LevenbergMarquardt));
        assert_eq!(toml::from_str::<Config>("[model]\nkind = \"x\"\n").unwrap().fit.polish, Polish::Off);
        let e = polish("\"simplex\"").unwrap_err();
        assert!(e.starts_with("f.toml:4:") && e.contains("simplex") && e.contains("levenberg_marquardt"), "{e}");
        assert!(polish("1").is_err());
    }

    #[test]
    fn toml_errors_name_file_line_and_column() {
        let text = "[model]\nkind = \"diffsl\"\nbogus = 1\n";
        let e = toml::from_str::<Config>(text).unwrap_err();
        let m = toml_error(Path::new("fit.toml"), text, &e);
        assert!(m.starts_with("fit.toml:3:1:") && m.contains("bogus"), "{m}");
    }
}
