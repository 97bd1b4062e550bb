//! examples/dynamic_lapse: a savings model lifelib does not have (CashValue_ME with a dynamic lapse driven by the
//! gap between a competitor's crediting rate and the fund's credited return), run from its model file with no
//! Rust change. With no sensitivity it is CashValue_ME byte for byte; a higher competitor rate raises the lapses
//! in the months the fund underperforms it; bad edits of its model, table or configuration exit 2 at their place.

use std::path::{Path, PathBuf};

use parfit_tests::{parfit, read_csv, root, scratch};

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn run_ok(config: &Path, out: &Path) {
    let r = parfit(&["run", config.to_str().unwrap(), "--output", out.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}: {}\n{}", config.display(), r.stdout, r.stderr);
}

/// A copy of the example in a scratch directory: its model and competitor table passed through the edits, its
/// configuration reading the savings tables where they are, over `points` (a file of examples/savings), with
/// `constants` (TOML lines) as its `[projection.constants]`.
fn copy(
    name: &str,
    points: &str,
    constants: &str,
    edit_model: impl Fn(&str) -> String,
    edit_rates: impl Fn(&str) -> String,
) -> PathBuf {
    let dir = scratch(&format!("dynamic-lapse-{name}"));
    let example = root().join("examples/dynamic_lapse");
    std::fs::write(dir.join("dynamic_lapse.prj"), edit_model(&read(&example.join("dynamic_lapse.prj")))).unwrap();
    std::fs::write(dir.join("competitor_rate.csv"), edit_rates(&read(&example.join("competitor_rate.csv")))).unwrap();
    let savings = root().join("examples/savings");
    let mut config = read(&example.join("run.toml"))
        .replace("\"../savings/", &format!("\"{}/", savings.display()))
        .replace("model_point_10000.csv", points);
    if !constants.is_empty() {
        config = config.replace("# [projection.constants]", &format!("[projection.constants]\n{constants}\n#"));
    }
    std::fs::write(dir.join("run.toml"), config).unwrap();
    dir
}

fn same(t: &str) -> String {
    t.to_string()
}

/// Column `name` of a CSV of numbers.
fn column(path: &Path, name: &str) -> Vec<f64> {
    let (header, rows) = read_csv(path);
    let c = header.iter().position(|h| h == name).unwrap_or_else(|| panic!("no column {name} in {header:?}"));
    rows.iter().map(|r| r[c]).collect()
}

#[test]
fn the_example_runs_and_without_sensitivity_is_cashvalue_me_byte_for_byte() {
    let dir = scratch("dynamic-lapse-example");
    run_ok(&root().join("examples/dynamic_lapse/run.toml"), &dir.join("dynamic"));
    run_ok(&root().join("examples/savings/run_model.toml"), &dir.join("cashvalue"));
    let zero = copy("zero", "model_point_10000.csv", "dyn_lapse_sensitivity = 0", same, same);
    run_ok(&zero.join("run.toml"), &dir.join("zero"));
    let (dynamic, cashvalue, zero) = (dir.join("dynamic"), dir.join("cashvalue"), dir.join("zero"));
    for f in ["pv.csv", "result_cf.csv", "result_pols.csv"] {
        assert!(read(&zero.join(f)) == read(&cashvalue.join(f)), "{f}: sensitivity 0 is not CashValue_ME");
        assert!(read(&dynamic.join(f)) != read(&cashvalue.join(f)), "{f}: the dynamic lapse changed nothing");
    }
    let totals = |d: &Path| -> serde_json::Value {
        let v: serde_json::Value = serde_json::from_str(&read(&d.join("totals.json"))).unwrap();
        serde_json::json!([v["totals"], v["scenario_totals"], v["horizon_months"], v["point_months"], v["points"]])
    };
    assert_eq!(totals(&zero), totals(&cashvalue));
    // The audit has CashValue_ME's columns, each the same, then the dynamic lapse's own.
    let (cv_head, cv_rows) = read_csv(&cashvalue.join("audit.csv"));
    let (head, rows) = read_csv(&zero.join("audit.csv"));
    assert_eq!(head[..cv_head.len()], cv_head[..]);
    assert_eq!(head[cv_head.len()..], ["base_lapse_rate", "credited_rate", "rate_gap", "dyn_lapse_mult"]);
    assert_eq!(rows.len(), cv_rows.len());
    for (row, cv) in rows.iter().zip(&cv_rows) {
        assert!(row[..cv.len()].iter().zip(cv).all(|(a, b)| a.to_bits() == b.to_bits()), "{row:?} vs {cv:?}");
    }
    // The multiplier is 1 in every month of the policy's life (the audit goes on to the horizon, as lifelib's).
    let months = column(&zero.join("audit.csv"), "duration_mth").iter().take_while(|&&d| d <= 120.0).count();
    assert_eq!(months, 121, "policy 1's ten years and its maturity month");
    assert!(column(&zero.join("audit.csv"), "dyn_lapse_mult")[..months].iter().all(|&m| m == 1.0));
}

#[test]
fn a_higher_competitor_rate_raises_lapses_where_the_fund_underperforms() {
    let base = copy("base", "model_point_samples.csv", "", same, same);
    run_ok(&base.join("run.toml"), &base.join("out"));
    let shifted = copy("shifted", "model_point_samples.csv", "competitor_shift = 0.03", same, same);
    run_ok(&shifted.join("run.toml"), &shifted.join("out"));
    let (a, b) = (base.join("out/audit.csv"), shifted.join("out/audit.csv"));
    // The fund's credited rate does not depend on the competitor; the gap grows by the shift.
    assert_eq!(column(&a, "credited_rate"), column(&b, "credited_rate"));
    let (gap, mult, lapse, base_rate) =
        (column(&b, "rate_gap"), column(&b, "dyn_lapse_mult"), column(&b, "lapse_rate"), column(&b, "base_lapse_rate"));
    let (lapse_before, mult_before) = (column(&a, "lapse_rate"), column(&a, "dyn_lapse_mult"));
    let (threshold, cap, floor) = (0.01, 3.0, 0.5);
    // Policy 1's ten years and its maturity month (the audit goes on to the horizon, as lifelib's).
    let months = column(&b, "duration_mth").iter().take_while(|&&d| d <= 120.0).count();
    assert_eq!(months, 121);
    let mut under = 0;
    for t in 0..months {
        // Never fewer lapses than before, with the competitor's rate higher.
        assert!(lapse[t] >= lapse_before[t], "month {t}: {} < {}", lapse[t], lapse_before[t]);
        // The months the fund credits less than the competitor's rate by more than the threshold: lapses above
        // the base rate, and above those of the lower competitor rate unless both were at the cap.
        if gap[t] > threshold {
            under += 1;
            assert!(mult[t] > 1.0 && lapse[t] > base_rate[t], "month {t}: gap {} multiplier {}", gap[t], mult[t]);
            assert!(lapse[t] > lapse_before[t] || mult_before[t] == cap, "month {t}");
        } else {
            assert!(mult[t] <= 1.0 && mult[t] >= floor, "month {t}: gap {} multiplier {}", gap[t], mult[t]);
        }
        let expected = (1.0 + 10.0 * (gap[t] - threshold)).clamp(floor, cap);
        assert!((mult[t] - expected).abs() <= 1e-12, "month {t}: {} vs {expected}", mult[t]);
    }
    assert!(under > 12 && under < months, "{under} of {months} months underperform");
    // Points 1 and 2 pay a single premium: more of them surrender and fewer reach maturity. Points 3 and 4 pay
    // level premiums: fewer policies stay to pay them (and their smaller accounts may surrender less in total).
    let pv = |d: &Path, c: &str| column(&d.join("out/pv.csv"), c);
    let (s, b) = (pv(&shifted, "Surrender"), pv(&base, "Surrender"));
    assert!(s[0] > b[0] && s[1] > b[1], "{s:?} vs {b:?}");
    let (s, b) = (pv(&shifted, "Maturity"), pv(&base, "Maturity"));
    assert!(s[0] < b[0] && s[1] < b[1], "{s:?} vs {b:?}");
    let (s, b) = (pv(&shifted, "Premiums"), pv(&base, "Premiums"));
    assert!(s[0] == b[0] && s[2] < b[2] && s[3] < b[3], "{s:?} vs {b:?}");
}

/// A run of a copy with one edit that must fail with exit code 2, every `expected` piece in the message, and no
/// output.
#[track_caller]
fn refused(
    name: &str,
    constants: &str,
    edit_model: impl Fn(&str) -> String,
    edit_rates: impl Fn(&str) -> String,
    expected: &[&str],
) {
    let dir = copy(name, "model_point_samples.csv", constants, edit_model, edit_rates);
    let out = dir.join("out");
    let r = parfit(&["run", dir.join("run.toml").to_str().unwrap(), "--output", out.to_str().unwrap()]);
    assert_eq!(r.code, 2, "{name}: expected exit code 2\nstdout: {}\nstderr: {}", r.stdout, r.stderr);
    for piece in expected {
        assert!(r.stderr.contains(piece), "{name}: '{piece}' not in the error:\n{}", r.stderr);
    }
    assert!(!out.exists(), "{name}: {} was written", out.display());
}

#[test]
fn bad_edits_of_the_example_are_refused_at_their_place() {
    let model = read(&root().join("examples/dynamic_lapse/dynamic_lapse.prj"));
    let line_of = |piece: &str| model.lines().position(|l| l.contains(piece)).unwrap() + 1;
    // A misspelt parameter in the multiplier's formula.
    let at = line_of("dyn_lapse_mult = min(");
    refused(
        "misspelt",
        "",
        |m| m.replace("max(dyn_lapse_floor,", "max(dyn_lapse_flor,"),
        same,
        &[&format!("dynamic_lapse.prj:{at}:"), "dyn_lapse_flor"],
    );
    // The credited rate reading its own next month: a circle.
    refused(
        "circular",
        "",
        |m| m.replace("credit_smoothing * credited_rate[t-1]", "credit_smoothing * lapse_rate"),
        same,
        &["dynamic_lapse.prj:", "circular definition"],
    );
    // The competitor's table: a rate that is not a number, and a table without year 0.
    refused(
        "rate",
        "",
        same,
        |t| t.replace("2,0.025", "2,0.0x5"),
        &["competitor_rate.csv:4:2: column 'rate': expected a number, found '0.0x5'"],
    );
    refused(
        "year",
        "",
        same,
        |t| t.replace("0,0.02\n", ""),
        &[
            "model_point_samples.csv:2: policy 1: the competitor rate table has no rate for year 0",
            "'competitor_known'",
        ],
    );
    // A constant the model does not have, placed at its value: the line after `[projection.constants]`, column 24.
    let config = read(&root().join("examples/dynamic_lapse/run.toml"));
    let line = config.lines().position(|l| l.starts_with("# [projection.constants]")).unwrap() + 2;
    let at = format!("run.toml:{line}:24: constants: unknown parameter 'dyn_lapse_sensitivty'");
    refused("constant", "dyn_lapse_sensitivty = 5", same, same, &[&at]);
    // The configuration without the competitor's table.
    let dir = copy("no-table", "model_point_samples.csv", "", same, same);
    let config = read(&dir.join("run.toml")).replace("competitor_rate = \"competitor_rate.csv\"\n", "");
    std::fs::write(dir.join("run.toml"), config).unwrap();
    let r = parfit(&["run", dir.join("run.toml").to_str().unwrap(), "--output", dir.join("out").to_str().unwrap()]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    let at = line_of("table competitor_rate(");
    assert!(r.stderr.contains("no file for table 'competitor_rate', which "), "{}", r.stderr);
    assert!(r.stderr.contains(&format!("dynamic_lapse.prj:{at}:")), "{}", r.stderr);
    assert!(!dir.join("out").exists());
}
