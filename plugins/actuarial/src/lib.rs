//! parfit plugin for actuarial projections: lifelib's savings model `CashValue_ME` (kind `cashvalue`) and its
//! term-life model `BasicTerm_ME` (kind `basicterm`), configured by data — model points, product spec,
//! mortality, surrender charges, discount curve, fund-return scenarios, premium rates — and named constants.
//!
//! Both kinds are projections (plugin ABI v3's projection entry point, [`PortfolioProjector`]): the host asks
//! for blocks of model points (0-based rows of the model point table) under scenario ids of the scenario table
//! (`basicterm` has the one scenario 1), and for any of the described result tables:
//!
//! - `pv` (a row per point and scenario): lifelib's `result_pv` row of the point;
//! - `result_cf` and `result_pols` (a row per month, summed over the block's points and scenarios): lifelib's
//!   portfolio cash flows and policy counts;
//! - `audit` (a row per point, scenario and month): every intermediate quantity of a point.
//!
//! The model point table is read by the plugin with the other tables, because its text columns (product, sex)
//! cannot cross the ABI as numbers and because only the plugin can check a row against the product and
//! mortality tables.
//!
//! [`ProjectionModel`] is the same engine as a core `Model` through the ABI's model entry point (one point and
//! scenario per case, its output chosen by [`Output`]): one point's values, for the crate's tests against
//! lifelib and for a `[model]` table or Python's `parfit.Model`. Projection runs never use it.

mod data;
mod engine;
mod model;
mod tables;

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, Weak};

use parfit_abi::{Entry, KindInfo, Plugin, PluginInfo};
use parfit_core::model::downcast_workspace;
use parfit_core::projection::{ProjectionSpec, Projector, ResultTable, Scope};
use parfit_core::{Model, ModelSpec, OutputKind, SimError, Workspace};
use serde::Deserialize;

pub use data::{Constants, Files, Kind, Point, Portfolio, Product};
pub use engine::{MONTHLY_COLUMNS, Month, PvSink, Sink, audit_columns, project, pv_columns, run_length};
pub use model::{ModelConfig, ModelProjector};
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

/// The projection configuration (JSON): [`Config`] without an output, since a block names its tables.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectionConfig {
    pub tables: Files,
    #[serde(default)]
    pub constants: BTreeMap<String, f64>,
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

/// The result tables of a projection, in the order [`PortfolioProjector`] describes them.
const PV: usize = 0;
const RESULT_CF: usize = 1;
const RESULT_POLS: usize = 2;
const AUDIT: usize = 3;
/// `result_cf`'s columns are the first ones of [`MONTHLY_COLUMNS`], `result_pols`'s the rest.
const CF_COLUMNS: usize = 5;

/// A portfolio's projection through the ABI's projection entry point: blocks of points in, the tables `pv`,
/// `result_cf`, `result_pols` and `audit` out.
#[derive(Debug)]
pub struct PortfolioProjector {
    portfolio: Arc<Portfolio>,
    spec: ProjectionSpec,
}

impl PortfolioProjector {
    /// Read and check the tables of `config` for a projection of `kind`.
    pub fn new(kind: Kind, config: ProjectionConfig) -> Result<PortfolioProjector, String> {
        let portfolio = cached_portfolio(kind, &config.tables, &config.constants)?;
        Ok(PortfolioProjector::with_portfolio(portfolio))
    }

    pub fn with_portfolio(portfolio: Arc<Portfolio>) -> PortfolioProjector {
        let kind = portfolio.kind;
        let table = |name: &str, scope, columns: &[&str]| ResultTable {
            name: name.into(),
            scope,
            columns: columns.iter().map(|c| c.to_string()).collect(),
        };
        let spec = ProjectionSpec {
            name: kind_name(kind).to_string(),
            points: portfolio.points.len(),
            horizon: portfolio.horizon,
            scenarios: (0..portfolio.scenarios as i64).map(|k| portfolio.first_scenario + k).collect(),
            point_months: portfolio.points.iter().map(|p| run_length(&portfolio, p) as u64).sum(),
            tables: vec![
                table("pv", Scope::Point, pv_columns(kind)),
                table("result_cf", Scope::Month, &MONTHLY_COLUMNS[..CF_COLUMNS]),
                table("result_pols", Scope::Month, &MONTHLY_COLUMNS[CF_COLUMNS..]),
                table("audit", Scope::PointMonth, &audit_columns(kind)),
            ],
        };
        PortfolioProjector { portfolio, spec }
    }
}

impl Projector for PortfolioProjector {
    fn spec(&self) -> &ProjectionSpec {
        &self.spec
    }

    fn workspace(&self) -> Workspace {
        Box::new(Scratch { rows: Vec::new() })
    }

