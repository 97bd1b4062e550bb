//! Policy projections (a configuration with a `[projection]` table): every model point of a table projected by a
//! plugin's projection (ABI v3's projection entry point, [`Projector`]; the actuarial plugin's `cashvalue` /
//! `basicterm`), in parallel over blocks of points, with per-point present values (the projection's one
//! `point`-scoped table), portfolio totals per scenario and their mean, optional monthly portfolio tables (its
//! `month`-scoped tables, each written as `<name>.csv`), and one point's monthly audit (its `point_month` table).
//! `parfit run`, the Python package and the browser façade run them through this module; the caller reads the
//! files (through a [`Loader`]) and makes the plugin's projection.
//!
//! Memory stays bounded whatever the number of points: points are projected in waves of fixed-size blocks; each
//! block sums its points' monthly rows, blocks are folded in order and per-point rows go to a callback, so no
//! points × months matrix is ever held. Block boundaries do not depend on the thread or process count, and every
//! sum runs in a fixed order, so results are bit-identical wherever the blocks ran (see [`crate::dispatch`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use parfit_core::parallel::Pool;
use parfit_core::projection::{Projector, Scope};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::config::{locate, toml_error};
use crate::dispatch::{Dispatch, Wire, put_f64s, take_f64s, take_u64};
use crate::{Loader, Result, RunError, input};

/// Points per block: the unit of parallel work and of the fixed-order monthly sums.
pub const BLOCK: usize = 64;
/// Blocks per wave and process: what is held in memory at once.
const WAVE_BLOCKS: usize = 64;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectConfig {
    pub projection: ProjectionSection,
    #[serde(default)]
    pub output: OutputSection,
    pub threads: Option<usize>,
    /// The configuration's text, so errors found after parsing are placed at their key.
    #[serde(skip)]
    pub text: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectionSection {
    /// Model kind, e.g. "cashvalue" or "basicterm"; with `model`, the kind reading the file's extension.
    pub kind: Option<String>,
    /// A model file (e.g. `savings.prj`, the actuarial plugin's projection language), read like the tables and
    /// given to the plugin with them.
    pub model: Option<PathBuf>,
    /// Plugin name, when several offer the kind.
    pub plugin: Option<String>,
    /// The model point table (CSV, or gzip-compressed CSV ending in `.gz` where the loader gunzips); its first
    /// column is the point id.
    pub model_points: PathBuf,
    /// Table role → file (see the plugin's README for the roles a kind needs; a model file names its own), or a
    /// table made by a generator (numpy's normal draws).
    #[serde(default)]
    pub tables: BTreeMap<String, TableSource>,
    /// Overrides of the model's named constants.
    #[serde(default)]
    pub constants: BTreeMap<String, f64>,
    /// "default" (the table's first scenario, lifelib's scen_id 1), "all", or a list of scenario ids.
    #[serde(default)]
    pub scenarios: Scenarios,
    /// Also sum the monthly portfolio cash flows and policy counts.
    #[serde(default)]
    pub monthly: bool,
    /// Id (first-column value) of a point whose every monthly quantity is reported.
    pub audit_point: Option<toml::Value>,
}

/// Where a table comes from: a file (`mort = "mort_table.csv"`) or a generator
/// (`std_norm_rand = { generate = "numpy.standard_normal", seed = 1234, size = [10000, 242], start = [1, 0] }`),
/// whose keys are checked with the rest of the configuration.
#[derive(Debug, Clone)]
pub enum TableSource {
    File(PathBuf),
    Generated(toml::Table),
}

impl<'de> Deserialize<'de> for TableSource {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        match toml::Value::deserialize(d)? {
            toml::Value::String(s) => Ok(TableSource::File(s.into())),
            toml::Value::Table(t) => Ok(TableSource::Generated(t)),
            other => Err(serde::de::Error::custom(format!(
                "a table is a file name (\"mort_table.csv\") or a generator ({{ generate = \"{NUMPY_NORMAL}\", \
                 seed = …, size = […] }}), not {}",
                other.type_str()
            ))),
        }
    }
}

/// The generator of numpy's standard normal draws (`parfit_core::numpy_rng`).
pub const NUMPY_NORMAL: &str = "numpy.standard_normal";

