//! parfit plugin for actuarial projections: lifelib's savings model `CashValue_ME` (kind `cashvalue`) and its
//! term-life model `BasicTerm_ME` (kind `basicterm`), configured by data — model points, product spec,
//! mortality, surrender charges, discount curve, fund-return scenarios, premium rates — and named constants.
//!
//! Both kinds are projections (plugin ABI v3's projection entry point) of the bundled model files
//! `models/cashvalue_me.prj` and `models/basicterm_me.prj` (the projection language, LANGUAGE.md), and the kind
//! `projection` (files `.prj`) is any model file ([`ModelProjector`]): the host asks for blocks of model points
//! (0-based rows of the model point table) under scenario ids (the model's `scenarios` key; `basicterm` has the
//! one scenario 1), and for any of the tables the model's `output` declarations describe:
//!
//! - `pv` (a row per point and scenario): lifelib's `result_pv` row of the point;
//! - `result_cf` and `result_pols` (a row per month, summed over the block's points and scenarios): lifelib's
//!   portfolio cash flows and policy counts;
//! - `audit` (a row per point, scenario and month): every intermediate quantity of a point.
//!
//! The model point table is read by the plugin with the other tables, because its text columns (product, sex)
//! cannot cross the ABI as numbers and because the model's checks of each row read the other tables.
//!
//! [`ProjectionModel`] is the hand-written engine (`engine.rs`) as a core `Model` through the ABI's model entry
//! point (one point and scenario per case, its output chosen by [`Output`]): one point's values, for a `[model]`
//! table or Python's `parfit.Model`, and the reference the model files are held to (`tests/language.rs`).

mod data;
mod engine;
mod model;
mod tables;

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, Weak};

use parfit_abi::{Entry, KindInfo, Plugin, PluginInfo};
use parfit_core::model::downcast_workspace;
use parfit_core::projection::Projector;
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

/// The bundled model files: the kinds `cashvalue` and `basicterm` are these models over tables given by role.
const CASHVALUE_ME: &str = include_str!("../models/cashvalue_me.prj");
const BASICTERM_ME: &str = include_str!("../models/basicterm_me.prj");

/// A kind's projection as its bundled model file: the tables by role renamed to the names the model declares,
/// the constants checked against their ranges, and (CashValue) the mortality table's last age, lifelib's
/// `mort_table_last_age`, taken from the table.
fn bundled_projection(kind: Kind, config: ProjectionConfig) -> Result<ModelProjector, String> {
    let ProjectionConfig { tables: files, constants } = config;
    // The same checks of the constants as the engine's, with the same messages.
    Constants::defaults(kind).apply(kind, &constants)?;
    let (file, text, roles): (&str, &str, &[(&str, &str)]) = match kind {
        Kind::CashValue => (
            "cashvalue_me.prj",
            CASHVALUE_ME,
            &[
                ("product_spec", "product"),
                ("mortality", "mort"),
                ("surrender_charge", "surr_charge_table"),
                ("discount", "disc_rate_ann"),
                ("scenarios", "std_norm_rand"),
            ],
        ),
        Kind::BasicTerm => (
            "basicterm_me.prj",
            BASICTERM_ME,
            &[("premium", "premium_table"), ("mortality", "mort"), ("discount", "disc_rate_ann")],
        ),
    };
    let given = [
        ("model_points", files.model_points),
        ("product_spec", files.product_spec),
        ("mortality", files.mortality),
        ("surrender_charge", files.surrender_charge),
        ("discount", files.discount),
        ("scenarios", files.scenarios),
        ("premium", files.premium),
    ];
    let mut tables = BTreeMap::new();
    for (role, f) in given {
        let name =
            if role == "model_points" { Some("model_points") } else { roles.iter().find(|r| r.0 == role).map(|r| r.1) };
        match (name, f) {
            (Some(name), Some(f)) => {
                tables.insert(name.to_string(), f);
            }
            (Some(_), None) => return Err(format!("tables: the {kind:?} model needs the '{role}' table")),
            (None, Some(f)) => {
                return Err(format!("tables: the {kind:?} model does not use a '{role}' table ({})", f.name));
            }
            (None, None) => {}
        }
    }
    let mut params: BTreeMap<String, f64> = constants;
    if kind == Kind::CashValue
        && let Some(mort) = tables.get("mort")
    {
        params.insert("mort_table_last_age".into(), mortality_last_age(text, mort)?);
    }
    let model = TextFile { name: file.into(), text: text.into() };
    Ok(ModelProjector::new(ModelConfig { model, tables, constants: params })?.rename(kind_name(kind)))
}

/// lifelib's `mort_table_last_age`: the first age whose rates are all 1, else the table's last age.
fn mortality_last_age(model: &str, mort: &TextFile) -> Result<f64, String> {
    use parfit_expr::projection::{ColumnData, Key, read_table, table_declarations};
    let decls = table_declarations("model", model)?;
    let decl = decls.iter().find(|d| d.name == "mort").ok_or("the bundled model declares no 'mort' table")?;
    let table = read_table(decl, &mort.name, &mort.text)?;
    let (Some((_, Key::Ints { values: ages, .. })), Some((_, ColumnData::Numbers(rates)))) =
        (table.keys.first(), table.columns.first())
    else {
        return Err(format!("{}: the mortality table is not ages by policy years", mort.name));
    };
    let cols = rates.len() / ages.len().max(1);
    let all_one = |a: usize| rates.get(a * cols..(a + 1) * cols).is_some_and(|r| r.iter().all(|&q| q == 1.0));
    let last = (0..ages.len()).find(|&a| all_one(a)).or(ages.len().checked_sub(1));
    last.and_then(|a| ages.get(a)).map(|&a| a as f64).ok_or_else(|| format!("{}: no ages", mort.name))
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
        Ok(Box::new(bundled_projection(kind, config)?))
    }
}

parfit_abi::export_plugin!(ActuarialPlugin);
