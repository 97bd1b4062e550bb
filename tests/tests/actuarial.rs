//! `parfit run` on the actuarial examples against lifelib 0.17.2 (tests/data/lifelib_*/SOURCE.md): present values
//! per point (4 samples, 10K, BasicTerm), the 100K portfolio's totals and ten 10K-block totals, monthly totals,
//! one point's audit vectors; bit-identical outputs for one and two threads; bad input refused with file, row
//! and column, leaving no output behind.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use parfit_tests::{parfit, root, scratch};

/// A text file of the repository, gunzipped when it ends in `.gz`.
fn text(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    if path.extension().is_some_and(|e| e == "gz") {
        let mut s = String::new();
        flate2::read::GzDecoder::new(&bytes[..]).read_to_string(&mut s).expect("gzip text");
        s
    } else {
        String::from_utf8(bytes).expect("UTF-8")
    }
}

/// Columns of a CSV of numbers (the first column may be an id; it is parsed as a number too).
fn table(path: &Path) -> (Vec<String>, Vec<Vec<f64>>) {
    let text = text(path);
    let mut lines = text.lines();
    let header = lines.next().unwrap().split(',').map(str::to_string).collect();
    let rows = lines
        .filter(|l| !l.is_empty())
        .map(|l| l.split(',').map(|c| c.parse().unwrap_or_else(|_| panic!("{}: '{c}'", path.display()))).collect())
        .collect();
    (header, rows)
}

/// Every column of `golden` that `ours` also has, row by row, within `tol` of the golden row's largest |value|
/// (the first column, an id or t, excluded from the scale).
#[track_caller]
fn assert_rows_match(ours: &Path, golden: &Path, tol: f64) {
    let ((oh, orows), (gh, grows)) = (table(ours), table(golden));
    assert_eq!(orows.len(), grows.len(), "{} rows", ours.display());
    let pairs: Vec<(usize, usize)> = gh
        .iter()
        .enumerate()
        .skip(1)
        .filter_map(|(g, name)| oh.iter().position(|o| o == name).map(|o| (o, g)))
        .collect();
    assert!(pairs.len() + 2 >= gh.len(), "{} lacks golden columns {gh:?}", ours.display());
    for (r, (o, g)) in orows.iter().zip(&grows).enumerate() {
        assert_eq!(o[0], g[0], "row {r}: id or t");
        let scale = g.iter().skip(1).fold(0.0f64, |m, v| m.max(v.abs())).max(f64::MIN_POSITIVE);
        for &(oc, gc) in &pairs {
            let err = (o[oc] - g[gc]).abs() / scale;
            assert!(err <= tol, "{} row {r} {}: {} vs lifelib {} ({err:e})", ours.display(), gh[gc], o[oc], g[gc]);
        }
    }
}

fn totals(json: &serde_json::Value) -> BTreeMap<String, f64> {
    json["totals"].as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.as_f64().unwrap())).collect()
}

/// `,total` rows of a lifelib totals CSV.
fn golden_totals(path: &str) -> BTreeMap<String, f64> {
    let text = text(&root().join(path));
    text.lines().skip(1).map(|l| l.split_once(',').unwrap()).map(|(k, v)| (k.to_string(), v.parse().unwrap())).collect()
}

#[track_caller]
fn assert_close(what: &str, ours: f64, golden: f64, tol: f64) {
    let err = (ours - golden).abs() / golden.abs().max(f64::MIN_POSITIVE);
    assert!(err <= tol, "{what}: {ours} vs lifelib {golden} ({err:e} relative)");
}

fn run(config: &str, out: &Path, threads: &str) -> serde_json::Value {
    parfit(&["run", config, "--threads", threads, "--format", "json", "--output", out.to_str().unwrap()])
        .assert_ok()
        .json()
}

const SAVINGS: &str = "tests/data/lifelib_savings";

