//! The engine against lifelib 0.17.2's own numbers (tests/data/lifelib_*/, see SOURCE.md there): every
//! `result_pv` column of every point of the sample and 10K tables, every monthly quantity of the four sample
//! points, the sample portfolio's monthly totals, and BasicTerm_ME's `result_pv`.

use std::io::Read;
use std::path::Path;
#[cfg(not(target_arch = "wasm32"))]
use std::path::PathBuf;
use std::sync::Arc;

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use parfit_actuarial_reference::{
    Config, Files, Kind, MONTHLY_COLUMNS, Output, Portfolio, ProjectionModel, TextFile, audit_columns, pv_columns,
};
use parfit_core::Model;

#[cfg(not(target_arch = "wasm32"))]
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../..")
}

#[cfg(not(target_arch = "wasm32"))]
fn bytes(path: &Path) -> Vec<u8> {
    std::fs::read(root().join(path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// On wasm32 (no file system) the tables and goldens are compiled in.
#[cfg(target_arch = "wasm32")]
fn bytes(path: &Path) -> Vec<u8> {
    macro_rules! embedded {
        ($($file:literal),* $(,)?) => {
            match path.to_str().unwrap_or("") {
                $($file => include_bytes!(concat!("../../../../", $file)).to_vec(),)*
                other => panic!("{other}: not embedded for wasm32 (add it to the list in bytes())"),
            }
        };
    }
    embedded!(
        "examples/savings/model_point_samples.csv",
        "examples/savings/model_point_10000.csv",
        "examples/savings/product_spec_table.csv",
        "examples/savings/mort_table.csv",
        "examples/savings/surr_charge_table.csv",
        "examples/savings/disc_rate_ann.csv",
        "examples/savings/std_norm_rand.csv",
        "examples/savings/../../tests/data/lifelib_savings/edge_cases/model_points.csv",
        "examples/basicterm/basicterm_me_model_point_table.csv",
        "examples/basicterm/basicterm_premium_table.csv",
        "tests/data/lifelib_savings/result_pv_samples.csv",
        "tests/data/lifelib_savings/result_pv_10000.csv.gz",
        "tests/data/lifelib_savings/monthly_point1.csv.gz",
        "tests/data/lifelib_savings/monthly_point2.csv.gz",
        "tests/data/lifelib_savings/monthly_point3.csv.gz",
        "tests/data/lifelib_savings/monthly_point4.csv.gz",
        "tests/data/lifelib_savings/result_cf_samples_total.csv.gz",
        "tests/data/lifelib_savings/result_pols_samples_total.csv.gz",
        "tests/data/lifelib_savings/edge_cases/result_pv.csv",
        "tests/data/lifelib_basiclife/basicterm_me_result_pv.csv.gz",
    )
}

/// A file's text, gunzipped when its name ends in `.gz`.
fn text(path: &str) -> String {
    let path = Path::new(path);
    let bytes = bytes(path);
    if path.extension().is_some_and(|e| e == "gz") {
        let mut s = String::new();
        flate2::read::GzDecoder::new(&bytes[..]).read_to_string(&mut s).expect("gzip text");
        s
    } else {
        String::from_utf8(bytes).expect("UTF-8")
    }
}

fn file(path: &str) -> Option<TextFile> {
    Some(TextFile { name: path.to_string(), text: text(path) })
}

fn savings(points: &str, output: Output) -> ProjectionModel {
    let s = "examples/savings/";
    let tables = Files {
        model_points: file(&format!("{s}{points}")),
        product_spec: file(&format!("{s}product_spec_table.csv")),
        mortality: file(&format!("{s}mort_table.csv")),
        surrender_charge: file(&format!("{s}surr_charge_table.csv")),
        discount: file(&format!("{s}disc_rate_ann.csv")),
        scenarios: file(&format!("{s}std_norm_rand.csv")),
        premium: None,
    };
    ProjectionModel::new(Kind::CashValue, Config { tables, constants: Default::default(), output }).unwrap()
}

fn basic_term() -> ProjectionModel {
    let tables = Files {
        model_points: file("examples/basicterm/basicterm_me_model_point_table.csv"),
        premium: file("examples/basicterm/basicterm_premium_table.csv"),
        mortality: file("examples/savings/mort_table.csv"),
        discount: file("examples/savings/disc_rate_ann.csv"),
        ..Files::default()
    };
    ProjectionModel::new(Kind::BasicTerm, Config { tables, constants: Default::default(), output: Output::Pv }).unwrap()
}

/// (header, rows) of a numeric CSV golden.
fn golden(path: &str) -> (Vec<String>, Vec<Vec<f64>>) {
    let text = text(path);
    let mut lines = text.lines();
    let header = lines.next().unwrap().split(',').map(str::to_string).collect();
    let rows = lines.filter(|l| !l.is_empty()).map(|l| l.split(',').map(|c| c.parse().unwrap()).collect()).collect();
    (header, rows)
}

/// Compare `ours` with the golden `row` column by column (named by `names` and `header`), within `tol` of the
/// row's largest absolute golden value.
#[track_caller]
fn assert_row(what: &str, names: &[&str], ours: &[f64], header: &[String], row: &[f64], tol: f64) -> f64 {
    let scale = row.iter().skip(1).fold(0.0f64, |m, v| m.max(v.abs())).max(f64::MIN_POSITIVE);
    let mut worst = 0.0f64;
    for (j, name) in names.iter().enumerate() {
        let g = header.iter().position(|h| h == name).unwrap_or_else(|| panic!("golden has no column {name}"));
        let err = (ours[j] - row[g]).abs() / scale;
        assert!(err <= tol, "{what}, {name}: ours {} lifelib {} (error {err:e} of the row's scale)", ours[j], row[g]);
        worst = worst.max(err);
    }
    worst
}

fn check_pv(model: &ProjectionModel, golden_path: &str, tol: f64) -> f64 {
    let (header, rows) = golden(golden_path);
    let names = pv_columns(model.portfolio().kind);
    assert_eq!(rows.len(), model.portfolio().points.len());
    let mut ws = model.workspace();
    let mut out = vec![0.0; names.len()];
    let mut worst = 0.0f64;
    for (i, row) in rows.iter().enumerate() {
        model.simulate(&mut ws, &[], &[i as f64, 1.0], &[], &mut out).unwrap();
        worst = worst.max(assert_row(&format!("{golden_path} point {}", row[0]), names, &out, &header, row, tol));
    }
    worst
}

#[test]
fn sample_points_present_values_match_lifelib() {
    let worst = check_pv(
        &savings("model_point_samples.csv", Output::Pv),
        "tests/data/lifelib_savings/result_pv_samples.csv",
        1e-12,
    );
    eprintln!("worst relative error: {worst:e}");
}

#[test]
fn ten_thousand_points_present_values_match_lifelib() {
    let worst = check_pv(
        &savings("model_point_10000.csv", Output::Pv),
        "tests/data/lifelib_savings/result_pv_10000.csv.gz",
        1e-12,
    );
    eprintln!("worst relative error: {worst:e}");
}

#[test]
fn every_monthly_quantity_of_the_sample_points_matches_lifelib() {
    let model = savings("model_point_samples.csv", Output::Audit);
    let names = audit_columns(Kind::CashValue);
    let horizon = model.portfolio().horizon;
    assert_eq!(horizon, 1141);
    let times: Vec<f64> = (0..horizon).map(|t| t as f64).collect();
    let mut ws = model.workspace();
    let mut out = vec![0.0; horizon * names.len()];
    let mut worst = 0.0f64;
    for point in 0..4 {
        let (header, rows) = golden(&format!("tests/data/lifelib_savings/monthly_point{}.csv.gz", point + 1));
        assert_eq!(rows.len(), horizon);
        model.simulate(&mut ws, &[], &[point as f64, 1.0], &times, &mut out).unwrap();
        for (t, row) in rows.iter().enumerate() {
            let ours = &out[t * names.len()..(t + 1) * names.len()];
            let what = format!("point {} month {t}", point + 1);
            worst = worst.max(assert_row(&what, &names, ours, &header, row, 1e-12));
        }
    }
    eprintln!("worst relative error: {worst:e}");
}

#[test]
fn sample_portfolio_monthly_totals_match_lifelib() {
    let model = savings("model_point_samples.csv", Output::Monthly);
    let horizon = model.portfolio().horizon;
    let times: Vec<f64> = (0..horizon).map(|t| t as f64).collect();
    let w = MONTHLY_COLUMNS.len();
    let mut total = vec![0.0; horizon * w];
    let mut out = vec![0.0; horizon * w];
    let mut ws = model.workspace();
    for point in 0..4 {
        model.simulate(&mut ws, &[], &[point as f64, 1.0], &times, &mut out).unwrap();
        total.iter_mut().zip(&out).for_each(|(a, b)| *a += b);
    }
    for (path, cols) in [
        ("tests/data/lifelib_savings/result_cf_samples_total.csv.gz", &MONTHLY_COLUMNS[..5]),
        ("tests/data/lifelib_savings/result_pols_samples_total.csv.gz", &MONTHLY_COLUMNS[5..]),
    ] {
        let (header, rows) = golden(path);
        assert_eq!(rows.len(), horizon);
        let first = MONTHLY_COLUMNS.iter().position(|c| *c == cols[0]).unwrap();
        for (t, row) in rows.iter().enumerate() {
            let ours = &total[t * w + first..t * w + first + cols.len()];
            assert_row(&format!("{path} month {t}"), cols, ours, &header, row, 1e-12);
        }
    }
}

#[test]
fn basic_term_present_values_match_lifelib() {
    let model = basic_term();
    assert!(model.portfolio().points.iter().any(|p| p.d0 < 0), "the table has future new business");
    // 3e-12, not 1e-12: the golden was made by numpy on an AVX-512 machine, whose SIMD `power` is one ulp off
    // the correctly rounded (1 − q)^(1/12) in 52 of the 618 mortality-table entries (glibc's `pow`, which we
    // use, is the correctly rounded one in all 52; checked with 60-digit decimals). The cancellation in
    // 1 − (1 − q)^(1/12) turns that ulp into ~5e-12 relative in the monthly death rate, and death claims dominate
    // a term-life row: the worst point differs by 2.1e-12 of its largest present value.
    let worst = check_pv(&model, "tests/data/lifelib_basiclife/basicterm_me_result_pv.csv.gz", 3e-12);
    eprintln!("worst relative error: {worst:e}");
}

#[test]
fn models_of_one_configuration_share_one_read_of_the_tables() {
    let a = savings("model_point_samples.csv", Output::Pv);
    let b = savings("model_point_samples.csv", Output::Summary);
    assert!(Arc::ptr_eq(a.portfolio(), b.portfolio()));
    let mut out = [0.0; 5];
    b.simulate(&mut b.workspace(), &[], &[0.0, 1.0], &[], &mut out).unwrap();
    assert_eq!(out, [4.0, 1141.0, 10.0, 1.0, 121.0 + 241.0 + 1141.0 + 781.0]);
    let _: &Portfolio = a.portfolio();
}

#[test]
fn edge_cases_match_lifelib() {
    // Future new business (duration_mth < 0), points past maturity, an in-force account value: lifelib's own
    // result_pv for them (tests/data/lifelib_savings/edge_cases/make.py).
    let model = savings("../../tests/data/lifelib_savings/edge_cases/model_points.csv", Output::Pv);
    let worst = check_pv(&model, "tests/data/lifelib_savings/edge_cases/result_pv.csv", 1e-12);
    eprintln!("worst relative error: {worst:e}");
}