/// A generated table's request checked key by key, placed at `file:line:column`: the JSON the plugin reads
/// (`{ name, numpy_standard_normal: { seed, size, start } }`, `name` the request's place).
fn generated_table(path: &Path, text: &str, role: &str, spec: &toml::Table) -> Result<Value> {
    let at = |key: &str| locate(path, text, &["projection", "tables", role, key]);
    let whole = |key: &str, v: &toml::Value, min: i64| -> Result<i64> {
        match v.as_integer() {
            Some(i) if i >= min => Ok(i),
            _ => {
                let from = if min == i64::MIN { String::new() } else { format!(" from {min} up") };
                Err(input(format!(
                    "{}: [projection.tables] {role}: {key} must be a whole number{from}, not {v}",
                    at(key)
                )))
            }
        }
    };
    let list = |key: &str, min: i64| -> Result<Option<Vec<i64>>> {
        let Some(v) = spec.get(key) else { return Ok(None) };
        let items = v.as_array().filter(|a| !a.is_empty()).ok_or_else(|| {
            input(format!("{}: [projection.tables] {role}: {key} must be a list of whole numbers, not {v}", at(key)))
        })?;
        items.iter().map(|i| whole(key, i, min)).collect::<Result<Vec<_>>>().map(Some)
    };
    for key in spec.keys() {
        if !["generate", "seed", "size", "start"].contains(&key.as_str()) {
            return Err(input(format!(
                "{}: [projection.tables] {role}: unknown key '{key}' (a generated table has generate, seed, size and \
                 start)",
                at(key)
            )));
        }
    }
    match spec.get("generate") {
        Some(toml::Value::String(g)) if g == NUMPY_NORMAL => {}
        Some(g) => {
            return Err(input(format!(
                "{}: [projection.tables] {role}: generate = {g}: the generator is \"{NUMPY_NORMAL}\" (numpy's \
                 default_rng(seed).standard_normal(size))",
                at("generate")
            )));
        }
        None => {
            return Err(input(format!(
                "{}: [projection.tables] {role}: a generated table needs generate = \"{NUMPY_NORMAL}\"",
                locate(path, text, &["projection", "tables", role])
            )));
        }
    }
    let needs = |key: &str| {
        input(format!(
            "{}: [projection.tables] {role}: {NUMPY_NORMAL} needs {key}",
            locate(path, text, &["projection", "tables", role])
        ))
    };
    let seed = whole("seed", spec.get("seed").ok_or_else(|| needs("seed"))?, 0)?;
    let size = list("size", 1)?.ok_or_else(|| needs("size (one extent per key of the table, e.g. [10000, 242])"))?;
    let start = list("start", i64::MIN)?.unwrap_or_else(|| vec![0; size.len()]);
    if start.len() != size.len() {
        return Err(input(format!(
            "{}: [projection.tables] {role}: start has {} values but size has {} (one per key)",
            at("start"),
            start.len(),
            size.len()
        )));
    }
    let count = size.iter().map(|&n| n as f64).product::<f64>();
    parfit_core::limits::check_allocation(&format!("{}: [projection.tables] {role}", at("size")), count, 8.0)
        .map_err(input)?;
    Ok(json!({
        "name": locate(path, text, &["projection", "tables", role]),
        "numpy_standard_normal": { "seed": seed, "size": size, "start": start },
    }))
}

