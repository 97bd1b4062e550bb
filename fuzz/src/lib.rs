//! What the fuzz targets share: the example files a fuzzed configuration may name, and a stand-in model for the
//! configuration targets (which fuzz the configuration, not a model).

use std::path::Path;
use std::sync::OnceLock;

use parfit_app::{InputError, Loader, input};
use parfit_core::model::downcast_workspace;
use parfit_core::paths::{PathRunner, PathsSpec};
use parfit_core::{Model, ModelSpec, OutputKind, ParamSpec, SimError, Workspace};

/// The example files a configuration may name, by file name, and the most rows of a table a target reads (a
/// case table's 3,137 counties would make every execution parse them all).
const FILES: [(&str, &str); 4] = [
    ("data.csv", include_str!("../../examples/lotka_volterra/data.csv")),
    ("Males_by_decade_and_county.csv", include_str!("../../examples/counties/Males_by_decade_and_county.csv")),
    ("lotka_volterra.ds", include_str!("../../examples/lotka_volterra/lotka_volterra.ds")),
    ("Aging_Chain.mdl", include_str!("../../examples/counties/Aging_Chain.mdl")),
];
const MAX_LINES: usize = 40;

/// The first `lines` lines of `text`.
pub fn head(text: &str, lines: usize) -> &str {
    match text.match_indices('\n').nth(lines.saturating_sub(1)) {
        Some((end, _)) => &text[..=end],
        None => text,
    }
}

/// Serves the example files by file name, wherever a configuration says they are; `extra` (a fuzzed text)
/// answers for every other name.
#[derive(Debug, Default)]
pub struct Examples<'a> {
    pub extra: Option<&'a str>,
}

impl Loader for Examples<'_> {
    fn read(&self, path: &Path) -> Result<String, InputError> {
        static HEADS: OnceLock<Vec<(&str, &str)>> = OnceLock::new();
        let heads = HEADS.get_or_init(|| FILES.iter().map(|&(name, text)| (name, head(text, MAX_LINES))).collect());
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        match (heads.iter().find(|(n, _)| *n == name), self.extra) {
            (Some((_, text)), _) => Ok(text.to_string()),
            (None, Some(text)) => Ok(text.to_string()),
            (None, None) => Err(input(format!("{}: no such file", path.display()))),
        }
    }
}

/// A cheap, deterministic model with the names a configuration uses, so that a configuration's own checks and
/// the runs it sets up (optimisers, Monte Carlo tasks) execute without a plugin. Output `j` at time `t` is
/// `(j + 1)·(1 + t/100)·(1 + Σ params + Σ finite inputs)`.
#[derive(Debug)]
pub struct StandIn {
    spec: ModelSpec,
}

impl StandIn {
    pub fn new(params: Vec<String>, inputs: Vec<String>, outputs: Vec<String>) -> StandIn {
        let dedup = |mut v: Vec<String>| {
            v.sort();
            v.dedup();
            v
        };
        let spec = ModelSpec {
            name: "stand-in".into(),
            params: dedup(params).into_iter().map(|n| ParamSpec::new(n, 1.0)).collect(),
            inputs: dedup(inputs),
            outputs: dedup(outputs),
            output_kind: OutputKind::TimeSeries,
        };
        StandIn { spec }
    }
}

impl Model for StandIn {
    fn spec(&self) -> &ModelSpec {
        &self.spec
    }

    fn workspace(&self) -> Workspace {
        Box::new(())
    }

    fn simulate(
        &self,
        ws: &mut Workspace,
        params: &[f64],
        inputs: &[f64],
        times: &[f64],
        out: &mut [f64],
    ) -> Result<(), SimError> {
        downcast_workspace::<()>(ws, &self.spec.name)?;
        let spec = &self.spec;
        if params.len() != spec.params.len()
            || inputs.len() != spec.inputs.len()
            || out.len() != spec.output_len(times.len())
        {
            return Err(SimError::BadInput("stand-in: wrong argument lengths".into()));
        }
        let level = 1.0 + params.iter().sum::<f64>() + inputs.iter().filter(|x| x.is_finite()).sum::<f64>();
        let n_out = spec.outputs.len();
        for (row, &t) in out.chunks_mut(n_out.max(1)).zip(times) {
            for (j, o) in row.iter_mut().enumerate() {
                *o = (j + 1) as f64 * (1.0 + t / 100.0) * level;
            }
        }
        Ok(())
    }
}

/// Monte Carlo paths with the names a `[montecarlo]` configuration uses, so its plan and tasks run without a
/// plugin. Path `p`'s output `j` is `(j + 1)·(1 + p/100)·(1 + Σ params + seed mod 7 + periods mod 5)`.
#[derive(Debug)]
pub struct StandInPaths {
    spec: PathsSpec,
}

impl StandInPaths {
    pub fn new(params: Vec<String>, outputs: Vec<String>) -> StandInPaths {
        let model = StandIn::new(params, vec![], outputs);
        let ModelSpec { name, params, outputs, .. } = model.spec().clone();
        StandInPaths { spec: PathsSpec { name, params, outputs } }
    }
}

impl PathRunner for StandInPaths {
    fn spec(&self) -> &PathsSpec {
        &self.spec
    }

    fn workspace(&self) -> Workspace {
        Box::new(())
    }

    fn run(
        &self,
        ws: &mut Workspace,
        params: &[f64],
        seed: u64,
        periods: u64,
        first: u64,
        count: usize,
        out: &mut [f64],
    ) -> Result<(), SimError> {
        downcast_workspace::<()>(ws, &self.spec.name)?;
        let n_out = self.spec.outputs.len();
        if params.len() != self.spec.params.len() || Some(out.len()) != self.spec.block_len(count) {
            return Err(SimError::BadInput("stand-in: wrong argument lengths".into()));
        }
        let level = 1.0 + params.iter().sum::<f64>() + (seed % 7) as f64 + (periods % 5) as f64;
        for (k, row) in out.chunks_mut(n_out.max(1)).enumerate() {
            let p = first.saturating_add(k as u64) as f64;
            for (j, o) in row.iter_mut().enumerate() {
                *o = (j + 1) as f64 * (1.0 + p / 100.0) * level;
            }
        }
        Ok(())
    }
}
