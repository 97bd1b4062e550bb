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
//! The tables are built here from the committed CSVs (`tables` below, the one place that knows their layout).
#![cfg(not(target_arch = "wasm32"))]

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use parfit_expr::projection::{AttrValue, Attribute, ColumnData, Key, Table, ValueKind, compile_projection};

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

/// The assumption tables, from the models' CSVs (lifelib's layouts).
mod tables {
    use super::*;

    fn ints(values: impl IntoIterator<Item = i64>, ultimate: bool) -> Key {
        Key::Ints { values: values.into_iter().collect(), ultimate }
    }

    /// `mort[age, duration]`: rates by attained age (rows) × policy year (columns 0..; the last ultimate), 0
    /// outside the table.
    pub fn mort(f: &Csv) -> Table {
        let first = num(&f.rows[0][0]) as i64;
        Table {
            name: "mort".into(),
            keys: vec![
                ("age".into(), ints(first..first + f.rows.len() as i64, false)),
                ("duration".into(), ints(0..f.header.len() as i64 - 1, true)),
            ],
            columns: vec![(
                "rate".into(),
                ColumnData::Numbers(f.rows.iter().flat_map(|r| r[1..].iter().map(|c| num(c))).collect()),
            )],
            missing: Some(0.0),
        }
    }

    /// `disc_rate_ann[year]`: the annual spot rate by year.
    pub fn disc(f: &Csv) -> Table {
        Table {
            name: "disc_rate_ann".into(),
            keys: vec![("year".into(), ints(f.rows.iter().map(|r| num(&r[0]) as i64), false))],
            columns: vec![("zero_spot".into(), ColumnData::Numbers(f.rows.iter().map(|r| num(&r[1])).collect()))],
            missing: None,
        }
    }

    /// `premium_table[age_at_entry, policy_term]`: a full grid, age-major.
    pub fn premium(f: &Csv) -> Table {
        let mut ages: Vec<i64> = f.rows.iter().map(|r| num(&r[0]) as i64).collect();
        let mut terms: Vec<i64> = f.rows.iter().map(|r| num(&r[1]) as i64).collect();
        ages.dedup();
        terms.sort();
        terms.dedup();
        assert_eq!(ages.len() * terms.len(), f.rows.len(), "the premium table is a full grid, age-major");
        Table {
            name: "premium_table".into(),
            keys: vec![("age_at_entry".into(), ints(ages, false)), ("policy_term".into(), ints(terms, false))],
            columns: vec![("premium_rate".into(), ColumnData::Numbers(f.rows.iter().map(|r| num(&r[2])).collect()))],
            missing: None,
        }
    }
}

/// One model: its folder, its file, the tables it reads and how its goldens' columns name its cells.
struct Spec {
    folder: &'static str,
    model: &'static str,
    tables: fn(&Folder) -> Vec<Table>,
    /// `result_cf` / `result_pols` columns → the cells summed over the points each month.
    cf: &'static [(&'static str, &'static str)],
    pols: &'static [(&'static str, &'static str)],
    /// Audit columns with no cell, and why.
    audit_skip: &'static [&'static str],
}

/// The monthly values and present values of every point, by running the model file.
struct Run {
    cells: Vec<String>,
    months: usize,
    /// Per point: the results (lifelib's `result_pv` columns, in order).
    results: Vec<Vec<f64>>,
    /// Per cell, per month: the sum over the points in point order.
    totals: Vec<Vec<f64>>,
    /// The first point's monthly rows.
    audit: Vec<f64>,
}

fn run(spec: &Spec, native: bool, limit: Option<usize>) -> Run {
    let f = folder(spec.folder);
    let points = f.csv("model_point_table");
    let months = f.csv("result_cf").rows.len();
    // Model-point columns after the index: numbers, or text where any value is not one.
    let attributes: Vec<Attribute> = points.header[1..]
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let number = points.rows.iter().all(|r| r[i + 1].parse::<f64>().is_ok());
            Attribute { name: name.clone(), kind: if number { ValueKind::Number } else { ValueKind::Text } }
        })
        .collect();
    let path = f.dir.join(spec.model);
    let source = text(&path);
    let mut program =
        compile_projection(spec.model, &source, &attributes, &(spec.tables)(&f), &[]).unwrap_or_else(|e| panic!("{e}"));
    if native {
        program.compile_native().unwrap();
    }
    let cells: Vec<String> = program.cells().map(str::to_string).collect();
    let width = cells.len();
    let mut rows = vec![0.0; months * width];
    let mut totals = vec![vec![0.0; months]; width];
    let mut results = vec![];
    let mut audit = vec![];
    let mut runner = program.runner();
    let n = limit.unwrap_or(points.rows.len()).min(points.rows.len());
    for (p, row) in points.rows[..n].iter().enumerate() {
        let values: Vec<AttrValue> = attributes
            .iter()
            .zip(&row[1..])
            .map(|(a, v)| match a.kind {
                ValueKind::Text => AttrValue::Text(v),
                _ => AttrValue::Number(num(v)),
            })
            .collect();
        runner.run(&values, months, Some(&mut rows)).unwrap_or_else(|e| panic!("point {}: {e}", row[0]));
        results.push(runner.results().collect());
        for (c, total) in totals.iter_mut().enumerate() {
            for (t, x) in total.iter_mut().enumerate() {
                *x += rows[t * width + c];
            }
        }
        if p == 0 {
            audit = rows.clone();
        }
    }
    Run { cells, months, results, totals, audit }
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

