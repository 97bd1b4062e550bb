//! The subscripted Vensim example end to end (`examples/regions/`): 50 regions × 10 age cohorts with lookups and
//! a DELAY3, fitted to synthetic data made at known parameter values (`make_data.py`): `parfit fit` recovers
//! them, and the fit-many bootstrap gives one row per replicate in input order, the same for 1 and 2 threads.

use std::collections::BTreeMap;
use std::path::Path;

use parfit_tests::{parfit, scratch};

/// The values `examples/regions/make_data.py` made the data at, and how near (relative) each bootstrap
/// replicate's fit must come: beyond the farthest of the 50 (fertility 7.8 %, mortality scale 14 %, migration
/// sensitivity 3.3 %, perception delay 24 %).
const TRUTH: [(&str, f64, f64); 4] = [
    ("fertility", 0.032, 0.1),
    ("mortality scale", 1.15, 0.2),
    ("migration sensitivity", 0.1, 0.05),
    ("perception delay", 3.0, 0.3),
];

/// A CSV file as its header and rows of cells, read by a CSV reader (subscripted names hold commas).
fn read_table(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut reader = csv::Reader::from_path(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let header = reader.headers().unwrap().iter().map(str::to_string).collect();
    let rows = reader.records().map(|r| r.unwrap().iter().map(str::to_string).collect()).collect();
    (header, rows)
}

fn assert_near_truth(fitted: &BTreeMap<&str, f64>, scale: f64, what: &str) {
    for (name, truth, tolerance) in TRUTH {
        let value = fitted[name];
        assert!(
            (value - truth).abs() <= tolerance * scale * truth,
            "{what}: {name} = {value}, truth {truth} ± {}",
            tolerance * scale * truth
        );
    }
}

#[test]
fn the_fit_recovers_the_parameters_the_data_were_made_at() {
    let dir = scratch("regions-fit");
    let result = parfit(&["fit", "examples/regions/fit.toml", "--output", dir.to_str().unwrap(), "--format", "json"])
        .assert_ok()
        .json();
    let x = result["x"].as_object().unwrap();
    // Exactly the four free parameters: the regions' and cohorts' data are unchangeable (==) in the model.
    assert_eq!(x.len(), 4, "{x:?}");
    let fitted = TRUTH.iter().map(|(name, ..)| (*name, x[*name].as_f64().unwrap())).collect();
    // Yearly data of every region: within a quarter of a replicate's tolerance (off by 1 %, 1.6 %, 0.6 %, 3.4 %).
    assert_near_truth(&fitted, 0.25, "parfit fit");

    // fitted.csv: the model's outputs under their Vensim names, at the data's times (the model's step grid).
    let (header, rows) = read_table(&dir.join("fitted.csv"));
    assert_eq!(rows.len(), 31);
    for name in ["population[r1,c1]", "population[r50,c10]", "total population[r50]", "national population"] {
        assert!(header.iter().any(|h| h == name), "fitted.csv has no column {name}");
    }
    assert!(rows.iter().all(|row| row.len() == header.len()));
}

#[test]
fn the_bootstrap_gives_one_fit_per_replicate_in_order_whatever_the_threads() {
    let dir = scratch("regions-fit-many");
    let (one, two) = (dir.join("one"), dir.join("two"));
    let config = "examples/regions/fit_many.toml";
    let summary =
        parfit(&["fit-many", config, "--threads", "2", "--output", two.to_str().unwrap(), "--format", "json"])
            .assert_ok()
            .json();
    assert_eq!((summary["cases"].as_u64(), summary["failed"].as_u64()), (Some(50), Some(0)));
    parfit(&["fit-many", config, "--threads", "1", "--output", one.to_str().unwrap()]).assert_ok();
    let results = std::fs::read(two.join("results.csv")).unwrap();
    assert!(std::fs::read(one.join("results.csv")).unwrap() == results, "1 and 2 threads differ");

    let (header, rows) = read_table(&two.join("results.csv"));
    let column = |name: &str| header.iter().position(|h| h == name).unwrap_or_else(|| panic!("no column {name}"));
    let ids: Vec<&str> = rows.iter().map(|r| r[column("replicate")].as_str()).collect();
    let expected: Vec<String> = (1..=50).map(|k| k.to_string()).collect();
    assert_eq!(ids, expected, "input order");
    for row in &rows {
        assert!(row[column("error")].is_empty(), "replicate {} failed: {}", row[0], row[column("error")]);
        let fitted = TRUTH.iter().map(|(name, ..)| (*name, row[column(name)].parse().unwrap())).collect();
        assert_near_truth(&fitted, 1.0, &format!("replicate {}", row[0]));
    }
    // The bootstrap's medians lie close to the truth.
    let medians =
        TRUTH.iter().map(|(name, ..)| (*name, summary["parameters"][name]["median"].as_f64().unwrap())).collect();
    assert_near_truth(&medians, 0.25, "bootstrap median");
}

/// Subscripted constants are parameters by their cell names in a configuration (`"growth[north]"`), fixed or
/// fitted, and subscripted outputs are observed by theirs: data made by `parfit run --set` at growth[north] =
/// 0.15 give that value back.
#[test]
fn a_subscripted_parameter_is_fitted_by_its_cell_name() {
    let dir = scratch("regions-subscripted-parameter");
    let model = "region: north, south ~~|\ngrowth[region] = 0.1, 0.2 ~~|\n\
                 x[region] = INTEG(growth[region] * x[region], 1) ~~|\n\
                 INITIAL TIME = 0 ~~|\nFINAL TIME = 10 ~~|\nTIME STEP = 0.25 ~~|\nSAVEPER = 1 ~~|\n";
    std::fs::write(dir.join("growth.mdl"), model).unwrap();
    let made =
        parfit(&["run", dir.join("growth.mdl").to_str().unwrap(), "--times", "0:10:11", "--set", "growth[north]=0.15"])
            .assert_ok()
            .stdout
            .clone();
    let (header, rows) = parfit_tests::parse_csv(&made);
    let (t, x) = (header.iter().position(|h| h == "time").unwrap(), header.iter().position(|h| h == "x[north]"));
    let x = x.unwrap_or_else(|| panic!("no column x[north] in {header:?}"));
    let data: String = rows.iter().map(|r| format!("{},{}\n", r[t], r[x])).collect();
    std::fs::write(dir.join("data.csv"), format!("t,x[north]\n{data}")).unwrap();
    let config = "[model]\nkind = \"vensim\"\nsource = \"growth.mdl\"\n\n\
                  [data]\npath = \"data.csv\"\ntime = \"t\"\noutputs = [\"x[north]\"]\n\n\
                  [parameters]\n\"growth[north]\" = { lower = 0.0, upper = 1.0 }\n\"growth[south]\" = { fixed = 0.2 }\n\n\
                  [fit]\ncost = \"sse\"\nalgorithm = \"levenberg_marquardt\"\n";
    std::fs::write(dir.join("fit.toml"), config).unwrap();
    let result = parfit(&[
        "fit",
        dir.join("fit.toml").to_str().unwrap(),
        "--format",
        "json",
        "--output",
        dir.join("out").to_str().unwrap(),
    ])
    .assert_ok()
    .json();
    let fitted = result["x"]["growth[north]"].as_f64().unwrap();
    assert!((fitted - 0.15).abs() <= 1e-6, "growth[north] = {fitted}");
}
