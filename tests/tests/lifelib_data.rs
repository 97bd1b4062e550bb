//! The lifelib models as data (`examples/lifelib/<model>/`, made by `examples/lifelib/make_goldens.py`), checked
//! without parfit: every file a model's `manifest.csv` names exists and is a rectangular CSV; every golden is
//! finite, its months run 0, 1, 2, … in each scenario, and its per-point present values sum to its portfolio
//! totals within 1e-12 of the largest value. This catches a broken, truncated or hand-edited file; whether
//! parfit reproduces the goldens is for the tests of the models themselves.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use parfit_tests::root;

/// Names lifelib gives the index columns of its results (`poind_id` is its spelling in the savings samples).
const INDEX: [&str; 6] = ["point_id", "poind_id", "policy_id", "scen_id", "sim_id", "t"];

/// The models of `make_goldens.py`, one folder each.
const MODELS: [&str; 9] = [
    "basicterm_s",
    "basicterm_se",
    "basicterm_m",
    "basicterm_me",
    "cashvalue_me",
    "cashvalue_se",
    "cashvalue_me_ex1",
    "cashvalue_me_ex2",
    "cashvalue_me_ex4",
];

/// No file of the data may be larger than this: the repository stays small.
const MAX_BYTES: u64 = 2_200_000;

fn lifelib() -> PathBuf {
    root().join("examples").join("lifelib")
}

/// A CSV file, gunzipped when it ends in `.gz`: its header and rows of cells.
fn csv_file(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let size = bytes.len() as u64;
    assert!(size <= MAX_BYTES, "{}: {size} bytes, more than {MAX_BYTES}", path.display());
    let mut text = String::new();
    if path.extension().is_some_and(|e| e == "gz") {
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_string(&mut text)
            .unwrap_or_else(|e| panic!("{}: not gzip-compressed UTF-8: {e}", path.display()));
    } else {
        text = String::from_utf8(bytes).unwrap_or_else(|e| panic!("{}: not UTF-8: {e}", path.display()));
    }
    let mut reader = csv::ReaderBuilder::new().has_headers(true).from_reader(text.as_bytes());
    let header: Vec<String> =
        reader.headers().unwrap_or_else(|e| panic!("{}: {e}", path.display())).iter().map(str::to_string).collect();
    let rows: Vec<Vec<String>> = reader
        .records()
        .enumerate()
        .map(|(i, r)| {
            let r = r.unwrap_or_else(|e| panic!("{} row {}: {e}", path.display(), i + 2));
            r.iter().map(str::to_string).collect()
        })
        .collect();
    assert!(!rows.is_empty(), "{}: no rows", path.display());
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row.len(), header.len(), "{} row {}: cells vs header", path.display(), i + 2);
    }
    (header, rows)
}

/// A model's manifest: name → (role, path).
fn manifest(model: &str) -> BTreeMap<String, (String, PathBuf)> {
    let dir = lifelib().join(model);
    let (header, rows) = csv_file(&dir.join("manifest.csv"));
    assert_eq!(header, ["name", "role", "path"], "{model}/manifest.csv header");
    let mut out = BTreeMap::new();
    for row in rows {
        let path = dir.join(&row[2]);
        assert!(path.is_file(), "{model}: {} names {}, which does not exist", row[0], path.display());
        assert!(out.insert(row[0].clone(), (row[1].clone(), path)).is_none(), "{model}: {} twice", row[0]);
    }
    out
}

/// How many leading columns are lifelib's index (point, scenario, simulation, month).
fn index_columns(header: &[String]) -> usize {
    header.iter().take_while(|h| INDEX.contains(&h.as_str())).count()
}

/// The numeric part of a golden: index tuples and finite values (an audit's empty cell, a month where lifelib's
/// cell is not defined, is NaN).
fn golden(path: &Path, empty_allowed: bool) -> (Vec<String>, Vec<Vec<i64>>, Vec<Vec<f64>>) {
    let (header, rows) = csv_file(path);
    let k = index_columns(&header);
    assert!(k < header.len(), "{}: no value columns", path.display());
    let mut ids = Vec::with_capacity(rows.len());
    let mut values = Vec::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        let id: Vec<i64> = row[..k]
            .iter()
            .map(|c| c.parse().unwrap_or_else(|_| panic!("{} row {}: index '{c}'", path.display(), i + 2)))
            .collect();
        let v: Vec<f64> = row[k..]
            .iter()
            .map(|c| {
                if empty_allowed && c.is_empty() {
                    return f64::NAN;
                }
                let x: f64 = c.parse().unwrap_or_else(|_| panic!("{} row {}: '{c}'", path.display(), i + 2));
                assert!(x.is_finite(), "{} row {}: {x}", path.display(), i + 2);
                x
            })
            .collect();
        ids.push(id);
        values.push(v);
    }
    (header[k..].to_vec(), ids, values)
}