    fn project(
        &self,
        ws: &mut Workspace,
        first: usize,
        count: usize,
        scenarios: &[i64],
        mask: u64,
        out: &mut [f64],
    ) -> Result<(), SimError> {
        let (pf, spec) = (&self.portfolio, &self.spec);
        let end = first.checked_add(count).filter(|&end| end <= pf.points.len()).ok_or_else(|| {
            SimError::BadInput(format!(
                "points {first}..{first}+{count} are not rows of the model point table (0..{})",
                pf.points.len()
            ))
        })?;
        let returns = scenarios
            .iter()
            .map(|&s| {
                pf.scenario_returns(s).ok_or_else(|| {
                    SimError::BadInput(format!(
                        "scenario {s} is not in the scenario table ({}..={})",
                        pf.first_scenario,
                        pf.first_scenario + pf.scenarios as i64 - 1
                    ))
                })
            })
            .collect::<Result<Vec<&[f64]>, SimError>>()?;
        let n_scen = scenarios.len();
        let len = |t: usize| if mask >> t & 1 == 1 { spec.table_len(t, count, n_scen) } else { Some(0) };
        let lens = [len(PV), len(RESULT_CF), len(RESULT_POLS), len(AUDIT)];
        let expected = spec.block_len(mask, count, n_scen);
        let ([Some(pv_len), Some(cf_len), Some(pols_len), Some(_)], Some(n)) = (lens, expected) else {
            return Err(SimError::BadInput(format!("mask {mask:#x} names no table of {} (0..4)", spec.name)));
        };
        if out.len() != n {
            return Err(SimError::BadInput(format!("output buffer has length {}, expected {n}", out.len())));
        }
        let (pv_out, rest) = out.split_at_mut(pv_len);
        let (cf_out, rest) = rest.split_at_mut(cf_len);
        let (pols_out, audit_out) = rest.split_at_mut(pols_len);
        let monthly = cf_len + pols_len > 0;
        let (n_pv, n_audit, n_m) = (pv_columns(pf.kind).len(), spec.tables[AUDIT].columns.len(), MONTHLY_COLUMNS.len());
        let horizon = pf.horizon;
        let scratch = downcast_workspace::<Scratch>(ws, &spec.name)?;
        let mut sums = vec![0.0; if monthly { horizon * n_m } else { 0 }];
        for (j, point) in pf.points[first..end].iter().enumerate() {
            for (k, returns) in returns.iter().enumerate() {
                let case = j * n_scen + k;
                if !pv_out.is_empty() {
                    let mut pv = PvSink::default();
                    project(pf, point, returns, run_length(pf, point), &mut pv);
                    pv.write(pf.kind, &mut pv_out[case * n_pv..(case + 1) * n_pv]);
                }
                if monthly {
                    scratch.rows.clear();
                    scratch.rows.resize(horizon * n_m, 0.0);
                    let run = run_length(pf, point).min(horizon);
                    project(pf, point, returns, run, &mut engine::MonthlySink { rows: &mut scratch.rows });
                    sums.iter_mut().zip(&scratch.rows).for_each(|(a, b)| *a += b);
                }
                if !audit_out.is_empty() {
                    let rows = &mut audit_out[case * horizon * n_audit..(case + 1) * horizon * n_audit];
                    rows.fill(0.0);
                    project(
                        pf,
                        point,
                        returns,
                        horizon,
                        &mut engine::AuditSink { kind: pf.kind, width: n_audit, rows },
                    );
                }
            }
        }
        for (t, row) in sums.chunks_exact(n_m).enumerate() {
            if !cf_out.is_empty() {
                cf_out[t * CF_COLUMNS..(t + 1) * CF_COLUMNS].copy_from_slice(&row[..CF_COLUMNS]);
            }
            if !pols_out.is_empty() {
                let w = n_m - CF_COLUMNS;
                pols_out[t * w..(t + 1) * w].copy_from_slice(&row[CF_COLUMNS..]);
            }
        }
        Ok(())
    }
}

fn parse_kind(kind: &str) -> Result<Kind, String> {
    match kind {
        "cashvalue" => Ok(Kind::CashValue),
        "basicterm" => Ok(Kind::BasicTerm),
        other => Err(format!("the actuarial plugin has no model kind '{other}' (cashvalue, basicterm)")),
    }
}

/// The plugin as parfit loads it.
pub struct ActuarialPlugin;

impl Plugin for ActuarialPlugin {
    fn info() -> PluginInfo {
        PluginInfo {
            name: "actuarial".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            kinds: vec![
                KindInfo {
                    kind: "cashvalue".into(),
                    extensions: vec![],
                    description: "lifelib savings CashValue_ME: cash-value projection of model points (tables: \
                                  model_points, product_spec, mortality, surrender_charge, discount, scenarios)"
                        .into(),
                    entry: Entry::Projection,
                },
                KindInfo {
                    kind: "projection".into(),
                    extensions: vec!["prj".into()],
                    description: "a model file in the projection language (LANGUAGE.md): its declared tables, \
                                  parameters and outputs"
                        .into(),
                    entry: Entry::Projection,
                },
                KindInfo {
                    kind: "basicterm".into(),
                    extensions: vec![],
                    description: "lifelib basiclife BasicTerm_ME: term-life projection of model points (tables: \
                                  model_points, premium, mortality, discount)"
                        .into(),
                    entry: Entry::Projection,
                },
            ],
        }
    }

    /// One point under one scenario as a core model ([`ProjectionModel`]; Python's `parfit.Model` and a
    /// `[model]` table reach it). Projections never use it: they go through [`Plugin::create_projection`].
    fn create(kind: &str, config_json: &str) -> Result<Box<dyn Model>, String> {
        let kind = parse_kind(kind)?;
        let config: Config =
            serde_json::from_str(config_json).map_err(|e| format!("actuarial model configuration: {e}"))?;
        Ok(Box::new(ProjectionModel::new(kind, config)?))
    }

    fn create_projection(kind: &str, config_json: &str) -> Result<Box<dyn Projector>, String> {
        if kind == "projection" {
            let config: ModelConfig =
                serde_json::from_str(config_json).map_err(|e| format!("actuarial projection configuration: {e}"))?;
            return Ok(Box::new(ModelProjector::new(config)?));
        }
        let kind = parse_kind(kind)?;
        let config: ProjectionConfig =
            serde_json::from_str(config_json).map_err(|e| format!("actuarial projection configuration: {e}"))?;
        Ok(Box::new(PortfolioProjector::new(kind, config)?))
    }
}

parfit_abi::export_plugin!(ActuarialPlugin);
