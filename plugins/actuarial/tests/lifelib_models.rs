//! lifelib's other models as model files (`examples/lifelib/<model>/*.prj`, see LANGUAGE.md), run by the
//! projection language over the model points and tables of their folder and compared with the goldens lifelib
//! 0.17.2 made there (`examples/lifelib/DATA.md`): every point's present values, their totals, the monthly
//! portfolio vectors and every cell of the audit point, each within 1e-12 of the largest value of its row
//! (a point's present values, a month's cash flows, an audit cell's months).
//!
//! How close, and why not always the same bits:
//! - BasicTerm_M sums its present values as numpy matrix products (`cashflows @ discount_factors`), whose
//!   order of additions is BLAS's; the model file sums month by month, so the last bits differ.
//! - The seriatim models (BasicTerm_S, BasicTerm_SE, CashValue_SE) sum in Python's order: `sum(list ×
//!   discount_factors)` adds the months one by one from 0, which is the language's order, so their present
//!   values come out bit for bit (the test counts them and reports; it asserts the tolerance).
//!
//! The model points and tables are read as each model declares them (`table …`, LANGUAGE.md), from the files its
//! folder's `run.toml` names (the configuration `parfit run` reads), by the reader the plugin uses.
#![cfg(not(target_arch = "wasm32"))]

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use parfit_expr::projection::{
    AttrValue, Attribute, Points, SCENARIO, Table, ValueKind, compile_projection, numpy_normal_table, read_points,
    read_table, table_declarations,
};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A file of the repository as text, gunzipped when its name ends in `.gz`.
fn text(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    if path.extension().is_some_and(|e| e == "gz") {
        let mut s = String::new();
        flate2::read::GzDecoder::new(&bytes[..]).read_to_string(&mut s).unwrap();
        s
    } else {
        String::from_utf8(bytes).unwrap()
    }
}