/// lifelib's audit-trail label of a CashValue_ME quantity the old engine named after the cell.
fn lifelib_label(name: &str) -> &str {
    match name {
        "pols_if_bef_mat" => "pols_if_at(BEF_MAT)",
        "pols_if_bef_nb" => "pols_if_at(BEF_NB)",
        "pols_if_bef_decr" => "pols_if_at(BEF_DECR)",
        "av_pp_bef_prem" => "av_pp_at(BEF_PREM)",
        "av_pp_bef_fee" => "av_pp_at(BEF_FEE)",
        "av_pp_bef_inv" => "av_pp_at(BEF_INV)",
        "av_pp_mid_mth" => "av_pp_at(MID_MTH)",
        "av_bef_mat" => "av_at(BEF_MAT)",
        "av_bef_fee" => "av_at(BEF_FEE)",
        "claim_pp_death" => "claim_pp(DEATH)",
        "claims_death" => "claims(DEATH)",
        "claims_from_av_lapse" => "claims_from_av(LAPSE)",
        "claims_lapse" => "claims(LAPSE)",
        "claims_maturity" => "claims(MATURITY)",
        "claims_total" => "claims",
        other => other,
    }
}

#[test]
fn sample_points_match_lifelib_month_by_month() {
    let out = scratch("actuarial-samples");
    let report = run("examples/savings/samples.toml", &out, "2");
    assert_eq!(report["points"], 4);
    assert_eq!(report["horizon_months"], 1141);
    let g = root().join(SAVINGS);
    assert_rows_match(&out.join("pv.csv"), &g.join("result_pv_samples.csv"), 1e-12);
    assert_rows_match(&out.join("result_cf.csv"), &g.join("result_cf_samples_total.csv.gz"), 1e-12);
    assert_rows_match(&out.join("result_pols.csv"), &g.join("result_pols_samples_total.csv.gz"), 1e-12);
    // The audit file is point 1's every monthly quantity; the golden has a point_id column first and names the
    // quantities as the old engine did, where the audit uses lifelib's audit-trail labels.
    let audit = text(&out.join("audit.csv"));
    let golden = text(&g.join("monthly_point1.csv.gz"));
    let mut stripped: String = golden.lines().map(|l| l.split_once(',').unwrap().1.to_string() + "\n").collect();
    let (header, rest) = stripped.split_once('\n').unwrap();
    let labelled: Vec<&str> = header.split(',').map(lifelib_label).collect();
    stripped = format!("{}\n{rest}", labelled.join(","));
    let tmp = out.join("golden_point1.csv");
    std::fs::write(&tmp, stripped).unwrap();
    assert_eq!(audit.lines().next().unwrap().split(',').count(), 49);
    assert_rows_match(&out.join("audit.csv"), &tmp, 1e-12);
    for (name, v) in golden_totals(&format!("{SAVINGS}/result_pv_samples_totals.csv")) {
        assert_close(&name, totals(&report)[&name], v, 1e-12);
    }
    assert!(std::fs::read_to_string(out.join("projection.svg")).unwrap().contains("<svg"));
}

#[test]
fn ten_thousand_points_match_lifelib_and_threads_do_not_change_a_bit() {
    let dir = scratch("actuarial-10k");
    let (one, two) = (dir.join("one"), dir.join("two"));
    let r2 = run("examples/savings/run.toml", &two, "2");
    let r1 = run("examples/savings/run.toml", &one, "1");
    assert_eq!(r1["totals"], r2["totals"]);
    for file in ["pv.csv", "result_cf.csv", "result_pols.csv", "audit.csv"] {
        assert_eq!(
            std::fs::read(one.join(file)).unwrap(),
            std::fs::read(two.join(file)).unwrap(),
            "{file} differs between 1 and 2 threads"
        );
    }
    assert_rows_match(&two.join("pv.csv"), &root().join(SAVINGS).join("result_pv_10000.csv.gz"), 1e-12);
    for (name, v) in golden_totals(&format!("{SAVINGS}/result_pv_10000_totals.csv")) {
        assert_close(&name, totals(&r2)[&name], v, 1e-12);
    }
}