#[derive(Debug, Default, Deserialize)]
#[serde(untagged)]
pub enum Scenarios {
    #[default]
    #[serde(skip)]
    Default,
    Named(String),
    List(Vec<i64>),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSection {
    pub dir: Option<PathBuf>,
}

impl ProjectConfig {
    /// Parse `text` as the projection configuration at `path` (named in errors).
    pub fn parse(path: &Path, text: &str) -> Result<ProjectConfig> {
        let config: ProjectConfig = toml::from_str(text).map_err(|e| input(toml_error(path, text, &e)))?;
        Ok(ProjectConfig { text: text.to_string(), ..config })
    }
}

impl ProjectionSection {
    /// The model kind: `kind` when given, else the kind `for_file` finds for the model file's extension.
    pub fn resolve_kind(
        &self,
        origin: &Path,
        for_file: impl FnOnce(&Path) -> std::result::Result<String, String>,
    ) -> Result<String> {
        match (&self.kind, &self.model) {
            (Some(k), _) => Ok(k.clone()),
            (None, Some(m)) => for_file(m).map_err(input),
            (None, None) => Err(input(format!(
                "{}: [projection] needs a model file (model = \"….prj\") or a kind",
                origin.display()
            ))),
        }
    }
}

/// Whether a configuration's text has a top-level `[projection]` table.
pub fn is_projection(text: &str) -> bool {
    text.parse::<toml::Table>().is_ok_and(|t| t.contains_key("projection"))
}

/// The first-column values (point ids) of the model point table's data rows.
fn point_ids(name: &str, text: &str) -> Result<Vec<String>> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(text.as_bytes());
    let mut ids = Vec::new();
    // One record reused for every row: the table may have millions.
    let mut record = csv::StringRecord::new();
    while reader.read_record(&mut record).map_err(|e| input(format!("{name}: {e}")))? {
        if record.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        ids.push(record.get(0).unwrap_or("").trim().to_string());
    }
    Ok(ids)
}

/// `{"name": name, "text": text}` appended to `json`: a table's or model's file as the plugin reads it, written
/// straight into the buffer (a `Value` would copy the text).
fn json_text_file(json: &mut Vec<u8>, name: &str, text: &str) -> serde_json::Result<()> {
    json.reserve(text.len() + text.len() / 8 + name.len() + 24);
    json.extend_from_slice(b"{\"name\":");
    serde_json::to_writer(&mut *json, name)?;
    json.extend_from_slice(b",\"text\":");
    serde_json::to_writer(&mut *json, text)?;
    json.push(b'}');
    Ok(())
}

/// Makes the plugin's projection from its JSON configuration (the caller's plugin for the configured kind).
pub type MakeProjector<'a> = dyn Fn(&str) -> std::result::Result<Box<dyn Projector>, String> + 'a;
/// Receives one point's present values (its id, one value per column); an error stops the run.
pub type PointRow<'a> = dyn FnMut(&str, &[f64]) -> std::result::Result<(), String> + 'a;

/// A projection read and checked, with its models made: nothing is projected yet.
pub struct Projection {
    /// The configuration's name, for messages.
    pub origin: String,
    pub kind: String,
    /// The model point table's name and its point ids, in table order.
    pub points_name: String,
    pub ids: Vec<String>,
    pub scenarios: Vec<i64>,
    pub horizon: usize,
    /// Point-months of one scenario (each point's months until it ends).
    pub point_months: usize,
    /// Present value columns (one row per point) and monthly columns (the portfolio's monthly sums: the columns
    /// of every `month` table, in table order; none without `monthly`).
    pub columns: Vec<String>,
    pub monthly_columns: Vec<String>,
    /// The audit point's id and row, when asked for.
    audit: Option<(String, usize)>,
    projector: Box<dyn Projector>,
    /// The tables a block asks for: the present values, and the monthly tables with `monthly`.
    mask: u64,
    /// The monthly tables: (name, first column in `monthly_columns`, columns).
    monthly_tables: Vec<(String, usize, usize)>,
    /// The present value table and the audit table, by index.
    pv_table: usize,
    audit_table: Option<usize>,
}

/// One block's per-point rows (`points × scenarios × columns`) and its summed monthly rows, or what failed.
pub type BlockOutcome = std::result::Result<BlockResult, String>;

pub struct BlockResult {
    rows: Vec<f64>,
    monthly: Vec<f64>,
}

/// A block's result crosses between processes as the exact bits of its numbers (or its error's text).
impl Wire for BlockOutcome {
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

    fn decode(bytes: &[u8]) -> std::result::Result<Self, String> {
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

impl std::fmt::Debug for Projection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Projection").field("origin", &self.origin).field("points", &self.ids.len()).finish()
    }
}

