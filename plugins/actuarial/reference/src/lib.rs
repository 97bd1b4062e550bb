//! Dev-only (publish = false): the hand-written monthly engine of lifelib's `savings.CashValue_ME` and
//! `basiclife.BasicTerm_ME` that the actuarial plugin ran before its models became model files
//! (`plugins/actuarial/models/*.prj`). It stays as their peer: `plugins/actuarial/tests/language.rs` holds the
//! model files to its bits on every point and month and times both, and `tests/lifelib.rs` holds it to lifelib's
//! own numbers. Nothing a user runs links it.
//!
//! [`ProjectionModel`] is the engine as a core `Model` (one point and scenario per case, its output chosen by
//! [`Output`]).

mod data;
mod engine;
mod tables;

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, Weak};

use parfit_core::model::downcast_workspace;
use parfit_core::{Model, ModelSpec, OutputKind, SimError, Workspace};
use serde::Deserialize;

pub use data::{Constants, Files, Kind, Point, Portfolio, Product};
pub use engine::{MONTHLY_COLUMNS, Month, PvSink, Sink, audit_columns, project, pv_columns, run_length};
pub use tables::TextFile;

/// What one simulation of a case returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Output {
    Pv,
    Monthly,
    Audit,
    Summary,
}

/// The plugin configuration (JSON).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The tables by role, each as `{ "name": file name, "text": CSV text }`.
    pub tables: Files,
    /// Overrides of the named constants.
    #[serde(default)]
    pub constants: BTreeMap<String, f64>,
    #[serde(default = "default_output")]
    pub output: Output,
}

fn default_output() -> Output {
    Output::Pv
}

/// The summary outputs.
pub const SUMMARY_COLUMNS: [&str; 5] = ["points", "horizon_months", "scenarios", "first_scenario", "point_months"];

/// A projection model: the portfolio's data and what a simulation returns.
#[derive(Debug)]
pub struct ProjectionModel {
    portfolio: Arc<Portfolio>,
    output: Output,
    spec: ModelSpec,
}

/// Per-thread scratch: the time-series rows of one projection.
struct Scratch {
    rows: Vec<f64>,
}

impl ProjectionModel {
    /// Read and check the tables of `config` for a model of `kind`.
    pub fn new(kind: Kind, config: Config) -> Result<ProjectionModel, String> {
        let portfolio = cached_portfolio(kind, &config.tables, &config.constants)?;
        Ok(ProjectionModel::with_portfolio(portfolio, config.output))
    }

    /// A model over already-read data (several outputs can share one portfolio).
    pub fn with_portfolio(portfolio: Arc<Portfolio>, output: Output) -> ProjectionModel {
        let kind = portfolio.kind;
        let outputs: Vec<&str> = match output {
            Output::Pv => pv_columns(kind).to_vec(),
            Output::Monthly => MONTHLY_COLUMNS.to_vec(),
            Output::Audit => audit_columns(kind),
            Output::Summary => SUMMARY_COLUMNS.to_vec(),
        };
        let output_kind = match output {
            Output::Pv | Output::Summary => OutputKind::Scalar,
            Output::Monthly | Output::Audit => OutputKind::TimeSeries,
        };
        let spec = ModelSpec {
            name: kind_name(kind).to_string(),
            params: vec![],
            inputs: vec!["point".into(), "scenario".into()],
            outputs: outputs.into_iter().map(String::from).collect(),
            output_kind,
        };
        ProjectionModel { portfolio, output, spec }
    }

    pub fn portfolio(&self) -> &Arc<Portfolio> {
        &self.portfolio
    }

    /// The point and scenario returns a case's inputs name, checked.
    fn case(&self, inputs: &[f64]) -> Result<(&Point, &[f64]), SimError> {
        let pf = &self.portfolio;
        let [point, scenario] = inputs else {
            return Err(SimError::BadInput(format!("expected 2 inputs (point, scenario), got {}", inputs.len())));
        };
        if !(point.fract() == 0.0 && *point >= 0.0 && (*point as usize) < pf.points.len()) {
            return Err(SimError::BadInput(format!(
                "point {point} is not a row of the model point table (0..{})",
                pf.points.len()
            )));
        }
        let returns =
            (scenario.fract() == 0.0).then(|| pf.scenario_returns(*scenario as i64)).flatten().ok_or_else(|| {
                SimError::BadInput(format!(
                    "scenario {scenario} is not in the scenario table ({}..={})",
                    pf.first_scenario,
                    pf.first_scenario + pf.scenarios as i64 - 1
                ))
            })?;
        Ok((&pf.points[*point as usize], returns))
    }
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::CashValue => "cashvalue",
        Kind::BasicTerm => "basicterm",
    }
}

