//! Projections of model files (`.prj`, the projection language of `LANGUAGE.md`): the model is compiled once per
//! projection (natively where the JIT is available), its declared tables are read by the language's one CSV
//! reader, and blocks of points run on a runner each workspace keeps (it holds the program, so a host that keeps
//! a workspace per thread compiles and sets up nothing per block).
//!
//! What the host is told comes from the model's `output` declarations: `horizon` (a per-policy cell; the run's
//! horizon is its largest value over the points), `months` (a per-policy cell: how many months each point is
//! projected, cut at the horizon; without it every point runs to the horizon), `pv` (results: the per-point
//! table; without it every result), `audit` (cells: the per-point monthly table) and any other output (cells:
//! a monthly table summed over the points, e.g. `result_cf`).

use std::collections::BTreeMap;
use std::sync::Arc;

use parfit_core::model::downcast_workspace;
use parfit_core::projection::{ProjectionSpec, Projector, ResultTable, Scope};
use parfit_core::{SimError, Workspace};
use parfit_expr::projection::{
    AttrValue, Attribute, OwnedProjection, Points, ProjectionProgram, SCENARIO, Table, ValueKind, compile_projection,
    numpy_normal_table, read_points, read_table, scenario_ids, table_declarations,
};
use serde::Deserialize;

/// A table's or model's text and the name it came from (the file path as the user wrote it), as the host passes
/// it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextFile {
    pub name: String,
    #[serde(default)]
    pub text: String,
    /// A table made rather than read: numpy's normal draws (`[projection.tables] NAME = { generate =
    /// "numpy.standard_normal", … }`; `name` is where the request was written).
    #[serde(default)]
    pub numpy_standard_normal: Option<NumpyNormal>,
}

/// `numpy.random.default_rng(seed).standard_normal(size)`, key *k* from `start[k]` (`numpy_normal_table`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NumpyNormal {
    pub seed: u64,
    pub size: Vec<usize>,
    pub start: Vec<i64>,
}

/// The fewest points for which the policy code is compiled to native code: compiling it costs about as much as
/// interpreting it for a thousand points (it runs twice per point: for the point's months and checks, then in
/// the projection).
const NATIVE_POLICY_CODE: usize = 1000;

/// The longest horizon a model may give: 200 years.
const MAX_MONTHS: f64 = 12.0 * 200.0;

/// The configuration of a model-file projection (JSON): the model's text, its tables by the names it declares
/// (`model_points` is the table it declares as `mp`), and overrides of its parameters.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    pub model: TextFile,
    pub tables: BTreeMap<String, TextFile>,
    #[serde(default)]
    pub constants: BTreeMap<String, f64>,
}

/// Which cell (or `t`) feeds each column of a monthly table.
type Columns = Vec<Option<usize>>;

/// A model file's projection of a model-point table.
#[derive(Debug)]
pub struct ModelProjector {
    program: Arc<ProjectionProgram>,
    points: Points,
    /// Each point's months (at most the horizon).
    months: Vec<usize>,
    horizon: usize,
    /// The results the `pv` table reports.
    pv: Vec<usize>,
    /// The monthly tables summed over points, then the audit table's columns.
    monthly: Vec<Columns>,
    audit: Option<Columns>,
    spec: ProjectionSpec,
}

/// Per-thread scratch: one point's monthly rows of every cell, and the runner.
struct Rows(Vec<f64>, OwnedProjection);

/// The position of cell `name` in the program's monthly rows.
fn cell_index(program: &ProjectionProgram, name: &str) -> Option<usize> {
    program.cells().position(|c| c == name)
}