/// The totals of a projection.
#[derive(Debug, Clone)]
pub struct Totals {
    /// Present value totals per scenario: `scenarios × columns`.
    pub scenario_totals: Vec<f64>,
    /// Their mean over the scenarios, per column.
    pub mean: Vec<f64>,
    /// Monthly portfolio sums (`horizon × monthly columns`, the mean over scenarios); empty without `monthly`.
    pub monthly: Vec<f64>,
}

/// One point's every monthly quantity (`audit_point`).
#[derive(Debug, Clone)]
pub struct Audit {
    pub id: String,
    pub columns: Vec<String>,
    /// `horizon × columns`.
    pub rows: Vec<f64>,
}

/// A monthly portfolio table (`result_cf.csv`, `result_pols.csv`): one row per month `t` from 0.
#[derive(Debug, Clone)]
pub struct MonthlyTable {
    /// Its file name (`<table name>.csv`).
    pub name: String,
    /// The columns after `t`.
    pub columns: Vec<String>,
    /// The number of months (rows).
    pub months: usize,
    /// `horizon × columns`.
    pub rows: Vec<f64>,
}

impl Projection {
    /// Read every table the configuration at `path` names through `files` (the plugin checks each cell), and make
    /// the plugin's projection with `create(configuration JSON)` — the caller's plugin for `config.projection.kind`.
    pub fn new(
        config: &ProjectConfig,
        path: &Path,
        files: &dyn Loader,
        kind: &str,
        create: &MakeProjector<'_>,
    ) -> Result<Projection> {
        let origin = path.display().to_string();
        let at = |key: &str| locate(path, &config.text, &["projection", key]);
        let p = &config.projection;
        let resolve = |rel: &Path| match path.parent() {
            Some(dir) if rel.is_relative() => dir.join(rel),
            _ => rel.to_path_buf(),
        };
        let points_path = resolve(&p.model_points);
        let points_name = points_path.display().to_string();
        let points_text = files.read(&points_path)?;
        // The plugin's JSON: `{"constants": …, "tables": {role: {"name", "text"} or a generated table's request},
        // "model": {"name", "text"}}`, the model points under the role `model_points`. The files' texts are most
        // of it and are written straight into it (see `json_text_file`).
        let json_error = |e: serde_json::Error| input(format!("{origin}: {e}"));
        let mut config_json = b"{\"constants\":".to_vec();
        serde_json::to_writer(&mut config_json, &p.constants).map_err(json_error)?;
        config_json.extend_from_slice(b",\"tables\":{");
        for (role, source) in &p.tables {
            let mut table = Vec::new();
            match source {
                TableSource::File(file) => {
                    let file = resolve(file);
                    json_text_file(&mut table, &file.display().to_string(), &files.read(&file)?).map_err(json_error)?;
                }
                TableSource::Generated(spec) => {
                    serde_json::to_writer(&mut table, &generated_table(path, &config.text, role, spec)?)
                        .map_err(json_error)?;
                }
            }
            // The model points are the configuration's `model_points`, whatever the tables say.
            if role != "model_points" {
                serde_json::to_writer(&mut config_json, role).map_err(json_error)?;
                config_json.push(b':');
                config_json.extend_from_slice(&table);
                config_json.push(b',');
            }
        }
        config_json.extend_from_slice(b"\"model_points\":");
        json_text_file(&mut config_json, &points_name, &points_text).map_err(json_error)?;
        config_json.push(b'}');
        if let Some(model) = &p.model {
            let model = resolve(model);
            config_json.extend_from_slice(b",\"model\":");
            json_text_file(&mut config_json, &model.display().to_string(), &files.read(&model)?).map_err(json_error)?;
        }
        config_json.push(b'}');
        let config_json = String::from_utf8(config_json).map_err(|e| input(format!("{origin}: {e}")))?;
        let projector = create(&config_json).map_err(|e| {
            // A plugin's error about one of the constants or tables is placed at its key.
            let names = |section: &str, keys: Vec<&String>| {
                let prefix = format!("{section}: ");
                keys.into_iter()
                    .find(|k| e.starts_with(&prefix) && e.contains(&format!("'{k}'")))
                    .map(|k| (section.to_string(), k.clone()))
            };
            let key =
                names("constants", p.constants.keys().collect()).or_else(|| names("tables", p.tables.keys().collect()));
            match key {
                Some((section, k)) => {
                    input(format!("{}: {e}", locate(path, &config.text, &["projection", section.as_str(), k.as_str()])))
                }
                // A generated table's error is already placed in this file.
                None if e.starts_with(&format!("{origin}:")) => input(e),
                None => input(format!("{origin}: {e}")),
            }
        })?;
        let spec = projector.spec();
        // The ids the projection read with the points; a projection that does not give them has them read here.
        let ids = if spec.ids.is_empty() { point_ids(&points_name, &points_text)? } else { spec.ids.clone() };
        let n_points = spec.points;
        if n_points != ids.len() {
            return Err(input(format!(
                "{points_name}: the plugin read {n_points} points but the table has {} rows",
                ids.len()
            )));
        }
        let scope = |scope: Scope| spec.tables.iter().enumerate().filter(move |(_, t)| t.scope == scope);
        let pv_table = match scope(Scope::Point).map(|(i, _)| i).collect::<Vec<_>>()[..] {
            [i] => i,
            ref found => {
                return Err(input(format!(
                    "{origin}: projection '{}' describes {} per-point tables; a [projection] needs exactly one \
                     (its present values)",
                    spec.name,
                    found.len()
                )));
            }
        };
        let first = *spec
            .scenarios
            .first()
            .ok_or_else(|| input(format!("{origin}: projection '{}' describes no scenario", spec.name)))?;
        let known = |s: &i64| spec.scenarios.contains(s);
        let range = || match (spec.scenarios.first(), spec.scenarios.last()) {
            (Some(a), Some(b)) => format!("{a}..={b}"),
            _ => String::new(),
        };
        let scenarios: Vec<i64> = match &p.scenarios {
            Scenarios::Default => vec![first],
            Scenarios::Named(s) if s == "default" => vec![first],
            Scenarios::Named(s) if s == "all" => spec.scenarios.clone(),
            Scenarios::Named(s) => {
                return Err(input(format!(
                    "{}: [projection] scenarios = \"{s}\": use \"default\", \"all\" or a list of ids",
                    at("scenarios")
                )));
            }
            Scenarios::List(list) => {
                if let Some(bad) = list.iter().find(|s| !known(s)) {
                    return Err(input(format!(
                        "{}: [projection] scenarios: {bad} is not in the scenario table ({})",
                        at("scenarios"),
                        range()
                    )));
                }
                if list.is_empty() {
                    return Err(input(format!("{}: [projection] scenarios: the list is empty", at("scenarios"))));
                }
                list.clone()
            }
        };
        let audit_table = scope(Scope::PointMonth).map(|(i, _)| i).next();
        let audit = match &p.audit_point {
            None => None,
            Some(v) => {
                let id = match v {
                    toml::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                let i = ids.iter().position(|x| *x == id).ok_or_else(|| {
                    let place = at("audit_point");
                    input(format!("{place}: [projection] audit_point: no point has id '{id}' in {points_name}"))
                })?;
                if audit_table.is_none() {
                    return Err(input(format!(
                        "{}: [projection] audit_point: projection '{}' describes no per-point monthly table",
                        at("audit_point"),
                        spec.name
                    )));
                }
                Some((id, i))
            }
        };
        let mut mask = 1u64 << pv_table;
        let mut monthly_columns = Vec::new();
        let mut monthly_tables = Vec::new();
        if p.monthly {
            for (i, t) in scope(Scope::Month) {
                mask |= 1 << i;
                monthly_tables.push((t.name.clone(), monthly_columns.len(), t.columns.len()));
                monthly_columns.extend(t.columns.iter().cloned());
            }
        }
        Ok(Projection {
            origin,
            kind: kind.to_string(),
            points_name,
            ids,
            scenarios,
            horizon: spec.horizon,
            point_months: spec.point_months as usize,
            columns: spec.tables[pv_table].columns.clone(),
            monthly_columns,
            audit,
            mask,
            monthly_tables,
            pv_table,
            audit_table,
            projector,
        })
    }

    /// Project every (point × scenario) through `dispatch`, wave by wave. Where results are gathered,
    /// `point_row(id, pv)` receives each point's present values (the mean over the scenarios) in table order
    /// and `progress(points done)` is called after every wave, returning `true` to stop; elsewhere (an MPI
    /// job's other ranks) the result is `Ok(None)`. Setting `stop` leaves the blocks not yet started undone.
    pub fn run(
        &self,
        dispatch: &impl Dispatch,
        stop: &AtomicBool,
        progress: &mut dyn FnMut(usize) -> bool,
        point_row: &mut PointRow<'_>,
    ) -> std::result::Result<Option<Totals>, RunError> {
        let (ids, horizon, scenarios) = (&self.ids, self.horizon, &self.scenarios);
        let (n_cols, n_mcols, n_scen) = (self.columns.len(), self.monthly_columns.len(), scenarios.len());
        let spec = self.projector.spec();
        // The projector's workspaces, kept across blocks and waves so a worker sets nothing up per block (the
        // actuarial plugin's runner keeps the month-only values it computed); an MPI job's rank 0 runs blocks from
        // a thread of its own. A block's result depends on its arguments alone (the [`Projector`] contract).
        let workspaces = Pool::default();
        let project_block = |b: usize| -> BlockOutcome {
            let (lo, hi) = (b * BLOCK, ((b + 1) * BLOCK).min(ids.len()));
            let n = spec.block_len(self.mask, hi - lo, n_scen).ok_or("a block's size overflows")?;
            let mut out = vec![0.0; n];
            workspaces
                .with(
                    || self.projector.workspace(),
                    |ws| self.projector.project(ws, lo, hi - lo, scenarios, self.mask, &mut out),
                )
                .map_err(|e| format!("points {}..={} (rows {}..={}): {e}", ids[lo], ids[hi - 1], lo + 1, hi))?;
            // The tables come in table order: the present values first or between monthly tables.
            let mut rows = Vec::new();
            let mut monthly = vec![0.0; if n_mcols > 0 { horizon * n_mcols } else { 0 }];
            let mut at = 0;
            let mut tables = self.monthly_tables.iter();
            for t in (0..spec.tables.len()).filter(|t| self.mask >> t & 1 == 1) {
                let len = spec.table_len(t, hi - lo, n_scen).unwrap_or(0);
                let values = &out[at..at + len];
                at += len;
                if t == self.pv_table {
                    rows = values.to_vec();
                } else if let Some(&(_, col, width)) = tables.next() {
                    for (row, month) in values.chunks_exact(width).zip(monthly.chunks_exact_mut(n_mcols)) {
                        month[col..col + width].copy_from_slice(row);
                    }
                }
            }
            Ok(BlockResult { rows, monthly })
        };
        let mut scenario_totals = vec![0.0; n_scen * n_cols];
        let mut monthly_totals = vec![0.0; if n_mcols > 0 { horizon * n_mcols } else { 0 }];
        let mut mean_row = vec![0.0; n_cols];
        let n_blocks = ids.len().div_ceil(BLOCK);
        // Each process takes several chunks of a wave, so uneven blocks still balance.
        let wave_blocks = WAVE_BLOCKS * dispatch.processes();
        let chunk = (wave_blocks / (dispatch.processes() * 8)).max(1);
        for wave in (0..n_blocks).step_by(wave_blocks) {
            let Some(blocks) = dispatch.map(wave..(wave + wave_blocks).min(n_blocks), chunk, stop, &project_block)?
            else {
                continue;
            };
            for (b, block) in (wave..).zip(blocks) {
                let BlockResult { rows, monthly } =
                    block.map_err(|e| RunError::Failed(format!("{}: {e}", self.origin)))?;
                for (j, point_rows) in rows.chunks_exact(n_scen * n_cols).enumerate() {
                    mean_row.fill(0.0);
                    for (k, row) in point_rows.chunks_exact(n_cols).enumerate() {
                        for c in 0..n_cols {
                            scenario_totals[k * n_cols + c] += row[c];
                            mean_row[c] += row[c];
                        }
                    }
                    mean_row.iter_mut().for_each(|v| *v /= n_scen as f64);
                    point_row(&ids[b * BLOCK + j], &mean_row).map_err(RunError::Failed)?;
                }
                monthly_totals.iter_mut().zip(&monthly).for_each(|(a, b)| *a += b);
            }
            let done = ((wave + wave_blocks) * BLOCK).min(ids.len());
            if progress(done) && done < ids.len() {
                return Err(RunError::Interrupted(format!("stopped after {done} of {} points", ids.len())));
            }
        }
        if n_scen > 1 {
            monthly_totals.iter_mut().for_each(|v| *v /= n_scen as f64);
        }
        let mean = (0..n_cols)
            .map(|c| (0..n_scen).map(|k| scenario_totals[k * n_cols + c]).sum::<f64>() / n_scen as f64)
            .collect();
        if !dispatch.gathers_here() {
            return Ok(None);
        }
        Ok(Some(Totals { scenario_totals, mean, monthly: monthly_totals }))
    }

    /// The audit point's every monthly quantity under the first scenario, when the configuration asks for it.
    pub fn audit(&self) -> std::result::Result<Option<Audit>, RunError> {
        let (Some((id, i)), Some(t)) = (&self.audit, self.audit_table) else { return Ok(None) };
        let spec = self.projector.spec();
        let scenario = &self.scenarios[..1];
        let n = spec.table_len(t, 1, 1).unwrap_or(0);
        let mut rows = vec![0.0; n];
        self.projector
            .project(&mut self.projector.workspace(), *i, 1, scenario, 1 << t, &mut rows)
            .map_err(|e| RunError::Failed(format!("{}: audit point {id}: {e}", self.origin)))?;
        Ok(Some(Audit { id: id.clone(), columns: spec.tables[t].columns.clone(), rows }))
    }

    /// The monthly sums as the projection's monthly tables (lifelib's `result_cf.csv` and `result_pols.csv` for
    /// the actuarial plugin); none without `monthly`.
    pub fn monthly_tables(&self, totals: &Totals) -> Vec<MonthlyTable> {
        let n_mcols = self.monthly_columns.len();
        if totals.monthly.is_empty() || n_mcols == 0 {
            return Vec::new();
        }
        self.monthly_tables
            .iter()
            .map(|(name, col, width)| MonthlyTable {
                name: format!("{name}.csv"),
                columns: self.monthly_columns[*col..col + width].to_vec(),
                months: totals.monthly.len() / n_mcols,
                rows: totals
                    .monthly
                    .chunks_exact(n_mcols)
                    .flat_map(|row| row[*col..col + width].iter().copied())
                    .collect(),
            })
            .collect()
    }

    /// The run's report (`totals.json`, `parfit run --format json`).
    pub fn report(&self, totals: &Totals, plugin: &str, threads: usize, seconds: f64) -> Value {
        let n_cols = self.columns.len();
        let by_column = |values: &[f64]| -> Map<String, Value> {
            self.columns.iter().zip(values).map(|(name, v)| (name.clone(), json!(v))).collect()
        };
        let per_scenario: Vec<Value> = self
            .scenarios
            .iter()
            .enumerate()
            .map(|(k, s)| {
                json!({ "scenario": s, "totals": by_column(&totals.scenario_totals[k * n_cols..(k + 1) * n_cols]) })
            })
            .collect();
        json!({
            "model": self.kind,
            "plugin": plugin,
            "config": self.origin,
            "model_points": self.points_name,
            "points": self.ids.len(),
            "horizon_months": self.horizon,
            "point_months": self.point_months * self.scenarios.len(),
            "scenarios": self.scenarios,
            "threads": threads,
            "seconds": seconds,
            "totals": by_column(&totals.mean),
            "scenario_totals": per_scenario,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_are_written_as_the_json_strings_serde_json_reads_back() {
        let control: String = (0u8..0x20).map(char::from).collect();
        for text in ["", "a,b\n1,2\r\n", "\"quoted\" \\ back", "é – ü\u{2028}\u{7f}", control.as_str()] {
            let mut json = Vec::new();
            json_text_file(&mut json, "dir/t.csv", text).unwrap();
            let back: Value = serde_json::from_slice(&json).unwrap();
            assert_eq!(back, json!({ "name": "dir/t.csv", "text": text }));
        }
    }
}
