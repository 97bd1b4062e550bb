//! The TOML configuration of `parfit fit`, `fit-many`, `sample` and `run`, parsed with file-named errors.
//!
//! Relative paths in a configuration are relative to the configuration file's directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use parfit_core::optimise::{
    CmaesOptions, DifferentialEvolutionOptions, LBfgsBOptions, LevenbergMarquardtOptions, NelderMeadOptions,
};
use parfit_core::sample::{EnsembleOptions, NestedOptions, NoiseSigma, ParamPrior};
use serde::Deserialize;

use crate::{Loader, Result as InputResult, input};

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
        Ok(LoadedConfig { path: path.to_path_buf(), config, spread: None })
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
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.chars().rev().take_while(|&c| c != '\n').count() + 1;
            format!("{}:{line}:{column}: {message}", path.display())
        }
        None => format!("{}: {message}", path.display()),
    }
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
        if count == 0 || start.is_nan() || stop.is_nan() || stop < start {
            return Err(bad("need a count of at least 1 and start ≤ stop"));
        }
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
        if times.windows(2).any(|w| w[1] < w[0]) {
            return Err(bad("times must be non-decreasing"));
        }
        Ok(times)
    }
}

impl Times {
    pub fn values(&self) -> Result<Vec<f64>, String> {
        match self {
            Times::List(v) => Ok(v.clone()),
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