impl ModelProjector {
    /// Read the tables the model declares (from `tables`, by declared name; `model_points` is its `mp`), compile
    /// the model against them and find each point's months, checking every point.
    pub fn new(config: ModelConfig) -> Result<ModelProjector, String> {
        let ModelConfig { model, tables: files, constants } = config;
        let file = model.name.as_str();
        let decls = table_declarations(file, &model.text)?;
        let mut tables: Vec<Table> = vec![];
        let mut points = None;
        let mut scenarios = vec![1];
        let known: Vec<&str> = decls.iter().map(|d| d.name.as_str()).collect();
        for name in files.keys() {
            let declared = if name == "model_points" { "mp" } else { name.as_str() };
            if !known.contains(&declared) {
                return Err(format!(
                    "tables: '{name}' is not a table of {file} (it declares: {})",
                    known.iter().map(|k| if *k == "mp" { "model_points" } else { k }).collect::<Vec<_>>().join(", ")
                ));
            }
        }
        for d in &decls {
            let key = if d.name == "mp" { "model_points" } else { d.name.as_str() };
            let Some(f) = files.get(key) else {
                return Err(format!(
                    "tables: no file for table '{key}', which {file}:{}:{} declares",
                    d.pos.line, d.pos.col
                ));
            };
            if d.name == "mp" {
                points = Some(read_points(Some(d), &f.name, &f.text)?);
                continue;
            }
            let t = match &f.numpy_standard_normal {
                Some(g) => numpy_normal_table(d, &f.name, file, g.seed, &g.size, &g.start)?,
                None => read_table(d, &f.name, &f.text)?,
            };
            if let Some(ids) = scenario_ids(d, &t) {
                scenarios = ids;
            }
            tables.push(t);
        }
        let points = match points {
            Some(p) => p,
            None => {
                let f = files.get("model_points").ok_or("tables: the model point table (model_points) is missing")?;
                read_points(None, &f.name, &f.text)?
            }
        };
        let mut attributes = points.attributes.clone();
        attributes.push(Attribute { name: SCENARIO.into(), kind: ValueKind::Number });
        let params: Vec<(&str, f64)> = constants.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        for (k, v) in &params {
            if !v.is_finite() {
                return Err(format!("constants: {k} = {v}: must be a finite number"));
            }
        }
        let mut program = compile_projection(file, &model.text, &attributes, &tables, &params)
            .map_err(|e| e.replace(&format!("{file}: unknown parameter"), "constants: unknown parameter"))?;
        // Natively where the JIT is available; the interpreter gives the same bits elsewhere. The policy code
        // too when there are enough points to repay its compilation.
        let _ = program.compile_native();
        if points.len() >= NATIVE_POLICY_CODE {
            let _ = program.compile_native_setup();
        }
        let output = |name: &str| program.outputs().find(|(n, _)| *n == name).map(|(_, c)| c.to_vec());
        let cell = |list: &[(String, String)], what: &str| -> Result<Columns, String> {
            list.iter()
                .map(|(c, _)| match c.as_str() {
                    "t" => Ok(None),
                    c => cell_index(&program, c)
                        .map(Some)
                        .ok_or_else(|| format!("{file}: output '{what}': '{c}' is a result, not a monthly cell")),
                })
                .collect()
        };
        let single = |name: &str| -> Result<Option<usize>, String> {
            match output(name).as_deref() {
                None => Ok(None),
                Some([(c, _)]) => cell_index(&program, c)
                    .map(Some)
                    .ok_or_else(|| format!("{file}: output '{name}': '{c}' is not a cell")),
                Some(_) => Err(format!("{file}: output '{name}' names one cell")),
            }
        };
        let (horizon_cell, months_cell) = (single("horizon")?, single("months")?);
        // Conditions every point must meet, each with what it means when it fails.
        let checks: Vec<(usize, String, String)> = output("checks")
            .unwrap_or_default()
            .into_iter()
            .map(|(c, label)| {
                cell_index(&program, &c)
                    .map(|i| (i, c.clone(), label))
                    .ok_or_else(|| format!("{file}: output 'checks': '{c}' is a result, not a cell"))
            })
            .collect::<Result<_, _>>()?;
        let results: Vec<&str> = program.results().collect();
        let (pv, pv_names): (Vec<usize>, Vec<String>) = match output("pv") {
            Some(list) => list
                .iter()
                .map(|(r, label)| {
                    results
                        .iter()
                        .position(|x| x == r)
                        .map(|i| (i, label.clone()))
                        .ok_or_else(|| format!("{file}: output 'pv': '{r}' is not a result"))
                })
                .collect::<Result<Vec<_>, _>>()?
                .into_iter()
                .unzip(),
            None => results.iter().enumerate().map(|(i, r)| (i, r.to_string())).unzip(),
        };
        let mut described = vec![ResultTable { name: "pv".into(), scope: Scope::Point, columns: pv_names }];
        let mut monthly = vec![];
        let mut audit = None;
        let outputs: Vec<(String, Vec<(String, String)>)> =
            program.outputs().map(|(n, c)| (n.to_string(), c.to_vec())).collect();
        for (name, list) in &outputs {
            if matches!(name.as_str(), "horizon" | "months" | "pv" | "checks") {
                continue;
            }
            let columns = cell(list, name)?;
            let labels = list.iter().map(|(_, l)| l.clone()).collect();
            if name == "audit" {
                audit = Some(columns);
                described.push(ResultTable { name: name.clone(), scope: Scope::PointMonth, columns: labels });
            } else {
                monthly.push(columns);
                described.push(ResultTable { name: name.clone(), scope: Scope::Month, columns: labels });
            }
        }
        // Each point's horizon and months: the cells' values in month 0 of the first scenario.
        let width = program.cells().count();
        let mut row = vec![0.0; width];
        let mut run = program.runner();
        let mut attrs = vec![];
        let (mut lengths, mut ends) = (vec![], vec![]);
        let wanted: Vec<usize> =
            [horizon_cell, months_cell].into_iter().flatten().chain(checks.iter().map(|c| c.0)).collect();
        let first = scenarios.first().copied().unwrap_or(1) as f64;
        for i in 0..points.len() {
            points.row(i, &mut attrs);
            attrs.push(AttrValue::Number(first));
            let at = |e: String| format!("{} (line {}): {e}", points.id(i), points.lines[i]);
            let (mut end, mut len) = (0.0, f64::INFINITY);
            if !wanted.is_empty() {
                run.first_month(&attrs, &wanted, &mut row).map_err(at)?;
                for (cell, slot) in [(horizon_cell, &mut end), (months_cell, &mut len)] {
                    if let Some(c) = cell {
                        *slot = row[c];
                    }
                }
                if let Some((_, cell, label)) = checks.iter().find(|(c, _, _)| row[*c] != 1.0) {
                    return Err(format!(
                        "{}:{}: policy {}: {label} (the check '{cell}' of {file})",
                        points_name(&files),
                        points.lines[i],
                        points.id(i)
                    ));
                }
            }
            if !(end.is_finite() && (0.0..=MAX_MONTHS).contains(&end.floor())) {
                return Err(format!(
                    "{}: point {} (line {}): the horizon {end} is not a number of months in 0..={MAX_MONTHS}",
                    points_name(&files),
                    points.id(i),
                    points.lines[i]
                ));
            }
            if len.is_nan() {
                return Err(format!(
                    "{}: point {} (line {}): its months are not a number",
                    points_name(&files),
                    points.id(i),
                    points.lines[i]
                ));
            }
            ends.push(end.floor() as usize);
            lengths.push(len);
        }
        let horizon = ends.iter().copied().max().unwrap_or(0);
        let months: Vec<usize> = lengths.iter().map(|&l| l.max(0.0).min(horizon as f64) as usize).collect();
        parfit_core::limits::check_allocation("a point's monthly rows", (horizon * width.max(1)) as f64, 8.0)?;
        let name = std::path::Path::new(file).file_stem().map_or(file.to_string(), |s| s.to_string_lossy().into());
        let spec = ProjectionSpec {
            name,
            points: points.len(),
            horizon,
            scenarios,
            point_months: months.iter().map(|&m| m as u64).sum(),
            tables: described,
            ids: (0..points.len()).map(|i| points.id(i).to_string()).collect(),
        };
        Ok(ModelProjector { program: Arc::new(program), points, months, horizon, pv, monthly, audit, spec })
    }
}