/// Compensated (Neumaier) sum, so the check measures the file and not the order of summation.
fn sum(values: impl Iterator<Item = f64>) -> f64 {
    let (mut s, mut c) = (0.0f64, 0.0f64);
    for v in values {
        let t = s + v;
        c += if s.abs() >= v.abs() { (s - t) + v } else { (v - t) + s };
        s = t;
    }
    s + c
}

/// Per-point present values: unique index tuples, and column sums equal to the totals file.
fn check_pv(model: &str, pv: &Path, totals: &Path) {
    let (columns, ids, values) = golden(pv, false);
    let mut seen = ids.clone();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), ids.len(), "{model}: a point (and scenario) twice in {}", pv.display());
    let (theader, trows) = csv_file(totals);
    assert_eq!(theader.get(1).map(String::as_str), Some("total"), "{}", totals.display());
    let names: Vec<&str> = trows.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(names, columns.iter().map(String::as_str).collect::<Vec<_>>(), "{model}: totals' columns");
    for (j, row) in trows.iter().enumerate() {
        let total: f64 = row[1].parse().unwrap_or_else(|_| panic!("{}: '{}'", totals.display(), row[1]));
        let ours = sum(values.iter().map(|v| v[j]));
        let largest = values.iter().fold(total.abs(), |m, v| m.max(v[j].abs())).max(f64::MIN_POSITIVE);
        let err = (ours - total).abs() / largest;
        assert!(err <= 1e-12, "{model} {}: rows sum to {ours}, totals say {total} ({err:e})", columns[j]);
    }
}

/// Monthly vectors: the last index column is `t`, running 0, 1, 2, … within each value of the others; every
/// column has a value in some month. Returns the value columns.
fn check_monthly(model: &str, path: &Path, min_months: usize, empty_allowed: bool) -> Vec<String> {
    let (header, _) = csv_file(path);
    let k = index_columns(&header);
    assert!(k >= 1 && header[k - 1] == "t", "{model}: {} has no t column", path.display());
    let (columns, ids, values) = golden(path, empty_allowed);
    for (j, c) in columns.iter().enumerate() {
        assert!(values.iter().any(|v| !v[j].is_nan()), "{model}: {} column {c} is empty", path.display());
    }
    let mut months = 0usize;
    for (i, id) in ids.iter().enumerate() {
        let (group, t) = id.split_at(k - 1);
        let expected = if i > 0 && ids[i - 1][..k - 1] == *group { ids[i - 1][k - 1] + 1 } else { 0 };
        assert_eq!(t[0], expected, "{model}: {} row {}: t", path.display(), i + 2);
        months = months.max(t[0] as usize + 1);
    }
    assert!(months >= min_months, "{model}: {} has {months} months", path.display());
    columns
}

#[test]
fn every_model_has_its_inputs_and_goldens() {
    let mut folders: Vec<String> = std::fs::read_dir(lifelib())
        .expect("examples/lifelib")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_dir())
        .map(|p| p.file_name().expect("name").to_string_lossy().into_owned())
        .filter(|name| !name.starts_with(['_', '.'])) // __pycache__ of a local run
        .collect();
    folders.sort();
    let mut listed: Vec<&str> = MODELS.to_vec();
    listed.sort();
    assert_eq!(folders, listed, "examples/lifelib's folders vs the models this test checks");
    for model in MODELS {
        let m = manifest(model);
        let roles: Vec<&str> = m.values().map(|(r, _)| r.as_str()).collect();
        assert!(roles.iter().filter(|r| **r == "input").count() >= 3, "{model}: inputs {roles:?}");
        for role in ["result_pv", "result_pv_totals", "result_cf", "audit"] {
            assert!(roles.contains(&role), "{model}: no {role}");
        }
        for (name, (role, path)) in &m {
            if role == "input" {
                let (header, _) = csv_file(path);
                assert!(header.len() >= 2, "{model}: input {name} has {} columns", header.len());
            }
        }
    }
}

#[test]
fn present_values_sum_to_their_totals() {
    for model in MODELS {
        let m = manifest(model);
        let mut checked = 0;
        for (name, (role, pv)) in &m {
            if role != "result_pv" {
                continue;
            }
            let totals_name = name.replacen("result_pv", "result_pv_totals", 1);
            let (role, totals) = m.get(&totals_name).unwrap_or_else(|| panic!("{model}: {name} has no {totals_name}"));
            assert_eq!(role, "result_pv_totals", "{model}: {totals_name}");
            check_pv(model, pv, totals);
            checked += 1;
        }
        assert!(checked >= 1, "{model}: no present values");
    }
}

#[test]
fn monthly_results_audits_and_summaries_are_whole() {
    for model in MODELS {
        let m = manifest(model);
        for (name, (role, path)) in &m {
            match role.as_str() {
                "result_cf" | "result_pols" => {
                    check_monthly(model, path, 12, false);
                }
                "audit" => {
                    let columns = check_monthly(model, path, 12, true);
                    assert!(columns.len() >= 10, "{model}: {name} has {} cells", columns.len());
                }
                "option_values" | "summary" => {
                    golden(path, false);
                }
                _ => {}
            }
        }
    }
}