/// (header, rows) of a CSV without quoted cells.
struct Csv {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

fn csv(path: &Path) -> Csv {
    let text = text(path);
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let split = |l: &str| l.split(',').map(|s| s.trim().to_string()).collect::<Vec<_>>();
    let header = split(lines.next().unwrap());
    Csv { header, rows: lines.map(split).collect() }
}

impl Csv {
    fn col(&self, name: &str) -> usize {
        self.header.iter().position(|h| h == name).unwrap_or_else(|| panic!("no column '{name}' in {:?}", self.header))
    }
}

fn num(s: &str) -> f64 {
    s.parse().unwrap_or_else(|_| panic!("'{s}' is not a number"))
}

/// A model's folder: its manifest's files by name.
struct Folder {
    dir: PathBuf,
    files: HashMap<String, PathBuf>,
}

fn folder(name: &str) -> Folder {
    let dir = root().join("examples/lifelib").join(name);
    let m = csv(&dir.join("manifest.csv"));
    let files = m.rows.iter().map(|r| (r[0].clone(), dir.join(&r[2]))).collect();
    Folder { dir, files }
}

impl Folder {
    fn csv(&self, name: &str) -> Csv {
        csv(self.files.get(name).unwrap_or_else(|| panic!("{}: no '{name}' in the manifest", self.dir.display())))
    }
}

/// A model's points and tables, read as the model declares them from the files its `run.toml` names
/// (`[projection] model_points` and `[projection.tables]`, paths relative to the folder), with the scenario
/// attribute the host adds last; `points` replaces the model-point file (EX1's moneyness points).
fn inputs(spec: &Spec, points: Option<&str>) -> (Points, Vec<Table>, Vec<Attribute>, String) {
    let dir = root().join("examples/lifelib").join(spec.folder);
    let config = text(&dir.join("run.toml"));
    let mut files: HashMap<String, PathBuf> = HashMap::new();
    // Tables generated as run.toml asks: numpy's normal draws (`{ generate = "numpy.standard_normal", … }`).
    let mut generated: HashMap<String, (u64, Vec<usize>, Vec<i64>)> = HashMap::new();
    let mut section = String::new();
    for line in config.lines().map(str::trim) {
        if line.starts_with('[') {
            section = line.to_string();
        } else if let Some((k, v)) = line.split_once(" = ")
            && v.starts_with('{')
            && section == "[projection.tables]"
        {
            assert!(v.contains("generate = \"numpy.standard_normal\""), "{line}");
            let after = |key: &str| v.split_once(&format!("{key} = ")).unwrap_or_else(|| panic!("{line}")).1;
            let list = |key: &str| -> Vec<i64> {
                let inner = after(key).trim_start_matches('[').split(']').next().unwrap();
                inner.split(',').map(|x| x.trim().parse().unwrap()).collect()
            };
            let seed = after("seed").split(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap();
            let size = list("size").into_iter().map(|n| n as usize).collect();
            generated.insert(k.to_string(), (seed, size, list("start")));
        } else if let Some((k, v)) = line.split_once(" = ")
            && v.starts_with('"')
        {
            let path = dir.join(v.trim_matches('"'));
            match (section.as_str(), k) {
                ("[projection]", "model_points") => files.insert("mp".into(), path),
                ("[projection]", "model") => files.insert("\0model".into(), path),
                ("[projection.tables]", _) => files.insert(k.to_string(), path),
                _ => None,
            };
        }
    }
    assert_eq!(files["\0model"], dir.join(spec.model), "{}: run.toml runs another model", spec.folder);
    if let Some(p) = points {
        files.insert("mp".into(), dir.join(p));
    }
    let source = text(&dir.join(spec.model));
    let decls = table_declarations(spec.model, &source).unwrap_or_else(|e| panic!("{e}"));
    let mut tables = vec![];
    let mut mp = None;
    for d in &decls {
        if let Some((seed, size, start)) = generated.get(&d.name) {
            let t = numpy_normal_table(d, "run.toml", spec.model, *seed, size, start).unwrap_or_else(|e| panic!("{e}"));
            tables.push(t);
            continue;
        }
        let path =
            files.get(&d.name).unwrap_or_else(|| panic!("{}: run.toml has no file for '{}'", spec.folder, d.name));
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if d.name == "mp" {
            // Another point file (EX1's moneyness points, keyed `point_id`) is read by its cells' kinds.
            let decl = if points.is_some() { None } else { Some(d) };
            mp = Some(read_points(decl, &name, &text(path)).unwrap_or_else(|e| panic!("{e}")));
        } else {
            tables.push(read_table(d, &name, &text(path)).unwrap_or_else(|e| panic!("{e}")));
        }
    }
    let points = mp.unwrap_or_else(|| panic!("{}: no model-point declaration", spec.model));
    let mut attributes = points.attributes.clone();
    attributes.push(Attribute { name: SCENARIO.into(), kind: ValueKind::Number });
    (points, tables, attributes, source)
}

/// One model: its folder, its file, the tables it reads and how its goldens' columns name its cells.
struct Spec {
    folder: &'static str,
    model: &'static str,
    /// Scenarios 1..=n, each a run with the attribute `scenario` (0: the model has none).
    scenarios: usize,
    /// `result_cf` / `result_pols` columns → the cells summed over the points each month.
    cf: &'static [(&'static str, &'static str)],
    pols: &'static [(&'static str, &'static str)],
    /// Audit columns with no cell, and why.
    audit_skip: &'static [&'static str],
    /// Results after lifelib's `result_pv` columns (checked elsewhere).
    extra_results: usize,
}

/// The monthly values and present values of every point, by running the model file.
struct Run {
    cells: Vec<String>,
    months: usize,
    /// By `point` (or `point,scenario`): the results (lifelib's `result_pv` columns, in order).
    results: HashMap<String, Vec<f64>>,
    /// By scenario (0 without), per cell, per month: the sum over the points in point order.
    totals: HashMap<usize, Vec<Vec<f64>>>,
    /// The first point's monthly rows (scenario 1).
    audit: Vec<f64>,
}

/// A golden's rows of one scenario (all rows for a model without).
fn of_scenario(golden: &Csv, scenario: usize) -> Vec<&Vec<String>> {
    match golden.header.iter().position(|h| h == "scen_id") {
        Some(c) => golden.rows.iter().filter(|r| num(&r[c]) as usize == scenario).collect(),
        None => golden.rows.iter().collect(),
    }
}

fn run(spec: &Spec, native: bool, limit: Option<usize>) -> Run {
    run_with(spec, native, limit, &[])
}

/// [`run`] with parameters of the model set (EX2's `sim_id`).
fn run_with(spec: &Spec, native: bool, limit: Option<usize>, extra: &[(&str, f64)]) -> Run {
    let f = folder(spec.folder);
    let cf = f.csv("result_cf");
    let months = cf.rows.iter().map(|r| num(&r[cf.col("t")]) as usize + 1).max().unwrap();
    let (points, tables, attributes, source) = inputs(spec, None);
    let mut out = Run { cells: vec![], months, results: HashMap::new(), totals: HashMap::new(), audit: vec![] };
    let scenarios: Vec<usize> = if spec.scenarios == 0 { vec![0] } else { (1..=spec.scenarios).collect() };
    let sum_scenarios = spec.scenarios > 1 && !cf.header.iter().any(|h| h == "scen_id");
    let params: Vec<(&str, f64)> = extra.to_vec();
    let mut program =
        compile_projection(spec.model, &source, &attributes, &tables, &params).unwrap_or_else(|e| panic!("{e}"));
    if native {
        program.compile_native().unwrap();
        program.compile_native_setup().unwrap();
    }
    out.cells = program.cells().map(str::to_string).collect();
    let width = out.cells.len();
    let mut runner = program.runner();
    let mut rows = vec![0.0; months * width];
    for scenario in scenarios {
        let mut totals = vec![vec![0.0; months]; width];
        let n = limit.unwrap_or(points.len()).min(points.len());
        let mut values = vec![];
        for p in 0..n {
            points.row(p, &mut values);
            values.push(AttrValue::Number(scenario.max(1) as f64));
            let id = points.id(p);
            runner.run(&values, months, Some(&mut rows)).unwrap_or_else(|e| panic!("point {id}: {e}"));
            let key = if scenario == 0 { id.to_string() } else { format!("{id},{scenario}") };
            out.results.insert(key, runner.results().collect());
            for (c, total) in totals.iter_mut().enumerate() {
                for (t, x) in total.iter_mut().enumerate() {
                    *x += rows[t * width + c];
                }
            }
            if p == 0 && scenario <= 1 {
                out.audit = rows.clone();
            }
        }
        // Where lifelib's monthly tables sum the scenarios (the savings examples), so does the run, scenario by
        // scenario in order (10,000 scenarios' monthly rows of every cell would not fit in memory).
        match out.totals.get_mut(&0) {
            Some(sum) if sum_scenarios => {
                sum.iter_mut().flatten().zip(totals.iter().flatten()).for_each(|(a, b)| *a += b);
            }
            _ => {
                out.totals.insert(if sum_scenarios { 0 } else { scenario }, totals);
            }
        }
    }
    out
}

/// The largest difference over a row, relative to the row's largest golden magnitude; asserts it is within
/// 1e-12. Returns (bit-identical values, values, the largest relative difference).
fn close(what: &str, got: &[f64], want: &[f64]) -> (usize, usize, f64) {
    assert_eq!(got.len(), want.len(), "{what}: {} values, the golden has {}", got.len(), want.len());
    let scale = want.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    let worst = got.iter().zip(want).map(|(g, w)| (g - w).abs()).fold(0.0f64, f64::max);
    assert!(worst <= 1e-12 * scale, "{what}: off by {worst:e} (scale {scale:e})\n got {got:?}\nwant {want:?}");
    let same = got.iter().zip(want).filter(|(g, w)| g.to_bits() == w.to_bits() || **g == **w).count();
    (same, got.len(), if scale > 0.0 { worst / scale } else { worst })
}

/// The golden monthly columns `(golden, cell)` against the run's totals, month by month, scenario by scenario
/// (or, where the golden sums the scenarios too, summed over them).
fn check_monthly(spec: &Spec, run: &Run, golden: &Csv, columns: &[(&str, &str)]) {
    let cols: Vec<(usize, usize)> = columns
        .iter()
        .map(|(g, c)| {
            let cell = run.cells.iter().position(|n| n == c).unwrap_or_else(|| panic!("{}: no cell '{c}'", spec.model));
            (golden.col(g), cell)
        })
        .collect();
    let mut by_scenario: Vec<(usize, Vec<Vec<f64>>)> = run.totals.iter().map(|(s, t)| (*s, t.clone())).collect();
    by_scenario.sort_by_key(|(s, _)| *s);
    if run.totals.len() > 1 && !golden.header.iter().any(|h| h == "scen_id") {
        let mut sum = by_scenario[0].1.clone();
        for (_, t) in &by_scenario[1..] {
            for (a, b) in sum.iter_mut().flatten().zip(t.iter().flatten()) {
                *a += b;
            }
        }
        by_scenario = vec![(0, sum)];
    }
    for (scenario, totals) in &by_scenario {
        let rows = of_scenario(golden, *scenario);
        assert_eq!(rows.len(), run.months);
        for (t, row) in rows.iter().enumerate() {
            let want: Vec<f64> = cols.iter().map(|&(g, _)| num(&row[g])).collect();
            let got: Vec<f64> = cols.iter().map(|&(_, c)| totals[c][t]).collect();
            close(&format!("{}: scenario {scenario}, month {t}", spec.model), &got, &want);
        }
    }
}

/// lifelib's audit column name as the model's cell: `pols_if_at(BEF_MAT)` is `pols_if_bef_mat`,
/// `claims(DEATH)` is `claims_death`.
fn cell_name(column: &str) -> String {
    column.replace("_at(", "_").replace('(', "_").replace(')', "").to_lowercase()
}

fn check(spec: &Spec) {
    let f = folder(spec.folder);
    let start = std::time::Instant::now();
    let run = run(spec, true, None);
    let took = start.elapsed();
    let (same, all, worst) = check_pvs(spec, &run, &f, "result_pv", "result_pv_totals");
    check_monthly(spec, &run, &f.csv("result_cf"), spec.cf);
    if !spec.pols.is_empty() {
        check_monthly(spec, &run, &f.csv("result_pols"), spec.pols);
    }
    check_audit(spec, &run, &f);
    eprintln!(
        "{}: {} runs, {same} of {all} present values bit-identical to lifelib's, the rest within {worst:.1e} of \
         their row; compiled and run natively in {took:.2?} (at most {} months a run)",
        spec.model,
        run.results.len(),
        run.months
    );
}

/// Present values per point (and scenario), and their totals in the golden's order: (bit-identical values,
/// values, the largest relative difference).
fn check_pvs(spec: &Spec, run: &Run, f: &Folder, name: &str, totals_name: &str) -> (usize, usize, f64) {
    let pv = f.csv(name);
    let keys = if spec.scenarios == 0 { 1 } else { 2 };
    assert_eq!(pv.rows.len(), run.results.len(), "{}: points", spec.model);
    let (mut same, mut all, mut worst) = (0, 0, 0.0f64);
    let mut ordered = vec![];
    for row in &pv.rows {
        let key = row[..keys].join(",");
        let got = run.results.get(&key).unwrap_or_else(|| panic!("{}: no run of {key}", spec.model));
        let want: Vec<f64> = row[keys..].iter().map(|c| num(c)).collect();
        assert_eq!(got.len(), want.len() + spec.extra_results, "{}: results", spec.model);
        let got = &got[..want.len()];
        let (s, n, w) = close(&format!("{}: point {key}", spec.model), got, &want);
        same += s;
        all += n;
        worst = worst.max(w);
        ordered.push(got);
    }
    let totals = f.csv(totals_name);
    let want: Vec<f64> = totals.rows.iter().map(|r| num(&r[1])).collect();
    let got: Vec<f64> = (0..want.len()).map(|k| ordered.iter().map(|r| r[k]).fold(0.0, |a, b| a + b)).collect();
    close(&format!("{}: totals", spec.model), &got, &want);
    (same, all, worst)
}

fn check_audit(spec: &Spec, run: &Run, f: &Folder) {
    // The audit point: every cell lifelib evaluated, month by month (empty where lifelib's cell is undefined).
    let audit = f.csv("audit_point1");
    let width = run.cells.len();
    let mut cells_checked = 0;
    for (g, name) in audit.header.iter().enumerate().skip(1) {
        if spec.audit_skip.contains(&name.as_str()) {
            continue;
        }
        let cell = cell_name(name);
        let c = run.cells.iter().position(|n| *n == cell).unwrap_or_else(|| {
            panic!("{}: the audit's '{name}' is no cell of the model (looked for '{cell}')", spec.model)
        });
        let (got, want): (Vec<f64>, Vec<f64>) = audit
            .rows
            .iter()
            .enumerate()
            .filter(|(_, r)| !r[g].is_empty())
            .map(|(t, r)| {
                let w = match r[g].as_str() {
                    "True" => 1.0,
                    "False" => 0.0,
                    s => num(s),
                };
                (run.audit[t * width + c], w)
            })
            .unzip();
        close(&format!("{}: audit '{name}'", spec.model), &got, &want);
        cells_checked += 1;
    }
    assert!(cells_checked > 10);
}

/// The same bits interpreted and native, on the first points and scenarios.
fn interpreted_is_native(spec: &Spec) {
    let spec = &Spec { scenarios: spec.scenarios.min(100), ..*spec };
    let (a, b) = (run(spec, false, Some(300)), run(spec, true, Some(300)));
    let bits = |r: &Run| {
        let mut keys: Vec<&String> = r.results.keys().collect();
        keys.sort();
        let mut scenarios: Vec<&usize> = r.totals.keys().collect();
        scenarios.sort();
        let results = keys.into_iter().flat_map(|k| &r.results[k]);
        let totals = scenarios.into_iter().flat_map(|s| r.totals[s].iter().flatten());
        results.chain(totals).map(|x| x.to_bits()).collect::<Vec<_>>()
    };
    assert!(bits(&a) == bits(&b), "{}: interpreted and native differ", spec.model);
}

const EXAMPLE_CF: &[(&str, &str)] = &[
    ("Premiums", "premiums"),
    ("Claims", "claims"),
    ("Expenses", "expenses"),
    ("Commissions", "commissions"),
    ("Net Cashflow", "net_cf"),
];

const CASH_VALUE_EX1: Spec = Spec {
    folder: "cashvalue_me_ex1",
    model: "cashvalue_me_ex1.prj",
    scenarios: 10_000,
    cf: EXAMPLE_CF,
    pols: POLS,
    audit_skip: &[],
    extra_results: 2,
};

#[test]
fn cashvalue_me_ex1_reproduces_lifelib_on_every_scenario() {
    check(&CASH_VALUE_EX1);
    interpreted_is_native(&CASH_VALUE_EX1);
}

/// EX1's closed-form value of the maturity guarantee (its last result, `option_put`) over the moneyness points,
/// against lifelib's `formula_option_put` (`option_values_moneyness.csv`, column `black_scholes`). The put does
/// not depend on the scenario.
#[test]
fn cashvalue_me_ex1_closed_form_put_matches_lifelib() {
    let f = folder("cashvalue_me_ex1");
    let golden = f.csv("option_values_moneyness");
    let (points, tables, attributes, source) = inputs(&CASH_VALUE_EX1, Some("model_point_moneyness.csv"));
    let months = of_scenario(&f.csv("result_cf"), 1).len();
    for native in [false, true] {
        let mut program = compile_projection(CASH_VALUE_EX1.model, &source, &attributes, &tables, &[])
            .unwrap_or_else(|e| panic!("{e}"));
        if native {
            program.compile_native().unwrap();
        }
        assert_eq!(program.results().last(), Some("option_put"));
        let mut runner = program.runner();
        let mut worst = 0.0f64;
        let mut values = vec![];
        assert_eq!(points.len(), golden.rows.len());
        for (p, want) in golden.rows.iter().enumerate() {
            assert_eq!(points.id(p), want[0]);
            points.row(p, &mut values);
            values.push(AttrValue::Number(1.0));
            runner.run(&values, months, None).unwrap();
            let put = runner.results().last().unwrap();
            let want: Vec<f64> = want[1..].iter().map(|c| num(c)).collect();
            let scale = want.iter().fold(0.0f64, |m, x| m.max(x.abs()));
            let bs = want[golden.col("black_scholes") - 1];
            assert!((put - bs).abs() <= 1e-12 * scale, "point {}: put {put}, lifelib {bs}", want[0]);
            worst = worst.max((put - bs).abs() / scale);
        }
        eprintln!(
            "EX1's closed-form put ({}): within {worst:.1e} of lifelib's",
            if native { "native" } else { "interpreted" }
        );
    }
}

/// EX1's Monte Carlo value of the maturity guarantee over the moneyness points: per point, the mean over all
/// 10,000 scenarios of its cost (the result `guarantee_cost`, lifelib's `pv_claims_over_av('MATURITY')`), against
/// lifelib's (`option_values_moneyness.csv`, column `monte_carlo`, the notebook's `groupby(point_id).mean()`).
#[test]
fn cashvalue_me_ex1_monte_carlo_guarantee_matches_lifelib() {
    let f = folder("cashvalue_me_ex1");
    let golden = f.csv("option_values_moneyness");
    let (points, tables, attributes, source) = inputs(&CASH_VALUE_EX1, Some("model_point_moneyness.csv"));
    let months = of_scenario(&f.csv("result_cf"), 1).len();
    let mut program =
        compile_projection(CASH_VALUE_EX1.model, &source, &attributes, &tables, &[]).unwrap_or_else(|e| panic!("{e}"));
    program.compile_native().unwrap();
    let k = program.results().position(|r| r == "guarantee_cost").expect("the result guarantee_cost");
    let mut runner = program.runner();
    let mut values = vec![];
    let mut worst = 0.0f64;
    assert_eq!(points.len(), golden.rows.len());
    for (p, row) in golden.rows.iter().enumerate() {
        assert_eq!(points.id(p), row[0]);
        let mut sum = 0.0;
        for scenario in 1..=CASH_VALUE_EX1.scenarios {
            points.row(p, &mut values);
            values.push(AttrValue::Number(scenario as f64));
            runner.run(&values, months, None).unwrap();
            sum += runner.results().nth(k).unwrap();
        }
        let mc = sum / CASH_VALUE_EX1.scenarios as f64;
        let want = num(&row[golden.col("monte_carlo")]);
        assert!((mc - want).abs() <= 1e-12 * want.abs(), "point {}: {mc}, lifelib {want}", row[0]);
        worst = worst.max((mc - want).abs() / want.abs());
    }
    eprintln!("EX1's Monte Carlo guarantee over 10,000 scenarios: within {worst:.1e} of lifelib's");
}

const CASH_VALUE_EX4: Spec = Spec {
    folder: "cashvalue_me_ex4",
    model: "cashvalue_me_ex4.prj",
    scenarios: 1_000,
    cf: EXAMPLE_CF,
    pols: POLS,
    audit_skip: &[],
    extra_results: 0,
};

#[test]
fn cashvalue_me_ex4_reproduces_lifelib_on_every_scenario() {
    check(&CASH_VALUE_EX4);
    interpreted_is_native(&CASH_VALUE_EX4);
}

const CASH_VALUE_EX2: Spec = Spec {
    folder: "cashvalue_me_ex2",
    model: "cashvalue_me_ex2.prj",
    scenarios: 10_000,
    cf: EXAMPLE_CF,
    pols: POLS,
    audit_skip: &[],
    extra_results: 3,
};

/// EX2, simulation by simulation (`sim_id` 1..=5): present values, monthly vectors, the audit point (simulation
/// 1) and `Summary.result()`, the means over the scenarios of the guarantees' costs and the fees.
#[test]
fn cashvalue_me_ex2_reproduces_lifelib_on_every_scenario() {
    let spec = &CASH_VALUE_EX2;
    let f = folder(spec.folder);
    let filter = |golden: &Csv, sim: usize| Csv {
        header: golden.header.clone(),
        rows: golden.rows.iter().filter(|r| num(&r[golden.col("sim_id")]) as usize == sim).cloned().collect(),
    };
    let (cf, pols, summary) = (f.csv("result_cf"), f.csv("result_pols"), f.csv("summary_result"));
    let sims = f.csv("sim_param_table").rows.len();
    assert_eq!(sims, 5);
    for sim in 1..=sims {
        let run = run_with(spec, true, None, &[("sim_id", sim as f64)]);
        let (same, all, worst) =
            check_pvs(spec, &run, &f, &format!("result_pv_sim{sim}"), &format!("result_pv_totals_sim{sim}"));
        check_monthly(spec, &run, &filter(&cf, sim), spec.cf);
        check_monthly(spec, &run, &filter(&pols, sim), spec.pols);
        if sim == 1 {
            check_audit(spec, &run, &f);
        }
        // Summary: per point, the means over the scenarios (the model's last three results).
        let rows = filter(&summary, sim);
        for row in &rows.rows {
            let point = &row[rows.col("point_id")];
            let runs: Vec<&Vec<f64>> = (1..=spec.scenarios).map(|s| &run.results[&format!("{point},{s}")]).collect();
            let n = runs.len() as f64;
            let mean = |f: &dyn Fn(&[f64]) -> f64| runs.iter().map(|r| f(r)).sum::<f64>() / n;
            let k = runs[0].len() - 3;
            let (gmdb, gmab, fees) = (mean(&|r| r[k]), mean(&|r| r[k + 1]), mean(&|r| r[k + 2]));
            let total = mean(&|r| r[k] + r[k + 1]);
            let got = [gmdb, gmab, total, fees, fees / total];
            let want: Vec<f64> = ["GMDB", "GMAB", "GMxB Total", "PV Fees", "Coverage Ratio"]
                .iter()
                .map(|c| num(&row[rows.col(c)]))
                .collect();
            close(&format!("EX2 summary, simulation {sim}, point {point}"), &got[..4], &want[..4]);
            close(&format!("EX2 coverage ratio, simulation {sim}, point {point}"), &got[4..], &want[4..]);
        }
        eprintln!(
            "{} simulation {sim}: {} runs, {same} of {all} present values bit-identical to lifelib's, the rest \
             within {worst:.1e} of their row",
            spec.model,
            run.results.len()
        );
    }
    interpreted_is_native(spec);
}

const POLS: &[(&str, &str)] = &[
    ("pols_if", "pols_if"),
    ("pols_maturity", "pols_maturity"),
    ("pols_new_biz", "pols_new_biz"),
    ("pols_death", "pols_death"),
    ("pols_lapse", "pols_lapse"),
];

const CASH_VALUE_SE: Spec = Spec {
    folder: "cashvalue_se",
    model: "cashvalue_se.prj",
    scenarios: 10,
    cf: &[
        ("Premiums", "premiums"),
        ("Death", "claims_death"),
        ("Lapse", "claims_lapse"),
        ("Matuirty", "claims_maturity"),
        ("Expenses", "expenses"),
        ("Commissions", "commissions"),
        ("Investment Income", "inv_income"),
        ("Change in AV", "av_change"),
        ("Net Cashflow", "net_cf"),
    ],
    pols: POLS,
    audit_skip: &[],
    extra_results: 0,
};

#[test]
fn cashvalue_se_reproduces_lifelib() {
    check(&CASH_VALUE_SE);
    interpreted_is_native(&CASH_VALUE_SE);
}

const BASIC_CF: &[(&str, &str)] = &[
    ("Premiums", "premiums"),
    ("Claims", "claims"),
    ("Expenses", "expenses"),
    ("Commissions", "commissions"),
    ("Net Cashflow", "net_cf"),
];

const BASIC_TERM_M: Spec = Spec {
    folder: "basicterm_m",
    model: "basicterm_m.prj",
    scenarios: 0,
    cf: BASIC_CF,
    pols: &[],
    audit_skip: &[],
    extra_results: 0,
};

const BASIC_TERM_S: Spec = Spec {
    folder: "basicterm_s",
    model: "basicterm_s.prj",
    scenarios: 0,
    cf: BASIC_CF,
    pols: &[],
    audit_skip: &[],
    extra_results: 0,
};

#[test]
fn basicterm_s_reproduces_lifelib() {
    check(&BASIC_TERM_S);
    interpreted_is_native(&BASIC_TERM_S);
}

const BASIC_TERM_SE: Spec = Spec {
    folder: "basicterm_se",
    model: "basicterm_se.prj",
    scenarios: 0,
    cf: BASIC_CF,
    pols: POLS,
    audit_skip: &[],
    extra_results: 0,
};

#[test]
fn basicterm_se_reproduces_lifelib() {
    check(&BASIC_TERM_SE);
    interpreted_is_native(&BASIC_TERM_SE);
}

#[test]
fn basicterm_m_reproduces_lifelib() {
    check(&BASIC_TERM_M);
    interpreted_is_native(&BASIC_TERM_M);
}