/// Models made from the same tables share one read of them: a runner makes a `summary`, a `pv` and perhaps a
/// `monthly` and an `audit` model from one configuration, and the model point table may have 100,000 rows.
fn cached_portfolio(kind: Kind, tables: &Files, constants: &BTreeMap<String, f64>) -> Result<Arc<Portfolio>, String> {
    static LAST: Mutex<Option<(u64, Weak<Portfolio>)>> = Mutex::new(None);
    let mut h = std::collections::hash_map::DefaultHasher::new();
    kind_name(kind).hash(&mut h);
    let t = tables;
    for f in
        [&t.model_points, &t.product_spec, &t.mortality, &t.surrender_charge, &t.discount, &t.scenarios, &t.premium]
    {
        f.as_ref().map(|f| (&f.name, &f.text)).hash(&mut h);
    }
    for (k, v) in constants {
        (k, v.to_bits()).hash(&mut h);
    }
    let key = h.finish();
    let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((k, weak)) = last.as_ref()
        && *k == key
        && let Some(pf) = weak.upgrade()
    {
        return Ok(pf);
    }
    let overrides = constants;
    let mut constants = Constants::defaults(kind);
    constants.apply(kind, overrides)?;
    let pf = Arc::new(Portfolio::read(kind, tables, constants)?);
    *last = Some((key, Arc::downgrade(&pf)));
    Ok(pf)
}

impl Model for ProjectionModel {
    fn spec(&self) -> &ModelSpec {
        &self.spec
    }

    fn workspace(&self) -> Workspace {
        Box::new(Scratch { rows: Vec::new() })
    }

    fn simulate(
        &self,
        ws: &mut Workspace,
        _params: &[f64],
        inputs: &[f64],
        times: &[f64],
        out: &mut [f64],
    ) -> Result<(), SimError> {
        let pf = &self.portfolio;
        let width = self.spec.outputs.len();
        if out.len() != self.spec.output_len(times.len()) {
            return Err(SimError::BadInput(format!(
                "output buffer has length {}, expected {}",
                out.len(),
                self.spec.output_len(times.len())
            )));
        }
        if self.output == Output::Summary {
            out.copy_from_slice(&[
                pf.points.len() as f64,
                pf.horizon as f64,
                pf.scenarios as f64,
                pf.first_scenario as f64,
                pf.points.iter().map(|p| run_length(pf, p) as f64).sum(),
            ]);
            return Ok(());
        }
        let (point, returns) = self.case(inputs)?;
        if self.output == Output::Pv {
            let mut pv = PvSink::default();
            project(pf, point, returns, run_length(pf, point), &mut pv);
            pv.write(pf.kind, out);
            return Ok(());
        }
        // Time series: whole months 0 ≤ t < horizon, non-decreasing.
        let mut months = 0usize;
        for &t in times {
            if !(t.fract() == 0.0 && t >= 0.0 && t < pf.horizon as f64 && t as usize + 1 >= months) {
                return Err(SimError::BadInput(format!(
                    "time {t} is not a whole month in 0..{} (times must be non-decreasing)",
                    pf.horizon
                )));
            }
            months = months.max(t as usize + 1);
        }
        let scratch = downcast_workspace::<Scratch>(ws, &self.spec.name)?;
        scratch.rows.clear();
        scratch.rows.resize(months * width, 0.0);
        match self.output {
            Output::Monthly => {
                let run = run_length(pf, point).min(months);
                project(pf, point, returns, run, &mut engine::MonthlySink { rows: &mut scratch.rows });
            }
            _ => project(
                pf,
                point,
                returns,
                months,
                &mut engine::AuditSink { kind: pf.kind, width, rows: &mut scratch.rows },
            ),
        }
        for (row, &t) in out.chunks_exact_mut(width).zip(times) {
            let t = t as usize;
            row.copy_from_slice(&scratch.rows[t * width..(t + 1) * width]);
        }
        Ok(())
    }
}