/// The golden monthly columns `(golden, cell)` against the run's totals, month by month.
fn check_monthly(spec: &Spec, run: &Run, golden: &Csv, columns: &[(&str, &str)]) {
    let cols: Vec<(usize, usize)> = columns
        .iter()
        .map(|(g, c)| {
            let cell = run.cells.iter().position(|n| n == c).unwrap_or_else(|| panic!("{}: no cell '{c}'", spec.model));
            (golden.col(g), cell)
        })
        .collect();
    assert_eq!(golden.rows.len(), run.months);
    for (t, row) in golden.rows.iter().enumerate() {
        let want: Vec<f64> = cols.iter().map(|&(g, _)| num(&row[g])).collect();
        let got: Vec<f64> = cols.iter().map(|&(_, c)| run.totals[c][t]).collect();
        close(&format!("{}: month {t}", spec.model), &got, &want);
    }
}

/// lifelib's audit column name as the model's cell: `pols_if_at(BEF_MAT)` is `pols_if_bef_mat`,
/// `claims(DEATH)` is `claims_death`.
fn cell_name(column: &str) -> String {
    column.replace("_at(", "_").replace('(', "_").replace(')', "").to_lowercase()
}

fn check(spec: &Spec) {
    let f = folder(spec.folder);
    let run = run(spec, true, None);
    // Present values per point, and their totals in point order.
    let pv = f.csv("result_pv");
    assert_eq!(pv.rows.len(), run.results.len(), "{}: points", spec.model);
    let (mut same, mut all, mut worst) = (0, 0, 0.0f64);
    for (row, got) in pv.rows.iter().zip(&run.results) {
        let want: Vec<f64> = row[1..].iter().map(|c| num(c)).collect();
        let (s, n, w) = close(&format!("{}: point {}", spec.model, row[0]), got, &want);
        same += s;
        all += n;
        worst = worst.max(w);
    }
    let totals = f.csv("result_pv_totals");
    let want: Vec<f64> = totals.rows.iter().map(|r| num(&r[1])).collect();
    let got: Vec<f64> = (0..want.len()).map(|k| run.results.iter().map(|r| r[k]).fold(0.0, |a, b| a + b)).collect();
    close(&format!("{}: totals", spec.model), &got, &want);
    check_monthly(spec, &run, &f.csv("result_cf"), spec.cf);
    if !spec.pols.is_empty() {
        check_monthly(spec, &run, &f.csv("result_pols"), spec.pols);
    }
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
    eprintln!(
        "{}: {} points, {same} of {all} present values bit-identical to lifelib's, the rest within {worst:.1e} of \
         their row",
        spec.model,
        run.results.len()
    );
}

/// The same bits interpreted and native, on the first points.
fn interpreted_is_native(spec: &Spec) {
    let (a, b) = (run(spec, false, Some(300)), run(spec, true, Some(300)));
    let bits =
        |r: &Run| r.results.iter().flatten().chain(r.totals.iter().flatten()).map(|x| x.to_bits()).collect::<Vec<_>>();
    assert!(bits(&a) == bits(&b), "{}: interpreted and native differ", spec.model);
}

fn basic_term(f: &Folder) -> Vec<Table> {
    vec![tables::mort(&f.csv("mort_table")), tables::disc(&f.csv("disc_rate_ann"))]
}

fn basic_term_premium(f: &Folder) -> Vec<Table> {
    let mut t = basic_term(f);
    t.push(tables::premium(&f.csv("premium_table")));
    t
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
    tables: basic_term,
    cf: BASIC_CF,
    pols: &[],
    audit_skip: &[],
};

const BASIC_TERM_S: Spec = Spec {
    folder: "basicterm_s",
    model: "basicterm_s.prj",
    tables: basic_term,
    cf: BASIC_CF,
    pols: &[],
    audit_skip: &[],
};

#[test]
fn basicterm_s_reproduces_lifelib() {
    check(&BASIC_TERM_S);
    interpreted_is_native(&BASIC_TERM_S);
}

const BASIC_TERM_SE: Spec = Spec {
    folder: "basicterm_se",
    model: "basicterm_se.prj",
    tables: basic_term_premium,
    cf: BASIC_CF,
    pols: &[
        ("pols_if", "pols_if"),
        ("pols_maturity", "pols_maturity"),
        ("pols_new_biz", "pols_new_biz"),
        ("pols_death", "pols_death"),
        ("pols_lapse", "pols_lapse"),
    ],
    audit_skip: &[],
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