#[test]
fn hundred_thousand_points_totals_and_block_totals_match_lifelib() {
    let dir = scratch("actuarial-100k");
    let report = run("examples/savings/run_100k.toml", &dir, "2");
    assert_eq!(report["points"], 100_000);
    for (name, v) in golden_totals(&format!("{SAVINGS}/result_pv_100K_ipp_demo_totals.csv")) {
        assert_close(&format!("total {name}"), totals(&report)[&name], v, 1e-12);
    }
    // Ten blocks of 10,000 consecutive points (the demo's ten engines).
    let (header, rows) = table(&dir.join("pv.csv"));
    let (gh, blocks) = table(&root().join(SAVINGS).join("result_pv_100K_ipp_demo_block_totals.csv"));
    assert_eq!((rows.len(), blocks.len()), (100_000, 10));
    for (b, golden) in blocks.iter().enumerate() {
        for (gc, name) in gh.iter().enumerate().skip(1) {
            let c = header.iter().position(|h| h == name).unwrap();
            let sum: f64 = rows[b * 10_000..(b + 1) * 10_000].iter().map(|r| r[c]).sum();
            assert_close(&format!("block {b} {name}"), sum, golden[gc], 1e-12);
        }
    }
}

#[test]
fn basic_term_matches_lifelib() {
    let out = scratch("actuarial-basicterm");
    let report = run("examples/basicterm/run.toml", &out, "2");
    assert_eq!(report["points"], 10_000);
    let golden = root().join("tests/data/lifelib_basiclife");
    // lifelib run with numpy's baseline SIMD kernels, whose `power` is libm's, as parfit's is.
    assert_rows_match(&out.join("pv.csv"), &golden.join("basicterm_me_result_pv_baseline_simd.csv.gz"), 1e-12);
    for (name, v) in golden_totals("tests/data/lifelib_basiclife/basicterm_me_result_pv_baseline_simd_totals.csv") {
        assert_close(&name, totals(&report)[&name], v, 1e-12);
    }
    // The shipped golden carries numpy's AVX-512 `power`, one ulp off the correctly rounded monthly mortality
    // in 52 of 618 table entries (see plugins/actuarial/README.md): agreement to 3e-12, not 1e-12.
    assert_rows_match(&out.join("pv.csv"), &golden.join("basicterm_me_result_pv.csv.gz"), 3e-12);
    for (name, v) in golden_totals("tests/data/lifelib_basiclife/basicterm_me_result_pv_totals.csv") {
        assert_close(&name, totals(&report)[&name], v, 3e-12);
    }
}

#[test]
fn all_scenarios_report_each_total_and_their_mean() {
    let dir = scratch("actuarial-scenarios");
    let savings = root().join("examples/savings");
    let config = std::fs::read_to_string(savings.join("samples.toml"))
        .unwrap()
        .replace("model_point_samples.csv", &savings.join("model_point_samples.csv").display().to_string())
        .replace("\"product_spec_table.csv", &format!("\"{}/product_spec_table.csv", savings.display()))
        .replace("\"mort_table.csv", &format!("\"{}/mort_table.csv", savings.display()))
        .replace("\"surr_charge_table.csv", &format!("\"{}/surr_charge_table.csv", savings.display()))
        .replace("\"disc_rate_ann.csv", &format!("\"{}/disc_rate_ann.csv", savings.display()))
        .replace("\"std_norm_rand.csv", &format!("\"{}/std_norm_rand.csv", savings.display()))
        .replace("monthly = true", "monthly = true\nscenarios = \"all\"");
    let path = dir.join("all.toml");
    std::fs::write(&path, config).unwrap();
    let all = run(path.to_str().unwrap(), &dir.join("all"), "2");
    let one = run("examples/savings/samples.toml", &dir.join("one"), "2");
    let per = all["scenario_totals"].as_array().unwrap();
    assert_eq!(per.len(), 10);
    assert_eq!(per[0]["scenario"], 1);
    assert_eq!(per[0]["totals"], one["totals"], "scenario 1 is lifelib's default run");
    assert_ne!(per[1]["totals"], per[0]["totals"]);
    for (name, mean) in totals(&all) {
        let sum: f64 = per.iter().map(|s| s["totals"][&name].as_f64().unwrap()).sum();
        assert_close(&name, mean, sum / 10.0, 1e-15);
    }
}