impl ModelProjector {
    /// The name the projection describes itself by (in messages): the model file's stem unless renamed.
    pub fn rename(mut self, name: &str) -> ModelProjector {
        self.spec.name = name.to_string();
        self
    }
}

fn points_name(files: &BTreeMap<String, TextFile>) -> &str {
    files.get("model_points").map_or("model_points", |f| f.name.as_str())
}

impl Projector for ModelProjector {
    fn spec(&self) -> &ProjectionSpec {
        &self.spec
    }

    fn workspace(&self) -> Workspace {
        Box::new(Rows(Vec::new(), self.program.owned_runner()))
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
        let spec = &self.spec;
        let end = first.checked_add(count).filter(|&end| end <= self.points.len()).ok_or_else(|| {
            SimError::BadInput(format!(
                "points {first}..{first}+{count} are not rows of the model point table (0..{})",
                self.points.len()
            ))
        })?;
        if let Some(s) = scenarios.iter().find(|s| !spec.scenarios.contains(s)) {
            return Err(SimError::BadInput(format!("scenario {s} is not one of the model's scenarios")));
        }
        let n_scen = scenarios.len();
        let n_tables = spec.tables.len();
        let mut lens = vec![];
        for t in 0..n_tables {
            lens.push(if mask >> t & 1 == 1 { spec.table_len(t, count, n_scen) } else { Some(0) });
        }
        let (Some(expected), true) = (spec.block_len(mask, count, n_scen), mask >> n_tables == 0) else {
            return Err(SimError::BadInput(format!("mask {mask:#x} names no table of {} (0..{n_tables})", spec.name)));
        };
        if out.len() != expected {
            return Err(SimError::BadInput(format!("output buffer has length {}, expected {expected}", out.len())));
        }
        // The tables' slices of `out`, in table order: pv, the monthly tables, the audit.
        let mut parts: Vec<&mut [f64]> = vec![];
        let mut rest = out;
        for len in &lens {
            let (a, b) = rest.split_at_mut(len.unwrap_or(0));
            parts.push(a);
            rest = b;
        }
        let (pv_out, rest) = parts.split_at_mut(1);
        let (monthly_out, audit_out) = rest.split_at_mut(self.monthly.len());
        let pv_out = &mut pv_out[0];
        monthly_out.iter_mut().for_each(|p| p.fill(0.0));
        let want_monthly = monthly_out.iter().any(|p| !p.is_empty());
        let width = self.program.cells().count();
        let horizon = self.horizon;
        let Rows(rows, run) = downcast_workspace::<Rows>(ws, &spec.name)?;
        let mut attrs = vec![];
        let n_pv = self.pv.len();
        let mut results = vec![];
        let audit_wanted = self.audit.is_some() && audit_out.first().is_some_and(|p| !p.is_empty());
        if !want_monthly && !audit_wanted && !pv_out.is_empty() {
            // Only present values: the points run in pairs (two at once in the native month loop), each pair of
            // one scenario and of points next in length, so that both lanes run most of their months together.
            let mut order: Vec<usize> = (first..end).collect();
            order.sort_by_key(|&i| self.months[i]);
            let mut other = vec![];
            let fail = |p: usize, e: String| SimError::BadInput(format!("point {}: {e}", self.points.id(p)));
            for (k, &s) in scenarios.iter().enumerate() {
                // Point `p`'s present values from its results.
                let mut put = |p: usize, values: &mut dyn Iterator<Item = f64>| {
                    results.clear();
                    results.extend(values);
                    let at = ((p - first) * n_scen + k) * n_pv;
                    for (o, &r) in pv_out[at..at + n_pv].iter_mut().zip(&self.pv) {
                        *o = results[r];
                    }
                };
                for pair in order.chunks(2) {
                    let i = pair[0];
                    self.points.row(i, &mut attrs);
                    attrs.push(AttrValue::Number(s as f64));
                    let Some(&j) = pair.get(1) else {
                        run.run(&attrs, self.months[i], None).map_err(|e| fail(i, e))?;
                        put(i, &mut run.results());
                        continue;
                    };
                    self.points.row(j, &mut other);
                    other.push(AttrValue::Number(s as f64));
                    run.run_pair((&attrs, self.months[i]), (&other, self.months[j]))
                        .map_err(|(lane, e)| fail(if lane == 0 { i } else { j }, e))?;
                    put(i, &mut run.results());
                    put(j, &mut run.lane_results());
                }
            }
            return Ok(());
        }
        for (j, i) in (first..end).enumerate() {
            for (k, &s) in scenarios.iter().enumerate() {
                let case = j * n_scen + k;
                self.points.row(i, &mut attrs);
                attrs.push(AttrValue::Number(s as f64));
                let fail = |e: String| SimError::BadInput(format!("point {}: {e}", self.points.id(i)));
                let months = self.months[i];
                if !pv_out.is_empty() || want_monthly {
                    // The runner writes every value of the rows it is given: they are only grown, never cleared.
                    let need = months * width;
                    if want_monthly && rows.len() < need {
                        rows.resize(need, 0.0);
                    }
                    let cells = if want_monthly { Some(&mut rows[..need]) } else { None };
                    run.run(&attrs, months, cells).map_err(fail)?;
                    results.clear();
                    results.extend(run.results());
                    for (c, &r) in self.pv.iter().enumerate() {
                        if !pv_out.is_empty() {
                            pv_out[case * n_pv + c] = results[r];
                        }
                    }
                    for (cols, part) in self.monthly.iter().zip(monthly_out.iter_mut()) {
                        if part.is_empty() {
                            continue;
                        }
                        let w = cols.len();
                        for t in 0..months {
                            let row = &rows[t * width..(t + 1) * width];
                            for (c, col) in cols.iter().enumerate() {
                                part[t * w + c] += col.map_or(t as f64, |x| row[x]);
                            }
                        }
                    }
                }
                if let (Some(cols), Some(part)) = (&self.audit, audit_out.first_mut())
                    && !part.is_empty()
                {
                    rows.clear();
                    rows.resize(horizon * width, 0.0);
                    run.run(&attrs, horizon, Some(&mut rows[..])).map_err(fail)?;
                    let w = cols.len();
                    let block = &mut part[case * horizon * w..(case + 1) * horizon * w];
                    for t in 0..horizon {
                        let row = &rows[t * width..(t + 1) * width];
                        for (c, col) in cols.iter().enumerate() {
                            block[t * w + c] = col.map_or(t as f64, |x| row[x]);
                        }
                    }
                }
            }
        }
        Ok(())
    }
}