/// Run the samples configuration with one table edited; the run must fail with exit code 2, a message
/// containing every `expected` piece, and no output files.
#[track_caller]
fn refused(name: &str, table: &str, edit: impl Fn(&str) -> String, expected: &[&str]) {
    let dir = scratch(&format!("actuarial-bad-{name}"));
    let savings = root().join("examples/savings");
    let mut config = std::fs::read_to_string(savings.join("samples.toml")).unwrap();
    for f in [
        "model_point_samples.csv",
        "product_spec_table.csv",
        "mort_table.csv",
        "surr_charge_table.csv",
        "disc_rate_ann.csv",
        "std_norm_rand.csv",
    ] {
        let source = savings.join(f);
        let content = std::fs::read_to_string(&source).unwrap();
        std::fs::write(dir.join(f), if f == table { edit(&content) } else { content }).unwrap();
    }
    config = config.replace("audit_point = 1", "audit_point = 1\n");
    std::fs::write(dir.join("run.toml"), config).unwrap();
    let out = dir.join("out");
    let r = parfit(&["run", dir.join("run.toml").to_str().unwrap(), "--output", out.to_str().unwrap()]);
    assert_eq!(r.code, 2, "{name}: expected exit code 2\nstdout: {}\nstderr: {}", r.stdout, r.stderr);
    for piece in expected {
        assert!(r.stderr.contains(piece), "{name}: '{piece}' not in the error:\n{}", r.stderr);
    }
    let left: Vec<_> = std::fs::read_dir(&out).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    assert!(left.is_empty(), "{name}: files were written: {left:?}");
}

#[test]
fn bad_model_points_are_refused_with_file_row_and_column() {
    // The bundled model's checks of each point, named by file, line and policy id; a cell outside the range its
    // table declares, by file, line and column.
    refused(
        "product",
        "model_point_samples.csv",
        |t| t.replace("3,C,20", "3,X,20"),
        &["model_point_samples.csv:4: policy 3: its spec_id is not a product of the product table"],
    );
    refused(
        "age",
        "model_point_samples.csv",
        |t| t.replace("2,B,50", "2,B,130"),
        &["model_point_samples.csv:3: policy 2: its age_at_entry is outside the mortality table"],
    );
    refused(
        "count",
        "model_point_samples.csv",
        |t| t.replace("4,D,50,M,9999,100", "4,D,50,M,9999,-100"),
        &["model_point_samples.csv:5:6: column 'policy_count': -100 is not between 0 and 1e100"],
    );
    // A column the model reads and the table lacks: the model's line and column.
    refused(
        "column",
        "model_point_samples.csv",
        |t| t.replace("sum_assured", "sum_insured"),
        &["cashvalue_me.prj:", "unknown attribute 'mp.sum_assured'"],
    );
    // A cell that is not a number: file, line and column.
    refused(
        "mortality",
        "mort_table.csv",
        |t| t.replacen("0.0002310671048780701", "abc", 1),
        &["mort_table.csv:2:2: column '0': expected a number, found 'abc'"],
    );
    // A rate outside the range the model declares for its wide tables, at its cell across the header.
    refused(
        "mortality-range",
        "mort_table.csv",
        |t| t.replacen("0.0002541738153658771", "1.5", 1),
        &["mort_table.csv:2:3: column '1': 1.5 is not between 0 and 1"],
    );
    refused(
        "surrender-range",
        "surr_charge_table.csv",
        |t| t.replacen("0,0.1,0.08,0.05", "0,0.1,-0.08,0.05", 1),
        &["surr_charge_table.csv:2:3: column 'type_2': -0.08 is not between 0 and 1"],
    );
}
